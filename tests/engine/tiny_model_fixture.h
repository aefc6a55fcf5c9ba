// Builds small random llama/qwen2 GGUF models in a temp dir for engine and eval tests, with
// knobs to break them (a missing tensor, a wrong shape, another architecture).
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
             KV = static_cast<uint64_t>(s.embd / s.heads * s.kv_heads);
  ts.push_back({"token_embd.weight", {E, V}, s.wtype});
  ts.push_back({"output_norm.weight", {E}, Type::F32});
  if (!s.tied) ts.push_back({"output.weight", {E, V}, s.wtype});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back({b + "attn_norm.weight", {E}, Type::F32});
    ts.push_back({b + "attn_q.weight", {E, E}, s.wtype});
    ts.push_back({b + "attn_k.weight", {E, KV}, s.wtype});
    ts.push_back({b + "attn_v.weight", {E, KV}, s.wtype});
    if (s.biases) {
      ts.push_back({b + "attn_q.bias", {E}, Type::F32});
      ts.push_back({b + "attn_k.bias", {KV}, Type::F32});
      ts.push_back({b + "attn_v.bias", {KV}, Type::F32});
    }
    ts.push_back({b + "attn_output.weight", {E, E}, s.wtype});
    ts.push_back({b + "ffn_norm.weight", {E}, Type::F32});
    ts.push_back({b + "ffn_gate.weight", {E, F}, s.wtype});
    ts.push_back({b + "ffn_up.weight", {E, F}, s.wtype});
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
    const bool is_vec = t.dims.size() == 1;
    const bool is_norm = t.name.find("norm") != std::string::npos;
    // Norm weights near 1; matrices scaled like a trained model's (1/sqrt(fan-in)).
    const float scale = is_vec ? 0.1f : 1.0f / std::sqrt(static_cast<float>(t.dims[0]));
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

}  // namespace qforge::test
