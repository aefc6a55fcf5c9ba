// Read-only memory-mapped file. Tensor data is used in place (zero-copy); release() drops the
// pages of a range from this process's resident set once a streaming pass is done with them,
// so peak RSS does not grow with model size.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"

namespace qforge {

class OpenedInput;

class MappedFile {
 public:
  MappedFile() = default;
  // Opens `path` under the process-wide load policy (io/opened_input.h) and maps it.
  static Result<MappedFile> open(const std::string& path);
  // Maps the already opened (and checked) descriptor: what was verified is what is mapped.
  static Result<MappedFile> map(const OpenedInput& in);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Advises the kernel that [offset, offset+len) is no longer needed (MADV_DONTNEED on whole
  // pages inside the range). Safe on any range; clamps to the file.
  void release(uint64_t offset, uint64_t len) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Reads a whole (small) file into a string: config and tokenizer files, token lists. Opened
// under the process-wide load policy (regular files only, allowed directory, sidecar).
Result<std::string> read_file_text(const std::string& path);

}  // namespace qforge
