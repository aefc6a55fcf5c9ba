// Memory figures of this process, for reports (bench, perplexity, convert, ladder).
#pragma once

#include <cstdint>

namespace qforge {

// Peak resident set size of this process image in bytes (VmHWM from /proc/self/status).
// Unlike getrusage's ru_maxrss it does not include a parent's peak carried over by fork+exec.
// Falls back to ru_maxrss where /proc is unavailable.
uint64_t peak_rss_bytes();

}  // namespace qforge
