// The architecture descriptor: ONE table that names, per model family, everything the converter,
// the model loader, the quantization recipe and `inspect` need to agree on:
//   - the Hugging Face class names (config.json "architectures") and the GGUF architecture name,
//   - the hyper-parameters (ModelHParams) with the config.json keys they come from (both config
//     styles: rope_scaling/rope_theta and transformers-5 rope_parameters/layer_types) and the
//     GGUF KVs they are written to and read from (kGgufKeys: one key table for both directions),
//   - the tensor name map HF -> GGUF (TensorRule: fused qkv / gate_up kept fused as llama.cpp
//     does, per-expert tensors stacked into 3-D ffn_*_exps, q/k norms, Gemma's extra norms
//     stored as 1 + w, Q/K rows permuted for llama's interleaved RoPE),
//   - the engine's graph switches (FamilyTraits + the per-file ModelHParams: norm 1+w, activation,
//     soft-caps, sliding window and pattern, q/k norm, RoPE layout and scaling, partial rotary,
//     embedding scale, attention scale (query_pre_attn_scalar), MoE expert counts and top-k
//     weight normalisation, biases, fused tensors).
// Adding a family = one ModelFamily entry (+ its TensorRule list) here, plus its forward block in
// the engine.
//
// Conventions (llama.cpp's, so that stock llama.cpp loads the files):
//   * Norm weights of "norm_plus_one" families (Gemma) are stored in the GGUF as (1 + w), so the
//     engine multiplies by the stored weight exactly like every other RMSNorm.
//   * RoPE scaling: llama3 -> tensor rope_freqs.weight (per-pair frequency divisors, computed in
//     float32 arithmetic); linear / yarn -> rope.scaling.* KVs; longrope (phi3) -> tensors
//     rope_factors_short/long.weight + rope.scaling.attn_factor + original_context_length.
//   * Gemma-2 / Gemma-3 sliding layers: layer il is local (sliding window) iff
//     il % sliding_pattern < sliding_pattern - 1 (pattern 2: even layers; 6: 5 local + 1 global).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

enum class Activation { Silu, GeluTanh };
// How RoPE pairs the dimensions of a head: Normal rotates adjacent pairs (2i, 2i+1) (llama,
// after the converter's Q/K permutation); Neox rotates (i, i + n_rot/2) (qwen, gemma, phi3).
enum class RopeLayout { Normal, Neox };
enum class RopeScalingKind { None, Linear, Yarn, Llama3, LongRope };
std::string_view rope_scaling_name(RopeScalingKind k);  // "none", "linear", "yarn", ...

// The static graph switches of a family (what does not vary between checkpoints of it).
struct FamilyTraits {
  Activation act = Activation::Silu;
  RopeLayout rope = RopeLayout::Normal;
  bool permute_qk = false;        // converter: HF rotate-half Q/K rows -> interleaved pairs
  bool norm_plus_one = false;     // HF norm weights w act as (1 + w); GGUF stores 1 + w
  bool embed_scale_sqrt = false;  // token embeddings x sqrt(n_embd) (Gemma)
  bool qk_norm = false;           // per-head RMSNorm of q and k (attn_q_norm / attn_k_norm)
  bool post_norms = false;        // post_attention_norm and post_ffw_norm (Gemma "sandwich")
  bool fused_qkv = false;         // attn_qkv = [q; k; v] rows (Phi-3)
  bool fused_gate_up = false;     // ffn_up = [gate; up] rows, no ffn_gate (Phi-3)
  bool moe = false;               // ffn_gate_inp router + stacked ffn_{gate,up,down}_exps
  bool qkv_bias = false;          // q/k/v biases always present (qwen2)
  bool always_tied = false;       // output projection = token_embd (Gemma: lm_head ignored)
  // Default sliding pattern (see ModelHParams::sliding_pattern): Gemma-2 2, Gemma-3 6 (what
  // llama.cpp assumes for these architectures), Phi-3 0; others 1.
  uint32_t sliding_pattern = 1;
};

// Shape of a tensor in numpy order (outermost first), from the hyper-parameters.
enum class ShapeKind {
  Embd,      // {n_vocab, n_embd}
  Norm,      // {n_embd}
  HeadNorm,  // {head_dim}
  Q,         // {n_head * head_dim, n_embd}
  KV,        // {n_head_kv * head_dim, n_embd}
  O,         // {n_embd, n_head * head_dim}
  Qb,        // {n_head * head_dim}
  KVb,       // {n_head_kv * head_dim}
  Ob,        // {n_embd}
  QKV,       // {(n_head + 2 n_head_kv) * head_dim, n_embd}
  Up,        // {n_ff, n_embd}
  GateUp,    // {2 n_ff, n_embd}
  Down,      // {n_embd, n_ff}
  Router,    // {n_expert, n_embd}
  UpExps,    // {n_expert, n_ff_exp, n_embd}  (stacked from n_expert HF tensors {n_ff_exp, n_embd})
  DownExps,  // {n_expert, n_embd, n_ff_exp}
};
enum class Need { Always, IfBias, Optional, IfUntied };
enum class Transform { None, PermuteQ, PermuteK, PlusOne };

// One tensor of the map. Layer tensors have gguf "blk.{L}.<gguf>" and hf "model.layers.{L}.<hf>";
// for stacked expert tensors `hf` contains "{E}" (the expert index). Global tensors use the
// names as written (layer = false).
struct TensorRule {
  std::string_view gguf;
  std::string_view hf;
  ShapeKind shape;
  Need need = Need::Always;
  Transform transform = Transform::None;
  bool force_f32 = false;  // kept F32 whatever the output type (routers; 1-D tensors always are)
};

// Hyper-parameters of one model: read from config.json by the converter, written to GGUF KVs,
// read back from the KVs by the engine (read_hparams). 0 / empty means "absent".
struct ModelFamily;
struct ModelHParams {
  const ModelFamily* family = nullptr;
  uint64_t n_vocab = 0;
  uint64_t n_ctx_train = 0;
  uint64_t n_embd = 0;
  uint64_t n_layer = 0;
  uint64_t n_ff = 0;
  uint64_t n_head = 0;
  uint64_t n_head_kv = 0;
  uint64_t head_dim = 0;   // attention.key_length (= value_length); n_embd / n_head if absent
  uint64_t n_rot = 0;      // rope.dimension_count; head_dim if absent
  float norm_eps = 1e-5f;  // attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;
  float rope_freq_base_swa = 0;  // rope base of sliding-window layers (Gemma-3); 0: same
  RopeScalingKind rope_scaling = RopeScalingKind::None;
  float rope_scaling_factor = 0;  // linear / yarn factor (> 1)
  uint64_t rope_orig_ctx = 0;     // rope.scaling.original_context_length (yarn, longrope)
  float rope_attn_factor = 0;     // longrope: rope.scaling.attn_factor
  float yarn_ext_factor = -1;     // < 0: absent
  float yarn_attn_factor = 0, yarn_beta_fast = 0, yarn_beta_slow = 0;  // 0: absent
  float attn_softcap = 0;       // attn_logit_softcapping (Gemma-2)
  float final_softcap = 0;      // final_logit_softcapping
  uint64_t sliding_window = 0;  // attention.sliding_window (0: none)
  // Which layers use the window: 0 every layer, 1 none, n > 1: il % n < n - 1 (Gemma).
  uint32_t sliding_pattern = 1;
  float attention_scale = 0;  // q scale; 0: 1/sqrt(head_dim). Gemma: 1/sqrt(qpas)
  uint64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;
  bool expert_weights_norm = false;  // renormalise the top-k router weights (Qwen3-MoE)
  bool attention_bias = false;       // q/k/v (+o for llama) biases present

  // Converter-only inputs (not KVs): where head_dim came from, llama3 / longrope parameters.
  bool head_dim_explicit = false;
  float llama3_low_freq_factor = 1, llama3_high_freq_factor = 4;
  uint64_t llama3_orig_ctx = 0;
  std::vector<float> longrope_short, longrope_long;
  bool tie_word_embeddings = false;

  uint64_t n_embd_q() const { return n_head * head_dim; }
  uint64_t n_embd_kv() const { return n_head_kv * head_dim; }
  // Layer il uses the sliding window (Gemma local layers).
  bool is_sliding(uint64_t il) const {
    if (sliding_window == 0 || sliding_pattern == 1) return false;
    return sliding_pattern == 0 || il % sliding_pattern < sliding_pattern - 1;
  }
  // RoPE of layer il: base and frequency scale (1/factor for linear scaling; sliding layers of
  // Gemma-3 use rope_freq_base_swa without scaling).
  float rope_base(uint64_t il) const {
    return is_sliding(il) && rope_freq_base_swa > 0 ? rope_freq_base_swa : rope_freq_base;
  }
  float rope_freq_scale(uint64_t il) const;
  // The factor q.k is multiplied by before the softmax.
  float attn_scale() const;
};

// One GGUF key "<arch>.<suffix>" bound to a ModelHParams field. The table kGgufKeys is used in
// both directions (write_hparams, read_hparams), so converter and engine cannot disagree.
using HParamField = std::variant<uint64_t ModelHParams::*, float ModelHParams::*,
                                 bool ModelHParams::*, uint32_t ModelHParams::*>;
enum class KeyId {
  ContextLength,
  EmbeddingLength,
  BlockCount,
  FeedForwardLength,
  RopeDimensionCount,
  HeadCount,
  HeadCountKv,
  KeyLength,
  ValueLength,
  RmsEps,
  RopeFreqBase,
  RopeFreqBaseSwa,
  RopeScalingType,  // string; written from / read into rope_scaling
  RopeScalingFactor,
  RopeScalingOrigCtx,
  RopeScalingAttnFactor,
  YarnExtFactor,
  YarnAttnFactor,
  YarnBetaFast,
  YarnBetaSlow,
  AttnSoftcap,
  FinalSoftcap,
  SlidingWindow,
  AttentionScale,
  ExpertCount,
  ExpertUsedCount,
  ExpertFeedForwardLength,
  ExpertWeightsNorm,
  VocabSize,
};
struct GgufKeySpec {
  KeyId id;
  std::string_view suffix;  // after "<arch>."
  GgufType type;            // U32, F32, BOOL or STRING
  HParamField field;        // unused for RopeScalingType
};
std::span<const GgufKeySpec> gguf_keys();
const GgufKeySpec& gguf_key(KeyId id);

// When a family writes a key.
enum class When {
  Always,
  HeadDimExplicit,  // config.json has head_dim (llama.cpp writes key/value_length then), or
                    // head_dim differs from n_embd / n_head
  Scaling,          // rope_scaling is linear or yarn (type + factor)
  Yarn,             // yarn: each yarn key that the config gave
  LongRope,         // longrope: attn_factor / original_context_length
  SwaBase,          // rope_freq_base_swa > 0
  Softcap,          // the soft-cap is set
  Sliding,          // sliding_window > 0 (Gemma-3: also needs sliding_pattern != 1)
  Moe,
};
struct KeyUse {
  KeyId id;
  When when = When::Always;
};

struct ModelFamily {
  std::string_view name;       // qforge's name for the family ("llama", "qwen3moe", ...)
  std::string_view gguf_arch;  // general.architecture
  std::span<const std::string_view> hf_classes;
  FamilyTraits traits;
  std::span<const TensorRule> globals;  // before/after the layers: see global_rules_after
  std::span<const TensorRule> layer;    // per layer, in the order the converter writes them
  size_t globals_before_layers = 0;     // globals[0..k) come before the layers, the rest after
  std::span<const KeyUse> keys;         // hyper-parameter KVs, in the order they are written
};

// All families, in a stable order (for --help, inspect and tests).
std::span<const ModelFamily> model_families();
const ModelFamily* family_by_hf_class(std::string_view hf_class);
const ModelFamily* family_by_gguf_arch(std::string_view arch);
// "LlamaForCausalLM, MistralForCausalLM, ..." for messages.
std::string supported_hf_classes();

// "blk.3.attn_q.weight" from a layer rule, and "model.layers.3.self_attn.q_proj.weight"
// (expert index e for stacked rules).
std::string gguf_tensor_name(const TensorRule& r, uint64_t layer);
std::string hf_tensor_name(const TensorRule& r, uint64_t layer, uint64_t expert = 0);
bool is_stacked(const TensorRule& r);  // ShapeKind UpExps / DownExps
// Expected shape (numpy order) of the GGUF tensor of a rule.
std::vector<uint64_t> rule_shape(const TensorRule& r, const ModelHParams& hp);

// The hyper-parameter KVs of a family, in its order ("<arch>.context_length", ...).
std::vector<GgufKv> write_hparams(const ModelHParams& hp);
// Reads the hyper-parameters of a GGUF file's KVs: the family from general.architecture, every
// key of kgguf_keys present, defaults derived as llama.cpp derives them (head_dim = n_embd /
// n_head, n_rot = head_dim, Gemma sliding pattern 2 / 6, Gemma attention scale 1/sqrt(head_dim)
// unless attention.scale is given, llama3 / longrope scaling from the presence of the
// rope_freqs / rope_factors_long tensors). `has_tensor` answers for tensor names. Errors name
// `file` and the key.
Result<ModelHParams> read_hparams(const std::vector<GgufKv>& kvs,
                                  const std::function<bool(std::string_view)>& has_tensor,
                                  const std::string& file);
Result<ModelHParams> read_hparams(const GgufFile& f);

// A one-line feature summary for `inspect` ("q/k norm, sliding window 8 (pattern 6), ...").
std::vector<std::string> family_features(const ModelHParams& hp);

}  // namespace qforge
