// SHA-256 throughput (issue #2: >= 1 GB/s): in memory (Sha256 over a buffer) and on a file
// (sha256_file: pread in 4 MiB blocks, the path every sidecar check takes). The file pass is
// run twice; the second, from the page cache, is what verify sees right after a write.
//   sha256_bench [--mib N] [--dir DIR]     (defaults: 1024 MiB, $TMPDIR or /tmp)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/sha256.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1024;
  std::string dir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  if (mib == 0) mib = 1;
  const size_t chunk = 64ull << 20;
  std::vector<uint8_t> buf(chunk);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 2654435761u >> 13);

  // In memory: hash `mib` MiB by streaming the same 64 MiB buffer.
  const size_t total = mib << 20;
  qforge::Sha256 h;
  h.update(buf);  // warm-up (page faults, OpenSSL dispatch)
  (void)h.hex_digest();
  auto t0 = std::chrono::steady_clock::now();
  for (size_t done = 0; done < total; done += chunk)
    h.update({buf.data(), std::min(chunk, total - done)});
  std::string d = h.hex_digest();
  double mem_s = seconds_since(t0);
  std::printf("sha256 in memory: %zu MiB in %.3f s = %.2f GB/s (%s...)\n", mib, mem_s,
              total / mem_s / 1e9, d.substr(0, 12).c_str());

  // On a file written through AtomicFile (no sidecar), hashed twice with sha256_file.
  std::string path = dir + "/qforge-sha256-bench-" + std::to_string(getpid()) + ".bin";
  {
    qforge::AtomicFileOptions o;
    o.write_sidecar = false;
    auto f = qforge::AtomicFile::create(path, o);
    if (!f.ok()) {
      std::fprintf(stderr, "sha256_bench: %s\n", f.error().message.c_str());
      return 1;
    }
    for (size_t done = 0; done < total; done += chunk) {
      auto st = f->write(buf.data(), std::min(chunk, total - done));
      if (!st.ok()) {
        std::fprintf(stderr, "sha256_bench: %s\n", st.error().message.c_str());
        return 1;
      }
    }
    if (auto st = f->commit(); !st.ok()) {
      std::fprintf(stderr, "sha256_bench: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  int rc = 0;
  for (int pass = 1; pass <= 2; ++pass) {
    t0 = std::chrono::steady_clock::now();
    auto fd = qforge::sha256_file(path);
    double s = seconds_since(t0);
    if (!fd.ok()) {
      std::fprintf(stderr, "sha256_bench: %s\n", fd.error().message.c_str());
      rc = 1;
      break;
    }
    std::printf("sha256 of a %zu MiB file (pass %d%s): %.3f s = %.2f GB/s%s\n", mib, pass,
                pass == 2 ? ", page cache" : "", s, total / s / 1e9,
                *fd == d ? "" : "  DIGEST MISMATCH");
    if (*fd != d) rc = 1;
  }
  std::filesystem::remove(path);
  return rc;
}
