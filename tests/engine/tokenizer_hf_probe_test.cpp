// The published tokenizers of ../shared/arch (Llama 3, Llama 2 as tokenizer.json only, Qwen3,
// Gemma 3, GPT-4o style): the one vocabulary description built straight from the HF files
// (no weights needed) must
//   - tokenize every part of arch/text.txt to HF transformers' ids (hf-tokens.json), with added
//     tokens such as <|im_start|> matched inside the text (parse_special), and
//   - give the tokenizer KVs llama.cpp's converter writes (ref-manifest.json; arrays compared by
//     length, first 8 values and SHA-256 of Python's json.dumps), except Gemma 3's tokenizer
//     KVs (llama.cpp falls back to a wrong BPE there), Mistral's scores (llama.cpp writes -1000)
//     and Llama 3's pre-tokenizer name (llama.cpp's "smaug-bpe" is a synonym of "llama-bpe").
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "../formats/probe_fixture.h"
#include "../test_util.h"
#include "engine/chat_template_value.h"
#include "engine/tokenizer.h"
#include "formats/hf_source.h"
#include "formats/hf_tokenizer.h"
#include "io/sha256.h"

namespace qforge {
namespace {

using nlohmann::json;

struct Probe {
  const char* name;
  const char* tk;  // arch/tokenizers/TK
};
constexpr Probe kProbes[] = {{"llama3", "llama3"},  {"mistral", "llama2"}, {"qwen3", "qwen3"},
                             {"qwen3moe", "qwen3"}, {"gemma2", "gemma3"},  {"gemma3", "gemma3"},
                             {"phi3", "gpt4o"}};

// What the converter takes from the probe's config.json for the tokenizer.
HfConfig tokenizer_config_of(const std::string& probe) {
  const json c = json::parse(test::read_all(test::shared_path("arch/" + probe + "/config.json")));
  HfConfig cfg;
  cfg.arch = c.value("model_type", "");
  cfg.vocab_size = c.value("vocab_size", uint64_t{0});
  for (auto [key, dst] :
       {std::pair{"bos_token_id", &cfg.bos_token_id}, std::pair{"eos_token_id", &cfg.eos_token_id},
        std::pair{"pad_token_id", &cfg.pad_token_id}})
    if (c.contains(key) && c[key].is_number_integer()) *dst = c[key].get<int64_t>();
  return cfg;
}

// One vocabulary per tokenizer folder and config (loading Gemma's 33 MB tokenizer.json takes
// a while: each is built once per test binary run).
const VocabSpec& vocab_of(const Probe& p) {
  static std::map<std::string, VocabSpec> cache;
  const HfConfig cfg = tokenizer_config_of(p.name);
  const std::string key = std::string(p.tk) + "/" + std::to_string(cfg.vocab_size);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto spec = load_hf_vocab(test::shared_path(std::string("arch/tokenizers/") + p.tk), cfg);
  EXPECT_TRUE(spec.ok()) << spec.error().message;
  return cache.emplace(key, spec.ok() ? *spec : VocabSpec{}).first->second;
}

std::vector<std::string> text_parts() {
  const std::string text = test::read_all(test::shared_path("arch/text.txt"));
  const std::string sep = "\n__SEP__\n";
  std::vector<std::string> parts;
  size_t b = 0;
  for (size_t e; (e = text.find(sep, b)) != std::string::npos; b = e + sep.size())
    parts.push_back(text.substr(b, e - b));
  parts.push_back(text.substr(b));
  return parts;
}

TEST(HfProbeTokenizers, EveryPartGivesHfIds) {
  QF_REQUIRE_SHARED("arch/tokenizers/gemma3/tokenizer.json");
  const auto parts = text_parts();
  ASSERT_EQ(parts.size(), 9u);
  for (const Probe& p : kProbes) {
    SCOPED_TRACE(p.name);
    const json want = json::parse(
        test::read_all(test::shared_path(std::string("arch/") + p.name + "/hf-tokens.json")));
    ASSERT_EQ(want.size(), parts.size());
    auto vocab = Vocab::build(vocab_of(p), p.name);
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    auto tok = Tokenizer::from_vocab(std::move(vocab).value());
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto ids = tok->encode(parts[i], /*add_special=*/false, /*parse_special=*/true);
      EXPECT_EQ(ids, want[i].get<std::vector<int32_t>>()) << "part " << i;
    }
  }
}

// What the converter writes is what the engine reads: the same vocabulary through its GGUF
// form (vocab_to_gguf_kvs, then Tokenizer::from_gguf) tokenizes alike, for the new kinds
// (SentencePiece-style from tokenizer.json with and without a space prefix, GPT-4o).
TEST(HfProbeTokenizers, GgufFormTokenizesAlike) {
  QF_REQUIRE_SHARED("arch/tokenizers/gemma3/tokenizer.json");
  const auto parts = text_parts();
  for (const Probe& p : {kProbes[1], kProbes[5], kProbes[6]}) {
    SCOPED_TRACE(p.name);
    const auto bytes = gguf_serialize_header(3, vocab_to_gguf_kvs(vocab_of(p)), {});
    auto f = GgufFile::parse(bytes, "probe.gguf");
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto tok = Tokenizer::from_gguf(*f);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    const json want = json::parse(
        test::read_all(test::shared_path(std::string("arch/") + p.name + "/hf-tokens.json")));
    for (size_t i = 0; i < parts.size(); ++i)
      EXPECT_EQ(tok->encode(parts[i], false, true), want[i].get<std::vector<int32_t>>())
          << "part " << i;
    EXPECT_EQ(tok->pre(), p.tk == std::string("gpt4o") ? "gpt-4o" : "default");
    EXPECT_EQ(tok->is_spm(), p.tk != std::string("gpt4o"));
  }
}

// The converter (on a probe checkpoint generated by the fixture, zero weights) writes exactly
// this vocabulary's KVs, so the tests above pin what `qforge convert` puts in the file.
TEST(HfProbeTokenizers, ConverterWritesTheVocabulary) {
  QF_REQUIRE_SHARED("arch/tokenizers/gemma3/tokenizer.json");
  for (const Probe& p : kProbes) {
    if (p.name == std::string("qwen3moe")) continue;  // qwen3's tokenizer and vocabulary size
    SCOPED_TRACE(p.name);
    test::TempDir dir;
    test::write_probe(p.name, dir.path().string(), 0, false, /*weights=*/false);
    HfSourceOptions o;
    o.outtype = OutType::F16;
    auto src = HfTensorSource::open(dir.path().string(), o);
    ASSERT_TRUE(src.ok()) << src.error().message;
    std::vector<GgufKv> got;
    for (const auto& kv : (*src)->kvs())
      if (kv.first.rfind("tokenizer.", 0) == 0) got.push_back(kv);
    const std::vector<GgufKv> want = vocab_to_gguf_kvs(vocab_of(p));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].first, want[i].first);
      EXPECT_TRUE(got[i].second == want[i].second) << want[i].first;
    }
  }
}

// {"len", "head", "sha256_json"} of an array KV as the manifest writes it; floats have no
// sha256_json here (Python's float repr is not reproduced), which only Gemma's and Mistral's
// scores would need, and both are excepted.
json summarize(const GgufValue& v) {
  const GgufArray* a = v.as_array();
  json s;
  s["len"] = a->items.size();
  json head = json::array();
  std::string dump = "[";
  for (size_t i = 0; i < a->items.size(); ++i) {
    const GgufValue& x = a->items[i];
    json jx;
    if (auto str = x.as_string()) {
      jx = *str;
      if (i) dump += ", ";
      tmpl::py_json_string(*str, dump);
    } else if (auto n = x.as_int()) {
      jx = *n;
      if (i) dump += ", ";
      dump += std::to_string(*n);
    } else if (auto f = x.as_float()) {
      jx = *f;
    }
    if (i < 8) head.push_back(jx);
  }
  dump += "]";
  s["head"] = head;
  if (a->elem_type != GgufType::F32)
    s["sha256_json"] = sha256_hex({reinterpret_cast<const uint8_t*>(dump.data()), dump.size()});
  return s;
}

json to_json(const GgufValue& v) {
  if (v.as_array()) return summarize(v);
  if (v.type() == GgufType::BOOL) return *v.as_bool();
  if (auto s = v.as_string()) return *s;
  if (auto u = v.as_uint()) return *u;
  if (auto i = v.as_int()) return *i;
  if (auto f = v.as_float()) return *f;
  return nullptr;
}

TEST(HfProbeTokenizers, KvsEqualLlamaCppConverter) {
  QF_REQUIRE_SHARED("arch/tokenizers/gemma3/tokenizer.json");
  for (const Probe& p : kProbes) {
    const std::string name = p.name;
    SCOPED_TRACE(name);
    const std::string man = test::shared_path("arch/" + name + "/ref-manifest.json");
    if (name == "gemma2" || name == "gemma3") continue;  // gemma2: none; gemma3: excepted
    const json ref = json::parse(test::read_all(man))["kv"];
    const std::vector<GgufKv> kvs = vocab_to_gguf_kvs(vocab_of(p));
    std::map<std::string, json> ours;
    for (const auto& [k, v] : kvs) ours[k] = to_json(v);
    for (const auto& [k, want] : ref.items()) {
      if (k.rfind("tokenizer.", 0) != 0) continue;
      if (name == "mistral" && k == "tokenizer.ggml.scores") continue;
      ASSERT_TRUE(ours.count(k)) << k << " missing";
      if (name == "llama3" && k == "tokenizer.ggml.pre") {
        EXPECT_EQ(ours[k], "llama-bpe");
        continue;
      }
      json got = ours[k];
      if (want.is_object() && !want.contains("sha256_json")) got.erase("sha256_json");
      EXPECT_EQ(got, want) << k;
    }
    for (const auto& [k, v] : ours)
      EXPECT_TRUE(ref.contains(k) || k == "tokenizer.ggml.scores") << "extra " << k;
  }
}

// Mistral's scores come from the merge ranks (not llama.cpp's -1000 everywhere): the token of
// merge r scores -r, byte and special tokens 0.
TEST(HfProbeTokenizers, SentencePieceStyleScoresFollowMergeRanks) {
  QF_REQUIRE_SHARED("arch/tokenizers/llama2/tokenizer.json");
  const VocabSpec& s = vocab_of(kProbes[1]);
  ASSERT_EQ(s.model, "llama");
  ASSERT_EQ(s.scores.size(), 32000u);
  EXPECT_EQ(s.scores[0], 0.0f);  // <unk>
  EXPECT_EQ(s.scores[3], 0.0f);  // <0x00>
  EXPECT_EQ(s.token_types[3], static_cast<int32_t>(TokenType::Byte));
  const json j =
      json::parse(test::read_all(test::shared_path("arch/tokenizers/llama2/tokenizer.json")));
  const auto& m = j["model"]["merges"];
  const auto& vocab = j["model"]["vocab"];
  // The first merge producing each token sets its score.
  auto parts = [&](size_t r) {
    if (!m[r].is_string()) return std::pair<std::string, std::string>(m[r][0], m[r][1]);
    const std::string x = m[r];
    const size_t sp = x.find(' ', 1);
    return std::pair(x.substr(0, sp), x.substr(sp + 1));
  };
  std::map<std::string, size_t> first;
  for (size_t r = 0; r < m.size(); ++r) {
    auto [a, b] = parts(r);
    first.emplace(a + b, r);
  }
  for (size_t r : {size_t{0}, size_t{1}, size_t{1000}, m.size() - 1}) {
    auto [a, b] = parts(r);
    EXPECT_EQ(s.scores[vocab[a + b].get<size_t>()], -static_cast<float>(first[a + b])) << a << b;
  }
  EXPECT_FALSE(s.add_space_prefix.has_value());             // Llama 2 prepends U+2581: the default
  EXPECT_EQ(vocab_of(kProbes[5]).add_space_prefix, false);  // Gemma does not
}

}  // namespace
}  // namespace qforge
