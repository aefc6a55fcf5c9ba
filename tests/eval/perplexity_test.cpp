// Perplexity method (chunks, BOS, scored half) and KL-divergence files on tiny random models,
// checked against the scalar reference forward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "engine/forward.h"
#include "engine/tiny_model_fixture.h"
#include "eval/kld.h"
#include "eval/perplexity.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<int32_t> text_tokens(int n, int vocab, int salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint32_t s = 12345u + static_cast<uint32_t>(salt);
  for (auto& x : t) {
    s = s * 1103515245u + 12345u;
    x = static_cast<int32_t>((s >> 16) % static_cast<uint32_t>(vocab));
  }
  return t;
}

Model tiny(const test::TempDir& tmp, const std::string& name, uint32_t seed) {
  test::TinySpec spec;
  spec.seed = seed;
  EXPECT_EQ(test::write_tiny_model(tmp.file(name), spec), "");
  auto m = Model::load(tmp.file(name));
  EXPECT_TRUE(m.ok()) << m.error().message;
  return std::move(m).value();
}

// The method, recomputed independently with forward_reference on each chunk.
double reference_ppl(const Model& m, const std::vector<int32_t>& toks, int64_t n_ctx,
                     int64_t chunks, int32_t bos) {
  double nll = 0;
  int64_t count = 0;
  const int64_t V = m.params().n_vocab;
  for (int64_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> chunk(toks.begin() + c * n_ctx, toks.begin() + (c + 1) * n_ctx);
    chunk[0] = bos;
    auto lg = forward_reference(m, chunk);
    EXPECT_TRUE(lg.ok());
    for (int64_t i = n_ctx / 2; i < n_ctx - 1; ++i) {
      const float* row = lg->data() + i * V;
      double mx = row[0], z = 0;
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, double(row[j]));
      for (int64_t j = 0; j < V; ++j) z += std::exp(row[j] - mx);
      nll -= row[chunk[static_cast<size_t>(i + 1)]] - mx - std::log(z);
      ++count;
    }
  }
  return std::exp(nll / static_cast<double>(count));
}

TEST(Perplexity, MatchesTheMethodOnAReferencePass) {
  test::TempDir tmp;
  Model m = tiny(tmp, "a.gguf", 1);
  const auto toks = text_tokens(3 * 32 + 5, 64, 0);  // 3 full chunks of 32 and a partial one
  ThreadPool pool(2);
  Context ctx(m, 32, pool, 12);
  PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.bos_id = 0;
  auto r = compute_perplexity(ctx, toks, opt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->chunks, 3);
  EXPECT_EQ(r->tokens_scored, 3 * 15);  // 32 - 1 - 16 per chunk
  const double want = reference_ppl(m, toks, 32, 3, 0);
  EXPECT_NEAR(r->ppl, want, 1e-4 * want);
  EXPECT_GT(r->ppl_stderr, 0);
  EXPECT_LT(r->ppl_stderr, r->ppl);
  ASSERT_EQ(r->chunk_ppl.size(), 3u);
  EXPECT_DOUBLE_EQ(r->chunk_ppl.back(), r->ppl);

  opt.n_chunks = 2;
  auto r2 = compute_perplexity(ctx, toks, opt);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->chunks, 2);
  EXPECT_NEAR(r2->ppl, reference_ppl(m, toks, 32, 2, 0), 1e-4 * r2->ppl);
}

TEST(Perplexity, RefusesShortTextsAndOversizedContexts) {
  test::TempDir tmp;
  Model m = tiny(tmp, "a.gguf", 1);
  ThreadPool pool(1);
  Context ctx(m, 32, pool);
  PerplexityOptions opt;
  opt.n_ctx = 32;
  const auto toks = text_tokens(63, 64, 0);
  auto r = compute_perplexity(ctx, toks, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("63 tokens, fewer than 2 x ctx = 64"), std::string::npos)
      << r.error().message;
  opt.n_ctx = 64;
  r = compute_perplexity(ctx, text_tokens(200, 64, 0), opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds the engine context"), std::string::npos);
}

struct KldRun {
  PerplexityResult ppl;
  KldResult kld;
};

// Writes a base from model `b`, then compares model `q` against it.
KldRun kld_between(const Model& b, const Model& q, const std::vector<int32_t>& toks,
                   const std::string& path) {
  ThreadPool pool(2);
  KldBaseHeader h;
  h.n_vocab = 64;
  h.n_ctx = 32;
  h.n_chunks = 3;
  h.n_scored = 15;
  h.n_text_tokens = toks.size();
  h.tokens_sha256 = tokens_digest(toks);
  h.model = "base";
  {
    auto w = KldBaseWriter::create(path, h, true);
    EXPECT_TRUE(w.ok()) << w.error().message;
    Context ctx(b, 32, pool);
    PerplexityOptions opt;
    opt.n_ctx = 32;
    opt.sink = [&](int64_t, const float* lg, const int32_t* t, int64_t n) {
      return w->add(lg, t, n);
    };
    EXPECT_TRUE(compute_perplexity(ctx, toks, opt).ok());
    EXPECT_TRUE(w->commit().ok());
  }
  auto c = KldComparer::open(path);
  EXPECT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->check_compatible(64, 32, tokens_digest(toks), 3).ok());
  Context ctx(q, 32, pool);
  PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.sink = [&](int64_t, const float* lg, const int32_t* t, int64_t n) {
    return c->add(lg, t, n);
  };
  auto r = compute_perplexity(ctx, toks, opt);
  EXPECT_TRUE(r.ok());
  return {*r, c->finish()};
}

TEST(Kld, SelfComparisonIsZero) {
  test::TempDir tmp;
  Model m = tiny(tmp, "a.gguf", 1);
  const auto toks = text_tokens(100, 64, 1);
  KldRun k = kld_between(m, m, toks, tmp.file("base.kld"));
  EXPECT_EQ(k.kld.n_tokens, 45);
  EXPECT_LT(k.kld.kld_mean, 1e-6);
  EXPECT_LT(k.kld.kld_max, 1e-5);
  EXPECT_DOUBLE_EQ(k.kld.same_top_pct, 100.0);
  EXPECT_LT(k.kld.rms_dp_pct, 1e-4);
  EXPECT_NEAR(k.kld.ppl_ratio, 1.0, 1e-6);
  EXPECT_NEAR(k.kld.ppl_base, k.ppl.ppl, 1e-6 * k.ppl.ppl);
}

TEST(Kld, MatchesDirectComputationBetweenTwoModels) {
  test::TempDir tmp;
  Model a = tiny(tmp, "a.gguf", 1);
  // A perturbed model: same shapes, different weights.
  Model b = tiny(tmp, "b.gguf", 2);
  const auto toks = text_tokens(100, 64, 2);
  KldRun k = kld_between(a, b, toks, tmp.file("base.kld"));
  // Direct: exact log-softmax of both models at every scored position.
  double sum = 0, sum_dp2 = 0;
  int same = 0, n = 0;
  for (int c = 0; c < 3; ++c) {
    std::vector<int32_t> chunk(toks.begin() + c * 32, toks.begin() + (c + 1) * 32);
    chunk[0] = 0;
    auto la = forward_reference(a, chunk), lb = forward_reference(b, chunk);
    for (int i = 16; i < 31; ++i) {
      std::vector<float> pa(64), pb(64);
      log_softmax_row(la->data() + i * 64, 64, pa.data());
      log_softmax_row(lb->data() + i * 64, 64, pb.data());
      double kl = 0;
      for (int j = 0; j < 64; ++j) kl += std::exp(pa[j]) * (pa[j] - pb[j]);
      sum += kl;
      const int t = chunk[static_cast<size_t>(i + 1)];
      const double dp = std::exp(pb[t]) - std::exp(pa[t]);
      sum_dp2 += dp * dp;
      same += std::max_element(pa.begin(), pa.end()) - pa.begin() ==
              std::max_element(pb.begin(), pb.end()) - pb.begin();
      ++n;
    }
  }
  EXPECT_GT(sum / n, 0.01);  // the models really differ
  EXPECT_NEAR(k.kld.kld_mean, sum / n, 2e-3 * sum / n + 1e-5);
  EXPECT_NEAR(k.kld.rms_dp_pct, 100 * std::sqrt(sum_dp2 / n), 1e-3);
  EXPECT_NEAR(k.kld.same_top_pct, 100.0 * same / n, 1e-9);
  EXPECT_LE(k.kld.kld_median, k.kld.kld_p90);
  EXPECT_LE(k.kld.kld_p90, k.kld.kld_p99);
  EXPECT_LE(k.kld.kld_p99, k.kld.kld_max);
  EXPECT_NEAR(k.kld.ppl, k.ppl.ppl, 1e-5 * k.ppl.ppl);
}

TEST(Kld, MismatchedOrDamagedBaseIsRefused) {
  test::TempDir tmp;
  Model m = tiny(tmp, "a.gguf", 1);
  const auto toks = text_tokens(100, 64, 1);
  const std::string path = tmp.file("base.kld");
  kld_between(m, m, toks, path);
  auto c = KldComparer::open(path);
  ASSERT_TRUE(c.ok());
  const std::string d = tokens_digest(toks);
  EXPECT_NE(c->check_compatible(65, 32, d, 3).error().message.find("vocabulary 64"),
            std::string::npos);
  EXPECT_NE(c->check_compatible(64, 16, d, 3).error().message.find("--ctx 32"), std::string::npos);
  EXPECT_NE(c->check_compatible(64, 32, tokens_digest(text_tokens(100, 64, 9)), 3)
                .error()
                .message.find("another text"),
            std::string::npos);
  EXPECT_NE(c->check_compatible(64, 32, d, 2).error().message.find("holds 3 chunks"),
            std::string::npos);
  // Truncated file.
  std::string bytes = test::read_all(path);
  const std::string cut = tmp.file("cut.kld");
  FILE* f = std::fopen(cut.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size() - 10, f);
  std::fclose(f);
  auto bad = KldComparer::open(cut);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("truncated"), std::string::npos) << bad.error().message;
  // Not a base file at all.
  auto nb = KldComparer::open(tmp.file("a.gguf"));
  ASSERT_FALSE(nb.ok());
  EXPECT_NE(nb.error().message.find("bad magic"), std::string::npos);
}

}  // namespace
}  // namespace qforge
