// Critical prompts as a pipeline step (eval/critical_prompts.h does the work).
#include "pipeline/evaluate.h"
#include "pipeline/steps.h"

namespace qforge {

Status check_prompts_file(const std::string& path) {
  return make_error(path, ": critical prompts are not available in this build yet");
}

Result<CriticalStepResult> critical_step(const std::string& model, const std::string& prompts,
                                         int threads) {
  (void)threads;
  return make_error(model, ": critical prompts (", prompts,
                    ") are not available in this build yet");
}

}  // namespace qforge
