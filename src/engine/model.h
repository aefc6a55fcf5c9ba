// A llama-family model ready to run: hyper-parameters read from GGUF metadata and every weight
// as a zero-copy view into the memory-mapped file (loading never copies a weight matrix; only
// the tiny norm and bias vectors are decoded to f32). Supported layouts: llama (including
// Mistral-style grouped-query attention), qwen2 (q/k/v biases, NEOX RoPE), and tied embeddings
// (no output.weight: the token embedding doubles as the output projection).
//
// Validation happens at load: an unsupported architecture, a missing tensor, a tensor whose
// shape disagrees with the hyper-parameters, or a weight type without a codec is a one-line
// error that names the file and the tensor or key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"
#include "kernels/codec.h"

namespace qforge {

// How RoPE pairs the dimensions of a head: Normal (llama) rotates adjacent pairs (2i, 2i+1);
// Neox (qwen2) rotates (i, i + n_rot/2).
enum class RopeType { Normal, Neox };

struct ModelParams {
  std::string arch;  // "llama" or "qwen2"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // n_embd / n_head
  int64_t n_rot = 0;     // rotated dimensions per head (<= head_dim)
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  RopeType rope_type = RopeType::Normal;
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// A weight matrix as stored in the file: `rows` output features of `cols` inputs each
// (GGUF dims = {cols, rows}), row_bytes bytes per row, decoded/multiplied through `codec`.
struct WeightView {
  const uint8_t* data = nullptr;
  Type type = Type::F32;
  const Codec* codec = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  uint64_t bytes() const { return row_bytes * static_cast<uint64_t>(rows); }
};

struct LayerWeights {
  std::vector<float> attn_norm;           // n_embd
  WeightView wq, wk, wv, wo;              // q: n_embd x n_embd, k/v: n_embd_kv x n_embd
  std::vector<float> bq, bk, bv;          // biases (qwen2); empty when absent
  std::vector<float> ffn_norm;            // n_embd
  WeightView ffn_gate, ffn_up, ffn_down;  // gate/up: n_ff x n_embd, down: n_embd x n_ff
};

class Model {
 public:
  // Opens (memory-maps) and validates a GGUF model.
  static Result<Model> load(const std::string& path);
  // Validates an already opened file; the Model keeps it alive.
  static Result<Model> from_gguf(std::shared_ptr<const GgufFile> file);

  const ModelParams& params() const { return params_; }
  const GgufFile& file() const { return *file_; }
  std::shared_ptr<const GgufFile> file_ptr() const { return file_; }
  const WeightView& token_embd() const { return tok_embd_; }
  // The output projection: output.weight, or token_embd.weight when tied.
  const WeightView& output() const { return output_; }
  bool tied_embeddings() const { return tied_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }

  // Decodes row `token` of the embedding table into out[0..n_embd). Contract: token < n_vocab.
  void embed(int32_t token, float* out) const;
  // Bytes of all tensor data (what the mapping holds resident when fully touched).
  uint64_t weight_bytes() const { return file_->tensor_data_bytes(); }
  // Parameter count of all tensors.
  uint64_t n_params() const;

 private:
  std::shared_ptr<const GgufFile> file_;
  ModelParams params_;
  WeightView tok_embd_, output_;
  bool tied_ = false;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
};

}  // namespace qforge
