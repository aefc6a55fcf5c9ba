// qforge quantize IN.gguf OUT.gguf TYPE: re-encode a GGUF model with one of llama.cpp's mixes
// (Q4_K_M, Q8_0, ...), streaming one tensor at a time. --dry-run prints the per-tensor plan and
// the exact output size without writing anything.
// qforge quantize IN.gguf OUT.gguf --target-size N | --target-bpw B: no TYPE; every tensor's
// type is allocated for the byte budget from measured sensitivities (quant/size_target.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/quantize_flags.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "formats/tensor_source.h"
#include "io/sha256.h"
#include "pipeline/memory_plan.h"
#include "quant/model_quantizer.h"
#include "quant/size_target.h"

namespace qforge {
namespace {

struct QuantizeArgs {
  std::string input, output, type;
  bool dry_run = false, json = false, force = false;
};

// Checks the TYPE / target combination; throws CliError (exit 2) on a bad one.
void check_target_args(const QuantizeArgs& a, const TargetFlags& t) {
  if (t.has_target() && !a.type.empty())
    throw CliError{"quantize: TYPE '" + a.type +
                       "' is not given with a size target (the types are allocated per tensor)",
                   2};
  if (!t.has_target() && a.type.empty())
    throw CliError{"quantize: give TYPE (" + mix_names() + ") or --target-size / --target-bpw", 2};
  try {
    check_target_flags(t);
  } catch (const CliError& e) {
    throw CliError{"quantize: " + e.message, e.exit_code};
  }
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

void print_plan(const QuantizePlan& plan) {
  uint64_t n_params = 0;
  for (const auto& t : plan.tensors) {
    uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    n_params += n;
    std::string note;
    if (t.overridden) note += " (explicit)";
    if (t.fallback) note += " (row fallback)";
    if (t.uses_imatrix) note += " (imatrix)";
    if (t.error_feedback) note += " (gptq)";
    std::printf("  %-32s %-16s %-6s -> %-6s %11llu bytes%s\n", t.name.c_str(),
                dims_text(t.dims).c_str(), std::string(type_name(t.src_type)).c_str(),
                std::string(type_name(t.dst_type)).c_str(),
                static_cast<unsigned long long>(t.dst_bytes), note.c_str());
  }
  std::printf(
      "mix %s (general.file_type %u): %zu tensors, %llu -> %llu tensor bytes, %.3f bits/weight\n",
      std::string(plan.mix->name).c_str(), plan.mix->file_type, plan.tensors.size(),
      static_cast<unsigned long long>(plan.input_tensor_bytes),
      static_cast<unsigned long long>(plan.output_tensor_bytes),
      n_params ? 8.0 * plan.output_tensor_bytes / n_params : 0.0);
  std::printf("output file: %llu bytes\n", static_cast<unsigned long long>(plan.output_file_bytes));
}

// Fails early (before hashing and planning a large input) on an output that cannot be written;
// the atomic writer checks the same again when it creates the file.
void check_output(const std::string& out, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::path(out).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec))
    throw CliError{out + ": output directory " + dir.string() + " does not exist"};
  if (fs::is_directory(out, ec)) throw CliError{out + ": output path is a directory"};
  if (!force && fs::exists(out, ec))
    throw CliError{out + ": already exists (use --force to overwrite)"};
}

void run_quantize(const QuantizeArgs& a, const QuantizeFlags& flags, const TargetFlags& tf) {
  // Validate the cheap things first: a wrong type name should not wait for the imatrix.
  check_target_args(a, tf);
  if (!a.type.empty()) unwrap(mix_for(a.type));
  OpenedInput in = open_input(a.input);
  if (!a.dry_run) check_output(a.output, a.force);
  ModelQuantizeOptions opts = build_quantize_options(flags, a.type.empty() ? "Q4_K_M" : a.type);
  opts.overwrite = a.force;
  auto file = std::make_shared<const GgufFile>(unwrap(GgufFile::open(in)));
  GgufTensorSource src(file);
  std::optional<TargetResult> target;
  if (tf.has_target()) {
    target = plan_target(tf, a.input, src, opts);
    opts = target->plan.options;
  }

  if (a.dry_run) {
    QuantizePlan plan = unwrap(plan_quantization(src, opts));
    if (a.json) {
      nlohmann::json j = plan_to_json(plan);
      j["input"] = a.input;
      j["output"] = a.output;
      j["dry_run"] = true;
      if (target) j["allocation"] = target_to_json(*target);
      std::printf("%s\n", j.dump(1).c_str());
    } else {
      std::printf("plan for %s -> %s (dry run, nothing written)\n", a.input.c_str(),
                  a.output.c_str());
      print_plan(plan);
      if (target) std::printf("%s", target_summary(*target).c_str());
    }
    return;
  }

  opts.input_sha256 = unwrap(in.sha256());  // the descriptor that was verified and mapped
  QuantizeReport rep = unwrap(quantize_model(src, a.output, opts));
  if (a.json) {
    nlohmann::json j = report_to_json(rep);
    if (target) j["allocation"] = target_to_json(*target);
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  if (target) std::printf("%s", target_summary(*target).c_str());
  const auto& p = rep.plan;
  std::printf("wrote %s: %s, %llu bytes (%.2f MiB, %.1f%% of the input's tensor data)\n",
              a.output.c_str(), std::string(p.mix->name).c_str(),
              static_cast<unsigned long long>(p.output_file_bytes), p.output_file_bytes / 1048576.0,
              p.input_tensor_bytes ? 100.0 * p.output_tensor_bytes / p.input_tensor_bytes : 0.0);
  std::printf("%zu tensors in %.2f s (%.1f MB/s of input, %d threads); sha256 %s\n",
              rep.tensors.size(), rep.seconds,
              rep.seconds > 0 ? p.input_tensor_bytes / 1e6 / rep.seconds : 0.0, rep.threads,
              rep.output_sha256.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a GGUF model with one of llama.cpp's mixes (" + mix_names() +
          "), one tensor at a time; the output is written atomically with a .sha256 sidecar");
  auto a = std::make_shared<QuantizeArgs>();
  cmd->add_option("IN", a->input,
                  "Input GGUF model (F32/F16/BF16; quantized with --allow-requantize)")
      ->required();
  cmd->add_option("OUT", a->output, "Output GGUF file")->required();
  cmd->add_option("TYPE", a->type, "Mix: " + mix_names() + " (not with a size target)");
  auto flags = add_quantize_flags(cmd);
  auto tf = add_target_flags(cmd, true);
  cmd->add_flag("--dry-run", a->dry_run,
                "Print the per-tensor plan and the exact output size; write nothing");
  cmd->add_flag("--json", a->json, "Print a JSON report (or the plan with --dry-run) on stdout");
  cmd->add_flag("--force,-f", a->force, "Overwrite OUT if it exists");
  cmd->callback([a, flags, tf] { run_quantize(*a, *flags, *tf); });
}

}  // namespace qforge
