#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/checked.h"
#include "formats/untrusted_text.h"

namespace qforge {
namespace {

using nlohmann::json;

// The format caps the header at 100 MB; anything larger is corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeEntry {
  std::string_view name;
  uint32_t size;
  std::optional<Type> type;
};
constexpr DtypeEntry kDtypes[] = {
    {"F64", 8, std::nullopt},     {"F32", 4, Type::F32},        {"F16", 2, Type::F16},
    {"BF16", 2, Type::BF16},      {"I64", 8, std::nullopt},     {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt},     {"U32", 4, std::nullopt},     {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},     {"I8", 1, std::nullopt},      {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt},    {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt},
};

const DtypeEntry* find_dtype(std::string_view name) {
  for (const auto& d : kDtypes)
    if (d.name == name) return &d;
  return nullptr;
}

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Parses the JSON header, rejecting duplicate top-level keys (nlohmann would keep the last one
// silently, hiding a second definition of a tensor).
Result<json> parse_header_json(std::string_view text, const std::string& name) {
  std::set<std::string> seen;
  std::string dup;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      auto k = parsed.get<std::string>();
      if (!seen.insert(k).second && dup.empty()) dup = k;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(name, ": header is not valid JSON");
  if (!dup.empty())
    return make_error(name, ": header: tensor '", printable(dup), "' is defined twice");
  if (!j.is_object()) return make_error(name, ": header is not a JSON object");
  return j;
}

Result<uint64_t> json_u64(const json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return make_error(what, " is not a non-negative integer");
}

}  // namespace

std::optional<uint32_t> safetensors_dtype_size(std::string_view dtype) {
  const auto* d = find_dtype(dtype);
  if (!d) return std::nullopt;
  return d->size;
}

uint64_t SafetensorsTensor::n_elements() const {
  uint64_t n = 1;
  for (auto d : shape) n *= d;  // validated against overflow at parse time
  return n;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  QF_TRY(MappedFile mf, MappedFile::open(path));
  auto map = std::make_shared<MappedFile>(std::move(mf));
  QF_TRY(SafetensorsFile f, parse(map->bytes(), path));
  f.map_ = std::move(map);
  return f;
}

Result<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes, std::string name) {
  SafetensorsFile f;
  f.bytes_ = bytes;
  f.name_ = std::move(name);
  const std::string& nm = f.name_;
  if (bytes.size() < 8)
    return make_error(nm, ": not a safetensors file (", bytes.size(),
                      " bytes, header length missing)");
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data(), 8);
  if (hlen > bytes.size() - 8)
    return make_error(nm, ": header length ", hlen, " exceeds the file size ", bytes.size());
  if (hlen > kMaxHeaderBytes)
    return make_error(nm, ": header length ", hlen, " exceeds the 100 MB limit");
  if (hlen < 2) return make_error(nm, ": header length ", hlen, " is too small");
  f.data_offset_ = 8 + hlen;
  const uint64_t data_size = bytes.size() - f.data_offset_;
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), hlen);
  QF_TRY(json header, parse_header_json(text, nm));

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return make_error(nm, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return make_error(nm, ": __metadata__ key '", printable(m.key()), "' is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = cat(nm, ": tensor '", printable(key), "'");
    if (!v.is_object()) return make_error(what, ": entry is not an object");
    SafetensorsTensor t;
    t.name = key;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) return make_error(what, ": missing dtype");
    t.dtype = dt->get<std::string>();
    const DtypeEntry* de = find_dtype(t.dtype);
    if (!de) return make_error(what, ": unknown dtype '", printable(t.dtype), "'");
    t.type = de->type;
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) return make_error(what, ": missing shape");
    if (sh->size() > 8) return make_error(what, ": ", sh->size(), " dimensions (at most 8)");
    uint64_t nel = 1;
    for (const auto& d : *sh) {
      QF_TRY(uint64_t dim, json_u64(d, what + ": shape entry"));
      t.shape.push_back(dim);
      auto p = checked_mul(nel, dim);
      if (!p) return make_error(what, ": shape ", shape_str(t.shape), " overflows");
      nel = *p;
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      return make_error(what, ": data_offsets must be [begin, end]");
    QF_TRY(t.begin, json_u64((*off)[0], what + ": data_offsets[0]"));
    QF_TRY(t.end, json_u64((*off)[1], what + ": data_offsets[1]"));
    if (t.begin > t.end)
      return make_error(what, ": data_offsets [", t.begin, ", ", t.end, "] are reversed");
    if (t.end > data_size)
      return make_error(what, ": data ends at ", t.end, ", past the ", data_size,
                        " bytes of tensor data in the file");
    auto nbytes = checked_mul(nel, de->size);
    if (!nbytes || *nbytes != t.n_bytes())
      return make_error(what, ": ", t.n_bytes(), " bytes of data, but dtype ", t.dtype, " x shape ",
                        shape_str(t.shape), " needs ",
                        nbytes ? std::to_string(*nbytes) : std::string("more than 2^64"));
    f.tensors_.push_back(std::move(t));
  }

  // No two tensors may share bytes (empty tensors occupy nothing).
  std::vector<const SafetensorsTensor*> order;
  for (const auto& t : f.tensors_)
    if (t.n_bytes() > 0) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      return make_error(nm, ": tensors '", order[i - 1]->name, "' and '", order[i]->name,
                        "' overlap");
  // Keep the file's data order: tensors are then streamed front to back.
  std::stable_sort(f.tensors_.begin(), f.tensors_.end(),
                   [](const auto& a, const auto& b) { return a.begin < b.begin; });
  return f;
}

void SafetensorsFile::release(const SafetensorsTensor& t) const {
  if (map_) map_->release(data_offset_ + t.begin, t.n_bytes());
}

Status SafetensorsCheckpoint::index_tensors() {
  tensors_.clear();
  by_name_.clear();
  for (size_t fi = 0; fi < files_.size(); ++fi)
    for (auto t : files_[fi].tensors()) {
      t.file = fi;
      auto [it, inserted] = by_name_.emplace(t.name, tensors_.size());
      if (!inserted)
        return make_error(files_[fi].path(), ": tensor '", printable(t.name), "' is also in ",
                          files_[tensors_[it->second].file].path());
      tensors_.push_back(std::move(t));
    }
  return ok_status();
}

Result<SafetensorsCheckpoint> SafetensorsCheckpoint::open_files(
    const std::vector<std::string>& paths) {
  SafetensorsCheckpoint c;
  for (const auto& p : paths) {
    QF_TRY(SafetensorsFile f, SafetensorsFile::open(p));
    c.files_.push_back(std::move(f));
  }
  QF_CHECK(c.index_tensors());
  return c;
}

Result<SafetensorsCheckpoint> SafetensorsCheckpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single_path = (fs::path(dir) / "model.safetensors").string();
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec))
      return make_error(dir, ": no model.safetensors or model.safetensors.index.json");
    return open_files({single_path});
  }

  QF_TRY(std::string text, read_file_text(index_path));
  json idx = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (idx.is_discarded() || !idx.is_object())
    return make_error(index_path, ": not a valid JSON object");
  auto wm = idx.find("weight_map");
  if (wm == idx.end() || !wm->is_object() || wm->empty())
    return make_error(index_path, ": missing or empty weight_map");
  // Shards in order of first mention; each a plain file name inside `dir`.
  std::vector<std::string> shards;
  std::map<std::string, std::string> expected;  // tensor -> shard
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return make_error(index_path, ": weight_map entry '", printable(it.key()),
                        "' is not a file name");
    std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      return make_error(index_path, ": weight_map entry '", printable(it.key()), "' names '",
                        printable(shard), "', not a file in the folder");
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    expected[it.key()] = shard;
  }
  std::sort(shards.begin(), shards.end());
  std::vector<std::string> paths;
  for (const auto& s : shards) {
    std::string p = (fs::path(dir) / s).string();
    if (!fs::exists(p, ec)) return make_error(p, ": shard listed in ", index_path, " is missing");
    paths.push_back(std::move(p));
  }
  QF_TRY(SafetensorsCheckpoint c, open_files(paths));
  for (const auto& [name, shard] : expected) {
    const SafetensorsTensor* t = c.find(name);
    const std::string p = (fs::path(dir) / shard).string();
    if (!t)
      return make_error(p, ": tensor '", printable(name),
                        "' listed in the index is not in the shard");
    if (c.file_of(*t) != p)
      return make_error(c.file_of(*t), ": tensor '", printable(name),
                        "' is listed in the index under ", shard);
  }
  return c;
}

const SafetensorsTensor* SafetensorsCheckpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace qforge
