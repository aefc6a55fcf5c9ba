#include "pipeline/isolated.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace qforge {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_signal = 0;
int g_last_signal = 0;

void forward(int sig) {
  g_signal = sig;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

// Installs the forwarding handlers for the lifetime of the object; restores the previous ones.
class ForwardSignals {
 public:
  ForwardSignals() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~ForwardSignals() { restore(); }
  void restore() {
    if (restored_) return;
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &old_[i], nullptr);
    restored_ = true;
  }
  // In the child: the handlers the process had before (temp-file cleanup among them).
  void restore_in_child() {
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }

 private:
  struct sigaction old_[std::size(kSignals)]{};
  bool restored_ = false;
};

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

[[noreturn]] void child_main(int fd, const std::function<Result<nlohmann::json>()>& fn) {
  // A clean peak-RSS figure: forget the high-water mark inherited from the parent.
  int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (cr >= 0) {
    (void)!write(cr, "5", 1);
    close(cr);
  }
  nlohmann::json out;
  try {
    Result<nlohmann::json> r = fn();
    if (r.ok())
      out = {{"ok", true}, {"value", *r}};
    else
      out = {{"ok", false}, {"error", r.error().message}};
  } catch (const std::bad_alloc&) {
    out = {{"ok", false}, {"error", "out of memory"}};
  } catch (const std::exception& e) {
    out = {{"ok", false}, {"error", e.what()}};
  }
  write_all(fd, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  close(fd);
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(0);
}

}  // namespace

int last_forwarded_signal() {
  return g_last_signal;
}

Result<nlohmann::json> run_isolated_json(const std::string& what,
                                         const std::function<Result<nlohmann::json>()>& fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return make_error(what, ": cannot create a pipe: ", std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  ForwardSignals fw;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return make_error(what, ": cannot fork: ", std::strerror(errno));
  }
  if (pid == 0) {
    fw.restore_in_child();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the parent died before prctl
    close(p[0]);
    child_main(p[1], fn);
  }
  g_child = pid;
  if (g_signal) kill(pid, g_signal);  // arrived between fork and here
  close(p[1]);
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = read(p[0], chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  const int sig = g_signal;
  g_last_signal = sig;
  fw.restore();
  if (sig) {
    raise(sig);  // the previous disposition decides: default ends the process
    return make_error(what, ": interrupted by signal ", sig);
  }
  if (WIFSIGNALED(status))
    return make_error(what, ": child process killed by signal ", WTERMSIG(status));
  auto j = nlohmann::json::parse(buf, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
    return make_error(what, ": child process exited (status ",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1, ") without a result");
  if (!j["ok"].get<bool>()) return make_error(j.value("error", what + ": failed"));
  return j["value"];
}

}  // namespace qforge
