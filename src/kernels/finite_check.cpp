#include "kernels/finite_check.h"

#include <cstddef>
#include <cstring>

#include "core/fp16.h"
#include "kernels/blocks.h"

namespace qforge {
namespace {

// Exponent all ones = Inf or NaN, in each format's bits.
inline bool f16_bad(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u;
}
inline bool bf16_bad(uint16_t b) {
  return (b & 0x7f80u) == 0x7f80u;
}
inline bool f32_bad(uint32_t u) {
  return (u & 0x7f800000u) == 0x7f800000u;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Status bad_value(std::string_view name, const char* what, uint64_t i, float v) {
  return make_error("tensor '", name, "': ", what, " ", i, " is ", v,
                    " (NaN/Inf weights make every logit NaN)");
}

// Scans whole elements of a float type; the loop is a plain bit test so it vectorises.
template <class U, bool (*Bad)(U)>
Status scan_floats(std::string_view name, std::span<const uint8_t> data, float (*to_f32)(U)) {
  const uint64_t n = data.size() / sizeof(U);
  constexpr uint64_t kStep = 4096;
  for (uint64_t b = 0; b < n; b += kStep) {
    const uint64_t e = b + kStep < n ? b + kStep : n;
    bool any = false;
    for (uint64_t i = b; i < e; ++i) any |= Bad(load<U>(data.data() + i * sizeof(U)));
    if (!any) continue;
    for (uint64_t i = b; i < e; ++i) {
      const U u = load<U>(data.data() + i * sizeof(U));
      if (Bad(u)) return bad_value(name, "element", i, to_f32(u));
    }
  }
  return ok_status();
}

float f32_of(uint32_t u) {
  return f32_from_bits(u);
}

// Offsets of the f16 scales inside a block, for the block types qforge knows.
struct ScaleLayout {
  size_t off[2];
  int n;  // 0: unknown layout
  bool f32 = false;
};

ScaleLayout scale_layout(Type t) {
  switch (t) {
    case Type::Q4_0:
      return {{offsetof(block_q4_0, d)}, 1};
    case Type::Q4_1:
      return {{offsetof(block_q4_1, d), offsetof(block_q4_1, m)}, 2};
    case Type::Q5_0:
      return {{offsetof(block_q5_0, d)}, 1};
    case Type::Q5_1:
      return {{offsetof(block_q5_1, d), offsetof(block_q5_1, m)}, 2};
    case Type::Q8_0:
      return {{offsetof(block_q8_0, d)}, 1};
    case Type::Q8_1:
      return {{offsetof(block_q8_1, d), offsetof(block_q8_1, s)}, 2};
    case Type::IQ4_NL:
      return {{offsetof(block_iq4_nl, d)}, 1};
    case Type::Q2_K:
      return {{offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)}, 2};
    case Type::Q3_K:
      return {{offsetof(block_q3_K, d)}, 1};
    case Type::Q4_K:
      return {{offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)}, 2};
    case Type::Q5_K:
      return {{offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)}, 2};
    case Type::Q6_K:
      return {{offsetof(block_q6_K, d)}, 1};
    case Type::IQ4_XS:
      return {{offsetof(block_iq4_xs, d)}, 1};
    case Type::Q8_K:
      return {{offsetof(block_q8_K, d)}, 1, true};
    default:
      return {{0, 0}, 0};
  }
}

Status scan_scales(std::string_view name, Type type, std::span<const uint8_t> data) {
  const ScaleLayout L = scale_layout(type);
  if (L.n == 0) return ok_status();
  const uint64_t bb = type_info(type).block_bytes;
  const uint64_t n_blocks = data.size() / bb;
  for (uint64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk = data.data() + b * bb;
    for (int k = 0; k < L.n; ++k) {
      if (L.f32) {
        const auto u = load<uint32_t>(blk + L.off[k]);
        if (f32_bad(u)) return bad_value(name, "scale of block", b, f32_from_bits(u));
      } else {
        const auto h = load<uint16_t>(blk + L.off[k]);
        if (f16_bad(h)) return bad_value(name, "scale of block", b, fp16_to_f32(h));
      }
    }
  }
  return ok_status();
}

}  // namespace

Status check_finite(std::string_view tensor_name, Type type, std::span<const uint64_t> dims,
                    std::span<const uint8_t> data, FiniteScope scope) {
  const bool floats = scope == FiniteScope::Full || dims.size() <= 1;
  switch (type) {
    case Type::F32:
      return floats ? scan_floats<uint32_t, f32_bad>(tensor_name, data, f32_of) : ok_status();
    case Type::F16:
      return floats ? scan_floats<uint16_t, f16_bad>(tensor_name, data, fp16_to_f32) : ok_status();
    case Type::BF16:
      return floats ? scan_floats<uint16_t, bf16_bad>(tensor_name, data, bf16_to_f32) : ok_status();
    case Type::F64: {
      if (!floats) return ok_status();
      for (uint64_t i = 0; i < data.size() / 8; ++i) {
        const auto u = load<uint64_t>(data.data() + i * 8);
        if ((u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) {
          double d;
          std::memcpy(&d, &u, 8);
          return bad_value(tensor_name, "element", i, static_cast<float>(d));
        }
      }
      return ok_status();
    }
    default:
      return type_info(type).quantized ? scan_scales(tensor_name, type, data) : ok_status();
  }
}

Status check_tensors_finite(const GgufFile& file, FiniteScope scope) {
  for (const auto& t : file.tensors()) {
    Status st = check_finite(t.name, t.type, t.dims, file.tensor_data(t), scope);
    if (!st.ok()) return make_error(file.path(), ": ", st.error().message);
  }
  return ok_status();
}

}  // namespace qforge
