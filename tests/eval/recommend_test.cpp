#include <gtest/gtest.h>

#include "eval/recommend.h"

namespace qforge {
namespace {

std::vector<VariantMeasure> ladder() {
  auto v = [](std::string n, uint64_t bytes, double kld, uint64_t rss, bool base = false) {
    VariantMeasure m;
    m.name = n;
    m.file_bytes = bytes;
    m.ppl = 13 + kld * 10;
    if (!base) {
      m.kld_mean = kld;
      m.same_top_pct = 100 - kld * 300;
    }
    m.peak_rss_bytes = rss;
    m.is_base = base;
    return m;
  };
  return {v("F16", 10'000'000, 0, 14'000'000, true), v("Q8_0", 5'700'000, 0.0006, 9'000'000),
          v("Q6_K", 4'400'000, 0.0038, 8'000'000), v("Q4_K_M", 3'500'000, 0.0336, 7'000'000),
          v("Q2_K", 2'500'000, 0.25, 6'000'000)};
}

}  // namespace

TEST(Recommend, SmallestPassingWithoutBudget) {
  auto r = recommend(ladder(), QualityGates{0.05, 0, 0}, std::nullopt);
  ASSERT_TRUE(r.index);
  EXPECT_EQ(ladder()[*r.index].name, "Q4_K_M");
  r = recommend(ladder(), QualityGates{0.01, 0, 0}, std::nullopt);
  EXPECT_EQ(ladder()[*r.index].name, "Q6_K");
}

TEST(Recommend, LowestKldWithinBudget) {
  auto r = recommend(ladder(), QualityGates{0.05, 0, 0}, 8'500'000);
  ASSERT_TRUE(r.index);
  EXPECT_EQ(ladder()[*r.index].name, "Q6_K");  // Q8_0 (9 MB RSS) does not fit
  r = recommend(ladder(), QualityGates{0.05, 0, 0}, 6'500'000);
  EXPECT_FALSE(r.index);  // only Q2_K fits and it fails the KLD gate
  EXPECT_NE(r.reason.find("budget"), std::string::npos);
}

TEST(Recommend, GatesExplainFailure) {
  auto l = ladder();
  std::string why;
  EXPECT_FALSE(passes_gates(l[4], l[0], QualityGates{0.05, 0, 0}, &why));
  EXPECT_NE(why.find("KLD"), std::string::npos);
  EXPECT_FALSE(passes_gates(l[3], l[0], QualityGates{1, 95, 0}, &why));
  EXPECT_NE(why.find("same-top"), std::string::npos);
  EXPECT_TRUE(passes_gates(l[0], l[0], QualityGates{0.05, 99, 0}));
}

}  // namespace qforge
