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
// Streams the file through SHA-256 with pread in 4 MiB blocks (RSS stays bounded). Only regular
// files are read (a FIFO is refused, not waited on); no load policy is applied.
Result<std::string> sha256_file(const std::string& path);
// Same, on an open descriptor; `name` is used in errors.
Result<std::string> sha256_fd(int fd, const std::string& name);

// Path of the sidecar for a file: path + ".sha256".
std::string sidecar_path(const std::string& path);
// Parses a sidecar's text: one line "HEX  NAME" or "HEX *NAME" (or the bare digest). A NAME
// whose last component is not `file_name` is refused: the sidecar belongs to another file.
Result<std::string> parse_sidecar(const std::string& text, const std::string& sidecar,
                                  const std::string& file_name);
// Writes the sidecar atomically ("HEX  BASENAME\n"), replacing an older sidecar of the file.
// It is published under the directory lock that file writers use, so it never replaces the
// sidecar of a newer file written meanwhile: when `expect_ino` is non-zero the file must still
// be that inode (else the write is refused).
Status write_sidecar(const std::string& path, const std::string& hex, uint64_t expect_dev = 0,
                     uint64_t expect_ino = 0);
// Reads the sidecar `name` relative to `dirfd` (AT_FDCWD: a path) into `text`: a regular file
// of at most 64 KiB, not a symlink (O_NOFOLLOW). Returns false when it does not exist.
Result<bool> read_sidecar_text(int dirfd, const std::string& name, const std::string& shown,
                               std::string& text);
// Reads the digest recorded in the sidecar of `path`. Error if missing, malformed or naming
// another file.
Result<std::string> read_sidecar(const std::string& path);
// Opens the file (no other policy), recomputes its digest and compares it with its sidecar.
Status verify_sidecar(const std::string& path);

}  // namespace qforge
