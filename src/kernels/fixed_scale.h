// Fixed-scale rounding of quantized blocks (error-feedback quantization, quant/error_feedback.h).
//
// Once a block's scale bytes (d, dmin, sub-block scales/mins) are chosen, every element of the
// block can decode to a 1-D grid of values selected by its "code" (the stored quant bits):
//   linear types: y(code) = step[i] * code + offset[i]   (all K-quants and legacy types)
//   table types:  y(code) = step[i] * kIq4nlValues[code] (IQ4_NL, IQ4_XS)
// with step/offset depending only on the scale bytes. block_grid() reads them by decoding the
// block with all codes set to 0 and 1 (linear) or 8 (table; kIq4nlValues[8] == 1), so they are
// exactly what the codec's own decoder computes. set_code() writes one element's quant bits
// and leaves every other byte untouched, so the result is a valid block of the same type.
#pragma once

#include <cstdint>

#include "core/types.h"

namespace qforge {

struct FixedScaleCodec {
  Type type = Type::F32;
  int block = 0;                   // elements per block (32 or 256)
  size_t block_bytes = 0;          // bytes per block
  int code_min = 0, code_max = 0;  // codes used when rounding (Q8_0: 1..255 = int8 -127..127)
  bool table = false;              // IQ4_NL / IQ4_XS non-linear grid
  void (*set_code)(uint8_t* blk, int i, int code) = nullptr;
};

// The fixed-scale helpers of `t`; nullptr for types without them (floats, Q8_K, ...).
const FixedScaleCodec* find_fixed_scale_codec(Type t);

// Per-element grid of an encoded block (fc.block values each). `scratch` holds block_bytes.
void block_grid(const FixedScaleCodec& fc, const uint8_t* blk, float* step, float* offset,
                uint8_t* scratch);

// Nearest grid value to x for element grid (step, offset): returns the code and sets *y to the
// decoded value (as the decoder computes it, up to one float rounding for linear types).
// A zero step (the element can only decode to `offset`) yields code_min.
int round_to_grid(const FixedScaleCodec& fc, float step, float offset, float x, float* y);

}  // namespace qforge
