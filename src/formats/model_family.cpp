#include "formats/model_family.h"

#include <algorithm>
#include <cmath>

namespace qforge {
namespace {

using S = ShapeKind;
using N = Need;
using X = Transform;

// ---- tensor maps -------------------------------------------------------------------------------
// Globals: token_embd / output_norm / output. Order: llama.cpp's converter walks the checkpoint
// in name order (lm_head < model.embed_tokens < model.layers < model.norm); the llama and qwen2
// entries keep the order of the reference conversions that qforge reproduces byte for byte.
constexpr TensorRule kLegacyGlobals[] = {
    {"token_embd.weight", "model.embed_tokens.weight", S::Embd},
    {"output_norm.weight", "model.norm.weight", S::Norm},
    {"output.weight", "lm_head.weight", S::Embd, N::IfUntied},
};
constexpr TensorRule kSortedGlobals[] = {
    {"output.weight", "lm_head.weight", S::Embd, N::IfUntied},
    {"token_embd.weight", "model.embed_tokens.weight", S::Embd},
    {"output_norm.weight", "model.norm.weight", S::Norm},
};
constexpr TensorRule kGemmaGlobals[] = {
    {"token_embd.weight", "model.embed_tokens.weight", S::Embd},
    {"output_norm.weight", "model.norm.weight", S::Norm, N::Always, X::PlusOne},
};

constexpr TensorRule kLlamaLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q, N::Always, X::PermuteQ},
    {"attn_q.bias", "self_attn.q_proj.bias", S::Qb, N::IfBias, X::PermuteQ},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV, N::Always, X::PermuteK},
    {"attn_k.bias", "self_attn.k_proj.bias", S::KVb, N::IfBias, X::PermuteK},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
    {"attn_v.bias", "self_attn.v_proj.bias", S::KVb, N::IfBias},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_output.bias", "self_attn.o_proj.bias", S::Ob, N::IfBias},
    {"ffn_norm.weight", "post_attention_layernorm.weight", S::Norm},
    {"ffn_gate.weight", "mlp.gate_proj.weight", S::Up},
    {"ffn_up.weight", "mlp.up_proj.weight", S::Up},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
};
constexpr TensorRule kQwen2Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV},
    {"attn_q.bias", "self_attn.q_proj.bias", S::Qb, N::IfBias},
    {"attn_k.bias", "self_attn.k_proj.bias", S::KVb, N::IfBias},
    {"attn_v.bias", "self_attn.v_proj.bias", S::KVb, N::IfBias},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_output.bias", "self_attn.o_proj.bias", S::Ob, N::Optional},
    {"ffn_norm.weight", "post_attention_layernorm.weight", S::Norm},
    {"ffn_gate.weight", "mlp.gate_proj.weight", S::Up},
    {"ffn_up.weight", "mlp.up_proj.weight", S::Up},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
};
// The new families: HF name order within a layer (as llama.cpp writes them).
constexpr TensorRule kQwen3Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
    {"ffn_gate.weight", "mlp.gate_proj.weight", S::Up},
    {"ffn_up.weight", "mlp.up_proj.weight", S::Up},
    {"ffn_norm.weight", "post_attention_layernorm.weight", S::Norm},
    {"attn_k.bias", "self_attn.k_proj.bias", S::KVb, N::IfBias},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", S::HeadNorm},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_q.bias", "self_attn.q_proj.bias", S::Qb, N::IfBias},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", S::HeadNorm},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q},
    {"attn_v.bias", "self_attn.v_proj.bias", S::KVb, N::IfBias},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
};
constexpr TensorRule kQwen3MoeLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm},
    {"ffn_down_exps.weight", "mlp.experts.{E}.down_proj.weight", S::DownExps},
    {"ffn_gate_exps.weight", "mlp.experts.{E}.gate_proj.weight", S::UpExps},
    {"ffn_up_exps.weight", "mlp.experts.{E}.up_proj.weight", S::UpExps},
    {"ffn_gate_inp.weight", "mlp.gate.weight", S::Router, N::Always, X::None, true},
    {"ffn_norm.weight", "post_attention_layernorm.weight", S::Norm},
    {"attn_k.bias", "self_attn.k_proj.bias", S::KVb, N::IfBias},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", S::HeadNorm},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_q.bias", "self_attn.q_proj.bias", S::Qb, N::IfBias},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", S::HeadNorm},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q},
    {"attn_v.bias", "self_attn.v_proj.bias", S::KVb, N::IfBias},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
};
constexpr TensorRule kGemma2Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
    {"ffn_gate.weight", "mlp.gate_proj.weight", S::Up},
    {"ffn_up.weight", "mlp.up_proj.weight", S::Up},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", S::Norm, N::Always,
     X::PlusOne},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
};
constexpr TensorRule kGemma3Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
    {"ffn_gate.weight", "mlp.gate_proj.weight", S::Up},
    {"ffn_up.weight", "mlp.up_proj.weight", S::Up},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", S::Norm, N::Always,
     X::PlusOne},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight", S::Norm, N::Always, X::PlusOne},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", S::HeadNorm, N::Always, X::PlusOne},
    {"attn_k.weight", "self_attn.k_proj.weight", S::KV},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", S::HeadNorm, N::Always, X::PlusOne},
    {"attn_q.weight", "self_attn.q_proj.weight", S::Q},
    {"attn_v.weight", "self_attn.v_proj.weight", S::KV},
};
constexpr TensorRule kPhi3Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", S::Norm},
    {"ffn_down.weight", "mlp.down_proj.weight", S::Down},
    {"ffn_up.weight", "mlp.gate_up_proj.weight", S::GateUp},
    {"ffn_norm.weight", "post_attention_layernorm.weight", S::Norm},
    {"attn_output.weight", "self_attn.o_proj.weight", S::O},
    {"attn_qkv.weight", "self_attn.qkv_proj.weight", S::QKV},
};

// ---- GGUF keys ---------------------------------------------------------------------------------
using H = ModelHParams;
constexpr GgufType U32 = GgufType::U32, F32 = GgufType::F32;
const GgufKeySpec kKeys[] = {
    {KeyId::ContextLength, "context_length", U32, &H::n_ctx_train},
    {KeyId::EmbeddingLength, "embedding_length", U32, &H::n_embd},
    {KeyId::BlockCount, "block_count", U32, &H::n_layer},
    {KeyId::FeedForwardLength, "feed_forward_length", U32, &H::n_ff},
    {KeyId::RopeDimensionCount, "rope.dimension_count", U32, &H::n_rot},
    {KeyId::HeadCount, "attention.head_count", U32, &H::n_head},
    {KeyId::HeadCountKv, "attention.head_count_kv", U32, &H::n_head_kv},
    {KeyId::KeyLength, "attention.key_length", U32, &H::head_dim},
    {KeyId::ValueLength, "attention.value_length", U32, &H::head_dim},
    {KeyId::RmsEps, "attention.layer_norm_rms_epsilon", F32, &H::norm_eps},
    {KeyId::RopeFreqBase, "rope.freq_base", F32, &H::rope_freq_base},
    {KeyId::RopeFreqBaseSwa, "rope.freq_base_swa", F32, &H::rope_freq_base_swa},
    {KeyId::RopeScalingType, "rope.scaling.type", GgufType::STRING, &H::rope_scaling_factor},
    {KeyId::RopeScalingFactor, "rope.scaling.factor", F32, &H::rope_scaling_factor},
    {KeyId::RopeScalingOrigCtx, "rope.scaling.original_context_length", U32, &H::rope_orig_ctx},
    {KeyId::RopeScalingAttnFactor, "rope.scaling.attn_factor", F32, &H::rope_attn_factor},
    {KeyId::YarnExtFactor, "rope.scaling.yarn_ext_factor", F32, &H::yarn_ext_factor},
    {KeyId::YarnAttnFactor, "rope.scaling.yarn_attn_factor", F32, &H::yarn_attn_factor},
    {KeyId::YarnBetaFast, "rope.scaling.yarn_beta_fast", F32, &H::yarn_beta_fast},
    {KeyId::YarnBetaSlow, "rope.scaling.yarn_beta_slow", F32, &H::yarn_beta_slow},
    {KeyId::AttnSoftcap, "attn_logit_softcapping", F32, &H::attn_softcap},
    {KeyId::FinalSoftcap, "final_logit_softcapping", F32, &H::final_softcap},
    {KeyId::SlidingWindow, "attention.sliding_window", U32, &H::sliding_window},
    {KeyId::AttentionScale, "attention.scale", F32, &H::attention_scale},
    {KeyId::ExpertCount, "expert_count", U32, &H::n_expert},
    {KeyId::ExpertUsedCount, "expert_used_count", U32, &H::n_expert_used},
    {KeyId::ExpertFeedForwardLength, "expert_feed_forward_length", U32, &H::n_ff_exp},
    {KeyId::ExpertWeightsNorm, "expert_weights_norm", GgufType::BOOL, &H::expert_weights_norm},
    {KeyId::VocabSize, "vocab_size", U32, &H::n_vocab},
};

using K = KeyId;
using W = When;
// Scaling keys as llama.cpp's generic converter writes them (type, factor, then yarn's extras).
#define QF_SCALING_KEYS                                                                            \
  {K::RopeScalingType, W::Scaling}, {K::RopeScalingFactor, W::Scaling},                            \
      {K::RopeScalingOrigCtx, W::Yarn}, {K::YarnExtFactor, W::Yarn}, {K::YarnAttnFactor, W::Yarn}, \
      {K::YarnBetaFast, W::Yarn}, {                                                                \
    K::YarnBetaSlow, W::Yarn                                                                       \
  }

// llama / qwen2: the order of the reference conversions (byte-identical files).
constexpr KeyUse kLlamaKeys[] = {
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::BlockCount},
    {K::FeedForwardLength},
    {K::RopeDimensionCount},
    {K::HeadCount},
    {K::HeadCountKv},
    {K::KeyLength, W::HeadDimExplicit},
    {K::ValueLength, W::HeadDimExplicit},
    {K::RmsEps},
    {K::RopeFreqBase},
    QF_SCALING_KEYS,
    {K::VocabSize},
};
constexpr KeyUse kQwen2Keys[] = {
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::BlockCount},
    {K::FeedForwardLength},
    {K::HeadCount},
    {K::HeadCountKv},
    {K::KeyLength, W::HeadDimExplicit},
    {K::ValueLength, W::HeadDimExplicit},
    {K::RmsEps},
    {K::RopeFreqBase},
    QF_SCALING_KEYS,
};
// llama.cpp's generic TextModel order.
constexpr KeyUse kQwen3Keys[] = {
    {K::BlockCount},
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::FeedForwardLength},
    {K::HeadCount},
    {K::HeadCountKv},
    QF_SCALING_KEYS,
    {K::RopeFreqBase},
    {K::RmsEps},
    {K::KeyLength, W::HeadDimExplicit},
    {K::ValueLength, W::HeadDimExplicit},
};
constexpr KeyUse kQwen3MoeKeys[] = {
    {K::BlockCount},
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::FeedForwardLength},
    {K::HeadCount},
    {K::HeadCountKv},
    QF_SCALING_KEYS,
    {K::RopeFreqBase},
    {K::RmsEps},
    {K::ExpertCount},
    {K::ExpertUsedCount},
    {K::KeyLength, W::HeadDimExplicit},
    {K::ValueLength, W::HeadDimExplicit},
    {K::ExpertFeedForwardLength},
    {K::ExpertWeightsNorm},
};
// Gemma-2: llama.cpp writes no rope base (it assumes 10000); qforge adds it and the attention
// scale (query_pre_attn_scalar), which llama.cpp derives from the head size.
constexpr KeyUse kGemma2Keys[] = {
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::BlockCount},
    {K::FeedForwardLength},
    {K::HeadCount},
    {K::HeadCountKv},
    {K::RmsEps},
    {K::KeyLength},
    {K::ValueLength},
    {K::AttnSoftcap, W::Softcap},
    {K::FinalSoftcap, W::Softcap},
    {K::SlidingWindow, W::Sliding},
    {K::RopeFreqBase},
    {K::AttentionScale},
};
constexpr KeyUse kGemma3Keys[] = {
    {K::BlockCount},
    {K::ContextLength},
    {K::EmbeddingLength},
    {K::FeedForwardLength},
    {K::HeadCount},
    {K::HeadCountKv},
    QF_SCALING_KEYS,
    {K::RopeFreqBase},
    {K::RopeFreqBaseSwa, W::SwaBase},
    {K::RmsEps},
    {K::KeyLength},
    {K::ValueLength},
    {K::FinalSoftcap, W::Softcap},
    {K::SlidingWindow, W::Sliding},
    {K::AttentionScale},
};
constexpr KeyUse kPhi3Keys[] = {
    {K::ContextLength},      {K::RopeScalingOrigCtx, W::LongRope},
    {K::EmbeddingLength},    {K::FeedForwardLength},
    {K::BlockCount},         {K::HeadCount},
    {K::HeadCountKv},        {K::RmsEps},
    {K::RopeDimensionCount}, {K::RopeFreqBase},
    {K::SlidingWindow},      {K::RopeScalingAttnFactor, W::LongRope},
};
#undef QF_SCALING_KEYS

constexpr std::string_view kLlamaClasses[] = {"LlamaForCausalLM", "MistralForCausalLM"};
constexpr std::string_view kQwen2Classes[] = {"Qwen2ForCausalLM"};
constexpr std::string_view kQwen3Classes[] = {"Qwen3ForCausalLM"};
constexpr std::string_view kQwen3MoeClasses[] = {"Qwen3MoeForCausalLM"};
constexpr std::string_view kGemma2Classes[] = {"Gemma2ForCausalLM"};
constexpr std::string_view kGemma3Classes[] = {"Gemma3ForCausalLM"};
constexpr std::string_view kPhi3Classes[] = {"Phi3ForCausalLM"};

FamilyTraits llama_traits() {
  FamilyTraits t;
  t.permute_qk = true;
  return t;
}
FamilyTraits neox_traits() {
  FamilyTraits t;
  t.rope = RopeLayout::Neox;
  return t;
}
FamilyTraits gemma_traits(bool qk_norm, uint32_t pattern) {
  FamilyTraits t = neox_traits();
  t.act = Activation::GeluTanh;
  t.norm_plus_one = true;
  t.embed_scale_sqrt = true;
  t.post_norms = true;
  t.always_tied = true;
  t.qk_norm = qk_norm;
  t.sliding_pattern = pattern;
  return t;
}

const std::vector<ModelFamily>& families() {
  static const std::vector<ModelFamily> f = [] {
    std::vector<ModelFamily> v;
    FamilyTraits qwen2 = neox_traits();
    qwen2.qkv_bias = true;
    FamilyTraits qwen3 = neox_traits();
    qwen3.qk_norm = true;
    FamilyTraits qwen3moe = qwen3;
    qwen3moe.moe = true;
    FamilyTraits phi3 = neox_traits();
    phi3.fused_qkv = phi3.fused_gate_up = true;
    phi3.sliding_pattern = 0;  // a sliding window, when configured, applies to every layer
    v.push_back({"llama", "llama", kLlamaClasses, llama_traits(), kLegacyGlobals, kLlamaLayer, 3,
                 kLlamaKeys});
    v.push_back(
        {"qwen2", "qwen2", kQwen2Classes, qwen2, kLegacyGlobals, kQwen2Layer, 3, kQwen2Keys});
    v.push_back(
        {"qwen3", "qwen3", kQwen3Classes, qwen3, kSortedGlobals, kQwen3Layer, 2, kQwen3Keys});
    v.push_back({"qwen3moe", "qwen3moe", kQwen3MoeClasses, qwen3moe, kSortedGlobals, kQwen3MoeLayer,
                 2, kQwen3MoeKeys});
    v.push_back({"gemma2", "gemma2", kGemma2Classes, gemma_traits(false, 2), kGemmaGlobals,
                 kGemma2Layer, 1, kGemma2Keys});
    v.push_back({"gemma3", "gemma3", kGemma3Classes, gemma_traits(true, 6), kGemmaGlobals,
                 kGemma3Layer, 1, kGemma3Keys});
    v.push_back({"phi3", "phi3", kPhi3Classes, phi3, kSortedGlobals, kPhi3Layer, 2, kPhi3Keys});
    return v;
  }();
  return f;
}

std::string replace_all(std::string s, std::string_view from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

// Global rules name whole HF tensors; layer rules name the part after "model.layers.N.".
bool is_global(const TensorRule& r) {
  return r.hf == "lm_head.weight" || r.hf.substr(0, 6) == "model.";
}

}  // namespace

std::string_view rope_scaling_name(RopeScalingKind k) {
  switch (k) {
    case RopeScalingKind::None:
      return "none";
    case RopeScalingKind::Linear:
      return "linear";
    case RopeScalingKind::Yarn:
      return "yarn";
    case RopeScalingKind::Llama3:
      return "llama3";
    case RopeScalingKind::LongRope:
      return "longrope";
  }
  return "none";
}

float ModelHParams::rope_freq_scale(uint64_t il) const {
  if (rope_scaling != RopeScalingKind::Linear && rope_scaling != RopeScalingKind::Yarn) return 1;
  if (is_sliding(il) && rope_freq_base_swa > 0) return 1;  // Gemma-3 local layers: unscaled
  return rope_scaling_factor > 0 ? 1.0f / rope_scaling_factor : 1.0f;
}

float ModelHParams::attn_scale() const {
  if (attention_scale > 0) return attention_scale;
  return 1.0f / std::sqrt(static_cast<float>(head_dim));
}

std::span<const GgufKeySpec> gguf_keys() {
  return kKeys;
}

const GgufKeySpec& gguf_key(KeyId id) {
  for (const auto& k : kKeys)
    if (k.id == id) return k;
  return kKeys[0];  // unreachable: every KeyId has an entry
}

std::span<const ModelFamily> model_families() {
  return families();
}

const ModelFamily* family_by_hf_class(std::string_view hf_class) {
  for (const auto& f : families())
    for (auto c : f.hf_classes)
      if (c == hf_class) return &f;
  return nullptr;
}

const ModelFamily* family_by_gguf_arch(std::string_view arch) {
  for (const auto& f : families())
    if (f.gguf_arch == arch) return &f;
  return nullptr;
}

std::string supported_hf_classes() {
  std::string s;
  for (const auto& f : families())
    for (auto c : f.hf_classes) s += (s.empty() ? "" : ", ") + std::string(c);
  return s;
}

std::string gguf_tensor_name(const TensorRule& r, uint64_t layer) {
  if (is_global(r)) return std::string(r.gguf);
  return cat("blk.", layer, ".", r.gguf);
}

std::string hf_tensor_name(const TensorRule& r, uint64_t layer, uint64_t expert) {
  if (is_global(r)) return std::string(r.hf);
  return replace_all(cat("model.layers.", layer, ".", r.hf), "{E}", std::to_string(expert));
}

bool is_stacked(const TensorRule& r) {
  return r.shape == ShapeKind::UpExps || r.shape == ShapeKind::DownExps;
}

std::vector<uint64_t> rule_shape(const TensorRule& r, const ModelHParams& hp) {
  const uint64_t h = hp.n_embd, q = hp.n_embd_q(), kv = hp.n_embd_kv(), f = hp.n_ff;
  switch (r.shape) {
    case S::Embd:
      return {hp.n_vocab, h};
    case S::Norm:
    case S::Ob:
      return {h};
    case S::HeadNorm:
      return {hp.head_dim};
    case S::Q:
      return {q, h};
    case S::KV:
      return {kv, h};
    case S::O:
      return {h, q};
    case S::Qb:
      return {q};
    case S::KVb:
      return {kv};
    case S::QKV:
      return {q + 2 * kv, h};
    case S::Up:
      return {f, h};
    case S::GateUp:
      return {2 * f, h};
    case S::Down:
      return {h, f};
    case S::Router:
      return {hp.n_expert, h};
    case S::UpExps:
      return {hp.n_expert, hp.n_ff_exp, h};
    case S::DownExps:
      return {hp.n_expert, h, hp.n_ff_exp};
  }
  return {};
}

namespace {

bool key_wanted(When w, const ModelHParams& hp, KeyId id) {
  switch (w) {
    case W::Always:
      return true;
    case W::HeadDimExplicit:
      return hp.head_dim_explicit || hp.head_dim * hp.n_head != hp.n_embd;
    case W::Scaling:
      return hp.rope_scaling == RopeScalingKind::Linear || hp.rope_scaling == RopeScalingKind::Yarn;
    case W::Yarn:
      if (hp.rope_scaling != RopeScalingKind::Yarn) return false;
      if (id == K::RopeScalingOrigCtx) return true;
      if (id == K::YarnExtFactor) return hp.yarn_ext_factor >= 0;
      if (id == K::YarnAttnFactor) return hp.yarn_attn_factor > 0;
      if (id == K::YarnBetaFast) return hp.yarn_beta_fast > 0;
      return hp.yarn_beta_slow > 0;
    case W::LongRope:
      if (id == K::RopeScalingOrigCtx) return hp.rope_orig_ctx > 0;
      return hp.rope_scaling == RopeScalingKind::LongRope;
    case W::SwaBase:
      return hp.rope_freq_base_swa > 0;
    case W::Softcap:
      return (id == K::AttnSoftcap ? hp.attn_softcap : hp.final_softcap) > 0;
    case W::Sliding:
      return hp.sliding_window > 0 && hp.sliding_pattern != 1;
    case W::Moe:
      return hp.n_expert > 0;
  }
  return false;
}

GgufValue key_value(const GgufKeySpec& k, const ModelHParams& hp) {
  if (k.id == K::RopeScalingType)
    return GgufValue::string(std::string(rope_scaling_name(hp.rope_scaling)));
  if (k.id == K::AttentionScale) return GgufValue::f32(hp.attn_scale());
  return std::visit(
      [&](auto field) -> GgufValue {
        using T = std::remove_cvref_t<decltype(hp.*field)>;
        if constexpr (std::is_same_v<T, float>) return GgufValue::f32(hp.*field);
        if constexpr (std::is_same_v<T, bool>) return GgufValue::boolean(hp.*field);
        if constexpr (!std::is_same_v<T, float> && !std::is_same_v<T, bool>)
          return GgufValue::u32(static_cast<uint32_t>(hp.*field));
      },
      k.field);
}

}  // namespace

std::vector<GgufKv> write_hparams(const ModelHParams& hp) {
  std::vector<GgufKv> out;
  const std::string a(hp.family->gguf_arch);
  for (const KeyUse& u : hp.family->keys) {
    if (!key_wanted(u.when, hp, u.id)) continue;
    const GgufKeySpec& k = gguf_key(u.id);
    out.emplace_back(a + "." + std::string(k.suffix), key_value(k, hp));
  }
  return out;
}

namespace {

Status read_key(const GgufKeySpec& k, const GgufValue& v, ModelHParams& hp, const std::string& key,
                const std::string& file) {
  if (k.id == K::RopeScalingType) {
    const std::string* s = v.as_string();
    if (!s) return make_error(file, ": KV '", key, "' must be a string");
    for (auto kind : {RopeScalingKind::None, RopeScalingKind::Linear, RopeScalingKind::Yarn,
                      RopeScalingKind::LongRope})
      if (*s == rope_scaling_name(kind)) {
        hp.rope_scaling = kind;
        return ok_status();
      }
    return make_error(file, ": KV '", key, "': unknown rope scaling type '", *s, "'");
  }
  return std::visit(
      [&](auto field) -> Status {
        using T = std::remove_cvref_t<decltype(hp.*field)>;
        if constexpr (std::is_same_v<T, float>) {
          auto f = v.as_float();
          if (!f || !std::isfinite(*f))
            return make_error(file, ": KV '", key, "' must be a number");
          hp.*field = static_cast<float>(*f);
        } else if constexpr (std::is_same_v<T, bool>) {
          auto b = v.as_bool();
          if (!b) return make_error(file, ": KV '", key, "' must be a boolean");
          hp.*field = *b;
        } else {
          auto u = v.as_uint();
          if (!u || *u > (1ull << 31))
            return make_error(file, ": KV '", key, "' must be a non-negative integer below 2^31");
          hp.*field = static_cast<T>(*u);
        }
        return ok_status();
      },
      k.field);
}

}  // namespace

Result<ModelHParams> read_hparams(const std::vector<GgufKv>& kvs,
                                  const std::function<bool(std::string_view)>& has_tensor,
                                  const std::string& file) {
  std::string arch;
  for (const auto& [k, v] : kvs)
    if (k == "general.architecture" && v.as_string()) arch = *v.as_string();
  if (arch.empty()) return make_error(file, ": no general.architecture");
  ModelHParams hp;
  hp.family = family_by_gguf_arch(arch);
  if (!hp.family) {
    std::string names;
    for (const auto& f : families())
      names += (names.empty() ? "" : ", ") + std::string(f.gguf_arch);
    return make_error(file, ": unsupported architecture '", arch, "' (supported: ", names, ")");
  }
  const FamilyTraits& t = hp.family->traits;
  hp.sliding_pattern = t.sliding_pattern;
  hp.expert_weights_norm = t.moe;  // llama.cpp's qwen3moe graph always renormalises
  hp.attention_bias = t.qkv_bias;
  const std::string prefix = arch + ".";
  for (const auto& [key, v] : kvs) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string_view suffix = std::string_view(key).substr(prefix.size());
    for (const auto& k : kKeys)
      if (k.suffix == suffix) QF_CHECK(read_key(k, v, hp, key, file));
  }
  for (auto [id, val] : {std::pair{K::EmbeddingLength, hp.n_embd},
                         {K::BlockCount, hp.n_layer},
                         {K::HeadCount, hp.n_head}})
    if (val == 0)
      return make_error(file, ": KV '", prefix, gguf_key(id).suffix, "' is missing or zero");
  if (hp.n_head_kv == 0) hp.n_head_kv = hp.n_head;
  if (hp.n_head % hp.n_head_kv != 0)
    return make_error(file, ": head_count ", hp.n_head, " is not a multiple of head_count_kv ",
                      hp.n_head_kv);
  if (hp.head_dim == 0) {
    if (hp.n_embd % hp.n_head != 0)
      return make_error(file, ": embedding_length ", hp.n_embd, " is not a multiple of head_count ",
                        hp.n_head);
    hp.head_dim = hp.n_embd / hp.n_head;
  }
  if (hp.n_rot == 0) hp.n_rot = hp.head_dim;
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
    return make_error(file, ": rope.dimension_count ", hp.n_rot, " must be even and at most ",
                      "the head size ", hp.head_dim);
  if (hp.family->name == "llama" && has_tensor("rope_freqs.weight"))
    hp.rope_scaling = RopeScalingKind::Llama3;
  if (t.fused_qkv && has_tensor("rope_factors_long.weight"))
    hp.rope_scaling = RopeScalingKind::LongRope;
  if (t.moe && (hp.n_expert == 0 || hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert))
    return make_error(file, ": expert_count ", hp.n_expert, " / expert_used_count ",
                      hp.n_expert_used, " are missing or inconsistent");
  return hp;
}

Result<ModelHParams> read_hparams(const GgufFile& f) {
  return read_hparams(
      f.kvs(), [&](std::string_view n) { return f.find_tensor(n) != nullptr; }, f.path());
}

std::vector<std::string> family_features(const ModelHParams& hp) {
  std::vector<std::string> v;
  const FamilyTraits& t = hp.family->traits;
  v.push_back(cat("family ", hp.family->name));
  v.push_back(t.act == Activation::Silu ? "SiLU gated FFN" : "GELU-tanh gated FFN");
  v.push_back(cat(t.rope == RopeLayout::Neox ? "NEOX" : "normal", " RoPE on ", hp.n_rot, " of ",
                  hp.head_dim, " dims, base ", hp.rope_freq_base));
  if (hp.rope_scaling != RopeScalingKind::None) {
    std::string s = cat("rope scaling ", rope_scaling_name(hp.rope_scaling));
    if (hp.rope_scaling_factor > 0) s += cat(" x", hp.rope_scaling_factor);
    v.push_back(s);
  }
  if (hp.rope_freq_base_swa > 0) v.push_back(cat("local rope base ", hp.rope_freq_base_swa));
  if (t.norm_plus_one) v.push_back("norms stored as 1 + w");
  if (t.embed_scale_sqrt) v.push_back("embeddings x sqrt(n_embd)");
  if (t.qk_norm) v.push_back("q/k norm");
  if (t.post_norms) v.push_back("post-attention / post-FFN norms");
  if (t.fused_qkv) v.push_back("fused qkv");
  if (t.fused_gate_up) v.push_back("fused gate/up");
  if (hp.attention_bias) v.push_back("q/k/v biases");
  if (hp.attn_softcap > 0) v.push_back(cat("attention soft-cap ", hp.attn_softcap));
  if (hp.final_softcap > 0) v.push_back(cat("final soft-cap ", hp.final_softcap));
  if (hp.sliding_window > 0) {
    std::string s = cat("sliding window ", hp.sliding_window);
    if (hp.sliding_pattern > 1) s += cat(" (pattern ", hp.sliding_pattern, ")");
    v.push_back(s);
  }
  if (hp.attention_scale > 0) v.push_back(cat("attention scale ", hp.attention_scale));
  if (t.moe)
    v.push_back(cat(hp.n_expert, " experts, top-", hp.n_expert_used,
                    hp.expert_weights_norm ? " (normalised)" : ""));
  return v;
}

}  // namespace qforge
