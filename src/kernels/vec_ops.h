// The engine's vector math (f32; attention also over an f16 KV cache) (dots, softmax pieces, RMS
// norm, SwiGLU, attention scores and weighted values) per ISA level, chosen by the one dispatch
// point (kernels/cpu.h): vec_ops() is the table of the active level, so QFORGE_FORCE_ISA reaches
// these loops too.
//
// Each entry works on a whole row (or a block of 4 queries), so the indirect call costs
// nothing next to the loop it runs. The generic table is the scalar reference (the oracle of
// tests/kernels); other levels agree with it up to float rounding, and exp-based ops up to the
// ~2e-7 relative error of their polynomial exp.
#pragma once

#include <cstdint>

#include "kernels/cpu.h"

namespace qforge {

struct VecOps {
  // sum_i a[i] * b[i]
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // g[i] = silu(g[i]) * u[i]
  void (*swiglu)(float* g, const float* u, int64_t n);
  // x[i] = exp(x[i] - m); returns the sum (float accumulation).
  float (*exp_sub_sum)(float* x, int64_t n, float m);
  // Largest of x[0..n); -inf when n == 0.
  float (*max_of)(const float* x, int64_t n);
  // sum_i exp(x[i] - m), accumulated in double (perplexity's log-sum-exp).
  double (*sum_exp_sub)(const float* x, int64_t n, float m);
  // y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; y may be x.
  void (*rms_norm)(const float* x, const float* w, int64_t n, float eps, float* y);
  // Scores of 4 queries q[0..4) (head_dim hd) against keys [0, n_kv) of one head stored
  // transposed (kt[d * ks + j], stride ks): out[i * ks + j] = scale * q_i . k_j. May write up
  // to 15 entries past n_kv of each row; the caller keeps (n_kv rounded up to 16) <= ks.
  void (*qk_scores4)(const float* const q[4], const float* kt, int64_t ks, int64_t hd, int64_t n_kv,
                     float scale, float* out);
  // out[0..hd) = inv * sum_{j < n_kv} w[j] * v[j * hd + d] (value rows of hd floats).
  void (*weighted_values)(const float* w, const float* v, int64_t n_kv, int64_t hd, float inv,
                          float* out);
  // As qk_scores4 and weighted_values, with keys / values stored as IEEE half (an f16 KV
  // cache); arithmetic in f32.
  void (*qk_scores4_f16)(const float* const q[4], const uint16_t* kt, int64_t ks, int64_t hd,
                         int64_t n_kv, float scale, float* out);
  void (*weighted_values_f16)(const float* w, const uint16_t* v, int64_t n_kv, int64_t hd,
                              float inv, float* out);
  // c[(i0 + r) * cols + j0 + j] += sum_t x[t * cols + i0 + r] * x[t * cols + j0 + j] for
  // r < 6, j < 16 (one 6x16 tile of a Gram matrix X^T X over n rows of `cols` floats).
  void (*gram_6x16)(const float* x, int64_t n, int64_t cols, int64_t i0, int64_t j0, float* c);
};

// The table of the active level (active_isa()), resolved once.
const VecOps& vec_ops();
// The table of one level (a level without its own table uses the next lower one); tests call
// this to compare each level with Isa::Generic.
const VecOps& vec_ops(Isa isa);

// Defines a level's table getter from the functions of VecOps's member names that the level's
// file declares (in its anonymous namespace), in VecOps's order: the list is written once here.
#define QFORGE_VEC_OPS_TABLE(getter)             \
  const VecOps& getter() {                       \
    static const VecOps ops{dot,                 \
                            axpy,                \
                            swiglu,              \
                            exp_sub_sum,         \
                            max_of,              \
                            sum_exp_sub,         \
                            rms_norm,            \
                            qk_scores4,          \
                            weighted_values,     \
                            qk_scores4_f16,      \
                            weighted_values_f16, \
                            gram_6x16};          \
    return ops;                                  \
  }

const VecOps& vec_ops_generic();  // vec_ops_generic.cpp
const VecOps& vec_ops_avx2();     // vec_ops_avx2.cpp

}  // namespace qforge
