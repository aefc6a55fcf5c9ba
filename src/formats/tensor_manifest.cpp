#include "formats/tensor_manifest.h"

#include <filesystem>
#include <set>

#include "io/sha256.h"

namespace qforge {
namespace {

// Names and strings come from untrusted files and need not be UTF-8; messages replace bad bytes.
constexpr auto kLossy = nlohmann::json::error_handler_t::replace;

std::string kv_type_name(const GgufValue& v) {
  std::string t(gguf_type_name(v.type()));
  if (const GgufArray* a = v.as_array()) t += "[" + std::string(gguf_type_name(a->elem_type)) + "]";
  return t;
}

// An array's contents are summarised by the SHA-256 of the KV's exact GGUF encoding, so a
// changed token or merge is caught without listing them.
std::string kv_array_sha256(const std::string& key, const GgufValue& v) {
  return sha256_hex(gguf_serialize_header(3, {{key, v}}, {}));
}

}  // namespace

nlohmann::json make_tensor_manifest(const GgufFile& f) {
  nlohmann::json j;
  j["source"] = std::filesystem::path(f.path()).filename().string() +
                " (qforge); sha256 of each tensor's raw data bytes";
  j["file_bytes"] = f.file_size();
  j["gguf_version"] = f.version();
  nlohmann::json kv = nlohmann::json::object();
  nlohmann::json kv_types = nlohmann::json::object();
  nlohmann::json kv_arrays = nlohmann::json::object();
  for (const auto& [k, v] : f.kvs()) {
    kv[k] = gguf_value_to_json(v);
    kv_types[k] = kv_type_name(v);
    if (v.is_array()) kv_arrays[k] = kv_array_sha256(k, v);
  }
  j["kv"] = kv;
  j["kv_types"] = kv_types;
  j["kv_array_sha256"] = kv_arrays;
  nlohmann::json ts = nlohmann::json::object();
  for (const auto& t : f.tensors()) {
    ts[t.name] = {{"dims", t.dims},
                  {"type", std::string(type_name(t.type))},
                  {"bytes", t.size},
                  {"sha256", sha256_hex(f.tensor_data(t))}};
  }
  j["tensors"] = ts;
  return j;
}

Result<std::vector<ManifestMismatch>> check_tensor_manifest(const GgufFile& f,
                                                            const nlohmann::json& m) {
  if (!m.is_object() || !m.contains("tensors") || !m["tensors"].is_object())
    return make_error("manifest has no \"tensors\" object");
  std::vector<ManifestMismatch> out;
  if (m.contains("file_bytes") && m["file_bytes"].is_number_unsigned() &&
      m["file_bytes"].get<uint64_t>() != f.file_size())
    out.push_back({"", "file size " + std::to_string(f.file_size()) + " != manifest's " +
                           std::to_string(m["file_bytes"].get<uint64_t>())});
  if (m.contains("gguf_version") && m["gguf_version"] != f.version())
    out.push_back({"", "GGUF version " + std::to_string(f.version()) + " != manifest's " +
                           m["gguf_version"].dump(-1, ' ', false, kLossy)});
  // Metadata: every key the manifest lists must hold the same value (arrays by length).
  if (m.contains("kv") && m["kv"].is_object()) {
    for (const auto& [key, want] : m["kv"].items()) {
      const GgufValue* v = f.find(key);
      if (!v)
        out.push_back({"", "metadata key '" + key + "' missing from the file"});
      else if (gguf_value_to_json(*v) != want)
        out.push_back({"", "metadata key '" + key + "' is " +
                               gguf_value_to_json(*v).dump(-1, ' ', false, kLossy) +
                               ", manifest has " + want.dump(-1, ' ', false, kLossy)});
    }
  }
  if (m.contains("kv_types") && m["kv_types"].is_object()) {
    for (const auto& [key, want] : m["kv_types"].items()) {
      const GgufValue* v = f.find(key);
      if (v && want != kv_type_name(*v))
        out.push_back({"", "metadata key '" + key + "' has type " + kv_type_name(*v) +
                               ", manifest has " + want.dump(-1, ' ', false, kLossy)});
    }
  }
  if (m.contains("kv_array_sha256") && m["kv_array_sha256"].is_object()) {
    for (const auto& [key, want] : m["kv_array_sha256"].items()) {
      const GgufValue* v = f.find(key);
      if (v && v->is_array() && want != kv_array_sha256(key, *v))
        out.push_back({"", "metadata array '" + key + "' differs (SHA-256 of its contents)"});
    }
  }
  std::set<std::string> listed;
  for (const auto& [name, e] : m["tensors"].items()) {
    listed.insert(name);
    const GgufTensorInfo* t = f.find_tensor(name);
    if (!t) {
      out.push_back({name, "missing from the file"});
      continue;
    }
    if (!e.is_object()) return make_error("manifest entry for '", name, "' is not an object");
    if (e.contains("dims") && e["dims"] != nlohmann::json(t->dims))
      out.push_back({name, "dims differ"});
    if (e.contains("type") && e["type"] != std::string(type_name(t->type)))
      out.push_back({name, "type " + std::string(type_name(t->type)) + " != manifest's " +
                               e["type"].dump(-1, ' ', false, kLossy)});
    if (e.contains("bytes") && e["bytes"] != t->size) out.push_back({name, "byte size differs"});
    if (e.contains("sha256") && e["sha256"].is_string() &&
        e["sha256"].get<std::string>() != sha256_hex(f.tensor_data(*t)))
      out.push_back({name, "SHA-256 of its data differs (corrupt or modified)"});
  }
  for (const auto& t : f.tensors())
    if (!listed.count(t.name)) out.push_back({t.name, "not in the manifest"});
  return out;
}

nlohmann::json gguf_value_to_json(const GgufValue& v) {
  if (const GgufArray* a = v.as_array()) return "array[" + std::to_string(a->items.size()) + "]";
  if (const std::string* s = v.as_string()) return *s;
  switch (v.type()) {
    case GgufType::BOOL:
      return *v.as_bool();
    case GgufType::F32:
    case GgufType::F64:
      return *v.as_float();
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return *v.as_int();
    default:
      return *v.as_uint();
  }
}

}  // namespace qforge
