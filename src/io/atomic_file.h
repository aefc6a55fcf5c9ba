// Atomic output files. Data goes to a hidden temp file beside the target
// (".NAME.qforge-tmp.PID.N"), fsync'd; on commit() the sidecar (NAME.sha256) is written to its
// own temp and fsync'd too, and only then are both renamed into place, the file first, under an
// exclusive flock on the directory (readers take it shared while they open a file and its
// sidecar), with SIGINT/SIGTERM/SIGHUP held for those two renames. So a failure at any point
// before the renames (disk full, a signal, a crash) leaves the previous file and sidecar pair
// untouched, and two concurrent --force writers publish whole pairs one after the other. No lock
// file exists: the lock is on the directory itself. On any error, on an interrupt signal
// (core/interrupt.h), or if the writer is destroyed without commit(), the temp files are
// removed. A writer killed with SIGKILL leaves its temps behind; the next AtomicFile for the
// same target removes such stale temps (they are flock'ed while alive). A SIGKILL (or power
// loss) exactly between the two renames leaves the new file beside the old sidecar: loads then
// refuse it (sidecar mismatch), they never use it silently.
// An existing target is never replaced unless options.overwrite (the CLI's --force).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "io/write_behind.h"

namespace qforge {

struct AtomicFileOptions {
  bool overwrite = false;     // replace an existing target (--force)
  bool write_sidecar = true;  // write NAME.sha256 beside the target on commit
  // Runs under the directory lock just before the renames; an error aborts the commit.
  std::function<Status()> before_publish = nullptr;
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

  // Checks, before any data is written, that the file system has room for `bytes` (plus the
  // sidecar) and reserves it where the file system can (fallocate, size unchanged), so that a
  // nearly full disk fails here, with a clear message, instead of in the middle of the write.
  Status reserve(uint64_t bytes);
  Status write(const void* data, size_t n);
  Status write_zeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // Flushes and fsyncs the data, writes and fsyncs the sidecar temp, renames both into place,
  // fsyncs the directory.
  Status commit();
  // Removes the temp files now (also done by the destructor when not committed).
  void abort();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  // SHA-256 (hex) of everything written; valid after commit().
  const std::string& sha256() const { return digest_; }

 private:
  Status open_sidecar_temp();
  Status write_sidecar_temp();
  Status publish();
  Status fail(const char* what, int err);
  std::string path_, tmp_, side_tmp_, digest_;
  AtomicFileOptions opts_;
  int fd_ = -1, side_fd_ = -1;
  int slot_ = -1, side_slot_ = -1;  // interrupt registry slots (core/interrupt.h)
  bool committed_ = false;
  uint64_t written_ = 0, reserved_ = 0;
  std::unique_ptr<WriteBehind> data_;  // hashes and writes the data behind the caller
};

// Removes stale temp files of `target` (and of its sidecar) left by killed writers; returns how
// many were removed.
int remove_stale_temps(const std::string& target);

}  // namespace qforge
