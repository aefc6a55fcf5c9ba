#include "eval/text_eval.h"

#include <algorithm>
#include <utility>

#include "core/thread_pool.h"
#include "engine/forward.h"

namespace qforge {

Result<TextEvalResult> evaluate_text(const Model& model, const Tokenizer& tok,
                                     const std::vector<int32_t>& tokens,
                                     const std::string& text_name, const TextEvalOptions& o) {
  const ModelParams& p = model.params();
  if (o.ctx > p.n_ctx_train)
    return make_error(o.model_name, ": ctx ", o.ctx, " exceeds the model's context length ",
                      p.n_ctx_train);
  if (static_cast<int64_t>(tokens.size()) < 2 * o.ctx)
    return make_error(text_name, ": ", tokens.size(), " tokens, fewer than 2 x ctx = ", 2 * o.ctx,
                      " (use a longer text or a smaller ctx)");
  const std::string digest = tokens_digest(tokens);
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / o.ctx;
  if (o.chunks > 0) n_chunks = std::min(n_chunks, o.chunks);

  std::optional<KldComparer> cmp;
  std::optional<KldBaseWriter> base;
  if (!o.kld_compare.empty()) {
    QF_TRY(KldComparer c, KldComparer::open(o.kld_compare));
    cmp.emplace(std::move(c));
    // Without a chunk limit, evaluate exactly the chunks the base holds.
    if (o.chunks < 0) n_chunks = std::min<int64_t>(n_chunks, cmp->header().n_chunks);
    QF_CHECK(cmp->check_compatible(static_cast<uint32_t>(p.n_vocab), static_cast<uint32_t>(o.ctx),
                                   digest, n_chunks));
  }
  if (!o.kld_write.empty()) {
    KldBaseHeader h;
    h.n_vocab = static_cast<uint32_t>(p.n_vocab);
    h.n_ctx = static_cast<uint32_t>(o.ctx);
    h.n_chunks = static_cast<uint32_t>(n_chunks);
    h.n_scored = static_cast<uint32_t>(scored_per_chunk(o.ctx));
    h.n_text_tokens = tokens.size();
    h.tokens_sha256 = digest;
    h.model = o.model_name;
    QF_TRY(KldBaseWriter w, KldBaseWriter::create(o.kld_write, h, o.overwrite));
    base.emplace(std::move(w));
  }

  ThreadPool pool(o.threads);
  Context ctx(model, o.ctx, pool, o.batch, o.kv_type);
  PerplexityOptions opt;
  opt.n_ctx = o.ctx;
  opt.n_chunks = n_chunks;
  opt.replace_bos = tok.add_bos() && tok.bos_id() >= 0;
  opt.bos_id = tok.bos_id();
  if (cmp)
    opt.sink = [&](int64_t, const float* lg, const int32_t* t, int64_t n) {
      return cmp->add(lg, t, n);
    };
  if (base)
    opt.sink = [&](int64_t, const float* lg, const int32_t* t, int64_t n) {
      return base->add(lg, t, n);
    };
  opt.progress = o.progress;
  TextEvalResult r;
  r.chunks_planned = n_chunks;
  r.threads = pool.size();
  QF_TRY(PerplexityResult pr, compute_perplexity(ctx, tokens, opt));
  r.ppl = std::move(pr);
  if (base) QF_CHECK(base->commit());
  if (cmp) {
    r.kld = cmp->finish();
    r.kld_base_model = cmp->header().model;
  }
  return r;
}

}  // namespace qforge
