// Tokenizer conversion: byte-level BPE from tokenizer.json, SentencePiece tokenizer.model parsed
// by hand (and validated), pre-tokenizer identification, special tokens, and the exact KVs of
// the reference conversions.
#include "formats/hf_tokenizer.h"
#include "formats/pretokenizer_registry.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/hf_checkpoint_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using nlohmann::json;

// --- protobuf encoding for hand-made tokenizer.model files ---
void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
}
void put_bytes(std::string& s, int field, const std::string& b) {
  put_varint(s, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(s, b.size());
  s += b;
}
void put_uint(std::string& s, int field, uint64_t v) {
  put_varint(s, static_cast<uint64_t>(field) << 3);
  put_varint(s, v);
}
std::string piece(const std::string& text, float score, int type = 0) {
  std::string p;
  put_bytes(p, 1, text);
  put_varint(p, (2 << 3) | 5);
  p.append(reinterpret_cast<const char*>(&score), 4);
  if (type) put_uint(p, 3, static_cast<uint64_t>(type));
  return p;
}
std::string byte_piece(int b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}
// <unk> <s> </s>, 256 byte pieces, then "▁a" and "b"; trainer spec with byte_fallback.
std::string spm_model(bool byte_fallback = true, int skip_byte = -1, int dummy_prefix = -1) {
  std::string m;
  put_bytes(m, 1, piece("<unk>", 0, 2));
  put_bytes(m, 1, piece("<s>", 0, 3));
  put_bytes(m, 1, piece("</s>", 0, 3));
  for (int b = 0; b < 256; ++b)
    if (b != skip_byte) put_bytes(m, 1, piece(byte_piece(b), 0, 6));
  put_bytes(m, 1,
            piece("\xe2\x96\x81"
                  "a",
                  -1.5f));
  put_bytes(m, 1, piece("b", -2.25f));
  std::string t;
  put_uint(t, 3, 2);  // BPE
  put_uint(t, 35, byte_fallback ? 1 : 0);
  put_uint(t, 40, 0);
  put_uint(t, 41, 1);
  put_uint(t, 42, 2);
  put_uint(t, 43, ~0ull);  // pad_id -1, as protobuf encodes a negative int32
  put_bytes(m, 2, t);
  if (dummy_prefix >= 0) {  // NormalizerSpec { name "identity", add_dummy_prefix }
    std::string n;
    put_bytes(n, 1, "identity");
    put_uint(n, 3, static_cast<uint64_t>(dummy_prefix));
    put_bytes(m, 3, n);
  }
  return m;
}
Result<SpmModel> parse(const std::string& s) {
  return parse_sentencepiece_model({reinterpret_cast<const uint8_t*>(s.data()), s.size()},
                                   "t.model");
}

const GgufValue* find(const std::vector<GgufKv>& kvs, const std::string& key) {
  for (const auto& [k, v] : kvs)
    if (k == key) return &v;
  return nullptr;
}
std::vector<std::string> keys(const std::vector<GgufKv>& kvs) {
  std::vector<std::string> r;
  for (const auto& kv : kvs) r.push_back(kv.first);
  return r;
}

TEST(SentencePieceModel, ParsesPiecesScoresTypesAndTrainerIds) {
  auto m = parse(spm_model());
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->pieces.size(), 3u + 256 + 2);
  EXPECT_EQ(m->pieces[0].text, "<unk>");
  EXPECT_EQ(m->pieces[0].type, TokenType::Unknown);
  EXPECT_EQ(m->pieces[1].type, TokenType::Control);
  EXPECT_EQ(m->pieces[3].text, "<0x00>");
  EXPECT_EQ(m->pieces[3].type, TokenType::Byte);
  EXPECT_EQ(m->pieces[259].text,
            "\xe2\x96\x81"
            "a");
  EXPECT_EQ(m->pieces[259].type, TokenType::Normal);  // type field absent = NORMAL
  EXPECT_EQ(m->pieces[259].score, -1.5f);
  EXPECT_EQ(m->pieces[260].score, -2.25f);
  EXPECT_EQ(m->model_type, 2);
  EXPECT_TRUE(m->byte_fallback);
  EXPECT_EQ(m->unk_id, 0);
  EXPECT_EQ(m->bos_id, 1);
  EXPECT_EQ(m->eos_id, 2);
  EXPECT_FALSE(m->pad_id.has_value());  // -1
}

TEST(SentencePieceModel, RejectsInvalidModels) {
  auto err = [](const std::string& s) {
    auto r = parse(s);
    return r.ok() ? std::string("(ok)") : r.error().message;
  };
  EXPECT_EQ(err(spm_model(true, 0x41)),
            "t.model: byte_fallback is set but byte piece <0x41> is missing");
  EXPECT_EQ(err(spm_model(false, 0x41)), "(ok)");
  std::string bad_type;
  put_bytes(bad_type, 1, piece("x", 0, 9));
  EXPECT_EQ(err(bad_type), "t.model: piece #0: unknown type 9");
  std::string bad_byte;
  put_bytes(bad_byte, 1, piece("<0xZZ>", 0, 6));
  EXPECT_EQ(err(bad_byte), "t.model: byte piece #0 '<0xZZ>' is not of the form <0xHH>");
  std::string dup;
  put_bytes(dup, 1, piece("x", 0));
  put_bytes(dup, 1, piece("x", -1));
  EXPECT_EQ(err(dup), "t.model: piece 'x' occurs twice");
  std::string no_text;
  put_bytes(no_text, 1, std::string("\x15\0\0\0\0", 5));  // score only
  EXPECT_EQ(err(no_text), "t.model: piece #0 has no text");
  EXPECT_EQ(err(""), "t.model: no pieces (not a SentencePiece model?)");
  std::string long_len;
  put_varint(long_len, (1 << 3) | 2);
  put_varint(long_len, 1000);
  EXPECT_EQ(err(long_len), "t.model: protobuf field 1 of 1000 bytes runs past the end");
  EXPECT_EQ(err(std::string(11, '\xff')), "t.model: protobuf varint longer than 10 bytes");
  EXPECT_EQ(err("\x0f"), "t.model: unsupported protobuf wire type 7 (field 1)");
  // Every truncation is an error or a valid shorter model, never a crash.
  const std::string full = spm_model();
  for (size_t n = 0; n < full.size(); n += 7) (void)parse(full.substr(0, n));
}

TEST(BpePreTokenizer, IdentifiesFromDefinition) {
  EXPECT_EQ(identify_hf_pre_tokenizer(
                json::parse(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})")),
            "gpt-2");
  EXPECT_EQ(identify_hf_pre_tokenizer(json::parse(R"({"type":"ByteLevel"})")), "gpt-2");
  EXPECT_EQ(identify_hf_pre_tokenizer(json::parse(R"({"type":"ByteLevel","use_regex":false})")),
            std::nullopt);
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  auto seq = [](const std::string& rx) {
    json j;
    j["type"] = "Sequence";
    j["pretokenizers"] = json::array({{{"type", "Split"},
                                       {"pattern", {{"Regex", rx}}},
                                       {"behavior", "Isolated"},
                                       {"invert", false}},
                                      {{"type", "ByteLevel"},
                                       {"add_prefix_space", false},
                                       {"trim_offsets", true},
                                       {"use_regex", false}}});
    return j;
  };
  EXPECT_EQ(identify_hf_pre_tokenizer(seq(llama3)), "llama-bpe");
  EXPECT_EQ(identify_hf_pre_tokenizer(seq(qwen2)), "qwen2");
  EXPECT_EQ(identify_hf_pre_tokenizer(seq("\\w+")), std::nullopt);
  EXPECT_EQ(identify_hf_pre_tokenizer(json()), std::nullopt);
  EXPECT_EQ(identify_hf_pre_tokenizer(json::parse(R"({"type":"Metaspace"})")), std::nullopt);
  // GPT-4o (o200k): only with its own Split behaviour (Removed, inverted).
  const std::string gpt4o =
      R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  json o200k = seq(gpt4o);
  EXPECT_EQ(identify_hf_pre_tokenizer(o200k), std::nullopt);  // Isolated: not GPT-4o's
  o200k["pretokenizers"][0]["behavior"] = "Removed";
  o200k["pretokenizers"][0]["invert"] = true;
  EXPECT_EQ(identify_hf_pre_tokenizer(o200k), "gpt-4o");
  o200k["pretokenizers"][1]["add_prefix_space"] = true;  // a prefix space: not representable
  EXPECT_EQ(identify_hf_pre_tokenizer(o200k), std::nullopt);
  EXPECT_EQ(describe_hf_pre_tokenizer(o200k).substr(0, 24), "Sequence[Split(Regex \"[^");
  // StarCoder style: single digits, then GPT-2's split.
  EXPECT_EQ(identify_hf_pre_tokenizer(json::parse(
                R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},
                    {"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]})")),
            "starcoder");
  // Every identified name is one the engine's registry can run.
  for (const char* n : {"gpt-2", "llama-bpe", "qwen2", "gpt-4o", "starcoder"})
    EXPECT_NE(find_pre_tokenizer(n), nullptr) << n;
}

TEST(HfTokenizer, EmbeddedMiniMatchesReferenceKvs) {
  const std::string dir = test::source_dir() + "/models/mini";
  auto cfg = load_hf_config(dir);
  ASSERT_TRUE(cfg.ok());
  auto kvs = load_hf_tokenizer(dir, *cfg);
  ASSERT_TRUE(kvs.ok()) << kvs.error().message;
  EXPECT_EQ(keys(*kvs),
            (std::vector<std::string>{
                "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token"}));
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.model")->as_string(), "gpt2");
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.pre")->as_string(), "gpt-2");
  const auto* toks = find(*kvs, "tokenizer.ggml.tokens")->as_array();
  ASSERT_EQ(toks->items.size(), 4096u);
  EXPECT_EQ(*toks->items[0].as_string(), "<|begin_of_text|>");
  EXPECT_EQ(*toks->items[2].as_string(), "!");
  const auto* types = find(*kvs, "tokenizer.ggml.token_type")->as_array();
  EXPECT_EQ(types->elem_type, GgufType::I32);
  EXPECT_EQ(*types->items[0].as_int(), 3);
  EXPECT_EQ(*types->items[1].as_int(), 3);
  EXPECT_EQ(*types->items[2].as_int(), 1);
  const auto* merges = find(*kvs, "tokenizer.ggml.merges")->as_array();
  ASSERT_EQ(merges->items.size(), 3838u);
  EXPECT_EQ(*merges->items[0].as_string(), "\xc4\xa0 \xc4\xa0");  // "Ġ Ġ" from ["Ġ","Ġ"]
  EXPECT_EQ(*merges->items[2].as_string(), "\xc4\xa0 t");
  EXPECT_EQ(find(*kvs, "tokenizer.ggml.bos_token_id")->type(), GgufType::U32);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.bos_token_id")->as_uint(), 0u);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.eos_token_id")->as_uint(), 1u);
  EXPECT_EQ(find(*kvs, "tokenizer.ggml.add_bos_token")->as_bool(), true);
}

TEST(HfTokenizer, PaddingMergesWithSpacesAddedTokensAndChatTemplate) {
  test::TempDir dir;
  test::HfSpec spec;
  test::write_hf_checkpoint(dir.path().string(), spec);
  // Merges given with a space inside a part, an added non-special token, a chat template.
  auto tok = json::parse(test::read_all(dir.file("tokenizer.json")));
  tok["model"]["merges"].push_back({"a b", "c"});
  tok["added_tokens"].push_back({{"id", 40}, {"content", "\xe2\x96\x81hi"}, {"special", false}});
  tok["added_tokens"].push_back({{"id", 41}, {"content", "<|im_end|>"}, {"special", false}});
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  std::ofstream(dir.file("tokenizer_config.json"))
      << R"({"bos_token": {"content": "<|bos|>"}, "eos_token": "<|im_end|>", "add_bos_token": false,
            "add_eos_token": true, "chat_template": "{{ messages }}"})";
  auto cfg = load_hf_config(dir.path().string());
  ASSERT_TRUE(cfg.ok());
  auto kvs = load_hf_tokenizer(dir.path().string(), *cfg);
  ASSERT_TRUE(kvs.ok()) << kvs.error().message;
  const auto* toks = find(*kvs, "tokenizer.ggml.tokens")->as_array();
  const auto* types = find(*kvs, "tokenizer.ggml.token_type")->as_array();
  ASSERT_EQ(toks->items.size(), 48u);  // config vocab_size; tokenizer has 33 + 2 added
  EXPECT_EQ(*toks->items[33].as_string(), "[PAD33]");
  EXPECT_EQ(*types->items[33].as_int(), 5);        // UNUSED
  EXPECT_EQ(*toks->items[40].as_string(), " hi");  // user-defined: U+2581 -> space
  EXPECT_EQ(*types->items[40].as_int(), 4);        // USER_DEFINED
  EXPECT_EQ(*types->items[41].as_int(), 3);        // looks special -> CONTROL
  const auto* merges = find(*kvs, "tokenizer.ggml.merges")->as_array();
  ASSERT_EQ(merges->items.size(), 5u);
  EXPECT_EQ(*merges->items[0].as_string(), "t h");
  EXPECT_EQ(*merges->items[4].as_string(),
            "a\xc4\xa0"
            "b c");
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.bos_token_id")->as_uint(), 0u);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.eos_token_id")->as_uint(), 41u);  // resolved by text
  EXPECT_EQ(find(*kvs, "tokenizer.ggml.add_bos_token")->as_bool(), false);
  EXPECT_EQ(find(*kvs, "tokenizer.ggml.add_eos_token")->as_bool(), true);
  EXPECT_EQ(*find(*kvs, "tokenizer.chat_template")->as_string(), "{{ messages }}");
}

TEST(HfTokenizer, UnknownPreTokenizerIsRefusedAndBadFilesFail) {
  test::TempDir dir;
  test::write_hf_checkpoint(dir.path().string(), test::HfSpec{});
  const std::string d = dir.path().string();
  auto cfg = load_hf_config(d);
  ASSERT_TRUE(cfg.ok());
  auto tok = json::parse(test::read_all(dir.file("tokenizer.json")));
  const json byte_level = tok["pre_tokenizer"];
  // Digits that are not individual, then GPT-2's split: no GGUF pre-tokenizer says that.
  tok["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", json::array({{{"type", "Digits"}}, {{"type", "ByteLevel"}}})}};
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  auto kvs = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(kvs.ok());
  EXPECT_EQ(kvs.error().message,
            dir.file("tokenizer.json") +
                ": pre-tokenizer not recognised: Sequence[Digits, ByteLevel()] (known: "
                "ByteLevel; Split with the Llama-3, Qwen2 or GPT-4o regex + ByteLevel; Digits + "
                "ByteLevel)");
  tok["pre_tokenizer"] = byte_level;

  tok["model"]["vocab"]["zz"] = 48;  // not below vocab_size
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  auto r = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, dir.file("tokenizer.json") +
                                   ": token id 48 ('zz') is not below config.json vocab_size 48");

  tok["model"]["type"] = "Unigram";
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  r = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tokenizer model type 'Unigram' is not supported"),
            std::string::npos);

  std::filesystem::remove(dir.file("tokenizer.json"));
  r = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, d + ": no tokenizer.json or tokenizer.model");
}

// The pre-tokenizer of a GPT-4o-style tokenizer.json is named "gpt-4o" (it used to convert
// silently as "default"); an unrecognised Split or normalizer is refused, naming it.
TEST(HfTokenizer, Gpt4oNamedAndUnknownSplitsRefused) {
  test::TempDir dir;
  test::write_hf_checkpoint(dir.path().string(), test::HfSpec{});
  const std::string d = dir.path().string();
  auto cfg = load_hf_config(d);
  ASSERT_TRUE(cfg.ok());
  auto tok = json::parse(test::read_all(dir.file("tokenizer.json")));
  const std::string o200k =
      R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  auto with_split = [&](const std::string& rx) {
    tok["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers", json::array({{{"type", "Split"},
                                                            {"pattern", {{"Regex", rx}}},
                                                            {"behavior", "Removed"},
                                                            {"invert", true}},
                                                           {{"type", "ByteLevel"},
                                                            {"add_prefix_space", false},
                                                            {"trim_offsets", true},
                                                            {"use_regex", false}}})}};
    std::ofstream(dir.file("tokenizer.json")) << tok.dump();
    return load_hf_tokenizer(d, *cfg);
  };
  auto kvs = with_split(o200k);
  ASSERT_TRUE(kvs.ok()) << kvs.error().message;
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.pre")->as_string(), "gpt-4o");
  auto r = with_split("\\p{N}+");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            dir.file("tokenizer.json") +
                R"(: pre-tokenizer not recognised: Sequence[Split(Regex "\\p{N}+", Removed, )"
                R"(invert), ByteLevel(use_regex=false)] (known: ByteLevel; Split with the )"
                R"(Llama-3, Qwen2 or GPT-4o regex + ByteLevel; Digits + ByteLevel))");
  tok["normalizer"] = {{"type", "Lowercase"}};
  r = with_split(o200k);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            dir.file("tokenizer.json") +
                ": byte-level BPE normalizer 'Lowercase' is not supported (none or NFC)");
}

// SentencePiece-style BPE (byte_fallback, no ByteLevel) with a normalizer other than
// SentencePiece's space replacement is refused, naming what it found.
TEST(HfTokenizer, SentencePieceStyleWithOtherNormalizerRefused) {
  test::TempDir dir;
  test::write_hf_checkpoint(dir.path().string(), test::HfSpec{});
  const std::string d = dir.path().string();
  auto cfg = load_hf_config(d);
  ASSERT_TRUE(cfg.ok());
  auto tok = json::parse(test::read_all(dir.file("tokenizer.json")));
  tok["pre_tokenizer"] = nullptr;
  tok["decoder"] = nullptr;
  tok["model"]["byte_fallback"] = true;
  tok["normalizer"] = {{"type", "NFKC"}};
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  auto r = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            dir.file("tokenizer.json") +
                ": SentencePiece-style BPE with normalizer NFKC and pre-tokenizer none is not "
                "recognised (known: Replace ' ' -> U+2581 with or without Prepend U+2581; "
                "Metaspace always, no split)");
  tok["model"]["byte_fallback"] = false;
  std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  r = load_hf_tokenizer(d, *cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("neither byte-level"), std::string::npos);
}

TEST(HfTokenizer, SentencePieceFolder) {
  test::TempDir dir;
  test::HfSpec spec;
  spec.vocab = 270;
  test::write_hf_checkpoint(dir.path().string(), spec);
  std::filesystem::remove(dir.file("tokenizer.json"));
  const std::string m = spm_model();
  std::ofstream(dir.file("tokenizer.model"), std::ios::binary) << m;
  std::ofstream(dir.file("tokenizer_config.json"))
      << R"({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": true, "add_eos_token": false})";
  auto cfg = load_hf_config(dir.path().string());
  ASSERT_TRUE(cfg.ok());
  auto kvs = load_hf_tokenizer(dir.path().string(), *cfg);
  ASSERT_TRUE(kvs.ok()) << kvs.error().message;
  EXPECT_EQ(keys(*kvs), (std::vector<std::string>{
                            "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                            "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                            "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token"}));
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.model")->as_string(), "llama");
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.pre")->as_string(), "default");
  const auto* toks = find(*kvs, "tokenizer.ggml.tokens")->as_array();
  const auto* scores = find(*kvs, "tokenizer.ggml.scores")->as_array();
  const auto* types = find(*kvs, "tokenizer.ggml.token_type")->as_array();
  ASSERT_EQ(toks->items.size(), 270u);
  EXPECT_EQ(scores->elem_type, GgufType::F32);
  EXPECT_EQ(*toks->items[259].as_string(),
            "\xe2\x96\x81"
            "a");
  EXPECT_EQ(*scores->items[260].as_float(), -2.25);
  EXPECT_EQ(*types->items[0].as_int(), 2);
  EXPECT_EQ(*types->items[3].as_int(), 6);
  EXPECT_EQ(*toks->items[261].as_string(), "[PAD261]");
  EXPECT_EQ(*scores->items[261].as_float(), -1000.0);
  EXPECT_EQ(*types->items[261].as_int(), 5);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.unknown_token_id")->as_uint(), 0u);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.bos_token_id")->as_uint(), 1u);
  EXPECT_EQ(*find(*kvs, "tokenizer.ggml.eos_token_id")->as_uint(), 2u);

  // A model without SentencePiece's dummy prefix (Gemma's) says so: add_space_prefix false; an
  // explicit true keeps the default (no key).
  for (int dummy : {0, 1}) {
    std::ofstream(dir.file("tokenizer.model"), std::ios::binary) << spm_model(true, -1, dummy);
    auto k = load_hf_tokenizer(dir.path().string(), *cfg);
    ASSERT_TRUE(k.ok()) << k.error().message;
    const GgufValue* asp = find(*k, "tokenizer.ggml.add_space_prefix");
    if (dummy) {
      EXPECT_EQ(asp, nullptr);
    } else {
      ASSERT_NE(asp, nullptr);
      EXPECT_EQ(asp->as_bool(), false);
    }
  }
}

// The tokenizer KVs of the shared models equal the reference conversions' element by element.
TEST(HfTokenizer, SharedModelsEqualReferenceKvs) {
  QF_REQUIRE_SHARED("reference/tiny-spm-f16.gguf");
  for (const std::string m : {"mini", "tiny-qwen2", "tiny-spm"}) {
    SCOPED_TRACE(m);
    const std::string dir = test::shared_path("models/" + m);
    auto cfg = load_hf_config(dir);
    ASSERT_TRUE(cfg.ok());
    auto kvs = load_hf_tokenizer(dir, *cfg);
    ASSERT_TRUE(kvs.ok()) << kvs.error().message;
    auto ref = GgufFile::open(test::shared_path("reference/" + m + "-f16.gguf"));
    ASSERT_TRUE(ref.ok());
    std::vector<GgufKv> ref_tok;
    for (const auto& kv : ref->kvs())
      if (kv.first.rfind("tokenizer.", 0) == 0) ref_tok.push_back(kv);
    ASSERT_EQ(keys(*kvs), keys(ref_tok));
    for (size_t i = 0; i < ref_tok.size(); ++i)
      EXPECT_TRUE((*kvs)[i].second == ref_tok[i].second) << ref_tok[i].first;
  }
}

}  // namespace
}  // namespace qforge
