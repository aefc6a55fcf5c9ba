#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "engine/vec_math.h"
#include "kernels/matmul.h"

namespace qforge {
namespace {

using vec::exp_sub_sum;
using vec::hsum;
using vec::max_of;
#ifdef QF_ENGINE_AVX2
using vec::exp8;
#endif

// --- small f32 vector helpers for the fast path (the build baseline has AVX2+FMA) -----------

inline float dot(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float s = 0;
#ifdef QF_ENGINE_AVX2
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  s = hsum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y += a * x
inline void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
#ifdef QF_ENGINE_AVX2
  const __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * x[i];
}

// g[i] = silu(g[i]) * u[i]
inline void swiglu(float* g, const float* u, int64_t n) {
  int64_t i = 0;
#ifdef QF_ENGINE_AVX2
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_storeu_ps(
        g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
#endif
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

#ifdef QF_ENGINE_AVX2
// Scores of 4 queries (rows of q, head_dim hd) against keys [0, n_kv) of one head (transposed
// layout, stride ks), 16 keys per step: out[i * ks + j] = scale * q_i . k_j. May write up to
// 15 entries past n_kv (within ks).
void qk_scores4(const float* const q[4], const float* kt, int64_t ks, int64_t hd, int64_t n_kv,
                float scale, float* out) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < n_kv; j += 16) {
    __m256 a[4][2];
    for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; ++d) {
      const __m256 k0 = _mm256_loadu_ps(kt + d * ks + j);
      const __m256 k1 = _mm256_loadu_ps(kt + d * ks + j + 8);
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

// out[0..8*HD8) = inv * sum_j w[j] * v_j (value rows of 8*HD8 floats), accumulators in
// registers.
template <int HD8>
void weighted_values(const float* w, const float* v, int64_t n_kv, float inv, float* out) {
  __m256 acc[HD8];
  for (int k = 0; k < HD8; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_kv; ++j) {
    const __m256 p = _mm256_broadcast_ss(w + j);
    const float* vj = v + j * (8 * HD8);
    for (int k = 0; k < HD8; ++k) acc[k] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 8 * k), acc[k]);
  }
  const __m256 vi = _mm256_set1_ps(inv);
  for (int k = 0; k < HD8; ++k) _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(acc[k], vi));
}
#endif

inline void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// Runs fn over [0, n) on the pool when there is enough work (work = n * cost_per_item in
// rough flops) to pay for waking the workers, else on the calling thread. Token generation
// (n = 1) thus stays off the pool for the cheap element-wise ops.
void for_range(ThreadPool& pool, int64_t n, int64_t cost_per_item, int64_t grain,
               const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (pool.size() == 1 || n * cost_per_item < 32768) {
    fn(0, n, 0);
    return;
  }
  pool.parallel_for(n, grain, fn);
}

std::vector<double> rope_inv_freq(const ModelParams& p) {
  std::vector<double> f(static_cast<size_t>(p.n_rot / 2));
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = std::pow(static_cast<double>(p.rope_freq_base), -2.0 * static_cast<double>(i) / p.n_rot);
  return f;
}

}  // namespace

void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float ms = dot(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(ms + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope_row(float* head, int64_t n_rot, const double* inv_freq, int64_t pos, RopeType type) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = static_cast<double>(pos) * inv_freq[i];
    const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
    const int64_t a = type == RopeType::Normal ? 2 * i : i;
    const int64_t b = type == RopeType::Normal ? 2 * i + 1 : i + half;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
}

void rope_row_cs(float* head, int64_t n_rot, const float* cos_t, const float* sin_t,
                 RopeType type) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = type == RopeType::Normal ? 2 * i : i;
    const int64_t b = type == RopeType::Normal ? 2 * i + 1 : i + half;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * cos_t[i] - x1 * sin_t[i];
    head[b] = x0 * sin_t[i] + x1 * cos_t[i];
  }
}

// ------------------------------------------------------------------------------------------
// Fast path

Context::Context(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch)
    : model_(model),
      pool_(pool),
      n_batch_(std::max<int64_t>(1, std::min(n_batch, n_ctx))),
      n_vocab_(model.params().n_vocab),
      kv_(model.params(), n_ctx),
      inv_freq_(rope_inv_freq(model.params())) {
  const ModelParams& p = model.params();
  const auto nb = static_cast<size_t>(n_batch_);
  x_.resize(nb * p.n_embd);
  xn_.resize(nb * std::max(p.n_embd, p.n_ff));
  q_.resize(nb * p.n_embd);
  k_.resize(nb * p.n_embd_kv());
  v_.resize(nb * p.n_embd_kv());
  attn_.resize(nb * p.n_embd);
  gate_.resize(nb * p.n_ff);
  up_.resize(nb * p.n_ff);
  scores_.resize(static_cast<size_t>(pool.size()));
  for (auto& s : scores_) s.resize(static_cast<size_t>(4 * kv_.key_stride()));
  // cos/sin of every (position, pair) once, instead of per head and token.
  const int64_t half = p.n_rot / 2;
  rope_cos_.resize(static_cast<size_t>(n_ctx * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t pos = 0; pos < n_ctx; ++pos)
    for (int64_t i = 0; i < half; ++i) {
      const double th = static_cast<double>(pos) * inv_freq_[static_cast<size_t>(i)];
      rope_cos_[static_cast<size_t>(pos * half + i)] = static_cast<float>(std::cos(th));
      rope_sin_[static_cast<size_t>(pos * half + i)] = static_cast<float>(std::sin(th));
    }
}

Status Context::decode(std::span<const int32_t> tokens, int64_t n_outputs) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n_outputs < 0 || n_outputs > n)
    return make_error("decode: ", n_outputs, " outputs requested for ", n, " tokens");
  if (n > kv_.capacity() - kv_.size())
    return make_error("decode: ", n, " tokens do not fit in the context (", kv_.size(), " of ",
                      kv_.capacity(), " positions used)");
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab_)
      return make_error("decode: token id ", t, " is outside the vocabulary (", n_vocab_, ")");
  logits_.resize(static_cast<size_t>(n_outputs * n_vocab_));
  logits_rows_ = n_outputs;
  const int64_t out_begin = n - n_outputs;  // index of the first token whose logits are wanted
  for (int64_t b = 0; b < n; b += n_batch_) {
    const int64_t m = std::min(n_batch_, n - b);
    // Within this micro-batch, outputs start at local index max(0, out_begin - b).
    const int64_t local_from = std::clamp<int64_t>(out_begin - b, 0, m);
    float* dst = logits_.data() + std::max<int64_t>(0, b - out_begin) * n_vocab_;
    run_ubatch(tokens.data() + b, m, local_from, dst);
  }
  return ok_status();
}

void Context::attention(int64_t layer, int64_t n, int64_t pos0) {
  const ModelParams& p = model_.params();
  const int64_t hd = p.head_dim, group = p.n_head / p.n_head_kv, ks = kv_.key_stride();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Work items: (head, block of 4 consecutive tokens), head-major so that neighbouring items
  // reuse the same keys from cache.
  const int64_t n_blocks = (n + 3) / 4;
  for_range(pool_, p.n_head * n_blocks, 16 * hd * (pos0 + n), 1,
            [&](int64_t begin, int64_t end, int tid) {
              float* sc = scores_[static_cast<size_t>(tid)].data();
              for (int64_t item = begin; item < end; ++item) {
                const int64_t h = item / n_blocks, t0 = (item % n_blocks) * 4, g = h / group;
                const int nq = static_cast<int>(std::min<int64_t>(4, n - t0));
                const float* kt = kv_.keys(layer, g);
                const float* q[4];
                for (int i = 0; i < 4; ++i)
                  q[i] = q_.data() + (t0 + std::min(i, nq - 1)) * p.n_embd + h * hd;
                const int64_t n_kv_max =
                    pos0 + t0 + nq;  // causal: token t sees positions 0..pos0+t
#ifdef QF_ENGINE_AVX2
                qk_scores4(q, kt, ks, hd, n_kv_max, scale, sc);
#else
      for (int i = 0; i < 4; ++i)
        for (int64_t j = 0; j < n_kv_max; ++j) {
          float s = 0;
          for (int64_t d = 0; d < hd; ++d) s += q[i][d] * kt[d * ks + j];
          sc[i * ks + j] = s * scale;
        }
#endif
                for (int i = 0; i < nq; ++i) {
                  float* w = sc + i * ks;
                  const int64_t n_kv = pos0 + t0 + i + 1;
                  const float inv = 1.0f / exp_sub_sum(w, n_kv, max_of(w, n_kv));
                  float* out = attn_.data() + (t0 + i) * p.n_embd + h * hd;
                  const float* v = kv_.value(layer, g, 0);
#ifdef QF_ENGINE_AVX2
                  if (hd == 64) {
                    weighted_values<8>(w, v, n_kv, inv, out);
                    continue;
                  }
                  if (hd == 128) {
                    weighted_values<16>(w, v, n_kv, inv, out);
                    continue;
                  }
                  if (hd == 32) {
                    weighted_values<4>(w, v, n_kv, inv, out);
                    continue;
                  }
                  if (hd == 16) {
                    weighted_values<2>(w, v, n_kv, inv, out);
                    continue;
                  }
#endif
                  std::fill(out, out + hd, 0.0f);
                  for (int64_t j = 0; j < n_kv; ++j) axpy(w[j], v + j * hd, out, hd);
                  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
                }
              }
            });
}

void Context::run_ubatch(const int32_t* tokens, int64_t n, int64_t out_from, float* out_logits) {
  const ModelParams& p = model_.params();
  const int64_t E = p.n_embd, KV = p.n_embd_kv(), F = p.n_ff, hd = p.head_dim;
  const int64_t pos0 = kv_.size();
  auto mm = [&](const WeightView& w, const float* x, int64_t rows_in, float* y) {
    matmul(*w.codec, w.data, w.rows, w.cols, x, rows_in, y, pool_);
  };
  auto norm_rows = [&](const float* x, const std::vector<float>& w, int64_t from, int64_t to,
                       float* y) {
    for_range(pool_, to - from, 4 * E, 16, [&](int64_t b, int64_t e, int) {
      for (int64_t t = from + b; t < from + e; ++t)
        rms_norm_row(x + t * E, w.data(), E, p.norm_eps, y + (t - from) * E);
    });
  };

  for (int64_t t = 0; t < n; ++t) model_.embed(tokens[t], x_.data() + t * E);

  for (int64_t l = 0; l < p.n_layer; ++l) {
    const LayerWeights& L = model_.layers()[static_cast<size_t>(l)];
    norm_rows(x_.data(), L.attn_norm, 0, n, xn_.data());
    mm(L.wq, xn_.data(), n, q_.data());
    mm(L.wk, xn_.data(), n, k_.data());
    mm(L.wv, xn_.data(), n, v_.data());
    // Biases, RoPE, and the new keys/values into the cache.
    for_range(pool_, n, 8 * E, 8, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        float* q = q_.data() + t * E;
        float* k = k_.data() + t * KV;
        float* v = v_.data() + t * KV;
        if (!L.bq.empty()) add_inplace(q, L.bq.data(), E);
        if (!L.bk.empty()) add_inplace(k, L.bk.data(), KV);
        if (!L.bv.empty()) add_inplace(v, L.bv.data(), KV);
        const int64_t pos = pos0 + t, half = p.n_rot / 2;
        const float* c = rope_cos_.data() + pos * half;
        const float* sn = rope_sin_.data() + pos * half;
        for (int64_t h = 0; h < p.n_head; ++h) rope_row_cs(q + h * hd, p.n_rot, c, sn, p.rope_type);
        for (int64_t h = 0; h < p.n_head_kv; ++h) {
          rope_row_cs(k + h * hd, p.n_rot, c, sn, p.rope_type);
          float* kt = kv_.keys(l, h);
          for (int64_t d = 0; d < hd; ++d) kt[d * kv_.key_stride() + pos] = k[h * hd + d];
          std::memcpy(kv_.value(l, h, pos), v + h * hd, sizeof(float) * hd);
        }
      }
    });
    attention(l, n, pos0);
    mm(L.wo, attn_.data(), n, xn_.data());
    add_inplace(x_.data(), xn_.data(), n * E);

    norm_rows(x_.data(), L.ffn_norm, 0, n, xn_.data());
    mm(L.ffn_gate, xn_.data(), n, gate_.data());
    mm(L.ffn_up, xn_.data(), n, up_.data());
    for_range(pool_, n, 16 * F, 8, [&](int64_t b, int64_t e, int) {
      swiglu(gate_.data() + b * F, up_.data() + b * F, (e - b) * F);
    });
    mm(L.ffn_down, gate_.data(), n, xn_.data());
    add_inplace(x_.data(), xn_.data(), n * E);
  }
  kv_.set_size(pos0 + n);

  if (out_from < n) {
    norm_rows(x_.data(), model_.output_norm(), out_from, n, xn_.data());
    mm(model_.output(), xn_.data(), n - out_from, out_logits);
  }
}

// ------------------------------------------------------------------------------------------
// Scalar reference path

namespace {

void ref_matmul(const WeightView& w, const std::vector<float>& x, int64_t n,
                std::vector<float>& y) {
  y.assign(static_cast<size_t>(n * w.rows), 0.0f);
  matmul_reference(w.type, w.data, w.rows, w.cols, x.data(), n, y.data());
}

void ref_rms_norm(const float* x, const std::vector<float>& w, int64_t n, float eps, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * scale * w[i]);
}

void ref_rope(float* head, int64_t n_rot, double base, int64_t pos, RopeType type) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = pos * std::pow(base, -2.0 * i / n_rot);
    const int64_t a = type == RopeType::Normal ? 2 * i : i;
    const int64_t b = type == RopeType::Normal ? 2 * i + 1 : i + half;
    const double x0 = head[a], x1 = head[b];
    head[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
    head[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
  }
}

}  // namespace

Result<std::vector<float>> forward_reference(const Model& model, std::span<const int32_t> tokens) {
  const ModelParams& p = model.params();
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t E = p.n_embd, KV = p.n_embd_kv(), F = p.n_ff, hd = p.head_dim;
  const int64_t group = p.n_head / p.n_head_kv;
  for (int32_t t : tokens)
    if (t < 0 || t >= p.n_vocab)
      return make_error("forward_reference: token id ", t, " is outside the vocabulary");
  const Codec& emb = reference_codecs()[static_cast<size_t>(model.token_embd().type)];
  std::vector<float> x(static_cast<size_t>(n * E)), xn(x.size()), q, k, v, o, g, u, d;
  for (int64_t t = 0; t < n; ++t)
    emb.dequantize(model.token_embd().data + tokens[t] * model.token_embd().row_bytes,
                   x.data() + t * E, E);
  for (const LayerWeights& L : model.layers()) {
    for (int64_t t = 0; t < n; ++t)
      ref_rms_norm(x.data() + t * E, L.attn_norm, E, p.norm_eps, xn.data() + t * E);
    ref_matmul(L.wq, xn, n, q);
    ref_matmul(L.wk, xn, n, k);
    ref_matmul(L.wv, xn, n, v);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < E && !L.bq.empty(); ++i) q[t * E + i] += L.bq[i];
      for (int64_t i = 0; i < KV && !L.bk.empty(); ++i) k[t * KV + i] += L.bk[i];
      for (int64_t i = 0; i < KV && !L.bv.empty(); ++i) v[t * KV + i] += L.bv[i];
      for (int64_t h = 0; h < p.n_head; ++h)
        ref_rope(&q[t * E + h * hd], p.n_rot, p.rope_freq_base, t, p.rope_type);
      for (int64_t h = 0; h < p.n_head_kv; ++h)
        ref_rope(&k[t * KV + h * hd], p.n_rot, p.rope_freq_base, t, p.rope_type);
    }
    std::vector<float> att(static_cast<size_t>(n * E));
    std::vector<double> w(static_cast<size_t>(n));
    for (int64_t h = 0; h < p.n_head; ++h) {
      const int64_t kvh = h / group;
      for (int64_t t = 0; t < n; ++t) {
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double s = 0;
          for (int64_t i = 0; i < hd; ++i)
            s += double(q[t * E + h * hd + i]) * k[j * KV + kvh * hd + i];
          w[j] = s / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, w[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double acc = 0;
          for (int64_t j = 0; j <= t; ++j) acc += w[j] * v[j * KV + kvh * hd + i];
          att[t * E + h * hd + i] = static_cast<float>(acc / sum);
        }
      }
    }
    ref_matmul(L.wo, att, n, o);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    for (int64_t t = 0; t < n; ++t)
      ref_rms_norm(x.data() + t * E, L.ffn_norm, E, p.norm_eps, xn.data() + t * E);
    ref_matmul(L.ffn_gate, xn, n, g);
    ref_matmul(L.ffn_up, xn, n, u);
    for (size_t i = 0; i < g.size(); ++i) {
      const double gi = g[i];
      g[i] = static_cast<float>(gi / (1.0 + std::exp(-gi)) * u[i]);
    }
    (void)F;
    ref_matmul(L.ffn_down, g, n, d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
  }
  for (int64_t t = 0; t < n; ++t)
    ref_rms_norm(x.data() + t * E, model.output_norm(), E, p.norm_eps, xn.data() + t * E);
  std::vector<float> logits;
  ref_matmul(model.output(), xn, n, logits);
  return logits;
}

}  // namespace qforge
