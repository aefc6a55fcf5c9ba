// Safe-load policy applied by every command that loads a model or data file: the resolved
// real path (symlinks followed) must lie inside the allowed directory when one is configured
// (--allowed-dir or QFORGE_ALLOWED_DIR), and the file's .sha256 sidecar must verify when
// --require-checksum is set.
#pragma once

#include <string>

#include "core/result.h"

namespace qforge {

struct LoadPolicy {
  std::string allowed_dir;  // empty: any directory
  bool require_checksum = false;
};

// The process-wide policy, set once by the CLI before any command runs.
LoadPolicy& load_policy();
// Checks `path` against the policy (the process-wide one when none is given).
Status check_load_policy(const std::string& path);
Status check_load_policy(const std::string& path, const LoadPolicy& policy);

}  // namespace qforge
