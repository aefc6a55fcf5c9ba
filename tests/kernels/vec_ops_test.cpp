// Every vector op (kernels/vec_ops.h) at every ISA level this CPU has, against a
// double-precision oracle computed here, on lengths that exercise the vector bodies and the
// scalar tails. Budgets: sums may differ by the float rounding of n additions (n * 2^-24 of
// the sum of magnitudes); exp-based ops by the ~2e-7 relative error of the polynomial exp.
// The generic level (the scalar reference) is held to the same budgets, and each level is
// also compared with it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/vec_ops.h"

namespace qforge {
namespace {

constexpr double kEps = 5.97e-8;  // 2^-24: one float rounding
const int64_t kLengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 4096};

std::vector<float> random_vec(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<Isa> levels() {
  std::vector<Isa> out;
  for (int l = 0; l <= static_cast<int>(detected_isa()); ++l) out.push_back(static_cast<Isa>(l));
  return out;
}

std::string where(Isa isa, int64_t n) {
  return std::string(isa_name(isa)) + " n=" + std::to_string(n);
}

TEST(VecOps, ActiveTableIsTheActiveLevels) {
  EXPECT_EQ(vec_ops().dot, vec_ops(active_isa()).dot);
  EXPECT_EQ(vec_ops().qk_scores4, vec_ops(active_isa()).qk_scores4);
  if (detected_isa() >= Isa::Avx2) {
    EXPECT_NE(vec_ops(Isa::Avx2).dot, vec_ops(Isa::Generic).dot);
  }
}

TEST(VecOps, DotAxpyMaxAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t n : kLengths) {
      const auto a = random_vec(n, -2, 2, 1), b = random_vec(n, -2, 2, 2);
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i], mag += std::fabs(a[i] * b[i]);
      EXPECT_NEAR(o.dot(a.data(), b.data(), n), ref, (n + 1) * kEps * mag + 1e-30) << where(isa, n);
      EXPECT_NEAR(o.dot(a.data(), b.data(), n), vec_ops(Isa::Generic).dot(a.data(), b.data(), n),
                  2 * (n + 1) * kEps * mag + 1e-30)
          << where(isa, n);

      auto y = random_vec(n, -1, 1, 3);
      const auto y0 = y;
      o.axpy(0.75f, a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], y0[i] + 0.75 * a[i], 2 * kEps * (std::fabs(y0[i]) + 2)) << where(isa, n);

      float want = -INFINITY;
      for (float x : a) want = std::max(want, x);
      EXPECT_EQ(o.max_of(a.data(), n), want) << where(isa, n);
    }
  }
}

TEST(VecOps, ExpOpsAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t n : kLengths) {
      const auto x0 = random_vec(n, -30, 5, 4);
      const float m = o.max_of(x0.data(), n);
      auto x = x0;
      const float sum = o.exp_sub_sum(x.data(), n, m);
      double ref_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        // The ops subtract in float (as callers pass m = max, the rounding is theirs too).
        const double e = std::exp(double(x0[i] - m));
        ref_sum += e;
        ASSERT_NEAR(x[i], e, 1e-6 * e + 1e-37) << where(isa, n) << " i=" << i;
      }
      EXPECT_NEAR(sum, ref_sum, (1e-6 + (n + 1) * kEps) * ref_sum) << where(isa, n);
      EXPECT_NEAR(o.sum_exp_sub(x0.data(), n, m), ref_sum, 1e-6 * ref_sum) << where(isa, n);

      auto g = random_vec(n, -20, 20, 5);
      const auto g0 = g, u = random_vec(n, -3, 3, 6);
      o.swiglu(g.data(), u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = g0[i] / (1.0 + std::exp(-double(g0[i]))) * u[i];
        ASSERT_NEAR(g[i], want, 2e-6 * std::fabs(want) + 1e-30) << where(isa, n) << " i=" << i;
      }
    }
  }
}

TEST(VecOps, RmsNormAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t n : kLengths) {
      if (n == 0) continue;
      const auto x = random_vec(n, -3, 3, 7), w = random_vec(n, 0.5f, 1.5f, 8);
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      const double scale = 1.0 / std::sqrt(ss / n + 1e-5);
      std::vector<float> y(static_cast<size_t>(n));
      o.rms_norm(x.data(), w.data(), n, 1e-5f, y.data());
      auto inplace = x;
      o.rms_norm(inplace.data(), w.data(), n, 1e-5f, inplace.data());
      for (int64_t i = 0; i < n; ++i) {
        const double want = x[i] * scale * w[i];
        ASSERT_NEAR(y[i], want, (n + 8) * kEps * std::fabs(want) + 1e-30) << where(isa, n);
        ASSERT_EQ(inplace[i], y[i]) << where(isa, n);
      }
    }
  }
}

TEST(VecOps, AttentionScoresAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t hd : {8, 16, 64, 80, 128})
      for (int64_t n_kv : {1, 15, 16, 17, 50}) {
        const int64_t ks = (n_kv + 15) / 16 * 16 + 16;
        const auto kt = random_vec(hd * ks, -1, 1, 9), qs = random_vec(4 * hd, -1, 1, 10);
        const float* q[4] = {qs.data(), qs.data() + hd, qs.data() + 2 * hd, qs.data() + 3 * hd};
        std::vector<float> out(static_cast<size_t>(4 * ks), NAN);
        const float scale = 0.125f;
        o.qk_scores4(q, kt.data(), ks, hd, n_kv, scale, out.data());
        for (int i = 0; i < 4; ++i)
          for (int64_t j = 0; j < n_kv; ++j) {
            double s = 0, mag = 0;
            for (int64_t d = 0; d < hd; ++d) {
              s += double(q[i][d]) * kt[d * ks + j];
              mag += std::fabs(q[i][d] * kt[d * ks + j]);
            }
            ASSERT_NEAR(out[i * ks + j], s * scale, (hd + 2) * kEps * mag * scale)
                << where(isa, n_kv) << " hd=" << hd << " i=" << i << " j=" << j;
          }
      }
  }
}

TEST(VecOps, WeightedValuesAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t hd : {8, 16, 32, 64, 80, 128})
      for (int64_t n_kv : {1, 7, 33}) {
        const auto w = random_vec(n_kv, 0, 1, 11), v = random_vec(n_kv * hd, -2, 2, 12);
        const float inv = 0.3f;
        std::vector<float> out(static_cast<size_t>(hd), NAN);
        o.weighted_values(w.data(), v.data(), n_kv, hd, inv, out.data());
        for (int64_t d = 0; d < hd; ++d) {
          double s = 0, mag = 0;
          for (int64_t j = 0; j < n_kv; ++j) {
            s += double(w[j]) * v[j * hd + d];
            mag += std::fabs(w[j] * v[j * hd + d]);
          }
          ASSERT_NEAR(out[d], s * inv, (n_kv + 2) * kEps * mag * inv + 1e-30)
              << where(isa, n_kv) << " hd=" << hd << " d=" << d;
        }
      }
  }
}

// Halves of v, and v rounded to them (the exact values the f16 ops multiply).
std::vector<uint16_t> to_halves(std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = f32_to_fp16(v[i]);
    v[i] = fp16_to_f32(h[i]);
  }
  return h;
}

TEST(VecOps, AttentionScoresF16AtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t hd : {8, 64, 80, 128})
      for (int64_t n_kv : {1, 15, 16, 17, 50}) {
        const int64_t ks = (n_kv + 15) / 16 * 16 + 16;
        auto kt = random_vec(hd * ks, -1, 1, 19);
        const auto kh = to_halves(kt);
        const auto qs = random_vec(4 * hd, -1, 1, 20);
        const float* q[4] = {qs.data(), qs.data() + hd, qs.data() + 2 * hd, qs.data() + 3 * hd};
        std::vector<float> out(static_cast<size_t>(4 * ks), NAN);
        o.qk_scores4_f16(q, kh.data(), ks, hd, n_kv, 0.125f, out.data());
        for (int i = 0; i < 4; ++i)
          for (int64_t j = 0; j < n_kv; ++j) {
            double s = 0, mag = 0;
            for (int64_t d = 0; d < hd; ++d) {
              s += double(q[i][d]) * kt[d * ks + j];
              mag += std::fabs(q[i][d] * kt[d * ks + j]);
            }
            ASSERT_NEAR(out[i * ks + j], s * 0.125, (hd + 2) * kEps * mag * 0.125)
                << where(isa, n_kv) << " hd=" << hd << " i=" << i << " j=" << j;
          }
      }
  }
}

TEST(VecOps, WeightedValuesF16AtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    for (int64_t hd : {8, 16, 32, 64, 80, 128})
      for (int64_t n_kv : {1, 7, 33}) {
        const auto w = random_vec(n_kv, 0, 1, 21);
        auto v = random_vec(n_kv * hd, -2, 2, 22);
        const auto vh = to_halves(v);
        std::vector<float> out(static_cast<size_t>(hd), NAN);
        o.weighted_values_f16(w.data(), vh.data(), n_kv, hd, 0.3f, out.data());
        for (int64_t d = 0; d < hd; ++d) {
          double s = 0, mag = 0;
          for (int64_t j = 0; j < n_kv; ++j) {
            s += double(w[j]) * v[j * hd + d];
            mag += std::fabs(w[j] * v[j * hd + d]);
          }
          ASSERT_NEAR(out[d], s * 0.3f, (n_kv + 2) * kEps * mag * 0.3f + 1e-30)
              << where(isa, n_kv) << " hd=" << hd << " d=" << d;
        }
      }
  }
}

TEST(VecOps, GramTileAtEveryLevel) {
  for (Isa isa : levels()) {
    const VecOps& o = vec_ops(isa);
    const int64_t cols = 40;
    for (int64_t n : {1, 5, 40}) {
      const auto x = random_vec(n * cols, -1, 1, 13);
      const auto c0 = random_vec(cols * cols, -1, 1, 14);
      for (auto [i0, j0] : {std::pair<int64_t, int64_t>{0, 0}, {6, 16}, {30, 24}}) {
        auto c = c0;
        o.gram_6x16(x.data(), n, cols, i0, j0, c.data());
        for (int64_t r = 0; r < cols; ++r)
          for (int64_t j = 0; j < cols; ++j) {
            const bool in_tile = r >= i0 && r < i0 + 6 && j >= j0 && j < j0 + 16;
            double s = c0[r * cols + j], mag = std::fabs(s);
            if (in_tile)
              for (int64_t t = 0; t < n; ++t) {
                s += double(x[t * cols + r]) * x[t * cols + j];
                mag += std::fabs(x[t * cols + r] * x[t * cols + j]);
              }
            ASSERT_NEAR(c[r * cols + j], s, (n + 2) * kEps * mag)
                << where(isa, n) << " r=" << r << " j=" << j;
          }
      }
    }
  }
}

}  // namespace
}  // namespace qforge
