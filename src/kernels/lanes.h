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

}  // namespace qforge::lanes
