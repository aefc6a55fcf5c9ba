// HfTensorSource: names, dims, types, Q/K permutation (llama only), output types (bf16 bits
// kept, auto), metadata order, and validation errors on broken checkpoints.
#include "formats/hf_source.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/fp16.h"
#include "formats/hf_checkpoint_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::HfSpec;

std::unique_ptr<HfTensorSource> open_ok(const std::string& dir, OutType t = OutType::F16) {
  HfSourceOptions o;
  o.outtype = t;
  auto r = HfTensorSource::open(dir, o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : nullptr;
}

std::string open_err(const std::string& dir) {
  auto r = HfTensorSource::open(dir);
  return r.ok() ? std::string("(opened)") : r.error().message;
}

size_t index_of(const TensorSource& s, const std::string& name) {
  for (size_t i = 0; i < s.tensors().size(); ++i)
    if (s.tensors()[i].name == name) return i;
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

std::vector<float> as_f32(std::span<const uint8_t> b, Type t) {
  std::vector<float> v;
  const size_t es = t == Type::F32 ? 4 : 2;
  for (size_t i = 0; i + es <= b.size(); i += es) {
    if (t == Type::F32) {
      float f;
      std::memcpy(&f, b.data() + i, 4);
      v.push_back(f);
    } else {
      uint16_t h;
      std::memcpy(&h, b.data() + i, 2);
      v.push_back(t == Type::F16 ? fp16_to_f32(h) : bf16_to_f32(h));
    }
  }
  return v;
}

// The values the checkpoint holds for an HF tensor (after the fixture's dtype rounding).
std::vector<float> stored_values(const HfSpec& s, const std::string& hf_name) {
  for (const auto& t : test::hf_tensor_plan(s))
    if (t.name == hf_name) {
      auto v = test::hf_tensor_values(t);
      for (auto& f : v)
        f = s.dtype == "BF16"  ? bf16_to_f32(f32_to_bf16(f))
            : s.dtype == "F16" ? fp16_to_f32(f32_to_fp16(f))
                               : f;
      return v;
    }
  ADD_FAILURE() << "no HF tensor " << hf_name;
  return {};
}

TEST(HfSource, LlamaNamesDimsTypesAndKvOrder) {
  test::TempDir dir;
  HfSpec spec;
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto src = open_ok(dir.path().string());
  ASSERT_TRUE(src);
  const auto& ts = src->tensors();
  ASSERT_EQ(ts.size(), 3u + 2 * 9);
  EXPECT_EQ(ts[0].name, "token_embd.weight");
  EXPECT_EQ(ts[0].dims, (std::vector<uint64_t>{32, 48}));  // ggml order: row length first
  EXPECT_EQ(ts[0].type, Type::F16);
  EXPECT_EQ(ts[1].name, "output_norm.weight");
  EXPECT_EQ(ts[1].type, Type::F32);
  EXPECT_EQ(ts[2].name, "output.weight");
  const std::vector<std::string> layer = {"attn_norm", "attn_q",      "attn_k",
                                          "attn_v",    "attn_output", "ffn_norm",
                                          "ffn_gate",  "ffn_up",      "ffn_down"};
  for (size_t k = 0; k < layer.size(); ++k)
    EXPECT_EQ(ts[3 + k].name, "blk.0." + layer[k] + ".weight");
  EXPECT_EQ(ts[3 + 2].dims, (std::vector<uint64_t>{32, 16}));  // attn_k: 2 kv heads x 8
  EXPECT_EQ(ts[3 + 8].dims, (std::vector<uint64_t>{64, 32}));  // ffn_down
  for (const auto& t : ts) EXPECT_EQ(t.size, t.n_elements() * (t.type == Type::F32 ? 4 : 2));

  std::vector<std::string> keys;
  for (const auto& kv : src->kvs()) keys.push_back(kv.first);
  const std::vector<std::string> want = {"general.architecture",
                                         "general.name",
                                         "llama.context_length",
                                         "llama.embedding_length",
                                         "llama.block_count",
                                         "llama.feed_forward_length",
                                         "llama.rope.dimension_count",
                                         "llama.attention.head_count",
                                         "llama.attention.head_count_kv",
                                         "llama.attention.layer_norm_rms_epsilon",
                                         "llama.rope.freq_base",
                                         "llama.vocab_size",
                                         "general.file_type",
                                         "tokenizer.ggml.model",
                                         "tokenizer.ggml.pre",
                                         "tokenizer.ggml.tokens",
                                         "tokenizer.ggml.token_type",
                                         "tokenizer.ggml.merges",
                                         "tokenizer.ggml.bos_token_id",
                                         "tokenizer.ggml.eos_token_id",
                                         "tokenizer.ggml.add_bos_token"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(*src->find_kv("general.name")->as_string(), dir.path().filename().string());
  EXPECT_EQ(*src->find_kv("llama.rope.dimension_count")->as_uint(), 8u);
  EXPECT_EQ(*src->find_kv("llama.context_length")->as_uint(), 512u);
  EXPECT_EQ(src->find_kv("llama.attention.layer_norm_rms_epsilon")->type(), GgufType::F32);
  EXPECT_FLOAT_EQ(
      static_cast<float>(*src->find_kv("llama.attention.layer_norm_rms_epsilon")->as_float()),
      1e-5f);
  EXPECT_EQ(*src->find_kv("general.file_type")->as_uint(), 1u);
  EXPECT_EQ(src->max_tensor_f32_bytes(), 64u * 32 * 4);
}

TEST(HfSource, LlamaQkPermutedToInterleavedPairs) {
  test::TempDir dir;
  HfSpec spec;
  spec.biases = true;  // llama biases are permuted like their weights
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto src = open_ok(dir.path().string(), OutType::F32);
  ASSERT_TRUE(src);
  const uint64_t hd = 8, cols = 32;
  struct Case {
    const char* gguf;
    const char* hf;
    uint64_t heads, cols;
  };
  for (const Case& c :
       {Case{"blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 4, cols},
        Case{"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 2, cols},
        Case{"blk.0.attn_q.bias", "model.layers.0.self_attn.q_proj.bias", 4, 1},
        Case{"blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias", 2, 1}}) {
    SCOPED_TRACE(c.gguf);
    const size_t i = index_of(*src, c.gguf);
    auto d = src->data(i);
    ASSERT_TRUE(d.ok());
    const auto got = as_f32(*d, Type::F32);
    const auto hf = stored_values(spec, c.hf);
    ASSERT_EQ(got.size(), hf.size());
    for (uint64_t h = 0; h < c.heads; ++h)
      for (uint64_t j = 0; j < hd / 2; ++j)
        for (uint64_t k = 0; k < 2; ++k) {
          const uint64_t out_row = h * hd + 2 * j + k, in_row = h * hd + k * (hd / 2) + j;
          for (uint64_t col = 0; col < c.cols; ++col)
            ASSERT_EQ(got[out_row * c.cols + col], hf[in_row * c.cols + col]) << out_row;
        }
    src->release(i);
  }
  // V is not permuted.
  const size_t v = index_of(*src, "blk.0.attn_v.weight");
  EXPECT_EQ(as_f32(*src->data(v), Type::F32),
            stored_values(spec, "model.layers.0.self_attn.v_proj.weight"));
}

TEST(HfSource, Qwen2KeepsNeoxOrderWithF32Biases) {
  test::TempDir dir;
  HfSpec spec;
  spec.hf_arch = "Qwen2ForCausalLM";
  spec.rope_parameters = false;
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto src = open_ok(dir.path().string(), OutType::F32);
  ASSERT_TRUE(src);
  ASSERT_EQ(src->tensors().size(), 3u + 2 * 12);
  const std::vector<std::string> layer = {
      "attn_norm.weight", "attn_q.weight",   "attn_k.weight", "attn_q.bias",
      "attn_k.bias",      "attn_v.bias",     "attn_v.weight", "attn_output.weight",
      "ffn_norm.weight",  "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
  for (size_t k = 0; k < layer.size(); ++k)
    EXPECT_EQ(src->tensors()[3 + k].name, "blk.0." + layer[k]);
  const size_t qb = index_of(*src, "blk.0.attn_q.bias");
  EXPECT_EQ(src->tensors()[qb].type, Type::F32);
  EXPECT_EQ(as_f32(*src->data(qb), Type::F32),
            stored_values(spec, "model.layers.0.self_attn.q_proj.bias"));
  const size_t q = index_of(*src, "blk.1.attn_q.weight");
  EXPECT_EQ(as_f32(*src->data(q), Type::F32),
            stored_values(spec, "model.layers.1.self_attn.q_proj.weight"));
  EXPECT_EQ(*src->find_kv("general.architecture")->as_string(), "qwen2");
  EXPECT_EQ(src->find_kv("qwen2.rope.dimension_count"), nullptr);
  EXPECT_EQ(src->find_kv("qwen2.vocab_size"), nullptr);
  EXPECT_DOUBLE_EQ(*src->find_kv("qwen2.rope.freq_base")->as_float(), 500000.0);
}

TEST(HfSource, Bf16BitsKeptAndAutoOuttype) {
  test::TempDir dir;
  HfSpec spec;  // BF16 checkpoint
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto bf = open_ok(dir.path().string(), OutType::BF16);
  ASSERT_TRUE(bf);
  EXPECT_EQ(bf->file_type(), 32u);
  auto raw = SafetensorsCheckpoint::open_dir(dir.path().string());
  ASSERT_TRUE(raw.ok());
  for (const char* hf : {"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight"}) {
    const auto* t = raw->find(hf);
    const size_t i = std::string(hf).find("embed") != std::string::npos
                         ? index_of(*bf, "token_embd.weight")
                         : index_of(*bf, "blk.0.ffn_down.weight");
    auto d = bf->data(i);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->size(), raw->data(*t).size());
    EXPECT_EQ(std::memcmp(d->data(), raw->data(*t).data(), d->size()), 0) << hf;
  }
  // Permuted tensors are still bf16 bit-exact (rows moved, not converted).
  const size_t q = index_of(*bf, "blk.0.attn_q.weight");
  const auto got = as_f32(*bf->data(q), Type::BF16);
  const auto perm = open_ok(dir.path().string(), OutType::F32);
  EXPECT_EQ(got, as_f32(*perm->data(q), Type::F32));

  auto au = open_ok(dir.path().string(), OutType::Auto);
  EXPECT_EQ(au->matrix_type(), Type::BF16);
  EXPECT_EQ(au->tensors()[0].type, Type::BF16);
  EXPECT_EQ(au->tensors()[1].type, Type::F32);  // norms stay F32

  test::TempDir d16;
  spec.dtype = "F16";
  test::write_hf_checkpoint(d16.path().string(), spec);
  EXPECT_EQ(open_ok(d16.path().string(), OutType::Auto)->matrix_type(), Type::F16);
  // f16 -> bf16 goes through f32 with round-to-nearest-even.
  auto b = open_ok(d16.path().string(), OutType::BF16);
  const size_t e = index_of(*b, "token_embd.weight");
  const auto vals = stored_values(spec, "model.embed_tokens.weight");
  const auto bits = *b->data(e);
  for (size_t k = 0; k < vals.size(); ++k) {
    uint16_t h;
    std::memcpy(&h, bits.data() + 2 * k, 2);
    ASSERT_EQ(h, f32_to_bf16(vals[k])) << k;
  }
  test::TempDir d32;
  spec.dtype = "F32";
  test::write_hf_checkpoint(d32.path().string(), spec);
  EXPECT_EQ(open_ok(d32.path().string(), OutType::Auto)->matrix_type(), Type::F16);
  auto f = open_ok(d32.path().string(), OutType::F32);
  EXPECT_EQ(f->file_type(), 0u);
  EXPECT_EQ(f->tensors()[0].type, Type::F32);
}

TEST(HfSource, TiedEmbeddingsShardsAndHeadDim) {
  test::TempDir dir;
  HfSpec spec;
  spec.tied = true;
  spec.shards = 3;
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto src = open_ok(dir.path().string());
  ASSERT_TRUE(src);
  for (const auto& t : src->tensors()) EXPECT_NE(t.name, "output.weight");
  EXPECT_EQ(src->tensors().size(), 2u + 2 * 9);

  // head_dim that is not hidden/heads: key/value length are written.
  test::TempDir d2;
  test::write_hf_checkpoint(d2.path().string(), HfSpec{});
  auto cfg = nlohmann::json::parse(test::read_all(d2.file("config.json")));
  cfg["head_dim"] = 16;  // q rows become 64, not 32: the shapes no longer agree
  std::ofstream(d2.file("config.json")) << cfg.dump();
  EXPECT_NE(
      open_err(d2.path().string()).find("has shape [32, 32] but config.json implies [64, 32]"),
      std::string::npos)
      << open_err(d2.path().string());
}

TEST(HfSource, BrokenCheckpointsFailCleanly) {
  auto make = [](test::TempDir& d, HfSpec s) {
    test::write_hf_checkpoint(d.path().string(), s);
    return d.path().string();
  };
  {
    test::TempDir d;
    HfSpec s;
    s.drop = "model.layers.1.mlp.up_proj.weight";
    EXPECT_EQ(open_err(make(d, s)), d.path().string() +
                                        ": tensor 'model.layers.1.mlp.up_proj.weight' "
                                        "(blk.1.ffn_up.weight) is missing from the checkpoint");
  }
  {
    test::TempDir d;
    HfSpec s;
    s.wrong_dtype = "model.layers.0.self_attn.o_proj.weight";
    EXPECT_EQ(open_err(make(d, s)), d.file("model.safetensors") +
                                        ": tensor 'model.layers.0.self_attn.o_proj.weight': "
                                        "dtype I64 is not supported (F32, F16 or BF16)");
  }
  {
    test::TempDir d;
    HfSpec s;
    s.extra_tensor = "model.layers.7.mlp.up_proj.weight";
    EXPECT_EQ(open_err(make(d, s)), d.file("model.safetensors") +
                                        ": unexpected tensor 'model.layers.7.mlp.up_proj.weight' "
                                        "for LlamaForCausalLM with 2 layers");
  }
  {
    test::TempDir d;
    HfSpec s;
    s.extra_tensor = "model.layers.0.self_attn.rotary_emb.inv_freq";  // ignored
    EXPECT_EQ(open_err(make(d, s)), "(opened)");
  }
  {
    test::TempDir d;
    make(d, HfSpec{});
    auto cfg = nlohmann::json::parse(test::read_all(d.file("config.json")));
    cfg["intermediate_size"] = 96;
    std::ofstream(d.file("config.json")) << cfg.dump();
    EXPECT_EQ(open_err(d.path().string()),
              d.file("model.safetensors") +
                  ": tensor 'model.layers.0.mlp.gate_proj.weight' has shape [64, 32] but "
                  "config.json implies [96, 32]");
    cfg["architectures"] = {"GPT2LMHeadModel"};
    std::ofstream(d.file("config.json")) << cfg.dump();
    EXPECT_NE(open_err(d.path().string()).find("unsupported architecture 'GPT2LMHeadModel'"),
              std::string::npos);
    std::filesystem::remove(d.file("config.json"));
    EXPECT_EQ(open_err(d.path().string()),
              d.file("config.json") + ": missing (not a Hugging Face model folder?)");
  }
  EXPECT_NE(open_err("/nonexistent/qforge-model").find("not a directory"), std::string::npos);
}

}  // namespace
}  // namespace qforge
