#include "engine/vocab.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/log.h"

namespace qforge {

void Vocab::merge_key(std::string_view left, std::string_view right, std::string& out) {
  // Length-prefixed so that no token text (which may contain any byte) can make keys collide.
  const auto n = static_cast<uint32_t>(left.size());
  out.resize(4);
  std::memcpy(out.data(), &n, 4);
  out.append(left);
  out.append(right);
}

int32_t Vocab::find_merge(std::string_view left, std::string_view right,
                          std::string& scratch) const {
  merge_key(left, right, scratch);
  auto it = merge_rank.find(std::string_view(scratch));
  return it == merge_rank.end() ? -1 : it->second;
}

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

uint32_t attr_of(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::Normal:
      return kAttrNormal;
    case TokenType::Unknown:
      return kAttrUnknown;
    case TokenType::Control:
      return kAttrControl;
    case TokenType::UserDefined:
      return kAttrUserDefined;
    case TokenType::Unused:
      return kAttrUnused;
    case TokenType::Byte:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

}  // namespace

Result<VocabSpec> Vocab::spec_from_gguf(const GgufFile& f) {
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
  s.add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix");
  return s;
}

Result<Vocab> Vocab::from_gguf(const GgufFile& f) {
  QF_TRY(VocabSpec spec, spec_from_gguf(f));
  return build(spec, f.path());
}

Result<Vocab> Vocab::build(const VocabSpec& spec, std::string_view origin) {
  Vocab v;
  const size_t n = spec.tokens.size();
  if (n == 0) return make_error(origin, ": key tokenizer.ggml.tokens: empty vocabulary");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return make_error(origin, ": key tokenizer.ggml.tokens: too many tokens (", n, ")");
  if (!spec.scores.empty() && spec.scores.size() != n)
    return make_error(origin, ": key tokenizer.ggml.scores: ", spec.scores.size(), " entries for ",
                      n, " tokens");
  if (!spec.token_types.empty() && spec.token_types.size() != n)
    return make_error(origin, ": key tokenizer.ggml.token_type: ", spec.token_types.size(),
                      " entries for ", n, " tokens");

  // Defaults per model type (llama.cpp's llama_vocab::load).
  v.pre = spec.pre.empty() ? "default" : spec.pre;
  if (spec.model == "llama") {
    v.type = VocabType::Spm;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true;
    v.add_bos = true;
    v.add_eos = false;
  } else if (spec.model == "gpt2") {
    v.type = VocabType::Bpe;
    v.bos = 11, v.eos = 11, v.unk = -1;
    v.clean_spaces = true;
    const std::string& p = v.pre;
    if (is_one_of(p, {"llama3", "llama-v3", "llama-bpe", "falcon3"})) {
      v.ignore_merges = true;
      v.add_bos = true;
    } else if (is_one_of(p, {"qwen2", "deepseek-r1-qwen", "command-r", "smollm"})) {
      v.clean_spaces = false;
    } else if (p == "chatglm-bpe") {
      v.bos = -1;
    }
  } else {
    return make_error(origin, ": key tokenizer.ggml.model: unsupported tokenizer '", spec.model,
                      "' (supported: llama, gpt2)");
  }
  if (spec.add_space_prefix) v.add_space_prefix = *spec.add_space_prefix;

  v.tokens.reserve(n);
  v.scores.assign(n, 0.0f);
  v.attrs.assign(n, kAttrNormal);
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string text = spec.tokens[i];
    if (text.empty()) text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
    auto [it, inserted] = v.token_to_id.emplace(text, static_cast<int32_t>(i));
    if (!inserted)
      return make_error(origin, ": key tokenizer.ggml.tokens: duplicate token text at ids ",
                        it->second, " and ", i);
    v.tokens.push_back(std::move(text));
    if (!spec.scores.empty()) v.scores[i] = spec.scores[i];
    if (!spec.token_types.empty()) v.attrs[i] = attr_of(spec.token_types[i]);
  }

  if (v.type == VocabType::Bpe) {
    v.merge_rank.reserve(spec.merges.size());
    std::string key;
    for (size_t i = 0; i < spec.merges.size(); ++i) {
      const std::string& m = spec.merges[i];
      // Split at the first space after the first byte (a left part may start with a space).
      const size_t pos = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      std::string_view left, right;
      if (pos != std::string::npos) {
        left = std::string_view(m).substr(0, pos);
        right = std::string_view(m).substr(pos + 1);
      }
      merge_key(left, right, key);
      v.merge_rank.emplace(key, static_cast<int32_t>(std::min<size_t>(i, INT32_MAX)));
    }
  }

  // Special ids: a value outside the vocabulary is ignored (with a warning), as llama.cpp does.
  auto set_id = [&](int32_t& id, const std::optional<int64_t>& val, const char* name) {
    if (!val) return;
    if (*val < 0) {
      id = -1;
    } else if (*val >= static_cast<int64_t>(n)) {
      log_warn("tokenizer.bad_special", cat(origin, ": special token id out of range"),
               {{"key", name}, {"id", *val}, {"n_vocab", n}});
    } else {
      id = static_cast<int32_t>(*val);
    }
  };
  set_id(v.bos, spec.bos, "bos_token_id");
  set_id(v.eos, spec.eos, "eos_token_id");
  set_id(v.eot, spec.eot, "eot_token_id");
  set_id(v.eom, spec.eom, "eom_token_id");
  set_id(v.unk, spec.unk, "unknown_token_id");
  set_id(v.sep, spec.sep, "seperator_token_id");
  set_id(v.pad, spec.pad, "padding_token_id");
  set_id(v.mask, spec.mask, "mask_token_id");
  set_id(v.fim_pre, spec.fim_pre, "fim_pre_token_id");
  set_id(v.fim_suf, spec.fim_suf, "fim_suf_token_id");
  set_id(v.fim_mid, spec.fim_mid, "fim_mid_token_id");
  set_id(v.fim_pad, spec.fim_pad, "fim_pad_token_id");
  set_id(v.fim_rep, spec.fim_rep, "fim_rep_token_id");
  set_id(v.fim_sep, spec.fim_sep, "fim_sep_token_id");
  for (int32_t* id : {&v.bos, &v.eos, &v.eot, &v.eom, &v.unk, &v.sep, &v.pad, &v.mask})
    if (*id >= static_cast<int32_t>(n)) *id = -1;  // a type default beyond a small vocabulary
  if (spec.add_bos) v.add_bos = *spec.add_bos;
  if (spec.add_eos) v.add_eos = *spec.add_eos;

  // Special tokens recognised by text (llama.cpp's auto-detection), forced to CONTROL. The
  // first match in id order wins where llama.cpp takes the first in hash-map order.
  auto detect = [&](int32_t& id, std::initializer_list<std::string_view> texts) {
    if (id != -1) return;
    for (std::string_view t : texts) {
      int32_t found = v.find(t);
      if (found >= 0 && (id == -1 || found < id)) id = found;
    }
    if (id != -1) v.attrs[id] |= kAttrControl;
  };
  detect(v.eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
                 "<\xEF\xBD\x9C"
                 "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"});
  detect(v.eom, {"<|eom_id|>"});
  detect(v.fim_pre, {"<|fim_prefix|>", "<fim-prefix>",
                     "<\xEF\xBD\x9C"
                     "fim\xE2\x96\x81"
                     "begin\xEF\xBD\x9C>",
                     "<PRE>"});
  detect(v.fim_suf, {"<|fim_suffix|>", "<fim-suffix>",
                     "<\xEF\xBD\x9C"
                     "fim\xE2\x96\x81"
                     "hole\xEF\xBD\x9C>",
                     "<SUF>"});
  detect(v.fim_mid, {"<|fim_middle|>", "<fim-middle>",
                     "<\xEF\xBD\x9C"
                     "fim\xE2\x96\x81"
                     "end\xEF\xBD\x9C>",
                     "<MID>"});
  detect(v.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<PAD>"});
  detect(v.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"});
  detect(v.fim_sep, {"<|file_sep|>"});

  // End-of-generation set.
  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep, v.eos, v.eot, v.eom})
    if (id != -1) eog.push_back(id);
  for (std::string_view t : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                             "<|endoftext|>", "<|eom_id|>", "<EOT>"}) {
    int32_t id = v.find(t);
    if (id >= 0) {
      eog.push_back(id);
      v.attrs[id] |= kAttrControl;
    }
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  v.eog_ids = std::move(eog);

  // Tokens split out of raw text before tokenizing, longest first (same comparator and input
  // order as llama.cpp, so ties come out in the same order).
  for (int32_t id = 0; id < static_cast<int32_t>(n); ++id)
    if (v.attrs[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      v.special_tokens.push_back(id);
  std::sort(v.special_tokens.begin(), v.special_tokens.end(),
            [&](int32_t a, int32_t b) { return v.tokens[a].size() > v.tokens[b].size(); });
  return v;
}

}  // namespace qforge
