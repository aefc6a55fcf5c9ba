// AVX-512 variants (F, BW, VL, DQ and VNNI), each function compiled for that target by an
// attribute; the dispatch point only registers them when the CPU has those extensions. Types
// without a variant here fall back to the AVX2 ones (see find_simd_variant).
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/simd_variants.h"

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsics as
// uninitialized; the warnings are false positives.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define QF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

namespace qforge {
namespace {

// 16 weights of each float format as f32.
QF_AVX512 inline __m512 load16_f32(const float* p) {
  return _mm512_loadu_ps(p);
}
QF_AVX512 inline __m512 load16_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
QF_AVX512 inline __m512 load16_bf16(const uint16_t* p) {
  const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

inline float scalar_w(const float* p, int64_t i) {
  return p[i];
}
inline float scalar_w(const uint16_t* p, int64_t i, bool bf) {
  return bf ? bf16_to_f32(p[i]) : fp16_to_f32(p[i]);
}

template <int Kind>  // 0: f32, 1: f16, 2: bf16
QF_AVX512 inline __m512 load16(const void* w, int64_t i) {
  if constexpr (Kind == 0)
    return load16_f32(static_cast<const float*>(w) + i);
  else if constexpr (Kind == 1)
    return load16_f16(static_cast<const uint16_t*>(w) + i);
  else
    return load16_bf16(static_cast<const uint16_t*>(w) + i);
}

QF_AVX512 inline float hsum512(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum w[i] * x[i] with 4 independent accumulators over 64 values per step.
template <int Kind>  // 0: f32, 1: f16, 2: bf16 weights; activations f32
QF_AVX512 float dot_float_f32(int64_t n, const void* w, const float* x) {
#define lw(i) load16<Kind>(w, (i))
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(lw(i), _mm512_loadu_ps(x + i), s0);
    s1 = _mm512_fmadd_ps(lw(i + 16), _mm512_loadu_ps(x + i + 16), s1);
    s2 = _mm512_fmadd_ps(lw(i + 32), _mm512_loadu_ps(x + i + 32), s2);
    s3 = _mm512_fmadd_ps(lw(i + 48), _mm512_loadu_ps(x + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(lw(i), _mm512_loadu_ps(x + i), s0);
#undef lw
  float r = hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < n; ++i) {
    if constexpr (Kind == 0)
      r += scalar_w(static_cast<const float*>(w), i) * x[i];
    else
      r += scalar_w(static_cast<const uint16_t*>(w), i, Kind == 2) * x[i];
  }
  return r;
}

QF_AVX512 void vec_dot_f32_f32(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_float_f32<0>(n, w, static_cast<const float*>(x));
}
QF_AVX512 void vec_dot_f16_f32(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_float_f32<1>(n, w, static_cast<const float*>(x));
}
QF_AVX512 void vec_dot_bf16_f32(int64_t n, float* out, const void* w, const void* x) {
  *out = dot_float_f32<2>(n, w, static_cast<const float*>(x));
}

QF_AVX512 void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* a = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load16_f16(a + i));
  for (; i < n; ++i) dst[i] = fp16_to_f32(a[i]);
}

// Two Q8_0 blocks' quants in one register.
QF_AVX512 inline __m512i load_pair(const int8_t* a, const int8_t* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Q8_0 x Q8_0, two blocks per step: |y| (unsigned) times w with y's sign, via vpdpbusd.
QF_AVX512 void vec_dot_q8_0(int64_t n, float* out, const void* w, const void* x) {
  const auto* bw = static_cast<const block_q8_0*>(w);
  const auto* bx = static_cast<const block_q8_0*>(x);
  const int64_t nb = n / 32;
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i wq = load_pair(bw[i].qs, bw[i + 1].qs);
    const __m512i yq = load_pair(bx[i].qs, bx[i + 1].qs);
    const __mmask64 neg = _mm512_movepi8_mask(yq);
    const __m512i ws = _mm512_mask_sub_epi8(wq, neg, _mm512_setzero_si512(), wq);
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(yq), ws);
    const __m256 d0 = _mm256_set1_ps(_cvtsh_ss(bw[i].d) * _cvtsh_ss(bx[i].d));
    const __m256 d1 = _mm256_set1_ps(_cvtsh_ss(bw[i + 1].d) * _cvtsh_ss(bx[i + 1].d));
    const __m512 d = _mm512_insertf32x8(_mm512_castps256_ps512(d0), d1, 1);
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
  }
  float r = hsum512(acc);
  for (; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += bw[i].qs[j] * bx[i].qs[j];
    r += _cvtsh_ss(bw[i].d) * _cvtsh_ss(bx[i].d) * static_cast<float>(s);
  }
  *out = r;
}

constexpr SimdVariant kVariants[] = {
    {Type::F32, nullptr, Type::F32, vec_dot_f32_f32},
    {Type::F16, dequantize_f16, Type::F32, vec_dot_f16_f32},
    {Type::BF16, nullptr, Type::F32, vec_dot_bf16_f32},
    {Type::Q8_0, nullptr, Type::Q8_0, vec_dot_q8_0},
};

}  // namespace

std::span<const SimdVariant> simd_variants_avx512() {
  static const bool vnni = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0;
  }();
  if (!vnni) return {};  // AVX-512 without VNNI: the AVX2 variants serve
  return kVariants;
}

}  // namespace qforge
