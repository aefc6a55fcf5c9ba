// The ladder's size-targeted variants (issue 14): quantize with every tensor's type allocated for
// a byte budget (quant/size_target.h), and the allocation's report beside the step result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "pipeline/steps.h"
#include "quant/size_target.h"

namespace qforge {

struct TargetStepResult {
  QuantizeStepResult quantize;
  nlohmann::json allocation;  // allocation_to_json without the sensitivity table
};

// Variant name of a budget, e.g. "T17.18MB" (10^6 bytes, two decimals).
std::string target_variant_name(uint64_t budget_bytes);

Result<TargetStepResult> target_quantize_step(const std::string& in, const std::string& out,
                                              uint64_t budget_bytes, const QuantizeStepOptions& o);

// --- measured calibration of the proxy (issue 14: `--calibration TEXT` / `--measure`) ---------
//
// Each measured tensor is quantized alone to `type` (its row fallback, fit_candidate), every
// other tensor left as in the source, with the writer's own encoder (`base`: imatrix,
// covariances, method), into a scratch file; our engine runs it on the first `chunks` chunks
// of the calibration text and the mean KLD against the unquantized model's logits is that
// tensor's measured contribution. The proxy is then fitted to those measurements as
// bench/target_fit.py does: log(kld / error) = a(kind) + b(layer), alternating means, so
// predicted = exp(a) * exp(b) * error (ProxyModel's kind_scale and per-layer depth_factors);
// each measured tensor also gets its own factor kld / error (ProxyModel::tensor_scale), used
// instead of the fit for that tensor (the fit serves the tensors not measured; its
// leave-one-out rank correlation says how well it predicts those).
// Everything runs in-process (library calls; no second binary).
struct ProxyCalibrationOptions {
  std::string text_path;    // calibration text (never the evaluation text)
  int64_t ctx = 512;        // chunk size
  int64_t chunks = 3;       // chunks scored per measurement
  Type type = Type::Q4_K;   // each measured tensor in this type (row fallback applied)
  int64_t max_tensors = 0;  // 0: every table tensor; else about this many, evenly spread
  int threads = 0;
};

struct MeasuredTensor {
  std::string name, kind;
  int layer = -1;
  Type type = Type::F16;
  double error = 0;  // the table's error for that type (the proxy's input)
  double kld = 0;    // measured mean KLD with only this tensor quantized
  double predicted_prior = 0, predicted_fitted = 0, predicted_loo = 0;
};

struct ProxyCalibration {
  ProxyModel model;  // the fit (kinds not measured: the median fitted factor) + tensor_scale
  std::vector<MeasuredTensor> measured;
  double spearman_error = 0;   // raw error vs measured KLD
  double spearman_prior = 0;   // the proxy given in (before the fit) vs measured
  double spearman_fitted = 0;  // the fitted proxy, in sample
  double spearman_loo = 0;     // each tensor predicted by a fit without it
  double base_seconds = 0, seconds = 0;
  int64_t chunks = 0, tokens_scored = 0;
};

// Spearman rank correlation (average ranks for ties); 0 for fewer than 2 points.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// Fits the proxy's factors to `measured` (error, kld, kind, layer); kinds not in it get the
// median fitted factor, n_layer depth factors (layers not measured: their neighbours' mean).
ProxyModel fit_proxy(const std::vector<MeasuredTensor>& measured, int n_layer,
                     const std::string& source);

// Measures, fits and scores the proxy. `model_path` is the source GGUF (`src` reads it), `table`
// its sensitivity table (measure_sensitivity with writer_sensitivity(base, ...)), `prior` the
// proxy it replaces (for the comparison). Errors name the text, the model or the tensor.
Result<ProxyCalibration> calibrate_proxy(const std::string& model_path, TensorSource& src,
                                         const ModelQuantizeOptions& base,
                                         const std::vector<TensorSensitivity>& table,
                                         const ProxyModel& prior, const ProxyCalibrationOptions& o);

// {"spearman_...": ..., "measured": [...], "factors": ..., "depth_factors": ..., "error":
// "absolute"}: also a valid `--proxy FILE` (proxy_model_from_json).
nlohmann::json calibration_to_json(const ProxyCalibration& c);

}  // namespace qforge
