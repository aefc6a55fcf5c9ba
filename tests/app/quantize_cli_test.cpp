// `qforge quantize` end to end: --help, --dry-run (exact size, nothing written), --json report,
// and issue #3's bad inputs (acceptance 5): wrong type name, truncated input, missing output
// directory, output path that is a directory, disk full, existing output without --force —
// each one line on stderr, exit code != 0, no output and no temp file left.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "kernels/codec.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::count_newlines;

namespace fs = std::filesystem;

std::string make_input(const test::TempDir& dir) {
  const std::string in = dir.file("in.gguf");
  test::SyntheticModel m;  // ~1 MB of F16
  auto st = test::write_synthetic_gguf(in, m);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return in;
}

// Nothing but `keep` (and their sidecars) in the directory: no output, no temp file.
void expect_only(const test::TempDir& dir, std::initializer_list<std::string> keep) {
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    std::string name = e.path().filename().string();
    bool ok = false;
    for (const auto& k : keep) ok |= name == k || name == k + ".sha256";
    EXPECT_TRUE(ok) << "unexpected file " << e.path();
  }
}

// Runs qforge showing only its error line (--log-level error).
test::CommandResult quantize(const std::string& args) {
  return test::run_qforge("--log-level error quantize " + args);
}

bool have_q8() {
  return find_codec(Type::Q8_0) && find_codec(Type::Q6_K);
}

TEST(QuantizeCli, HelpListsOptionsAndMixes) {
  auto r = test::run_qforge("quantize --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"--imatrix", "--tensor-type", "--output-tensor-type",
                        "--token-embedding-type", "--pure", "--allow-requantize", "--threads",
                        "--dry-run", "--json", "--force", "--ggml-compatible", "Q4_K_M", "IQ4_XS"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(QuantizeCli, WrongTypeNameListsTheValidOnes) {
  test::TempDir dir;
  const std::string in = make_input(dir);
  auto r = quantize(in + " " + dir.file("o.gguf") + " Q4_K_Z");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown quantization type 'Q4_K_Z'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Q4_K_M"), std::string::npos);
  EXPECT_NE(r.err.find("Q8_0"), std::string::npos);
  auto t = quantize(in + " " + dir.file("o.gguf") + " Q8_0 --tensor-type attn_v=Q7_K");
  EXPECT_NE(t.exit_code, 0);
  EXPECT_EQ(count_newlines(t.err), 1) << t.err;
  EXPECT_NE(t.err.find("unknown tensor type 'Q7_K'"), std::string::npos) << t.err;
  auto o = quantize(in + " " + dir.file("o.gguf") + " Q8_0 --output-tensor-type bogus");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find("--output-tensor-type"), std::string::npos) << o.err;
  expect_only(dir, {"in.gguf"});
}

TEST(QuantizeCli, DryRunPrintsExactSizeAndWritesNothing) {
  if (!have_q8()) GTEST_SKIP() << "codecs not available yet";
  test::TempDir dir;
  const std::string in = make_input(dir);
  const std::string out = dir.file("o.gguf");
  auto r = quantize(in + " " + out + " Q8_0 --dry-run --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto plan = nlohmann::json::parse(r.out);
  EXPECT_EQ(plan["dry_run"], true);
  EXPECT_EQ(plan["mix"], "Q8_0");
  expect_only(dir, {"in.gguf"});
  auto human = quantize(in + " " + out + " Q8_0 --dry-run");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("output file: " +
                           std::to_string(plan["output_file_bytes"].get<uint64_t>()) + " bytes"),
            std::string::npos)
      << human.out;

  auto q = test::run_qforge("quantize " + in + " " + out + " Q8_0 --json --threads 2");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto rep = nlohmann::json::parse(q.out);
  EXPECT_EQ(fs::file_size(out), plan["output_file_bytes"].get<uint64_t>());
  EXPECT_EQ(rep["output_file_bytes"], plan["output_file_bytes"]);
  EXPECT_EQ(rep["threads"], 2);
  EXPECT_EQ(rep["output_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(rep["input_sha256"].get<std::string>().size(), 64u);
  EXPECT_NE(q.err.find("quantizing " + in), std::string::npos) << q.err;  // quantize.starting
  // The written file verifies against its sidecar.
  auto v = test::run_qforge("verify " + out);
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST(QuantizeCli, TruncatedInputIsACleanError) {
  test::TempDir dir;
  const std::string in = make_input(dir);
  const std::string cut = dir.file("cut.gguf");
  {
    std::string bytes = test::read_all(in);
    std::ofstream(cut, std::ios::binary).write(bytes.data(), bytes.size() / 2);
  }
  auto r = quantize(cut + " " + dir.file("o.gguf") + " Q8_0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("cut.gguf"), std::string::npos) << r.err;
  expect_only(dir, {"in.gguf", "cut.gguf"});
}

TEST(QuantizeCli, BadOutputPathsAreCleanErrors) {
  if (!have_q8()) GTEST_SKIP() << "codecs not available yet";
  test::TempDir dir;
  const std::string in = make_input(dir);
  // Output directory does not exist.
  auto r = quantize(in + " " + dir.file("nope/o.gguf") + " Q8_0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  // Output path is a directory.
  fs::create_directory(dir.file("adir"));
  r = quantize(in + " " + dir.file("adir") + " Q8_0 --force");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(dir.file("adir")));
  // Existing output without --force: refused, untouched; with --force: replaced.
  const std::string out = dir.file("o.gguf");
  std::ofstream(out) << "precious";
  r = quantize(in + " " + out + " Q8_0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_all(out), "precious");
  expect_only(dir, {"in.gguf", "o.gguf", "adir"});
  r = quantize(in + " " + out + " Q8_0 --force");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(GgufFile::open(out).ok());
}

TEST(QuantizeCli, DiskFullLeavesNoOutput) {
  if (!have_q8()) GTEST_SKIP() << "codecs not available yet";
  test::TempDir dir;
  const std::string in = make_input(dir);
  const std::string out = dir.file("o.gguf");
  // RLIMIT_FSIZE of 64 KiB (the output is ~600 KB): writes fail with EFBIG, as on a full disk.
  // Only qforge gets the limit; its stderr goes through a pipe to a process without it.
  auto r = test::run_shell("bash -c '(ulimit -f 64; exec " + test::qforge_binary() +
                           " --log-level error quantize " + in + " " + out +
                           " Q8_0) 2>&1 >/dev/null | cat >&2; exit ${PIPESTATUS[0]}'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("o.gguf"), std::string::npos) << r.err;
  expect_only(dir, {"in.gguf"});
}

TEST(QuantizeCli, NonFiniteInputNamesTheTensor) {
  if (!have_q8()) GTEST_SKIP() << "codecs not available yet";
  test::TempDir dir;
  test::SyntheticModel m;
  m.non_finite_tensor = "blk.1.attn_v.weight";
  ASSERT_TRUE(test::write_synthetic_gguf(dir.file("nan.gguf"), m).ok());
  auto r = quantize(dir.file("nan.gguf") + " " + dir.file("o.gguf") + " Q8_0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("'blk.1.attn_v.weight': NaN or Inf"), std::string::npos) << r.err;
  expect_only(dir, {"nan.gguf"});
}

TEST(QuantizeCli, ImatrixFileIsValidatedAndRecorded) {
  if (!find_codec(Type::Q4_K) || !have_q8()) GTEST_SKIP() << "codecs not available yet";
  test::TempDir dir;
  const std::string in = make_input(dir);
  std::ofstream(dir.file("bad.dat"), std::ios::binary) << "garbage!";
  auto r = quantize(in + " " + dir.file("o.gguf") + " Q4_K_M --imatrix " + dir.file("bad.dat"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_newlines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("bad.dat"), std::string::npos) << r.err;
  // A good one: entries for two matrices.
  Imatrix m;
  m.chunk_count = 3;
  m.datasets = {"calib.txt"};
  m.entries.push_back({"blk.0.attn_q.weight", std::vector<float>(256, 0.5f), 1, 3});
  m.entries.push_back({"blk.1.ffn_down.weight", std::vector<float>(512, 2.0f), 1, 3});
  ASSERT_TRUE(write_imatrix_dat(dir.file("good.dat"), m).ok());
  r = quantize(in + " " + dir.file("o.gguf") + " Q4_K_M --imatrix " + dir.file("good.dat"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = GgufFile::open(dir.file("o.gguf"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->get_string_or("quantize.imatrix.dataset", ""), "calib.txt");
  EXPECT_EQ(*g->get_uint("quantize.imatrix.entries_count"), 2u);
  EXPECT_EQ(*g->get_uint("quantize.imatrix.chunks_count"), 3u);
}

}  // namespace
}  // namespace qforge
