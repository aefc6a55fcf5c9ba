// The vectorized ggml-exact searches (kernels/kquant_search.h) against one-candidate-at-a-time
// scalar transcriptions of ggml's make_qkx2/qkx3_quants and make_qx_quants (the form these
// searches had before they were vectorized, kept here as the oracle): on random groups of every
// shape the K-quant encoders use, quants, scale and min agree bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kquant_search.h"
#include "kernels/quant_math.h"

namespace qforge {
namespace {

using qmath::nearest_int_ggml;
template <typename T>
T max_of(T a, T b) {
  return a > b ? a : b;
}
template <typename T>
T min_of(T a, T b) {
  return a < b ? a : b;
}
constexpr float kGroupEps = 1e-15f;

float ref_affine_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                        float* min_out, uint8_t* Laux, float rmin, float rdelta, int nstep,
                        bool use_mad, bool guarded) {
  auto weight = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
  float min = x[0], max = x[0];
  float sum_w = weight(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weight(i);
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (guarded ? max <= min : max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *min_out = -min;
    return 0.f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int_ggml(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(max_of(0, min_of(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weight(i) * diff;
  }
  if (nstep < 1) {
    *min_out = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l;
      if (guarded) {
        // min may sit at or near max here, so v can be huge or NaN: clamp before rounding.
        const float v = iscale * (x[i] - min);
        l = v > 0 ? nearest_int_ggml(min_of(v, fnmax)) : 0;
      } else {
        l = nearest_int_ggml(iscale * (x[i] - min));
        l = max_of(0, min_of(nmax, l));
      }
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weight(i);
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weight(i) * diff;
      }
      if (cur_error < best_error) {
        std::memcpy(L, Laux, static_cast<size_t>(n));
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *min_out = -min;
  return scale;
}

float ref_symmetric_search(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  auto weight = [&](int i) { return qw ? qw[i] : x[i] * x[i]; };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int_ggml(iscale * x[i]);
    l = max_of(-nmax, min_of(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = weight(i);
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int_ggml(iscale * x[i]);
      l = max_of(-nmax, min_of(nmax - 1, l));
      const float w = weight(i);
      const float fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int_ggml(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + max_of(-nmax, min_of(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// Random groups: Gaussian, shifted (all positive or all negative), sparse, constant, tiny.
std::vector<float> random_group(std::mt19937& rng, int n, int kind) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  if (kind == 1)
    for (auto& v : x) v += 3.f;
  if (kind == 2)
    for (auto& v : x) v -= 3.f;
  if (kind == 3)
    for (size_t i = 0; i < x.size(); ++i)
      if (i % 5) x[i] = 0.f;
  if (kind == 4)
    for (auto& v : x) v = 0.25f;
  if (kind == 5)
    for (auto& v : x) v *= 1e-20f;
  return x;
}

TEST(KQuantSearch, AffineSearchMatchesScalarScan) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(0.f, 2.f);
  struct Case {
    int n, nmax;
    float rmin, rdelta;
    int nstep;
    bool use_mad, guarded;
  };
  // The parameter sets of Q2_K, Q4_K, Q5_K (and Q4_1/Q5_1) without and with importance.
  const Case cases[] = {
      {16, 3, -0.5f, 0.1f, 15, true, false},   {32, 15, -1.f, 0.1f, 20, false, false},
      {32, 31, -0.5f, 0.1f, 15, false, false}, {16, 3, -0.9f, 0.05f, 36, false, true},
      {32, 15, -0.9f, 0.05f, 36, false, true}, {32, 31, -0.9f, 0.05f, 36, false, false}};
  int checked = 0;
  for (const Case& c : cases) {
    for (int t = 0; t < 400; ++t) {
      const auto x = random_group(rng, c.n, t % 6);
      std::vector<float> w(static_cast<size_t>(c.n));
      for (auto& v : w) v = u(rng);
      const float* wp = t % 3 == 0 ? nullptr : w.data();
      uint8_t L_ref[32], L[32], aux[32];
      float min_ref = 0, min = 0;
      const float s_ref = ref_affine_search(c.n, c.nmax, x.data(), wp, L_ref, &min_ref, aux, c.rmin,
                                            c.rdelta, c.nstep, c.use_mad, c.guarded);
      const float s = c.guarded
                          ? kq::ggml_affine_search_guarded(c.n, c.nmax, x.data(), wp, L, &min,
                                                           c.rmin, c.rdelta, c.nstep, c.use_mad)
                          : kq::ggml_affine_search(c.n, c.nmax, x.data(), wp, L, &min, c.rmin,
                                                   c.rdelta, c.nstep, c.use_mad);
      ASSERT_TRUE(same_bits(s, s_ref)) << "n=" << c.n << " nmax=" << c.nmax << " t=" << t;
      ASSERT_TRUE(same_bits(min, min_ref)) << "n=" << c.n << " nmax=" << c.nmax << " t=" << t;
      ASSERT_EQ(0, std::memcmp(L, L_ref, static_cast<size_t>(c.n))) << "t=" << t;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2400);
}

TEST(KQuantSearch, SymmetricSearchMatchesScalarScan) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> u(0.f, 2.f);
  for (const int nmax : {4, 32}) {  // Q3_K with importance, Q6_K and the Q3_K super-block scale
    for (const int n : {16, 32}) {
      for (int t = 0; t < 400; ++t) {
        const auto x = random_group(rng, n, t % 6);
        std::vector<float> w(static_cast<size_t>(n));
        for (auto& v : w) v = u(rng);
        const float* wp = t % 2 ? nullptr : w.data();
        int8_t L_ref[32], L[32];
        const float s_ref = ref_symmetric_search(n, nmax, x.data(), L_ref, wp);
        const float s = kq::ggml_symmetric_search(n, nmax, x.data(), L, wp);
        ASSERT_TRUE(same_bits(s, s_ref)) << "n=" << n << " nmax=" << nmax << " t=" << t;
        ASSERT_EQ(0, std::memcmp(L, L_ref, static_cast<size_t>(n))) << "t=" << t;
      }
    }
  }
}

}  // namespace
}  // namespace qforge
