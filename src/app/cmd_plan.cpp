// qforge plan MODEL [--ram SIZE] [--vram SIZE] [--ctx N] [--kv-type f16|q8_0|f32]
//                   [--priority quality|balanced|speed] [--measured DIR] [--json]
// A thin face over pipeline/memory_plan.h: every mix's exact file size, KV cache, compute and
// overhead, whether it fits, and the recommendation. Exit 1 when nothing fits.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "app/quantize_flags.h"
#include "formats/imatrix.h"
#include "pipeline/memory_plan.h"
#include "quant/size_target.h"

namespace qforge {
namespace {

struct PlanArgs {
  std::string model, ram, vram, kv_type = "f16", priority = "balanced", measured;
  std::vector<std::string> mixes;
  std::string imatrix;  // --imatrix FILE (and FILE.cov) of a --target-size preview
  int64_t ctx = 4096;
  int threads = 0;
  bool json = false;
};

// `plan MODEL --target-size N`: the per-tensor allocation quantize --target-size would write
// (same encoder: the covariances beside --imatrix FILE; same proxy flags).
void run_target_preview(const PlanArgs& a, const TargetFlags& tf) {
  try {
    check_target_flags(tf);
  } catch (const CliError& e) {
    throw CliError{"plan: " + e.message, e.exit_code};
  }
  check_input(a.model);
  std::unique_ptr<TensorSource> src = unwrap(open_model_source(a.model));
  QuantizeFlags qf;
  qf.imatrix = a.imatrix;
  qf.threads = a.threads;
  const ModelQuantizeOptions o = build_quantize_options(qf, "Q4_K_M");
  const TargetResult r = plan_target(tf, a.model, *src, o);
  if (a.json)
    std::printf("%s\n", target_to_json(r).dump(1).c_str());
  else
    std::printf("%s", target_summary(r).c_str());
}

void run_plan(const PlanArgs& a, const TargetFlags& tf) {
  if (tf.has_target()) return run_target_preview(a, tf);
  if (!tf.calibration.empty() || tf.measure || !tf.proxy.empty() || !tf.types.empty())
    throw CliError{"plan: --types, --proxy, --calibration and --measure need --target-size", 2};
  PlanOptions o;
  if (a.ctx <= 0) throw CliError{cat("plan: --ctx must be positive, not ", a.ctx), 2};
  o.n_ctx = a.ctx;
  const std::string kt = a.kv_type;
  if (kt == "f16" || kt == "F16")
    o.kv_type = Type::F16;
  else if (kt == "q8_0" || kt == "Q8_0")
    o.kv_type = Type::Q8_0;
  else if (kt == "f32" || kt == "F32")
    o.kv_type = Type::F32;
  else
    throw CliError{"plan: --kv-type must be f16, q8_0 or f32, not '" + kt + "'", 2};
  o.priority = unwrap(priority_from_name(a.priority));
  if (!a.ram.empty()) {
    o.ram_bytes = unwrap(parse_size(a.ram).context("plan: --ram: "));
    o.ram_source = "--ram";
  } else {
    o.ram_bytes = mem_available_bytes();
    o.ram_source = "MemAvailable";
    if (o.ram_bytes == 0)
      throw CliError{"plan: cannot read MemAvailable from /proc/meminfo; give --ram", 1};
  }
  if (!a.vram.empty()) o.vram_bytes = unwrap(parse_size(a.vram).context("plan: --vram: "));
  o.mixes = a.mixes;
  o.n_threads = a.threads > 0 ? a.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!a.measured.empty()) o.measured = unwrap(read_measured(a.measured));
  if (!std::filesystem::exists(a.model))
    throw CliError{a.model + ": cannot open: No such file or directory", 1};
  // A checkpoint folder: the HF source applies the load policy to each file it reads.
  if (!std::filesystem::is_directory(a.model)) check_input(a.model);
  std::unique_ptr<TensorSource> src = unwrap(open_model_source(a.model));
  HardwarePlan hp = unwrap(make_hardware_plan(*src, a.model, o));
  if (a.json)
    std::printf("%s\n", to_json(hp).dump(1).c_str());
  else
    std::printf("%s", render_plan_table(hp).c_str());
  if (!hp.recommended) throw CliError{"plan: " + hp.reason, 1};
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plan",
      "Which mix fits this machine: exact file size of every mix, KV cache, compute buffers, "
      "headroom and a recommendation; exit 1 when nothing fits");
  auto a = std::make_shared<PlanArgs>();
  cmd->add_option("MODEL", a->model, "Hugging Face folder or GGUF (F16/BF16/F32)")->required();
  cmd->add_option("--ram", a->ram,
                  "Memory budget: bytes, KB/MB/GB (10^3) or KiB/MiB/GiB (2^10), e.g. 8GiB "
                  "(default: this machine's MemAvailable)");
  cmd->add_option("--vram", a->vram, "GPU memory (same units): also says whether it fits there");
  cmd->add_option("--ctx", a->ctx, "Context length")->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16, q8_0 or f32")
      ->capture_default_str();
  cmd->add_option("--priority", a->priority, "quality, balanced or speed")->capture_default_str();
  cmd->add_option("--measured", a->measured,
                  "A ladder's output folder: use its measured quality (manifest.json)");
  cmd->add_option("--mixes", a->mixes, "Mixes to consider (default: all)")->delimiter(',');
  cmd->add_option("--threads", a->threads, "Threads the engine would use (default: all cores)")
      ->check(thread_count());
  auto tf = add_target_flags(cmd, false);
  cmd->add_option("--imatrix", a->imatrix,
                  "Importance matrix for --target-size (its covariances FILE.cov are used "
                  "when present, as quantize does)");
  cmd->add_flag("--json", a->json, "Print the plan as JSON on stdout");
  cmd->callback([a, tf] { run_plan(*a, *tf); });
}

}  // namespace qforge
