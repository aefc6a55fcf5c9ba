#include "faults/fault_harness.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "io/sha256.h"

namespace qforge::test {
namespace fs = std::filesystem;

std::string binary_under_test() {
  const char* env = std::getenv("QFORGE_TEST_BINARY");
  return env && *env ? env : qforge_binary();
}

Child Child::spawn(const std::vector<std::string>& args, const std::string& fault) {
  Child c;
  c.io_ = std::make_unique<TempDir>();
  const std::string out = c.io_->file("out"), err = c.io_->file("err");
  std::vector<std::string> argv_s = {binary_under_test()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  c.pid_ = fork();
  if (c.pid_ == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int n = ::open("/dev/null", O_RDONLY);
    dup2(n, 0);
    dup2(o, 1);
    dup2(e, 2);
    if (fault.empty()) {
      unsetenv("QFORGE_FAULT");
    } else {
      setenv("QFORGE_FAULT", fault.c_str(), 1);
    }
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return c;
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_),
      stopped_(o.stopped_),
      ended_(o.ended_),
      ever_stopped_(o.ever_stopped_),
      status_(o.status_),
      io_(std::move(o.io_)) {
  o.pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && !ended_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Child::wait_stopped() {
  if (ended_) return false;
  if (stopped_) return true;
  int st = 0;
  while (waitpid(pid_, &st, WUNTRACED) < 0) {
  }
  if (WIFSTOPPED(st)) {
    stopped_ = ever_stopped_ = true;
    return true;
  }
  ended_ = true;
  status_ = st;
  return false;
}

ChildResult Child::finish(const std::function<void(pid_t)>& on_stop) {
  while (!ended_) {
    if (stopped_) {
      stopped_ = false;
      kill(pid_, SIGCONT);
    }
    if (wait_stopped() && on_stop) on_stop(pid_);
  }
  ChildResult r;
  r.stopped = ever_stopped_;
  if (WIFEXITED(status_)) r.exit_code = WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) r.term_signal = WTERMSIG(status_);
  r.out = read_all(io_->file("out"));
  r.err = read_all(io_->file("err"));
  return r;
}

ChildResult run_with_fault(const std::vector<std::string>& args, const std::string& fault,
                           const std::function<void(pid_t)>& on_stop) {
  Child c = Child::spawn(args, fault);
  if (c.wait_stopped() && on_stop) on_stop(c.pid());
  return c.finish(on_stop);
}

std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : dir_entries(dir))
    if (e.find(".qforge-tmp.") != std::string::npos) v.push_back(e);
  return v;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

std::string pair_problem(const std::string& path) {
  const std::string side = sidecar_path(path);
  const bool has_file = fs::exists(path), has_side = fs::exists(side);
  if (!has_file && !has_side) return "";
  if (!has_file) return "sidecar without its file";
  if (!has_side) return "file without its sidecar";
  const std::string data = read_all(path), text = read_all(side);
  const std::string want = sha256_hex({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  const std::string line = want + "  " + fs::path(path).filename().string() + "\n";
  if (text != line) return "sidecar '" + text + "' does not match the file (" + want + ")";
  return "";
}

int line_count(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace qforge::test
