// Scalar reference codecs: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS. See quants_legacy.h
// for the two encoding modes. The ggml-compatible encoders follow ggml's arithmetic operation by
// operation (the build uses -ffp-contract=off, so no fused multiply-adds change the rounding);
// their comments name the ggml function they reproduce.
#include "kernels/quants_legacy.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/codec.h"
#include "kernels/kquant_search.h"
#include "kernels/lanes.h"
#include "kernels/quant_math.h"

namespace qforge {
namespace {

using qmath::fp16_saturating;
using qmath::nearest_int_ggml;
using qmath::TableLevels;
using qmath::UniformLevels;

constexpr int kQ = 32;  // weights per block of the legacy types and per IQ4_XS sub-block
constexpr float kGroupMaxEps = 1e-15f;

const TableLevels& iq4_levels() {
  static const TableLevels levels(kIq4nlValues, 16);
  return levels;
}

inline float h2f(uint16_t h) {
  return fp16_to_f32(h);
}

// C's float -> int8 truncation as ggml's encoders use it, defined for every input: values outside
// the int8 range (only reachable when a subnormal block makes the inverse scale infinite, where
// C would be undefined) clamp, NaN gives 0. In range it is exactly (int8_t)v.
inline int8_t trunc_i8(float v) {
  if (!(v == v)) return 0;
  return static_cast<int8_t>(std::min(std::max(v, -128.0f), 127.0f));
}

// ------------------------------------------------------------------------------------------
// Packing helpers. Nibble layout: byte j holds weight j (low) and weight j+16 (high); Q5 types
// keep the fifth bits in a little-endian u32, bit j for weight j.

void pack_nibbles(const uint8_t* l, uint8_t* qs) {
  for (int j = 0; j < kQ / 2; ++j) qs[j] = static_cast<uint8_t>(l[j] | (l[j + kQ / 2] << 4));
}
void pack_q5(const uint8_t* l, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQ / 2; ++j) {
    const uint8_t a = l[j], b = l[j + kQ / 2];
    qs[j] = static_cast<uint8_t>((a & 0x0F) | ((b & 0x0F) << 4));
    qh |= static_cast<uint32_t>((a & 0x10u) >> 4) << j;
    qh |= static_cast<uint32_t>((b & 0x10u) >> 4) << (j + kQ / 2);
  }
  std::memcpy(qh_bytes, &qh, 4);
}
uint32_t load_qh(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return qh;
}

// ------------------------------------------------------------------------------------------
// Decoding (bit-identical to ggml's dequantize_row_*).

void decode_q4_0(const block_q4_0& b, float* y) {
  const float d = h2f(b.d);
  for (int j = 0; j < kQ / 2; ++j) {
    const int x0 = (b.qs[j] & 0x0F) - 8;
    const int x1 = (b.qs[j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQ / 2] = static_cast<float>(x1) * d;
  }
}
void decode_q4_1(const block_q4_1& b, float* y) {
  const float d = h2f(b.d), m = h2f(b.m);
  for (int j = 0; j < kQ / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
    y[j + kQ / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}
void decode_q5_0(const block_q5_0& b, float* y) {
  const float d = h2f(b.d);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kQ / 2; ++j) {
    const int h0 = ((qh >> j) << 4) & 0x10;
    const int h1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>(((b.qs[j] & 0x0F) | h0) - 16) * d;
    y[j + kQ / 2] = static_cast<float>(((b.qs[j] >> 4) | h1) - 16) * d;
  }
}
void decode_q5_1(const block_q5_1& b, float* y) {
  const float d = h2f(b.d), m = h2f(b.m);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kQ / 2; ++j) {
    const int h0 = ((qh >> j) << 4) & 0x10;
    const int h1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>((b.qs[j] & 0x0F) | h0) * d + m;
    y[j + kQ / 2] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
  }
}
void decode_q8_0(const block_q8_0& b, float* y) {
  const float d = h2f(b.d);
  for (int j = 0; j < kQ; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}
void decode_iq4_nl(const block_iq4_nl& b, float* y) {
  const float d = h2f(b.d);
  for (int j = 0; j < kQ / 2; ++j) {
    y[j] = d * static_cast<float>(kIq4nlValues[b.qs[j] & 0x0F]);
    y[j + kQ / 2] = d * static_cast<float>(kIq4nlValues[b.qs[j] >> 4]);
  }
}
int iq4_xs_scale(const block_iq4_xs& b, int ib) {
  return (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((b.scales_h >> (2 * ib)) & 3) << 4)) -
         32;
}
void decode_iq4_xs(const block_iq4_xs& b, float* y) {
  const float d = h2f(b.d);
  for (int ib = 0; ib < QK_K / kQ; ++ib) {
    const float dl = d * static_cast<float>(iq4_xs_scale(b, ib));
    const uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      y[32 * ib + j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
      y[32 * ib + j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
    }
  }
}

// Weights per block of each block type.
template <class Block>
constexpr int kPerBlock = kQ;
template <>
constexpr int kPerBlock<block_iq4_xs> = QK_K;

template <class Block, void (*Decode)(const Block&, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  constexpr int64_t kPer = kPerBlock<Block>;
  const auto* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kPer; ++i) Decode(b[i], dst + i * kPer);
}

// ------------------------------------------------------------------------------------------
// ggml-compatible encoders.

// quantize_row_q4_0_ref (one block).
void ggml_q4_0_ref(const float* x, block_q4_0& y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQ; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  for (int j = 0; j < kQ / 2; ++j) {
    const float x0 = x[j] * id, x1 = x[j + kQ / 2] * id;
    const auto q0 = static_cast<uint8_t>(std::min<int>(15, trunc_i8(x0 + 8.5f)));
    const auto q1 = static_cast<uint8_t>(std::min<int>(15, trunc_i8(x1 + 8.5f)));
    y.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// quantize_row_q4_1_ref / quantize_row_q5_1_ref share the min/max scheme.
template <int kNmax>
void ggml_affine_ref(const float* x, float& d_out, float& min_out, uint8_t* l) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < kQ; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / kNmax;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQ; ++j) {
    const float v = (x[j] - min) * id;
    if constexpr (kNmax == 15) {
      l[j] = static_cast<uint8_t>(std::min<int>(15, trunc_i8(v + 0.5f)));
    } else {
      l[j] = static_cast<uint8_t>(trunc_i8(v + 0.5f));
    }
  }
  d_out = d;
  min_out = min;
}

// quantize_row_q5_0_ref.
void ggml_q5_0_ref(const float* x, block_q5_0& y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQ; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -16;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  uint8_t l[kQ];
  for (int j = 0; j < kQ; ++j) {
    l[j] = static_cast<uint8_t>(std::min<int>(31, trunc_i8(x[j] * id + 16.5f)));
  }
  pack_q5(l, y.qs, y.qh);
}

// quantize_row_q8_0_ref.
void ggml_q8_0_ref(const float* x, block_q8_0& y) {
  using namespace lanes;
  using i8x8 = int8_t __attribute__((vector_size(8)));
  f32x8 v[kQ / kWidth];
  f32x8 lane_max = splat(0.f);  // the max of |x| is exact in any order
  for (int b = 0; b < kQ / kWidth; ++b) {
    v[b] = load8(x + b * kWidth);
    const f32x8 a = lanes::abs(v[b]);
    lane_max = a > lane_max ? a : lane_max;
  }
  float amax = 0.0f;
  for (int k = 0; k < kWidth; ++k) amax = std::max(amax, lane_max[k]);
  const float d = amax / ((1 << 7) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y.d = f32_to_fp16(d);
  // trunc_i8(roundf(x*id)) per lane: clamping before rounding gives the same result (both are
  // monotonic and the bounds are integers), and then the rounding works on small values.
  for (int b = 0; b < kQ / kWidth; ++b) {
    f32x8 t8 = v[b] * id;
    t8 = t8 > splat(127.f) ? splat(127.f) : t8;
    t8 = t8 < splat(-128.f) ? splat(-128.f) : t8;
    t8 = t8 == t8 ? t8 : splat(0.f);                     // NaN -> 0
    const i32x8 t = __builtin_convertvector(t8, i32x8);  // toward zero, exact here
    const i32x8 up = lanes::abs(t8 - to_float(t)) >= splat(0.5f);
    const i32x8 q = t + (up & (t8 < splat(0.f) ? splat_i(-1) : splat_i(1)));
    const i8x8 q8 = __builtin_convertvector(q, i8x8);  // in [-128, 127]: exact
    std::memcpy(y.qs + b * kWidth, &q8, sizeof q8);
  }
}

// quantize_row_iq4_nl_impl (super_block_size 32 for IQ4_NL, 256 for IQ4_XS; block_size 32).
void ggml_iq4_impl(int super_block_size, const float* x, uint16_t* dh, uint8_t* q4,
                   uint16_t* scales_h, uint8_t* scales_l, const float* quant_weights, int ntry) {
  const int8_t* values = kIq4nlValues;
  float scales[QK_K / kQ];
  float weight[kQ];
  uint8_t L[QK_K];
  float sigma2 = 0;
  for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / static_cast<float>(super_block_size);

  std::memset(q4, 0, static_cast<size_t>(super_block_size / 2));
  dh[0] = f32_to_fp16(0.f);

  const int nb = super_block_size / kQ;
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < nb; ++ib) {
    const float* xb = x + ib * kQ;
    uint8_t* Lb = L + ib * kQ;
    if (quant_weights) {
      const float* qw = quant_weights + ib * kQ;
      for (int j = 0; j < kQ; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    } else {
      for (int j = 0; j < kQ; ++j) weight[j] = xb[j] * xb[j];
    }
    const auto [max, amax] = qmath::signed_absmax(xb, kQ);
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = ntry > 0 ? -max / static_cast<float>(values[0]) : max / static_cast<float>(values[0]);
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kQ; ++j) {
      const float al = id * xb[j];
      const int l = qmath::best_index_int8_ggml(16, values, al);
      Lb[j] = static_cast<uint8_t>(l);
      const auto q = static_cast<float>(values[l]);
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kQ; ++j) {
        const float al = id * xb[j];
        const int l = qmath::best_index_int8_ggml(16, values, al);
        const auto q = static_cast<float>(values[l]);
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }

  if (nb > 1) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    dh[0] = f32_to_fp16(d);
    const float id = d != 0.0f ? 1 / d : 0.f;
    for (int ib = 0; ib < nb; ++ib) {
      int l = nearest_int_ggml(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.f;
      uint8_t* Lb = L + ib * kQ;
      const float* xb = x + ib * kQ;
      for (int j = 0; j < kQ; ++j) {
        Lb[j] = static_cast<uint8_t>(qmath::best_index_int8_ggml(16, values, idl * xb[j]));
      }
      l += 32;
      const auto l_l = static_cast<uint8_t>(l & 0xf);
      const auto l_h = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) {
        scales_l[ib / 2] = l_l;
      } else {
        scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
      }
      *scales_h |= static_cast<uint16_t>(l_h << (2 * ib));
    }
  } else {
    dh[0] = f32_to_fp16(scales[0]);
    if (ntry > 0) {
      const float id = scales[0] != 0.0f ? 1 / scales[0] : 0;
      for (int j = 0; j < super_block_size; ++j) {
        L[j] = static_cast<uint8_t>(qmath::best_index_int8_ggml(16, values, id * x[j]));
      }
    }
  }
  for (int i = 0; i < super_block_size / kQ; ++i) pack_nibbles(L + kQ * i, q4 + 16 * i);
}

// Per-row sigma2 used by ggml's imatrix weights for the 32-block types: sum x^2 / n.
float row_sigma2(const float* x, int64_t n) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n);
}

// ggml's encoding of one row of a symmetric 32-block type (quantize_q4_0 / quantize_q5_0 for
// one row): the plain rounding without an imatrix, else make_qx_quants with ggml's weights.
// kNmax is the level count's half (8 or 16); Pack stores the levels.
template <class Block, int kNmax, void (*Ref)(const float*, Block&),
          void (*Pack)(const uint8_t*, Block&)>
void ggml_row_symmetric(const float* x, Block* y, int64_t n, const float* imatrix) {
  const int64_t nb = n / kQ;
  if (!imatrix) {
    for (int64_t ib = 0; ib < nb; ++ib) Ref(x + ib * kQ, y[ib]);
    return;
  }
  const float sigma2 = row_sigma2(x, n);
  float weight[kQ];
  int8_t L[kQ];
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQ * ib;
    const float* qw = imatrix + kQ * ib;
    for (int j = 0; j < kQ; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    const float d = kq::ggml_symmetric_search(kQ, kNmax, xb, L, weight);
    y[ib].d = f32_to_fp16(d);
    uint8_t u[kQ];
    for (int j = 0; j < kQ; ++j) u[j] = static_cast<uint8_t>(L[j]);
    Pack(u, y[ib]);
  }
}
void pack_q4_0(const uint8_t* l, block_q4_0& b) {
  pack_nibbles(l, b.qs);
}
void pack_q5_0(const uint8_t* l, block_q5_0& b) {
  pack_q5(l, b.qs, b.qh);
}
void ggml_row_q4_0(const float* x, block_q4_0* y, int64_t n, const float* imatrix) {
  ggml_row_symmetric<block_q4_0, 8, ggml_q4_0_ref, pack_q4_0>(x, y, n, imatrix);
}
void ggml_row_q5_0(const float* x, block_q5_0* y, int64_t n, const float* imatrix) {
  ggml_row_symmetric<block_q5_0, 16, ggml_q5_0_ref, pack_q5_0>(x, y, n, imatrix);
}

// Q4_1 (kNmax 15) and Q5_1 (kNmax 31): fills d, m and the levels of every block of the row.
template <int kNmax>
void ggml_row_affine(const float* x, int64_t n, const float* imatrix, uint16_t* d, uint16_t* m,
                     uint8_t* levels) {
  const int64_t nb = n / kQ;
  if (!imatrix) {
    for (int64_t ib = 0; ib < nb; ++ib) {
      float df, mf;
      ggml_affine_ref<kNmax>(x + ib * kQ, df, mf, levels + ib * kQ);
      d[ib] = f32_to_fp16(df);
      m[ib] = f32_to_fp16(mf);
    }
    return;
  }
  const float sigma2 = row_sigma2(x, n);
  float weight[kQ];
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQ * ib;
    const float* qw = imatrix + kQ * ib;
    for (int j = 0; j < kQ; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    float min;
    // ggml's make_qkx3_quants with importance weights and squared error (use_mad = false).
    const float df = kq::ggml_affine_search(kQ, kNmax, xb, weight, levels + ib * kQ, &min, -0.9f,
                                            0.05f, 36, false);
    d[ib] = f32_to_fp16(df);
    m[ib] = f32_to_fp16(-min);
  }
}

// Q4_1 / Q5_1 rows: the affine search, then Pack stores each block's levels.
template <class Block, int kNmax, void (*Pack)(const uint8_t*, Block&)>
void ggml_row_affine_blocks(const float* x, Block* y, int64_t n, const float* imatrix) {
  const int64_t nb = n / kQ;
  std::vector<uint16_t> d(static_cast<size_t>(nb)), m(static_cast<size_t>(nb));
  std::vector<uint8_t> l(static_cast<size_t>(n));
  ggml_row_affine<kNmax>(x, n, imatrix, d.data(), m.data(), l.data());
  for (int64_t ib = 0; ib < nb; ++ib) {
    y[ib].d = d[ib];
    y[ib].m = m[ib];
    Pack(l.data() + ib * kQ, y[ib]);
  }
}
void pack_q4_1(const uint8_t* l, block_q4_1& b) {
  pack_nibbles(l, b.qs);
}
void pack_q5_1(const uint8_t* l, block_q5_1& b) {
  pack_q5(l, b.qs, b.qh);
}
void ggml_row_q4_1(const float* x, block_q4_1* y, int64_t n, const float* imatrix) {
  ggml_row_affine_blocks<block_q4_1, 15, pack_q4_1>(x, y, n, imatrix);
}
void ggml_row_q5_1(const float* x, block_q5_1* y, int64_t n, const float* imatrix) {
  ggml_row_affine_blocks<block_q5_1, 31, pack_q5_1>(x, y, n, imatrix);
}
void ggml_row_q8_0(const float* x, block_q8_0* y, int64_t n, const float*) {
  for (int64_t ib = 0; ib < n / kQ; ++ib) ggml_q8_0_ref(x + ib * kQ, y[ib]);
}
void ggml_row_iq4_nl(const float* x, block_iq4_nl* y, int64_t n, const float* imatrix) {
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    uint16_t unused_h = 0;
    ggml_iq4_impl(kQ, x + ib * kQ, &y[ib].d, y[ib].qs, &unused_h, nullptr,
                  imatrix ? imatrix + ib * kQ : nullptr, 7);
  }
}
void ggml_row_iq4_xs(const float* x, block_iq4_xs* y, int64_t n, const float* imatrix) {
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    ggml_iq4_impl(QK_K, x + ib * QK_K, &y[ib].d, y[ib].qs, &y[ib].scales_h, y[ib].scales_l,
                  imatrix ? imatrix + ib * QK_K : nullptr, 7);
  }
}

// ------------------------------------------------------------------------------------------
// qforge's refined search.

// Search state reused across the blocks of a row.
struct Scratch {
  std::vector<qmath::SweepEvent> events;
  int idx[QK_K];
};

// A symmetric block x ~ d * level[idx] with an fp16 scale.
struct SymBlock {
  uint16_t d = 0;
  uint8_t idx[kQ] = {};
  double err = INFINITY;
};

// Nearest levels for the fp16 scale `d16` and the resulting weighted error, computed on the
// values exactly as the decoder produces them (float level * float scale).
template <class Levels>
double assign_sym(const Levels& lv, const float* x, const float* w, uint16_t d16, uint8_t* idx) {
  const float d = h2f(d16);
  const double inv = d != 0.0f ? 1.0 / d : 0.0;
  double err = 0;
  for (int j = 0; j < kQ; ++j) {
    const int k = lv.nearest(static_cast<double>(x[j]) * inv);
    idx[j] = static_cast<uint8_t>(k);
    const float y = static_cast<float>(lv.level(k)) * d;
    const double e = static_cast<double>(y) - x[j];
    err += w[j] * e * e;
  }
  return err;
}

template <class Levels>
void try_sym(const Levels& lv, const float* x, const float* w, uint16_t d16, SymBlock& best) {
  SymBlock c;
  c.d = d16;
  c.err = assign_sym(lv, x, w, d16, c.idx);
  if (c.err < best.err) best = c;
}

// Starting from the real scale d0: fp16 rounding, least-squares refits of the scale for the
// current levels (Lloyd iterations) and the two neighbouring fp16 values.
template <class Levels>
SymBlock refine_sym(const Levels& lv, const float* x, const float* w, double d0) {
  SymBlock best;
  try_sym(lv, x, w, fp16_saturating(static_cast<float>(d0)), best);
  for (int iter = 0; iter < 4; ++iter) {
    double sxv = 0, svv = 0;
    for (int j = 0; j < kQ; ++j) {
      const double v = lv.level(best.idx[j]);
      sxv += w[j] * static_cast<double>(x[j]) * v;
      svv += w[j] * v * v;
    }
    if (!(svv > 0)) break;
    const uint16_t d16 = fp16_saturating(static_cast<float>(sxv / svv));
    if (d16 == best.d) break;
    const double before = best.err;
    try_sym(lv, x, w, d16, best);
    if (!(best.err < before)) break;
  }
  const uint16_t mag = best.d & 0x7fffu, sign = best.d & 0x8000u;
  if (mag > 0) try_sym(lv, x, w, static_cast<uint16_t>(sign | (mag - 1)), best);
  if (mag < 0x7bffu) try_sym(lv, x, w, static_cast<uint16_t>(sign | (mag + 1)), best);
  return best;
}

// The weights a refined search optimises: the metric weights, or unit weights when they are all
// zero (any encoding is then equally good; unit weights keep it sensible).
const float* search_weights(const float* w, int n, float* unit) {
  for (int j = 0; j < n; ++j) {
    if (w[j] > 0) return w;
  }
  for (int j = 0; j < n; ++j) unit[j] = 1.0f;
  return unit;
}

template <class Levels>
SymBlock search_sym(const Levels& lv, const float* x, const float* w, double f_lo, double f_hi,
                    Scratch& s) {
  float unit[kQ];
  const float* ws = search_weights(w, kQ, unit);
  const double d0 = qmath::best_scale_sweep(lv, x, ws, kQ, f_lo, f_hi, s.events, s.idx);
  SymBlock b = refine_sym(lv, x, ws, d0);
  if (ws != w) b.err = assign_sym(lv, x, w, b.d, b.idx);
  return b;
}

// An affine block x ~ d * q + m, q in 0..nmax, with fp16 d and m.
struct AffBlock {
  uint16_t d = 0, m = 0;
  uint8_t q[kQ] = {};
  double err = INFINITY;
};

double assign_aff(int nmax, const float* x, const float* w, uint16_t d16, uint16_t m16,
                  uint8_t* q) {
  const float d = h2f(d16), m = h2f(m16);
  const double inv = d != 0.0f ? 1.0 / d : 0.0;
  double err = 0;
  for (int j = 0; j < kQ; ++j) {
    const double t = (static_cast<double>(x[j]) - m) * inv;
    const int l = !(t > 0) ? 0 : t >= nmax ? nmax : static_cast<int>(std::floor(t + 0.5));
    q[j] = static_cast<uint8_t>(l);
    const float y = static_cast<float>(l) * d + m;
    const double e = static_cast<double>(y) - x[j];
    err += w[j] * e * e;
  }
  return err;
}

// Weighted least-squares (d, m) for fixed levels; false if degenerate (all levels equal).
template <class Level>
bool fit_aff(const float* x, const float* w, const Level* q, double& d, double& m) {
  double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
  for (int j = 0; j < kQ; ++j) {
    const double wj = w[j], qj = q[j], xj = x[j];
    sw += wj;
    sq += wj * qj;
    sqq += wj * qj * qj;
    sx += wj * xj;
    sxq += wj * xj * qj;
  }
  const double det = sw * sqq - sq * sq;
  if (!(det > 1e-12 * sw * sqq) || !(sw > 0)) return false;
  const double nd = (sw * sxq - sq * sx) / det;
  const double nm = (sqq * sx - sq * sxq) / det;
  if (!(std::isfinite(nd) && std::isfinite(nm) && nd > 0)) return false;
  d = nd;
  m = nm;
  return true;
}

void try_aff(int nmax, const float* x, const float* w, uint16_t d16, uint16_t m16, AffBlock& best) {
  AffBlock c;
  c.d = d16;
  c.m = m16;
  c.err = assign_aff(nmax, x, w, d16, m16, c.q);
  if (c.err < best.err) best = c;
}

// Candidate ranges [lo, hi] shrunk from the block's [min, max] at both ends, each refitted by
// least squares (twice) in real arithmetic; the best few are then rounded to fp16 and refined.
AffBlock search_aff(int nmax, const float* x, const float* w_metric, Scratch* s) {
  float unit[kQ];
  const float* w = search_weights(w_metric, kQ, unit);
  float mn = x[0], mx = x[0];
  for (int j = 1; j < kQ; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  AffBlock best;
  if (!(mx > mn)) {  // constant block: d = 0, m = the value
    try_aff(nmax, x, w, 0, fp16_saturating(mn), best);
  } else {
    // Shrinking the range clips the extreme weights but refines the step for all others.
    static constexpr float kShrink[] = {0.0f, 0.03f, 0.07f, 0.12f};
    struct Cand {
      double d, m, err;
    };
    std::array<Cand, 3> top{};
    for (auto& c : top) c.err = INFINITY;
    const float range = mx - mn;
    const auto fmax_level = static_cast<float>(nmax);
    float q[kQ];
    for (float a : kShrink) {
      for (float b : kShrink) {
        double m = mn + a * range;
        double d = range * (1 - a - b) / nmax;
        for (int pass = 0; pass < 2; ++pass) {
          const float inv = static_cast<float>(1.0 / d), mf = static_cast<float>(m);
          for (int j = 0; j < kQ; ++j) {
            q[j] = std::min(std::max(std::nearbyint((x[j] - mf) * inv), 0.0f), fmax_level);
          }
          if (!fit_aff(x, w, q, d, m)) break;
        }
        double err = 0;
        for (int j = 0; j < kQ; ++j) {
          const double e = d * q[j] + m - x[j];
          err += w[j] * e * e;
        }
        // keep the three best (d, m)
        Cand c{d, m, err};
        for (auto& t : top) {
          if (c.err < t.err) std::swap(c, t);
        }
      }
    }
    // Exact scale sweep with the offset of the best candidate fixed, then a joint refit.
    if (std::isfinite(top[0].err) && s) {
      double d = top[0].d, m = top[0].m;
      for (int round = 0; round < 2; ++round) {
        float u[kQ];
        for (int j = 0; j < kQ; ++j) u[j] = static_cast<float>(x[j] - m);
        const qmath::ScaleCandidate c = qmath::best_scale_one_sign(
            UniformLevels{0, nmax}, u, w, kQ, 1, 0.8 / d, 1.25 / d, s->events, s->idx);
        if (!(c.d > 0)) break;
        const auto inv = static_cast<float>(1.0 / c.d);
        for (int j = 0; j < kQ; ++j) {
          q[j] = std::min(std::max(std::nearbyint(u[j] * inv), 0.0f), fmax_level);
        }
        double nd = c.d, nm = m;
        fit_aff(x, w, q, nd, nm);
        double err = 0;
        for (int j = 0; j < kQ; ++j) {
          const double e = nd * q[j] + nm - x[j];
          err += w[j] * e * e;
        }
        Cand cand{nd, nm, err};
        for (auto& t : top) {
          if (cand.err < t.err) std::swap(cand, t);
        }
        d = nd;
        m = nm;
      }
    }
    for (const Cand& c : top) {
      if (!std::isfinite(c.err)) continue;
      try_aff(nmax, x, w, fp16_saturating(static_cast<float>(c.d)),
              fp16_saturating(static_cast<float>(c.m)), best);
    }
    // Lloyd refits on the fp16 grid, then the neighbouring fp16 scales and offsets.
    for (int iter = 0; iter < 4; ++iter) {
      double d, m;
      if (!fit_aff(x, w, best.q, d, m)) break;
      const uint16_t d16 = fp16_saturating(static_cast<float>(d));
      const uint16_t m16 = fp16_saturating(static_cast<float>(m));
      if (d16 == best.d && m16 == best.m) break;
      const double before = best.err;
      try_aff(nmax, x, w, d16, m16, best);
      if (!(best.err < before)) break;
    }
    const AffBlock center = best;
    for (int dd = -1; dd <= 1; ++dd) {
      for (int dm = -1; dm <= 1; ++dm) {
        if (dd == 0 && dm == 0) continue;
        const int dmag = (center.d & 0x7fff) + dd;
        const int mmag = (center.m & 0x7fff) + dm;
        if (dmag < 0 || dmag > 0x7bff || mmag < 0 || mmag > 0x7bff) continue;
        try_aff(nmax, x, w, static_cast<uint16_t>((center.d & 0x8000) | dmag),
                static_cast<uint16_t>((center.m & 0x8000) | mmag), best);
      }
    }
  }
  if (w != w_metric) best.err = assign_aff(nmax, x, w_metric, best.d, best.m, best.q);
  return best;
}

// ------------------------------------------------------------------------------------------
// Row encoders: ggml's row, then (refined mode) each block replaced by the refined one when that
// has a lower weighted error. NaN errors (e.g. ggml dividing 0 by 0 under all-zero imatrix
// weights) never win.

bool better(double candidate, double incumbent) {
  return candidate <= incumbent || std::isnan(incumbent);
}

// Metric weights of a block: the imatrix columns, or ones.
const float* block_weights(const QuantizeOptions& opt, int64_t col, const float* ones) {
  return opt.imatrix ? opt.imatrix + col : ones;
}

struct Ones {
  float v[QK_K];
  Ones() { std::fill(std::begin(v), std::end(v), 1.0f); }
};
const float* ones() {
  static const Ones o;
  return o.v;
}

template <class Block, void (*GgmlRow)(const float*, Block*, int64_t, const float*),
          void (*Decode)(const Block&, float*), class Refine>
void quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n,
                   const QuantizeOptions& opt, Refine refine) {
  constexpr int kPer = kPerBlock<Block>;
  const int64_t nb = n / kPer;
  auto* out = static_cast<Block*>(dst);
  Scratch scratch;
  float y[kPer];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n;
    Block* row = out + r * nb;
    GgmlRow(x, row, n, opt.imatrix);
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + ib * kPer;
      const float* w = block_weights(opt, ib * kPer, ones());
      Decode(row[ib], y);
      if (opt.ggml_compatible) {
        // ggml's block is kept unless it decodes to Inf/NaN (a scale past the fp16 range, or
        // 0/0 under all-zero importance): then the refined block replaces it.
        bool finite = true;
        for (int j = 0; j < kPer; ++j) finite &= std::isfinite(y[j]);
        if (finite) continue;
      }
      const double err_ggml = qmath::weighted_sq_error(xb, y, w, kPer);
      Block cand;
      const double err_ref = refine(xb, w, cand, scratch);
      if (better(err_ref, err_ggml)) row[ib] = cand;
    }
  }
}

// Refiners: fill `b` with the refined encoding of one block, return its weighted error.
double refine_q4_0(const float* x, const float* w, block_q4_0& b, Scratch& s) {
  const SymBlock r = search_sym(UniformLevels{-8, 7}, x, w, 0.6, 1.5, s);
  b.d = r.d;
  pack_nibbles(r.idx, b.qs);
  return r.err;
}
double refine_q5_0(const float* x, const float* w, block_q5_0& b, Scratch& s) {
  const SymBlock r = search_sym(UniformLevels{-16, 15}, x, w, 0.7, 1.4, s);
  b.d = r.d;
  pack_q5(r.idx, b.qs, b.qh);
  return r.err;
}
double refine_q8_0(const float* x, const float* w, block_q8_0& b, Scratch& s) {
  // Symmetric -127..127 like ggml (no -128), so that sign tricks in SIMD dot products stay safe.
  const SymBlock r = search_sym(UniformLevels{-127, 127}, x, w, 0.97, 1.03, s);
  b.d = r.d;
  for (int j = 0; j < kQ; ++j) b.qs[j] = static_cast<int8_t>(r.idx[j] - 127);
  return r.err;
}
double refine_iq4_nl(const float* x, const float* w, block_iq4_nl& b, Scratch& s) {
  const SymBlock r = search_sym(iq4_levels(), x, w, 0.6, 1.5, s);
  b.d = r.d;
  pack_nibbles(r.idx, b.qs);
  return r.err;
}
double refine_q4_1(const float* x, const float* w, block_q4_1& b, Scratch& s) {
  const AffBlock r = search_aff(15, x, w, &s);
  b.d = r.d;
  b.m = r.m;
  pack_nibbles(r.q, b.qs);
  return r.err;
}
double refine_q5_1(const float* x, const float* w, block_q5_1& b, Scratch& s) {
  const AffBlock r = search_aff(31, x, w, &s);
  b.d = r.d;
  b.m = r.m;
  pack_q5(r.q, b.qs, b.qh);
  return r.err;
}

// IQ4_XS: the best real scale of each 32-weight sub-block (exact sweep), then a search over the
// fp16 super-block scale d; for each d every sub-block takes the 6-bit scale (floor or ceil of
// its ideal) whose re-rounded weights give the lower error.
double refine_iq4_xs(const float* x, const float* w_metric, block_iq4_xs& b, Scratch& s) {
  const TableLevels& lv = iq4_levels();
  constexpr int kSub = QK_K / kQ;
  float unit[QK_K];
  const float* w = search_weights(w_metric, QK_K, unit);
  double sub_scale[kSub];
  double smax = 0;
  for (int ib = 0; ib < kSub; ++ib) {
    sub_scale[ib] =
        qmath::best_scale_sweep(lv, x + ib * kQ, w + ib * kQ, kQ, 0.6, 1.5, s.events, s.idx);
    if (std::fabs(sub_scale[ib]) > std::fabs(smax)) smax = sub_scale[ib];
  }
  struct Config {
    uint16_t d = 0;
    int ls[kSub] = {};
    uint8_t idx[QK_K] = {};
    double err = INFINITY;
  };
  Config best;
  auto evaluate = [&](uint16_t d16) {
    Config c;
    c.d = d16;
    c.err = 0;
    const float d = h2f(d16);
    for (int ib = 0; ib < kSub; ++ib) {
      const float* xb = x + ib * kQ;
      const float* wb = w + ib * kQ;
      const double ideal = d != 0.0f ? sub_scale[ib] / d : 0.0;
      const int l0 = std::clamp(static_cast<int>(std::floor(ideal)), -32, 31);
      const int l1 = std::clamp(l0 + 1, -32, 31);
      double best_e = INFINITY;
      uint8_t tmp[kQ];
      for (int l : {l0, l1}) {
        const float dl = d * static_cast<float>(l);
        const float inv = dl != 0.0f ? 1.0f / dl : 0.0f;
        double e = 0;
        for (int j = 0; j < kQ; ++j) {
          const int k = lv.index_near(xb[j] * inv);
          tmp[j] = static_cast<uint8_t>(k);
          const float yv = dl * static_cast<float>(kIq4nlValues[k]);
          const double diff = static_cast<double>(yv) - xb[j];
          e += wb[j] * diff * diff;
        }
        if (e < best_e) {
          best_e = e;
          c.ls[ib] = l;
          std::memcpy(c.idx + ib * kQ, tmp, kQ);
        }
        if (l1 == l0) break;
      }
      c.err += best_e;
    }
    if (c.err < best.err) best = c;
  };
  if (smax == 0) {
    evaluate(0);
  } else {
    static constexpr double kFactors[] = {1.03, 1.0, 0.97, 0.94, 0.9, 0.85};
    for (double base : {-smax / 32, smax / 31}) {
      for (double f : kFactors) evaluate(fp16_saturating(static_cast<float>(base * f)));
    }
  }
  b.d = best.d;
  b.scales_h = 0;
  std::memset(b.scales_l, 0, sizeof(b.scales_l));
  for (int ib = 0; ib < kSub; ++ib) {
    const int l = best.ls[ib] + 32;
    b.scales_l[ib / 2] |= static_cast<uint8_t>((l & 0xf) << (4 * (ib % 2)));
    b.scales_h |= static_cast<uint16_t>((l >> 4) << (2 * ib));
    pack_nibbles(best.idx + ib * kQ, b.qs + 16 * ib);
  }
  if (w == w_metric) return best.err;
  float y[QK_K];
  decode_iq4_xs(b, y);
  return qmath::weighted_sq_error(x, y, w_metric, QK_K);
}

// Q4_0 and Q8_0 without importance weights are plain round-to-nearest, byte-identical to ggml
// (issue #3: llama.cpp's Q8_0/Q4_0 files are reproduced exactly); the refined search is used
// when an imatrix is given, where it lowers the weighted error.
QuantizeOptions rtn_unless_imatrix(const QuantizeOptions& o) {
  QuantizeOptions r = o;
  if (!o.imatrix && !o.refine_round_to_nearest) r.ggml_compatible = true;
  return r;
}

void quantize_q4_0(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_q4_0, ggml_row_q4_0, decode_q4_0>(s, d, r, n, rtn_unless_imatrix(o),
                                                        refine_q4_0);
}
void quantize_q4_1(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_q4_1, ggml_row_q4_1, decode_q4_1>(s, d, r, n, o, refine_q4_1);
}
void quantize_q5_0(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_q5_0, ggml_row_q5_0, decode_q5_0>(s, d, r, n, o, refine_q5_0);
}
void quantize_q5_1(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_q5_1, ggml_row_q5_1, decode_q5_1>(s, d, r, n, o, refine_q5_1);
}
void quantize_q8_0(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_q8_0, ggml_row_q8_0, decode_q8_0>(s, d, r, n, rtn_unless_imatrix(o),
                                                        refine_q8_0);
}
void quantize_iq4_nl(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_iq4_nl, ggml_row_iq4_nl, decode_iq4_nl>(s, d, r, n, o, refine_iq4_nl);
}
void quantize_iq4_xs(const float* s, void* d, int64_t r, int64_t n, const QuantizeOptions& o) {
  quantize_rows<block_iq4_xs, ggml_row_iq4_xs, decode_iq4_xs>(s, d, r, n, o, refine_iq4_xs);
}

// ------------------------------------------------------------------------------------------
// vec_dot against Q8_0 activations (32-blocks) and Q8_K activations (IQ4_XS). Integer sums per
// block, scaled in float like ggml's scalar paths.

void vec_dot_q4_0(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q4_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    int s = 0;
    for (int j = 0; j < kQ / 2; ++j) {
      s += ((w[ib].qs[j] & 0x0F) - 8) * x[ib].qs[j];
      s += ((w[ib].qs[j] >> 4) - 8) * x[ib].qs[j + kQ / 2];
    }
    sum += static_cast<float>(s) * h2f(w[ib].d) * h2f(x[ib].d);
  }
  *out = sum;
}
void vec_dot_q4_1(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q4_1*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    int s = 0, sx = 0;
    for (int j = 0; j < kQ / 2; ++j) {
      s += (w[ib].qs[j] & 0x0F) * x[ib].qs[j] + (w[ib].qs[j] >> 4) * x[ib].qs[j + kQ / 2];
      sx += x[ib].qs[j] + x[ib].qs[j + kQ / 2];
    }
    const float dx = h2f(x[ib].d);
    sum += static_cast<float>(s) * h2f(w[ib].d) * dx + static_cast<float>(sx) * h2f(w[ib].m) * dx;
  }
  *out = sum;
}
void vec_dot_q5_0(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q5_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    const uint32_t qh = load_qh(w[ib].qh);
    int s = 0;
    for (int j = 0; j < kQ / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      s += (((w[ib].qs[j] & 0x0F) | h0) - 16) * x[ib].qs[j];
      s += (((w[ib].qs[j] >> 4) | h1) - 16) * x[ib].qs[j + kQ / 2];
    }
    sum += static_cast<float>(s) * h2f(w[ib].d) * h2f(x[ib].d);
  }
  *out = sum;
}
void vec_dot_q5_1(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q5_1*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    const uint32_t qh = load_qh(w[ib].qh);
    int s = 0, sx = 0;
    for (int j = 0; j < kQ / 2; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10;
      const int h1 = (qh >> (j + 12)) & 0x10;
      s += ((w[ib].qs[j] & 0x0F) | h0) * x[ib].qs[j];
      s += ((w[ib].qs[j] >> 4) | h1) * x[ib].qs[j + kQ / 2];
      sx += x[ib].qs[j] + x[ib].qs[j + kQ / 2];
    }
    const float dx = h2f(x[ib].d);
    sum += static_cast<float>(s) * h2f(w[ib].d) * dx + static_cast<float>(sx) * h2f(w[ib].m) * dx;
  }
  *out = sum;
}
void vec_dot_q8_0(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_q8_0*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    int s = 0;
    for (int j = 0; j < kQ; ++j) s += w[ib].qs[j] * x[ib].qs[j];
    sum += static_cast<float>(s) * h2f(w[ib].d) * h2f(x[ib].d);
  }
  *out = sum;
}
void vec_dot_iq4_nl(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_iq4_nl*>(vw);
  const auto* x = static_cast<const block_q8_0*>(vx);
  float sum = 0;
  for (int64_t ib = 0; ib < n / kQ; ++ib) {
    int s = 0;
    for (int j = 0; j < kQ / 2; ++j) {
      s += kIq4nlValues[w[ib].qs[j] & 0x0F] * x[ib].qs[j];
      s += kIq4nlValues[w[ib].qs[j] >> 4] * x[ib].qs[j + kQ / 2];
    }
    sum += static_cast<float>(s) * h2f(w[ib].d) * h2f(x[ib].d);
  }
  *out = sum;
}
void vec_dot_iq4_xs(int64_t n, float* out, const void* vw, const void* vx) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* x = static_cast<const block_q8_K*>(vx);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int s = 0;
    for (int ib = 0; ib < QK_K / kQ; ++ib) {
      const uint8_t* qs = w[i].qs + 16 * ib;
      const int8_t* q8 = x[i].qs + kQ * ib;
      int sb = 0;
      for (int j = 0; j < 16; ++j) {
        sb += kIq4nlValues[qs[j] & 0x0F] * q8[j] + kIq4nlValues[qs[j] >> 4] * q8[j + 16];
      }
      s += iq4_xs_scale(w[i], ib) * sb;
    }
    sum += h2f(w[i].d) * x[i].d * static_cast<float>(s);
  }
  *out = sum;
}

template <class Block, void (*Decode)(const Block&, float*)>
constexpr DequantizeFn deq = dequantize_blocks<Block, Decode>;

}  // namespace

void quantize_row_q8_0_rtn(const float* x, void* dst, int64_t n) {
  ggml_row_q8_0(x, static_cast<block_q8_0*>(dst), n, nullptr);
}

void register_legacy_codecs(CodecTable& table) {
  auto set = [&](Type t, QuantizeFn q, DequantizeFn d, Type vdt, VecDotFn v) {
    table[static_cast<size_t>(t)] = Codec{t, q, d, vdt, v};
  };
  set(Type::Q4_0, quantize_q4_0, deq<block_q4_0, decode_q4_0>, Type::Q8_0, vec_dot_q4_0);
  set(Type::Q4_1, quantize_q4_1, deq<block_q4_1, decode_q4_1>, Type::Q8_0, vec_dot_q4_1);
  set(Type::Q5_0, quantize_q5_0, deq<block_q5_0, decode_q5_0>, Type::Q8_0, vec_dot_q5_0);
  set(Type::Q5_1, quantize_q5_1, deq<block_q5_1, decode_q5_1>, Type::Q8_0, vec_dot_q5_1);
  set(Type::Q8_0, quantize_q8_0, deq<block_q8_0, decode_q8_0>, Type::Q8_0, vec_dot_q8_0);
  set(Type::IQ4_NL, quantize_iq4_nl, deq<block_iq4_nl, decode_iq4_nl>, Type::Q8_0, vec_dot_iq4_nl);
  set(Type::IQ4_XS, quantize_iq4_xs, deq<block_iq4_xs, decode_iq4_xs>, Type::Q8_K, vec_dot_iq4_xs);
}

}  // namespace qforge
