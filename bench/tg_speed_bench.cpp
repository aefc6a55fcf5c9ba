// One-token matmul speed on a real-size model (issue #12): the weight matrices of a llama
// model of the given shape (default the 1.1 B synthetic one: 16 layers, 2048/8192, GQA 32/8,
// vocab 32000), held in memory as separate buffers far larger than the last-level cache, are
// multiplied by one activation vector each in the order of a forward pass — the weight stream
// of token generation without the rest of the engine. Prints the weight bytes read per token,
// the time per token and the read rate (GB/s), to compare with bench/bandwidth_bench.
//
//   tg_speed_bench [--threads 2] [--types Q8_0,Q4_K_M,F16] [--isa avx2] [--tokens 8]
//                  [--shape LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB] [--single-core]
//
// Q4_K_M means llama.cpp's mix for these tensors: Q4_K, with Q6_K for the output and for
// attn_v / ffn_down in the layers where the mix spends more bits (the first and last eighth
// and every third layer between). --single-core also prints the rate of each
// tensor kind on one thread with the data in cache (the kernel's compute ceiling).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

struct Matrix {
  Type type;
  int64_t rows, cols;
  std::vector<uint8_t> data;
};

// A matrix of `type`: 16 rows quantized from random data by the reference codec, repeated
// (the contents do not matter for speed, only that they decode to finite values).
Matrix make_matrix(Type type, int64_t rows, int64_t cols, std::mt19937& rng) {
  Matrix m{type, rows, cols, {}};
  const uint64_t rs = *row_size(type, cols);
  const int64_t seed_rows = std::min<int64_t>(16, rows);
  std::normal_distribution<float> nd(0.f, 0.05f);
  std::vector<float> src(seed_rows * cols);
  for (auto& v : src) v = nd(rng);
  std::vector<uint8_t> seed(rs * seed_rows);
  reference_codecs()[static_cast<size_t>(type)].quantize(src.data(), seed.data(), seed_rows, cols,
                                                         QuantizeOptions{});
  m.data.resize(rs * rows);
  for (int64_t r = 0; r < rows; r += seed_rows)
    std::memcpy(m.data.data() + r * rs, seed.data(),
                rs * static_cast<uint64_t>(std::min(seed_rows, rows - r)));
  return m;
}

struct Shape {
  int64_t layers = 16, hidden = 2048, ffn = 8192, heads = 32, kv_heads = 8, vocab = 32000;
};

// Type of each tensor kind for a mix name (a plain type name: every tensor of that type).
struct Mix {
  Type attn, more, ffn, output;  // more: attn_v / ffn_down where the mix spends more bits
  bool mixed = false;
};

bool mix_for(const std::string& name, Mix& m) {
  if (name == "Q4_K_M") {
    m = {Type::Q4_K, Type::Q6_K, Type::Q4_K, Type::Q6_K, true};
    return true;
  }
  auto t = type_from_name(name);
  if (!t || !reference_codecs()[static_cast<size_t>(*t)].quantize) return false;
  m = {*t, *t, *t, *t, false};
  return true;
}

// The layers where llama.cpp's Q4_K_M uses Q6_K for attn_v and ffn_down.
bool more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, tokens = 8;
  bool single_core = false;
  std::vector<std::string> mixes = {"Q8_0", "Q4_K_M", "F16"};
  Isa isa = active_isa();
  Shape sh;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--types" && i + 1 < argc) {
      mixes = split(argv[++i]);
    } else if (a == "--tokens" && i + 1 < argc) {
      tokens = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--single-core") {
      single_core = true;
    } else if (a == "--isa" && i + 1 < argc) {
      const std::string n = argv[++i];
      isa = parse_isa(n).value_or(Isa::Generic);
      if (static_cast<int>(isa) > static_cast<int>(detected_isa())) isa = detected_isa();
    } else if (a == "--shape" && i + 1 < argc) {
      const auto v = split(argv[++i]);
      if (v.size() != 6) {
        std::fprintf(stderr, "--shape needs LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB\n");
        return 2;
      }
      sh = {std::atoll(v[0].c_str()), std::atoll(v[1].c_str()), std::atoll(v[2].c_str()),
            std::atoll(v[3].c_str()), std::atoll(v[4].c_str()), std::atoll(v[5].c_str())};
    } else {
      std::fprintf(stderr,
                   "usage: tg_speed_bench [--threads N] [--types Q8_0,Q4_K_M,F16] [--isa LEVEL] "
                   "[--tokens N] [--shape L,H,F,HEADS,KV,VOCAB] [--single-core]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  ThreadPool pool(threads);
  std::printf("# tg_speed_bench: %d threads, isa %s, %lld layers %lld/%lld, heads %lld/%lld\n",
              threads, std::string(isa_name(isa)).c_str(), static_cast<long long>(sh.layers),
              static_cast<long long>(sh.hidden), static_cast<long long>(sh.ffn),
              static_cast<long long>(sh.heads), static_cast<long long>(sh.kv_heads));
  std::printf("%-8s %10s %10s %8s %9s\n", "type", "MB/token", "ms/token", "GB/s", "tok/s max");
  std::mt19937 rng(42);
  for (const auto& name : mixes) {
    Mix mix;
    if (!mix_for(name, mix)) {
      std::fprintf(stderr, "unknown type or mix %s\n", name.c_str());
      continue;
    }
    CodecTable tab = reference_codecs();
    register_simd_codecs(tab, static_cast<int>(isa));
    const int64_t H = sh.hidden, KV = H / sh.heads * sh.kv_heads, F = sh.ffn;
    std::vector<Matrix> ms;
    for (int64_t l = 0; l < sh.layers; ++l) {
      const Type more = mix.mixed && !more_bits(l, sh.layers) ? mix.attn : mix.more;
      ms.push_back(make_matrix(mix.attn, H, H, rng));   // q
      ms.push_back(make_matrix(mix.attn, KV, H, rng));  // k
      ms.push_back(make_matrix(more, KV, H, rng));      // v
      ms.push_back(make_matrix(mix.attn, H, H, rng));   // o
      ms.push_back(make_matrix(mix.ffn, F, H, rng));    // gate
      ms.push_back(make_matrix(mix.ffn, F, H, rng));    // up
      ms.push_back(make_matrix(more, H, F, rng));       // down
    }
    ms.push_back(make_matrix(mix.output, sh.vocab, H, rng));
    uint64_t bytes = 0;
    for (const auto& m : ms) bytes += m.data.size();
    std::vector<float> x(F), y(std::max(F, sh.vocab));
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto& v : x) v = nd(rng);
    auto token = [&] {
      for (const auto& m : ms) {
        const Codec& wc = tab[static_cast<size_t>(m.type)];
        const Codec* xc =
            wc.vec_dot_type == Type::F32 ? nullptr : &tab[static_cast<size_t>(wc.vec_dot_type)];
        matmul_isa(isa, wc, xc, m.data.data(), m.rows, m.cols, x.data(), 1, y.data(), pool);
      }
    };
    token();  // warm-up
    double best = 1e30;
    for (int t = 0; t < tokens; ++t) {
      const double t0 = now_s();
      token();
      best = std::min(best, now_s() - t0);
    }
    std::printf("%-8s %10.1f %10.2f %8.2f %9.2f\n", name.c_str(), bytes * 1e-6, best * 1e3,
                bytes / best * 1e-9, 1.0 / best);
    std::fflush(stdout);
    if (single_core) {
      // Compute ceiling: one thread, one small matrix of each kind in cache.
      ThreadPool one(1);
      for (Type t : {mix.attn, mix.more}) {
        const Matrix m = make_matrix(t, 128, H, rng);
        const Codec& wc = tab[static_cast<size_t>(t)];
        const Codec* xc =
            wc.vec_dot_type == Type::F32 ? nullptr : &tab[static_cast<size_t>(wc.vec_dot_type)];
        // Best of many short calls: on a shared machine the minimum is the kernel's own time.
        double sec = 1e30;
        const double t_end = now_s() + 0.3;
        while (now_s() < t_end) {
          const double t0 = now_s();
          matmul_isa(isa, wc, xc, m.data.data(), m.rows, m.cols, x.data(), 1, y.data(), one);
          sec = std::min(sec, now_s() - t0);
        }
        std::printf("  %-6s in cache, 1 thread: %6.2f GB/s\n", std::string(type_name(t)).c_str(),
                    m.data.size() / sec * 1e-9);
      }
    }
  }
  return 0;
}
