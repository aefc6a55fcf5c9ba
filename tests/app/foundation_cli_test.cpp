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
  auto ref = nlohmann::json::parse(test::read_all(test::shared_path("reference/mini-Q4_K_M.tensors.json")));
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
  // Every 97th byte plus the first/last bytes and one inside output.weight.
  std::vector<size_t> positions = {0, size - 1, f->data_offset() + out_t.offset + 5};
  for (size_t p = 0; p < size; p += 97) positions.push_back(p);
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
  auto r = test::run_qforge("--allowed-dir " + allowed.path().string() + " inspect " + allowed.file("link.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("outside the allowed directory"), std::string::npos) << r.err;
  auto env = test::run_shell("QFORGE_ALLOWED_DIR=" + allowed.path().string() + " " +
                             test::qforge_binary() + " inspect " + outside);
  EXPECT_EQ(env.exit_code, 1);
  std::string inside = write_small_gguf(allowed, "i.gguf");
  EXPECT_EQ(test::run_qforge("--allowed-dir " + allowed.path().string() + " --require-checksum inspect " + inside).exit_code, 0);
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

}  // namespace qforge
