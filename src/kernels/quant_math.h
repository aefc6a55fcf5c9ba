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
};

// Levels of a sorted table of int8 values (IQ4_NL's non-linear grid).
struct TableLevels {
  const int8_t* values;
  int n;
  int count() const { return n; }
  double level(int idx) const { return values[idx]; }
  int nearest(double y) const {
    if (!(y > values[0])) return 0;
    if (y >= values[n - 1]) return n - 1;
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
      const int mid = (lo + hi) / 2;
      if (y < values[mid]) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return (y - values[lo] < values[hi] - y) ? lo : hi;
  }
};

struct SweepEvent {
  double t;
  int i;
};

// Best scale d for the block model x[i] ~ d * level(q[i]) (q the nearest level to x[i]/d)
// minimising sum w[i] (x[i] - d*level)^2, searched exactly over every inverse scale t = 1/d in
// [f_lo * Lsmall / amax, f_hi * Lbig / amax] for both signs of d (Lsmall/Lbig: the smaller /
// larger magnitude of the two extreme levels). Between two consecutive breakpoints (where some
// x[i]*t crosses a midpoint between levels) the assignment is constant, so the sweep visits every
// distinct assignment in the window once and scores it with its least-squares scale
// (sum w x v)^2 / sum w v^2. Returns 0 when the block is all zero (or has no usable weight).
// `events` is scratch space reused across calls.
template <class Levels>
double best_scale_sweep(const Levels& lv, const float* x, const float* w, int n, double f_lo,
                        double f_hi, std::vector<SweepEvent>& events, int* idx_scratch) {
  double amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
  if (!(amax > 0) || !std::isfinite(amax)) return 0;
  const int k = lv.count();
  const double lpos = lv.level(k - 1), lneg = -lv.level(0);
  const double t_lo = f_lo * std::min(lpos, lneg) / amax;
  const double t_hi = f_hi * std::max(lpos, lneg) / amax;
  double best_score = 0, best_d = 0;
  for (int sign = 1; sign >= -1; sign -= 2) {
    double sxv = 0, svv = 0;
    events.clear();
    for (int i = 0; i < n; ++i) {
      const double u = sign * static_cast<double>(x[i]);
      int j = lv.nearest(t_lo * u);
      idx_scratch[i] = j;
      const double v = lv.level(j);
      sxv += w[i] * u * v;
      svv += w[i] * v * v;
      if (u > 0) {
        for (; j < k - 1; ++j) {
          const double t = 0.5 * (lv.level(j) + lv.level(j + 1)) / u;
          if (t > t_hi) break;
          events.push_back({t, i});
        }
      } else if (u < 0) {
        for (; j > 0; --j) {
          const double t = 0.5 * (lv.level(j - 1) + lv.level(j)) / u;
          if (t > t_hi) break;
          events.push_back({t, i});
        }
      }
    }
    auto consider = [&] {
      if (sxv > 0 && svv > 0) {
        const double score = sxv * sxv / svv;
        if (score > best_score) {
          best_score = score;
          best_d = sign * sxv / svv;
        }
      }
    };
    consider();
    std::sort(events.begin(), events.end(),
              [](const SweepEvent& a, const SweepEvent& b) { return a.t < b.t; });
    for (const SweepEvent& e : events) {
      const int i = e.i;
      const double u = sign * static_cast<double>(x[i]);
      const double old_v = lv.level(idx_scratch[i]);
      idx_scratch[i] += u > 0 ? 1 : -1;
      const double new_v = lv.level(idx_scratch[i]);
      sxv += w[i] * u * (new_v - old_v);
      svv += w[i] * (new_v * new_v - old_v * old_v);
      consider();
    }
  }
  return best_d;
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
