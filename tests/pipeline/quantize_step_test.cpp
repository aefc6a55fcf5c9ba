// The ladder's quantize step uses the same statistics as `qforge quantize --imatrix FILE`: the
// covariances beside FILE (error feedback) when they exist, the refined search otherwise. The
// output bytes of both paths must be identical.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "formats/covariance.h"
#include "pipeline/steps.h"
#include "quant/synthetic_covariance.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

// A one-layer synthetic model and an imatrix for its matmuls (no covariances yet).
class QuantizeStep : public ::testing::Test {
 protected:
  void SetUp() override {
    model.n_layer = 1;
    ASSERT_TRUE(test::write_synthetic_gguf(in, model).ok());
    ASSERT_TRUE(test::write_synthetic_imatrix(imx, model).ok());
    o.imatrix = imx;
    o.threads = 2;
    o.overwrite = true;
  }
  std::string cli_quantize(const std::string& name, const std::string& extra) {
    const std::string out = dir.file(name);
    EXPECT_EQ(
        test::run_qforge("quantize " + in + " " + out + " Q4_K_M -t 2 --imatrix " + imx + extra)
            .exit_code,
        0);
    return test::read_all(out);
  }

  test::TempDir dir;
  test::SyntheticModel model;
  const std::string in = dir.file("in.gguf");
  const std::string imx = dir.file("c.imatrix");
  QuantizeStepOptions o;
};

TEST_F(QuantizeStep, UsesTheCovariancesBesideTheImatrixAsQuantizeDoes) {
  // Without FILE.cov: the refined search, as `quantize --method refined`.
  auto r = quantize_step(in, dir.file("step-refined.gguf"), "Q4_K_M", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string step_refined = test::read_all(dir.file("step-refined.gguf"));
  EXPECT_EQ(step_refined, cli_quantize("cli-refined.gguf", " --method refined"));

  // With FILE.cov: error feedback, byte-identical to the command's default.
  ASSERT_TRUE(test::write_synthetic_covariance(covariance_path_for(imx), model).ok());
  r = quantize_step(in, dir.file("step-gptq.gguf"), "Q4_K_M", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string step_gptq = test::read_all(dir.file("step-gptq.gguf"));
  EXPECT_EQ(step_gptq, cli_quantize("cli-gptq.gguf", ""));
  EXPECT_NE(step_gptq, step_refined);
  EXPECT_EQ(step_gptq.size(), step_refined.size());
}

TEST_F(QuantizeStep, ACovarianceFileThatDoesNotParseIsAnErrorNamingIt) {
  std::ofstream(covariance_path_for(imx)) << "not a covariance file";
  auto r = quantize_step(in, dir.file("o.gguf"), "Q4_K_M", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(imx + ".cov"), std::string::npos) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf")));
}

}  // namespace
}  // namespace qforge
