// Scalar reference of the vector ops (kernels/vec_ops.h): plain loops, the oracle that every
// other level is tested against, and what QFORGE_FORCE_ISA=generic runs.
#include <algorithm>
#include <cmath>

#include "kernels/vec_ops.h"

#include "core/fp16.h"

namespace qforge {
namespace {

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

float exp_sub_sum(float* x, int64_t n, float m) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - m));
  return sum;
}

float max_of(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

double sum_exp_sub(const float* x, int64_t n, float m) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - m));
  return sum;
}

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float ms = dot(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(ms + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void qk_scores4(const float* const q[4], const float* kt, int64_t ks, int64_t hd, int64_t n_kv,
                float scale, float* out) {
  for (int i = 0; i < 4; ++i)
    for (int64_t j = 0; j < n_kv; ++j) {
      float s = 0;
      for (int64_t d = 0; d < hd; ++d) s += q[i][d] * kt[d * ks + j];
      out[i * ks + j] = s * scale;
    }
}

void weighted_values(const float* w, const float* v, int64_t n_kv, int64_t hd, float inv,
                     float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j < n_kv; ++j) axpy(w[j], v + j * hd, out, hd);
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

void qk_scores4_f16(const float* const q[4], const uint16_t* kt, int64_t ks, int64_t hd,
                    int64_t n_kv, float scale, float* out) {
  for (int i = 0; i < 4; ++i)
    for (int64_t j = 0; j < n_kv; ++j) {
      float s = 0;
      for (int64_t d = 0; d < hd; ++d) s += q[i][d] * fp16_to_f32(kt[d * ks + j]);
      out[i * ks + j] = s * scale;
    }
}

void weighted_values_f16(const float* w, const uint16_t* v, int64_t n_kv, int64_t hd, float inv,
                         float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j < n_kv; ++j)
    for (int64_t d = 0; d < hd; ++d) out[d] += w[j] * fp16_to_f32(v[j * hd + d]);
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

void gram_6x16(const float* x, int64_t n, int64_t cols, int64_t i0, int64_t j0, float* c) {
  for (int r = 0; r < 6; ++r) {
    float acc[16] = {};
    for (int64_t t = 0; t < n; ++t) {
      const float* row = x + t * cols;
      for (int j = 0; j < 16; ++j) acc[j] += row[i0 + r] * row[j0 + j];
    }
    for (int j = 0; j < 16; ++j) c[(i0 + r) * cols + j0 + j] += acc[j];
  }
}

}  // namespace

QFORGE_VEC_OPS_TABLE(vec_ops_generic)

}  // namespace qforge
