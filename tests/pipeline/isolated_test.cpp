// Isolated steps: typed results cross the pipe, errors come back as errors, the child's peak
// RSS is its own, and a signal to the parent stops the child too (no process left behind).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "core/process_memory.h"
#include "pipeline/isolated.h"
#include "pipeline/steps.h"
#include "test_util.h"

namespace qforge {
namespace {

TEST(Isolated, TypedResultRoundTrips) {
  auto r = run_isolated<VerifyStepResult>("verify", []() -> Result<VerifyStepResult> {
    VerifyStepResult v;
    v.file = "x.gguf";
    v.sha256 = std::string(64, 'a');
    v.tensors = 42;
    v.ok = true;
    return v;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->file, "x.gguf");
  EXPECT_EQ(r->tensors, 42u);
  EXPECT_TRUE(r->ok);
  auto e = run_isolated<VerifyStepResult>("verify", []() -> Result<VerifyStepResult> {
    return make_error("x.gguf: tensor 'a': data past end of file");
  });
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "x.gguf: tensor 'a': data past end of file");
}

TEST(Isolated, PeakRssIsTheChildsOwn) {
  // The parent touches 96 MiB first; a child touching 16 MiB must not report the parent's peak.
  std::vector<char> big(96u << 20);
  std::memset(big.data(), 1, big.size());
  auto r = run_isolated<QualityStepResult>("rss", []() -> Result<QualityStepResult> {
    std::vector<char> small(16u << 20);
    std::memset(small.data(), 2, small.size());
    QualityStepResult q;
    q.ppl = small[123];
    q.peak_rss_bytes = peak_rss_bytes();
    return q;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(r->peak_rss_bytes, 16u << 20);
  // The forked child starts with the parent's resident pages mapped, but clear_refs resets the
  // high-water mark: it stays below parent + child.
  EXPECT_LT(r->peak_rss_bytes, peak_rss_bytes() + (16u << 20));
  EXPECT_GT(big[7], 0);
}

TEST(Isolated, SignalStopsParentAndChild) {
  test::TempDir tmp;
  const std::string pidfile = tmp.file("child.pid");
  pid_t mid = fork();
  ASSERT_GE(mid, 0);
  if (mid == 0) {
    auto r = run_isolated<VerifyStepResult>("sleep", [&]() -> Result<VerifyStepResult> {
      std::ofstream(pidfile) << getpid();
      std::this_thread::sleep_for(std::chrono::seconds(30));
      return VerifyStepResult{};
    });
    _exit(r.ok() ? 0 : 3);
  }
  pid_t child = 0;
  for (int i = 0; i < 200 && child == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::ifstream in(pidfile);
    in >> child;
  }
  ASSERT_GT(child, 0) << "the isolated child never started";
  const auto t0 = std::chrono::steady_clock::now();
  kill(mid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(mid, &status, 0), mid);
  EXPECT_TRUE(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) {
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  // The grandchild was reaped by the parent before it re-raised the signal.
  EXPECT_NE(kill(child, 0), 0) << "child " << child << " still exists";
}

}  // namespace
}  // namespace qforge
