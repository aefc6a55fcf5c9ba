// A tokenizer vocabulary as llama.cpp understands it: token texts, scores and attributes, BPE
// merge ranks, special token ids and the flags that steer encoding. Built from the one
// vocabulary description (formats/vocab_spec.h), read from GGUF metadata or filled from HF
// tokenizer files by the converter; in both cases llama.cpp's defaults and fix-ups are applied
// (defaults per model type, special ids out of range ignored, end-of-generation tokens detected by
// text and forced to CONTROL).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"
#include "formats/vocab_spec.h"  // VocabSpec, TokenType

namespace qforge {

enum class VocabType { Spm, Bpe };  // tokenizer.ggml.model "llama" / "gpt2"

// Token attributes (bit set), as llama.cpp derives them from token types.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

// Hash for heterogeneous lookup of std::string keys by std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
  VocabType type = VocabType::Spm;
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<uint32_t> attrs;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id;
  // Merge ranks keyed by merge_key(left, right).
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> merge_rank;

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SentencePiece dummy prefix
  bool ignore_merges = false;     // Llama-3: a word that is a token is taken whole
  bool clean_spaces = false;      // llama.cpp's clean_up_tokenization_spaces (decode option)
  std::vector<int32_t> eog_ids;   // sorted
  // Control / user-defined / unknown tokens, longest text first (the order llama.cpp uses to
  // split them out of the text).
  std::vector<int32_t> special_tokens;

  // `origin` names the source (a file path) in error messages.
  static Result<Vocab> build(const VocabSpec& spec, std::string_view origin);
  static Result<Vocab> from_gguf(const GgufFile& f);
  // Reads the tokenizer.ggml.* keys into a spec (no defaults applied): vocab_spec_from_gguf.
  static Result<VocabSpec> spec_from_gguf(const GgufFile& f) { return vocab_spec_from_gguf(f); }

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  // Merge rank of (left, right), or -1.
  int32_t find_merge(std::string_view left, std::string_view right, std::string& scratch) const;
  static void merge_key(std::string_view left, std::string_view right, std::string& out);
};

}  // namespace qforge
