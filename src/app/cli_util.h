// Helpers for commands: turn Results into CliError at the CLI boundary, and the options every
// command that writes or reads files shares.
#pragma once

#include <string>
#include <utility>

#include "core/result.h"
#include "io/load_policy.h"

namespace qforge {

template <class T>
T unwrap(Result<T> r) {
  if (!r.ok()) throw CliError{r.error().message, 1};
  return std::move(r).value();
}
inline void unwrap(Status s) {
  if (!s.ok()) throw CliError{s.error().message, 1};
}
// Applies the safe-load policy to an input path; throws CliError when refused.
inline void check_input(const std::string& path) { unwrap(check_load_policy(path)); }

}  // namespace qforge
