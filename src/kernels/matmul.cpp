#include "kernels/matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/types.h"
#include "kernels/cpu.h"
#include "kernels/isa_target.h"
#include "kernels/simd_f32.h"
#include "kernels/simd_variants.h"

// Two paths (see matmul.h):
//  * few tokens (generation): x is converted once to the codec's vec_dot_type, then every
//    output is one vec_dot of a weight row; rows are split across the pool.
//  * batches: a GEMM. Each work unit is a block of weight rows; per K block it dequantizes the
//    rows to f32 and packs them into MR-row panels ([k][MR] layout), then multiplies them with
//    the activations, packed once per call into NR-token panels ([k][NR] layout), in a
//    register-blocked micro-kernel (MR x NR accumulators). Every output element is computed by
//    one thread in a fixed order, so results depend only on the ISA and not on thread timing.
//    K blocks add into y in order: y = ((0 + s_0) + s_1) + ...

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsics as
// uninitialized; the warnings are false positives (as in dot_avx512.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace qforge {
namespace {

// Below this many tokens the vec_dot path wins (the GEMM pays dequantization per call).
constexpr int64_t kGemmMinTokens = 8;

struct GemmShape {
  int mr;  // rows per panel
  int nr;  // tokens per panel
};

GemmShape gemm_shape(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
    case Isa::Avx512Vnni:  // the float GEMM has no use for VNNI or BF16
    case Isa::Avx512Bf16:
      return {32, 12};
    case Isa::Avx2:
      return {16, 6};
    case Isa::Generic:
      break;
  }
  return {8, 4};
}

// ---- micro-kernels: c[t * ldc + i] (+)= sum_k wp[k * MR + i] * xp[k * NR + t] for i < m,
// t < NR (the panel may have fewer valid rows m <= MR; tokens are exact).

// The m valid rows of one token's accumulators into c (added to it when accumulating): the
// partial-panel store every level shares.
inline void store_panel_column(float* ct, const float* acc, int m, bool accumulate) {
  for (int i = 0; i < m; ++i) ct[i] = accumulate ? ct[i] + acc[i] : acc[i];
}

template <int NR>
void ukernel_generic(int64_t kc, const float* wp, const float* xp, float* c, int64_t ldc, int m,
                     bool accumulate) {
  constexpr int MR = 8;
  float acc[NR][MR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* w = wp + k * MR;
    const float* x = xp + k * NR;
    for (int t = 0; t < NR; ++t)
      for (int i = 0; i < MR; ++i) acc[t][i] += w[i] * x[t];
  }
  for (int t = 0; t < NR; ++t) store_panel_column(c + t * ldc, acc[t], m, accumulate);
}

namespace avx2 {
using V = x86::F32x8;
#define QF_LEVEL QF_TARGET_AVX2
#include "kernels/gemm_ukernel.inc"
#undef QF_LEVEL
}  // namespace avx2

namespace avx512 {
using V = x86::F32x16;
#define QF_LEVEL QF_TARGET_AVX512
#include "kernels/gemm_ukernel.inc"
#undef QF_LEVEL
}  // namespace avx512

// ---- weight panel packing: dst[k * mr + i] = wr[i * kc + k] (the panel's rows dequantized
// row-major into wr, all mr of them: missing rows are zero).

// Columns k0.. of the panel, one element at a time (the generic level, and the tails).
void pack_panel_generic(const float* wr, int64_t kc, int mr, float* dst, int64_t k0 = 0) {
  for (int64_t k = k0; k < kc; ++k)
    for (int i = 0; i < mr; ++i) dst[k * mr + i] = wr[i * kc + k];
}

// W x W tiles of the panel transposed in registers (tile(src, src_stride, dst, dst_stride)
// writes dst[k * dst_stride + i] = src[i * src_stride + k] for i, k < W); the rest scalar.
// The scalar loop alone read its rows with a stride of kc floats: about a tenth of a 1.1 B
// pp512 went into it.
template <int W, void (*Tile)(const float*, int64_t, float*, int64_t)>
inline void pack_panel_tiled(const float* wr, int64_t kc, int mr, float* dst) {
  if (mr % W != 0) return pack_panel_generic(wr, kc, mr, dst);
  const int64_t kw = kc / W * W;
  for (int i0 = 0; i0 < mr; i0 += W)
    for (int64_t k0 = 0; k0 < kw; k0 += W) Tile(wr + i0 * kc + k0, kc, dst + k0 * mr + i0, mr);
  pack_panel_generic(wr, kc, mr, dst, kw);
}

// The steps both register transposes share, on N rows r[] of one vector width (W: 256 or 512):
// unpack pairs of rows, then shuffle pairs of those, both within 128-bit lanes, so that u[4q + j]
// holds, in its 128-bit lane L, rows 4q..4q+3 at column 4L + j. The levels differ only in how
// they then gather the lanes.
#define QF_TRANSPOSE_WITHIN_LANES(W, N, r, u)                                 \
  do {                                                                        \
    __m##W t_[N];                                                             \
    for (int i = 0; i < (N) / 2; ++i) {                                       \
      t_[2 * i] = _mm##W##_unpacklo_ps(r[2 * i], r[2 * i + 1]);               \
      t_[2 * i + 1] = _mm##W##_unpackhi_ps(r[2 * i], r[2 * i + 1]);           \
    }                                                                         \
    for (int q = 0; q < (N) / 4; ++q) {                                       \
      u[4 * q + 0] = _mm##W##_shuffle_ps(t_[4 * q + 0], t_[4 * q + 2], 0x44); \
      u[4 * q + 1] = _mm##W##_shuffle_ps(t_[4 * q + 0], t_[4 * q + 2], 0xee); \
      u[4 * q + 2] = _mm##W##_shuffle_ps(t_[4 * q + 1], t_[4 * q + 3], 0x44); \
      u[4 * q + 3] = _mm##W##_shuffle_ps(t_[4 * q + 1], t_[4 * q + 3], 0xee); \
    }                                                                         \
  } while (0)

// 16 x 16 (AVX-512): then two steps across the four lanes.
QF_TARGET_AVX512 inline void transpose16(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m512 r[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
  QF_TRANSPOSE_WITHIN_LANES(512, 16, r, u);
  for (int j = 0; j < 4; ++j) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    float* d = dst + j * ds;
    _mm512_storeu_ps(d, _mm512_shuffle_f32x4(v0, w0, 0x88));            // column j
    _mm512_storeu_ps(d + 4 * ds, _mm512_shuffle_f32x4(v1, w1, 0x88));   // j + 4
    _mm512_storeu_ps(d + 8 * ds, _mm512_shuffle_f32x4(v0, w0, 0xdd));   // j + 8
    _mm512_storeu_ps(d + 12 * ds, _mm512_shuffle_f32x4(v1, w1, 0xdd));  // j + 12
  }
}

// 8 x 8 (AVX2): then one step across the two lanes.
inline void transpose8(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  QF_TRANSPOSE_WITHIN_LANES(256, 8, r, u);
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(dst + j * ds, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));  // column j
    _mm256_storeu_ps(dst + (j + 4) * ds, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
  }
}
#undef QF_TRANSPOSE_WITHIN_LANES

// One function per level, so that the tiled loop and its tile inline into code of that level.
QF_TARGET_AVX512 void pack_panel_avx512(const float* wr, int64_t kc, int mr, float* dst) {
  pack_panel_tiled<16, transpose16>(wr, kc, mr, dst);
}
void pack_panel_avx2(const float* wr, int64_t kc, int mr, float* dst) {
  pack_panel_tiled<8, transpose8>(wr, kc, mr, dst);
}

void pack_panel(Isa isa, const float* wr, int64_t kc, int mr, float* dst) {
  switch (isa) {
    case Isa::Avx512:
    case Isa::Avx512Vnni:
    case Isa::Avx512Bf16:
      return pack_panel_avx512(wr, kc, mr, dst);
    case Isa::Avx2:
      return pack_panel_avx2(wr, kc, mr, dst);
    case Isa::Generic:
      break;
  }
  pack_panel_generic(wr, kc, mr, dst);
}

using UKernel = void (*)(int64_t, const float*, const float*, float*, int64_t, int, bool);

#define QF_KERNEL_TABLE(getter, kernel)                                                      \
  UKernel getter(int nr) {                                                                   \
    static constexpr UKernel k[] = {nullptr,    kernel<1>,  kernel<2>, kernel<3>, kernel<4>, \
                                    kernel<5>,  kernel<6>,  kernel<7>, kernel<8>, kernel<9>, \
                                    kernel<10>, kernel<11>, kernel<12>};                     \
    return k[nr];                                                                            \
  }
QF_KERNEL_TABLE(ukernel_generic_for, ukernel_generic)
QF_KERNEL_TABLE(ukernel_avx2_for, avx2::ukernel)
QF_KERNEL_TABLE(ukernel_avx512_for, avx512::ukernel)
#undef QF_KERNEL_TABLE

UKernel ukernel_for(Isa isa, int nr) {
  switch (isa) {
    case Isa::Avx512:
    case Isa::Avx512Vnni:
    case Isa::Avx512Bf16:
      return ukernel_avx512_for(nr);
    case Isa::Avx2:
      return ukernel_avx2_for(nr);
    case Isa::Generic:
      break;
  }
  return ukernel_generic_for(nr);
}

// A growable 64-byte aligned float buffer (scratch reused across calls by one thread).
class Scratch {
 public:
  float* get(size_t n) {
    if (n > cap_) {
      buf_.reset(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))));
      cap_ = n;
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<float, Free> buf_;
  size_t cap_ = 0;
};

// Scratch for the calling thread's packed activations, and per-thread weight panels.
thread_local Scratch tl_xpack, tl_wpack, tl_wrows;

int64_t k_block(int64_t cols) {
  return cols <= 1024 ? cols : 512;
}

void gemm(Isa isa, const Codec& wc, const uint8_t* w, uint64_t row_bytes, int64_t rows,
          int64_t cols, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const GemmShape g = gemm_shape(isa);
  const int64_t bs = type_info(wc.type).block_size;
  const int64_t bb = type_info(wc.type).block_bytes;
  const int64_t kc_max = k_block(cols);
  const int64_t n_kb = (cols + kc_max - 1) / kc_max;
  const int64_t n_tb = (n_tokens + g.nr - 1) / g.nr;

  // Pack x: for K block kb and token block tb, a [kc][nt] panel at offset
  // (kb * kc_max * n_tokens) + tb * g.nr * kc (each K block holds all tokens).
  float* xp = tl_xpack.get(static_cast<size_t>(cols * n_tokens));
  auto xpanel = [&](int64_t kb, int64_t tb) {
    const int64_t k0 = kb * kc_max, kc = std::min(kc_max, cols - k0);
    return xp + k0 * n_tokens + tb * g.nr * kc;
  };
  pool.parallel_for(n_tb, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t tb = b; tb < e; ++tb) {
      const int64_t t0 = tb * g.nr, nt = std::min<int64_t>(g.nr, n_tokens - t0);
      for (int64_t kb = 0; kb < n_kb; ++kb) {
        const int64_t k0 = kb * kc_max, kc = std::min(kc_max, cols - k0);
        float* dst = xpanel(kb, tb);
        for (int64_t t = 0; t < nt; ++t) {
          const float* src = x + (t0 + t) * cols + k0;
          for (int64_t k = 0; k < kc; ++k) dst[k * nt + t] = src[k];
        }
      }
    }
  });

  // Work units: blocks of rows. Enough units to balance threads, each a few panels wide so a
  // packed activation panel is reused from L1 across panels.
  int64_t unit_panels = 4;
  const int64_t n_panels = (rows + g.mr - 1) / g.mr;
  while (unit_panels > 1 && n_panels / unit_panels < 4 * pool.size()) unit_panels /= 2;
  const int64_t unit_rows = unit_panels * g.mr;
  const int64_t n_units = (rows + unit_rows - 1) / unit_rows;

  pool.parallel_for(n_units, 1, [&](int64_t ub, int64_t ue, int) {
    float* wp = tl_wpack.get(static_cast<size_t>(unit_rows * kc_max));
    float* wr = tl_wrows.get(static_cast<size_t>(g.mr * kc_max));
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t r0 = u * unit_rows, nr_unit = std::min(unit_rows, rows - r0);
      const int64_t np = (nr_unit + g.mr - 1) / g.mr;
      for (int64_t kb = 0; kb < n_kb; ++kb) {
        const int64_t k0 = kb * kc_max, kc = std::min(kc_max, cols - k0);
        // Dequantize and pack: panel p holds rows r0 + p*mr .. as [k][mr].
        for (int64_t p = 0; p < np; ++p) {
          const int64_t pr0 = r0 + p * g.mr, m = std::min<int64_t>(g.mr, rows - pr0);
          for (int64_t i = 0; i < m; ++i)
            wc.dequantize(w + (pr0 + i) * row_bytes + (k0 / bs) * bb, wr + i * kc, kc);
          if (m < g.mr) std::memset(wr + m * kc, 0, sizeof(float) * (g.mr - m) * kc);
          pack_panel(isa, wr, kc, g.mr, wp + p * g.mr * kc);
        }
        for (int64_t tb = 0; tb < n_tb; ++tb) {
          const int64_t t0 = tb * g.nr;
          const int nt = static_cast<int>(std::min<int64_t>(g.nr, n_tokens - t0));
          const UKernel kern = ukernel_for(isa, nt);
          const float* xpp = xpanel(kb, tb);
          for (int64_t p = 0; p < np; ++p) {
            const int64_t pr0 = r0 + p * g.mr;
            const int m = static_cast<int>(std::min<int64_t>(g.mr, rows - pr0));
            kern(kc, wp + p * g.mr * kc, xpp, y + t0 * rows + pr0, rows, m, kb > 0);
          }
        }
      }
    }
  });
}

void matmul_vec_dot(Isa isa, const Codec& wc, const Codec* xc, const uint8_t* w, uint64_t row_bytes,
                    int64_t rows, int64_t cols, const float* x, int64_t n_tokens, float* y,
                    ThreadPool& pool) {
  // Convert the activations once to the codec's vec_dot_type.
  const void* xq = x;
  uint64_t x_row_bytes = cols * sizeof(float);
  std::vector<uint8_t> buf;
  if (wc.vec_dot_type != Type::F32) {
    x_row_bytes = *row_size(wc.vec_dot_type, cols);
    buf.resize(x_row_bytes * n_tokens);
    if (QuantizeFn fast = simd_activation_quantizer(isa, wc.vec_dot_type)) {
      fast(x, buf.data(), n_tokens, cols, QuantizeOptions{});
    } else {
      QuantizeOptions rtn;
      rtn.ggml_compatible = true;  // round-to-nearest as ggml, not the weight encoder's search
      xc->quantize(x, buf.data(), n_tokens, cols, rtn);
    }
    xq = buf.data();
  }
  const auto* xb = static_cast<const uint8_t*>(xq);
  // Chunks of rows big enough to amortize the claim, small enough to balance two threads.
  const int64_t grain = std::max<int64_t>(16, (rows + 8 * pool.size() - 1) / (8 * pool.size()));
  pool.parallel_for(rows, grain, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const uint8_t* wrow = w + r * row_bytes;
      for (int64_t t = 0; t < n_tokens; ++t)
        wc.vec_dot(cols, y + t * rows + r, wrow, xb + t * x_row_bytes);
    }
  });
}

}  // namespace

void matmul_isa(Isa isa, const Codec& w_codec, const Codec* x_codec, const void* w, int64_t rows,
                int64_t cols, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  if (rows <= 0 || n_tokens <= 0) return;
  const uint64_t rs = *row_size(w_codec.type, cols);
  const auto* wb = static_cast<const uint8_t*>(w);
  const bool have_dot = w_codec.vec_dot && (w_codec.vec_dot_type == Type::F32 || x_codec);
  if (n_tokens >= kGemmMinTokens || !have_dot)
    gemm(isa, w_codec, wb, rs, rows, cols, x, n_tokens, y, pool);
  else
    matmul_vec_dot(isa, w_codec, x_codec, wb, rs, rows, cols, x, n_tokens, y, pool);
}

void matmul(const Codec& w_codec, const void* w, int64_t rows, int64_t cols, const float* x,
            int64_t n_tokens, float* y, ThreadPool& pool) {
  matmul_isa(active_isa(), w_codec, find_codec(w_codec.vec_dot_type), w, rows, cols, x, n_tokens, y,
             pool);
}

void matmul_reference(Type w_type, const void* w, int64_t rows, int64_t cols, const float* x,
                      int64_t n_tokens, float* y) {
  const Codec& c = reference_codecs()[static_cast<size_t>(w_type)];
  const uint64_t rs = *row_size(w_type, cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    c.dequantize(static_cast<const uint8_t*>(w) + r * rs, row.data(), cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c2 = 0; c2 < cols; ++c2) s += double(row[c2]) * x[t * cols + c2];
      y[t * rows + r] = static_cast<float>(s);
    }
  }
}

}  // namespace qforge
