// Per-tensor SHA-256 manifests (JSON), in the layout of the project's reference
// *.tensors.json files: {"source", "file_bytes", "kv": {scalar KVs; arrays as "array[N]"},
// "tensors": {name: {"dims", "type", "bytes", "sha256"}}}. A manifest pins a corruption to the
// tensor that holds it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

nlohmann::json make_tensor_manifest(const GgufFile& f);

struct ManifestMismatch {
  std::string tensor;  // empty for file-level problems
  std::string reason;
};

// Compares the file with a manifest: every tensor listed must exist with the same dims, type,
// byte size and SHA-256; tensors missing from the manifest are reported too. Returns the list
// of mismatches (empty = match). An error only when the manifest itself is malformed.
Result<std::vector<ManifestMismatch>> check_tensor_manifest(const GgufFile& f,
                                                            const nlohmann::json& manifest);

}  // namespace qforge
