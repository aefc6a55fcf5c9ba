// safetensors checkpoints: one file, or shards listed in model.safetensors.index.json. Files are
// memory-mapped and tensor bytes are used in place (zero-copy). Headers are untrusted input:
// the header length is checked against the file size, every entry's dtype, shape and data
// offsets are validated (offsets inside the data section, byte size == element size x element
// count with overflow checks, no two tensors overlapping, no duplicate names), before anything
// is read. Every known safetensors dtype is accepted at this level so that headers validate
// completely; whether a dtype can be converted is the consumer's decision (see
// SafetensorsTensor::type, set only for F32, F16 and BF16).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "io/mapped_file.h"

namespace qforge {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written in the header: "BF16", "F32", "I64", ...
  std::optional<Type> type;     // F32 / F16 / BF16; nullopt for dtypes qforge cannot convert
  std::vector<uint64_t> shape;  // numpy order (shape.back() is the innermost dimension)
  uint64_t begin = 0, end = 0;  // byte range relative to the file's data section
  size_t file = 0;              // index into SafetensorsCheckpoint::files()
  uint64_t n_elements() const;
  uint64_t n_bytes() const { return end - begin; }
};

// One parsed and validated safetensors file (header only; data stays in the mapping).
class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  // Parses a file image owned by the caller (tests, fuzzers); `name` is used in errors.
  static Result<SafetensorsFile> parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& path() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t data_offset() const { return data_offset_; }
  std::span<const uint8_t> data(const SafetensorsTensor& t) const {
    return bytes_.subspan(data_offset_ + t.begin, t.n_bytes());
  }
  // Drops the tensor's pages from the resident set.
  void release(const SafetensorsTensor& t) const;

 private:
  std::shared_ptr<MappedFile> map_;
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint folder: model.safetensors, or the shards named by
// model.safetensors.index.json (every listed shard must exist, every tensor of the weight map
// must be in the shard it names, a name must not occur in two shards).
class SafetensorsCheckpoint {
 public:
  static Result<SafetensorsCheckpoint> open_dir(const std::string& dir);
  // A checkpoint made of the given files (in order); names must be unique across files.
  static Result<SafetensorsCheckpoint> open_files(const std::vector<std::string>& paths);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Tensors of all files in file order, then header order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  std::span<const uint8_t> data(const SafetensorsTensor& t) const { return files_[t.file].data(t); }
  void release(const SafetensorsTensor& t) const { files_[t.file].release(t); }
  // The file that holds a tensor (for messages).
  const std::string& file_of(const SafetensorsTensor& t) const { return files_[t.file].path(); }

 private:
  Status index_tensors();
  std::vector<SafetensorsFile> files_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// Element size in bytes of a safetensors dtype name; nullopt when unknown.
std::optional<uint32_t> safetensors_dtype_size(std::string_view dtype);

}  // namespace qforge
