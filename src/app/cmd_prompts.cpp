// qforge prompts MODEL --prompts FILE [--base BASE.gguf] [--threads N] [--json]
// The critical-prompt check (eval/critical_prompts.h): greedy continuation of every prompt,
// pass when the expected substring/regex appears; with --base, the prompts the model loses
// (and gains) against a base model on the same set. Exit 0 when the check ran (gate judges
// thresholds), non-zero on bad input.
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "eval/critical_prompts.h"
#include "formats/untrusted_text.h"

namespace qforge {
namespace {

struct PromptsArgs {
  std::string model, prompts, base;
  int threads = 0;
  bool json = false;
};

CriticalPromptsReport run_on(const std::string& path, const std::vector<CriticalPrompt>& set,
                             int threads) {
  check_input(path);
  Model model = unwrap(Model::load(path));
  Tokenizer tok = unwrap(Tokenizer::from_gguf(model.file()));
  CriticalPromptsOptions opt;
  opt.threads = threads;
  opt.progress = [&path](int done, int total) {
    log_debug("prompts.progress", "prompt", {{"model", path}, {"done", done}, {"total", total}});
  };
  return unwrap(run_critical_prompts(model, tok, set, opt));
}

// One-line display of generated text: newlines and tabs as \n and \t, other control bytes
// escaped, long text cut.
std::string shown(const std::string& s, size_t max_bytes) {
  std::string r;
  for (char c : s)
    r += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
  return printable(r, max_bytes);
}

void print_report(const std::string& name, const CriticalPromptsReport& r) {
  std::printf("%s: %d/%d critical prompts pass (%.1f%%)\n", name.c_str(), r.passed, r.total,
              100.0 * r.pass_rate);
  for (const CriticalPromptResult& x : r.results)
    std::printf("  %s  %-32s expected %-14s got \"%s\"\n", x.passed ? "pass" : "FAIL",
                shown(x.prompt, 32).c_str(), printable(x.expected, 14).c_str(),
                shown(x.output, 60).c_str());
}

void run_prompts(const PromptsArgs& a) {
  check_input(a.prompts);
  const std::vector<CriticalPrompt> set = unwrap(load_critical_prompts(a.prompts));
  const CriticalPromptsReport rep = run_on(a.model, set, a.threads);
  std::optional<CriticalPromptsReport> base;
  std::optional<CriticalPromptsComparison> cmp;
  if (!a.base.empty()) {
    base = run_on(a.base, set, a.threads);
    cmp = unwrap(compare_critical_prompts(rep, *base));
  }
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["prompts"] = a.prompts;
    j["report"] = rep;
    if (base) {
      j["base"] = a.base;
      j["base_report"] = *base;
      j["comparison"] = *cmp;
    }
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  print_report(a.model, rep);
  if (!base) return;
  print_report(a.base, *base);
  std::printf("against the base: %zu lost, %zu gained\n", cmp->lost.size(), cmp->gained.size());
  for (const CriticalPromptResult& x : cmp->lost)
    std::printf("  lost    %s (expected %s, got \"%s\")\n", shown(x.prompt, 40).c_str(),
                printable(x.expected, 20).c_str(), shown(x.output, 60).c_str());
  for (const CriticalPromptResult& x : cmp->gained)
    std::printf("  gained  %s\n", shown(x.prompt, 40).c_str());
}

}  // namespace

void add_prompts_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "prompts", "Critical prompts: pass rate of greedy continuations (and losses vs a base)");
  auto a = std::make_shared<PromptsArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("--prompts", a->prompts,
                  "JSONL prompt set: {\"prompt\", \"expected\" (substring or regex:PATTERN), "
                  "\"max_tokens\", \"chat\"}")
      ->required();
  cmd->add_option("--base", a->base, "Base GGUF to compare with (prompts lost and gained)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_flag("--json", a->json, "Print a JSON report");
  cmd->callback([a] { run_prompts(*a); });
}

}  // namespace qforge
