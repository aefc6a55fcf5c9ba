// run_critical_prompts: greedy generation of a prompt set through the engine (kept apart from
// the parser and matcher so that those link without the engine, e.g. for fuzzing).
#include <algorithm>

#include "core/thread_pool.h"
#include "engine/chat_template.h"
#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/unicode.h"
#include "eval/critical_prompts.h"

namespace qforge {

namespace {

// Prompt text -> token ids; chat prompts go through the file's template as one user turn.
Result<std::vector<int32_t>> prompt_tokens(const Model& model, const Tokenizer& tok,
                                           const CriticalPrompt& p) {
  if (!p.chat) return tok.encode(p.prompt, true, true);
  return encode_chat_prompt(model.file(), tok, p.prompt);
}

// Valid UTF-8 for JSON (nlohmann refuses to dump anything else): a continuation cut inside a
// character keeps its valid part and gets U+FFFD for the rest.
std::string valid_utf8(std::string s) {
  if (utf8_is_valid(s)) return s;
  std::vector<uint32_t> cpts;
  utf8_decode_lenient(s, cpts);
  std::string r;
  for (uint32_t c : cpts) utf8_append(c >= 0xD800 && c <= 0xDFFF ? 0xFFFD : c, r);
  return r;
}

}  // namespace

Result<CriticalPromptsReport> run_critical_prompts(const Model& model, const Tokenizer& tok,
                                                   std::span<const CriticalPrompt> prompts,
                                                   const CriticalPromptsOptions& opt) {
  std::vector<std::vector<int32_t>> ids;
  int64_t need = 1;
  for (const CriticalPrompt& p : prompts) {
    QF_TRY(auto t, prompt_tokens(model, tok, p));
    need = std::max<int64_t>(need, static_cast<int64_t>(t.size()) + p.max_tokens);
    ids.push_back(std::move(t));
  }
  const int64_t n_ctx_train = model.params().n_ctx_train;
  if (n_ctx_train > 0 && need > n_ctx_train)
    return make_error(model.file().path(), ": a critical prompt needs ", need,
                      " positions (prompt + max_tokens), the model's context is ", n_ctx_train);
  ThreadPool pool(opt.threads);
  Context ctx(model, need, pool, 512);
  CriticalPromptsReport rep;
  rep.total = static_cast<int>(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const CriticalPrompt& p = prompts[i];
    GenerateOptions gen;
    gen.max_tokens = p.max_tokens;
    QF_TRY(GenerateResult g, generate(ctx, tok, ids[i], gen));
    QF_TRY(bool ok, critical_prompt_matches(p.expected, g.text));
    rep.results.push_back({p.prompt, p.expected, valid_utf8(std::move(g.text)), p.chat, ok});
    rep.passed += ok ? 1 : 0;
    if (opt.progress) opt.progress(static_cast<int>(i + 1), rep.total);
  }
  rep.pass_rate = rep.total > 0 ? static_cast<double>(rep.passed) / rep.total : 0.0;
  return rep;
}

}  // namespace qforge
