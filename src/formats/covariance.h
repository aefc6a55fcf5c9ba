// Second-order activation statistics ("covariance files", issue 13): for every distinct input
// of the model's weight matrices, E[x xᵀ] over a calibration run. Written by `qforge imatrix`
// beside its imatrix FILE as FILE.cov (covariance_path_for); read by the error-feedback
// quantizer, one matrix at a time from the mapping.
//
// Format (the contract in docs and /work/coord/covariance-format.md): GGUF v3 with KVs
// general.type = "covariance", qforge.covariance.version = u32 1, imatrix.chunk_count,
// imatrix.chunk_size (u32), imatrix.datasets (string array), and qforge.covariance.map (string
// array of "WEIGHT\tCOV": the weight tensor whose input the covariance COV is). Per COV an F32
// tensor COV with dims [n, n, n_mat] (matrix m = E[x xᵀ] over the tokens that reached weight
// matrix m, row-major and symmetric; all zeros when no token did) and an F32 tensor
// "COV.counts" with dims [n_mat] (those token counts). Inputs shared by several weights (q/k/v,
// gate/up) are stored once. Untrusted on reading: every name, dim and count is checked.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

// One covariance as mapped from the file.
struct CovarianceView {
  std::string name;               // COV tensor name, e.g. "cov.blk.0.attn_in"
  uint64_t n = 0;                 // input width
  uint32_t n_mat = 1;             // 1 for a dense weight, n_expert for stacked experts
  const float* data = nullptr;    // n_mat * n * n floats (mapped), matrix after matrix
  std::span<const float> counts;  // n_mat token counts
  // Matrix m (n * n floats). Contract: m < n_mat.
  const float* matrix(uint32_t m) const { return data + static_cast<uint64_t>(m) * n * n; }
};

class CovarianceFile {
 public:
  // Maps and validates a covariance file (the data itself is not touched).
  static Result<CovarianceFile> open(const std::string& path);
  // Validates an already parsed GGUF (kept alive by the CovarianceFile).
  static Result<CovarianceFile> from_gguf(std::shared_ptr<const GgufFile> file);

  // The covariance of the input of weight tensor `weight_name`; nullopt when not covered.
  std::optional<CovarianceView> find(std::string_view weight_name) const;
  size_t size() const { return map_.size(); }  // number of weight tensors covered
  // The weight tensors covered, sorted.
  std::vector<std::string> weights() const;
  uint32_t chunk_count() const { return chunk_count_; }
  uint32_t chunk_size() const { return chunk_size_; }
  const std::vector<std::string>& datasets() const { return datasets_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<const GgufFile> file_;
  std::map<std::string, CovarianceView, std::less<>> map_;  // weight name -> its covariance
  uint32_t chunk_count_ = 0, chunk_size_ = 0;
  std::vector<std::string> datasets_;
};

// FILE + ".cov": where `qforge imatrix -o FILE` puts the covariances and the quantizer looks.
std::string covariance_path_for(const std::string& imatrix_path);
// The covariances beside `imatrix_path`, opened; nullptr when no such file exists (an existing
// file that does not parse is an error naming it).
Result<std::shared_ptr<const CovarianceFile>> open_covariance_beside(
    const std::string& imatrix_path);

// --- writing ------------------------------------------------------------------------------

// One covariance to write: its tensor name, width, token count per matrix, and the weights
// whose input it is.
struct CovarianceSpec {
  std::string name;
  uint64_t n = 0;
  std::vector<uint64_t> counts;  // n_mat entries (>= 1)
  std::vector<std::string> weights;
};

struct CovarianceMeta {
  uint32_t chunk_count = 0, chunk_size = 0;
  std::vector<std::string> datasets;
};

// Fills `out` (n * n floats) with matrix m of covariance `spec_index`: E[x xᵀ] (zeros when
// its count is 0).
using CovarianceFill = std::function<void(size_t spec_index, uint32_t m, std::span<float> out)>;

// File size (bytes) write_covariance() will produce for `specs`.
uint64_t covariance_file_bytes(const std::vector<CovarianceSpec>& specs,
                               const CovarianceMeta& meta);

// Writes the covariance file atomically, streaming one n x n matrix at a time through `fill`.
// Errors: an empty spec list, a spec without matrices or weights, a weight listed twice, the
// target existing without `overwrite`, any I/O error (nothing is left behind).
Status write_covariance(const std::string& path, const std::vector<CovarianceSpec>& specs,
                        const CovarianceMeta& meta, const CovarianceFill& fill,
                        bool overwrite = false);

}  // namespace qforge
