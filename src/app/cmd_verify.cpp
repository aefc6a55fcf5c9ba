// qforge verify FILE [--manifest M | --write-manifest M] [--values]: sidecar SHA-256, structure
// (the GGUF parses, every tensor inside the file), optionally per-tensor hashes and finite values.
// qforge checksum FILE...: writes sha256sum-compatible sidecars for existing files.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "formats/gguf.h"
#include "formats/tensor_manifest.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/sha256.h"
#include "kernels/finite_check.h"

namespace qforge {
namespace {

struct VerifyArgs {
  std::string file, manifest, write_manifest;
  bool write_manifest_flag = false;
  bool no_sidecar = false, json = false, force = false, values = false;
};

// --values: every tensor's floats and block scales must be finite; reports each bad tensor.
void check_values(const GgufFile& f, const std::string& file, nlohmann::json& report,
                  std::vector<std::string>& failures) {
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& t : f.tensors()) {
    Status st = check_finite(t.name, t.type, t.dims, f.tensor_data(t), FiniteScope::Full);
    if (!st.ok()) bad.push_back({{"tensor", t.name}, {"reason", st.error().message}});
  }
  report["values_checked"] = true;
  if (bad.empty()) return;
  report["non_finite"] = bad;
  std::string more = bad.size() > 1 ? cat(" (and ", bad.size() - 1, " more tensors)") : "";
  failures.insert(failures.begin(), file + ": " + bad[0]["reason"].get<std::string>() + more);
}

// Runs every check and reports all failures on one line, the most specific first (a tensor
// named by the manifest, then the structure, then the whole-file checksum), so that a flipped
// byte is both detected (sidecar) and pinned to its tensor (manifest).
void run_verify(VerifyArgs a) {
  // Opened once; the sidecar is checked below on this descriptor (and reported with the rest).
  LoadPolicy policy = load_policy();
  policy.verify_sidecar = false;
  OpenedInput in = unwrap(OpenedInput::open(a.file, policy));
  // --write-manifest without a path writes to --manifest (or FILE.tensors.json).
  if (a.write_manifest_flag && a.write_manifest.empty())
    a.write_manifest = a.manifest.empty() ? a.file + ".tensors.json" : a.manifest;
  if (!a.write_manifest.empty() && a.write_manifest == a.manifest) a.manifest.clear();
  nlohmann::json report = {{"file", a.file}};
  std::vector<std::string> failures;

  // --no-sidecar only excuses a missing sidecar: a present one must match.
  if (!a.no_sidecar || in.has_sidecar()) {
    Status st = in.verify_sidecar();
    if (st.ok())
      report["sha256"] = unwrap(in.sha256());
    else
      failures.push_back(st.error().message);
  }
  Result<GgufFile> f = GgufFile::open(in);
  if (!f.ok()) {
    // Structure errors come first (they name the section); the sidecar result follows.
    failures.insert(failures.begin(), f.error().message);
  } else {
    report["tensors"] = f->tensors().size();
    if (a.values) check_values(*f, a.file, report, failures);
    if (!a.manifest.empty()) {
      check_input(a.manifest);
      std::string text = unwrap(read_file_text(a.manifest));
      nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
      if (m.is_discarded()) throw CliError{a.manifest + ": not valid JSON", 1};
      auto mism = check_tensor_manifest(*f, m);
      if (!mism.ok()) throw CliError{a.manifest + ": " + mism.error().message, 1};
      if (!mism->empty()) {
        // Tensor-level findings first: they say where the damage is.
        std::stable_partition(mism->begin(), mism->end(),
                              [](const ManifestMismatch& x) { return !x.tensor.empty(); });
        const auto& first = mism->front();
        std::string where = first.tensor.empty() ? "" : "tensor '" + first.tensor + "': ";
        std::string more =
            mism->size() > 1 ? " (and " + std::to_string(mism->size() - 1) + " more)" : "";
        failures.insert(failures.begin(), a.file + ": " + where + first.reason + more +
                                              " (manifest " + a.manifest + ")");
        nlohmann::json list = nlohmann::json::array();
        for (const auto& x : *mism) list.push_back({{"tensor", x.tensor}, {"reason", x.reason}});
        report["manifest_mismatches"] = list;
      }
      report["manifest"] = a.manifest;
    }
  }
  if (!failures.empty()) {
    std::string msg;
    for (const auto& x : failures) msg += (msg.empty() ? "" : "; ") + x;
    if (a.json) {
      report["ok"] = false;
      report["error"] = msg;
      std::printf("%s\n",
                  report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    throw CliError{msg, 1};
  }
  if (!a.write_manifest.empty()) {
    AtomicFileOptions opt;
    opt.overwrite = a.force;
    AtomicFile out = unwrap(AtomicFile::create(a.write_manifest, opt));
    std::string text =
        make_tensor_manifest(*f).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) +
        "\n";
    unwrap(out.write(text.data(), text.size()));
    unwrap(out.commit());
    report["manifest_written"] = a.write_manifest;
  }
  report["ok"] = true;
  if (a.json)
    std::printf("%s\n",
                report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else
    std::printf(
        "%s: OK (%zu tensors%s%s%s%s)\n", a.file.c_str(), f->tensors().size(),
        a.no_sidecar ? "" : ", checksum matches", a.manifest.empty() ? "" : ", manifest matches",
        a.values ? ", values finite" : "",
        a.write_manifest.empty() ? "" : (", manifest written to " + a.write_manifest).c_str());
}

void run_checksum(const std::vector<std::string>& files, bool json) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& path : files) {
    // A present sidecar must match (or --no-verify): checksum never blesses a corrupted file.
    OpenedInput in = open_input(path);
    std::string hex = unwrap(in.sha256());
    struct stat st;
    if (fstat(in.fd(), &st) != 0) throw CliError{path + ": cannot stat"};
    unwrap(write_sidecar(path, hex, st.st_dev, st.st_ino));
    out.push_back({{"file", path}, {"sha256", hex}, {"sidecar", sidecar_path(path)}});
    if (!json) std::printf("%s  %s\n", hex.c_str(), path.c_str());
  }
  if (json)
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "verify",
      "Check a file against its .sha256 sidecar, its GGUF structure and (optionally) a "
      "per-tensor manifest; exit 0 when intact, 1 otherwise");
  auto a = std::make_shared<VerifyArgs>();
  cmd->add_option("FILE", a->file, "GGUF file")->required();
  cmd->add_option("--manifest", a->manifest,
                  "Check every tensor's dims/type/size/SHA-256 against this JSON manifest");
  cmd->add_option("--write-manifest", a->write_manifest,
                  "Write the file's per-tensor manifest (JSON) to this path; without a path, to "
                  "the --manifest path or FILE.tensors.json")
      ->expected(0, 1);
  cmd->add_flag("--values", a->values,
                "Also scan every tensor for NaN/Inf values (floats and the scales of quantized "
                "blocks); reports the tensor and element");
  cmd->add_flag("--no-sidecar", a->no_sidecar, "Do not require a .sha256 sidecar (a present one is still checked)");
  cmd->add_flag("--json", a->json, "Print a JSON result on stdout");
  cmd->add_flag("--force", a->force, "Overwrite an existing manifest");
  cmd->callback([a, cmd] {
    a->write_manifest_flag = cmd->count("--write-manifest") > 0;
    run_verify(*a);
  });

  auto* ck = app.add_subcommand("checksum", "Write sha256sum-compatible NAME.sha256 sidecars");
  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  ck->add_option("FILES", *files, "Files to checksum")->required();
  ck->add_flag("--json", *json, "Print JSON on stdout");
  ck->callback([=] { run_checksum(*files, *json); });
}

}  // namespace qforge
