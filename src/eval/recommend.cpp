#include "eval/recommend.h"

#include <cstdio>

namespace qforge {

bool passes_gates(const VariantMeasure& v, const VariantMeasure& base, const QualityGates& g,
                  std::string* why) {
  auto fail = [&](const std::string& s) {
    if (why) *why = s;
    return false;
  };
  char buf[160];
  if (!v.is_base) {
    if (!v.kld_mean) return fail("no KLD measured");
    if (*v.kld_mean > g.max_kld) {
      std::snprintf(buf, sizeof buf, "mean KLD %.4f > %.4f", *v.kld_mean, g.max_kld);
      return fail(buf);
    }
    if (g.min_same_top_pct > 0 && v.same_top_pct.value_or(0) < g.min_same_top_pct) {
      std::snprintf(buf, sizeof buf, "same-top %.2f%% < %.2f%%", v.same_top_pct.value_or(0),
                    g.min_same_top_pct);
      return fail(buf);
    }
  }
  if (g.max_ppl_ratio > 0 && base.ppl > 0 && v.ppl / base.ppl > g.max_ppl_ratio) {
    std::snprintf(buf, sizeof buf, "PPL ratio %.4f > %.4f", v.ppl / base.ppl, g.max_ppl_ratio);
    return fail(buf);
  }
  return true;
}

Recommendation recommend(const std::vector<VariantMeasure>& ladder, const QualityGates& g,
                         std::optional<uint64_t> budget_bytes) {
  Recommendation r;
  const VariantMeasure* base = nullptr;
  for (const auto& v : ladder)
    if (v.is_base) base = &v;
  if (!base) {
    r.reason = "no base model in the ladder";
    return r;
  }
  auto memory = [](const VariantMeasure& v) {
    return v.peak_rss_bytes ? v.peak_rss_bytes : v.file_bytes;
  };
  char buf[256];
  for (size_t i = 0; i < ladder.size(); ++i) {
    const auto& v = ladder[i];
    if (!passes_gates(v, *base, g)) continue;
    if (budget_bytes) {
      if (memory(v) > *budget_bytes) continue;
      auto kld = [](const VariantMeasure& m) { return m.is_base ? 0.0 : m.kld_mean.value_or(1e9); };
      if (!r.index || kld(v) < kld(ladder[*r.index]) ||
          (kld(v) == kld(ladder[*r.index]) && v.file_bytes < ladder[*r.index].file_bytes))
        r.index = i;
    } else if (!r.index || v.file_bytes < ladder[*r.index].file_bytes) {
      r.index = i;
    }
  }
  if (!r.index) {
    r.reason = budget_bytes ? "no variant fits the budget and passes the quality gates"
                            : "no variant passes the quality gates";
    return r;
  }
  const auto& v = ladder[*r.index];
  if (budget_bytes)
    std::snprintf(buf, sizeof buf,
                  "%s: lowest KLD among variants within %.1f MiB that pass the gates",
                  v.name.c_str(), *budget_bytes / 1048576.0);
  else
    std::snprintf(buf, sizeof buf, "%s: smallest variant with mean KLD <= %.3f", v.name.c_str(),
                  g.max_kld);
  r.reason = buf;
  return r;
}

}  // namespace qforge
