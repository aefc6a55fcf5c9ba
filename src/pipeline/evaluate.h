// Measuring one variant against its base: verify (sidecar + structure), quality (perplexity and
// KLD against the base's log-probabilities), speed (bench) and critical prompts, each heavy step
// in an isolated child (pipeline/isolated.h) so that its peak RSS is its own. Shared by
// `ladder` (every variant) and `gate` (one model against a baseline).
#pragma once

#include <functional>
#include <string>

#include "core/result.h"
#include "pipeline/ladder.h"

namespace qforge {

struct EvalOptions {
  std::string eval_text, prompts;
  int64_t ctx = 256, chunks = 0;
  int threads = 0;
  bool bench = true;
  BenchOptions bench_opts{128, 32, 3, 0};
  bool overwrite = false;
};

EvalOptions eval_options(const LadderOptions& o);
// Steps evaluate_variant runs per file (for progress totals).
uint64_t evaluation_steps(const LadderOptions& o);

// Fills v.verify, sha256, file_bytes, bits_per_weight, quality, speed, critical, peak_rss.
// The base (v.is_base) writes `kld_base`; other variants compare against it, and their
// critical prompts are compared with the base's (v.critical_lost). on_step(name) is called
// before each step.
Status evaluate_variant(VariantRecord& v, const VariantRecord& base, const std::string& kld_base,
                        const EvalOptions& o,
                        const std::function<void(const std::string&)>& on_step);

// Validates a critical prompts file (parse only).
Status check_prompts_file(const std::string& path);

// Builds this machine's plan over the ladder's mixes with the measured quality, and sets
// r.recommended / r.fallback / r.reason.
Status plan_ladder(LadderResult& r);

}  // namespace qforge
