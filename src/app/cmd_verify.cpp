// qforge verify FILE [--manifest M | --write-manifest M]: sidecar SHA-256, structure (the GGUF
// parses, every tensor inside the file), and optionally per-tensor hashes.
// qforge checksum FILE...: writes sha256sum-compatible sidecars for existing files.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "formats/gguf.h"
#include "formats/tensor_manifest.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/sha256.h"

namespace qforge {
namespace {

struct VerifyArgs {
  std::string file, manifest, write_manifest;
  bool no_sidecar = false, json = false, force = false;
};

void run_verify(const VerifyArgs& a) {
  check_input(a.file);
  nlohmann::json report = {{"file", a.file}};
  // 1. checksum sidecar
  if (!a.no_sidecar) {
    unwrap(verify_sidecar(a.file));
    report["sha256"] = unwrap(read_sidecar(a.file));
  }
  // 2. structure: a GGUF that parses (the reader checks every tensor lies inside the file)
  GgufFile f = unwrap(GgufFile::open(a.file));
  report["tensors"] = f.tensors().size();
  // 3. per-tensor manifest
  if (!a.manifest.empty()) {
    check_input(a.manifest);
    std::string text = unwrap(read_file_text(a.manifest));
    nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
    if (m.is_discarded()) throw CliError{a.manifest + ": not valid JSON", 1};
    auto mism = check_tensor_manifest(f, m);
    if (!mism.ok()) throw CliError{a.manifest + ": " + mism.error().message, 1};
    if (!mism->empty()) {
      const auto& first = mism->front();
      std::string where = first.tensor.empty() ? "" : "tensor '" + first.tensor + "': ";
      std::string more = mism->size() > 1 ? " (and " + std::to_string(mism->size() - 1) + " more)" : "";
      throw CliError{a.file + ": " + where + first.reason + more, 1};
    }
    report["manifest"] = a.manifest;
  }
  if (!a.write_manifest.empty()) {
    AtomicFileOptions opt;
    opt.overwrite = a.force;
    AtomicFile out = unwrap(AtomicFile::create(a.write_manifest, opt));
    std::string text = make_tensor_manifest(f).dump(1) + "\n";
    unwrap(out.write(text.data(), text.size()));
    unwrap(out.commit());
    report["manifest_written"] = a.write_manifest;
  }
  report["ok"] = true;
  if (a.json)
    std::printf("%s\n", report.dump().c_str());
  else
    std::printf("%s: OK (%zu tensors%s%s)\n", a.file.c_str(), f.tensors().size(),
                a.no_sidecar ? "" : ", checksum matches", a.manifest.empty() ? "" : ", manifest matches");
}

void run_checksum(const std::vector<std::string>& files, bool json) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& path : files) {
    check_input(path);
    std::string hex = unwrap(sha256_file(path));
    unwrap(write_sidecar(path, hex));
    out.push_back({{"file", path}, {"sha256", hex}, {"sidecar", sidecar_path(path)}});
    if (!json) std::printf("%s  %s\n", hex.c_str(), path.c_str());
  }
  if (json) std::printf("%s\n", out.dump().c_str());
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "verify", "Check a file against its .sha256 sidecar, its GGUF structure and (optionally) a "
                "per-tensor manifest; exit 0 when intact, 1 otherwise");
  auto a = std::make_shared<VerifyArgs>();
  cmd->add_option("FILE", a->file, "GGUF file")->required();
  cmd->add_option("--manifest", a->manifest,
                  "Check every tensor's dims/type/size/SHA-256 against this JSON manifest");
  cmd->add_option("--write-manifest", a->write_manifest, "Write the file's per-tensor manifest");
  cmd->add_flag("--no-sidecar", a->no_sidecar, "Do not require a .sha256 sidecar");
  cmd->add_flag("--json", a->json, "Print a JSON result on stdout");
  cmd->add_flag("--force", a->force, "Overwrite an existing manifest");
  cmd->callback([a] { run_verify(*a); });

  auto* ck = app.add_subcommand("checksum", "Write sha256sum-compatible NAME.sha256 sidecars");
  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  ck->add_option("FILES", *files, "Files to checksum")->required();
  ck->add_flag("--json", *json, "Print JSON on stdout");
  ck->callback([=] { run_checksum(*files, *json); });
}

}  // namespace qforge
