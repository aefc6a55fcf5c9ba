// A vocabulary-only GGUF for llama.cpp's llama-tokenize (which loads with vocab_only): the
// tokenizer KVs qforge's converter writes for an HF tokenizer folder, plus the hyper-parameter
// KVs of a reference manifest (../shared/arch/NAME/ref-manifest.json: integers as u32, reals
// as f32, as llama.cpp's converter types them), and no tensors. A yardstick helper for
// bench/llama_tokenize_compare.sh when full probe conversions are not at hand.
//   vocab_gguf_bench TOKENIZER_DIR CONFIG_JSON MANIFEST_JSON OUT.gguf [ARCH]
// ARCH renames the manifest's architecture (e.g. gemma2 from gemma3's manifest).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/hf_tokenizer.h"

namespace {

using nlohmann::json;
using qforge::GgufValue;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return json::parse(s, nullptr, false);
}

std::optional<GgufValue> value_of(const json& v) {
  if (v.is_boolean()) return GgufValue::boolean(v.get<bool>());
  if (v.is_string()) return GgufValue::string(v.get<std::string>());
  if (v.is_number_unsigned()) return GgufValue::u32(v.get<uint32_t>());
  if (v.is_number_integer()) return GgufValue::i32(v.get<int32_t>());
  if (v.is_number_float()) return GgufValue::f32(v.get<float>());
  return std::nullopt;  // arrays (summarised in manifests) are not needed to load a vocabulary
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: vocab_gguf_bench TOKENIZER_DIR CONFIG_JSON MANIFEST_JSON OUT.gguf "
                 "[ARCH]\n");
    return 2;
  }
  const json c = read_json(argv[2]);
  const json man = read_json(argv[3]);
  if (c.is_discarded() || man.is_discarded() || !man.contains("kv")) {
    std::fprintf(stderr, "bad config or manifest\n");
    return 1;
  }
  qforge::HfConfig cfg;
  cfg.arch = c.value("model_type", "");
  cfg.vocab_size = c.value("vocab_size", uint64_t{0});
  if (c.contains("bos_token_id") && c["bos_token_id"].is_number_integer())
    cfg.bos_token_id = c["bos_token_id"].get<int64_t>();
  if (c.contains("eos_token_id") && c["eos_token_id"].is_number_integer())
    cfg.eos_token_id = c["eos_token_id"].get<int64_t>();
  auto kvs = qforge::load_hf_tokenizer(argv[1], cfg);
  if (!kvs.ok()) {
    std::fprintf(stderr, "%s\n", kvs.error().message.c_str());
    return 1;
  }
  auto w = qforge::GgufWriter::create(argv[4]);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.error().message.c_str());
    return 1;
  }
  const std::string from = man["kv"].value("general.architecture", "");
  const std::string to = argc > 5 ? argv[5] : from;
  for (const auto& [k, v] : man["kv"].items()) {
    if (k.rfind("tokenizer.", 0) == 0) continue;
    auto val = value_of(v);
    if (!val) continue;
    std::string key = k;
    if (!from.empty() && key.rfind(from + ".", 0) == 0) key = to + key.substr(from.size());
    if (key == "general.architecture") val = GgufValue::string(to);
    w->set_kv(key, *val);
  }
  for (auto& [k, v] : *kvs) w->set_kv(k, v);
  if (auto s = w->write_header(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  auto sha = w->commit();
  if (!sha.ok()) {
    std::fprintf(stderr, "%s\n", sha.error().message.c_str());
    return 1;
  }
  std::printf("%s %s\n", argv[4], sha->c_str());
  return 0;
}
