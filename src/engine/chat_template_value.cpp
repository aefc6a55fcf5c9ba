#include "engine/chat_template_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/unicode.h"

namespace qforge::tmpl {

Value Value::undefined(std::string what) {
  Value v;
  v.s = std::move(what);
  return v;
}
Value Value::none() {
  Value v;
  v.k = K::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.k = K::Bool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.k = K::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.k = K::Float;
  v.f = x;
  return v;
}
Value Value::str(std::string x) {
  Value v;
  v.k = K::Str;
  v.s = std::move(x);
  return v;
}
Value Value::make_list(std::vector<Value> x, bool is_tuple) {
  Value v;
  v.k = K::List;
  v.tuple = is_tuple;
  v.list = std::make_shared<std::vector<Value>>(std::move(x));
  return v;
}
Value Value::make_dict() {
  Value v;
  v.k = K::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::make_ns() {
  Value v = make_dict();
  v.k = K::Ns;
  return v;
}
Value Value::make_fn(NativeFn f) {
  Value v;
  v.k = K::Fn;
  v.fn = std::make_shared<const NativeFn>(std::move(f));
  return v;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(std::string key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(std::move(key), std::move(v));
}

const Value* CallArgs::get(size_t i, std::string_view name) const {
  if (i < pos.size()) return &pos[i];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

bool truthy(const Value& v) {
  switch (v.k) {
    case Value::K::Undefined:
    case Value::K::None:
      return false;
    case Value::K::Bool:
      return v.b;
    case Value::K::Int:
      return v.i != 0;
    case Value::K::Float:
      return v.f != 0;
    case Value::K::Str:
      return !v.s.empty();
    case Value::K::List:
      return !v.list->empty();
    case Value::K::Dict:
      return !v.dict->items.empty();
    case Value::K::Ns:
    case Value::K::Fn:
      return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_num() && b.is_num()) {
    if (a.is_int() && b.is_int())
      return (a.k == Value::K::Bool ? a.b : a.i) == (b.k == Value::K::Bool ? b.b : b.i);
    return a.as_double() == b.as_double();
  }
  if (a.k != b.k) return false;
  switch (a.k) {
    case Value::K::Undefined:
    case Value::K::None:
      return true;
    case Value::K::Str:
      return a.s == b.s;
    case Value::K::List:
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i)
        if (!equal((*a.list)[i], (*b.list)[i])) return false;
      return true;
    case Value::K::Dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* o = b.dict->find(k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    }
    case Value::K::Ns:
      return a.dict == b.dict;
    case Value::K::Fn:
      return a.fn == b.fn;
    default:
      return false;
  }
}

Result<bool> less(const Value& a, const Value& b) {
  if (a.is_num() && b.is_num()) {
    if (a.is_int() && b.is_int())
      return (a.k == Value::K::Bool ? a.b : a.i) < (b.k == Value::K::Bool ? b.b : b.i);
    return a.as_double() < b.as_double();
  }
  if (a.is_str() && b.is_str()) return a.s < b.s;
  if (a.is_list() && b.is_list()) {
    const auto& x = *a.list;
    const auto& y = *b.list;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equal(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return make_error("cannot compare ", repr(a), " and ", repr(b), " with < or >");
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);  // e.g. "-1.2345e+17" (shortest round-trip digits)
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {  // Python's repr switches to exponent form outside this range
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
             digits.substr(static_cast<size_t>(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + eb;
}

namespace {

std::string repr_str(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string r(1, q);
  for (unsigned char c : s) {
    if (c == '\\')
      r += "\\\\";
    else if (c == q)
      r += std::string("\\") + static_cast<char>(c);
    else if (c == '\n')
      r += "\\n";
    else if (c == '\r')
      r += "\\r";
    else if (c == '\t')
      r += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    } else
      r += static_cast<char>(c);
  }
  return r + q;
}

}  // namespace

std::string repr(const Value& v) {
  switch (v.k) {
    case Value::K::Str:
      return repr_str(v.s);
    case Value::K::Undefined:
      return "Undefined";
    case Value::K::List: {
      std::string r = v.tuple ? "(" : "[";
      for (size_t i = 0; i < v.list->size(); ++i) r += (i ? ", " : "") + repr((*v.list)[i]);
      if (v.tuple && v.list->size() == 1) r += ",";
      return r + (v.tuple ? ")" : "]");
    }
    case Value::K::Dict: {
      std::string r = "{";
      bool first = true;
      for (const auto& [k, x] : v.dict->items) {
        r += (first ? "" : ", ") + repr_str(k) + ": " + repr(x);
        first = false;
      }
      return r + "}";
    }
    default:
      return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.k) {
    case Value::K::Undefined:
      return "";
    case Value::K::None:
      return "None";
    case Value::K::Bool:
      return v.b ? "True" : "False";
    case Value::K::Int:
      return std::to_string(v.i);
    case Value::K::Float:
      return py_float_repr(v.f);
    case Value::K::Str:
      return v.s;
    case Value::K::List:
    case Value::K::Dict:
      return repr(v);
    case Value::K::Ns:
      return "<Namespace>";
    case Value::K::Fn:
      return "<function>";
  }
  return "";
}

void py_json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

Status json_rec(const Value& v, int indent, bool sort_keys, int level, std::string& out) {
  if (level > 256) return make_error("tojson: nesting too deep");
  const std::string nl =
      indent < 0 ? "" : "\n" + std::string(static_cast<size_t>(indent * (level + 1)), ' ');
  const std::string nl_end =
      indent < 0 ? "" : "\n" + std::string(static_cast<size_t>(indent * level), ' ');
  const char* item_sep = indent < 0 ? ", " : ",";
  switch (v.k) {
    case Value::K::None:
      out += "null";
      return {};
    case Value::K::Bool:
      out += v.b ? "true" : "false";
      return {};
    case Value::K::Int:
      out += std::to_string(v.i);
      return {};
    case Value::K::Float:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f < 0 ? "-Infinity" : "Infinity";
      else
        out += py_float_repr(v.f);
      return {};
    case Value::K::Str:
      py_json_string(v.s, out);
      return {};
    case Value::K::List: {
      if (v.list->empty()) {
        out += "[]";
        return {};
      }
      out += "[";
      for (size_t i = 0; i < v.list->size(); ++i) {
        out += i ? item_sep : "";
        out += nl;
        QF_CHECK(json_rec((*v.list)[i], indent, sort_keys, level + 1, out));
      }
      out += nl_end + "]";
      return {};
    }
    case Value::K::Dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return {};
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      out += "{";
      for (size_t i = 0; i < items.size(); ++i) {
        out += i ? item_sep : "";
        out += nl;
        py_json_string(items[i]->first, out);
        out += ": ";
        QF_CHECK(json_rec(items[i]->second, indent, sort_keys, level + 1, out));
      }
      out += nl_end + "}";
      return {};
    }
    case Value::K::Undefined:
      return make_error("Object of type Undefined is not JSON serializable");
    case Value::K::Ns:
      return make_error("Object of type Namespace is not JSON serializable");
    case Value::K::Fn:
      return make_error("Object of type function is not JSON serializable");
  }
  return {};
}

}  // namespace

Result<std::string> to_json_text(const Value& v, int indent, bool sort_keys) {
  std::string out;
  QF_CHECK(json_rec(v, indent, sort_keys, 0, out));
  return out;
}

Result<Value> from_json(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxNesting) return make_error("template variables nested deeper than ", kMaxNesting);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) {
        QF_TRY(Value item, from_json(x, depth + 1));
        items.push_back(std::move(item));
      }
      return Value::make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::make_dict();
      for (const auto& [k, x] : j.items()) {
        QF_TRY(Value item, from_json(x, depth + 1));
        d.dict->items.emplace_back(k, std::move(item));
      }
      return d;
    }
    default:
      return Value::undefined();
  }
}

Status check_nesting(const Value& v, int depth, const std::function<Status()>& step) {
  if (depth > kMaxNesting) return make_error("value nested deeper than ", kMaxNesting, " levels");
  QF_CHECK(step());
  if (v.is_list())
    for (const Value& x : *v.list) QF_CHECK(check_nesting(x, depth + 1, step));
  if (v.dict)
    for (const auto& kv : v.dict->items) QF_CHECK(check_nesting(kv.second, depth + 1, step));
  return {};
}

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  utf8_decode_lenient(s, out);
  return out;
}

std::string from_code_points(const std::vector<uint32_t>& cps, size_t from, size_t to) {
  std::string r;
  for (size_t i = from; i < to && i < cps.size(); ++i) utf8_append(cps[i], r);
  return r;
}

}  // namespace qforge::tmpl
