#include "pipeline/ladder.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/log.h"
#include "core/stopwatch.h"
#include "io/load_policy.h"
#include "pipeline/evaluate.h"
#include "pipeline/isolated.h"
#include "quant/recipe.h"

namespace qforge {
namespace fs = std::filesystem;

Status validate_ladder(const LadderOptions& o) {
  if (o.mixes.empty() && o.target_sizes.empty()) return make_error("ladder: no mixes given");
  for (const auto& m : o.mixes) {
    const Mix* mix = find_mix(m);
    if (!mix) return make_error("ladder: unknown mix '", m, "' (valid: ", mix_names(), ")");
    if (mix->base == Type::F16)
      return make_error("ladder: F16 is the base; do not list it as a mix");
  }
  std::error_code ec;
  if (!fs::exists(o.input, ec))
    return make_error(o.input, ": cannot open: No such file or directory");
  // A checkpoint folder: the converter applies the load policy to each file it reads.
  if (!fs::is_directory(o.input, ec)) QF_CHECK(check_load_policy(o.input));
  if (!fs::is_regular_file(o.eval_text, ec))
    return make_error(o.eval_text, ": evaluation text not found");
  QF_CHECK(check_load_policy(o.eval_text));
  if (!o.prompts.empty()) {
    if (!fs::is_regular_file(o.prompts, ec))
      return make_error(o.prompts, ": critical prompts file not found");
    QF_CHECK(check_load_policy(o.prompts));
    QF_CHECK(check_prompts_file(o.prompts));
  }
  if (!o.imatrix.empty() && !fs::is_regular_file(o.imatrix, ec))
    return make_error(o.imatrix, ": importance matrix not found");
  if (fs::exists(o.out_dir, ec) && !fs::is_directory(o.out_dir, ec))
    return make_error(o.out_dir, ": output path is not a directory");
  if (o.ctx < 4) return make_error("ladder: --ctx ", o.ctx, " is too small (minimum 4)");
  return ok_status();
}

namespace {

std::string model_name_of(const std::string& input) {
  const fs::path p(input);
  if (fs::is_directory(p)) {
    std::string n = p.filename().string();
    return n.empty() ? p.parent_path().filename().string() : n;
  }
  return p.stem().string();
}

}  // namespace

Result<LadderResult> run_ladder(const LadderOptions& o) {
  QF_CHECK(validate_ladder(o));
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return make_error(o.out_dir, ": cannot create: ", ec.message());
  LadderResult res;
  res.options = o;
  res.model = model_name_of(o.input);
  auto out = [&](const std::string& f) { return (fs::path(o.out_dir) / f).string(); };
  const bool from_hf = fs::is_directory(o.input);
  const size_t n_files = o.mixes.size() + o.target_sizes.size() + 1;
  const uint64_t total_steps = (from_hf ? 1 : 0) + n_files - 1 + n_files * evaluation_steps(o);
  Progress progress("ladder", "ladder", total_steps);
  uint64_t done = 0;
  auto step = [&](const std::string& variant, const std::string& what) {
    log_info("ladder.step", variant + ": " + what,
             {{"variant", variant}, {"step", what}, {"done", done}, {"of", total_steps}});
    progress.update(done, 0, variant + " " + what);
  };

  // 1. The F16 base.
  VariantRecord base;
  base.name = "F16";
  base.is_base = true;
  base.path = o.input;
  if (from_hf) {
    base.path = out(res.model + "-F16.gguf");
    step("F16", "convert");
    QF_TRY(base.convert, run_isolated<ConvertStepResult>("convert " + o.input, [&] {
             return convert_step(o.input, base.path, o.force);
           }));
    ++done;
  }
  res.variants.push_back(std::move(base));
  // 2. The mixes.
  for (const auto& m : o.mixes) {
    VariantRecord v;
    v.name = std::string(find_mix(m)->name);
    v.path = out(res.model + "-" + v.name + ".gguf");
    step(v.name, "quantize");
    QuantizeStepOptions qo;
    qo.imatrix = o.imatrix;
    qo.threads = o.threads;
    qo.overwrite = o.force;
    const std::string in = res.variants.front().path;
    QF_TRY(v.quantize, run_isolated<QuantizeStepResult>("quantize " + v.name, [&] {
             return quantize_step(in, v.path, v.name, qo);
           }));
    ++done;
    res.variants.push_back(std::move(v));
  }
  // 2b. The size-targeted variants.
  for (uint64_t budget : o.target_sizes) {
    VariantRecord v;
    v.name = target_variant_name(budget);
    v.path = out(res.model + "-" + v.name + ".gguf");
    step(v.name, "quantize");
    QuantizeStepOptions qo;
    qo.imatrix = o.imatrix;
    qo.threads = o.threads;
    qo.overwrite = o.force;
    const std::string in = res.variants.front().path;
    QF_TRY(nlohmann::json j,
           run_isolated_json("quantize " + v.name, [&]() -> Result<nlohmann::json> {
             QF_TRY(TargetStepResult r, target_quantize_step(in, v.path, budget, qo));
             return nlohmann::json{{"quantize", r.quantize}, {"allocation", r.allocation}};
           }));
    try {
      v.quantize = j.at("quantize").get<QuantizeStepResult>();
      v.allocation = j.at("allocation");
    } catch (const std::exception& e) {
      return make_error("quantize ", v.name, ": malformed result from the child: ", e.what());
    }
    ++done;
    res.variants.push_back(std::move(v));
  }
  // 3. Verify and measure each file; the base first (its KLD file is every variant's reference).
  const std::string kld_base = out(res.model + "-F16.kld");
  fs::remove(kld_base, ec);
  fs::remove(kld_base + ".sha256", ec);
  for (auto& v : res.variants) {
    EvalOptions eo = eval_options(o);
    QF_CHECK(evaluate_variant(v, res.variants.front(), kld_base, eo, [&](const std::string& what) {
      step(v.name, what);
      ++done;
    }));
  }
  fs::remove(kld_base, ec);  // hundreds of MB on a long text; the figures are in the manifest
  fs::remove(kld_base + ".sha256", ec);
  progress.finish();
  // 4. Gates, this machine's plan over the same mixes, recommendation and fallback.
  const VariantRecord& b = res.variants.front();
  std::vector<std::string> skip;
  if (o.prompts.empty()) skip.push_back("critical_pass_rate");
  if (!o.bench) skip.push_back("tg_ratio");
  const GateSpec gates = without_gates(o.gates, skip, &res.skipped_gates);
  for (const auto& k : res.skipped_gates)
    log_warn("ladder.gate_skipped", "gate '" + k + "' skipped: not measured in this run",
             {{"gate", k}});
  for (auto& v : res.variants) {
    v.checks = evaluate_gates(gates, gate_measures(v, b));
    v.passes = all_passed(v.checks);
  }
  QF_CHECK(plan_ladder(res));
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace qforge
