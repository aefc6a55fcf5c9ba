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
  // Byte offsets of the block's f16 header scale d and (types with mins) dmin / m, -1 when
  // absent. Every element decodes linearly in them for fixed other bytes:
  // y = d * a(codes, sub-block scales) + dmin * b(...), which the scale re-fit uses.
  int d_offset = -1, dmin_offset = -1;
  // Sub-block scales (K-quants, IQ4_XS): n_sub sub-blocks of sub_size elements, each with a
  // stored integer scale in [sc_min, sc_max] and (has_min) a stored integer min in
  // [0, m_max], read and written as the raw stored integers (no sign shift applied).
  int n_sub = 0, sub_size = 0, sc_min = 0, sc_max = 0, m_max = 0;
  bool has_min = false;
  void (*get_sub)(const uint8_t* blk, int s, int* sc, int* m) = nullptr;
  void (*set_sub)(uint8_t* blk, int s, int sc, int m) = nullptr;
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

// The value code `code` decodes to on element grid (step, offset).
float grid_value(const FixedScaleCodec& fc, float step, float offset, int code);

// Coefficients of the header scales: a[i] = what element i decodes to with d = 1, dmin = 0 and
// b[i] with d = 0, dmin = 1 (all other bytes as in blk; b = 0 without dmin), so that the block
// decodes to d * a + dmin * b. `scratch` holds block_bytes. Contract: fc.d_offset >= 0.
void header_basis(const FixedScaleCodec& fc, const uint8_t* blk, float* a, float* b,
                  uint8_t* scratch);

}  // namespace qforge
