#include "kernels/fixed_scale.h"

#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/codec.h"

namespace qforge {
namespace {

inline void put_bits(uint8_t& byte, int shift, int width, int value) {
  const auto mask = static_cast<uint8_t>(((1u << width) - 1u) << shift);
  byte = static_cast<uint8_t>((byte & ~mask) | ((static_cast<unsigned>(value) << shift) & mask));
}

// 32-blocks: byte j holds element j (low nibble) and element j + 16 (high nibble).
inline void put_nibble32(uint8_t* qs, int i, int v) {
  put_bits(qs[i & 15], i < 16 ? 0 : 4, 4, v);
}

template <class B, size_t kQs>
void set_nibble32(uint8_t* blk, int i, int code) {
  put_nibble32(blk + kQs, i, code);
}
template <size_t kQh, size_t kQs>
void set_q5(uint8_t* blk, int i, int code) {
  put_nibble32(blk + kQs, i, code & 15);
  put_bits(blk[kQh + i / 8], i % 8, 1, code >> 4);
}
void set_q8_0(uint8_t* blk, int i, int code) {
  blk[offsetof(block_q8_0, qs) + i] = static_cast<uint8_t>(static_cast<int8_t>(code - 128));
}
void set_iq4_xs(uint8_t* blk, int i, int code) {
  const int ib = i / 32, j = i % 32;
  put_bits(blk[offsetof(block_iq4_xs, qs) + 16 * ib + (j & 15)], j < 16 ? 0 : 4, 4, code);
}
// K-quant 2-bit planes: element 128*h + 32*g + l in byte 32*h + l at bit 2*g.
inline void put_2bit(uint8_t* qs, int k, int v) {
  const int h = k / 128, g = (k % 128) / 32, l = k % 32;
  put_bits(qs[32 * h + l], 2 * g, 2, v);
}
void set_q2_K(uint8_t* blk, int k, int code) {
  put_2bit(blk + offsetof(block_q2_K, qs), k, code);
}
void set_q3_K(uint8_t* blk, int k, int code) {  // code = q + 4 in 0..7
  put_2bit(blk + offsetof(block_q3_K, qs), k, code & 3);
  put_bits(blk[offsetof(block_q3_K, hmask) + k % 32], k / 32, 1, code >> 2);
}
// Q4_K/Q5_K nibbles: element 64*p + l (l < 32) low nibble of byte 32*p + l, 64*p + 32 + l high.
inline void put_nibble_k(uint8_t* qs, int k, int v) {
  const int p = k / 64, r = k % 64;
  put_bits(qs[32 * p + (r & 31)], r < 32 ? 0 : 4, 4, v);
}
void set_q4_K(uint8_t* blk, int k, int code) {
  put_nibble_k(blk + offsetof(block_q4_K, qs), k, code);
}
void set_q5_K(uint8_t* blk, int k, int code) {
  put_nibble_k(blk + offsetof(block_q5_K, qs), k, code & 15);
  const int p = k / 64, r = k % 64;
  put_bits(blk[offsetof(block_q5_K, qh) + (r & 31)], 2 * p + (r < 32 ? 0 : 1), 1, code >> 4);
}
void set_q6_K(uint8_t* blk, int k, int code) {  // code = q + 32 in 0..63
  const int h = k / 128, g = (k % 128) / 32, l = k % 32;
  put_bits(blk[offsetof(block_q6_K, ql) + 64 * h + l + 32 * (g & 1)], g < 2 ? 0 : 4, 4, code & 15);
  put_bits(blk[offsetof(block_q6_K, qh) + 32 * h + l], 2 * g, 2, code >> 4);
}

const FixedScaleCodec kCodecs[] = {
    {Type::Q4_0, QK4_0, sizeof(block_q4_0), 0, 15, false,
     set_nibble32<block_q4_0, offsetof(block_q4_0, qs)>},
    {Type::Q4_1, QK4_1, sizeof(block_q4_1), 0, 15, false,
     set_nibble32<block_q4_1, offsetof(block_q4_1, qs)>},
    {Type::Q5_0, QK5_0, sizeof(block_q5_0), 0, 31, false,
     set_q5<offsetof(block_q5_0, qh), offsetof(block_q5_0, qs)>},
    {Type::Q5_1, QK5_1, sizeof(block_q5_1), 0, 31, false,
     set_q5<offsetof(block_q5_1, qh), offsetof(block_q5_1, qs)>},
    {Type::Q8_0, QK8_0, sizeof(block_q8_0), 1, 255, false, set_q8_0},
    {Type::IQ4_NL, QK4_NL, sizeof(block_iq4_nl), 0, 15, true,
     set_nibble32<block_iq4_nl, offsetof(block_iq4_nl, qs)>},
    {Type::IQ4_XS, QK_K, sizeof(block_iq4_xs), 0, 15, true, set_iq4_xs},
    {Type::Q2_K, QK_K, sizeof(block_q2_K), 0, 3, false, set_q2_K},
    {Type::Q3_K, QK_K, sizeof(block_q3_K), 0, 7, false, set_q3_K},
    {Type::Q4_K, QK_K, sizeof(block_q4_K), 0, 15, false, set_q4_K},
    {Type::Q5_K, QK_K, sizeof(block_q5_K), 0, 31, false, set_q5_K},
    {Type::Q6_K, QK_K, sizeof(block_q6_K), 0, 63, false, set_q6_K},
};

}  // namespace

const FixedScaleCodec* find_fixed_scale_codec(Type t) {
  for (const auto& c : kCodecs)
    if (c.type == t) return &c;
  return nullptr;
}

void block_grid(const FixedScaleCodec& fc, const uint8_t* blk, float* step, float* offset,
                uint8_t* scratch) {
  const Codec& codec = reference_codecs()[static_cast<size_t>(fc.type)];
  std::memcpy(scratch, blk, fc.block_bytes);
  if (fc.table) {
    for (int i = 0; i < fc.block; ++i) fc.set_code(scratch, i, 8);  // kIq4nlValues[8] == 1
    codec.dequantize(scratch, step, fc.block);
    for (int i = 0; i < fc.block; ++i) offset[i] = 0;
    return;
  }
  for (int i = 0; i < fc.block; ++i) fc.set_code(scratch, i, fc.code_min);
  codec.dequantize(scratch, offset, fc.block);
  for (int i = 0; i < fc.block; ++i) fc.set_code(scratch, i, fc.code_max);
  codec.dequantize(scratch, step, fc.block);
  const float span = static_cast<float>(fc.code_max - fc.code_min);
  for (int i = 0; i < fc.block; ++i) {
    step[i] = (step[i] - offset[i]) / span;
    // Re-base the offset to code 0 so that y = step * code + offset.
    offset[i] -= step[i] * static_cast<float>(fc.code_min);
  }
}

int round_to_grid(const FixedScaleCodec& fc, float step, float offset, float x, float* y) {
  if (!(step != 0)) {
    *y = fc.table ? 0.0f : step * static_cast<float>(fc.code_min) + offset;
    return fc.table ? 8 : fc.code_min;
  }
  if (fc.table) {
    int best = 0;
    float best_d = INFINITY;
    for (int c = 0; c < 16; ++c) {
      const float v = step * static_cast<float>(kIq4nlValues[c]);
      const float d = std::fabs(v - x);
      if (d < best_d) {
        best_d = d;
        best = c;
      }
    }
    *y = step * static_cast<float>(kIq4nlValues[best]);
    return best;
  }
  float c = std::nearbyint((x - offset) / step);
  const float lo = static_cast<float>(fc.code_min), hi = static_cast<float>(fc.code_max);
  c = c > lo ? c : lo;  // also maps NaN to code_min
  c = c < hi ? c : hi;
  *y = step * c + offset;
  return static_cast<int>(c);
}

}  // namespace qforge
