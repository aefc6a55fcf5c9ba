#include "engine/generate.h"

#include <chrono>
#include <cmath>

#include "core/stopwatch.h"

namespace qforge {

Result<GenerateResult> generate(Context& ctx, const Tokenizer& tok, std::span<const int32_t> prompt,
                                const GenerateOptions& opt) {
  if (prompt.empty()) return make_error("generate: the prompt has no tokens");
  if (static_cast<int64_t>(prompt.size()) >= ctx.n_ctx())
    return make_error("generate: the prompt has ", prompt.size(), " tokens, the context holds ",
                      ctx.n_ctx());
  ctx.clear();
  Sampler sampler(opt.sampler);
  GenerateResult r;
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = ctx.decode(prompt, 1); !s.ok()) return s.error();
  r.prompt_seconds = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < opt.max_tokens; ++i) {
    const std::span<const float> logits = ctx.logits();
    // NaN/Inf weights would otherwise sample token 0 forever.
    for (float x : logits)
      if (!std::isfinite(x))
        return make_error("generate: the logits after ", prompt.size() + r.tokens.size(),
                          " tokens are not finite (NaN/Inf weights? check the model with "
                          "'qforge verify --values')");
    const int32_t t = sampler.sample(logits);
    if (tok.is_eog(t)) {
      r.stopped_at_eog = true;
      break;
    }
    r.tokens.push_back(t);
    const std::string piece = tok.token_to_piece(t);
    r.text += piece;
    if (opt.on_piece) opt.on_piece(piece);
    // The last token needs no forward pass; a full context ends the generation.
    if (i + 1 == opt.max_tokens || ctx.n_past() >= ctx.n_ctx()) break;
    if (Status s = ctx.decode(std::span<const int32_t>(&t, 1), 1); !s.ok()) return s.error();
  }
  r.gen_seconds = seconds_since(t1);
  return r;
}

}  // namespace qforge
