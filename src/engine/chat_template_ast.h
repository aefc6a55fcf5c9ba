// The parsed form of a chat template (engine/chat_template.cpp): expression and statement
// trees. Internal to the engine.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/chat_template_value.h"

namespace qforge::tmpl {

struct Expr;
using ExprP = std::unique_ptr<Expr>;

enum class EK : uint8_t {
  Lit,     // lit
  Name,    // name
  List,    // a: items
  Tuple,   // a: items
  Dict,    // a: key0, value0, key1, value1, ...
  Attr,    // a[0].name
  Item,    // a[0][a[1]]
  Slice,   // a[0][a[1]:a[2]:a[3]] (null parts allowed)
  Call,    // a[0](a[1..], kw)
  Filter,  // a[0] | name(a[1..], kw)
  Test,    // a[0] is [not] name(a[1..], kw)
  Neg,     // -a[0]
  Pos,     // +a[0]
  Not,     // not a[0]
  And,     // a[0] and a[1]
  Or,      // a[0] or a[1]
  Bin,     // a[0] name a[1], name in + - * / // % ** ~
  Cmp,     // a[0] ops[0] a[1] ops[1] a[2] ... (chained, as in Python)
  Cond,    // a[0] if a[1] else a[2] (a[2] may be null: undefined)
};

struct Expr {
  EK k = EK::Lit;
  int line = 1;
  bool negated = false;  // Test: "is not"
  Value lit;
  std::string name;
  std::vector<ExprP> a;
  std::vector<std::pair<std::string, ExprP>> kw;
  std::vector<std::string> ops;
};

struct Node;
using NodeP = std::unique_ptr<Node>;
using Body = std::vector<NodeP>;

enum class SK : uint8_t {
  Text,         // text
  Output,       // {{ exprs[0] }}
  If,           // exprs[i] -> bodies[i]; bodies[n] (if present) is the else branch
  For,          // for targets in exprs[0] [if exprs[1]]: bodies[0]; else bodies[1]
  Set,          // set name[.attr] = exprs[0]
  SetBlock,     // set name: bodies[0]
  Macro,        // macro name(targets = exprs[i] or null): bodies[0]
  Break,        //
  Continue,     //
  FilterBlock,  // filter exprs[0] (a Filter with a null operand): bodies[0]
  Scope,        // generation / endgeneration (transformers' assistant mask): bodies[0]
};

struct Node {
  SK k = SK::Text;
  int line = 1;
  std::string text;  // Text; Set/SetBlock/Macro name
  std::string attr;  // Set: namespace attribute ("" for a plain name)
  std::vector<std::string> targets;
  std::vector<ExprP> exprs;
  std::vector<Body> bodies;
};

}  // namespace qforge::tmpl
