// Choosing a variant from a measured ladder: the best quality that fits a memory budget, or the
// smallest variant that passes the quality gates; and the gates themselves (for CI exit codes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qforge {

struct VariantMeasure {
  std::string name;  // mix name, e.g. "Q4_K_M" ("F16" for the base)
  std::string path;  // GGUF file
  uint64_t file_bytes = 0;
  double bits_per_weight = 0;
  double ppl = 0, ppl_stderr = 0;
  std::optional<double> kld_mean;  // vs the base; absent for the base itself
  std::optional<double> same_top_pct;
  double pp_tokens_per_s = 0, tg_tokens_per_s = 0;
  uint64_t peak_rss_bytes = 0;
  bool is_base = false;
};

struct QualityGates {
  double max_kld = 0.05;        // mean KLD vs base
  double min_same_top_pct = 0;  // top-token agreement, 0-100
  double max_ppl_ratio = 0;     // PPL / PPL(base); 0 = no gate
};

struct Recommendation {
  std::optional<size_t> index;  // into the ladder; nullopt when nothing qualifies
  std::string reason;           // one line, human-readable
};

// Does a variant pass the gates? `why` receives the first failing gate.
bool passes_gates(const VariantMeasure& v, const VariantMeasure& base, const QualityGates& g,
                  std::string* why = nullptr);

// With a budget (bytes of memory: peak RSS when measured, else file size): the lowest-KLD
// variant that fits and passes the gates. Without one: the smallest variant that passes.
Recommendation recommend(const std::vector<VariantMeasure>& ladder, const QualityGates& g,
                         std::optional<uint64_t> budget_bytes);

}  // namespace qforge
