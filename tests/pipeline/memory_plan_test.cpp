// The memory planner: SIZE parsing, llama.cpp's KV-cache sizing, and the whole-file size per mix
// equal to the bytes the quantizer writes (the planner is the quantizer's own).
#include <gtest/gtest.h>

#include <filesystem>

#include "formats/gguf.h"
#include "pipeline/memory_plan.h"
#include "pipeline/steps.h"
#include "quant/recipe.h"
#include "test_util.h"

namespace qforge {
namespace {

TEST(ParseSize, UnitsAreDecimalOrBinary) {
  EXPECT_EQ(*parse_size("123"), 123u);
  EXPECT_EQ(*parse_size("8GiB"), 8ull << 30);
  EXPECT_EQ(*parse_size("8 gib"), 8ull << 30);
  EXPECT_EQ(*parse_size("4GB"), 4000000000ull);
  EXPECT_EQ(*parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(*parse_size("512MB"), 512000000ull);
  EXPECT_EQ(*parse_size("1.5KiB"), 1536u);
  EXPECT_EQ(*parse_size("2KB"), 2000u);
  for (const char* bad : {"", "GiB", "8XB", "1.2.3MB", "-5", "8 GiBs"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("invalid size"), std::string::npos) << r.error().message;
  }
}

std::vector<GgufKv> hparams(const std::string& arch, int64_t layers, int64_t head, int64_t kv,
                            int64_t embd) {
  return {{"general.architecture", GgufValue::string(arch)},
          {arch + ".block_count", GgufValue::u32(static_cast<uint32_t>(layers))},
          {arch + ".attention.head_count", GgufValue::u32(static_cast<uint32_t>(head))},
          {arch + ".attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(kv))},
          {arch + ".embedding_length", GgufValue::u32(static_cast<uint32_t>(embd))}};
}

TEST(KvCache, LlamaLayout) {
  // refmodel's shape: 6 layers, 4 KV heads of 64 -> 2 x 256 f16 per layer and position.
  auto kvs = hparams("llama", 6, 8, 4, 512);
  auto kv = kv_cache_size(kvs, 2048, Type::F16);
  ASSERT_TRUE(kv.ok()) << kv.error().message;
  EXPECT_EQ(kv->cells, 2048);
  EXPECT_EQ(kv->k_bytes, 6ull * 2048 * 256 * 2);
  EXPECT_EQ(kv->bytes(), 12ull << 20);  // llama.cpp: "size = 12.00 MiB (2048 cells, 6 layers"
  EXPECT_EQ(kv_cache_size(kvs, 2048, Type::F32)->bytes(), 24ull << 20);
  // q8_0: 34 bytes per 32 values.
  EXPECT_EQ(kv_cache_size(kvs, 2048, Type::Q8_0)->k_bytes, 6ull * 2048 * (256 / 32) * 34);
}

TEST(KvCache, KeyAndValueLengthsAndSlidingWindow) {
  // gemma3-like: head dim 256 given by key_length/value_length, 6 layers of which 5 slide with
  // a window of 512: those keep min(ctx, 512 + 512 ubatch) cells.
  auto kvs = hparams("gemma3", 6, 4, 1, 640);
  kvs.emplace_back("gemma3.attention.key_length", GgufValue::u32(256));
  kvs.emplace_back("gemma3.attention.value_length", GgufValue::u32(128));
  kvs.emplace_back("gemma3.attention.sliding_window", GgufValue::u32(512));
  auto kv = kv_cache_size(kvs, 4096, Type::F16);
  ASSERT_TRUE(kv.ok()) << kv.error().message;
  EXPECT_EQ(kv->n_layer_swa, 5);
  EXPECT_EQ(kv->swa_cells, 1024);
  EXPECT_EQ(kv->k_bytes, (1ull * 4096 + 5ull * 1024) * 256 * 2);
  EXPECT_EQ(kv->v_bytes, (1ull * 4096 + 5ull * 1024) * 128 * 2);
  // llama.cpp pads the sliding-window cache to 256 cells: the gemma3 probe (window 8, 5 of 6
  // layers sliding, 2 KV heads of 8) at -c 2048 -ub 512 logs "creating SWA KV cache, size = 768
  // cells" and "non-SWA KV cache ... size = 0.12 MiB (2048 cells, 1 layers)".
  auto probe = hparams("gemma3", 6, 4, 2, 32);
  probe.emplace_back("gemma3.attention.key_length", GgufValue::u32(8));
  probe.emplace_back("gemma3.attention.value_length", GgufValue::u32(8));
  probe.emplace_back("gemma3.attention.sliding_window", GgufValue::u32(8));
  auto pk = kv_cache_size(probe, 2048, Type::F16);
  ASSERT_TRUE(pk.ok()) << pk.error().message;
  EXPECT_EQ(pk->swa_cells, 768);
  EXPECT_EQ(pk->k_bytes + pk->v_bytes, (2048ull + 5ull * 768) * 2 * 8 * 2 * 2);
  // A short context: the window does not shrink anything.
  EXPECT_EQ(kv_cache_size(kvs, 512, Type::F16)->k_bytes, 6ull * 512 * 256 * 2);
  auto missing =
      kv_cache_size({{"general.architecture", GgufValue::string("llama")}}, 16, Type::F16);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("llama.block_count"), std::string::npos);
}

// Every mix's planned size equals what quantize writes, on mini (all mixes) and refmodel.
void check_plan_equals_quantize(const std::string& model, const std::vector<std::string>& mixes) {
  auto src = open_model_source(model);
  ASSERT_TRUE(src.ok()) << src.error().message;
  PlanOptions po;
  po.n_ctx = 256;
  po.ram_bytes = 8ull << 30;
  po.ram_source = "--ram";
  po.mixes = mixes;
  auto hp = make_hardware_plan(**src, model, po);
  ASSERT_TRUE(hp.ok()) << hp.error().message;
  ASSERT_EQ(hp->mixes.size(), mixes.size());
  test::TempDir tmp;
  for (const auto& m : hp->mixes) {
    SCOPED_TRACE(m.mix);
    const std::string out = tmp.file(m.mix + ".gguf");
    auto q = quantize_step(model, out, m.mix, {});
    ASSERT_TRUE(q.ok()) << q.error().message;
    EXPECT_EQ(std::filesystem::file_size(out), m.file_bytes);
    EXPECT_EQ(q->file_bytes, m.file_bytes);
    std::filesystem::remove(out);
    std::filesystem::remove(out + ".sha256");
  }
}

// One mix of each family (legacy, K-quant with its attn_v/ffn_down rules, IQ4 fallbacks, float):
// every mix is measured by bench/plan_vs_quantize.sh (docs/BENCHMARKS.md).
TEST(HardwarePlan, FileSizeEqualsQuantizeOutputOnMini) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  check_plan_equals_quantize(test::shared_path("reference/mini-f16.gguf"),
                             {"F16", "Q8_0", "Q4_0", "Q5_K_M", "Q3_K_S", "IQ4_NL"});
}

TEST(HardwarePlan, FileSizeEqualsQuantizeOutputOnRefmodel) {
  QF_REQUIRE_SHARED("reference/refmodel-f16.gguf");
  check_plan_equals_quantize(test::shared_path("reference/refmodel-f16.gguf"), {"Q8_0", "Q4_0"});
}

TEST(HardwarePlan, RecommendationFallbackAndNothingFits) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  auto src = open_model_source(test::shared_path("reference/mini-f16.gguf"));
  ASSERT_TRUE(src.ok());
  PlanOptions po;
  po.n_ctx = 512;
  po.ram_bytes = 1ull << 30;
  po.mixes = {"Q8_0", "Q6_K", "Q4_K_M", "Q2_K"};
  po.priority = Priority::Balanced;
  auto hp = make_hardware_plan(**src, "mini", po);
  ASSERT_TRUE(hp.ok());
  ASSERT_TRUE(hp->recommended);
  // Prior (no measurements): the smallest mix with >= Q4_K_M's bits per weight.
  EXPECT_EQ(hp->mixes[*hp->recommended].mix, "Q4_K_M");
  EXPECT_FALSE(hp->fallback);  // nothing smaller passes the prior
  for (const auto& m : hp->mixes) {
    EXPECT_EQ(m.total_bytes, m.file_bytes + m.kv_bytes + m.compute_bytes + m.overhead_bytes);
    EXPECT_EQ(m.kv_bytes, hp->kv.bytes());
  }
  po.priority = Priority::Quality;
  hp = make_hardware_plan(**src, "mini", po);
  EXPECT_EQ(hp->mixes[*hp->recommended].mix, "Q8_0");
  ASSERT_TRUE(hp->fallback);
  EXPECT_EQ(hp->mixes[*hp->fallback].mix, "Q6_K");
  // Measured quality overrides the prior: Q6_K measured failing.
  po.measured = {{"Q8_0", 0.001, 100, true},
                 {"Q6_K", 0.2, 120, false},
                 {"Q4_K_M", 0.03, 150, true},
                 {"Q2_K", 0.5, 200, false}};
  po.priority = Priority::Speed;
  hp = make_hardware_plan(**src, "mini", po);
  EXPECT_EQ(hp->mixes[*hp->recommended].mix, "Q4_K_M");
  po.ram_bytes = 1000;
  hp = make_hardware_plan(**src, "mini", po);
  ASSERT_TRUE(hp.ok());
  EXPECT_FALSE(hp->recommended);
  ASSERT_TRUE(hp->smallest);
  EXPECT_EQ(hp->mixes[*hp->smallest].mix, "Q2_K");
  EXPECT_EQ(hp->missing_bytes, hp->mixes[*hp->smallest].total_bytes - 1000);
  EXPECT_NE(hp->reason.find("nothing fits"), std::string::npos);
}

}  // namespace
}  // namespace qforge
