// qforge convert HF_DIR OUT.gguf: a Hugging Face checkpoint (safetensors + config.json +
// tokenizer) to GGUF, one tensor at a time, written atomically with a .sha256 sidecar. With
// --quantize MIX the converted tensors go straight through the model quantizer (no
// intermediate F16 file): the result equals `convert` followed by `quantize` of that file.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/quantize_flags.h"
#include "core/log.h"
#include "core/process_memory.h"
#include "core/stopwatch.h"
#include "formats/gguf.h"
#include "formats/hf_source.h"
#include "formats/model_family.h"
#include "quant/model_quantizer.h"

namespace qforge {
namespace {

struct ConvertArgs {
  std::string input, output, outtype = "f16", quantize, name;
  bool json = false, force = false;
};

// Applies the safe-load policy to every file of the folder that conversion may read.
void check_inputs(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;  // HfTensorSource::open reports it
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json",
                        "tokenizer.model", "tokenizer_config.json", "added_tokens.json",
                        "chat_template.jinja", "model.safetensors.index.json"}) {
    const std::string p = (fs::path(dir) / f).string();
    if (fs::exists(p, ec)) check_input(p);
  }
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") check_input(e.path().string());
}

void run_convert(const ConvertArgs& a, const QuantizeFlags* qflags) {
  const auto t0 = std::chrono::steady_clock::now();
  auto outtype = outtype_from_name(a.outtype);
  if (!outtype)
    throw CliError{"convert: --outtype must be f32, f16, bf16 or auto, not '" + a.outtype + "'"};
  // Cheap checks first: a wrong mix name should not wait for the checkpoint.
  ModelQuantizeOptions qopts;
  if (a.quantize.empty()) {
    const QuantizeFlags& f = *qflags;
    if (!f.imatrix.empty() || !f.tensor_types.empty() || !f.output_tensor_type.empty() ||
        !f.token_embedding_type.empty() || f.pure || f.ggml_compatible)
      throw CliError{"convert: quantization options need --quantize MIX"};
  } else {
    unwrap(mix_for(a.quantize));
    qopts = build_quantize_options(*qflags, a.quantize);
    qopts.overwrite = a.force;
  }
  check_inputs(a.input);
  std::error_code ec;
  if (!a.force && std::filesystem::exists(a.output, ec))
    throw CliError{a.output + ": already exists (use --force to overwrite)"};

  HfSourceOptions sopts;
  sopts.outtype = *outtype;
  sopts.name = a.name;
  std::unique_ptr<HfTensorSource> src = unwrap(HfTensorSource::open(a.input, sopts));
  log_info("convert.starting", "converting " + a.input,
           {{"input", a.input},
            {"architecture", src->config().hf_architecture},
            {"tensors", src->tensors().size()},
            {"outtype", std::string(type_name(src->matrix_type()))}});

  if (!a.quantize.empty()) {
    QuantizeReport rep = unwrap(quantize_model(*src, a.output, qopts));
    const double secs = seconds_since(t0);
    if (a.json) {
      nlohmann::json j = report_to_json(rep);
      j["converted_from"] = a.input;
      j["intermediate_type"] = std::string(type_name(src->matrix_type()));
      j["total_seconds"] = secs;
      j["peak_rss_bytes"] = peak_rss_bytes();
      std::printf("%s\n", j.dump(1).c_str());
    } else {
      std::printf("wrote %s: %s from %s, %llu bytes, %zu tensors in %.2f s; sha256 %s\n",
                  a.output.c_str(), std::string(rep.plan.mix->name).c_str(), a.input.c_str(),
                  static_cast<unsigned long long>(rep.plan.output_file_bytes), rep.tensors.size(),
                  secs, rep.output_sha256.c_str());
    }
    return;
  }

  GgufWriterOptions wopts;
  wopts.overwrite = a.force;
  GgufWriter w = unwrap(GgufWriter::create(a.output, wopts));
  for (const auto& [k, v] : src->kvs()) w.set_kv(k, v);
  for (const auto& t : src->tensors()) unwrap(w.add_tensor(t.name, t.dims, t.type));
  const uint64_t file_bytes = w.planned_size();
  unwrap(w.write_header());
  uint64_t done_bytes = 0;
  {
    Progress progress("convert", "converting", src->tensors().size());
    for (size_t i = 0; i < src->tensors().size(); ++i) {
      auto data = unwrap(src->data(i));
      unwrap(w.write_tensor_data(data));
      done_bytes += data.size();
      src->release(i);
      progress.update(i + 1, done_bytes, src->tensors()[i].name);
    }
    progress.finish();
  }
  const std::string sha = unwrap(w.commit());
  const double secs = seconds_since(t0);
  log_info("convert.done", "wrote " + a.output,
           {{"output", a.output}, {"bytes", file_bytes}, {"seconds", secs}, {"sha256", sha}});
  if (a.json) {
    nlohmann::json j;
    j["input"] = a.input;
    j["output"] = a.output;
    j["architecture"] = src->config().arch;
    j["hf_architecture"] = src->config().hf_architecture;
    j["family"] = std::string(src->config().family->name);
    j["outtype"] = std::string(type_name(src->matrix_type()));
    j["file_type"] = src->file_type();
    j["tensors"] = src->tensors().size();
    j["tensor_bytes"] = done_bytes;
    j["file_bytes"] = file_bytes;
    j["max_tensor_f32_bytes"] = src->max_tensor_f32_bytes();
    j["sha256"] = sha;
    j["seconds"] = secs;
    j["peak_rss_bytes"] = peak_rss_bytes();
    std::printf("%s\n", j.dump(1).c_str());
  } else {
    std::printf("wrote %s: %s (%s), %zu tensors, %llu bytes in %.2f s; sha256 %s\n",
                a.output.c_str(), src->config().arch.c_str(),
                std::string(type_name(src->matrix_type())).c_str(), src->tensors().size(),
                static_cast<unsigned long long>(file_bytes), secs, sha.c_str());
  }
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Convert a Hugging Face checkpoint folder (" + supported_hf_classes() +
          "; safetensors F32/F16/BF16) to GGUF, optionally quantizing in the same pass; the "
          "output is written atomically with a .sha256 sidecar");
  auto a = std::make_shared<ConvertArgs>();
  cmd->add_option("HF_DIR", a->input,
                  "Model folder: config.json, model.safetensors (or shards + "
                  "model.safetensors.index.json), tokenizer.json or tokenizer.model")
      ->required();
  cmd->add_option("OUT", a->output, "Output GGUF file")->required();
  cmd->add_option("--outtype", a->outtype,
                  "Type of the weight matrices: f32, f16 (default), bf16, or auto (bf16 for a "
                  "bf16 checkpoint, bits kept exactly; else f16). Norms and biases stay f32. With "
                  "--quantize: the type the quantizer starts from");
  cmd->add_option("--name", a->name, "general.name (default: the folder's name)");
  cmd->add_option("--quantize", a->quantize,
                  "Quantize while converting with this mix (" + mix_names() +
                      "); takes the quantize options below");
  auto flags = add_quantize_flags(cmd);
  cmd->add_flag("--json", a->json, "Print a JSON report on stdout");
  cmd->add_flag("--force,-f", a->force, "Overwrite OUT if it exists");
  cmd->callback([a, flags] { run_convert(*a, flags.get()); });
}

}  // namespace qforge
