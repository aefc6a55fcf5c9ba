#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/sampler.h"

namespace qforge {
namespace {

TEST(Sampler, GreedyAtTemperatureZero) {
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler s({0.0f, 40, 0.95f, 1});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(l), 1);
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 3}), 1);  // first on ties
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler k1({1.5f, 1, 1.0f, 7});
  Sampler p0({1.5f, 0, 0.01f, 7});
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(k1.sample(l), 1);
    EXPECT_EQ(p0.sample(l), 1);
  }
}

TEST(Sampler, SeedIsReproducibleAndFrequenciesFollowSoftmax) {
  std::vector<float> l = {0.0f, 1.0f, 0.5f, -0.5f};
  Sampler a({1.0f, 0, 1.0f, 42}), b({1.0f, 0, 1.0f, 42});
  std::map<int, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int t = a.sample(l);
    EXPECT_EQ(t, b.sample(l));
    ++count[t];
  }
  double z = 0;
  for (float x : l) z += std::exp(x);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(count[i] / double(n), std::exp(l[i]) / z, 0.015);
}

TEST(Sampler, TopKRestrictsTheSupport) {
  std::vector<float> l = {3.0f, 2.9f, 2.8f, -5.0f, 2.7f};
  Sampler s({5.0f, 2, 1.0f, 3});
  for (int i = 0; i < 200; ++i) {
    const int t = s.sample(l);
    EXPECT_TRUE(t == 0 || t == 1) << t;
  }
}

}  // namespace
}  // namespace qforge
