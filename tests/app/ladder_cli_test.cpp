// Bad inputs of `qforge ladder`: each is a one-line error, exit 1, and nothing is written
// (arguments are validated before the output folder is created).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace qforge {

TEST(LadderCli, BadInputsFailBeforeWritingAnything) {
  test::TempDir tmp;
  const std::string mini = test::source_dir() + "/models/mini";
  const std::string text = test::source_dir() + "/data/eval-sample.txt";
  struct Case {
    std::string args, expect;
  } cases[] = {
      {mini + " " + tmp.file("o1") + " --mixes Q4_K_M,Q9_Z --eval-text " + text, "unknown mix 'Q9_Z'"},
      {tmp.file("nomodel") + " " + tmp.file("o2") + " --eval-text " + text, "nomodel"},
      {mini + " " + tmp.file("o3") + " --eval-text " + tmp.file("missing.txt"), "missing.txt"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = test::run_qforge("ladder " + c.args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  }
  for (const char* d : {"o1", "o2", "o3"}) EXPECT_FALSE(std::filesystem::exists(tmp.file(d))) << d;
  // An output path that is a file is refused.
  std::ofstream(tmp.file("afile")) << "x";
  auto r = test::run_qforge("ladder " + mini + " " + tmp.file("afile") + " --eval-text " + text);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
}

}  // namespace qforge
