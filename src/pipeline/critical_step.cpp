// Critical prompts as a pipeline step: eval/critical_prompts.h does the work (greedy generation
// through our engine, chat template when a prompt asks for it); this wraps it in the step's
// typed result.
#include "core/process_memory.h"
#include "eval/critical_prompts.h"
#include "pipeline/evaluate.h"
#include "pipeline/steps.h"

namespace qforge {

Status check_prompts_file(const std::string& path) {
  QF_TRY(std::vector<CriticalPrompt> prompts, load_critical_prompts(path));
  (void)prompts;
  return ok_status();
}

Result<CriticalStepResult> critical_step(const std::string& model_path, const std::string& prompts,
                                         int threads) {
  QF_TRY(std::vector<CriticalPrompt> set, load_critical_prompts(prompts));
  QF_TRY(Model model, Model::load(model_path));
  QF_TRY(Tokenizer tok, Tokenizer::from_gguf(model.file()));
  CriticalPromptsOptions opt;
  opt.threads = threads;
  QF_TRY(CriticalPromptsReport rep, run_critical_prompts(model, tok, set, opt));
  CriticalStepResult r;
  r.model = model_path;
  r.prompts_file = prompts;
  r.passed = rep.passed;
  r.total = rep.total;
  r.pass_rate = rep.pass_rate;
  for (const auto& c : rep.results)
    r.cases.push_back({c.prompt, c.expected, c.output, c.chat, c.passed});
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

}  // namespace qforge
