// Helpers shared by the x86 dot kernels of every level (dot_avx2.cpp, dot_avx512.cpp): they
// use only AVX2/F16C instructions, the build baseline, so they inline into functions compiled
// for a higher level too. Internal to kernels/.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"

namespace qforge::x86 {

// Generation streams each weight row once, and a row of a 2048-wide matrix is only 8 K-quant
// super-blocks (1 to 2 KiB): the hardware prefetcher, which restarts at every short row, leaves
// a dot's loads waiting on memory (1.1 B Q4_K_M tg 15-20 % slower without this). So the dot
// loops ask, per step of `bytes` weight bytes at p, for the bytes kPrefetchDistance further on:
// the next rows, which the following calls read. A prefetch past the matrix is harmless.
inline constexpr int kPrefetchDistance = 4096;
inline void prefetch_ahead(const void* p, size_t bytes) {
  const char* q = static_cast<const char*>(p) + kPrefetchDistance;
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T0);
}

// Q4_K/Q5_K's 12 packed scale bytes, decoded in vector registers: bytes 0-7 are the eight
// six-bit scales, bytes 8-15 the eight six-bit mins (the same bits as k4_scales). Reads 16
// bytes from q (the 4 after the scales belong to the same block).
inline __m128i k4_scales_mins(const uint8_t* q) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));  // u0 u1 u2 (u3)
  const __m128i a = _mm_shuffle_epi32(v, 0x98);                            // u0 u2 u1 u2
  const __m128i b = _mm_shuffle_epi32(v, 0x50);                            // u0 u0 u1 u1
  // Lanes 1, 3: bits 6-7 of the bytes of u0 / u1 move to bits 4-5.
  const __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(b, 6), _mm_set1_epi8(3)), 4);
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  return _mm_or_si128(low, _mm_and_si128(top, _mm_setr_epi32(0, -1, 0, -1)));
}

// The min terms of a Q4_K/Q5_K super-block, sum_j mn[j] * (bsums[2j] + bsums[2j+1]), as four
// int32 partial sums.
inline __m128i k4_min_terms(__m128i scm, const int16_t* bsums) {
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
  const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
  return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scm, 8)), pairs);
}

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// d_w * d_x of four consecutive blocks: the eight fp16 scales packed in two 64-bit integers
// (scalar loads and shifts, off the vector shuffle port) and converted by one vcvtph2ps.
template <class Block>
inline __m128 scales4(const Block* w, const block_q8_0* x) {
  const auto pack = [](uint16_t a, uint16_t b, uint16_t c, uint16_t d) {
    return static_cast<long long>(uint64_t(a) | uint64_t(b) << 16 | uint64_t(c) << 32 |
                                  uint64_t(d) << 48);
  };
  const __m128i h =
      _mm_set_epi64x(pack(x[0].d, x[1].d, x[2].d, x[3].d), pack(w[0].d, w[1].d, w[2].d, w[3].d));
  const __m256 f = _mm256_cvtph_ps(h);
  return _mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
}

}  // namespace qforge::x86
