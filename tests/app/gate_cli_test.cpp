// qforge gate: acceptance 3 on refmodel (Q2_K fails, Q8_0 passes the default quality gates; the
// JUnit file parses with xmllint) and bad inputs (unknown key, malformed TOML): one line each.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qforge {
namespace {

// One test per mix, so that CTest runs the two (each quantizes refmodel and gates it with
// evaluation chunks and the critical prompts: minutes under ASan) in parallel.
class GateCliRefmodel : public ::testing::TestWithParam<const char*> {};

TEST_P(GateCliRefmodel, Q2KFailsQ8_0Passes) {
  QF_REQUIRE_SHARED("reference/refmodel-f16.gguf");
  QF_REQUIRE_SHARED("data/eval.txt");
  // refmodel, not mini: mini answers only 79 % of the critical prompts even in F16.
  const std::string ref = test::shared_path("reference/refmodel-f16.gguf");
  test::TempDir tmp;
  std::string prompts = test::shared_path("data/critical-prompts.jsonl");
  {
    const std::string mix = GetParam();
    const std::string q = tmp.file(mix + ".gguf");
    // Under the sanitizers with ggml's encoders: the default encoders' Q2_K search takes most
    // of a minute there, and the release run covers them; the verdicts are the same.
    ASSERT_EQ(test::run_qforge("quantize " + ref + " " + q + " " + mix +
                               (test::kSanitized ? " --ggml-compatible" : ""))
                  .exit_code,
              0);
    const std::string junit = tmp.file(mix + ".xml");
    // A few chunks keep the test fast; the acceptance figure with the defaults is in
    // docs/BENCHMARKS.md.
    // The bundled gates with a loose speed bound: a unit test must not depend on the load of
    // the machine (tg is still measured and checked; speed targets live in bench/).
    std::string spec = test::read_all(std::string(QFORGE_SOURCE_DIR) + "/data/gates.toml");
    const auto at = spec.find("tg_ratio = 0.66");
    ASSERT_NE(at, std::string::npos);
    spec.replace(at, 15, "tg_ratio = 0.01");
    std::ofstream(tmp.file("gates.toml")) << spec;
    auto r = test::run_qforge(
        "gate " + q + " --baseline " + ref + " --spec " + tmp.file("gates.toml") + " --eval-text " +
        test::shared_path("data/eval.txt") + " --prompts " + prompts + " --junit " + junit +
        " --chunks " + (test::kSanitized ? "2" : "8") +
        // The speed benchmark (pp512 + tg128 of both models) is most of the run under the
        // sanitizers, where its figure means nothing; it is skipped there.
        (test::kSanitized ? " --no-bench" : "") + " --json");
    const bool pass = mix == "Q8_0";
    EXPECT_EQ(r.exit_code, pass ? 0 : 1) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["passed"].get<bool>(), pass);
    const size_t n_checks = test::kSanitized ? 7 : 8;
    EXPECT_EQ(j["checks"].size(), n_checks);
    if (test::kSanitized) {
      EXPECT_EQ(j["skipped"], nlohmann::json::array({"tg_ratio"}));
    }
    if (!pass) {
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      // One line naming the first failing check of the default gates file.
      EXPECT_NE(r.err.find("checks failed (ppl_ratio"), std::string::npos) << r.err;
    }
    const std::string xml = test::read_all(junit);
    EXPECT_NE(xml.find("<testsuite "), std::string::npos);
    if (test::run_shell("command -v xmllint").exit_code == 0) {
      EXPECT_EQ(test::run_shell("xmllint --noout " + junit).exit_code, 0);
      EXPECT_EQ(test::run_shell("xmllint --xpath 'count(//testcase)' " + junit).out.substr(0, 1),
                std::to_string(n_checks));
    }
  }
}
INSTANTIATE_TEST_SUITE_P(Mixes, GateCliRefmodel, ::testing::Values("Q2_K", "Q8_0"));

TEST(GateCli, BadGatesFileIsOneLine) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  const std::string mini = test::shared_path("reference/mini-f16.gguf");
  test::TempDir tmp;
  std::ofstream(tmp.file("unknown.toml")) << "[gates]\nkld_mean = 0.05\nkld_maen = 0.1\n";
  std::ofstream(tmp.file("broken.toml")) << "[gates]\nkld_mean = = 0.05\n";
  struct Case {
    std::string file, expect;
  } cases[] = {{tmp.file("unknown.toml"), "unknown.toml:3: unknown gate key 'kld_maen' (known: "},
               {tmp.file("broken.toml"), "broken.toml:2:"}};
  for (const auto& c : cases) {
    auto r = test::run_qforge("gate " + mini + " --baseline " + mini + " --spec " + c.file +
                              " --junit " + tmp.file("j.xml"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(tmp.file("j.xml")));  // nothing written
  }
}

}  // namespace
}  // namespace qforge
