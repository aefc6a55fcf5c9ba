#include "engine/vocab.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/log.h"
#include "formats/pretokenizer_registry.h"

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

}  // namespace

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
    // Flags llama.cpp ties to the pre-tokenizer name (an unknown name is refused later, by
    // the pre-tokenizer itself).
    if (const PreTokenizerDef* d = find_pre_tokenizer(v.pre)) {
      v.ignore_merges = d->ignore_merges;
      if (d->add_bos) v.add_bos = true;
      v.clean_spaces = d->clean_spaces;
      if (d->no_bos) v.bos = -1;
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
