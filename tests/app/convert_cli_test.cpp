// `qforge convert` end to end: the embedded mini model against the reference manifest (fresh
// clone), the shared models against the reference GGUFs (byte-identical) and manifests,
// --outtype bf16/auto, --quantize == convert + quantize, and broken checkpoints (one-line error,
// exit != 0, no output file).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/hf_checkpoint_fixture.h"
#include "formats/tensor_manifest.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::shell_quote;

namespace fs = std::filesystem;

std::string manifest_path(const std::string& name) {
  return test::data_dir() + "/convert/" + name + ".tensors.json";
}

// Mismatches between a GGUF and a manifest in tests/data/convert (empty: match). With
// any_size the file size is not compared (the mini model: see kExtraKvs).
std::vector<std::string> manifest_mismatches(const std::string& gguf, const std::string& name,
                                             bool any_size = false) {
  auto f = GgufFile::open(gguf);
  if (!f.ok()) return {f.error().message};
  auto m = nlohmann::json::parse(test::read_all(manifest_path(name)));
  auto r = check_tensor_manifest(*f, m);
  if (!r.ok()) return {r.error().message};
  std::vector<std::string> out;
  for (const auto& mm : *r)
    if (!(any_size && mm.tensor.empty() && mm.reason.rfind("file size", 0) == 0))
      out.push_back(mm.tensor + ": " + mm.reason);
  return out;
}

// models/mini's config.json names head_dim: current llama.cpp (the converter the architecture
// probes' ref-manifest.json pin) then writes attention.key_length / value_length, which the
// 2024 reference conversion of mini did not. Everything else is the reference's, in its order.
const std::vector<std::string> kExtraKvs = {"llama.attention.key_length",
                                            "llama.attention.value_length"};

// The reference's KV keys with kExtraKvs after head_count_kv (where qforge writes them).
std::vector<std::string> with_extra_kvs(std::vector<std::string> keys) {
  auto it = std::find(keys.begin(), keys.end(), "llama.attention.head_count_kv");
  if (it != keys.end()) keys.insert(it + 1, kExtraKvs.begin(), kExtraKvs.end());
  return keys;
}

// Files in a directory other than `keep` (temp files left behind would show up here).
std::vector<std::string> stray_files(const fs::path& dir, const std::vector<std::string>& keep) {
  std::vector<std::string> r;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (std::find(keep.begin(), keep.end(), n) == keep.end()) r.push_back(n);
  }
  return r;
}

TEST(ConvertCli, EmbeddedMiniMatchesReferenceManifestAndKvOrder) {
  test::TempDir out;
  const std::string o = out.file("mini.gguf");
  auto r = test::run_qforge("convert " + shell_quote(test::source_dir() + "/models/mini") + " " +
                            shell_quote(o) + " --outtype f16 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["file_bytes"], 10621920 + 96);  // + key_length / value_length (kExtraKvs)
  EXPECT_EQ(j["tensors"], 39);
  EXPECT_EQ(j["outtype"], "F16");
  EXPECT_EQ(j["max_tensor_f32_bytes"], 4096 * 256 * 4);
  EXPECT_TRUE(fs::exists(o + ".sha256"));
  EXPECT_EQ(manifest_mismatches(o, "mini-f16", true), std::vector<std::string>{});
  // KVs in the reference's order (plus kExtraKvs).
  auto f = GgufFile::open(o);
  ASSERT_TRUE(f.ok());
  auto ref = nlohmann::ordered_json::parse(test::read_all(manifest_path("mini-f16")));
  std::vector<std::string> want, got;
  for (const auto& [k, v] : ref["kv"].items()) want.push_back(k);
  for (const auto& kv : f->kvs()) got.push_back(kv.first);
  EXPECT_EQ(got, with_extra_kvs(want));
  EXPECT_EQ(f->get_uint("llama.attention.key_length").value(), 64u);
  EXPECT_EQ(f->get_string_or("general.name", ""), "mini");
  EXPECT_EQ(j["sha256"], test::read_all(o + ".sha256").substr(0, 64));
  EXPECT_EQ(stray_files(out.path(), {"mini.gguf", "mini.gguf.sha256"}), std::vector<std::string>{});
}

TEST(ConvertCli, SharedModelsAreByteIdenticalToReferenceConversions) {
  QF_REQUIRE_SHARED("reference/tiny-spm-f16.gguf");
  test::TempDir out;
  for (const std::string m : {"mini", "tiny-qwen2", "tiny-spm"}) {
    SCOPED_TRACE(m);
    const std::string o = out.file(m + ".gguf");
    auto r = test::run_qforge("convert " + shell_quote(test::shared_path("models/" + m)) + " " +
                              shell_quote(o) + " --outtype f16");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string ref = test::shared_path("reference/" + m + "-f16.gguf");
    if (m != "mini") {
      EXPECT_EQ(manifest_mismatches(o, m + "-f16"), std::vector<std::string>{});
      EXPECT_TRUE(test::read_all(o) == test::read_all(ref));
      continue;
    }
    // mini: the reference's KVs (values and order) plus kExtraKvs; the same tensor bytes.
    EXPECT_EQ(manifest_mismatches(o, m + "-f16", true), std::vector<std::string>{});
    auto a = GgufFile::open(o), b = GgufFile::open(ref);
    ASSERT_TRUE(a.ok() && b.ok());
    std::vector<GgufKv> kept;
    for (const auto& kv : a->kvs())
      if (std::find(kExtraKvs.begin(), kExtraKvs.end(), kv.first) == kExtraKvs.end())
        kept.push_back(kv);
    EXPECT_EQ(kept, b->kvs());
    ASSERT_EQ(a->tensors().size(), b->tensors().size());
    for (size_t i = 0; i < a->tensors().size(); ++i) {
      auto da = a->tensor_data(a->tensors()[i]), db = b->tensor_data(b->tensors()[i]);
      EXPECT_EQ(a->tensors()[i].name, b->tensors()[i].name);
      EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end()));
    }
  }
}

TEST(ConvertCli, RefmodelShardsF16Bf16AndAuto) {
  QF_REQUIRE_SHARED("models/refmodel/model.safetensors.index.json");
  test::TempDir out;
  const std::string in = shell_quote(test::shared_path("models/refmodel"));
  for (const std::string t : {"f16", "bf16"}) {
    const std::string o = out.file("ref-" + t + ".gguf");
    auto r = test::run_qforge("convert " + in + " " + shell_quote(o) + " --outtype " + t);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(manifest_mismatches(o, "refmodel-" + t), std::vector<std::string>{}) << t;
  }
  // auto picks bf16 for a bf16 checkpoint: the same file as --outtype bf16.
  const std::string a = out.file("ref-auto.gguf");
  auto r = test::run_qforge("convert " + in + " " + shell_quote(a) + " --outtype auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(test::read_all(a) == test::read_all(out.file("ref-bf16.gguf")));
}

TEST(ConvertCli, QuantizeInOnePassEqualsConvertThenQuantize) {
  test::TempDir out;
  const std::string mini = shell_quote(test::source_dir() + "/models/mini");
  const std::string f16 = out.file("mini-f16.gguf"), two = out.file("two.gguf"),
                    one = out.file("one.gguf");
  auto r = test::run_qforge("convert " + mini + " " + shell_quote(f16));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_qforge("quantize " + shell_quote(f16) + " " + shell_quote(two) + " Q4_K_M");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_qforge("convert " + mini + " " + shell_quote(one) + " --quantize Q4_K_M --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["intermediate_type"], "F16");
  auto a = GgufFile::open(one), b = GgufFile::open(two);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const auto& ta = a->tensors()[i];
    const auto* tb = b->find_tensor(ta.name);
    ASSERT_NE(tb, nullptr) << ta.name;
    EXPECT_EQ(ta.type, tb->type) << ta.name;
    auto da = a->tensor_data(ta), db = b->tensor_data(*tb);
    EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end())) << ta.name;
  }
  EXPECT_EQ(a->get_uint("general.file_type").value(), 15u);  // MOSTLY_Q4_K_M
  EXPECT_EQ(stray_files(out.path(), {"mini-f16.gguf", "mini-f16.gguf.sha256", "two.gguf",
                                     "two.gguf.sha256", "one.gguf", "one.gguf.sha256"}),
            std::vector<std::string>{});
  // Quantization flags without --quantize are refused.
  r = test::run_qforge("convert " + mini + " " + shell_quote(out.file("x.gguf")) + " --pure");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err, "qforge: error: convert: quantization options need --quantize MIX\n");
}

// With ggml's encoder choices, converting and quantizing the embedded HF folder in one pass
// reproduces llama-quantize's mini-Q4_K_M.gguf (its manifest: every tensor's SHA-256).
TEST(ConvertCli, QuantizeGgmlCompatibleMatchesLlamaQuantize) {
  test::TempDir out;
  const std::string o = out.file("mini-Q4_K_M.gguf");
  auto r = test::run_qforge("convert " + shell_quote(test::source_dir() + "/models/mini") + " " +
                            shell_quote(o) + " --quantize Q4_K_M --ggml-compatible");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(manifest_mismatches(o, "mini-Q4_K_M", true), std::vector<std::string>{});
}

// Each broken checkpoint: exit != 0, a one-line error naming the file, no output, no temp file.
TEST(ConvertCli, BrokenCheckpointsGiveOneLineErrorsAndNoOutput) {
  struct Case {
    std::string what;
    std::function<void(const std::string& dir)> make;
    std::function<std::string(const std::string& dir)> expect;  // the error line
  };
  auto base = [](test::HfSpec s) {
    return [s](const std::string& d) { test::write_hf_checkpoint(d, s); };
  };
  test::HfSpec sharded;
  sharded.shards = 3;
  test::HfSpec i64;
  i64.wrong_dtype = "model.layers.1.mlp.down_proj.weight";
  const std::vector<Case> cases = {
      {"missing config.json",
       [&](const std::string& d) {
         base({})(d);
         fs::remove(d + "/config.json");
       },
       [](const std::string& d) {
         return d + "/config.json: missing (not a Hugging Face model folder?)";
       }},
      {"shard listed but absent",
       [&](const std::string& d) {
         base(sharded)(d);
         fs::remove(d + "/model-00003-of-00003.safetensors");
       },
       [](const std::string& d) {
         return d + "/model-00003-of-00003.safetensors: shard listed in " + d +
                "/model.safetensors.index.json is missing";
       }},
      {"header longer than file",
       [&](const std::string& d) {
         base({})(d);
         std::fstream f(d + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
         const uint64_t n = 1ull << 40;
         f.write(reinterpret_cast<const char*>(&n), 8);
       },
       [](const std::string& d) {
         return d + "/model.safetensors: header length 1099511627776 exceeds the file size " +
                std::to_string(fs::file_size(d + "/model.safetensors"));
       }},
      {"I64 weight", base(i64),
       [](const std::string& d) {
         return d +
                "/model.safetensors: tensor 'model.layers.1.mlp.down_proj.weight': dtype I64 is "
                "not supported (F32, F16 or BF16)";
       }},
      {"shape disagrees with config.json",
       [&](const std::string& d) {
         base({})(d);
         auto c = nlohmann::json::parse(test::read_all(d + "/config.json"));
         c["vocab_size"] = 50;
         std::ofstream(d + "/config.json") << c.dump();
       },
       [](const std::string& d) {
         return d +
                "/model.safetensors: tensor 'model.embed_tokens.weight' has shape [48, 32] but "
                "config.json implies [50, 32]";
       }},
      {"unknown architecture",
       [&](const std::string& d) {
         base({})(d);
         auto c = nlohmann::json::parse(test::read_all(d + "/config.json"));
         c["architectures"] = {"FalconForCausalLM"};
         std::ofstream(d + "/config.json") << c.dump();
       },
       [](const std::string& d) {
         return d +
                "/config.json: unsupported architecture 'FalconForCausalLM' (supported: "
                "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                "Qwen3MoeForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM)";
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    test::TempDir in, out;
    const std::string d = (in.path() / "model").string();
    c.make(d);
    const std::string o = out.file("out.gguf");
    auto r = test::run_qforge("convert " + shell_quote(d) + " " + shell_quote(o));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err, "qforge: error: " + c.expect(d) + "\n");
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(stray_files(out.path(), {}), std::vector<std::string>{});
  }
}

TEST(ConvertCli, OuttypeForceAndHelp) {
  test::TempDir in, out;
  const std::string d = (in.path() / "m").string();
  test::write_hf_checkpoint(d, test::HfSpec{});
  const std::string o = out.file("m.gguf");
  auto r = test::run_qforge("convert " + shell_quote(d) + " " + shell_quote(o) + " --outtype q8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err, "qforge: error: convert: --outtype must be f32, f16, bf16 or auto, not 'q8'\n");
  EXPECT_FALSE(fs::exists(o));

  r = test::run_qforge("convert " + shell_quote(d) + " " + shell_quote(o) +
                       " --outtype f32 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["file_type"], 0);
  const std::string first = test::read_all(o);
  // An existing output is not replaced without --force.
  r = test::run_qforge("convert " + shell_quote(d) + " " + shell_quote(o) + " --outtype f16");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(test::read_all(o) == first);
  r = test::run_qforge("convert " + shell_quote(d) + " " + shell_quote(o) +
                       " --outtype f16 --force");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = GgufFile::open(o);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get_uint("general.file_type").value(), 1u);
  EXPECT_EQ(f->get_string_or("general.name", ""), "m");

  r = test::run_qforge("convert --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--outtype"), std::string::npos);
  EXPECT_NE(r.out.find("--quantize"), std::string::npos);
}

}  // namespace
}  // namespace qforge
