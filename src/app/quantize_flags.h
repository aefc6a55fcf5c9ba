// The quantization options shared by `qforge quantize` and `qforge convert --quantize`:
// registration on a CLI11 subcommand and conversion into ModelQuantizeOptions.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "quant/model_quantizer.h"

namespace qforge {

struct QuantizeFlags {
  std::string imatrix;                    // --imatrix FILE (.dat or GGUF)
  std::vector<std::string> tensor_types;  // --tensor-type REGEX=TYPE (repeatable)
  std::string output_tensor_type;         // --output-tensor-type TYPE
  std::string token_embedding_type;       // --token-embedding-type TYPE
  bool pure = false;                      // --pure
  bool allow_requantize = false;          // --allow-requantize
  bool ggml_compatible = false;           // --ggml-compatible
  bool refine_all = false;                // --refine-all
  int threads = 0;                        // --threads N (0: all cores)
  std::string method;                     // --method refined|gptq|ggml (default: auto)
  double gptq_damp = 0.3;                 // --gptq-damp F
  std::string gptq_importance = "diag";   // --gptq-importance diag|invchol
  int gptq_search = 1;                    // --gptq-search N (rounds of local search)
};

// Adds the options above to `cmd`. The returned object receives the parsed values and must stay
// alive until the command's callback has run (capture it in the callback).
std::shared_ptr<QuantizeFlags> add_quantize_flags(CLI::App* cmd);

// Validates the flags for `mix` and builds the quantizer options: type names (the error lists
// the valid ones), regexes, and the imatrix file (loaded after check_input()). Throws CliError.
ModelQuantizeOptions build_quantize_options(const QuantizeFlags& flags, const std::string& mix);

}  // namespace qforge
