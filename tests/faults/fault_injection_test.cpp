// Fault-injection suite (issue 11): the qforge binary is stopped, signalled, killed or made to
// fail at named points (QFORGE_FAULT, core/fault.h) chosen from a fixed seed, and every case
// checks what is left: a documented exit code and one error line, the target absent or its
// complete previous version (or, where documented, the complete new one), no temp file, and
// every file beside a sidecar that matches it.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "faults/fault_harness.h"
#include "io/sha256.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;
using test::ChildResult;
using test::run_with_fault;

constexpr uint32_t kSeed = 0x11f417;  // every drawn fault point derives from it

std::string sha_of_file(const std::string& p) {
  std::string d = test::read_all(p);
  return sha256_hex({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
}

class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    in_ = dir_.file("in.gguf");
    evil_ = dir_.file("evil.gguf");
    out_ = dir_.file("out.gguf");
    test::SyntheticModel m;
    ASSERT_TRUE(test::write_synthetic_gguf(in_, m).ok());
    m.seed = 2;
    m.n_layer = 1;
    ASSERT_TRUE(test::write_synthetic_gguf(evil_, m).ok());
  }
  std::vector<std::string> quantize(const std::string& in, const std::string& out,
                                    const std::string& type, bool force) {
    std::vector<std::string> a = {"--log-level", "error", "quantize", in, out, type, "--json"};
    if (force) a.push_back("--force");
    return a;
  }
  // A previous, complete output pair (Q4_0) for the cases that replace it.
  void write_previous_output() {
    auto r = run_with_fault(quantize(in_, out_, "Q4_0", false), "");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    prev_ = test::read_all(out_);
  }
  // The checks every case makes on what a run left.
  void expect_clean_outcome(const std::string& what) {
    EXPECT_EQ(test::temp_files(dir_.path().string()), std::vector<std::string>{}) << what;
    EXPECT_EQ(test::pair_problem(out_), "") << what;
    EXPECT_EQ(test::pair_problem(in_), "") << what;
  }
  void expect_previous_or_absent(const std::string& what) {
    if (prev_.empty())
      EXPECT_FALSE(fs::exists(out_)) << what;
    else
      EXPECT_TRUE(test::read_all(out_) == prev_) << what << ": the previous output was not kept";
  }
  test::TempDir dir_;
  std::string in_, evil_, out_, prev_;
};

std::vector<int> draw(std::mt19937& rng, int n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(d(rng));
  return v;
}

// ---- case 1: time of check / time of use -------------------------------------------------

// The input is replaced (mv -f) after qforge opened and verified it: the verified descriptor is
// what gets quantized, never the swapped-in file.
TEST_F(Faults, Case1SwapAfterVerificationLoadsTheVerifiedFile) {
  const std::string want = sha_of_file(in_);
  auto r = run_with_fault(
      {"--require-checksum", "--log-level", "error", "quantize", in_, out_, "Q8_0", "--json"},
      "input.verified:stop", [&](pid_t) { fs::rename(evil_, in_); });
  ASSERT_TRUE(r.stopped) << "the fault point input.verified was never reached";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rep = nlohmann::json::parse(r.out);
  EXPECT_EQ(rep["input_sha256"], want);
  EXPECT_EQ(rep["tensors"].size(), 21u);  // the 2-layer original, not the 1-layer swap
  EXPECT_EQ(test::pair_problem(out_), "");
}

// A symlink to a file outside --allowed-dir is swapped in after the check: not loaded.
TEST_F(Faults, Case1SymlinkSwapOutsideAllowedDirIsNotLoaded) {
  test::TempDir allowed;
  const std::string inside = allowed.file("m.gguf");
  fs::copy_file(in_, inside);
  fs::copy_file(in_ + ".sha256", inside + ".sha256");
  std::ofstream(inside + ".sha256") << sha_of_file(inside) << "  m.gguf\n";
  auto r = run_with_fault({"--allowed-dir", allowed.path().string(), "inspect", "--json", inside},
                          "input.opened:stop", [&](pid_t) {
                            fs::remove(inside);
                            fs::create_symlink(evil_, inside);
                          });
  ASSERT_TRUE(r.stopped) << "the fault point input.opened was never reached";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensors"].size(), 21u) << "the file outside the allowed directory was loaded";
  // Started on the symlink itself, the same command is refused.
  auto refused = run_with_fault({"--allowed-dir", allowed.path().string(), "inspect", inside}, "");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(test::line_count(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("outside the allowed directory"), std::string::npos) << refused.err;
}

// The file is rewritten in place while its checksum is being computed: refused, not loaded.
TEST_F(Faults, Case1InPlaceRewriteDuringVerificationIsRefused) {
  const std::string evil = test::read_all(evil_);
  auto r = run_with_fault(quantize(in_, out_, "Q8_0", false), "input.opened:stop", [&](pid_t) {
    std::ofstream(in_, std::ios::binary | std::ios::trunc) << evil;
  });
  ASSERT_TRUE(r.stopped);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("in.gguf"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_EQ(test::temp_files(dir_.path().string()), std::vector<std::string>{});
}

// ---- case 2: SIGINT / SIGTERM / SIGHUP ---------------------------------------------------

// Each signal at points drawn from the seed (mid-write, before the renames), over a fresh
// output and over an existing one: exit 128 + signal, one line, nothing left but the previous
// pair.
TEST_F(Faults, Case2SignalsRemoveTempsAndKeepTheTarget) {
  std::mt19937 rng(kSeed);
  const std::pair<const char*, int> sigs[] = {{"int", 2}, {"term", 15}, {"hup", 1}};
  for (bool existing : {false, true}) {
    if (existing) write_previous_output();
    for (const auto& [name, sig] : sigs) {
      std::vector<std::string> points = {"atomic.create", "atomic.sidecar_write",
                                         "atomic.before_rename"};
      for (int k : draw(rng, 2, 2, 20)) points.push_back("atomic.write@" + std::to_string(k));
      for (const auto& p : points) {
        const std::string what = p + ":" + name + (existing ? " over an existing output" : "");
        auto r = run_with_fault(quantize(in_, out_, "Q8_0", true), p + ":" + name);
        EXPECT_EQ(r.exit_code, 128 + sig) << what << ": " << r.err;
        EXPECT_EQ(test::line_count(r.err), 1) << what << ": " << r.err;
        EXPECT_NE(r.err.find("interrupted"), std::string::npos) << what << ": " << r.err;
        expect_previous_or_absent(what);
        expect_clean_outcome(what);
      }
    }
  }
}

// The same for convert (models/mini, the repo's small checkpoint), mid-write.
TEST_F(Faults, Case2SignalsDuringConvertRemoveTemps) {
  const std::string mini = test::source_dir() + "/models/mini";
  if (!fs::exists(mini + "/model.safetensors")) GTEST_SKIP() << "needs models/mini";
  std::mt19937 rng(kSeed + 2);
  const std::pair<const char*, int> sigs[] = {{"int", 2}, {"term", 15}, {"hup", 1}};
  for (const auto& [name, sig] : sigs)
    for (int k : draw(rng, 1, 2, 20)) {
      const std::string p = "atomic.write@" + std::to_string(k) + ":" + name;
      auto r = run_with_fault({"--log-level", "error", "convert", mini, out_}, p);
      EXPECT_EQ(r.exit_code, 128 + sig) << p << ": " << r.err;
      EXPECT_EQ(test::line_count(r.err), 1) << p << ": " << r.err;
      expect_previous_or_absent(p);
      expect_clean_outcome(p);
    }
}

// A signal during the two renames is held until both are done: the new pair is complete.
TEST_F(Faults, Case2SignalDuringRenamesPublishesTheWholeNewPair) {
  write_previous_output();
  for (const char* sig : {"int", "term", "hup"}) {
    auto r = run_with_fault(quantize(in_, out_, "Q8_0", true),
                            std::string("atomic.between_renames:") + sig);
    EXPECT_GT(r.exit_code, 128) << sig << ": " << r.err;
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_TRUE(test::read_all(out_) != prev_) << sig << ": the new output was not published";
    expect_clean_outcome(sig);
  }
}

// A real signal from outside while the writer is stopped in the middle of its output.
TEST_F(Faults, Case2ExternalSigtermMidWrite) {
  write_previous_output();
  auto r = run_with_fault(quantize(in_, out_, "Q8_0", true), "atomic.write@5:stop",
                          [](pid_t pid) { kill(pid, SIGTERM); });
  ASSERT_TRUE(r.stopped);
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  expect_previous_or_absent("external SIGTERM");
  expect_clean_outcome("external SIGTERM");
}

// With --log-format json the interrupt line is one JSON error event.
TEST_F(Faults, Case2InterruptLineIsJsonInJsonMode) {
  auto r = run_with_fault(
      {"--log-format", "json", "--log-level", "error", "quantize", in_, out_, "Q8_0"},
      "atomic.write@3:int");
  EXPECT_EQ(r.exit_code, 130) << r.err;
  ASSERT_EQ(test::line_count(r.err), 1) << r.err;
  auto j = nlohmann::json::parse(r.err, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.err;
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["signal"], "SIGINT");
  EXPECT_EQ(j["exit_code"], 130);
  EXPECT_TRUE(j["ts"].is_number());
  expect_clean_outcome("json");
}

// Without any fault hook: SIGTERM as soon as the temp file appears.
TEST_F(Faults, Case2SigtermAsSoonAsTheTempAppears) {
  test::SyntheticModel big;
  big.hidden = 512;
  big.ffn = 1536;
  big.n_layer = 4;
  const std::string src = dir_.file("big.gguf");
  ASSERT_TRUE(test::write_synthetic_gguf(src, big).ok());
  test::Child c = test::Child::spawn(quantize(src, out_, "Q4_K_M", false), "");
  bool seen = false;
  for (int i = 0; i < 20000 && !seen; ++i) {
    seen = !test::temp_files(dir_.path().string()).empty();
    if (!seen) usleep(100);
  }
  kill(c.pid(), SIGTERM);
  ChildResult r = c.finish();
  if (!seen || r.exit_code == 0) GTEST_SKIP() << "the write finished before the signal";
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_EQ(test::temp_files(dir_.path().string()), std::vector<std::string>{});
}

// ---- kill -9 at several points -------------------------------------------------------------

// SIGKILL cannot be handled: the previous pair survives, the dead writer's temps stay until the
// next write to the same target, which removes them. Killed exactly between the two renames,
// the new file sits beside the old sidecar: every load refuses it until it is rewritten.
TEST_F(Faults, KillNineAtSeveralPoints) {
  write_previous_output();
  std::mt19937 rng(kSeed + 9);
  std::vector<std::string> points = {"atomic.create", "atomic.sidecar_write",
                                     "atomic.before_rename", "input.verified"};
  for (int k : draw(rng, 3, 2, 20)) points.push_back("atomic.write@" + std::to_string(k));
  for (const auto& p : points) {
    auto r = run_with_fault(quantize(in_, out_, "Q8_0", true), p + ":kill");
    EXPECT_EQ(r.term_signal, SIGKILL) << p;
    expect_previous_or_absent(p);
    EXPECT_EQ(test::pair_problem(out_), "") << p;
  }
  // The next writer sweeps the dead writers' temps.
  auto again = run_with_fault(quantize(in_, out_, "Q4_0", true), "");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(test::read_all(out_) == prev_);  // same input and mix: the same bytes
  expect_clean_outcome("after the sweep");

  auto torn = run_with_fault(quantize(in_, out_, "Q8_0", true), "atomic.between_renames:kill");
  EXPECT_EQ(torn.term_signal, SIGKILL);
  EXPECT_TRUE(test::read_all(out_) != prev_);
  auto load = run_with_fault({"inspect", out_}, "");
  EXPECT_EQ(load.exit_code, 1) << "a file beside a stale sidecar was loaded";
  EXPECT_NE(load.err.find("SHA-256 mismatch"), std::string::npos) << load.err;
  auto fixed = run_with_fault(quantize(in_, out_, "Q8_0", true), "");
  ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
  expect_clean_outcome("rewritten after a torn commit");
}

// ---- case 3: disk full -------------------------------------------------------------------

// ENOSPC drawn at data writes, at the sidecar write and at the rename: one line, the previous
// pair intact, nothing left.
TEST_F(Faults, Case3WriteFailuresKeepThePreviousPair) {
  write_previous_output();
  std::mt19937 rng(kSeed + 3);
  std::vector<std::string> points = {"atomic.sidecar_write", "atomic.before_rename"};
  for (int k : draw(rng, 3, 1, 20)) points.push_back("atomic.write@" + std::to_string(k));
  for (const auto& p : points) {
    auto r = run_with_fault(quantize(in_, out_, "Q8_0", true), p + ":fail");
    EXPECT_EQ(r.exit_code, 1) << p << ": " << r.err;
    EXPECT_EQ(test::line_count(r.err), 1) << p << ": " << r.err;
    expect_previous_or_absent(p);
    expect_clean_outcome(p);
  }
  // In place (quantize X X --force) with the sidecar write failing: X and its sidecar survive.
  const std::string before = test::read_all(in_);
  auto r = run_with_fault(quantize(in_, in_, "Q8_0", true), "atomic.sidecar_write:fail");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(test::read_all(in_) == before) << "the model was replaced";
  expect_clean_outcome("in place");
}

// RLIMIT_FSIZE (ulimit -f) below the output size: EFBIG, previous pair intact.
TEST_F(Faults, Case3FileSizeLimitKeepsThePreviousPair) {
  write_previous_output();
  auto r = test::run_shell("ulimit -f 512; exec " + test::binary_under_test() +
                           " --log-level error quantize " + in_ + " " + out_ + " Q8_0 --force");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
  expect_previous_or_absent("ulimit -f");
  expect_clean_outcome("ulimit -f");
}

// Runs `script` in a private user+mount namespace (unshare -rm), where $T is a tmpfs of
// `kib` KiB mounted on `mnt`; returns false when namespaces or tmpfs are not permitted.
bool run_on_tmpfs(const std::string& mnt, uint64_t kib, const std::string& script,
                  test::CommandResult& r) {
  auto probe = test::run_shell("unshare -rm sh -c 'mount -t tmpfs -o size=64k none " + mnt +
                               " && umount " + mnt + "'");
  if (probe.exit_code != 0) return false;
  std::ofstream(mnt + ".sh") << "set -e\nmount -t tmpfs -o size=" << kib << "k none " << mnt
                             << "\nT=" << mnt << "\n"
                             << script << "\n";
  r = test::run_shell("unshare -rm sh " + mnt + ".sh");
  return true;
}

// The issue's reproduction: `quantize X X Q8_0 --force` on a tmpfs with room for the new file
// but not for its sidecar. The free-space check refuses before writing; X and its sidecar stay.
TEST_F(Faults, Case3InPlaceForceOnNearlyFullTmpfsKeepsTheModel) {
  auto plan = run_with_fault({"quantize", in_, out_, "Q8_0", "--dry-run", "--json"}, "");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const uint64_t out_bytes = nlohmann::json::parse(plan.out)["output_file_bytes"];
  const uint64_t in_bytes = fs::file_size(in_);
  auto pages = [](uint64_t b) { return (b + 4095) / 4096; };
  // X, its sidecar and exactly the new file: no page left for the new sidecar.
  const uint64_t kib = 4 * (pages(in_bytes) + 1 + pages(out_bytes));
  const std::string mnt = dir_.file("mnt"), keep = dir_.file("kept");
  fs::create_directory(mnt);
  fs::create_directory(keep);
  const std::string q = test::binary_under_test();
  test::CommandResult r;
  const std::string script = "cp " + in_ + " " + in_ + ".sha256 $T/\nset +e\n" + q +
                             " --log-level error quantize $T/in.gguf $T/in.gguf Q8_0 --force 2>" +
                             keep + "/err\necho $? >" + keep + "/rc\nls -a $T >" + keep +
                             "/ls\ncp $T/in.gguf $T/in.gguf.sha256 " + keep +
                             "/ 2>/dev/null || true\n";
  if (!run_on_tmpfs(mnt, kib, script, r)) GTEST_SKIP() << "cannot mount a tmpfs (unshare -rm)";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string err = test::read_all(keep + "/err");
  EXPECT_EQ(test::read_all(keep + "/rc"), "1\n") << err;
  EXPECT_EQ(test::line_count(err), 1) << err;
  EXPECT_NE(err.find("free space"), std::string::npos) << err;
  EXPECT_EQ(test::read_all(keep + "/ls"), ".\n..\nin.gguf\nin.gguf.sha256\n");
  EXPECT_TRUE(test::read_all(keep + "/in.gguf") == test::read_all(in_)) << "the model was lost";
  EXPECT_EQ(test::pair_problem(keep + "/in.gguf"), "");
}

// A read-only folder and a missing one: one line, nothing written.
TEST_F(Faults, ReadOnlyAndMissingFolders) {
  auto missing = run_with_fault(quantize(in_, dir_.file("no/such/out.gguf"), "Q8_0", false), "");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(test::line_count(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
  const std::string mnt = dir_.file("ro"), keep = dir_.file("kept");
  fs::create_directory(mnt);
  fs::create_directory(keep);
  const std::string script = "mount -o remount,ro $T\nset +e\n" + test::binary_under_test() +
                             " --log-level error quantize " + in_ + " $T/o.gguf Q8_0 2>" + keep +
                             "/err\necho $? >" + keep + "/rc\nls -a $T >" + keep + "/ls\n";
  test::CommandResult r;
  if (!run_on_tmpfs(mnt, 1024, script, r)) GTEST_SKIP() << "cannot mount a tmpfs (unshare -rm)";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string err = test::read_all(keep + "/err");
  EXPECT_EQ(test::read_all(keep + "/rc"), "1\n") << err;
  EXPECT_EQ(test::line_count(err), 1) << err;
  EXPECT_NE(err.find("Read-only file system"), std::string::npos) << err;
  EXPECT_EQ(test::read_all(keep + "/ls"), ".\n..\n");
}

// ---- case 4: two --force writers ---------------------------------------------------------

// Writer A is held between its two renames while writer B commits: B waits for the directory
// lock, so the final file and sidecar come from one writer. Then plain concurrent trials.
TEST_F(Faults, Case4TwoForcedWritersPublishWholePairs) {
  test::Child a = test::Child::spawn(quantize(in_, out_, "Q8_0", true),
                                     "atomic.before_rename:stop,atomic.between_renames:sleep=300");
  ASSERT_TRUE(a.wait_stopped()) << "writer A never reached atomic.before_rename";
  test::Child b =
      test::Child::spawn(quantize(in_, out_, "Q4_0", true), "atomic.before_rename:stop");
  ASSERT_TRUE(b.wait_stopped()) << "writer B never reached atomic.before_rename";
  kill(a.pid(), SIGCONT);
  usleep(100 * 1000);  // A is now inside its commit, sleeping between the renames
  ChildResult rb = b.finish();
  ChildResult ra = a.finish();
  EXPECT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_EQ(rb.exit_code, 0) << rb.err;
  expect_clean_outcome("held writer");
  for (int trial = 0; trial < 6; ++trial) {
    test::Child x = test::Child::spawn(quantize(in_, out_, "Q8_0", true), "");
    test::Child y = test::Child::spawn(quantize(in_, out_, "Q4_0", true), "");
    ChildResult rx = x.finish(), ry = y.finish();
    EXPECT_EQ(rx.exit_code, 0) << rx.err;
    EXPECT_EQ(ry.exit_code, 0) << ry.err;
    expect_clean_outcome("trial " + std::to_string(trial));
  }
  // No lock file or anything else is left beside the pair.
  EXPECT_EQ(test::dir_entries(dir_.path().string()),
            (std::vector<std::string>{"evil.gguf", "evil.gguf.sha256", "in.gguf", "in.gguf.sha256",
                                      "out.gguf", "out.gguf.sha256"}));
}

// ---- case 5 and 10: sidecars, FIFOs ------------------------------------------------------

std::string flip_data_byte(const std::string& path) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok());
  const uint64_t pos = f->data_offset() + f->tensors().back().offset + 17;
  std::string d = test::read_all(path);
  d[pos] = static_cast<char>(d[pos] ^ 0x40);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << d;
  return d;
}

// A sidecar that says the input is corrupt stops every load, without --require-checksum; the
// corruption is never laundered into a fresh sidecar. --no-verify skips the check.
TEST_F(Faults, Case5MismatchingSidecarIsAlwaysAnError) {
  flip_data_byte(in_);
  for (const std::vector<std::string>& args :
       {quantize(in_, out_, "Q8_0", false), std::vector<std::string>{"inspect", in_},
        std::vector<std::string>{"checksum", in_},
        std::vector<std::string>{"verify", "--no-sidecar", in_}}) {
    auto r = run_with_fault(args, "");
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(args);
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("SHA-256 mismatch"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_FALSE(fs::exists(out_ + ".sha256"));
  auto skip =
      run_with_fault({"--no-verify", "--log-level", "error", "quantize", in_, out_, "Q8_0"}, "");
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(test::pair_problem(out_), "");
}

// A sidecar whose name field names another file is refused (even with the right digest).
TEST_F(Faults, Case10SidecarNamingAnotherFileIsRefused) {
  std::ofstream(in_ + ".sha256") << sha_of_file(in_) << "  evil.gguf\n";
  for (const char* cmd : {"inspect", "verify"}) {
    auto r = run_with_fault({cmd, in_}, "");
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("names 'evil.gguf'"), std::string::npos) << r.err;
  }
  std::ofstream(in_ + ".sha256") << sha_of_file(in_) << " *sub/in.gguf\n";  // sha256sum -b form
  EXPECT_EQ(run_with_fault({"inspect", in_}, "").exit_code, 0);
}

// A FIFO given as input is refused at once instead of blocking in open().
TEST_F(Faults, Case10FifoInputIsRefusedWithoutHanging) {
  const std::string fifo = dir_.file("fifo.gguf");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  for (const std::string& args :
       {"inspect " + fifo, "quantize " + fifo + " " + out_ + " Q8_0", "verify " + fifo,
        "checksum " + fifo, "tokenize " + in_ + " --file " + fifo}) {
    auto r =
        test::run_shell("timeout 20 " + test::binary_under_test() + " --log-level error " + args);
    EXPECT_EQ(r.exit_code, 1) << args << " (124: it hung)";
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("FIFO"), std::string::npos) << args << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(out_));
}

}  // namespace
}  // namespace qforge
