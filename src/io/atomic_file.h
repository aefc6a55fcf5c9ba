// Atomic output files. Data goes to a hidden temp file beside the target
// (".NAME.qforge-tmp.PID.N"), which is fsync'd and renamed over the target only on commit();
// on any error, or if the writer is destroyed without commit(), the temp file is removed and an
// existing target is untouched. A writer killed with SIGKILL leaves its temp file behind; the
// next AtomicFile for the same target removes such stale temps (they are flock'ed while alive).
// An existing target is never replaced unless options.overwrite (the CLI's --force).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "io/sha256.h"

namespace qforge {

struct AtomicFileOptions {
  bool overwrite = false;     // replace an existing target (--force)
  bool write_sidecar = true;  // write NAME.sha256 beside the target on commit
};

class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::string& path, AtomicFileOptions opts = {});
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(AtomicFile&& o) noexcept;
  AtomicFile& operator=(AtomicFile&& o) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status write(const void* data, size_t n);
  Status write_zeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // Flushes, fsyncs, renames onto the target, fsyncs the directory, writes the sidecar.
  Status commit();
  // Removes the temp file now (also done by the destructor when not committed).
  void abort();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  // SHA-256 (hex) of everything written; valid after commit().
  const std::string& sha256() const { return digest_; }

 private:
  Status flush();
  std::string path_, tmp_, digest_;
  AtomicFileOptions opts_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
  std::vector<uint8_t> buf_;
  size_t buf_used_ = 0;
  Sha256 hash_;
};

// Removes stale temp files of `target` left by killed writers; returns how many were removed.
int remove_stale_temps(const std::string& target);

}  // namespace qforge
