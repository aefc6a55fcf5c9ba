// Per-tensor sensitivity table for size-targeted allocation (size_target.h): for every tensor
// the quantizer would encode and every candidate type, the exact bytes and a proxy of the
// tensor's contribution to the model's output error.
//
// The proxy is measured, not modelled: each (sampled) row is encoded with the very codec the
// quantizer uses (same imatrix slice, same search options) and decoded again, and the
// imatrix-weighted squared error sum_j imp_j (w_ij - q_ij)^2 is accumulated. With the imatrix
// holding E[x_j^2], that is the expected squared error of the layer's output under a diagonal
// approximation of E[x x^T]. `signal` is the same weighting of the weights themselves
// (sum_j imp_j w_ij^2), so error / signal is the layer output's relative error.
//
// With covariances (SensitivityOptions::covariance, FILE.cov beside the imatrix) the table
// measures what the writer does (model_quantizer.h): a tensor the covariance file covers is
// encoded with error feedback (quant/error_feedback.h, same damping, scale importance and
// per-row guard) wherever the candidate type supports it, with the refined search (imatrix
// weights) elsewhere, and every candidate's error is the damped Hessian-weighted error
// tr((W - Q)(H + diag(added))(W - Q)ᵀ) of the sampled rows, H = E[x xᵀ] the tensor's own and
// `added` what HessianFactor adds to its diagonal at the writer's damping (`hessian` set;
// `signal` is the raw tr(W H Wᵀ)). Damped, because at low bits error feedback moves error into
// directions where the calibration H is small: the raw H scores that error as nearly free, but
// it does not stay small on other text, and a table of raw errors over-rates the low types (at
// refmodel's Q5_K_M size the allocation was 1.01x the fixed mix's KLD with raw errors, 0.92x
// with damped ones; docs/BENCHMARKS.md, "Damped sensitivity"). The raw error is kept beside it
// (TypeCost::hessian_error). Error feedback is row-independent given H, so the sampled rows
// give the same per-row errors as the whole matrix; H is factored once per distinct input
// (q/k/v share one). Tensors the file does not cover (token_embd) keep the diagonal measure.
//
// Rows are sampled evenly (every k-th row, k chosen so that about `sample_rows` rows of each
// tensor are encoded, all rows for small tensors) to keep the table's cost near one plain
// quantize for the default 7 candidates; the sums are scaled back to the whole tensor.
// A candidate whose block does not divide the row length is replaced by llama.cpp's fallback
// for it (Q2_K/Q3_K/IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16), as
// the recipe does; duplicates are dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/types.h"
#include "formats/covariance.h"
#include "formats/imatrix.h"
#include "formats/tensor_source.h"

namespace qforge {

// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_0, IQ4_XS.
std::vector<Type> default_candidate_types();
// Parses "Q2_K,Q4_K,..." (case-insensitive, quantized target types only); the error lists them.
Result<std::vector<Type>> parse_candidate_types(std::string_view list);

// The type a candidate becomes for rows of length `row` (itself when its block divides `row`).
Type fit_candidate(Type t, uint64_t row);

struct TypeCost {
  Type type = Type::F16;
  uint64_t bytes = 0;  // exact tensor bytes in this type
  // The allocation's error measure over the whole tensor (sampled rows scaled up): the
  // imatrix-weighted squared error, or for a covered tensor the damped objective that error
  // feedback minimises, tr((W-Q)(H + diag(added))(W-Q)ᵀ) (see above).
  double error = 0;
  // Covered tensors: the raw tr((W-Q)H(W-Q)ᵀ) alone, what the writer reports as hessian_error
  // (0 for tensors without a covariance).
  double hessian_error = 0;
};

struct TensorSensitivity {
  std::string name;
  std::string kind;  // name without "blk.N.", e.g. "attn_v.weight"; whole name outside blocks
  int layer = -1;    // N of "blk.N.", -1 outside the blocks
  std::vector<uint64_t> dims;
  uint64_t n_elements = 0;
  bool weighted = false;     // an imatrix entry weighted the error
  bool hessian = false;      // error = tr((W-Q)H(W-Q)ᵀ) through the covariance (see above)
  double signal = 0;         // sum imp * w^2 over the tensor (same sampling)
  int64_t rows_sampled = 0;  // of n_rows
  int64_t n_rows = 0;
  std::vector<TypeCost> costs;  // one per distinct candidate after row fallbacks, by bytes
};

struct SensitivityOptions {
  std::vector<Type> types = default_candidate_types();
  int threads = 0;           // 0: all cores
  int64_t sample_rows = 64;  // rows encoded per tensor (at least); 0 = every row
  bool ggml_compatible = false;
  bool refine_all = false;
  // Measure covered tensors as error feedback writes them (see above); null: refined only.
  std::shared_ptr<const CovarianceFile> covariance;
  double gptq_damp = 0.3;                 // as ModelQuantizeOptions::gptq_damp
  bool gptq_inv_chol_importance = false;  // as ModelQuantizeOptions
  int gptq_search_rounds = 1;             // as ModelQuantizeOptions (local search after GPTQ)
  double gptq_search_damp = 1.0;          // as ModelQuantizeOptions
  double gptq_damp_q3_k = 0.3;            // as ModelQuantizeOptions (Q3_K candidates)
  int gptq_column_passes = 1;             // as ModelQuantizeOptions
  int gptq_joint_window = 2;              // as ModelQuantizeOptions
};

// Measures every quantizable tensor of `src` (recipe.h's is_quantizable) in llama.cpp's tensor
// order. `imatrix` may be null (unweighted error). Errors: NaN/Inf in a tensor, a quantized
// source tensor, an imatrix entry of the wrong size, a missing codec; they name the tensor.
Result<std::vector<TensorSensitivity>> measure_sensitivity(TensorSource& src,
                                                           const Imatrix* imatrix,
                                                           const SensitivityOptions& opts);

// Name without its "blk.N." prefix (the tensor kind) and the layer number (-1 outside blocks).
std::string tensor_kind(const std::string& name, int* layer);

nlohmann::json sensitivity_to_json(const std::vector<TensorSensitivity>& table);

}  // namespace qforge
