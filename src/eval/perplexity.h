// Perplexity by llama.cpp's method (ENGINEERING.md §6): the tokenized text is cut into
// non-overlapping chunks of n_ctx tokens (a trailing partial chunk is dropped); the first token
// of each chunk is replaced by BOS when the model adds one; the KV cache is cleared per chunk;
// only the second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the next
// token, n_ctx - 1 - n_ctx/2 tokens per chunk. PPL = exp(mean NLL); its error is
// PPL * sqrt(var(NLL) / (N - 1)), as llama-perplexity prints it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/result.h"
#include "engine/forward.h"

namespace qforge {

// Receives, for each chunk in order, the logits of its scored positions (n_scored rows of
// n_vocab) and the tokens they predict. Used by the KL-divergence writer and comparer.
using ScoredLogitsSink =
    std::function<Status(int64_t chunk, const float* logits, const int32_t* targets, int64_t n)>;

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t n_chunks = -1;    // < 0: every full chunk
  bool replace_bos = true;  // put BOS at the start of each chunk (the model's add_bos)
  int32_t bos_id = 0;
  ScoredLogitsSink sink;  // optional
  // Called after each chunk with (chunks done, total, running PPL); optional.
  std::function<void(int64_t, int64_t, double)> progress;
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0;
  double nll_mean = 0;
  int64_t tokens_scored = 0;
  int64_t chunks = 0;
  int64_t n_ctx = 0;
  double seconds = 0;             // wall time of the evaluation loop
  double tokens_per_second = 0;   // tokens processed (chunks * n_ctx) per second
  std::vector<double> chunk_ppl;  // running PPL after each chunk (as llama.cpp prints)
};

// Number of scored tokens per chunk for a context size.
inline int64_t scored_per_chunk(int64_t n_ctx) {
  return n_ctx - 1 - n_ctx / 2;
}

// Errors: fewer than 2 * n_ctx tokens, n_ctx larger than the context, n_ctx < 4; a non-finite
// log-probability (NaN/Inf logits, from NaN/Inf weights) or perplexity: never "PPL = inf".
// ctx.n_ctx() must be >= opt.n_ctx.
Result<PerplexityResult> compute_perplexity(Context& ctx, std::span<const int32_t> tokens,
                                            const PerplexityOptions& opt);

// log-softmax of one row: log p(target), and optionally the whole row into out_logp.
double log_softmax_at(const float* logits, int64_t n_vocab, int32_t target);
void log_softmax_row(const float* logits, int64_t n_vocab, float* out_logp);

}  // namespace qforge
