// llama.cpp's file types (general.file_type, enum llama_ftype): the "mix" a model was
// quantized with. Display names follow llama-quantize ("Q4_K_M"). Ids as of llama.cpp c392e5094:
// 0..3, 7..32, 36, 37 (4..6 and 33..35 were removed upstream and are unknown here).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace qforge {

struct FileTypeInfo {
  uint32_t id;
  std::string_view name;
};

std::span<const FileTypeInfo> all_file_types();
std::optional<std::string_view> file_type_name(uint32_t id);
// Case-insensitive.
std::optional<uint32_t> file_type_from_name(std::string_view name);

}  // namespace qforge
