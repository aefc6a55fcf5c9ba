// Per-tensor SHA-256 manifests (JSON), in the layout of the project's reference
// *.tensors.json files: {"source", "file_bytes", "gguf_version", "kv": {scalar KVs; arrays as
// "array[N]"}, "tensors": {name: {"dims", "type", "bytes", "sha256"}}}, plus "kv_types"
// ({key: "u32" | "array[string]" ...}) and "kv_array_sha256" ({key: SHA-256 of the array KV's
// GGUF encoding}) so that every header byte is covered. Checks use only the fields a manifest
// has (the reference manifests lack "gguf_version", "kv_types", "kv_array_sha256", some "bytes"). A
// manifest pins a corruption to the tensor that holds it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "formats/gguf.h"

namespace qforge {

// A KV as JSON: scalars as numbers/bools/strings (raw string bytes), arrays as "array[N]".
nlohmann::json gguf_value_to_json(const GgufValue& v);

nlohmann::json make_tensor_manifest(const GgufFile& f);

struct ManifestMismatch {
  std::string tensor;  // empty for file-level problems
  std::string reason;
};

// Compares the file with a manifest: the file size, version and every metadata key listed must
// match (value, type; arrays by length and contents hash), every tensor listed must exist with the
// same dims, type, byte size and SHA-256; tensors missing from the manifest are reported too.
// Returns the list of mismatches (empty = match; tensor mismatches name the tensor). An error only
// when the manifest itself is malformed.
Result<std::vector<ManifestMismatch>> check_tensor_manifest(const GgufFile& f,
                                                            const nlohmann::json& manifest);

}  // namespace qforge
