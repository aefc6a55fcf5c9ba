#include "io/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/atomic_file.h"
#include "io/opened_input.h"

namespace qforge {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  Impl() {
    ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const uint8_t> bytes) {
  if (!bytes.empty()) EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size());
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

Result<std::string> sha256_fd(int fd, const std::string& name) {
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<uint8_t> buf(4 << 20);
  Sha256 h;
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(name, ": read error: ", std::strerror(errno));
    }
    if (n == 0) break;
    h.update({buf.data(), static_cast<size_t>(n)});
    off += n;
  }
  return h.hex_digest();
}

Result<std::string> sha256_file(const std::string& path) {
  LoadPolicy raw;
  raw.verify_sidecar = false;
  QF_TRY(OpenedInput in, OpenedInput::open(path, raw));
  return in.sha256();
}

std::string sidecar_path(const std::string& path) {
  return path + ".sha256";
}

Result<bool> read_sidecar_text(int dirfd, const std::string& name, const std::string& shown,
                               std::string& text) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    if (errno == ELOOP) return make_error(shown, ": checksum sidecar is a symbolic link (refused)");
    return make_error(shown, ": cannot open checksum sidecar: ", std::strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 10)) {
    ::close(fd);
    return make_error(shown, ": malformed checksum sidecar (not a small regular file)");
  }
  text.assign(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  return true;
}

Result<std::string> parse_sidecar(const std::string& text, const std::string& sidecar,
                                  const std::string& file_name) {
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() < 64) return make_error(sidecar, ": malformed checksum sidecar");
  for (int i = 0; i < 64; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(line[i])))
      return make_error(sidecar, ": malformed checksum sidecar");
  std::string hex = line.substr(0, 64);
  for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest = line.substr(64);
  if (rest.find_first_not_of(" \t") == std::string::npos) return hex;  // bare digest
  // sha256sum: two separators, the second '*' in binary mode.
  if (rest.size() < 3 || rest[0] != ' ' || (rest[1] != ' ' && rest[1] != '*'))
    return make_error(sidecar, ": malformed checksum sidecar");
  std::string named = rest.substr(2);
  std::string base = std::filesystem::path(named).filename().string();
  if (base != file_name)
    return make_error(sidecar, ": checksum sidecar names '", named, "', not '", file_name,
                      "' (it belongs to another file)");
  return hex;
}

Status write_sidecar(const std::string& path, const std::string& hex, uint64_t expect_dev,
                     uint64_t expect_ino) {
  std::string name = std::filesystem::path(path).filename().string();
  std::string line = hex + "  " + name + "\n";
  AtomicFileOptions opt;
  opt.overwrite = true;
  opt.write_sidecar = false;
  if (expect_ino != 0)
    opt.before_publish = [path, expect_dev, expect_ino]() -> Status {
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_ino) != expect_ino ||
          static_cast<uint64_t>(st.st_dev) != expect_dev)
        return make_error(path, ": replaced while its checksum was computed; sidecar not written");
      return ok_status();
    };
  QF_TRY(AtomicFile f, AtomicFile::create(sidecar_path(path), opt));
  QF_CHECK(f.write(line.data(), line.size()));
  return f.commit();
}

Result<std::string> read_sidecar(const std::string& path) {
  std::string sp = sidecar_path(path), text;
  QF_TRY(bool present, read_sidecar_text(AT_FDCWD, sp, sp, text));
  if (!present) return make_error(sp, ": no checksum sidecar (run `qforge checksum ", path, "`)");
  return parse_sidecar(text, sp, std::filesystem::path(path).filename().string());
}

Status verify_sidecar(const std::string& path) {
  LoadPolicy raw;
  raw.verify_sidecar = false;
  QF_TRY(OpenedInput in, OpenedInput::open(path, raw));
  return in.verify_sidecar();
}

}  // namespace qforge
