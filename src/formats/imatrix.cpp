#include "formats/imatrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/checked.h"
#include "formats/untrusted_text.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

// A tensor name longer than this is certainly not a real one (llama.cpp caps GGUF names at 64).
constexpr int32_t kMaxNameLen = 4096;
// Smallest legacy entry: name length, 1 name byte, ncall, nval, one value.
constexpr uint64_t kMinDatEntry = 4 + 1 + 4 + 4 + 4;

class DatCursor {
 public:
  DatCursor(std::span<const uint8_t> b, const std::string& name) : b_(b), name_(name) {}
  uint64_t remaining() const { return b_.size() - pos_; }
  uint64_t pos() const { return pos_; }
  Result<int32_t> i32(const std::string& what) {
    if (remaining() < 4) return make_error(name_, ": truncated while reading ", what);
    int32_t v;
    std::memcpy(&v, b_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  std::span<const uint8_t> take(uint64_t n) {
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

Status check_values(const std::string& file, const std::string& entry, std::span<const float> v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      return make_error(file, ": entry '", entry, "': value ", i, " is ", v[i],
                        " (must be finite and >= 0)");
  return ok_status();
}

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

}  // namespace

const ImatrixEntry* Imatrix::find(std::string_view tensor_name) const {
  for (const auto& e : entries)
    if (e.name == tensor_name) return &e;
  return nullptr;
}

Result<Imatrix> parse_imatrix_dat(std::span<const uint8_t> bytes, const std::string& name) {
  DatCursor c(bytes, name);
  Imatrix m;
  m.source = name;
  m.format = "dat";
  QF_TRY(int32_t n_entries, c.i32("entry count"));
  if (n_entries < 1) return make_error(name, ": not an imatrix file (entry count ", n_entries, ")");
  if (static_cast<uint64_t>(n_entries) > c.remaining() / kMinDatEntry)
    return make_error(name, ": entry count ", n_entries, " does not fit in ", bytes.size(),
                      " bytes");
  std::unordered_set<std::string> seen;
  m.entries.reserve(n_entries);
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string where = cat("entry ", i);
    QF_TRY(int32_t len, c.i32(where + " name length"));
    if (len < 1 || len > kMaxNameLen || static_cast<uint64_t>(len) > c.remaining())
      return make_error(name, ": ", where, ": bad name length ", len);
    auto nb = c.take(static_cast<uint64_t>(len));
    ImatrixEntry e;
    e.name.assign(reinterpret_cast<const char*>(nb.data()), nb.size());
    if (e.name.find('\0') != std::string::npos)
      return make_error(name, ": ", where, ": name contains a NUL byte");
    QF_TRY(int32_t ncall, c.i32("entry '" + printable(e.name) + "' call count"));
    QF_TRY(int32_t nval, c.i32("entry '" + printable(e.name) + "' value count"));
    if (ncall < 0)
      return make_error(name, ": entry '", printable(e.name), "': negative call count ", ncall);
    if (nval < 1 || static_cast<uint64_t>(nval) > c.remaining() / 4)
      return make_error(name, ": entry '", printable(e.name), "': value count ", nval,
                        " does not fit in the file");
    if (!seen.insert(e.name).second)
      return make_error(name, ": entry '", printable(e.name), "' appears twice");
    auto vb = c.take(static_cast<uint64_t>(nval) * 4);
    e.importance.resize(nval);
    std::memcpy(e.importance.data(), vb.data(), vb.size());
    QF_CHECK(check_values(name, printable(e.name), e.importance));
    if (ncall > 0)
      for (auto& v : e.importance) v /= static_cast<float>(ncall);
    e.count = static_cast<uint64_t>(ncall);
    m.entries.push_back(std::move(e));
  }
  if (c.remaining() > 0) {  // trailer: chunk count and dataset name
    QF_TRY(int32_t chunks, c.i32("chunk count"));
    QF_TRY(int32_t dlen, c.i32("dataset name length"));
    if (chunks < 0) return make_error(name, ": negative chunk count ", chunks);
    if (dlen < 0 || static_cast<uint64_t>(dlen) > c.remaining())
      return make_error(name, ": bad dataset name length ", dlen);
    auto db = c.take(static_cast<uint64_t>(dlen));
    m.chunk_count = static_cast<uint32_t>(chunks);
    if (dlen > 0) m.datasets.emplace_back(reinterpret_cast<const char*>(db.data()), db.size());
    if (c.remaining() > 0)
      return make_error(name, ": ", c.remaining(), " unexpected bytes after the dataset name");
  }
  return m;
}

Result<Imatrix> imatrix_from_gguf(const GgufFile& file) {
  const std::string& name = file.path();
  Imatrix m;
  m.source = name;
  m.format = "gguf";
  if (const GgufValue* v = file.find("imatrix.datasets")) {
    const GgufArray* a = v->as_array();
    if (!a || a->elem_type != GgufType::STRING)
      return make_error(name, ": key 'imatrix.datasets' is not an array of strings");
    for (const auto& item : a->items) m.datasets.push_back(*item.as_string());
  }
  if (const GgufValue* v = file.find("imatrix.chunk_count")) {
    auto n = v->as_uint();
    if (!n || *n > UINT32_MAX) return make_error(name, ": key 'imatrix.chunk_count' is invalid");
    m.chunk_count = static_cast<uint32_t>(*n);
  }
  constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";
  for (const auto& t : file.tensors()) {
    if (t.name.size() <= kSums.size() ||
        t.name.compare(t.name.size() - kSums.size(), kSums.size(), kSums) != 0)
      continue;
    ImatrixEntry e;
    e.name = t.name.substr(0, t.name.size() - kSums.size());
    const GgufTensorInfo* ct = file.find_tensor(e.name + std::string(kCounts));
    if (!ct)
      return make_error(name, ": tensor '", printable(t.name), "' has no matching '", kCounts, "'");
    if (t.type != Type::F32 || ct->type != Type::F32)
      return make_error(name, ": imatrix tensors of '", printable(e.name), "' must be F32");
    if (t.dims.empty() || t.dims.size() > 2 || t.dims[0] == 0)
      return make_error(name, ": tensor '", printable(t.name), "': bad dims");
    const uint64_t n_cols = t.dims[0];
    const uint64_t n_mat = t.dims.size() == 2 ? t.dims[1] : 1;
    if (n_mat == 0 || n_mat > UINT32_MAX || ct->n_elements() != n_mat)
      return make_error(name, ": tensor '", printable(ct->name), "' has ", ct->n_elements(),
                        " counts for ", n_mat, " matrices");
    auto sums_b = file.tensor_data(t);
    auto counts_b = file.tensor_data(*ct);
    std::vector<float> sums(t.n_elements()), counts(n_mat);
    std::memcpy(sums.data(), sums_b.data(), sums.size() * 4);
    std::memcpy(counts.data(), counts_b.data(), counts.size() * 4);
    QF_CHECK(check_values(name, printable(t.name), sums));
    QF_CHECK(check_values(name, printable(ct->name), counts));
    // Counts are token counts: 0, or a whole number of tokens. A fractional (e.g. denormal)
    // count would blow sums / count up to Inf, and a huge one overflow the integer count.
    for (uint64_t j = 0; j < n_mat; ++j)
      if (counts[j] != 0 && !(counts[j] >= 1 && counts[j] <= 1e15f))
        return make_error(name, ": tensor '", printable(ct->name), "': count ", counts[j],
                          " of matrix ", j, " is not a token count");
    e.n_mat = static_cast<uint32_t>(n_mat);
    e.count = static_cast<uint64_t>(counts[0]);
    e.importance.resize(sums.size());
    for (uint64_t j = 0; j < n_mat; ++j)
      for (uint64_t i = 0; i < n_cols; ++i) {
        const uint64_t k = j * n_cols + i;
        // A matrix that never saw a token carries no information: neutral importance.
        e.importance[k] = counts[j] > 0 ? sums[k] / counts[j] : 1.0f;
      }
    m.entries.push_back(std::move(e));
  }
  if (m.entries.empty())
    return make_error(name, ": GGUF file holds no imatrix ('*.in_sum2') tensors");
  return m;
}

Result<Imatrix> load_imatrix(const std::string& path) {
  QF_TRY(MappedFile mf, MappedFile::open(path));
  if (mf.size() >= 4 && std::memcmp(mf.data(), "GGUF", 4) == 0) {
    QF_TRY(GgufFile g, GgufFile::parse(mf.bytes(), path));
    return imatrix_from_gguf(g);
  }
  return parse_imatrix_dat(mf.bytes(), path);
}

std::vector<uint8_t> serialize_imatrix_dat(const Imatrix& m) {
  std::vector<uint8_t> out;
  put<int32_t>(out, static_cast<int32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    put<int32_t>(out, static_cast<int32_t>(e.name.size()));
    out.insert(out.end(), e.name.begin(), e.name.end());
    // The legacy call count is an i32 and values are f32: clamp, so that a GGUF imatrix with a
    // huge token count (or a huge importance) still gives a file the reader accepts.
    const auto ncall =
        static_cast<int32_t>(std::clamp<uint64_t>(e.count, 1, static_cast<uint64_t>(INT32_MAX)));
    put<int32_t>(out, ncall);
    put<int32_t>(out, static_cast<int32_t>(e.importance.size()));
    for (float v : e.importance)
      put<float>(out, std::min(v * static_cast<float>(ncall), std::numeric_limits<float>::max()));
  }
  if (m.chunk_count > 0 || !m.datasets.empty()) {
    put<int32_t>(out, static_cast<int32_t>(m.chunk_count));
    const std::string ds = m.datasets.empty() ? std::string() : m.datasets.front();
    put<int32_t>(out, static_cast<int32_t>(ds.size()));
    out.insert(out.end(), ds.begin(), ds.end());
  }
  return out;
}

Status write_imatrix_dat(const std::string& path, const Imatrix& m, bool overwrite) {
  AtomicFileOptions o;
  o.overwrite = overwrite;
  QF_TRY(AtomicFile f, AtomicFile::create(path, o));
  auto bytes = serialize_imatrix_dat(m);
  QF_CHECK(f.write(bytes.data(), bytes.size()));
  return f.commit();
}

Status write_imatrix_gguf(const std::string& path, const Imatrix& m, bool overwrite) {
  GgufWriterOptions o;
  o.overwrite = overwrite;
  QF_TRY(GgufWriter w, GgufWriter::create(path, o));
  w.set_kv("general.type", GgufValue::string("imatrix"));
  w.set_kv("imatrix.datasets", GgufValue::string_array(m.datasets));
  w.set_kv("imatrix.chunk_count", GgufValue::u32(m.chunk_count));
  for (const auto& e : m.entries) {
    const uint64_t n_mat = std::max<uint32_t>(e.n_mat, 1);
    QF_CHECK(w.add_tensor(e.name + ".in_sum2", {e.importance.size() / n_mat, n_mat}, Type::F32));
    QF_CHECK(w.add_tensor(e.name + ".counts", {1, n_mat}, Type::F32));
  }
  QF_CHECK(w.write_header());
  for (const auto& e : m.entries) {
    const float cnt = static_cast<float>(e.count);
    std::vector<float> sums(e.importance.size());
    for (size_t i = 0; i < sums.size(); ++i) sums[i] = e.importance[i] * cnt;
    std::vector<float> counts(std::max<uint32_t>(e.n_mat, 1), cnt);
    QF_CHECK(w.write_tensor_data({reinterpret_cast<const uint8_t*>(sums.data()), sums.size() * 4}));
    QF_CHECK(
        w.write_tensor_data({reinterpret_cast<const uint8_t*>(counts.data()), counts.size() * 4}));
  }
  QF_TRY(std::string digest, w.commit());
  (void)digest;
  return ok_status();
}

}  // namespace qforge
