// The weighted relative error the codec tests assert against.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qforge::test {

// sqrt(sum w (y-x)^2 / sum w x^2) in double; w per column of rows of `n_per_row` (nullptr: unit
// weights).
inline double rel_err(const std::vector<float>& x, const std::vector<float>& y, int64_t n_per_row,
                      const float* w) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? w[i % static_cast<size_t>(n_per_row)] : 1.0;
    const double d = static_cast<double>(y[i]) - x[i];
    num += wi * d * d;
    den += wi * static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace qforge::test
