// qforge ladder INPUT OUTDIR: the main job. From an HF folder (or a GGUF), convert to F16,
// quantize a ladder of mixes, verify every output, evaluate each (perplexity, KLD and top-token
// agreement against the F16 base, speed, peak RSS), recommend one, and write a report
// (OUTDIR/report.md, OUTDIR/report.json). Each step runs as a child qforge process so its
// peak RSS is measured on its own.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "app/subprocess.h"
#include "core/log.h"
#include "eval/recommend.h"
#include "formats/file_type.h"
#include "io/atomic_file.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

struct LadderArgs {
  std::string input, out_dir, eval_text = "data/eval-sample.txt", imatrix;
  std::vector<std::string> mixes = {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"};
  int ctx = 256, chunks = 0, threads = 0;
  double budget_mb = 0, max_kld = 0.05, min_same_top = 0;
  bool json = false, force = false, no_bench = false;
};

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  auto p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

ProcessResult step(const std::string& what, std::vector<std::string> args) {
  args.insert(args.begin(), self_exe());
  log_info("ladder.step", what);
  ProcessResult r = run_process(args);
  if (r.exit_code != 0) {
    std::string msg = last_line(r.err);
    const std::string prefix = "qforge: error: ";
    if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
    throw CliError{"ladder: " + what + " failed: " + msg, 1};
  }
  return r;
}

nlohmann::json parse_json(const ProcessResult& r, const std::string& what) {
  // The last line of stdout that parses as a JSON object.
  std::istringstream in(r.out);
  std::string line;
  nlohmann::json found;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) found = j;
  }
  if (found.is_null()) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_discarded() && j.is_object()) found = j;
  }
  if (found.is_null()) throw CliError{"ladder: " + what + ": no JSON report in its output", 1};
  return found;
}

double num(const nlohmann::json& j, std::initializer_list<const char*> keys, double def = 0) {
  for (const char* k : keys)
    if (j.contains(k) && j[k].is_number()) return j[k].get<double>();
  return def;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string render_markdown(const std::vector<VariantMeasure>& ladder, const Recommendation& rec,
                            const LadderArgs& a, const std::string& model_name) {
  std::ostringstream md;
  md << "# qforge ladder: " << model_name << "\n\n";
  md << "Evaluation text `" << a.eval_text << "`, context " << a.ctx
     << (a.chunks ? ", " + std::to_string(a.chunks) + " chunks" : std::string(", all chunks"))
     << ". KLD and same-top are against the F16 base.\n\n";
  md << "| variant | size (MiB) | bits/weight | PPL | mean KLD | same top % | pp tok/s | tg tok/s "
        "| "
        "peak RSS (MiB) | gates |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  const VariantMeasure* base = nullptr;
  for (const auto& v : ladder)
    if (v.is_base) base = &v;
  QualityGates g{a.max_kld, a.min_same_top, 0};
  for (size_t i = 0; i < ladder.size(); ++i) {
    const auto& v = ladder[i];
    std::string why;
    bool pass = base && passes_gates(v, *base, g, &why);
    md << "| " << v.name << (rec.index && *rec.index == i ? " **(recommended)**" : "") << " | "
       << fmt("%.2f", v.file_bytes / 1048576.0) << " | " << fmt("%.2f", v.bits_per_weight) << " | "
       << fmt("%.4f", v.ppl) << " | " << (v.kld_mean ? fmt("%.6f", *v.kld_mean) : "–") << " | "
       << (v.same_top_pct ? fmt("%.2f", *v.same_top_pct) : "–") << " | "
       << (v.pp_tokens_per_s > 0 ? fmt("%.0f", v.pp_tokens_per_s) : "–") << " | "
       << (v.tg_tokens_per_s > 0 ? fmt("%.0f", v.tg_tokens_per_s) : "–") << " | "
       << fmt("%.1f", v.peak_rss_bytes / 1048576.0) << " | " << (pass ? "pass" : "fail: " + why)
       << " |\n";
  }
  md << "\n**Recommendation:** " << (rec.index ? rec.reason : "none — " + rec.reason) << "\n";
  md << "\nEvery file has a `.sha256` sidecar (`sha256sum -c`) and was verified after writing.\n";
  return md.str();
}

void run_ladder(LadderArgs a) {
  // Validate everything before any work or output.
  for (const auto& m : a.mixes)
    if (!file_type_from_name(m)) {
      std::string valid;
      for (const auto& f : all_file_types())
        valid += (valid.empty() ? "" : ", ") + std::string(f.name);
      throw CliError{"ladder: unknown mix '" + m + "' (valid: " + valid + ")", 1};
    }
  if (!fs::exists(a.input)) throw CliError{a.input + ": cannot open: No such file or directory", 1};
  // A checkpoint folder: convert applies the load policy to each file it reads.
  if (!fs::is_directory(a.input)) check_input(a.input);
  if (!fs::is_regular_file(a.eval_text))
    throw CliError{a.eval_text + ": evaluation text not found", 1};
  check_input(a.eval_text);
  if (fs::exists(a.out_dir) && !fs::is_directory(a.out_dir))
    throw CliError{a.out_dir + ": output path is not a directory", 1};
  fs::create_directories(a.out_dir);

  const bool from_hf = fs::is_directory(a.input);
  std::string name = fs::path(a.input).filename().string();
  if (name.empty()) name = fs::path(a.input).parent_path().filename().string();
  if (!from_hf) name = fs::path(a.input).stem().string();
  auto out = [&](const std::string& f) { return (fs::path(a.out_dir) / f).string(); };
  std::vector<std::string> common;
  if (a.threads > 0) common = {"--threads", std::to_string(a.threads)};
  std::vector<std::string> force;
  if (a.force) force = {"--force"};

  // 1. base model
  std::string base_path = a.input;
  if (from_hf) {
    base_path = out(name + "-F16.gguf");
    std::vector<std::string> args = {"convert", a.input, base_path, "--outtype", "f16"};
    args.insert(args.end(), force.begin(), force.end());
    step("convert " + a.input, args);
  }
  std::vector<std::pair<std::string, std::string>> files = {{"F16", base_path}};
  // 2. quantize the ladder
  for (const auto& m : a.mixes) {
    std::string p = out(name + "-" + m + ".gguf");
    std::vector<std::string> args = {"quantize", base_path, p, m};
    if (!a.imatrix.empty()) args.insert(args.end(), {"--imatrix", a.imatrix});
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), force.begin(), force.end());
    step("quantize " + m, args);
    files.push_back({m, p});
  }
  // 3. verify every output against its sidecar and structure
  for (const auto& [m, p] : files)
    if (p != a.input) step("verify " + p, {"verify", p});
  // 4. evaluate
  std::string kld_base = out(name + "-F16.kld");
  std::vector<VariantMeasure> ladder;
  for (const auto& [m, p] : files) {
    VariantMeasure v;
    v.name = m;
    v.path = p;
    v.is_base = m == "F16";
    std::vector<std::string> args = {"perplexity",          p,       "--file", a.eval_text, "--ctx",
                                     std::to_string(a.ctx), "--json"};
    if (a.chunks > 0) args.insert(args.end(), {"--chunks", std::to_string(a.chunks)});
    if (v.is_base) {
      args.insert(args.end(), {"--kld-base", kld_base});
      std::error_code ec;
      fs::remove(kld_base, ec);  // a previous run's base file: recomputed
      fs::remove(kld_base + ".sha256", ec);
    } else {
      args.insert(args.end(), {"--kld", kld_base});
    }
    args.insert(args.end(), common.begin(), common.end());
    ProcessResult r = step("perplexity " + m, args);
    auto j = parse_json(r, "perplexity " + m);
    v.ppl = num(j, {"ppl"});
    v.ppl_stderr = num(j, {"ppl_stderr"});
    if (!v.is_base) {
      v.kld_mean = num(j, {"kld_mean"});
      v.same_top_pct = num(j, {"same_top_pct"});
    }
    // The child's own figure (VmHWM) when it reports one: wait4's ru_maxrss would include the
    // parent's pages carried across fork + exec.
    v.peak_rss_bytes = j.contains("peak_rss_bytes") && j["peak_rss_bytes"].is_number_unsigned()
                           ? j["peak_rss_bytes"].get<uint64_t>()
                           : r.peak_rss_bytes;
    v.file_bytes = fs::file_size(p);
    if (!a.no_bench) {
      std::vector<std::string> b = {"bench", p, "--json"};
      b.insert(b.end(), common.begin(), common.end());
      auto bj = parse_json(step("bench " + m, b), "bench " + m);
      v.pp_tokens_per_s =
          num(bj, {"pp_tokens_per_second", "pp512_tokens_per_second", "pp_tps", "pp512"});
      v.tg_tokens_per_s =
          num(bj, {"tg_tokens_per_second", "tg128_tokens_per_second", "tg_tps", "tg128"});
    }
    auto ij = parse_json(step("inspect " + m, {"inspect", p, "--json"}), "inspect " + m);
    v.bits_per_weight = num(ij, {"bits_per_weight"});
    ladder.push_back(v);
  }
  // 5. recommend and report
  QualityGates g{a.max_kld, a.min_same_top, 0};
  std::optional<uint64_t> budget;
  if (a.budget_mb > 0) budget = static_cast<uint64_t>(a.budget_mb * 1048576.0);
  Recommendation rec = recommend(ladder, g, budget);
  std::string md = render_markdown(ladder, rec, a, name);
  nlohmann::json rj;
  rj["model"] = name;
  rj["eval_text"] = a.eval_text;
  rj["ctx"] = a.ctx;
  rj["variants"] = nlohmann::json::array();
  for (const auto& v : ladder) {
    nlohmann::json e = {{"name", v.name},
                        {"path", v.path},
                        {"file_bytes", v.file_bytes},
                        {"bits_per_weight", v.bits_per_weight},
                        {"ppl", v.ppl},
                        {"ppl_stderr", v.ppl_stderr},
                        {"pp_tokens_per_second", v.pp_tokens_per_s},
                        {"tg_tokens_per_second", v.tg_tokens_per_s},
                        {"peak_rss_bytes", v.peak_rss_bytes},
                        {"is_base", v.is_base}};
    if (v.kld_mean) e["kld_mean"] = *v.kld_mean;
    if (v.same_top_pct) e["same_top_pct"] = *v.same_top_pct;
    rj["variants"].push_back(e);
  }
  rj["recommended"] = rec.index ? nlohmann::json(ladder[*rec.index].name) : nlohmann::json(nullptr);
  rj["reason"] = rec.reason;
  AtomicFileOptions wo;
  wo.overwrite = true;  // reports are regenerated on every run
  for (const auto& [file, text] :
       {std::pair{out("report.md"), md}, std::pair{out("report.json"), rj.dump(1) + "\n"}}) {
    AtomicFile f = unwrap(AtomicFile::create(file, wo));
    unwrap(f.write(text.data(), text.size()));
    unwrap(f.commit());
  }
  if (a.json)
    std::printf("%s\n", rj.dump().c_str());
  else
    std::printf("%s\nReport: %s\n", md.c_str(), out("report.md").c_str());
}

}  // namespace

void add_ladder_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "ladder",
      "Main job: convert, quantize a ladder of mixes, verify, evaluate, recommend, report");
  auto a = std::make_shared<LadderArgs>();
  cmd->add_option("INPUT", a->input, "Hugging Face model folder or F16/BF16/F32 GGUF")->required();
  cmd->add_option("OUTDIR", a->out_dir, "Output folder (GGUF files, sidecars, report)")->required();
  cmd->add_option("--mixes", a->mixes, "Mixes to build")->delimiter(',');
  cmd->add_option("--eval-text", a->eval_text, "Evaluation text");
  cmd->add_option("--ctx", a->ctx, "Context length for perplexity/KLD");
  cmd->add_option("--chunks", a->chunks, "Evaluate at most this many chunks (0 = all)");
  cmd->add_option("--imatrix", a->imatrix, "Importance matrix for quantization");
  cmd->add_option("--budget-mb", a->budget_mb, "Memory budget (MiB) for the recommendation");
  cmd->add_option("--max-kld", a->max_kld, "Quality gate: maximum mean KLD vs F16");
  cmd->add_option("--min-same-top", a->min_same_top, "Quality gate: minimum same-top-token %");
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)");
  cmd->add_flag("--no-bench", a->no_bench, "Skip the speed benchmark");
  cmd->add_flag("--json", a->json, "Print the report as JSON on stdout");
  cmd->add_flag("--force", a->force, "Overwrite existing outputs");
  cmd->callback([a] { run_ladder(*a); });
}

}  // namespace qforge
