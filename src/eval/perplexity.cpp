#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/stopwatch.h"
#include "kernels/vec_ops.h"

namespace qforge {

double log_softmax_at(const float* logits, int64_t n_vocab, int32_t target) {
  const float mx = vec_ops().max_of(logits, n_vocab);
  const double sum = vec_ops().sum_exp_sub(logits, n_vocab, mx);
  return static_cast<double>(logits[target] - mx) - std::log(sum);
}

void log_softmax_row(const float* logits, int64_t n_vocab, float* out_logp) {
  const float mx = vec_ops().max_of(logits, n_vocab);
  const double sum = vec_ops().sum_exp_sub(logits, n_vocab, mx);
  const double lse = std::log(sum);
  for (int64_t i = 0; i < n_vocab; ++i)
    out_logp[i] = static_cast<float>(static_cast<double>(logits[i] - mx) - lse);
}

Result<PerplexityResult> compute_perplexity(Context& ctx, std::span<const int32_t> tokens,
                                            const PerplexityOptions& opt) {
  const int64_t n_ctx = opt.n_ctx;
  const auto n_tok = static_cast<int64_t>(tokens.size());
  if (n_ctx < 4) return make_error("perplexity: context ", n_ctx, " is too small (minimum 4)");
  if (n_ctx > ctx.n_ctx())
    return make_error("perplexity: context ", n_ctx, " exceeds the engine context ", ctx.n_ctx());
  if (n_tok < 2 * n_ctx)
    return make_error("perplexity: the text has ", n_tok,
                      " tokens, fewer than 2 x ctx = ", 2 * n_ctx,
                      "; use a longer text or a smaller --ctx");
  int64_t n_chunks = n_tok / n_ctx;
  if (opt.n_chunks >= 0) n_chunks = std::min(n_chunks, opt.n_chunks);
  if (n_chunks <= 0) return make_error("perplexity: no chunk to evaluate");

  const int64_t first = n_ctx / 2, n_scored = scored_per_chunk(n_ctx);
  const int64_t n_vocab = ctx.n_vocab();
  PerplexityResult r;
  r.n_ctx = n_ctx;
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  std::vector<double> lp(static_cast<size_t>(n_scored));
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (opt.replace_bos) chunk[0] = opt.bos_id;
    ctx.clear();
    // Logits are needed for positions first .. n_ctx-2; computing the last one too keeps the
    // call simple (n_ctx - first rows).
    QF_CHECK(ctx.decode(chunk, n_ctx - first));
    const float* lg = ctx.logits_row(0);
    const int32_t* targets = chunk.data() + first + 1;
    // Rows in parallel, summed in order (deterministic).
    ctx.pool().parallel_for(n_scored, 8, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i)
        lp[static_cast<size_t>(i)] = log_softmax_at(lg + i * n_vocab, n_vocab, targets[i]);
    });
    // A NaN/Inf logit (NaN or Inf weights) would make the result "inf" or "nan"; refuse it,
    // before anything is written to a KLD base.
    for (int64_t i = 0; i < n_scored; ++i)
      if (!std::isfinite(lp[static_cast<size_t>(i)]))
        return make_error("perplexity: chunk ", c, ", token ", first + 1 + i,
                          ": the log-probability is ", lp[static_cast<size_t>(i)],
                          " (the model's logits are not finite; check its weights with "
                          "'qforge verify --values')");
    for (int64_t i = 0; i < n_scored; ++i) {
      nll -= lp[static_cast<size_t>(i)];
      nll2 += lp[static_cast<size_t>(i)] * lp[static_cast<size_t>(i)];
    }
    count += n_scored;
    if (opt.sink) QF_CHECK(opt.sink(c, lg, targets, n_scored));
    r.chunk_ppl.push_back(std::exp(nll / static_cast<double>(count)));
    if (opt.progress) opt.progress(c + 1, n_chunks, r.chunk_ppl.back());
  }
  r.seconds = seconds_since(t0);
  const double mean = nll / static_cast<double>(count);
  double var = nll2 / static_cast<double>(count) - mean * mean;
  r.nll_mean = mean;
  r.ppl = std::exp(mean);
  if (!std::isfinite(r.ppl))
    return make_error("perplexity: the perplexity overflows (mean negative log-likelihood ", mean,
                      " nats)");
  r.ppl_stderr = var > 0 && count > 1 ? r.ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0;
  r.tokens_scored = count;
  r.chunks = n_chunks;
  r.tokens_per_second = r.seconds > 0 ? static_cast<double>(n_chunks * n_ctx) / r.seconds : 0;
  return r;
}

}  // namespace qforge
