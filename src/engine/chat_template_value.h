// Values of the chat-template interpreter (engine/chat_template.cpp): Python's object model as
// far as Jinja templates see it — undefined, None, bool, int, float, str, list/tuple, dict
// (insertion-ordered, string keys), namespace() and callables — with Python's truthiness,
// equality, ordering, str() and repr(), and json.dumps(ensure_ascii=False) as transformers'
// tojson filter writes it. Internal to the engine; not a general-purpose API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace qforge::tmpl {

struct Value;
struct Dict;
struct CallArgs;
using NativeFn = std::function<Result<Value>(CallArgs&)>;

struct Value {
  enum class K : uint8_t { Undefined, None, Bool, Int, Float, Str, List, Dict, Ns, Fn };
  K k = K::Undefined;
  bool b = false;
  bool tuple = false;  // a List written as a tuple (only repr differs)
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str; for Undefined, what was looked up (for error messages)
  std::shared_ptr<std::vector<Value>> list;
  std::shared_ptr<Dict> dict;  // Dict and Ns
  std::shared_ptr<const NativeFn> fn;

  static Value undefined(std::string what = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value str(std::string v);
  static Value make_list(std::vector<Value> v, bool is_tuple = false);
  static Value make_dict();
  static Value make_ns();
  static Value make_fn(NativeFn f);

  bool is_undefined() const { return k == K::Undefined; }
  bool is_str() const { return k == K::Str; }
  bool is_list() const { return k == K::List; }
  bool is_dict() const { return k == K::Dict; }
  bool is_num() const { return k == K::Int || k == K::Float || k == K::Bool; }
  bool is_int() const { return k == K::Int || k == K::Bool; }
  double as_double() const { return k == K::Float ? f : static_cast<double>(k == K::Bool ? b : i); }
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Positional i, else keyword `name`, else nullptr.
  const Value* get(size_t i, std::string_view name) const;
};

bool truthy(const Value& v);
bool equal(const Value& a, const Value& b);
// Python's a < b for numbers, strings and lists; an error for other kinds.
Result<bool> less(const Value& a, const Value& b);
// str(v) as Jinja prints it ("" for undefined, "None", "True", Python float repr, list repr).
std::string to_str(const Value& v);
std::string repr(const Value& v);
// json.dumps(v, ensure_ascii=False, indent=indent (< 0: None), sort_keys).
Result<std::string> to_json_text(const Value& v, int indent, bool sort_keys);
std::string py_float_repr(double d);
// Appends Python's json.dumps(s, ensure_ascii=False) of a string (quotes included) to out.
void py_json_string(const std::string& s, std::string& out);

// Values nest at most this deep: deeper structures (only namespace attributes can build them, a
// level per loop iteration) would overflow the stack in repr, tojson or their destructor.
constexpr int kMaxNesting = 200;
Result<Value> from_json(const nlohmann::ordered_json& j, int depth = 0);
// An error when v nests deeper than kMaxNesting - depth; step() is called per value visited.
Status check_nesting(const Value& v, int depth, const std::function<Status()>& step);

// UTF-8 <-> code points (lenient: an invalid byte is one U+FFFD), for len() and slicing.
std::vector<uint32_t> code_points(std::string_view s);
std::string from_code_points(const std::vector<uint32_t>& cps, size_t from, size_t to);

}  // namespace qforge::tmpl
