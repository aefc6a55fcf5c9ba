// Safe-load policy applied by every load of a model or data file (io/opened_input.h applies it
// to the one descriptor that is then hashed and mapped): the descriptor's real path must lie
// inside the allowed directory when one is configured (--allowed-dir or QFORGE_ALLOWED_DIR); a
// present .sha256 sidecar must match (and must name the file) unless --no-verify; with
// --require-checksum a sidecar must exist.
#pragma once

#include <string>

#include "core/result.h"

namespace qforge {

struct LoadPolicy {
  std::string allowed_dir;        // empty: any directory
  bool require_checksum = false;  // a missing sidecar is an error
  bool verify_sidecar = true;     // a present sidecar is checked (false: --no-verify)
};

// The process-wide policy, set once by the CLI before any command runs.
LoadPolicy& load_policy();
// Opens `path` under the policy (the process-wide one when none is given) and closes it again:
// an early check for commands; the loaders apply the same policy to their own descriptor.
Status check_load_policy(const std::string& path);
Status check_load_policy(const std::string& path, const LoadPolicy& policy);

}  // namespace qforge
