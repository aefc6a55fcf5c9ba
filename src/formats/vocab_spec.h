// The one description of a tokenizer vocabulary: what the GGUF keys tokenizer.ggml.* (and
// tokenizer.chat_template*) carry. The converter fills it from Hugging Face files
// (formats/hf_tokenizer.h: load_hf_vocab) and writes it with vocab_to_gguf_kvs; the engine's
// tokenizer builds from it (engine/vocab.h: Vocab::build), whether it came from the HF files or
// from a GGUF (vocab_spec_from_gguf). So the converter's file and the engine agree by
// construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

// GGUF token types (tokenizer.ggml.token_type); SentencePiece uses the same numbering.
enum class TokenType : int32_t {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Raw vocabulary data. An unset optional is a key that is not written (readers then take
// llama.cpp's defaults for the model type); a negative id means "explicitly none".
struct VocabSpec {
  std::string model;  // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
  std::string pre;    // tokenizer.ggml.pre; empty = "default"
  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty or one per token (written when not empty)
  std::vector<int32_t> token_types;  // empty or one per token (TokenType values)
  std::vector<std::string> merges;   // "left right", in rank order (gpt2 only)
  std::optional<int64_t> bos, eos, eot, eom, unk, sep, pad, mask;
  std::optional<int64_t> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix;
  std::optional<std::string> chat_template;  // tokenizer.chat_template
  // Named templates: tokenizer.chat_template.NAME, listed in tokenizer.chat_templates.
  std::vector<std::pair<std::string, std::string>> named_chat_templates;
};

// The GGUF KVs of a vocabulary, in the reference conversions' order: model, pre, tokens,
// [scores], token_type, [merges], special ids (unk, bos, eos, pad, then the others), add_bos,
// add_sep, add_eos, add_space_prefix, chat template(s). Unset keys are not written (merges
// always for gpt2); an explicitly absent id (negative) is written as i32 -1, so that
// vocab_spec_from_gguf(vocab_to_gguf_kvs(s)) gives s back (named chat templates aside).
std::vector<GgufKv> vocab_to_gguf_kvs(const VocabSpec& spec);

// Reads the tokenizer.ggml.* keys of a GGUF (no defaults applied). Errors name the file and
// key: a missing model or token list, an ill-typed array.
Result<VocabSpec> vocab_spec_from_gguf(const GgufFile& f);

}  // namespace qforge
