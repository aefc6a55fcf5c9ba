// Harness of the fault-injection suite: runs the qforge binary as a child with QFORGE_FAULT set
// (core/fault.h), lets a test act while it is stopped at a fault point, and checks what a run
// left on disk (no temp file, every file beside a sidecar that matches it).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace qforge::test {

// The binary under test: $QFORGE_TEST_BINARY when set (to run this suite against another
// build, e.g. an older one, and watch it fail), else the one built with the tests.
std::string binary_under_test();

struct ChildResult {
  int exit_code = -1;    // exit status, or -1 when killed by a signal
  int term_signal = 0;   // the signal that killed it
  bool stopped = false;  // it stopped at a `stop` fault point
  std::string out, err;
};

class Child {
 public:
  // Starts qforge ARGS with QFORGE_FAULT=fault (unset when empty); stdout and stderr go to files.
  static Child spawn(const std::vector<std::string>& args, const std::string& fault);
  Child(Child&&) noexcept;
  Child& operator=(Child&&) = delete;
  ~Child();
  pid_t pid() const { return pid_; }
  // Waits until the child stops (true) or ends (false).
  bool wait_stopped();
  // Sends SIGCONT (if stopped) and waits for the end; on_stop runs at every further stop.
  ChildResult finish(const std::function<void(pid_t)>& on_stop = {});

 private:
  Child() = default;
  pid_t pid_ = -1;
  bool stopped_ = false, ended_ = false, ever_stopped_ = false;
  int status_ = 0;
  std::unique_ptr<TempDir> io_;
};

// Runs to the end; at a stop, on_stop(pid) runs and the child is continued.
ChildResult run_with_fault(const std::vector<std::string>& args, const std::string& fault,
                           const std::function<void(pid_t)>& on_stop = {});

// Names in `dir` that contain ".qforge-tmp." (temp files of unfinished writes).
std::vector<std::string> temp_files(const std::string& dir);
// Every entry of `dir`, sorted.
std::vector<std::string> dir_entries(const std::string& dir);
// "" when the file and its sidecar agree or both are absent; else what is wrong.
std::string pair_problem(const std::string& path);
int line_count(const std::string& s);

}  // namespace qforge::test
