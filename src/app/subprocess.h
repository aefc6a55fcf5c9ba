// Runs a child process (used by `ladder` to run qforge's own commands on each variant, so that
// each step's peak RSS is measured on its own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qforge {

struct ProcessResult {
  int exit_code = -1;
  std::string out;            // captured stdout
  std::string err;            // captured stderr
  uint64_t peak_rss_bytes = 0;  // the child's max RSS (wait4 rusage)
  double wall_seconds = 0;
};

// Runs argv[0] with the arguments (no shell). Throws CliError if it cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);
// Path of the running qforge binary (/proc/self/exe).
std::string self_exe();

}  // namespace qforge
