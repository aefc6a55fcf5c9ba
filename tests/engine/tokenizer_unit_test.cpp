// Tokenizer behaviour on small hand-made vocabularies (no ../shared needed): SentencePiece
// score merging with leftmost tie-breaks, the dummy prefix, byte fallback, user-defined and
// control tokens, byte-level BPE merge ranks, invalid UTF-8, loading errors; plus a fuzz-style
// run over random bytes that must terminate and round-trip.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "test_util.h"

namespace qforge {
namespace {

constexpr const char* kSp = "\xE2\x96\x81";  // U+2581

// ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the pieces below.
VocabSpec spm_spec() {
  VocabSpec s;
  s.model = "llama";
  s.pre = "default";
  auto add = [&](std::string t, float score, TokenType type) {
    s.tokens.push_back(std::move(t));
    s.scores.push_back(score);
    s.token_types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, TokenType::Unknown);
  add("<s>", 0, TokenType::Control);
  add("</s>", 0, TokenType::Control);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TokenType::Byte);
  }
  add(kSp, -10, TokenType::Normal);                        // 259
  add("a", -10, TokenType::Normal);                        // 260
  add("b", -10, TokenType::Normal);                        // 261
  add("ab", -1, TokenType::Normal);                        // 262
  add(std::string(kSp) + "a", -2, TokenType::Normal);      // 263
  add(std::string(kSp) + "ab", -0.5f, TokenType::Normal);  // 264
  add("<user>", 0, TokenType::UserDefined);                // 265
  add("aa", -1, TokenType::Normal);                        // 266
  s.bos = 1;
  s.eos = 2;
  s.unk = 0;
  return s;
}

Tokenizer make(const VocabSpec& spec) {
  auto v = Vocab::build(spec, "test-vocab");
  EXPECT_TRUE(v.ok()) << v.error().message;
  auto t = Tokenizer::from_vocab(std::move(v).value());
  EXPECT_TRUE(t.ok()) << t.error().message;
  return std::move(t).value();
}

using Ids = std::vector<int32_t>;

TEST(TokenizerSpm, MergesByScoreWithDummyPrefix) {
  Tokenizer t = make(spm_spec());
  EXPECT_TRUE(t.is_spm());
  EXPECT_TRUE(t.add_bos());  // SentencePiece default
  EXPECT_EQ(t.encode("ab", false), (Ids{264}));
  EXPECT_EQ(t.encode("ab", true), (Ids{1, 264}));
  EXPECT_EQ(t.encode("ba", false), (Ids{259, 261, 260}));
  EXPECT_EQ(t.encode("ab ab", false), (Ids{264, 264}));
  EXPECT_EQ(t.encode("", false), Ids{});
  EXPECT_EQ(t.encode("", true), (Ids{1}));
  EXPECT_EQ(t.decode(Ids{264, 264}), "ab ab");
  EXPECT_EQ(t.decode(Ids{1, 264}), "ab");
}

TEST(TokenizerSpm, EqualScoresMergeLeftmostFirst) {
  Tokenizer t = make(spm_spec());
  // "\u2581aaa": "aa" (-1) can merge at 1 or 2; the leftmost wins, then nothing else applies.
  EXPECT_EQ(t.encode("aaa", false), (Ids{259, 266, 260}));
}

TEST(TokenizerSpm, ByteFallbackAndInvalidUtf8RoundTrip) {
  Tokenizer t = make(spm_spec());
  EXPECT_EQ(t.encode("\xC3\xA9", false), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t.decode(t.encode("\xC3\xA9", false)), "\xC3\xA9");
  // A lead byte takes the bytes it announces (llama.cpp looks at the high nibble only): 0xFE
  // swallows "a" and 0xC3 into one unknown symbol, which falls back to bytes.
  const std::string bad =
      "\xFF\xFE"
      "a\xC3";
  EXPECT_EQ(t.encode(bad, false), (Ids{259, 3 + 0xFF, 3 + 0xFE, 3 + 'a', 3 + 0xC3}));
  EXPECT_EQ(t.encode("\xC3"
                     "a",
                     false),
            (Ids{259, 3 + 0xC3, 3 + 'a'}));
  EXPECT_EQ(t.encode("a\x80"
                     "a",
                     false),
            (Ids{263, 3 + 0x80, 260}));
  EXPECT_EQ(t.decode(t.encode(bad, true)), bad);
  EXPECT_EQ(t.token_to_piece(3 + 0x41), "A");
  EXPECT_EQ(t.token_to_piece(263), " a");
  EXPECT_EQ(t.token_to_piece(0), "");
}

TEST(TokenizerSpm, UserDefinedAndControlTokens) {
  Tokenizer t = make(spm_spec());
  // User-defined tokens are always split out; the text after one gets a dummy prefix again.
  EXPECT_EQ(t.encode("a<user>b", false), (Ids{263, 265, 259, 261}));
  EXPECT_EQ(t.decode(Ids{263, 265, 259, 261}), "a<user> b");
  // Control texts only with parse_special.
  EXPECT_EQ(t.encode("<s>ab", false, true), (Ids{1, 264}));
  EXPECT_NE(t.encode("<s>ab", false, false), (Ids{1, 264}));
  EXPECT_TRUE(t.is_control(1));
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(1));
}

TEST(TokenizerSpm, AddSpacePrefixOff) {
  VocabSpec s = spm_spec();
  s.add_space_prefix = false;
  s.add_eos = true;
  Tokenizer t = make(s);
  EXPECT_EQ(t.encode("ab", true), (Ids{1, 262, 2}));
  EXPECT_EQ(t.decode(Ids{1, 264, 2}), " ab");
}

// Byte-level BPE: the 256 characters of GPT-2's byte alphabet (in byte order), then merges.
VocabSpec bpe_spec(const std::string& pre = "gpt-2") {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = pre;
  const auto& alpha = ByteAlphabet::get();
  for (int b = 0; b < 256; ++b) s.tokens.push_back(alpha.byte_to_utf8[b]);
  const std::string G = alpha.byte_to_utf8[' '];  // "Ġ"
  for (const std::string m : {"l l", "h e", "he ll", "hell o", "G w", "w o"}) {
    std::string merge = m;
    if (merge[0] == 'G') merge = G + merge.substr(1);
    s.merges.push_back(merge);
    std::string tok = merge;
    tok.erase(tok.find(' ', 1), 1);
    s.tokens.push_back(tok);
  }
  s.tokens.push_back("<|endoftext|>");  // 262
  s.token_types.assign(s.tokens.size(), static_cast<int32_t>(TokenType::Normal));
  s.token_types.back() = static_cast<int32_t>(TokenType::Control);
  s.eos = 262;
  s.bos = 262;
  return s;
}

TEST(TokenizerBpe, MergesByRank) {
  Tokenizer t = make(bpe_spec());
  EXPECT_FALSE(t.is_spm());
  EXPECT_FALSE(t.add_bos());  // BPE default without add_bos_token
  const int32_t ll = 256, he = 257, hell = 258, hello = 259, Gw = 260;
  EXPECT_EQ(t.encode("hello", false), (Ids{hello}));
  EXPECT_EQ(t.encode("hell", false), (Ids{hell}));
  // "lll": rank-0 merge possible at 0 and 1: leftmost first.
  EXPECT_EQ(t.encode("lll", false), (Ids{ll, 'l' - 0}));
  // " wo": "Ġ w" (rank 4) beats "w o" (rank 5).
  EXPECT_EQ(t.encode(" wo", false), (Ids{Gw, 'o'}));
  EXPECT_EQ(t.encode("he", false), (Ids{he}));
  EXPECT_EQ(t.decode(t.encode("hello wo hell", false)), "hello wo hell");
  EXPECT_EQ(t.token_to_piece(Gw), " w");
}

TEST(TokenizerBpe, ControlTokensAndBos) {
  VocabSpec s = bpe_spec();
  s.add_bos = true;
  Tokenizer t = make(s);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.encode("<|endoftext|>", false, true), (Ids{262}));
  EXPECT_EQ(t.encode("he<|endoftext|>", true, true), (Ids{262, 257, 262}));
  EXPECT_GT(t.encode("<|endoftext|>", false, false).size(), 3u);
  EXPECT_TRUE(t.is_eog(262));
  EXPECT_EQ(t.token_to_piece(262), "");
  EXPECT_EQ(t.decode(Ids{262, 259}), "hello");
}

TEST(TokenizerBpe, InvalidUtf8BecomesReplacementCharacter) {
  Tokenizer t = make(bpe_spec());
  // As llama.cpp: a bad byte is decoded as U+FFFD (EF BF BD) before splitting.
  EXPECT_EQ(t.encode("\xFF", false), (Ids{0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(t.decode(t.encode("a\xFFz\xC3", false)), "a\xEF\xBF\xBDz\xEF\xBF\xBD");
  // A lone surrogate encoding (lenient decode lets it through) keeps its bytes.
  EXPECT_EQ(t.decode(t.encode("\xED\xA0\x80", false)), "\xED\xA0\x80");
}

TEST(TokenizerLoad, Errors) {
  VocabSpec s = spm_spec();
  s.model = "bert";
  auto v = Vocab::build(s, "x.gguf");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("x.gguf"), std::string::npos);
  EXPECT_NE(v.error().message.find("bert"), std::string::npos);

  s = spm_spec();
  s.scores.pop_back();
  EXPECT_FALSE(Vocab::build(s, "x.gguf").ok());

  s = spm_spec();
  s.tokens[5] = s.tokens[6];
  v = Vocab::build(s, "x.gguf");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("duplicate"), std::string::npos);

  auto bv = Vocab::build(bpe_spec("no-such-pre"), "x.gguf");
  ASSERT_TRUE(bv.ok());
  auto bt = Tokenizer::from_vocab(std::move(bv).value());
  ASSERT_FALSE(bt.ok());
  EXPECT_NE(bt.error().message.find("no-such-pre"), std::string::npos);

  // Out-of-range special ids are ignored, as llama.cpp does.
  s = spm_spec();
  s.bos = 100000;
  v = Vocab::build(s, "x.gguf");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->bos, 1);
}

TEST(TokenizerLoad, FromGgufNamesFileAndKey) {
  test::TempDir tmp;
  const std::string path = tmp.file("v.gguf");
  {
    auto w = GgufWriter::create(path);
    ASSERT_TRUE(w.ok()) << w.error().message;
    w->set_kv("general.architecture", GgufValue::string("llama"));
    w->set_kv("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w->set_kv("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b"}));
    ASSERT_TRUE(w->write_header().ok());
    ASSERT_TRUE(w->commit().ok());
  }
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find(path), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("tokenizer.ggml.merges"), std::string::npos)
      << t.error().message;
}

// Random bytes: mostly printable ASCII and spaces, some valid multi-byte characters, some
// arbitrary bytes (invalid UTF-8).
std::string random_text(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len_d(0, max_len);
  std::uniform_int_distribution<int> kind(0, 9), byte(0, 255), ascii(0x20, 0x7E);
  // (No U+2581: SentencePiece decodes it as a space, by design.)
  const char* multi[] = {
      "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xE3\x80\x80", "\n", "\t", "  ", "'s"};
  std::string s;
  const size_t n = len_d(rng);
  while (s.size() < n) {
    const int k = kind(rng);
    if (k < 6)
      s += static_cast<char>(ascii(rng));
    else if (k < 8)
      s += multi[byte(rng) % 8];
    else
      s += static_cast<char>(byte(rng));
  }
  return s;
}

std::string llama_sanitized(const std::string& s) {
  std::vector<uint32_t> cpts;
  utf8_decode_lenient(s, cpts);
  std::string out;
  for (uint32_t c : cpts) utf8_append(c, out);
  return out;
}

void fuzz(const Tokenizer& t, bool spm, int n, size_t max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < n; ++i) {
    const std::string s = random_text(rng, max_len);
    const auto ids = t.encode(s, i % 2 == 0, i % 3 == 0);
    for (int32_t id : ids) {
      ASSERT_TRUE(id >= 0 && id < t.n_vocab());
    }
    if (i % 3 == 0) continue;  // parse_special may match a control text: no round trip
    const std::string back = t.decode(ids);
    // Byte-level BPE decodes invalid bytes as U+FFFD. SentencePiece keeps bytes, but a
    // truncated sequence before a space swallows part of the escaped space (U+2581), as in
    // llama.cpp, so only valid UTF-8 round-trips exactly there.
    if (!spm) {
      ASSERT_EQ(back, llama_sanitized(s)) << "case " << i;
    }
    if (utf8_is_valid(s)) {
      ASSERT_EQ(back, s) << "case " << i;
    }
  }
}

TEST(TokenizerFuzz, RandomBytesTerminateAndRoundTrip) {
  fuzz(make(spm_spec()), true, 300, 300, 1);
  fuzz(make(bpe_spec()), false, 300, 300, 2);
  fuzz(make(bpe_spec("llama-bpe")), false, 200, 300, 3);
  fuzz(make(bpe_spec("qwen2")), false, 200, 300, 4);
  fuzz(make(bpe_spec("default")), false, 200, 300, 5);
}

TEST(TokenizerFuzz, RandomBytesOnRealVocabularies) {
  for (const char* rel : {"reference/mini-f16.gguf", "vocab/ggml-vocab-llama-spm.gguf",
                          "vocab/ggml-vocab-gpt-2.gguf"}) {
    if (!test::have_shared() || !std::filesystem::exists(test::shared_path(rel))) continue;
    auto f = GgufFile::open(test::shared_path(rel));
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(*f);
    ASSERT_TRUE(t.ok()) << t.error().message;
    fuzz(*t, t->is_spm(), 200, 400, 7);
  }
}

}  // namespace
}  // namespace qforge
