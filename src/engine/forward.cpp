#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "kernels/matmul.h"
#include "kernels/vec_ops.h"

namespace qforge {
namespace {

// The vector math of the active ISA level (kernels/vec_ops.h), resolved once.
const VecOps& ops() {
  static const VecOps& o = vec_ops();
  return o;
}

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

// g[i] = gelu_tanh(g[i]) * u[i] (GELU with the tanh approximation, as HF's
// gelu_pytorch_tanh).
inline void gelu_tanh_mul(float* g, const float* u, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * u[i];
  }
}

}  // namespace

void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* y) {
  ops().rms_norm(x, w, n, eps, y);
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

Context::Context(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch,
                 KvType kv_type)
    : model_(model),
      pool_(pool),
      n_batch_(std::max<int64_t>(1, std::min(n_batch, n_ctx))),
      n_vocab_(model.params().n_vocab),
      kv_(model.params(), n_ctx, kv_type) {
  const ModelParams& p = model.params();
  const auto nb = static_cast<size_t>(n_batch_);
  const int64_t F = std::max(p.n_ff, p.n_ff_exp);
  x_.resize(nb * p.n_embd);
  xn_.resize(nb * std::max({p.n_embd, p.n_ff, p.n_q()}));
  q_.resize(nb * p.n_q());
  k_.resize(nb * p.n_embd_kv());
  v_.resize(nb * p.n_embd_kv());
  attn_.resize(nb * p.n_q());
  gate_.resize(nb * F);
  up_.resize(nb * F * (p.fused_up ? 2 : 1));
  if (p.fused_qkv) qkv_.resize(nb * (p.n_q() + 2 * p.n_embd_kv()));
  if (p.n_expert > 0) {
    router_.resize(nb * p.n_expert);
    xe_.resize(nb * p.n_embd);
    ye_.resize(nb * p.n_embd);
  }
  scores_.resize(static_cast<size_t>(pool.size()));
  for (auto& s : scores_) s.resize(static_cast<size_t>(4 * kv_.key_stride()));
  // cos/sin of every (position, pair) once, instead of per head and token.
  const std::vector<float>& factors = model.rope_factors(n_ctx);
  rope_ = build_rope_table(p, p.rope, factors, n_ctx);
  if (!p.swa_layers.empty()) rope_swa_ = build_rope_table(p, p.rope_swa, factors, n_ctx);
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
  const int64_t Q = p.n_q();
  const float scale = p.attn_scale > 0 ? p.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const float cap = p.attn_softcap;
  // Positions a query at pos sees: [pos - window + 1, pos] (all of them without a window).
  const int64_t window = p.is_swa(layer) ? p.n_swa : INT64_MAX;
  // Work items: (head, block of 4 consecutive tokens), head-major so that neighbouring items
  // reuse the same keys from cache.
  const int64_t n_blocks = (n + 3) / 4;
  for_range(pool_, p.n_head * n_blocks, 16 * hd * (pos0 + n), 1,
            [&](int64_t begin, int64_t end, int tid) {
              float* sc = scores_[static_cast<size_t>(tid)].data();
              for (int64_t item = begin; item < end; ++item) {
                const int64_t h = item / n_blocks, t0 = (item % n_blocks) * 4, g = h / group;
                const int nq = static_cast<int>(std::min<int64_t>(4, n - t0));
                const bool f16 = kv_.type() == KvType::F16;
                const float* q[4];
                for (int i = 0; i < 4; ++i)
                  q[i] = q_.data() + (t0 + std::min(i, nq - 1)) * Q + h * hd;
                // causal: token t sees positions up to pos0 + t
                const int64_t n_kv_max = pos0 + t0 + nq;
                const auto first_of = [&](int64_t pos) {
                  return window == INT64_MAX ? 0 : std::max<int64_t>(0, pos - window + 1);
                };
                // Scores from the first key any of the 4 queries sees, aligned down to 16 so
                // that the vector loop stays within the key stride.
                const int64_t lo = first_of(pos0 + t0) / 16 * 16;
                if (f16)
                  ops().qk_scores4_f16(q, kv_.keys_f16(layer, g) + lo, ks, hd, n_kv_max - lo, scale,
                                       sc + lo);
                else
                  ops().qk_scores4(q, kv_.keys(layer, g) + lo, ks, hd, n_kv_max - lo, scale,
                                   sc + lo);
                for (int i = 0; i < nq; ++i) {
                  const int64_t pos = pos0 + t0 + i, j0 = first_of(pos), n_kv = pos + 1 - j0;
                  float* w = sc + i * ks + j0;
                  if (cap > 0)
                    for (int64_t j = 0; j < n_kv; ++j) w[j] = cap * std::tanh(w[j] / cap);
                  const float inv = 1.0f / ops().exp_sub_sum(w, n_kv, ops().max_of(w, n_kv));
                  float* out = attn_.data() + (t0 + i) * Q + h * hd;
                  if (f16)
                    ops().weighted_values_f16(w, kv_.value_f16(layer, g, j0), n_kv, hd, inv, out);
                  else
                    ops().weighted_values(w, kv_.value(layer, g, j0), n_kv, hd, inv, out);
                }
              }
            });
}

void Context::mm(const WeightView& w, const float* x, int64_t n, float* y, MatmulSite site) {
  if (observer_) observer_->on_matmul(site, x, n, w.cols);
  matmul(*w.codec, w.data, w.rows, w.cols, x, n, y, pool_);
}

void Context::norm_rows(float* x, const std::vector<float>& w, int64_t from, int64_t to, float* y) {
  const ModelParams& p = model_.params();
  const int64_t E = p.n_embd;
  for_range(pool_, to - from, 4 * E, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t t = from + b; t < from + e; ++t)
      rms_norm_row(x + t * E, w.data(), E, p.norm_eps, y + (t - from) * E);
  });
}

// q/k/v of the micro-batch (normalised input in xn_): projections, biases, q/k norms, RoPE,
// and the new keys/values into the cache.
void Context::qkv_rope_store(int64_t l, int64_t n, int64_t pos0) {
  const ModelParams& p = model_.params();
  const LayerWeights& L = model_.layers()[static_cast<size_t>(l)];
  const int64_t Q = p.n_q(), KV = p.n_embd_kv(), hd = p.head_dim;
  if (!L.wqkv.empty()) {
    mm(L.wqkv, xn_.data(), n, qkv_.data(), {l, MatRole::AttnQkv});
    const int64_t W = Q + 2 * KV;
    for (int64_t t = 0; t < n; ++t) {
      const float* r = qkv_.data() + t * W;
      std::memcpy(q_.data() + t * Q, r, sizeof(float) * Q);
      std::memcpy(k_.data() + t * KV, r + Q, sizeof(float) * KV);
      std::memcpy(v_.data() + t * KV, r + Q + KV, sizeof(float) * KV);
    }
  } else {
    mm(L.wq, xn_.data(), n, q_.data(), {l, MatRole::AttnQ});
    mm(L.wk, xn_.data(), n, k_.data(), {l, MatRole::AttnK});
    mm(L.wv, xn_.data(), n, v_.data(), {l, MatRole::AttnV});
  }
  const RopeTable& rt = p.is_swa(l) ? rope_swa_ : rope_;
  for_range(pool_, n, 8 * Q, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* q = q_.data() + t * Q;
      float* k = k_.data() + t * KV;
      float* v = v_.data() + t * KV;
      if (!L.bq.empty()) add_inplace(q, L.bq.data(), Q);
      if (!L.bk.empty()) add_inplace(k, L.bk.data(), KV);
      if (!L.bv.empty()) add_inplace(v, L.bv.data(), KV);
      if (!L.q_norm.empty()) {
        for (int64_t h = 0; h < p.n_head; ++h)
          rms_norm_row(q + h * hd, L.q_norm.data(), hd, p.norm_eps, q + h * hd);
        for (int64_t h = 0; h < p.n_head_kv; ++h)
          rms_norm_row(k + h * hd, L.k_norm.data(), hd, p.norm_eps, k + h * hd);
      }
      const int64_t pos = pos0 + t;
      const float* c = rt.cos_at(pos);
      const float* sn = rt.sin_at(pos);
      for (int64_t h = 0; h < p.n_head; ++h) rope_row_cs(q + h * hd, p.n_rot, c, sn, p.rope_type);
      for (int64_t h = 0; h < p.n_head_kv; ++h) {
        rope_row_cs(k + h * hd, p.n_rot, c, sn, p.rope_type);
        kv_.store(l, h, pos, k + h * hd, v + h * hd);
      }
    }
  });
}

void Context::attention_block(int64_t l, int64_t n, int64_t pos0) {
  const ModelParams& p = model_.params();
  const LayerWeights& L = model_.layers()[static_cast<size_t>(l)];
  norm_rows(x_.data(), L.attn_norm, 0, n, xn_.data());
  qkv_rope_store(l, n, pos0);
  attention(l, n, pos0);
  mm(L.wo, attn_.data(), n, xn_.data(), {l, MatRole::AttnOut});
  if (!L.post_attn_norm.empty()) norm_rows(xn_.data(), L.post_attn_norm, 0, n, xn_.data());
  add_inplace(x_.data(), xn_.data(), n * p.n_embd);
}

// Routed experts (input: normalised rows in xn_): softmax over the router logits, the top
// n_expert_used experts (ties to the lower index), weights renormalised to sum 1 when the
// model says so; each expert multiplies the rows routed to it as one batch, and x_ gains the
// weighted outputs.
void Context::moe_ffn(int64_t l, int64_t n) {
  const LayerWeights& L = model_.layers()[static_cast<size_t>(l)];
  const ModelParams& p = model_.params();
  const int64_t E = p.n_embd, X = p.n_expert, K = p.n_expert_used, F = p.n_ff_exp;
  mm(L.ffn_gate_inp, xn_.data(), n, router_.data(), {l, MatRole::FfnGateInp});
  std::vector<std::vector<std::pair<int64_t, float>>> routed(static_cast<size_t>(X));
  std::vector<int64_t> idx(static_cast<size_t>(X));
  for (int64_t t = 0; t < n; ++t) {
    float* r = router_.data() + t * X;
    const float inv = 1.0f / ops().exp_sub_sum(r, X, ops().max_of(r, X));
    for (int64_t e = 0; e < X; ++e) r[e] *= inv;
    for (int64_t e = 0; e < X; ++e) idx[static_cast<size_t>(e)] = e;
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(),
                      [&](int64_t a, int64_t b) { return r[a] > r[b] || (r[a] == r[b] && a < b); });
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += r[idx[static_cast<size_t>(k)]];
    const float norm = p.expert_weights_norm && sum > 0 ? 1.0f / sum : 1.0f;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = idx[static_cast<size_t>(k)];
      routed[static_cast<size_t>(e)].emplace_back(t, r[e] * norm);
    }
  }
  for (int64_t e = 0; e < X; ++e) {
    const auto& rows = routed[static_cast<size_t>(e)];
    const auto m = static_cast<int64_t>(rows.size());
    if (m == 0) continue;
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(xe_.data() + i * E, xn_.data() + rows[static_cast<size_t>(i)].first * E,
                  sizeof(float) * E);
    const auto ue = static_cast<size_t>(e);
    mm(L.gate_exps[ue], xe_.data(), m, gate_.data(), {l, MatRole::FfnGateExps, e});
    mm(L.up_exps[ue], xe_.data(), m, up_.data(), {l, MatRole::FfnUpExps, e});
    ops().swiglu(gate_.data(), up_.data(), m * F);
    mm(L.down_exps[ue], gate_.data(), m, ye_.data(), {l, MatRole::FfnDownExps, e});
    for (int64_t i = 0; i < m; ++i) {
      const auto [t, wgt] = rows[static_cast<size_t>(i)];
      ops().axpy(wgt, ye_.data() + i * E, x_.data() + t * E, E);
    }
  }
}

void Context::ffn_block(int64_t l, int64_t n) {
  const ModelParams& p = model_.params();
  const LayerWeights& L = model_.layers()[static_cast<size_t>(l)];
  const int64_t E = p.n_embd, F = p.n_ff;
  norm_rows(x_.data(), L.ffn_norm, 0, n, xn_.data());
  if (p.n_expert > 0) {
    moe_ffn(l, n);
    return;
  }
  if (L.ffn_gate.empty()) {  // fused: each row of ffn_up's output is [gate | up]
    mm(L.ffn_up, xn_.data(), n, up_.data(), {l, MatRole::FfnUp});
    for (int64_t t = 0; t < n; ++t)
      std::memcpy(gate_.data() + t * F, up_.data() + t * 2 * F, sizeof(float) * F);
    for (int64_t t = 0; t < n; ++t)
      std::memmove(up_.data() + t * F, up_.data() + t * 2 * F + F, sizeof(float) * F);
  } else {
    mm(L.ffn_gate, xn_.data(), n, gate_.data(), {l, MatRole::FfnGate});
    mm(L.ffn_up, xn_.data(), n, up_.data(), {l, MatRole::FfnUp});
  }
  const bool gelu = p.act == Activation::GeluTanh;
  for_range(pool_, n, 16 * F, 8, [&](int64_t b, int64_t e, int) {
    if (gelu)
      gelu_tanh_mul(gate_.data() + b * F, up_.data() + b * F, (e - b) * F);
    else
      ops().swiglu(gate_.data() + b * F, up_.data() + b * F, (e - b) * F);
  });
  mm(L.ffn_down, gate_.data(), n, xn_.data(), {l, MatRole::FfnDown});
  if (!L.post_ffw_norm.empty()) norm_rows(xn_.data(), L.post_ffw_norm, 0, n, xn_.data());
  add_inplace(x_.data(), xn_.data(), n * E);
}

void Context::run_ubatch(const int32_t* tokens, int64_t n, int64_t out_from, float* out_logits) {
  const ModelParams& p = model_.params();
  const int64_t E = p.n_embd;
  const int64_t pos0 = kv_.size();
  for (int64_t t = 0; t < n; ++t) model_.embed(tokens[t], x_.data() + t * E);
  if (p.embd_scale != 1.0f)
    for (int64_t i = 0; i < n * E; ++i) x_[static_cast<size_t>(i)] *= p.embd_scale;

  for (int64_t l = 0; l < p.n_layer; ++l) {
    attention_block(l, n, pos0);
    ffn_block(l, n);
  }
  kv_.set_size(pos0 + n);

  if (out_from < n) {
    norm_rows(x_.data(), model_.output_norm(), out_from, n, xn_.data());
    mm(model_.output(), xn_.data(), n - out_from, out_logits, {-1, MatRole::Output});
    if (p.final_softcap > 0) {
      const float c = p.final_softcap;
      const int64_t total = (n - out_from) * p.n_vocab;
      for (int64_t i = 0; i < total; ++i) out_logits[i] = c * std::tanh(out_logits[i] / c);
    }
  }
}

}  // namespace qforge

namespace qforge {

std::string weight_tensor_name(const MatmulSite& site, bool tied_embeddings) {
  const char* w = "";
  switch (site.role) {
    case MatRole::AttnQ:
      w = "attn_q";
      break;
    case MatRole::AttnK:
      w = "attn_k";
      break;
    case MatRole::AttnV:
      w = "attn_v";
      break;
    case MatRole::AttnQkv:
      w = "attn_qkv";
      break;
    case MatRole::AttnOut:
      w = "attn_output";
      break;
    case MatRole::FfnGate:
      w = "ffn_gate";
      break;
    case MatRole::FfnUp:
      w = "ffn_up";
      break;
    case MatRole::FfnDown:
      w = "ffn_down";
      break;
    case MatRole::FfnGateInp:
      w = "ffn_gate_inp";
      break;
    case MatRole::FfnGateExps:
      w = "ffn_gate_exps";
      break;
    case MatRole::FfnUpExps:
      w = "ffn_up_exps";
      break;
    case MatRole::FfnDownExps:
      w = "ffn_down_exps";
      break;
    case MatRole::Output:
      return tied_embeddings ? "token_embd.weight" : "output.weight";
  }
  return "blk." + std::to_string(site.layer) + "." + w + ".weight";
}

}  // namespace qforge
