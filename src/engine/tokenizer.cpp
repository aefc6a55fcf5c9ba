#include "engine/tokenizer.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "engine/pretokenizer.h"
#include "engine/unicode.h"

namespace qforge {

namespace {
constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space
}  // namespace

// Named, not anonymous: TokenizerImpl (declared in the header) holds these types, and a type
// with internal linkage inside one with external linkage is refused in unity builds.
namespace tokenizer_detail {

// A run of bytes being merged: symbols form a doubly linked list over the text; a merged-away
// symbol has n == 0.
struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t start;
  uint32_t n;
};

// A candidate merge of two adjacent symbols. `key` orders the queue: SPM uses the (higher is
// better) score, BPE the (lower is better) rank; ties go to the leftmost pair, as in llama.cpp.
struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  int32_t rank;
  uint32_t size;
};
struct SpmLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};
struct BpeLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  }
};

// Merge table on token ids: (left id, right id) -> (rank, merged id), open addressing. Used when
// every merge's parts and result are tokens (true of real byte-level vocabularies), which makes
// it equivalent to llama.cpp's lookup by text while avoiding string hashing.
class IdMergeTable {
 public:
  void build(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, 0, 0});
    mask_ = cap - 1;
    shift_ = 64 - static_cast<int>(std::countr_zero(cap));
  }
  // Keeps the first rank of a pair, as llama.cpp's map emplace does.
  void insert(int32_t l, int32_t r, int32_t rank, int32_t merged) {
    const uint64_t key = pack(l, r);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, rank, merged};
        return;
      }
    }
  }
  // Rank (or -1) and merged id of a pair.
  int32_t find(int32_t l, int32_t r, int32_t* merged) const {
    const uint64_t key = pack(l, r);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) {
        *merged = slots_[i].merged;
        return slots_[i].rank;
      }
      if (slots_[i].key == kEmpty) return -1;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  // Fibonacci hashing: the top bits of the product depend on every bit of the key.
  size_t hash(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 60;
};

}  // namespace tokenizer_detail
using tokenizer_detail::Bigram;
using tokenizer_detail::BpeLess;
using tokenizer_detail::IdMergeTable;
using tokenizer_detail::SpmLess;
using tokenizer_detail::Symbol;

namespace {
std::string hex2(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", b);
  return buf;
}
}  // namespace

class TokenizerImpl {
 public:
  Vocab vocab;
  std::optional<PreTokenizer> pre;        // byte-level BPE only
  std::vector<std::string> pieces;        // token_to_piece cache
  std::array<int32_t, 256> byte_token{};  // SPM byte fallback (-1: none)
  // SPM: no token has U+2581 right after another character, so text can be merged word by word.
  bool spm_space_split = false;
  // Byte-level BPE on token ids (see IdMergeTable); byte_char_id[b] is the token of byte b's
  // alphabet character (-1: not in the vocabulary, which sends a word to the text path).
  bool id_merges = false;
  IdMergeTable merge_ids;
  std::array<int32_t, 256> byte_char_id{};

  void build_caches();
  void encode(std::string_view text, bool add_special, bool parse_special,
              std::vector<int32_t>& out) const;

 private:
  struct Session;
  void spm_fragment(Session& s, std::string_view text, bool prefix_space,
                    std::vector<int32_t>& out) const;
  void spm_word(Session& s, std::string_view word, std::vector<int32_t>& out) const;
  void spm_merge(Session& s, std::string_view text, std::vector<int32_t>& out) const;
  void bpe_fragment(Session& s, std::string_view text, std::vector<int32_t>& out) const;
  void bpe_word(Session& s, std::string_view word, std::vector<int32_t>& out) const;
  bool bpe_word_ids(Session& s, std::string_view word, std::vector<int32_t>& out) const;
  void bpe_word_text(Session& s, std::string_view word, std::vector<int32_t>& out) const;
};

// Scratch buffers of one encode() call (so that a Tokenizer can be shared between threads).
struct TokenizerImpl::Session {
  std::string text;  // escaped / byte-encoded text being merged
  std::vector<Symbol> symbols;
  std::vector<int32_t> symbol_ids;
  std::vector<Bigram> heap;
  std::string key;
  // Per-call, direct-mapped cache of byte-level BPE results by word (words repeat a lot in real
  // text); sized from the text on first use, so short calls pay nothing for it.
  struct CacheSlot {
    const char* word = nullptr;
    uint32_t len = 0;
    uint32_t off = 0;
    uint32_t n = 0;
  };
  size_t text_size = 0;
  std::vector<CacheSlot> word_cache;
  std::vector<int32_t> cached_ids;

  // The slot for `word`, or null when caching does not pay (short calls, long words).
  CacheSlot* cache_slot(std::string_view word) {
    if (text_size < 512 || word.size() > 64) return nullptr;
    if (word_cache.empty())
      word_cache.resize(std::bit_ceil(std::clamp<size_t>(text_size / 16, 64, 16384)));
    return &word_cache[std::hash<std::string_view>{}(word) & (word_cache.size() - 1)];
  }
  void remember(CacheSlot* slot, std::string_view word, const std::vector<int32_t>& out,
                size_t out_begin) {
    if (!slot || cached_ids.size() >= UINT32_MAX / 2) return;
    *slot = CacheSlot{word.data(), static_cast<uint32_t>(word.size()),
                      static_cast<uint32_t>(cached_ids.size()),
                      static_cast<uint32_t>(out.size() - out_begin)};
    cached_ids.insert(cached_ids.end(), out.begin() + out_begin, out.end());
  }
};

void TokenizerImpl::build_caches() {
  const auto& alpha = ByteAlphabet::get();
  const int32_t n = vocab.n_tokens();
  pieces.assign(static_cast<size_t>(n), std::string());
  std::vector<uint32_t> cpts;
  for (int32_t id = 0; id < n; ++id) {
    const uint32_t attr = vocab.attrs[id];
    const std::string& text = vocab.tokens[id];
    std::string& piece = pieces[id];
    if (attr & (kAttrUnknown | kAttrControl)) continue;
    if (attr & kAttrUserDefined) {
      piece = text;
      continue;
    }
    if (vocab.type == VocabType::Spm) {
      if (attr & kAttrNormal) {
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, kSpace.size(), kSpace) == 0) {
            piece += ' ';
            i += kSpace.size();
          } else {
            piece += text[i++];
          }
        }
      } else if (attr & kAttrByte) {
        // "<0xNN>"; llama.cpp parses the two characters after "<0x".
        unsigned v = 0;
        if (text.size() >= 5 && std::sscanf(text.substr(3, 2).c_str(), "%2x", &v) == 1)
          piece.assign(1, static_cast<char>(v));
      }
    } else if (attr & kAttrNormal) {
      cpts.clear();
      utf8_decode_lenient(text, cpts);
      for (uint32_t c : cpts) {
        if (c < alpha.cpt_to_byte.size() && alpha.cpt_to_byte[c] >= 0) {
          piece += static_cast<char>(alpha.cpt_to_byte[c]);
        } else {  // not a byte-level character: llama.cpp's marker, kept for fidelity
          std::string utf8;
          utf8_append(c, utf8);
          piece += "[UNK_BYTE_0x";
          for (char ch : utf8) piece += hex2(static_cast<uint8_t>(ch));
          piece += text + "]";
        }
      }
    }
  }
  byte_char_id.fill(-1);
  if (vocab.type == VocabType::Bpe) {
    for (int b = 0; b < 256; ++b) byte_char_id[b] = vocab.find(alpha.byte_to_utf8[b]);
    // The id path applies when every merge is (token, token) -> token.
    id_merges = true;
    merge_ids.build(vocab.merge_rank.size());
    for (const auto& [key, rank] : vocab.merge_rank) {
      uint32_t nl = 0;
      std::memcpy(&nl, key.data(), 4);
      const std::string_view body = std::string_view(key).substr(4);
      const int32_t l = vocab.find(body.substr(0, nl));
      const int32_t r = vocab.find(body.substr(nl));
      const int32_t m = vocab.find(body);
      if (l < 0 || r < 0 || m < 0) {
        id_merges = false;
        break;
      }
      merge_ids.insert(l, r, rank, m);
    }
  }
  byte_token.fill(-1);
  if (vocab.type == VocabType::Spm) {
    spm_space_split = true;
    for (const std::string& tok : vocab.tokens) {
      for (size_t k = tok.find(kSpace, 1); k != std::string::npos; k = tok.find(kSpace, k + 1)) {
        if (k < kSpace.size() || tok.compare(k - kSpace.size(), kSpace.size(), kSpace) != 0) {
          spm_space_split = false;
          break;
        }
      }
      if (!spm_space_split) break;
    }
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      int32_t id = vocab.find(buf);
      if (id < 0) id = vocab.find(std::string(1, static_cast<char>(b)));
      byte_token[b] = id;
    }
  }
}

void TokenizerImpl::encode(std::string_view text, bool add_special, bool parse_special,
                           std::vector<int32_t>& out) const {
  // Split control / user-defined / unknown token texts out of the raw text, longest first.
  struct Fragment {
    int32_t token;  // -1: raw text
    size_t off, len;
  };
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t sid : vocab.special_tokens) {
    if (!parse_special && (vocab.attrs[sid] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& st = vocab.tokens[sid];
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = text.substr(f.off, f.len);
      size_t pos = 0;
      for (;;) {
        const size_t m = raw.find(st, pos);
        if (m == std::string_view::npos) break;
        changed = true;
        if (m > pos) next.push_back({-1, f.off + pos, m - pos});
        next.push_back({sid, 0, 0});
        pos = m + st.size();
      }
      if (pos < raw.size()) next.push_back({-1, f.off + pos, raw.size() - pos});
    }
    if (changed) frags.swap(next);
  }

  Session s;
  s.text_size = text.size();
  if (vocab.type == VocabType::Spm) {
    bool prev_special = true;  // the first text fragment gets the dummy prefix
    if (add_special && vocab.add_bos && vocab.bos >= 0) out.push_back(vocab.bos);
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
      } else {
        spm_fragment(s, text.substr(f.off, f.len), vocab.add_space_prefix && prev_special, out);
        prev_special = false;
      }
    }
    if (add_special && vocab.add_eos && vocab.eos >= 0) out.push_back(vocab.eos);
  } else {
    if (add_special && vocab.add_bos && vocab.bos >= 0) out.push_back(vocab.bos);
    for (const Fragment& f : frags) {
      if (f.token >= 0)
        out.push_back(f.token);
      else
        bpe_fragment(s, text.substr(f.off, f.len), out);
    }
    if (add_special && vocab.add_eos && vocab.eos >= 0) out.push_back(vocab.eos);
  }
}

// SentencePiece (llama.cpp's llm_tokenizer_spm): spaces -> U+2581, one symbol per UTF-8
// character (a lead byte's announced length, clamped; stray bytes alone), then repeatedly merge
// the adjacent pair whose concatenation is the highest-scoring token. Leftover symbols that are
// not tokens become <0xNN> byte tokens. (llama.cpp also keeps a "reverse merge" table to
// re-split such symbols, but every merged symbol is a token by construction, so only unmerged
// single characters can miss the vocabulary; they go straight to bytes here.)
void TokenizerImpl::spm_fragment(Session& s, std::string_view raw, bool prefix_space,
                                 std::vector<int32_t>& out) const {
  std::string& t = s.text;
  t.clear();
  t.reserve(raw.size() + raw.size() / 2 + 3);
  if (prefix_space) t += kSpace;
  for (char c : raw) {
    if (c == ' ')
      t += kSpace;
    else
      t += c;
  }
  if (t.size() > UINT32_MAX) t.resize(UINT32_MAX);  // offsets are 32-bit; absurd inputs only
  const std::string_view tv(t);
  if (!spm_space_split) {
    spm_merge(s, tv, out);
    return;
  }
  // Merge word by word. A word starts at a U+2581 symbol that follows a non-U+2581 symbol: no
  // token contains U+2581 after another character (spm_space_split), so no merge can cross
  // such a boundary, and merges on the two sides never compete (their queue order restricted to
  // one side is the same), so the result is identical to merging the whole text at once, with
  // small queues instead of one huge one. Boundaries are taken at symbol starts, so the
  // character segmentation (which invalid bytes can shift) is unchanged too.
  for (auto& slot : s.word_cache) slot = Session::CacheSlot{};  // keys point into s.text
  size_t seg = 0;
  bool prev_space = false;
  for (size_t off = 0; off < tv.size();) {
    const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(tv[off])), tv.size() - off);
    const bool space = len == kSpace.size() && tv.compare(off, len, kSpace) == 0;
    if (space && !prev_space && off > seg) {
      spm_word(s, tv.substr(seg, off - seg), out);
      seg = off;
    }
    prev_space = space;
    off += len;
  }
  if (seg < tv.size()) spm_word(s, tv.substr(seg), out);
}

void TokenizerImpl::spm_word(Session& s, std::string_view word, std::vector<int32_t>& out) const {
  Session::CacheSlot* slot = s.cache_slot(word);
  if (slot && slot->word && slot->len == word.size() &&
      std::memcmp(slot->word, word.data(), word.size()) == 0) {
    out.insert(out.end(), s.cached_ids.begin() + slot->off,
               s.cached_ids.begin() + slot->off + slot->n);
    return;
  }
  const size_t out_begin = out.size();
  spm_merge(s, word, out);
  s.remember(slot, word, out, out_begin);
}

// The merge loop proper, over `t` (escaped text, offsets fit in 32 bits).
void TokenizerImpl::spm_merge(Session& s, std::string_view tv, std::vector<int32_t>& out) const {
  auto& sym = s.symbols;
  sym.clear();
  for (size_t off = 0; off < tv.size();) {
    const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(tv[off])), tv.size() - off);
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back({idx - 1, off + len == tv.size() ? -1 : idx + 1, static_cast<uint32_t>(off),
                   static_cast<uint32_t>(len)});
    off += len;
  }
  auto& heap = s.heap;
  heap.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].n + sym[r].n;
    const int32_t id = vocab.find(tv.substr(sym[l].start, size));
    if (id < 0) return;
    heap.push_back({l, r, vocab.scores[id], 0, size});
    std::push_heap(heap.begin(), heap.end(), SpmLess{});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), SpmLess{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
    const std::string_view piece = tv.substr(sym[i].start, sym[i].n);
    const int32_t id = vocab.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      int32_t bt = byte_token[static_cast<uint8_t>(c)];
      if (bt < 0) bt = vocab.unk;  // llama.cpp would throw here
      if (bt >= 0) out.push_back(bt);
    }
  }
}

// Byte-level BPE (llama.cpp's llm_tokenizer_bpe): pre-tokenize, then per word map bytes to
// GPT-2's alphabet and merge the lowest-ranked adjacent pair until none applies.
void TokenizerImpl::bpe_fragment(Session& s, std::string_view raw,
                                 std::vector<int32_t>& out) const {
  if (utf8_is_valid(raw)) {
    pre->for_each_piece(raw, [&](size_t b, size_t e) { bpe_word(s, raw.substr(b, e - b), out); });
    return;
  }
  // Invalid UTF-8: llama.cpp decodes leniently (bad bytes -> U+FFFD) and re-encodes the code
  // points. PCRE2 needs strict UTF-8, so the regex sees U+FFFD also for the (rare) surrogates
  // that lenient decoding lets through, while words keep their re-encoded bytes.
  std::vector<uint32_t> cpts;
  utf8_decode_lenient(raw, cpts);
  std::string for_regex, words;
  std::vector<uint32_t> regex_off, word_off;  // byte offset of each code point, + end
  for (uint32_t c : cpts) {
    regex_off.push_back(static_cast<uint32_t>(for_regex.size()));
    word_off.push_back(static_cast<uint32_t>(words.size()));
    utf8_append((c >= 0xD800 && c <= 0xDFFF) ? 0xFFFD : c, for_regex);
    utf8_append(c, words);
  }
  regex_off.push_back(static_cast<uint32_t>(for_regex.size()));
  word_off.push_back(static_cast<uint32_t>(words.size()));
  auto to_word = [&](size_t roff) {
    const size_t k = std::lower_bound(regex_off.begin(), regex_off.end(), roff) - regex_off.begin();
    return word_off[k];
  };
  // Words live in a local buffer: keep them out of the per-call cache.
  Session local;  // text_size 0: no cache
  pre->for_each_piece(for_regex, [&](size_t b, size_t e) {
    const uint32_t wb = to_word(b), we = to_word(e);
    bpe_word(local, std::string_view(words).substr(wb, we - wb), out);
  });
}

void TokenizerImpl::bpe_word(Session& s, std::string_view word, std::vector<int32_t>& out) const {
  Session::CacheSlot* slot = s.cache_slot(word);
  if (slot && slot->word && slot->len == word.size() &&
      std::memcmp(slot->word, word.data(), word.size()) == 0) {
    out.insert(out.end(), s.cached_ids.begin() + slot->off,
               s.cached_ids.begin() + slot->off + slot->n);
    return;
  }
  const size_t out_begin = out.size();
  if (!bpe_word_ids(s, word, out)) bpe_word_text(s, word, out);
  s.remember(slot, word, out, out_begin);
}

// The id path: one symbol per byte (each byte is one alphabet character), merged through the
// id table. Returns false (having output nothing) when a byte's character is not a token.
bool TokenizerImpl::bpe_word_ids(Session& s, std::string_view word,
                                 std::vector<int32_t>& out) const {
  if (!id_merges) return false;
  if (vocab.ignore_merges) {
    const auto& alpha = ByteAlphabet::get();
    std::string& t = s.text;
    t.clear();
    for (char c : word) t += alpha.byte_to_utf8[static_cast<uint8_t>(c)];
    const int32_t whole = vocab.find(t);
    if (whole >= 0) {
      out.push_back(whole);
      return true;
    }
  }
  auto& sym = s.symbols;
  auto& ids = s.symbol_ids;
  sym.clear();
  ids.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = byte_char_id[static_cast<uint8_t>(word[i])];
    if (id < 0) return false;
    sym.push_back({i - 1, i + 1 == n ? -1 : i + 1, static_cast<uint32_t>(i), 1});
    ids.push_back(id);
  }
  auto& heap = s.heap;
  heap.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t merged = -1;
    const int32_t rank = merge_ids.find(ids[l], ids[r], &merged);
    if (rank < 0) return;
    heap.push_back({l, r, 0.0f, rank, sym[l].n + sym[r].n});
    std::push_heap(heap.begin(), heap.end(), BpeLess{});
  };
  for (int32_t i = 1; i < n; ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeLess{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    int32_t merged = -1;
    merge_ids.find(ids[b.left], ids[b.right], &merged);
    ids[b.left] = merged;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = n > 0 ? 0 : -1; i != -1; i = sym[i].next) out.push_back(ids[i]);
  return true;
}

// The text path (llama.cpp's algorithm as is): symbols are UTF-8 characters of the byte-encoded
// word, pairs are looked up by text.
void TokenizerImpl::bpe_word_text(Session& s, std::string_view word,
                                  std::vector<int32_t>& out) const {
  const auto& alpha = ByteAlphabet::get();
  std::string& t = s.text;
  t.clear();
  for (char c : word) t += alpha.byte_to_utf8[static_cast<uint8_t>(c)];
  const std::string_view tv(t);

  auto& sym = s.symbols;
  sym.clear();
  if (vocab.ignore_merges && vocab.find(tv) >= 0) {
    sym.push_back({-1, -1, 0, static_cast<uint32_t>(t.size())});
  } else {
    for (size_t off = 0; off < t.size();) {
      const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(t[off])), t.size() - off);
      const auto idx = static_cast<int32_t>(sym.size());
      sym.push_back({idx - 1, off + len == t.size() ? -1 : idx + 1, static_cast<uint32_t>(off),
                     static_cast<uint32_t>(len)});
      off += len;
    }
  }
  auto& heap = s.heap;
  heap.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t rank = vocab.find_merge(tv.substr(sym[l].start, sym[l].n),
                                          tv.substr(sym[r].start, sym[r].n), s.key);
    if (rank < 0) return;
    heap.push_back({l, r, 0.0f, rank, sym[l].n + sym[r].n});
    std::push_heap(heap.begin(), heap.end(), BpeLess{});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeLess{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // A pair is stale once either side changed; sizes only grow, so comparing the combined
    // length is equivalent to llama.cpp's text comparison.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (const Symbol& y : sym) {
    if (y.n == 0) continue;
    const std::string_view piece = tv.substr(y.start, y.n);
    const int32_t id = vocab.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {  // llama.cpp: single-byte tokens where they exist, else nothing
      const int32_t bt = vocab.find(std::string_view(&c, 1));
      if (bt >= 0) out.push_back(bt);
    }
  }
}

Result<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  auto impl = std::make_shared<TokenizerImpl>();
  if (vocab.type == VocabType::Bpe) {
    auto pre = PreTokenizer::create(vocab.pre);
    if (!pre.ok()) return make_error("tokenizer.ggml.pre: ", pre.error().message);
    impl->pre = std::move(pre).value();
  }
  impl->vocab = std::move(vocab);
  impl->build_caches();
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  QF_TRY(Vocab v, Vocab::from_gguf(f));
  return std::move(from_vocab(std::move(v))).context(f.path() + ": ");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  impl_->encode(text, add_special, parse_special, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  bool strip = impl_->vocab.add_space_prefix;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) continue;
    const std::string& p = impl_->pieces[id];
    if (p.empty()) continue;
    if (strip && p[0] == ' ')
      out.append(p, 1);
    else
      out += p;
    strip = false;
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return impl_->pieces[id];
}
const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= n_vocab()) return empty;
  return impl_->vocab.tokens[id];
}
int32_t Tokenizer::n_vocab() const {
  return impl_->vocab.n_tokens();
}
int32_t Tokenizer::bos_id() const {
  return impl_->vocab.bos;
}
int32_t Tokenizer::eos_id() const {
  return impl_->vocab.eos;
}
bool Tokenizer::add_bos() const {
  return impl_->vocab.add_bos && impl_->vocab.bos >= 0;
}
bool Tokenizer::add_eos() const {
  return impl_->vocab.add_eos && impl_->vocab.eos >= 0;
}
bool Tokenizer::is_eog(int32_t id) const {
  const auto& e = impl_->vocab.eog_ids;
  return id >= 0 && std::binary_search(e.begin(), e.end(), id);
}
bool Tokenizer::is_spm() const {
  return impl_->vocab.type == VocabType::Spm;
}
const std::string& Tokenizer::pre() const {
  return impl_->vocab.pre;
}
bool Tokenizer::is_control(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return false;
  return (impl_->vocab.attrs[id] & (kAttrControl | kAttrUnknown | kAttrUnused)) != 0;
}
int32_t Tokenizer::find_token(std::string_view text) const {
  return impl_->vocab.find(text);
}
const Vocab& Tokenizer::vocab() const {
  return impl_->vocab;
}

}  // namespace qforge
