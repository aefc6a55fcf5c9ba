// Issue 11 case 9: NaN/Inf found in float tensors and in the scales of quantized blocks, with
// the tensor and element named; the cheap scope skips float matrices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/codec.h"
#include "kernels/finite_check.h"

namespace qforge {
namespace {

template <class T>
std::span<const uint8_t> bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

TEST(FiniteCheck, FloatTensorsNameTheElement) {
  const std::vector<uint64_t> vec{8}, mat{4, 2};
  std::vector<float> f32(8, 1.0f);
  EXPECT_TRUE(check_finite("n", Type::F32, vec, bytes(f32), FiniteScope::Full).ok());
  f32[5] = std::numeric_limits<float>::quiet_NaN();
  auto st = check_finite("blk.0.attn_norm.weight", Type::F32, vec, bytes(f32), FiniteScope::Cheap);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'blk.0.attn_norm.weight': element 5 is nan"),
            std::string::npos)
      << st.error().message;
  // A float matrix is read by the full check only.
  EXPECT_TRUE(check_finite("w", Type::F32, mat, bytes(f32), FiniteScope::Cheap).ok());
  EXPECT_FALSE(check_finite("w", Type::F32, mat, bytes(f32), FiniteScope::Full).ok());

  std::vector<uint16_t> f16(9000, f32_to_fp16(0.5f)), bf16(9000, f32_to_bf16(0.5f));
  EXPECT_TRUE(check_finite("h", Type::F16, {}, bytes(f16), FiniteScope::Full).ok());
  f16[8500] = 0xfc00;  // -Inf, in the third 4096-element step
  st = check_finite("h", Type::F16, std::vector<uint64_t>{9000}, bytes(f16), FiniteScope::Cheap);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("element 8500 is -inf"), std::string::npos)
      << st.error().message;
  f16[8500] = 0x7bff;  // 65504, the largest finite half: fine
  EXPECT_TRUE(check_finite("h", Type::F16, {}, bytes(f16), FiniteScope::Full).ok());
  bf16[3] = 0x7f81;  // a bf16 NaN
  st = check_finite("b", Type::BF16, std::vector<uint64_t>{9000}, bytes(bf16), FiniteScope::Full);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("element 3 is nan"), std::string::npos) << st.error().message;
}

TEST(FiniteCheck, QuantizedBlocksAreCheckedThroughTheirScales) {
  std::vector<float> w(512);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i));
  for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q6_K, Type::Q2_K}) {
    SCOPED_TRACE(std::string(type_name(t)));
    const Codec* c = find_codec(t);
    ASSERT_TRUE(c && c->quantize);
    std::vector<uint8_t> q(type_info(t).block_bytes * (w.size() / type_info(t).block_size));
    c->quantize(w.data(), q.data(), 2, 256, QuantizeOptions{});
    const std::vector<uint64_t> dims{256, 2};
    EXPECT_TRUE(check_finite("q", t, dims, q, FiniteScope::Cheap).ok());
    // Poison the last block's scale d; decoding shows it is the field that scales the block.
    const size_t last_block = q.size() / type_info(t).block_bytes - 1;
    uint8_t* blk = q.data() + last_block * type_info(t).block_bytes;
    size_t d_off = t == Type::Q6_K   ? offsetof(block_q6_K, d)
                   : t == Type::Q2_K ? offsetof(block_q2_K, d)
                                     : 0;
    const uint16_t nan16 = 0x7e00;
    std::memcpy(blk + d_off, &nan16, 2);
    std::vector<float> back(w.size());
    c->dequantize(q.data(), back.data(), static_cast<int64_t>(w.size()));
    bool decoded_nan = false;
    for (size_t i = w.size() - type_info(t).block_size; i < w.size(); ++i)
      decoded_nan |= std::isnan(back[i]);
    EXPECT_TRUE(decoded_nan) << "the poisoned field is the block scale";
    auto st = check_finite("blk.3.ffn_down.weight", t, dims, q, FiniteScope::Cheap);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("tensor 'blk.3.ffn_down.weight': scale of block " +
                                      std::to_string(last_block) + " is nan"),
              std::string::npos)
        << st.error().message;
  }
}

}  // namespace
}  // namespace qforge
