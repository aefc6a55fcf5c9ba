// Chat template built-ins (engine/chat_template.cpp): Python operators on template values,
// attribute/item access with Jinja's lookup order, Jinja filters and tests, string/dict/list
// methods and the global functions transformers provides. Internal to the engine.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine/chat_template_value.h"

namespace qforge::tmpl {

// What built-ins need from the interpreter: limits, raise_exception, and calling back into
// filters/tests/callables (map, select, selectattr).
class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual Status step() = 0;                          // counts one evaluation step
  virtual Status check_size(size_t bytes) const = 0;  // a value's size against the limit
  virtual Error raise(std::string msg) = 0;           // raise_exception(msg)
  virtual Result<Value> call(const Value& fn, CallArgs& args) = 0;
  virtual Result<Value> apply_filter(const std::string& name, Value v, CallArgs& args) = 0;
  virtual Result<bool> apply_test(const std::string& name, const Value& v, CallArgs& args) = 0;
  // A namespace() made during the render: the only mutable value, so the only way to build a
  // reference cycle ({% set ns.me = ns %}); the runtime empties them all when the render ends.
  virtual void adopt_namespace(const std::shared_ptr<Dict>& ns) = 0;
};

Result<Value> call_filter(Runtime& rt, const std::string& name, Value v, CallArgs& args);
Result<bool> call_test(Runtime& rt, const std::string& name, const Value& v, CallArgs& args);

// obj.name: dict/str/list methods first, then dict items (Jinja's getattr order);
// undefined when absent; an error on an undefined object.
Result<Value> get_attr(Runtime& rt, const Value& obj, const std::string& name);
// obj[key]: items first, then attributes (Jinja's getitem order).
Result<Value> get_item(Runtime& rt, const Value& obj, const Value& key);
Result<Value> slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// The items a for loop visits: list items, dict keys, string characters, nothing for undefined.
Result<std::vector<Value>> iterate(const Value& v);
// == != < > <= >= in, "not in".
Result<bool> compare(const std::string& op, const Value& l, const Value& r);
Result<Value> unary(const char* op, const Value& v);
// + - * / // % ** ~
Result<Value> binary(Runtime& rt, const std::string& op, const Value& l, const Value& r);

// raise_exception, range, namespace, dict, strftime_now.
void install_builtins(Runtime& rt, const std::function<void(const std::string&, Value)>& set);

}  // namespace qforge::tmpl
