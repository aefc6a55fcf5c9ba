#include "app/quantize_flags.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "io/atomic_file.h"
#include "pipeline/memory_plan.h"

namespace qforge {

std::shared_ptr<QuantizeFlags> add_quantize_flags(CLI::App* cmd) {
  auto f = std::make_shared<QuantizeFlags>();
  cmd->add_option("--imatrix", f->imatrix,
                  "Importance matrix from llama-imatrix (legacy .dat or GGUF): weights the "
                  "quantization error by how much each input column matters");
  cmd->add_option("--tensor-type", f->tensor_types,
                  "REGEX=TYPE: give tensors whose name matches REGEX this type (repeatable; the "
                  "last match wins), e.g. --tensor-type 'attn_v=Q8_0'; with a size target these "
                  "tensors keep TYPE and the budget is allocated around them")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--output-tensor-type", f->output_tensor_type,
                  "Type of output.weight (of token_embd.weight when embeddings are tied)");
  cmd->add_option("--token-embedding-type", f->token_embedding_type, "Type of token_embd.weight");
  cmd->add_flag("--pure", f->pure,
                "Give every quantized tensor the mix's base type (no per-tensor rules)");
  cmd->add_flag("--allow-requantize", f->allow_requantize,
                "Accept an input whose tensors are already quantized (loses quality twice)");
  cmd->add_flag("--ggml-compatible", f->ggml_compatible,
                "Use ggml's exact encoder choices: output byte-identical to llama-quantize "
                "(qforge's default search is never worse in error)");
  cmd->add_flag("--refine-all", f->refine_all,
                "Also search scales for Q8_0/Q4_0 without an imatrix (lower error; by default "
                "those are round-to-nearest, byte-identical to llama-quantize)");
  cmd->add_option("--method", f->method,
                  "Encoder: gptq (error feedback through the input covariances FILE.cov that "
                  "qforge imatrix writes beside the --imatrix FILE; the default when it exists), "
                  "refined (qforge's per-block search; the default otherwise) or ggml (= "
                  "--ggml-compatible)")
      ->check(CLI::IsMember({"refined", "gptq", "ggml"}));
  cmd->add_option("--gptq-damp", f->gptq_damp,
                  "Error feedback: dampening added to the Hessian's diagonal, as a fraction of "
                  "its mean (default 0.3)")
      ->check(CLI::Range(1e-6, 10.0));
  cmd->add_option("--gptq-importance", f->gptq_importance,
                  "Error feedback: weights of the block scale search, diag (diag(H), default) or "
                  "invchol (1/U_jj^2 of the inverse Hessian's Cholesky factor)")
      ->check(CLI::IsMember({"diag", "invchol"}));
  cmd->add_option("--gptq-search", f->gptq_search,
                  "Error feedback: rounds of local search after the column pass (codes, "
                  "sub-block scales and f16 scales re-fit with the full Hessian; default 1, "
                  "0 = off)")
      ->check(CLI::Range(0, 8));
  cmd->add_option("--threads,-t", f->threads, "Threads (default: all cores)")
      ->check(thread_count());
  return f;
}

namespace {

// --method and the covariances beside the imatrix (issue 13).
void add_error_feedback_options(const QuantizeFlags& f, ModelQuantizeOptions& o) {
  o.method = f.method == "gptq"      ? QuantMethod::ErrorFeedback
             : f.method == "refined" ? QuantMethod::Refined
             : f.method == "ggml"    ? QuantMethod::Ggml
                                     : QuantMethod::Auto;
  if (o.method == QuantMethod::Ggml) o.ggml_compatible = true;
  if (f.gptq_damp > 0) o.gptq_damp = o.gptq_damp_q3_k = f.gptq_damp;
  o.gptq_inv_chol_importance = f.gptq_importance == "invchol";
  o.gptq_search_rounds = f.gptq_search;
  const bool wants = o.method == QuantMethod::Auto || o.method == QuantMethod::ErrorFeedback;
  const std::string cov = f.imatrix.empty() ? std::string() : covariance_path_for(f.imatrix);
  if (wants && !o.ggml_compatible && !cov.empty()) {
    o.covariance = unwrap(open_covariance_beside(f.imatrix));
    if (o.covariance)
      log_info("quantize.covariance", "error feedback with covariances " + cov,
               {{"file", cov}, {"weights", o.covariance->size()}, {"damp", o.gptq_damp}});
  }
  if (o.method == QuantMethod::ErrorFeedback && !o.covariance)
    throw CliError{f.imatrix.empty()
                       ? std::string("--method gptq needs --imatrix FILE with FILE.cov beside it")
                       : "--method gptq: " + cov +
                             " not found (qforge imatrix writes it beside its output)"};
}

}  // namespace

ModelQuantizeOptions build_quantize_options(const QuantizeFlags& f, const std::string& mix) {
  ModelQuantizeOptions o;
  o.mix = std::string(unwrap(mix_for(mix))->name);
  o.recipe.pure = f.pure;
  for (const auto& spec : f.tensor_types)
    o.recipe.tensor_types.push_back(unwrap(parse_tensor_type_override(spec)));
  if (!f.output_tensor_type.empty())
    o.recipe.output_tensor_type = unwrap(
        std::move(target_type_from_name(f.output_tensor_type)).context("--output-tensor-type: "));
  if (!f.token_embedding_type.empty())
    o.recipe.token_embedding_type = unwrap(std::move(target_type_from_name(f.token_embedding_type))
                                               .context("--token-embedding-type: "));
  o.allow_requantize = f.allow_requantize;
  o.ggml_compatible = f.ggml_compatible;
  o.refine_all = f.refine_all;
  o.threads = f.threads;
  if (!f.imatrix.empty()) {
    check_input(f.imatrix);
    auto m = std::make_shared<Imatrix>(unwrap(load_imatrix(f.imatrix)));
    log_info("quantize.imatrix", "loaded importance matrix " + f.imatrix,
             {{"file", f.imatrix},
              {"format", m->format},
              {"entries", m->entries.size()},
              {"chunks", m->chunk_count},
              {"dataset", m->datasets.empty() ? std::string() : m->datasets.front()}});
    o.imatrix = std::move(m);
  }
  add_error_feedback_options(f, o);
  return o;
}

std::shared_ptr<TargetFlags> add_target_flags(CLI::App* cmd, bool with_bpw) {
  auto t = std::make_shared<TargetFlags>();
  cmd->add_option("--target-size", t->target_size,
                  "Whole-file byte budget instead of a mix: bytes, KB/MB/GB (10^3) or "
                  "KiB/MiB/GiB (2^10); every tensor's type is chosen to minimise the predicted "
                  "KLD, the file is <= the budget and within 0.5% of it");
  if (with_bpw)
    cmd->add_option("--target-bpw", t->target_bpw,
                    "Budget as bits per quantized weight (the rest of the file on top)");
  cmd->add_option(
      "--types", t->types,
      "Candidate types of a size target (default Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q8_0,IQ4_XS)");
  cmd->add_option("--proxy", t->proxy,
                  "Per-kind KLD factors of the sensitivity proxy (JSON: bench/target_fit.py's or "
                  "--proxy-out's)");
  cmd->add_option("--sample-rows", t->sample_rows,
                  "Rows per tensor encoded to measure the sensitivity table (0: all)")
      ->capture_default_str();
  cmd->add_option("--calibration", t->calibration,
                  "Calibration text: fit the proxy's factors on this model from measured KLD "
                  "(implies --measure; never use the evaluation text)");
  cmd->add_flag("--measure", t->measure,
                "Measure each tensor's KLD alone in --measure-type on --measure-chunks chunks of "
                "--calibration, fit the proxy to it and report the rank correlation");
  cmd->add_option("--measure-chunks", t->measure_chunks, "Chunks (ctx 512) per measurement")
      ->capture_default_str();
  cmd->add_option("--measure-type", t->measure_type, "Type of the measured tensor")
      ->capture_default_str();
  cmd->add_option("--measure-tensors", t->measure_tensors,
                  "Measure about N tensors spread over the model (0: all)")
      ->capture_default_str();
  cmd->add_option("--proxy-out", t->proxy_out,
                  "Write the measured fit as JSON (reusable with --proxy FILE)");
  return t;
}

void check_target_flags(const TargetFlags& t) {
  if (!t.target_size.empty() && t.target_bpw > 0)
    throw CliError{"--target-size and --target-bpw are exclusive", 2};
  if (!t.target_size.empty()) unwrap(parse_size(t.target_size).context("--target-size: "));
  if (!t.types.empty()) unwrap(parse_candidate_types(t.types).context("--types: "));
  const bool measuring = t.measure || !t.calibration.empty();
  if (!t.has_target() && (measuring || !t.proxy.empty() || !t.types.empty()))
    throw CliError{
        "--types needs --target-size or --target-bpw (so do --proxy, --calibration, "
        "--measure)",
        2};
  if (t.measure && t.calibration.empty())
    throw CliError{"--measure needs --calibration TEXT (the text the KLD is measured on)", 2};
  if (measuring && !t.proxy.empty())
    throw CliError{"--proxy and --calibration are exclusive (the measurement fits the proxy)", 2};
  if (!t.proxy_out.empty() && !measuring) throw CliError{"--proxy-out needs --calibration TEXT", 2};
  if (t.measure_chunks < 1) throw CliError{"--measure-chunks must be positive", 2};
  unwrap(target_type_from_name(t.measure_type).context("--measure-type: "));
  if (measuring) check_input(t.calibration);
}

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw CliError{path + ": cannot open", 1};
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(1) + "\n";
  AtomicFileOptions ao;
  ao.overwrite = true;
  AtomicFile f = unwrap(AtomicFile::create(path, ao));
  unwrap(f.write(text.data(), text.size()));
  unwrap(f.commit());
}

}  // namespace

TargetResult plan_target(const TargetFlags& t, const std::string& model_path, TensorSource& src,
                         const ModelQuantizeOptions& opts) {
  SensitivityOptions so;
  if (!t.types.empty()) so.types = unwrap(parse_candidate_types(t.types).context("--types: "));
  so.threads = opts.threads;
  so.sample_rows = t.sample_rows;
  so.refine_all = opts.refine_all;
  so = writer_sensitivity(opts, so);
  const uint64_t budget =
      !t.target_size.empty()
          ? unwrap(parse_size(t.target_size).context("--target-size: "))
          : unwrap(budget_for_bpw(src, opts, t.target_bpw).context("--target-bpw: "));
  // The table holds Hessian-weighted errors when the writer's covariances measure it.
  ProxyModel model = builtin_proxy_model(so.covariance != nullptr);
  if (!t.proxy.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(t.proxy));
    } catch (const std::exception& e) {
      throw CliError{t.proxy + ": not JSON: " + e.what(), 1};
    }
    model = unwrap(proxy_model_from_json(j, t.proxy));
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<TensorSensitivity> table =
      unwrap(measure_sensitivity(src, opts.imatrix.get(), so).context(model_path + ": "));
  const double sens_s = seconds_since(t0);
  TargetResult r;
  if (t.measure || !t.calibration.empty()) {
    ProxyCalibrationOptions co;
    co.text_path = t.calibration;
    co.chunks = t.measure_chunks;
    co.type = unwrap(target_type_from_name(t.measure_type));
    co.max_tensors = t.measure_tensors;
    co.threads = opts.threads;
    r.calibration = unwrap(calibrate_proxy(model_path, src, opts, table, model, co));
    model = r.calibration->model;
    model.source = "measured on " + t.calibration;
    if (!t.proxy_out.empty()) write_json_file(t.proxy_out, calibration_to_json(*r.calibration));
  }
  r.plan = unwrap(std::move(plan_size_target(src, opts, budget, so, model, std::move(table)))
                      .context(model_path + ": "));
  r.plan.sensitivity_seconds = sens_s;
  return r;
}

nlohmann::json target_to_json(const TargetResult& r) {
  nlohmann::json j = allocation_to_json(r.plan);
  if (r.calibration) j["calibration"] = calibration_to_json(*r.calibration);
  return j;
}

std::string target_summary(const TargetResult& r) {
  std::string s = allocation_summary(r.plan);
  if (r.calibration) {
    const ProxyCalibration& c = *r.calibration;
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "proxy fitted to the measured KLD of %zu tensors (%lld chunks, %.1f s); "
                  "Spearman vs measured: raw error %.3f, built-in proxy %.3f, fitted %.3f, "
                  "leave-one-out %.3f\n",
                  c.measured.size(), static_cast<long long>(c.chunks), c.seconds, c.spearman_error,
                  c.spearman_prior, c.spearman_fitted, c.spearman_loo);
    s += buf;
  }
  return s;
}

}  // namespace qforge
