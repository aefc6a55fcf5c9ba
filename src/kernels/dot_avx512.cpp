// AVX-512 variants of three levels (cpu.h), each function compiled for its level by the
// attribute of kernels/isa_target.h: avx512 (F/BW/VL/DQ) has the float dots and decoders,
// avx512vnni the integer block dots (vpdpbusd / vpdpwssd), avx512bf16 the bf16 encoder. The
// dispatch point registers a level's variants only when the CPU has it; types without a variant
// at a level fall back to the level below (simd_variants.h).
#include <immintrin.h>

#include <bit>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/dot_x86_shared.h"
#include "kernels/isa_target.h"
#include "kernels/simd_f32.h"
#include "kernels/simd_variants.h"

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsics as
// uninitialized; the warnings are false positives.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace qforge {
namespace {

// ---- float formats: the kernels of kernels/float_dot.inc at sixteen lanes ----

using V = x86::F32x16;
using x86::BF16;
using x86::F16;
using x86::F32;
#define QF_LEVEL QF_TARGET_AVX512
#include "kernels/float_dot.inc"
#undef QF_LEVEL

// f32 -> bf16 by vcvtneps2bf16 (round to nearest even, NaN quieted as f32_to_bf16 does). The
// instruction reads f32 denormals as zero where the reference rounds them, so lanes holding a
// denormal take the reference's integer rounding: the bytes are identical to quantize_bf16's.
QF_TARGET_AVX512_BF16 void quantize_bf16(const float* src, void* dst, int64_t nrows, int64_t n,
                                         const QuantizeOptions&) {
  auto* d = static_cast<uint16_t*>(dst);
  const int64_t total = nrows * n;
  const __m512i exponent = _mm512_set1_epi32(0x7f800000);
  const __m512i mantissa = _mm512_set1_epi32(0x007fffff);
  int64_t i = 0;
  for (; i + 16 <= total; i += 16) {
    const __m512 v = _mm512_loadu_ps(src + i);
    __m256i h = std::bit_cast<__m256i>(_mm512_cvtneps_pbh(v));
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 denormal =
        _mm512_testn_epi32_mask(u, exponent) & _mm512_test_epi32_mask(u, mantissa);
    if (denormal) {
      const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
      const __m512i r = _mm512_srli_epi32(
          _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
      h = _mm256_mask_mov_epi16(h, denormal, _mm512_cvtepi32_epi16(r));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), h);
  }
  for (; i < total; ++i) d[i] = f32_to_bf16(src[i]);
}

// Two Q8_0 blocks' quants in one register.
QF_TARGET_AVX512_VNNI inline __m512i load_pair(const int8_t* a, const int8_t* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// 16 floats: lanes 0-7 = v[a], lanes 8-15 = v[b] (v: 4 floats).
QF_TARGET_AVX512_VNNI inline __m512 lanes_ab(__m128 v, int a, int b) {
  const __m512i idx = _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

// sum of the products of two Q8_0 blocks' quants per 4 bytes: |y| (unsigned) times w with
// y's sign, via vpdpbusd (activations never hold -128).
QF_TARGET_AVX512_VNNI inline __m512i dot_pair(const block_q8_0* w, const block_q8_0* x) {
  const __m512i wq = load_pair(w[0].qs, w[1].qs);
  const __m512i yq = load_pair(x[0].qs, x[1].qs);
  const __mmask64 neg = _mm512_movepi8_mask(yq);
  const __m512i ws = _mm512_mask_sub_epi8(wq, neg, _mm512_setzero_si512(), wq);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(yq), ws);
}

// Q8_0 x Q8_0, four blocks per step (two per register); the eight scales of a step converted
// by one vcvtph2ps.
QF_TARGET_AVX512_VNNI void vec_dot_q8_0(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q8_0*>(w);
  const auto* bx = static_cast<const block_q8_0*>(x);
  const int64_t nb = n / 32;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    x86::prefetch_ahead(bw + i, 4 * sizeof *bw);
    const __m128 d = x86::scales4(bw + i, bx + i);
    const __m512i p0 = dot_pair(bw + i, bx + i);
    const __m512i p1 = dot_pair(bw + i + 2, bx + i + 2);
    acc0 = _mm512_fmadd_ps(lanes_ab(d, 0, 1), _mm512_cvtepi32_ps(p0), acc0);
    acc1 = _mm512_fmadd_ps(lanes_ab(d, 2, 3), _mm512_cvtepi32_ps(p1), acc1);
  }
  float r = V::hsum(_mm512_add_ps(acc0, acc1));
  for (; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += bw[i].qs[j] * bx[i].qs[j];
    r += _cvtsh_ss(bw[i].d) * _cvtsh_ss(bx[i].d) * static_cast<float>(s);
  }
  *out = r;
}

// int16 lane indices for vpermw: lanes 0-15 take element a, lanes 16-31 element b.
QF_TARGET_AVX512_VNNI inline __m512i halves16(int a, int b) {
  return _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(static_cast<int16_t>(a)),
                                 _mm512_set1_epi16(static_cast<int16_t>(b)));
}
// int16 lane indices: each quarter of 8 lanes takes element a, a+1, a+2, a+3.
QF_TARGET_AVX512_VNNI inline __m512i quarters16(int a) {
  return _mm512_set_epi16(a + 3, a + 3, a + 3, a + 3, a + 3, a + 3, a + 3, a + 3, a + 2, a + 2,
                          a + 2, a + 2, a + 2, a + 2, a + 2, a + 2, a + 1, a + 1, a + 1, a + 1,
                          a + 1, a + 1, a + 1, a + 1, a, a, a, a, a, a, a, a);
}

// Q4_K x Q8_K: 128 weights per step (the low nibbles of 64 bytes are sub-blocks 4h and 4h+2,
// the high nibbles 4h+1 and 4h+3), byte products by vpmaddubsw, scaled and summed into int32
// by vpdpwssd with the sub-block scales broadcast by vpermw.
QF_TARGET_AVX512_VNNI void vec_dot_q4_k(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q4_K*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i idx_lo[2] = {halves16(0, 2), halves16(4, 6)};
  const __m512i idx_hi[2] = {halves16(1, 3), halves16(5, 7)};
  __m512 acc = _mm512_setzero_ps();
  __m128 accm = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    x86::prefetch_ahead(bw + i, sizeof *bw);
    const __m128i scm = x86::k4_scales_mins(bw[i].scales);
    accm = _mm_fmadd_ps(_mm_set1_ps(bx[i].d * _cvtsh_ss(bw[i].dmin)),
                        _mm_cvtepi32_ps(x86::k4_min_terms(scm, bx[i].bsums)), accm);
    const __m512i sc = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(scm));
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(bw[i].qs + 64 * h);
      const __m512i y0 = _mm512_loadu_si512(bx[i].qs + 128 * h);
      const __m512i y1 = _mm512_loadu_si512(bx[i].qs + 128 * h + 64);
      const __m512i ylo = _mm512_shuffle_i64x2(y0, y1, 0x44);  // weights 0-31 and 64-95
      const __m512i yhi = _mm512_shuffle_i64x2(y0, y1, 0xee);  // weights 32-63 and 96-127
      const __m512i lo = _mm512_and_si512(v, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(lo, ylo),
                               _mm512_permutexvar_epi16(idx_lo[h], sc));
      s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(hi, yhi),
                               _mm512_permutexvar_epi16(idx_hi[h], sc));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(bx[i].d * _cvtsh_ss(bw[i].d)),
                          _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
  }
  *out = V::hsum(acc) - x86::hsum128(accm);
}

// Q6_K x Q8_K: 128 weights per step; the four 32-weight groups of a half are two registers
// of two groups each (their high bits shifted per half by vpsllvw / vpsrlvw), quants 0..63
// with the -32 through the block sums.
QF_TARGET_AVX512_VNNI void vec_dot_q6_k(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q6_K*>(w);
  const auto* bx = static_cast<const block_q8_K*>(x);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  // Per 256-bit half: groups 1 | 2 take high bits (qh & 3) << 4 | ((qh >> 2) & 3) << 4,
  // groups 3 | 4 take ((qh >> 4) & 3) << 4 | ((qh >> 6) & 3) << 4.
  const __m512i shl_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i shr_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const __m512i idx[4] = {quarters16(0), quarters16(4), quarters16(8), quarters16(12)};
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    x86::prefetch_ahead(bw + i, sizeof *bw);
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bw[i].scales)));
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].bsums));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5);
    __m512i s0 = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset));
    __m512i s1 = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(bw[i].ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i].qh + 32 * h)));
      const __m512i a = _mm512_or_si512(_mm512_and_si512(l, m4),
                                        _mm512_and_si512(_mm512_sllv_epi16(qh, shl_a), m30));
      const __m512i b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                        _mm512_and_si512(_mm512_srlv_epi16(qh, shr_b), m30));
      const int8_t* y = bx[i].qs + 128 * h;
      s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(a, _mm512_loadu_si512(y)),
                               _mm512_permutexvar_epi16(idx[2 * h], sc));
      s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(b, _mm512_loadu_si512(y + 64)),
                               _mm512_permutexvar_epi16(idx[2 * h + 1], sc));
    }
    // The -32 offset need not share lanes with the 0..63 products it cancels, so single lanes
    // can be large: reduce in int32 (exact) before going to float, or the float rounding is
    // relative to 32 * sum|x| instead of the dot's own size.
    const int32_t isum = _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
    sum += bx[i].d * _cvtsh_ss(bw[i].d) * static_cast<float>(isum);
  }
  *out = sum;
}

constexpr SimdVariant kAvx512Variants[] = {
    {Type::F32, nullptr, Type::F32, vec_dot_float<F32, F32>},
    {Type::F16, dequantize_float<F16>, Type::F32, vec_dot_float<F16, F32>},
    {Type::BF16, dequantize_float<BF16>, Type::F32, vec_dot_float<BF16, F32>},
};

constexpr SimdVariant kVnniVariants[] = {
    {Type::Q8_0, nullptr, Type::Q8_0, vec_dot_q8_0},
    {Type::Q4_K, nullptr, Type::Q8_K, vec_dot_q4_k},
    {Type::Q6_K, nullptr, Type::Q8_K, vec_dot_q6_k},
};

constexpr SimdVariant kBf16Variants[] = {
    {.type = Type::BF16,
     .dequantize = nullptr,
     .vec_dot_type = Type::F32,
     .vec_dot = nullptr,
     .convert = quantize_bf16},
};

}  // namespace

std::span<const SimdVariant> simd_variants_avx512() {
  return kAvx512Variants;
}
std::span<const SimdVariant> simd_variants_avx512_vnni() {
  return kVnniVariants;
}
std::span<const SimdVariant> simd_variants_avx512_bf16() {
  return kBf16Variants;
}

}  // namespace qforge
