// The architecture probes (../shared/arch): the C++ port of make_probe.py regenerates each
// probe's weights bit for bit, and the converter writes what llama.cpp's converter writes
// (ref-manifest.json: every tensor's name, type, shape and data SHA-256, every hyper-parameter
// KV), from the transformers-4 config.json and from the transformers-5 v5-config.json alike.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "core/fp16.h"
#include "formats/hf_source.h"
#include "formats/model_family.h"
#include "io/sha256.h"
#include "probe_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using nlohmann::json;

std::string span_sha(std::span<const uint8_t> b) {
  return sha256_hex(b);
}

// Is the value of our KV the manifest's (floats as float32, ints exactly, strings, short lists)?
::testing::AssertionResult same_value(const std::string& key, const GgufValue& v, const json& m) {
  if (m.is_number_float()) {
    auto f = v.as_float();
    if (f && static_cast<float>(*f) == static_cast<float>(m.get<double>()))
      return ::testing::AssertionSuccess();
  } else if (m.is_boolean()) {
    if (v.as_bool() && *v.as_bool() == m.get<bool>()) return ::testing::AssertionSuccess();
  } else if (m.is_number_integer()) {
    if (v.as_int() && *v.as_int() == m.get<int64_t>()) return ::testing::AssertionSuccess();
  } else if (m.is_string()) {
    if (v.as_string() && *v.as_string() == m.get<std::string>())
      return ::testing::AssertionSuccess();
  } else {
    return ::testing::AssertionFailure()
           << key << ": manifest value " << m.dump(-1).substr(0, 80) << " not compared here";
  }
  return ::testing::AssertionFailure()
         << key << ": ours " << v.to_display() << ", llama.cpp " << m.dump();
}

std::unique_ptr<HfTensorSource> open_probe(const std::string& dir, bool tokenizer) {
  HfSourceOptions o;
  o.outtype = OutType::F16;
  o.tokenizer = tokenizer;
  auto s = HfTensorSource::open(dir, o);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(*s) : nullptr;
}

// Tensors and hyper-parameter KVs against ref-manifest.json.
void expect_manifest(HfTensorSource& src, const json& manifest) {
  std::map<std::string, size_t> ours;
  for (size_t i = 0; i < src.tensors().size(); ++i) ours[src.tensors()[i].name] = i;
  EXPECT_EQ(ours.size(), manifest["tensors"].size());
  for (const auto& t : manifest["tensors"]) {
    const std::string name = t["name"];
    auto it = ours.find(name);
    if (it == ours.end()) {
      ADD_FAILURE() << "missing tensor " << name;
      continue;
    }
    const SourceTensor& st = src.tensors()[it->second];
    EXPECT_EQ(type_name(st.type), t["type"].get<std::string>()) << name;
    EXPECT_EQ(st.dims, t["shape"].get<std::vector<uint64_t>>()) << name;
    auto data = src.data(it->second);
    ASSERT_TRUE(data.ok()) << data.error().message;
    EXPECT_EQ(span_sha(*data), t["sha256"].get<std::string>()) << name;
    src.release(it->second);
  }
  for (const auto& [key, val] : manifest["kv"].items()) {
    if (key.rfind("general.", 0) == 0 || key.rfind("tokenizer.", 0) == 0) continue;
    const GgufValue* v = src.find_kv(key);
    if (!v) {
      ADD_FAILURE() << "missing KV " << key << " = " << val.dump();
      continue;
    }
    EXPECT_TRUE(same_value(key, *v, val));
  }
}

class ArchProbe : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchProbe, FixtureRegeneratesTheWeightsBitForBit) {
  const std::string p = GetParam();
  QF_REQUIRE_PROBE(p);
  const std::string want = test::read_all(test::probe_dir(p) + "/model.safetensors.sha256");
  const json cfg = test::probe_config(p, 0);
  const std::string st = test::probe_safetensors(p, cfg["vocab_size"], cfg["hidden_size"]);
  const std::string got =
      sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(st.data()), st.size()));
  EXPECT_EQ(want.substr(0, 64), got);
}

TEST_P(ArchProbe, TensorsAndHyperParametersMatchLlamaCpp) {
  const std::string p = GetParam();
  QF_REQUIRE_PROBE(p);
  const std::string mpath = test::probe_dir(p) + "/ref-manifest.json";
  if (!std::filesystem::exists(mpath)) GTEST_SKIP() << p << " has no ref-manifest.json";
  const json manifest = json::parse(test::read_all(mpath));
  for (bool v5 : {false, true}) {
    SCOPED_TRACE(v5 ? "v5-config.json" : "config.json");
    test::TempDir dir;
    test::write_probe(p, dir.path().string(), 0, v5);
    auto src = open_probe(dir.path().string(), /*tokenizer=*/false);
    ASSERT_TRUE(src);
    expect_manifest(*src, manifest);
  }
}

TEST_P(ArchProbe, V5ConfigGivesTheSameKvs) {
  const std::string p = GetParam();
  QF_REQUIRE_PROBE(p);
  std::vector<GgufKv> kvs[2];
  for (int v5 = 0; v5 < 2; ++v5) {
    test::TempDir dir;
    test::write_probe(p, dir.path().string(), 0, v5 == 1, /*weights=*/false);
    auto src = open_probe(dir.path().string(), false);
    ASSERT_TRUE(src);
    kvs[v5] = src->kvs();
    for (auto& kv : kvs[v5])
      if (kv.first == "general.name") kv.second = GgufValue::string("x");
  }
  EXPECT_EQ(kvs[0], kvs[1]);
}

// Phi-3's transformers-5 config carries Phi3Config's default pad_token_id 32000, an ordinary
// token of the GPT-4o vocabulary; the tokenizer files name no pad token. Both config styles must
// give the same file, tokenizer KVs included (no padding id written).
TEST(ArchProbePhi3, V5ConfigGivesTheSameTokenizerKvs) {
  QF_REQUIRE_PROBE("phi3");
  std::vector<GgufKv> kvs[2];
  for (int v5 = 0; v5 < 2; ++v5) {
    test::TempDir dir;
    test::write_probe("phi3", dir.path().string(), 0, v5 == 1, /*weights=*/false);
    auto src = open_probe(dir.path().string(), /*tokenizer=*/true);
    ASSERT_TRUE(src);
    kvs[v5] = src->kvs();
    for (auto& kv : kvs[v5])
      if (kv.first == "general.name") kv.second = GgufValue::string("x");
    for (const auto& kv : kvs[v5]) EXPECT_NE(kv.first, "tokenizer.ggml.padding_token_id");
  }
  EXPECT_EQ(kvs[0], kvs[1]);
}

INSTANTIATE_TEST_SUITE_P(Probes, ArchProbe, ::testing::ValuesIn(test::probe_names()),
                         [](const auto& info) { return info.param; });

// Gemma-3 without tokenizer.model: llama.cpp keeps len(model.vocab) + len(added_tokens) rows of
// the embedding (for the published tokenizer.json 262144 + 6415, which exceeds the 262145 rows
// of the probe, so nothing is cut there); qforge does the same. A checkpoint with more rows
// than that count loses the rows past it.
TEST(ArchProbeGemma3, EmbeddingTrimmedLikeLlamaCpp) {
  QF_REQUIRE_PROBE("gemma3");
  test::TempDir dir;
  const std::string d = dir.path().string();
  test::write_probe("gemma3", d, 0, false, /*weights=*/false);
  const uint64_t kept = 262144 + 6415, padded = kept + 63, H = 32;
  json cfg = json::parse(test::read_all(d + "/config.json"));
  cfg["vocab_size"] = padded;
  std::ofstream(d + "/config.json") << cfg.dump();
  const std::string st = test::probe_safetensors("gemma3", padded, H);
  std::ofstream(d + "/model.safetensors", std::ios::binary)
      .write(st.data(), static_cast<std::streamsize>(st.size()));
  auto src = open_probe(d, false);
  ASSERT_TRUE(src);
  ASSERT_EQ(src->tensors()[0].name, "token_embd.weight");
  EXPECT_EQ(src->tensors()[0].dims, (std::vector<uint64_t>{H, kept}));
  EXPECT_EQ(src->config().vocab_size, kept);
  // The rows kept are the checkpoint's first rows (the embedding is the file's first tensor),
  // bf16 -> f16.
  auto data = src->data(0);
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->size(), kept * H * 2);
  uint64_t hdr = 0;
  std::memcpy(&hdr, st.data(), 8);
  const uint8_t* bf = reinterpret_cast<const uint8_t*>(st.data()) + 8 + hdr;
  bool same = true;
  for (uint64_t i = 0; i < kept * H && same; i += 997) {
    uint16_t b, h;
    std::memcpy(&b, bf + 2 * i, 2);
    std::memcpy(&h, data->data() + 2 * i, 2);
    same = h == f32_to_fp16(bf16_to_f32(b));
  }
  EXPECT_TRUE(same);
}

// Bad input: one clear line naming the file and the key or tensor.
TEST(ArchProbeBadInput, OneLineErrors) {
  QF_REQUIRE_PROBE("phi3");
  struct Case {
    std::string probe;
    std::function<void(json&)> edit;
    std::string expect;  // after "<dir>/"
  };
  const std::vector<Case> cases = {
      {"qwen3", [](json& c) { c.erase("hidden_size"); },
       "config.json: required key 'hidden_size' is missing"},
      {"llama3", [](json& c) { c["rope_scaling"]["rope_type"] = "dynamic"; },
       "config.json: rope_scaling.rope_type 'dynamic' is not supported (supported: default, "
       "linear, yarn, llama3, longrope)"},
      {"phi3", [](json& c) { c["num_key_value_heads"] = 1; },
       "model.safetensors: tensor 'model.layers.0.self_attn.qkv_proj.weight' has shape [128, 64] "
       "but config.json implies [96, 64] (fused q, k, v: (num_attention_heads + 2 "
       "num_key_value_heads) x head_dim rows)"},
      {"phi3", [](json& c) { c["intermediate_size"] = 160; },
       "model.safetensors: tensor 'model.layers.0.mlp.down_proj.weight' has shape [64, 192] but "
       "config.json implies [64, 160]"},
      {"qwen3moe", [](json& c) { c["num_experts"] = 3; },
       "tensor 'model.layers.0.mlp.experts.3.down_proj.weight' exists but config.json says "
       "num_experts 3"},
      {"qwen3moe", [](json& c) { c["num_experts"] = 5; },
       "tensor 'model.layers.0.mlp.experts.4.down_proj.weight' (expert 4 of num_experts 5) is "
       "missing from the checkpoint"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expect);
    test::TempDir dir;
    const std::string d = dir.path().string();
    test::write_probe(c.probe, d, 0, false, /*weights=*/false);
    json cfg = json::parse(test::read_all(d + "/config.json"));
    c.edit(cfg);
    std::ofstream(d + "/config.json") << cfg.dump();
    HfSourceOptions o;
    o.tokenizer = false;
    auto r = HfTensorSource::open(d, o);
    ASSERT_FALSE(r.ok());
    const std::string want =
        c.expect.rfind("tensor", 0) == 0 ? d + ": " + c.expect : d + "/" + c.expect;
    EXPECT_EQ(r.error().message, want);
  }
}

}  // namespace
}  // namespace qforge
