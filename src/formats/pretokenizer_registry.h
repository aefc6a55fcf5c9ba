// The one registry of byte-level BPE pre-tokenizers (tokenizer.ggml.pre): for each GGUF name,
// the regular expressions that cut text into words before the merges (as the engine's
// tokenizer runs them), the vocabulary flags llama.cpp ties to the name, and the exact
// tokenizer.json "pre_tokenizer" definitions the converter recognises as that name.
//
// Expressions are PCRE2 (UTF mode, no UCP): "\s" is spelled out as an explicit class, because
// PCRE2's own \s is ASCII-only. Two white-space sets exist, as in llama.cpp: its hand-written
// GPT-2 / Llama-3 matchers use Python's str.isspace (which includes U+001C..U+001F); the
// expressions it runs through std::regex (and HF's Rust regex) see Unicode White_Space.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace qforge {

struct PreTokenizerDef {
  std::string name;                   // a tokenizer.ggml.pre value
  std::vector<std::string> patterns;  // PCRE2 expressions, applied in order (each re-splits)
  // Vocabulary flags llama.cpp derives from the name (llama_vocab::load).
  bool ignore_merges = false;  // a word that is a token is taken whole (Llama-3)
  bool add_bos = false;        // default of add_bos_token for a gpt2 vocabulary
  bool clean_spaces = true;    // clean_up_tokenization_spaces (decode option)
  bool no_bos = false;         // BOS default cleared (chatglm-bpe)
};

// The definition for a GGUF pre-tokenizer name (canonical names and llama.cpp's aliases), or
// nullptr. "default" is llama.cpp's fallback expression list.
const PreTokenizerDef* find_pre_tokenizer(std::string_view name);

// Every name find_pre_tokenizer accepts, comma-separated (for error messages).
std::string known_pre_tokenizer_names();

// Identifies a byte-level BPE tokenizer.json "pre_tokenizer" value by its exact definition:
//   ByteLevel (use_regex, no prefix space)                        -> "gpt-2"
//   Sequence[Split(Llama-3 regex, Isolated), ByteLevel(no regex)]  -> "llama-bpe"
//   Sequence[Split(Qwen2 regex, Isolated), ByteLevel(no regex)]    -> "qwen2"
//   Sequence[Split(GPT-4o regex, Removed, invert), ByteLevel(no regex)] -> "gpt-4o"
//   Sequence[Digits(individual), ByteLevel(use_regex)]             -> "starcoder"
// nullopt for anything else (the caller refuses it, naming describe_hf_pre_tokenizer()).
std::optional<std::string> identify_hf_pre_tokenizer(const nlohmann::json& pre_tokenizer);

// A one-line summary of a pre_tokenizer value for error messages, e.g.
// Sequence[Split(Regex "\p{N}+", Isolated), ByteLevel(use_regex=false)] (long regexes cut).
std::string describe_hf_pre_tokenizer(const nlohmann::json& pre_tokenizer);

}  // namespace qforge
