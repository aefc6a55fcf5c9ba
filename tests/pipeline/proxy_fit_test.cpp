// The measured calibration's fit (pipeline/target_step.h): Spearman's rank correlation, and the
// per-kind x per-layer factor fit recovering known factors from exact measurements.
#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/target_step.h"

namespace qforge {
namespace {

TEST(ProxyFit, SpearmanOfRanks) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Monotone but not linear: still 1.
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4, 5}, {1, 8, 27, 64, 125}), 1.0);
  // Ties get the average rank: ranks a = (0.5, 0.5, 2, 3), b = (0, 1, 2, 3).
  EXPECT_NEAR(spearman({1, 1, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138, 1e-12);
  EXPECT_EQ(spearman({1}, {1}), 0.0);
}

TEST(ProxyFit, RecoversKindAndLayerFactors) {
  const std::map<std::string, double> kind = {
      {"attn_v.weight", 3e-3}, {"ffn_down.weight", 1e-3}, {"attn_q.weight", 1e-4}};
  const std::vector<double> depth = {4.0, 1.0, 0.5};
  std::vector<MeasuredTensor> ms;
  double e = 1.0;
  for (int l = 0; l < 3; ++l)
    for (const auto& [k, f] : kind) {
      MeasuredTensor m;
      m.kind = k;
      m.layer = l;
      m.error = e;
      e *= 1.7;
      m.kld = f * depth[static_cast<size_t>(l)] * m.error;
      ms.push_back(m);
    }
  MeasuredTensor out;  // outside the blocks: kind factor only
  out.kind = "output.weight";
  out.error = 2.0;
  out.kld = 5e-5 * out.error;
  ms.push_back(out);
  const ProxyModel pm = fit_proxy(ms, 3, "test");
  ASSERT_EQ(pm.depth_factors.size(), 3u);
  // Kind and depth factors are determined up to one common factor: compare the products.
  for (const auto& m : ms) {
    const double pred = pm.scale_for(m.kind) * pm.depth_factor(m.layer, 3) * m.error;
    EXPECT_NEAR(pred / m.kld, 1.0, 1e-9) << m.kind << " " << m.layer;
  }
  EXPECT_NEAR(pm.depth_factors[0] / pm.depth_factors[2], 8.0, 1e-9);
  // A kind never measured gets the median fitted factor.
  EXPECT_EQ(pm.scale_for("attn_k.weight"), pm.default_scale);
  EXPECT_GT(pm.default_scale, 0);
}

TEST(ProxyFit, LayerNotMeasuredTakesItsNeighbours) {
  std::vector<MeasuredTensor> ms;
  for (int l : {0, 2}) {
    MeasuredTensor m;
    m.kind = "attn_v.weight";
    m.layer = l;
    m.error = 1.0;
    m.kld = l == 0 ? 4.0 : 1.0;
    ms.push_back(m);
  }
  const ProxyModel pm = fit_proxy(ms, 3, "test");
  ASSERT_EQ(pm.depth_factors.size(), 3u);
  // Geometric mean of the neighbours (the fit is log-additive).
  EXPECT_NEAR(pm.depth_factors[1], std::sqrt(pm.depth_factors[0] * pm.depth_factors[2]), 1e-9);
}

}  // namespace
}  // namespace qforge
