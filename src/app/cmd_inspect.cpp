// qforge inspect FILE [--json]: what a GGUF holds — architecture, hyper-parameters, tokenizer,
// every tensor, totals, bits per weight, file type, and for the families of the architecture
// descriptor (formats/model_family.h) the model's features as the engine reads them (RoPE
// layout and scaling, q/k norm, soft-caps, sliding window, experts, ...).
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "formats/file_type.h"
#include "formats/gguf.h"
#include "formats/model_family.h"
#include "formats/tensor_manifest.h"

namespace qforge {
namespace {

// Arrays are summarised by element type and length; scalars as in manifests.
nlohmann::json kv_json(const GgufValue& v) {
  if (const GgufArray* a = v.as_array())
    return {{"array", std::string(gguf_type_name(a->elem_type))}, {"length", a->items.size()}};
  return gguf_value_to_json(v);
}

void run_inspect(const std::string& path, bool json, bool all_kvs) {
  const OpenedInput in = open_input(path);
  GgufFile f = unwrap(GgufFile::open(in));
  const std::string arch = f.architecture();
  uint64_t n_params = 0, tensor_bytes = 0;
  std::map<std::string, uint64_t> per_type;
  for (const auto& t : f.tensors()) {
    n_params += t.n_elements();
    tensor_bytes += t.size;
    per_type[std::string(type_name(t.type))] += t.size;
  }
  double bpw = n_params ? 8.0 * tensor_bytes / n_params : 0.0;
  std::string ftype = "unknown";
  if (const GgufValue* v = f.find("general.file_type"))
    if (auto id = v->as_uint()) ftype = std::string(file_type_name(*id).value_or("unknown"));
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  size_t n_vocab = tokens && tokens->as_array() ? tokens->as_array()->items.size() : 0;

  // The family's features, or why the file is not one the engine can run.
  auto hparams = read_hparams(f);
  nlohmann::json family = nullptr;
  std::vector<std::string> features;
  if (hparams.ok()) {
    features = family_features(*hparams);
    family = {{"name", std::string(hparams->family->name)},
              {"features", features},
              {"head_dim", hparams->head_dim},
              {"n_rot", hparams->n_rot},
              {"rope_scaling", std::string(rope_scaling_name(hparams->rope_scaling))},
              {"sliding_window", hparams->sliding_window},
              {"n_expert", hparams->n_expert},
              {"n_expert_used", hparams->n_expert_used}};
  }

  // Special token ids (null / "-" when absent).
  auto token_id = [&](std::string_view key) -> nlohmann::json {
    const GgufValue* v = f.find(key);
    if (!v || !v->as_uint()) return nullptr;
    return *v->as_uint();
  };

  if (json) {
    nlohmann::json j;
    j["file"] = path;
    j["gguf_version"] = f.version();
    j["file_bytes"] = f.file_size();
    j["tensor_bytes"] = tensor_bytes;
    j["n_tensors"] = f.tensors().size();
    j["n_params"] = n_params;
    j["bits_per_weight"] = bpw;
    j["architecture"] = arch;
    j["file_type"] = ftype;
    j["alignment"] = f.alignment();
    nlohmann::json kv = nlohmann::json::object();
    for (const auto& [k, v] : f.kvs()) kv[k] = kv_json(v);
    j["kv"] = kv;
    nlohmann::json hp = nlohmann::json::object();
    for (const auto& [k, v] : f.kvs())
      if (!arch.empty() && k.rfind(arch + ".", 0) == 0) hp[k.substr(arch.size() + 1)] = kv_json(v);
    j["hyperparameters"] = hp;
    j["family"] = family;
    if (!hparams.ok()) j["family_error"] = hparams.error().message;
    j["tokenizer"] = {{"model", f.get_string_or("tokenizer.ggml.model", "")},
                      {"pre", f.get_string_or("tokenizer.ggml.pre", "")},
                      {"n_vocab", n_vocab},
                      {"bos_token_id", token_id("tokenizer.ggml.bos_token_id")},
                      {"eos_token_id", token_id("tokenizer.ggml.eos_token_id")}};
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& t : f.tensors())
      ts.push_back({{"name", t.name},
                    {"dims", t.dims},
                    {"type", std::string(type_name(t.type))},
                    {"bytes", t.size},
                    {"offset", f.data_offset() + t.offset}});
    j["tensors"] = ts;
    std::printf("%s\n", j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("file:          %s\n", path.c_str());
  std::printf("gguf version:  %u, alignment %u\n", f.version(), f.alignment());
  std::printf("architecture:  %s\n", arch.empty() ? "(none)" : arch.c_str());
  std::printf("file type:     %s\n", ftype.c_str());
  if (hparams.ok()) {
    std::string line;
    for (const auto& x : features) line += (line.empty() ? "" : ", ") + x;
    std::printf("features:      %s\n", line.c_str());
  } else {
    std::printf("features:      (%s)\n", hparams.error().message.c_str());
  }
  std::printf(
      "size:          %llu bytes (%llu tensor data), %zu tensors, %.3f M params, %.3f "
      "bits/weight\n",
      static_cast<unsigned long long>(f.file_size()), static_cast<unsigned long long>(tensor_bytes),
      f.tensors().size(), n_params / 1e6, bpw);
  if (!f.get_string_or("tokenizer.ggml.model", "").empty())
    std::printf("tokenizer:     %s (pre %s), %zu tokens, bos %s, eos %s\n",
                f.get_string_or("tokenizer.ggml.model", "").c_str(),
                f.get_string_or("tokenizer.ggml.pre", "-").c_str(), n_vocab,
                token_id("tokenizer.ggml.bos_token_id").dump().c_str(),
                token_id("tokenizer.ggml.eos_token_id").dump().c_str());
  std::printf("metadata:\n");
  for (const auto& [k, v] : f.kvs()) {
    bool hyper = !arch.empty() && k.rfind(arch + ".", 0) == 0;
    if (all_kvs || hyper || k.rfind("general.", 0) == 0 || k.rfind("tokenizer.ggml.", 0) == 0 ||
        k.rfind("quantize.", 0) == 0)
      std::printf("  %-44s %s\n", k.c_str(), v.to_display().c_str());
  }
  std::printf("tensors:\n");
  for (const auto& t : f.tensors()) {
    std::string dims;
    for (size_t i = 0; i < t.dims.size(); ++i) dims += (i ? " x " : "") + std::to_string(t.dims[i]);
    std::printf("  %-32s %-8s %-18s %10llu bytes\n", t.name.c_str(),
                std::string(type_name(t.type)).c_str(), dims.c_str(),
                static_cast<unsigned long long>(t.size));
  }
  std::printf("bytes by type:\n");
  for (const auto& [ty, b] : per_type)
    std::printf("  %-8s %12llu\n", ty.c_str(), static_cast<unsigned long long>(b));
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a GGUF file's metadata, tensors and size");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  cmd->add_option("FILE", *path, "GGUF file")->required();
  cmd->add_flag("--json", *json, "Print a JSON report on stdout");
  cmd->add_flag("--all", *all, "Show every metadata key (human output)");
  cmd->callback([=] { run_inspect(*path, *json, *all); });
}

}  // namespace qforge
