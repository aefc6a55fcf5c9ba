#include "engine/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "formats/pretokenizer_registry.h"

namespace qforge {
// Named, not anonymous: PreTokenizerState (declared in the header) holds these types, and a
// type with internal linkage inside one with external linkage is refused in unity builds.
namespace pretokenizer_detail {

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace pretokenizer_detail
using pretokenizer_detail::CodeDeleter;
using pretokenizer_detail::MatchDataDeleter;

struct PreTokenizerState {
  std::vector<std::string> patterns;
  std::vector<std::unique_ptr<pcre2_code, CodeDeleter>> codes;
};

Result<PreTokenizer> PreTokenizer::create(std::string_view pre) {
  const PreTokenizerDef* def = find_pre_tokenizer(pre);
  if (!def)
    return make_error("unknown pre-tokenizer '", pre, "' (known: ", known_pre_tokenizer_names(),
                      ")");
  auto state = std::make_shared<PreTokenizerState>();
  for (const std::string& pat : def->patterns) {
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
    state->patterns.push_back(pat);
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
