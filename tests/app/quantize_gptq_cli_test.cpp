// `qforge quantize --imatrix FILE` with covariances beside FILE (issue 13): error feedback by
// default, one warning naming the tensors without a covariance, --method refined|gptq|ggml,
// the method of each tensor in --json, and the output loads in the engine (perplexity).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "formats/covariance.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "quant/synthetic_covariance.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(QuantizeGptqCli, DefaultsToErrorFeedbackWithOneFallbackWarning) {
  test::TempDir dir;
  test::SyntheticModel m;
  m.n_layer = 1;
  ASSERT_TRUE(test::write_synthetic_gguf(dir.file("in.gguf"), m).ok());
  const std::string imx = dir.file("c.imatrix");
  ASSERT_TRUE(test::write_synthetic_imatrix(imx, m).ok());
  const std::string base = dir.file("in.gguf") + " " + dir.file("o.gguf") + " Q4_K_M --imatrix " +
                           imx + " --force --json -t 2";
  // No FILE.cov yet: refined, no warning; --method gptq is a one-line error.
  auto r = test::run_qforge("quantize " + base);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.err, "covariance"), 0u) << r.err;
  const auto j0 = nlohmann::json::parse(r.out);
  for (const auto& t : j0["tensors"]) EXPECT_NE(t["method"], "gptq") << t["name"];
  r = test::run_qforge("quantize " + base + " --method gptq");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(imx + ".cov"), std::string::npos) << r.err;

  ASSERT_TRUE(
      test::write_synthetic_covariance(covariance_path_for(imx), m, {"blk.0.ffn_down.weight"})
          .ok());
  r = test::run_qforge("quantize " + base);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One warning, naming both matmuls without a covariance (token_embd is no matmul).
  EXPECT_EQ(count(r.err, "has no covariance"), 1u) << r.err;
  EXPECT_NE(r.err.find("blk.0.ffn_down.weight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("output.weight"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::map<std::string, std::string> method;
  for (const auto& t : j["tensors"]) method[t["name"]] = t["method"];
  EXPECT_EQ(method["blk.0.attn_q.weight"], "gptq");
  EXPECT_EQ(method["blk.0.ffn_up.weight"], "gptq");
  EXPECT_EQ(method["blk.0.ffn_down.weight"], "refined");
  EXPECT_EQ(method["output.weight"], "refined");
  EXPECT_EQ(method["blk.0.attn_norm.weight"], "copy");
  const uint64_t gptq_bytes = std::filesystem::file_size(dir.file("o.gguf"));
  EXPECT_EQ(gptq_bytes, j["output_file_bytes"].get<uint64_t>());

  for (const char* meth : {"refined", "ggml"}) {
    r = test::run_qforge("quantize " + base + " --method " + meth);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.err, "has no covariance"), 0u) << r.err;
    const auto jm = nlohmann::json::parse(r.out);
    for (const auto& t : jm["tensors"]) EXPECT_NE(t["method"], "gptq") << t["name"];
    EXPECT_EQ(std::filesystem::file_size(dir.file("o.gguf")), gptq_bytes) << meth;
  }
}

TEST(QuantizeGptqCli, MiniWithCovariancesLoadsAndScores) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  QF_REQUIRE_SHARED("data/eval.txt");
  test::TempDir dir;
  const std::string in = test::shared_path("reference/mini-f16.gguf");
  auto g = GgufFile::open(in);
  ASSERT_TRUE(g.ok());
  // Covariances with mini's input widths (synthetic values: this checks loading, not quality).
  std::map<std::string, CovarianceSpec> by;
  for (const auto& t : g->tensors()) {
    const std::string c = test::synthetic_cov_name(t.name);
    if (c.empty() || t.dims.size() != 2) continue;
    by[c].name = c;
    by[c].n = t.dims[0];
    by[c].counts = {100};
    by[c].weights.push_back(t.name);
  }
  std::vector<CovarianceSpec> specs;
  for (auto& [k, s] : by) specs.push_back(s);
  Imatrix im;
  im.chunk_count = 1;
  for (const auto& s : specs)
    for (const auto& w : s.weights) im.entries.push_back({w, std::vector<float>(s.n, 1.0f), 1, 1});
  const std::string imx = dir.file("mini.imatrix");
  ASSERT_TRUE(write_imatrix_dat(imx, im).ok());
  ASSERT_TRUE(write_covariance(covariance_path_for(imx), specs, CovarianceMeta{},
                               [&](size_t i, uint32_t, std::span<float> out) {
                                 const auto H = test::synthetic_hessian(
                                     specs[i].n, static_cast<uint32_t>(7 + i), 64);
                                 std::copy(H.begin(), H.end(), out.begin());
                               })
                  .ok());
  auto r = test::run_qforge("quantize " + in + " " + dir.file("q.gguf") + " Q4_K_M --imatrix " +
                            imx + " -t 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t n_gptq = 0;
  const auto jq = nlohmann::json::parse(r.out);
  for (const auto& t : jq["tensors"]) n_gptq += t["method"] == "gptq";
  EXPECT_EQ(n_gptq, im.entries.size()) << r.err;
  r = test::run_qforge("verify " + dir.file("q.gguf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = test::run_qforge("perplexity " + dir.file("q.gguf") + " -f " +
                       test::shared_path("data/eval.txt") + " --chunks 2 --ctx 128 --json -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double ppl = nlohmann::json::parse(r.out)["ppl"].get<double>();
  EXPECT_TRUE(std::isfinite(ppl) && ppl > 1 && ppl < 200) << r.out;
}

}  // namespace
}  // namespace qforge
