// Importance matrices ("imatrix"): for each weight matrix, the mean of x² of every input column
// over a calibration run. The quantizer weights its error by it, so columns that carry large
// activations are reproduced more precisely.
//
// Two on-disk formats, both written by llama.cpp's llama-imatrix and both untrusted input:
// - legacy ".dat": i32 entry count; per entry i32 name length, name bytes, i32 ncall, i32 nval,
//   nval f32 values (the per-column sum of x² divided by the token count, times ncall); then,
//   optionally, i32 chunk count, i32 dataset-name length and the dataset name. The importance of
//   a column is value / ncall.
// - GGUF: per matrix a F32 tensor "<name>.in_sum2" (dims [n_cols, n_mat], sums of x²) and a F32
//   tensor "<name>.counts" (dims [1, n_mat], tokens seen per matrix); KVs "imatrix.datasets"
//   (string array), "imatrix.chunk_count", "imatrix.chunk_size". The importance is
//   in_sum2 / counts; a matrix that saw no tokens gets importance 1 (as llama.cpp does).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

struct ImatrixEntry {
  std::string name;               // tensor name, e.g. "blk.0.attn_q.weight"
  std::vector<float> importance;  // n_mat * n_cols values, matrix after matrix
  uint32_t n_mat = 1;             // >1 for stacked expert matrices
  uint64_t count = 0;             // legacy: ncall; GGUF: tokens seen (first matrix)
};

struct Imatrix {
  std::string source;                 // the file it was read from (as given)
  std::string format;                 // "dat" or "gguf"
  std::vector<std::string> datasets;  // calibration file name(s), may be empty
  uint32_t chunk_count = 0;           // chunks of calibration text (0 = unknown)
  std::vector<ImatrixEntry> entries;  // unique names, file order

  const ImatrixEntry* find(std::string_view tensor_name) const;
};

// Reads either format (recognised by the GGUF magic). Errors name the file and the entry.
Result<Imatrix> load_imatrix(const std::string& path);
// Parses a legacy .dat image; `name` is used in errors and recorded as the source.
Result<Imatrix> parse_imatrix_dat(std::span<const uint8_t> bytes, const std::string& name);
// Extracts an imatrix from a parsed GGUF imatrix file.
Result<Imatrix> imatrix_from_gguf(const GgufFile& file);

// Serialises `m` in the legacy format (values = importance * count, ncall = count, or 1 when
// count is 0), with the trailer when chunk_count or datasets are set.
std::vector<uint8_t> serialize_imatrix_dat(const Imatrix& m);
// Writes `m` atomically in the legacy (.dat) format.
Status write_imatrix_dat(const std::string& path, const Imatrix& m, bool overwrite = false);
// Writes `m` atomically as a GGUF imatrix (in_sum2 = importance * count, counts = count).
Status write_imatrix_gguf(const std::string& path, const Imatrix& m, bool overwrite = false);

}  // namespace qforge
