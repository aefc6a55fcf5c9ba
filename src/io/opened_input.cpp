#include "io/opened_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include "core/fault.h"
#include "io/dir_lock.h"
#include "io/sha256.h"

namespace qforge {
namespace {

using Identity = std::tuple<uint64_t, uint64_t, uint64_t, int64_t, int64_t>;

// Digests verified in this process, by file identity (an in-place rewrite changes mtime/ctime).
std::mutex g_cache_mu;
std::map<Identity, std::string>& digest_cache() {
  static std::map<Identity, std::string> c;
  return c;
}

int64_t ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "is a directory";
  if (S_ISFIFO(m)) return "is a FIFO, not a regular file (refused)";
  if (S_ISSOCK(m)) return "is a socket, not a regular file (refused)";
  if (S_ISCHR(m) || S_ISBLK(m)) return "is a device, not a regular file (refused)";
  return "is not a regular file (refused)";
}

Result<std::string> real_path_of(int fd, const std::string& path) {
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n > 0 && buf[0] == '/') return std::string(buf, static_cast<size_t>(n));
  // No /proc: resolve the name and require that it still is this descriptor's file.
  if (!realpath(path.c_str(), buf))
    return make_error(path, ": cannot resolve: ", std::strerror(errno));
  struct stat a, b;
  if (fstat(fd, &a) != 0 || stat(buf, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
    return make_error(path, ": changed while being opened (refused)");
  return std::string(buf);
}

Status check_allowed(const std::string& path, const std::string& real, const std::string& allowed) {
  char dir[PATH_MAX];
  if (!realpath(allowed.c_str(), dir))
    return make_error(allowed, ": allowed directory does not exist");
  std::string d = dir;
  if (d != "/" &&
      !(real.size() > d.size() && real.compare(0, d.size(), d) == 0 && real[d.size()] == '/'))
    return make_error(path, ": refused: resolves to ", real, ", outside the allowed directory ", d);
  return ok_status();
}

}  // namespace

Result<OpenedInput> OpenedInput::open(const std::string& path) {
  return open(path, load_policy());
}

Result<OpenedInput> OpenedInput::open(const std::string& path, const LoadPolicy& policy) {
  namespace fs = std::filesystem;
  if (path.empty()) return make_error("input path is empty");
  OpenedInput in;
  in.path_ = path;
  const std::string base = fs::path(path).filename().string();
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  {
    const DirLock lock(dir, DirLock::Mode::Shared);
    const int at = lock.fd() >= 0 && !base.empty() ? lock.fd() : AT_FDCWD;
    const std::string rel = at == AT_FDCWD ? path : base;
    in.fd_ = ::openat(at, rel.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (in.fd_ < 0) return make_error(path, ": cannot open: ", std::strerror(errno));
    struct stat st;
    if (fstat(in.fd_, &st) != 0) return make_error(path, ": cannot stat: ", std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return make_error(path, ": ", kind_of(st.st_mode));
    fcntl(in.fd_, F_SETFL, fcntl(in.fd_, F_GETFL) & ~O_NONBLOCK);
    in.size_ = static_cast<uint64_t>(st.st_size);
    in.dev_ = st.st_dev;
    in.ino_ = st.st_ino;
    in.mtime_ns_ = ns(st.st_mtim);
    in.ctime_ns_ = ns(st.st_ctim);
    const std::string side = at == AT_FDCWD ? sidecar_path(path) : sidecar_path(base);
    QF_TRY(in.sidecar_present_, read_sidecar_text(at, side, sidecar_path(path), in.sidecar_text_));
  }
  QF_TRY(in.real_, real_path_of(in.fd_, path));
  if (!policy.allowed_dir.empty()) QF_CHECK(check_allowed(path, in.real_, policy.allowed_dir));
  fault_point("input.opened");
  if (in.sidecar_present_ && policy.verify_sidecar) {
    QF_CHECK(in.verify_sidecar());
  } else if (!in.sidecar_present_ && policy.require_checksum) {
    return make_error(sidecar_path(path), ": no checksum sidecar (run `qforge checksum ", path,
                      "`)");
  }
  fault_point("input.verified");
  return in;
}

OpenedInput::~OpenedInput() {
  if (fd_ >= 0) ::close(fd_);
}

OpenedInput::OpenedInput(OpenedInput&& o) noexcept {
  *this = std::move(o);
}

OpenedInput& OpenedInput::operator=(OpenedInput&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    real_ = std::move(o.real_);
    sidecar_text_ = std::move(o.sidecar_text_);
    digest_ = std::move(o.digest_);
    sidecar_present_ = o.sidecar_present_;
    fd_ = o.fd_;
    size_ = o.size_;
    dev_ = o.dev_;
    ino_ = o.ino_;
    mtime_ns_ = o.mtime_ns_;
    ctime_ns_ = o.ctime_ns_;
    o.fd_ = -1;
  }
  return *this;
}

Status OpenedInput::check_unchanged(const char* when) const {
  struct stat st;
  if (fstat(fd_, &st) != 0) return make_error(path_, ": cannot stat: ", std::strerror(errno));
  // Not ctime: renaming or unlinking the path (which cannot change what this descriptor reads)
  // updates it too.
  if (static_cast<uint64_t>(st.st_size) != size_ || ns(st.st_mtim) != mtime_ns_)
    return make_error(path_, ": modified ", when, " (refused)");
  return ok_status();
}

Result<std::string> OpenedInput::sha256() {
  if (!digest_.empty()) return digest_;
  const Identity id{dev_, ino_, size_, mtime_ns_, ctime_ns_};
  {
    std::lock_guard<std::mutex> g(g_cache_mu);
    auto it = digest_cache().find(id);
    if (it != digest_cache().end()) return digest_ = it->second;
  }
  QF_TRY(std::string hex, sha256_fd(fd_, path_));
  QF_CHECK(check_unchanged("while its checksum was computed"));
  std::lock_guard<std::mutex> g(g_cache_mu);
  digest_cache()[id] = hex;
  return digest_ = hex;
}

Status OpenedInput::verify_sidecar() {
  const std::string sp = sidecar_path(path_);
  if (!sidecar_present_)
    return make_error(sp, ": no checksum sidecar (run `qforge checksum ", path_, "`)");
  QF_TRY(std::string want,
         parse_sidecar(sidecar_text_, sp, std::filesystem::path(path_).filename().string()));
  QF_TRY(std::string got, sha256());
  if (want != got)
    return make_error(path_, ": SHA-256 mismatch (sidecar ", want.substr(0, 16), "…, file ",
                      got.substr(0, 16), "…): the file is corrupt or was modified");
  return ok_status();
}

Result<std::string> OpenedInput::read_text() const {
  std::string out(static_cast<size_t>(size_), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(path_, ": read error: ", std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != out.size()) return make_error(path_, ": modified while being read (refused)");
  return out;
}

}  // namespace qforge
