// Critical prompts: the JSONL parser (errors name file:line), matching, the comparison with a
// base, JSON round trips, and greedy runs on real models:
//  - refmodel F16 on ../shared/data/critical-prompts.jsonl, whose `expected` words are the first
//    words of llama.cpp's F16 greedy continuations (ANCHORS.md: F16 24/24);
//  - the bundled data/critical-prompts-mini.jsonl on models/mini F16;
//  - a chat prompt through a chat template written into a converted model.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "engine/generate.h"
#include "eval/critical_prompts.h"
#include "test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

TEST(CriticalPrompts, ParsesLinesIgnoringOtherKeys) {
  const std::string text =
      "{\"prompt\": \"The kernel\", \"expected\": \"will\", \"max_tokens\": 16, \"f16_greedy\": "
      "\"x\"}\n"
      "\n"
      "{\"prompt\": \"Hi\", \"expected\": \"regex:^\\\\s*[A-Z]\", \"max_tokens\": 4, \"chat\": "
      "true}\r\n";
  auto r = parse_critical_prompts(text, "set.jsonl");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].prompt, "The kernel");
  EXPECT_EQ((*r)[0].expected, "will");
  EXPECT_EQ((*r)[0].max_tokens, 16);
  EXPECT_FALSE((*r)[0].chat);
  EXPECT_EQ((*r)[1].expected, "regex:^\\s*[A-Z]");
  EXPECT_EQ((*r)[1].max_tokens, 4);
  EXPECT_TRUE((*r)[1].chat);
}

TEST(CriticalPrompts, MalformedLinesAreOneClearError) {
  const std::string ok = "{\"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": 8}\n";
  const std::pair<std::string, std::string> cases[] = {
      {ok + "{\"prompt\": \"a\", \"expected\": \"b\"", "set.jsonl:2: not valid JSON"},
      {ok + "[1, 2]", "set.jsonl:2: expected a JSON object"},
      {ok + ok + "{\"expected\": \"b\", \"max_tokens\": 8}", "set.jsonl:3: missing key 'prompt'"},
      {"{\"prompt\": 5, \"expected\": \"b\", \"max_tokens\": 8}",
       "set.jsonl:1: 'prompt' must be a string"},
      {"{\"prompt\": \"a\", \"expected\": \"\", \"max_tokens\": 8}",
       "set.jsonl:1: 'expected' is empty"},
      {"{\"prompt\": \"a\", \"expected\": \"b\"}", "set.jsonl:1: missing key 'max_tokens'"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": 0}",
       "set.jsonl:1: 'max_tokens' must be an integer in 1..4096"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": 2.5}",
       "set.jsonl:1: 'max_tokens' must be an integer in 1..4096"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": 8, \"chat\": \"yes\"}",
       "set.jsonl:1: 'chat' must be true or false"},
      {"\n\n", "set.jsonl: no prompts"},
  };
  for (const auto& [text, want] : cases) {
    auto r = parse_critical_prompts(text, "set.jsonl");
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_EQ(r.error().message, want);
  }
  auto bad_re = parse_critical_prompts(
      "{\"prompt\": \"a\", \"expected\": \"regex:(\", \"max_tokens\": 8}", "set.jsonl");
  ASSERT_FALSE(bad_re.ok());
  EXPECT_TRUE(bad_re.error().message.starts_with("set.jsonl:1: regex '(' at offset 1: "))
      << bad_re.error().message;
  auto missing = load_critical_prompts("/nonexistent/prompts.jsonl");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/prompts.jsonl"), std::string::npos);
}

TEST(CriticalPrompts, Matching) {
  EXPECT_TRUE(*critical_prompt_matches("will", " will be able"));
  EXPECT_FALSE(*critical_prompt_matches("Will", " will be able"));
  EXPECT_TRUE(*critical_prompt_matches("[1913", "\n   [1913 Webster]"));
  EXPECT_TRUE(*critical_prompt_matches("regex:^\\s*\\[19\\d\\d", "\n   [1913 Webster]"));
  EXPECT_FALSE(*critical_prompt_matches("regex:^[0-9]", " 42"));
  EXPECT_TRUE(*critical_prompt_matches("regex:é+", "caf\xc3\xa9"));
  // A continuation cut inside a character is still searched.
  EXPECT_TRUE(*critical_prompt_matches("regex:caf", "caf\xc3"));
  EXPECT_FALSE(critical_prompt_matches("regex:[", "x").ok());
}

CriticalPromptsReport report(std::vector<std::pair<std::string, bool>> rs) {
  CriticalPromptsReport r;
  for (auto& [p, ok] : rs) {
    r.results.push_back({p, "e", ok ? "e!" : "no", false, ok});
    r.passed += ok;
  }
  r.total = static_cast<int>(r.results.size());
  r.pass_rate = r.total ? static_cast<double>(r.passed) / r.total : 0;
  return r;
}

TEST(CriticalPrompts, ComparisonNamesLostAndGainedPrompts) {
  const auto base = report({{"a", true}, {"b", true}, {"c", false}, {"d", true}});
  const auto var = report({{"a", true}, {"b", false}, {"c", true}, {"d", false}});
  auto c = compare_critical_prompts(var, base);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->base_passed, 3);
  EXPECT_EQ(c->variant_passed, 2);
  EXPECT_EQ(c->total, 4);
  ASSERT_EQ(c->lost.size(), 2u);
  EXPECT_EQ(c->lost[0].prompt, "b");
  EXPECT_EQ(c->lost[1].prompt, "d");
  ASSERT_EQ(c->gained.size(), 1u);
  EXPECT_EQ(c->gained[0].prompt, "c");
  EXPECT_FALSE(compare_critical_prompts(report({{"a", true}}), base).ok());
  EXPECT_FALSE(
      compare_critical_prompts(report({{"x", true}, {"b", true}, {"c", true}, {"d", true}}), base)
          .ok());
  // JSON round trip of both structs.
  const nlohmann::json j = *c;
  const auto back = j.get<CriticalPromptsComparison>();
  EXPECT_EQ(back.lost.size(), 2u);
  EXPECT_EQ(back.gained[0].output, "e!");
  const nlohmann::json jr = base;
  EXPECT_EQ(jr.at("passed"), 3);
  EXPECT_EQ(jr.at("results").size(), 4u);
  const auto rb = jr.get<CriticalPromptsReport>();
  EXPECT_EQ(rb.pass_rate, base.pass_rate);
  EXPECT_EQ(rb.results[2].prompt, "c");
}

// Converts an HF folder to F16 GGUF with the qforge binary; "" on success.
std::string convert_f16(const std::string& hf_dir, const std::string& out) {
  const auto r = test::run_qforge("convert '" + hf_dir + "' '" + out + "' --outtype f16");
  return r.exit_code == 0 ? "" : r.err;
}

Result<CriticalPromptsReport> run_set(const std::string& gguf, const std::string& set) {
  QF_TRY(Model model, Model::load(gguf));
  QF_TRY(Tokenizer tok, Tokenizer::from_gguf(model.file()));
  QF_TRY(auto prompts, load_critical_prompts(set));
  return run_critical_prompts(model, tok, prompts, {});
}

TEST(CriticalPrompts, RefmodelF16PassesTheSharedSet) {
  QF_REQUIRE_SHARED("models/refmodel/config.json");
  QF_REQUIRE_SHARED("data/critical-prompts.jsonl");
  test::TempDir dir;
  const std::string f16 = dir.file("ref-f16.gguf");
  ASSERT_EQ(convert_f16(test::shared_path("models/refmodel"), f16), "");
  auto r = run_set(f16, test::shared_path("data/critical-prompts.jsonl"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  // llama.cpp's F16 passes 24/24 (ANCHORS.md); the expected words come from its continuations.
  EXPECT_EQ(r->total, 24);
  EXPECT_EQ(r->passed, 24);
  for (const auto& x : r->results) EXPECT_TRUE(x.passed) << x.prompt << " -> " << x.output;
  // Every whole 16-token continuation equals llama.cpp's F16 one (`f16_greedy`, which was
  // stored with trailing whitespace stripped).
  const auto rstrip = [](std::string x) {
    while (!x.empty() && std::isspace(static_cast<unsigned char>(x.back()))) x.pop_back();
    return x;
  };
  std::ifstream in(test::shared_path("data/critical-prompts.jsonl"));
  std::string line;
  size_t i = 0;
  for (; std::getline(in, line) && i < r->results.size(); ++i)
    EXPECT_EQ(rstrip(r->results[i].output),
              rstrip(nlohmann::json::parse(line).at("f16_greedy").get<std::string>()))
        << r->results[i].prompt;
  EXPECT_EQ(i, 24u);
}

TEST(CriticalPrompts, MiniF16PassesTheBundledSet) {
  test::TempDir dir;
  const std::string f16 = dir.file("mini-f16.gguf");
  ASSERT_EQ(convert_f16(test::source_dir() + "/models/mini", f16), "");
  auto r = run_set(f16, test::source_dir() + "/data/critical-prompts-mini.jsonl");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->total, 16);
  EXPECT_EQ(r->passed, 16);
}

TEST(CriticalPrompts, ChatPromptsGoThroughTheTemplate) {
  test::TempDir dir;
  // models/mini with a ChatML-style template added to its tokenizer_config.json.
  const fs::path hf = dir.path() / "mini-chat";
  fs::create_directories(hf);
  for (const auto& e : fs::directory_iterator(test::source_dir() + "/models/mini"))
    if (e.path().filename() != "tokenizer_config.json")
      fs::create_symlink(e.path(), hf / e.path().filename());
  auto cfg = nlohmann::json::parse(
      test::read_all(test::source_dir() + "/models/mini/tokenizer_config.json"));
  cfg["chat_template"] =
      "{% for m in messages %}{{ '### ' + m['role'] | upper + ':\\n' + m['content'] | trim + "
      "'\\n' }}{% endfor %}{% if add_generation_prompt %}### ASSISTANT:\n{% endif %}";
  std::ofstream(hf / "tokenizer_config.json") << cfg.dump();
  const std::string gguf = dir.file("mini-chat.gguf");
  ASSERT_EQ(convert_f16(hf.string(), gguf), "");

  auto model = Model::load(gguf);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto tok = Tokenizer::from_gguf(model->file());
  ASSERT_TRUE(tok.ok());
  auto text = apply_gguf_chat_template(model->file(), *tok, {{"user", "  Who is there?  "}}, true);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, "### USER:\nWho is there?\n### ASSISTANT:\n");

  // The chat prompt's continuation is generate() on BOS + the rendered text.
  const CriticalPrompt p{"  Who is there?  ", "regex:.", 8, true};
  auto rep = run_critical_prompts(*model, *tok, std::span(&p, 1), {});
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  std::vector<int32_t> ids = tok->encode(*text, true, true);
  ThreadPool pool(0);
  Context ctx(*model, 64, pool);
  GenerateOptions g;
  g.max_tokens = 8;
  auto want = generate(ctx, *tok, ids, g);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(rep->results[0].output, want->text);
  EXPECT_FALSE(want->text.empty());

  // Without a template, a chat prompt is one clear error naming the file.
  const std::string plain = dir.file("mini.gguf");
  ASSERT_EQ(convert_f16(test::source_dir() + "/models/mini", plain), "");
  auto m2 = Model::load(plain);
  ASSERT_TRUE(m2.ok());
  auto t2 = Tokenizer::from_gguf(m2->file());
  ASSERT_TRUE(t2.ok());
  auto bad = run_critical_prompts(*m2, *t2, std::span(&p, 1), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            plain + ": no tokenizer.chat_template in the file (a chat prompt needs one)");
}

}  // namespace
}  // namespace qforge
