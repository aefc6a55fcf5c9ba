// qforge gate MODEL --baseline BASE [--spec gates.toml] [--eval-text TEXT] [--prompts FILE]
//             [--junit FILE] [--json]
// CI's quality gate, a thin face over pipeline/evaluate.h + pipeline/gates.h: measures MODEL
// against BASE (KLD, PPL ratio, top-token agreement, speed ratio, peak RSS, critical prompts,
// checksum), prints a table of every check, optionally writes JUnit XML, exits 0 when all pass
// and 1 otherwise.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/stopwatch.h"
#include "io/atomic_file.h"
#include "pipeline/evaluate.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

struct GateArgs {
  std::string model, baseline, spec, eval_text, prompts, junit;
  int64_t ctx = 256, chunks = 32;
  int threads = 0;
  bool json = false, no_bench = false, no_prompts = false;
};

std::string bundled(const std::string& name) {
  for (const std::string& p :
       {std::string("data/") + name, std::string(QFORGE_DATA_DIR "/") + name})
    if (fs::is_regular_file(p)) return p;
  return "data/" + name;
}

// A private scratch folder for the baseline's log-probabilities, removed on every exit path.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "qforge-gate-XXXXXX").string();
    if (mkdtemp(t.data())) path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void run_gate(GateArgs a) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.spec.empty()) a.spec = bundled("gates.toml");
  if (a.eval_text.empty()) a.eval_text = bundled("eval-sample.txt");
  if (a.prompts.empty() && !a.no_prompts) a.prompts = bundled("critical-prompts-mini.jsonl");
  if (a.no_prompts) a.prompts.clear();
  for (const auto* p : {&a.model, &a.baseline, &a.spec, &a.eval_text}) {
    if (!fs::is_regular_file(*p)) throw CliError{*p + ": cannot open: No such file", 1};
    check_input(*p);
  }
  std::vector<std::string> skip, skipped;
  if (a.no_prompts) skip.push_back("critical_pass_rate");
  if (a.no_bench) skip.push_back("tg_ratio");
  const GateSpec spec = without_gates(unwrap(load_gates(a.spec)), skip, &skipped);
  if (!a.prompts.empty()) {
    if (!fs::is_regular_file(a.prompts))
      throw CliError{a.prompts + ": cannot open: No such file", 1};
    check_input(a.prompts);
    unwrap(check_prompts_file(a.prompts));
  }
  if (!a.junit.empty() && fs::is_directory(a.junit))
    throw CliError{a.junit + ": is a directory", 1};
  ScratchDir scratch;
  if (scratch.path().empty()) throw CliError{"gate: cannot create a temporary folder", 1};
  const std::string kld = scratch.path() + "/base.kld";

  EvalOptions eo;
  eo.eval_text = a.eval_text;
  eo.prompts = a.prompts;
  eo.ctx = a.ctx;
  eo.chunks = a.chunks;
  eo.threads = a.threads;
  eo.bench = !a.no_bench;
  eo.bench_opts.threads = a.threads;
  eo.overwrite = true;
  VariantRecord base, v;
  base.name = "baseline";
  base.is_base = true;
  base.path = a.baseline;
  v.name = fs::path(a.model).filename().string();
  v.path = a.model;
  auto noop = [](const std::string&) {};
  unwrap(evaluate_variant(base, base, kld, eo, noop));
  unwrap(evaluate_variant(v, base, kld, eo, noop));
  const auto checks = evaluate_gates(spec, gate_measures(v, base));
  const double secs = seconds_since(t0);
  if (!a.junit.empty()) {
    AtomicFileOptions wo;
    wo.overwrite = true;
    wo.write_sidecar = false;
    const std::string xml = gate_junit_xml(checks, "qforge gate " + a.model, secs);
    AtomicFile f = unwrap(AtomicFile::create(a.junit, wo));
    unwrap(f.write(xml.data(), xml.size()));
    unwrap(f.commit());
  }
  const bool ok = all_passed(checks);
  if (a.json) {
    nlohmann::json j = {{"model", a.model},
                        {"baseline", a.baseline},
                        {"spec", a.spec},
                        {"eval_text", a.eval_text},
                        {"prompts", a.prompts},
                        {"passed", ok},
                        {"checks", gate_outcomes_to_json(checks)},
                        {"critical_lost", v.critical_lost},
                        {"skipped", skipped},
                        {"seconds", secs}};
    std::printf("%s\n", j.dump(1).c_str());
  } else {
    std::printf("gate %s against %s (%s)\n\n%s\n%s\n", a.model.c_str(), a.baseline.c_str(),
                a.spec.c_str(), render_gate_table(checks).c_str(), ok ? "PASS" : "FAIL");
    for (const auto& k : skipped) std::printf("skipped (not measured): %s\n", k.c_str());
  }
  if (!ok) {
    int failed = 0;
    for (const auto& c : checks) failed += c.passed ? 0 : 1;
    throw CliError{cat("gate: ", failed, " of ", checks.size(), " checks failed (",
                       first_failure(checks), ")"),
                   1};
  }
}

}  // namespace

void add_gate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "gate",
      "CI quality gate: measure MODEL against --baseline with the checks of a gates file "
      "(TOML); exit 0 when all pass, 1 otherwise; optional JUnit XML");
  auto a = std::make_shared<GateArgs>();
  cmd->add_option("MODEL", a->model, "GGUF to check")->required();
  cmd->add_option("--baseline", a->baseline, "Reference GGUF (e.g. the F16 conversion)")
      ->required();
  cmd->add_option("--spec", a->spec, "Gates file (default: the bundled data/gates.toml)");
  cmd->add_option("--eval-text", a->eval_text, "Evaluation text (default: data/eval-sample.txt)");
  cmd->add_option("--prompts", a->prompts,
                  "Critical prompts JSONL (default: data/critical-prompts-mini.jsonl)");
  cmd->add_flag("--no-prompts", a->no_prompts, "Do not run critical prompts");
  cmd->add_option("--junit", a->junit, "Write JUnit XML (one testcase per check) to FILE");
  cmd->add_option("--ctx", a->ctx, "Context length for perplexity/KLD")->capture_default_str();
  cmd->add_option("--chunks", a->chunks, "Chunks of the text to evaluate (0 = all)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")->check(thread_count());
  cmd->add_flag("--no-bench", a->no_bench, "Skip the speed benchmark (tg_ratio not measured)");
  cmd->add_flag("--json", a->json, "Print the checks as JSON on stdout");
  cmd->callback([a] { run_gate(*a); });
}

}  // namespace qforge
