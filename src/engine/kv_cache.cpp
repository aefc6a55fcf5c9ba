#include "engine/kv_cache.h"

namespace qforge {

namespace {
int64_t padded(int64_t n_ctx) {
  return (n_ctx + 15) / 16 * 16;
}
}  // namespace

KvCache::KvCache(const ModelParams& p, int64_t n_ctx)
    : n_ctx_(n_ctx), stride_(padded(n_ctx)), n_head_kv_(p.n_head_kv), head_dim_(p.head_dim) {
  const auto n = static_cast<size_t>(p.n_layer * p.n_head_kv * stride_ * p.head_dim);
  k_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

uint64_t KvCache::bytes_for(const ModelParams& p, int64_t n_ctx) {
  return 2ull * sizeof(float) *
         static_cast<uint64_t>(p.n_layer * p.n_head_kv * padded(n_ctx) * p.head_dim);
}

}  // namespace qforge
