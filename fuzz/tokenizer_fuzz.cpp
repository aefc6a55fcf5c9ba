// libFuzzer target for the tokenizers: any byte string must encode (SentencePiece, and
// byte-level BPE under each pre-tokenizer, with and without special-token parsing) to ids inside
// the vocabulary and terminate; valid UTF-8 must decode back to itself (SPM: unless it holds
// SentencePiece's space mark U+2581 or a special text), and BPE must decode any input to its
// llama.cpp-sanitised form (invalid bytes as U+FFFD). Inputs starting with "GGUF" are also
// loaded as a vocabulary file: tokenizer.ggml.* parsing must fail cleanly or give a tokenizer
// that survives the same checks. The first byte picks the mode. QFORGE_FUZZ_VOCAB=file.gguf adds
// a real vocabulary. Every fixture vocabulary is also written as GGUF KVs and read back
// (formats/vocab_spec.h), so the description carries the same tokenizer both ways; a loaded
// GGUF vocabulary must survive the same round trip. Links qforge_engine (PCRE2).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "formats/gguf.h"
#include "formats/vocab_spec.h"

namespace {

using qforge::Tokenizer;
using qforge::TokenType;
using qforge::VocabSpec;

// The spec written as GGUF KVs (no tensors) and parsed back.
qforge::Result<qforge::GgufFile> as_gguf(const VocabSpec& spec) {
  const auto bytes = qforge::gguf_serialize_header(3, qforge::vocab_to_gguf_kvs(spec), {});
  return qforge::GgufFile::parse(bytes, "fuzz-roundtrip.gguf");
}

Tokenizer build(const VocabSpec& spec) {
  auto v = qforge::Vocab::build(spec, "fuzz");
  if (!v.ok()) std::abort();
  auto t = Tokenizer::from_vocab(std::move(v).value());
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

// `spec` and the tokenizer read back from its GGUF form.
void build_both(const VocabSpec& spec, std::vector<Tokenizer>& out) {
  out.push_back(build(spec));
  auto f = as_gguf(spec);
  if (!f.ok()) std::abort();
  auto t = Tokenizer::from_gguf(*f);
  if (!t.ok()) std::abort();
  out.push_back(std::move(t).value());
}

// A small SentencePiece vocabulary: specials, 256 byte tokens, a few scored pieces; with or
// without the dummy-prefix space (Gemma writes add_space_prefix false).
VocabSpec make_spm(bool space_prefix) {
  VocabSpec s;
  s.model = "llama";
  auto add = [&](std::string t, float score, TokenType type) {
    s.tokens.push_back(std::move(t));
    s.scores.push_back(score);
    s.token_types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, TokenType::Unknown);
  add("<s>", 0, TokenType::Control);
  add("</s>", 0, TokenType::Control);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TokenType::Byte);
  }
  const std::string sp = "\xE2\x96\x81";
  float score = -1;
  for (const char* p : {"a", "b", "e", "t", "h", "th", "the", "he", "ab", "ba", "\xC3\xA9"}) {
    add(p, score, TokenType::Normal);
    add(sp + p, score + 0.5f, TokenType::Normal);
    score -= 0.25f;
  }
  add(sp, -5, TokenType::Normal);
  add(sp + sp, -4, TokenType::Normal);
  add("<user>", 0, TokenType::UserDefined);
  if (!space_prefix) s.add_space_prefix = false;
  return s;
}

// A small byte-level BPE vocabulary: GPT-2's 256 characters plus a few merges.
VocabSpec make_bpe(const char* pre) {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = pre;
  const auto& alpha = qforge::ByteAlphabet::get();
  for (int b = 0; b < 256; ++b) s.tokens.push_back(alpha.byte_to_utf8[b]);
  const std::string G = alpha.byte_to_utf8[' '];
  const std::pair<std::string, std::string> merges[] = {
      {"t", "h"}, {"th", "e"}, {G, "the"}, {"e", "r"}, {G, "a"}, {"i", "n"}, {G, G}, {G + G, G}};
  for (const auto& [l, r] : merges) {
    s.merges.push_back(l + " " + r);
    s.tokens.push_back(l + r);
  }
  s.tokens.push_back("<|endoftext|>");
  s.token_types.assign(s.tokens.size(), static_cast<int32_t>(TokenType::Normal));
  s.token_types.back() = static_cast<int32_t>(TokenType::Control);
  s.eos = static_cast<int64_t>(s.tokens.size() - 1);
  s.add_bos = true;
  s.bos = s.eos;
  s.add_sep = false;
  s.chat_template = "{{ messages }}";
  return s;
}

struct Fixture {
  std::vector<Tokenizer> spm, bpe;
  Fixture() {
    for (bool prefix : {true, false}) build_both(make_spm(prefix), spm);
    for (const char* pre :
         {"gpt-2", "llama-bpe", "qwen2", "gpt-4o", "default", "starcoder", "falcon"})
      build_both(make_bpe(pre), bpe);
    if (const char* path = std::getenv("QFORGE_FUZZ_VOCAB")) {
      auto f = qforge::GgufFile::open(path);
      if (!f.ok()) std::abort();
      auto t = Tokenizer::from_gguf(*f);
      if (!t.ok()) std::abort();
      (t->is_spm() ? spm : bpe).push_back(std::move(t).value());
    }
  }
};

std::string sanitized(std::string_view s) {
  std::vector<uint32_t> cpts;
  qforge::utf8_decode_lenient(s, cpts);
  std::string out;
  for (uint32_t c : cpts) qforge::utf8_append(c, out);
  return out;
}

void check(const Tokenizer& t, std::string_view text, bool add_special, bool parse_special) {
  const auto ids = t.encode(text, add_special, parse_special);
  for (int32_t id : ids)
    if (id < 0 || id >= t.n_vocab()) std::abort();
  for (int32_t id : ids) (void)t.token_to_piece(id);
  const std::string back = t.decode(ids);
  if (parse_special) return;  // control texts may have become control tokens
  if (t.is_spm()) {
    const bool plain = qforge::utf8_is_valid(text) &&
                       text.find("\xE2\x96\x81") == std::string_view::npos &&
                       text.find("<user>") == std::string_view::npos;
    if (plain && back != text) std::abort();
  } else if (back != sanitized(text)) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fx;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool add_special = mode & 1, parse_special = mode & 2;
  if (text.substr(0, 4) == "GGUF") {
    auto f = qforge::GgufFile::parse(std::span<const uint8_t>(data + 1, size - 1), "fuzz.gguf");
    if (f.ok()) {
      auto t = Tokenizer::from_gguf(*f);
      if (!t.ok()) {
        if (t.error().message.empty()) std::abort();
      } else {
        // The description read from the file, written again and re-read, tokenizes alike.
        const auto ids = t->encode("fuzz text \xE2\x96\x81 <s>", true, true);
        auto spec = qforge::vocab_spec_from_gguf(*f);
        if (!spec.ok()) std::abort();
        auto g = as_gguf(*spec);
        if (!g.ok()) std::abort();
        auto t2 = Tokenizer::from_gguf(*g);
        if (!t2.ok() || t2->encode("fuzz text \xE2\x96\x81 <s>", true, true) != ids) std::abort();
      }
    }
    return 0;
  }
  const auto& set = (mode & 4) ? fx.spm : fx.bpe;
  check(set[(mode >> 3) % set.size()], text, add_special, parse_special);
  return 0;
}
