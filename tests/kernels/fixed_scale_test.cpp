// Fixed-scale helpers (kernels/fixed_scale.h): set_code writes exactly the quant bits the
// codec's decoder reads, block_grid reproduces the decoder's per-element grid, and rounding
// picks the nearest grid value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "core/types.h"
#include "kernels/blocks.h"
#include "kernels/codec.h"
#include "kernels/fixed_scale.h"

namespace qforge {
namespace {

const Type kTypes[] = {Type::Q4_0,   Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q8_0, Type::IQ4_NL,
                       Type::IQ4_XS, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};

TEST(FixedScale, EveryTypeHasHelpersOfTheCodecsBlockSize) {
  for (Type t : kTypes) {
    const FixedScaleCodec* fc = find_fixed_scale_codec(t);
    ASSERT_NE(fc, nullptr) << type_name(t);
    EXPECT_EQ(static_cast<uint32_t>(fc->block), type_info(t).block_size) << type_name(t);
    EXPECT_EQ(fc->block_bytes, type_info(t).block_bytes) << type_name(t);
  }
  EXPECT_EQ(find_fixed_scale_codec(Type::F16), nullptr);
}

TEST(FixedScale, SetCodeMatchesTheDecoderOnRandomCodes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Type t : kTypes) {
    const FixedScaleCodec& fc = *find_fixed_scale_codec(t);
    const Codec& codec = reference_codecs()[static_cast<size_t>(t)];
    std::vector<float> x(static_cast<size_t>(fc.block)), y(x.size()), step(x.size()), off(x.size());
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> blk(fc.block_bytes), scratch(fc.block_bytes);
    QuantizeOptions qo;
    codec.quantize(x.data(), blk.data(), 1, fc.block, qo);
    // The encoder's own quants decode to grid values.
    codec.dequantize(blk.data(), y.data(), fc.block);
    block_grid(fc, blk.data(), step.data(), off.data(), scratch.data());
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<int> code(x.size());
      std::uniform_int_distribution<int> cd(fc.code_min, fc.code_max);
      for (auto& c : code) c = cd(rng);
      for (int i = 0; i < fc.block; ++i) fc.set_code(blk.data(), i, code[static_cast<size_t>(i)]);
      codec.dequantize(blk.data(), y.data(), fc.block);
      for (int i = 0; i < fc.block; ++i) {
        const size_t k = static_cast<size_t>(i);
        const float expect = fc.table ? step[k] * static_cast<float>(kIq4nlValues[code[k]])
                                      : step[k] * static_cast<float>(code[k]) + off[k];
        ASSERT_NEAR(y[k], expect, 1e-5f * (1.f + std::fabs(y[k])))
            << type_name(t) << " element " << i << " code " << code[k];
      }
    }
  }
}

// The header basis reproduces the decoder (y = d a + dmin b), and the sub-block scale
// accessors read back what they write, touch only their sub-block's decoded values and restore
// the exact bytes.
TEST(FixedScale, HeaderBasisAndSubScalesMatchTheDecoder) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Type t : kTypes) {
    const FixedScaleCodec& fc = *find_fixed_scale_codec(t);
    const Codec& codec = reference_codecs()[static_cast<size_t>(t)];
    const size_t nb = static_cast<size_t>(fc.block);
    std::vector<float> x(nb), y(nb), y2(nb), a(nb), b(nb);
    for (auto& v : x) v = nd(rng) + 0.3f;
    std::vector<uint8_t> blk(fc.block_bytes), orig, scratch(fc.block_bytes);
    codec.quantize(x.data(), blk.data(), 1, fc.block, QuantizeOptions{});
    codec.dequantize(blk.data(), y.data(), fc.block);
    ASSERT_GE(fc.d_offset, 0) << type_name(t);
    header_basis(fc, blk.data(), a.data(), b.data(), scratch.data());
    uint16_t hd, hm = 0;
    std::memcpy(&hd, blk.data() + fc.d_offset, 2);
    if (fc.dmin_offset >= 0) std::memcpy(&hm, blk.data() + fc.dmin_offset, 2);
    for (size_t i = 0; i < nb; ++i)
      ASSERT_NEAR(y[i], fp16_to_f32(hd) * a[i] + fp16_to_f32(hm) * b[i],
                  1e-5f * (1 + std::fabs(y[i])))
          << type_name(t) << " element " << i;
    orig = blk;
    for (int sb = 0; sb < fc.n_sub; ++sb) {
      int sc, m;
      fc.get_sub(blk.data(), sb, &sc, &m);
      ASSERT_GE(sc, fc.sc_min) << type_name(t);
      ASSERT_LE(sc, fc.sc_max) << type_name(t);
      std::uniform_int_distribution<int> sd(fc.sc_min, fc.sc_max), md(0, fc.m_max);
      const int nsc = sd(rng), nm = fc.has_min ? md(rng) : 0;
      fc.set_sub(blk.data(), sb, nsc, nm);
      int rsc, rm;
      fc.get_sub(blk.data(), sb, &rsc, &rm);
      EXPECT_EQ(rsc, nsc) << type_name(t) << " sub " << sb;
      if (fc.has_min) {
        EXPECT_EQ(rm, nm) << type_name(t) << " sub " << sb;
      }
      codec.dequantize(blk.data(), y2.data(), fc.block);
      for (int i = 0; i < fc.block; ++i)
        if (i / fc.sub_size != sb) {
          ASSERT_EQ(y2[static_cast<size_t>(i)], y[static_cast<size_t>(i)])
              << type_name(t) << " sub " << sb << " element " << i;
        }
      fc.set_sub(blk.data(), sb, sc, m);
      ASSERT_EQ(blk, orig) << type_name(t) << " sub " << sb;
    }
  }
}

TEST(FixedScale, RoundsToTheNearestGridValue) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Type t : kTypes) {
    const FixedScaleCodec& fc = *find_fixed_scale_codec(t);
    const Codec& codec = reference_codecs()[static_cast<size_t>(t)];
    std::vector<float> x(static_cast<size_t>(fc.block)), y(x.size()), step(x.size()), off(x.size());
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> blk(fc.block_bytes), scratch(fc.block_bytes);
    codec.quantize(x.data(), blk.data(), 1, fc.block, QuantizeOptions{});
    block_grid(fc, blk.data(), step.data(), off.data(), scratch.data());
    for (int i = 0; i < fc.block; ++i) {
      const size_t k = static_cast<size_t>(i);
      const float probe = x[k] + 0.3f * nd(rng);
      float yq;
      const int c = round_to_grid(fc, step[k], off[k], probe, &yq);
      ASSERT_GE(c, fc.code_min);
      ASSERT_LE(c, fc.code_max);
      for (int other = fc.code_min; other <= fc.code_max; ++other) {
        const float v = fc.table ? step[k] * static_cast<float>(kIq4nlValues[other])
                                 : step[k] * static_cast<float>(other) + off[k];
        ASSERT_LE(std::fabs(yq - probe), std::fabs(v - probe) + 1e-5f)
            << type_name(t) << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace qforge
