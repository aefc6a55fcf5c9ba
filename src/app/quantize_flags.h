// The quantization options shared by `qforge quantize` and `qforge convert --quantize`:
// registration on a CLI11 subcommand and conversion into ModelQuantizeOptions.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "pipeline/target_step.h"
#include "quant/model_quantizer.h"
#include "quant/size_target.h"

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
  double gptq_damp = 0;                   // --gptq-damp F (0: the per-type defaults)
  std::string gptq_importance = "diag";   // --gptq-importance diag|invchol
  int gptq_search = 1;                    // --gptq-search N (rounds of local search)
};

// Adds the options above to `cmd`. The returned object receives the parsed values and must stay
// alive until the command's callback has run (capture it in the callback).
std::shared_ptr<QuantizeFlags> add_quantize_flags(CLI::App* cmd);

// Validates the flags for `mix` and builds the quantizer options: type names (the error lists
// the valid ones), regexes, and the imatrix file (loaded after check_input()). Throws CliError.
ModelQuantizeOptions build_quantize_options(const QuantizeFlags& flags, const std::string& mix);

// The size-target options shared by `quantize --target-size` and `plan --target-size` (issue 14),
// so that the preview is the same allocation.
struct TargetFlags {
  std::string target_size;   // --target-size N
  double target_bpw = 0;     // --target-bpw B (quantize only)
  std::string types;         // --types LIST
  std::string proxy;         // --proxy FILE
  int64_t sample_rows = 64;  // --sample-rows N
  std::string calibration;   // --calibration TEXT: fit the proxy on this model (implies --measure)
  bool measure = false;      // --measure
  int64_t measure_chunks = 3;
  std::string measure_type = "Q4_K";
  int64_t measure_tensors = 0;
  std::string proxy_out;  // --proxy-out FILE: the measured fit as JSON (a --proxy FILE)
  bool has_target() const { return !target_size.empty() || target_bpw > 0; }
};

// Registers the flags above (--target-bpw only with `with_bpw`).
std::shared_ptr<TargetFlags> add_target_flags(CLI::App* cmd, bool with_bpw);
// Checks the flags that need no input (sizes, types, the measure combination); throws CliError.
void check_target_flags(const TargetFlags& t);

struct TargetResult {
  TargetPlan plan;
  std::optional<ProxyCalibration> calibration;  // with --measure
};

// The allocation for the flags: sensitivity table with the writer's encoder (`opts`), the proxy
// (built-in, --proxy FILE, or measured with --calibration/--measure), the budget. Throws CliError.
TargetResult plan_target(const TargetFlags& t, const std::string& model_path, TensorSource& src,
                         const ModelQuantizeOptions& opts);
// allocation_to_json plus the calibration ("calibration") when measured.
nlohmann::json target_to_json(const TargetResult& r);
// allocation_summary plus the calibration's rank correlations when measured.
std::string target_summary(const TargetResult& r);

}  // namespace qforge
