// The f32 vector of each x86 level as one traits type, so that a float kernel is written once
// (kernels/float_dot.inc, kernels/gemm_ukernel.inc) and compiled per level: a file includes
// the kernel source inside a namespace that names the level's traits `V` and its target
// attribute `QF_LEVEL`. Each member carries its level's attribute (kernels/isa_target.h), so
// it inlines into kernels compiled for that level or above. Internal to kernels/.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/isa_target.h"

namespace qforge::x86 {

// Element formats a float kernel reads: their storage type and the scalar decode of one value.
struct F32 {
  using T = float;
  static float load1(const float* p) { return *p; }
};
struct F16 {
  using T = uint16_t;
  QF_TARGET_AVX2 static float load1(const uint16_t* p) { return _cvtsh_ss(*p); }  // exact (F16C)
};
struct BF16 {
  using T = uint16_t;
  static float load1(const uint16_t* p) { return bf16_to_f32(*p); }
};

// Eight lanes: AVX2 + FMA + F16C.
struct F32x8 {
  using reg = __m256;
  static constexpr int kLanes = 8;
  QF_TARGET_AVX2 static reg zero() { return _mm256_setzero_ps(); }
  QF_TARGET_AVX2 static reg set1(float v) { return _mm256_set1_ps(v); }
  QF_TARGET_AVX2 static reg load_aligned(const float* p) { return _mm256_load_ps(p); }
  QF_TARGET_AVX2 static void store_aligned(float* p, reg v) { _mm256_store_ps(p, v); }
  QF_TARGET_AVX2 static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  QF_TARGET_AVX2 static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  QF_TARGET_AVX2 static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // kLanes values of format Fmt from p, as f32.
  template <class Fmt>
  QF_TARGET_AVX2 static reg load(const typename Fmt::T* p) {
    if constexpr (std::is_same_v<Fmt, F32>) {
      return _mm256_loadu_ps(p);
    } else if constexpr (std::is_same_v<Fmt, F16>) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
      const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
  }
  QF_TARGET_AVX2 static float hsum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

// Sixteen lanes: AVX-512 F/BW/VL/DQ.
struct F32x16 {
  using reg = __m512;
  static constexpr int kLanes = 16;
  QF_TARGET_AVX512 static reg zero() { return _mm512_setzero_ps(); }
  QF_TARGET_AVX512 static reg set1(float v) { return _mm512_set1_ps(v); }
  QF_TARGET_AVX512 static reg load_aligned(const float* p) { return _mm512_load_ps(p); }
  QF_TARGET_AVX512 static void store_aligned(float* p, reg v) { _mm512_store_ps(p, v); }
  QF_TARGET_AVX512 static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  QF_TARGET_AVX512 static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  QF_TARGET_AVX512 static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  template <class Fmt>
  QF_TARGET_AVX512 static reg load(const typename Fmt::T* p) {
    if constexpr (std::is_same_v<Fmt, F32>) {
      return _mm512_loadu_ps(p);
    } else if constexpr (std::is_same_v<Fmt, F16>) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
      const __m512i v =
          _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
  }
  QF_TARGET_AVX512 static float hsum(reg v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace qforge::x86
