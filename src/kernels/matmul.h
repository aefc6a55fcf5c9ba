// Matrix multiplication of a weight matrix stored in any codec type by f32 activations:
//   y[t * rows + r] = sum_c W[r, c] * x[t * cols + c]   for t < n_tokens, r < rows
// W is row-major with row_size(type, cols) bytes per row, used as stored (no copy of the
// model). One token (generation) goes through the codec's vec_dot after converting x to its
// vec_dot_type; batches (prompt processing, perplexity) use a tiled path (dequantized weight
// tiles + SIMD/BLAS GEMM, or quantized dots). Multi-threaded over rows with the pool.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/codec.h"
#include "kernels/cpu.h"

namespace qforge {

void matmul(const Codec& w_codec, const void* w, int64_t rows, int64_t cols, const float* x,
            int64_t n_tokens, float* y, ThreadPool& pool);

// As matmul, with the micro-kernels of a given ISA level (tests compare levels; `isa` must be
// supported by this CPU). x_codec converts activations to w_codec.vec_dot_type (nullptr when
// that is F32); matmul() passes the active table's codec.
void matmul_isa(Isa isa, const Codec& w_codec, const Codec* x_codec, const void* w, int64_t rows,
                int64_t cols, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Scalar reference (the oracle for tests): dequantizes each row with the reference codec and
// accumulates in double. Slow.
void matmul_reference(Type w_type, const void* w, int64_t rows, int64_t cols, const float* x,
                      int64_t n_tokens, float* y);

}  // namespace qforge
