// Text generation: the prompt in one batch, then one token at a time from the sampler (greedy
// at temperature 0), stopping at end of generation, after max_tokens, or when the context is
// full. The library form of `qforge generate`, also used by the critical-prompt check.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/forward.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace qforge {

struct GenerateOptions {
  int max_tokens = 64;     // >= 0
  SamplerOptions sampler;  // temperature 0 (greedy) by default
  // Receives each generated piece as it is produced (streaming); optional.
  std::function<void(std::string_view)> on_piece;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the end-of-generation token excluded)
  std::string text;             // concatenated token_to_piece of `tokens`
  bool stopped_at_eog = false;
  double prompt_seconds = 0, gen_seconds = 0;
  double tokens_per_second() const {
    return gen_seconds > 0 ? static_cast<double>(tokens.size()) / gen_seconds : 0.0;
  }
};

// Continues `prompt` in `ctx`, which is cleared first. Errors: an empty prompt, a prompt that
// does not leave room for one generated token in ctx.n_ctx(), a token id outside the vocabulary.
Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::span<const int32_t> prompt,
                                const GenerateOptions& opt);

}  // namespace qforge
