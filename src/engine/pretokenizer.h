// Pre-tokenizers of byte-level BPE vocabularies (tokenizer.ggml.pre): the regular expressions
// that cut text into words before BPE merges (from the one registry,
// formats/pretokenizer_registry.h), compiled with PCRE2 (UTF, JIT).
//
// They reproduce llama.cpp's splitting exactly, including its quirks: a list of expressions is
// applied in turn, each one re-splitting every piece produced by the previous one (lookarounds
// see only the piece); text between matches becomes a piece of its own; "\s" is llama.cpp's
// whitespace set (Python's str.isspace, which includes U+001C..U+001F, for the expressions
// llama.cpp runs with its own matcher; the C-locale set plus non-ASCII white space for those it
// runs through std::regex). \p{L}, \p{N}, \p{P} are the Unicode general categories.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace qforge {

struct PreTokenizerState;

class PreTokenizer {
 public:
  // `pre` is a name of the registry (formats/pretokenizer_registry.h: find_pre_tokenizer, which
  // holds the expressions); anything else is an error.
  static Result<PreTokenizer> create(std::string_view pre);

  // The individual expressions (PCRE2 syntax), in application order; for tests.
  const std::vector<std::string>& patterns() const;

  // Splits `text`, which must be valid UTF-8, into consecutive non-empty pieces that cover it,
  // calling fn(begin, end) with each piece's byte offsets in order. Streams: nothing is stored
  // per piece, so texts of any size are fine. Thread-safe.
  template <class F>
  void for_each_piece(std::string_view text, F&& fn) const {
    split_impl(
        text, [](void* ctx, size_t b, size_t e) { (*static_cast<F*>(ctx))(b, e); },
        static_cast<void*>(&fn));
  }
  // Convenience: the pieces as strings.
  std::vector<std::string> split(std::string_view text) const;

 private:
  void split_impl(std::string_view text, void (*fn)(void*, size_t, size_t), void* ctx) const;
  std::shared_ptr<const PreTokenizerState> state_;
};

}  // namespace qforge
