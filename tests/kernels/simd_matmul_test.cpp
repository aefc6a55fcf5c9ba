// matmul at every ISA level against the double-precision reference (matmul_reference on the
// same weights), for every type with a reference codec, on shapes that exercise the tails of
// the GEMM panels (rows not a multiple of the panel height, token counts not a multiple of the
// panel width, K split into blocks) and both paths (one token: vec_dot on converted
// activations; batches: dequantized tiles + micro-kernel). Also: results are identical across
// thread counts and repeated calls.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/codec.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"

namespace qforge {
namespace {

struct Case {
  int64_t rows, cols, tokens;
};

std::vector<Type> types_with_codecs() {
  std::vector<Type> out;
  for (const Codec& c : reference_codecs())
    if (c.quantize && c.dequantize && c.type != Type::Q8_K) out.push_back(c.type);
  return out;
}

// Relative error bound of one output, given sum |w*x| over its row: the batched path is f32
// with f32 activations; the one-token path quantizes activations to the vec_dot type (8 bits
// for Q8_0/Q8_K: error up to half a step of the activation scale per element).
double tolerance(const Codec& c, int64_t tokens, double mag, double wabs_sum_x_amax) {
  if (tokens >= 8 || c.vec_dot_type == Type::F32) return 2e-5 * mag + 1e-6;
  if (c.vec_dot_type == Type::F16 || c.vec_dot_type == Type::BF16) return 1e-2 * mag + 1e-6;
  return wabs_sum_x_amax / 127.0 + 2e-5 * mag + 1e-6;
}

TEST(SimdMatmul, MatchesReferenceAtEveryIsa) {
  const auto types = types_with_codecs();
  if (types.empty()) GTEST_SKIP() << "no reference codecs registered yet";
  ThreadPool pool(2);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  // 200 and 1100 columns (float types only): K blocks that are not a multiple of the
  // packer's 16-wide tiles (1100 = 512 + 512 + 76).
  const Case cases[] = {{37, 256, 1}, {70, 512, 13}, {33, 1280, 29}, {16, 256, 3},
                        {50, 256, 8}, {20, 512, 7},  {19, 200, 9},   {21, 1100, 10}};
  for (Type t : types) {
    const int64_t bs = type_info(t).block_size;
    for (const Case& cs : cases) {
      if (cs.cols % bs) continue;
      std::vector<float> wf(cs.rows * cs.cols), x(cs.tokens * cs.cols);
      for (auto& v : wf) v = nd(rng) * 0.1f;
      for (auto& v : x) v = nd(rng);
      std::vector<uint8_t> wq(*row_size(t, cs.cols) * cs.rows);
      const Codec& ref = reference_codecs()[static_cast<size_t>(t)];
      ref.quantize(wf.data(), wq.data(), cs.rows, cs.cols, QuantizeOptions{});
      std::vector<float> deq(wf.size());
      ref.dequantize(wq.data(), deq.data(), static_cast<int64_t>(deq.size()));
      std::vector<float> want(cs.tokens * cs.rows);
      matmul_reference(t, wq.data(), cs.rows, cs.cols, x.data(), cs.tokens, want.data());
      for (int level = 0; level <= static_cast<int>(detected_isa()); ++level) {
        const Isa isa = static_cast<Isa>(level);
        CodecTable tab = reference_codecs();
        register_simd_codecs(tab, level);
        const Codec& wc = tab[static_cast<size_t>(t)];
        const Codec* xc =
            wc.vec_dot_type == Type::F32 ? nullptr : &tab[static_cast<size_t>(wc.vec_dot_type)];
        std::vector<float> got(want.size(), NAN);
        matmul_isa(isa, wc, xc, wq.data(), cs.rows, cs.cols, x.data(), cs.tokens, got.data(), pool);
        for (int64_t tk = 0; tk < cs.tokens; ++tk) {
          double xamax = 0;
          for (int64_t c = 0; c < cs.cols; ++c)
            xamax = std::max(xamax, double(std::fabs(x[tk * cs.cols + c])));
          for (int64_t r = 0; r < cs.rows; ++r) {
            double mag = 0, wsum = 0;
            for (int64_t c = 0; c < cs.cols; ++c) {
              mag += std::fabs(double(deq[r * cs.cols + c]) * x[tk * cs.cols + c]);
              wsum += std::fabs(double(deq[r * cs.cols + c]));
            }
            ASSERT_NEAR(got[tk * cs.rows + r], want[tk * cs.rows + r],
                        tolerance(wc, cs.tokens, mag, wsum * xamax))
                << type_name(t) << " at " << isa_name(isa) << ", " << cs.rows << "x" << cs.cols
                << ", " << cs.tokens << " tokens, token " << tk << " row " << r;
          }
        }
      }
    }
  }
}

TEST(SimdMatmul, DeterministicAcrossThreadCounts) {
  const Codec* c = find_codec(Type::F16);
  if (!c) GTEST_SKIP() << "no F16 codec registered yet";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t rows = 200, cols = 1536;
  std::vector<float> wf(rows * cols);
  for (auto& v : wf) v = nd(rng);
  std::vector<uint8_t> wq(*row_size(Type::F16, cols) * rows);
  c->quantize(wf.data(), wq.data(), rows, cols, QuantizeOptions{});
  for (int64_t tokens : {int64_t(1), int64_t(2), int64_t(40)}) {
    std::vector<float> x(tokens * cols);
    for (auto& v : x) v = nd(rng);
    std::vector<float> y1(tokens * rows), y2(y1.size()), y3(y1.size());
    ThreadPool p1(1), p2(2);
    matmul(*c, wq.data(), rows, cols, x.data(), tokens, y1.data(), p1);
    matmul(*c, wq.data(), rows, cols, x.data(), tokens, y2.data(), p2);
    matmul(*c, wq.data(), rows, cols, x.data(), tokens, y3.data(), p2);
    EXPECT_EQ(y1, y2) << tokens << " tokens";
    EXPECT_EQ(y2, y3) << tokens << " tokens";
  }
}

}  // namespace
}  // namespace qforge
