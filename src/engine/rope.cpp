#include "engine/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace qforge {
namespace {

// The dimension at which the rotation of n_ctx_orig positions makes n_turns turns
// (llama.cpp's yarn correction dimension).
double yarn_corr_dim(int64_t n_rot, int64_t n_ctx_orig, double n_turns, double base) {
  return static_cast<double>(n_rot) *
         std::log(static_cast<double>(n_ctx_orig) / (n_turns * 2 * std::numbers::pi)) /
         (2 * std::log(base));
}

// Share of the original (extrapolated) frequency for pair i: 1 below `lo`, 0 above `hi`.
double yarn_ramp(double lo, double hi, int64_t i) {
  const double y = (static_cast<double>(i) - lo) / std::max(0.001, hi - lo);
  return 1.0 - std::clamp(y, 0.0, 1.0);
}

}  // namespace

RopeTable build_rope_table(const ModelParams& p, const RopeConfig& rc,
                           std::span<const float> factors, int64_t n_ctx) {
  RopeTable t;
  t.half = p.n_rot / 2;
  const auto half = static_cast<size_t>(t.half);
  std::vector<double> inv(half);
  for (size_t i = 0; i < half; ++i) {
    inv[i] = std::pow(static_cast<double>(rc.freq_base), -2.0 * static_cast<double>(i) / p.n_rot);
    if (rc.use_factors && factors.size() == half) inv[i] /= static_cast<double>(factors[i]);
  }
  double mscale = p.rope_attn_factor;
  double lo = 0, hi = 0;
  const double scale = rc.freq_scale;
  if (rc.scaling == RopeScaling::Yarn && p.yarn_ext_factor != 0) {
    const int64_t orig = p.n_ctx_orig > 0 ? p.n_ctx_orig : p.n_ctx_train;
    lo = std::max(0.0, std::floor(yarn_corr_dim(p.n_rot, orig, p.yarn_beta_fast, rc.freq_base)));
    hi = std::min(static_cast<double>(p.n_rot - 1),
                  std::ceil(yarn_corr_dim(p.n_rot, orig, p.yarn_beta_slow, rc.freq_base)));
    mscale *= 1.0 + 0.1 * std::log(1.0 / scale);
  }
  t.cos.resize(static_cast<size_t>(n_ctx) * half);
  t.sin.resize(t.cos.size());
  for (int64_t pos = 0; pos < n_ctx; ++pos)
    for (size_t i = 0; i < half; ++i) {
      const double extrap = static_cast<double>(pos) * inv[i];
      double th = extrap;
      if (rc.scaling == RopeScaling::Linear) th = extrap * scale;
      if (rc.scaling == RopeScaling::Yarn) {
        const double mix = yarn_ramp(lo, hi, static_cast<int64_t>(i)) * p.yarn_ext_factor;
        th = extrap * scale * (1 - mix) + extrap * mix;
      }
      const size_t k = static_cast<size_t>(pos) * half + i;
      t.cos[k] = static_cast<float>(std::cos(th));
      t.sin[k] = static_cast<float>(std::sin(th));
      if (mscale != 1.0) {
        t.cos[k] = static_cast<float>(t.cos[k] * mscale);
        t.sin[k] = static_cast<float>(t.sin[k] * mscale);
      }
    }
  return t;
}

}  // namespace qforge
