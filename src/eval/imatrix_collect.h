// Calibration statistics for quantization (`qforge imatrix`, issue 13), by llama-imatrix's
// conventions (tools/imatrix/imatrix.cpp):
// - every weight matrix of the blocks ("blk.*") is observed, the output head only with
//   process_output and only as "output.weight" (a tied head, token_embd.weight, never);
// - a dense matmul of fewer than 16 rows is skipped (llama-imatrix ignores such small
//   batches); expert matmuls always count, one token per (token, selected expert);
// - per weight tensor: the sum of x² of every input column and the token count, per expert
//   for stacked experts. The importance is sum / count.
// Second order (optional): per distinct matmul input (q/k/v share one, gate/up share one,
// experts per expert) the sum of x xᵀ, accumulated per micro-batch by a blocked symmetric
// rank-n update on the pool (f32 register tiles over the micro-batch rows, added once per
// micro-batch into f32 accumulators); E[x xᵀ] = sum / count is written by write_covariance.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "engine/activation_observer.h"
#include "engine/forward.h"
#include "formats/covariance.h"
#include "formats/imatrix.h"

namespace qforge {

struct ActivationStatsOptions {
  bool process_output = false;
  bool covariance = true;
};

class ActivationStats final : public ActivationObserver {
 public:
  // Lays out (and allocates) the statistics of every matmul of `model`; uses `pool` for the
  // covariance updates. Both must outlive the object.
  ActivationStats(const Model& model, ThreadPool& pool, ActivationStatsOptions opt);

  void on_matmul(const MatmulSite& site, const float* x, int64_t n, int64_t cols) override;

  struct WeightStats {
    std::string name;              // weight tensor
    int64_t cols = 0;              // input width
    uint32_t n_mat = 1;            // experts (stacked) or 1
    std::vector<double> sums;      // n_mat * cols sums of x²
    std::vector<uint64_t> counts;  // n_mat token counts
    int64_t cov = -1;              // index of its covariance, -1 without
  };
  const std::vector<WeightStats>& weights() const { return weights_; }
  const WeightStats* find(std::string_view weight_name) const;

  // The importance matrix, entries sorted by name (llama.cpp's order), those that saw no token
  // left out. format "gguf": count = tokens of the first matrix; "dat": count = the legacy call
  // count, ceil(max tokens / chunk_size). Unseen experts get importance 1 (llama.cpp's rule).
  Imatrix imatrix(const std::string& format, uint32_t chunk_count, uint32_t chunk_size,
                  std::vector<std::string> datasets) const;

  // Covariances (empty without opt.covariance): their specs (names, widths, counts, weights)
  // and E[x xᵀ] of matrix m of covariance i into out (n * n).
  std::vector<CovarianceSpec> covariance_specs() const;
  void covariance_matrix(size_t i, uint32_t m, std::span<float> out) const;
  // Bytes of RAM the covariance accumulators hold (≈ the .cov file size).
  uint64_t covariance_accumulator_bytes() const;

 private:
  struct Cov {
    std::string name;
    int64_t n = 0;
    uint32_t n_mat = 1;
    MatRole leader;  // the first member in forward order: it alone updates the sums
    std::vector<size_t> members;
    std::vector<float> sum;  // n_mat * n * n, entries (i, j) with i <= j valid
    std::vector<uint64_t> counts;
  };
  int64_t slot(const MatmulSite& s) const;
  void add_weight(int64_t layer, MatRole role, int64_t cols, uint32_t n_mat, bool tied);
  void group_covariances(int64_t n_layer);

  ThreadPool& pool_;
  ActivationStatsOptions opt_;
  std::vector<WeightStats> weights_;
  std::vector<int64_t> slot_to_weight_;  // (layer + 1) * kRoles + role -> weights_ index
  std::vector<Cov> covs_;
};

// Adds the upper triangle (and possibly some entries below the diagonal) of xᵀx, x being n rows
// of `cols` floats, into c (cols x cols, row-major): c[i * cols + j] += sum_t x[t][i] x[t][j]
// for i <= j. Parallel over column panels on `pool`. Exposed for tests.
void add_gram_upper(const float* x, int64_t n, int64_t cols, float* c, ThreadPool& pool);

struct ImatrixRunOptions {
  int64_t n_ctx = 512;
  int64_t n_chunks = -1;  // < 0: every full chunk
  bool replace_bos = true;
  int32_t bos_id = 0;
  // After each chunk: (chunks done, total, running PPL of the second halves).
  std::function<void(int64_t, int64_t, double)> progress;
};

struct ImatrixRunResult {
  int64_t chunks = 0;
  int64_t tokens = 0;  // tokens run through the model
  double ppl = 0, ppl_stderr = 0;
  double seconds = 0;
  std::vector<double> chunk_ppl;  // running PPL after each chunk
};

// Runs the model over `tokens` as llama-imatrix does: chunks of n_ctx tokens (a partial last
// chunk dropped), the KV cache cleared per chunk, BOS in place of each chunk's first token
// (replace_bos), logits of every position computed (the head sees all tokens), perplexity of
// the second half of each chunk. `stats` observes the context during the run. Errors: fewer
// than 2 * n_ctx tokens, n_ctx above the context's size, a non-finite log-probability.
Result<ImatrixRunResult> run_imatrix(Context& ctx, std::span<const int32_t> tokens,
                                     const ImatrixRunOptions& opt, ActivationStats& stats);

}  // namespace qforge

namespace qforge {

// Per-value agreement of two importance matrices (`qforge imatrix --compare`, the acceptance
// check against llama-imatrix's file): relative error |a - b| / |b| of every value of every
// tensor both hold (0 where both are 0).
struct ImatrixComparison {
  size_t tensors = 0;  // tensors in both
  size_t values = 0;   // values compared
  double max_rel = 0, median_rel = 0, mean_rel = 0;
  std::string max_tensor;                   // where the largest error is
  std::vector<std::string> only_a, only_b;  // tensors one side lacks
  std::vector<std::string> shape_mismatch;  // same name, different size
};
ImatrixComparison compare_imatrix(const Imatrix& a, const Imatrix& b);

}  // namespace qforge
