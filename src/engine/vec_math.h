// Small f32 vector helpers shared by the engine's fast path and the evaluation code: the build
// baseline (x86-64-v3) has AVX2+FMA; other builds get the scalar loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define QF_ENGINE_AVX2 1
#endif

namespace qforge::vec {

#ifdef QF_ENGINE_AVX2
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

#ifdef QF_ENGINE_AVX2
// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial (relative
// error ~2e-7, like expf), 2^n through the exponent bits. Inputs are clamped to [-87.3, 88],
// so e^-inf gives ~1e-38 instead of 0 (callers never pass masked positions).
inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

// x[i] = exp(x[i] - m) for i < n; returns the sum.
inline float exp_sub_sum(float* x, int64_t n, float m) {
  int64_t i = 0;
  float sum = 0;
#ifdef QF_ENGINE_AVX2
  __m256 acc = _mm256_setzero_ps();
  const __m256 vm = _mm256_set1_ps(m);
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  sum = hsum(acc);
#endif
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - m));
  return sum;
}

// Largest of x[0..n); -inf when n == 0.
inline float max_of(const float* x, int64_t n) {
  int64_t i = 0;
  float m = -INFINITY;
#ifdef QF_ENGINE_AVX2
  if (n >= 8) {
    __m256 vm = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    m = _mm_cvtss_f32(h);
  }
#endif
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// sum_i exp(x[i] - m), accumulated in double across 8-lane blocks.
inline double sum_exp_sub(const float* x, int64_t n, float m) {
  int64_t i = 0;
  double sum = 0;
#ifdef QF_ENGINE_AVX2
  const __m256 vm = _mm256_set1_ps(m);
  for (; i + 8 <= n; i += 8) sum += hsum(exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
#endif
  for (; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - m));
  return sum;
}

}  // namespace qforge::vec
