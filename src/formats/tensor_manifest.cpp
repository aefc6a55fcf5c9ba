#include "formats/tensor_manifest.h"

#include <filesystem>
#include <set>

#include "io/sha256.h"

namespace qforge {
namespace {

nlohmann::json kv_to_json(const GgufValue& v) {
  if (const GgufArray* a = v.as_array()) return "array[" + std::to_string(a->items.size()) + "]";
  if (const std::string* s = v.as_string()) return *s;
  switch (v.type()) {
    case GgufType::BOOL: return *v.as_bool();
    case GgufType::F32: case GgufType::F64: return *v.as_float();
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
      return *v.as_int();
    default: return *v.as_uint();
  }
}

}  // namespace

nlohmann::json make_tensor_manifest(const GgufFile& f) {
  nlohmann::json j;
  j["source"] = std::filesystem::path(f.path()).filename().string() +
                " (qforge); sha256 of each tensor's raw data bytes";
  j["file_bytes"] = f.file_size();
  nlohmann::json kv = nlohmann::json::object();
  for (const auto& [k, v] : f.kvs()) kv[k] = kv_to_json(v);
  j["kv"] = kv;
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
                               e["type"].dump()});
    if (e.contains("bytes") && e["bytes"] != t->size) out.push_back({name, "byte size differs"});
    if (e.contains("sha256") && e["sha256"].is_string() &&
        e["sha256"].get<std::string>() != sha256_hex(f.tensor_data(*t)))
      out.push_back({name, "SHA-256 of its data differs (corrupt or modified)"});
  }
  for (const auto& t : f.tensors())
    if (!listed.count(t.name)) out.push_back({t.name, "not in the manifest"});
  return out;
}

}  // namespace qforge
