// A Hugging Face checkpoint folder (config.json, safetensors, tokenizer files) as a TensorSource
// in GGUF conventions (ENGINEERING.md §5): tensors renamed (token_embd, blk.N.attn_q, ...),
// dims reversed to ggml order, Q/K weights (and biases) of llama-family models permuted from
// the HF rotate-half layout to interleaved pairs (qwen2 keeps NEOX order), 1-D tensors (norms,
// biases) as F32 and matrices in the output type. KVs are those of the reference conversions,
// in llama.cpp's order: general.architecture, general.name, the architecture's hyperparameters,
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
    size_t st = 0;               // index into ckpt_.tensors()
    uint64_t permute_heads = 0;  // > 0: permute rows in this many heads
  };
  struct Key {
    explicit Key() = default;
  };

 public:
  explicit HfTensorSource(Key) {}

 private:
  Status plan(const HfSourceOptions& opts);

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
