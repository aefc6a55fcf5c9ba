// A Hugging Face checkpoint folder (config.json, safetensors, tokenizer files) as a TensorSource
// in GGUF conventions (ENGINEERING.md §5), driven by the architecture descriptor
// (formats/model_family.h): tensors renamed by the family's TensorRules (token_embd,
// blk.N.attn_q, ...), dims reversed to ggml order, Q/K weights (and biases) of llama-family
// models permuted from the HF rotate-half layout to interleaved pairs, per-expert tensors stacked
// into 3-D blk.N.ffn_{gate,up,down}_exps, Gemma norms written as 1 + w (computed in f32), fused
// Phi-3 attn_qkv / ffn_up kept fused, routers / 1-D tensors (norms, biases) as F32 and matrices
// in the output type. Generated tensors come first: rope_freqs.weight (Llama-3 rope scaling,
// float32 arithmetic as llama.cpp computes it) and rope_factors_long/short.weight (longrope).
// Gemma-3's embedding keeps only the rows the tokenizer defines (as llama.cpp trims it).
// KVs: general.architecture, general.name, the family's hyper-parameter KVs (write_hparams),
// general.file_type, then tokenizer.ggml.*.
//
// Streaming: data(i) converts one tensor from the mapped safetensors into a buffer of its
// output size (zero-copy when no conversion or permutation is needed); release(i) drops that
// buffer and the tensor's mapped pages. Peak memory is therefore about one tensor's source
// pages plus its output, independent of model size.
//
// Everything is validated when the source is opened, before any output exists: every tensor
// the architecture needs is present with the shape config.json implies, dtypes are F32, F16 or
// BF16, and no unexpected tensor is left over. Errors name the file and tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "formats/tensor_source.h"

namespace qforge {

enum class OutType { F32, F16, BF16, Auto };
// "f32" | "f16" | "bf16" | "auto" (case-insensitive).
std::optional<OutType> outtype_from_name(std::string_view name);

struct HfSourceOptions {
  // Type of the matrices. Auto: BF16 for a bf16 checkpoint (bits kept exactly), F16 otherwise
  // (decided by the embedding's dtype).
  OutType outtype = OutType::F16;
  std::string name;  // general.name; empty: the folder's name
  // false: no tokenizer.ggml.* KVs (tensor / hyper-parameter conversion only; tests use it to
  // check the weights of checkpoints independently of their tokenizer).
  bool tokenizer = true;
};

class HfTensorSource : public TensorSource {
 public:
  static Result<std::unique_ptr<HfTensorSource>> open(const std::string& dir,
                                                      const HfSourceOptions& opts = {});

  const std::vector<GgufKv>& kvs() const override { return kvs_; }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  Result<std::span<const uint8_t>> data(size_t i) override;
  void release(size_t i) override;
  std::string describe() const override { return dir_; }

  const HfConfig& config() const { return cfg_; }
  // The matrices' output type (outtype with Auto resolved).
  Type matrix_type() const { return matrix_type_; }
  // general.file_type written: 0 (F32), 1 (F16) or 32 (BF16).
  uint32_t file_type() const;
  // Bytes of the largest tensor as F32 (the unit of the memory bound).
  uint64_t max_tensor_f32_bytes() const;
  // Name in the checkpoint and file of tensor i (for messages).
  const std::string& hf_name(size_t i) const;

 private:
  struct Slot {
    std::vector<size_t> st;        // indices into ckpt_.tensors() (several: stacked experts)
    uint64_t permute_heads = 0;    // > 0: permute rows in this many heads
    bool plus_one = false;         // write 1 + w
    uint64_t keep_bytes = 0;       // > 0: only this prefix of the source (trimmed rows)
    bool force_f32 = false;        // kept F32 whatever the output type (routers)
    std::vector<float> generated;  // a generated tensor (st empty)
  };
  struct Key {
    explicit Key() = default;
  };

 public:
  explicit HfTensorSource(Key) {}

 private:
  Status plan(const HfSourceOptions& opts);
  Status plan_tensors();
  void add_generated(std::string name, std::vector<float> values);
  Result<std::span<const uint8_t>> convert_part(const SafetensorsTensor& st, const Slot& slot,
                                                Type out_type, uint8_t* dst);

  std::string dir_;
  HfConfig cfg_;
  SafetensorsCheckpoint ckpt_;
  Type matrix_type_ = Type::F16;
  std::vector<GgufKv> kvs_;
  std::vector<SourceTensor> tensors_;
  std::vector<Slot> slots_;
  std::vector<uint8_t> buf_;
};

}  // namespace qforge
