// K-quant codecs: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (weights; vec_dot against Q8_K activations) and
// Q8_K (the activation format). All operate on super-blocks of QK_K = 256 values.
//
// Encoding modes (QuantizeOptions):
//  * ggml_compatible: byte-identical to ggml's reference encoders (quantize_row_*_K_ref without
//    an imatrix, the importance-weighted encoders with one).
//  * default (refined): starts from the ggml encoding of every super-block and refines it
//    (integer sub-block scales/mins in a window, least-squares refit of the fp16 super-scales),
//    keeping a change only when it lowers the block's error as decoded. The error is
//    sum (y-x)^2 without an imatrix and sum imatrix[col] * (y-x)^2 with one, so the result is
//    never worse than ggml's in that measure.
// Registered into the codec table by register_k_codecs (codec.h).
#pragma once

#include <cstdint>

#include "kernels/blocks.h"

namespace qforge {

// Q8_K activation quantization (as ggml's quantize_row_q8_K): d = max|x|/127 with the sign
// of the extreme value, qs = round(x/d) clamped to [-128, 127], bsums = sums of 16 qs.
// A block of zeros gets d = 0 and zero quants/sums. n is a multiple of QK_K.
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n);

}  // namespace qforge
