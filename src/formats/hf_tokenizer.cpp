#include "formats/hf_tokenizer.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "core/log.h"
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
  return t == "<pad>" || t == "<mask>" || wrapped("<|", "|>") || wrapped("<start_of_", ">") ||
         wrapped("<end_of_", ">");
}

// Replaces SentencePiece's word-boundary mark U+2581 with a space (user-defined tokens are
// matched on raw text).
std::string spaces_for_spm_marks(std::string s) {
  static const std::string mark = "\xe2\x96\x81";
  for (size_t p = s.find(mark); p != std::string::npos; p = s.find(mark, p)) s.replace(p, 3, " ");
  return s;
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;  // SentencePiece only
  std::unordered_map<std::string, int64_t> by_text;
  std::unordered_map<std::string, int64_t> added_by_text;  // added tokens win when resolving
};

// tokenizer_config.json, config.json, generation_config.json -> special-token KVs + flags +
// chat template, appended to kvs.
Status add_special_kvs(const std::string& dir, const HfConfig& cfg, const Vocab& vocab,
                       std::optional<int32_t> spm_unk, std::vector<GgufKv>& kvs) {
  const std::string tc_path = (fs::path(dir) / "tokenizer_config.json").string();
  const std::string gc_path = (fs::path(dir) / "generation_config.json").string();
  QF_TRY(auto tc, read_json_if_exists(tc_path));
  QF_TRY(auto gc, read_json_if_exists(gc_path));
  const int64_t n = static_cast<int64_t>(vocab.tokens.size());

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
  QF_TRY(auto unk, resolve("unk", unk_cfg));
  QF_TRY(auto bos, resolve("bos", cfg.bos_token_id));
  QF_TRY(auto eos, resolve("eos", cfg.eos_token_id));
  QF_TRY(auto pad, resolve("pad", cfg.pad_token_id));
  auto put_id = [&](const char* key, std::optional<int64_t> id) {
    if (id) kvs.emplace_back(key, GgufValue::u32(static_cast<uint32_t>(*id)));
  };
  put_id("tokenizer.ggml.unknown_token_id", unk);
  put_id("tokenizer.ggml.bos_token_id", bos);
  put_id("tokenizer.ggml.eos_token_id", eos);
  put_id("tokenizer.ggml.padding_token_id", pad);

  if (tc) {
    auto ab = tc->find("add_bos_token");
    if (ab != tc->end() && ab->is_boolean())
      kvs.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(ab->get<bool>()));
    auto ae = tc->find("add_eos_token");
    if (ae != tc->end() && ae->is_boolean() && ae->get<bool>())
      kvs.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(true));
  }

  // Chat template: tokenizer_config.json's chat_template (a string, or a list of named
  // templates), else chat_template.jinja beside it.
  std::optional<std::string> tmpl;
  std::vector<std::pair<std::string, std::string>> named;
  if (tc) {
    auto ct = tc->find("chat_template");
    if (ct != tc->end() && ct->is_string()) {
      tmpl = ct->get<std::string>();
    } else if (ct != tc->end() && ct->is_array()) {
      for (const auto& e : *ct) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
            !e["name"].is_string() || !e["template"].is_string())
          return make_error(tc_path, ": chat_template list entries need 'name' and 'template'");
        if (e["name"] == "default")
          tmpl = e["template"].get<std::string>();
        else
          named.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
      }
    }
  }
  if (!tmpl) {
    const std::string jinja = (fs::path(dir) / "chat_template.jinja").string();
    std::error_code ec;
    if (fs::exists(jinja, ec)) {
      QF_TRY(std::string t, read_file_text(jinja));
      tmpl = std::move(t);
    }
  }
  if (tmpl) kvs.emplace_back("tokenizer.chat_template", GgufValue::string(*tmpl));
  if (!named.empty()) {
    std::vector<std::string> names;
    for (auto& [nm, t] : named) {
      kvs.emplace_back("tokenizer.chat_template." + nm, GgufValue::string(t));
      names.push_back(nm);
    }
    kvs.emplace_back("tokenizer.chat_templates", GgufValue::string_array(names));
  }
  return ok_status();
}

// ---------------------------------------------------------------------------------------------
// SentencePiece

Result<std::vector<GgufKv>> load_spm(const std::string& dir, const std::string& path,
                                     const HfConfig& cfg) {
  QF_TRY(MappedFile mf, MappedFile::open(path));
  QF_TRY(SpmModel m, parse_sentencepiece_model(mf.bytes(), path));
  const uint64_t n = cfg.vocab_size;
  if (m.pieces.size() > n)
    return make_error(path, ": ", m.pieces.size(), " pieces but config.json vocab_size is ", n);
  Vocab v;
  for (const auto& p : m.pieces) {
    v.by_text.emplace(p.text, static_cast<int64_t>(v.tokens.size()));
    v.tokens.push_back(p.text);
    v.scores.push_back(p.score);
    v.types.push_back(static_cast<int32_t>(p.type));
  }
  // Rows of the embedding beyond the tokenizer: placeholder tokens.
  for (uint64_t i = m.pieces.size(); i < n; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(i) + "]");
    v.scores.push_back(-1000.0f);
    v.types.push_back(static_cast<int32_t>(TokenType::Unused));
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
    v.types[id] = static_cast<int32_t>(t);
    v.scores[id] = -1000.0f;
    v.tokens[id] = text;
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

  std::vector<GgufKv> kvs;
  kvs.emplace_back("tokenizer.ggml.model", GgufValue::string("llama"));
  kvs.emplace_back("tokenizer.ggml.pre", GgufValue::string("default"));
  kvs.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
  kvs.emplace_back("tokenizer.ggml.scores", GgufValue::f32_array(v.scores));
  kvs.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(v.types));
  std::optional<int32_t> unk = m.unk_id;
  if (!unk)
    for (size_t i = 0; i < m.pieces.size(); ++i)
      if (m.pieces[i].type == TokenType::Unknown) {
        unk = static_cast<int32_t>(i);
        break;
      }
  QF_CHECK(add_special_kvs(dir, cfg, v, unk, kvs));
  return kvs;
}

// ---------------------------------------------------------------------------------------------
// Byte-level BPE (tokenizer.json)

bool has_byte_level(const json& node) {
  if (node.is_object()) {
    auto t = node.find("type");
    if (t != node.end() && *t == "ByteLevel") return true;
    for (const auto& [k, v] : node.items())
      if (has_byte_level(v)) return true;
  } else if (node.is_array()) {
    for (const auto& v : node)
      if (has_byte_level(v)) return true;
  }
  return false;
}

Result<std::vector<GgufKv>> load_bpe(const std::string& dir, const std::string& path,
                                     const HfConfig& cfg) {
  QF_TRY(std::string text, read_file_text(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(path, ": not a valid JSON object");
  auto model = j.find("model");
  if (model == j.end() || !model->is_object()) return make_error(path, ": no 'model' object");
  const std::string mtype = str_field(*model, "type");
  if (mtype != "BPE")
    return make_error(path, ": tokenizer model type '", printable(mtype),
                      "' is not supported (byte-level BPE, or SentencePiece tokenizer.model)");
  const json pre = j.value("pre_tokenizer", json());
  if (!has_byte_level(pre) && !has_byte_level(j.value("decoder", json())))
    return make_error(path, ": BPE tokenizer is not byte-level (no ByteLevel pre-tokenizer or ",
                      "decoder); SentencePiece-style BPE needs tokenizer.model");

  const uint64_t n = cfg.vocab_size;
  std::vector<std::optional<std::string>> by_id(n);
  Vocab v;
  auto vit = model->find("vocab");
  if (vit == model->end() || !vit->is_object() || vit->empty())
    return make_error(path, ": model.vocab missing or empty");
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      return make_error(path, ": vocab entry '", printable(it.key()), "' has no valid id");
    const int64_t id = it.value().get<int64_t>();
    if (static_cast<uint64_t>(id) >= n)
      return make_error(path, ": token id ", id, " ('", printable(it.key()),
                        "') is not below config.json vocab_size ", n);
    if (by_id[id] && *by_id[id] != it.key())
      return make_error(path, ": token id ", id, " is used by both '", printable(*by_id[id]),
                        "' and '", printable(it.key()), "'");
    by_id[id] = it.key();
    v.by_text[it.key()] = id;
  }
  std::vector<bool> added(n, false), added_special(n, false);
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
      by_id[id] = content;
      added[id] = true;
      added_special[id] = bool_field(e, "special", false);
      v.added_by_text[content] = id;
    }
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (!by_id[i]) {
      v.tokens.push_back("[PAD" + std::to_string(i) + "]");
      v.types.push_back(static_cast<int32_t>(TokenType::Unused));
    } else if (added[i]) {
      const bool control = added_special[i] || looks_special(*by_id[i]);
      v.tokens.push_back(control ? *by_id[i] : spaces_for_spm_marks(*by_id[i]));
      v.types.push_back(
          static_cast<int32_t>(control ? TokenType::Control : TokenType::UserDefined));
    } else {
      v.tokens.push_back(*by_id[i]);
      v.types.push_back(static_cast<int32_t>(TokenType::Normal));
    }
  }

  // Merges: "a b" strings, or [a, b] pairs (transformers >= 4.45) whose parts may contain
  // spaces; those are written as U+0120 so that "a b" stays unambiguous.
  std::vector<std::string> merges;
  auto mit = model->find("merges");
  if (mit != model->end() && mit->is_array()) {
    merges.reserve(mit->size());
    for (const auto& m : *mit) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
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
        merges.push_back(std::move(s));
      } else {
        return make_error(path, ": merge #", merges.size(), " is neither \"a b\" nor [a, b]");
      }
    }
  }

  std::string pre_name = "default";
  if (auto p = identify_bpe_pre_tokenizer(pre)) {
    pre_name = *p;
  } else {
    log_warn("convert.tokenizer",
             "pre-tokenizer not recognized; writing 'default' (tokenization may differ)",
             {{"file", path}, {"pre_tokenizer", pre.dump().substr(0, 200)}});
  }

  std::vector<GgufKv> kvs;
  kvs.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
  kvs.emplace_back("tokenizer.ggml.pre", GgufValue::string(pre_name));
  kvs.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
  kvs.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(v.types));
  if (!merges.empty()) kvs.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(merges));
  QF_CHECK(add_special_kvs(dir, cfg, v, std::nullopt, kvs));
  return kvs;
}

// The split regexes of the pre-tokenizers we recognize (as written in tokenizer.json).
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

std::optional<std::string> identify_bpe_pre_tokenizer(const json& pre) {
  if (!pre.is_object()) return std::nullopt;
  const std::string type = str_field(pre, "type");
  if (type == "ByteLevel") {
    const bool use_regex = !pre.contains("use_regex") || pre["use_regex"] == true;
    if (use_regex) return "gpt-2";
    return std::nullopt;
  }
  if (type != "Sequence") return std::nullopt;
  auto list = pre.find("pretokenizers");
  if (list == pre.end() || !list->is_array()) return std::nullopt;
  // A Split on a known regex followed by a ByteLevel without its own regex; or a lone ByteLevel
  // with the GPT-2 regex.
  std::optional<std::string> split;
  bool byte_level_regex = false, byte_level = false, other = false;
  for (const auto& p : *list) {
    const std::string t = str_field(p, "type");
    if (t == "Split") {
      const json pat = p.is_object() ? p.value("pattern", json()) : json();
      std::string rx;
      if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string())
        rx = pat["Regex"].get<std::string>();
      if (split || rx.empty()) return std::nullopt;
      if (rx == kLlama3Regex)
        split = "llama-bpe";
      else if (rx == kQwen2Regex)
        split = "qwen2";
      else
        return std::nullopt;
    } else if (t == "ByteLevel") {
      byte_level = true;
      byte_level_regex = !p.contains("use_regex") || p["use_regex"] == true;
    } else {
      other = true;
    }
  }
  if (other || !byte_level) return std::nullopt;
  if (split && !byte_level_regex) return split;
  if (!split && byte_level_regex) return "gpt-2";
  return std::nullopt;
}

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

Result<std::vector<GgufKv>> load_hf_tokenizer(const std::string& dir, const HfConfig& cfg) {
  const std::string spm = (fs::path(dir) / "tokenizer.model").string();
  const std::string tj = (fs::path(dir) / "tokenizer.json").string();
  std::error_code ec;
  // llama.cpp prefers the SentencePiece model for llama-family folders that ship both.
  if (cfg.arch == "llama" && fs::exists(spm, ec)) return load_spm(dir, spm, cfg);
  if (fs::exists(tj, ec)) return load_bpe(dir, tj, cfg);
  return make_error(dir, ": no tokenizer.json", cfg.arch == "llama" ? " or tokenizer.model" : "");
}

}  // namespace qforge
