// matmul throughput per weight type and ISA level on refmodel-sized matrices.
//
//   matmul_bench [--threads N] [--types F16,Q8_0,...] [--isa
//   generic,avx2,avx512,avx512vnni,avx512bf16] [--quick]
//
// For every type and ISA it prints GFLOP/s (2 flops per multiply-add) of one-token calls (tg)
// and 512-token calls (pp) on the shapes of refmodel (rows x cols: 512x512, 256x512, 1536x512,
// 512x1536, 8192x512), and the tokens/s the matmuls alone of a refmodel forward pass would
// allow (6 layers of q,k,v,o,gate,up,down plus the output matrix), an upper bound for the
// engine's pp512 / tg figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "core/types.h"
#include "kernels/codec.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"

using namespace qforge;

namespace {

struct Shape {
  int64_t rows, cols, per_token;  // per_token: how many such matrices a refmodel token uses
};
// refmodel: 6 layers x (q 512x512, k 256x512, v 256x512, o 512x512, gate/up 1536x512,
// down 512x1536) + output 8192x512.
const Shape kShapes[] = {
    {512, 512, 12}, {256, 512, 12}, {1536, 512, 12}, {512, 1536, 6}, {8192, 512, 1}};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// Seconds per call, best of a few repetitions of enough calls to last ~min_time.
double time_call(const std::function<void()>& fn, double min_time) {
  fn();  // warm-up (also grows scratch buffers)
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    int n = 0;
    const double t0 = now_s();
    double t;
    do {
      fn();
      ++n;
      t = now_s() - t0;
    } while (t < min_time);
    best = std::min(best, t / n);
  }
  return best;
}

// Stand-in F32 codec while the codec table has none (plain copies and dots).
void f32_quantize(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  std::memcpy(dst, src, sizeof(float) * nrows * n);
}
void f32_dequantize(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, sizeof(float) * n);
}
void f32_dot(int64_t n, float* out, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  *out = s;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  bool quick = false;
  std::vector<std::string> type_names = {"F16",  "Q8_0", "Q4_K", "Q6_K",   "Q5_K",
                                         "Q4_0", "Q3_K", "Q2_K", "IQ4_NL", "IQ4_XS",
                                         "Q5_0", "Q5_1", "Q4_1", "BF16",   "F32"};
  std::vector<Isa> isas;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--types" && i + 1 < argc)
      type_names = split(argv[++i]);
    else if (a == "--quick")
      quick = true;
    else if (a == "--isa" && i + 1 < argc) {
      for (auto& n : split(argv[++i])) isas.push_back(parse_isa(n).value_or(Isa::Generic));
    } else {
      std::fprintf(stderr,
                   "usage: matmul_bench [--threads N] [--types T,...] [--isa "
                   "generic,avx2,avx512,avx512vnni,avx512bf16] "
                   "[--quick]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (isas.empty())
    for (int l = 0; l <= static_cast<int>(detected_isa()); ++l) isas.push_back(Isa(l));
  ThreadPool pool(threads);
  const double min_time = quick ? 0.05 : 0.3;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 1.f);

  std::printf(
      "# matmul_bench: %d threads; GFLOP/s per shape (rows x cols), tg = 1 token, "
      "pp = 512 tokens; tok/s = refmodel matmuls only\n",
      threads);
  std::printf("%-7s %-7s %-3s", "type", "isa", "");
  for (const auto& s : kShapes)
    std::printf(" %9s", (std::to_string(s.rows) + "x" + std::to_string(s.cols)).c_str());
  std::printf(" %9s\n", "tok/s");

  for (const auto& tn : type_names) {
    auto t = type_from_name(tn);
    if (!t) {
      std::fprintf(stderr, "unknown type %s\n", tn.c_str());
      continue;
    }
    Codec ref = reference_codecs()[static_cast<size_t>(*t)];
    if (*t == Type::F32 && !ref.dequantize)
      ref = Codec{Type::F32, f32_quantize, f32_dequantize, Type::F32, f32_dot};
    if (!ref.quantize || !ref.dequantize) {
      std::printf("%-7s (no codec yet)\n", tn.c_str());
      continue;
    }
    for (Isa isa : isas) {
      CodecTable tab = reference_codecs();
      register_simd_codecs(tab, static_cast<int>(isa));
      if (!tab[static_cast<size_t>(*t)].dequantize) tab[static_cast<size_t>(*t)] = ref;
      const Codec& wc = tab[static_cast<size_t>(*t)];
      const Codec* xc =
          wc.vec_dot_type == Type::F32 ? nullptr : &tab[static_cast<size_t>(wc.vec_dot_type)];
      for (int64_t nt : {int64_t(1), int64_t(512)}) {
        std::printf("%-7s %-7s %-3s", tn.c_str(), std::string(isa_name(isa)).c_str(),
                    nt == 1 ? "tg" : "pp");
        double token_time = 0;
        for (const auto& s : kShapes) {
          std::vector<float> wf(s.rows * s.cols);
          for (auto& v : wf) v = nd(rng) * 0.05f;
          std::vector<uint8_t> wq(*row_size(*t, s.cols) * s.rows);
          ref.quantize(wf.data(), wq.data(), s.rows, s.cols, QuantizeOptions{});
          std::vector<float> x(nt * s.cols), y(nt * s.rows);
          for (auto& v : x) v = nd(rng);
          const double sec = time_call(
              [&] {
                matmul_isa(isa, wc, xc, wq.data(), s.rows, s.cols, x.data(), nt, y.data(), pool);
              },
              min_time);
          std::printf(" %9.1f", 2.0 * s.rows * s.cols * nt / sec * 1e-9);
          token_time += sec / nt * s.per_token;
        }
        std::printf(" %9.0f\n", 1.0 / token_time);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
