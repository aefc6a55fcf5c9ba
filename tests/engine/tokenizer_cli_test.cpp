// `qforge tokenize`: the --json contract ({"ids": [...], "pieces": [...]}, pieces as stored in
// the GGUF), BOS handling, --file, and one-line errors.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "test_util.h"

namespace qforge {
namespace {

// A vocabulary-only GGUF: byte-level BPE over GPT-2's alphabet with two merges and a BOS.
std::string write_vocab_gguf(const test::TempDir& tmp) {
  const std::string path = tmp.file("vocab.gguf");
  std::vector<std::string> tokens{"<|begin_of_text|>"};
  const auto& alpha = ByteAlphabet::get();
  for (int b = 0; b < 256; ++b) tokens.push_back(alpha.byte_to_utf8[b]);
  tokens.push_back("h\xC3\xA9");  // "hé" is not a merge result here; just a normal token
  tokens.push_back("he");         // 258
  tokens.push_back("hel");        // 259
  std::vector<int32_t> types(tokens.size(), 1);
  types[0] = 3;
  auto w = GgufWriter::create(path);
  EXPECT_TRUE(w.ok());
  w->set_kv("general.architecture", GgufValue::string("llama"));
  w->set_kv("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w->set_kv("tokenizer.ggml.pre", GgufValue::string("gpt-2"));
  w->set_kv("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w->set_kv("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w->set_kv("tokenizer.ggml.merges", GgufValue::string_array({"h e", "he l"}));
  w->set_kv("tokenizer.ggml.bos_token_id", GgufValue::u32(0));
  w->set_kv("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  EXPECT_TRUE(w->write_header().ok());
  EXPECT_TRUE(w->commit().ok());
  return path;
}

TEST(TokenizerCli, JsonIdsAndPieces) {
  test::TempDir tmp;
  const std::string model = write_vocab_gguf(tmp);
  auto r = test::run_qforge("tokenize '" + model + "' --text 'help \"x\"' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // BOS, "hel", "p", "Ġ", "\"", "x", "\"": the ids are 1 + byte for single characters.
  const std::vector<int32_t> ids = j.at("ids");
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 259, 1 + 'p', 1 + 0x20, 1 + '"', 1 + 'x', 1 + '"'}));
  const std::vector<std::string> pieces = j.at("pieces");
  EXPECT_EQ(pieces, (std::vector<std::string>{"<|begin_of_text|>", "hel", "p", "\xC4\xA0", "\"",
                                              "x", "\""}));
  // --no-bos drops BOS.
  r = test::run_qforge("tokenize '" + model + "' --text 'help' --json --no-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("ids"), (std::vector<int32_t>{259, 1 + 'p'}));
}

TEST(TokenizerCli, FileInputAndHumanOutput) {
  test::TempDir tmp;
  const std::string model = write_vocab_gguf(tmp);
  const std::string text = tmp.file("in.txt");
  std::ofstream(text, std::ios::binary) << "he\n";
  auto r = test::run_qforge("tokenize '" + model + "' --file '" + text + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("258 -> \"he\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"\xC4\x8A\""), std::string::npos) << r.out;  // newline as stored
}

TEST(TokenizerCli, Errors) {
  test::TempDir tmp;
  const std::string model = write_vocab_gguf(tmp);
  auto r = test::run_qforge("tokenize '" + model + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--text"), std::string::npos) << r.err;
  r = test::run_qforge("tokenize '" + model + "' --text a --file b");
  EXPECT_NE(r.exit_code, 0);
  const std::string bad = tmp.file("bad.gguf");
  std::ofstream(bad, std::ios::binary) << "not a gguf file at all, but long enough to try";
  r = test::run_qforge("tokenize '" + bad + "' --text a");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.gguf"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = test::run_qforge("tokenize --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--json"), std::string::npos);
}

TEST(TokenizerCli, MiniMatchesLibrary) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  const std::string model = test::shared_path("reference/mini-f16.gguf");
  auto r =
      test::run_qforge("tokenize '" + model + "' --text 'Hello world, it'\\''s 12345.' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  auto f = GgufFile::open(model);
  ASSERT_TRUE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(t.ok());
  const auto ids = t->encode("Hello world, it's 12345.");
  EXPECT_EQ(j.at("ids").get<std::vector<int32_t>>(), ids);
  ASSERT_EQ(j.at("pieces").size(), ids.size());
  EXPECT_EQ(j.at("pieces")[0], "<|begin_of_text|>");
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(j.at("pieces")[i], t->token_text(ids[i]));
}

}  // namespace
}  // namespace qforge
