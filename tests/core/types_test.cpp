#include <gtest/gtest.h>

#include <cmath>

#include "core/fp16.h"
#include "core/types.h"

namespace qforge {

TEST(Types, TableIsConsistent) {
  EXPECT_EQ(all_types().size(), 29u);
  for (const auto& t : all_types()) {
    EXPECT_EQ(&type_info(t.type), &t);
    EXPECT_EQ(type_from_name(t.name), t.type);
    EXPECT_GT(t.block_size, 0u);
  }
  EXPECT_EQ(find_type_info(999), nullptr);
  EXPECT_EQ(find_type_info(4), nullptr);
  EXPECT_EQ(type_info(Type::Q4_K).block_bytes, 144u);
  EXPECT_EQ(type_from_name("q4_k"), Type::Q4_K);
  EXPECT_FALSE(type_from_name("Q4_K_M").has_value());
}

TEST(Types, RowSizeChecksBlocks) {
  EXPECT_EQ(*row_size(Type::Q8_0, 64), 68u);
  EXPECT_FALSE(row_size(Type::Q4_K, 100).ok());
  uint64_t dims[] = {256, 1ull << 62};
  EXPECT_FALSE(tensor_size(Type::F32, dims).ok());
}

TEST(Fp16, ExhaustiveRoundTripAndRne) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_f32(static_cast<uint16_t>(h));
    uint16_t back = f32_to_fp16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(back)));
    } else {
      ASSERT_EQ(back, h) << h;
    }
  }
  // Halfway between 1.0 and the next half (1 + 2^-10): ties to even (1.0).
  EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f), f32_to_fp16(1.0f));
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);  // overflow to Inf
  EXPECT_EQ(f32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

}  // namespace qforge
