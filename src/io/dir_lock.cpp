#include "io/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace qforge {

DirLock::DirLock(const std::string& dir, Mode mode) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int op = mode == Mode::Shared ? LOCK_SH : LOCK_EX;
  if (fd_ >= 0)
    while (flock(fd_, op) != 0 && errno == EINTR) {
    }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace qforge
