// Builds small random GGUF models in a temp dir for engine and eval tests (llama/qwen2 by
// default; the knobs below give the structure of the other families: head size != n_embd /
// n_head, q/k norms, Gemma's post norms, Phi-3's fused tensors, stacked experts, rope factor
// tensors, extra KVs), with knobs to break them (a missing tensor, a wrong shape, another
// architecture).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/types.h"
#include "formats/gguf.h"
#include "kernels/codec.h"

namespace qforge::test {

struct TinySpec {
  std::string arch = "llama";
  int64_t vocab = 64, embd = 64, layers = 2, ff = 96, heads = 4, kv_heads = 2, ctx = 256;
  bool tied = false;
  bool biases = false;      // q/k/v biases (qwen2)
  Type wtype = Type::F32;   // type of the 2-D weights
  std::string drop;         // tensor to leave out
  std::string wrong_shape;  // tensor whose row length is doubled
  uint32_t seed = 1;
  float rope_base = 10000.0f;
  int64_t head_dim = 0;     // attention.key_length (0: embd / heads, key not written)
  bool qk_norm = false;     // blk.N.attn_q_norm / attn_k_norm
  bool post_norms = false;  // blk.N.post_attention_norm / post_ffw_norm
  bool fused = false;       // attn_qkv and ffn_up = [gate; up]
  int64_t experts = 0, experts_used = 0, ff_exp = 0;     // stacked ffn_*_exps + router
  std::vector<float> rope_freqs, rope_long, rope_short;  // rope factor tensors (n_rot/2)
  std::vector<std::pair<std::string, GgufValue>> kvs;    // extra KVs ("ARCH." is prefixed)
};

// Writes the model; returns an empty string on success, else the error message.
inline std::string write_tiny_model(const std::string& path, const TinySpec& s) {
  auto w = GgufWriter::create(path, GgufWriterOptions{true, false, 3});
  if (!w.ok()) return w.error().message;
  const std::string a = s.arch;
  w->set_kv("general.architecture", GgufValue::string(a));
  w->set_kv("general.name", GgufValue::string("tiny"));
  w->set_kv(a + ".context_length", GgufValue::u32(static_cast<uint32_t>(s.ctx)));
  w->set_kv(a + ".embedding_length", GgufValue::u32(static_cast<uint32_t>(s.embd)));
  w->set_kv(a + ".block_count", GgufValue::u32(static_cast<uint32_t>(s.layers)));
  w->set_kv(a + ".feed_forward_length", GgufValue::u32(static_cast<uint32_t>(s.ff)));
  w->set_kv(a + ".attention.head_count", GgufValue::u32(static_cast<uint32_t>(s.heads)));
  w->set_kv(a + ".attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(s.kv_heads)));
  w->set_kv(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w->set_kv(a + ".rope.freq_base", GgufValue::f32(s.rope_base));
  if (s.head_dim > 0) {
    w->set_kv(a + ".attention.key_length", GgufValue::u32(static_cast<uint32_t>(s.head_dim)));
    w->set_kv(a + ".attention.value_length", GgufValue::u32(static_cast<uint32_t>(s.head_dim)));
  }
  if (s.experts > 0) {
    w->set_kv(a + ".expert_count", GgufValue::u32(static_cast<uint32_t>(s.experts)));
    w->set_kv(a + ".expert_used_count", GgufValue::u32(static_cast<uint32_t>(s.experts_used)));
    w->set_kv(a + ".expert_feed_forward_length", GgufValue::u32(static_cast<uint32_t>(s.ff_exp)));
  }
  for (const auto& [k, v] : s.kvs) w->set_kv(a + "." + k, v);
  w->set_kv("tokenizer.ggml.bos_token_id", GgufValue::u32(0));
  w->set_kv("tokenizer.ggml.eos_token_id", GgufValue::u32(1));

  struct T {
    std::string name;
    std::vector<uint64_t> dims;
    Type type;
  };
  std::vector<T> ts;
  const auto E = static_cast<uint64_t>(s.embd), F = static_cast<uint64_t>(s.ff),
             V = static_cast<uint64_t>(s.vocab),
             HD = static_cast<uint64_t>(s.head_dim > 0 ? s.head_dim : s.embd / s.heads),
             KV = HD * static_cast<uint64_t>(s.kv_heads), Q = HD * static_cast<uint64_t>(s.heads),
             X = static_cast<uint64_t>(s.experts), FX = static_cast<uint64_t>(s.ff_exp);
  for (auto [name, v] : {std::pair{"rope_freqs.weight", &s.rope_freqs},
                         {"rope_factors_long.weight", &s.rope_long},
                         {"rope_factors_short.weight", &s.rope_short}})
    if (!v->empty()) ts.push_back({name, {v->size()}, Type::F32});
  ts.push_back({"token_embd.weight", {E, V}, s.wtype});
  ts.push_back({"output_norm.weight", {E}, Type::F32});
  if (!s.tied) ts.push_back({"output.weight", {E, V}, s.wtype});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back({b + "attn_norm.weight", {E}, Type::F32});
    if (s.fused) {
      ts.push_back({b + "attn_qkv.weight", {E, Q + 2 * KV}, s.wtype});
    } else {
      ts.push_back({b + "attn_q.weight", {E, Q}, s.wtype});
      ts.push_back({b + "attn_k.weight", {E, KV}, s.wtype});
      ts.push_back({b + "attn_v.weight", {E, KV}, s.wtype});
    }
    if (s.qk_norm) {
      ts.push_back({b + "attn_q_norm.weight", {HD}, Type::F32});
      ts.push_back({b + "attn_k_norm.weight", {HD}, Type::F32});
    }
    if (s.post_norms) {
      ts.push_back({b + "post_attention_norm.weight", {E}, Type::F32});
      ts.push_back({b + "post_ffw_norm.weight", {E}, Type::F32});
    }
    if (s.biases) {
      ts.push_back({b + "attn_q.bias", {Q}, Type::F32});
      ts.push_back({b + "attn_k.bias", {KV}, Type::F32});
      ts.push_back({b + "attn_v.bias", {KV}, Type::F32});
    }
    ts.push_back({b + "attn_output.weight", {Q, E}, s.wtype});
    ts.push_back({b + "ffn_norm.weight", {E}, Type::F32});
    if (s.experts > 0) {
      ts.push_back({b + "ffn_gate_inp.weight", {E, X}, Type::F32});
      ts.push_back({b + "ffn_gate_exps.weight", {E, FX, X}, s.wtype});
      ts.push_back({b + "ffn_up_exps.weight", {E, FX, X}, s.wtype});
      ts.push_back({b + "ffn_down_exps.weight", {FX, E, X}, s.wtype});
      continue;
    }
    if (!s.fused) ts.push_back({b + "ffn_gate.weight", {E, F}, s.wtype});
    ts.push_back({b + "ffn_up.weight", {E, s.fused ? 2 * F : F}, s.wtype});
    ts.push_back({b + "ffn_down.weight", {F, E}, s.wtype});
  }
  std::vector<T> kept;
  for (auto& t : ts) {
    if (t.name == s.drop) continue;
    if (t.name == s.wrong_shape) t.dims[0] *= 2;
    kept.push_back(t);
  }
  for (const auto& t : kept) {
    auto st = w->add_tensor(t.name, t.dims, t.type);
    if (!st.ok()) return st.error().message;
  }
  if (auto st = w->write_header(); !st.ok()) return st.error().message;
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& t : kept) {
    uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    std::vector<float> x(n);
    const std::vector<float>* factors = t.name == "rope_freqs.weight"           ? &s.rope_freqs
                                        : t.name == "rope_factors_long.weight"  ? &s.rope_long
                                        : t.name == "rope_factors_short.weight" ? &s.rope_short
                                                                                : nullptr;
    const bool is_vec = t.dims.size() == 1;
    const bool is_norm = t.name.find("norm") != std::string::npos;
    // Norm weights near 1; matrices scaled like a trained model's (1/sqrt(fan-in)).
    const float scale = is_vec ? 0.1f : 1.0f / std::sqrt(static_cast<float>(t.dims[0]));
    if (factors)  // given values, drawing nothing (the other tensors stay as without them)
      x = *factors;
    else
      for (auto& v : x) v = (is_norm ? 1.0f : 0.0f) + scale * nd(rng);
    std::vector<uint8_t> bytes;
    if (t.type == Type::F32) {
      bytes.resize(n * 4);
      std::memcpy(bytes.data(), x.data(), n * 4);
    } else if (t.type == Type::F16) {
      bytes.resize(n * 2);
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    } else {
      const Codec& c = reference_codecs()[static_cast<size_t>(t.type)];
      if (!c.quantize) return "no encoder for " + std::string(type_name(t.type));
      bytes.resize(*tensor_size(t.type, t.dims));
      c.quantize(x.data(), bytes.data(), static_cast<int64_t>(n / t.dims[0]),
                 static_cast<int64_t>(t.dims[0]), QuantizeOptions{});
    }
    if (auto st = w->write_tensor_data(bytes); !st.ok()) return st.error().message;
  }
  auto d = w->commit();
  return d.ok() ? "" : d.error().message;
}

// `n` token ids spread over the vocabulary, a different sequence for each `salt`.
inline std::vector<int32_t> some_tokens(int n, int vocab, int salt = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (i * 37 + 11 + salt) % vocab;
  return t;
}

}  // namespace qforge::test
