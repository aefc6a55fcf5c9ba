// libFuzzer target for the importance-matrix readers: the first byte picks the format (legacy
// .dat image, or a GGUF file read as an imatrix), the rest is the file. Any byte string must
// parse or give a non-empty one-line error, never crash or read out of bounds; what parses must
// be consistent (unique names, n_mat matrices of equal width, finite non-negative importances)
// and survive a round trip through the .dat writer with the same names and shapes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/imatrix.h"

namespace {

template <class R>
bool failed_cleanly(const R& r) {
  if (r.ok()) return false;
  const auto& m = r.error().message;
  if (m.empty() || m.find('\n') != std::string::npos) std::abort();
  return true;
}

void check_consistent(const qforge::Imatrix& m) {
  std::unordered_set<std::string> names;
  for (const auto& e : m.entries) {
    if (e.name.empty() || !names.insert(e.name).second) std::abort();
    if (e.n_mat == 0 || e.importance.empty() || e.importance.size() % e.n_mat != 0) std::abort();
    for (float v : e.importance)
      if (!std::isfinite(v) || v < 0) std::abort();
  }
}

void round_trip(const qforge::Imatrix& m) {
  // Stacked (n_mat > 1) entries exist only in the GGUF format; the .dat writer flattens them.
  auto bytes = qforge::serialize_imatrix_dat(m);
  auto back = qforge::parse_imatrix_dat(bytes, "roundtrip.dat");
  if (m.entries.empty()) return;  // a GGUF without imatrix tensors: nothing to write back
  if (!back.ok() || back->entries.size() != m.entries.size()) std::abort();
  for (size_t i = 0; i < m.entries.size(); ++i)
    if (back->entries[i].name != m.entries[i].name ||
        back->entries[i].importance.size() != m.entries[i].importance.size())
      std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> rest(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto m = qforge::parse_imatrix_dat(rest, "fuzz.dat");
    if (failed_cleanly(m)) return 0;
    if (m->entries.empty()) std::abort();
    check_consistent(*m);
    round_trip(*m);
  } else {
    auto f = qforge::GgufFile::parse(rest, "fuzz.imatrix.gguf");
    if (failed_cleanly(f)) return 0;
    auto m = qforge::imatrix_from_gguf(*f);
    if (failed_cleanly(m)) return 0;
    check_consistent(*m);
    round_trip(*m);
  }
  return 0;
}
