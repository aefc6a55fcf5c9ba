// Acceptance on the project's own models and texts: the first 64 ids of the whole eval.txt
// (with BOS where the vocabulary adds it) equal llama.cpp's (reference/*.eval64.tokens.i32), and
// decode(encode(x)) == x for every text in ../shared/data.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "engine/open_tokenizer.h"
#include "engine/tokenizer.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::open_tokenizer;

std::vector<int32_t> read_i32(const std::string& path) {
  const std::string raw = test::read_all(path);
  std::vector<int32_t> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), v.size() * 4);
  return v;
}

void check_eval64(const std::string& model, const std::string& tokens, bool expect_bos) {
  Tokenizer tok = open_tokenizer("reference/" + model);
  const std::string text = test::read_all(test::shared_path("data/eval.txt"));
  const auto ids = tok.encode(text, /*add_special=*/true);
  const auto ref = read_i32(test::shared_path("reference/" + tokens));
  ASSERT_EQ(ref.size(), 64u);
  ASSERT_GE(ids.size(), 64u);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 64), ref) << model;
  EXPECT_EQ(tok.add_bos(), expect_bos);
  EXPECT_EQ(ids[0] == tok.bos_id(), expect_bos);
}

TEST(TokenizerEval, MiniEval64MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  check_eval64("mini-f16.gguf", "mini-f16.eval64.tokens.i32", true);
}

TEST(TokenizerEval, TinySpmEval64MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/tiny-spm-f16.gguf");
  check_eval64("tiny-spm-f16.gguf", "tiny-spm-f16.eval64.tokens.i32", true);
}

TEST(TokenizerEval, TinyQwen2Eval64MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/tiny-qwen2-f16.gguf");
  check_eval64("tiny-qwen2-f16.gguf", "tiny-qwen2-f16.eval64.tokens.i32", false);
}

void check_round_trip(const std::string& vocab_rel) {
  Tokenizer tok = open_tokenizer(vocab_rel);
  int n_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_path("data"))) {
    if (e.path().extension() != ".txt") continue;
    const std::string text = test::read_all(e.path().string());
    for (bool bos : {false, true}) {
      const auto ids = tok.encode(text, bos);
      EXPECT_GT(ids.size(), text.size() / 16) << e.path();
      const std::string back = tok.decode(ids);
      EXPECT_TRUE(back == text) << vocab_rel << ": round trip of " << e.path() << " differs (sizes "
                                << back.size() << " vs " << text.size() << ")";
    }
    ++n_files;
  }
  EXPECT_GE(n_files, 2);
}

TEST(TokenizerEval, MiniRoundTripOnSharedTexts) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  check_round_trip("reference/mini-f16.gguf");
}

TEST(TokenizerEval, SpmRoundTripOnSharedTexts) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-llama-spm.gguf");
  check_round_trip("vocab/ggml-vocab-llama-spm.gguf");
}

TEST(TokenizerEval, TinySpmRoundTripOnSharedTexts) {
  QF_REQUIRE_SHARED("reference/tiny-spm-f16.gguf");
  check_round_trip("reference/tiny-spm-f16.gguf");
}

// SentencePiece text is merged word by word when no token holds U+2581 after another character
// (an optimisation that must not change a single id). Adding such a token (one that never
// matches the text) forces whole-text merging; both must agree on a large text.
TEST(TokenizerEval, SpmWordByWordMergingIsExact) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-llama-spm.gguf");
  auto f = GgufFile::open(test::shared_path("vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(f.ok());
  auto spec = Vocab::spec_from_gguf(*f);
  ASSERT_TRUE(spec.ok());
  auto fast = Vocab::build(*spec, "spm");
  spec->tokens.push_back("\x01\xE2\x96\x81\x02");
  spec->scores.push_back(0);
  spec->token_types.push_back(1);
  auto slow = Vocab::build(*spec, "spm+");
  ASSERT_TRUE(fast.ok() && slow.ok());
  auto tf = Tokenizer::from_vocab(std::move(fast).value());
  auto ts = Tokenizer::from_vocab(std::move(slow).value());
  ASSERT_TRUE(tf.ok() && ts.ok());
  std::string text = test::read_all(test::shared_path("data/eval.txt")).substr(0, 120000);
  text += " \xF2\x9F  x\xC3 \xE2\x96\x81\xE2\x96\x81 a  ";  // truncated sequences before spaces
  const auto a = tf->encode(text, true);
  const auto b = ts->encode(text, true);
  EXPECT_GT(a.size(), 10000u);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace qforge
