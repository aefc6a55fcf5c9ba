// Scalar reference codecs of the 32-weight block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL
// and of IQ4_XS (256-weight super-blocks), registered by register_legacy_codecs (codec.h).
//
// Encoding modes (QuantizeOptions):
//  - ggml_compatible: ggml's encoders at llama.cpp c392e5094, byte for byte (round-to-nearest
//    for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 without an imatrix, ggml's scale searches with one, and
//    ggml's IQ4 search with 7 tries either way). The one deviation: a block that ggml would
//    encode with an Inf/NaN scale (huge values, or 0/0 under all-zero importance) gets the
//    refined encoding instead, so no mode ever writes a non-finite block.
//  - default (refined): for every block, qforge's own search (an exact sweep over the block
//    scale, least-squares refits, fp16-aware rounding) minimising sum w (y - x)^2 with
//    w = imatrix (or 1); the ggml-compatible block is computed too and the one with the lower
//    weighted error is kept, so a refined row is never worse than ggml's, block by block.
//    Scales saturate at the fp16 range, so huge inputs decode finite.
// vec_dot: the 32-blocks take Q8_0 activations, IQ4_XS takes Q8_K.
#pragma once

#include <cstdint>

namespace qforge {

// ggml's round-to-nearest Q8_0 encoder (scale = amax/127) for n values (a multiple of 32):
// the activation format of the 32-block vec_dots, cheap enough for per-token use.
void quantize_row_q8_0_rtn(const float* x, void* dst, int64_t n);

}  // namespace qforge
