// KL-divergence of a model against a base model's saved log-probabilities.
//
// Base file format (qforge's own, little-endian): a header, then one record per scored token
// in evaluation order.
//   header: magic "QFKLDB1\n" (8 bytes), u32 version (1), u32 n_vocab, u32 n_ctx, u32 n_chunks,
//           u32 n_scored (tokens scored per chunk), u32 reserved (0), u64 n_text_tokens,
//           64 bytes tokens_sha256 (hex SHA-256 of the text's int32 token ids: identifies the
//           text and its tokenization), u16 model-name length + bytes (informational).
//   record: f32 lo, f32 step, f32 lp_target, then n_vocab u16 codes q;
//           the log-probability of token i is lo + q[i] * step. Values below lo (at most 24
//           nats under the top token) are clamped to lo; the quantization error is <= step/2
//           <= 1.9e-4 nats. lp_target is the exact log-probability of the true next token.
// For mini (vocab 4096) on all of eval.txt that is ~420 MB; tests use a few chunks.
//
// Statistics (as llama-perplexity --kl-divergence reports them): mean KLD with its standard
// error, median / p90 / p99 / max, how often both models rank the same token first (%), the RMS
// of the change in probability of the true token (percentage points), and PPL(Q)/PPL(base).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "io/atomic_file.h"

namespace qforge {

struct KldBaseHeader {
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;
  uint32_t n_chunks = 0;
  uint32_t n_scored = 0;  // per chunk
  uint64_t n_text_tokens = 0;
  std::string tokens_sha256;  // 64 hex chars
  std::string model;
};

// Hex SHA-256 of a token-id list (as int32 little-endian bytes).
std::string tokens_digest(const std::vector<int32_t>& tokens);

class KldBaseWriter {
 public:
  static Result<KldBaseWriter> create(const std::string& path, const KldBaseHeader& header,
                                      bool overwrite);
  // Appends the records of n scored tokens: logits (n rows of n_vocab), true next tokens.
  Status add(const float* logits, const int32_t* targets, int64_t n);
  // Checks that every announced record was written, then commits the file atomically.
  Status commit();

 private:
  KldBaseHeader h_;
  AtomicFile out_;
  uint64_t records_ = 0;
  std::vector<float> lp_;
  std::vector<uint8_t> rec_;
};

struct KldResult {
  int64_t n_tokens = 0;
  double kld_mean = 0, kld_mean_err = 0;
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_max = 0;
  double same_top_pct = 0, same_top_err_pct = 0;
  double rms_dp_pct = 0;
  double ppl_base = 0, ppl = 0, ppl_ratio = 0;
};

class KldComparer {
 public:
  static Result<KldComparer> open(const std::string& path);
  KldComparer() = default;
  KldComparer(KldComparer&&) = default;
  KldComparer& operator=(KldComparer&&) = default;
  const KldBaseHeader& header() const { return h_; }
  // Refuses a base made from another text/tokenization, context size or vocabulary, or with a
  // different number of chunks than this run evaluates.
  Status check_compatible(uint32_t n_vocab, uint32_t n_ctx, const std::string& tokens_sha256,
                          int64_t n_chunks) const;
  // Compares n scored tokens (this model's logits) with the next n records of the base.
  Status add(const float* logits, const int32_t* targets, int64_t n);
  KldResult finish() const;

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const {
      if (f) std::fclose(f);
    }
  };
  std::string path_;
  KldBaseHeader h_;
  std::unique_ptr<std::FILE, FileCloser> in_;
  uint64_t records_read_ = 0;
  std::vector<uint8_t> rec_;
  std::vector<float> lp_base_, lp_q_;
  std::vector<float> kld_;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp2_ = 0, nll_base_ = 0, nll_q_ = 0;
  int64_t same_top_ = 0;
};

}  // namespace qforge
