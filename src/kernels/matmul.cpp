#include "kernels/matmul.h"

#include <vector>

#include "core/types.h"

namespace qforge {

// Simple version; the SIMD/tiled implementation replaces it (issue #6 speed work).
void matmul(const Codec& w_codec, const void* w, int64_t rows, int64_t cols, const float* x,
            int64_t n_tokens, float* y, ThreadPool& pool) {
  const uint64_t rs = *row_size(w_codec.type, cols);
  pool.parallel_for(rows, 0, [&](int64_t b, int64_t e, int) {
    std::vector<float> row(cols);
    for (int64_t r = b; r < e; ++r) {
      w_codec.dequantize(static_cast<const uint8_t*>(w) + r * rs, row.data(), cols);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * cols;
        float s = 0;
        for (int64_t c = 0; c < cols; ++c) s += row[c] * xt[c];
        y[t * rows + r] = s;
      }
    }
  });
}

void matmul_reference(Type w_type, const void* w, int64_t rows, int64_t cols, const float* x,
                      int64_t n_tokens, float* y) {
  const Codec& c = reference_codecs()[static_cast<size_t>(w_type)];
  const uint64_t rs = *row_size(w_type, cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    c.dequantize(static_cast<const uint8_t*>(w) + r * rs, row.data(), cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c2 = 0; c2 < cols; ++c2) s += double(row[c2]) * x[t * cols + c2];
      y[t * rows + r] = static_cast<float>(s);
    }
  }
}

}  // namespace qforge
