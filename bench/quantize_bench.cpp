// Quantization throughput and peak memory (issue #3, acceptance 3).
//
//   quantize_bench [--model F16.gguf] [--mixes Q8_0,Q4_K_M,Q6_K] [--threads 1,2]
//                  [--modes default,ggml] [--synthetic] [--synthetic-only] [--keep] [--tmp DIR]
//                  [--synthetic-shape LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB]
//
// Each measurement runs in a forked child (whole process, like llama-quantize's timings in
// ANCHORS.md): it opens the input, quantizes it to DIR and exits; the parent reports wall time,
// input MB/s (tensor bytes of the input / wall seconds), CPU time and the child's peak RSS
// (ru_maxrss from wait4, the figure /usr/bin/time -v prints) next to the streaming bound
// 3 x largest tensor as f32 + 64 MiB. --synthetic also generates a ~2 GB F16 llama model with
// real shapes (16 layers, hidden 2048, ffn 8192, 32/8 heads, vocab 8192; --synthetic-shape for
// others) in DIR, measures it (the last --threads value; all of them with --synthetic-only),
// and deletes it (unless --keep). Default model: ../shared/reference/refmodel-f16.gguf.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/quant/synthetic_gguf.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "formats/tensor_source.h"
#include "quant/model_quantizer.h"

namespace {

using namespace qforge;
namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

struct Measure {
  bool ok = false;
  double wall = 0, user = 0, sys = 0;
  long max_rss_kb = 0;
  uint64_t out_bytes = 0;
};

Measure run_child(const std::string& in, const std::string& out, const std::string& mix,
                  int threads, bool ggml) {
  Measure m;
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    set_log_level(LogLevel::Warn);
    auto f = GgufFile::open(in);
    if (!f.ok()) {
      std::fprintf(stderr, "%s\n", f.error().message.c_str());
      _exit(1);
    }
    GgufTensorSource src(std::make_shared<const GgufFile>(std::move(f).value()));
    ModelQuantizeOptions o;
    o.mix = mix;
    o.threads = threads;
    o.ggml_compatible = ggml;
    o.overwrite = true;
    auto r = quantize_model(src, out, o);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  m.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  m.user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  m.sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  m.max_rss_kb = ru.ru_maxrss;
  std::error_code ec;
  m.out_bytes = m.ok ? fs::file_size(out, ec) : 0;
  return m;
}

void bench_model(const std::string& label, const std::string& in, const std::string& tmp,
                 const std::vector<std::string>& mixes, const std::vector<int>& threads,
                 const std::vector<std::string>& modes) {
  auto f = GgufFile::open(in);
  if (!f.ok()) {
    std::fprintf(stderr, "%s\n", f.error().message.c_str());
    return;
  }
  uint64_t max_f32 = 0;
  for (const auto& t : f->tensors()) max_f32 = std::max(max_f32, t.n_elements() * 4);
  const double bound_mb = (3.0 * max_f32 + 64.0 * 1048576) / 1e6;
  const double in_mb = f->tensor_data_bytes() / 1e6;
  std::printf(
      "\n%s: %s, %.1f MB of tensor data, %zu tensors; RSS bound 3 x %.1f MB + 64 MiB = %.1f MB\n",
      label.c_str(), in.c_str(), in_mb, f->tensors().size(), max_f32 / 1e6, bound_mb);
  std::printf(
      "| mix | mode | threads | wall s | input MB/s | cpu s | peak RSS MB | output bytes |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  const std::string out = tmp + "/qforge-bench-out-" + std::to_string(getpid()) + ".gguf";
  for (const auto& mix : mixes)
    for (const auto& mode : modes)
      for (int t : threads) {
        Measure m = run_child(in, out, mix, t, mode == "ggml");
        if (!m.ok) {
          std::printf("| %s | %s | %d | failed | | | | |\n", mix.c_str(), mode.c_str(), t);
          continue;
        }
        std::printf("| %s | %s | %d | %.2f | %.1f | %.2f | %.1f | %llu |\n", mix.c_str(),
                    mode.c_str(), t, m.wall, in_mb / m.wall, m.user + m.sys,
                    m.max_rss_kb * 1024 / 1e6, static_cast<unsigned long long>(m.out_bytes));
        std::fflush(stdout);
      }
  std::error_code ec;
  fs::remove(out, ec);
  fs::remove(out + ".sha256", ec);
}

}  // namespace

int main(int argc, char** argv) {
  // ../shared beside the repository (this file is <repo>/bench/quantize_bench.cpp), or
  // $QFORGE_SHARED_DIR.
  std::string shared =
      (fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared").string();
  if (const char* e = std::getenv("QFORGE_SHARED_DIR")) shared = e;
  std::string model = shared + "/reference/refmodel-f16.gguf";
  std::string tmp = "/tmp";
  std::vector<std::string> mixes = {"Q8_0", "Q4_K_M", "Q6_K"};
  std::vector<std::string> modes = {"default", "ggml"};
  std::vector<int> threads = {1, 2};
  bool synthetic = false, synthetic_only = false, keep = false;
  // layers, hidden, ffn, heads, kv heads, vocab of the synthetic model (default: ~1B, 2 GB F16)
  std::vector<int> shape = {16, 2048, 8192, 32, 8, 8192};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model")
      model = next();
    else if (a == "--mixes")
      mixes = split(next());
    else if (a == "--modes")
      modes = split(next());
    else if (a == "--threads") {
      threads.clear();
      for (const auto& t : split(next())) threads.push_back(std::atoi(t.c_str()));
    } else if (a == "--tmp")
      tmp = next();
    else if (a == "--synthetic")
      synthetic = true;
    else if (a == "--synthetic-shape") {
      shape.clear();
      for (const auto& v : split(next())) shape.push_back(std::atoi(v.c_str()));
      if (shape.size() != 6) {
        std::fprintf(stderr, "--synthetic-shape wants LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB\n");
        return 2;
      }
    } else if (a == "--keep")
      keep = true;
    else if (a == "--synthetic-only")
      synthetic = synthetic_only = true;
    else {
      std::fprintf(stderr,
                   "usage: quantize_bench [--model F16.gguf] [--mixes A,B] [--threads 1,2] "
                   "[--modes default,ggml] [--synthetic|--synthetic-only] [--synthetic-shape "
                   "L,H,F,HEADS,KV,VOCAB] [--keep] "
                   "[--tmp DIR]\n");
      return 2;
    }
  }
  if (!synthetic_only) {
    if (fs::exists(model))
      bench_model("model", model, tmp, mixes, threads, modes);
    else
      std::printf("skipping %s (not present)\n", model.c_str());
  }
  if (synthetic) {
    test::SyntheticModel sm;
    sm.n_layer = shape[0];
    sm.hidden = shape[1];
    sm.ffn = shape[2];
    sm.n_head = shape[3];
    sm.n_head_kv = shape[4];
    sm.vocab = shape[5];
    const std::string path = tmp + "/qforge-bench-synthetic-" + std::to_string(getpid()) + ".gguf";
    const auto t0 = std::chrono::steady_clock::now();
    Status st = test::write_synthetic_gguf(path, sm, true);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 1;
    }
    std::printf("\ngenerated %s (%llu bytes) in %.1f s\n", path.c_str(),
                static_cast<unsigned long long>(fs::file_size(path)),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::vector<int> t2 = {threads.back()};
    bench_model("synthetic", path, tmp, mixes, synthetic_only ? threads : t2, modes);
    if (keep) {
      std::printf("kept %s (delete it when done)\n", path.c_str());
    } else {
      std::error_code ec;
      fs::remove(path, ec);
      fs::remove(path + ".sha256", ec);
    }
  }
  return 0;
}
