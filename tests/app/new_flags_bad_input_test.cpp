// Bad values of this batch's options (--kv-type, --gptq-search, --calibration, a --proxy file,
// a type pinned under a size target that is not a candidate):
// each is one line naming the option or the file, a non-zero exit, and no output file left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::count_newlines;

namespace fs = std::filesystem;

TEST(NewFlagsBadInput, EachIsOneLineAndLeavesNoOutput) {
  test::TempDir tmp;
  const std::string in = tmp.file("in.gguf");
  ASSERT_TRUE(test::write_synthetic_gguf(in, test::SyntheticModel{}).ok());
  const std::string out = tmp.file("out.gguf");
  std::ofstream(tmp.file("typo.json"))
      << R"({"factors": {"attn_v.weight": 2}, "tensor_factor": {}})";
  struct Case {
    std::string args, expect;
    int exit_code;
  } cases[] = {
      {"bench " + in + " --kv-type q4 -p 1 -n 1", "--kv-type: q4 not in {f16,f32}", 2},
      {"perplexity " + in + " --file " + in + " --kv-type f8", "--kv-type", 2},
      {"quantize " + in + " " + out + " Q4_K_M --gptq-search -1", "--gptq-search", 2},
      {"quantize " + in + " " + out + " --target-size 100000 --calibration " +
           tmp.file("missing.txt"),
       "missing.txt: cannot open", 1},
      {"quantize " + in + " " + out + " --target-size 100000 --proxy " + tmp.file("typo.json"),
       "typo.json: unknown key 'tensor_factor' in a proxy file", 1},
      // A type pinned under a size target that the table did not price.
      {"quantize " + in + " " + out + " --target-size 2MB --output-tensor-type Q5_0",
       "tensor 'output.weight' is given Q5_0 explicitly, which is not among the candidate types",
       1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const auto r = test::run_qforge(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(count_newlines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".sha256"));
  }
}

}  // namespace
}  // namespace qforge
