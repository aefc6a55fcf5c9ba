// The fast forward path (batched, KV cache, threads) against the scalar reference path, and
// the individual ops against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "engine/forward.h"
#include "engine/tiny_model_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::some_tokens;

// Max |fast - reference| over all logits, the fast path decoding in pieces of `piece`;
// relative to the largest |logit| when `relative`.
// The KV cache is f32 unless kv says otherwise (the reference computes in f32/double).
double fast_vs_reference(const test::TinySpec& spec, int64_t n_batch, int piece, int threads,
                         bool relative = false, KvType kv = KvType::F32) {
  test::TempDir tmp;
  const std::string path = tmp.file("m.gguf");
  EXPECT_EQ(test::write_tiny_model(path, spec), "");
  auto m = Model::load(path);
  if (!m.ok()) {
    ADD_FAILURE() << m.error().message;
    return 1e9;
  }
  const auto toks = some_tokens(40, static_cast<int>(spec.vocab));
  auto ref = forward_reference(*m, toks);
  EXPECT_TRUE(ref.ok());
  ThreadPool pool(threads);
  Context ctx(*m, 64, pool, n_batch, kv);
  double worst = 0;
  const int64_t V = spec.vocab;
  for (size_t b = 0; b < toks.size(); b += static_cast<size_t>(piece)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(piece), toks.size() - b);
    EXPECT_TRUE(
        ctx.decode(std::span<const int32_t>(toks).subspan(b, n), static_cast<int64_t>(n)).ok());
    for (size_t i = 0; i < n * static_cast<size_t>(V); ++i)
      worst = std::max(worst, std::fabs(double(ctx.logits()[i]) - (*ref)[b * V + i]));
  }
  double scale = 0;
  for (float x : *ref) scale = std::max(scale, std::fabs(double(x)));
  return relative ? worst / scale : worst;
}

bool have_codec(Type t) {
  return find_codec(t) != nullptr;
}

TEST(Forward, FastMatchesReferenceF32) {
  if (!have_codec(Type::F32)) GTEST_SKIP() << "F32 codec not registered yet";
  test::TinySpec spec;
  EXPECT_LT(fast_vs_reference(spec, 512, 40, 2), 2e-4);  // one batch
  EXPECT_LT(fast_vs_reference(spec, 8, 40, 2), 2e-4);    // micro-batches
  EXPECT_LT(fast_vs_reference(spec, 512, 3, 1), 2e-4);   // incremental with the KV cache
}

TEST(Forward, FastMatchesReferenceQwen2TiedMha) {
  if (!have_codec(Type::F32)) GTEST_SKIP() << "F32 codec not registered yet";
  test::TinySpec spec;
  spec.arch = "qwen2";
  spec.biases = true;
  spec.tied = true;
  spec.kv_heads = 4;
  spec.rope_base = 1e6f;
  EXPECT_LT(fast_vs_reference(spec, 16, 5, 2), 2e-4);
}

TEST(Forward, FastMatchesReferenceQuantized) {
  for (Type t : {Type::F16, Type::Q8_0, Type::Q4_0}) {
    if (!have_codec(t) || !reference_codecs()[static_cast<size_t>(t)].quantize) continue;
    SCOPED_TRACE(std::string(type_name(t)));
    test::TinySpec spec;
    spec.wtype = t;
    // Batches (GEMM on dequantized weights) compute what the reference computes.
    const double gemm = fast_vs_reference(spec, 20, 20, 2, true);
    // Single tokens go through vec_dot, which may quantize activations to 8 bits (as
    // llama.cpp does) while the reference does not: allow a few % of the logit range.
    const double dot = fast_vs_reference(spec, 16, 1, 2, true);
    std::printf("%s: max |fast - reference| / max |logit|: batches %.2e, single tokens %.2e\n",
                std::string(type_name(t)).c_str(), gemm, dot);
    EXPECT_LT(gemm, 1e-4);
    EXPECT_LT(dot, t == Type::F16 ? 1e-4 : 5e-2);
  }
}

// An f16 KV cache (the default) rounds keys and values to 11 significant bits: the logits
// stay within 1e-3 of the logit range of the f32 reference, batched and incremental.
TEST(Forward, F16KvCacheStaysCloseToReference) {
  if (!have_codec(Type::F32)) GTEST_SKIP() << "F32 codec not registered yet";
  test::TinySpec spec;
  const double batch = fast_vs_reference(spec, 512, 40, 2, true, KvType::F16);
  const double incremental = fast_vs_reference(spec, 512, 1, 2, true, KvType::F16);
  const double f32 = fast_vs_reference(spec, 512, 1, 2, true, KvType::F32);
  std::printf(
      "f16 KV: max |fast - reference| / max |logit|: batch %.2e, incremental %.2e "
      "(f32 KV %.2e)\n",
      batch, incremental, f32);
  EXPECT_LT(batch, 1e-3);
  EXPECT_LT(incremental, 1e-3);
  EXPECT_GT(incremental, f32);  // the cache really holds halves
}

TEST(Forward, DecodeRejectsBadInput) {
  if (!have_codec(Type::F32)) GTEST_SKIP() << "F32 codec not registered yet";
  test::TempDir tmp;
  ASSERT_EQ(test::write_tiny_model(tmp.file("m.gguf"), {}), "");
  auto m = Model::load(tmp.file("m.gguf"));
  ASSERT_TRUE(m.ok());
  ThreadPool pool(1);
  Context ctx(*m, 8, pool);
  std::vector<int32_t> bad = {1, 64};
  auto st = ctx.decode(bad, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("token id 64 is outside the vocabulary"), std::string::npos);
  EXPECT_EQ(ctx.n_past(), 0);
  std::vector<int32_t> many(9, 3);
  st = ctx.decode(many, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("do not fit in the context"), std::string::npos);
}

TEST(Ops, RmsNorm) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float y[4];
  rms_norm_row(x, w, 4, 0.0f, y);
  const float r = std::sqrt(30.0f / 4);
  EXPECT_NEAR(y[0], 1 / r, 1e-6);
  EXPECT_NEAR(y[2], 6 / r, 1e-6);
  EXPECT_NEAR(y[3], 2 / r, 1e-6);
}

TEST(Ops, RopeNormalAndNeoxPairing) {
  // n_rot 4: pair frequencies 1 and base^-0.5 = 0.01 for base 1e4.
  const double inv[2] = {1.0, 0.01};
  float a[4] = {1, 0, 1, 0};
  rope_row(a, 4, inv, 2, RopeType::Normal);  // pairs (0,1) and (2,3)
  EXPECT_NEAR(a[0], std::cos(2.0), 1e-6);
  EXPECT_NEAR(a[1], std::sin(2.0), 1e-6);
  EXPECT_NEAR(a[2], std::cos(0.02), 1e-6);
  EXPECT_NEAR(a[3], std::sin(0.02), 1e-6);
  float b[4] = {1, 1, 0, 0};
  rope_row(b, 4, inv, 2, RopeType::Neox);  // pairs (0,2) and (1,3)
  EXPECT_NEAR(b[0], std::cos(2.0), 1e-6);
  EXPECT_NEAR(b[2], std::sin(2.0), 1e-6);
  EXPECT_NEAR(b[1], std::cos(0.02), 1e-6);
  EXPECT_NEAR(b[3], std::sin(0.02), 1e-6);
  float c[4] = {0.3f, -0.7f, 0.2f, 0.9f};
  float c0[4] = {0.3f, -0.7f, 0.2f, 0.9f};
  rope_row(c, 4, inv, 0, RopeType::Normal);  // position 0 is the identity
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(c[i], c0[i]);
}

}  // namespace
}  // namespace qforge
