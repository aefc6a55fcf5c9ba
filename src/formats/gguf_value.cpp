#include <cmath>
#include <sstream>

#include "formats/gguf.h"

namespace qforge {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

GgufValue GgufValue::string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(GgufValue::string(s));
  return array(GgufType::STRING, std::move(items));
}
GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float f : v) items.push_back(GgufValue::f32(f));
  return array(GgufType::F32, std::move(items));
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(GgufValue::i32(x));
  return array(GgufType::I32, std::move(items));
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (auto* u = std::get_if<uint64_t>(&v_)) return *u;
  if (auto* i = std::get_if<int64_t>(&v_)) return *i >= 0 ? std::optional<uint64_t>(*i) : std::nullopt;
  if (auto* b = std::get_if<bool>(&v_)) return *b ? 1 : 0;
  return std::nullopt;
}
std::optional<int64_t> GgufValue::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v_))
    return *u <= static_cast<uint64_t>(INT64_MAX) ? std::optional<int64_t>(*u) : std::nullopt;
  if (auto* i = std::get_if<int64_t>(&v_)) return *i;
  if (auto* b = std::get_if<bool>(&v_)) return *b ? 1 : 0;
  return std::nullopt;
}
std::optional<double> GgufValue::as_float() const {
  if (auto* d = std::get_if<double>(&v_)) return *d;
  if (auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
  if (auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
  return std::nullopt;
}
std::optional<bool> GgufValue::as_bool() const {
  if (auto* b = std::get_if<bool>(&v_)) return *b;
  if (auto* u = std::get_if<uint64_t>(&v_)) return *u != 0;
  return std::nullopt;
}

bool GgufArray::operator==(const GgufArray& o) const {
  return elem_type == o.elem_type && items == o.items;
}

bool GgufValue::operator==(const GgufValue& o) const { return type_ == o.type_ && v_ == o.v_; }

std::string GgufValue::to_display(size_t max_items) const {
  std::ostringstream os;
  if (auto* s = as_string()) {
    std::string t = *s;
    if (t.size() > 80) t = t.substr(0, 77) + "...";
    for (auto& c : t)
      if (c == '\n') c = ' ';
    os << '"' << t << '"';
  } else if (auto* a = as_array()) {
    os << "[" << gguf_type_name(a->elem_type) << " x " << a->items.size() << "]";
    if (!a->items.empty()) {
      os << " ";
      for (size_t i = 0; i < a->items.size() && i < max_items; ++i)
        os << (i ? ", " : "") << a->items[i].to_display(0);
      if (a->items.size() > max_items) os << ", ...";
    }
  } else if (auto* b = std::get_if<bool>(&v_)) {
    os << (*b ? "true" : "false");
  } else if (auto* d = std::get_if<double>(&v_)) {
    os << *d;
  } else if (auto* u = std::get_if<uint64_t>(&v_)) {
    os << *u;
  } else if (auto* i = std::get_if<int64_t>(&v_)) {
    os << *i;
  }
  return os.str();
}

uint64_t GgufTensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;  // validated against overflow when read
  return n;
}

}  // namespace qforge
