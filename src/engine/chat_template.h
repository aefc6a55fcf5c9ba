// Chat templates: the subset of Jinja2 that published tokenizer_config.json templates use,
// rendered exactly as Hugging Face transformers' apply_chat_template does (jinja2 sandboxed
// environment with trim_blocks and lstrip_blocks, loop controls, a trailing newline of the
// source dropped, raise_exception(), tojson with ensure_ascii=False).
//
// Supported: {{ }}, {% %}, {# #}, `-` whitespace control; for (with loop.index/index0/first/
// last/length/revindex, tuple unpacking, `else`, `if` filter), if/elif/else, set (also
// ns.attr and block set), namespace(), macro/call-less macros, break/continue, filter blocks;
// expressions: literals, lists, dicts, tuples, attribute/item access, slicing, arithmetic,
// comparisons, and/or/not, in/not in, `is` tests (defined, undefined, none, string, number,
// integer, boolean, mapping, iterable, sequence, true, false, odd, even, equalto), `~`,
// conditional expressions, filters (trim, length/count, tojson, items, keys, values, join,
// upper, lower, title, capitalize, default/d, first, last, list, string, int, float, abs,
// replace, reverse, sort, unique, selectattr/rejectattr, select/reject, map(attribute=),
// indent, round, safe, e/escape (identity: HF renders without autoescape), string methods
// (startswith, endswith, strip/lstrip/rstrip, split, replace, upper, lower, title, format-less
// join), dict methods (get, items, keys, values), list methods (index-free append on a set list
// is unsupported: templates never mutate).
//
// The template is untrusted text (it comes from a GGUF file): parsing and rendering return
// Result, never throw, and are bounded (nesting depth, loop iterations, output size, macro
// recursion); an error names the template line.
#pragma once

#include <memory>
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
  int max_depth = 64;                      // nesting of blocks and expressions
  int64_t max_steps = 10'000'000;          // evaluation steps (loop iterations, calls, nodes)
  size_t max_output = size_t{64} << 20;    // bytes of rendered text
};

class ChatTemplateProgram;  // the parsed template (opaque)

class ChatTemplate {
 public:
  // Parses a template. Errors: syntax errors ("chat template line 3: expected 'endif'"),
  // constructs outside the subset, nesting deeper than limits.max_depth.
  static Result<ChatTemplate> parse(std::string_view source, ChatTemplateLimits limits = {});

  // Renders with the given variables (a JSON object: messages, add_generation_prompt,
  // bos_token, ...). A raise_exception("msg") in the template gives the Error "msg" verbatim
  // prefixed by "chat template: "; other runtime errors (calling an undefined function,
  // indexing a non-container, limits) name the line.
  Result<std::string> render(const nlohmann::json& vars) const;

 private:
  std::shared_ptr<const ChatTemplateProgram> prog_;
  ChatTemplateLimits limits_;
};

// The variables transformers passes for a conversation: messages, add_generation_prompt,
// bos_token, eos_token (as given; empty strings are passed as such), tools/documents undefined.
nlohmann::json chat_template_vars(const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt, const std::string& bos_token,
                                  const std::string& eos_token);

// Renders a conversation through a GGUF's tokenizer.chat_template, with bos_token/eos_token the
// texts of tok's BOS/EOS tokens ("" when none). Errors: no chat template in the file (naming
// it), the template's own errors.
Result<std::string> apply_gguf_chat_template(const GgufFile& f, const Tokenizer& tok,
                                             const std::vector<ChatMessage>& messages,
                                             bool add_generation_prompt);

}  // namespace qforge
