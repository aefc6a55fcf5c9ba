// Helpers for commands: turn Results into CliError at the CLI boundary, and the options every
// command that writes or reads files shares.
#pragma once

#include <string>
#include <utility>

#include "core/result.h"
#include "io/load_policy.h"
#include "io/opened_input.h"

namespace qforge {

template <class T>
T unwrap(Result<T> r) {
  if (!r.ok()) throw CliError{r.error().message, 1};
  return std::move(r).value();
}
inline void unwrap(Status s) {
  if (!s.ok()) throw CliError{s.error().message, 1};
}
// Applies the safe-load policy to an input path; throws CliError when refused. An early check
// only: the loader applies the policy again to the descriptor it reads.
inline void check_input(const std::string& path) {
  unwrap(check_load_policy(path));
}
// Opens an input once under the safe-load policy (io/opened_input.h); the command then parses,
// hashes and maps this descriptor and never opens the path again.
inline OpenedInput open_input(const std::string& path) {
  return unwrap(OpenedInput::open(path));
}

}  // namespace qforge
