// AVX2 + FMA vector ops (kernels/vec_ops.h). Each function carries its target attribute, so
// this file builds at any x86-64 baseline; the dispatch point selects it only when the CPU has
// AVX2 and FMA. Tails shorter than a vector run the scalar loop of the reference.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/isa_target.h"
#include "kernels/simd_f32.h"
#include "kernels/vec_ops.h"

namespace qforge {
namespace {

using x86::F32x8;
QF_TARGET_AVX2 inline float hsum(__m256 v) {
  return F32x8::hsum(v);
}

// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial (relative
// error ~2e-7, like expf), 2^n through the exponent bits. Inputs are clamped to [-87.3, 88],
// so e^-inf gives ~1e-38 instead of 0 (callers never pass masked positions).
QF_TARGET_AVX2 inline __m256 exp8(__m256 x) {
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

QF_TARGET_AVX2 float dot(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

QF_TARGET_AVX2 void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

QF_TARGET_AVX2 void swiglu(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_storeu_ps(
        g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

QF_TARGET_AVX2 float exp_sub_sum(float* x, int64_t n, float m) {
  int64_t i = 0;
  __m256 acc = _mm256_setzero_ps();
  const __m256 vm = _mm256_set1_ps(m);
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - m));
  return sum;
}

QF_TARGET_AVX2 float max_of(const float* x, int64_t n) {
  int64_t i = 0;
  float m = -INFINITY;
  if (n >= 8) {
    __m256 vm = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    m = _mm_cvtss_f32(h);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

QF_TARGET_AVX2 double sum_exp_sub(const float* x, int64_t n, float m) {
  int64_t i = 0;
  double sum = 0;
  const __m256 vm = _mm256_set1_ps(m);
  for (; i + 8 <= n; i += 8) sum += hsum(exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
  for (; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - m));
  return sum;
}

QF_TARGET_AVX2 void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float ms = dot(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(ms + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// Eight keys or values from a row of f32 or f16 (vcvtph2ps on load).
QF_TARGET_AVX2 inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
QF_TARGET_AVX2 inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float to_f32(float v) {
  return v;
}
QF_TARGET_AVX2 inline float to_f32(uint16_t v) {
  return _cvtsh_ss(v);
}

// 16 keys per step, the 4 x 2 accumulators in registers; keys of type T (float or f16 bits).
template <class T>
QF_TARGET_AVX2 void qk_scores4_t(const float* const q[4], const T* kt, int64_t ks, int64_t hd,
                                 int64_t n_kv, float scale, float* out) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < n_kv; j += 16) {
    __m256 a[4][2];
    for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; ++d) {
      const __m256 k0 = load8(kt + d * ks + j);
      const __m256 k1 = load8(kt + d * ks + j + 8);
      for (int i = 0; i < 4; ++i) {
        const __m256 qd = _mm256_broadcast_ss(q[i] + d);
        a[i][0] = _mm256_fmadd_ps(qd, k0, a[i][0]);
        a[i][1] = _mm256_fmadd_ps(qd, k1, a[i][1]);
      }
    }
    for (int i = 0; i < 4; ++i) {
      _mm256_storeu_ps(out + i * ks + j, _mm256_mul_ps(a[i][0], vs));
      _mm256_storeu_ps(out + i * ks + j + 8, _mm256_mul_ps(a[i][1], vs));
    }
  }
}

// Value rows of 8 * HD8 elements of type T, the accumulators in registers (the unroll pragmas
// keep GCC from storing the accumulator array to the stack on every key).
template <int HD8, class T>
QF_TARGET_AVX2 void weighted_values_n(const float* w, const T* v, int64_t n_kv, float inv,
                                      float* out) {
  __m256 acc[HD8];
#pragma GCC unroll 16
  for (int k = 0; k < HD8; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_kv; ++j) {
    const __m256 p = _mm256_broadcast_ss(w + j);
    const T* vj = v + j * (8 * HD8);
#pragma GCC unroll 16
    for (int k = 0; k < HD8; ++k) acc[k] = _mm256_fmadd_ps(p, load8(vj + 8 * k), acc[k]);
  }
  const __m256 vi = _mm256_set1_ps(inv);
#pragma GCC unroll 16
  for (int k = 0; k < HD8; ++k) _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(acc[k], vi));
}

template <class T>
QF_TARGET_AVX2 void weighted_values_t(const float* w, const T* v, int64_t n_kv, int64_t hd,
                                      float inv, float* out) {
  switch (hd) {
    case 128:
      return weighted_values_n<16>(w, v, n_kv, inv, out);
    case 64:
      return weighted_values_n<8>(w, v, n_kv, inv, out);
    case 32:
      return weighted_values_n<4>(w, v, n_kv, inv, out);
    case 16:
      return weighted_values_n<2>(w, v, n_kv, inv, out);
    case 8:
      return weighted_values_n<1>(w, v, n_kv, inv, out);
    default:
      break;
  }
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j < n_kv; ++j) {
    if constexpr (std::is_same_v<T, float>) {
      axpy(w[j], v + j * hd, out, hd);
    } else {
      for (int64_t d = 0; d < hd; ++d) out[d] += w[j] * to_f32(v[j * hd + d]);
    }
  }
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

QF_TARGET_AVX2 void qk_scores4(const float* const q[4], const float* kt, int64_t ks, int64_t hd,
                               int64_t n_kv, float scale, float* out) {
  qk_scores4_t(q, kt, ks, hd, n_kv, scale, out);
}
QF_TARGET_AVX2 void qk_scores4_f16(const float* const q[4], const uint16_t* kt, int64_t ks,
                                   int64_t hd, int64_t n_kv, float scale, float* out) {
  qk_scores4_t(q, kt, ks, hd, n_kv, scale, out);
}
QF_TARGET_AVX2 void weighted_values(const float* w, const float* v, int64_t n_kv, int64_t hd,
                                    float inv, float* out) {
  weighted_values_t(w, v, n_kv, hd, inv, out);
}
QF_TARGET_AVX2 void weighted_values_f16(const float* w, const uint16_t* v, int64_t n_kv, int64_t hd,
                                        float inv, float* out) {
  weighted_values_t(w, v, n_kv, hd, inv, out);
}

// The 6 x 2 accumulators in registers over all n rows (unrolled by pragma, as above).
QF_TARGET_AVX2 void gram_6x16(const float* x, int64_t n, int64_t cols, int64_t i0, int64_t j0,
                              float* c) {
  __m256 acc[12];
#pragma GCC unroll 12
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * cols;
    const __m256 b0 = _mm256_loadu_ps(row + j0), b1 = _mm256_loadu_ps(row + j0 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m256 a = _mm256_broadcast_ss(row + i0 + r);
      acc[2 * r] = _mm256_fmadd_ps(a, b0, acc[2 * r]);
      acc[2 * r + 1] = _mm256_fmadd_ps(a, b1, acc[2 * r + 1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    float* cr = c + (i0 + r) * cols + j0;
    _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[2 * r]));
    _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[2 * r + 1]));
  }
}

}  // namespace

QFORGE_VEC_OPS_TABLE(vec_ops_avx2)

}  // namespace qforge
