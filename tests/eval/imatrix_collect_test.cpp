// Activation statistics (eval/imatrix_collect.h): the layer-0 q/k/v entries and covariance
// against a hand computation (embedding -> RMS norm, summed by plain loops in double), the
// covariance diagonal against the imatrix values for every matrix, per-expert counts of a
// routed model, the blocked Gram update against naive sums, the run's perplexity against
// compute_perplexity, and both imatrix formats round-tripping what was collected.
#include "eval/imatrix_collect.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/forward.h"
#include "engine/tiny_model_fixture.h"
#include "eval/perplexity.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<int32_t> some_tokens(int n, int vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint32_t s = 777u;
  for (auto& x : t) {
    s = s * 1103515245u + 12345u;
    x = static_cast<int32_t>((s >> 16) % static_cast<uint32_t>(vocab));
  }
  return t;
}

Model load_tiny(const test::TempDir& tmp, const test::TinySpec& spec) {
  EXPECT_EQ(test::write_tiny_model(tmp.file("m.gguf"), spec), "");
  auto m = Model::load(tmp.file("m.gguf"));
  EXPECT_TRUE(m.ok()) << m.error().message;
  return std::move(m).value();
}

constexpr int64_t kCtx = 32;

// Collects statistics over 3 chunks of kCtx tokens (BOS 0 first in each chunk).
ImatrixRunResult collect(const Model& m, ThreadPool& pool, ActivationStats& st,
                         const std::vector<int32_t>& toks) {
  Context ctx(m, kCtx, pool, 16);  // two micro-batches per chunk
  ImatrixRunOptions o;
  o.n_ctx = kCtx;
  o.bos_id = 0;
  auto r = run_imatrix(ctx, toks, o, st);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : ImatrixRunResult{};
}

TEST(ImatrixCollect, LayerZeroInputsMatchAHandComputation) {
  test::TempDir tmp;
  const Model m = load_tiny(tmp, {});
  ThreadPool pool(2);
  ActivationStats st(m, pool, {false, true});
  const auto toks = some_tokens(3 * kCtx + 5, 64);  // the partial 4th chunk is dropped
  const ImatrixRunResult r = collect(m, pool, st, toks);
  EXPECT_EQ(r.chunks, 3);

  // Layer 0 reads rms_norm(embedding) for q, k and v: sum x_i^2 and sum x_i x_j by hand.
  const int64_t E = m.params().n_embd;
  std::vector<double> sum2(E, 0.0), cov(E * E, 0.0);
  std::vector<float> e(E), x(E);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t t = 0; t < kCtx; ++t) {
      const int32_t tok = t == 0 ? 0 : toks[static_cast<size_t>(c * kCtx + t)];
      m.embed(tok, e.data());
      rms_norm_row(e.data(), m.layers()[0].attn_norm.data(), E, m.params().norm_eps, x.data());
      for (int64_t i = 0; i < E; ++i) {
        sum2[i] += double(x[i]) * x[i];
        for (int64_t j = 0; j < E; ++j) cov[i * E + j] += double(x[i]) * x[j];
      }
    }
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"}) {
    const auto* w = st.find(name);
    ASSERT_NE(w, nullptr) << name;
    EXPECT_EQ(w->counts[0], 3u * kCtx);
    for (int64_t i = 0; i < E; ++i) EXPECT_NEAR(w->sums[i], sum2[i], 1e-4 * sum2[i]) << name << i;
  }
  const auto specs = st.covariance_specs();
  ASSERT_EQ(specs[0].name, "cov.blk.0.attn_in");
  EXPECT_EQ(specs[0].weights,
            (std::vector<std::string>{"blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                      "blk.0.attn_v.weight"}));
  std::vector<float> c0(E * E);
  st.covariance_matrix(0, 0, c0);
  for (int64_t k = 0; k < E * E; ++k)
    EXPECT_NEAR(c0[k], cov[k] / (3 * kCtx), 1e-5 + 1e-4 * std::abs(cov[k] / (3 * kCtx))) << k;
}

TEST(ImatrixCollect, CovarianceDiagonalEqualsTheImatrixEverywhere) {
  test::TempDir tmp;
  test::TinySpec spec;
  spec.arch = "qwen3moe";
  spec.qk_norm = true;
  spec.experts = 4;
  spec.experts_used = 2;
  spec.ff_exp = 48;
  const Model m = load_tiny(tmp, spec);
  ThreadPool pool(2);
  ActivationStats st(m, pool, {true, true});
  collect(m, pool, st, some_tokens(3 * kCtx, 64));
  const Imatrix im = st.imatrix("gguf", 3, kCtx, {"t.txt"});
  // 2 layers x (q k v o router gate_exps up_exps down_exps) + output.
  EXPECT_EQ(im.entries.size(), 17u);
  const auto specs = st.covariance_specs();
  size_t covered = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t n = specs[i].n;
    std::vector<float> c(n * n);
    for (uint32_t mi = 0; mi < specs[i].counts.size(); ++mi) {
      st.covariance_matrix(i, mi, c);
      for (const auto& wname : specs[i].weights) {
        const ImatrixEntry* e = im.find(wname);
        ASSERT_NE(e, nullptr) << wname;
        ASSERT_EQ(e->importance.size(), n * specs[i].counts.size());
        for (uint64_t j = 0; j < n; ++j) {
          const float want = specs[i].counts[mi] ? e->importance[mi * n + j] : 0.0f;
          EXPECT_NEAR(c[j * n + j], want, 1e-5 * std::abs(want) + 1e-7) << wname << " " << j;
        }
        ++covered;
      }
      for (uint64_t a = 0; a < n; ++a)
        for (uint64_t b = a + 1; b < n; ++b) ASSERT_EQ(c[a * n + b], c[b * n + a]);
    }
  }
  EXPECT_GT(covered, 17u);  // experts counted once per matrix
  // Routing: every token reaches experts_used experts; the router sees every token.
  const auto* g = st.find("blk.1.ffn_gate_exps.weight");
  ASSERT_NE(g, nullptr);
  uint64_t total = 0;
  for (uint64_t c : g->counts) total += c;
  EXPECT_EQ(total, 2u * 3 * kCtx);
  EXPECT_EQ(st.find("blk.1.ffn_gate_inp.weight")->counts[0], 3u * kCtx);
  EXPECT_EQ(st.find("output.weight")->counts[0], 3u * kCtx);
}

TEST(ImatrixCollect, RunPerplexityIsLlamaCppsMethod) {
  test::TempDir tmp;
  const Model m = load_tiny(tmp, {});
  ThreadPool pool(2);
  ActivationStats st(m, pool, {false, false});
  const auto toks = some_tokens(4 * kCtx, 64);
  const ImatrixRunResult r = collect(m, pool, st, toks);
  Context ctx(m, kCtx, pool);
  PerplexityOptions po;
  po.n_ctx = kCtx;
  po.bos_id = 0;
  auto p = compute_perplexity(ctx, toks, po);
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(r.ppl, p->ppl, 1e-9 * p->ppl);
  EXPECT_NEAR(r.ppl_stderr, p->ppl_stderr, 1e-6 * p->ppl_stderr);
  EXPECT_TRUE(st.covariance_specs().empty());
  EXPECT_EQ(st.find("output.weight"), nullptr);  // without process_output
  // Too short a text, too large a context.
  Context small(m, kCtx, pool);
  ImatrixRunOptions o;
  o.n_ctx = kCtx;
  EXPECT_FALSE(run_imatrix(small, std::span(toks).first(2 * kCtx - 1), o, st).ok());
  o.n_ctx = 2 * kCtx;
  EXPECT_FALSE(run_imatrix(small, toks, o, st).ok());
}

TEST(ImatrixCollect, GramUpdateMatchesNaiveSums) {
  ThreadPool pool(3);
  for (auto [n, cols] : {std::pair<int64_t, int64_t>{23, 37}, {64, 96}, {5, 16}, {130, 200}}) {
    std::vector<float> x(n * cols);
    uint32_t s = 99;
    for (auto& v : x) {
      s = s * 1664525u + 1013904223u;
      v = static_cast<float>(static_cast<int32_t>(s >> 8) % 2001 - 1000) / 997.0f;
    }
    std::vector<float> c(cols * cols, 1.0f);  // adds to what is there
    add_gram_upper(x.data(), n, cols, c.data(), pool);
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = i; j < cols; ++j) {
        double want = 1.0;
        for (int64_t t = 0; t < n; ++t) want += double(x[t * cols + i]) * x[t * cols + j];
        ASSERT_NEAR(c[i * cols + j], want, 1e-4 * (1 + std::abs(want)))
            << n << " " << i << "," << j;
      }
  }
}

TEST(ImatrixCollect, BothFormatsRoundTrip) {
  test::TempDir tmp;
  const Model m = load_tiny(tmp, {});
  ThreadPool pool(2);
  ActivationStats st(m, pool, {true, false});
  collect(m, pool, st, some_tokens(3 * kCtx, 64));
  for (const std::string fmt : {"gguf", "dat"}) {
    const Imatrix im = st.imatrix(fmt, 3, kCtx, {"calib.txt"});
    const std::string path = tmp.file("out." + fmt);
    ASSERT_TRUE((fmt == "dat" ? write_imatrix_dat(path, im) : write_imatrix_gguf(path, im)).ok());
    auto back = load_imatrix(path);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->format, fmt);
    EXPECT_EQ(back->chunk_count, 3u);
    // dat: llama-imatrix's call count = chunks; gguf: tokens.
    EXPECT_EQ(back->find("blk.1.ffn_down.weight")->count, fmt == "dat" ? 3u : 3u * kCtx);
    const ImatrixComparison c = compare_imatrix(*back, im);
    EXPECT_EQ(c.tensors, im.entries.size());
    EXPECT_TRUE(c.only_a.empty() && c.only_b.empty() && c.shape_mismatch.empty());
    EXPECT_LT(c.max_rel, 1e-6) << fmt << " " << c.max_tensor;
    EXPECT_GT(c.values, 1000u);
  }
}

}  // namespace
}  // namespace qforge
