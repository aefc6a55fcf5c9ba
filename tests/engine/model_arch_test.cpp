// Every family's graph on small random models: the fast path (batched, KV cache, threads)
// against the scalar reference for each structural switch (key_length != n_embd / n_head, q/k
// norms, Gemma's post norms / soft-caps / sliding window / embedding scale / GELU, Phi-3's fused
// tensors and longrope factors, routed experts on stacked 3-D tensors, also quantized), and
// properties that hold whatever the implementation: the sliding window hides old tokens, the
// final soft-cap bounds the logits, rope factors act as llama.cpp's frequency divisors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "engine/forward.h"
#include "engine/tiny_model_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::some_tokens;

Model load_spec(const test::TempDir& tmp, const test::TinySpec& spec, const std::string& name) {
  const std::string path = tmp.file(name);
  EXPECT_EQ(test::write_tiny_model(path, spec), "");
  auto m = Model::load(path);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return std::move(m).value();
}

// All logits of `toks` through the fast path, decoded in pieces of `piece`.
std::vector<float> fast_logits(const Model& m, const std::vector<int32_t>& toks, int64_t n_ctx,
                               int64_t n_batch, int piece, int threads) {
  ThreadPool pool(threads);
  // An f32 KV cache: the reference computes in f32/double (the f16 cache is measured in
  // model_forward_test).
  Context ctx(m, n_ctx, pool, n_batch, KvType::F32);
  std::vector<float> out;
  for (size_t b = 0; b < toks.size(); b += static_cast<size_t>(piece)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(piece), toks.size() - b);
    EXPECT_TRUE(
        ctx.decode(std::span<const int32_t>(toks).subspan(b, n), static_cast<int64_t>(n)).ok());
    out.insert(out.end(), ctx.logits().begin(), ctx.logits().end());
  }
  return out;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return worst / std::max(scale, 1e-30);
}

// Fast path (one batch, micro-batches, token by token) vs reference, relative to max |logit|.
double fast_vs_reference(const test::TinySpec& spec, int64_t n_ctx = 64) {
  test::TempDir tmp;
  Model m = load_spec(tmp, spec, "m.gguf");
  const auto toks = some_tokens(40, static_cast<int>(spec.vocab));
  auto ref = forward_reference(m, toks);
  EXPECT_TRUE(ref.ok());
  double worst = 0;
  worst = std::max(worst, max_rel_diff(fast_logits(m, toks, n_ctx, 512, 40, 2), *ref));
  worst = std::max(worst, max_rel_diff(fast_logits(m, toks, n_ctx, 7, 13, 2), *ref));
  worst = std::max(worst, max_rel_diff(fast_logits(m, toks, n_ctx, 4, 1, 1), *ref));
  return worst;
}

test::TinySpec qwen3_spec() {
  test::TinySpec s;
  s.arch = "qwen3";
  s.head_dim = 32;  // != 64 / 4
  s.qk_norm = true;
  s.tied = true;
  return s;
}

test::TinySpec gemma_spec(const std::string& arch) {
  test::TinySpec s;
  s.arch = arch;
  s.embd = 32;
  s.head_dim = 16;
  s.tied = true;
  s.post_norms = true;
  s.qk_norm = arch == "gemma3";
  s.layers = arch == "gemma3" ? 6 : 4;
  s.kvs = {{"attention.sliding_window", GgufValue::u32(5)},
           {"attention.scale", GgufValue::f32(0.2f)}};
  if (arch == "gemma2") {
    s.kvs.emplace_back("attn_logit_softcapping", GgufValue::f32(3.0f));
    s.kvs.emplace_back("final_logit_softcapping", GgufValue::f32(2.0f));
  } else {
    s.kvs.emplace_back("rope.freq_base_swa", GgufValue::f32(10000.0f));
    s.kvs.emplace_back("rope.scaling.type", GgufValue::string("linear"));
    s.kvs.emplace_back("rope.scaling.factor", GgufValue::f32(8.0f));
    s.rope_base = 1e6f;
  }
  return s;
}

test::TinySpec phi3_spec() {
  test::TinySpec s;
  s.arch = "phi3";
  s.fused = true;
  s.rope_short = std::vector<float>(8, 1.0f);
  s.rope_long = {1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 4.5f};
  s.kvs = {{"rope.scaling.attn_factor", GgufValue::f32(1.2f)},
           {"rope.scaling.original_context_length", GgufValue::u32(32)},
           {"rope.dimension_count", GgufValue::u32(16)}};
  return s;
}

test::TinySpec moe_spec() {
  test::TinySpec s;
  s.arch = "qwen3moe";
  s.qk_norm = true;
  s.experts = 4;
  s.experts_used = 2;
  s.ff_exp = 48;
  return s;
}

TEST(ArchForward, FastMatchesReferenceEveryFamily) {
  test::TinySpec llama3;
  llama3.rope_freqs = {1.0f, 1.0f, 2.0f, 3.5f, 8.0f, 8.0f, 8.0f, 8.0f};
  const std::pair<const char*, test::TinySpec> cases[] = {{"llama3", llama3},
                                                          {"qwen3", qwen3_spec()},
                                                          {"qwen3moe", moe_spec()},
                                                          {"gemma2", gemma_spec("gemma2")},
                                                          {"gemma3", gemma_spec("gemma3")},
                                                          {"phi3", phi3_spec()}};
  for (const auto& [name, spec] : cases) {
    SCOPED_TRACE(name);
    const double d = fast_vs_reference(spec);
    std::printf("%s: max |fast - reference| / max |logit| = %.2e\n", name, d);
    EXPECT_LT(d, 1e-4);
  }
}

// MoE with stacked 3-D expert tensors (each expert a slice of the quantized tensor) and Phi-3's
// fused tensors in quantized types: the fast path computes what the reference computes from the
// same quantized weights (within the 8-bit activation quantization of the quantized dot
// products, as llama.cpp's).
TEST(ArchForward, QuantizedExpertsAndFusedTensors) {
  for (Type t : {Type::Q4_K, Type::Q2_K}) {
    if (!find_codec(t) || !reference_codecs()[static_cast<size_t>(t)].quantize) continue;
    SCOPED_TRACE(std::string(type_name(t)));
    test::TinySpec moe = moe_spec();
    moe.embd = 256;
    moe.ff = 256;
    moe.ff_exp = 256;
    moe.head_dim = 64;
    moe.wtype = t;
    moe.layers = 1;
    test::TinySpec phi = phi3_spec();
    phi.embd = 256;
    phi.ff = 256;
    phi.wtype = t;
    phi.layers = 1;
    phi.head_dim = 64;
    phi.rope_short.assign(32, 1.0f);
    phi.rope_long.assign(32, 2.0f);
    phi.kvs.back().second = GgufValue::u32(64);
    for (const auto& spec : {moe, phi}) {
      SCOPED_TRACE(spec.arch);
      test::TempDir tmp;
      Model m = load_spec(tmp, spec, "q.gguf");
      // 34 tokens and a context of 64: both paths use phi3's long factors (> 32).
      const auto toks = some_tokens(34, static_cast<int>(spec.vocab));
      auto ref = forward_reference(m, toks);
      ASSERT_TRUE(ref.ok());
      const double d = max_rel_diff(fast_logits(m, toks, 64, 34, 34, 2), *ref);
      std::printf("%s %s: max |fast - reference| / max |logit| = %.2e\n", spec.arch.c_str(),
                  std::string(type_name(t)).c_str(), d);
      EXPECT_LT(d, 2e-2);
    }
  }
}

// Two sliding layers of window 5: position t sees tokens back to t - 8 at most, so changing
// token 0 leaves the logits of positions >= 9 unchanged (and changes those before).
TEST(ArchForward, SlidingWindowHidesOldTokens) {
  test::TinySpec s = gemma_spec("gemma3");
  s.layers = 2;  // pattern 6: both layers slide
  test::TempDir tmp;
  Model m = load_spec(tmp, s, "w.gguf");
  auto a = some_tokens(16, static_cast<int>(s.vocab));
  auto b = a;
  b[0] = (b[0] + 1) % static_cast<int32_t>(s.vocab);
  const auto la = fast_logits(m, a, 16, 16, 16, 1), lb = fast_logits(m, b, 16, 16, 16, 1);
  const auto V = static_cast<size_t>(s.vocab);
  for (size_t t = 0; t < 16; ++t) {
    double d = 0;
    for (size_t i = 0; i < V; ++i)
      d = std::max(d, std::fabs(double(la[t * V + i]) - lb[t * V + i]));
    if (t >= 9)
      EXPECT_EQ(d, 0.0) << "position " << t;
    else
      EXPECT_GT(d, 0.0) << "position " << t;
  }
}

TEST(ArchForward, FinalSoftCapBoundsLogits) {
  test::TinySpec s = gemma_spec("gemma2");
  test::TempDir tmp;
  Model m = load_spec(tmp, s, "c.gguf");
  const auto l = fast_logits(m, some_tokens(20, static_cast<int>(s.vocab)), 32, 32, 20, 1);
  float mx = 0;
  for (float v : l) mx = std::max(mx, std::fabs(v));
  EXPECT_LT(mx, 2.0f);
  EXPECT_GT(mx, 1.0f);  // the cap is active (raw logits of this model exceed it)
}

// rope_freqs of 2 everywhere divides every frequency by 2: the same model as linear scaling
// with factor 2; factors of 1 change nothing.
TEST(ArchForward, RopeFactorsDivideFrequencies) {
  test::TempDir tmp;
  const auto toks = some_tokens(30, 64);
  test::TinySpec plain;
  test::TinySpec ones = plain;
  ones.rope_freqs.assign(8, 1.0f);
  test::TinySpec twos = plain;
  twos.rope_freqs.assign(8, 2.0f);
  test::TinySpec linear = plain;
  linear.kvs = {{"rope.scaling.type", GgufValue::string("linear")},
                {"rope.scaling.factor", GgufValue::f32(2.0f)}};
  const auto lp = fast_logits(load_spec(tmp, plain, "p.gguf"), toks, 32, 32, 30, 1);
  const auto l1 = fast_logits(load_spec(tmp, ones, "1.gguf"), toks, 32, 32, 30, 1);
  const auto l2 = fast_logits(load_spec(tmp, twos, "2.gguf"), toks, 32, 32, 30, 1);
  const auto ll = fast_logits(load_spec(tmp, linear, "l.gguf"), toks, 32, 32, 30, 1);
  EXPECT_EQ(max_rel_diff(l1, lp), 0.0);
  EXPECT_LT(max_rel_diff(l2, ll), 1e-5);
  EXPECT_GT(max_rel_diff(l2, lp), 1e-3);
}

// Phi-3 longrope: a context within the original 32 positions uses the short factors, a longer
// one the long factors (llama.cpp's rule).
TEST(ArchForward, LongRopePicksFactorsByContext) {
  test::TempDir tmp;
  test::TinySpec s = phi3_spec();
  s.rope_short.assign(8, 1.0f);
  s.rope_long.assign(8, 3.0f);
  Model m = load_spec(tmp, s, "phi.gguf");
  const auto toks = some_tokens(20, 64);
  const auto short_ctx = fast_logits(m, toks, 32, 32, 20, 1);
  const auto long_ctx = fast_logits(m, toks, 64, 32, 20, 1);
  EXPECT_GT(max_rel_diff(short_ctx, long_ctx), 1e-3);
  // The same weights with linear scaling x3 instead of factors, long context.
  test::TinySpec lin = s;
  lin.rope_short.clear();
  lin.rope_long.clear();
  lin.kvs.emplace_back("rope.scaling.type", GgufValue::string("linear"));
  lin.kvs.emplace_back("rope.scaling.factor", GgufValue::f32(3.0f));
  EXPECT_LT(
      max_rel_diff(fast_logits(load_spec(tmp, lin, "lin.gguf"), toks, 64, 32, 20, 1), long_ctx),
      1e-5);
}

TEST(ArchLoad, BadStructureIsOneLine) {
  test::TempDir tmp;
  test::TinySpec moe = moe_spec();
  moe.kvs = {{"expert_used_count", GgufValue::u32(5)}};  // more than the 4 experts
  std::string path = tmp.file("bad.gguf");
  ASSERT_EQ(test::write_tiny_model(path, moe), "");
  auto m = Model::load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("expert_used_count"), std::string::npos) << m.error().message;
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos);

  test::TinySpec phi = phi3_spec();
  phi.wrong_shape = "blk.0.attn_qkv.weight";
  ASSERT_EQ(test::write_tiny_model(path, phi), "");
  m = Model::load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("tensor 'blk.0.attn_qkv.weight' has shape"), std::string::npos)
      << m.error().message;

  test::TinySpec q3 = qwen3_spec();
  q3.drop = "blk.1.attn_k_norm.weight";
  ASSERT_EQ(test::write_tiny_model(path, q3), "");
  m = Model::load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("missing tensor 'blk.1.attn_k_norm.weight'"), std::string::npos)
      << m.error().message;
}

}  // namespace
}  // namespace qforge
