// CLI checks of issue #2: inspect, verify (sidecar, structure, manifest), checksum, safe-load.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

// Writes a small model-like GGUF (with sidecar) and returns its path.
std::string write_small_gguf(const test::TempDir& dir, const std::string& name) {
  std::string path = dir.file(name);
  auto w = GgufWriter::create(path);
  w->set_kv("general.architecture", GgufValue::string("llama"));
  w->set_kv("general.file_type", GgufValue::u32(1));
  EXPECT_TRUE(w->add_tensor("token_embd.weight", {64, 32}, Type::F16).ok());
  EXPECT_TRUE(w->add_tensor("blk.0.attn_norm.weight", {64}, Type::F32).ok());
  EXPECT_TRUE(w->add_tensor("output.weight", {64, 32}, Type::F16).ok());
  EXPECT_TRUE(w->write_header().ok());
  std::mt19937 rng(5);
  for (const auto& t : w->tensors()) {
    std::vector<uint8_t> data(t.size);
    for (auto& b : data) b = static_cast<uint8_t>(rng() & 0x3f);
    EXPECT_TRUE(w->write_tensor_data(data).ok());
  }
  EXPECT_TRUE(w->commit().ok());
  return path;
}

void flip_byte(const std::string& path, size_t pos) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(pos);
  char c;
  f.get(c);
  f.seekp(pos);
  f.put(static_cast<char>(c ^ 0x10));
}

}  // namespace

TEST(FoundationCli, InspectJsonMatchesReferenceManifest) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.gguf");
  auto r = test::run_qforge("inspect --json " + test::shared_path("reference/mini-Q4_K_M.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["file_bytes"], 3473952);
  EXPECT_EQ(j["tensor_bytes"], 3346944);
  EXPECT_EQ(j["file_type"], "Q4_K_M");
  auto ref = nlohmann::json::parse(
      test::read_all(test::shared_path("reference/mini-Q4_K_M.tensors.json")));
  ASSERT_EQ(j["tensors"].size(), ref["tensors"].size());
  for (const auto& t : j["tensors"]) {
    const auto& e = ref["tensors"][t["name"].get<std::string>()];
    EXPECT_EQ(t["type"], e["type"]);
    EXPECT_EQ(t["bytes"], e["bytes"]);
    EXPECT_EQ(t["dims"], e["dims"]);
  }
}

TEST(FoundationCli, VerifyDetectsEveryFlippedByteAndManifestNamesTensor) {
  test::TempDir tmp;
  std::string path = write_small_gguf(tmp, "m.gguf");
  std::string manifest = tmp.file("m.manifest.json");
  auto ok = test::run_qforge("verify " + path + " --write-manifest " + manifest);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto size = std::filesystem::file_size(path);
  auto pristine = test::read_all(path);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  const auto& out_t = *f->find_tensor("output.weight");
  // Every 331st byte (tensor_manifest_test sweeps every byte in process) plus the first/last bytes
  // and one inside output.weight.
  std::vector<size_t> positions = {0, size - 1, f->data_offset() + out_t.offset + 5};
  for (size_t p = 0; p < size; p += 331) positions.push_back(p);
  for (size_t pos : positions) {
    flip_byte(path, pos);
    auto r = test::run_qforge("verify " + path);
    EXPECT_EQ(r.exit_code, 1) << "flip at " << pos;
    EXPECT_NE(r.err.find("SHA-256 mismatch"), std::string::npos) << r.err;
    flip_byte(path, pos);
  }
  ASSERT_EQ(test::read_all(path), pristine);
  flip_byte(path, f->data_offset() + out_t.offset + 5);
  auto r = test::run_qforge("verify --no-sidecar --manifest " + manifest + " " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tensor 'output.weight'"), std::string::npos) << r.err;
}

TEST(FoundationCli, ChecksumWritesSha256sumSidecars) {
  test::TempDir tmp;
  std::ofstream(tmp.file("a.txt")) << "alpha\n";
  auto r = test::run_qforge("checksum " + tmp.file("a.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto c = test::run_shell("cd " + tmp.path().string() + " && sha256sum -c a.txt.sha256");
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  auto missing = test::run_qforge("checksum " + tmp.file("nope.txt"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos);
  auto nosidecar = test::run_qforge("verify " + write_small_gguf(tmp, "x.gguf") + ".missing");
  EXPECT_EQ(nosidecar.exit_code, 1);
}

TEST(FoundationCli, SafeLoadPolicyRefusesOutsideAndUnverified) {
  test::TempDir allowed, other;
  std::string outside = write_small_gguf(other, "o.gguf");
  std::filesystem::create_symlink(outside, allowed.file("link.gguf"));
  auto r = test::run_qforge("--allowed-dir " + allowed.path().string() + " inspect " +
                            allowed.file("link.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("outside the allowed directory"), std::string::npos) << r.err;
  auto env = test::run_shell("QFORGE_ALLOWED_DIR=" + allowed.path().string() + " " +
                             test::qforge_binary() + " inspect " + outside);
  EXPECT_EQ(env.exit_code, 1);
  std::string inside = write_small_gguf(allowed, "i.gguf");
  EXPECT_EQ(test::run_qforge("--allowed-dir " + allowed.path().string() +
                             " --require-checksum inspect " + inside)
                .exit_code,
            0);
  std::ofstream(inside + ".sha256") << std::string(64, '0') << "  i.gguf\n";
  auto bad = test::run_qforge("--require-checksum inspect " + inside);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("SHA-256 mismatch"), std::string::npos);
}

TEST(FoundationCli, MissingFileAndHelp) {
  auto r = test::run_qforge("inspect /nonexistent/model.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos);
  for (const char* cmd : {"inspect", "verify", "checksum", "quantize", "convert", "tokenize",
                          "perplexity", "generate", "bench", "ladder"}) {
    auto h = test::run_qforge(std::string(cmd) + " --help");
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_FALSE(h.out.empty()) << cmd;
  }
}

// Acceptance 1: every GGUF in ../shared/reference and ../shared/vocab is read by `inspect`.
TEST(FoundationCli, InspectsEveryReferenceGguf) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  int n = 0;
  for (const char* sub : {"reference", "vocab"}) {
    for (const auto& e : std::filesystem::directory_iterator(test::shared_path(sub))) {
      if (e.path().extension() != ".gguf") continue;
      SCOPED_TRACE(e.path().string());
      auto r = test::run_qforge("inspect --json " + e.path().string());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto j = nlohmann::json::parse(r.out);
      auto f = GgufFile::open(e.path().string());
      ASSERT_TRUE(f.ok());
      EXPECT_EQ(j["n_tensors"], f->tensors().size());
      EXPECT_EQ(j["file_bytes"], std::filesystem::file_size(e.path()));
      EXPECT_EQ(j["tensor_bytes"], f->tensor_data_bytes());
      ++n;
    }
  }
  EXPECT_GE(n, 11);
}

TEST(FoundationCli, InspectHumanAndJsonSummaries) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.gguf");
  std::string path = test::shared_path("reference/mini-Q4_K_M.gguf");
  auto h = test::run_qforge("inspect " + path);
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("file type:     Q4_K_M"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("3473952 bytes (3346944 tensor data), 39 tensors"), std::string::npos);
  EXPECT_NE(h.out.find("5.105 bits/weight"), std::string::npos);
  EXPECT_NE(h.out.find("gpt2 (pre gpt-2), 4096 tokens, bos 0, eos 1"), std::string::npos);
  auto j = nlohmann::json::parse(test::run_qforge("inspect --json " + path).out);
  EXPECT_EQ(j["hyperparameters"]["block_count"], 4);
  EXPECT_EQ(j["hyperparameters"]["attention.head_count_kv"], 2);
  EXPECT_EQ(j["tokenizer"]["n_vocab"], 4096);
  EXPECT_EQ(j["tokenizer"]["eos_token_id"], 1);
  EXPECT_EQ(j["n_params"], 5245184);
  EXPECT_NEAR(j["bits_per_weight"].get<double>(), 8.0 * 3346944 / 5245184, 1e-9);
}

TEST(FoundationCli, VerifyAgainstCommittedReferenceManifest) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.gguf");
  test::TempDir tmp;
  std::string copy = tmp.file("mini-Q4_K_M.gguf");
  std::filesystem::copy_file(test::shared_path("reference/mini-Q4_K_M.gguf"), copy);
  std::string ref = test::data_dir() + "/reference/mini-Q4_K_M.tensors.json";
  auto ok = test::run_qforge("verify --no-sidecar --manifest " + ref + " " + copy);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  // A byte inside blk.2.ffn_down.weight, found through the reader.
  auto f = GgufFile::open(copy);
  ASSERT_TRUE(f.ok());
  const auto* t = f->find_tensor("blk.2.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  size_t pos = f->data_offset() + t->offset + t->size / 2;
  ASSERT_EQ(test::run_qforge("checksum " + copy).exit_code, 0);
  flip_byte(copy, pos);
  auto bad = test::run_qforge("verify --manifest " + ref + " " + copy);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  // Both findings on one line: the tensor first, then the whole-file checksum.
  auto tensor_at = bad.err.find("tensor 'blk.2.ffn_down.weight'");
  auto sidecar_at = bad.err.find("SHA-256 mismatch");
  EXPECT_NE(tensor_at, std::string::npos) << bad.err;
  EXPECT_NE(sidecar_at, std::string::npos) << bad.err;
  EXPECT_LT(tensor_at, sidecar_at);
  auto js = test::run_qforge("verify --json --manifest " + ref + " " + copy);
  EXPECT_EQ(js.exit_code, 1);
  auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["manifest_mismatches"].size(), 1u);
  EXPECT_EQ(j["manifest_mismatches"][0]["tensor"], "blk.2.ffn_down.weight");
}

TEST(FoundationCli, WriteManifestFormsAndNoSilentOverwrite) {
  test::TempDir tmp;
  std::string path = write_small_gguf(tmp, "m.gguf");
  // Flag form without a path: FILE.tensors.json.
  auto a = test::run_qforge("verify " + path + " --write-manifest");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_TRUE(std::filesystem::exists(path + ".tensors.json"));
  auto m = nlohmann::json::parse(test::read_all(path + ".tensors.json"));
  EXPECT_EQ(m["tensors"].size(), 3u);
  EXPECT_EQ(m["gguf_version"], 3);
  EXPECT_EQ(m["kv_types"]["general.file_type"], "u32");
  // The manifest is itself written atomically with a sidecar sha256sum accepts.
  auto c = test::run_shell("cd " + tmp.path().string() +
                           " && sha256sum -c m.gguf.tensors.json.sha256 m.gguf.sha256");
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  // An existing manifest is not replaced without --force.
  std::string before = test::read_all(path + ".tensors.json");
  auto again = test::run_qforge("verify " + path + " --write-manifest " + path + ".tensors.json");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_EQ(test::read_all(path + ".tensors.json"), before);
  // --manifest M --write-manifest writes M (instead of checking it), with --force.
  auto forced = test::run_qforge("verify " + path + " --manifest " + path +
                                 ".tensors.json --force --write-manifest");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(test::run_qforge("verify " + path + " --manifest " + path + ".tensors.json").exit_code,
            0);
}

// Runs qforge with RLIMIT_FSIZE = 0 (ulimit -f 0). Only qforge gets the limit: its stderr goes
// through a pipe to a process without it, since the harness captures stderr in a file.
static test::CommandResult run_qforge_no_file_space(const std::string& args) {
  return test::run_shell("bash -c '(ulimit -f 0; exec " + test::qforge_binary() + " " + args +
                         ") 2>&1 >/dev/null | cat >&2; exit ${PIPESTATUS[0]}'");
}

// Disk full / over quota: RLIMIT_FSIZE makes writes fail with EFBIG (qforge ignores SIGXFSZ):
// a clean one-line error and no output or temp file left.
TEST(FoundationCli, FileSizeLimitGivesCleanErrorAndNoOutput) {
  test::TempDir tmp;
  std::string path = write_small_gguf(tmp, "m.gguf");
  std::string out = tmp.file("out.json");
  auto r = run_qforge_no_file_space("verify --no-sidecar --write-manifest " + out + " " + path);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".sha256"));
  std::ofstream(tmp.file("a.txt")) << "alpha\n";
  auto ck =
      test::run_shell("ulimit -f 0; " + test::qforge_binary() + " checksum " + tmp.file("a.txt"));
  EXPECT_EQ(ck.exit_code, 1) << ck.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("a.txt.sha256")));
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".qforge-tmp."), std::string::npos) << e.path();
}

}  // namespace qforge
