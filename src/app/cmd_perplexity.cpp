// qforge perplexity MODEL --file TEXT [--ctx 512] [--chunks N] [--batch N] [--threads N]
//                   [--kld-base FILE | --kld FILE] [--json]
// llama.cpp's perplexity method (eval/perplexity.h); --kld-base saves the model's log-probs of
// every scored token, --kld compares against such a file (eval/kld.h).
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "engine/forward.h"
#include "engine/tokenizer.h"
#include "eval/bench.h"
#include "eval/kld.h"
#include "eval/perplexity.h"
#include "eval/text_eval.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

struct PplArgs {
  std::string model, file, kld_base, kld;
  int64_t ctx = 512, chunks = -1, batch = 512;
  int threads = 0;
  std::string kv_type = "f16";
  bool json = false, force = false;
};

std::string model_name(const GgufFile& f, const std::string& path) {
  std::string n = f.get_string_or("general.name", "");
  return n.empty() ? path : n + " (" + path + ")";
}

void run_perplexity(const PplArgs& a) {
  const OpenedInput model_in = open_input(a.model);
  const OpenedInput text_in = open_input(a.file);
  if (!a.kld.empty()) check_input(a.kld);
  if (!a.kld.empty() && !a.kld_base.empty())
    throw CliError{"perplexity: --kld and --kld-base are exclusive", 2};
  if (a.ctx < 4) throw CliError{cat("perplexity: --ctx ", a.ctx, " is too small (minimum 4)"), 2};
  if (a.batch < 1) throw CliError{"perplexity: --batch must be positive", 2};
  if (a.chunks == 0) throw CliError{"perplexity: --chunks must be positive", 2};

  Model model =
      unwrap(Model::from_gguf(std::make_shared<const GgufFile>(unwrap(GgufFile::open(model_in)))));
  // Checked before the tokenizer is read: the flag is wrong whatever the vocabulary.
  if (a.ctx > model.params().n_ctx_train)
    throw CliError{cat(a.model, ": --ctx ", a.ctx, " exceeds the model's context length ",
                       model.params().n_ctx_train)};
  Tokenizer tok = unwrap(Tokenizer::from_gguf(model.file()));
  const std::string text = unwrap(text_in.read_text());
  const std::vector<int32_t> tokens = tok.encode(text, true, false);
  TextEvalOptions o;
  o.ctx = a.ctx;
  o.chunks = a.chunks;
  o.batch = a.batch;
  o.threads = a.threads;
  o.kv_type = *parse_kv_type(a.kv_type);  // checked by the option
  o.kld_compare = a.kld;
  o.kld_write = a.kld_base;
  o.overwrite = a.force;
  o.model_name = model_name(model.file(), a.model);
  log_info("perplexity.starting", "evaluating",
           {{"model", a.model}, {"text", a.file}, {"tokens", tokens.size()}, {"ctx", a.ctx}});
  std::optional<Progress> progress;
  o.progress = [&](int64_t done, int64_t total, double) {
    if (!progress) progress.emplace("perplexity", "perplexity", static_cast<uint64_t>(total));
    progress->update(static_cast<uint64_t>(done));
  };
  TextEvalResult ev = unwrap(evaluate_text(model, tok, tokens, a.file, o));
  if (progress) progress->finish();
  const PerplexityResult& r = ev.ppl;
  const std::optional<KldResult>& k = ev.kld;
  const bool base = !a.kld_base.empty();

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["file"] = a.file;
    j["ppl"] = r.ppl;
    j["ppl_stderr"] = r.ppl_stderr;
    j["nll_mean"] = r.nll_mean;
    j["tokens_scored"] = r.tokens_scored;
    j["chunks"] = r.chunks;
    j["ctx"] = r.n_ctx;
    j["text_tokens"] = tokens.size();
    j["seconds"] = r.seconds;
    j["tokens_per_second"] = r.tokens_per_second;
    j["threads"] = ev.threads;
    j["peak_rss_bytes"] = peak_rss_bytes();
    if (base) j["kld_base"] = a.kld_base;
    if (k) {
      j["kld_mean"] = k->kld_mean;
      j["kld_mean_stderr"] = k->kld_mean_err;
      j["kld_median"] = k->kld_median;
      j["kld_p90"] = k->kld_p90;
      j["kld_p99"] = k->kld_p99;
      j["kld_max"] = k->kld_max;
      j["same_top_pct"] = k->same_top_pct;
      j["same_top_stderr_pct"] = k->same_top_err_pct;
      j["rms_dp_pct"] = k->rms_dp_pct;
      j["ppl_base"] = k->ppl_base;
      j["ppl_ratio"] = k->ppl_ratio;
    }
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::printf("model:   %s\ntext:    %s (%zu tokens)\n", a.model.c_str(), a.file.c_str(),
              tokens.size());
  std::printf("chunks:  %lld of %lld tokens, %lld tokens scored\n",
              static_cast<long long>(r.chunks), static_cast<long long>(r.n_ctx),
              static_cast<long long>(r.tokens_scored));
  std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_stderr);
  std::printf("speed:   %.1f tokens/s (%d threads, %.2f s)\n", r.tokens_per_second, ev.threads,
              r.seconds);
  if (base) std::printf("KLD base written: %s\n", a.kld_base.c_str());
  if (k) {
    std::printf("KLD vs %s:\n", ev.kld_base_model.c_str());
    std::printf("  mean KLD       %.6f +/- %.6f\n", k->kld_mean, k->kld_mean_err);
    std::printf("  median / p90 / p99 / max  %.6f / %.6f / %.6f / %.6f\n", k->kld_median,
                k->kld_p90, k->kld_p99, k->kld_max);
    std::printf("  same top token %.3f +/- %.3f %%\n", k->same_top_pct, k->same_top_err_pct);
    std::printf("  RMS delta-p    %.3f %%\n", k->rms_dp_pct);
    std::printf("  PPL(Q)/PPL(base) %.6f (base PPL %.4f)\n", k->ppl_ratio, k->ppl_base);
  }
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text (llama.cpp's method), optionally KL-divergence");
  auto a = std::make_shared<PplArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("-f,--file", a->file, "Text file to evaluate")->required();
  cmd->add_option("-c,--ctx", a->ctx, "Context length (chunk size)")->capture_default_str();
  cmd->add_option("--chunks", a->chunks, "Evaluate at most N chunks (default: all)");
  cmd->add_option("-b,--batch", a->batch, "Tokens per forward micro-batch")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_option("--kld-base", a->kld_base,
                  "Write this model's log-probabilities of every scored token to FILE");
  cmd->add_option("--kld", a->kld, "Compare against a --kld-base FILE: KL-divergence statistics");
  cmd->add_flag("--force", a->force, "Overwrite an existing --kld-base file");
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type (f16 as llama.cpp, or f32)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print a JSON report on stdout");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace qforge
