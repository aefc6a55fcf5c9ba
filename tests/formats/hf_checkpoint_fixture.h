// Builds small Hugging Face checkpoint folders (config.json, safetensors, tokenizer.json,
// tokenizer_config.json) in a temp dir for the converter tests, with knobs to break them.
// Tensor values are a deterministic function of (tensor, index), so tests can recompute what
// the converter must produce.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fp16.h"

namespace qforge::test {

// One tensor of a safetensors file: raw little-endian bytes in `dtype`.
struct StEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes a safetensors file; `header_override` (if not empty) replaces the JSON header text.
inline void write_safetensors(const std::string& path, const std::vector<StEntry>& entries,
                              const std::string& header_override = "") {
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const auto& e : entries) {
    h[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes.size()}}};
    off += e.bytes.size();
  }
  std::string text = header_override.empty() ? h.dump() : header_override;
  while (text.size() % 8) text += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = text.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& e : entries)
    f.write(reinterpret_cast<const char*>(e.bytes.data()),
            static_cast<std::streamsize>(e.bytes.size()));
}

// Value of element i of the tensor with the given salt: varied signs and magnitudes.
inline float fixture_value(uint32_t salt, uint64_t i) {
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + salt * 1.7) *
                            (1.0 + 0.25 * static_cast<double>((i + salt) % 7)));
}

inline std::vector<uint8_t> encode_values(const std::vector<float>& v, const std::string& dtype) {
  std::vector<uint8_t> out;
  for (float f : v) {
    if (dtype == "F32") {
      uint8_t b[4];
      std::memcpy(b, &f, 4);
      out.insert(out.end(), b, b + 4);
    } else {
      const uint16_t h = dtype == "F16" ? f32_to_fp16(f) : f32_to_bf16(f);
      out.push_back(static_cast<uint8_t>(h & 0xff));
      out.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return out;
}

struct HfSpec {
  std::string hf_arch = "LlamaForCausalLM";
  std::string dtype = "BF16";  // safetensors dtype of every tensor
  uint64_t vocab = 48, hidden = 32, ffn = 64, layers = 2, heads = 4, kv_heads = 2;
  bool tied = false;
  bool biases = false;          // q/k/v biases (qwen2 always has them)
  bool rope_parameters = true;  // rope_theta under rope_parameters (transformers 5 style)
  int shards = 1;               // > 1: model-0000N-of-0000M.safetensors + index
  std::string drop;             // HF tensor name to leave out
  std::string wrong_dtype;      // HF tensor name stored as I64 instead
  std::string extra_tensor;     // an extra (unexpected) tensor name
};

struct HfTensorPlan {
  std::string name;
  std::vector<uint64_t> shape;
  uint32_t salt;
};

inline std::vector<HfTensorPlan> hf_tensor_plan(const HfSpec& s) {
  const uint64_t hd = s.hidden / s.heads, q = s.heads * hd, kv = s.kv_heads * hd;
  const bool qwen = s.hf_arch == "Qwen2ForCausalLM";
  std::vector<HfTensorPlan> p;
  uint32_t salt = 1;
  auto add = [&](std::string n, std::vector<uint64_t> shape) {
    p.push_back({std::move(n), std::move(shape), salt++});
  };
  add("model.embed_tokens.weight", {s.vocab, s.hidden});
  for (uint64_t l = 0; l < s.layers; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    add(b + "input_layernorm.weight", {s.hidden});
    add(b + "self_attn.q_proj.weight", {q, s.hidden});
    add(b + "self_attn.k_proj.weight", {kv, s.hidden});
    add(b + "self_attn.v_proj.weight", {kv, s.hidden});
    if (qwen || s.biases) {
      add(b + "self_attn.q_proj.bias", {q});
      add(b + "self_attn.k_proj.bias", {kv});
      add(b + "self_attn.v_proj.bias", {kv});
    }
    add(b + "self_attn.o_proj.weight", {s.hidden, q});
    if (!qwen && s.biases) add(b + "self_attn.o_proj.bias", {s.hidden});  // llama: o too
    add(b + "post_attention_layernorm.weight", {s.hidden});
    add(b + "mlp.gate_proj.weight", {s.ffn, s.hidden});
    add(b + "mlp.up_proj.weight", {s.ffn, s.hidden});
    add(b + "mlp.down_proj.weight", {s.hidden, s.ffn});
  }
  add("model.norm.weight", {s.hidden});
  if (!s.tied) add("lm_head.weight", {s.vocab, s.hidden});
  return p;
}

inline std::vector<float> hf_tensor_values(const HfTensorPlan& t) {
  uint64_t n = 1;
  for (auto d : t.shape) n *= d;
  std::vector<float> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = fixture_value(t.salt, i);
  return v;
}

// Writes a complete checkpoint folder `dir` (created if needed).
inline void write_hf_checkpoint(const std::string& dir, const HfSpec& s) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const bool qwen = s.hf_arch == "Qwen2ForCausalLM";
  nlohmann::ordered_json c;
  c["architectures"] = {s.hf_arch};
  c["model_type"] = qwen ? "qwen2" : "llama";
  c["hidden_size"] = s.hidden;
  c["intermediate_size"] = s.ffn;
  c["num_hidden_layers"] = s.layers;
  c["num_attention_heads"] = s.heads;
  c["num_key_value_heads"] = s.kv_heads;
  c["max_position_embeddings"] = 512;
  c["rms_norm_eps"] = 1e-5;
  if (s.rope_parameters)
    c["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "default"}};
  else
    c["rope_theta"] = 500000.0;
  c["vocab_size"] = s.vocab;
  c["tie_word_embeddings"] = s.tied;
  c["attention_bias"] = s.biases;
  c["bos_token_id"] = 0;
  c["eos_token_id"] = 1;
  c[s.rope_parameters ? "dtype" : "torch_dtype"] = s.dtype == "BF16"  ? "bfloat16"
                                                   : s.dtype == "F16" ? "float16"
                                                                      : "float32";
  std::ofstream(dir + "/config.json") << c.dump(2);

  // Byte-level BPE tokenizer: 2 specials, then single characters and a few merges.
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  vocab["<|bos|>"] = 0;
  vocab["<|eos|>"] = 1;
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz\xc4\xa0";  // + U+0120 (space)
  uint64_t id = 2;
  std::vector<std::string> singles;
  for (size_t i = 0; i < 26; ++i) singles.push_back(std::string(1, alphabet[i]));
  singles.push_back("\xc4\xa0");
  for (const auto& t : singles) vocab[t] = id++;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"t", "h"}, {"\xc4\xa0", "t"}, {"th", "e"}, {"a", "n"}};
  for (const auto& [a, b] : merges) vocab[a + b] = id++;
  nlohmann::ordered_json tok;
  tok["version"] = "1.0";
  tok["added_tokens"] = {
      {{"id", 0}, {"content", "<|bos|>"}, {"special", true}, {"normalized", false}},
      {{"id", 1}, {"content", "<|eos|>"}, {"special", true}, {"normalized", false}}};
  tok["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  nlohmann::ordered_json m;
  m["type"] = "BPE";
  m["vocab"] = vocab;
  m["merges"] = nlohmann::ordered_json::array();
  for (const auto& [a, b] : merges) m["merges"].push_back({a, b});
  tok["model"] = m;
  std::ofstream(dir + "/tokenizer.json") << tok.dump(1);
  std::ofstream(dir + "/tokenizer_config.json")
      << R"({"bos_token": "<|bos|>", "eos_token": "<|eos|>", "add_bos_token": true})";

  // Tensors, split over shards round-robin.
  std::vector<std::vector<StEntry>> files(static_cast<size_t>(s.shards));
  nlohmann::ordered_json wm = nlohmann::ordered_json::object();
  size_t k = 0;
  auto plan = hf_tensor_plan(s);
  if (!s.extra_tensor.empty()) plan.push_back({s.extra_tensor, {4}, 99});
  for (const auto& t : plan) {
    if (t.name == s.drop) continue;
    StEntry e{t.name, s.dtype, t.shape, encode_values(hf_tensor_values(t), s.dtype)};
    if (t.name == s.wrong_dtype) {
      e.dtype = "I64";
      e.bytes.assign(e.bytes.size() / (s.dtype == "F32" ? 4 : 2) * 8, 0);
    }
    const size_t f = k++ % files.size();
    files[f].push_back(std::move(e));
  }
  if (s.shards == 1) {
    write_safetensors(dir + "/model.safetensors", files[0]);
    return;
  }
  for (size_t f = 0; f < files.size(); ++f) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", f + 1, files.size());
    write_safetensors(dir + "/" + name, files[f]);
    for (const auto& e : files[f]) wm[e.name] = name;
  }
  nlohmann::ordered_json idx;
  idx["metadata"] = {{"total_size", 0}};
  idx["weight_map"] = wm;
  std::ofstream(dir + "/model.safetensors.index.json") << idx.dump(1);
}

}  // namespace qforge::test
