// qforge logits on the command line: the file holds every position's logits (float32 rows equal
// to the engine's), --json summarises it, bad token files are one-line errors with nothing
// written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/forward.h"
#include "engine/tiny_model_fixture.h"
#include "io/sha256.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::shell_quote;
using test::write_text;

using test::run_qforge;

TEST(LogitsCommand, WritesEveryPositionAsTheEngineComputesIt) {
  test::TempDir tmp;
  test::TinySpec spec;
  spec.arch = "qwen3";
  spec.head_dim = 32;
  spec.qk_norm = true;
  ASSERT_EQ(test::write_tiny_model(tmp.file("m.gguf"), spec), "");
  const std::vector<int32_t> ids = {3, 17, 5, 63, 0, 9, 9, 41};
  write_text(tmp.file("ids.json"), nlohmann::json(ids).dump());
  const auto r = run_qforge("logits " + shell_quote(tmp.file("m.gguf")) + " --tokens-file " +
                            shell_quote(tmp.file("ids.json")) + " --out " +
                            shell_quote(tmp.file("l.f32")) + " --json -t 1 -b 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_tokens"], 8);
  EXPECT_EQ(j["n_vocab"], 64);
  std::ifstream in(tmp.file("l.f32"), std::ios::binary);
  std::vector<float> got(8 * 64);
  in.read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(got.size() * 4));
  ASSERT_TRUE(in);
  EXPECT_EQ(in.peek(), EOF);  // exactly n_tokens x n_vocab floats
  auto m = Model::load(tmp.file("m.gguf"));
  ASSERT_TRUE(m.ok());
  auto ref = forward_reference(*m, ids);
  ASSERT_TRUE(ref.ok());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - (*ref)[i]));
  EXPECT_LT(worst, 1e-3);
  const float* last = got.data() + 7 * 64;
  EXPECT_EQ(j["last_argmax"], std::max_element(last, last + 64) - last);
  auto digest = sha256_file(tmp.file("l.f32"));
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(j["sha256"], *digest);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("l.f32.sha256")));
}

TEST(LogitsCommand, BadTokenFilesAreOneLineErrors) {
  test::TempDir tmp;
  ASSERT_EQ(test::write_tiny_model(tmp.file("m.gguf"), {}), "");
  const std::pair<const char*, const char*> cases[] = {
      {"{\"ids\": [1]}", "not a JSON array of token ids"},
      {"[]", "the token array is empty"},
      {"[1, 64]", "element 1 is not a token id below 64"},
      {"[1, -2]", "element 1 is not a token id below 64"},
      {"[1, 2.5]", "element 1 is not a token id below 64"},
  };
  for (const auto& [text, what] : cases) {
    SCOPED_TRACE(text);
    write_text(tmp.file("ids.json"), text);
    const auto r =
        run_qforge("logits " + shell_quote(tmp.file("m.gguf")) + " --tokens-file " +
                   shell_quote(tmp.file("ids.json")) + " --out " + shell_quote(tmp.file("l.f32")));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(std::filesystem::exists(tmp.file("l.f32")));
  }
  // Longer than the model's context (256 positions).
  write_text(tmp.file("ids.json"), nlohmann::json(std::vector<int>(300, 1)).dump());
  const auto r =
      run_qforge("logits " + shell_quote(tmp.file("m.gguf")) + " --tokens-file " +
                 shell_quote(tmp.file("ids.json")) + " --out " + shell_quote(tmp.file("l.f32")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("300 tokens exceed the model's context length 256"), std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("l.f32")));
}

}  // namespace
}  // namespace qforge
