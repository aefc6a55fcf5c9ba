// The chat template of a GGUF file applied to a conversation, and a chat prompt's tokens (kept
// apart from the renderer so that the renderer links without the tokenizer, e.g. for fuzzing).
#include <optional>
#include <utility>

#include "engine/chat_template.h"

namespace qforge {

Result<std::string> apply_gguf_chat_template(const GgufFile& f, const Tokenizer& tok,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt) {
  const GgufValue* t = f.find("tokenizer.chat_template");
  if (!t || !t->as_string())
    return make_error(f.path(),
                      ": no tokenizer.chat_template in the file (a chat prompt needs one)");
  QF_TRY(ChatTemplate ct, ChatTemplate::parse(*t->as_string()));
  const auto text_of = [&tok](int32_t id) -> std::optional<std::string> {
    if (id < 0) return std::nullopt;
    return tok.token_text(id);
  };
  nlohmann::ordered_json vars = chat_template_vars(messages, add_generation_prompt,
                                                   text_of(tok.bos_id()), text_of(tok.eos_id()));
  // transformers also passes the rest of the special-tokens map.
  const std::pair<const char*, int32_t> more[] = {{"unk_token", tok.vocab().unk},
                                                  {"pad_token", tok.vocab().pad}};
  for (const auto& [key, id] : more)
    vars[key] = id >= 0 ? nlohmann::ordered_json(tok.token_text(id)) : nlohmann::ordered_json();
  auto r = ct.render(vars);
  if (!r.ok()) return make_error(f.path(), ": ", r.error().message);
  return r;
}

Result<std::vector<int32_t>> encode_chat_prompt(const GgufFile& f, const Tokenizer& tok,
                                                const std::string& user_text) {
  QF_TRY(std::string text,
         apply_gguf_chat_template(f, tok, {ChatMessage{"user", user_text}}, true));
  std::vector<int32_t> ids = tok.encode(text, false, true);
  if (tok.add_bos() && tok.bos_id() >= 0 && (ids.empty() || ids.front() != tok.bos_id()))
    ids.insert(ids.begin(), tok.bos_id());
  return ids;
}

}  // namespace qforge
