#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace qforge {
namespace {

constexpr size_t kBufSize = 1 << 20;

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

}  // namespace

int remove_stale_temps(const std::string& target) {
  std::string dir = dir_of(target), prefix = temp_prefix(target);
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    std::string full = dir + "/" + name;
    int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
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
  static std::atomic<unsigned> counter{0};
  AtomicFile f;
  f.path_ = path;
  f.opts_ = opts;
  for (int attempt = 0; attempt < 100; ++attempt) {
    f.tmp_ = dir + "/" + temp_prefix(path) + std::to_string(getpid()) + "." +
             std::to_string(counter.fetch_add(1));
    f.fd_ = ::open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f.fd_ >= 0 || errno != EEXIST) break;
  }
  if (f.fd_ < 0) return make_error(path, ": cannot create temporary file: ", std::strerror(errno));
  flock(f.fd_, LOCK_EX | LOCK_NB);
  f.buf_.resize(kBufSize);
  return f;
}

AtomicFile::~AtomicFile() { abort(); }

AtomicFile::AtomicFile(AtomicFile&& o) noexcept { *this = std::move(o); }

AtomicFile& AtomicFile::operator=(AtomicFile&& o) noexcept {
  if (this != &o) {
    abort();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    digest_ = std::move(o.digest_);
    opts_ = o.opts_;
    fd_ = o.fd_;
    committed_ = o.committed_;
    written_ = o.written_;
    buf_ = std::move(o.buf_);
    buf_used_ = o.buf_used_;
    hash_ = std::move(o.hash_);
    o.fd_ = -1;
    o.committed_ = true;  // moved-from: nothing to clean up
  }
  return *this;
}

void AtomicFile::abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    if (!committed_) unlink(tmp_.c_str());
  }
}

Status AtomicFile::flush() {
  size_t off = 0;
  while (off < buf_used_) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_used_ - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      abort();
      return make_error(path_, ": write failed: ", std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  buf_used_ = 0;
  return ok_status();
}

Status AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) return make_error(path_, ": write after close");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  hash_.update(p, n);
  written_ += n;
  while (n > 0) {
    size_t take = std::min(n, buf_.size() - buf_used_);
    std::memcpy(buf_.data() + buf_used_, p, take);
    buf_used_ += take;
    p += take;
    n -= take;
    if (buf_used_ == buf_.size()) QF_CHECK(flush());
  }
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

Status AtomicFile::commit() {
  if (fd_ < 0) return make_error(path_, ": commit after close");
  QF_CHECK(flush());
  if (fsync(fd_) != 0) {
    int e = errno;
    abort();
    return make_error(path_, ": fsync failed: ", std::strerror(e));
  }
  int rc;
  if (opts_.overwrite) {
    rc = rename(tmp_.c_str(), path_.c_str());
  } else {
    rc = renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
  }
  if (rc != 0) {
    int e = errno;
    abort();
    if (e == EEXIST) return make_error(path_, ": already exists (use --force to overwrite)");
    return make_error(path_, ": cannot rename temporary file: ", std::strerror(e));
  }
  committed_ = true;
  ::close(fd_);
  fd_ = -1;
  int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  digest_ = hash_.hex_digest();
  if (opts_.write_sidecar) {
    auto st = write_sidecar(path_, digest_);
    if (!st.ok()) {
      // The sidecar is part of the output contract: without it, remove the output too.
      unlink(path_.c_str());
      return st;
    }
  }
  return ok_status();
}

}  // namespace qforge
