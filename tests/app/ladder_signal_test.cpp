// A signal stops the whole ladder: SIGTERM to `qforge ladder` while a measuring child runs ends
// the ladder with that signal, the child is gone (forwarded, reaped), and with hard-io's
// interrupt handlers (core/interrupt.h) no temp file is left in the output folder.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace qforge {
namespace {

pid_t first_child(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t c = 0;
  in >> c;
  return c;
}

TEST(LadderSignal, SigtermStopsLadderAndItsChild) {
  if (!std::filesystem::exists("/proc/self/task/" + std::to_string(getpid()) + "/children"))
    GTEST_SKIP() << "kernel without /proc/PID/task/TID/children";
  test::TempDir tmp;
  const std::string out = tmp.file("out");
  const std::string src = test::source_dir();
  const std::string bin = test::qforge_binary();
  const std::string mini = src + "/models/mini", text = src + "/data/eval-sample.txt";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execl(bin.c_str(), bin.c_str(), "ladder", mini.c_str(), out.c_str(), "--mixes",
          "Q8_0,Q4_K_M,Q2_K", "--ctx", "128", "--threads", "1", "--eval-text", text.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for an isolated step (a child of the ladder), then stop the ladder.
  pid_t child = 0;
  for (int i = 0; i < 3000 && child == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    child = first_child(pid);
  }
  ASSERT_GT(child, 0) << "the ladder never started a step";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const bool by_sigterm = (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) ||
                          (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM);
  EXPECT_TRUE(by_sigterm) << "status " << status;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(kill(child, 0), 0) << "step process " << child << " outlived the ladder";
  EXPECT_FALSE(std::filesystem::exists(out + "/manifest.json"));
#if __has_include("core/interrupt.h")
  for (const auto& e : std::filesystem::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string().find(".qforge-tmp"), std::string::npos) << e.path();
#endif
}

}  // namespace
}  // namespace qforge
