// Shared scalar helpers for the block encoders (legacy, IQ4 and K-quants).
//
// Two kinds of helpers live here:
//  - ggml-exact primitives (nearest_int_ggml, best_index_int8_ggml): the ggml-compatible
//    encoders must round exactly as ggml does, including at ties, so these reproduce ggml's
//    arithmetic literally (this file is compiled with -ffp-contract=off like the rest).
//  - qforge's refined search: an exact sweep over the inverse scale of a symmetric "scale times
//    level" block (see best_scale_sweep) and helpers to evaluate a block's weighted error.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/fp16.h"

namespace qforge::qmath {

// ggml's nearest_int: round to nearest (ties to even) through the 1.5*2^23 trick. Valid for
// |v| <= 2^22; callers clamp the result.
inline int nearest_int_ggml(float v) {
  const float biased = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &biased, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

// The value of largest magnitude (the first one on ties) and that magnitude: ggml's encoders
// take the sign of their scale from it.
struct SignedMax {
  float value = 0, mag = 0;
};
inline SignedMax signed_absmax(const float* x, int64_t n) {
  SignedMax m;
  for (int64_t i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > m.mag) {
      m.mag = ax;
      m.value = x[i];
    }
  }
  return m;
}

// ggml's weights of a group under an importance vector qw: qw * sqrt(sigma2 + x^2), into out;
// returns their sum (in order, as ggml sums them).
inline float importance_weights(const float* x, const float* qw, float sigma2, int n, float* out) {
  for (int l = 0; l < n; ++l) out[l] = qw[l] * std::sqrt(sigma2 + x[l] * x[l]);
  float sum = 0;
  for (int l = 0; l < n; ++l) sum += out[l];
  return sum;
}

// ggml's best_index_int8 (Feb 2025): index of the level of the sorted table `val` (n entries)
// nearest to x; at an exact midpoint the upper level wins.
inline int best_index_int8_ggml(int n, const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < val[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

// f32 -> f16 bits that never overflow to Inf: out-of-range magnitudes clamp to +-65504. The
// refined encoders use it so that huge inputs decode finite (ggml-compatible ones do not).
inline uint16_t fp16_saturating(float f) {
  uint16_t h = f32_to_fp16(f);
  if ((h & 0x7fffu) == 0x7c00u) h = static_cast<uint16_t>((h & 0x8000u) | 0x7bffu);
  return h;
}

// Levels of a uniform integer grid lo..hi (e.g. Q4_0: -8..7).
struct UniformLevels {
  int lo, hi;
  int count() const { return hi - lo + 1; }
  double level(int idx) const { return lo + idx; }
  int nearest(double y) const {
    if (!(y > lo)) return 0;  // also catches NaN
    if (y >= hi) return hi - lo;
    return static_cast<int>(std::floor(y + 0.5)) - lo;
  }
  // The nearest level's value, branch-free so that loops over it vectorize.
  float value_near(float y) const {
    return std::min(std::max(std::nearbyint(y), static_cast<float>(lo)), static_cast<float>(hi));
  }
};

// Levels of a sorted table of int8 values whose midpoints are multiples of 1/2 (IQ4_NL's
// non-linear grid). Construct once (it builds a lookup over half-units) and reuse.
class TableLevels {
 public:
  TableLevels(const int8_t* values, int n) : values_(values), n_(n) {
    const int lo = values[0], hi = values[n - 1];
    lut_.resize(static_cast<size_t>(2 * (hi - lo) + 1));
    // lut_[k]: the level nearest to every y in [lo + k/2, lo + (k+1)/2)
    for (size_t k = 0; k < lut_.size(); ++k) {
      lut_[k] = static_cast<uint8_t>(nearest(lo + 0.5 * static_cast<double>(k) + 0.25));
    }
  }
  int count() const { return n_; }
  double level(int idx) const { return values_[idx]; }
  int nearest(double y) const {
    if (!(y > values_[0])) return 0;
    if (y >= values_[n_ - 1]) return n_ - 1;
    int lo = 0, hi = n_ - 1;
    while (hi - lo > 1) {
      const int mid = (lo + hi) / 2;
      if (y < values_[mid]) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return (y - values_[lo] < values_[hi] - y) ? lo : hi;
  }
  // Index of the nearest level through the lookup (no branches besides the clamp).
  int index_near(float y) const {
    float c = 2.0f * (y - static_cast<float>(values_[0]));
    c = c > 0.0f ? c : 0.0f;  // also maps NaN to 0
    const auto top = static_cast<float>(lut_.size() - 1);
    c = c < top ? c : top;
    return lut_[static_cast<size_t>(c)];
  }
  float value_near(float y) const { return values_[index_near(y)]; }

 private:
  const int8_t* values_;
  int n_;
  std::vector<uint8_t> lut_;
};

struct SweepEvent {
  double t;
  int i;
};

struct ScaleCandidate {
  double score = 0;  // (sum w x v)^2 / sum w v^2: the error reduction of the least-squares scale
  double d = 0;      // that scale (signed)
};

// Exact sweep for one sign of the scale over inverse scales t in [t_lo, t_hi]: between two
// consecutive breakpoints (where some sign*x[i]*t crosses a midpoint between levels) the
// assignment is constant, so visiting the breakpoints in order scores every distinct assignment
// in the window with its least-squares scale. `idx` needs n entries.
template <class Levels>
ScaleCandidate sweep_one_sign(const Levels& lv, const float* x, const float* w, int n, int sign,
                              double t_lo, double t_hi, std::vector<SweepEvent>& events, int* idx) {
  const int k = lv.count();
  double sxv = 0, svv = 0;
  events.clear();
  // Most elements have no breakpoint in the window: `past` (a midpoint m with m / u certainly
  // above t_hi, tested by a multiplication with a 1e-9 margin) ends their loop without the
  // division; every breakpoint that may lie inside is still tested as m / u > t_hi, so the events
  // are exactly those of the plain loop.
  const double t_hi_margin = t_hi * (1 + 1e-9);
  for (int i = 0; i < n; ++i) {
    const double u = sign * static_cast<double>(x[i]);
    int j = lv.nearest(t_lo * u);
    idx[i] = j;
    const double v = lv.level(j);
    sxv += w[i] * u * v;
    svv += w[i] * v * v;
    if (u > 0) {
      const double past = t_hi_margin * u;
      for (; j < k - 1; ++j) {
        const double m = 0.5 * (lv.level(j) + lv.level(j + 1));
        if (m > past) break;
        const double t = m / u;
        if (t > t_hi) break;
        events.push_back({t, i});
      }
    } else if (u < 0) {
      const double past = t_hi_margin * u;  // m / u > t_hi for every m below it (u < 0)
      for (; j > 0; --j) {
        const double m = 0.5 * (lv.level(j - 1) + lv.level(j));
        if (m < past) break;
        const double t = m / u;
        if (t > t_hi) break;
        events.push_back({t, i});
      }
    }
  }
  ScaleCandidate best;
  auto consider = [&] {
    if (sxv > 0 && svv > 0) {
      const double score = sxv * sxv / svv;
      if (score > best.score) best = {score, sign * sxv / svv};
    }
  };
  consider();
  std::sort(events.begin(), events.end(),
            [](const SweepEvent& a, const SweepEvent& b) { return a.t < b.t; });
  for (const SweepEvent& e : events) {
    const int i = e.i;
    const double u = sign * static_cast<double>(x[i]);
    const double old_v = lv.level(idx[i]);
    idx[i] += u > 0 ? 1 : -1;
    const double new_v = lv.level(idx[i]);
    sxv += w[i] * u * (new_v - old_v);
    svv += w[i] * (new_v * new_v - old_v * old_v);
    consider();
  }
  return best;
}

// Best least-squares scale of one sign over inverse scales t in [t_lo, t_hi]: a vectorised pass
// scores a grid of kGrid inverse scales; the exact sweep then searches the grid cells around the
// two best grid points. n <= 256; `events`/`idx` are scratch.
template <class Levels>
ScaleCandidate best_scale_one_sign(const Levels& lv, const float* x, const float* w, int n,
                                   int sign, double t_lo, double t_hi,
                                   std::vector<SweepEvent>& events, int* idx) {
  constexpr int kGrid = 32;
  const double step = (t_hi - t_lo) / (kGrid - 1);
  float tg[kGrid];
  for (int g = 0; g < kGrid; ++g) tg[g] = static_cast<float>(t_lo + step * g);
  float sxv[kGrid] = {}, svv[kGrid] = {};
  for (int i = 0; i < n; ++i) {
    const float u = static_cast<float>(sign) * x[i];
    const float wu = w[i] * u, wi = w[i];
    for (int g = 0; g < kGrid; ++g) {
      const float v = lv.value_near(tg[g] * u);
      sxv[g] += wu * v;
      svv[g] += wi * v * v;
    }
  }
  int top[2] = {-1, -1};
  double top_score[2] = {0, 0};
  for (int g = 0; g < kGrid; ++g) {
    if (!(sxv[g] > 0 && svv[g] > 0)) continue;
    const double sc = static_cast<double>(sxv[g]) * sxv[g] / svv[g];
    if (sc > top_score[0]) {
      top[1] = top[0];
      top_score[1] = top_score[0];
      top[0] = g;
      top_score[0] = sc;
    } else if (sc > top_score[1]) {
      top[1] = g;
      top_score[1] = sc;
    }
  }
  ScaleCandidate best;
  for (int g : top) {
    if (g < 0) continue;
    const double a = t_lo + step * std::max(g - 1, 0);
    const double b = t_lo + step * std::min(g + 1, kGrid - 1);
    const ScaleCandidate c = sweep_one_sign(lv, x, w, n, sign, a, b, events, idx);
    if (c.score > best.score) best = c;
  }
  return best;
}

// Best scale d for the block model x[i] ~ d * level(q[i]) (q[i] the level nearest x[i]/d)
// minimising sum w[i] (x[i] - d*level)^2 over inverse scales t = 1/d in
// [f_lo * Lsmall / amax, f_hi * Lbig / amax] and both signs of d (Lsmall/Lbig: the smaller /
// larger magnitude of the two extreme levels). Returns 0 when the block is all zero.
template <class Levels>
double best_scale_sweep(const Levels& lv, const float* x, const float* w, int n, double f_lo,
                        double f_hi, std::vector<SweepEvent>& events, int* idx_scratch) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (!(amax > 0) || !std::isfinite(amax)) return 0;
  const int k = lv.count();
  const double lpos = lv.level(k - 1), lneg = -lv.level(0);
  const double t_lo = f_lo * std::min(lpos, lneg) / amax;
  const double t_hi = f_hi * std::max(lpos, lneg) / amax;
  ScaleCandidate best;
  for (int sign = 1; sign >= -1; sign -= 2) {
    const ScaleCandidate c =
        best_scale_one_sign(lv, x, w, n, sign, t_lo, t_hi, events, idx_scratch);
    if (c.score > best.score) best = c;
  }
  return best.d;
}

// Weighted squared error sum w[i] (y[i]-x[i])^2 in double (w == nullptr: unit weights).
inline double weighted_sq_error(const float* x, const float* y, const float* w, int n) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - static_cast<double>(x[i]);
    e += (w ? static_cast<double>(w[i]) : 1.0) * d * d;
  }
  return e;
}

}  // namespace qforge::qmath
