#include "engine/kv_cache.h"

#include <cstring>

#include "core/fp16.h"

namespace qforge {

namespace {
int64_t padded(int64_t n_ctx) {
  return (n_ctx + 15) / 16 * 16;
}
}  // namespace

std::optional<KvType> parse_kv_type(std::string_view s) {
  if (s == "f16") return KvType::F16;
  if (s == "f32") return KvType::F32;
  return std::nullopt;
}

std::string_view kv_type_name(KvType t) {
  return t == KvType::F16 ? "f16" : "f32";
}

KvCache::KvCache(const ModelParams& p, int64_t n_ctx, KvType type)
    : type_(type),
      n_ctx_(n_ctx),
      stride_(padded(n_ctx)),
      n_head_kv_(p.n_head_kv),
      head_dim_(p.head_dim) {
  const auto n = static_cast<size_t>(p.n_layer * p.n_head_kv * stride_ * p.head_dim);
  if (type == KvType::F16) {
    k16_.assign(n, 0);
    v16_.assign(n, 0);
  } else {
    k_.assign(n, 0.0f);
    v_.assign(n, 0.0f);
  }
}

void KvCache::store(int64_t layer, int64_t kv_head, int64_t pos, const float* key,
                    const float* value) {
  const size_t b = block(layer, kv_head);
  const size_t vrow = b + static_cast<size_t>(pos * head_dim_);
  if (type_ == KvType::F16) {
    for (int64_t d = 0; d < head_dim_; ++d) {
      k16_[b + static_cast<size_t>(d * stride_ + pos)] = f32_to_fp16(key[d]);
      v16_[vrow + static_cast<size_t>(d)] = f32_to_fp16(value[d]);
    }
    return;
  }
  for (int64_t d = 0; d < head_dim_; ++d) k_[b + static_cast<size_t>(d * stride_ + pos)] = key[d];
  std::memcpy(v_.data() + vrow, value, sizeof(float) * static_cast<size_t>(head_dim_));
}

uint64_t KvCache::bytes_for(const ModelParams& p, int64_t n_ctx, KvType type) {
  const uint64_t elem = type == KvType::F16 ? 2 : sizeof(float);
  return 2ull * elem * static_cast<uint64_t>(p.n_layer * p.n_head_kv * padded(n_ctx) * p.head_dim);
}

}  // namespace qforge
