// The key/value cache of one sequence: for every layer and KV head, the rotated keys and the
// values of positions [0, size()), stored as f32 rows of head_dim. Layout [layer][kv_head][pos]
// keeps one head's keys contiguous, so attention streams them in order.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model.h"

namespace qforge {

class KvCache {
 public:
  KvCache() = default;
  // Capacity n_ctx positions. Contract: n_ctx > 0.
  KvCache(const ModelParams& p, int64_t n_ctx);

  int64_t capacity() const { return n_ctx_; }
  int64_t size() const { return size_; }
  // Positions [0, n) are valid; the caller has written them. Contract: n <= capacity().
  void set_size(int64_t n) { size_ = n; }
  void clear() { size_ = 0; }

  float* key(int64_t layer, int64_t kv_head, int64_t pos) {
    return k_.data() + index(layer, kv_head, pos);
  }
  float* value(int64_t layer, int64_t kv_head, int64_t pos) {
    return v_.data() + index(layer, kv_head, pos);
  }
  const float* key(int64_t layer, int64_t kv_head, int64_t pos) const {
    return k_.data() + index(layer, kv_head, pos);
  }
  const float* value(int64_t layer, int64_t kv_head, int64_t pos) const {
    return v_.data() + index(layer, kv_head, pos);
  }
  // Memory held by the cache.
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }
  // Bytes a cache of n_ctx positions would hold (for memory budgets).
  static uint64_t bytes_for(const ModelParams& p, int64_t n_ctx);

 private:
  size_t index(int64_t layer, int64_t kv_head, int64_t pos) const {
    return static_cast<size_t>(((layer * n_head_kv_ + kv_head) * n_ctx_ + pos) * head_dim_);
  }
  int64_t n_ctx_ = 0, size_ = 0, n_head_kv_ = 0, head_dim_ = 0;
  std::vector<float> k_, v_;
};

}  // namespace qforge
