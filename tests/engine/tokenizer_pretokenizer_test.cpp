// Pre-tokenizer expressions. Only GPT-2's has an oracle vocabulary in ../shared, so the
// Llama-3 and Qwen2 expressions are pinned here by hand-derived splits of their published
// regexes (and llama.cpp's whitespace conventions).
#include <gtest/gtest.h>

#include "engine/pretokenizer.h"

namespace qforge {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << p.error().message;
  if (!p.ok()) return {};
  Pieces out = p->split(text);
  std::string joined;
  for (const auto& s : out) {
    EXPECT_FALSE(s.empty());
    joined += s;
  }
  EXPECT_EQ(joined, text) << "pieces must cover the text";
  return out;
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("gpt-2", "I'm he's we'll"), (Pieces{"I", "'m", " he", "'s", " we", "'ll"}));
  // Contractions are case-sensitive in GPT-2's expression.
  EXPECT_EQ(split("gpt-2", "I'M"), (Pieces{"I", "'", "M"}));
  EXPECT_EQ(split("gpt-2", "Hello  world"), (Pieces{"Hello", " ", " world"}));
  EXPECT_EQ(split("gpt-2", "x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(split("gpt-2", "12345 678"), (Pieces{"12345", " 678"}));
  EXPECT_EQ(split("gpt-2", "a\tb"), (Pieces{"a", "\t", "b"}));
  EXPECT_EQ(split("gpt-2", "$100!!"), (Pieces{"$", "100", "!!"}));
  EXPECT_EQ(split("gpt-2", "h\xC3\xA9llo w\xC3\xB6rld"), (Pieces{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  // U+00A0 (no-break space) is white space; U+001C is too for llama.cpp's own matcher.
  EXPECT_EQ(split("gpt-2",
                  "a\xC2\xA0"
                  "b"),
            (Pieces{"a", "\xC2\xA0", "b"}));
  EXPECT_EQ(split("gpt-2",
                  "a\x1C"
                  "b"),
            (Pieces{"a", "\x1C", "b"}));
  EXPECT_TRUE(split("gpt-2", "").empty());
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "Hello world"), (Pieces{"Hello", " world"}));
  // Case-insensitive contractions.
  EXPECT_EQ(split("llama-bpe", "HE'LL I'm"), (Pieces{"HE", "'LL", " I", "'m"}));
  // Numbers in groups of at most three digits.
  EXPECT_EQ(split("llama-bpe", "1234567"), (Pieces{"123", "456", "7"}));
  // One leading non-letter, non-digit, non-newline character sticks to a word.
  EXPECT_EQ(split("llama-bpe", "(hello)"), (Pieces{"(hello", ")"}));
  EXPECT_EQ(split("llama-bpe", "\thello"), (Pieces{"\thello"}));
  // Punctuation runs take trailing newlines; white space ending in newlines is one piece.
  EXPECT_EQ(split("llama-bpe", "hello!!!\n\nworld"), (Pieces{"hello", "!!!\n\n", "world"}));
  EXPECT_EQ(split("llama-bpe", "a  \n b"), (Pieces{"a", "  \n", " b"}));
  EXPECT_EQ(split("llama-bpe", "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split("llama-bpe", "$100"), (Pieces{"$", "100"}));
  EXPECT_EQ(split("llama-bpe", "end  "), (Pieces{"end", "  "}));
}

TEST(PreTokenizer, Qwen2) {
  // As Llama-3 but digits one by one.
  EXPECT_EQ(split("qwen2", "12345"), (Pieces{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("qwen2", "HE'LL I'm"), (Pieces{"HE", "'LL", " I", "'m"}));
  EXPECT_EQ(split("qwen2", "hello!!!\n\nworld"), (Pieces{"hello", "!!!\n\n", "world"}));
  EXPECT_EQ(split("qwen2", "a  \n b"), (Pieces{"a", "  \n", " b"}));
  // llama.cpp runs this expression through std::regex, where U+001C is not white space, so it
  // can lead a word.
  EXPECT_EQ(split("qwen2",
                  "a\x1C"
                  "b"),
            (Pieces{"a",
                    "\x1C"
                    "b"}));
  EXPECT_EQ(split("qwen2",
                  "a\xE3\x80\x80\xE3\x80\x80"
                  "b"),  // U+3000 ideographic space
            (Pieces{"a", "\xE3\x80\x80",
                    "\xE3\x80\x80"
                    "b"}));
}

TEST(PreTokenizer, DefaultAndStarcoderApplyExpressionsInTurn) {
  // "default": punctuation runs first, then GPT-2's expression, then digits, then triples.
  EXPECT_EQ(split("default", "a+b=c"), (Pieces{"a", "+", "b", "=", "c"}));
  EXPECT_EQ(split("default", "12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(split("default", "x, y"), (Pieces{"x", ",", " y"}));
  // "starcoder": digits split first.
  EXPECT_EQ(split("starcoder", "ab12 c"), (Pieces{"ab", "1", "2", " c"}));
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  auto p = PreTokenizer::create("no-such-pre");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("no-such-pre"), std::string::npos);
}

TEST(PreTokenizer, LongRunsDoNotExhaustTheMatcher) {
  const std::string spaces(200000, ' ');
  auto p = PreTokenizer::create("llama-bpe");
  ASSERT_TRUE(p.ok());
  const Pieces out = p->split("a" + spaces + "b");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].size(), spaces.size() - 1);
  EXPECT_EQ(out[2], " b");
}

}  // namespace
}  // namespace qforge
