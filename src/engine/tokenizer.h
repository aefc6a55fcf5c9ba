// Tokenizer: text <-> token ids, identical to llama.cpp's for the two vocabulary kinds a GGUF
// file can carry (tokenizer.ggml.model):
//   "gpt2"  byte-level BPE: the text is split by the pre-tokenizer regex named by
//           tokenizer.ggml.pre, each piece is mapped byte -> printable code point (GPT-2's byte
//           alphabet) and merged by merge rank (tokenizer.ggml.merges).
//   "llama" SentencePiece (BPE flavour): spaces become U+2581, a dummy space is prefixed, and
//           adjacent symbols are merged by the highest vocabulary score; pieces missing from the
//           vocabulary fall back to <0xNN> byte tokens.
// Encoding never fails: invalid UTF-8 in the input is treated byte by byte (each invalid byte
// is its own "character"), so every input terminates and decodes back to the same bytes where
// the vocabulary can represent them. A Tokenizer is cheap to copy (shared immutable state) and
// safe to use from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

struct Vocab;
class TokenizerImpl;

class Tokenizer {
 public:
  // Reads the tokenizer.ggml.* keys. Errors (missing/ill-typed keys, an unknown model or
  // pre-tokenizer, inconsistent array lengths, out-of-range special ids) name the file and key.
  static Result<Tokenizer> from_gguf(const GgufFile& f);

  // add_special: add BOS (and EOS) as the vocab's add_bos_token/add_eos_token say;
  // parse_special: recognise control/user-defined token texts in `text`.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;
  // Exact UTF-8 bytes (byte-level / byte-fallback tokens restored; control tokens render as
  // nothing). For SentencePiece the leading space of the first token is kept, like llama.cpp's
  // detokenizer without remove_special (callers strip it when comparing with the input).
  std::string decode(std::span<const int32_t> ids) const;
  std::string token_to_piece(int32_t id) const;     // decoded bytes of one token (streaming)
  const std::string& token_text(int32_t id) const;  // as stored in the GGUF
  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 if none
  int32_t eos_id() const;  // -1 if none
  bool add_bos() const;
  bool add_eos() const;
  bool is_eog(int32_t id) const;  // end of generation (EOS/EOT)

  // Additional queries.
  bool is_spm() const;                // "llama" (SentencePiece) vs "gpt2" (byte-level BPE)
  const std::string& pre() const;     // tokenizer.ggml.pre ("default" when absent)
  bool is_control(int32_t id) const;  // control/unknown/unused tokens (not rendered)
  int32_t find_token(std::string_view text) const;  // id of an exact token text, or -1

 private:
  std::shared_ptr<const TokenizerImpl> impl_;
};

}  // namespace qforge
