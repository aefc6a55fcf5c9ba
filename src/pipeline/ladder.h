// The main job as one typed pipeline: from an HF folder (or an F16/BF16/F32 GGUF) convert to
// F16, quantize a ladder of mixes, verify every file, measure each variant (perplexity + KLD
// against the F16 base, speed, critical prompts), check the gates, recommend a variant and its
// fallback for this machine, and write OUTDIR/manifest.json, report.md and report.html.
//
// Every heavy step runs through pipeline/isolated.h (a forked child per step, so each peak RSS
// is its own); results come back typed. Mix names are checked against quant/recipe's mixes
// before any work starts. Progress (variant, step, ETA) goes through core/log's Progress.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "pipeline/gates.h"
#include "pipeline/memory_plan.h"
#include "pipeline/steps.h"
#include "pipeline/target_step.h"

namespace qforge {

struct LadderOptions {
  std::string input, out_dir;
  std::string eval_text = "data/eval-sample.txt";
  std::string prompts;  // critical prompts JSONL (optional)
  std::string imatrix;
  std::vector<std::string> mixes = {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"};
  // Size-targeted variants (quant/size_target.h) built beside the mixes, one per byte budget.
  std::vector<uint64_t> target_sizes;
  int64_t ctx = 256, chunks = 0;
  int threads = 0;
  bool force = false, bench = true;
  BenchOptions bench_opts{128, 32, 3, 0};
  GateSpec gates;                     // checked on every variant against the F16 base
  std::optional<uint64_t> ram_bytes;  // target machine (default: MemAvailable)
  std::string ram_source = "MemAvailable";
  int64_t plan_ctx = 4096;  // context the deployment plan assumes
  Type plan_kv_type = Type::F16;
  Priority priority = Priority::Quality;  // of the headline recommendation
};

struct VariantRecord {
  std::string name;  // mix, "F16" for the base
  bool is_base = false;
  std::string path, sha256;
  uint64_t file_bytes = 0;
  double bits_per_weight = 0;
  std::optional<ConvertStepResult> convert;
  std::optional<QuantizeStepResult> quantize;
  std::optional<nlohmann::json> allocation;  // size-targeted variants: the allocation report
  VerifyStepResult verify;
  QualityStepResult quality;
  std::optional<BenchResult> speed;
  std::optional<CriticalStepResult> critical;
  std::vector<std::string> critical_lost;  // prompts the base passed and this variant fails
  std::vector<CheckOutcome> checks;
  bool passes = false;
  uint64_t peak_rss_bytes = 0;  // the largest of its evaluation steps
};

struct LadderResult {
  std::string model;
  LadderOptions options;
  std::vector<VariantRecord> variants;  // base first, then the mixes in the order given
  std::optional<size_t> recommended, fallback;
  std::string reason;
  std::optional<HardwarePlan> plan;        // this machine's plan over the same mixes
  std::vector<std::string> skipped_gates;  // gates on figures this run does not measure
  double seconds = 0;
};

// Checks every argument (mix names, paths, gates) before any output exists.
Status validate_ladder(const LadderOptions& o);
Result<LadderResult> run_ladder(const LadderOptions& o);

// The gates' inputs for a variant measured against a base.
GateMeasures gate_measures(const VariantRecord& v, const VariantRecord& base);

nlohmann::json manifest_json(const LadderResult& r);
std::string render_report_md(const LadderResult& r);
std::string render_report_html(const LadderResult& r);
// Writes OUTDIR/manifest.json, report.md, report.html (atomically, replacing earlier ones).
Status write_reports(const LadderResult& r);

}  // namespace qforge
