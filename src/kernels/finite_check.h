// Finiteness of tensor data: a NaN or Inf weight (a corrupt or badly converted file) makes every
// logit NaN, so perplexity reads "inf" and generation emits token 0 forever. The model loader
// runs the cheap check (1-D float tensors: norms and biases; the f16/f32 scales of every block
// of a quantized tensor); `qforge verify --values` runs the full one (every float value too).
// Quantized values are small integers, so a block whose scales are finite decodes to finite
// weights: checking the scales is exact for the quantized types.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"

namespace qforge {

enum class FiniteScope {
  Cheap,  // float tensors only when 1-D (norms, biases); block scales of quantized tensors
  Full,   // every float value; block scales of quantized tensors
};

// Checks `data` (a tensor of `type` with `dims`; data.size() = its byte size) for NaN/Inf.
// The error names the tensor, the element (or block) and the value: "tensor 'x': element 17 is
// nan". Types whose block layout has no scale qforge knows (some IQ types) pass unchecked.
Status check_finite(std::string_view tensor_name, Type type, std::span<const uint64_t> dims,
                    std::span<const uint8_t> data, FiniteScope scope);
// check_finite over every tensor of a parsed file; the error starts with the file's path.
Status check_tensors_finite(const GgufFile& file, FiniteScope scope);

}  // namespace qforge
