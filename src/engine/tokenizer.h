// Tokenizer: text <-> token ids, identical to llama.cpp's for the two vocabulary kinds a GGUF
// file can carry (tokenizer.ggml.model):
//   "gpt2"  byte-level BPE: the text is split by the pre-tokenizer regex named by
//           tokenizer.ggml.pre, each piece is mapped byte -> printable code point (GPT-2's byte
//           alphabet) and merged by merge rank (tokenizer.ggml.merges).
//   "llama" SentencePiece (BPE flavour): spaces become U+2581, a dummy space is prefixed, and
//           adjacent symbols are merged by the highest vocabulary score; pieces missing from the
//           vocabulary fall back to <0xNN> byte tokens.
// Encoding never fails and always terminates. Invalid UTF-8 is handled as llama.cpp does: SPM
// groups bytes by what each lead byte announces and falls back to byte tokens (a truncated
// sequence right before a space swallows part of the escaped space, so such text does not
// round-trip); byte-level BPE replaces each invalid byte by U+FFFD before splitting (so it
// decodes to U+FFFD). Valid UTF-8 round-trips, decode(encode(x)) == x, except where SPM meets
// its own space mark U+2581 in the input or a user-defined token (which re-adds the prefix). A
// Tokenizer is cheap to copy (shared immutable state) and safe to use from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/vocab.h"
#include "formats/gguf.h"

namespace qforge {

class TokenizerImpl;

// A default-constructed Tokenizer is empty: assign one from from_gguf/from_vocab before use.
class Tokenizer {
 public:
  // Reads the tokenizer.ggml.* keys. Errors (missing/ill-typed keys, an unknown model or
  // pre-tokenizer, inconsistent array lengths, duplicate token texts) name the file and key;
  // an out-of-range special id is ignored with a warning, as llama.cpp does.
  static Result<Tokenizer> from_gguf(const GgufFile& f);
  // From a vocabulary built elsewhere (e.g. the converter's tokenizer files).
  static Result<Tokenizer> from_vocab(Vocab vocab);

  // add_special: add BOS (and EOS) as the vocab's add_bos_token/add_eos_token say;
  // parse_special: recognise control/user-defined token texts in `text`.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;
  // Exact bytes: the concatenation of token_to_piece, except that with a SentencePiece dummy
  // prefix (add_space_prefix) the leading space of the first text token is dropped, so that
  // decode(encode(x)) == x with or without BOS. Differences from llama.cpp's detokenizer: it
  // keeps that space when BOS leads, and it applies clean_up_tokenization_spaces (" ," -> ",")
  // for most BPE vocabularies; neither is done here, so the round trip stays exact.
  // Ids outside the vocabulary render as nothing.
  std::string decode(std::span<const int32_t> ids) const;
  // Decoded bytes of one token (streaming), as llama.cpp's token_to_piece(special = false):
  // control/unknown tokens give "", user-defined tokens their text, SPM "\u2581" -> " ",
  // <0xNN> -> that byte, byte-level BPE characters -> their bytes.
  std::string token_to_piece(int32_t id) const;
  // As stored in the GGUF ("" for ids outside the vocabulary; an empty stored text reads
  // "[EMPTY_<id>]", as in llama.cpp).
  const std::string& token_text(int32_t id) const;
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
  const Vocab& vocab() const;

 private:
  std::shared_ptr<const TokenizerImpl> impl_;
};

}  // namespace qforge
