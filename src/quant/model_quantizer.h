// The model quantizer: a transform from a TensorSource (a GGUF file, or an HF checkpoint already
// in GGUF conventions) to a GGUF file, driven by a mix recipe (recipe.h) and the codec table.
//
// plan_quantization() decides every tensor's output type and the exact output size without
// touching tensor data (`--dry-run`). quantize_model() then streams: one tensor at a time, rows
// are converted to f32 in bounded chunks, quantized on a thread pool, decoded again to check
// for NaN/Inf and measure the error, and appended to the atomic GGUF writer; the source pages
// are released after each tensor. Peak memory is the current tensor's source pages plus a few
// MiB of chunk buffers, independent of model size.
//
// Output metadata: every input KV (split keys dropped), then general.quantization_version = 2
// and general.file_type moved to the end (as llama-quantize writes them), then
// quantize.imatrix.{file,dataset,entries_count,chunks_count} when an imatrix is used. Tensors
// are written in llama.cpp's order (llama_tensor_order), so with ggml_compatible the file is
// byte-identical to llama-quantize's when the codecs are.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/types.h"
#include "formats/covariance.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "formats/tensor_source.h"
#include "quant/recipe.h"

namespace qforge {

// How converted tensors are encoded (issue 13). Auto: error feedback (quant/error_feedback.h)
// for tensors with a covariance, the refined search for the others. Ggml: ggml's exact
// encoders (same as ggml_compatible).
enum class QuantMethod { Auto, Refined, ErrorFeedback, Ggml };
std::string_view quant_method_name(QuantMethod m);  // "auto", "refined", "gptq", "ggml"

struct ModelQuantizeOptions {
  std::string mix = "Q4_K_M";  // a name from all_mixes()
  RecipeOptions recipe;        // pure / explicit types (has_imatrix is set from `imatrix`)
  // Exact output type per tensor name (size-targeted allocation, quant/size_target.h), applied
  // after the recipe to the tensors it quantizes; the types must fit the row length.
  std::map<std::string, Type> tensor_type_map;
  std::shared_ptr<const Imatrix> imatrix;  // optional importance weights
  bool allow_requantize = false;           // accept already-quantized input tensors (lossy twice)
  bool ggml_compatible = false;  // codecs reproduce ggml's exact bytes instead of searching more
  bool refine_all =
      false;        // also search scales for Q8_0/Q4_0 without imatrix (not llama.cpp's bytes)
  int threads = 0;  // 0: all hardware threads
  bool overwrite = false;     // replace an existing output (--force)
  bool write_sidecar = true;  // OUT.sha256
  std::string input_sha256;   // logged and reported when the caller computed it
  // Error feedback: the input covariances (FILE.cov beside the imatrix), the method, the
  // damping (fraction of mean(diag H) added to the diagonal) and the scale-search importance.
  std::shared_ptr<const CovarianceFile> covariance;
  QuantMethod method = QuantMethod::Auto;
  double gptq_damp = 0.3;  // measured: docs/BENCHMARKS.md (error feedback)
  // The damping of Q3_K tensors. 0.3 like the rest: 1.0 lowered refmodel Q3_K_M's KLD on the
  // calibration split by 4 % but did not carry over to mini's split (BENCHMARKS.md).
  double gptq_damp_q3_k = 0.3;
  bool gptq_inv_chol_importance = false;
  // Local search after the column pass (ErrorFeedbackOptions: rounds of code descent and
  // header-scale re-fit; 0 = off) and the damping of its objective. Measured: BENCHMARKS.md.
  int gptq_search_rounds = 1;
  double gptq_search_damp = 1.0;
  int gptq_column_passes = 1;  // ErrorFeedbackOptions::column_passes
  int gptq_joint_window = 2;   // ErrorFeedbackOptions::joint_window (measured: BENCHMARKS.md)
};

struct PlannedTensor {
  std::string name;
  std::vector<uint64_t> dims;
  size_t source_index = 0;  // index in the source's tensors()
  Type src_type = Type::F32;
  Type dst_type = Type::F32;
  uint64_t src_bytes = 0;
  uint64_t dst_bytes = 0;
  bool convert = false;     // re-encoded (else the source bytes are copied)
  bool fallback = false;    // the recipe fell back for the row length
  bool overridden = false;  // an explicit user option chose the type
  bool uses_imatrix = false;
  bool error_feedback = false;  // encoded by error feedback (a covariance covers it)
};

struct QuantizePlan {
  const Mix* mix = nullptr;
  std::vector<PlannedTensor> tensors;  // in output order
  std::vector<GgufKv> kvs;             // output metadata, in order
  uint32_t alignment = 32;
  uint64_t input_tensor_bytes = 0;
  uint64_t output_tensor_bytes = 0;   // sum of tensor sizes, no padding
  uint64_t output_file_bytes = 0;     // exact size of the GGUF that will be written
  uint64_t max_tensor_f32_bytes = 0;  // the largest tensor as f32 (the memory bound's unit)
};

// How tensor `t` is encoded under `o`: "copy", "refined", "ggml" or "gptq".
std::string_view tensor_method(const PlannedTensor& t, const ModelQuantizeOptions& o);

// Decides types and sizes. Errors (no output is created): unknown mix, a codec missing for a
// needed type, already-quantized input without allow_requantize, an imatrix entry whose size
// does not match its tensor, bad dims.
Result<QuantizePlan> plan_quantization(const TensorSource& src, const ModelQuantizeOptions& opts);

struct TensorReport {
  std::string name;
  Type src_type = Type::F32, dst_type = Type::F32;
  uint64_t src_bytes = 0, dst_bytes = 0;
  double rel_rmse = 0;  // sqrt(sum (y-x)^2 / sum x^2) over the tensor; 0 when copied
  double seconds = 0;
  // Error feedback only: tr((W-Q)H(W-Q)ᵀ) of the written tensor and of the refined search,
  // and the rows where the refined encoding was kept (quant/error_feedback.h).
  std::string method;  // "copy", "refined", "ggml" or "gptq"
  double hessian_error = 0, hessian_error_refined = 0;
  int64_t rows_refined = 0;
};

struct QuantizeReport {
  QuantizePlan plan;
  std::string input;  // source description
  std::string output_path;
  std::string input_sha256;   // as passed in the options (may be empty)
  std::string output_sha256;  // of the written file
  int threads = 1;
  double seconds = 0;  // streaming time (planning excluded)
  std::vector<TensorReport> tensors;
};

// Plans and writes `out_path` atomically. Any error (NaN/Inf in an input tensor or produced by
// a codec, I/O error, disk full, ...) names the file and tensor and leaves no output behind.
Result<QuantizeReport> quantize_model(TensorSource& src, const std::string& out_path,
                                      const ModelQuantizeOptions& opts);

nlohmann::json plan_to_json(const QuantizePlan& plan);
nlohmann::json report_to_json(const QuantizeReport& report);

}  // namespace qforge
