// Error-feedback (GPTQ / LDLQ-style) quantization of one weight matrix into a standard block
// format, given the second moment of its input H = E[x xᵀ] (formats/covariance.h).
//
// The objective is the output error of the layer on the calibration inputs,
//   tr((W - Q) H (W - Q)ᵀ),
// which is what a row-by-row importance-weighted search (the refined codecs) only approximates
// by diag(H). Columns are quantized in order; each column's rounding error is propagated to the
// columns not yet quantized (GPTQ's update through the upper Cholesky factor U of H⁻¹, computed
// in the equivalent LDLQ form from H = V Vᵀ, U = V⁻¹, without inverting anything), so later
// columns compensate for earlier ones. Block formats tie 32 or 256 consecutive columns to one
// set of scale bytes: when a block starts, its scales/mins are chosen by the codec's refined
// search on the error-updated weights (importance: diag(H) or 1/U_jj², ErrorFeedbackOptions),
// then its elements are rounded one column at a time with those scales fixed
// (kernels/fixed_scale.h). The bytes are exactly the codec's format: same type, same size,
// decodable by any reader of the type.
//
// Act-order (processing columns by descending diag(H)) is not used: a block's elements must be
// consecutive columns, so a permutation would have to be undone before blocks are formed, which
// takes away what it buys (docs/ARCHITECTURE.md).
//
// Guarantee: with keep_better_rows (the default) each row is also encoded by the refined search
// (importance: refined_importance, else diag(H) — what the quantizer uses without error
// feedback) and the encoding with the lower tr((w - q) H (w - q)ᵀ) is kept, so the result is never
// worse than the refined search in that measure (rows are independent given H).
//
// Speed: GPTQ's lazy batch updates (errors of a batch of columns are applied to the remaining
// columns as one matrix product); rows are processed in chunks on the thread pool.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "core/types.h"
#include "formats/covariance.h"

namespace qforge {

// The damped Hessian's factors, computed once per distinct input (q/k/v share one).
class HessianFactor {
 public:
  // H: n x n, row-major, symmetric (only needs to be positive semi-definite). Columns with
  // H_ii <= 0 (no calibration token reached them, "dead") are decoupled: their row/column is
  // zeroed and the diagonal set to mean(diag). Then damp * mean(diag) is added to the diagonal
  // (raised x10 until the Cholesky succeeds, at most 6 times). Errors: n == 0, non-finite H.
  static Result<HessianFactor> build(const float* H, int64_t n, double damp, ThreadPool& pool);

  int64_t n() const { return n_; }
  double lambda() const { return lambda_; }  // the damping added to the diagonal
  int64_t dead_columns() const { return n_dead_; }
  // H_damped = V Vᵀ with V upper (a reverse Cholesky), stored column-normalised:
  // vn[i][k] = V_ik / V_kk (row-major, unit diagonal) and vdiag[k] = V_kk. GPTQ's U (the upper
  // Cholesky factor of H⁻¹) is V⁻¹, so feedback through vn needs no inverse (LDLQ form).
  const float* vn() const { return vn_.data(); }
  std::span<const float> vdiag() const { return vdiag_; }
  std::span<const float> diag() const { return diag_; }          // diag(H_damped)
  std::span<const float> raw_diag() const { return raw_diag_; }  // diag(H) as given (>= 0)
  // What the damped matrix added to the diagonal of each column (lambda, + mean for dead ones).
  std::span<const float> added() const { return added_; }

 private:
  int64_t n_ = 0, n_dead_ = 0;
  double lambda_ = 0;
  std::vector<float> vn_, vdiag_, diag_, raw_diag_, added_;
};

// The factors of the last three distinct (input, damping) pairs read through `view` (q/k/v and
// gate/up share one input, and llama.cpp's tensor order keeps them adjacent; a mix may damp
// q/k and v differently), so each is factored once. The
// pointer stays valid until the next get() that has to build.
class HessianFactorCache {
 public:
  Result<const HessianFactor*> get(const CovarianceView& view, uint32_t matrix, double damp,
                                   ThreadPool& pool);

 private:
  std::vector<std::pair<std::string, HessianFactor>> entries_;
};

enum class ScaleImportance {
  Diag,     // diag(H) + damping (never zero, unlike the imatrix of a dead column)
  InvChol,  // 1 / U_jj² = V_jj²: the cost of column j's error once later columns compensate
};

struct ErrorFeedbackOptions {
  ScaleImportance importance = ScaleImportance::Diag;
  // Importance weights (length cols) of the refined search that the per-row guard compares
  // against: the quantizer passes its imatrix entry. nullptr: diag(H).
  const float* refined_importance = nullptr;
  bool keep_better_rows = true;  // per-row guard against the refined search (see above)
  int64_t rows_per_task = 16;
  // Local search after the column pass (needs `hessian`, H as given to HessianFactor::build,
  // n x n row-major): `search_rounds` rounds of (a) coordinate descent over the codes — each
  // element tries its two neighbouring codes and keeps the one that lowers the row's
  // (w-q) H_s (w-q)ᵀ, with the full H_s — then (b) a re-fit of each block's f16 header scales
  // (d, and dmin / m where the type has them) by H_s-weighted least squares given the codes,
  // rounded to f16 and kept only where the error falls. H_s = H + search_damp * (what the
  // factor added to the diagonal). Every accepted step lowers the error, so the search can only
  // improve on the column pass. Measured defaults: docs/BENCHMARKS.md.
  const float* hessian = nullptr;
  int search_rounds = 1;
  int code_passes = 2;  // passes over the codes per round (stops early without a change)
  bool refit_scales = true;
  double search_damp = 1.0;
  // Column passes (with a search only): pass 2.. repeats the column pass with every block's
  // scale bytes as the previous search left them (codes re-chosen with error feedback), then
  // the search; each row keeps the lower-error encoding, so more passes never raise the error.
  int column_passes = 1;
  // > 0: step (b) moves each sub-block's stored scale/min by up to this much jointly with its
  // codes (re-chosen against the row's residual) instead of with the codes fixed.
  int joint_window = 0;
};

// The joint window the quantizer uses for tensors of type `t` given the configured `window`:
// the joint sub-block moves were measured to lower KLD on Q2_K and Q3_K (docs/BENCHMARKS.md,
// "Joint sub-block moves") and on Q4_K and Q6_K (1.4-1.7 % at Q4_K_M and Q6_K on a calibration
// split, for about twice the time: "Joint moves on Q4_K and Q6_K"); Q5_K (0.2-0.5 % at Q5_K_M)
// and IQ4_XS (not measured) skip them.
inline int joint_window_for(Type t, int window) {
  return t == Type::Q2_K || t == Type::Q3_K || t == Type::Q4_K || t == Type::Q6_K ? window : 0;
}

struct ErrorFeedbackStats {
  double err_feedback = 0;     // sum over rows of tr((w-q)H(w-q)ᵀ), error-feedback encodings
  double err_refined = 0;      // the same for the refined search (only with keep_better_rows)
  double err_kept = 0;         // of the rows written
  int64_t rows_refined = 0;    // rows where the refined encoding was kept
  double err_column_pass = 0;  // err_feedback before the local search (= it without one)
  int64_t codes_changed = 0, scales_refit = 0;  // accepted local-search steps
  int64_t rows_repassed = 0;  // rows whose encoding a repeated column pass improved
};

// True when `t` has the fixed-scale helpers error feedback needs.
bool error_feedback_supports(Type t);

// Quantizes W (rows x cols, row-major f32, finite) into dst (rows * row_size(t, cols) bytes).
// Contract: error_feedback_supports(t), cols == f.n(), cols a multiple of t's block size.
ErrorFeedbackStats quantize_error_feedback(Type t, const float* W, int64_t rows, int64_t cols,
                                           const HessianFactor& f, const ErrorFeedbackOptions& opt,
                                           uint8_t* dst, ThreadPool& pool);

// sum_r sum_c added_c (W_rc - Q_rc)²: what the damped objective tr((W-Q)(H + diag(added))(W-Q)ᵀ)
// adds to the raw Hessian-weighted error (added: HessianFactor::added(), length cols).
double damping_error(const float* W, const float* Q, int64_t rows, int64_t cols,
                     std::span<const float> added);

// tr((W - Q) H (W - Q)ᵀ) in double, directly (for tests and reports): O(rows * cols²).
double hessian_weighted_error(const float* W, const float* Q, int64_t rows, int64_t cols,
                              const float* H);

}  // namespace qforge
