// An observer of the inputs of every weight-matrix multiplication of Context's forward pass
// (for calibration statistics: `qforge imatrix`). Context::mm reports, before multiplying, the
// matrix it multiplies (layer, role, expert) and the n input rows of `cols` floats each.
// Unset (the default) it costs one pointer test per matmul.
#pragma once

#include <cstdint>
#include <string>

namespace qforge {

// Which weight of a layer a matmul uses (model.h's LayerWeights / Model::output()).
enum class MatRole : uint8_t {
  AttnQ,
  AttnK,
  AttnV,
  AttnQkv,  // fused q/k/v (phi3)
  AttnOut,
  FfnGate,
  FfnUp,  // also the fused gate-up of phi3
  FfnDown,
  FfnGateInp,  // MoE router
  FfnGateExps,
  FfnUpExps,
  FfnDownExps,
  Output,  // the output head (output.weight, or token_embd.weight when tied)
};

struct MatmulSite {
  int64_t layer = -1;  // -1 for Output
  MatRole role = MatRole::Output;
  int64_t expert = -1;  // expert index for the *_exps roles, else -1
};

// The GGUF tensor name of a site's weight ("blk.3.attn_q.weight"; the stacked tensor
// "blk.0.ffn_gate_exps.weight" for experts; "output.weight" or, tied, "token_embd.weight").
std::string weight_tensor_name(const MatmulSite& site, bool tied_embeddings);

class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // x: n rows of cols floats (row-major), the exact input the matmul is about to multiply.
  // Called on the thread that runs Context::decode; may use the context's pool.
  virtual void on_matmul(const MatmulSite& site, const float* x, int64_t n, int64_t cols) = 0;
};

}  // namespace qforge
