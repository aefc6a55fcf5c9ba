#include "kernels/fixed_scale.h"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

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

// Sub-block scale accessors (the layouts ggml's decoders read).
void get_q2_K(const uint8_t* blk, int s, int* sc, int* m) {
  const uint8_t v = blk[offsetof(block_q2_K, scales) + s];
  *sc = v & 15;
  *m = v >> 4;
}
void put_q2_K(uint8_t* blk, int s, int sc, int m) {
  blk[offsetof(block_q2_K, scales) + s] = static_cast<uint8_t>((sc & 15) | ((m & 15) << 4));
}
// Q3_K: 16 six-bit values, low nibbles in bytes 0..7 (j < 8 low, else high nibble of j - 8),
// high 2 bits in bytes 8..11 at bit 2 * (j / 4) of byte 8 + j % 4.
void get_q3_K(const uint8_t* blk, int j, int* sc, int* m) {
  const uint8_t* q = blk + offsetof(block_q3_K, scales);
  const int lo = j < 8 ? q[j] & 15 : q[j - 8] >> 4;
  *sc = lo | (((q[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
  *m = 0;
}
void put_q3_K(uint8_t* blk, int j, int sc, int) {
  uint8_t* q = blk + offsetof(block_q3_K, scales);
  put_bits(q[j % 8], j < 8 ? 0 : 4, 4, sc & 15);
  put_bits(q[8 + j % 4], 2 * (j / 4), 2, sc >> 4);
}
// Q4_K / Q5_K: 8 six-bit scales and mins in 12 bytes (ggml's get_scale_min_k4).
template <size_t kOff>
void get_k4(const uint8_t* blk, int j, int* sc, int* m) {
  const uint8_t* q = blk + kOff;
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
template <size_t kOff>
void put_k4(uint8_t* blk, int j, int sc, int m) {
  uint8_t* q = blk + kOff;
  if (j < 4) {
    put_bits(q[j], 0, 6, sc);
    put_bits(q[j + 4], 0, 6, m);
  } else {
    put_bits(q[j + 4], 0, 4, sc & 15);
    put_bits(q[j - 4], 6, 2, sc >> 4);
    put_bits(q[j + 4], 4, 4, m & 15);
    put_bits(q[j], 6, 2, m >> 4);
  }
}
void get_q6_K(const uint8_t* blk, int s, int* sc, int* m) {
  *sc = static_cast<int8_t>(blk[offsetof(block_q6_K, scales) + s]);
  *m = 0;
}
void put_q6_K(uint8_t* blk, int s, int sc, int) {
  blk[offsetof(block_q6_K, scales) + s] = static_cast<uint8_t>(static_cast<int8_t>(sc));
}
void get_iq4_xs(const uint8_t* blk, int ib, int* sc, int* m) {
  const uint8_t lo = blk[offsetof(block_iq4_xs, scales_l) + ib / 2];
  uint16_t h;
  std::memcpy(&h, blk + offsetof(block_iq4_xs, scales_h), 2);
  *sc = ((lo >> (4 * (ib % 2))) & 15) | (((h >> (2 * ib)) & 3) << 4);
  *m = 0;
}
void put_iq4_xs(uint8_t* blk, int ib, int sc, int) {
  put_bits(blk[offsetof(block_iq4_xs, scales_l) + ib / 2], 4 * (ib % 2), 4, sc & 15);
  uint16_t h;
  std::memcpy(&h, blk + offsetof(block_iq4_xs, scales_h), 2);
  const auto mask = static_cast<uint16_t>(3u << (2 * ib));
  h = static_cast<uint16_t>((h & ~mask) | ((static_cast<unsigned>(sc >> 4) << (2 * ib)) & mask));
  std::memcpy(blk + offsetof(block_iq4_xs, scales_h), &h, 2);
}

const FixedScaleCodec kCodecs[] = {
    {Type::Q4_0, QK4_0, sizeof(block_q4_0), 0, 15, false,
     set_nibble32<block_q4_0, offsetof(block_q4_0, qs)>, offsetof(block_q4_0, d)},
    {Type::Q4_1, QK4_1, sizeof(block_q4_1), 0, 15, false,
     set_nibble32<block_q4_1, offsetof(block_q4_1, qs)>, offsetof(block_q4_1, d),
     offsetof(block_q4_1, m)},
    {Type::Q5_0, QK5_0, sizeof(block_q5_0), 0, 31, false,
     set_q5<offsetof(block_q5_0, qh), offsetof(block_q5_0, qs)>, offsetof(block_q5_0, d)},
    {Type::Q5_1, QK5_1, sizeof(block_q5_1), 0, 31, false,
     set_q5<offsetof(block_q5_1, qh), offsetof(block_q5_1, qs)>, offsetof(block_q5_1, d),
     offsetof(block_q5_1, m)},
    {Type::Q8_0, QK8_0, sizeof(block_q8_0), 1, 255, false, set_q8_0, offsetof(block_q8_0, d)},
    {Type::IQ4_NL, QK4_NL, sizeof(block_iq4_nl), 0, 15, true,
     set_nibble32<block_iq4_nl, offsetof(block_iq4_nl, qs)>, offsetof(block_iq4_nl, d)},
    {Type::IQ4_XS, QK_K, sizeof(block_iq4_xs), 0, 15, true, set_iq4_xs, offsetof(block_iq4_xs, d),
     -1, 8, 32, 0, 63, 0, false, get_iq4_xs, put_iq4_xs},
    {Type::Q2_K, QK_K, sizeof(block_q2_K), 0, 3, false, set_q2_K, offsetof(block_q2_K, d),
     offsetof(block_q2_K, dmin), 16, 16, 0, 15, 15, true, get_q2_K, put_q2_K},
    {Type::Q3_K, QK_K, sizeof(block_q3_K), 0, 7, false, set_q3_K, offsetof(block_q3_K, d), -1, 16,
     16, 0, 63, 0, false, get_q3_K, put_q3_K},
    {Type::Q4_K, QK_K, sizeof(block_q4_K), 0, 15, false, set_q4_K, offsetof(block_q4_K, d),
     offsetof(block_q4_K, dmin), 8, 32, 0, 63, 63, true, get_k4<offsetof(block_q4_K, scales)>,
     put_k4<offsetof(block_q4_K, scales)>},
    {Type::Q5_K, QK_K, sizeof(block_q5_K), 0, 31, false, set_q5_K, offsetof(block_q5_K, d),
     offsetof(block_q5_K, dmin), 8, 32, 0, 63, 63, true, get_k4<offsetof(block_q5_K, scales)>,
     put_k4<offsetof(block_q5_K, scales)>},
    {Type::Q6_K, QK_K, sizeof(block_q6_K), 0, 63, false, set_q6_K, offsetof(block_q6_K, d), -1, 16,
     16, -128, 127, 0, false, get_q6_K, put_q6_K},
};

}  // namespace

const FixedScaleCodec* find_fixed_scale_codec(Type t) {
  for (const auto& c : kCodecs)
    if (c.type == t) return &c;
  return nullptr;
}

namespace {

// "Every element of the block at code c", as bytes: `bits` holds the code bits of that block and
// `mask` marks which bits are code bits at all, so that scratch = (blk & ~mask) | bits sets all of
// a block's codes in one pass over its bytes. block_grid runs for every candidate scale of the
// error-feedback search; fc.block set_code calls per grid were a quarter of a Q6_K quantize.
// Found from set_code itself: the bits it leaves alone keep a zero block's 0 and an all-ones
// block's 1; the bits it writes are the same in both.
struct CodeFill {
  std::vector<uint8_t> mask, bits;
};

CodeFill make_code_fill(const FixedScaleCodec& fc, int code) {
  std::vector<uint8_t> zeros(fc.block_bytes, 0), ones(fc.block_bytes, 0xff);
  for (int i = 0; i < fc.block; ++i) {
    fc.set_code(zeros.data(), i, code);
    fc.set_code(ones.data(), i, code);
  }
  CodeFill f;
  f.mask.resize(fc.block_bytes);
  f.bits = zeros;
  for (size_t b = 0; b < fc.block_bytes; ++b)
    f.mask[b] = static_cast<uint8_t>(~(zeros[b] ^ ones[b]));
  return f;
}

// The fills of the codes block_grid decodes: [0] code_min (or 8 for table types), [1] code_max.
const std::array<CodeFill, 2>& code_fills(const FixedScaleCodec& fc) {
  static const auto all = [] {
    std::vector<std::array<CodeFill, 2>> v;
    for (const auto& c : kCodecs)
      v.push_back({make_code_fill(c, c.table ? 8 : c.code_min), make_code_fill(c, c.code_max)});
    return v;
  }();
  return all[static_cast<size_t>(&fc - kCodecs)];
}

void fill_codes(const FixedScaleCodec& fc, const CodeFill& f, const uint8_t* blk, uint8_t* out) {
  for (size_t b = 0; b < fc.block_bytes; ++b)
    out[b] = static_cast<uint8_t>((blk[b] & ~f.mask[b]) | f.bits[b]);
}

}  // namespace

void block_grid(const FixedScaleCodec& fc, const uint8_t* blk, float* step, float* offset,
                uint8_t* scratch) {
  const Codec& codec = reference_codecs()[static_cast<size_t>(fc.type)];
  const auto& fills = code_fills(fc);
  if (fc.table) {
    fill_codes(fc, fills[0], blk, scratch);  // kIq4nlValues[8] == 1
    codec.dequantize(scratch, step, fc.block);
    for (int i = 0; i < fc.block; ++i) offset[i] = 0;
    return;
  }
  fill_codes(fc, fills[0], blk, scratch);
  codec.dequantize(scratch, offset, fc.block);
  fill_codes(fc, fills[1], blk, scratch);
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

float grid_value(const FixedScaleCodec& fc, float step, float offset, int code) {
  return fc.table ? step * static_cast<float>(kIq4nlValues[code])
                  : step * static_cast<float>(code) + offset;
}

void header_basis(const FixedScaleCodec& fc, const uint8_t* blk, float* a, float* b,
                  uint8_t* scratch) {
  const Codec& codec = reference_codecs()[static_cast<size_t>(fc.type)];
  auto put = [&](int off, uint16_t h) {
    if (off >= 0) std::memcpy(scratch + off, &h, sizeof h);
  };
  constexpr uint16_t kOne = 0x3C00, kZero = 0;
  std::memcpy(scratch, blk, fc.block_bytes);
  put(fc.d_offset, kOne);
  put(fc.dmin_offset, kZero);
  codec.dequantize(scratch, a, fc.block);
  if (fc.dmin_offset < 0) {
    for (int i = 0; i < fc.block; ++i) b[i] = 0;
    return;
  }
  put(fc.d_offset, kZero);
  put(fc.dmin_offset, kOne);
  codec.dequantize(scratch, b, fc.block);
}

}  // namespace qforge
