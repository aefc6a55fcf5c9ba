// Size-targeted allocation (quant/size_target.h, quant/sensitivity.h): budgets are never
// exceeded and are used to within 0.5 %, the allocator prefers the tensor whose error falls
// most per byte, split experts share a type, tied embeddings keep a single head, norms are left
// alone, and the planned size is the written size.
#include "quant/size_target.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "formats/gguf.h"
#include "kernels/codec.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

struct ModelFile {
  test::TempDir dir;
  std::string path;
  std::shared_ptr<const GgufFile> file;
  explicit ModelFile(test::SyntheticModel m) {
    path = dir.file("model.gguf");
    EXPECT_TRUE(test::write_synthetic_gguf(path, m).ok());
    file = std::make_shared<const GgufFile>(*GgufFile::open(path));
  }
};

test::SyntheticModel small_model(bool tied) {
  test::SyntheticModel m;
  m.n_layer = 2;
  m.hidden = 512;
  m.ffn = 1024;
  m.n_head = 4;
  m.n_head_kv = 2;
  m.vocab = 1024;
  m.tied = tied;
  return m;
}

TEST(SizeTarget, BudgetsNeverExceededAndWithinHalfAPercent) {
  ModelFile fx(small_model(false));
  GgufTensorSource src(fx.file);
  ModelQuantizeOptions base;
  SensitivityOptions so;
  so.threads = 2;
  auto table = measure_sensitivity(src, nullptr, so);
  ASSERT_TRUE(table.ok()) << table.error().message;
  ASSERT_EQ(table->size(), 2u + 2u * 7u);  // token_embd, output, 7 matrices per layer
  for (const auto& t : *table) {
    ASSERT_FALSE(t.costs.empty());
    for (size_t i = 1; i < t.costs.size(); ++i) EXPECT_LE(t.costs[i - 1].bytes, t.costs[i].bytes);
  }
  // The smallest and largest feasible files.
  auto lo = plan_size_target(src, base, UINT64_MAX, so, default_proxy_model(), *table);
  ASSERT_TRUE(lo.ok()) << lo.error().message;
  const uint64_t min_bytes = lo->allocation.min_file_bytes,
                 max_bytes = lo->allocation.max_file_bytes;
  ASSERT_LT(min_bytes, max_bytes);
  EXPECT_EQ(lo->plan.output_file_bytes, max_bytes);  // an unlimited budget takes the best types
  double first_pred = 1e300;
  for (int k = 0; k <= 40; ++k) {
    const uint64_t budget = min_bytes + (max_bytes - min_bytes) * k / 40;
    auto tp = plan_size_target(src, base, budget, so, default_proxy_model(), *table);
    ASSERT_TRUE(tp.ok()) << tp.error().message;
    EXPECT_LE(tp->plan.output_file_bytes, budget) << "budget " << budget;
    EXPECT_GE(tp->plan.output_file_bytes, budget - budget / 200) << "budget " << budget;
    // The whole budget predicts less error than the smallest file.
    EXPECT_LE(tp->allocation.predicted_kld, first_pred * (1 + 1e-12)) << "budget " << budget;
    if (k == 0) first_pred = tp->allocation.predicted_kld;
    // Norms and other non-quantized tensors are copied as they are.
    for (const auto& t : tp->plan.tensors)
      if (t.dims.size() == 1) {
        EXPECT_EQ(t.dst_type, t.src_type) << t.name;
      }
  }
  auto below = plan_size_target(src, base, min_bytes - 1, so, default_proxy_model(), *table);
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.error().message.find("below the smallest possible file"), std::string::npos);
}

TEST(SizeTarget, WrittenFileHasThePlannedSizeAndTypes) {
  ModelFile fx(small_model(true));
  GgufTensorSource src(fx.file);
  SensitivityOptions so;
  so.threads = 2;
  auto lo = plan_size_target(src, {}, UINT64_MAX, so, default_proxy_model());
  ASSERT_TRUE(lo.ok()) << lo.error().message;
  const uint64_t budget = (lo->allocation.min_file_bytes + lo->allocation.max_file_bytes) / 2;
  auto tp = plan_size_target(src, {}, budget, so, default_proxy_model(), lo->table);
  ASSERT_TRUE(tp.ok()) << tp.error().message;
  // Tied embeddings: no output.weight appears, token_embd has one allocated type.
  bool saw_embd = false;
  for (const auto& t : tp->plan.tensors) {
    EXPECT_NE(t.name, "output.weight");
    if (t.name == "token_embd.weight") {
      saw_embd = true;
      EXPECT_EQ(t.dst_type, tp->options.tensor_type_map.at(t.name));
    }
  }
  EXPECT_TRUE(saw_embd);
  const std::string out = fx.dir.file("out.gguf");
  auto rep = quantize_model(src, out, tp->options);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(std::filesystem::file_size(out), tp->plan.output_file_bytes);
  EXPECT_LE(std::filesystem::file_size(out), budget);
  auto f = GgufFile::open(out);
  ASSERT_TRUE(f.ok());
  for (const auto& t : f->tensors()) {
    auto it = tp->options.tensor_type_map.find(t.name);
    if (it != tp->options.tensor_type_map.end()) {
      EXPECT_EQ(t.type, it->second) << t.name;
    }
  }
}

TEST(SizeTarget, TypesTheUserGaveAreKeptAndTheRestAllocatedAroundThem) {
  ModelFile fx(small_model(false));
  GgufTensorSource src(fx.file);
  SensitivityOptions so;
  so.threads = 2;
  auto table = measure_sensitivity(src, nullptr, so);
  ASSERT_TRUE(table.ok()) << table.error().message;
  ModelQuantizeOptions base;
  base.recipe.output_tensor_type = Type::Q8_0;
  base.recipe.tensor_types.push_back(*parse_tensor_type_override("attn_v=Q2_K"));
  auto lo = plan_size_target(src, base, UINT64_MAX, so, default_proxy_model(), *table);
  ASSERT_TRUE(lo.ok()) << lo.error().message;
  const uint64_t budget = (lo->allocation.min_file_bytes + lo->allocation.max_file_bytes) / 2;
  auto tp = plan_size_target(src, base, budget, so, default_proxy_model(), *table);
  ASSERT_TRUE(tp.ok()) << tp.error().message;
  EXPECT_LE(tp->plan.output_file_bytes, budget);
  int n_pinned = 0, n_free_types = 0;
  std::set<Type> free_types;
  for (const auto& [name, type] : tp->options.tensor_type_map) {
    if (name == "output.weight") {
      EXPECT_EQ(type, Type::Q8_0);
      ++n_pinned;
    } else if (name.find("attn_v") != std::string::npos) {
      EXPECT_EQ(type, Type::Q2_K) << name;  // kept although the budget would buy more
      ++n_pinned;
    } else {
      free_types.insert(type);
    }
  }
  n_free_types = static_cast<int>(free_types.size());
  EXPECT_EQ(n_pinned, 3);      // output + two layers' attn_v
  EXPECT_GE(n_free_types, 1);  // the others are allocated
  // A pinned type the table did not measure cannot be priced: an error naming the tensor.
  SensitivityOptions few = so;
  few.types = {Type::Q4_K, Type::Q8_0};
  auto small = measure_sensitivity(src, nullptr, few);
  ASSERT_TRUE(small.ok());
  auto bad = plan_size_target(src, base, budget, few, default_proxy_model(), *small);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("attn_v.weight' is given Q2_K"), std::string::npos)
      << bad.error().message;
}

TensorSensitivity constructed(const std::string& name, double err_scale) {
  TensorSensitivity t;
  t.name = name;
  t.kind = "attn_q.weight";
  t.layer = 0;
  t.n_elements = 256 * 256;
  t.signal = 1;
  // Q2_K / Q4_K / Q8_0 bytes of a 256 x 256 matrix; errors fall with bits, scaled per tensor.
  t.costs = {{Type::Q2_K, 21504, 1.0 * err_scale},
             {Type::Q4_K, 36864, 0.1 * err_scale},
             {Type::Q8_0, 69632, 0.001 * err_scale}};
  return t;
}

TEST(SizeTarget, AllocatorUpgradesTheTensorWithTheLargerGain) {
  std::vector<TensorSensitivity> table = {constructed("blk.0.a.weight", 1.0),
                                          constructed("blk.0.b.weight", 10.0)};
  AllocationInput in;
  in.fixed_bytes = 1000;
  in.alignment = 32;
  // Room for one Q2_K -> Q4_K step only: it must go to b (10x the error).
  in.budget_bytes = 1000 + 21504 + 36864 + 100;
  auto a = allocate_types(table, default_proxy_model(), in);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(table[0].costs[a->choice[0]].type, Type::Q2_K);
  EXPECT_EQ(table[1].costs[a->choice[1]].type, Type::Q4_K);
  EXPECT_EQ(a->file_bytes, 1000u + 21504 + 36864);
  // A per-kind factor can reverse it.
  table[0].kind = "ffn_down.weight";
  ProxyModel m = default_proxy_model();
  m.kind_scale["ffn_down.weight"] = 100 * m.scale_for("attn_q.weight");
  a = allocate_types(table, m, in);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(table[0].costs[a->choice[0]].type, Type::Q4_K);
  EXPECT_EQ(table[1].costs[a->choice[1]].type, Type::Q2_K);
}

// The Hessian prior predicts from the relative error: two models whose activations differ in
// scale (the same tensor, errors and signal 1000x) get the same predictions, so the allocation
// of one model carries to another. Its first-block factors move blk.0's attention down and
// blk.0's ffn_down up against the later blocks.
TEST(SizeTarget, HessianPriorIsScaleFreeAndWeighsTheFirstBlock) {
  const ProxyModel h = builtin_proxy_model(true);
  EXPECT_TRUE(h.relative);
  EXPECT_FALSE(builtin_proxy_model(false).relative);
  EXPECT_EQ(builtin_proxy_model(false).source, default_proxy_model().source);
  auto pred = [&](const std::string& kind, int layer, double scale) {
    TensorSensitivity t = constructed("blk." + std::to_string(layer) + "." + kind, scale);
    t.kind = kind;
    t.layer = layer;
    t.signal = 50 * scale;
    return predicted_kld(t, t.costs[1], h, false, 6);
  };
  for (const char* k : {"attn_q.weight", "ffn_down.weight", "output.weight", "unseen.weight"})
    EXPECT_NEAR(pred(k, 2, 1000.0), pred(k, 2, 1.0), 1e-12 * pred(k, 2, 1.0)) << k;
  EXPECT_LT(pred("attn_q.weight", 0, 1.0), 0.5 * pred("attn_q.weight", 1, 1.0));
  EXPECT_LT(pred("attn_k.weight", 0, 1.0), 0.5 * pred("attn_k.weight", 1, 1.0));
  EXPECT_GT(pred("ffn_down.weight", 0, 1.0), 2.0 * pred("ffn_down.weight", 1, 1.0));
  EXPECT_EQ(pred("attn_q.weight", 1, 1.0), pred("attn_q.weight", 5, 1.0));  // no depth trend
  // Same relative error: the head moves the output most, blk.N.attn_q least.
  EXPECT_GT(pred("output.weight", -1, 1.0), pred("ffn_down.weight", 2, 1.0));
  EXPECT_GT(pred("ffn_down.weight", 2, 1.0), pred("attn_q.weight", 2, 1.0));
  // A head the imatrix weighted has a smaller relative error for the same KLD: larger factor.
  TensorSensitivity head = constructed("output.weight", 1.0);
  head.kind = "output.weight";
  head.layer = -1;
  const double plain = predicted_kld(head, head.costs[1], h, false, 6);
  head.weighted = true;
  EXPECT_GT(predicted_kld(head, head.costs[1], h, false, 6), 2 * plain);
}

TEST(SizeTarget, ProxyFileFirstLayerFactors) {
  auto m = proxy_model_from_json(
      nlohmann::json::parse(
          R"({"factors": {"attn_v.weight": 2.0}, "error": "relative", "depth_factors": [1],
                               "first_layer_factors": {"attn_v.weight": 0.25}})"),
      "p.json");
  ASSERT_TRUE(m.ok()) << m.error().message;
  TensorSensitivity t = constructed("blk.0.attn_v.weight", 1.0);
  t.kind = "attn_v.weight";
  t.signal = 4;
  const double p0 = predicted_kld(t, t.costs[0], *m, false, 1);
  EXPECT_NEAR(p0, 2.0 * 0.25 * 1.0 / 4, 1e-15);  // factor x first-block factor x error / signal
  t.layer = 1;
  EXPECT_NEAR(predicted_kld(t, t.costs[0], *m, false, 1), 4 * p0, 1e-15);
  for (const char* bad : {R"({"factors": {}, "first_layer_factors": {"attn_v.weight": -1}})",
                          R"({"factors": {}, "first_layer_factors": [1]})"}) {
    auto e = proxy_model_from_json(nlohmann::json::parse(bad), "p.json");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(e.error().message.find("first"), std::string::npos) << e.error().message;
  }
}

TEST(SizeTarget, SplitExpertsOfALayerShareOneType) {
  EXPECT_EQ(type_group_key("blk.3.ffn_down.5.weight"), "blk.3.ffn_down.experts");
  EXPECT_EQ(type_group_key("blk.3.ffn_down.weight"), "");
  std::vector<TensorSensitivity> table;
  for (int e = 0; e < 4; ++e) {
    // Expert 0 is far more sensitive than the others: alone it would get more bits.
    table.push_back(constructed("blk.1.ffn_up." + std::to_string(e) + ".weight", e == 0 ? 50 : 1));
    table.back().kind = "ffn_up.weight";
  }
  AllocationInput in;
  in.alignment = 32;
  for (uint64_t budget = 4 * 21504; budget <= 4 * 69632; budget += 4096) {
    in.budget_bytes = budget;
    auto a = allocate_types(table, default_proxy_model(), in);
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_LE(a->file_bytes, budget);
    for (size_t i = 1; i < table.size(); ++i) EXPECT_EQ(a->choice[i], a->choice[0]) << budget;
  }
}

TEST(SizeTarget, CandidateFallbacksFollowTheRecipe) {
  EXPECT_EQ(fit_candidate(Type::Q4_K, 256), Type::Q4_K);
  EXPECT_EQ(fit_candidate(Type::Q4_K, 96), Type::Q5_0);
  EXPECT_EQ(fit_candidate(Type::Q5_K, 96), Type::Q5_1);
  EXPECT_EQ(fit_candidate(Type::Q6_K, 96), Type::Q8_0);
  EXPECT_EQ(fit_candidate(Type::Q2_K, 96), Type::IQ4_NL);
  EXPECT_EQ(fit_candidate(Type::IQ4_XS, 40), Type::F16);
  auto l = parse_candidate_types("q4_k,Q6_K,q4_k");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->size(), 2u);
  EXPECT_FALSE(parse_candidate_types("Q4_K,F16").ok());
  EXPECT_FALSE(parse_candidate_types("Q4_K,BOGUS").ok());
}

}  // namespace
}  // namespace qforge
