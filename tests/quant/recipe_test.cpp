// Mix recipes against llama-quantize's choices (tests/data/quant/recipes.json, a compact copy of
// ../shared/reference/recipes.json): every tensor's type, the total tensor bytes and
// general.file_type, for 16 mixes x 2 probe models.
#include "quant/recipe.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/file_type.h"
#include "formats/hf_source.h"
#include "formats/probe_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

nlohmann::json load_fixture() {
  std::ifstream in(test::data_dir() + "/quant/recipes.json");
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

std::vector<GgufKv> probe_kvs(const nlohmann::json& m) {
  std::vector<GgufKv> kvs;
  const std::string arch = m["arch"];
  kvs.emplace_back("general.architecture", GgufValue::string(arch));
  kvs.emplace_back(arch + ".block_count", GgufValue::u32(m["n_layer"]));
  kvs.emplace_back(arch + ".attention.head_count", GgufValue::u32(m["n_head"]));
  kvs.emplace_back(arch + ".attention.head_count_kv", GgufValue::u32(m["n_head_kv"]));
  return kvs;
}

std::vector<RecipeTensor> probe_tensors(const nlohmann::json& list) {
  std::vector<RecipeTensor> ts;
  for (const auto& e : list) {
    RecipeTensor t;
    t.name = e[0];
    t.dims = e[1].get<std::vector<uint64_t>>();
    t.type = t.dims.size() == 1 ? Type::F32 : Type::F16;  // as convert writes them
    ts.push_back(t);
  }
  return ts;
}

// Plans `mix` for tensors given in any order; returns name -> choice.
std::map<std::string, TensorChoice> plan_by_name(const std::vector<RecipeTensor>& in,
                                                 const std::vector<GgufKv>& kvs,
                                                 std::string_view mix, RecipeOptions opts = {}) {
  std::vector<std::string> names;
  for (const auto& t : in) names.push_back(t.name);
  std::vector<RecipeTensor> sorted;
  for (size_t i : llama_tensor_order(names)) sorted.push_back(in[i]);
  auto m = mix_for(mix);
  EXPECT_TRUE(m.ok()) << mix;
  auto r = Recipe::create(**m, opts);
  EXPECT_TRUE(r.ok()) << r.error().message;
  auto p = r->plan(sorted, kvs);
  EXPECT_TRUE(p.ok()) << p.error().message;
  std::map<std::string, TensorChoice> out;
  for (size_t i = 0; i < sorted.size(); ++i) out[sorted[i].name] = (*p)[i];
  return out;
}

TEST(Recipe, MatchesLlamaQuantizeOnProbeModels) {
  const auto fx = load_fixture();
  int cases = 0;
  for (const auto& [probe, pj] : fx["probes"].items()) {
    const auto kvs = probe_kvs(pj["model"]);
    const auto tensors = probe_tensors(pj["tensors"]);
    for (const auto& [mix, mj] : pj["mixes"].items()) {
      SCOPED_TRACE(probe + " " + mix);
      const Mix* m = find_mix(mix);
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m->file_type, mj["file_type"].get<uint32_t>());
      auto choices = plan_by_name(tensors, kvs, mix);
      std::istringstream types(mj["types"].get<std::string>());
      uint64_t bytes = 0;
      for (const auto& t : tensors) {
        std::string want;
        types >> want;
        const TensorChoice& c = choices.at(t.name);
        EXPECT_EQ(type_name(c.type), want) << t.name;
        bytes += *tensor_size(c.type, t.dims);
      }
      EXPECT_EQ(bytes, mj["tensor_data_bytes"].get<uint64_t>());
      ++cases;
    }
  }
  EXPECT_EQ(cases, 32);
}

TEST(Recipe, MixTableAgreesWithFileTypeTable) {
  EXPECT_EQ(all_mixes().size(), 19u);
  for (const Mix& m : all_mixes()) {
    auto id = file_type_from_name(m.name);
    ASSERT_TRUE(id.has_value()) << m.name;
    EXPECT_EQ(*id, m.file_type) << m.name;
    EXPECT_TRUE(is_target_type(m.base)) << m.name;
  }
  EXPECT_EQ(find_mix("q4_k_m"), find_mix("Q4_K_M"));
  auto bad = mix_for("Q4_K_X");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("Q4_K_M"), std::string::npos);
  EXPECT_NE(bad.error().message.find("IQ4_XS"), std::string::npos);
}

TEST(Recipe, TensorTypeOverrideParsing) {
  auto o = parse_tensor_type_override("attn_v=q8_0");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->pattern, "attn_v");
  EXPECT_EQ(o->type, Type::Q8_0);
  auto eq = parse_tensor_type_override("a=b=Q6_K");  // split at the last '='
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(eq->pattern, "a=b");
  EXPECT_FALSE(parse_tensor_type_override("attn_v").ok());
  EXPECT_FALSE(parse_tensor_type_override("=Q4_K").ok());
  EXPECT_FALSE(parse_tensor_type_override("(unclosed=Q4_K").ok());
  auto badtype = parse_tensor_type_override("x=Q9_9");
  ASSERT_FALSE(badtype.ok());
  EXPECT_NE(badtype.error().message.find("IQ4_NL"), std::string::npos);
  EXPECT_FALSE(parse_tensor_type_override("x=Q8_K").ok());  // an activation format
}

std::vector<RecipeTensor> small_model(uint64_t hidden, bool tied) {
  std::vector<RecipeTensor> ts;
  ts.push_back({"token_embd.weight", {hidden, 1000}, Type::F16});
  ts.push_back({"output_norm.weight", {hidden}, Type::F32});
  if (!tied) ts.push_back({"output.weight", {hidden, 1000}, Type::F16});
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ts.push_back({p + "attn_norm.weight", {hidden}, Type::F32});
    ts.push_back({p + "attn_q.weight", {hidden, hidden}, Type::F16});
    ts.push_back({p + "attn_v.weight", {hidden, hidden}, Type::F16});
    ts.push_back({p + "ffn_down.weight", {hidden * 3, hidden}, Type::F16});
  }
  return ts;
}

std::vector<GgufKv> small_kvs() {
  return {{"general.architecture", GgufValue::string("llama")},
          {"llama.block_count", GgufValue::u32(2)},
          {"llama.attention.head_count", GgufValue::u32(4)},
          {"llama.attention.head_count_kv", GgufValue::u32(4)}};
}

TEST(Recipe, PureAndExplicitOverrides) {
  const auto ts = small_model(256, false);
  RecipeOptions pure;
  pure.pure = true;
  auto c = plan_by_name(ts, small_kvs(), "Q4_K_M", pure);
  EXPECT_EQ(c["output.weight"].type, Type::Q4_K);
  EXPECT_EQ(c["blk.0.attn_v.weight"].type, Type::Q4_K);
  EXPECT_EQ(c["blk.0.ffn_down.weight"].type, Type::Q4_K);
  EXPECT_FALSE(c["blk.0.attn_norm.weight"].quantize);
  EXPECT_EQ(c["blk.0.attn_norm.weight"].type, Type::F32);

  RecipeOptions o;
  o.output_tensor_type = Type::Q8_0;
  o.token_embedding_type = Type::Q4_0;
  o.tensor_types = {{"attn_q", Type::Q5_K}, {"blk\\.1\\.attn_q", Type::Q6_K}};  // last wins
  c = plan_by_name(ts, small_kvs(), "Q4_K_M", o);
  EXPECT_EQ(c["output.weight"].type, Type::Q8_0);
  EXPECT_TRUE(c["output.weight"].overridden);
  EXPECT_EQ(c["token_embd.weight"].type, Type::Q4_0);
  EXPECT_EQ(c["blk.0.attn_q.weight"].type, Type::Q5_K);
  EXPECT_EQ(c["blk.1.attn_q.weight"].type, Type::Q6_K);
  EXPECT_FALSE(c["blk.0.attn_v.weight"].overridden);

  // Explicit choices apply to the float mixes too.
  c = plan_by_name(ts, small_kvs(), "F16", o);
  EXPECT_EQ(c["blk.0.ffn_down.weight"].type, Type::F16);
  EXPECT_EQ(c["output.weight"].type, Type::Q8_0);
}

TEST(Recipe, TiedEmbeddingsAndRowFallbacks) {
  // hidden 320: no 256-block type fits a row of 320 values.
  const auto ts = small_model(320, true);
  auto c = plan_by_name(ts, small_kvs(), "Q4_K_M");
  EXPECT_EQ(c["token_embd.weight"].type, Type::Q8_0);  // tied: treated as the output tensor
  EXPECT_EQ(c["blk.0.attn_q.weight"].type, Type::Q5_0);
  EXPECT_TRUE(c["blk.0.attn_q.weight"].fallback);
  EXPECT_EQ(c["blk.0.attn_v.weight"].type, Type::Q5_0);
  EXPECT_EQ(c["blk.1.attn_v.weight"].type, Type::Q8_0);  // Q6_K (use_more_bits) -> Q8_0

  RecipeOptions o;
  o.output_tensor_type = Type::Q6_K;  // tied: applies to token_embd; must fall back
  o.tensor_types = {{"attn_q", Type::Q3_K}};
  c = plan_by_name(ts, small_kvs(), "Q4_K_M", o);
  EXPECT_EQ(c["token_embd.weight"].type, Type::Q8_0);
  EXPECT_TRUE(c["token_embd.weight"].fallback);
  EXPECT_EQ(c["blk.0.attn_q.weight"].type, Type::IQ4_NL);

  // A row that no block type divides ends in F16.
  std::vector<RecipeTensor> odd = {{"blk.0.attn_q.weight", {100, 64}, Type::F32}};
  c = plan_by_name(odd, small_kvs(), "Q4_0");
  EXPECT_EQ(c["blk.0.attn_q.weight"].type, Type::F16);
  c = plan_by_name(odd, small_kvs(), "Q6_K");
  EXPECT_EQ(c["blk.0.attn_q.weight"].type, Type::F16);
}

TEST(Recipe, WhatIsQuantized) {
  const std::vector<uint64_t> mat = {256, 256}, vec = {256}, col = {256, 1};
  EXPECT_TRUE(is_quantizable("blk.0.attn_q.weight", mat));
  EXPECT_FALSE(is_quantizable("blk.0.attn_q.bias", mat));
  EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", vec));
  EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", mat));
  EXPECT_FALSE(is_quantizable("blk.0.ffn_gate_inp.weight", mat));
  EXPECT_FALSE(is_quantizable("position_embd.weight", mat));
  EXPECT_FALSE(is_quantizable("blk.0.x.weight", col));  // trailing 1 does not count
}

TEST(Recipe, LlamaTensorOrder) {
  std::vector<std::string> names = {"blk.10.attn_q.weight", "token_embd.weight",
                                    "blk.2.ffn_up.weight",  "output.weight",
                                    "blk.2.attn_k.weight",  "output_norm.weight"};
  std::vector<std::string> got;
  for (size_t i : llama_tensor_order(names)) got.push_back(names[i]);
  EXPECT_EQ(got, (std::vector<std::string>{"output.weight", "output_norm.weight",
                                           "token_embd.weight", "blk.2.attn_k.weight",
                                           "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}));
}

TEST(Recipe, ImatrixChangesTheLowLayers) {
  // With 2 layers n/8 == 0 and no layer is "low": use 16.
  std::vector<RecipeTensor> many;
  for (int l = 0; l < 16; ++l)
    many.push_back({"blk." + std::to_string(l) + ".ffn_down.weight", {768, 256}, Type::F16});
  auto kvs = small_kvs();
  kvs[1].second = GgufValue::u32(16);
  RecipeOptions im;
  im.has_imatrix = true;
  auto c = plan_by_name(many, kvs, "Q4_0", im);
  EXPECT_EQ(c["blk.0.ffn_down.weight"].type, Type::Q4_1);
  EXPECT_EQ(c["blk.1.ffn_down.weight"].type, Type::Q4_1);
  EXPECT_EQ(c["blk.2.ffn_down.weight"].type, Type::Q4_0);
  c = plan_by_name(many, kvs, "Q4_0");
  EXPECT_EQ(c["blk.0.ffn_down.weight"].type, Type::Q4_0);
  c = plan_by_name(many, kvs, "IQ4_NL");
  EXPECT_EQ(c["blk.1.ffn_down.weight"].type, Type::Q5_K);
  c = plan_by_name(many, kvs, "IQ4_NL", im);
  EXPECT_EQ(c["blk.1.ffn_down.weight"].type, Type::IQ4_NL);
}

// The architecture probes at hidden size 256 (../shared/arch/recipes.json: llama-quantize's
// type for every tensor of 12 mixes per family): the converted tensors (names, shapes, F32
// routers / norms) as the recipe sees them, the family's hyper-parameters from the converter's
// KVs. Experts, fused tensors and tied embeddings are all in there. recipes.json's qwen3 was
// measured with head_dim 128 (its _shapes), not make_probe.py's 32: the probe is built with
// the head size of the oracle's shapes (with 32, attn_output rows of 128 fall back to IQ4_NL /
// Q5_0 ... exactly as llama-quantize does for rows that a 256-block type cannot hold).
TEST(Recipe, MatchesLlamaQuantizeOnArchitectureProbes) {
  QF_REQUIRE_SHARED("arch/recipes.json");
  const auto all = nlohmann::json::parse(test::read_all(test::shared_path("arch/recipes.json")));
  for (const auto& [probe, mixes] : all.items()) {
    SCOPED_TRACE(probe);
    test::TempDir dir;
    const auto& shapes = mixes["_shapes"];
    const uint64_t hd = shapes.contains("blk.0.attn_k_norm.weight")
                            ? shapes["blk.0.attn_k_norm.weight"][0].get<uint64_t>()
                            : 0;
    test::write_probe(probe, dir.path().string(), 256, false, /*weights=*/false, hd);
    HfSourceOptions o;
    o.tokenizer = false;
    auto src = HfTensorSource::open(dir.path().string(), o);
    ASSERT_TRUE(src.ok()) << src.error().message;
    std::vector<RecipeTensor> ts;
    for (const auto& t : (*src)->tensors()) {
      ts.push_back({t.name, t.dims, t.type});
      ASSERT_TRUE(shapes.contains(t.name)) << t.name;
      auto want = shapes[t.name].get<std::vector<uint64_t>>();
      if (t.name == "token_embd.weight" || t.name == "output.weight") want[1] = t.dims[1];  // vocab
      EXPECT_EQ(t.dims, want) << t.name;
    }
    EXPECT_EQ(ts.size(), shapes.size());
    int checked = 0;
    for (const auto& [mix, want] : mixes.items()) {
      if (mix == "_shapes") continue;
      SCOPED_TRACE(mix);
      auto got = plan_by_name(ts, (*src)->kvs(), mix);
      for (const auto& [name, type] : want.items()) {
        auto it = got.find(name);
        if (it == got.end()) {
          ADD_FAILURE() << "no tensor " << name;
          continue;
        }
        EXPECT_EQ(type_name(it->second.type), type.get<std::string>()) << name;
        ++checked;
      }
    }
    EXPECT_GT(checked, 12 * 20);
  }
}

}  // namespace
}  // namespace qforge
