// libFuzzer target for the GGUF reader: any byte string must parse or give an error, never
// crash, leak or read out of bounds; what parses must be internally consistent (every tensor's
// data inside the buffer) and safe to walk (KVs rendered, tensor data hashed, its own
// manifest matches).
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "formats/gguf.h"
#include "formats/tensor_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = qforge::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!f.ok()) {
    const auto& m = f.error().message;  // one non-empty line (names may hold control bytes)
    if (m.empty() || m.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  for (const auto& [key, value] : f->kvs()) (void)value.to_display();
  for (const auto& t : f->tensors()) {
    if (f->data_offset() + t.offset + t.size > size) std::abort();
    if (f->find_tensor(t.name) != &t) std::abort();
  }
  // A file always matches its own manifest, and the manifest serialises (names need not be
  // UTF-8).
  nlohmann::json m = qforge::make_tensor_manifest(*f);
  auto mism = qforge::check_tensor_manifest(*f, m);
  if (!mism.ok() || !mism->empty()) std::abort();
  (void)m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
