// The corrupt-file corpus: every malformed GGUF must give a clean error (no crash, no leak —
// this suite also runs under ASan+UBSan with -fno-sanitize-recover) from the reader and from
// the CLI (exit code 1, one line on stderr naming the file).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "core/fp16.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

// A small valid GGUF: 2 KVs, 2 tensors (F32 [8 x 2], Q8_0 [32 x 1]).
struct Built {
  std::vector<uint8_t> bytes;
  size_t kv_start, tensors_start, data_start;
};

Built build_valid(std::vector<GgufTensorInfo> infos = {}) {
  std::vector<GgufKv> kvs = {{"general.architecture", GgufValue::string("llama")},
                             {"general.alignment", GgufValue::u32(32)}};
  if (infos.empty()) {
    infos.push_back({"a.weight", {8, 2}, Type::F32, 0, 64});
    infos.push_back({"b.weight", {32, 1}, Type::Q8_0, 64, 34});
  }
  Built b;
  auto kv_only = gguf_serialize_header(3, kvs, {});
  b.kv_start = 24;
  b.tensors_start = kv_only.size();
  b.bytes = gguf_serialize_header(3, kvs, infos);
  b.bytes.resize((b.bytes.size() + 31) / 32 * 32, 0);
  b.data_start = b.bytes.size();
  uint64_t end = 0;
  for (auto& t : infos) end = std::max(end, t.offset + t.size);
  b.bytes.resize(b.data_start + (end + 31) / 32 * 32, 0);
  // plausible data: F32 ones; Q8_0 scale 1.0
  for (int i = 0; i < 16; ++i) {
    float one = 1.0f;
    std::memcpy(&b.bytes[b.data_start + 4 * i], &one, 4);
  }
  uint16_t h = f32_to_fp16(1.0f);
  std::memcpy(&b.bytes[b.data_start + 64], &h, 2);
  return b;
}

template <class T>
void poke(std::vector<uint8_t>& v, size_t off, T x) {
  std::memcpy(&v[off], &x, sizeof(T));
}

struct Case {
  std::string name;
  std::vector<uint8_t> bytes;
  std::string expect;  // substring of the error
};

std::vector<Case> corpus() {
  std::vector<Case> cs;
  Built ok = build_valid();
  // Truncated at every section boundary (and inside each).
  for (size_t cut : {size_t(0), size_t(3), size_t(4), size_t(8), size_t(16), size_t(24),
                     ok.kv_start + 5, ok.tensors_start, ok.tensors_start + 10, ok.data_start - 1,
                     ok.data_start, ok.data_start + 64})
    cs.push_back({"truncated_at_" + std::to_string(cut),
                  std::vector<uint8_t>(ok.bytes.begin(), ok.bytes.begin() + cut), ""});
  {
    auto b = ok.bytes;
    b[0] = 'X';
    cs.push_back({"bad_magic", b, "bad magic"});
  }
  {
    auto b = ok.bytes;
    poke<uint32_t>(b, 4, 1);
    cs.push_back({"version_1", b, "version 1"});
  }
  {
    auto b = ok.bytes;
    poke<uint32_t>(b, 4, 99);
    cs.push_back({"version_99", b, "version 99"});
  }
  {
    auto b = ok.bytes;
    poke<int64_t>(b, 8, int64_t{1} << 62);
    cs.push_back({"n_tensors_2e62", b, "tensor count"});
  }
  {
    auto b = ok.bytes;
    poke<int64_t>(b, 16, int64_t{1} << 62);
    cs.push_back({"n_kv_2e62", b, "key/value count"});
  }
  {
    auto b = ok.bytes;
    poke<uint64_t>(b, 24, uint64_t{1} << 40);
    cs.push_back({"string_len_past_eof", b, "past end of file"});
  }
  {
    Built t = build_valid(
        {{"a.weight", {8, 2}, Type::F32, 0, 64}, {"b.weight", {32, 1}, Type::Q8_0, 4096, 34}});
    t.bytes.resize(t.data_start + 128);  // the file ends long before offset 4096
    cs.push_back({"tensor_offset_past_eof", t.bytes, "past end of file"});
  }
  {
    Built t = build_valid(
        {{"a.weight", {8, 2}, Type::F32, 0, 64}, {"b.weight", {32, 1}, Type::Q8_0, 48, 34}});
    cs.push_back({"misaligned_offset", t.bytes, "alignment"});
  }
  {
    Built t = build_valid(
        {{"a.weight", {8, 2}, Type::F32, 0, 64}, {"b.weight", {32, 1}, Type::Q8_0, 32, 34}});
    cs.push_back({"overlapping_offsets", t.bytes, "overlaps"});
  }
  {
    Built t = build_valid(
        {{"a.weight", {8, 2}, Type::F32, 0, 64}, {"a.weight", {32, 1}, Type::Q8_0, 64, 34}});
    cs.push_back({"duplicate_tensor_names", t.bytes, "duplicate"});
  }
  {
    Built t = build_valid(
        {{"a.weight", {8, 2}, Type::F32, 0, 64}, {"b.weight", {30, 1}, Type::Q8_0, 64, 34}});
    cs.push_back({"dims0_not_multiple_of_block", t.bytes, "block size"});
  }
  {
    Built t = build_valid();
    // the type id of the second tensor sits 12 bytes before the end of the infos (u32 type, u64
    // offset)
    size_t info_end = gguf_serialize_header(3,
                                            {{"general.architecture", GgufValue::string("llama")},
                                             {"general.alignment", GgufValue::u32(32)}},
                                            {{"a.weight", {8, 2}, Type::F32, 0, 64},
                                             {"b.weight", {32, 1}, Type::Q8_0, 64, 34}})
                          .size();
    poke<uint32_t>(t.bytes, info_end - 12, 999);
    cs.push_back({"unknown_type_999", t.bytes, "unknown tensor type id 999"});
  }
  {
    auto b = ok.bytes;
    // alignment value (u32 after the key "general.alignment" and its type) set to 3
    std::string key = "general.alignment";
    auto it = std::search(b.begin(), b.end(), key.begin(), key.end());
    poke<uint32_t>(b, (it - b.begin()) + key.size() + 4, 3);
    cs.push_back({"alignment_not_pow2", b, "alignment"});
  }
  return cs;
}

}  // namespace

TEST(GgufCorrupt, ValidBaseParses) {
  Built ok = build_valid();
  auto f = GgufFile::parse(ok.bytes, "valid.gguf");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->tensors().size(), 2u);
}

TEST(GgufCorrupt, EveryCaseGivesCleanReaderError) {
  for (const auto& c : corpus()) {
    SCOPED_TRACE(c.name);
    auto f = GgufFile::parse(c.bytes, c.name + ".gguf");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error().message.find(c.name + ".gguf"), std::string::npos) << f.error().message;
    if (!c.expect.empty()) {
      EXPECT_NE(f.error().message.find(c.expect), std::string::npos) << f.error().message;
    }
    EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
  }
}

TEST(GgufCorrupt, CommittedCorpusGivesCleanErrors) {
  // tests/data/corrupt holds the same corpus as files (for fuzzers and the CLI check).
  auto dir = test::data_dir() + "/corrupt";
  ASSERT_TRUE(std::filesystem::exists(dir));
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    ++n;
    auto f = GgufFile::open(e.path().string());
    EXPECT_FALSE(f.ok()) << e.path();
  }
  EXPECT_GE(n, 20);
}

TEST(GgufCorrupt, CliReportsOneLineErrorAndExit1) {
  test::TempDir tmp;
  for (const auto& c : corpus()) {
    SCOPED_TRACE(c.name);
    std::string p = tmp.file(c.name + ".gguf");
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size());
    for (const char* cmd : {"inspect", "verify --no-sidecar"}) {
      auto r = test::run_qforge(std::string(cmd) + " " + p);
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_NE(r.err.find("qforge: error: " + p), std::string::npos) << r.err;
    }
  }
}

TEST(GgufCorrupt, RandomMutationsNeverCrash) {
  Built ok = build_valid();
  std::mt19937 rng(1234);
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto b = ok.bytes;
    int flips = 1 + rng() % 4;
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % std::min<size_t>(b.size(), ok.data_start);
      b[pos] = static_cast<uint8_t>(rng());
    }
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    auto f = GgufFile::parse(b, "mutant.gguf");
    if (!f.ok()) {
      ++rejected;
    } else {
      for (const auto& t : f->tensors()) ASSERT_LE(f->data_offset() + t.offset + t.size, b.size());
    }
  }
  EXPECT_GT(rejected, 100);
}

// Regenerates tests/data/corrupt (run with QFORGE_WRITE_CORPUS=1).
TEST(GgufCorrupt, WriteCorpusWhenAsked) {
  if (!std::getenv("QFORGE_WRITE_CORPUS"))
    GTEST_SKIP() << "set QFORGE_WRITE_CORPUS=1 to regenerate";
  auto dir = test::source_dir() + "/tests/data/corrupt";
  std::filesystem::create_directories(dir);
  for (const auto& c : corpus())
    std::ofstream(dir + "/" + c.name + ".gguf", std::ios::binary)
        .write(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size());
}

}  // namespace qforge
