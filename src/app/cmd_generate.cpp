// qforge generate MODEL -p PROMPT [-n N] [--temp T --top-k K --top-p P --seed S] [--threads N]
// Greedy at temperature 0. The prompt (with BOS when the model adds one) is processed in one
// batch; the continuation is streamed to stdout token by token and stops at end of generation.
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "engine/forward.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace qforge {
namespace {

struct GenArgs {
  std::string model, prompt;
  int n_predict = 64;
  int threads = 0;
  int64_t ctx = 0;
  SamplerOptions sampler;
  bool json = false, no_echo = false;
};

void run_generate(const GenArgs& a) {
  if (a.n_predict < 0) throw CliError{"generate: -n must be >= 0", 2};
  const OpenedInput in = open_input(a.model);
  Model model =
      unwrap(Model::from_gguf(std::make_shared<const GgufFile>(unwrap(GgufFile::open(in)))));
  Tokenizer tok = unwrap(Tokenizer::from_gguf(model.file()));
  const std::vector<int32_t> prompt = tok.encode(a.prompt, true, true);
  if (prompt.empty())
    throw CliError{"generate: the prompt is empty (and the model adds no BOS)", 2};
  const int64_t want = static_cast<int64_t>(prompt.size()) + a.n_predict;
  int64_t n_ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(want, model.params().n_ctx_train);
  if (n_ctx > model.params().n_ctx_train)
    throw CliError{cat(a.model, ": --ctx ", n_ctx, " exceeds the model's context length ",
                       model.params().n_ctx_train)};
  if (static_cast<int64_t>(prompt.size()) >= n_ctx)
    throw CliError{
        cat("generate: the prompt has ", prompt.size(), " tokens, the context holds ", n_ctx)};
  ThreadPool pool(a.threads);
  Context ctx(model, n_ctx, pool, 512);
  Sampler sampler(a.sampler);
  const bool stream = !a.json;
  if (stream && !a.no_echo) {
    std::fputs(tok.decode(prompt).c_str(), stdout);
    std::fflush(stdout);
  }
  const auto t0 = std::chrono::steady_clock::now();
  unwrap(ctx.decode(prompt, 1));
  const double prompt_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<int32_t> out;
  std::string text;
  bool eog = false;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.n_predict; ++i) {
    const int32_t t = sampler.sample(ctx.logits());
    if (tok.is_eog(t)) {
      eog = true;
      break;
    }
    out.push_back(t);
    const std::string piece = tok.token_to_piece(t);
    text += piece;
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 == a.n_predict || ctx.n_past() >= ctx.n_ctx()) break;
    unwrap(ctx.decode(std::span<const int32_t>(&t, 1), 1));
  }
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  if (a.json) {
    nlohmann::json j;
    j["prompt"] = a.prompt;
    j["prompt_tokens"] = prompt;
    j["text"] = text;
    j["tokens"] = out;
    j["n_generated"] = out.size();
    j["stopped_at_eos"] = eog;
    j["prompt_seconds"] = prompt_s;
    j["tokens_per_second"] = gen_s > 0 ? static_cast<double>(out.size()) / gen_s : 0.0;
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::fputc('\n', stdout);
  log_info("generate.done", "generated",
           {{"tokens", out.size()},
            {"stopped_at_eos", eog},
            {"tokens_per_second", gen_s > 0 ? static_cast<double>(out.size()) / gen_s : 0.0}});
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (greedy at --temp 0)");
  auto a = std::make_shared<GenArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("-p,--prompt", a->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", a->sampler.temperature, "Temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "Top-k filtering (0: off)")->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "Top-p (nucleus) filtering (1: off)")
      ->capture_default_str();
  cmd->add_option("--seed", a->sampler.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("-c,--ctx", a->ctx, "Context length (default: prompt + n, up to the model's)");
  cmd->add_flag("--no-echo", a->no_echo, "Do not print the prompt before the continuation");
  cmd->add_flag("--json", a->json, "Print a JSON report instead of streaming");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qforge
