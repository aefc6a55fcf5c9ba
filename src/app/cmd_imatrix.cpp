// qforge imatrix MODEL --file TEXT [--ctx 512] [--chunks N] [--process-output]
//                [--format gguf|dat] [--covariance full|none] [--threads N] [--force] [--json]
//                [--compare OTHER] -o FILE
// Runs the engine over a calibration text (eval/imatrix_collect.h, llama-imatrix's method) and
// writes the importance matrix FILE (GGUF by default, legacy .dat with --format dat) and, by
// default, the input covariances FILE.cov (formats/covariance.h). --compare reports the
// per-value agreement of FILE with another imatrix (e.g. llama-imatrix's own).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "core/process_memory.h"
#include "core/stopwatch.h"
#include "engine/forward.h"
#include "engine/tokenizer.h"
#include "eval/imatrix_collect.h"

namespace qforge {
namespace {

struct ImatrixArgs {
  std::string model, file, output, format = "gguf", covariance = "full", compare;
  int64_t ctx = 512, chunks = -1;
  int threads = 0;
  bool process_output = false, force = false, json = false;
};

void refuse_existing(const std::string& path, bool force) {
  std::error_code ec;
  if (!force && std::filesystem::exists(path, ec))
    throw CliError{path + ": already exists (use --force to overwrite)"};
}

nlohmann::json comparison_json(const ImatrixComparison& c, const std::string& other) {
  return {{"other", other},
          {"tensors", c.tensors},
          {"values", c.values},
          {"max_rel", c.max_rel},
          {"median_rel", c.median_rel},
          {"mean_rel", c.mean_rel},
          {"max_tensor", c.max_tensor},
          {"only_here", c.only_a},
          {"only_other", c.only_b},
          {"shape_mismatch", c.shape_mismatch}};
}

// The summary: JSON on stdout with --json, else a few lines.
void report(const ImatrixArgs& a, const Imatrix& im, const ImatrixRunResult& r, bool cov,
            const std::string& cov_path, int threads) {
  nlohmann::json j;
  j["model"] = a.model;
  j["file"] = a.file;
  j["output"] = a.output;
  j["format"] = a.format;
  j["entries"] = im.entries.size();
  j["covariance"] = cov ? nlohmann::json(cov_path) : nlohmann::json(nullptr);
  j["chunks"] = r.chunks;
  j["ctx"] = a.ctx;
  j["tokens"] = r.tokens;
  j["ppl"] = r.ppl;
  j["ppl_stderr"] = r.ppl_stderr;
  j["seconds"] = r.seconds;
  j["threads"] = threads;
  j["peak_rss_bytes"] = peak_rss_bytes();
  std::optional<ImatrixComparison> cmp;
  if (!a.compare.empty()) {
    cmp = compare_imatrix(im, unwrap(load_imatrix(a.compare)));
    j["compare"] = comparison_json(*cmp, a.compare);
  }
  if (a.json) {
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::printf("imatrix: %s (%s, %zu entries) from %lld chunks of %lld tokens\n", a.output.c_str(),
              a.format.c_str(), im.entries.size(), static_cast<long long>(r.chunks),
              static_cast<long long>(a.ctx));
  if (cov) std::printf("covariances: %s\n", cov_path.c_str());
  std::printf("PPL = %.4f +/- %.5f (%.2f s, %d threads)\n", r.ppl, r.ppl_stderr, r.seconds,
              threads);
  if (cmp)
    std::printf(
        "compare with %s: %zu tensors, %zu values, relative error max %.4g %% (%s), median "
        "%.4g %%, mean %.4g %%; %zu/%zu tensors only here/there\n",
        a.compare.c_str(), cmp->tensors, cmp->values, 100 * cmp->max_rel, cmp->max_tensor.c_str(),
        100 * cmp->median_rel, 100 * cmp->mean_rel, cmp->only_a.size(), cmp->only_b.size());
}

// Writes FILE (and FILE.cov) atomically; returns the imatrix written.
Imatrix write_outputs(const ImatrixArgs& a, const ActivationStats& stats, const ImatrixRunResult& r,
                      bool cov, const std::string& cov_path) {
  const auto chunk_count = static_cast<uint32_t>(r.chunks);
  const auto chunk_size = static_cast<uint32_t>(a.ctx);
  const Imatrix im = stats.imatrix(a.format, chunk_count, chunk_size, {a.file});
  if (im.entries.empty()) throw CliError{a.output + ": no statistics collected (is --ctx < 16?)"};
  // The large file first; when FILE then fails, FILE.cov goes too (no half of the pair left).
  if (cov) {
    const auto specs = stats.covariance_specs();
    unwrap(write_covariance(
        cov_path, specs, {chunk_count, chunk_size, {a.file}},
        [&](size_t i, uint32_t m, std::span<float> out) { stats.covariance_matrix(i, m, out); },
        a.force));
  }
  const Status st = a.format == "dat" ? write_imatrix_dat(a.output, im, a.force)
                                      : write_imatrix_gguf(a.output, im, a.force);
  if (!st.ok()) {
    std::error_code ec;
    if (cov)
      std::filesystem::remove(cov_path, ec), std::filesystem::remove(cov_path + ".sha256", ec);
    unwrap(st);
  }
  log_info("imatrix.done", "written",
           {{"output", a.output}, {"entries", im.entries.size()}, {"seconds", r.seconds}});
  return im;
}

void run_imatrix_cmd(const ImatrixArgs& a) {
  const bool cov = a.covariance == "full";
  const std::string cov_path = covariance_path_for(a.output);
  refuse_existing(a.output, a.force);
  if (cov) refuse_existing(cov_path, a.force);
  if (!a.compare.empty()) check_input(a.compare);
  const OpenedInput model_in = open_input(a.model);
  const OpenedInput text_in = open_input(a.file);
  Model model =
      unwrap(Model::from_gguf(std::make_shared<const GgufFile>(unwrap(GgufFile::open(model_in)))));
  if (a.ctx > model.params().n_ctx_train)
    throw CliError{cat(a.model, ": --ctx ", a.ctx, " exceeds the model's context length ",
                       model.params().n_ctx_train)};
  Tokenizer tok = unwrap(Tokenizer::from_gguf(model.file()));
  const std::vector<int32_t> tokens = tok.encode(unwrap(text_in.read_text()), true, false);
  if (static_cast<int64_t>(tokens.size()) < 2 * a.ctx)
    throw CliError{cat(a.file, ": ", tokens.size(), " tokens, fewer than 2 x ctx = ", 2 * a.ctx,
                       " (use a longer text or a smaller --ctx)")};

  ThreadPool pool(a.threads);
  ActivationStats stats(model, pool, {a.process_output, cov});
  if (cov) {
    const uint64_t bytes = covariance_file_bytes(stats.covariance_specs(), {});
    // Stated before the run; in JSON log format only as the event (stderr stays JSON lines).
    if (log_format() == LogFormat::Human)
      std::fprintf(stderr, "imatrix: covariances: %s, %.1f MiB on disk (and as much RAM)\n",
                   cov_path.c_str(), static_cast<double>(bytes) / (1 << 20));
    log_info("imatrix.covariance", "covariance file size",
             {{"path", cov_path}, {"bytes", bytes}, {"matrices", stats.covariance_specs().size()}});
  }
  Context ctx(model, a.ctx, pool, std::min<int64_t>(a.ctx, 512));
  ImatrixRunOptions opt;
  opt.n_ctx = a.ctx;
  opt.n_chunks = a.chunks;
  opt.replace_bos = tok.add_bos() && tok.bos_id() >= 0;
  opt.bos_id = tok.bos_id();
  const int64_t total = a.chunks > 0 ? std::min<int64_t>(a.chunks, tokens.size() / a.ctx)
                                     : static_cast<int64_t>(tokens.size()) / a.ctx;
  log_info("imatrix.starting", "collecting activation statistics",
           {{"model", a.model},
            {"text", a.file},
            {"tokens", tokens.size()},
            {"ctx", a.ctx},
            {"chunks", total},
            {"covariance", cov},
            {"threads", pool.size()}});
  // llama-imatrix's progress line, [chunk]running PPL, ... (an event per chunk in JSON format).
  const auto t_start = std::chrono::steady_clock::now();
  opt.progress = [&](int64_t done, int64_t n, double ppl) {
    if (done == 1) {  // as llama-imatrix: the first pass's time and the ETA
      const double s = seconds_since(t_start);
      if (log_format() == LogFormat::Json)
        log_info("imatrix.eta", "first chunk done",
                 {{"seconds_per_pass", s}, {"eta_seconds", s * static_cast<double>(n - 1)}});
      else
        std::fprintf(stderr, "imatrix: %.2f seconds per pass - ETA %.2f minutes\n", s,
                     s * static_cast<double>(n) / 60.0);
    }
    if (log_format() == LogFormat::Json) {
      log_info("imatrix.chunk", "chunk done", {{"chunk", done}, {"of", n}, {"ppl", ppl}});
      return;
    }
    std::fprintf(stderr, "[%lld]%.4f,%s", static_cast<long long>(done), ppl, done == n ? "\n" : "");
    std::fflush(stderr);
  };
  const ImatrixRunResult r = unwrap(run_imatrix(ctx, tokens, opt, stats));

  const Imatrix im = write_outputs(a, stats, r, cov, cov_path);
  report(a, im, r, cov, cov_path, pool.size());
}

}  // namespace

void add_imatrix_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "imatrix",
      "Importance matrix (llama-imatrix's method) and input covariances from a calibration text");
  auto a = std::make_shared<ImatrixArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("-f,--file", a->file, "Calibration text")->required();
  cmd->add_option("-o,--output", a->output, "Imatrix FILE to write (covariances: FILE.cov)")
      ->required();
  cmd->add_option("-c,--ctx", a->ctx, "Chunk size in tokens")
      ->capture_default_str()
      ->check(integer_in(4, 1 << 20));
  cmd->add_option("--chunks", a->chunks, "Use at most N chunks (default: all)")
      ->check(integer_in(1, 1 << 30));
  cmd->add_flag("--process-output", a->process_output, "Also collect output.weight");
  cmd->add_option("--format", a->format, "gguf (llama.cpp's current format) or dat (legacy)")
      ->capture_default_str()
      ->check(CLI::IsMember({"gguf", "dat"}));
  cmd->add_option("--covariance", a->covariance,
                  "full: also write E[x x^T] per matmul input to FILE.cov; none: skip it")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "none"}));
  cmd->add_option("--compare", a->compare,
                  "Report the per-value relative error of FILE against this imatrix");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_flag("--force", a->force, "Overwrite existing output files");
  cmd->add_flag("--json", a->json, "Print a JSON report on stdout");
  cmd->callback([a] { run_imatrix_cmd(*a); });
}

}  // namespace qforge
