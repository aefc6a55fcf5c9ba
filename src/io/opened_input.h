// An input file opened exactly once. Everything that decides whether the file may be used is
// done on this one descriptor, so swapping the path (mv -f, a symlink to elsewhere) between the
// check and the use has no effect:
//  - opened read-only with O_NONBLOCK (a FIFO cannot block the open) and refused unless fstat
//    says it is a regular file (FIFOs, devices, sockets, directories);
//  - its real path is read from /proc/self/fd/N and checked against policy.allowed_dir;
//  - its .sha256 sidecar (opened O_NOFOLLOW beside the path, read under a shared lock on the
//    directory so a concurrent writer's file+sidecar pair is seen whole) must name the file and
//    match the SHA-256 of this descriptor; size and mtime before and after hashing must agree (a
//    file rewritten in place while it is verified is refused);
//  - MappedFile::map and read_text() then use the same descriptor.
// A verified digest is remembered per (device, inode, size, mtime, ctime) so that a second
// open of an unchanged file in the same process does not hash it again.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "io/load_policy.h"

namespace qforge {

class OpenedInput {
 public:
  static Result<OpenedInput> open(const std::string& path);  // the process-wide policy
  static Result<OpenedInput> open(const std::string& path, const LoadPolicy& policy);
  OpenedInput() = default;
  ~OpenedInput();
  OpenedInput(OpenedInput&& o) noexcept;
  OpenedInput& operator=(OpenedInput&& o) noexcept;
  OpenedInput(const OpenedInput&) = delete;
  OpenedInput& operator=(const OpenedInput&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& real_path() const { return real_; }
  uint64_t size() const { return size_; }
  // True when a sidecar was present (read at open; verified there unless --no-verify).
  bool has_sidecar() const { return sidecar_present_; }
  // SHA-256 (hex) of the descriptor's content; hashed at most once.
  Result<std::string> sha256();
  // Whole content (small files: configs, tokenizers, texts); bounded by the file size.
  Result<std::string> read_text() const;
  // Compares the sidecar read at open with the descriptor's content: the error says which
  // differs (or that the sidecar is missing, malformed or names another file).
  Status verify_sidecar();

 private:
  Status check_unchanged(const char* when) const;
  std::string path_, real_, sidecar_text_, digest_;
  bool sidecar_present_ = false;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t dev_ = 0, ino_ = 0;
  int64_t mtime_ns_ = 0, ctime_ns_ = 0;
};

}  // namespace qforge
