// Acceptance: llama.cpp's tokenizer test vocabularies. Every string of the .inp file (copied in
// tests/data/vocab) encodes, without BOS, to exactly the ids of the matching .out line (the
// expected ids llama.cpp's test-tokenizer-0 checks), and decodes back to the input.
#include <gtest/gtest.h>

#include <sstream>

#include "engine/open_tokenizer.h"
#include "engine/tokenizer.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::open_tokenizer;

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: strings separated by "\n__ggml_vocab_test__\n" (one after the last too); .out: one line
// of space-separated ids per string.
std::vector<VocabCase> load_cases(const std::string& name) {
  const std::string inp = test::read_all(test::data_dir() + "/vocab/" + name + ".inp");
  const std::string out = test::read_all(test::data_dir() + "/vocab/" + name + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t m = inp.find(sep, pos);
    if (m == std::string::npos) break;
    texts.push_back(inp.substr(pos, m - pos));
    pos = m + sep.size();
  }
  std::vector<VocabCase> cases;
  std::istringstream lines(out);
  std::string line;
  for (const auto& t : texts) {
    if (!std::getline(lines, line)) break;
    VocabCase c{t, {}};
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << name << ": .inp/.out mismatch";
  return cases;
}

void check_vocab(const std::string& name, bool spm) {
  const auto cases = load_cases(name);
  ASSERT_EQ(cases.size(), 46u);
  Tokenizer tok = open_tokenizer("vocab/" + name);
  EXPECT_EQ(tok.is_spm(), spm);
  int failures = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, /*add_special=*/false);
    EXPECT_EQ(ids, c.ids) << name << ": text '" << c.text << "'";
    if (ids != c.ids) ++failures;
    EXPECT_EQ(tok.decode(ids), c.text) << name << ": decode of '" << c.text << "'";
  }
  EXPECT_EQ(failures, 0);
}

TEST(TokenizerVocab, Gpt2MatchesLlamaCpp) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-gpt-2.gguf");
  check_vocab("ggml-vocab-gpt-2.gguf", false);
}

TEST(TokenizerVocab, LlamaSpmMatchesLlamaCpp) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-llama-spm.gguf");
  check_vocab("ggml-vocab-llama-spm.gguf", true);
}

TEST(TokenizerVocab, Gpt2SpecialIdsAndFlags) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-gpt-2.gguf");
  Tokenizer tok = open_tokenizer("vocab/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(tok.n_vocab(), 50257);
  EXPECT_EQ(tok.bos_id(), 50256);
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_FALSE(tok.add_bos());  // no add_bos_token key: the BPE default is off
  EXPECT_TRUE(tok.is_eog(50256));
  EXPECT_FALSE(tok.is_eog(0));
  EXPECT_EQ(tok.pre(), "gpt-2");
  EXPECT_EQ(tok.token_text(50256), "<|endoftext|>");
  // "<|endoftext|>" is a control token: plain text unless parse_special.
  EXPECT_EQ(tok.encode("<|endoftext|>", false, true), std::vector<int32_t>{50256});
  EXPECT_GT(tok.encode("<|endoftext|>", false, false).size(), 1u);
}

TEST(TokenizerVocab, LlamaSpmSpecialIdsAndFlags) {
  QF_REQUIRE_SHARED("vocab/ggml-vocab-llama-spm.gguf");
  Tokenizer tok = open_tokenizer("vocab/ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(tok.n_vocab(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_TRUE(tok.is_eog(2));
  EXPECT_EQ(tok.token_text(13), "<0x0A>");
  EXPECT_EQ(tok.token_to_piece(13), "\n");
  EXPECT_EQ(tok.token_to_piece(1), "");  // control tokens render as nothing
  const auto ids = tok.encode("Hello world");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.decode(ids), "Hello world");
  // With parse_special, "<s>" in the text becomes BOS and the next text gets a dummy prefix.
  EXPECT_EQ(tok.encode("<s>Hello", false, true), tok.encode("Hello", true, false));
}

}  // namespace
}  // namespace qforge
