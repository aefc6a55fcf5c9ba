// The one type-trait table: every GGUF tensor type id with its name, block size and bytes per
// block. Every place that needs block geometry asks this table instead of switching on types.
// The codec table in kernels/ (encode/decode/dot per type) is indexed by the same Type.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace qforge {

enum class Type : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
};

struct TypeInfo {
  Type type;
  std::string_view name;  // ggml's name, e.g. "q4_K" is spelled "Q4_K" here (upper case)
  uint32_t block_size;    // weights per block
  uint32_t block_bytes;   // bytes per block
  bool quantized;         // a block format (not a plain scalar type)
  bool codec;             // qforge can encode and decode it (kernels/ has a codec)
};

// All known types, in id order.
std::span<const TypeInfo> all_types();
// nullptr when the id is not a known GGUF type (e.g. 999 or the removed ids 4, 5, 31..).
const TypeInfo* find_type_info(uint32_t id);
// Contract: t is a valid enumerator.
const TypeInfo& type_info(Type t);
inline std::string_view type_name(Type t) { return type_info(t).name; }
// Case-insensitive lookup by name ("q4_k", "Q8_0", "bf16").
std::optional<Type> type_from_name(std::string_view name);

// Bytes of a row of n weights of type t; error if n is not a multiple of the block size or the
// size overflows.
Result<uint64_t> row_size(Type t, uint64_t n);
// Bytes of a tensor with the given dims (dims[0] = row length); error as row_size, and on
// overflow of the product.
Result<uint64_t> tensor_size(Type t, std::span<const uint64_t> dims);
// Bits per weight of a type (block_bytes*8/block_size).
inline double bits_per_weight(Type t) {
  const auto& ti = type_info(t);
  return 8.0 * ti.block_bytes / ti.block_size;
}

}  // namespace qforge
