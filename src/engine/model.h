// A decoder-only transformer ready to run: hyper-parameters read from GGUF metadata (llama.cpp's
// KV names) and every weight as a zero-copy view into the memory-mapped file (loading never
// copies a weight matrix; only the tiny norm, bias and rope-factor vectors are decoded to f32).
// Families (general.architecture): llama (Llama 2/3.x incl. rope_freqs, Mistral), qwen2
// (q/k/v biases), qwen3 (q/k norms, key_length != n_embd/n_head), qwen3moe (router + stacked
// experts), gemma2 / gemma3 (extra norms, soft-caps, sliding window, local/global RoPE), phi3
// (fused qkv / gate-up, longrope); tied embeddings (no output.weight) everywhere.
//
// Validation happens at load: an unsupported architecture, a missing tensor, a tensor whose
// shape disagrees with the hyper-parameters, or a weight type without a codec is a one-line
// error that names the file and the tensor or key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"
#include "formats/model_family.h"
#include "kernels/codec.h"

namespace qforge {

// How RoPE pairs the dimensions of a head: Normal (llama) rotates adjacent pairs (2i, 2i+1);
// Neox (qwen2 and the later families) rotates (i, i + n_rot/2).
enum class RopeType { Normal, Neox };
// How the rotation frequencies are stretched beyond the trained context (llama.cpp's
// rope.scaling.type): Linear divides every frequency by the factor; Yarn mixes the stretched
// and the original frequency per dimension and scales cos/sin (llama.cpp's rope_yarn).
// Per-dimension factors (llama3's rope_freqs, phi3's longrope short/long) are separate and
// combine with any of these.
enum class RopeScaling { None, Linear, Yarn };

// The RoPE of one kind of layer (Gemma 3 has a local and a global one).
struct RopeConfig {
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1 / rope.scaling.factor (Linear, Yarn)
  RopeScaling scaling = RopeScaling::None;
  bool use_factors = true;  // divide by the per-dimension factors when the model has them
};

struct ModelParams {
  std::string arch;  // GGUF general.architecture
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // attention.key_length (= value_length); n_embd / n_head by default
  int64_t n_rot = 0;     // rotated dimensions per head (<= head_dim)
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;  // of the global (non-sliding) layers
  RopeType rope_type = RopeType::Normal;
  RopeConfig rope;                // global layers
  RopeConfig rope_swa;            // sliding-window layers
  int64_t n_ctx_orig = 0;         // rope.scaling.original_context_length (0: n_ctx_train)
  float rope_attn_factor = 1.0f;  // cos/sin multiplier (phi3 longrope, yarn)
  float yarn_ext_factor = 1.0f, yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;

  // Graph switches.
  Activation act = Activation::Silu;
  bool qkv_bias = false;            // qwen2
  bool qk_norm = false;             // per-head RMS norm of q and k before RoPE (qwen3, gemma3)
  bool post_norms = false;          // gemma: norms after attention and after the FFN
  bool fused_qkv = false;           // phi3: one attn_qkv matrix
  bool fused_up = false;            // phi3: ffn_up holds gate and up (2 x n_ff rows)
  float embd_scale = 1.0f;          // gemma: sqrt(n_embd)
  float attn_scale = 0.0f;          // q.k multiplier; 0: 1/sqrt(head_dim)
  float attn_softcap = 0.0f;        // gemma2: s = c tanh(s / c) on attention scores; 0: none
  float final_softcap = 0.0f;       // gemma2: the same on the output logits
  int64_t n_swa = 0;                // sliding window (positions a query sees, itself included)
  std::vector<uint8_t> swa_layers;  // per layer: 1 = sliding window, empty = none
  // Mixture of experts (qwen3moe): n_expert > 0.
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;
  bool expert_weights_norm = true;  // renormalise the top-k router weights to sum 1

  int64_t n_q() const { return n_head * head_dim; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
  bool is_swa(int64_t layer) const {
    return n_swa > 0 && static_cast<size_t>(layer) < swa_layers.size() &&
           swa_layers[static_cast<size_t>(layer)] != 0;
  }
};

// A weight matrix as stored in the file: `rows` output features of `cols` inputs each
// (GGUF dims = {cols, rows}), row_bytes bytes per row, decoded/multiplied through `codec`.
// One expert of a stacked 3-D tensor {cols, rows, n_expert} is such a view too (expert e's
// rows are contiguous at e * rows * row_bytes), whatever the quantization type.
struct WeightView {
  const uint8_t* data = nullptr;
  Type type = Type::F32;
  const Codec* codec = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  uint64_t bytes() const { return row_bytes * static_cast<uint64_t>(rows); }
  bool empty() const { return data == nullptr; }
};

struct LayerWeights {
  std::vector<float> attn_norm;  // n_embd
  // q: n_q x n_embd, k/v: n_embd_kv x n_embd, o: n_embd x n_q; with fused_qkv only wqkv
  // ((n_q + 2 n_embd_kv) x n_embd, rows q then k then v) is set.
  WeightView wq, wk, wv, wqkv, wo;
  std::vector<float> bq, bk, bv;      // biases (qwen2); empty when absent
  std::vector<float> q_norm, k_norm;  // head_dim each (qk_norm)
  std::vector<float> post_attn_norm;  // n_embd (post_norms)
  std::vector<float> ffn_norm;        // n_embd (gemma: the pre-FFN norm)
  std::vector<float> post_ffw_norm;   // n_embd (post_norms)
  // Dense FFN: gate/up n_ff x n_embd (fused_up: ffn_up is 2 n_ff x n_embd, gate rows first),
  // down n_embd x n_ff.
  WeightView ffn_gate, ffn_up, ffn_down;
  // MoE: router n_expert x n_embd, and per expert gate/up n_ff_exp x n_embd, down
  // n_embd x n_ff_exp (views into the stacked ffn_*_exps tensors).
  WeightView ffn_gate_inp;
  std::vector<WeightView> gate_exps, up_exps, down_exps;
};

class Model {
 public:
  // Opens (memory-maps) and validates a GGUF model.
  static Result<Model> load(const std::string& path);
  // Validates an already opened file; the Model keeps it alive.
  static Result<Model> from_gguf(std::shared_ptr<const GgufFile> file);

  const ModelParams& params() const { return params_; }
  const GgufFile& file() const { return *file_; }
  std::shared_ptr<const GgufFile> file_ptr() const { return file_; }
  const WeightView& token_embd() const { return tok_embd_; }
  // The output projection: output.weight, or token_embd.weight when tied.
  const WeightView& output() const { return output_; }
  bool tied_embeddings() const { return tied_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // Per-dimension RoPE frequency divisors (n_rot/2) for a context of n_ctx positions:
  // rope_freqs (llama3), or phi3's rope_factors_long when n_ctx exceeds the original context
  // and rope_factors_short otherwise (llama.cpp's rule); empty when the model has none.
  const std::vector<float>& rope_factors(int64_t n_ctx) const;

  // Decodes row `token` of the embedding table into out[0..n_embd). Contract: token < n_vocab.
  void embed(int32_t token, float* out) const;
  // Bytes of all tensor data (what the mapping holds resident when fully touched).
  uint64_t weight_bytes() const { return file_->tensor_data_bytes(); }
  // Parameter count of all tensors.
  uint64_t n_params() const;

 private:
  std::shared_ptr<const GgufFile> file_;
  ModelParams params_;
  WeightView tok_embd_, output_;
  bool tied_ = false;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
  std::vector<float> rope_freqs_, rope_long_, rope_short_;
};

}  // namespace qforge
