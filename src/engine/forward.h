// The forward pass of a decoder-only transformer (every family engine/model.h loads) on the CPU.
// The graph per layer: [embeddings x embd_scale] -> attention block (norm, q/k/v or fused qkv,
// biases, per-head q/k norm, RoPE, causal attention with optional sliding window and soft-cap,
// output projection, optional post-norm, residual) -> FFN block (norm, SwiGLU / GELU-tanh
// gated FFN, fused gate-up, or routed experts; optional post-norm, residual) -> final norm,
// output projection, optional final soft-cap.
//
// Context is the fast path: batched prompt processing (tokens are split into micro-batches of
// at most n_batch and every weight matrix is multiplied once per micro-batch through
// kernels/matmul), a KV cache for incremental decoding, attention parallelised over
// (head, block of 4 tokens) items, activations in f32, buffers allocated once.
//
// forward_reference() is the oracle: the same model computed token by token with plain scalar
// loops, double accumulators and matmul_reference. Tests compare the fast path against it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "engine/activation_observer.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/rope.h"

namespace qforge {

class Context {
 public:
  // A context of n_ctx positions over `model` (which must outlive it), multiplying at most
  // n_batch tokens at a time, running on `pool`, keys and values cached as kv_type.
  // Contract: n_ctx > 0, n_batch > 0.
  Context(const Model& model, int64_t n_ctx, ThreadPool& pool, int64_t n_batch = 512,
          KvType kv_type = KvType::F16);

  // Appends `tokens` at positions n_past()..n_past()+n-1 and computes the logits of the last
  // n_outputs of them (0 <= n_outputs <= n). Errors (nothing is changed): a token id outside
  // the vocabulary, or more positions than the context holds.
  Status decode(std::span<const int32_t> tokens, int64_t n_outputs = 1);
  // Logits of the last decode(): n_outputs rows of n_vocab, row-major.
  std::span<const float> logits() const { return logits_; }
  const float* logits_row(int64_t i) const { return logits_.data() + i * n_vocab_; }

  int64_t n_past() const { return kv_.size(); }
  int64_t n_ctx() const { return kv_.capacity(); }
  int64_t n_vocab() const { return n_vocab_; }
  // Forgets the sequence (the next decode starts at position 0).
  void clear() { kv_.clear(); }
  const KvCache& kv_cache() const { return kv_; }
  const Model& model() const { return model_; }
  ThreadPool& pool() const { return pool_; }
  // Reports every matmul input to `obs` (nullptr: none); obs must outlive its use.
  void set_observer(ActivationObserver* obs) { observer_ = obs; }

 private:
  void run_ubatch(const int32_t* tokens, int64_t n, int64_t out_from, float* out_logits);
  void attention_block(int64_t layer, int64_t n, int64_t pos0);
  void qkv_rope_store(int64_t layer, int64_t n, int64_t pos0);
  void attention(int64_t layer, int64_t n, int64_t pos0);
  void ffn_block(int64_t layer, int64_t n);
  void moe_ffn(int64_t layer, int64_t n);
  void mm(const WeightView& w, const float* x, int64_t n, float* y, MatmulSite site);
  void norm_rows(float* x, const std::vector<float>& w, int64_t from, int64_t to, float* y);

  const Model& model_;
  ThreadPool& pool_;
  int64_t n_batch_, n_vocab_;
  KvCache kv_;
  RopeTable rope_, rope_swa_;  // global and sliding-window layers
  // Per-micro-batch activations (n_batch rows each).
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, qkv_;
  // Mixture of experts: router logits, and the gathered rows of one expert.
  std::vector<float> router_, xe_, ye_;
  std::vector<std::vector<float>> scores_;  // per pool thread: 4 rows of attention weights
  std::vector<float> logits_;
  int64_t logits_rows_ = 0;
  ActivationObserver* observer_ = nullptr;
};

// Scalar reference forward pass over a whole sequence starting at position 0: all logits,
// tokens.size() rows of n_vocab. Slow (for tests on small models and short sequences).
// Error on a token id outside the vocabulary.
Result<std::vector<float>> forward_reference(const Model& model, std::span<const int32_t> tokens);

// The individual ops, exposed for tests. All operate on one row.
// y = x / sqrt(mean(x^2) + eps) * w
void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* y);
// Rotates one head vector in place for position `pos` (inv_freq has n_rot/2 entries).
void rope_row(float* head, int64_t n_rot, const double* inv_freq, int64_t pos, RopeType type);
// The same with the position's cos/sin of each pair precomputed (n_rot/2 entries each).
void rope_row_cs(float* head, int64_t n_rot, const float* cos_t, const float* sin_t, RopeType type);

}  // namespace qforge
