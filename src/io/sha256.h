// SHA-256 through OpenSSL's libcrypto (EVP), streamed with bounded memory, and the
// `sha256sum`-compatible sidecar files ("HEX  NAME\n" in NAME.sha256 beside NAME).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace qforge {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::span<const uint8_t> bytes);
  void update(const void* p, size_t n) { update({static_cast<const uint8_t*>(p), n}); }
  // Lower-case hex digest; the object is reset afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::span<const uint8_t> bytes);
// Streams the file through SHA-256 with pread in 4 MiB blocks (RSS stays bounded).
Result<std::string> sha256_file(const std::string& path);

// Path of the sidecar for a file: path + ".sha256".
std::string sidecar_path(const std::string& path);
// Writes the sidecar atomically ("HEX  BASENAME\n"), replacing an older sidecar of the file.
Status write_sidecar(const std::string& path, const std::string& hex);
// Reads the digest recorded in the sidecar of `path`. Error if missing or malformed.
Result<std::string> read_sidecar(const std::string& path);
// Recomputes the file's digest and compares it with its sidecar; the error says which.
Status verify_sidecar(const std::string& path);

}  // namespace qforge
