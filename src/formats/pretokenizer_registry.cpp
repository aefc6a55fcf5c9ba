#include "formats/pretokenizer_registry.h"

#include <algorithm>
#include <initializer_list>

namespace qforge {
namespace {

using nlohmann::json;

// llama.cpp's whitespace (Python str.isspace): used by its hand-written GPT-2 / Llama-3
// matchers.
constexpr std::string_view kWsCustom =
    R"(\t-\r\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
// Unicode White_Space: std::regex's \s over llama.cpp's "collapsed" text (C-locale ASCII space
// characters plus the non-ASCII code points above), and the \s of HF's Rust regex.
constexpr std::string_view kWsUnicode =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Expands white-space placeholders: "{S}" -> [ws], "{S-}" -> the class body (to embed in a
// class), "{NS}" -> [^ws].
std::string expand(std::string_view pattern, std::string_view ws) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern.substr(i, 3) == "{S}") {
      out += '[';
      out += ws;
      out += ']';
      i += 3;
    } else if (pattern.substr(i, 4) == "{S-}") {
      out += ws;
      i += 4;
    } else if (pattern.substr(i, 4) == "{NS}") {
      out += "[^";
      out += ws;
      out += ']';
      i += 4;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^{S-}\p{L}\p{N}]+|{S}+(?!{NS})|{S}+)";
// Llama-3 (case-insensitive contractions spelled out as llama.cpp does).
constexpr std::string_view kLlama3 =
    R"('[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^{S-}\p{L}\p{N}]+[\r\n]*|{S}*[\r\n]+|{S}+(?!{NS})|{S}+)";
// Qwen2: as Llama-3 but single digits.
constexpr std::string_view kQwen2 =
    R"('[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^{S-}\p{L}\p{N}]+[\r\n]*|{S}*[\r\n]+|{S}+(?!{NS})|{S}+)";
// GPT-4o (o200k): words split at case changes, marks (\p{M}) belong to words, contractions
// attached, "/" joins a trailing newline run. PCRE2's caseless matching is Unicode's simple
// case folding, as in HF's (?i:...).
constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^{S-}\p{L}\p{N}]+[\r\n/]*|{S}*[\r\n]+|{S}+(?!{NS})|{S}+)";

// The split regexes as tokenizer.json writes them (HF / Rust syntax), for identification.
constexpr std::string_view kHfLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kHfQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kHfGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'"
    "s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
    "\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum class Ws { Custom, Unicode };
struct PatternSpec {
  std::string_view pattern;
  Ws ws;
};
struct Group {
  std::vector<std::string_view> names;
  std::vector<PatternSpec> patterns;
};

// Names that share one expression list, as llama.cpp groups them.
const std::vector<Group>& groups() {
  static const std::vector<Group> g = {
      {{"default"},
       {{R"([\p{P}\$\+<=>\^~\|]+)", Ws::Unicode},
        {kGpt2, Ws::Custom},
        {R"(\p{N}+)", Ws::Unicode},
        {"[0-9][0-9][0-9]", Ws::Unicode}}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
       {{kGpt2, Ws::Custom}}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe"},
       {{kLlama3, Ws::Custom}}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {{kQwen2, Ws::Unicode}}},
      {{"gpt-4o", "llama4"}, {{kGpt4o, Ws::Unicode}}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {{R"(\p{N})", Ws::Unicode}, {kGpt2, Ws::Custom}}},
      {{"falcon"},
       {{R"([\p{P}\$\+<=>\^~\|`]+)", Ws::Unicode},
        {kGpt2, Ws::Custom},
        {"[0-9][0-9][0-9]", Ws::Unicode}}},
  };
  return g;
}

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

std::vector<PreTokenizerDef> build_registry() {
  std::vector<PreTokenizerDef> defs;
  for (const Group& g : groups()) {
    std::vector<std::string> pats;
    for (const PatternSpec& p : g.patterns)
      pats.push_back(expand(p.pattern, p.ws == Ws::Custom ? kWsCustom : kWsUnicode));
    for (std::string_view n : g.names) {
      PreTokenizerDef d;
      d.name = std::string(n);
      d.patterns = pats;
      d.ignore_merges = is_one_of(n, {"llama3", "llama-v3", "llama-bpe", "falcon3"});
      d.add_bos = d.ignore_merges;
      d.clean_spaces =
          !is_one_of(n, {"qwen2", "deepseek-r1-qwen", "command-r", "smollm", "gpt-4o", "llama4"});
      d.no_bos = n == "chatglm-bpe";
      defs.push_back(std::move(d));
    }
  }
  return defs;
}

const std::vector<PreTokenizerDef>& registry() {
  static const std::vector<PreTokenizerDef> r = build_registry();
  return r;
}

std::string str_of(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
// A boolean field; `def` when absent; nullopt when present with another type.
std::optional<bool> bool_of(const json& o, const char* key, bool def) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  if (!it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

// ByteLevel with the given use_regex and no prefix space (HF's default add_prefix_space is
// true, but tokenizer files that omit it are GPT-2-style ones llama.cpp treats as without).
bool is_byte_level(const json& p, bool use_regex) {
  if (!p.is_object() || str_of(p, "type") != "ByteLevel") return false;
  return bool_of(p, "use_regex", true) == use_regex &&
         bool_of(p, "add_prefix_space", false) == false;
}

struct SplitDef {
  std::string_view regex;
  std::string_view behavior;
  bool invert;
  std::string_view name;
};
constexpr SplitDef kSplits[] = {
    {kHfLlama3, "Isolated", false, "llama-bpe"},
    {kHfQwen2, "Isolated", false, "qwen2"},
    {kHfGpt4o, "Removed", true, "gpt-4o"},
};

std::optional<std::string> identify_split(const json& s) {
  if (!s.is_object() || str_of(s, "type") != "Split") return std::nullopt;
  auto pat = s.find("pattern");
  if (pat == s.end() || !pat->is_object()) return std::nullopt;
  const std::string rx = str_of(*pat, "Regex");
  const std::string behavior = str_of(s, "behavior");
  const auto invert = bool_of(s, "invert", false);
  if (!invert) return std::nullopt;
  for (const SplitDef& d : kSplits)
    if (rx == d.regex && behavior == d.behavior && *invert == d.invert) return std::string(d.name);
  return std::nullopt;
}

std::string cut(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

}  // namespace

const PreTokenizerDef* find_pre_tokenizer(std::string_view name) {
  for (const auto& d : registry())
    if (d.name == name) return &d;
  return nullptr;
}

std::string known_pre_tokenizer_names() {
  std::string out;
  for (const auto& d : registry()) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

std::optional<std::string> identify_hf_pre_tokenizer(const json& pre) {
  if (!pre.is_object()) return std::nullopt;
  const std::string type = str_of(pre, "type");
  if (type == "ByteLevel") {
    if (is_byte_level(pre, true)) return "gpt-2";
    return std::nullopt;
  }
  if (type != "Sequence") return std::nullopt;
  auto list = pre.find("pretokenizers");
  if (list == pre.end() || !list->is_array() || list->size() != 2) return std::nullopt;
  const json& first = (*list)[0];
  const json& second = (*list)[1];
  if (str_of(first, "type") == "Split") {
    if (!is_byte_level(second, false)) return std::nullopt;
    return identify_split(first);
  }
  if (str_of(first, "type") == "Digits") {
    if (bool_of(first, "individual_digits", false) != true || !is_byte_level(second, true))
      return std::nullopt;
    return "starcoder";
  }
  return std::nullopt;
}

std::string describe_hf_pre_tokenizer(const json& pre) {
  if (pre.is_null()) return "none";
  if (!pre.is_object()) return cut(pre.dump(), 80);
  const std::string type = str_of(pre, "type");
  if (type == "Sequence") {
    std::string out = "Sequence[";
    auto list = pre.find("pretokenizers");
    if (list != pre.end() && list->is_array()) {
      for (size_t i = 0; i < list->size(); ++i) {
        if (i) out += ", ";
        out += describe_hf_pre_tokenizer((*list)[i]);
      }
    }
    return out + "]";
  }
  if (type == "Split") {
    std::string out = "Split(";
    auto pat = pre.find("pattern");
    if (pat != pre.end() && pat->is_object()) {
      for (const char* k : {"Regex", "String"})
        if (pat->contains(k)) out += std::string(k) + " " + cut(json(str_of(*pat, k)).dump(), 72);
    }
    out += ", " + str_of(pre, "behavior");
    if (bool_of(pre, "invert", false) == true) out += ", invert";
    return out + ")";
  }
  if (type == "ByteLevel") {
    std::string out = "ByteLevel(";
    if (bool_of(pre, "use_regex", true) == false) out += "use_regex=false";
    if (bool_of(pre, "add_prefix_space", false) == true)
      out += std::string(out.back() == '(' ? "" : ", ") + "add_prefix_space";
    return out + ")";
  }
  if (type == "Digits")
    return bool_of(pre, "individual_digits", false) == true ? "Digits(individual)" : "Digits";
  if (type.empty()) return cut(pre.dump(), 80);
  return type;
}

}  // namespace qforge
