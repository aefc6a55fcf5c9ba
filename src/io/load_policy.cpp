#include "io/load_policy.h"

#include "io/opened_input.h"

namespace qforge {

LoadPolicy& load_policy() {
  static LoadPolicy policy;
  return policy;
}

Status check_load_policy(const std::string& path) {
  return check_load_policy(path, load_policy());
}

Status check_load_policy(const std::string& path, const LoadPolicy& policy) {
  QF_TRY(OpenedInput in, OpenedInput::open(path, policy));
  (void)in;
  return ok_status();
}

}  // namespace qforge
