// Chat template source -> statement tree (engine/chat_template_ast.h). Internal to the engine.
#pragma once

#include <string_view>

#include "core/result.h"
#include "engine/chat_template_ast.h"

namespace qforge::tmpl {

// Errors name the line ("line 3: expected 'endif'"); nesting deeper than max_depth is an error.
Result<Body> parse_template(std::string_view source, int max_depth);

}  // namespace qforge::tmpl
