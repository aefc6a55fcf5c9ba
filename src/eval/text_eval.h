// One evaluation of a model on a text: perplexity by llama.cpp's method (eval/perplexity.h) and,
// optionally, KL-divergence against a saved base (--kld) or the writing of such a base
// (--kld-base) (eval/kld.h). `qforge perplexity` and the pipeline's quality step both run it, so
// chunking, base compatibility checks and the KLD wiring exist once.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "core/result.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "eval/kld.h"
#include "eval/perplexity.h"

namespace qforge {

struct TextEvalOptions {
  int64_t ctx = 512;
  int64_t chunks = -1;  // < 0: every full chunk (with kld_compare: as many as the base holds)
  int64_t batch = 512;  // tokens per forward micro-batch
  int threads = 0;      // 0: all cores
  KvType kv_type = KvType::F16;
  std::string kld_compare;  // compare against this KLD base file
  std::string kld_write;    // write this model's log-probabilities as a KLD base file
  bool overwrite = false;   // replace an existing kld_write file
  std::string model_name;   // recorded in a written base
  // After each chunk: (chunks done, total, running PPL); optional.
  std::function<void(int64_t, int64_t, double)> progress;
};

struct TextEvalResult {
  PerplexityResult ppl;
  std::optional<KldResult> kld;  // with kld_compare
  std::string kld_base_model;    // the compared base's model name
  int64_t chunks_planned = 0;
  int threads = 0;  // pool size used
};

// Evaluates `tokens` (the text tokenized by `tok`, BOS handling as the tokenizer says) with
// `model`. Errors name `text_name` or the base file: ctx beyond the model's training context,
// fewer than 2 x ctx tokens, a KLD base of another vocabulary / ctx / text / chunk count, I/O.
// Writes kld_write only when the whole evaluation succeeded.
Result<TextEvalResult> evaluate_text(const Model& model, const Tokenizer& tok,
                                     const std::vector<int32_t>& tokens,
                                     const std::string& text_name, const TextEvalOptions& o);

}  // namespace qforge
