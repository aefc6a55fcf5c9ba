// Eight-lane float/int vectors (GCC/Clang vector extensions) for the scale searches.
//
// The ggml-exact searches evaluate many candidate scales over the same values, each with its
// own sequential float sums. Putting one candidate per lane keeps every lane's operations and
// their order exactly those of the scalar loop (IEEE add/mul/div per lane, no contraction under
// -ffp-contract=off), so the results are bit-identical while the candidates run 8 at a time.
// The compiler lowers the vectors to whatever the build's baseline ISA provides.
#pragma once

#include <cstdint>

namespace qforge::lanes {

inline constexpr int kWidth = 8;
using f32x8 = float __attribute__((vector_size(32)));
using i32x8 = int32_t __attribute__((vector_size(32)));

// Eight consecutive floats at p (any alignment) as one vector load. (A memcpy into an f32x8
// lowered to two 16-byte stores and a 32-byte reload under GCC's generic tuning: a failed
// store-to-load forwarding per vector, most of Q8_0's encoding time.)
inline f32x8 load8(const float* p) {
  using f32x8_unaligned = float __attribute__((vector_size(32), aligned(4), may_alias));
  return *reinterpret_cast<const f32x8_unaligned*>(p);
}

inline f32x8 splat(float v) {
  return f32x8{v, v, v, v, v, v, v, v};
}
inline i32x8 splat_i(int32_t v) {
  return i32x8{v, v, v, v, v, v, v, v};
}
// 0, 1, ..., 7.
inline i32x8 lane_index() {
  return i32x8{0, 1, 2, 3, 4, 5, 6, 7};
}
inline f32x8 to_float(i32x8 v) {
  return __builtin_convertvector(v, f32x8);
}
// |v| by clearing the sign bit, as fabs does (also for -0 and NaN).
inline f32x8 abs(f32x8 v) {
  return reinterpret_cast<f32x8>(reinterpret_cast<i32x8>(v) & 0x7fffffff);
}
// qmath::nearest_int_ggml per lane: round to nearest, ties to even, through the 1.5*2^23 trick.
inline i32x8 nearest_int_ggml(f32x8 v) {
  const f32x8 biased = v + 12582912.f;
  return (reinterpret_cast<i32x8>(biased) & 0x007fffff) - 0x00400000;
}
inline i32x8 clamp(i32x8 v, int lo, int hi) {
  const i32x8 vh = splat_i(hi), vl = splat_i(lo);
  v = v > vh ? vh : v;
  return v < vl ? vl : v;
}

// sum a[k] * b[k] over n values, in 8 fixed lanes (lane l takes k = l mod 8) of separate
// multiply and add (no contraction), the lanes summed pairwise at the end: vectorised by
// construction (GCC did not vectorise the same loop written over an array of scalar
// accumulators with std::fma, so a Cholesky factor ran one double per instruction) and
// deterministic for a given n.
inline double dot_lanes(const double* a, const double* b, int64_t n) {
  using f64x4 = double __attribute__((vector_size(32)));
  using f64x4u = double __attribute__((vector_size(32), aligned(8), may_alias));
  f64x4 s0 = {}, s1 = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    s0 += *reinterpret_cast<const f64x4u*>(a + k) * *reinterpret_cast<const f64x4u*>(b + k);
    s1 += *reinterpret_cast<const f64x4u*>(a + k + 4) * *reinterpret_cast<const f64x4u*>(b + k + 4);
  }
  double tail = 0;
  for (; k < n; ++k) tail += a[k] * b[k];
  const f64x4 s = s0 + s1;
  return ((s[0] + s[1]) + (s[2] + s[3])) + tail;
}
inline double dot_lanes(const float* a, const float* b, int64_t n) {
  f32x8 s = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) s += load8(a + k) * load8(b + k);
  float tail = 0;
  for (; k < n; ++k) tail += a[k] * b[k];
  return static_cast<double>((((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) +
                             tail);
}

}  // namespace qforge::lanes
