#include "engine/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <initializer_list>

namespace qforge {
namespace {

// llama.cpp's whitespace (Python str.isspace): used by its hand-written GPT-2 / Llama-3
// matchers.
constexpr std::string_view kWsCustom =
    R"(\t-\r\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
// std::regex's \s over llama.cpp's "collapsed" text: C-locale ASCII space characters plus every
// non-ASCII code point of the set above (collapsed to \v before matching).
constexpr std::string_view kWsStl =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Expands "WS" placeholders: "{S}" -> [ws], "{S-}" -> the class body (to embed in a class),
// "{NS}" -> [^ws].
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

enum class Matcher { Custom, Stl };
struct PatternSpec {
  std::string_view pattern;
  Matcher matcher;
};

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (s == n) return true;
  return false;
}

Result<std::vector<PatternSpec>> specs_for(std::string_view pre) {
  using M = Matcher;
  if (pre == "default")
    return std::vector<PatternSpec>{{R"([\p{P}\$\+<=>\^~\|]+)", M::Stl},
                                    {kGpt2, M::Custom},
                                    {R"(\p{N}+)", M::Stl},
                                    {"[0-9][0-9][0-9]", M::Stl}};
  if (is_one_of(pre,
                {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                 "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"}))
    return std::vector<PatternSpec>{{kGpt2, M::Custom}};
  if (is_one_of(pre,
                {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe"}))
    return std::vector<PatternSpec>{{kLlama3, M::Custom}};
  if (is_one_of(pre, {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}))
    return std::vector<PatternSpec>{{kQwen2, M::Stl}};
  if (is_one_of(
          pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}))
    return std::vector<PatternSpec>{{R"(\p{N})", M::Stl}, {kGpt2, M::Custom}};
  if (pre == "falcon")
    return std::vector<PatternSpec>{
        {R"([\p{P}\$\+<=>\^~\|`]+)", M::Stl}, {kGpt2, M::Custom}, {"[0-9][0-9][0-9]", M::Stl}};
  return make_error("unknown pre-tokenizer '", pre, "'");
}

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

struct PreTokenizerState {
  std::vector<std::string> patterns;
  std::vector<std::unique_ptr<pcre2_code, CodeDeleter>> codes;
};

Result<PreTokenizer> PreTokenizer::create(std::string_view pre) {
  QF_TRY(auto specs, specs_for(pre));
  auto state = std::make_shared<PreTokenizerState>();
  for (const auto& spec : specs) {
    std::string pat = expand(spec.pattern, spec.matcher == Matcher::Custom ? kWsCustom : kWsStl);
    int err = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                                     PCRE2_UTF, &err, &erroff, nullptr);
    if (!code) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      return make_error("pre-tokenizer '", pre, "': cannot compile /", pat, "/ at ", erroff, ": ",
                        reinterpret_cast<const char*>(msg.data()));
    }
    // JIT is an optimisation only: without it (unsupported CPU, no executable memory) the
    // interpreter gives the same matches.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    state->codes.emplace_back(code);
    state->patterns.push_back(std::move(pat));
  }
  PreTokenizer p;
  p.state_ = std::move(state);
  return p;
}

const std::vector<std::string>& PreTokenizer::patterns() const {
  return state_->patterns;
}

namespace {

struct SplitContext {
  std::string_view text;
  const PreTokenizerState* state;
  std::vector<std::unique_ptr<pcre2_match_data, MatchDataDeleter>> md;
  void (*fn)(void*, size_t, size_t);
  void* fn_ctx;

  // Splits [begin, end) with expression `level` and hands each piece to the next level (gaps
  // between matches become pieces too, as in llama.cpp; lookarounds see only [begin, end)).
  void run(size_t level, size_t begin, size_t end) {
    if (level == state->codes.size()) {
      fn(fn_ctx, begin, end);
      return;
    }
    pcre2_code* code = state->codes[level].get();
    pcre2_match_data* m = md[level].get();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + begin);
    const PCRE2_SIZE len = end - begin;
    PCRE2_SIZE pos = 0, last = 0;
    while (pos < len) {
      int rc = pcre2_match(code, subject, len, pos, PCRE2_NO_UTF_CHECK, m, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, subject, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, m, nullptr);
      if (rc < 0) break;  // no further match (or a matcher limit): the rest is one piece
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m);
      const PCRE2_SIZE ms = ov[0], me = ov[1];
      if (me <= ms) {  // an empty match (none of our expressions has one): step one character
        pos = ms + 1;
        while (pos < len && (subject[pos] & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (ms > last) run(level + 1, begin + last, begin + ms);
      run(level + 1, begin + ms, begin + me);
      pos = last = me;
    }
    if (last < len) run(level + 1, begin + last, end);
  }
};

}  // namespace

void PreTokenizer::split_impl(std::string_view text, void (*fn)(void*, size_t, size_t),
                              void* ctx) const {
  if (text.empty()) return;
  SplitContext sc{text, state_.get(), {}, fn, ctx};
  for (const auto& code : state_->codes)
    sc.md.emplace_back(pcre2_match_data_create_from_pattern(code.get(), nullptr));
  sc.run(0, 0, text.size());
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> out;
  for_each_piece(text, [&](size_t b, size_t e) { out.emplace_back(text.substr(b, e - b)); });
  return out;
}

}  // namespace qforge
