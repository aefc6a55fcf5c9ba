#include "core/types.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/checked.h"

namespace qforge {
namespace {

// id, name, block size, bytes per block, quantized, codec (set true for what kernels/ encodes
// and decodes; see kernels/codec.cpp, which is checked against this column by a test).
constexpr std::array<TypeInfo, 29> kTypes = {{
    {Type::F32, "F32", 1, 4, false, true},
    {Type::F16, "F16", 1, 2, false, true},
    {Type::Q4_0, "Q4_0", 32, 18, true, true},
    {Type::Q4_1, "Q4_1", 32, 20, true, true},
    {Type::Q5_0, "Q5_0", 32, 22, true, true},
    {Type::Q5_1, "Q5_1", 32, 24, true, true},
    {Type::Q8_0, "Q8_0", 32, 34, true, true},
    {Type::Q8_1, "Q8_1", 32, 36, true, false},
    {Type::Q2_K, "Q2_K", 256, 84, true, true},
    {Type::Q3_K, "Q3_K", 256, 110, true, true},
    {Type::Q4_K, "Q4_K", 256, 144, true, true},
    {Type::Q5_K, "Q5_K", 256, 176, true, true},
    {Type::Q6_K, "Q6_K", 256, 210, true, true},
    {Type::Q8_K, "Q8_K", 256, 292, true, true},
    {Type::IQ2_XXS, "IQ2_XXS", 256, 66, true, false},
    {Type::IQ2_XS, "IQ2_XS", 256, 74, true, false},
    {Type::IQ3_XXS, "IQ3_XXS", 256, 98, true, false},
    {Type::IQ1_S, "IQ1_S", 256, 50, true, false},
    {Type::IQ4_NL, "IQ4_NL", 32, 18, true, true},
    {Type::IQ3_S, "IQ3_S", 256, 110, true, false},
    {Type::IQ2_S, "IQ2_S", 256, 82, true, false},
    {Type::IQ4_XS, "IQ4_XS", 256, 136, true, true},
    {Type::I8, "I8", 1, 1, false, false},
    {Type::I16, "I16", 1, 2, false, false},
    {Type::I32, "I32", 1, 4, false, false},
    {Type::I64, "I64", 1, 8, false, false},
    {Type::F64, "F64", 1, 8, false, false},
    {Type::IQ1_M, "IQ1_M", 256, 56, true, false},
    {Type::BF16, "BF16", 1, 2, false, true},
}};

}  // namespace

std::span<const TypeInfo> all_types() { return kTypes; }

const TypeInfo* find_type_info(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeInfo& type_info(Type t) {
  const TypeInfo* ti = find_type_info(static_cast<uint32_t>(t));
  return ti ? *ti : kTypes[0];
}

std::optional<Type> type_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    bool eq = std::equal(t.name.begin(), t.name.end(), name.begin(), [](char a, char b) {
      return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
    });
    if (eq) return t.type;
  }
  return std::nullopt;
}

Result<uint64_t> row_size(Type t, uint64_t n) {
  const auto& ti = type_info(t);
  if (n % ti.block_size != 0)
    return make_error("row length ", n, " is not a multiple of ", ti.name, "'s block size ",
                      ti.block_size);
  auto r = checked_mul(n / ti.block_size, ti.block_bytes);
  if (!r) return make_error("row size overflows (", n, " x ", ti.name, ")");
  return *r;
}

Result<uint64_t> tensor_size(Type t, std::span<const uint64_t> dims) {
  if (dims.empty()) return make_error("tensor has no dimensions");
  QF_TRY(uint64_t bytes, row_size(t, dims[0]));
  for (size_t i = 1; i < dims.size(); ++i) {
    auto r = checked_mul(bytes, dims[i]);
    if (!r) return make_error("tensor size overflows");
    bytes = *r;
  }
  return bytes;
}

}  // namespace qforge
