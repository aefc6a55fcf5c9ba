// The engine against llama.cpp's logits for the reference GGUFs (acceptance 1 of issue #6).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/forward.h"
#include "engine/sampler.h"
#include "test_util.h"

namespace qforge {
namespace {

template <class T>
std::vector<T> read_vec(const std::string& path) {
  const std::string s = test::read_all(path);
  std::vector<T> v(s.size() / sizeof(T));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(T));
  return v;
}

struct Diff {
  double max_abs = 0, mean_abs = 0;
  int same_argmax = 0;
};

Diff compare(std::span<const float> got, const std::vector<float>& want, int64_t n_vocab) {
  Diff d;
  const int64_t rows = static_cast<int64_t>(want.size()) / n_vocab;
  double sum = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    d.max_abs = std::max(d.max_abs, e);
    sum += e;
  }
  d.mean_abs = sum / static_cast<double>(want.size());
  for (int64_t r = 0; r < rows; ++r)
    d.same_argmax += argmax(got.subspan(r * n_vocab, n_vocab)) ==
                     argmax({want.data() + r * n_vocab, static_cast<size_t>(n_vocab)});
  return d;
}

// Decodes the 64 reference tokens (in micro-batches of `n_batch`, the last 16 one at a time to
// exercise the KV cache) and returns all 64 rows of logits.
std::vector<float> run_engine(const Model& m, const std::vector<int32_t>& toks, int64_t n_batch) {
  ThreadPool pool(2);
  Context ctx(m, 128, pool, n_batch);
  const int64_t V = m.params().n_vocab;
  std::vector<float> all;
  const std::span<const int32_t> s(toks);
  EXPECT_TRUE(ctx.decode(s.first(48), 48).ok());
  all.assign(ctx.logits().begin(), ctx.logits().end());
  for (size_t i = 48; i < toks.size(); ++i) {
    EXPECT_TRUE(ctx.decode(s.subspan(i, 1), 1).ok());
    all.insert(all.end(), ctx.logits().begin(), ctx.logits().end());
  }
  EXPECT_EQ(static_cast<int64_t>(all.size()), static_cast<int64_t>(toks.size()) * V);
  return all;
}

void check_reference(const std::string& name, double max_bound, double mean_bound, int min_argmax) {
  const std::string gguf = "reference/" + name + ".gguf";
  auto m = Model::load(test::shared_path(gguf));
  if (!m.ok() && m.error().message.find("cannot compute") != std::string::npos)
    GTEST_SKIP() << "codec not registered yet: " << m.error().message;
  ASSERT_TRUE(m.ok()) << m.error().message;
  const auto toks =
      read_vec<int32_t>(test::shared_path("reference/" + name + ".eval64.tokens.i32"));
  const auto want = read_vec<float>(test::shared_path("reference/" + name + ".eval64.logits.f32"));
  ASSERT_EQ(toks.size(), 64u);
  ASSERT_EQ(want.size(), 64u * m->params().n_vocab);
  for (int64_t nb : {64, 7}) {
    SCOPED_TRACE("n_batch " + std::to_string(nb));
    const auto got = run_engine(*m, toks, nb);
    const Diff d = compare(got, want, m->params().n_vocab);
    std::printf("%s n_batch %lld: max|d| %.5f mean|d| %.6f same argmax %d/64\n", name.c_str(),
                static_cast<long long>(nb), d.max_abs, d.mean_abs, d.same_argmax);
    EXPECT_LE(d.max_abs, max_bound);
    EXPECT_LE(d.mean_abs, mean_bound);
    EXPECT_GE(d.same_argmax, min_argmax);
  }
}

TEST(ModelLogits, MiniF16MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/mini-f16.eval64.logits.f32");
  check_reference("mini-f16", 0.03, 0.003, 64);
}
TEST(ModelLogits, TinyQwen2F16MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/tiny-qwen2-f16.eval64.logits.f32");
  check_reference("tiny-qwen2-f16", 0.03, 0.003, 64);
}
TEST(ModelLogits, TinySpmF16MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/tiny-spm-f16.eval64.logits.f32");
  check_reference("tiny-spm-f16", 0.03, 0.003, 64);
}
TEST(ModelLogits, MiniQ4KMMatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.eval64.logits.f32");
  check_reference("mini-Q4_K_M", 1e9, 0.1, 60);
}

}  // namespace
}  // namespace qforge
