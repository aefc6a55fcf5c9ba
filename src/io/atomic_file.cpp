#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/fault.h"
#include "core/interrupt.h"
#include "io/dir_lock.h"

namespace qforge {
namespace {

constexpr uint64_t kSidecarReserve = 4096;  // one block for NAME.sha256
constexpr uint64_t kSlack = 64 << 10;       // metadata, the sidecar, rounding

std::string dir_of(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}
std::string base_of(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}
std::string temp_prefix(const std::string& target) {
  return "." + base_of(target) + ".qforge-tmp.";
}

int sweep(const std::string& target) {
  std::string dir = dir_of(target), prefix = temp_prefix(target);
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    // The name carries the writer's pid: a live writer's temp is never touched, even in the
    // instant between its creation and its lock (a sweep that locked first would unlink it).
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && (pid == getpid() || kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM))
      continue;
    std::string full = dir + "/" + name;
    int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    // A live writer holds an exclusive lock; a killed one's lock died with it.
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (unlink(full.c_str()) == 0) ++removed;
    }
    ::close(fd);
  }
  closedir(d);
  return removed;
}

// Creates a fresh, locked temp file for `target`, registered for removal on interrupt.
Status open_temp(const std::string& target, std::string& tmp, int& fd, int& slot) {
  static std::atomic<unsigned> counter{0};
  const std::string stem = dir_of(target) + "/" + temp_prefix(target) + std::to_string(getpid());
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = stem + "." + std::to_string(counter.fetch_add(1));
    slot = track_temp_file(tmp);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0) break;
    int e = errno;
    untrack_temp_file(slot);
    slot = -1;
    if (e != EEXIST) {
      errno = e;
      break;
    }
  }
  if (fd < 0) return make_error(target, ": cannot create temporary file: ", std::strerror(errno));
  flock(fd, LOCK_EX | LOCK_NB);
  return ok_status();
}

// Reserves blocks without changing the size; file systems without fallocate are skipped.
Status preallocate(int fd, uint64_t bytes, const std::string& path) {
  if (bytes == 0) return ok_status();
  if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes)) == 0) return ok_status();
  int e = errno;
  if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) return ok_status();
  return make_error(path, ": cannot reserve ", bytes, " bytes: ", std::strerror(e));
}

}  // namespace

int remove_stale_temps(const std::string& target) {
  return sweep(target) + sweep(sidecar_path(target));
}

Result<AtomicFile> AtomicFile::create(const std::string& path, AtomicFileOptions opts) {
  if (path.empty()) return make_error("output path is empty");
  struct stat st;
  std::string dir = dir_of(path);
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(path, ": output directory ", dir, " does not exist");
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return make_error(path, ": output path is a directory");
    if (!opts.overwrite) return make_error(path, ": already exists (use --force to overwrite)");
  }
  remove_stale_temps(path);
  AtomicFile f;
  f.path_ = path;
  f.opts_ = std::move(opts);
  QF_CHECK(open_temp(path, f.tmp_, f.fd_, f.slot_));
  if (fault_point("atomic.create")) return f.fail("cannot create temporary file", ENOSPC).error();
  f.data_ = std::make_unique<WriteBehind>(f.fd_);
  return f;
}

AtomicFile::~AtomicFile() {
  abort();
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept {
  *this = std::move(o);
}

AtomicFile& AtomicFile::operator=(AtomicFile&& o) noexcept {
  if (this != &o) {
    abort();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    side_tmp_ = std::move(o.side_tmp_);
    digest_ = std::move(o.digest_);
    opts_ = std::move(o.opts_);
    fd_ = o.fd_;
    side_fd_ = o.side_fd_;
    slot_ = o.slot_;
    side_slot_ = o.side_slot_;
    committed_ = o.committed_;
    written_ = o.written_;
    reserved_ = o.reserved_;
    data_ = std::move(o.data_);
    o.fd_ = o.side_fd_ = -1;
    o.slot_ = o.side_slot_ = -1;
    o.committed_ = true;  // moved-from: nothing to clean up
  }
  return *this;
}

void AtomicFile::abort() {
  data_.reset();  // the buffer in flight is written before its descriptor closes
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    if (!committed_) unlink(tmp_.c_str());
  }
  untrack_temp_file(slot_);
  slot_ = -1;
  if (side_fd_ >= 0) {
    ::close(side_fd_);
    side_fd_ = -1;
    unlink(side_tmp_.c_str());
  }
  untrack_temp_file(side_slot_);
  side_slot_ = -1;
}

Status AtomicFile::fail(const char* what, int err) {
  abort();
  return make_error(path_, ": ", what, ": ", std::strerror(err));
}

Status AtomicFile::open_sidecar_temp() {
  if (side_fd_ >= 0 || !opts_.write_sidecar) return ok_status();
  Status st = open_temp(sidecar_path(path_), side_tmp_, side_fd_, side_slot_);
  if (!st.ok()) abort();
  return st;
}

Status AtomicFile::reserve(uint64_t bytes) {
  if (fd_ < 0) return make_error(path_, ": reserve after close");
  const std::string dir = dir_of(path_);
  struct statvfs vfs;
  if (fstatvfs(fd_, &vfs) == 0) {
    const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < bytes + kSlack) {
      abort();
      char need[32], have[32];
      std::snprintf(need, sizeof need, "%.1f", (bytes + kSlack) / 1048576.0);
      std::snprintf(have, sizeof have, "%.1f", avail / 1048576.0);
      return make_error(path_, ": not enough free space in ", dir, ": the output needs ", need,
                        " MiB, ", have, " MiB available (nothing was written)");
    }
  }
  Status st = preallocate(fd_, bytes, path_);
  if (st.ok()) st = open_sidecar_temp();
  if (st.ok() && side_fd_ >= 0) st = preallocate(side_fd_, kSidecarReserve, sidecar_path(path_));
  if (!st.ok()) {
    abort();
    return st;
  }
  reserved_ = bytes;
  return ok_status();
}

Status AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) return make_error(path_, ": write after close");
  if (fault_point("atomic.write")) return fail("write failed", ENOSPC);
  written_ += n;
  if (const int e = data_->append(data, n); e != 0) return fail("write failed", e);
  return ok_status();
}

Status AtomicFile::write_zeros(size_t n) {
  static const uint8_t zeros[256] = {};
  while (n > 0) {
    size_t take = std::min<size_t>(n, sizeof zeros);
    QF_CHECK(write(zeros, take));
    n -= take;
  }
  return ok_status();
}

Status AtomicFile::write_sidecar_temp() {
  QF_CHECK(open_sidecar_temp());
  const std::string line = digest_ + "  " + base_of(path_) + "\n";
  const std::string sp = sidecar_path(path_);
  if (fault_point("atomic.sidecar_write")) {
    abort();
    return make_error(sp, ": write failed: ", std::strerror(ENOSPC));
  }
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(side_fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      abort();
      return make_error(sp, ": write failed: ", std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (ftruncate(side_fd_, static_cast<off_t>(line.size())) != 0 || fsync(side_fd_) != 0) {
    int e = errno;
    abort();
    return make_error(sp, ": fsync failed: ", std::strerror(e));
  }
  return ok_status();
}

Status AtomicFile::commit() {
  if (fd_ < 0) return make_error(path_, ": commit after close");
  if (const int e = data_->finish(); e != 0) return fail("write failed", e);
  // Blocks reserved past the end are given back (the size itself never changed).
  if (reserved_ > written_ && ftruncate(fd_, static_cast<off_t>(written_)) != 0)
    return fail("truncate failed", errno);
  if (fsync(fd_) != 0) return fail("fsync failed", errno);
  digest_ = data_->hex_digest();
  if (opts_.write_sidecar) QF_CHECK(write_sidecar_temp());
  if (fault_point("atomic.before_rename")) return fail("cannot rename temporary file", EIO);
  return publish();
}

// Both renames under the directory lock, with interrupts held until both are done.
Status AtomicFile::publish() {
  CommitSection hold;
  const DirLock lock(dir_of(path_), DirLock::Mode::Exclusive);
  if (opts_.before_publish) {
    Status st = opts_.before_publish();
    if (!st.ok()) {
      abort();
      return st;
    }
  }
  int rc = opts_.overwrite
               ? rename(tmp_.c_str(), path_.c_str())
               : renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
  if (rc != 0) {
    int e = errno;
    abort();
    if (e == EEXIST) return make_error(path_, ": already exists (use --force to overwrite)");
    return make_error(path_, ": cannot rename temporary file: ", std::strerror(e));
  }
  committed_ = true;
  untrack_temp_file(slot_);
  slot_ = -1;
  ::close(fd_);
  fd_ = -1;
  fault_point("atomic.between_renames");
  if (side_fd_ >= 0) {
    const std::string sp = sidecar_path(path_);
    if (rename(side_tmp_.c_str(), sp.c_str()) != 0) {
      int e = errno;
      abort();
      return make_error(sp, ": cannot rename temporary file (", path_,
                        " was written; run `qforge checksum` on it): ", std::strerror(e));
    }
    untrack_temp_file(side_slot_);
    side_slot_ = -1;
    ::close(side_fd_);
    side_fd_ = -1;
  }
  if (lock.fd() >= 0) fsync(lock.fd());  // the renames reach the disk
  fault_point("atomic.committed");
  return ok_status();
}

}  // namespace qforge
