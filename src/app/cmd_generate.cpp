// qforge generate MODEL -p PROMPT [-n N] [--temp T --top-k K --top-p P --seed S] [--threads N]
//   [--chat]  (the prompt as one user turn through tokenizer.chat_template)
// Greedy at temperature 0. The prompt (with BOS when the model adds one) is processed in one
// batch; the continuation is streamed to stdout token by token and stops at end of generation.
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "engine/chat_template.h"
#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace qforge {
namespace {

struct GenArgs {
  std::string model, prompt;
  int n_predict = 64;
  int threads = 0;
  int64_t ctx = 0;
  std::string kv_type = "f16";
  SamplerOptions sampler;
  bool json = false, no_echo = false, chat = false;
};

void run_generate(const GenArgs& a) {
  if (a.n_predict < 0) throw CliError{"generate: -n must be >= 0", 2};
  const OpenedInput in = open_input(a.model);
  Model model =
      unwrap(Model::from_gguf(std::make_shared<const GgufFile>(unwrap(GgufFile::open(in)))));
  Tokenizer tok = unwrap(Tokenizer::from_gguf(model.file()));
  const std::vector<int32_t> prompt = a.chat
                                          ? unwrap(encode_chat_prompt(model.file(), tok, a.prompt))
                                          : tok.encode(a.prompt, true, true);
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
  Context ctx(model, n_ctx, pool, 512, *parse_kv_type(a.kv_type));  // checked by the option
  const bool stream = !a.json;
  if (stream && !a.no_echo) {
    std::fputs(tok.decode(prompt).c_str(), stdout);
    std::fflush(stdout);
  }
  GenerateOptions opt;
  opt.max_tokens = a.n_predict;
  opt.sampler = a.sampler;
  if (stream)
    opt.on_piece = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
  const GenerateResult g = unwrap(generate(ctx, tok, prompt, opt));
  const std::vector<int32_t>& out = g.tokens;
  const std::string& text = g.text;
  const bool eog = g.stopped_at_eog;
  const double prompt_s = g.prompt_seconds, gen_s = g.gen_seconds;
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
    // Text cut inside a UTF-8 character (or an invalid prompt byte) is not valid JSON text:
    // such bytes become U+FFFD; "tokens" keeps the exact ids.
    std::printf("%s\n", j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
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
      ->check(finite_number(0))
      ->capture_default_str();
  cmd->add_option("--top-k", a->sampler.top_k, "Top-k filtering (0: off)")
      ->check(integer_in(0, std::numeric_limits<int>::max()))
      ->capture_default_str();
  cmd->add_option("--top-p", a->sampler.top_p, "Top-p (nucleus) filtering (1: off)")
      ->check(finite_number(0, 1))
      ->capture_default_str();
  cmd->add_option("--seed", a->sampler.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_option("-c,--ctx", a->ctx, "Context length (default: prompt + n, up to the model's)");
  cmd->add_flag("--chat", a->chat,
                "Send the prompt as one user turn through the model's chat template");
  cmd->add_flag("--no-echo", a->no_echo, "Do not print the prompt before the continuation");
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type (f16 as llama.cpp, or f32)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print a JSON report instead of streaming");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qforge
