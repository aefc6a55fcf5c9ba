#include "formats/covariance.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "formats/untrusted_text.h"

namespace qforge {
namespace {

constexpr uint32_t kVersion = 1;
constexpr const char* kMapKey = "qforge.covariance.map";

uint64_t align32(uint64_t v) {
  return (v + 31) / 32 * 32;
}

std::vector<GgufKv> meta_kvs(const std::vector<CovarianceSpec>& specs, const CovarianceMeta& m) {
  std::vector<std::string> map;
  for (const auto& s : specs)
    for (const auto& w : s.weights) map.push_back(w + "\t" + s.name);
  return {{"general.type", GgufValue::string("covariance")},
          {"qforge.covariance.version", GgufValue::u32(kVersion)},
          {"imatrix.chunk_count", GgufValue::u32(m.chunk_count)},
          {"imatrix.chunk_size", GgufValue::u32(m.chunk_size)},
          {"imatrix.datasets", GgufValue::string_array(m.datasets)},
          {kMapKey, GgufValue::string_array(map)}};
}

Status check_specs(const std::string& path, const std::vector<CovarianceSpec>& specs) {
  if (specs.empty()) return make_error(path, ": no covariances to write");
  std::set<std::string> seen;
  for (const auto& s : specs) {
    if (s.n == 0 || s.counts.empty() || s.weights.empty())
      return make_error(path, ": covariance '", s.name, "' has no matrices or no weights");
    for (const auto& w : s.weights)
      if (!seen.insert(w).second)
        return make_error(path, ": weight '", w, "' is covered by two covariances");
  }
  return ok_status();
}

// Reads the map and checks each covariance tensor it names.
Result<CovarianceView> view_of(const GgufFile& f, const std::string& cov) {
  const GgufTensorInfo* t = f.find_tensor(cov);
  const GgufTensorInfo* c = f.find_tensor(cov + ".counts");
  if (!t || !c)
    return make_error(f.path(), ": covariance tensor '", printable(cov), "' or its counts missing");
  if (t->type != Type::F32 || c->type != Type::F32)
    return make_error(f.path(), ": covariance tensor '", printable(cov), "' must be F32");
  const auto& d = t->dims;
  if (d.size() < 2 || d.size() > 3 || d[0] == 0 || d[0] != d[1])
    return make_error(f.path(), ": covariance tensor '", printable(cov), "' is not n x n x n_mat");
  const uint64_t n_mat = d.size() == 3 ? d[2] : 1;
  if (n_mat == 0 || n_mat > UINT32_MAX || c->n_elements() != n_mat)
    return make_error(f.path(), ": tensor '", printable(c->name), "' has ", c->n_elements(),
                      " counts for ", n_mat, " matrices");
  CovarianceView v;
  v.name = cov;
  v.n = d[0];
  v.n_mat = static_cast<uint32_t>(n_mat);
  v.data = reinterpret_cast<const float*>(f.tensor_data(*t).data());
  v.counts = {reinterpret_cast<const float*>(f.tensor_data(*c).data()), n_mat};
  for (float x : v.counts)
    if (!std::isfinite(x) || x < 0)
      return make_error(f.path(), ": tensor '", printable(c->name), "': bad count ", x);
  return v;
}

}  // namespace

std::string covariance_path_for(const std::string& imatrix_path) {
  return imatrix_path + ".cov";
}

Result<std::shared_ptr<const CovarianceFile>> open_covariance_beside(
    const std::string& imatrix_path) {
  const std::string path = covariance_path_for(imatrix_path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::shared_ptr<const CovarianceFile>();
  QF_TRY(CovarianceFile c, CovarianceFile::open(path));
  return std::make_shared<const CovarianceFile>(std::move(c));
}

Result<CovarianceFile> CovarianceFile::open(const std::string& path) {
  QF_TRY(GgufFile g, GgufFile::open(path));
  return from_gguf(std::make_shared<const GgufFile>(std::move(g)));
}

Result<CovarianceFile> CovarianceFile::from_gguf(std::shared_ptr<const GgufFile> file) {
  const GgufFile& f = *file;
  if (f.get_string_or("general.type", "") != "covariance")
    return make_error(f.path(), ": not a covariance file (general.type is not 'covariance')");
  QF_TRY(uint64_t version, f.get_uint("qforge.covariance.version"));
  if (version != kVersion)
    return make_error(f.path(), ": covariance format version ", version, " (this build reads ",
                      kVersion, ")");
  CovarianceFile out;
  if (auto v = f.find("imatrix.chunk_count"); v && v->as_uint())
    out.chunk_count_ = static_cast<uint32_t>(*v->as_uint());
  if (auto v = f.find("imatrix.chunk_size"); v && v->as_uint())
    out.chunk_size_ = static_cast<uint32_t>(*v->as_uint());
  if (auto v = f.find("imatrix.datasets"); v && v->as_array())
    for (const auto& s : v->as_array()->items)
      if (s.as_string()) out.datasets_.push_back(*s.as_string());
  const GgufValue* map = f.find(kMapKey);
  if (!map || !map->as_array() || map->as_array()->elem_type != GgufType::STRING)
    return make_error(f.path(), ": '", kMapKey, "' missing or not a string array");
  std::map<std::string, CovarianceView, std::less<>> views;  // by covariance name
  for (const auto& item : map->as_array()->items) {
    const std::string& entry = *item.as_string();
    const size_t tab = entry.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == entry.size())
      return make_error(f.path(), ": bad map entry '", printable(entry), "' (want WEIGHT\\tCOV)");
    const std::string weight = entry.substr(0, tab), cov = entry.substr(tab + 1);
    auto it = views.find(cov);
    if (it == views.end()) {
      QF_TRY(CovarianceView v, view_of(f, cov));
      it = views.emplace(cov, std::move(v)).first;
    }
    if (!out.map_.emplace(weight, it->second).second)
      return make_error(f.path(), ": weight '", printable(weight), "' mapped twice");
  }
  out.file_ = std::move(file);
  return out;
}

std::optional<CovarianceView> CovarianceFile::find(std::string_view weight_name) const {
  auto it = map_.find(weight_name);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> CovarianceFile::weights() const {
  std::vector<std::string> w;
  for (const auto& [k, v] : map_) w.push_back(k);
  return w;
}

uint64_t covariance_file_bytes(const std::vector<CovarianceSpec>& specs,
                               const CovarianceMeta& meta) {
  std::vector<GgufTensorInfo> infos;
  uint64_t data = 0;
  for (const auto& s : specs) {
    const uint64_t n_mat = s.counts.size();
    infos.push_back({s.name, {s.n, s.n, n_mat}, Type::F32, 0, 0});
    infos.push_back({s.name + ".counts", {n_mat}, Type::F32, 0, 0});
    data += align32(s.n * s.n * n_mat * 4) + align32(n_mat * 4);
  }
  return align32(gguf_serialize_header(3, meta_kvs(specs, meta), infos).size()) + data;
}

Status write_covariance(const std::string& path, const std::vector<CovarianceSpec>& specs,
                        const CovarianceMeta& meta, const CovarianceFill& fill, bool overwrite) {
  QF_CHECK(check_specs(path, specs));
  GgufWriterOptions o;
  o.overwrite = overwrite;
  QF_TRY(GgufWriter w, GgufWriter::create(path, o));
  for (auto& [k, v] : meta_kvs(specs, meta)) w.set_kv(k, v);
  for (const auto& s : specs) {
    const uint64_t n_mat = s.counts.size();
    QF_CHECK(w.add_tensor(s.name, {s.n, s.n, n_mat}, Type::F32));
    QF_CHECK(w.add_tensor(s.name + ".counts", {n_mat}, Type::F32));
  }
  QF_CHECK(w.write_header());
  for (size_t i = 0; i < specs.size(); ++i) {
    const CovarianceSpec& s = specs[i];
    std::vector<float> buf(s.n * s.n);
    for (uint32_t m = 0; m < s.counts.size(); ++m) {
      std::fill(buf.begin(), buf.end(), 0.0f);
      fill(i, m, buf);
      QF_CHECK(
          w.append_tensor_data({reinterpret_cast<const uint8_t*>(buf.data()), buf.size() * 4}));
    }
    QF_CHECK(w.finish_tensor());
    std::vector<float> counts(s.counts.begin(), s.counts.end());
    QF_CHECK(
        w.write_tensor_data({reinterpret_cast<const uint8_t*>(counts.data()), counts.size() * 4}));
  }
  QF_TRY(std::string digest, w.commit());
  (void)digest;
  return ok_status();
}

}  // namespace qforge
