#include "engine/chat_template_builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

namespace qforge::tmpl {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

std::string type_name(const Value& v) {
  switch (v.k) {
    case Value::K::Undefined:
      return "Undefined";
    case Value::K::None:
      return "NoneType";
    case Value::K::Bool:
      return "bool";
    case Value::K::Int:
      return "int";
    case Value::K::Float:
      return "float";
    case Value::K::Str:
      return "str";
    case Value::K::List:
      return v.tuple ? "tuple" : "list";
    case Value::K::Dict:
      return "dict";
    case Value::K::Ns:
      return "Namespace";
    case Value::K::Fn:
      return "function";
  }
  return "object";
}

Error undefined_error(const Value& v) {
  return make_error(v.s.empty() ? std::string("undefined value") : v.s);
}

int64_t int_of(const Value& v) {
  return v.k == Value::K::Bool ? (v.b ? 1 : 0) : v.i;
}

// Python's str.isspace for one code point.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// str.strip/lstrip/rstrip(chars): chars = None strips whitespace.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  const std::vector<uint32_t> cps = code_points(s);
  std::vector<uint32_t> set;
  const bool ws = !chars || chars->k == Value::K::None || chars->is_undefined();
  if (!ws) set = code_points(to_str(*chars));
  const auto strip_it = [&](uint32_t c) {
    return ws ? py_space(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t a = 0, b = cps.size();
  if (left)
    while (a < b && strip_it(cps[a])) ++a;
  if (right)
    while (b > a && strip_it(cps[b - 1])) --b;
  return from_code_points(cps, a, b);
}

std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep || sep->k == Value::K::None) {  // runs of whitespace, no empty strings
    const std::vector<uint32_t> cps = code_points(s);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && py_space(cps[i])) ++i;
      if (i == cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        size_t e = cps.size();
        while (e > i && py_space(cps[e - 1])) --e;
        out.push_back(from_code_points(cps, i, e));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !py_space(cps[j])) ++j;
      out.push_back(from_code_points(cps, i, j));
      i = j;
    }
    return out;
  }
  const std::string d = to_str(*sep);
  size_t start = 0;
  while (true) {
    const size_t p = s.find(d, start);
    if (p == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + d.size();
  }
}

Result<std::string> py_replace(Runtime& rt, const std::string& s, const std::string& from,
                               const std::string& to, int64_t count) {
  std::string out;
  int64_t n = 0;
  if (from.empty()) {  // Python inserts `to` between every character
    const std::vector<uint32_t> cps = code_points(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (i < cps.size()) out += from_code_points(cps, i, i + 1);
      QF_CHECK(rt.check_size(out.size()));
    }
    return out;
  }
  size_t start = 0;
  while (count < 0 || n < count) {
    const size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += to;
    QF_CHECK(rt.check_size(out.size()));
    start = p + from.size();
    ++n;
  }
  out.append(s, start);
  return out;
}

char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
std::string upper(std::string s) {
  for (char& c : s) c = ascii_upper(c);
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = ascii_lower(c);
  return s;
}
bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Python's str.title (ASCII letters; other bytes are word breaks unless they are letters).
std::string title(std::string s) {
  bool prev_cased = false;
  for (char& c : s) {
    c = prev_cased ? ascii_lower(c) : ascii_upper(c);
    prev_cased = ascii_alpha(c) || static_cast<unsigned char>(c) >= 0x80;
  }
  return s;
}
std::string capitalize(std::string s) {
  s = lower(std::move(s));
  if (!s.empty()) s[0] = ascii_upper(s[0]);
  return s;
}

std::string html_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&':
        r += "&amp;";
        break;
      case '<':
        r += "&lt;";
        break;
      case '>':
        r += "&gt;";
        break;
      case '"':
        r += "&#34;";
        break;
      case '\'':
        r += "&#39;";
        break;
      default:
        r += c;
    }
  }
  return r;
}

Result<int64_t> index_of(int64_t i, size_t n) {
  const auto len = static_cast<int64_t>(n);
  if (i < 0) i += len;
  if (i < 0 || i >= len) return make_error("index out of range");
  return i;
}

// Python's slice.indices: the visited positions of a sequence of length n.
Result<std::vector<size_t>> slice_positions(size_t n, const Value& start, const Value& stop,
                                            const Value& step) {
  const auto len = static_cast<int64_t>(n);
  for (const Value* v : {&start, &stop, &step})
    if (v->k != Value::K::None && !v->is_int())
      return make_error("slice indices must be integers or None");
  const int64_t st = step.k == Value::K::None ? 1 : int_of(step);
  if (st == 0) return make_error("slice step cannot be zero");
  const auto clamp = [&](const Value& v, int64_t def, bool is_start) {
    if (v.k == Value::K::None) return def;
    int64_t x = int_of(v);
    if (x < 0) x += len;
    if (st > 0) return std::clamp<int64_t>(x, 0, len);
    (void)is_start;
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  const int64_t a = clamp(start, st > 0 ? 0 : len - 1, true);
  const int64_t b = clamp(stop, st > 0 ? len : -1, false);
  std::vector<size_t> out;
  for (int64_t i = a; st > 0 ? i < b : i > b;) {
    out.push_back(static_cast<size_t>(i));
    if (__builtin_add_overflow(i, st, &i)) break;
  }
  return out;
}

Result<Value> method_of_str(Runtime& rt, const std::string& s, const std::string& name);
Result<Value> method_of_dict(const Value& d, const std::string& name);

}  // namespace

Result<std::vector<Value>> iterate(const Value& v) {
  switch (v.k) {
    case Value::K::Undefined:
      return std::vector<Value>{};
    case Value::K::List:
      return *v.list;
    case Value::K::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::str(kv.first));
      return keys;
    }
    case Value::K::Str: {
      const std::vector<uint32_t> cps = code_points(v.s);
      std::vector<Value> chars;
      for (size_t i = 0; i < cps.size(); ++i)
        chars.push_back(Value::str(from_code_points(cps, i, i + 1)));
      return chars;
    }
    default:
      return make_error("'", type_name(v), "' object is not iterable");
  }
}

Result<Value> slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_list()) {
    QF_TRY(auto pos, slice_positions(obj.list->size(), start, stop, step));
    std::vector<Value> r;
    for (size_t p : pos) r.push_back((*obj.list)[p]);
    return Value::make_list(std::move(r), obj.tuple);
  }
  if (obj.is_str()) {
    const std::vector<uint32_t> cps = code_points(obj.s);
    QF_TRY(auto pos, slice_positions(cps.size(), start, stop, step));
    std::string r;
    for (size_t p : pos) r += from_code_points(cps, p, p + 1);
    return Value::str(std::move(r));
  }
  return make_error("'", type_name(obj), "' object is not subscriptable");
}

Result<Value> get_item(Runtime& rt, const Value& obj, const Value& key) {
  if (obj.is_undefined()) return undefined_error(obj);
  if (obj.is_list() && key.is_int()) {
    auto i = index_of(int_of(key), obj.list->size());
    if (!i.ok())
      return Value::undefined(cat(type_name(obj), " index ", int_of(key), " is out of range"));
    return (*obj.list)[static_cast<size_t>(*i)];
  }
  if (obj.is_str() && key.is_int()) {
    const std::vector<uint32_t> cps = code_points(obj.s);
    auto i = index_of(int_of(key), cps.size());
    if (!i.ok()) return Value::undefined("string index out of range");
    return Value::str(from_code_points(cps, static_cast<size_t>(*i), static_cast<size_t>(*i) + 1));
  }
  if ((obj.is_dict() || obj.k == Value::K::Ns) && key.is_str()) {
    if (const Value* v = obj.dict->find(key.s)) return *v;
  }
  if (key.is_str()) return get_attr(rt, obj, key.s);
  return Value::undefined(cat("'", type_name(obj), " object' has no attribute ", repr(key)));
}

Result<Value> get_attr(Runtime& rt, const Value& obj, const std::string& name) {
  if (obj.is_undefined()) return undefined_error(obj);
  const Value missing =
      Value::undefined(cat("'", type_name(obj), " object' has no attribute '", name, "'"));
  switch (obj.k) {
    case Value::K::Str:
      return method_of_str(rt, obj.s, name);
    case Value::K::Dict: {
      QF_TRY(Value m, method_of_dict(obj, name));
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict->find(name)) return *v;
      return missing;
    }
    case Value::K::Ns:
      if (const Value* v = obj.dict->find(name)) return *v;
      return missing;
    case Value::K::List:
      if (name == "append" || name == "pop" || name == "insert" || name == "extend" ||
          name == "remove" || name == "clear" || name == "sort" || name == "reverse")
        return Value::make_fn([name](CallArgs&) -> Result<Value> {
          return make_error("access to list.", name, " is unsafe (immutable sandbox)");
        });
      if (name == "index" || name == "count") {
        auto list = obj.list;
        return Value::make_fn([list, name](CallArgs& a) -> Result<Value> {
          const Value* x = a.get(0, "x");
          if (!x) return make_error(name, "() takes exactly one argument");
          int64_t n = 0;
          for (size_t i = 0; i < list->size(); ++i)
            if (equal((*list)[i], *x)) {
              if (name == "index") return Value::integer(static_cast<int64_t>(i));
              ++n;
            }
          if (name == "index") return make_error(repr(*x), " is not in list");
          return Value::integer(n);
        });
      }
      return missing;
    default:
      return missing;
  }
}

namespace {

Result<Value> method_of_dict(const Value& d, const std::string& name) {
  auto dict = d.dict;
  if (name == "get")
    return Value::make_fn([dict](CallArgs& a) -> Result<Value> {
      const Value* k = a.get(0, "key");
      if (!k) return make_error("get() expected at least 1 argument");
      if (k->is_str())
        if (const Value* v = dict->find(k->s)) return *v;
      const Value* def = a.get(1, "default");
      return def ? *def : Value::none();
    });
  if (name == "items" || name == "keys" || name == "values")
    return Value::make_fn([dict, name](CallArgs&) -> Result<Value> {
      std::vector<Value> r;
      for (const auto& [k, v] : dict->items) {
        if (name == "items")
          r.push_back(Value::make_list({Value::str(k), v}, true));
        else if (name == "keys")
          r.push_back(Value::str(k));
        else
          r.push_back(v);
      }
      return Value::make_list(std::move(r));
    });
  if (name == "update" || name == "pop" || name == "setdefault" || name == "clear" ||
      name == "popitem")
    return Value::make_fn([name](CallArgs&) -> Result<Value> {
      return make_error("access to dict.", name, " is unsafe (immutable sandbox)");
    });
  return Value::undefined();
}

Result<Value> str_affix(const std::string& s, CallArgs& a, bool starts) {
  const Value* p = a.get(0, "prefix");
  if (!p) return make_error(starts ? "startswith" : "endswith", "() takes at least 1 argument");
  std::vector<Value> options = p->is_list() ? *p->list : std::vector<Value>{*p};
  for (const Value& o : options) {
    if (!o.is_str())
      return make_error("startswith/endswith first arg must be str or a tuple of str");
    if (starts ? s.starts_with(o.s) : s.ends_with(o.s)) return Value::boolean(true);
  }
  return Value::boolean(false);
}

Result<Value> method_of_str(Runtime& rt, const std::string& s, const std::string& name) {
  using A = CallArgs;
  const auto fn = [](auto f) { return Value::make_fn(std::move(f)); };
  if (name == "startswith" || name == "endswith")
    return fn([s, name](A& a) { return str_affix(s, a, name == "startswith"); });
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return fn([s, name](A& a) -> Result<Value> {
      return Value::str(py_strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
    });
  if (name == "split")
    return fn([s](A& a) -> Result<Value> {
      const Value* sep = a.get(0, "sep");
      const Value* ms = a.get(1, "maxsplit");
      if (sep && sep->is_str() && sep->s.empty()) return make_error("empty separator");
      std::vector<Value> r;
      for (auto& p : py_split(s, sep, ms && ms->is_int() ? int_of(*ms) : -1))
        r.push_back(Value::str(std::move(p)));
      return Value::make_list(std::move(r));
    });
  if (name == "replace")
    return fn([s, &rt](A& a) -> Result<Value> {
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      const Value* n = a.get(2, "count");
      if (!from || !to || !from->is_str() || !to->is_str())
        return make_error("replace() takes two string arguments");
      QF_TRY(std::string r, py_replace(rt, s, from->s, to->s, n && n->is_int() ? int_of(*n) : -1));
      return Value::str(std::move(r));
    });
  if (name == "upper") return fn([s](A&) -> Result<Value> { return Value::str(upper(s)); });
  if (name == "lower") return fn([s](A&) -> Result<Value> { return Value::str(lower(s)); });
  if (name == "title") return fn([s](A&) -> Result<Value> { return Value::str(title(s)); });
  if (name == "capitalize")
    return fn([s](A&) -> Result<Value> { return Value::str(capitalize(s)); });
  if (name == "find" || name == "rfind" || name == "count")
    return fn([s, name](A& a) -> Result<Value> {
      const Value* sub = a.get(0, "sub");
      if (!sub || !sub->is_str()) return make_error(name, "() takes a string argument");
      if (name == "count") {
        int64_t n = 0;
        if (sub->s.empty()) return Value::integer(static_cast<int64_t>(code_points(s).size()) + 1);
        for (size_t p = s.find(sub->s); p != std::string::npos;
             p = s.find(sub->s, p + sub->s.size()))
          ++n;
        return Value::integer(n);
      }
      const size_t p = name == "find" ? s.find(sub->s) : s.rfind(sub->s);
      if (p == std::string::npos) return Value::integer(-1);
      return Value::integer(static_cast<int64_t>(code_points(s.substr(0, p)).size()));
    });
  if (name == "join")
    return fn([s, &rt](A& a) -> Result<Value> {
      const Value* it = a.get(0, "iterable");
      if (!it) return make_error("join() takes exactly one argument");
      QF_TRY(std::vector<Value> items, iterate(*it));
      std::string r;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_str()) return make_error("sequence item ", i, ": expected str instance");
        r += (i ? s : "") + items[i].s;
        QF_CHECK(rt.check_size(r.size()));
      }
      return Value::str(std::move(r));
    });
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" ||
      name == "islower" || name == "isalnum")
    return fn([s, name](A&) -> Result<Value> {
      if (s.empty()) return Value::boolean(false);
      bool ok = true, cased = false;
      for (char c : s) {
        const bool d = c >= '0' && c <= '9', al = ascii_alpha(c);
        if (name == "isdigit")
          ok &= d;
        else if (name == "isalpha")
          ok &= al;
        else if (name == "isalnum")
          ok &= d || al;
        else if (name == "isspace")
          ok &= py_space(static_cast<unsigned char>(c));
        else if (name == "isupper") {
          ok &= !(c >= 'a' && c <= 'z');
          cased |= al;
        } else {
          ok &= !(c >= 'A' && c <= 'Z');
          cased |= al;
        }
      }
      if (name == "isupper" || name == "islower") ok &= cased;
      return Value::boolean(ok);
    });
  return Value::undefined(cat("'str object' has no attribute '", name, "'"));
}

}  // namespace

Result<bool> compare(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return equal(l, r);
  if (op == "!=") return !equal(l, r);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (r.is_str()) {
      if (!l.is_str())
        return make_error("'in <string>' requires string as left operand, not ", type_name(l));
      found = r.s.find(l.s) != std::string::npos;
    } else if (r.is_dict() || r.k == Value::K::Ns) {
      found = l.is_str() && r.dict->find(l.s) != nullptr;
    } else {
      QF_TRY(std::vector<Value> items, iterate(r));
      for (const Value& x : items) found = found || equal(l, x);
    }
    return op == "in" ? found : !found;
  }
  if (l.is_undefined()) return undefined_error(l);
  if (r.is_undefined()) return undefined_error(r);
  if (op == "<") return less(l, r);
  if (op == ">") return less(r, l);
  QF_TRY(bool gt, less(r, l));
  QF_TRY(bool lt, less(l, r));
  if (op == "<=") return !gt;
  if (op == ">=") return !lt;
  return make_error("unknown comparison ", op);
}

Result<Value> unary(const char* op, const Value& v) {
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_num()) return make_error("bad operand type for unary ", op, ": '", type_name(v), "'");
  const bool neg = op[0] == '-';
  if (v.k == Value::K::Float) return Value::number(neg ? -v.f : v.f);
  if (neg && int_of(v) == std::numeric_limits<int64_t>::min())
    return make_error("integer overflow");
  return Value::integer(neg ? -int_of(v) : int_of(v));
}

namespace {

Result<Value> repeat(Runtime& rt, const Value& seq, int64_t n) {
  if (seq.is_str() ? seq.s.empty() : seq.list->empty()) return seq;
  if (n <= 0) return seq.is_str() ? Value::str("") : Value::make_list({}, seq.tuple);
  if (seq.is_str()) {
    QF_CHECK(rt.check_size(seq.s.size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30))));
    std::string r;
    for (int64_t i = 0; i < n; ++i) r += seq.s;
    return Value::str(std::move(r));
  }
  QF_CHECK(
      rt.check_size(seq.list->size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30)) * 16));
  std::vector<Value> r;
  for (int64_t i = 0; i < n; ++i) r.insert(r.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(r), seq.tuple);
}

Result<Value> int_arith(const std::string& op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (op == "+" && !__builtin_add_overflow(a, b, &r)) return Value::integer(r);
  if (op == "-" && !__builtin_sub_overflow(a, b, &r)) return Value::integer(r);
  if (op == "*" && !__builtin_mul_overflow(a, b, &r)) return Value::integer(r);
  if (op == "//" || op == "%") {
    if (b == 0) return make_error("integer division or modulo by zero");
    if (a == std::numeric_limits<int64_t>::min() && b == -1) return make_error("integer overflow");
    int64_t q = a / b, m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) {
      --q;
      m += b;
    }
    return Value::integer(op == "//" ? q : m);
  }
  if (op == "**" && b >= 0) {  // by squaring: b can be huge when a is 0, 1 or -1
    int64_t acc = 1, base = a;
    for (int64_t e = b; e > 0; e >>= 1) {
      if ((e & 1) && __builtin_mul_overflow(acc, base, &acc)) return make_error("integer overflow");
      if (e > 1 && __builtin_mul_overflow(base, base, &base)) return make_error("integer overflow");
    }
    return Value::integer(acc);
  }
  if (op == "+" || op == "-" || op == "*") return make_error("integer overflow");
  return Value::undefined();  // fall through to float arithmetic
}

}  // namespace

Result<Value> binary(Runtime& rt, const std::string& op, const Value& l, const Value& r) {
  if (op == "~") {
    std::string s = to_str(l) + to_str(r);
    QF_CHECK(rt.check_size(s.size()));
    return Value::str(std::move(s));
  }
  if (l.is_undefined()) return undefined_error(l);
  if (r.is_undefined()) return undefined_error(r);
  if (op == "+" && l.is_str() && r.is_str()) {
    QF_CHECK(rt.check_size(l.s.size() + r.s.size()));
    return Value::str(l.s + r.s);
  }
  if (op == "+" && l.is_list() && r.is_list()) {
    QF_CHECK(rt.check_size((l.list->size() + r.list->size()) * 16));
    std::vector<Value> v = *l.list;
    v.insert(v.end(), r.list->begin(), r.list->end());
    return Value::make_list(std::move(v), l.tuple);
  }
  if (op == "*" && (l.is_str() || l.is_list()) && r.is_int()) return repeat(rt, l, int_of(r));
  if (op == "*" && (r.is_str() || r.is_list()) && l.is_int()) return repeat(rt, r, int_of(l));
  if (!l.is_num() || !r.is_num())
    return make_error("unsupported operand type(s) for ", op, ": '", type_name(l), "' and '",
                      type_name(r), "'");
  if (l.is_int() && r.is_int() && op != "/") {
    QF_TRY(Value v, int_arith(op, int_of(l), int_of(r)));
    if (!v.is_undefined()) return v;
  }
  const double a = l.as_double(), b = r.as_double();
  if (op == "+") return Value::number(a + b);
  if (op == "-") return Value::number(a - b);
  if (op == "*") return Value::number(a * b);
  if (op == "**") return Value::number(std::pow(a, b));
  if (b == 0) return make_error("division by zero");
  if (op == "/") return Value::number(a / b);
  if (op == "//") return Value::number(std::floor(a / b));
  if (op == "%") {
    double m = std::fmod(a, b);
    if (m != 0 && ((m < 0) != (b < 0))) m += b;
    return Value::number(m);
  }
  return make_error("unknown operator ", op);
}

// ------------------------------------------------------------------- filters

namespace {

const Value* arg(CallArgs& a, size_t i, std::string_view name) {
  return a.get(i, name);
}
bool flag(CallArgs& a, size_t i, std::string_view name, bool def = false) {
  const Value* v = a.get(i, name);
  return v ? truthy(*v) : def;
}

Result<int64_t> length_of(const Value& v) {
  switch (v.k) {
    case Value::K::Undefined:
      return 0;
    case Value::K::Str:
      return static_cast<int64_t>(code_points(v.s).size());
    case Value::K::List:
      return static_cast<int64_t>(v.list->size());
    case Value::K::Dict:
    case Value::K::Ns:
      return static_cast<int64_t>(v.dict->items.size());
    default:
      return make_error("object of type '", type_name(v), "' has no len()");
  }
}

// Attribute path "a.b" or "0" as Jinja's make_attrgetter resolves it (item lookup).
Result<Value> attr_path(Runtime& rt, const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    Value key = Value::str(part);
    if (!part.empty() &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      key = Value::integer(std::stoll(part.substr(0, 18)));
    QF_TRY(cur, get_item(rt, cur, key));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// select/reject/selectattr/rejectattr: args after the attribute are the test name and its args.
Result<Value> select_items(Runtime& rt, const Value& seq, CallArgs& a, bool with_attr, bool keep) {
  QF_TRY(std::vector<Value> items, iterate(seq));
  size_t next = 0;
  std::string attr;
  if (with_attr) {
    if (a.pos.empty() || !a.pos[0].is_str())
      return make_error("selectattr/rejectattr need an attribute name");
    attr = a.pos[0].s;
    next = 1;
  }
  std::string test;
  CallArgs targs;
  if (next < a.pos.size()) {
    if (!a.pos[next].is_str()) return make_error("the test name must be a string");
    test = a.pos[next].s;
    targs.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(next) + 1, a.pos.end());
  }
  std::vector<Value> out;
  for (const Value& item : items) {
    QF_CHECK(rt.step());
    Value x = item;
    if (with_attr) {
      QF_TRY(x, attr_path(rt, item, attr));
    }
    bool ok = false;
    if (test.empty()) {
      ok = truthy(x);
    } else {
      QF_TRY(ok, rt.apply_test(test, x, targs));
    }
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Result<Value> map_items(Runtime& rt, const Value& seq, CallArgs& a) {
  QF_TRY(std::vector<Value> items, iterate(seq));
  std::vector<Value> out;
  const Value* attribute = nullptr;
  for (auto& [k, v] : a.kw)
    if (k == "attribute") attribute = &v;
  if (attribute) {
    const Value* def = nullptr;
    for (auto& [k, v] : a.kw)
      if (k == "default") def = &v;
    for (const Value& item : items) {
      QF_TRY(Value x, attr_path(rt, item, to_str(*attribute)));
      out.push_back(x.is_undefined() && def ? *def : x);
    }
    return Value::make_list(std::move(out));
  }
  if (a.pos.empty() || !a.pos[0].is_str())
    return make_error("map() needs a filter name or attribute=");
  CallArgs fargs;
  fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
  fargs.kw = a.kw;
  for (const Value& item : items) {
    CallArgs copy = fargs;
    QF_TRY(Value x, rt.apply_filter(a.pos[0].s, item, copy));
    out.push_back(std::move(x));
  }
  return Value::make_list(std::move(out));
}

Result<Value> sort_items(Runtime& rt, const Value& seq, CallArgs& a, bool unique_only) {
  QF_TRY(std::vector<Value> items, iterate(seq));
  const bool rev = !unique_only && flag(a, 0, "reverse");
  const bool cs = flag(a, unique_only ? 0 : 1, "case_sensitive");
  const Value* attr = arg(a, unique_only ? 1 : 2, "attribute");
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& v : items) {
    Value k = v;
    if (attr) {
      QF_TRY(k, attr_path(rt, v, to_str(*attr)));
    }
    if (!cs && k.is_str()) k.s = lower(k.s);
    keyed.emplace_back(std::move(k), v);
  }
  if (unique_only) {
    std::vector<Value> out;
    std::vector<Value> seen;
    for (auto& [k, v] : keyed) {
      bool dup = false;
      for (const Value& s : seen) dup = dup || equal(s, k);
      if (!dup) {
        seen.push_back(k);
        out.push_back(v);
      }
    }
    return Value::make_list(std::move(out));
  }
  std::optional<Error> err;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    auto r = rev ? less(y.first, x.first) : less(x.first, y.first);
    if (!r.ok()) {
      err = r.error();
      return false;
    }
    return *r;
  });
  if (err) return *err;
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::make_list(std::move(out));
}

Result<Value> indent_filter(const std::string& s, CallArgs& a) {
  const Value* w = arg(a, 0, "width");
  const std::string pad =
      w ? (w->is_str()
               ? w->s
               : std::string(static_cast<size_t>(std::clamp<int64_t>(int_of(*w), 0, 1000)), ' '))
        : "    ";
  const bool first = flag(a, 1, "first"), blank = flag(a, 2, "blank");
  std::string out;
  size_t start = 0;
  bool is_first = true;
  while (true) {
    const size_t nl = s.find('\n', start);
    const std::string line = s.substr(start, nl == std::string::npos ? nl : nl - start);
    if ((!is_first || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
    is_first = false;
  }
  return Value::str(std::move(out));
}

Result<Value> tojson_filter(const Value& v, CallArgs& a) {
  if (flag(a, 0, "ensure_ascii")) return make_error("tojson(ensure_ascii=True) is not supported");
  const Value* ind = arg(a, 1, "indent");
  const Value* sep = arg(a, 2, "separators");
  if (sep && sep->k != Value::K::None) return make_error("tojson(separators=...) is not supported");
  const int indent =
      ind && ind->is_int() ? static_cast<int>(std::clamp<int64_t>(int_of(*ind), 0, 64)) : -1;
  QF_TRY(std::string s, to_json_text(v, indent, flag(a, 3, "sort_keys")));
  return Value::str(std::move(s));
}

// int(x) of a float: truncation; beyond int64 (Python would make a big integer) an error.
Result<Value> trunc_to_int(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return make_error("integer too large");
  return Value::integer(static_cast<int64_t>(d));
}

Result<Value> number_filter(const Value& v, CallArgs& a, bool to_int) {
  const Value* def = arg(a, 0, "default");
  const Value fallback = def ? *def : (to_int ? Value::integer(0) : Value::number(0));
  if (v.is_num())
    return to_int ? (v.k == Value::K::Float ? trunc_to_int(v.f) : Value::integer(int_of(v)))
                  : Value::number(v.as_double());
  if (!v.is_str()) return fallback;
  const std::string t = py_strip(v.s, nullptr, true, true);
  char* end = nullptr;
  if (to_int) {
    const long long x = std::strtoll(t.c_str(), &end, 10);
    if (!t.empty() && end && *end == '\0') return Value::integer(x);
    const double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && end && *end == '\0' && std::isfinite(d)) return trunc_to_int(d);
    return fallback;
  }
  const double d = std::strtod(t.c_str(), &end);
  if (!t.empty() && end && *end == '\0') return Value::number(d);
  return fallback;
}

Result<Value> round_filter(const Value& v, CallArgs& a) {
  if (!v.is_num()) return make_error("round() needs a number");
  const Value* p = arg(a, 0, "precision");
  const Value* m = arg(a, 1, "method");
  const int64_t prec = p && p->is_int() ? std::clamp<int64_t>(int_of(*p), 0, 15) : 0;
  const std::string method = m ? to_str(*m) : "common";
  const double scale = std::pow(10.0, static_cast<double>(prec));
  const double x = v.as_double() * scale;
  // Python's round() rounds half to even.
  const double r = method == "ceil"    ? std::ceil(x)
                   : method == "floor" ? std::floor(x)
                                       : std::nearbyint(x);
  return Value::number(r / scale);
}

Result<Value> min_max(const Value& v, bool want_max) {
  QF_TRY(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined("no items for min/max");
  Value best = items[0];
  for (size_t i = 1; i < items.size(); ++i) {
    QF_TRY(bool l, want_max ? less(best, items[i]) : less(items[i], best));
    if (l) best = items[i];
  }
  return best;
}

}  // namespace

Result<Value> call_filter(Runtime& rt, const std::string& name, Value v, CallArgs& a) {
  QF_CHECK(rt.step());
  if (name == "safe" || name == "string") return name == "string" ? Value::str(to_str(v)) : v;
  if (name == "tojson") return tojson_filter(v, a);
  if (name == "length" || name == "count") {
    QF_TRY(int64_t n, length_of(v));
    return Value::integer(n);
  }
  if (name == "default" || name == "d") {
    const Value* def = arg(a, 0, "default_value");
    if (v.is_undefined() || (flag(a, 1, "boolean") && !truthy(v)))
      return def ? *def : Value::str("");
    return v;
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list({});
    if (!v.is_dict()) return make_error("Can only get item pairs from a mapping.");
    std::vector<Value> r;
    for (const auto& [k, x] : v.dict->items)
      r.push_back(Value::make_list({Value::str(k), x}, true));
    return Value::make_list(std::move(r));
  }
  if (name == "list") {
    QF_TRY(std::vector<Value> items, iterate(v));
    return Value::make_list(std::move(items));
  }
  if (name == "first" || name == "last") {
    QF_TRY(std::vector<Value> items, iterate(v));
    if (items.empty()) return Value::undefined(cat("no ", name, " item, sequence was empty."));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_str()) {
      std::vector<uint32_t> cps = code_points(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::str(from_code_points(cps, 0, cps.size()));
    }
    QF_TRY(std::vector<Value> items, iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "join") {
    QF_TRY(std::vector<Value> items, iterate(v));
    const Value* sep = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    std::string r;
    for (size_t i = 0; i < items.size(); ++i) {
      Value x = items[i];
      if (attr) {
        QF_TRY(x, attr_path(rt, x, to_str(*attr)));
      }
      r += (i && sep ? to_str(*sep) : "") + to_str(x);
      QF_CHECK(rt.check_size(r.size()));
    }
    return Value::str(std::move(r));
  }
  if (name == "select" || name == "reject") return select_items(rt, v, a, false, name == "select");
  if (name == "selectattr" || name == "rejectattr")
    return select_items(rt, v, a, true, name == "selectattr");
  if (name == "map") return map_items(rt, v, a);
  if (name == "sort") return sort_items(rt, v, a, false);
  if (name == "unique") return sort_items(rt, v, a, true);
  if (name == "min" || name == "max") return min_max(v, name == "max");
  if (name == "sum") {
    QF_TRY(std::vector<Value> items, iterate(v));
    Value acc = Value::integer(0);
    if (const Value* s = arg(a, 1, "start")) acc = *s;
    const Value* attr = arg(a, 0, "attribute");
    for (const Value& x : items) {
      Value y = x;
      if (attr) {
        QF_TRY(y, attr_path(rt, x, to_str(*attr)));
      }
      QF_TRY(acc, binary(rt, "+", acc, y));
    }
    return acc;
  }
  if (name == "int" || name == "float") return number_filter(v, a, name == "int");
  if (name == "abs") {
    if (!v.is_num()) return make_error("bad operand type for abs()");
    return v.k == Value::K::Float ? Value::number(std::fabs(v.f))
                                  : unary(int_of(v) < 0 ? "-" : "+", v);
  }
  if (name == "round") return round_filter(v, a);
  if (name == "attr") {
    const Value* n = arg(a, 0, "name");
    if (!n) return make_error("attr() needs a name");
    return get_attr(rt, v, to_str(*n));
  }
  if (name == "batch" || name == "dictsort" || name == "format" || name == "groupby" ||
      name == "wordwrap" || name == "xmlattr" || name == "urlize" || name == "filesizeformat")
    return make_error("filter '", name, "' is not supported");
  // String filters.
  if (v.is_undefined() && name != "trim" && name != "upper" && name != "lower") {
    if (name == "escape" || name == "e" || name == "indent" || name == "replace" ||
        name == "title" || name == "capitalize" || name == "wordcount" || name == "striptags" ||
        name == "center" || name == "truncate")
      v = Value::str("");
  }
  const std::string s = to_str(v);
  if (name == "trim") return Value::str(py_strip(s, arg(a, 0, "chars"), true, true));
  if (name == "upper") return Value::str(upper(s));
  if (name == "lower") return Value::str(lower(s));
  if (name == "title") return Value::str(title(s));
  if (name == "capitalize") return Value::str(capitalize(s));
  if (name == "escape" || name == "e" || name == "forceescape") return Value::str(html_escape(s));
  if (name == "indent") return indent_filter(s, a);
  if (name == "wordcount")
    return Value::integer(static_cast<int64_t>(py_split(s, nullptr, -1).size()));
  if (name == "replace") {
    const Value* from = arg(a, 0, "old");
    const Value* to = arg(a, 1, "new");
    const Value* n = arg(a, 2, "count");
    if (!from || !to) return make_error("replace needs two arguments");
    QF_TRY(std::string r,
           py_replace(rt, s, to_str(*from), to_str(*to), n && n->is_int() ? int_of(*n) : -1));
    return Value::str(std::move(r));
  }
  return make_error("no filter named '", name, "'");
}

Result<bool> call_test(Runtime& rt, const std::string& name, const Value& v, CallArgs& a) {
  QF_CHECK(rt.step());
  using K = Value::K;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.k == K::None;
  if (name == "string") return v.is_str();
  if (name == "number") return v.is_num();
  if (name == "integer") return v.k == K::Int;
  if (name == "float") return v.k == K::Float;
  if (name == "boolean") return v.k == K::Bool;
  if (name == "true") return v.k == K::Bool && v.b;
  if (name == "false") return v.k == K::Bool && !v.b;
  if (name == "mapping") return v.k == K::Dict;
  if (name == "iterable") return v.is_undefined() || v.is_str() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_str() || v.is_list() || v.is_dict();
  if (name == "callable") return v.k == K::Fn;
  if (name == "lower" || name == "upper")
    return v.is_str() && (name == "lower" ? lower(v.s) == v.s : upper(v.s) == v.s);
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!v.is_int()) return make_error("test '", name, "' needs an integer");
    if (name == "divisibleby") {
      const Value* n = arg(a, 0, "num");
      if (!n || !n->is_int() || int_of(*n) == 0)
        return make_error("divisibleby needs a non-zero integer");
      return int_of(*n) == -1 || int_of(v) % int_of(*n) == 0;
    }
    return (int_of(v) % 2 != 0) == (name == "odd");
  }
  static const std::vector<std::pair<std::string, std::string>> kCmp = {
      {"equalto", "=="}, {"eq", "=="}, {"==", "=="},         {"ne", "!="},
      {"!=", "!="},      {"lt", "<"},  {"<", "<"},           {"lessthan", "<"},
      {"gt", ">"},       {">", ">"},   {"greaterthan", ">"}, {"le", "<="},
      {"<=", "<="},      {"ge", ">="}, {">=", ">="},         {"in", "in"}};
  for (const auto& [t, op] : kCmp)
    if (name == t) {
      const Value* other = arg(a, 0, "other");
      if (!other) return make_error("test '", name, "' needs an argument");
      return compare(op, v, *other);
    }
  if (name == "sameas") {
    const Value* other = arg(a, 0, "other");
    if (!other) return make_error("sameas needs an argument");
    if (v.k != other->k) return false;
    if (v.k == K::None || v.k == K::Bool || v.k == K::Undefined) return equal(v, *other);
    if (v.is_list()) return v.list == other->list;
    if (v.is_dict() || v.k == K::Ns) return v.dict == other->dict;
    return equal(v, *other);
  }
  return make_error("no test named '", name, "'");
}

void install_builtins(Runtime& rt, const std::function<void(const std::string&, Value)>& set) {
  Runtime* r = &rt;
  set("raise_exception", Value::make_fn([r](CallArgs& a) -> Result<Value> {
        return r->raise(a.pos.empty() ? std::string() : to_str(a.pos[0]));
      }));
  set("range", Value::make_fn([](CallArgs& a) -> Result<Value> {
        for (const Value& v : a.pos)
          if (!v.is_int()) return make_error("range() arguments must be integers");
        if (a.pos.empty() || a.pos.size() > 3) return make_error("range expected 1 to 3 arguments");
        int64_t start = 0, stop = 0, step = 1;
        if (a.pos.size() == 1)
          stop = int_of(a.pos[0]);
        else {
          start = int_of(a.pos[0]);
          stop = int_of(a.pos[1]);
          if (a.pos.size() == 3) step = int_of(a.pos[2]);
        }
        if (step == 0) return make_error("range() arg 3 must not be zero");
        std::vector<Value> out;
        for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
          if (static_cast<int64_t>(out.size()) >= kMaxRange)
            return make_error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (",
                              kMaxRange, ").");
          out.push_back(Value::integer(i));
          if (__builtin_add_overflow(i, step, &i)) break;
        }
        return Value::make_list(std::move(out));
      }));
  const auto make_mapping = [r](bool ns) {
    return Value::make_fn([ns, r](CallArgs& a) -> Result<Value> {
      Value d = ns ? Value::make_ns() : Value::make_dict();
      if (ns) r->adopt_namespace(d.dict);
      for (const Value& p : a.pos) {
        if (!p.is_dict())
          return make_error(ns ? "namespace" : "dict", "() positional arguments must be mappings");
        for (const auto& [k, v] : p.dict->items) d.dict->set(k, v);
      }
      for (const auto& [k, v] : a.kw) d.dict->set(k, v);
      return d;
    });
  };
  set("namespace", make_mapping(true));
  set("dict", make_mapping(false));
  set("strftime_now", Value::make_fn([](CallArgs& a) -> Result<Value> {
        if (a.pos.empty() || !a.pos[0].is_str())
          return make_error("strftime_now() needs a format string");
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[256];
        const size_t n = std::strftime(buf, sizeof buf, a.pos[0].s.c_str(), &tm);
        return Value::str(std::string(buf, n));
      }));
}

}  // namespace qforge::tmpl
