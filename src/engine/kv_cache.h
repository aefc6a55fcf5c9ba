// The key/value cache of one sequence: for every layer and KV head, the rotated keys and the
// values of positions [0, size()), in f16 (the default, as llama.cpp) or f32. Keys are stored
// transposed, [dim][pos] per head, so attention computes 8-16 query-key scores per vector
// instruction without horizontal sums; values are [pos][dim] per head, so the weighted sum
// streams rows. The position stride is the capacity rounded up to 16 (a vector loop may read,
// and then ignore, up to 15 positions past the end; they hold zeros or stale finite values).
// f16 halves the bytes attention reads per token; values round to nearest even (core/fp16.h),
// so logits move by about 1e-3 relative (measured in tests/engine).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/model.h"

namespace qforge {

enum class KvType { F16, F32 };

// "f16" / "f32" (nullopt for anything else), and back.
std::optional<KvType> parse_kv_type(std::string_view s);
std::string_view kv_type_name(KvType t);

class KvCache {
 public:
  KvCache() = default;
  // Capacity n_ctx positions. Contract: n_ctx > 0.
  KvCache(const ModelParams& p, int64_t n_ctx, KvType type = KvType::F16);

  KvType type() const { return type_; }
  int64_t capacity() const { return n_ctx_; }
  int64_t size() const { return size_; }
  // Positions [0, n) are valid; the caller has written them. Contract: n <= capacity().
  void set_size(int64_t n) { size_ = n; }
  void clear() { size_ = 0; }
  // Distance between dims in the transposed key block (>= capacity, a multiple of 16).
  int64_t key_stride() const { return stride_; }

  // Writes the key and value (head_dim floats each) of one head at a position, converted to
  // the cache's type.
  void store(int64_t layer, int64_t kv_head, int64_t pos, const float* key, const float* value);

  // Transposed keys of one head: element (dim d, position j) at [d * key_stride() + j].
  // keys() for an f32 cache, keys_f16() for an f16 one (the other returns nullptr).
  const float* keys(int64_t layer, int64_t kv_head) const {
    return k_.empty() ? nullptr : k_.data() + block(layer, kv_head);
  }
  const uint16_t* keys_f16(int64_t layer, int64_t kv_head) const {
    return k16_.empty() ? nullptr : k16_.data() + block(layer, kv_head);
  }
  // Value row of one head at a position (head_dim elements), per type as keys().
  const float* value(int64_t layer, int64_t kv_head, int64_t pos) const {
    return v_.empty() ? nullptr : v_.data() + block(layer, kv_head) + pos * head_dim_;
  }
  const uint16_t* value_f16(int64_t layer, int64_t kv_head, int64_t pos) const {
    return v16_.empty() ? nullptr : v16_.data() + block(layer, kv_head) + pos * head_dim_;
  }
  // Memory held by the cache.
  uint64_t bytes() const {
    return (k_.size() + v_.size()) * sizeof(float) + (k16_.size() + v16_.size()) * 2;
  }
  // Bytes a cache of n_ctx positions holds (for memory budgets).
  static uint64_t bytes_for(const ModelParams& p, int64_t n_ctx, KvType type = KvType::F16);

 private:
  size_t block(int64_t layer, int64_t kv_head) const {
    return static_cast<size_t>((layer * n_head_kv_ + kv_head) * stride_ * head_dim_);
  }
  KvType type_ = KvType::F16;
  int64_t n_ctx_ = 0, stride_ = 0, size_ = 0, n_head_kv_ = 0, head_dim_ = 0;
  std::vector<float> k_, v_;         // f32 cache
  std::vector<uint16_t> k16_, v16_;  // f16 cache
};

}  // namespace qforge
