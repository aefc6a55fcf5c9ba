// Chat templates: byte-identical to Hugging Face transformers.
//  - HfChat: every rendering in ../shared/arch/NAME/hf-chat.json (transformers 5.17
//    apply_chat_template) of the five probes' published templates.
//  - PinnedCases: tests/data/chat_template_cases.json, rendered by jinja2 3.1.6 configured as
//    transformers configures it (scripts/chat_template_oracle.py): the real templates on more
//    conversations (their own raise_exception errors included) and one case per language feature.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "test_util.h"

namespace qforge {
namespace {

using ojson = nlohmann::ordered_json;

ojson read_json(const std::string& path) {
  return ojson::parse(test::read_all(path));
}

struct Probe {
  const char* name;
  const char* tokenizer;
};
constexpr Probe kProbes[] = {{"llama3", "llama3"},
                             {"qwen3", "qwen3"},
                             {"qwen3moe", "qwen3"},
                             {"gemma2", "gemma3"},
                             {"gemma3", "gemma3"}};

TEST(ChatTemplate, HfChat) {
  int checked = 0;
  for (const Probe& p : kProbes) {
    const std::string chat = std::string("arch/") + p.name + "/hf-chat.json";
    const std::string cfg =
        std::string("arch/tokenizers/") + p.tokenizer + "/tokenizer_config.json";
    QF_REQUIRE_SHARED(chat);
    QF_REQUIRE_SHARED(cfg);
    const ojson tc = read_json(test::shared_path(cfg));
    auto t = ChatTemplate::parse(tc.at("chat_template").get<std::string>());
    ASSERT_TRUE(t.ok()) << p.name << ": " << t.error().message;
    for (const ojson& c : read_json(test::shared_path(chat))) {
      std::vector<ChatMessage> msgs;
      for (const ojson& m : c.at("messages"))
        msgs.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
      const auto str_or_none = [&](const char* k) -> std::optional<std::string> {
        if (!tc.contains(k) || tc[k].is_null()) return std::nullopt;
        return tc[k].get<std::string>();
      };
      auto r = t->render(chat_template_vars(msgs, c.at("add_generation_prompt").get<bool>(),
                                            str_or_none("bos_token"), str_or_none("eos_token")));
      ASSERT_TRUE(r.ok()) << p.name << ": " << r.error().message;
      EXPECT_EQ(*r, c.at("rendered").get<std::string>()) << p.name << " " << c.dump();
      ++checked;
    }
  }
  EXPECT_EQ(checked, 30);  // 5 probes x 3 conversations x with/without the generation prompt
}

TEST(ChatTemplate, PinnedCases) {
  const ojson cases = read_json(test::data_dir() + "/chat_template_cases.json");
  ASSERT_GE(cases.size(), 50u);
  for (const ojson& c : cases) {
    const std::string name = c.at("name").get<std::string>();
    auto t = ChatTemplate::parse(c.at("template").get<std::string>());
    Result<std::string> r = t.ok() ? t->render(c.at("vars")) : Result<std::string>(t.error());
    if (c.contains("rendered")) {
      ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
      EXPECT_EQ(*r, c["rendered"].get<std::string>()) << name;
      continue;
    }
    const std::string err = c.at("error").get<std::string>();
    ASSERT_FALSE(r.ok()) << name << ": rendered '" << *r << "', jinja2 says " << err;
    // The template's own errors carry its message verbatim, as transformers' TemplateError does.
    const std::string kTemplateError = "TemplateError: ";
    if (err.starts_with(kTemplateError))
      EXPECT_EQ(r.error().message, "chat template: " + err.substr(kTemplateError.size())) << name;
    else
      EXPECT_TRUE(r.error().message.starts_with("chat template"))
          << name << ": " << r.error().message;
  }
}

TEST(ChatTemplate, ErrorsNameTheLine) {
  auto t = ChatTemplate::parse("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, "chat template line 3: unexpected 'end of tag'");
  auto u = ChatTemplate::parse("a\n\n{% for x in xs %}{{ x.y.z }}{% endfor %}");
  ASSERT_TRUE(u.ok());
  auto r = u->render(ojson{{"xs", ojson::array({ojson::object()})}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "chat template line 3: 'dict object' has no attribute 'y'");
}

TEST(ChatTemplate, LimitsStopHostileTemplates) {
  ChatTemplateLimits lim;
  lim.max_steps = 100000;
  lim.max_output = 1 << 16;
  // Doubling a string: stopped by the size limit, not by memory.
  auto a = ChatTemplate::parse(
      "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}{{ ns.s }}",
      lim);
  ASSERT_TRUE(a.ok());
  auto ra = a->render(ojson::object());
  ASSERT_FALSE(ra.ok());
  EXPECT_NE(ra.error().message.find("larger than 65536 bytes"), std::string::npos)
      << ra.error().message;
  // Nested loops: stopped by the step limit.
  auto b = ChatTemplate::parse(
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", lim);
  ASSERT_TRUE(b.ok());
  auto rb = b->render(ojson::object());
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.error().message.find("step limit"), std::string::npos) << rb.error().message;
  // Deep nesting: refused by the parser; a recursive macro: stopped by the depth limit.
  std::string deep(1000, '(');
  EXPECT_FALSE(ChatTemplate::parse("{{ " + deep + " }}").ok());
  auto c = ChatTemplate::parse("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}");
  ASSERT_TRUE(c.ok());
  auto rc = c->render(ojson::object());
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(rc.error().message.find("recursion too deep"), std::string::npos) << rc.error().message;
  // A namespace that refers to itself renders (and is freed: ASan's leak check).
  auto cyc = ChatTemplate::parse(
      "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}");
  ASSERT_TRUE(cyc.ok());
  auto rcyc = cyc->render(ojson::object());
  ASSERT_TRUE(rcyc.ok()) << rcyc.error().message;
  EXPECT_EQ(*rcyc, "True");
  // A structure nested a level per loop iteration is refused before it can overflow the stack.
  auto nest = ChatTemplate::parse(
      "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}{{ ns.x }}");
  ASSERT_TRUE(nest.ok());
  auto rnest = nest->render(ojson::object());
  ASSERT_FALSE(rnest.ok());
  EXPECT_NE(rnest.error().message.find("nested deeper than 200"), std::string::npos)
      << rnest.error().message;
  // Integer arithmetic stays defined: huge exponents, INT64_MIN % -1, slices with huge steps.
  auto ar = ChatTemplate::parse(
      "{{ 1 ** 1000000000000 }} {{ 9 is divisibleby(-1) }} {{ [1,2,3][::9223372036854775807] }}");
  ASSERT_TRUE(ar.ok());
  auto rar = ar->render(ojson::object());
  ASSERT_TRUE(rar.ok()) << rar.error().message;
  EXPECT_EQ(*rar, "1 True [1]");
  // range() is bounded as in jinja2's sandbox.
  auto d = ChatTemplate::parse("{{ range(200000)|length }}");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->render(ojson::object()).ok());
}

}  // namespace
}  // namespace qforge
