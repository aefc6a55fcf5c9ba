// Tokenizer files of a Hugging Face model folder -> the tokenizer.ggml.* metadata of a GGUF,
// with the keys, value types and order of the reference conversions (llama.cpp conventions):
//   byte-level BPE (tokenizer.json): model "gpt2", pre, tokens, token_type, merges,
//     [unknown_token_id], bos_token_id, eos_token_id, [padding_token_id], add_bos_token,
//     [add_eos_token], [chat_template]
//   SentencePiece (tokenizer.model): model "llama", pre "default", tokens, scores, token_type,
//     then the same special-token keys.
// A llama-family folder with tokenizer.model uses SentencePiece; otherwise tokenizer.json must
// be a byte-level BPE. Special token ids come from tokenizer_config.json (bos_token etc.,
// resolved to ids through the vocabulary), then config.json, then generation_config.json.
// add_bos_token is written when tokenizer_config.json has it; add_eos_token only when true (the
// reference files omit a false one). Token ids past the vocabulary (config vocab_size larger
// than the tokenizer) become "[PAD<id>]" entries of type UNUSED.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"

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
  std::optional<int32_t> unk_id, bos_id, eos_id, pad_id;  // trainer_spec ids (>= 0 only)
};

// Parses tokenizer.model bytes (protobuf, decoded by hand). Validated as untrusted input:
// varints and lengths inside the buffer, every piece has a text, types in 1..6, byte pieces
// spelled <0xHH>, no duplicate pieces, and with byte_fallback all 256 byte pieces present.
Result<SpmModel> parse_sentencepiece_model(std::span<const uint8_t> bytes, const std::string& name);

// Identifies a byte-level BPE pre-tokenizer from tokenizer.json's "pre_tokenizer" value:
// "gpt-2" (ByteLevel with use_regex), "llama-bpe" (Llama-3's split regex), "qwen2" (Qwen2's);
// nullopt when not recognized (the caller warns and writes "default").
std::optional<std::string> identify_bpe_pre_tokenizer(const nlohmann::json& pre_tokenizer);

// Reads the tokenizer files of `dir` and returns the tokenizer.ggml.* KVs in order.
// cfg.vocab_size is the number of tokens written (the embedding's row count).
Result<std::vector<GgufKv>> load_hf_tokenizer(const std::string& dir, const HfConfig& cfg);

}  // namespace qforge
