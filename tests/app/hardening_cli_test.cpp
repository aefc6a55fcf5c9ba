// Issue 11 (hardening), the command-line cases: partial/invalid UTF-8 in generate --json (6),
// bounded --threads (7), errors as JSON events with one usage exit code (8), NaN/Inf weights
// (9), and the smaller argument checks of case 10 (sampler ranges, unknown command).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::shell_quote;
using test::split_lines;

using test::run_qforge;

// A usage error: exit 2, one short human line naming `what`, nothing on stdout.
void expect_usage_error(const test::CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  auto l = split_lines(r.err);
  ASSERT_EQ(l.size(), 1u) << r.err;
  EXPECT_EQ(l[0].rfind("qforge: error: ", 0), 0u) << r.err;
  EXPECT_NE(l[0].find(what), std::string::npos) << r.err;
  EXPECT_LT(l[0].size(), 200u) << "the range is not spelled out digit by digit: " << r.err;
}

// Case 8: with --log-format json, stderr is JSON lines and the failure is one error event.
nlohmann::json expect_json_error(const test::CommandResult& r, int exit_code) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  nlohmann::json last;
  for (const auto& l : split_lines(r.err)) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not a JSON line: " << l;
    if (!j.is_discarded()) last = j;
  }
  EXPECT_EQ(last.value("level", ""), "error") << r.err;
  EXPECT_FALSE(last.value("msg", "").empty()) << r.err;
  EXPECT_EQ(last.value("exit_code", -1), exit_code) << r.err;
  return last;
}

TEST(HardeningCli, JsonLogFormatReportsEveryErrorAsOneJsonEvent) {
  const std::string j = "--log-format json ";
  // CLI11's parse errors: a missing argument, an unknown option, a bad value.
  auto e = expect_json_error(run_qforge(j + "generate"), 2);
  EXPECT_EQ(e["event"], "usage_error");
  EXPECT_NE(e["msg"].get<std::string>().find("MODEL"), std::string::npos);
  expect_json_error(run_qforge(j + "inspect x.gguf --no-such-option"), 2);
  expect_json_error(run_qforge(j + "generate m.gguf -p hi -t 100000"), 2);
  expect_json_error(run_qforge("--log-format=json frobnicate"), 2);
  // A command's own failure: exit 1, event "error", the file named.
  test::TempDir tmp;
  e = expect_json_error(run_qforge(j + "inspect " + shell_quote(tmp.file("missing.gguf"))), 1);
  EXPECT_EQ(e["event"], "error");
  EXPECT_NE(e["msg"].get<std::string>().find("missing.gguf"), std::string::npos);
  // Human format: CLI11's two-line messages become one line, with the same exit code 2.
  expect_usage_error(run_qforge("generate"), "MODEL");
  expect_usage_error(run_qforge("inspect x.gguf --no-such-option"), "--no-such-option");
  // --help is no error.
  auto h = run_qforge("--log-format json generate --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--temp"), std::string::npos);
}

TEST(HardeningCli, UnknownCommandIsNamed) {
  auto r = run_qforge("frobnicate x.gguf");
  expect_usage_error(r, "unknown command 'frobnicate'");
  EXPECT_NE(r.err.find("generate"), std::string::npos) << "lists the commands: " << r.err;
  // Global options before the command (and their values) are skipped.
  expect_usage_error(run_qforge("--log-level warn frobnicate"), "'frobnicate'");
}

TEST(HardeningCli, SamplerOptionsAreRangeChecked) {
  const std::string g = "generate m.gguf -p hi ";
  expect_usage_error(run_qforge(g + "--temp nan"), "--temp: must be a finite number >= 0");
  expect_usage_error(run_qforge(g + "--temp inf"), "--temp");
  expect_usage_error(run_qforge(g + "--temp -1"), "--temp");
  expect_usage_error(run_qforge(g + "--top-p 5"), "--top-p: must be a number from 0 to 1");
  expect_usage_error(run_qforge(g + "--top-p nan"), "--top-p");
  expect_usage_error(run_qforge(g + "--top-k -3"), "--top-k");
}

// Case 7: --threads is bounded (-t 10000 ran for minutes, -t -1 was accepted).
TEST(HardeningCli, ThreadCountIsBounded) {
  const std::string cap = std::to_string(max_threads());
  for (const char* cmd : {"generate m.gguf -p hi", "bench m.gguf", "perplexity m.gguf --file t",
                          "quantize a.gguf b.gguf Q8_0"}) {
    SCOPED_TRACE(cmd);
    auto r = run_qforge(std::string(cmd) + " -t 10000");
    expect_usage_error(r, "--threads: must be an integer from 0 to " + cap);
    expect_usage_error(run_qforge(std::string(cmd) + " -t -1"), "--threads");
  }
  expect_usage_error(run_qforge("ladder m out --threads 10000"), "--threads");
  // The commands added beside them take the same bound.
  for (const char* cmd :
       {"logits m.gguf --tokens-file t --out o -t 10000", "prompts m.gguf --prompts p -t 10000",
        "gate m.gguf --baseline b "
        "--threads 10000",
        "plan m.gguf --threads 10000"})
    expect_usage_error(run_qforge(cmd), "--threads: must be an integer from 0 to " + cap);
}

// Case 6: text cut inside a UTF-8 character, or an invalid prompt byte, gives valid JSON.
TEST(HardeningCli, GenerateJsonIsValidForPartialAndInvalidUtf8) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  const std::string m = shell_quote(test::shared_path("reference/mini-f16.gguf"));
  // "\xff" is never valid UTF-8; "\xe6\x97" is the start of a character without its end.
  for (const char* bytes : {"\\377", "ab\\346\\227",
                            "\\346\\227\\245\\346\\234\\254\\350\\252"
                            "\\236\\343\\201\\256"}) {
    SCOPED_TRACE(bytes);
    auto r = run_qforge("generate " + m + " -p \"$(printf '" + bytes + "')\" -n 4 -t 2 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_TRUE(j["text"].is_string());
    EXPECT_EQ(j["tokens"].size(), j["n_generated"].get<size_t>());
  }
  auto r = run_qforge("generate " + m + " -p \"$(printf 'x\\377')\" -n 1 -t 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["prompt"], "x\xEF\xBF\xBD") << "U+FFFD replaces the byte";
}

// Case 9: NaN/Inf weights are reported by verify --values and refused by the loader
// (norms) and by perplexity/generate (a NaN inside a weight matrix).
class NanWeights : public ::testing::Test {
 protected:
  // Copies mini-f16 and writes `value` (2 or 4 bytes, as the tensor type) over element `index`
  // of `tensor`.
  std::string poisoned(const std::string& tensor, uint64_t index, uint32_t value) {
    const std::string src = test::shared_path("reference/mini-f16.gguf");
    const std::string dst = tmp_.file("poisoned-" + std::to_string(n_++) + ".gguf");
    std::filesystem::copy_file(src, dst);
    auto f = GgufFile::open(src);
    EXPECT_TRUE(f.ok());
    const GgufTensorInfo* t = f->find_tensor(tensor);
    EXPECT_NE(t, nullptr) << tensor;
    const size_t es = t->type == Type::F32 ? 4 : 2;
    const uint64_t pos = f->data_offset() + t->offset + index * es;
    std::fstream io(dst, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(pos));
    io.write(reinterpret_cast<const char*>(&value), static_cast<std::streamsize>(es));
    return dst;
  }
  test::TempDir tmp_;
  int n_ = 0;
};

TEST_F(NanWeights, VerifyValuesNamesTheTensorAndTheLoaderRefusesNanNorms) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  const std::string ok = test::shared_path("reference/mini-f16.gguf");
  auto r = run_qforge("verify --no-sidecar --values " + shell_quote(ok));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("values finite"), std::string::npos) << r.out;

  const std::string norm = poisoned("blk.1.attn_norm.weight", 17, 0x7fc00000u);  // F32 NaN
  r = run_qforge("verify --no-sidecar --values --json " + shell_quote(norm));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tensor 'blk.1.attn_norm.weight': element 17 is nan"), std::string::npos)
      << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["non_finite"][0]["tensor"], "blk.1.attn_norm.weight");
  r = run_qforge("generate " + shell_quote(norm) + " -p hi -n 4 -t 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("blk.1.attn_norm.weight"), std::string::npos) << r.err;
}

TEST_F(NanWeights, PerplexityAndGenerateRefuseNonFiniteLogits) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  QF_REQUIRE_SHARED("data/eval.txt");
  // +Inf (f16 0x7c00) inside a 2-D matrix: the cheap load check does not read matrices, so the
  // forward pass sees it; the result must be an error, never "PPL = inf" or token 0 forever.
  auto f = GgufFile::open(test::shared_path("reference/mini-f16.gguf"));
  ASSERT_TRUE(f.ok());
  // Element 0 of layer 0's query matrix reaches every position's attention scores.
  const GgufTensorInfo* wq = f->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(wq, nullptr);
  ASSERT_EQ(wq->type, Type::F16);
  const std::string bad = poisoned("blk.0.attn_q.weight", 0, 0x7c00u);
  auto r = run_qforge("verify --no-sidecar --values " + shell_quote(bad));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tensor 'blk.0.attn_q.weight': element 0 is inf"), std::string::npos)
      << r.err;
  r = run_qforge("perplexity " + shell_quote(bad) + " --file " +
                 shell_quote(test::shared_path("data/eval.txt")) + " --ctx 64 --chunks 2 -t 2");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("not finite"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("PPL"), std::string::npos) << r.out;
  r = run_qforge("generate " + shell_quote(bad) + " -p 'The kernel' -n 8 -t 2 --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("not finite"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qforge
