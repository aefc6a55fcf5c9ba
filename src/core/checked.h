// Overflow-checked integer arithmetic for every size that comes from a file. These checks stay
// on in release builds.
#pragma once

#include <cstdint>
#include <optional>

namespace qforge {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
// Rounds n up to a multiple of align (a power of two); nullopt on overflow.
inline std::optional<uint64_t> checked_align_up(uint64_t n, uint64_t align) {
  auto s = checked_add(n, align - 1);
  if (!s) return std::nullopt;
  return *s & ~(align - 1);
}
inline bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace qforge
