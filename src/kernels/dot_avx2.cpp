// AVX2 + FMA + F16C variants (the x86-64-v3 baseline, so no target attributes are needed).
// Integer dot products use the unsigned x signed byte multiply (vpmaddubsw): for signed weights
// the sign of w is moved onto the activations (|w| * sign(w)·y); for unsigned weights with an
// offset (Q6_K's -32, Q3_K's -4, Q4_1's +m) the offset is applied through the activation sums.
// Integer sums are exact, so results differ from the scalar reference only in float rounding.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/dot_x86_shared.h"
#include "kernels/simd_f32.h"
#include "kernels/simd_variants.h"

namespace qforge {
namespace {

using x86::hsum128;
using x86::k4_min_terms;
using x86::k4_scales_mins;
using x86::prefetch_ahead;
using x86::scales4;

// Horizontal sum of eight lanes (the level's traits, simd_f32.h).
inline float hsum(__m256 v) {
  return x86::F32x8::hsum(v);
}

// Hardware half -> float (F16C): exact, like core/fp16.h's reference, and much cheaper.
inline float fp16(uint16_t h) {
  return _cvtsh_ss(h);
}

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m128i load128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// 16 nibbles of 16 bytes -> 32 bytes: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* q) {
  const __m128i v = load128(q);
  const __m128i m = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// 32 bits -> 32 bytes, 0xff where the bit is set.
inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101,
                                         0x0000000000000000);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

// Sum of pairs of (unsigned u8 x signed s8) products -> 8 int32 lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Same for signed weights: |y| times w with y's sign (activations never hold -128).
inline __m256i dot_s8s8(__m256i w, __m256i y) {
  return dot_u8s8(_mm256_sign_epi8(y, y), _mm256_sign_epi8(w, y));
}

// ---- float formats: the kernels of kernels/float_dot.inc at eight lanes ----

using V = x86::F32x8;
using x86::BF16;
using x86::F16;
using x86::F32;
#define QF_LEVEL QF_TARGET_AVX2
#include "kernels/float_dot.inc"
#undef QF_LEVEL

// f32 -> f16 by vcvtps2ph with round-to-nearest-even: IEEE rounding of every finite value
// (denormal results and overflow to infinity included), the same bytes as f32_to_fp16.
void quantize_f16(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  auto* d = static_cast<uint16_t*>(dst);
  const int64_t total = nrows * n;
  int64_t i = 0;
  for (; i + 8 <= total; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < total; ++i) d[i] = f32_to_fp16(src[i]);
}

// ---- 32-blocks against Q8_0 activations ----

// Lane k of a 4-float vector in all 8 lanes of a 256-bit one.
inline __m256 lane8(__m128 v, int k) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(k));
}

template <class Block, class WeightBytes>
inline float dot_blocks_s8(int64_t n, const void* w, const void* x, WeightBytes wb) {
  const auto* bw = static_cast<const Block*>(w);
  const auto* bx = static_cast<const block_q8_0*>(x);
  const int64_t nb = n / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    prefetch_ahead(bw + i, 4 * sizeof *bw);
    const __m128 d = scales4(bw + i, bx + i);
    const __m256i p0 = dot_s8s8(wb(bw[i]), load256(bx[i].qs));
    const __m256i p1 = dot_s8s8(wb(bw[i + 1]), load256(bx[i + 1].qs));
    const __m256i p2 = dot_s8s8(wb(bw[i + 2]), load256(bx[i + 2].qs));
    const __m256i p3 = dot_s8s8(wb(bw[i + 3]), load256(bx[i + 3].qs));
    acc0 = _mm256_fmadd_ps(lane8(d, 0), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(lane8(d, 1), _mm256_cvtepi32_ps(p1), acc1);
    acc0 = _mm256_fmadd_ps(lane8(d, 2), _mm256_cvtepi32_ps(p2), acc0);
    acc1 = _mm256_fmadd_ps(lane8(d, 3), _mm256_cvtepi32_ps(p3), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p0 = dot_s8s8(wb(bw[i]), load256(bx[i].qs));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16(bw[i].d) * fp16(bx[i].d)), _mm256_cvtepi32_ps(p0),
                           acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

void vec_dot_q8_0(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_blocks_s8<block_q8_0>(n, w, x, [](const block_q8_0& b) { return load256(b.qs); });
}

void vec_dot_q4_0(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_blocks_s8<block_q4_0>(n, w, x, [](const block_q4_0& b) {
    return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8));
  });
}

void vec_dot_q5_0(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_blocks_s8<block_q5_0>(n, w, x, [](const block_q5_0& b) {
    // q - 16 = nibble | 0xf0 where the high bit is clear (two's complement), nibble otherwise.
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(-16));
    return _mm256_or_si256(unpack_nibbles(b.qs), hi);
  });
}

void vec_dot_iq4_nl(int64_t n, float* out, const void* w, const void* x) {
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  *out = dot_blocks_s8<block_iq4_nl>(n, w, x, [&](const block_iq4_nl& b) {
    return _mm256_shuffle_epi8(table, unpack_nibbles(b.qs));
  });
}

// Unsigned weights with a per-block offset m: sum = d*dx*sum(q*y) + m*dx*sum(y).
template <class Block, class WeightBytes>
inline float dot_blocks_u8_min(int64_t n, const void* w, const void* x, WeightBytes wb) {
  const auto* bw = static_cast<const Block*>(w);
  const auto* bx = static_cast<const block_q8_0*>(x);
  const int64_t nb = n / 32;
  const __m256i ones = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps(), accm = acc;
  for (int64_t i = 0; i < nb; ++i) {
    if (i % 4 == 0) prefetch_ahead(bw + i, 4 * sizeof *bw);
    const __m256i y = load256(bx[i].qs);
    const float dx = fp16(bx[i].d);
    const __m256i p = dot_u8s8(wb(bw[i]), y);
    const __m256i s = dot_u8s8(ones, y);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(bw[i].d) * dx), _mm256_cvtepi32_ps(p), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(fp16(bw[i].m) * dx), _mm256_cvtepi32_ps(s), accm);
  }
  return hsum(_mm256_add_ps(acc, accm));
}

void vec_dot_q4_1(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_blocks_u8_min<block_q4_1>(n, w, x,
                                       [](const block_q4_1& b) { return unpack_nibbles(b.qs); });
}

void vec_dot_q5_1(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_blocks_u8_min<block_q5_1>(n, w, x, [](const block_q5_1& b) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(16));
    return _mm256_or_si256(unpack_nibbles(b.qs), hi);
  });
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256 d = _mm256_set1_ps(fp16(b[i].d));
    for (int j = 0; j < 32; j += 8) {
      const __m256i q =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[i].qs + j)));
      _mm256_storeu_ps(dst + i * 32 + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
    }
  }
}

// ---- K-quants against Q8_K activations ----

// Decodes Q4_K/Q5_K's 12 packed bytes into 8 six-bit scales and 8 six-bit mins.
inline void k4_scales(const uint8_t* q, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    mn[j] = q[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
    mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Two int16 scales for the two 16-value halves of a 32-byte product vector.
inline __m256i scale_pair(int a, int b) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(b)),
                          _mm_set1_epi16(static_cast<int16_t>(a)));
}

// pshufb controls that broadcast int16 lane k (k < 8) of a 128-bit lane to all 8 lanes.
alignas(32) constexpr uint8_t kBroadcast16[8][32] = {
#define QF_B(k)                                                                                   \
  {                                                                                               \
    2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1,     \
        2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, \
        2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, \
        2 * k, 2 * k + 1                                                                          \
  }
    QF_B(0), QF_B(1), QF_B(2), QF_B(3), QF_B(4),
    QF_B(5), QF_B(6), QF_B(7)
#undef QF_B
};
inline __m256i bcast16(__m256i v, int k) {
  return _mm256_shuffle_epi8(v,
                             _mm256_load_si256(reinterpret_cast<const __m256i*>(kBroadcast16[k])));
}

// Q4_K and Q5_K (Block): per 64 weights two unsigned x signed byte products, scaled by the
// sub-block scales as int16 (vpmaddwd); scales and mins decoded with vector ops, the min terms
// from the block sums. Q5_K ORs its fifth bits (qh) into the nibbles first.
template <class Block>
void vec_dot_q45_k(int64_t n, float* out, const void* w, const void* x) {
  constexpr bool kQ5 = std::is_same_v<Block, block_q5_K>;
  const auto* bw = static_cast<const Block*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  __m128 accm = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(bw + i, sizeof *bw);
    const __m128i scm = k4_scales_mins(bw[i].scales);
    accm = _mm_fmadd_ps(_mm_set1_ps(bx[i].d * fp16(bw[i].dmin)),
                        _mm_cvtepi32_ps(k4_min_terms(scm, bx[i].bsums)), accm);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
    const uint8_t* q = bw[i].qs;
    const int8_t* y = bx[i].qs;
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kQ5) qh = load256(bw[i].qh);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i v = load256(q + 32 * j);
      __m256i lo = _mm256_and_si256(v, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if constexpr (kQ5) {
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
      }
      const __m256i p0 = _mm256_maddubs_epi16(lo, load256(y + 64 * j));
      const __m256i p1 = _mm256_maddubs_epi16(hi, load256(y + 64 * j + 32));
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, bcast16(sc, 2 * j)));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, bcast16(sc, 2 * j + 1)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(bx[i].d * fp16(bw[i].d)),
                          _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
  }
  *out = hsum(acc) - hsum128(accm);
}

// Sum over the 16 groups of 16 of scale[g] * bsums[g] (the offset terms of Q6_K / Q3_K).
inline int32_t scaled_bsums(const int16_t* bsums, const int8_t* scales) {
  const __m256i s = _mm256_cvtepi8_epi16(load128(scales));
  const __m256i p = _mm256_madd_epi16(load256(bsums), s);
  __m128i r = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4e));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xb1));
  return _mm_cvtsi128_si32(r);
}

// pshufb controls for Q6_K: int16 lane 2k of a 128-bit lane into the low half, lane 2k+1 into
// the high half (the two 16-weight groups of a 32-byte product vector).
alignas(32) constexpr uint8_t kPair16[4][32] = {
#define QF_P(k)                                                                                 \
  {                                                                                             \
    4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,   \
        4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 2,  \
        4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, \
        4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3                                   \
  }
    QF_P(0), QF_P(1), QF_P(2), QF_P(3)
#undef QF_P
};

// Q6_K: quants 0..63 (the -32 goes through the block sums, kept as a vector term), scales
// broadcast from one register by pshufb.
void vec_dot_q6_k(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q6_K*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m3 = _mm256_set1_epi8(0x03);
  __m256i pair[4];
  for (int k = 0; k < 4; ++k)
    pair[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPair16[k]));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(bw + i, sizeof *bw);
    const __m256i sc16 = _mm256_cvtepi8_epi16(load128(bw[i].scales));
    // 32 * sum_g scale[g] * bsums[g], as eight int32 partial sums.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load256(bx[i].bsums), sc16), 5);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = bw[i].ql + 64 * h;
      const int8_t* y = bx[i].qs + 128 * h;
      const __m256i sch = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                 : _mm256_permute2x128_si256(sc16, sc16, 0x11);
      const __m256i l0 = load256(ql), l1 = load256(ql + 32), qh = load256(bw[i].qh + 32 * h);
      const __m256i q1 =
          _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
      const __m256i q2 =
          _mm256_or_si256(_mm256_and_si256(l1, m4),
                          _mm256_and_si256(_mm256_slli_epi16(qh, 2), _mm256_set1_epi8(0x30)));
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                         _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
      const __m256i q4 =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), _mm256_set1_epi8(0x30)));
      const __m256i p1 = _mm256_maddubs_epi16(q1, load256(y));
      const __m256i p2 = _mm256_maddubs_epi16(q2, load256(y + 32));
      const __m256i p3 = _mm256_maddubs_epi16(q3, load256(y + 64));
      const __m256i p4 = _mm256_maddubs_epi16(q4, load256(y + 96));
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sch, pair[0])));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p2, _mm256_shuffle_epi8(sch, pair[1])));
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p3, _mm256_shuffle_epi8(sch, pair[2])));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p4, _mm256_shuffle_epi8(sch, pair[3])));
    }
    const __m256i sumi = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), offset);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(bx[i].d * fp16(bw[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *out = hsum(acc);
}

void vec_dot_q2_k(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q2_K*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  float acc_min = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(bw + i, sizeof *bw);
    const uint8_t* sc = bw[i].scales;
    int8_t mins[16];
    for (int g = 0; g < 16; ++g) mins[g] = static_cast<int8_t>(sc[g] >> 4);
    acc_min += bx[i].d * fp16(bw[i].dmin) * static_cast<float>(scaled_bsums(bx[i].bsums, mins));
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(bw[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        const __m256i p = _mm256_maddubs_epi16(v, load256(bx[i].qs + 128 * h + 32 * j));
        const int g = 8 * h + 2 * j;
        sumi =
            _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[g] & 0xf, sc[g + 1] & 0xf)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(bx[i].d * fp16(bw[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *out = hsum(acc) - acc_min;
}

// Q3_K's 16 six-bit scales, minus 32.
inline void q3k_scales(const uint8_t* s, int8_t* out) {
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (s[g] & 0xf) : (s[g - 8] >> 4);
    const int high = (s[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
    out[g] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

void vec_dot_q3_k(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q3_K*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(bw + i, sizeof *bw);
    int8_t sc[16];
    q3k_scales(bw[i].scales, sc);
    // value = low2 + 4*hbit - 4: the -4 goes through the activation sums.
    const int32_t offset = 4 * scaled_bsums(bx[i].bsums, sc);
    const __m256i hm = load256(bw[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(bw[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        const __m256i hb =
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one), 2);
        const __m256i v = _mm256_or_si256(lo, hb);
        const __m256i p = _mm256_maddubs_epi16(v, load256(bx[i].qs + 128 * h + 32 * j));
        const int g = 8 * h + 2 * j;
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[g], sc[g + 1])));
      }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(offset, 0, 0, 0, 0, 0, 0, 0));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(bx[i].d * fp16(bw[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *out = hsum(acc);
}

void vec_dot_iq4_xs(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_iq4_xs*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead(bw + i, sizeof *bw);
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((bw[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) |
                     (((bw[i].scales_h >> (2 * ib)) & 3) << 4);
      const __m256i v = _mm256_shuffle_epi8(table, unpack_nibbles(bw[i].qs + 16 * ib));
      const __m256i y = load256(bx[i].qs + 32 * ib);
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(y, y), _mm256_sign_epi8(v, y));
      sumi = _mm256_add_epi32(
          sumi, _mm256_madd_epi16(p, _mm256_set1_epi16(static_cast<int16_t>(ls - 32))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(bx[i].d * fp16(bw[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *out = hsum(acc);
}

// ---- K-quant dequantization (used by the batched matmul) ----

void dequantize_q4_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_K*>(src);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], mn[8];
    k4_scales(b[i].scales, sc, mn);
    const float d = fp16(b[i].d), dmin = fp16(b[i].dmin);
    float* y = dst + i * QK_K;
    for (int j = 0; j < 4; ++j) {
      const __m256i q = load256(b[i].qs + 32 * j);
      const __m256i v[2] = {_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)};
      for (int hlf = 0; hlf < 2; ++hlf) {
        const __m256 ds = _mm256_set1_ps(d * sc[2 * j + hlf]);
        const __m256 ms = _mm256_set1_ps(dmin * mn[2 * j + hlf]);
        const __m128i lo = _mm256_castsi256_si128(v[hlf]), hi = _mm256_extracti128_si256(v[hlf], 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; ++k) {
          const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
          // d*q - m, rounded as the reference does it: (d*q) - m, two roundings.
          _mm256_storeu_ps(y + 64 * j + 32 * hlf + 8 * k, _mm256_sub_ps(_mm256_mul_ps(ds, f), ms));
        }
      }
    }
  }
}

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q6_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16(b[i].d);
    float* y = dst + i * QK_K;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      alignas(32) int8_t q[128];
      const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3),
                    k32 = _mm256_set1_epi8(32);
      const __m256i l0 = load256(ql), l1 = load256(ql + 32), hb = load256(qh);
      auto put = [&](int off, __m256i low, int shift) {
        const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, shift), m3), 4);
        _mm256_store_si256(reinterpret_cast<__m256i*>(q + off),
                           _mm256_sub_epi8(_mm256_or_si256(low, hi), k32));
      };
      put(0, _mm256_and_si256(l0, m4), 0);
      put(32, _mm256_and_si256(l1, m4), 2);
      put(64, _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), 4);
      put(96, _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), 6);
      for (int g = 0; g < 8; ++g) {
        const __m256 ds = _mm256_set1_ps(d * sc[g]);
        for (int k = 0; k < 16; k += 8) {
          const __m256i v = _mm256_cvtepi8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 16 * g + k)));
          _mm256_storeu_ps(y + 128 * h + 16 * g + k, _mm256_mul_ps(ds, _mm256_cvtepi32_ps(v)));
        }
      }
    }
  }
}

// ---- activation encoders ----

// round-half-away-from-zero of v (as roundf), exact for |v| < 2^23.
inline __m256 round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_sub_ps(v, t);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 afrac = _mm256_andnot_ps(sign_mask, frac);
  const __m256 ge = _mm256_cmp_ps(afrac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign_mask, v));
  return _mm256_add_ps(t, _mm256_and_ps(ge, one));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Q8_0: d = amax / 127, q = roundf(x / d) (ggml's reference rounding).
void quantize_q8_0(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  auto* b = static_cast<block_q8_0*>(dst);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < nrows * n / 32; ++i) {
    const float* x = src + i * 32;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
    }
    const float d = hmax(amax) / 127.f;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
    // pack 32 int32 -> 32 int8 (values are within [-127, 127])
    const __m256i a = _mm256_packs_epi32(q[0], q[1]);  // lane-interleaved
    const __m256i c = _mm256_packs_epi32(q[2], q[3]);
    __m256i r = _mm256_packs_epi16(a, c);
    r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), r);
  }
}

// Q8_K: iscale = -127 / (the value of largest magnitude), q = min(127, round-half-even(x *
// iscale)), d = 1 / iscale, and the sums of each 16 quants (ggml's reference encoder).
void quantize_q8_k(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  auto* b = static_cast<block_q8_K*>(dst);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < nrows * n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < QK_K; k += 8)
      amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask));
    const float am = hmax(amax);
    if (am == 0.f) {
      std::memset(&b[i], 0, sizeof(block_q8_K));
      continue;
    }
    float mx = 0;  // the first value of largest magnitude, with its sign
    for (int k = 0; k < QK_K; ++k)
      if (std::fabs(x[k]) == am) {
        mx = x[k];
        break;
      }
    const float iscale = -127.f / mx;
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int g = 0; g < 16; ++g) {
      const __m256i q0 =
          _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + 16 * g))), lim);
      const __m256i q1 = _mm256_min_epi32(
          _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + 16 * g + 8))), lim);
      __m256i s = _mm256_add_epi32(q0, q1);
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
      b[i].bsums[g] = static_cast<int16_t>(_mm_cvtsi128_si32(s4));
      const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
      const __m128i p8 =
          _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * g), p8);
    }
    b[i].d = 1 / iscale;
  }
}

constexpr SimdVariant kVariants[] = {
    {Type::Q8_K, nullptr, Type::Q8_K, nullptr, quantize_q8_k},
    {Type::F32, nullptr, Type::F32, vec_dot_float<F32, F32>},
    {.type = Type::F16,
     .dequantize = dequantize_float<F16>,
     .vec_dot_type = Type::F32,
     .vec_dot = vec_dot_float<F16, F32>,
     .convert = quantize_f16},
    {Type::BF16, dequantize_float<BF16>, Type::F32, vec_dot_float<BF16, F32>},
    {Type::Q8_0, dequantize_q8_0, Type::Q8_0, vec_dot_q8_0, quantize_q8_0},
    {Type::Q4_0, nullptr, Type::Q8_0, vec_dot_q4_0},
    {Type::Q4_1, nullptr, Type::Q8_0, vec_dot_q4_1},
    {Type::Q5_0, nullptr, Type::Q8_0, vec_dot_q5_0},
    {Type::Q5_1, nullptr, Type::Q8_0, vec_dot_q5_1},
    {Type::IQ4_NL, nullptr, Type::Q8_0, vec_dot_iq4_nl},
    {Type::Q2_K, nullptr, Type::Q8_K, vec_dot_q2_k},
    {Type::Q3_K, nullptr, Type::Q8_K, vec_dot_q3_k},
    {Type::Q4_K, dequantize_q4_k, Type::Q8_K, vec_dot_q45_k<block_q4_K>},
    {Type::Q5_K, nullptr, Type::Q8_K, vec_dot_q45_k<block_q5_K>},
    {Type::Q6_K, dequantize_q6_k, Type::Q8_K, vec_dot_q6_k},
    {Type::IQ4_XS, nullptr, Type::Q8_K, vec_dot_iq4_xs},
};

}  // namespace

std::span<const SimdVariant> simd_variants_avx2() {
  return kVariants;
}

}  // namespace qforge
