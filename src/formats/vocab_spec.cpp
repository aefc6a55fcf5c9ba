#include "formats/vocab_spec.h"

#include <algorithm>
#include <limits>

namespace qforge {
namespace {

Result<std::vector<std::string>> string_array(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  const GgufArray* a = v ? v->as_array() : nullptr;
  if (!a || a->elem_type != GgufType::STRING)
    return make_error(f.path(), ": key ", key, ": expected an array of strings");
  std::vector<std::string> out;
  out.reserve(a->items.size());
  for (const auto& item : a->items) out.push_back(*item.as_string());
  return out;
}

std::optional<int64_t> opt_id(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  if (auto i = v->as_int()) return *i < 0 ? -1 : *i;
  if (auto u = v->as_uint())
    return *u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? int64_t{-1}
               : static_cast<int64_t>(*u);
  return std::nullopt;
}

std::optional<bool> opt_bool(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  return v ? v->as_bool() : std::nullopt;
}

std::optional<std::string> opt_string(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v || !v->as_string()) return std::nullopt;
  return *v->as_string();
}

}  // namespace

std::vector<GgufKv> vocab_to_gguf_kvs(const VocabSpec& s) {
  std::vector<GgufKv> kvs;
  kvs.emplace_back("tokenizer.ggml.model", GgufValue::string(s.model));
  kvs.emplace_back("tokenizer.ggml.pre", GgufValue::string(s.pre.empty() ? "default" : s.pre));
  kvs.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(s.tokens));
  if (!s.scores.empty()) kvs.emplace_back("tokenizer.ggml.scores", GgufValue::f32_array(s.scores));
  if (!s.token_types.empty())
    kvs.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(s.token_types));
  if (!s.merges.empty() || s.model == "gpt2")  // a gpt2 reader needs the key
    kvs.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(s.merges));
  // Ids as u32 (llama.cpp's type); "explicitly none" as i32 -1, which readers take as none.
  auto put_id = [&](const char* key, const std::optional<int64_t>& id) {
    if (!id) return;
    if (*id < 0)
      kvs.emplace_back(key, GgufValue::i32(-1));
    else if (*id <= std::numeric_limits<uint32_t>::max())
      kvs.emplace_back(key, GgufValue::u32(static_cast<uint32_t>(*id)));
  };
  put_id("tokenizer.ggml.unknown_token_id", s.unk);
  put_id("tokenizer.ggml.bos_token_id", s.bos);
  put_id("tokenizer.ggml.eos_token_id", s.eos);
  put_id("tokenizer.ggml.padding_token_id", s.pad);
  put_id("tokenizer.ggml.eot_token_id", s.eot);
  put_id("tokenizer.ggml.eom_token_id", s.eom);
  put_id("tokenizer.ggml.seperator_token_id", s.sep);  // sic: llama.cpp's spelling
  put_id("tokenizer.ggml.mask_token_id", s.mask);
  put_id("tokenizer.ggml.fim_pre_token_id", s.fim_pre);
  put_id("tokenizer.ggml.fim_suf_token_id", s.fim_suf);
  put_id("tokenizer.ggml.fim_mid_token_id", s.fim_mid);
  put_id("tokenizer.ggml.fim_pad_token_id", s.fim_pad);
  put_id("tokenizer.ggml.fim_rep_token_id", s.fim_rep);
  put_id("tokenizer.ggml.fim_sep_token_id", s.fim_sep);
  auto put_bool = [&](const char* key, const std::optional<bool>& b) {
    if (b) kvs.emplace_back(key, GgufValue::boolean(*b));
  };
  put_bool("tokenizer.ggml.add_bos_token", s.add_bos);
  put_bool("tokenizer.ggml.add_sep_token", s.add_sep);
  put_bool("tokenizer.ggml.add_eos_token", s.add_eos);
  put_bool("tokenizer.ggml.add_space_prefix", s.add_space_prefix);
  if (s.chat_template)
    kvs.emplace_back("tokenizer.chat_template", GgufValue::string(*s.chat_template));
  if (!s.named_chat_templates.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, t] : s.named_chat_templates) {
      kvs.emplace_back("tokenizer.chat_template." + name, GgufValue::string(t));
      names.push_back(name);
    }
    kvs.emplace_back("tokenizer.chat_templates", GgufValue::string_array(names));
  }
  return kvs;
}

Result<VocabSpec> vocab_spec_from_gguf(const GgufFile& f) {
  VocabSpec s;
  const GgufValue* model = f.find("tokenizer.ggml.model");
  if (!model || !model->as_string())
    return make_error(f.path(), ": key tokenizer.ggml.model: missing or not a string");
  s.model = *model->as_string();
  s.pre = f.get_string_or("tokenizer.ggml.pre", "");
  QF_TRY(s.tokens, string_array(f, "tokenizer.ggml.tokens"));
  if (const GgufValue* v = f.find("tokenizer.ggml.scores")) {
    const GgufArray* a = v->as_array();
    if (!a) return make_error(f.path(), ": key tokenizer.ggml.scores: expected an array");
    s.scores.reserve(a->items.size());
    for (const auto& item : a->items) {
      auto x = item.as_float();
      if (!x) return make_error(f.path(), ": key tokenizer.ggml.scores: non-numeric element");
      s.scores.push_back(static_cast<float>(*x));
    }
  }
  if (const GgufValue* v = f.find("tokenizer.ggml.token_type")) {
    const GgufArray* a = v->as_array();
    if (!a) return make_error(f.path(), ": key tokenizer.ggml.token_type: expected an array");
    s.token_types.reserve(a->items.size());
    for (const auto& item : a->items) {
      auto x = item.as_int();
      if (!x) return make_error(f.path(), ": key tokenizer.ggml.token_type: bad element");
      s.token_types.push_back(static_cast<int32_t>(std::clamp<int64_t>(*x, -1, 1000)));
    }
  }
  if (s.model == "gpt2") {
    QF_TRY(s.merges, string_array(f, "tokenizer.ggml.merges"));
  }
  s.bos = opt_id(f, "tokenizer.ggml.bos_token_id");
  s.eos = opt_id(f, "tokenizer.ggml.eos_token_id");
  s.eot = opt_id(f, "tokenizer.ggml.eot_token_id");
  s.eom = opt_id(f, "tokenizer.ggml.eom_token_id");
  s.unk = opt_id(f, "tokenizer.ggml.unknown_token_id");
  s.sep = opt_id(f, "tokenizer.ggml.seperator_token_id");  // sic: llama.cpp's spelling
  s.pad = opt_id(f, "tokenizer.ggml.padding_token_id");
  s.mask = opt_id(f, "tokenizer.ggml.mask_token_id");
  s.fim_pre = opt_id(f, "tokenizer.ggml.fim_pre_token_id");
  if (!s.fim_pre) s.fim_pre = opt_id(f, "tokenizer.ggml.prefix_token_id");
  s.fim_suf = opt_id(f, "tokenizer.ggml.fim_suf_token_id");
  if (!s.fim_suf) s.fim_suf = opt_id(f, "tokenizer.ggml.suffix_token_id");
  s.fim_mid = opt_id(f, "tokenizer.ggml.fim_mid_token_id");
  if (!s.fim_mid) s.fim_mid = opt_id(f, "tokenizer.ggml.middle_token_id");
  s.fim_pad = opt_id(f, "tokenizer.ggml.fim_pad_token_id");
  s.fim_rep = opt_id(f, "tokenizer.ggml.fim_rep_token_id");
  s.fim_sep = opt_id(f, "tokenizer.ggml.fim_sep_token_id");
  s.add_bos = opt_bool(f, "tokenizer.ggml.add_bos_token");
  s.add_eos = opt_bool(f, "tokenizer.ggml.add_eos_token");
  s.add_sep = opt_bool(f, "tokenizer.ggml.add_sep_token");
  s.add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix");
  s.chat_template = opt_string(f, "tokenizer.chat_template");
  return s;
}

}  // namespace qforge
