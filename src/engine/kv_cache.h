// The key/value cache of one sequence: for every layer and KV head, the rotated keys and the
// values of positions [0, size()), in f32. Keys are stored transposed, [dim][pos] per head, so
// attention computes 8-16 query-key scores per vector instruction without horizontal sums;
// values are [pos][dim] per head, so the weighted sum streams rows. The position stride is the
// capacity rounded up to 16 (a vector loop may read, and then ignore, up to 15 positions past
// the end; they hold zeros or stale finite values).
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
  // Distance between dims in the transposed key block (>= capacity, a multiple of 16).
  int64_t key_stride() const { return stride_; }

  // Transposed keys of one head: element (dim d, position j) at [d * key_stride() + j].
  float* keys(int64_t layer, int64_t kv_head) { return k_.data() + block(layer, kv_head); }
  const float* keys(int64_t layer, int64_t kv_head) const {
    return k_.data() + block(layer, kv_head);
  }
  // Value row of one head at a position (head_dim floats).
  float* value(int64_t layer, int64_t kv_head, int64_t pos) {
    return v_.data() + block(layer, kv_head) + pos * head_dim_;
  }
  const float* value(int64_t layer, int64_t kv_head, int64_t pos) const {
    return v_.data() + block(layer, kv_head) + pos * head_dim_;
  }
  // Memory held by the cache.
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }
  // Bytes a cache of n_ctx positions holds (for memory budgets).
  static uint64_t bytes_for(const ModelParams& p, int64_t n_ctx);

 private:
  size_t block(int64_t layer, int64_t kv_head) const {
    return static_cast<size_t>((layer * n_head_kv_ + kv_head) * stride_ * head_dim_);
  }
  int64_t n_ctx_ = 0, stride_ = 0, size_ = 0, n_head_kv_ = 0, head_dim_ = 0;
  std::vector<float> k_, v_;
};

}  // namespace qforge
