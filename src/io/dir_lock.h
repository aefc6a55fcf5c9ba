// The lock that pairs a file with its sidecar: writers hold a directory's flock exclusively while
// they rename a file and its .sha256 into place; readers hold it shared while they open both, so
// a reader never sees a new file with an old sidecar (or the reverse).
#pragma once

#include <string>

namespace qforge {

// flock(2) on a directory for the lifetime of the object. Best effort: a directory that cannot
// be opened is not locked (the callers' checks still refuse a mismatched pair).
class DirLock {
 public:
  enum class Mode { Shared, Exclusive };
  DirLock(const std::string& dir, Mode mode);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  // The directory's descriptor (-1 when it could not be opened), for openat(2) inside it.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace qforge
