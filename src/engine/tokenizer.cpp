#include "engine/tokenizer.h"

#include <unordered_map>

namespace qforge {

// Placeholder implementation (first commit of the API): loads the token list only.
class TokenizerImpl {
 public:
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> ids;
  std::string pre = "default";
  bool spm = false;
  int32_t bos = -1, eos = -1;
  bool add_bos = false, add_eos = false;
};

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  auto impl = std::make_shared<TokenizerImpl>();
  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  if (!toks || !toks->as_array())
    return make_error(f.path(), ": missing array key tokenizer.ggml.tokens");
  for (const auto& v : toks->as_array()->items) {
    const std::string* s = v.as_string();
    if (!s) return make_error(f.path(), ": tokenizer.ggml.tokens: not a string array");
    impl->ids.emplace(*s, static_cast<int32_t>(impl->tokens.size()));
    impl->tokens.push_back(*s);
  }
  impl->spm = f.get_string_or("tokenizer.ggml.model", "") == "llama";
  impl->pre = f.get_string_or("tokenizer.ggml.pre", "default");
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view, bool, bool) const {
  return {};
}
std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id);
  return out;
}
std::string Tokenizer::token_to_piece(int32_t id) const {
  return token_text(id);
}
const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= n_vocab()) return empty;
  return impl_->tokens[static_cast<size_t>(id)];
}
int32_t Tokenizer::n_vocab() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
int32_t Tokenizer::bos_id() const {
  return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
  return impl_->eos;
}
bool Tokenizer::add_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->add_eos;
}
bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id == impl_->eos;
}
bool Tokenizer::is_spm() const {
  return impl_->spm;
}
const std::string& Tokenizer::pre() const {
  return impl_->pre;
}
bool Tokenizer::is_control(int32_t) const {
  return false;
}
int32_t Tokenizer::find_token(std::string_view text) const {
  auto it = impl_->ids.find(std::string(text));
  return it == impl_->ids.end() ? -1 : it->second;
}

}  // namespace qforge
