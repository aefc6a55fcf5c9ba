#include "io/load_policy.h"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <cerrno>

#include "io/sha256.h"

namespace qforge {

LoadPolicy& load_policy() {
  static LoadPolicy policy;
  return policy;
}

Status check_load_policy(const std::string& path) { return check_load_policy(path, load_policy()); }

Status check_load_policy(const std::string& path, const LoadPolicy& policy) {
  if (!policy.allowed_dir.empty()) {
    char real[PATH_MAX], dir[PATH_MAX];
    if (!realpath(path.c_str(), real)) return make_error(path, ": cannot open: ", std::strerror(errno));
    if (!realpath(policy.allowed_dir.c_str(), dir))
      return make_error(policy.allowed_dir, ": allowed directory does not exist");
    std::string r = real, d = dir;
    if (d != "/" && !(r.size() > d.size() && r.compare(0, d.size(), d) == 0 && r[d.size()] == '/'))
      return make_error(path, ": refused: resolves to ", r, ", outside the allowed directory ", d);
  }
  if (policy.require_checksum) {
    QF_CHECK(verify_sidecar(path));
  }
  return ok_status();
}

}  // namespace qforge
