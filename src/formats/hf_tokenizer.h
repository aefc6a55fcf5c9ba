// Tokenizer files of a Hugging Face model folder -> the tokenizer.ggml.* metadata of a GGUF,
// with the keys, value types and order of the reference conversions (llama.cpp conventions):
//   byte-level BPE (tokenizer.json): model "gpt2", pre, tokens, token_type, merges,
//     [unknown_token_id], bos_token_id, eos_token_id, [padding_token_id], add_bos_token,
//     [add_sep_token, add_eos_token], [chat_template]. The pre-tokenizer is recognised by its
//     exact definition (formats/pretokenizer_registry.h); anything else is refused, naming it.
//   SentencePiece (tokenizer.model): model "llama", pre "default", tokens, scores, token_type,
//     then the same special-token keys.
//   SentencePiece-style BPE given only as tokenizer.json (byte_fallback, U+2581 for spaces:
//     Llama-2 / Mistral fine-tunes, Gemma): written as SentencePiece (model "llama") with
//     scores from the merge ranks, so that llama.cpp's SentencePiece tokenizer and ours give
//     HF's ids; add_space_prefix false when the normalizer prepends no U+2581 (Gemma).
// A llama- or gemma-family folder with tokenizer.model uses SentencePiece; otherwise
// tokenizer.json. add_sep/add_eos follow a TemplateProcessing post-processor when there is one
// (gguf-py's reading), tokenizer_config.json's add_*_token overriding. Special token ids come from
// tokenizer_config.json (bos_token etc., resolved to ids through the vocabulary), then config.json,
// then generation_config.json. add_bos_token is written when tokenizer_config.json has it;
// add_eos_token only when true (the reference files omit a false one). Token ids past the
// vocabulary (config vocab_size larger than the tokenizer) become "[PAD<id>]" entries of type
// UNUSED.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/vocab_spec.h"

namespace qforge {

// A parsed SentencePiece ModelProto (the parts a converter needs).
struct SpmPiece {
  std::string text;
  float score = 0;
  TokenType type = TokenType::Normal;
};
struct SpmModel {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // trainer_spec.model_type: 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  bool add_dummy_prefix = true;  // normalizer_spec.add_dummy_prefix (Gemma: false)
  std::optional<int32_t> unk_id, bos_id, eos_id, pad_id;  // trainer_spec ids (>= 0 only)
};

// Parses tokenizer.model bytes (protobuf, decoded by hand). Validated as untrusted input:
// varints and lengths inside the buffer, every piece has a text, types in 1..6, byte pieces
// spelled <0xHH>, no duplicate pieces, and with byte_fallback all 256 byte pieces present.
Result<SpmModel> parse_sentencepiece_model(std::span<const uint8_t> bytes, const std::string& name);

// Reads the tokenizer files of `dir` into the one vocabulary description (formats/vocab_spec.h),
// which the engine's tokenizer can run directly (Vocab::build). cfg.vocab_size is the number of
// tokens (the embedding's row count); cfg.arch picks tokenizer.model over tokenizer.json for
// the SentencePiece families (llama, gemma*); cfg's bos/eos/pad ids are fallbacks.
Result<VocabSpec> load_hf_vocab(const std::string& dir, const HfConfig& cfg);

// tokenizer.json text alone (no tokenizer_config.json or generation_config.json beside it:
// special ids come from cfg only); `name` is used in errors. For fuzzers and tests.
Result<VocabSpec> parse_hf_tokenizer_json(std::string_view text, const std::string& name,
                                          const HfConfig& cfg);

// load_hf_vocab, as the tokenizer.ggml.* KVs in order (vocab_to_gguf_kvs).
Result<std::vector<GgufKv>> load_hf_tokenizer(const std::string& dir, const HfConfig& cfg);

}  // namespace qforge
