// The pipeline's steps as library calls with typed results: convert, quantize, verify,
// quality (perplexity + KLD), speed (bench) and critical prompts. Each result has one
// to_json/from_json pair (nlohmann ADL; the speed step's BenchResult has its pair beside it in
// eval/bench.h, shared with `bench --json`), which is also how a result crosses the pipe from an
// isolated child process (pipeline/isolated.h) back to the ladder: no step's human output is
// ever parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "eval/bench.h"
#include "quant/model_quantizer.h"

namespace qforge {

struct ConvertStepResult {
  std::string input, output, sha256, architecture;
  uint64_t file_bytes = 0;
  uint64_t tensors = 0;
  double seconds = 0;
  uint64_t peak_rss_bytes = 0;
};

struct QuantizeStepResult {
  std::string mix, input, output, sha256;
  uint64_t file_bytes = 0;     // written
  uint64_t planned_bytes = 0;  // plan_quantization's figure (equal by construction)
  uint64_t n_params = 0;
  double bits_per_weight = 0;
  double seconds = 0;
  uint64_t peak_rss_bytes = 0;
};

struct VerifyStepResult {
  std::string file, sha256;  // sha256: the sidecar's hash, which the file matched
  uint64_t tensors = 0;
  bool ok = false;
  std::string error;  // one line when !ok
};

struct QualityStepResult {
  std::string model, text;
  int64_t ctx = 0, chunks = 0, tokens_scored = 0;
  double ppl = 0, ppl_stderr = 0;
  double seconds = 0, tokens_per_second = 0;
  bool has_kld = false;  // compared against a base
  double kld_mean = 0, kld_mean_stderr = 0, kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_max = 0;
  double same_top_pct = 0, rms_dp_pct = 0, ppl_base = 0, ppl_ratio = 0;
  uint64_t peak_rss_bytes = 0;
};

// One critical prompt's outcome (the JSON keys of eval/critical_prompts.h's report).
struct CriticalCase {
  std::string prompt, expected, output;
  bool chat = false, passed = false;
};
struct CriticalStepResult {
  std::string model, prompts_file;
  int passed = 0, total = 0;
  double pass_rate = 0;
  std::vector<CriticalCase> cases;
  uint64_t peak_rss_bytes = 0;
};

void to_json(nlohmann::json& j, const ConvertStepResult& r);
void from_json(const nlohmann::json& j, ConvertStepResult& r);
void to_json(nlohmann::json& j, const QuantizeStepResult& r);
void from_json(const nlohmann::json& j, QuantizeStepResult& r);
void to_json(nlohmann::json& j, const VerifyStepResult& r);
void from_json(const nlohmann::json& j, VerifyStepResult& r);
void to_json(nlohmann::json& j, const QualityStepResult& r);
void from_json(const nlohmann::json& j, QualityStepResult& r);
void to_json(nlohmann::json& j, const CriticalCase& r);
void from_json(const nlohmann::json& j, CriticalCase& r);
void to_json(nlohmann::json& j, const CriticalStepResult& r);
void from_json(const nlohmann::json& j, CriticalStepResult& r);

// HF folder -> F16 GGUF (+ .sha256 sidecar), one tensor at a time.
Result<ConvertStepResult> convert_step(const std::string& hf_dir, const std::string& out,
                                       bool overwrite);

struct QuantizeStepOptions {
  std::string imatrix;  // optional
  int threads = 0;
  bool overwrite = false;
};
// The imatrix file `imatrix` (none when empty) and the covariances beside it, when present, into
// `qo`: the ladder's variants use the same error-feedback quantizer as `qforge quantize`.
Status load_quantizer_statistics(const std::string& imatrix, ModelQuantizeOptions& qo);
// The step's record of a finished quantization (sizes, parameter count, bits per weight, time,
// peak RSS of this process); used by the fixed-mix and the size-targeted steps.
QuantizeStepResult quantize_step_result(const QuantizeReport& rep, const std::string& in,
                                        const std::string& out);
Result<QuantizeStepResult> quantize_step(const std::string& in, const std::string& out,
                                         const std::string& mix, const QuantizeStepOptions& o);

// The .sha256 sidecar and the GGUF structure (every tensor inside the file). Not an Error
// when the file is damaged: ok = false with the reason.
VerifyStepResult verify_step(const std::string& file);
// For an input qforge did not write (no sidecar): the structure, and the SHA-256 computed.
VerifyStepResult verify_step_without_sidecar(const std::string& file);

struct QualityStepOptions {
  int64_t ctx = 256;
  int64_t chunks = -1;  // < 0: all (or, with kld_compare, as many as the base holds)
  int threads = 0;
  std::string kld_write;    // write this model's log-probs as a KLD base file
  std::string kld_compare;  // compare against a KLD base file
  bool overwrite = false;
};
Result<QualityStepResult> quality_step(const std::string& model, const std::string& text,
                                       const QualityStepOptions& o);

Result<BenchResult> speed_step(const std::string& model, const BenchOptions& o);

Result<CriticalStepResult> critical_step(const std::string& model, const std::string& prompts,
                                         int threads);

}  // namespace qforge
