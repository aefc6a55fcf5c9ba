// Gates: the bundled file parses, each bad file is one clear error naming file, line and key,
// checks compare in the key's direction, and the JUnit XML is well-formed (xmllint).
#include <gtest/gtest.h>

#include <fstream>

#include "pipeline/gates.h"
#include "test_util.h"

namespace qforge {
namespace {

TEST(Gates, BundledFileParses) {
  auto spec = load_gates(test::source_dir() + "/data/gates.toml");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  std::vector<std::string> keys;
  for (const auto& c : spec->checks) keys.push_back(c.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"ppl_ratio", "kld_mean", "kld_p99", "same_top_pct",
                                            "critical_pass_rate", "peak_rss_mb", "tg_ratio",
                                            "checksum"}));
  EXPECT_DOUBLE_EQ(spec->checks[0].limit, 1.10);
  EXPECT_EQ(spec->checks[0].op, GateOp::AtMost);
  EXPECT_EQ(spec->checks[3].op, GateOp::AtLeast);
}

TEST(Gates, BadFilesAreOneClearLine) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[gates]\nkld_mean = 0.05\nkld_maen = 0.1\n", "g.toml:3: unknown gate key 'kld_maen'"},
      {"[gates]\nkld_mean = 0.05\nppl_ratio = [1\n", "g.toml:3:"},
      {"[gates\nkld_mean = 0.05\n", "malformed TOML"},
      {"[gates]\nkld_mean = \"low\"\n", "gate 'kld_mean' needs a non-negative number"},
      {"[gates]\nchecksum = \"maybe\"\n", "gate 'checksum' must be \"verified\""},
      {"[limits]\nkld_mean = 0.05\n", "unknown section 'limits'"},
      {"title = 1\n", "unknown section 'title'"},
      {"[gates]\n", "holds no gate"},
      {"", "no [gates] table"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.toml);
    auto r = parse_gates(c.toml, "g.toml");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.rfind("g.toml", 0), 0u) << r.error().message;
  }
}

TEST(Gates, ChecksFollowEachKeysDirection) {
  auto spec = parse_gates(
      "[gates]\nppl_ratio = 1.1\nsame_top_pct = 90\ncritical_pass_rate = 0.9\nchecksum = "
      "\"verified\"\n",
      "g.toml");
  ASSERT_TRUE(spec.ok());
  GateMeasures m;
  m.ppl_ratio = 1.05;
  m.same_top_pct = 89.9;
  m.checksum = "verified";
  auto out = evaluate_gates(*spec, m);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[0].passed);
  EXPECT_FALSE(out[1].passed);
  EXPECT_FALSE(out[2].passed);  // not measured is a failure, never a silent pass
  EXPECT_EQ(out[2].value, "not measured");
  EXPECT_TRUE(out[3].passed);
  EXPECT_FALSE(all_passed(out));
  EXPECT_EQ(first_failure(out), "same_top_pct 89.9 < 90");
  m.same_top_pct = 90;
  m.critical_pass_rate = 0.95;
  EXPECT_TRUE(all_passed(evaluate_gates(*spec, m)));
  m.checksum = "x.gguf: checksum mismatch";
  EXPECT_FALSE(evaluate_gates(*spec, m)[3].passed);
}

TEST(Gates, JunitXmlIsWellFormed) {
  auto spec = parse_gates("[gates]\nkld_mean = 0.05\nsame_top_pct = 90\n", "g.toml");
  ASSERT_TRUE(spec.ok());
  GateMeasures m;
  m.kld_mean = 0.2;
  m.same_top_pct = 95;
  const std::string xml = gate_junit_xml(evaluate_gates(*spec, m), "suite <&> \"x\"", 1.5);
  EXPECT_NE(xml.find("<testcase classname=\"qforge.gate\" name=\"kld_mean\""), std::string::npos);
  EXPECT_NE(xml.find("failures=\"1\""), std::string::npos);
  test::TempDir tmp;
  std::ofstream(tmp.file("j.xml")) << xml;
  auto have = test::run_shell("command -v xmllint");
  if (have.exit_code != 0) GTEST_SKIP() << "xmllint not installed (libxml2-utils)";
  auto r = test::run_shell("xmllint --noout " + tmp.file("j.xml"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto cnt = test::run_shell("xmllint --xpath 'count(//testcase)' " + tmp.file("j.xml"));
  EXPECT_EQ(cnt.out.substr(0, cnt.out.find_last_not_of("\n") + 1), "2");
  auto fl = test::run_shell("xmllint --xpath 'count(//testcase/failure)' " + tmp.file("j.xml"));
  EXPECT_EQ(fl.out.substr(0, fl.out.find_last_not_of("\n") + 1), "1");
}

}  // namespace
}  // namespace qforge
