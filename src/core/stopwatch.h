// Elapsed wall time, for the seconds that reports and progress lines print.
#pragma once

#include <chrono>

namespace qforge {

// Seconds of the steady clock since t0.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace qforge
