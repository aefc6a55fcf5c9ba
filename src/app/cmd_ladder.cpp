// qforge ladder INPUT OUTDIR: the main job, a thin face over pipeline/ladder.h. Convert (from an
// HF folder), quantize a ladder of mixes, verify every output, measure each variant in an
// isolated child process (perplexity, KLD, speed, critical prompts), check the gates, plan this
// machine, recommend a variant and its fallback, and write OUTDIR/manifest.json, report.md and
// report.html.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "pipeline/ladder.h"

namespace qforge {
namespace {

struct LadderArgs {
  LadderOptions o;
  std::string gates, ram, priority = "quality", kv_type = "f16";
  std::vector<std::string> target_sizes;  // --target-sizes 1.5GB,2GB
  double max_kld = 0, min_same_top = 0, budget_mb = 0;
  bool json = false, no_bench = false, require_pass = false;
};

// Budgets of --target-sizes (out of line: inlined beside --ram's parse, GCC 12 warns falsely).
[[gnu::noinline]] std::vector<uint64_t> parse_target_sizes(const std::vector<std::string>& list) {
  std::vector<uint64_t> out;
  for (const auto& t : list)
    out.push_back(unwrap(parse_size(t).context("ladder: --target-sizes: ")));
  return out;
}

std::string default_gates() {
  // The bundled file, beside the binary's source tree or the working directory.
  for (const char* p : {"data/gates.toml", QFORGE_DATA_DIR "/gates.toml"})
    if (std::filesystem::is_regular_file(p)) return p;
  return "data/gates.toml";
}

void run(LadderArgs a) {
  LadderOptions& o = a.o;
  o.bench = !a.no_bench;
  const std::string gates = a.gates.empty() ? default_gates() : a.gates;
  // Every argument is checked before any output exists.
  unwrap(validate_ladder(o));
  check_input(gates);
  o.gates = unwrap(load_gates(gates));
  // Legacy single-gate flags tighten (or add) the matching gate.
  auto set_gate = [&](const std::string& key, GateOp op, double v) {
    for (auto& c : o.gates.checks)
      if (c.key == key) {
        c.limit = v;
        return;
      }
    o.gates.checks.push_back({key, op, v, ""});
  };
  if (a.max_kld > 0) set_gate("kld_mean", GateOp::AtMost, a.max_kld);
  if (a.min_same_top > 0) set_gate("same_top_pct", GateOp::AtLeast, a.min_same_top);
  o.priority = unwrap(priority_from_name(a.priority));
  o.target_sizes = parse_target_sizes(a.target_sizes);
  if (!a.ram.empty()) {
    // GCC 12 reports a false maybe-uninitialized in the inlined variant move here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
    o.ram_bytes = unwrap(parse_size(a.ram).context("ladder: --ram: "));
#pragma GCC diagnostic pop
    o.ram_source = "--ram";
  } else if (a.budget_mb > 0) {
    o.ram_bytes = static_cast<uint64_t>(a.budget_mb * 1048576.0);
    o.ram_source = "--budget-mb";
  }
  if (a.kv_type == "q8_0")
    o.plan_kv_type = Type::Q8_0;
  else if (a.kv_type == "f32")
    o.plan_kv_type = Type::F32;
  else if (a.kv_type != "f16")
    throw CliError{"ladder: --kv-type must be f16, q8_0 or f32", 2};
  if (!o.prompts.empty()) check_input(o.prompts);
  LadderResult r = unwrap(run_ladder(o));
  unwrap(write_reports(r));
  if (a.json) {
    std::printf("%s\n", manifest_json(r).dump().c_str());
  } else {
    std::printf("%s\n", render_report_md(r).c_str());
    if (r.plan) std::printf("%s\n", render_plan_table(*r.plan).c_str());
    std::printf("Report: %s/report.html (also report.md, manifest.json)\n", o.out_dir.c_str());
  }
  if (a.require_pass && (!r.recommended || !r.variants[*r.recommended].passes))
    throw CliError{"ladder: no variant passes the gates of " + o.gates.source + " and fits (" +
                       (r.recommended ? r.variants[*r.recommended].name + ": " +
                                            first_failure(r.variants[*r.recommended].checks)
                                      : r.reason) +
                       ")",
                   1};
}

}  // namespace

void add_ladder_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "ladder",
      "Main job: convert, quantize a ladder of mixes, verify, evaluate, gate, plan, recommend, "
      "report (manifest.json, report.md, report.html)");
  auto a = std::make_shared<LadderArgs>();
  cmd->add_option("INPUT", a->o.input, "Hugging Face model folder or F16/BF16/F32 GGUF")
      ->required();
  cmd->add_option("OUTDIR", a->o.out_dir, "Output folder (GGUF files, sidecars, reports)")
      ->required();
  cmd->add_option("--mixes", a->o.mixes, "Mixes to build (checked against qforge's recipes)")
      ->delimiter(',');
  cmd->add_option("--target-sizes", a->target_sizes,
                  "Also build size-targeted variants (quantize --target-size) for these budgets, "
                  "e.g. 1.5GB,2GB (bytes, KB/MB/GB or KiB/MiB/GiB)")
      ->delimiter(',');
  cmd->add_option("--eval-text", a->o.eval_text, "Held-out evaluation text");
  cmd->add_option("--prompts", a->o.prompts, "Critical prompts (JSONL) to run on every variant");
  cmd->add_option("--gates", a->gates, "Gates file (TOML; default: the bundled data/gates.toml)");
  cmd->add_option("--ctx", a->o.ctx, "Context length for perplexity/KLD");
  cmd->add_option("--chunks", a->o.chunks, "Evaluate at most this many chunks (0 = all)");
  cmd->add_option("--imatrix", a->o.imatrix, "Importance matrix for quantization");
  cmd->add_option("--ram", a->ram,
                  "Target machine's memory (8GiB, 4GB, ...; default: MemAvailable)");
  cmd->add_option("--budget-mb", a->budget_mb, "Target memory in MiB (as --ram)");
  cmd->add_option("--plan-ctx", a->o.plan_ctx, "Context the deployment plan assumes")
      ->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type the plan assumes: f16, q8_0, f32");
  cmd->add_option("--priority", a->priority, "Recommendation: quality, balanced or speed")
      ->capture_default_str();
  cmd->add_option("--max-kld", a->max_kld, "Gate: maximum mean KLD (overrides the gates file)");
  cmd->add_option("--min-same-top", a->min_same_top, "Gate: minimum same-top-token %");
  cmd->add_option("--threads", a->o.threads, "Threads (default: all cores)")->check(thread_count());
  cmd->add_flag("--no-bench", a->no_bench, "Skip the speed benchmark");
  cmd->add_flag("--json", a->json, "Print the manifest as JSON on stdout");
  cmd->add_flag("--require-pass", a->require_pass,
                "Exit 1 (after writing the reports) when the recommended variant fails a gate");
  cmd->add_flag("--force", a->o.force, "Overwrite existing outputs");
  cmd->callback([a] { run(*a); });
}

}  // namespace qforge
