// Chat templates: the subset of Jinja2 that published tokenizer_config.json templates use,
// rendered as Hugging Face transformers' apply_chat_template does: jinja2's sandboxed
// environment with trim_blocks and lstrip_blocks, loop controls, one trailing newline of the
// source dropped, raise_exception(), strftime_now(), tojson as json.dumps(ensure_ascii=False).
//
// Statements: {{ }}, {% %}, {# #}, `-`/`+` whitespace control, raw, if/elif/else, for (loop.index,
// index0, revindex, first, last, length, previtem, nextitem, cycle; tuple unpacking; `if`
// filter; else), break/continue, set (name, ns.attr, block), macro (defaults, keyword args),
// filter blocks, generation blocks. Expressions: literals, lists, dicts, tuples, attribute and
// item access, slices, calls, Python arithmetic, `~`, chained comparisons, in / not in,
// and/or/not, `x if c else y`, filters and tests (chat_template_builtins.cpp lists them),
// string/dict/list methods, namespace(), range(), dict().
// Not supported (an error, never a silent difference): include/extends/import, call blocks,
// recursive loops, *args/**kwargs, % string formatting. Case mapping (upper/lower/title) is
// ASCII-only.
//
// The template is untrusted text (it comes from a GGUF file): parsing and rendering return
// Result, never throw, and are bounded (nesting depth, evaluation steps, output and value
// sizes); an error names the template line.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "engine/tokenizer.h"
#include "formats/gguf.h"

namespace qforge {

struct ChatMessage {
  std::string role, content;
};

struct ChatTemplateLimits {
  int max_depth = 128;                   // nesting of blocks and expressions
  int64_t max_steps = 10'000'000;        // evaluation steps (loop iterations, calls, nodes)
  size_t max_output = size_t{64} << 20;  // bytes of rendered text
};

class ChatTemplateProgram;  // the parsed template (opaque)

class ChatTemplate {
 public:
  // Parses a template. Errors: syntax errors ("chat template line 3: expected 'endif'"),
  // constructs outside the subset, nesting deeper than limits.max_depth.
  static Result<ChatTemplate> parse(std::string_view source, ChatTemplateLimits limits = {});

  // Renders with the given variables (a JSON object: messages, add_generation_prompt,
  // bos_token, ...; ordered, since tojson and items() keep insertion order as Python does).
  // A raise_exception("msg") in the template gives the Error "chat template: msg" (msg
  // verbatim, as transformers' TemplateError carries it); other runtime errors (calling an
  // undefined function, indexing a non-container, limits) read "chat template line N: ...".
  Result<std::string> render(const nlohmann::ordered_json& vars) const;

 private:
  std::shared_ptr<const ChatTemplateProgram> prog_;
  ChatTemplateLimits limits_;
};

// The variables transformers passes for a conversation: messages (role, content),
// (apply_gguf_chat_template adds unk_token and pad_token, the rest of its special-tokens map),
// tools = None, documents = None, add_generation_prompt, bos_token, eos_token (None when the
// tokenizer has none).
nlohmann::ordered_json chat_template_vars(const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt,
                                          const std::optional<std::string>& bos_token,
                                          const std::optional<std::string>& eos_token);

// Renders a conversation through a GGUF's tokenizer.chat_template, with bos_token/eos_token the
// texts of tok's BOS/EOS tokens ("" when none). Errors: no chat template in the file (naming
// it), the template's own errors.
Result<std::string> apply_gguf_chat_template(const GgufFile& f, const Tokenizer& tok,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt);

// A single user turn rendered with the generation prompt and tokenized as llama.cpp does for
// chat: special-token texts in the rendering are parsed as such, and BOS is added (when the
// vocabulary adds one) only if the template did not already write it.
Result<std::vector<int32_t>> encode_chat_prompt(const GgufFile& f, const Tokenizer& tok,
                                                const std::string& user_text);

}  // namespace qforge
