// Size-targeted mixed precision: given a byte budget for the whole GGUF file and a sensitivity
// table (sensitivity.h), choose every quantizable tensor's type so that the predicted output
// error (a sum of per-tensor predicted KLD contributions) is minimal and the file fits.
//
// Prediction: predicted(t, type) = scale(kind) * depth(layer) * first(kind, layer) *
// error(t, type), the layer output's expected squared error (imatrix- or Hessian-weighted,
// sensitivity.h; divided by the signal for a `relative` model) times factors that convert it
// into KLD: how much an error in attn_v or ffn_down, early or late in the stack, moves the
// model's output distribution. The factors are fitted from one-tensor-at-a-time KLD
// measurements (`--calibration TEXT` in-process, or bench/target_calibrate.sh +
// bench/target_fit.py; `--proxy FILE` loads a fit).
// Built-in factors (builtin_proxy_model): for Hessian-weighted tables (the default with FILE.cov
// beside the imatrix) hessian_proxy_model(), a kind x first-block fit of KLD / relative error on
// refmodel and mini; for diagonal tables default_proxy_model(), the fit on refmodel with 3
// chunks of data/calibration.txt of the refined encoder's diagonal errors (leave-one-out
// Spearman vs measured KLD there 0.75; raw weighted error alone 0.45). Neither saw eval.txt.
// `--calibration TEXT` measures the model's own factors instead; docs/BENCHMARKS.md.
//
// Allocation: tensors that must share a type form a group (split per-expert tensors of one layer
// and kind, "blk.N.ffn_down.E.weight"; stacked *_exps tensors are one tensor already). Each
// group's options are reduced to the lower convex hull of (bytes, predicted error); starting
// from every group's smallest option, the step with the largest error reduction per byte that
// still fits is taken until none fits (the Lagrangian solution at the budget's multiplier), then
// the leftover bytes are filled with the single upgrades of largest gain that still fit.
// Bytes are counted as the file counts them (each tensor padded to the alignment), so
// fixed_bytes + the chosen tensors' padded bytes is the exact file size.
//
// Structural rules (llama.cpp's): only recipe-quantizable tensors are allocated (norms, routers,
// position embeddings stay as they are); token_embd.weight is allocated like any other tensor
// (it is looked up, not multiplied, so it has no imatrix entry and its error is unweighted);
// with tied embeddings it is the output head too and uses output.weight's factor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "quant/model_quantizer.h"
#include "quant/sensitivity.h"

namespace qforge {

struct ProxyModel {
  std::map<std::string, double> kind_scale;  // kind (sensitivity.h) -> factor
  double default_scale = 1.0;                // kinds not in the map
  // Factors over relative depth (layer / (n_layer - 1), linearly interpolated between entries
  // spread evenly over [0, 1]); empty = 1. Tensors outside the blocks get 1.
  std::vector<double> depth_factors;
  // Per-tensor factors (measured calibration: measured KLD / error at the measured type); a
  // tensor named here uses its own factor instead of kind x depth.
  std::map<std::string, double> tensor_scale;
  // Per-kind factor of the first block (blk.0.*), on top of the kind's: its attention reads the
  // raw embeddings and matters far less than later layers', its ffn_down far more (measured on
  // refmodel and mini). Kinds not named: 1.
  std::map<std::string, double> first_layer_scale;
  // Per-kind factor, instead of kind_scale's, for a tensor no imatrix entry weighted (output.weight
  // without `imatrix --process-output`): its relative error is the plain one, ~3x the weighted
  // one on mini, for the same KLD. Kinds not named: kind_scale.
  std::map<std::string, double> unweighted_scale;
  bool relative = false;  // error / signal instead of the absolute weighted error
  std::string source;     // where the factors come from (reports)
  double scale_for(const std::string& kind) const;
  double depth_factor(int layer, int n_layer) const;
  double first_layer_factor(const std::string& kind, int layer) const;
};

// Factors for a table of diagonal (imatrix-weighted) errors, fitted on refmodel (see
// docs/BENCHMARKS.md, "Size-targeted allocation").
ProxyModel default_proxy_model();

// Factors for a table of Hessian-weighted errors (SensitivityOptions::covariance, what the
// writer's error feedback minimises): relative error (error / signal, the layer output's
// relative squared error) x a factor per kind x a first-block factor per kind. Relative, not
// absolute: the absolute errors of two models differ by their activation scale (refmodel's and
// mini's per-kind KLD / error differ 4-40x, their KLD / relative error by one constant within
// ~0.15 decades), so the fit carries to models it never saw. Fitted jointly on refmodel's and
// mini's one-tensor-at-a-time KLDs (each tensor alone at Q4_K, 3 chunks of the first half of
// data/calibration.txt, imatrix of data/calibration.txt; never eval.txt) with a free constant
// per model (the allocation depends only on ratios within a model): bench/target_prior_fit.py,
// figures in docs/BENCHMARKS.md.
ProxyModel hessian_proxy_model();

// The built-in prior for a table measured with (`hessian`) or without covariances.
ProxyModel builtin_proxy_model(bool hessian);

// Factors from JSON {"factors": {"attn_v.weight": 1.2, ...}, "depth_factors": [...],
// "tensor_factors": {"blk.0.attn_v.weight": 0.3, ...}, "first_layer_factors": {kind: x},
// "default_factor": x, "error": "absolute"|"relative"} (bench/target_fit.py's or
// --proxy-out's output), on top of default_proxy_model(); without
// "default_factor" kinds it does not name keep the built-in factor, with it (a complete fit)
// they get default_factor.
Result<ProxyModel> proxy_model_from_json(const nlohmann::json& j, const std::string& source);

// Predicted KLD contribution of tensor `t` stored as `c`; n_layer = the model's block count.
double predicted_kld(const TensorSensitivity& t, const TypeCost& c, const ProxyModel& m,
                     bool tied_embeddings, int n_layer);

struct AllocationInput {
  uint64_t budget_bytes = 0;  // whole-file budget
  uint64_t fixed_bytes = 0;   // file bytes outside the table's tensors (header, copied tensors)
  uint32_t alignment = 32;
  bool tied_embeddings = false;  // no output.weight: token_embd is the output head
};

struct Allocation {
  std::vector<size_t> choice;                       // per table entry: index into its costs
  uint64_t file_bytes = 0;                          // fixed + padded tensor bytes
  uint64_t min_file_bytes = 0, max_file_bytes = 0;  // every tensor smallest / largest option
  double predicted_kld = 0;
  int greedy_steps = 0, fill_steps = 0;
};

// Group key of tensors that must share a type ("" = alone).
std::string type_group_key(const std::string& name);

// Errors: an empty candidate list for a tensor, or a budget below the smallest possible file
// (the message states that size).
Result<Allocation> allocate_types(const std::vector<TensorSensitivity>& table, const ProxyModel& m,
                                  const AllocationInput& in);

struct TargetPlan {
  std::vector<TensorSensitivity> table;
  Allocation allocation;
  ModelQuantizeOptions options;  // the input options with mix and tensor_type_map set
  QuantizePlan plan;             // plan_quantization of those options (exact size)
  ProxyModel model;
  uint64_t budget_bytes = 0;
  double sensitivity_seconds = 0, allocation_seconds = 0;
};

// `so` with the encoder `base` writes with: its covariances (error feedback, unless the method
// is refined/ggml), damping and scale importance, so the table measures what will be written.
SensitivityOptions writer_sensitivity(const ModelQuantizeOptions& base, SensitivityOptions so);

// Measures the table (unless `table` is given non-empty) with writer_sensitivity(base, sopts),
// allocates for `budget_bytes` and plans the file with the chosen types; the plan's
// output_file_bytes is checked to be <= the budget.
// `base` supplies imatrix, threads and encoder options.
Result<TargetPlan> plan_size_target(TensorSource& src, const ModelQuantizeOptions& base,
                                    uint64_t budget_bytes, const SensitivityOptions& sopts,
                                    const ProxyModel& model,
                                    std::vector<TensorSensitivity> table = {});

// Budget of `bpw` bits per weight over the quantizable tensors' elements plus everything else
// of the file at its planned size (the same fixed part the allocator uses).
Result<uint64_t> budget_for_bpw(TensorSource& src, const ModelQuantizeOptions& base, double bpw);

// The allocation report: per tensor (type, bits/weight, predicted KLD), per layer and per kind.
nlohmann::json allocation_to_json(const TargetPlan& tp);
// A short text table of the same (per kind and per layer), for the CLI.
std::string allocation_summary(const TargetPlan& tp);

}  // namespace qforge
