#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/checked.h"
#include "formats/gguf.h"
#include "formats/untrusted_text.h"

namespace qforge {
namespace {

constexpr uint32_t kMaxDims = 4;

// Bounds-checked cursor over untrusted bytes. Every read checks the remaining length first.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& name) : b_(b), name_(name) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  template <class T>
  Result<T> read(const char* what) {
    if (remaining() < sizeof(T))
      return make_error(name_, ": truncated while reading ", printable(what), " at byte ", pos_);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> read_string(const char* what) {
    QF_TRY(uint64_t len, read<uint64_t>(what));
    if (len > remaining())
      return make_error(name_, ": ", printable(what), ": string length ", len, " runs past end of file");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

// Smallest encoded size of one value of a type (for count-vs-size checks before allocating).
uint64_t min_value_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= 12; }

Result<GgufValue> read_value(Cursor& c, GgufType t, const std::string& name, const std::string& key,
                             int depth) {
  switch (t) {
    case GgufType::U8: { QF_TRY(auto v, c.read<uint8_t>(key.c_str())); return GgufValue::u8(v); }
    case GgufType::I8: { QF_TRY(auto v, c.read<int8_t>(key.c_str())); return GgufValue::i8(v); }
    case GgufType::U16: { QF_TRY(auto v, c.read<uint16_t>(key.c_str())); return GgufValue::u16(v); }
    case GgufType::I16: { QF_TRY(auto v, c.read<int16_t>(key.c_str())); return GgufValue::i16(v); }
    case GgufType::U32: { QF_TRY(auto v, c.read<uint32_t>(key.c_str())); return GgufValue::u32(v); }
    case GgufType::I32: { QF_TRY(auto v, c.read<int32_t>(key.c_str())); return GgufValue::i32(v); }
    case GgufType::F32: { QF_TRY(auto v, c.read<float>(key.c_str())); return GgufValue::f32(v); }
    case GgufType::U64: { QF_TRY(auto v, c.read<uint64_t>(key.c_str())); return GgufValue::u64(v); }
    case GgufType::I64: { QF_TRY(auto v, c.read<int64_t>(key.c_str())); return GgufValue::i64(v); }
    case GgufType::F64: { QF_TRY(auto v, c.read<double>(key.c_str())); return GgufValue::f64(v); }
    case GgufType::BOOL: {
      QF_TRY(auto v, c.read<uint8_t>(key.c_str()));
      if (v > 1) return make_error(name, ": key '", printable(key), "': invalid bool value ", int(v));
      return GgufValue::boolean(v != 0);
    }
    case GgufType::STRING: {
      QF_TRY(auto s, c.read_string(("value of key '" + key + "'").c_str()));
      return GgufValue::string(std::move(s));
    }
    case GgufType::ARRAY: {
      if (depth > 0) return make_error(name, ": key '", printable(key), "': nested arrays are not supported");
      QF_TRY(uint32_t et, c.read<uint32_t>(key.c_str()));
      if (!valid_value_type(et))
        return make_error(name, ": key '", printable(key), "': unknown array element type ", et);
      QF_TRY(uint64_t n, c.read<uint64_t>(key.c_str()));
      auto need = checked_mul(n, min_value_size(static_cast<GgufType>(et)));
      if (!need || *need > c.remaining())
        return make_error(name, ": key '", printable(key), "': array of ", n, " elements runs past end of file");
      std::vector<GgufValue> items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        QF_TRY(GgufValue v, read_value(c, static_cast<GgufType>(et), name, key, depth + 1));
        items.push_back(std::move(v));
      }
      return GgufValue::array(static_cast<GgufType>(et), std::move(items));
    }
  }
  return make_error(name, ": key '", printable(key), "': unknown value type ", static_cast<uint32_t>(t));
}

}  // namespace

Result<GgufFile> GgufFile::open(const std::string& path) {
  QF_TRY(OpenedInput in, OpenedInput::open(path));
  return open(in);
}

Result<GgufFile> GgufFile::open(const OpenedInput& in) {
  QF_TRY(MappedFile mf, MappedFile::map(in));
  auto map = std::make_shared<MappedFile>(std::move(mf));
  QF_TRY(GgufFile f, parse(map->bytes(), in.path()));
  f.map_ = std::move(map);
  return f;
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  GgufFile f;
  f.bytes_ = bytes;
  f.name_ = std::move(name);
  const std::string& nm = f.name_;
  Cursor c(bytes, nm);

  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0)
    return make_error(nm, ": not a GGUF file (bad magic)");
  QF_TRY(uint32_t magic, c.read<uint32_t>("magic"));
  (void)magic;
  QF_TRY(f.version_, c.read<uint32_t>("version"));
  if (f.version_ != 2 && f.version_ != 3)
    return make_error(nm, ": unsupported GGUF version ", f.version_, " (supported: 2, 3)");
  QF_TRY(int64_t n_tensors, c.read<int64_t>("tensor count"));
  QF_TRY(int64_t n_kv, c.read<int64_t>("key/value count"));
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > c.remaining() / 32)
    return make_error(nm, ": header: tensor count ", n_tensors, " is impossible for a file of ",
                      bytes.size(), " bytes");
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > c.remaining() / 13)
    return make_error(nm, ": header: key/value count ", n_kv, " is impossible for a file of ",
                      bytes.size(), " bytes");

  std::unordered_set<std::string> keys;
  f.kvs_.reserve(static_cast<size_t>(n_kv));
  for (int64_t i = 0; i < n_kv; ++i) {
    QF_TRY(std::string key, c.read_string("key name"));
    if (!keys.insert(key).second) return make_error(nm, ": metadata: duplicate key '", printable(key), "'");
    QF_TRY(uint32_t t, c.read<uint32_t>(("type of key '" + key + "'").c_str()));
    if (!valid_value_type(t)) return make_error(nm, ": metadata: key '", printable(key), "' has unknown type ", t);
    QF_TRY(GgufValue v, read_value(c, static_cast<GgufType>(t), nm, key, 0));
    f.kvs_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = f.find("general.alignment")) {
    auto al = a->as_uint();
    if (a->type() != GgufType::U32 || !al || !is_pow2(*al))
      return make_error(nm, ": metadata: general.alignment must be a power-of-two u32");
    f.alignment_ = static_cast<uint32_t>(*al);
  }

  std::unordered_set<std::string> names;
  f.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (int64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    QF_TRY(t.name, c.read_string("tensor name"));
    const std::string where = nm + ": tensor '" + printable(t.name) + "'";
    if (!names.insert(t.name).second) return make_error(where, ": duplicate tensor name");
    QF_TRY(uint32_t nd, c.read<uint32_t>("tensor dims"));
    if (nd == 0 || nd > kMaxDims) return make_error(where, ": bad number of dimensions ", nd);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      QF_TRY(int64_t dim, c.read<int64_t>("tensor dim"));
      if (dim < 0) return make_error(where, ": negative dimension ", dim);
      auto p = checked_mul(n_el, static_cast<uint64_t>(dim));
      if (!p || *p > (uint64_t{1} << 60)) return make_error(where, ": element count overflows");
      n_el = *p;
      t.dims.push_back(static_cast<uint64_t>(dim));
    }
    QF_TRY(uint32_t type_id, c.read<uint32_t>("tensor type"));
    const TypeInfo* ti = find_type_info(type_id);
    if (!ti) return make_error(where, ": unknown tensor type id ", type_id);
    t.type = ti->type;
    QF_TRY(t.offset, c.read<uint64_t>("tensor offset"));
    auto sz = tensor_size(t.type, t.dims);
    if (!sz) return make_error(where, ": ", sz.error().message);
    t.size = *sz;
    if (t.offset % f.alignment_ != 0)
      return make_error(where, ": data offset ", t.offset, " is not a multiple of the alignment ",
                        f.alignment_);
    f.tensors_.push_back(std::move(t));
  }

  auto data_off = checked_align_up(c.pos(), f.alignment_);
  if (!data_off) return make_error(nm, ": data section offset overflows");
  f.data_offset_ = *data_off;
  if (n_tensors > 0 && f.data_offset_ > bytes.size())
    return make_error(nm, ": truncated: data section starts at ", f.data_offset_,
                      " past end of file (", bytes.size(), " bytes)");
  const uint64_t data_size = n_tensors > 0 ? bytes.size() - f.data_offset_ : 0;
  for (const auto& t : f.tensors_) {
    auto end = checked_add(t.offset, t.size);
    if (!end || *end > data_size)
      return make_error(nm, ": tensor '", printable(t.name), "': data [", t.offset, ", +", t.size,
                        ") runs past end of file (data section is ", data_size, " bytes)");
  }
  // Overlap check on tensors sorted by offset.
  std::vector<const GgufTensorInfo*> order;
  order.reserve(f.tensors_.size());
  for (const auto& t : f.tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i - 1]->size > 0 && order[i - 1]->offset + order[i - 1]->size > order[i]->offset)
      return make_error(nm, ": tensor '", printable(order[i]->name), "': data overlaps tensor '",
                        printable(order[i - 1]->name), "'");
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : kvs_)
    if (k == key) return &v;
  return nullptr;
}

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return make_error(name_, ": missing metadata key '", printable(key), "'");
  auto u = v->as_uint();
  if (!u) return make_error(name_, ": metadata key '", printable(key), "' is not a non-negative integer");
  return *u;
}
Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return make_error(name_, ": missing metadata key '", printable(key), "'");
  auto d = v->as_float();
  if (!d) return make_error(name_, ": metadata key '", printable(key), "' is not a number");
  return *d;
}
Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return make_error(name_, ": missing metadata key '", printable(key), "'");
  const std::string* s = v->as_string();
  if (!s) return make_error(name_, ": metadata key '", printable(key), "' is not a string");
  return *s;
}
std::string GgufFile::get_string_or(std::string_view key, std::string def) const {
  const GgufValue* v = find(key);
  if (v && v->as_string()) return *v->as_string();
  return def;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

uint64_t GgufFile::tensor_data_bytes() const {
  uint64_t s = 0;
  for (const auto& t : tensors_) s += t.size;
  return s;
}

void GgufFile::release(const GgufTensorInfo& t) const {
  if (map_) map_->release(data_offset_ + t.offset, t.size);
}

}  // namespace qforge
