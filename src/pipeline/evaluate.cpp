#include "pipeline/evaluate.h"

#include <algorithm>
#include <filesystem>

#include "formats/gguf.h"
#include "formats/tensor_source.h"
#include "io/sha256.h"
#include "pipeline/isolated.h"

namespace qforge {

EvalOptions eval_options(const LadderOptions& o) {
  EvalOptions e;
  e.eval_text = o.eval_text;
  e.prompts = o.prompts;
  e.ctx = o.ctx;
  e.chunks = o.chunks;
  e.threads = o.threads;
  e.bench = o.bench;
  e.bench_opts = o.bench_opts;
  e.bench_opts.threads = o.threads;
  e.overwrite = true;  // the KLD base is the ladder's own scratch file
  return e;
}

uint64_t evaluation_steps(const LadderOptions& o) {
  return 2 + (o.bench ? 1 : 0) + (o.prompts.empty() ? 0 : 1);
}

namespace {

// Bits per weight of a GGUF: tensor bytes * 8 / parameters.
double file_bits_per_weight(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f.ok()) return 0;
  GgufTensorSource src(std::make_shared<const GgufFile>(std::move(*f)));
  uint64_t bytes = 0, n = 0;
  for (const auto& t : src.tensors()) {
    bytes += t.size;
    n += t.n_elements();
  }
  return n ? 8.0 * bytes / n : 0;
}

}  // namespace

Status evaluate_variant(VariantRecord& v, const VariantRecord& base, const std::string& kld_base,
                        const EvalOptions& o,
                        const std::function<void(const std::string&)>& on_step) {
  on_step("verify");
  std::error_code ec;
  if (v.is_base && !v.convert && !std::filesystem::exists(sidecar_path(v.path), ec)) {
    // The user's own base file, not written by qforge: no sidecar to check against. Its
    // structure is checked and its SHA-256 recorded (the manifest then pins it).
    v.verify = verify_step_without_sidecar(v.path);
  } else {
    v.verify = verify_step(v.path);
  }
  v.sha256 = v.verify.sha256;
  v.file_bytes = std::filesystem::file_size(v.path, ec);
  v.bits_per_weight = v.quantize ? v.quantize->bits_per_weight : file_bits_per_weight(v.path);

  on_step("perplexity");
  QualityStepOptions qo;
  qo.ctx = o.ctx;
  qo.chunks = o.chunks > 0 ? o.chunks : -1;
  qo.threads = o.threads;
  qo.overwrite = o.overwrite;
  if (v.is_base)
    qo.kld_write = kld_base;
  else
    qo.kld_compare = kld_base;
  QF_TRY(v.quality, run_isolated<QualityStepResult>("perplexity " + v.name, [&] {
           return quality_step(v.path, o.eval_text, qo);
         }));
  v.peak_rss_bytes = v.quality.peak_rss_bytes;
  if (o.bench) {
    on_step("bench");
    QF_TRY(BenchResult b, run_isolated<BenchResult>(
                              "bench " + v.name, [&] { return speed_step(v.path, o.bench_opts); }));
    v.peak_rss_bytes = std::max(v.peak_rss_bytes, b.peak_rss_bytes);
    v.speed = b;
  }
  if (!o.prompts.empty()) {
    on_step("critical prompts");
    QF_TRY(CriticalStepResult c,
           run_isolated<CriticalStepResult>("critical prompts " + v.name, [&] {
             return critical_step(v.path, o.prompts, o.threads);
           }));
    v.peak_rss_bytes = std::max(v.peak_rss_bytes, c.peak_rss_bytes);
    v.critical = c;
    if (!v.is_base && base.critical) {
      for (size_t i = 0; i < c.cases.size() && i < base.critical->cases.size(); ++i)
        if (base.critical->cases[i].passed && !c.cases[i].passed)
          v.critical_lost.push_back(c.cases[i].prompt);
    }
  }
  return ok_status();
}

GateMeasures gate_measures(const VariantRecord& v, const VariantRecord& base) {
  GateMeasures m;
  if (v.is_base) {
    m.ppl_ratio = 1.0;
    m.kld_mean = 0.0;
    m.kld_p99 = 0.0;
    m.same_top_pct = 100.0;
  } else {
    if (base.quality.ppl > 0) m.ppl_ratio = v.quality.ppl / base.quality.ppl;
    if (v.quality.has_kld) {
      m.ppl_ratio = v.quality.ppl_ratio;
      m.kld_mean = v.quality.kld_mean;
      m.kld_p99 = v.quality.kld_p99;
      m.same_top_pct = v.quality.same_top_pct;
    }
  }
  if (v.critical) m.critical_pass_rate = v.critical->pass_rate;
  if (v.peak_rss_bytes) m.peak_rss_mb = v.peak_rss_bytes / 1048576.0;
  // Medians of the reps: a gate on one disturbed 32-token rep of a small model failed the main
  // job at random (Q8_0 0.61 against 0.66 in one run, then 1.0).
  if (v.speed && base.speed && base.speed->tg_median_tokens_per_second > 0)
    m.tg_ratio = v.speed->tg_median_tokens_per_second / base.speed->tg_median_tokens_per_second;
  m.checksum = v.verify.ok ? std::string("verified") : v.verify.error;
  return m;
}

Status plan_ladder(LadderResult& r) {
  const LadderOptions& o = r.options;
  PlanOptions po;
  po.n_ctx = o.plan_ctx;
  po.kv_type = o.plan_kv_type;
  po.ram_bytes = o.ram_bytes ? *o.ram_bytes : mem_available_bytes();
  po.ram_source = o.ram_bytes ? o.ram_source : "MemAvailable";
  po.priority = o.priority;
  po.n_threads = o.threads > 0 ? o.threads : 2;
  for (const auto& v : r.variants) {
    if (v.is_base || v.allocation) continue;  // size-targeted variants are not recipe mixes
    po.mixes.push_back(v.name);
    MeasuredQuality q;
    q.mix = v.name;
    if (v.quality.has_kld) q.kld_mean = v.quality.kld_mean;
    if (v.speed) q.tg_tokens_per_s = v.speed->tg_tokens_per_second;
    q.passes = v.passes;
    po.measured.push_back(q);
  }
  QF_TRY(GgufFile f, GgufFile::open(r.variants.front().path));
  GgufTensorSource src(std::make_shared<const GgufFile>(std::move(f)));
  QF_TRY(HardwarePlan hp, make_hardware_plan(src, r.model, po));
  auto index_of = [&](std::optional<size_t> i) -> std::optional<size_t> {
    if (!i) return std::nullopt;
    for (size_t k = 0; k < r.variants.size(); ++k)
      if (r.variants[k].name == hp.mixes[*i].mix) return k;
    return std::nullopt;
  };
  r.recommended = index_of(hp.recommended);
  r.fallback = index_of(hp.fallback);
  r.reason = hp.reason;
  if (r.recommended && !r.variants[*r.recommended].passes)
    r.reason = "no variant passes the gates and fits: " + hp.reason;
  r.plan = std::move(hp);
  return ok_status();
}

}  // namespace qforge
