// qforge bench MODEL [--prompt 512] [--gen 128] [--reps 3] [--threads N] [--kv-type f16|f32]
//              [--json]
// Prompt-processing and generation speed, time to first token, load time, peak RSS, size.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "eval/bench.h"

namespace qforge {
namespace {

struct BenchArgs {
  std::string model;
  BenchOptions opt;
  std::string kv_type = "f16";
  bool json = false;
};

void run_bench_cmd(const BenchArgs& a) {
  check_input(a.model);
  BenchOptions opt = a.opt;
  opt.kv_type = *parse_kv_type(a.kv_type);  // checked by the option
  const BenchResult r = unwrap(run_bench(a.model, opt));
  if (a.json) {
    const nlohmann::json j = r;
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::printf("model:        %s (%.2f MB, %.2f M params, %.3f bits/weight)\n", r.model.c_str(),
              r.file_bytes / 1e6, r.n_params / 1e6, r.bits_per_weight);
  std::printf("threads:      %d\n", r.threads);
  std::printf("load:         %.1f ms\n", r.load_seconds * 1e3);
  std::printf("pp%-4d        %.1f +/- %.1f tokens/s\n", r.n_prompt, r.pp_tokens_per_second,
              r.pp_stddev);
  std::printf("tg%-4d        %.1f +/- %.1f tokens/s\n", r.n_gen, r.tg_tokens_per_second,
              r.tg_stddev);
  std::printf("first token:  %.1f ms after a %d-token prompt\n", r.ttft_ms, r.n_prompt);
  std::printf("peak RSS:     %.1f MB\n", r.peak_rss_bytes / 1e6);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Speed and memory of a model (pp512, tg128, TTFT, RSS)");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("-p,--prompt", a->opt.n_prompt, "Prompt tokens (pp)")->capture_default_str();
  cmd->add_option("-n,--gen", a->opt.n_gen, "Generated tokens (tg)")->capture_default_str();
  cmd->add_option("-r,--reps", a->opt.reps, "Repetitions (after one warm-up)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->opt.threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type (f16 as llama.cpp, or f32)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print a JSON report on stdout");
  cmd->callback([a] { run_bench_cmd(*a); });
}

}  // namespace qforge
