#include "io/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/atomic_file.h"
#include "io/mapped_file.h"

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

Result<std::string> sha256_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(path, ": cannot open: ", std::strerror(errno));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<uint8_t> buf(4 << 20);
  Sha256 h;
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return make_error(path, ": read error: ", std::strerror(e));
    }
    if (n == 0) break;
    h.update({buf.data(), static_cast<size_t>(n)});
    off += n;
  }
  ::close(fd);
  return h.hex_digest();
}

std::string sidecar_path(const std::string& path) { return path + ".sha256"; }

Status write_sidecar(const std::string& path, const std::string& hex) {
  std::string name = std::filesystem::path(path).filename().string();
  std::string line = hex + "  " + name + "\n";
  AtomicFileOptions opt;
  opt.overwrite = true;
  opt.write_sidecar = false;
  QF_TRY(AtomicFile f, AtomicFile::create(sidecar_path(path), opt));
  QF_CHECK(f.write(line.data(), line.size()));
  return f.commit();
}

Result<std::string> read_sidecar(const std::string& path) {
  std::string sp = sidecar_path(path);
  auto text = read_file_text(sp);
  if (!text) return make_error(sp, ": no checksum sidecar (run `qforge checksum ", path, "`)");
  const std::string& t = *text;
  if (t.size() < 64) return make_error(sp, ": malformed checksum sidecar");
  for (int i = 0; i < 64; ++i) {
    char c = t[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return make_error(sp, ": malformed checksum sidecar");
  }
  std::string hex = t.substr(0, 64);
  for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return hex;
}

Status verify_sidecar(const std::string& path) {
  QF_TRY(std::string want, read_sidecar(path));
  QF_TRY(std::string got, sha256_file(path));
  if (want != got)
    return make_error(path, ": SHA-256 mismatch (sidecar ", want.substr(0, 16), "…, file ",
                      got.substr(0, 16), "…): the file is corrupt or was modified");
  return ok_status();
}

}  // namespace qforge
