#include "eval/critical_prompts.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "formats/untrusted_text.h"
#include "io/mapped_file.h"

namespace qforge {

namespace {

constexpr std::string_view kRegexPrefix = "regex:";
constexpr int kMaxTokensLimit = 4096;
constexpr size_t kMaxLines = 100000;

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* m) const { pcre2_match_context_free(m); }
};

// Compiles a pattern as UTF-8 that tolerates invalid UTF-8 in the subject (a continuation cut
// at max_tokens can end inside a character).
Result<std::unique_ptr<pcre2_code, CodeDeleter>> compile_regex(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return make_error("regex '", printable(pattern), "' at offset ", off, ": ",
                      reinterpret_cast<const char*>(msg));
  }
  return std::unique_ptr<pcre2_code, CodeDeleter>(code);
}

// One JSONL line -> a prompt; errors without the "name:line: " prefix.
Result<CriticalPrompt> parse_line(std::string_view line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("not valid JSON");
  if (!j.is_object()) return make_error("expected a JSON object");
  CriticalPrompt p;
  for (const char* key : {"prompt", "expected"}) {
    auto it = j.find(key);
    if (it == j.end()) return make_error("missing key '", key, "'");
    if (!it->is_string()) return make_error("'", key, "' must be a string");
    if (it->get_ref<const std::string&>().empty()) return make_error("'", key, "' is empty");
  }
  p.prompt = j["prompt"].get<std::string>();
  p.expected = j["expected"].get<std::string>();
  auto mt = j.find("max_tokens");
  if (mt == j.end()) return make_error("missing key 'max_tokens'");
  if (!mt->is_number_integer() || mt->get<int64_t>() < 1 || mt->get<int64_t>() > kMaxTokensLimit)
    return make_error("'max_tokens' must be an integer in 1..", kMaxTokensLimit);
  p.max_tokens = static_cast<int>(mt->get<int64_t>());
  if (auto c = j.find("chat"); c != j.end()) {
    if (!c->is_boolean()) return make_error("'chat' must be true or false");
    p.chat = c->get<bool>();
  }
  if (p.expected.starts_with(kRegexPrefix)) {
    const std::string_view pat = std::string_view(p.expected).substr(kRegexPrefix.size());
    if (pat.empty()) return make_error("'expected' has an empty regex");
    if (auto c = compile_regex(pat); !c.ok()) return c.error();
  }
  return p;
}

}  // namespace

Result<std::vector<CriticalPrompt>> parse_critical_prompts(std::string_view jsonl,
                                                           const std::string& name) {
  std::vector<CriticalPrompt> out;
  size_t line_no = 0;
  while (!jsonl.empty()) {
    const size_t nl = jsonl.find('\n');
    std::string_view line = jsonl.substr(0, nl);
    jsonl = nl == std::string_view::npos ? std::string_view{} : jsonl.substr(nl + 1);
    if (++line_no > kMaxLines) return make_error(name, ": more than ", kMaxLines, " lines");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto p = parse_line(line);
    if (!p.ok()) return make_error(name, ":", line_no, ": ", p.error().message);
    out.push_back(std::move(*p));
  }
  if (out.empty()) return make_error(name, ": no prompts");
  return out;
}

Result<std::vector<CriticalPrompt>> load_critical_prompts(const std::string& path) {
  QF_TRY(std::string text, read_file_text(path));
  return parse_critical_prompts(text, path);
}

Result<bool> critical_prompt_matches(std::string_view expected, std::string_view output) {
  if (!expected.starts_with(kRegexPrefix)) return output.find(expected) != std::string_view::npos;
  QF_TRY(auto code, compile_regex(expected.substr(kRegexPrefix.size())));
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code.get(), nullptr));
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> mc(pcre2_match_context_create(nullptr));
  if (!md || !mc) return make_error("regex: out of memory");
  pcre2_set_match_limit(mc.get(), 1'000'000);  // a catastrophic pattern fails instead of hanging
  const int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(output.data()), output.size(),
                             0, 0, md.get(), mc.get());
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(rc, msg, sizeof msg);
  return make_error("regex '", printable(expected), "': ", reinterpret_cast<const char*>(msg));
}

Result<CriticalPromptsComparison> compare_critical_prompts(const CriticalPromptsReport& variant,
                                                           const CriticalPromptsReport& base) {
  if (variant.results.size() != base.results.size())
    return make_error("critical prompts: the variant has ", variant.results.size(),
                      " results, the base ", base.results.size(), " (not the same prompt set)");
  CriticalPromptsComparison c;
  c.total = static_cast<int>(base.results.size());
  for (size_t i = 0; i < base.results.size(); ++i) {
    const CriticalPromptResult& b = base.results[i];
    const CriticalPromptResult& v = variant.results[i];
    if (b.prompt != v.prompt || b.expected != v.expected || b.chat != v.chat)
      return make_error("critical prompts: result ", i + 1, " differs between variant ('",
                        printable(v.prompt, 60), "') and base ('", printable(b.prompt, 60),
                        "') (not the same prompt set)");
    c.base_passed += b.passed ? 1 : 0;
    c.variant_passed += v.passed ? 1 : 0;
    if (b.passed && !v.passed) c.lost.push_back(v);
    if (!b.passed && v.passed) c.gained.push_back(v);
  }
  return c;
}

// JSON: the key names are the field names.
void to_json(nlohmann::json& j, const CriticalPromptResult& r) {
  j = nlohmann::json{{"prompt", r.prompt},
                     {"expected", r.expected},
                     {"output", r.output},
                     {"chat", r.chat},
                     {"passed", r.passed}};
}
void from_json(const nlohmann::json& j, CriticalPromptResult& r) {
  j.at("prompt").get_to(r.prompt);
  j.at("expected").get_to(r.expected);
  j.at("output").get_to(r.output);
  r.chat = j.value("chat", false);
  j.at("passed").get_to(r.passed);
}
void to_json(nlohmann::json& j, const CriticalPromptsReport& r) {
  j = nlohmann::json{
      {"passed", r.passed}, {"total", r.total}, {"pass_rate", r.pass_rate}, {"results", r.results}};
}
void from_json(const nlohmann::json& j, CriticalPromptsReport& r) {
  j.at("passed").get_to(r.passed);
  j.at("total").get_to(r.total);
  j.at("pass_rate").get_to(r.pass_rate);
  j.at("results").get_to(r.results);
}
void to_json(nlohmann::json& j, const CriticalPromptsComparison& c) {
  j = nlohmann::json{{"base_passed", c.base_passed},
                     {"variant_passed", c.variant_passed},
                     {"total", c.total},
                     {"lost", c.lost},
                     {"gained", c.gained}};
}
void from_json(const nlohmann::json& j, CriticalPromptsComparison& c) {
  j.at("base_passed").get_to(c.base_passed);
  j.at("variant_passed").get_to(c.variant_passed);
  j.at("total").get_to(c.total);
  j.at("lost").get_to(c.lost);
  j.at("gained").get_to(c.gained);
}

}  // namespace qforge
