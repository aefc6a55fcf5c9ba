// Option validators with short, exact messages. CLI11's own ranges print the limits of the type
// (a 300-digit number for a double) and let NaN through; these refuse NaN/Inf and name the
// accepted range, e.g. "--top-p: must be a number from 0 to 1 (got 5)". A failed check is a
// usage error: exit code 2 (kUsageExit).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "core/thread_pool.h"

namespace qforge {

// Exit code of every argument error (CLI11 parse errors and the commands' own checks).
inline constexpr int kUsageExit = 2;

// A finite number >= lo (and <= hi when hi is finite).
inline CLI::Validator finite_number(double lo,
                                    double hi = std::numeric_limits<double>::infinity()) {
  const std::string range =
      std::isfinite(hi) ? cat("a number from ", lo, " to ", hi) : cat("a finite number >= ", lo);
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
          return cat("must be ", range, " (got '", s, "')");
        return {};
      },
      range);
}

// An integer in [lo, hi]; `zero_means` explains a special 0 ("all cores").
inline CLI::Validator integer_in(long long lo, long long hi, const std::string& what = {}) {
  const std::string range = cat("an integer from ", lo, " to ", hi, what);
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (end == s.c_str() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
          return cat("must be ", range, " (got '", s, "')");
        return {};
      },
      range);
}

// --threads: 0 (all cores) up to kMaxThreadsPerCore x the cores this process may use.
inline CLI::Validator thread_count() {
  return integer_in(
      0, max_threads(),
      cat(" (0: all ", available_cores(), " cores; at most ", kMaxThreadsPerCore, " per core)"));
}

}  // namespace qforge
