// libFuzzer target for the critical-prompt JSONL parser: any byte string parses or gives one
// error naming "fuzz.jsonl:LINE" (or the file), never crashes; every parsed prompt is usable
// (non-empty texts, max_tokens in range, a regex that compiles and can be matched).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eval/critical_prompts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = qforge::parse_critical_prompts(in, "fuzz.jsonl");
  if (!r.ok()) {
    if (!r.error().message.starts_with("fuzz.jsonl")) std::abort();
    return 0;
  }
  for (const auto& p : *r) {
    if (p.prompt.empty() || p.expected.empty() || p.max_tokens < 1 || p.max_tokens > 4096)
      std::abort();
    if (!qforge::critical_prompt_matches(p.expected, p.prompt).ok()) std::abort();
  }
  return 0;
}
