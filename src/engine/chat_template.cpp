// Chat template interpreter: walks the tree from chat_template_parser with Jinja2's semantics
// (scoping of for loops and macros, undefined values, Python operators); filters, tests and
// methods live in chat_template_builtins.cpp.
#include "engine/chat_template.h"

#include <cmath>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "engine/chat_template_builtins.h"
#include "engine/chat_template_parser.h"

namespace qforge {

class ChatTemplateProgram {
 public:
  tmpl::Body body;
};

namespace tmpl {
namespace {

enum class Flow : uint8_t { Normal, Break, Continue };

class Interp final : public Runtime {
 public:
  explicit Interp(const ChatTemplateLimits& lim) : lim_(lim) { scopes_.emplace_back(); }
  ~Interp() override {
    for (const auto& ns : namespaces_) ns->items.clear();  // breaks any reference cycle
  }
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;

  void set_global(const std::string& k, Value v) { scopes_[0][k] = std::move(v); }
  Result<std::string> run(const Body& body) {
    auto r = exec(body);
    if (raised_) return make_error("chat template: ", *raised_);
    if (!r.ok()) return make_error("chat template ", r.error().message);
    return std::move(out_);
  }

  // Runtime (for builtins)
  Status step() override {
    if (++steps_ > lim_.max_steps) return make_error("evaluation step limit exceeded");
    return {};
  }
  Status check_size(size_t n) const override {
    if (n > lim_.max_output) return make_error("value larger than ", lim_.max_output, " bytes");
    return {};
  }
  Error raise(std::string msg) override {
    raised_ = msg;
    return Error{std::move(msg)};
  }
  Result<Value> call(const Value& fn, CallArgs& args) override {
    if (fn.k != Value::K::Fn) return make_error("'", repr(fn), "' is not callable");
    QF_CHECK(step());
    return (*fn.fn)(args);
  }
  Result<Value> apply_filter(const std::string& name, Value v, CallArgs& args) override {
    return call_filter(*this, name, std::move(v), args);
  }
  Result<bool> apply_test(const std::string& name, const Value& v, CallArgs& args) override {
    return call_test(*this, name, v, args);
  }
  void adopt_namespace(const std::shared_ptr<Dict>& ns) override { namespaces_.push_back(ns); }

 private:
  struct Depth {
    int& d;
    explicit Depth(int& x) : d(x) { ++d; }
    ~Depth() { --d; }
  };
  static Error at(int line, const Error& e) {
    if (e.message.starts_with("line ")) return e;
    return make_error("line ", line, ": ", e.message);
  }

  Result<Flow> exec(const Body& body);
  Result<Flow> exec_node(const Node& n);
  Result<Flow> exec_for(const Node& n);
  Status exec_set(const Node& n);
  Status emit(const std::string& s) {
    if (out_.size() + s.size() > lim_.max_output)
      return make_error("rendered text larger than ", lim_.max_output, " bytes");
    out_ += s;
    return {};
  }
  Result<std::string> capture(const Body& body) {
    std::string saved;
    saved.swap(out_);
    auto r = exec(body);
    out_.swap(saved);
    if (!r.ok()) return r.error();
    return saved;
  }
  Value make_macro(const Node& n);

  Result<Value> eval(const Expr& e);
  Result<Value> eval_inner(const Expr& e);
  Result<Value> eval_call(const Expr& e);
  Result<Value> eval_cmp(const Expr& e);
  Result<CallArgs> eval_args(const Expr& e, size_t first);
  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (auto f = it->find(name); f != it->end()) return f->second;
    return Value::undefined(cat("'", name, "' is undefined"));
  }

  const ChatTemplateLimits& lim_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string out_;
  std::optional<std::string> raised_;
  std::vector<std::shared_ptr<Dict>> namespaces_;
  int64_t steps_ = 0;
  int depth_ = 0;
};

Result<Flow> Interp::exec(const Body& body) {
  for (const NodeP& n : body) {
    QF_TRY(Flow f, exec_node(*n));
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Result<Flow> Interp::exec_node(const Node& n) {
  Depth d(depth_);
  if (depth_ > lim_.max_depth) return at(n.line, make_error("recursion too deep"));
  if (Status s = step(); !s.ok()) return at(n.line, s.error());
  switch (n.k) {
    case SK::Text:
      QF_CHECK(emit(n.text));
      return Flow::Normal;
    case SK::Output: {
      QF_TRY(Value v, eval(*n.exprs[0]));
      if (Status s = emit(to_str(v)); !s.ok()) return at(n.line, s.error());
      return Flow::Normal;
    }
    case SK::If:
      for (size_t i = 0; i < n.exprs.size(); ++i) {
        QF_TRY(Value c, eval(*n.exprs[i]));
        if (truthy(c)) return exec(n.bodies[i]);
      }
      if (n.bodies.size() > n.exprs.size()) return exec(n.bodies.back());
      return Flow::Normal;
    case SK::For:
      return exec_for(n);
    case SK::Set:
      QF_CHECK(exec_set(n));
      return Flow::Normal;
    case SK::SetBlock: {
      QF_TRY(std::string s, capture(n.bodies[0]));
      scopes_.back()[n.text] = Value::str(std::move(s));
      return Flow::Normal;
    }
    case SK::Macro:
      scopes_.back()[n.text] = make_macro(n);
      return Flow::Normal;
    case SK::Break:
      return Flow::Break;
    case SK::Continue:
      return Flow::Continue;
    case SK::FilterBlock: {
      QF_TRY(std::string s, capture(n.bodies[0]));
      // The chain's innermost operand (null) stands for the block's text.
      std::vector<const Expr*> chain;
      for (const Expr* f = n.exprs[0].get(); f; f = f->a[0].get()) chain.push_back(f);
      Value v = Value::str(std::move(s));
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        QF_TRY(CallArgs args, eval_args(**it, 1));
        auto r = apply_filter((*it)->name, std::move(v), args);
        if (!r.ok()) return at(n.line, r.error());
        v = std::move(*r);
      }
      QF_CHECK(emit(to_str(v)));
      return Flow::Normal;
    }
    case SK::Scope:
      return exec(n.bodies[0]);
  }
  return Flow::Normal;
}

Status Interp::exec_set(const Node& n) {
  QF_TRY(Value v, eval(*n.exprs[0]));
  if (n.attr.empty()) {
    scopes_.back()[n.text] = std::move(v);
    return {};
  }
  Value ns = lookup(n.text);
  if (ns.k != Value::K::Ns)
    return at(n.line, make_error("cannot assign attribute on non-namespace object"));
  if (Status s = check_nesting(v, 1, [this] { return step(); }); !s.ok())
    return at(n.line, s.error());
  ns.dict->set(n.attr, std::move(v));
  return {};
}

Value loop_object(const std::vector<Value>& items, size_t i, Runtime& rt) {
  Value loop = Value::make_dict();
  Dict& d = *loop.dict;
  const auto n = static_cast<int64_t>(items.size());
  const auto k = static_cast<int64_t>(i);
  d.set("index0", Value::integer(k));
  d.set("index", Value::integer(k + 1));
  d.set("revindex0", Value::integer(n - k - 1));
  d.set("revindex", Value::integer(n - k));
  d.set("first", Value::boolean(i == 0));
  d.set("last", Value::boolean(k == n - 1));
  d.set("length", Value::integer(n));
  d.set("depth", Value::integer(1));
  d.set("depth0", Value::integer(0));
  d.set("previtem", i > 0 ? items[i - 1] : Value::undefined("'loop.previtem' is undefined"));
  d.set("nextitem", k + 1 < n ? items[i + 1] : Value::undefined("'loop.nextitem' is undefined"));
  d.set("cycle", Value::make_fn([k, &rt](CallArgs& a) -> Result<Value> {
          (void)rt;
          if (a.pos.empty()) return make_error("no items for cycling given");
          return a.pos[static_cast<size_t>(k) % a.pos.size()];
        }));
  return loop;
}

Result<Flow> Interp::exec_for(const Node& n) {
  QF_TRY(Value seq, eval(*n.exprs[0]));
  auto items_r = iterate(seq);
  if (!items_r.ok()) return at(n.line, items_r.error());
  std::vector<Value> items = std::move(*items_r);
  const auto bind = [&](std::unordered_map<std::string, Value>& scope,
                        const Value& item) -> Status {
    if (n.targets.size() == 1) {
      scope[n.targets[0]] = item;
      return {};
    }
    QF_TRY(std::vector<Value> parts, iterate(item));
    if (parts.size() != n.targets.size())
      return make_error("cannot unpack ", parts.size(), " values into ", n.targets.size());
    for (size_t t = 0; t < parts.size(); ++t) scope[n.targets[t]] = parts[t];
    return {};
  };
  if (n.exprs.size() > 1) {  // {% for x in xs if cond %}: filter before loop.* is computed
    std::vector<Value> kept;
    for (const Value& item : items) {
      scopes_.emplace_back();
      Status b = bind(scopes_.back(), item);
      auto c = b.ok() ? eval(*n.exprs[1]) : Result<Value>(b.error());
      scopes_.pop_back();
      if (!c.ok()) return at(n.line, c.error());
      if (truthy(*c)) kept.push_back(item);
    }
    items = std::move(kept);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (Status s = step(); !s.ok()) return at(n.line, s.error());
    scopes_.emplace_back();
    scopes_.back()["loop"] = loop_object(items, i, *this);
    Status b = bind(scopes_.back(), items[i]);
    auto f = b.ok() ? exec(n.bodies[0]) : Result<Flow>(at(n.line, b.error()));
    scopes_.pop_back();
    if (!f.ok()) return f.error();
    if (*f == Flow::Break) break;
  }
  if (items.empty() && n.bodies.size() > 1) return exec(n.bodies[1]);
  return Flow::Normal;
}

// A macro call runs its body with the template's top-level variables, its parameters and
// nothing of the caller's loops (Jinja's macro scoping), and returns the rendered text.
Value Interp::make_macro(const Node& n) {
  const Node* node = &n;
  return Value::make_fn([this, node](CallArgs& a) -> Result<Value> {
    if (a.pos.size() > node->targets.size())
      return make_error("macro '", node->text, "' takes not more than ", node->targets.size(),
                        " argument(s)");
    std::unordered_map<std::string, Value> frame;
    for (size_t i = 0; i < node->targets.size(); ++i) {
      const Value* v = a.get(i, node->targets[i]);
      if (v) {
        frame[node->targets[i]] = *v;
      } else if (node->exprs[i]) {
        QF_TRY(Value d, eval(*node->exprs[i]));
        frame[node->targets[i]] = std::move(d);
      } else {
        frame[node->targets[i]] = Value::undefined(cat("'", node->targets[i], "' is undefined"));
      }
    }
    std::vector<std::unordered_map<std::string, Value>> saved(scopes_.begin() + 1, scopes_.end());
    scopes_.resize(1);
    scopes_.push_back(std::move(frame));
    auto r = capture(node->bodies[0]);
    scopes_.resize(1);
    for (auto& s : saved) scopes_.push_back(std::move(s));
    if (!r.ok()) return r.error();
    return Value::str(std::move(*r));
  });
}

Result<Value> Interp::eval(const Expr& e) {
  Depth d(depth_);
  if (depth_ > lim_.max_depth) return at(e.line, make_error("recursion too deep"));
  if (Status s = step(); !s.ok()) return at(e.line, s.error());
  auto r = eval_inner(e);
  if (!r.ok()) return at(e.line, r.error());
  return r;
}

Result<CallArgs> Interp::eval_args(const Expr& e, size_t first) {
  CallArgs args;
  for (size_t i = first; i < e.a.size(); ++i) {
    QF_TRY(Value v, eval(*e.a[i]));
    args.pos.push_back(std::move(v));
  }
  for (const auto& [k, x] : e.kw) {
    QF_TRY(Value v, eval(*x));
    args.kw.emplace_back(k, std::move(v));
  }
  return args;
}

Result<Value> Interp::eval_call(const Expr& e) {
  QF_TRY(Value fn, eval(*e.a[0]));
  if (fn.is_undefined()) return make_error(fn.s.empty() ? "call of an undefined value" : fn.s);
  QF_TRY(CallArgs args, eval_args(e, 1));
  return call(fn, args);
}

Result<Value> Interp::eval_cmp(const Expr& e) {
  QF_TRY(Value left, eval(*e.a[0]));
  for (size_t i = 0; i < e.ops.size(); ++i) {
    QF_TRY(Value right, eval(*e.a[i + 1]));
    QF_TRY(bool ok, compare(e.ops[i], left, right));
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Result<Value> Interp::eval_inner(const Expr& e) {
  switch (e.k) {
    case EK::Lit:
      return e.lit;
    case EK::Name:
      return lookup(e.name);
    case EK::List:
    case EK::Tuple: {
      std::vector<Value> items;
      for (const ExprP& x : e.a) {
        QF_TRY(Value v, eval(*x));
        items.push_back(std::move(v));
      }
      return Value::make_list(std::move(items), e.k == EK::Tuple);
    }
    case EK::Dict: {
      Value d = Value::make_dict();
      for (size_t i = 0; i + 1 < e.a.size(); i += 2) {
        QF_TRY(Value k, eval(*e.a[i]));
        if (!k.is_str()) return make_error("only string keys are supported in dict literals");
        QF_TRY(Value v, eval(*e.a[i + 1]));
        d.dict->set(k.s, std::move(v));
      }
      return d;
    }
    case EK::Attr: {
      QF_TRY(Value obj, eval(*e.a[0]));
      return get_attr(*this, obj, e.name);
    }
    case EK::Item: {
      QF_TRY(Value obj, eval(*e.a[0]));
      QF_TRY(Value key, eval(*e.a[1]));
      return get_item(*this, obj, key);
    }
    case EK::Slice: {
      QF_TRY(Value obj, eval(*e.a[0]));
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.a[static_cast<size_t>(i) + 1]) {
          QF_TRY(parts[i], eval(*e.a[static_cast<size_t>(i) + 1]));
        } else {
          parts[i] = Value::none();
        }
      return slice(obj, parts[0], parts[1], parts[2]);
    }
    case EK::Call:
      return eval_call(e);
    case EK::Filter: {
      QF_TRY(Value v, eval(*e.a[0]));
      QF_TRY(CallArgs args, eval_args(e, 1));
      return apply_filter(e.name, std::move(v), args);
    }
    case EK::Test: {
      QF_TRY(Value v, eval(*e.a[0]));
      QF_TRY(CallArgs args, eval_args(e, 1));
      QF_TRY(bool r, apply_test(e.name, v, args));
      return Value::boolean(r != e.negated);
    }
    case EK::Neg:
    case EK::Pos: {
      QF_TRY(Value v, eval(*e.a[0]));
      return unary(e.k == EK::Neg ? "-" : "+", v);
    }
    case EK::Not: {
      QF_TRY(Value v, eval(*e.a[0]));
      return Value::boolean(!truthy(v));
    }
    case EK::And:
    case EK::Or: {
      QF_TRY(Value l, eval(*e.a[0]));
      if (truthy(l) == (e.k == EK::Or)) return l;
      return eval(*e.a[1]);
    }
    case EK::Bin: {
      QF_TRY(Value l, eval(*e.a[0]));
      QF_TRY(Value r, eval(*e.a[1]));
      return binary(*this, e.name, l, r);
    }
    case EK::Cmp:
      return eval_cmp(e);
    case EK::Cond: {
      QF_TRY(Value c, eval(*e.a[1]));
      if (truthy(c)) return eval(*e.a[0]);
      if (e.a[2]) return eval(*e.a[2]);
      return Value::undefined("the conditional expression has no else branch");
    }
  }
  return Value::undefined();
}

}  // namespace

}  // namespace tmpl

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, ChatTemplateLimits limits) {
  auto body = tmpl::parse_template(source, limits.max_depth);
  if (!body.ok()) return make_error("chat template ", body.error().message);
  auto prog = std::make_shared<ChatTemplateProgram>();
  prog->body = std::move(*body);
  ChatTemplate t;
  t.prog_ = std::move(prog);
  t.limits_ = limits;
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& vars) const {
  if (!prog_) return make_error("chat template: not parsed");
  tmpl::Interp in(limits_);
  tmpl::install_builtins(
      in, [&in](const std::string& k, tmpl::Value v) { in.set_global(k, std::move(v)); });
  if (vars.is_object())
    for (const auto& [k, v] : vars.items()) {
      auto x = tmpl::from_json(v);
      if (!x.ok()) return make_error("chat template: ", x.error().message);
      in.set_global(k, std::move(*x));
    }
  return in.run(prog_->body);
}

nlohmann::ordered_json chat_template_vars(const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt,
                                          const std::optional<std::string>& bos_token,
                                          const std::optional<std::string>& eos_token) {
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages)
    msgs.push_back(nlohmann::ordered_json{{"role", m.role}, {"content", m.content}});
  nlohmann::ordered_json v;
  v["messages"] = std::move(msgs);
  v["tools"] = nullptr;
  v["documents"] = nullptr;
  v["add_generation_prompt"] = add_generation_prompt;
  v["bos_token"] = bos_token ? nlohmann::ordered_json(*bos_token) : nlohmann::ordered_json();
  v["eos_token"] = eos_token ? nlohmann::ordered_json(*eos_token) : nlohmann::ordered_json();
  return v;
}

}  // namespace qforge
