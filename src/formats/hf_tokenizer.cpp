#include "formats/hf_tokenizer.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "core/log.h"
#include "formats/pretokenizer_registry.h"
#include "formats/untrusted_text.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Protobuf wire format (only what ModelProto needs).

struct PbField {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;             // wire 0
  std::span<const uint8_t> bytes;  // wire 2 (and the raw 4/8 bytes of wire 5/1)
};

class PbReader {
 public:
  PbReader(std::span<const uint8_t> b, const std::string& what) : b_(b), what_(what) {}
  bool done() const { return pos_ >= b_.size(); }

  Result<PbField> next() {
    PbField f;
    QF_TRY(uint64_t key, varint());
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    if (f.number == 0 || (key >> 3) > 0x1fffffff)
      return make_error(what_, ": bad protobuf field number at byte ", pos_);
    switch (f.wire) {
      case 0: {
        QF_TRY(f.varint, varint());
        break;
      }
      case 1:
      case 5: {
        const size_t n = f.wire == 1 ? 8 : 4;
        if (b_.size() - pos_ < n) return make_error(what_, ": truncated protobuf field");
        f.bytes = b_.subspan(pos_, n);
        pos_ += n;
        break;
      }
      case 2: {
        QF_TRY(uint64_t n, varint());
        if (n > b_.size() - pos_)
          return make_error(what_, ": protobuf field ", f.number, " of ", n,
                            " bytes runs past the end");
        f.bytes = b_.subspan(pos_, n);
        pos_ += n;
        break;
      }
      default:
        return make_error(what_, ": unsupported protobuf wire type ", f.wire, " (field ", f.number,
                          ")");
    }
    return f;
  }

 private:
  Result<uint64_t> varint() {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) return make_error(what_, ": truncated protobuf varint");
      const uint8_t c = b_[pos_++];
      r |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return r;
    }
    return make_error(what_, ": protobuf varint longer than 10 bytes");
  }
  std::span<const uint8_t> b_;
  const std::string& what_;
  size_t pos_ = 0;
};

std::optional<int> parse_byte_piece(std::string_view s) {
  // "<0xHH>" with upper- or lower-case hex digits
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return std::nullopt;
  int v = 0;
  for (char c : s.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return std::nullopt;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

Result<std::optional<json>> read_json_if_exists(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<json>();
  QF_TRY(std::string text, read_file_text(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(path, ": not a valid JSON object");
  return std::optional<json>(std::move(j));
}

// Lookups that never throw on an unexpected JSON type (the input is untrusted).
std::string str_field(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
bool bool_field(const json& o, const char* key, bool def) {
  if (!o.is_object()) return def;
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() ? it->get<bool>() : def;
}

// "bos_token": "<s>" or {"content": "<s>", ...}
std::optional<std::string> token_text(const json& cfg, const std::string& key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

std::optional<int64_t> json_token_id(const json& cfg, const std::string& key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  const json* v = &*it;
  if (v->is_array() && !v->empty()) v = &(*v)[0];
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<int64_t>();
  return std::nullopt;
}

// Tokens whose text marks them as control tokens even when not flagged special.
bool looks_special(std::string_view t) {
  auto wrapped = [&](std::string_view a, std::string_view b) {
    return t.size() >= a.size() + b.size() && t.substr(0, a.size()) == a &&
           t.substr(t.size() - b.size()) == b;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wrapped("<start_of_", ">") ||
         wrapped("<end_of_", ">") || wrapped("<unused", ">");
}

// Replaces SentencePiece's word-boundary mark U+2581 with a space (user-defined tokens are
// matched on raw text).
std::string spaces_for_spm_marks(std::string s) {
  static const std::string mark = "\xe2\x96\x81";
  for (size_t p = s.find(mark); p != std::string::npos; p = s.find(mark, p)) s.replace(p, 3, " ");
  return s;
}

struct HfVocab {
  std::unordered_map<std::string, int64_t> by_text;
  std::unordered_map<std::string, int64_t> added_by_text;  // added tokens win when resolving
};

// Which add_*_token flags a tokenizer.json post-processor implies (gguf-py's reading of a
// simple TemplateProcessing: "<bos> $A" -> add_bos, "$A <eos>" -> add_eos, a separator
// between $A and $B of a pair -> add_sep). `templated` tells whether one was found.
struct PostProcessorFlags {
  bool templated = false;
  std::optional<bool> add_bos, add_eos, add_sep;
};

std::string special_id_of(const json& entry) {
  if (!entry.is_object()) return {};
  auto st = entry.find("SpecialToken");
  return st != entry.end() ? str_field(*st, "id") : std::string();
}

PostProcessorFlags read_post_processor(const json& tokenizer, const std::optional<json>& tc) {
  PostProcessorFlags f;
  const json pp = tokenizer.value("post_processor", json());
  if (!pp.is_object()) return f;
  const json* tp = nullptr;
  if (str_field(pp, "type") == "TemplateProcessing") tp = &pp;
  auto procs = pp.find("processors");
  if (!tp && procs != pp.end() && procs->is_array())
    for (const auto& p : *procs)
      if (str_field(p, "type") == "TemplateProcessing") tp = &p;
  if (!tp) return f;
  f.templated = true;
  auto text_of = [&](const char* key) {
    return tc ? token_text(*tc, key).value_or("") : std::string();
  };
  std::string bos = text_of("bos_token"), eos = text_of("eos_token");
  const std::string sep = text_of("sep_token"), cls = text_of("cls_token");
  const json single = tp->value("single", json::array());
  const json pair = tp->value("pair", json::array());
  std::string first, last;
  if (single.is_array() && single.size() > 1) {
    first = special_id_of(single.front());
    last = special_id_of(single.back());
    if (!tc) {  // without tokenizer_config.json the template names them
      bos = first;
      eos = last;
    }
    if (!first.empty()) f.add_bos = first == bos || first == cls;
    if (!last.empty()) f.add_eos = last == eos;
  }
  if (!pair.is_array() || pair.empty()) return f;
  size_t b = (!first.empty() && special_id_of(pair.front()) == first) ? 1 : 0;
  size_t e = (!last.empty() && special_id_of(pair.back()) == last) ? pair.size() - 1 : pair.size();
  if (e < b + 3) return f;  // no middle between $A and $B
  auto seq_id = [](const json& x) {
    return x.is_object() && x.contains("Sequence") ? str_field(x["Sequence"], "id") : "";
  };
  if (seq_id(pair[b]) != "A" || seq_id(pair[e - 1]) != "B") return f;
  bool add_sep = false;
  const std::string mid = special_id_of(pair[b + 1]);
  if (!mid.empty() && (mid == sep || mid == eos) && last.empty()) add_sep = true;
  if (e - b == 4) {
    const std::string mid2 = special_id_of(pair[b + 2]);
    if (!mid2.empty() && (mid2 == sep || mid2 == eos)) add_sep = true;
  }
  f.add_sep = add_sep;
  return f;
}

// The chat template(s) of tokenizer_config.json (a string, or a list of named templates), else
// chat_template.jinja beside it.
Status read_chat_templates(const std::string& dir, const std::string& tc_path,
                           const std::optional<json>& tc, VocabSpec& spec) {
  if (tc) {
    auto ct = tc->find("chat_template");
    if (ct != tc->end() && ct->is_string()) {
      spec.chat_template = ct->get<std::string>();
    } else if (ct != tc->end() && ct->is_array()) {
      for (const auto& e : *ct) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
            !e["name"].is_string() || !e["template"].is_string())
          return make_error(tc_path, ": chat_template list entries need 'name' and 'template'");
        if (e["name"] == "default")
          spec.chat_template = e["template"].get<std::string>();
        else
          spec.named_chat_templates.emplace_back(e["name"].get<std::string>(),
                                                 e["template"].get<std::string>());
      }
    }
  }
  if (!spec.chat_template && !dir.empty()) {
    const std::string jinja = (fs::path(dir) / "chat_template.jinja").string();
    std::error_code ec;
    if (fs::exists(jinja, ec)) {
      QF_TRY(std::string t, read_file_text(jinja));
      spec.chat_template = std::move(t);
    }
  }
  return ok_status();
}

// tokenizer_config.json, config.json, generation_config.json (and tokenizer.json's
// post-processor, when given) -> special-token ids, add_* flags and chat template of `spec`.
Status add_specials(const std::string& dir, const HfConfig& cfg, const HfVocab& vocab,
                    std::optional<int32_t> spm_unk, const json* tokenizer, VocabSpec& spec) {
  const std::string tc_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string gc_path = (fs::path(dir) / "generation_config.json").string();
  std::optional<json> tc, gc;
  if (!dir.empty()) {
    QF_TRY(tc, read_json_if_exists(tc_path));
    QF_TRY(gc, read_json_if_exists(gc_path));
  }
  const auto n = static_cast<int64_t>(spec.tokens.size());

  auto resolve = [&](const std::string& typ,
                     std::optional<int64_t> from_config) -> Result<std::optional<int64_t>> {
    std::optional<int64_t> id;
    if (tc) {
      if (auto text = token_text(*tc, typ + "_token")) {
        if (auto a = vocab.added_by_text.find(*text); a != vocab.added_by_text.end())
          id = a->second;
        else if (auto v = vocab.by_text.find(*text); v != vocab.by_text.end())
          id = v->second;
      }
    }
    if (!id) id = from_config;
    if (!id && gc) id = json_token_id(*gc, typ + "_token_id");
    if (id && (*id < 0 || *id >= n))
      return make_error(dir, ": ", typ, " token id ", *id, " is outside the vocabulary of ", n,
                        " tokens");
    return id;
  };
  std::optional<int64_t> unk_cfg;
  if (spm_unk) unk_cfg = *spm_unk;
  QF_TRY(spec.unk, resolve("unk", unk_cfg));
  QF_TRY(spec.bos, resolve("bos", cfg.bos_token_id));
  QF_TRY(spec.eos, resolve("eos", cfg.eos_token_id));
  QF_TRY(spec.pad, resolve("pad", cfg.pad_token_id));
  // A pad id that only config.json names and that is an ordinary text token is a config-class
  // default (transformers 5 writes Phi3Config's 32000, from Phi-3-mini's 32k vocabulary, into
  // every Phi-3 config): written, llama.cpp would treat that text token as special and drop it
  // from output. Only tokenizer files or an added token make a pad id.
  const bool pad_named_by_tokenizer = tc && token_text(*tc, "pad_token").has_value();
  if (spec.pad && !pad_named_by_tokenizer) {
    bool added = false;
    for (const auto& [text, id] : vocab.added_by_text) added = added || id == *spec.pad;
    if (!added) {
      log_warn("convert.pad_ignored", cat(dir, ": pad_token_id ", *spec.pad,
                                          " is an ordinary token; no padding token is written"));
      spec.pad.reset();
    }
  }

  // add_*_token: from a TemplateProcessing post-processor, overridden by tokenizer_config.json.
  // Without a template, add_bos is written when tokenizer_config.json has it and add_eos only
  // when true (the reference conversions omit a false one).
  const PostProcessorFlags pp =
      tokenizer ? read_post_processor(*tokenizer, tc) : PostProcessorFlags{};
  spec.add_bos = pp.add_bos;
  spec.add_sep = pp.add_sep;
  spec.add_eos = pp.add_eos;
  if (tc) {
    auto ab = tc->find("add_bos_token");
    if (ab != tc->end() && ab->is_boolean()) spec.add_bos = ab->get<bool>();
    auto ae = tc->find("add_eos_token");
    if (ae != tc->end() && ae->is_boolean() && (pp.templated || ae->get<bool>()))
      spec.add_eos = ae->get<bool>();
  }
  return read_chat_templates(dir, tc_path, tc, spec);
}

// ---------------------------------------------------------------------------------------------
// SentencePiece

Result<VocabSpec> load_spm(const std::string& dir, const std::string& path, const HfConfig& cfg) {
  QF_TRY(MappedFile mf, MappedFile::open(path));
  QF_TRY(SpmModel m, parse_sentencepiece_model(mf.bytes(), path));
  const uint64_t n = cfg.vocab_size;
  if (m.pieces.size() > n)
    return make_error(path, ": ", m.pieces.size(), " pieces but config.json vocab_size is ", n);
  VocabSpec spec;
  HfVocab v;
  for (const auto& p : m.pieces) {
    v.by_text.emplace(p.text, static_cast<int64_t>(spec.tokens.size()));
    spec.tokens.push_back(p.text);
    spec.scores.push_back(p.score);
    spec.token_types.push_back(static_cast<int32_t>(p.type));
  }
  // Rows of the embedding beyond the tokenizer: placeholder tokens.
  for (uint64_t i = m.pieces.size(); i < n; ++i) {
    spec.tokens.push_back("[PAD" + std::to_string(i) + "]");
    spec.scores.push_back(-1000.0f);
    spec.token_types.push_back(static_cast<int32_t>(TokenType::Unused));
  }

  // Tokens added on top of the SentencePiece model (added_tokens.json, and
  // tokenizer_config.json's added_tokens_decoder) replace the pieces at their ids.
  auto add_token = [&](int64_t id, std::string text, bool special) {
    if (id < 0 || static_cast<uint64_t>(id) >= n) {
      log_warn("convert.tokenizer", "added token id outside the vocabulary; ignored",
               {{"id", id}, {"token", text}});
      return;
    }
    TokenType t = TokenType::UserDefined;
    if (special || looks_special(text))
      t = TokenType::Control;
    else
      text = spaces_for_spm_marks(text);
    spec.token_types[id] = static_cast<int32_t>(t);
    spec.scores[id] = -1000.0f;
    spec.tokens[id] = text;
    v.added_by_text[text] = id;
  };
  QF_TRY(auto added, read_json_if_exists((fs::path(dir) / "added_tokens.json").string()));
  if (added)
    for (auto it = added->begin(); it != added->end(); ++it)
      if (it.value().is_number_integer()) add_token(it.value().get<int64_t>(), it.key(), false);
  QF_TRY(auto tc, read_json_if_exists((fs::path(dir) / "tokenizer_config.json").string()));
  if (tc && tc->contains("added_tokens_decoder") && (*tc)["added_tokens_decoder"].is_object()) {
    for (const auto& [k, d] : (*tc)["added_tokens_decoder"].items()) {
      char* end = nullptr;
      const long long id = std::strtoll(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || !d.is_object() || !d.contains("content") ||
          !d["content"].is_string())
        return make_error(dir, "/tokenizer_config.json: bad added_tokens_decoder entry '",
                          printable(k), "'");
      const bool special = d.contains("special") && d["special"].is_boolean() && d["special"];
      add_token(id, d["content"].get<std::string>(), special);
    }
  }

  spec.model = "llama";
  spec.pre = "default";
  // SentencePiece's dummy prefix is llama.cpp's add_space_prefix (default true: written only
  // when off, as for Gemma, so that the reference files keep their keys).
  if (!m.add_dummy_prefix) spec.add_space_prefix = false;
  std::optional<int32_t> unk = m.unk_id;
  if (!unk)
    for (size_t i = 0; i < m.pieces.size(); ++i)
      if (m.pieces[i].type == TokenType::Unknown) {
        unk = static_cast<int32_t>(i);
        break;
      }
  QF_CHECK(add_specials(dir, cfg, v, unk, nullptr, spec));
  return spec;
}

// ---------------------------------------------------------------------------------------------
// BPE (tokenizer.json)

bool has_type(const json& node, std::string_view type) {
  if (node.is_object()) {
    auto t = node.find("type");
    if (t != node.end() && t->is_string() && *t == type) return true;
    for (const auto& [k, v] : node.items())
      if (has_type(v, type)) return true;
  } else if (node.is_array()) {
    for (const auto& v : node)
      if (has_type(v, type)) return true;
  }
  return false;
}

// One entry of model.vocab / added_tokens, before types are assigned.
struct BpeEntry {
  std::optional<std::string> text;
  bool added = false, special = false, normalized = false;
};

// model.vocab and added_tokens -> entries by id (config.json's vocab_size of them).
Status read_bpe_entries(const std::string& path, const json& j, const json& model, uint64_t n,
                        std::vector<BpeEntry>& by_id, HfVocab& v) {
  by_id.assign(n, BpeEntry{});
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object() || vit->empty())
    return make_error(path, ": model.vocab missing or empty");
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      return make_error(path, ": vocab entry '", printable(it.key()), "' has no valid id");
    const int64_t id = it.value().get<int64_t>();
    if (static_cast<uint64_t>(id) >= n)
      return make_error(path, ": token id ", id, " ('", printable(it.key()),
                        "') is not below config.json vocab_size ", n);
    if (by_id[id].text && *by_id[id].text != it.key())
      return make_error(path, ": token id ", id, " is used by both '", printable(*by_id[id].text),
                        "' and '", printable(it.key()), "'");
    by_id[id].text = it.key();
    v.by_text[it.key()] = id;
  }
  auto at = j.find("added_tokens");
  if (at != j.end() && at->is_array()) {
    for (const auto& e : *at) {
      if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() ||
          !e.contains("content") || !e["content"].is_string())
        return make_error(path, ": added_tokens entries need 'id' and 'content'");
      const int64_t id = e["id"].get<int64_t>();
      const std::string content = e["content"].get<std::string>();
      if (id < 0 || static_cast<uint64_t>(id) >= n)
        return make_error(path, ": added token '", printable(content), "' has id ", id,
                          ", not below config.json vocab_size ", n);
      by_id[id] = BpeEntry{content, true, bool_field(e, "special", false),
                           bool_field(e, "normalized", !bool_field(e, "special", false))};
      v.added_by_text[content] = id;
    }
  }
  return ok_status();
}

// Merges: "a b" strings, or [a, b] pairs (transformers >= 4.45) whose parts may contain
// spaces; those are written as U+0120 so that "a b" stays unambiguous. `pairs` receives the
// parts as given (for SentencePiece-style scores).
Status read_merges(const std::string& path, const json& model, std::vector<std::string>& merges,
                   std::vector<std::pair<std::string, std::string>>* pairs) {
  auto mit = model.find("merges");
  if (mit == model.end() || !mit->is_array()) return ok_status();
  merges.reserve(mit->size());
  for (const auto& m : *mit) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      if (pairs) {
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos)
          return make_error(path, ": merge #", merges.size(), " '", printable(s), "' has no space");
        pairs->emplace_back(s.substr(0, sp), s.substr(sp + 1));
      }
      merges.push_back(s);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      std::string s;
      for (int k = 0; k < 2; ++k) {
        if (k) s += ' ';
        for (char c : m[k].get<std::string>()) {
          if (c == ' ')
            s += "\xc4\xa0";  // U+0120
          else
            s += c;
        }
      }
      if (pairs) pairs->emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      merges.push_back(std::move(s));
    } else {
      return make_error(path, ": merge #", merges.size(), " is neither \"a b\" nor [a, b]");
    }
  }
  return ok_status();
}

// Byte-level BPE: GGUF model "gpt2" with the pre-tokenizer named by its exact definition.
Result<VocabSpec> byte_level_vocab(const std::string& dir, const std::string& path, const json& j,
                                   const json& model, const HfConfig& cfg) {
  const json norm = j.value("normalizer", json());
  // NFC changes nothing on NFC text, which is what llama.cpp assumes; anything else would
  // change the text before splitting in a way the GGUF cannot say.
  if (!norm.is_null() && str_field(norm, "type") != "NFC")
    return make_error(path, ": byte-level BPE normalizer '", printable(str_field(norm, "type")),
                      "' is not supported (none or NFC)");
  const json pre = j.value("pre_tokenizer", json());
  const auto pre_name = identify_hf_pre_tokenizer(pre);
  if (!pre_name)
    return make_error(path, ": pre-tokenizer not recognised: ", describe_hf_pre_tokenizer(pre),
                      " (known: ByteLevel; Split with the Llama-3, Qwen2 or GPT-4o regex + "
                      "ByteLevel; Digits + ByteLevel)");
  std::vector<BpeEntry> by_id;
  HfVocab v;
  QF_CHECK(read_bpe_entries(path, j, model, cfg.vocab_size, by_id, v));
  VocabSpec spec;
  for (uint64_t i = 0; i < by_id.size(); ++i) {
    const BpeEntry& e = by_id[i];
    if (!e.text) {
      spec.tokens.push_back("[PAD" + std::to_string(i) + "]");
      spec.token_types.push_back(static_cast<int32_t>(TokenType::Unused));
    } else if (e.added) {
      const bool control = e.special || looks_special(*e.text);
      spec.tokens.push_back(control ? *e.text : spaces_for_spm_marks(*e.text));
      spec.token_types.push_back(
          static_cast<int32_t>(control ? TokenType::Control : TokenType::UserDefined));
    } else {
      spec.tokens.push_back(*e.text);
      spec.token_types.push_back(static_cast<int32_t>(TokenType::Normal));
    }
  }
  QF_CHECK(read_merges(path, model, spec.merges, nullptr));
  spec.model = "gpt2";
  spec.pre = *pre_name;
  QF_CHECK(add_specials(dir, cfg, v, std::nullopt, &j, spec));
  return spec;
}

// The SentencePiece conventions of a tokenizer.json BPE without ByteLevel: spaces become U+2581
// (normalizer Replace, or Metaspace), optionally with one U+2581 prepended (Prepend, or
// Metaspace's prepend_scheme "always"), and no other splitting. Returns add_space_prefix, or
// nullopt when the definition is something else.
std::optional<bool> spm_style_prefix(const json& norm, const json& pre) {
  const std::string mark = "\xe2\x96\x81";
  auto is_replace = [&](const json& x) {
    return str_field(x, "type") == "Replace" && x.contains("pattern") &&
           str_field(x["pattern"], "String") == " " && str_field(x, "content") == mark;
  };
  auto is_prepend = [&](const json& x) {
    return str_field(x, "type") == "Prepend" && str_field(x, "prepend") == mark;
  };
  // A Split on " " after the normalizer has replaced every " " finds nothing to split.
  const bool pre_noop =
      pre.is_null() ||
      (str_field(pre, "type") == "Split" && pre.contains("pattern") &&
       str_field(pre["pattern"], "String") == " " &&
       str_field(pre, "behavior") == "MergedWithPrevious" && !bool_field(pre, "invert", false));
  if (str_field(norm, "type") == "Replace" && is_replace(norm) && pre_noop) return false;
  if (str_field(norm, "type") == "Sequence" && pre_noop) {
    const json list = norm.value("normalizers", json());
    if (list.is_array() && list.size() == 2 && is_prepend(list[0]) && is_replace(list[1]))
      return true;
  }
  if (norm.is_null() && str_field(pre, "type") == "Metaspace" &&
      str_field(pre, "replacement") == mark && str_field(pre, "prepend_scheme") == "always" &&
      !bool_field(pre, "split", true))
    return true;
  return std::nullopt;
}

// SentencePiece-style BPE given only as tokenizer.json (Llama-2 / Mistral fine-tunes, Gemma):
// written as a SentencePiece vocabulary (model "llama") whose scores come from the merge ranks:
// the token a merge produces scores -(rank of its first merge), so that merging the
// highest-scoring adjacent pair (llama.cpp's SentencePiece tokenizer) is merging the
// lowest-ranked pair (HF's BPE). Added tokens: special ones CONTROL; the others USER_DEFINED,
// with U+2581 as spaces where HF matches them on normalized text.
Result<VocabSpec> spm_style_vocab(const std::string& dir, const std::string& path, const json& j,
                                  const json& model, const HfConfig& cfg, bool space_prefix) {
  std::vector<BpeEntry> by_id;
  HfVocab v;
  QF_CHECK(read_bpe_entries(path, j, model, cfg.vocab_size, by_id, v));
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, std::string>> pairs;
  QF_CHECK(read_merges(path, model, merges, &pairs));
  VocabSpec spec;
  const auto n = by_id.size();
  std::vector<float> rank_score(n, 1.0f);  // 1: no merge produces the token
  for (size_t r = 0; r < pairs.size(); ++r) {
    auto it = v.by_text.find(pairs[r].first + pairs[r].second);
    if (it != v.by_text.end() && rank_score[it->second] > 0)
      rank_score[it->second] = -static_cast<float>(r);
  }
  const auto unreachable = -static_cast<float>(pairs.size() + 1);
  for (size_t i = 0; i < n; ++i) {
    const BpeEntry& e = by_id[i];
    if (!e.text) {
      spec.tokens.push_back("[PAD" + std::to_string(i) + "]");
      spec.scores.push_back(-1000.0f);
      spec.token_types.push_back(static_cast<int32_t>(TokenType::Unused));
    } else if (e.added) {
      const bool control = e.special || looks_special(*e.text);
      spec.tokens.push_back(control || !e.normalized ? *e.text : spaces_for_spm_marks(*e.text));
      spec.scores.push_back(0.0f);
      spec.token_types.push_back(
          static_cast<int32_t>(control ? TokenType::Control : TokenType::UserDefined));
    } else if (parse_byte_piece(*e.text)) {
      spec.tokens.push_back(*e.text);
      spec.scores.push_back(0.0f);
      spec.token_types.push_back(static_cast<int32_t>(TokenType::Byte));
    } else {
      spec.tokens.push_back(*e.text);
      spec.scores.push_back(rank_score[i] > 0 ? unreachable : rank_score[i]);
      spec.token_types.push_back(static_cast<int32_t>(TokenType::Normal));
    }
  }
  spec.model = "llama";
  spec.pre = "default";
  if (!space_prefix) spec.add_space_prefix = false;  // true is the SentencePiece default
  std::optional<int32_t> unk;
  if (auto u = v.by_text.find(str_field(model, "unk_token")); u != v.by_text.end())
    unk = static_cast<int32_t>(u->second);
  QF_CHECK(add_specials(dir, cfg, v, unk, &j, spec));
  return spec;
}

// tokenizer.json text -> vocabulary; `dir` holds the side files (none when empty).
Result<VocabSpec> bpe_from_text(const std::string& dir, const std::string& path,
                                std::string_view text, const HfConfig& cfg) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(path, ": not a valid JSON object");
  auto model = j.find("model");
  if (model == j.end() || !model->is_object()) return make_error(path, ": no 'model' object");
  const std::string mtype = str_field(*model, "type");
  if (mtype != "BPE")
    return make_error(path, ": tokenizer model type '", printable(mtype),
                      "' is not supported (byte-level BPE, or SentencePiece tokenizer.model)");
  const json pre = j.value("pre_tokenizer", json());
  if (has_type(pre, "ByteLevel") || has_type(j.value("decoder", json()), "ByteLevel"))
    return byte_level_vocab(dir, path, j, *model, cfg);
  if (!bool_field(*model, "byte_fallback", false))
    return make_error(path, ": BPE tokenizer is neither byte-level (no ByteLevel pre-tokenizer or ",
                      "decoder) nor SentencePiece-style (byte_fallback)");
  if (bool_field(*model, "ignore_merges", false) ||
      !str_field(*model, "continuing_subword_prefix").empty() ||
      !str_field(*model, "end_of_word_suffix").empty())
    return make_error(path,
                      ": SentencePiece-style BPE with ignore_merges, a subword prefix or a "
                      "word suffix is not supported");
  const json norm = j.value("normalizer", json());
  const auto prefix = spm_style_prefix(norm, pre);
  if (!prefix)
    return make_error(path, ": SentencePiece-style BPE with normalizer ",
                      norm.is_null() ? std::string("none") : printable(str_field(norm, "type")),
                      " and pre-tokenizer ", describe_hf_pre_tokenizer(pre),
                      " is not recognised (known: Replace ' ' -> U+2581 with or without Prepend "
                      "U+2581; Metaspace always, no split)");
  return spm_style_vocab(dir, path, j, *model, cfg, *prefix);
}

Result<VocabSpec> load_bpe(const std::string& dir, const std::string& path, const HfConfig& cfg) {
  QF_TRY(std::string text, read_file_text(path));
  return bpe_from_text(dir, path, text, cfg);
}

}  // namespace

Result<SpmModel> parse_sentencepiece_model(std::span<const uint8_t> bytes,
                                           const std::string& name) {
  SpmModel m;
  PbReader top(bytes, name);
  std::set<std::string_view> seen;
  std::vector<bool> have_byte(256, false);
  while (!top.done()) {
    QF_TRY(PbField f, top.next());
    if (f.number == 1) {  // SentencePiece
      if (f.wire != 2) return make_error(name, ": piece #", m.pieces.size(), ": bad wire type");
      SpmPiece p;
      bool has_text = false;
      PbReader pr(f.bytes, name);
      while (!pr.done()) {
        QF_TRY(PbField g, pr.next());
        if (g.number == 1 && g.wire == 2) {
          p.text.assign(reinterpret_cast<const char*>(g.bytes.data()), g.bytes.size());
          has_text = true;
        } else if (g.number == 2 && g.wire == 5) {
          std::memcpy(&p.score, g.bytes.data(), 4);
        } else if (g.number == 3 && g.wire == 0) {
          if (g.varint < 1 || g.varint > 6)
            return make_error(name, ": piece #", m.pieces.size(), ": unknown type ", g.varint);
          p.type = static_cast<TokenType>(g.varint);
        } else if (g.number <= 3) {
          return make_error(name, ": piece #", m.pieces.size(), ": field ", g.number,
                            " has the wrong wire type");
        }
      }
      if (!has_text || p.text.empty())
        return make_error(name, ": piece #", m.pieces.size(), " has no text");
      if (p.type == TokenType::Byte) {
        auto b = parse_byte_piece(p.text);
        if (!b)
          return make_error(name, ": byte piece #", m.pieces.size(), " '", printable(p.text),
                            "' is not of the form <0xHH>");
        have_byte[*b] = true;
      }
      m.pieces.push_back(std::move(p));
      if (m.pieces.size() > (1u << 24)) return make_error(name, ": more than 2^24 pieces");
    } else if (f.number == 3 && f.wire == 2) {  // NormalizerSpec
      PbReader nr(f.bytes, name);
      while (!nr.done()) {
        QF_TRY(PbField g, nr.next());
        if (g.number == 3 && g.wire == 0) m.add_dummy_prefix = g.varint != 0;
      }
    } else if (f.number == 2 && f.wire == 2) {  // TrainerSpec
      PbReader tr(f.bytes, name);
      while (!tr.done()) {
        QF_TRY(PbField g, tr.next());
        if (g.wire != 0) continue;
        const auto as_id = [&]() -> std::optional<int32_t> {
          const auto v = static_cast<int32_t>(static_cast<uint32_t>(g.varint));
          if (v < 0) return std::nullopt;
          return v;
        };
        switch (g.number) {
          case 3:
            m.model_type = static_cast<int>(g.varint);
            break;
          case 35:
            m.byte_fallback = g.varint != 0;
            break;
          case 40:
            m.unk_id = as_id();
            break;
          case 41:
            m.bos_id = as_id();
            break;
          case 42:
            m.eos_id = as_id();
            break;
          case 43:
            m.pad_id = as_id();
            break;
          default:
            break;
        }
      }
    }
  }
  if (m.pieces.empty()) return make_error(name, ": no pieces (not a SentencePiece model?)");
  for (const auto& p : m.pieces)
    if (!seen.insert(p.text).second)
      return make_error(name, ": piece '", printable(p.text), "' occurs twice");
  if (m.byte_fallback)
    for (int b = 0; b < 256; ++b)
      if (!have_byte[b])
        return make_error(name, ": byte_fallback is set but byte piece <0x",
                          "0123456789ABCDEF"[b >> 4], "0123456789ABCDEF"[b & 15], "> is missing");
  for (auto* id : {&m.unk_id, &m.bos_id, &m.eos_id, &m.pad_id})
    if (*id && static_cast<size_t>(**id) >= m.pieces.size())
      return make_error(name, ": trainer_spec special id ", **id, " is not below the ",
                        m.pieces.size(), " pieces");
  return m;
}

Result<VocabSpec> load_hf_vocab(const std::string& dir, const HfConfig& cfg) {
  const std::string spm = (fs::path(dir) / "tokenizer.model").string();
  const std::string tj = (fs::path(dir) / "tokenizer.json").string();
  std::error_code ec;
  // llama.cpp prefers the SentencePiece model for the families that ship one (Llama, Mistral,
  // Gemma) when a folder has both.
  const bool spm_family = cfg.arch == "llama" || cfg.arch.rfind("gemma", 0) == 0;
  if (spm_family && fs::exists(spm, ec)) return load_spm(dir, spm, cfg);
  if (fs::exists(tj, ec)) return load_bpe(dir, tj, cfg);
  return make_error(dir, ": no tokenizer.json", spm_family ? " or tokenizer.model" : "");
}

Result<VocabSpec> parse_hf_tokenizer_json(std::string_view text, const std::string& name,
                                          const HfConfig& cfg) {
  return bpe_from_text("", name, text, cfg);
}

Result<std::vector<GgufKv>> load_hf_tokenizer(const std::string& dir, const HfConfig& cfg) {
  QF_TRY(VocabSpec spec, load_hf_vocab(dir, cfg));
  return vocab_to_gguf_kvs(spec);
}

}  // namespace qforge
