// UTF-8 helpers for the tokenizers, with llama.cpp's exact (lenient) conventions, and GPT-2's
// byte <-> printable-code-point alphabet used by byte-level BPE vocabularies.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qforge {

// Length of the UTF-8 sequence announced by a lead byte, from its high nibble alone (1 for
// ASCII and for stray continuation bytes). Callers clamp it to the bytes that remain.
inline size_t utf8_seq_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// True when `s` is strictly valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool utf8_is_valid(std::string_view s);

// Decodes like llama.cpp's unicode_cpts_from_utf8: a lead byte with the right number of
// continuation bytes (10xxxxxx) yields its code point (overlong forms and surrogates are not
// rejected); any other byte yields U+FFFD and consumes one byte. Never fails.
void utf8_decode_lenient(std::string_view s, std::vector<uint32_t>& out);

// Appends the UTF-8 encoding of `cpt` (surrogates are encoded structurally, as llama.cpp does;
// values above U+10FFFF, which llama.cpp rejects, append U+FFFD).
void utf8_append(uint32_t cpt, std::string& out);

// GPT-2's reversible byte alphabet: each byte maps to one printable code point (bytes that are
// printable Latin-1 map to themselves, the others to U+0100 and up, in byte order).
struct ByteAlphabet {
  std::array<uint32_t, 256> byte_to_cpt{};
  std::array<std::string, 256> byte_to_utf8;  // UTF-8 of byte_to_cpt
  // Code point -> byte, or -1 for code points outside the alphabet (index < 512 covers all).
  std::array<int16_t, 512> cpt_to_byte{};
  static const ByteAlphabet& get();
};

}  // namespace qforge
