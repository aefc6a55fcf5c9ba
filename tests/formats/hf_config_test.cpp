// config.json parsing: both rope_theta placements, dtype keys, head_dim, transformers defaults,
// and clear errors for unsupported architectures and bad values.
#include "formats/hf_config.h"

#include <gtest/gtest.h>

#include <map>

#include "test_util.h"

namespace qforge {
namespace {

TEST(HfConfig, EmbeddedMiniTransformers5Style) {
  auto c = load_hf_config(test::source_dir() + "/models/mini");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->hf_architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->arch, "llama");
  EXPECT_TRUE(c->permute_qk);
  EXPECT_EQ(c->vocab_size, 4096u);
  EXPECT_EQ(c->hidden_size, 256u);
  EXPECT_EQ(c->intermediate_size, 768u);
  EXPECT_EQ(c->num_hidden_layers, 4u);
  EXPECT_EQ(c->num_attention_heads, 4u);
  EXPECT_EQ(c->num_key_value_heads, 2u);
  EXPECT_EQ(c->head_dim, 64u);
  EXPECT_TRUE(c->head_dim_explicit);
  EXPECT_EQ(c->max_position_embeddings, 2048u);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);  // from rope_parameters
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->dtype, "bfloat16");  // "dtype" key
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_EQ(c->eos_token_id, 1);
  EXPECT_FALSE(c->pad_token_id.has_value());  // null
}

TEST(HfConfig, Qwen2OldStyleTopLevelRopeAndTorchDtype) {
  const char* text = R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 256,
    "intermediate_size": 768, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "vocab_size": 4096, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "eos_token_id": [1, 5]})";
  auto c = parse_hf_config(text, "q/config.json");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->arch, "qwen2");
  EXPECT_FALSE(c->permute_qk);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->dtype, "bfloat16");
  EXPECT_EQ(c->head_dim, 64u);
  EXPECT_FALSE(c->head_dim_explicit);
  EXPECT_EQ(c->eos_token_id, 1);  // first of a list
  EXPECT_FALSE(c->bos_token_id.has_value());
}

TEST(HfConfig, TransformersDefaultsForMissingKeys) {
  auto l = parse_hf_config(R"({"architectures": ["LlamaForCausalLM"]})", "c");
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->vocab_size, 32000u);
  EXPECT_EQ(l->hidden_size, 4096u);
  EXPECT_EQ(l->intermediate_size, 11008u);
  EXPECT_EQ(l->num_hidden_layers, 32u);
  EXPECT_EQ(l->num_key_value_heads, 32u);  // defaults to num_attention_heads
  EXPECT_EQ(l->head_dim, 128u);
  EXPECT_EQ(l->max_position_embeddings, 2048u);
  EXPECT_DOUBLE_EQ(l->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(l->rope_theta, 10000.0);
  EXPECT_FALSE(l->tie_word_embeddings);
  EXPECT_FALSE(l->attention_bias);

  auto m = parse_hf_config(
      R"({"architectures": ["MistralForCausalLM"], "tie_word_embeddings": true})", "c");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->arch, "llama");
  EXPECT_EQ(m->intermediate_size, 14336u);
  EXPECT_EQ(m->num_key_value_heads, 8u);
  EXPECT_EQ(m->max_position_embeddings, 131072u);
  EXPECT_TRUE(m->tie_word_embeddings);

  auto q = parse_hf_config(R"({"architectures": ["Qwen2ForCausalLM"]})", "c");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->vocab_size, 151936u);
  EXPECT_EQ(q->max_position_embeddings, 32768u);
}

TEST(HfConfig, ExplicitHeadDim) {
  auto c = parse_hf_config(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 96,
      "num_attention_heads": 4, "head_dim": 32})",
                           "c");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->head_dim, 32u);  // not 96/4
}

TEST(HfConfig, Errors) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"architectures": ["FalconForCausalLM"]})",
       "d/config.json: unsupported architecture 'FalconForCausalLM' (supported: LlamaForCausalLM, "
       "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, "
       "Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM)"},
      {R"({"model_type": "llama"})",
       "d/config.json: no 'architectures' list naming the model class"},
      {"{", "d/config.json: not valid JSON"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": -5})",
       "d/config.json: 'hidden_size' must be a positive integer below 2^31, got -5"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 100, "num_attention_heads": 3})",
       "d/config.json: hidden_size 100 is not a multiple of num_attention_heads 3"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 384, "num_attention_heads": 6, "num_key_value_heads": 4})",
       "d/config.json: num_attention_heads 6 is not a multiple of num_key_value_heads 4"},
      {R"({"architectures": ["LlamaForCausalLM"], "rms_norm_eps": "small"})",
       "d/config.json: 'rms_norm_eps' must be a positive number, got \"small\""},
      // Unknown rope scaling types are refused, in both config styles.
      {R"({"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "dynamic", "factor": 8.0}})",
       "d/config.json: rope_scaling.rope_type 'dynamic' is not supported (supported: default, "
       "linear, yarn, llama3, longrope)"},
      {R"({"architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "ntk", "rope_theta": 1e4}})",
       "d/config.json: rope_parameters.rope_type 'ntk' is not supported (supported: default, "
       "linear, yarn, llama3, longrope)"},
      {R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 10, "rope_scaling": {"type": "llama3", "factor": 8.0, "original_max_position_embeddings": 32}})",
       "d/config.json: rope_scaling.type 'llama3' is not supported for qwen3"},
      {R"({"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "llama3", "original_max_position_embeddings": 32}})",
       "d/config.json: 'rope_scaling.factor' is missing"},
      {R"({"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})",
       "d/config.json: required key 'original_max_position_embeddings' is missing"},
      // The newer families need their structural keys.
      {R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 10})",
       "d/config.json: required key 'num_hidden_layers' is missing"},
      {R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "num_experts": 4, "num_experts_per_tok": 2})",
       "d/config.json: required key 'moe_intermediate_size' is missing"},
      {R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "num_experts": 4, "num_experts_per_tok": 6, "moe_intermediate_size": 32})",
       "d/config.json: num_experts_per_tok 6 exceeds num_experts 4"},
      {R"({"architectures": ["Phi3ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 10, "max_position_embeddings": 256, "original_max_position_embeddings": 32, "rope_scaling": {"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1, 1, 1, 1, 1, 1, 1]}})",
       "d/config.json: 'rope_scaling.short_factor' has 2 entries; rotary dimension / 2 = 8"},
      {R"({"architectures": ["Gemma3ForCausalLM"], "hidden_size": 32, "num_hidden_layers": 6, "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 10, "head_dim": 8, "sliding_window_pattern": 4})",
       "d/config.json: sliding window pattern 4 is not the pattern 6 that GGUF gemma3 assumes"},
      {R"({"architectures": ["Gemma2ForCausalLM"], "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 10, "head_dim": 8, "hidden_activation": "relu"})",
       "d/config.json: 'hidden_activation' relu is not supported for Gemma2ForCausalLM "
       "(gelu_pytorch_tanh)"},
      {R"({"architectures": ["LlamaForCausalLM"], "tie_word_embeddings": 1})",
       "d/config.json: 'tie_word_embeddings' must be true or false"},
  };
  for (const auto& c : cases) {
    auto r = parse_hf_config(c.text, "d/config.json");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().message, c.expect);
  }
  test::TempDir dir;
  auto r = load_hf_config(dir.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            dir.file("config.json") + ": missing (not a Hugging Face model folder?)");
}

// Rope scaling KVs as llama.cpp's converter writes them: linear -> type + factor; yarn -> type,
// factor, original context and the yarn parameters the config gives; in either config style.
TEST(HfConfig, LinearAndYarnScalingKvs) {
  auto kv_map = [](const HfConfig& c) {
    std::map<std::string, GgufValue> m;
    for (auto& [k, v] : write_hparams(c.hp)) m[k] = v;
    return m;
  };
  for (
      const char* text :
      {R"({"architectures": ["LlamaForCausalLM"], "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192, "beta_fast": 32.0, "beta_slow": 1.0}})",
       R"({"architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 8192, "beta_fast": 32.0, "beta_slow": 1.0}})"}) {
    auto c = parse_hf_config(text, "y/config.json");
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto m = kv_map(*c);
    EXPECT_EQ(*m.at("llama.rope.scaling.type").as_string(), "yarn");
    EXPECT_EQ(*m.at("llama.rope.scaling.factor").as_float(), 4.0);
    EXPECT_EQ(*m.at("llama.rope.scaling.original_context_length").as_uint(), 8192u);
    EXPECT_EQ(*m.at("llama.rope.scaling.yarn_beta_fast").as_float(), 32.0);
    EXPECT_EQ(*m.at("llama.rope.scaling.yarn_beta_slow").as_float(), 1.0);
    EXPECT_EQ(m.count("llama.rope.scaling.yarn_ext_factor"), 0u);  // not in the config
    EXPECT_FLOAT_EQ(c->hp.rope_freq_scale(0), 0.25f);
  }
  auto q = parse_hf_config(
      R"({"architectures": ["Qwen2ForCausalLM"], "rope_scaling": {"rope_type": "linear", "factor": 2.0}})",
      "l/config.json");
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto m = kv_map(*q);
  EXPECT_EQ(*m.at("qwen2.rope.scaling.type").as_string(), "linear");
  EXPECT_EQ(*m.at("qwen2.rope.scaling.factor").as_float(), 2.0);
  EXPECT_EQ(m.count("qwen2.rope.scaling.original_context_length"), 0u);
  // The engine reads the same table back.
  std::vector<GgufKv> kvs = write_hparams(q->hp);
  kvs.emplace_back("general.architecture", GgufValue::string("qwen2"));
  auto back = read_hparams(
      kvs, [](std::string_view) { return false; }, "l.gguf");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->rope_scaling, RopeScalingKind::Linear);
  EXPECT_FLOAT_EQ(back->rope_freq_scale(3), 0.5f);
}

TEST(HfConfig, SharedModels) {
  QF_REQUIRE_SHARED("models/tiny-spm/config.json");
  auto s = load_hf_config(test::shared_path("models/tiny-spm"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(s->rope_theta, 5e5);
  EXPECT_EQ(s->dtype, "float16");
  EXPECT_EQ(s->bos_token_id, 1);
  auto q = load_hf_config(test::shared_path("models/tiny-qwen2"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->arch, "qwen2");
  EXPECT_DOUBLE_EQ(q->rope_theta, 1e6);
}

}  // namespace
}  // namespace qforge
