// The scalar reference forward pass (forward.h): token by token semantics over the whole
// sequence, double accumulators, matmul_reference, every family's switches read from the same
// ModelParams as the fast path. RoPE angles come from the same tables (engine/rope.h).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/forward.h"
#include "kernels/matmul.h"

namespace qforge {
namespace {

using Rows = std::vector<float>;

void ref_matmul(const WeightView& w, const Rows& x, int64_t n, Rows& y) {
  y.assign(static_cast<size_t>(n * w.rows), 0.0f);
  matmul_reference(w.type, w.data, w.rows, w.cols, x.data(), n, y.data());
}

void ref_rms_norm(const float* x, const std::vector<float>& w, int64_t n, float eps, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * scale * w[i]);
}

void ref_rope(float* head, int64_t n_rot, const float* c, const float* s, RopeType type) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = type == RopeType::Normal ? 2 * i : i;
    const int64_t b = type == RopeType::Normal ? 2 * i + 1 : i + half;
    const double x0 = head[a], x1 = head[b];
    head[a] = static_cast<float>(x0 * c[i] - x1 * s[i]);
    head[b] = static_cast<float>(x0 * s[i] + x1 * c[i]);
  }
}

struct Ref {
  const Model& m;
  const ModelParams& p;
  int64_t n;
  RopeTable rope, rope_swa;

  void norm_all(const Rows& x, const std::vector<float>& w, Rows& y) const {
    y.resize(x.size());
    for (int64_t t = 0; t < n; ++t)
      ref_rms_norm(x.data() + t * p.n_embd, w, p.n_embd, p.norm_eps, y.data() + t * p.n_embd);
  }

  // Projections, biases, q/k norms and RoPE of one layer.
  void qkv(int64_t l, const Rows& xn, Rows& q, Rows& k, Rows& v) const {
    const LayerWeights& L = m.layers()[static_cast<size_t>(l)];
    const int64_t Q = p.n_q(), KV = p.n_embd_kv(), hd = p.head_dim;
    if (!L.wqkv.empty()) {
      Rows all;
      ref_matmul(L.wqkv, xn, n, all);
      q.resize(static_cast<size_t>(n * Q));
      k.resize(static_cast<size_t>(n * KV));
      v.resize(k.size());
      for (int64_t t = 0; t < n; ++t) {
        const float* r = all.data() + t * (Q + 2 * KV);
        std::copy(r, r + Q, q.begin() + t * Q);
        std::copy(r + Q, r + Q + KV, k.begin() + t * KV);
        std::copy(r + Q + KV, r + Q + 2 * KV, v.begin() + t * KV);
      }
    } else {
      ref_matmul(L.wq, xn, n, q);
      ref_matmul(L.wk, xn, n, k);
      ref_matmul(L.wv, xn, n, v);
    }
    const RopeTable& rt = p.is_swa(l) ? rope_swa : rope;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < Q && !L.bq.empty(); ++i) q[t * Q + i] += L.bq[i];
      for (int64_t i = 0; i < KV && !L.bk.empty(); ++i) k[t * KV + i] += L.bk[i];
      for (int64_t i = 0; i < KV && !L.bv.empty(); ++i) v[t * KV + i] += L.bv[i];
      for (int64_t h = 0; h < p.n_head; ++h) {
        float* qh = &q[t * Q + h * hd];
        if (!L.q_norm.empty()) ref_rms_norm(qh, L.q_norm, hd, p.norm_eps, qh);
        ref_rope(qh, p.n_rot, rt.cos_at(t), rt.sin_at(t), p.rope_type);
      }
      for (int64_t h = 0; h < p.n_head_kv; ++h) {
        float* kh = &k[t * KV + h * hd];
        if (!L.k_norm.empty()) ref_rms_norm(kh, L.k_norm, hd, p.norm_eps, kh);
        ref_rope(kh, p.n_rot, rt.cos_at(t), rt.sin_at(t), p.rope_type);
      }
    }
  }

  // Causal softmax attention of one layer (sliding window, soft-cap).
  Rows attend(int64_t l, const Rows& q, const Rows& k, const Rows& v) const {
    const int64_t Q = p.n_q(), KV = p.n_embd_kv(), hd = p.head_dim;
    const int64_t group = p.n_head / p.n_head_kv;
    const double scale = p.attn_scale > 0 ? p.attn_scale : 1.0 / std::sqrt(double(hd));
    Rows att(static_cast<size_t>(n * Q));
    std::vector<double> w(static_cast<size_t>(n));
    for (int64_t h = 0; h < p.n_head; ++h) {
      const int64_t kvh = h / group;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t j0 = p.is_swa(l) ? std::max<int64_t>(0, t - p.n_swa + 1) : 0;
        double mx = -INFINITY;
        for (int64_t j = j0; j <= t; ++j) {
          double s = 0;
          for (int64_t i = 0; i < hd; ++i)
            s += double(q[t * Q + h * hd + i]) * k[j * KV + kvh * hd + i];
          s *= scale;
          if (p.attn_softcap > 0) s = p.attn_softcap * std::tanh(s / p.attn_softcap);
          w[j] = s;
          mx = std::max(mx, s);
        }
        double sum = 0;
        for (int64_t j = j0; j <= t; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double acc = 0;
          for (int64_t j = j0; j <= t; ++j) acc += w[j] * v[j * KV + kvh * hd + i];
          att[t * Q + h * hd + i] = static_cast<float>(acc / sum);
        }
      }
    }
    return att;
  }

  // act(g) * u element-wise, into g.
  void gate(Rows& g, const Rows& u) const {
    for (size_t i = 0; i < g.size(); ++i) {
      const double x = g[i];
      const double a =
          p.act == Activation::GeluTanh
              ? 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
              : x / (1.0 + std::exp(-x));
      g[i] = static_cast<float>(a * u[i]);
    }
  }

  Rows dense_ffn(const LayerWeights& L, const Rows& xn) const {
    Rows g, u, d;
    if (L.ffn_gate.empty()) {
      Rows gu;
      ref_matmul(L.ffn_up, xn, n, gu);
      const int64_t F = p.n_ff;
      g.resize(static_cast<size_t>(n * F));
      u.resize(g.size());
      for (int64_t t = 0; t < n; ++t) {
        std::copy(gu.begin() + t * 2 * F, gu.begin() + t * 2 * F + F, g.begin() + t * F);
        std::copy(gu.begin() + t * 2 * F + F, gu.begin() + (t + 1) * 2 * F, u.begin() + t * F);
      }
    } else {
      ref_matmul(L.ffn_gate, xn, n, g);
      ref_matmul(L.ffn_up, xn, n, u);
    }
    gate(g, u);
    ref_matmul(L.ffn_down, g, n, d);
    return d;
  }

  // Every token through its top-k experts, one token at a time.
  Rows moe_ffn(const LayerWeights& L, const Rows& xn) const {
    const int64_t E = p.n_embd, X = p.n_expert, K = p.n_expert_used;
    Rows logits, out(static_cast<size_t>(n * E), 0.0f);
    ref_matmul(L.ffn_gate_inp, xn, n, logits);
    for (int64_t t = 0; t < n; ++t) {
      const float* r = logits.data() + t * X;
      const double mx = *std::max_element(r, r + X);
      std::vector<double> prob(static_cast<size_t>(X));
      double sum = 0;
      for (int64_t e = 0; e < X; ++e) sum += (prob[e] = std::exp(r[e] - mx));
      for (double& pr : prob) pr /= sum;
      std::vector<int64_t> idx(static_cast<size_t>(X));
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(),
                       [&](int64_t a, int64_t b) { return prob[a] > prob[b]; });
      double top = 0;
      for (int64_t k = 0; k < K; ++k) top += prob[idx[k]];
      const Rows x1(xn.begin() + t * E, xn.begin() + (t + 1) * E);
      for (int64_t k = 0; k < K; ++k) {
        const auto e = static_cast<size_t>(idx[k]);
        const double wgt = prob[e] / (p.expert_weights_norm ? top : 1.0);
        Rows g, u, d;
        ref_matmul(L.gate_exps[e], x1, 1, g);
        ref_matmul(L.up_exps[e], x1, 1, u);
        gate(g, u);
        ref_matmul(L.down_exps[e], g, 1, d);
        for (int64_t i = 0; i < E; ++i) out[t * E + i] += static_cast<float>(wgt * d[i]);
      }
    }
    return out;
  }

  void layer(int64_t l, Rows& x) const {
    const LayerWeights& L = m.layers()[static_cast<size_t>(l)];
    Rows xn, q, k, v, o;
    norm_all(x, L.attn_norm, xn);
    qkv(l, xn, q, k, v);
    ref_matmul(L.wo, attend(l, q, k, v), n, o);
    if (!L.post_attn_norm.empty()) norm_all(Rows(o), L.post_attn_norm, o);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    norm_all(x, L.ffn_norm, xn);
    Rows d = p.n_expert > 0 ? moe_ffn(L, xn) : dense_ffn(L, xn);
    if (!L.post_ffw_norm.empty()) norm_all(Rows(d), L.post_ffw_norm, d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
  }
};

}  // namespace

Result<std::vector<float>> forward_reference(const Model& model, std::span<const int32_t> tokens) {
  const ModelParams& p = model.params();
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t E = p.n_embd;
  for (int32_t t : tokens)
    if (t < 0 || t >= p.n_vocab)
      return make_error("forward_reference: token id ", t, " is outside the vocabulary");
  const std::vector<float>& factors = model.rope_factors(std::max<int64_t>(n, 1));
  Ref r{model, p, n, build_rope_table(p, p.rope, factors, std::max<int64_t>(n, 1)),
        build_rope_table(p, p.rope_swa, factors, std::max<int64_t>(n, 1))};
  const Codec& emb = reference_codecs()[static_cast<size_t>(model.token_embd().type)];
  Rows x(static_cast<size_t>(n * E));
  for (int64_t t = 0; t < n; ++t) {
    emb.dequantize(model.token_embd().data + tokens[t] * model.token_embd().row_bytes,
                   x.data() + t * E, E);
    for (int64_t i = 0; i < E && p.embd_scale != 1.0f; ++i) x[t * E + i] *= p.embd_scale;
  }
  for (int64_t l = 0; l < p.n_layer; ++l) r.layer(l, x);
  Rows xn, logits;
  r.norm_all(x, model.output_norm(), xn);
  ref_matmul(model.output(), xn, n, logits);
  if (p.final_softcap > 0)
    for (float& v : logits) v = p.final_softcap * std::tanh(v / p.final_softcap);
  return logits;
}

}  // namespace qforge
