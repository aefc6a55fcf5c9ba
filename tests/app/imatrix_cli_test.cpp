// qforge imatrix on the command line: a short run on mini (both formats, with and without
// covariances, --compare), and one-line errors for bad input (missing text, a context too
// large for the model or the text, existing outputs without --force).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_expect.h"
#include "formats/covariance.h"
#include "formats/imatrix.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::expect_clean_error;
using test::shell_quote;

using test::run_qforge;

std::string mini() {
  return shell_quote(test::shared_path("reference/mini-f16.gguf"));
}
std::string eval_text() {
  return shell_quote(test::shared_path("data/eval.txt"));
}

TEST(ImatrixCli, HelpListsTheOptions) {
  auto r = run_qforge("imatrix --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* o : {"--file", "--ctx", "--chunks", "--process-output", "--format",
                        "--covariance", "--compare", "--force", "--json", "--output"})
    EXPECT_NE(r.out.find(o), std::string::npos) << o;
}

TEST(ImatrixCli, WritesBothFilesAndTheyLoad) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  QF_REQUIRE_SHARED("data/eval.txt");
  test::TempDir tmp;
  const std::string out = tmp.file("mini.imatrix");
  auto r = run_qforge("--log-level error imatrix " + mini() + " --file " + eval_text() +
                      " --ctx 64 --chunks 3 --threads 2 --json -o " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["entries"], 28);  // 4 layers x 7 matrices, no head
  EXPECT_EQ(j["chunks"], 3);
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
  EXPECT_NE(r.err.find("[3]"), std::string::npos) << r.err;          // llama-imatrix's progress
  EXPECT_NE(r.err.find("MiB on disk"), std::string::npos) << r.err;  // size stated first
  auto im = load_imatrix(out);
  ASSERT_TRUE(im.ok()) << im.error().message;
  EXPECT_EQ(im->format, "gguf");
  auto cov = CovarianceFile::open(covariance_path_for(out));
  ASSERT_TRUE(cov.ok()) << cov.error().message;
  EXPECT_EQ(cov->size(), 28u);
  auto v = cov->find("blk.2.ffn_up.weight");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->name, "cov.blk.2.ffn_in");
  EXPECT_EQ(v->counts[0], 3.0f * 64);
  const ImatrixEntry* e = im->find("blk.2.ffn_up.weight");
  for (uint64_t i = 0; i < v->n; ++i)
    EXPECT_NEAR(v->matrix(0)[i * v->n + i], e->importance[i], 1e-5 * e->importance[i] + 1e-9);

  // The legacy format of the same run, without covariances, compared with the first.
  const std::string dat = tmp.file("mini.dat");
  auto d = run_qforge("--log-level error imatrix " + mini() + " --file " + eval_text() +
                      " --ctx 64 --chunks 3 --threads 2 --format dat --covariance none --json"
                      " --compare " +
                      shell_quote(out) + " -o " + shell_quote(dat));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_FALSE(std::filesystem::exists(covariance_path_for(dat)));
  const auto jd = nlohmann::json::parse(d.out);
  EXPECT_EQ(jd["compare"]["tensors"], 28);
  EXPECT_LT(jd["compare"]["max_rel"].get<double>(), 1e-6);
  auto legacy = load_imatrix(dat);
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_EQ(legacy->format, "dat");
  EXPECT_EQ(legacy->entries.front().count, 3u);  // llama-imatrix's ncall: chunks

  // Existing outputs are kept without --force (FILE, or only FILE.cov).
  const auto before = test::read_all(out);
  expect_clean_error(run_qforge("imatrix " + mini() + " --file " + eval_text() +
                                " --ctx 64 --chunks 1 -o " + shell_quote(out)),
                     "already exists (use --force");
  EXPECT_EQ(test::read_all(out), before);
  std::filesystem::remove(out);
  expect_clean_error(run_qforge("imatrix " + mini() + " --file " + eval_text() +
                                " --ctx 64 --chunks 1 -o " + shell_quote(out)),
                     "mini.imatrix.cov: already exists");
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(ImatrixCli, JsonLogFormatKeepsStderrJsonLines) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  QF_REQUIRE_SHARED("data/eval.txt");
  test::TempDir tmp;
  auto r = run_qforge("--log-format json imatrix " + mini() + " --file " + eval_text() +
                      " --ctx 64 --chunks 2 --threads 2 -o " + shell_quote(tmp.file("j.imatrix")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.err);
  std::string line;
  int chunks = 0, size_events = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    chunks += j.value("event", "") == "imatrix.chunk";
    size_events += j.value("event", "") == "imatrix.covariance";
  }
  EXPECT_EQ(chunks, 2);
  EXPECT_EQ(size_events, 1);
}

TEST(ImatrixCli, BadInputsAreOneLineErrors) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  test::TempDir tmp;
  const std::string out = tmp.file("x.imatrix");
  expect_clean_error(run_qforge("imatrix " + mini() + " --file " +
                                shell_quote(tmp.file("nope.txt")) + " -o " + shell_quote(out)),
                     "nope.txt");
  std::ofstream(tmp.file("short.txt")) << "just a few words";
  expect_clean_error(run_qforge("imatrix " + mini() + " --file " +
                                shell_quote(tmp.file("short.txt")) + " -o " + shell_quote(out)),
                     "fewer than 2 x ctx");
  expect_clean_error(
      run_qforge("imatrix " + mini() + " --file " + shell_quote(tmp.file("short.txt")) +
                 " --ctx 100000 -o " + shell_quote(out)),
      "exceeds the model's context length");
  expect_clean_error(
      run_qforge("imatrix " + mini() + " --file " + shell_quote(tmp.file("short.txt")) +
                 " --format bin -o " + shell_quote(out)),
      "--format");
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".cov"));
}

}  // namespace
}  // namespace qforge
