// Hugging Face config.json -> the hyper-parameters of one of the families of the architecture
// descriptor (formats/model_family.h: the "architectures" class picks the family).
//
// Both config styles are read: transformers <= 4 (rope_theta top-level, rope_scaling with "type"
// or "rope_type", Gemma-3's rope_local_base_freq / sliding_window_pattern, Phi-3's top-level
// original_max_position_embeddings / partial_rotary_factor) and transformers 5 (rope_parameters,
// flat or per layer type {full_attention, sliding_attention}; layer_types; num_local_experts).
// RoPE scaling types: default, linear, yarn, llama3 (llama family), longrope / su (phi3);
// anything else is refused naming it. Llama and Qwen2 keys missing from the file take the
// defaults of their transformers config class (as from_pretrained would); the newer families
// require their structural keys (hidden_size, layers, heads, intermediate/expert sizes, vocab).
// Every error is one line that starts with `name` and names the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "formats/model_family.h"

namespace qforge {

struct HfConfig {
  std::string hf_architecture;  // "LlamaForCausalLM", ...
  std::string arch;             // GGUF general.architecture (= family->gguf_arch)
  const ModelFamily* family = nullptr;
  ModelHParams hp;          // everything the converter writes (family, sizes, rope, switches)
  bool permute_qk = false;  // = family->traits.permute_qk

  // The config values under their HF names (also in hp, in GGUF terms).
  uint64_t vocab_size = 0;
  uint64_t hidden_size = 0;
  uint64_t intermediate_size = 0;
  uint64_t num_hidden_layers = 0;
  uint64_t num_attention_heads = 0;
  uint64_t num_key_value_heads = 0;
  uint64_t head_dim = 0;           // hidden_size / num_attention_heads unless given
  bool head_dim_explicit = false;  // config.json had a head_dim key
  uint64_t max_position_embeddings = 0;
  double rms_norm_eps = 0;
  double rope_theta = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (and o for llama) biases; always true for qwen2
  std::string dtype;            // "bfloat16", "float16", "float32" or empty
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
};

// Parses config.json text; `name` (the file path) prefixes errors.
Result<HfConfig> parse_hf_config(std::string_view json_text, const std::string& name);
// Reads DIR/config.json.
Result<HfConfig> load_hf_config(const std::string& dir);

}  // namespace qforge
