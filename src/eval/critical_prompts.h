// Critical prompts: "does this variant still answer the prompts my assistant depends on?"
//
// A prompt set is JSONL, one object per line:
//   {"prompt": "...", "expected": "...", "max_tokens": 16, "chat": false}
// `expected` is a substring the greedy continuation must contain, or "regex:" + a PCRE2 pattern
// the continuation must match somewhere (unanchored, UTF-8). `max_tokens` (1..4096) is required;
// `chat` is optional (default false): when true the prompt is sent as one user turn through the
// GGUF's tokenizer.chat_template with the generation prompt added (engine/chat_template.h).
// Other keys (e.g. "f16_greedy", notes) are ignored. Blank lines are skipped.
//
// Passing is judged on the generated text only (not the prompt), as ANCHORS.md counts
// llama.cpp's results: the expected word "appears in the continuation".
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/result.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

namespace qforge {

struct CriticalPrompt {
  std::string prompt;
  std::string expected;  // substring, or "regex:" + PCRE2 pattern
  int max_tokens = 16;
  bool chat = false;
};

// Parses a JSONL prompt set. `name` (the file path) prefixes every error, which names the line:
// "prompts.jsonl:3: 'max_tokens' must be an integer in 1..4096". Errors: a line that is not a
// JSON object, a missing/ill-typed key, an empty prompt or expected, a regex that does not
// compile, no prompts at all, more than 100000 lines.
Result<std::vector<CriticalPrompt>> parse_critical_prompts(std::string_view jsonl,
                                                           const std::string& name);
// Reads and parses a file (errors name the path).
Result<std::vector<CriticalPrompt>> load_critical_prompts(const std::string& path);

// Whether `output` satisfies `expected` (substring, or regex search). A regex that does not
// compile is an error (parse_critical_prompts rejects those up front).
Result<bool> critical_prompt_matches(std::string_view expected, std::string_view output);

struct CriticalPromptResult {
  std::string prompt, expected;
  // The generated continuation (decoded), without the prompt; invalid UTF-8 (a continuation cut
  // inside a character) is replaced by U+FFFD so that the report is valid JSON.
  std::string output;
  bool chat = false;
  bool passed = false;
};

struct CriticalPromptsReport {
  int passed = 0, total = 0;
  double pass_rate = 0;                       // passed / total (0 when total == 0)
  std::vector<CriticalPromptResult> results;  // in prompt-set order
};

void to_json(nlohmann::json& j, const CriticalPromptResult& r);
void from_json(const nlohmann::json& j, CriticalPromptResult& r);
void to_json(nlohmann::json& j, const CriticalPromptsReport& r);
void from_json(const nlohmann::json& j, CriticalPromptsReport& r);

struct CriticalPromptsOptions {
  int threads = 0;  // 0: all cores
  // Called after each prompt with (done, total); optional (progress display).
  std::function<void(int, int)> progress;
};

// Greedy generation (temperature 0, engine/generate.h) of every prompt, in order, each from an
// empty context: the prompt is tokenized with BOS as the model adds it (chat prompts: the
// rendered template, parsing special tokens, without a second BOS when the template writes
// one), then up to max_tokens tokens are generated, stopping early at end of generation.
// Errors: a chat prompt on a model without tokenizer.chat_template (or whose template fails,
// with the template's own message), a prompt longer than the model's context.
Result<CriticalPromptsReport> run_critical_prompts(const Model& model, const Tokenizer& tok,
                                                   std::span<const CriticalPrompt> prompts,
                                                   const CriticalPromptsOptions& opt = {});

// What a variant loses against its base on the same prompt set.
struct CriticalPromptsComparison {
  int base_passed = 0, variant_passed = 0, total = 0;
  std::vector<CriticalPromptResult> lost;    // base passed, variant failed (variant's result)
  std::vector<CriticalPromptResult> gained;  // base failed, variant passed (variant's result)
};
void to_json(nlohmann::json& j, const CriticalPromptsComparison& c);
void from_json(const nlohmann::json& j, CriticalPromptsComparison& c);

// Error when the two reports are not of the same prompt set (count or a prompt text differs).
Result<CriticalPromptsComparison> compare_critical_prompts(const CriticalPromptsReport& variant,
                                                           const CriticalPromptsReport& base);

}  // namespace qforge
