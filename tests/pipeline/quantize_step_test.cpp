// The ladder's quantize step uses the same statistics as `qforge quantize --imatrix FILE`: the
// covariances beside FILE (error feedback) when they exist, the refined search otherwise. The
// output bytes of both paths must be identical.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "formats/covariance.h"
#include "formats/imatrix.h"
#include "pipeline/steps.h"
#include "quant/synthetic_covariance.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

void write_imatrix_for(const std::string& path, const test::SyntheticModel& m) {
  Imatrix im;
  im.chunk_count = 2;
  im.datasets = {"synthetic"};
  for (const auto& t : test::synthetic_tensors(m))
    if (!test::synthetic_cov_name(t.name).empty())
      im.entries.push_back({t.name, std::vector<float>(t.dims[0], 1.0f), 1, 2});
  ASSERT_TRUE(write_imatrix_dat(path, im).ok());
}

TEST(QuantizeStep, UsesTheCovariancesBesideTheImatrixAsQuantizeDoes) {
  test::TempDir dir;
  test::SyntheticModel m;
  m.n_layer = 1;
  const std::string in = dir.file("in.gguf");
  ASSERT_TRUE(test::write_synthetic_gguf(in, m).ok());
  const std::string imx = dir.file("c.imatrix");
  write_imatrix_for(imx, m);
  QuantizeStepOptions o;
  o.imatrix = imx;
  o.threads = 2;
  o.overwrite = true;

  // Without FILE.cov: the refined search, as `quantize --method refined`.
  auto r = quantize_step(in, dir.file("step-refined.gguf"), "Q4_K_M", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(test::run_qforge("quantize " + in + " " + dir.file("cli-refined.gguf") +
                             " Q4_K_M --method refined -t 2 --imatrix " + imx)
                .exit_code,
            0);
  EXPECT_EQ(test::read_all(dir.file("step-refined.gguf")),
            test::read_all(dir.file("cli-refined.gguf")));

  // With FILE.cov: error feedback, byte-identical to the command's default.
  ASSERT_TRUE(test::write_synthetic_covariance(covariance_path_for(imx), m).ok());
  r = quantize_step(in, dir.file("step-gptq.gguf"), "Q4_K_M", o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(test::run_qforge("quantize " + in + " " + dir.file("cli-gptq.gguf") +
                             " Q4_K_M -t 2 --imatrix " + imx)
                .exit_code,
            0);
  const std::string step_gptq = test::read_all(dir.file("step-gptq.gguf"));
  EXPECT_EQ(step_gptq, test::read_all(dir.file("cli-gptq.gguf")));
  EXPECT_NE(step_gptq, test::read_all(dir.file("step-refined.gguf")));
  EXPECT_EQ(std::filesystem::file_size(dir.file("step-gptq.gguf")),
            std::filesystem::file_size(dir.file("step-refined.gguf")));
}

TEST(QuantizeStep, ACovarianceFileThatDoesNotParseIsAnErrorNamingIt) {
  test::TempDir dir;
  test::SyntheticModel m;
  m.n_layer = 1;
  const std::string in = dir.file("in.gguf");
  ASSERT_TRUE(test::write_synthetic_gguf(in, m).ok());
  const std::string imx = dir.file("c.imatrix");
  write_imatrix_for(imx, m);
  { std::ofstream(covariance_path_for(imx)) << "not a covariance file"; }
  QuantizeStepOptions o;
  o.imatrix = imx;
  auto r = quantize_step(in, dir.file("o.gguf"), "Q4_K_M", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(imx + ".cov"), std::string::npos) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf")));
}

}  // namespace
}  // namespace qforge
