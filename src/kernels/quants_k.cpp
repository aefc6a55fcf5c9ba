#include "kernels/quants_k.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/codec.h"
#include "kernels/kquant_search.h"
#include "kernels/quant_math.h"

namespace qforge {
namespace {

using kq::AffineBlock;
using kq::AffineSpec;
using kq::refine_affine;
using kq::refine_sym;
using kq::SymBlock;
using kq::SymSpec;
using qmath::nearest_int_ggml;

// Refinement parameters per type: {sub-blocks, length, qmax (or qmin, qmax), scale range,
// window, rounds}. Chosen on kquant_codec_bench so that the refined encoder costs at most about
// 2.7x ggml's reference encoder (Q3_K's is very cheap, so its ratio is the tightest); wider
// windows and more rounds gave < 0.3% lower error.
constexpr AffineSpec kQ2Spec{16, 16, 3, 15, 2, 3};
constexpr AffineSpec kQ4Spec{8, 32, 15, 63, 2, 3};
constexpr AffineSpec kQ5Spec{8, 32, 31, 63, 2, 3};
constexpr SymSpec kQ3Spec{16, 16, -4, 3, -32, 31, 2, 3};
constexpr SymSpec kQ6Spec{16, 16, -32, 31, -128, 127, 3, 3};

// ---- packing: the exact ggml bit layouts ------------------------------------------------------

// 2-bit quants (Q2_K, and the low bits of Q3_K): element 128*h + 32*g + l lives in byte
// 32*h + l at bit 2*g.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* p = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
    }
  }
}
void unpack_2bit(const uint8_t* qs, uint8_t* L) {
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) L[128 * h + 32 * g + l] = (qs[32 * h + l] >> (2 * g)) & 3;
    }
  }
}

// Q4_K/Q5_K: 8 six-bit scales and mins in 12 bytes.
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = ls[j];
    s[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    s[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    s[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
    s[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
  }
}
void unpack_scale_min_k4(const uint8_t* s, uint8_t* ls, uint8_t* lm) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      ls[j] = s[j] & 63;
      lm[j] = s[j + 4] & 63;
    } else {
      ls[j] = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
      lm[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
  }
}

// Q3_K: 16 six-bit values (stored with +32 offset) in 12 bytes.
void pack_scales_q3(const int* s, uint8_t* out) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int l = s[j] + 32;
    if (j < 8) {
      out[j] = static_cast<uint8_t>(l & 0xF);
    } else {
      out[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
    }
    out[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
  }
}
void unpack_scales_q3(const uint8_t* in, int* s) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? in[j] & 0xF : in[j - 8] >> 4;
    const int hi = (in[8 + j % 4] >> (2 * (j / 4))) & 3;
    s[j] = (lo | (hi << 4)) - 32;
  }
}

void pack_q2K(const AffineBlock& a, block_q2_K& b) {
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(a.ls[j] | (a.lm[j] << 4));
  pack_2bit(a.q, b.qs);
  b.d = a.d;
  b.dmin = a.dmin;
}
void unpack_q2K(const block_q2_K& b, AffineBlock& a) {
  for (int j = 0; j < 16; ++j) {
    a.ls[j] = b.scales[j] & 0xF;
    a.lm[j] = b.scales[j] >> 4;
  }
  unpack_2bit(b.qs, a.q);
  a.d = b.d;
  a.dmin = b.dmin;
}

void pack_q3K(const SymBlock& a, block_q3_K& b) {
  uint8_t L[QK_K];
  std::memset(b.hmask, 0, sizeof b.hmask);
  for (int k = 0; k < QK_K; ++k) {
    int l = a.q[k] + 4;  // 0..7; bit 2 goes to hmask[k % 32] bit k / 32
    if (l > 3) {
      b.hmask[k % 32] |= static_cast<uint8_t>(1u << (k / 32));
      l -= 4;
    }
    L[k] = static_cast<uint8_t>(l);
  }
  pack_2bit(L, b.qs);
  pack_scales_q3(a.s, b.scales);
  b.d = a.d;
}
void unpack_q3K(const block_q3_K& b, SymBlock& a) {
  uint8_t L[QK_K];
  unpack_2bit(b.qs, L);
  for (int k = 0; k < QK_K; ++k) {
    const bool high = (b.hmask[k % 32] >> (k / 32)) & 1;
    a.q[k] = static_cast<int8_t>(L[k] - (high ? 0 : 4));
  }
  unpack_scales_q3(b.scales, a.s);
  a.d = b.d;
}

void pack_q4K(const AffineBlock& a, block_q4_K& b) {
  pack_scale_min_k4(a.ls, a.lm, b.scales);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      b.qs[32 * p + l] = static_cast<uint8_t>(a.q[64 * p + l] | (a.q[64 * p + 32 + l] << 4));
    }
  }
  b.d = a.d;
  b.dmin = a.dmin;
}
void unpack_q4K(const block_q4_K& b, AffineBlock& a) {
  unpack_scale_min_k4(b.scales, a.ls, a.lm);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      a.q[64 * p + l] = b.qs[32 * p + l] & 0xF;
      a.q[64 * p + 32 + l] = b.qs[32 * p + l] >> 4;
    }
  }
  a.d = b.d;
  a.dmin = b.dmin;
}

void pack_q5K(const AffineBlock& a, block_q5_K& b) {
  pack_scale_min_k4(a.ls, a.lm, b.scales);
  std::memset(b.qh, 0, sizeof b.qh);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      int l1 = a.q[64 * p + l], l2 = a.q[64 * p + 32 + l];
      if (l1 > 15) {
        l1 -= 16;
        b.qh[l] |= static_cast<uint8_t>(1u << (2 * p));
      }
      if (l2 > 15) {
        l2 -= 16;
        b.qh[l] |= static_cast<uint8_t>(2u << (2 * p));
      }
      b.qs[32 * p + l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
  b.d = a.d;
  b.dmin = a.dmin;
}
void unpack_q5K(const block_q5_K& b, AffineBlock& a) {
  unpack_scale_min_k4(b.scales, a.ls, a.lm);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      const int h1 = (b.qh[l] >> (2 * p)) & 1, h2 = (b.qh[l] >> (2 * p + 1)) & 1;
      a.q[64 * p + l] = static_cast<uint8_t>((b.qs[32 * p + l] & 0xF) | (h1 << 4));
      a.q[64 * p + 32 + l] = static_cast<uint8_t>((b.qs[32 * p + l] >> 4) | (h2 << 4));
    }
  }
  a.d = b.d;
  a.dmin = b.dmin;
}

// Q6_K: element 128*h + 32*g + l: low nibble in ql[64*h + l + 32*(g&1)] (high half when g >= 2),
// two high bits in qh[32*h + l] at bit 2*g; scale of sub-block k/16.
void pack_q6K(const SymBlock& a, block_q6_K& b) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      int L[4];
      for (int g = 0; g < 4; ++g) L[g] = a.q[128 * h + 32 * g + l] + 32;
      b.ql[64 * h + l] = static_cast<uint8_t>((L[0] & 0xF) | ((L[2] & 0xF) << 4));
      b.ql[64 * h + 32 + l] = static_cast<uint8_t>((L[1] & 0xF) | ((L[3] & 0xF) << 4));
      b.qh[32 * h + l] = static_cast<uint8_t>((L[0] >> 4) | ((L[1] >> 4) << 2) |
                                              ((L[2] >> 4) << 4) | ((L[3] >> 4) << 6));
    }
  }
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(a.s[j]);
  b.d = a.d;
}
void unpack_q6K(const block_q6_K& b, SymBlock& a) {
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lowbyte = b.ql[64 * h + l + 32 * (g & 1)];
        const int lo = g < 2 ? lowbyte & 0xF : lowbyte >> 4;
        const int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
        a.q[128 * h + 32 * g + l] = static_cast<int8_t>((lo | (hi << 4)) - 32);
      }
    }
  }
  for (int j = 0; j < 16; ++j) a.s[j] = b.scales[j];
  a.d = b.d;
}

// ---- decoding: float expressions as ggml's dequantizers ---------------------------------------

void decode_affine(const AffineSpec& sp, const AffineBlock& a, float* y) {
  const float d = fp16_to_f32(a.d), dmin = fp16_to_f32(a.dmin);
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(a.ls[j]);
    const float ml = dmin * static_cast<float>(a.lm[j]);
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      y[k] = dl * static_cast<float>(a.q[k]) - ml;
    }
  }
}
void decode_sym(const SymSpec& sp, const SymBlock& a, float* y) {
  const float d = fp16_to_f32(a.d);
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(a.s[j]);
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      y[k] = dl * static_cast<float>(a.q[k]);
    }
  }
}

// ---- ggml-compatible encoders (one super-block; qw = importance of its 256 columns) ----------

// Re-rounds the quants of every affine sub-block against the final (fp16) scales; sub-blocks
// whose scale is 0 keep the quants of the search (ggml does the same).
void requant_affine(const AffineSpec& sp, const float* x, AffineBlock& a) {
  const float d = fp16_to_f32(a.d), dmin = fp16_to_f32(a.dmin);
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(a.ls[j]);
    if (!(dl != 0)) continue;
    const float ml = dmin * static_cast<float>(a.lm[j]);
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      int l = nearest_int_ggml((x[k] + ml) / dl);
      l = l < 0 ? 0 : (l > sp.qmax ? sp.qmax : l);
      a.q[k] = static_cast<uint8_t>(l);
    }
  }
}
void requant_sym(const SymSpec& sp, const float* x, SymBlock& a) {
  const float d = fp16_to_f32(a.d);
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(a.s[j]);
    if (!(dl != 0)) continue;
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      int l = nearest_int_ggml(x[k] / dl);
      l = l < sp.qmin ? sp.qmin : (l > sp.qmax ? sp.qmax : l);
      a.q[k] = static_cast<int8_t>(l);
    }
  }
}

// Sum of x^2 over a super-block in ggml's order.
float sum_sq(const float* x, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

void ggml_q2K(const float* x, const float* qw, AffineBlock& a) {
  float scales[16], mins[16];
  float weights[16];
  if (!qw) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = kq::ggml_affine_search(16, 3, x + 16 * j, weights, a.q + 16 * j, &mins[j], -0.5f,
                                         0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float q4scale = 15.f;
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j)
        a.ls[j] = static_cast<uint8_t>(nearest_int_ggml(iscale * scales[j]));
      a.d = f32_to_fp16(max_scale / q4scale);
    } else {
      for (int j = 0; j < 16; ++j) a.ls[j] = 0;
      a.d = f32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j)
        a.lm[j] = static_cast<uint8_t>(nearest_int_ggml(iscale * mins[j]));
      a.dmin = f32_to_fp16(max_min / q4scale);
    } else {
      for (int j = 0; j < 16; ++j) a.lm[j] = 0;
      a.dmin = f32_to_fp16(0.f);
    }
  } else {
    float sw[16];
    const float sigma2 = sum_sq(x, QK_K) / QK_K;
    for (int j = 0; j < 16; ++j) {
      sw[j] = qmath::importance_weights(x + 16 * j, qw + 16 * j, sigma2, 16, weights);
      scales[j] = kq::ggml_affine_search_guarded(16, 3, x + 16 * j, weights, a.q + 16 * j, &mins[j],
                                                 -0.9f, 0.05f, 36, false);
    }
    const float dm = kq::ggml_positive_search(16, 15, scales, a.ls, sw);
    const float mm = kq::ggml_positive_search(16, 15, mins, a.lm, sw);
    a.d = f32_to_fp16(dm);
    a.dmin = f32_to_fp16(mm);
  }
  requant_affine(kQ2Spec, x, a);
}

// Q4_K and Q5_K share everything but the quant range and the search parameters.
void ggml_q45K(const AffineSpec& sp, const float* x, const float* qw, AffineBlock& a) {
  float scales[8], mins[8], weights[32];
  const int nmax = sp.qmax;
  if (!qw) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      const float* xj = x + 32 * j;
      const float av_x = std::sqrt(sum_sq(xj, 32) / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xj[l]);
      scales[j] = nmax == 15 ? kq::ggml_affine_search(32, 15, xj, weights, a.q + 32 * j, &mins[j],
                                                      -1.f, 0.1f, 20, false)
                             : kq::ggml_affine_search(32, 31, xj, weights, a.q + 32 * j, &mins[j],
                                                      -0.5f, 0.1f, 15, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
      const uint8_t ls = static_cast<uint8_t>(nearest_int_ggml(inv_scale * scales[j]));
      const uint8_t lm = static_cast<uint8_t>(nearest_int_ggml(inv_min * mins[j]));
      a.ls[j] = ls < 63 ? ls : 63;
      a.lm[j] = lm < 63 ? lm : 63;
    }
    a.d = f32_to_fp16(max_scale / 63.f);
    a.dmin = f32_to_fp16(max_min / 63.f);
  } else {
    float sw[8];
    const float sigma2 = 2 * sum_sq(x, QK_K) / QK_K;
    for (int j = 0; j < 8; ++j) {
      const float* xj = x + 32 * j;
      sw[j] = qmath::importance_weights(xj, qw + 32 * j, sigma2, 32, weights);
      scales[j] = kq::ggml_affine_search_guarded(32, nmax, xj, weights, a.q + 32 * j, &mins[j],
                                                 -0.9f, 0.05f, 36, false);
    }
    const float d_block = kq::ggml_positive_search(8, 63, scales, a.ls, sw);
    const float m_block = kq::ggml_positive_search(8, 63, mins, a.lm, sw);
    for (int j = 0; j < 8; ++j) {
      if (a.ls[j] > 63) a.ls[j] = 63;
      if (a.lm[j] > 63) a.lm[j] = 63;
    }
    a.d = f32_to_fp16(d_block);
    a.dmin = f32_to_fp16(m_block);
  }
  requant_affine(sp, x, a);
}

void ggml_q3K(const float* x, const float* qw, SymBlock& a) {
  float scales[16];
  int8_t L[QK_K];
  if (!qw) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = kq::ggml_symmetric_iterative(16, 4, x + 16 * j, L + 16 * j);
      const float s = std::fabs(scales[j]);
      if (s > amax) {
        amax = s;
        max_scale = scales[j];
      }
    }
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int8_t l = static_cast<int8_t>(nearest_int_ggml(iscale * scales[j]));
        a.s[j] = l < -32 ? -32 : (l > 31 ? 31 : l);
      }
      a.d = f32_to_fp16(1 / iscale);
    } else {
      for (int j = 0; j < 16; ++j) a.s[j] = -32;  // the all-zero scale bytes
      a.d = f32_to_fp16(0.f);
    }
  } else {
    float weight[16], sw[16];
    int8_t Ls[16];
    const float sigma2 = 2 * sum_sq(x, QK_K) / QK_K;
    for (int j = 0; j < 16; ++j) {
      const float* xj = x + 16 * j;
      sw[j] = qmath::importance_weights(xj, qw + 16 * j, sigma2, 16, weight);
      scales[j] = kq::ggml_symmetric_search(16, 4, xj, L + 16 * j, weight);
    }
    const float d_block = kq::ggml_symmetric_search(16, 32, scales, Ls, sw);
    for (int j = 0; j < 16; ++j) a.s[j] = Ls[j] - 32;
    a.d = f32_to_fp16(d_block);
  }
  for (int k = 0; k < QK_K; ++k) a.q[k] = static_cast<int8_t>(L[k] - 4);
  requant_sym(kQ3Spec, x, a);
}

void ggml_q6K(const float* x, const float* qw, SymBlock& a) {
  float scales[16];
  int8_t L[QK_K];
  float max_scale = 0, max_abs_scale = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] =
        kq::ggml_symmetric_search(16, 32, x + 16 * j, L + 16 * j, qw ? qw + 16 * j : nullptr);
    const float s = std::fabs(scales[j]);
    if (s > max_abs_scale) {
      max_abs_scale = s;
      max_scale = scales[j];
    }
  }
  if (max_abs_scale < 1e-15f) {  // ggml zeroes the whole block
    a.d = f32_to_fp16(0.f);
    for (int j = 0; j < 16; ++j) a.s[j] = 0;
    for (int k = 0; k < QK_K; ++k) a.q[k] = -32;
    return;
  }
  const float iscale = -128.f / max_scale;
  a.d = f32_to_fp16(1 / iscale);
  for (int j = 0; j < 16; ++j) {
    const int l = nearest_int_ggml(iscale * scales[j]);
    a.s[j] = static_cast<int8_t>(l < 127 ? l : 127);
  }
  for (int k = 0; k < QK_K; ++k) a.q[k] = static_cast<int8_t>(L[k] - 32);
  requant_sym(kQ6Spec, x, a);
}

// ---- codec entry points -----------------------------------------------------------------------

// Encodes rows block by block: the ggml encoding, then (refined mode) the refiner with the
// objective weights (the imatrix, or none for plain squared error).
template <
    class Block, class State, const auto& sp, void (*Encode)(const float*, const float*, State&),
    void (*Refine)(const std::remove_cvref_t<decltype(sp)>&, const float*, const float*, State&),
    void (*Pack)(const State&, Block&)>
void quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const QuantizeOptions& opt) {
  const int64_t nb = n_per_row / QK_K;
  auto* out = static_cast<Block*>(dst);
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      const float* x = src + r * n_per_row + i * QK_K;
      const float* qw = opt.imatrix ? opt.imatrix + i * QK_K : nullptr;
      State st;
      Encode(x, qw, st);
      if (!opt.ggml_compatible) Refine(sp, x, qw, st);
      Pack(st, out[r * nb + i]);
    }
  }
}

void enc_q4K(const float* x, const float* qw, AffineBlock& a) {
  ggml_q45K(kQ4Spec, x, qw, a);
}
void enc_q5K(const float* x, const float* qw, AffineBlock& a) {
  ggml_q45K(kQ5Spec, x, qw, a);
}

template <class Block, class State, const auto& sp, void (*Unpack)(const Block&, State&),
          void (*Decode)(const std::remove_cvref_t<decltype(sp)>&, const State&, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    State st;
    Unpack(in[i], st);
    Decode(sp, st, dst + i * QK_K);
  }
}

// ---- dot products against Q8_K activations (scalar reference) ---------------------------------
// Integer sums per sub-block, scaled once per super-block:
//   affine: sum_j dx*(d*ls_j*sum_i q_i*a_i - dmin*lm_j*sum_i a_i), the a-sums from bsums;
//   symmetric: sum_j dx*d*s_j*sum_i q_i*a_i.

template <class Block, const AffineSpec& sp, void (*Unpack)(const Block&, AffineBlock&)>
void vec_dot_affine(int64_t n, float* out, const void* w, const void* xq) {
  const auto* wb = static_cast<const Block*>(w);
  const auto* xb = static_cast<const block_q8_K*>(xq);
  const int groups = sp.sub_len / 16;  // bsums per sub-block
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    AffineBlock a;
    Unpack(wb[i], a);
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < sp.n_sub; ++j) {
      int32_t s = 0;
      for (int l = 0; l < sp.sub_len; ++l) {
        const int k = j * sp.sub_len + l;
        s += static_cast<int32_t>(a.q[k]) * xb[i].qs[k];
      }
      int32_t bs = 0;
      for (int g = 0; g < groups; ++g) bs += xb[i].bsums[j * groups + g];
      isum += a.ls[j] * s;
      msum += a.lm[j] * bs;
    }
    const float dx = xb[i].d;
    sum += dx * fp16_to_f32(a.d) * static_cast<float>(isum) -
           dx * fp16_to_f32(a.dmin) * static_cast<float>(msum);
  }
  *out = sum;
}

template <class Block, const SymSpec& sp, void (*Unpack)(const Block&, SymBlock&)>
void vec_dot_sym(int64_t n, float* out, const void* w, const void* xq) {
  const auto* wb = static_cast<const Block*>(w);
  const auto* xb = static_cast<const block_q8_K*>(xq);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    SymBlock a;
    Unpack(wb[i], a);
    int32_t isum = 0;
    for (int j = 0; j < sp.n_sub; ++j) {
      int32_t s = 0;
      for (int l = 0; l < sp.sub_len; ++l) {
        const int k = j * sp.sub_len + l;
        s += static_cast<int32_t>(a.q[k]) * xb[i].qs[k];
      }
      isum += a.s[j] * s;
    }
    sum += xb[i].d * fp16_to_f32(a.d) * static_cast<float>(isum);
  }
  *out = sum;
}

// ---- Q8_K ---------------------------------------------------------------------------------------

void quantize_q8K(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const QuantizeOptions& /*opt: the activation format has a single encoding*/) {
  quantize_row_q8_K(src, static_cast<block_q8_K*>(dst), nrows * n_per_row);
}

void dequantize_q8K(const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const block_q8_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int k = 0; k < QK_K; ++k) dst[i * QK_K + k] = in[i].d * static_cast<float>(in[i].qs[k]);
  }
}

}  // namespace

void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    const auto [max, amax] = qmath::signed_absmax(x, QK_K);
    if (!(amax != 0)) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    // -127/max: the extreme value maps to -127 * sign, so every quant fits in [-127, 127].
    const float iscale = -127.f / max;
    for (int k = 0; k < QK_K; ++k) {
      const int v = nearest_int_ggml(iscale * x[k]);
      y[i].qs[k] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void register_k_codecs(CodecTable& table) {
  auto set = [&](Type t, QuantizeFn q, DequantizeFn dq, Type dot_type, VecDotFn dot) {
    Codec& c = table[static_cast<size_t>(t)];
    c.type = t;
    c.quantize = q;
    c.dequantize = dq;
    c.vec_dot_type = dot_type;
    c.vec_dot = dot;
  };
  // Affine types (y = d*ls*q - dmin*lm) and symmetric ones (y = d*s*q), each from its spec,
  // ggml encoder, packing and Q8_K dot.
  set(Type::Q2_K,
      quantize_rows<block_q2_K, AffineBlock, kQ2Spec, ggml_q2K, refine_affine, pack_q2K>,
      dequantize_blocks<block_q2_K, AffineBlock, kQ2Spec, unpack_q2K, decode_affine>, Type::Q8_K,
      vec_dot_affine<block_q2_K, kQ2Spec, unpack_q2K>);
  set(Type::Q4_K, quantize_rows<block_q4_K, AffineBlock, kQ4Spec, enc_q4K, refine_affine, pack_q4K>,
      dequantize_blocks<block_q4_K, AffineBlock, kQ4Spec, unpack_q4K, decode_affine>, Type::Q8_K,
      vec_dot_affine<block_q4_K, kQ4Spec, unpack_q4K>);
  set(Type::Q5_K, quantize_rows<block_q5_K, AffineBlock, kQ5Spec, enc_q5K, refine_affine, pack_q5K>,
      dequantize_blocks<block_q5_K, AffineBlock, kQ5Spec, unpack_q5K, decode_affine>, Type::Q8_K,
      vec_dot_affine<block_q5_K, kQ5Spec, unpack_q5K>);
  set(Type::Q3_K, quantize_rows<block_q3_K, SymBlock, kQ3Spec, ggml_q3K, refine_sym, pack_q3K>,
      dequantize_blocks<block_q3_K, SymBlock, kQ3Spec, unpack_q3K, decode_sym>, Type::Q8_K,
      vec_dot_sym<block_q3_K, kQ3Spec, unpack_q3K>);
  set(Type::Q6_K, quantize_rows<block_q6_K, SymBlock, kQ6Spec, ggml_q6K, refine_sym, pack_q6K>,
      dequantize_blocks<block_q6_K, SymBlock, kQ6Spec, unpack_q6K, decode_sym>, Type::Q8_K,
      vec_dot_sym<block_q6_K, kQ6Spec, unpack_q6K>);
  set(Type::Q8_K, quantize_q8K, dequantize_q8K, Type::F32, nullptr);
}

}  // namespace qforge
