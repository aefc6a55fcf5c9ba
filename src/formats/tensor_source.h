// A model as a stream of tensors in GGUF conventions (names, dims, types, metadata KVs), read
// one tensor at a time. `formats` offers two sources — a GGUF file (GgufTensorSource) and a
// Hugging Face checkpoint already renamed/permuted to GGUF conventions (hf_source.h) — and the
// GGUF sink (GgufWriter). convert, quantize and convert --quantize are wirings of these parts
// with the model quantizer (quant/); no step holds the whole model in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"

namespace qforge {

struct SourceTensor {
  std::string name;
  std::vector<uint64_t> dims;  // dims[0] = row length
  Type type = Type::F32;       // type of the bytes data() returns
  uint64_t size = 0;           // bytes
  uint64_t n_elements() const {
    uint64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::vector<GgufKv>& kvs() const = 0;
  virtual const std::vector<SourceTensor>& tensors() const = 0;
  // The bytes of tensor i (size tensors()[i].size, in tensors()[i].type). Valid until the next
  // data() or release() call on this source. Errors name the file and tensor.
  virtual Result<std::span<const uint8_t>> data(size_t i) = 0;
  // The caller is done with tensor i: drop its pages / buffers.
  virtual void release(size_t i) { (void)i; }
  // For messages: the file or folder the tensors come from.
  virtual std::string describe() const = 0;

  const GgufValue* find_kv(std::string_view key) const {
    for (const auto& [k, v] : kvs())
      if (k == key) return &v;
    return nullptr;
  }
};

// Tensors of a GGUF file, zero-copy from its mapping.
class GgufTensorSource : public TensorSource {
 public:
  explicit GgufTensorSource(std::shared_ptr<const GgufFile> file);
  const std::vector<GgufKv>& kvs() const override { return file_->kvs(); }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  Result<std::span<const uint8_t>> data(size_t i) override;
  void release(size_t i) override;
  std::string describe() const override { return file_->path(); }
  const GgufFile& file() const { return *file_; }

 private:
  std::shared_ptr<const GgufFile> file_;
  std::vector<SourceTensor> tensors_;
};

}  // namespace qforge
