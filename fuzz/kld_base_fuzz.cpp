// libFuzzer target for the KLD base reader (qforge's own format, eval/kld.h): the input is the
// whole file, written to a private tmpfs file each run (the reader streams from a path). Any
// file must open or give a non-empty one-line error; an open base must then yield every record
// or a clean error when compared against uniform logits, and what it yields must be finite (a
// corrupt record must not turn into a NaN or infinite KLD).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/kld.h"

namespace {

namespace fs = std::filesystem;

// A private file in tmpfs, removed at exit.
struct WorkFile {
  std::string path;
  WorkFile() {
    std::error_code ec;
    fs::path base =
        fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    path = (base / ("qforge-fuzz-kld-" + std::to_string(::getpid()) + ".bin")).string();
  }
  ~WorkFile() { std::remove(path.c_str()); }
};

const std::string& work_file() {
  static const WorkFile file;
  return file.path;
}

template <class R>
bool failed_cleanly(const R& r) {
  if (r.ok()) return false;
  const auto& m = r.error().message;
  if (m.empty() || m.find('\n') != std::string::npos) std::abort();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(work_file().c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  auto c = qforge::KldComparer::open(work_file());
  if (failed_cleanly(c)) return 0;
  const auto& h = c->header();
  // The file holds exactly the announced records, so a large vocabulary cannot come from a
  // small input; the check only keeps a pathological header from costing memory here.
  const uint64_t n_records = uint64_t{h.n_chunks} * h.n_scored;
  if (h.n_vocab > (1u << 16) || n_records > 4096) return 0;
  if (!c->check_compatible(h.n_vocab, h.n_ctx, h.tokens_sha256, h.n_chunks).ok()) std::abort();
  std::vector<float> logits(h.n_vocab, 0.0f);
  const int32_t target = static_cast<int32_t>(size % h.n_vocab);
  for (uint64_t i = 0; i < n_records; ++i)
    if (failed_cleanly(c->add(logits.data(), &target, 1))) return 0;
  if (!failed_cleanly(c->add(logits.data(), &target, 1))) std::abort();  // one past the end
  const auto r = c->finish();
  if (r.n_tokens != static_cast<int64_t>(n_records)) std::abort();
  for (double v : {r.kld_mean, r.kld_mean_err, r.kld_median, r.kld_p90, r.kld_p99, r.kld_max,
                   r.same_top_pct, r.rms_dp_pct})
    if (!std::isfinite(v)) std::abort();
  return 0;
}
