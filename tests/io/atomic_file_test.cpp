#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/thread_pool.h"
#include "io/atomic_file.h"
#include "io/load_policy.h"
#include "io/sha256.h"
#include "test_util.h"

namespace qforge {
namespace fs = std::filesystem;

int count_temps(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".qforge-tmp.") != std::string::npos) ++n;
  return n;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Streaming in pieces equals one shot.
  std::vector<uint8_t> big(10'000'000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31 + (i >> 9));
  Sha256 h;
  for (size_t off = 0; off < big.size(); off += 777'777)
    h.update({big.data() + off, std::min<size_t>(777'777, big.size() - off)});
  EXPECT_EQ(h.hex_digest(), sha256_hex(big));
}

TEST(AtomicFile, CommitWritesTargetAndSidecarCheckableBySha256sum) {
  test::TempDir tmp;
  auto path = tmp.file("out.bin");
  auto f = AtomicFile::create(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->write("hello\n", 6).ok());
  EXPECT_FALSE(fs::exists(path));  // nothing visible before commit
  ASSERT_TRUE(f->commit().ok());
  EXPECT_EQ(test::read_all(path), "hello\n");
  EXPECT_TRUE(verify_sidecar(path).ok());
  auto r = test::run_shell("cd " + tmp.path().string() + " && sha256sum -c out.bin.sha256");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count_temps(tmp.path()), 0);
}

TEST(AtomicFile, RefusesToOverwriteWithoutForceAndKeepsTarget) {
  test::TempDir tmp;
  auto path = tmp.file("out.bin");
  { auto f = AtomicFile::create(path); ASSERT_TRUE(f->write("a", 1).ok()); ASSERT_TRUE(f->commit().ok()); }
  auto again = AtomicFile::create(path);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
  AtomicFileOptions o;
  o.overwrite = true;
  { auto f = AtomicFile::create(path, o); ASSERT_TRUE(f.ok()); ASSERT_TRUE(f->write("b", 1).ok()); ASSERT_TRUE(f->commit().ok()); }
  EXPECT_EQ(test::read_all(path), "b");
}

TEST(AtomicFile, AbandonedWriterLeavesNothing) {
  test::TempDir tmp;
  auto path = tmp.file("out.bin");
  {
    auto f = AtomicFile::create(path);
    ASSERT_TRUE(f->write("partial", 7).ok());
  }  // destroyed without commit (an error path)
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(count_temps(tmp.path()), 0);
}

TEST(AtomicFile, BadOutputPaths) {
  test::TempDir tmp;
  auto r1 = AtomicFile::create(tmp.file("no/such/dir/out.bin"));
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message.find("does not exist"), std::string::npos);
  auto r2 = AtomicFile::create(tmp.path().string());
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("is a directory"), std::string::npos);
}

// kill -9 in the middle of a write: the target stays absent, and the temp file the dead writer
// left is removed by the next write to the same target.
TEST(AtomicFile, KillNineLeavesNoTargetAndNextWriteCleansTemp) {
  test::TempDir tmp;
  auto path = tmp.file("model.gguf");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto f = AtomicFile::create(path);
    std::vector<uint8_t> chunk(3 << 20, 7);
    (void)f->write(chunk.data(), chunk.size());  // forces a flush to disk
    raise(SIGKILL);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(count_temps(tmp.path()), 1);
  auto f = AtomicFile::create(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(count_temps(tmp.path()), 1);  // only the new writer's own temp
  ASSERT_TRUE(f->write("ok", 2).ok());
  ASSERT_TRUE(f->commit().ok());
  EXPECT_EQ(count_temps(tmp.path()), 0);
}

// An existing target is untouched when a replacing write dies.
TEST(AtomicFile, KillNineKeepsExistingTarget) {
  test::TempDir tmp;
  auto path = tmp.file("model.gguf");
  { auto f = AtomicFile::create(path); ASSERT_TRUE(f->write("old", 3).ok()); ASSERT_TRUE(f->commit().ok()); }
  pid_t pid = fork();
  if (pid == 0) {
    AtomicFileOptions o;
    o.overwrite = true;
    auto f = AtomicFile::create(path, o);
    std::vector<uint8_t> chunk(2 << 20, 1);
    (void)f->write(chunk.data(), chunk.size());
    raise(SIGKILL);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(test::read_all(path), "old");
}

// Disk full / file too large (RLIMIT_FSIZE with SIGXFSZ ignored gives EFBIG): a clean error and
// no output.
TEST(AtomicFile, FileTooLargeIsACleanErrorWithNoOutput) {
  test::TempDir tmp;
  auto path = tmp.file("big.bin");
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_FSIZE, &rl);
    auto f = AtomicFile::create(path);
    std::vector<uint8_t> chunk(4 << 20, 1);
    auto st = f->write(chunk.data(), chunk.size());
    if (st.ok()) st = f->commit();
    bool clean = !st.ok() && st.error().message.find("big.bin") != std::string::npos &&
                 st.error().message.find("File too large") != std::string::npos;
    _exit(clean ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(count_temps(tmp.path()), 0);
}

TEST(LoadPolicy, AllowedDirFollowsSymlinksAndChecksumIsEnforced) {
  test::TempDir inside, outside;
  auto good = inside.file("m.bin");
  { auto f = AtomicFile::create(good); ASSERT_TRUE(f->write("x", 1).ok()); ASSERT_TRUE(f->commit().ok()); }
  auto secret = outside.file("secret.bin");
  { auto f = AtomicFile::create(secret); ASSERT_TRUE(f->write("s", 1).ok()); ASSERT_TRUE(f->commit().ok()); }
  fs::create_symlink(secret, inside.file("link.bin"));
  LoadPolicy p;
  p.allowed_dir = inside.path().string();
  EXPECT_TRUE(check_load_policy(good, p).ok());
  auto r = check_load_policy(inside.file("link.bin"), p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outside the allowed directory"), std::string::npos);
  EXPECT_FALSE(check_load_policy(inside.path().string() + "/../" + outside.path().filename().string() + "/secret.bin", p).ok());
  p.allowed_dir.clear();
  p.require_checksum = true;
  EXPECT_TRUE(check_load_policy(good, p).ok());
  { std::ofstream(good, std::ios::app) << "tamper"; }
  auto bad = check_load_policy(good, p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("SHA-256 mismatch"), std::string::npos);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 7, 1000, 12345}) {
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, 0, [&](int64_t b, int64_t e, int tid) {
      ASSERT_GE(tid, 0);
      ASSERT_LT(tid, 3);
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
  // Many tiny loops (as a forward pass does) complete promptly.
  std::atomic<int64_t> sum{0};
  for (int it = 0; it < 2000; ++it)
    pool.parallel_for(8, 1, [&](int64_t b, int64_t e, int) { sum += e - b; });
  EXPECT_EQ(sum.load(), 16000);
}

}  // namespace qforge
