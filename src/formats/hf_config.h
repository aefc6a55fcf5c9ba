// Hugging Face config.json for the supported causal-LM architectures:
//   LlamaForCausalLM, MistralForCausalLM -> GGUF arch "llama" (RoPE on interleaved pairs, so
//                                            the converter permutes Q/K)
//   Qwen2ForCausalLM                     -> GGUF arch "qwen2" (NEOX RoPE, q/k/v biases, no
//                                            permutation)
// Keys missing from the file take the defaults of the transformers config class (as
// from_pretrained would). rope_theta is read top-level (older files) or under
// rope_parameters (transformers 5); the dtype under "dtype" or "torch_dtype". Any other
// architecture is rejected with an error naming it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace qforge {

struct HfConfig {
  std::string hf_architecture;  // "LlamaForCausalLM", ...
  std::string arch;             // GGUF general.architecture: "llama" or "qwen2"
  bool permute_qk = false;      // llama: HF rotate-half rows -> interleaved pairs

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
