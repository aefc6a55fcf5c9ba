// imatrix files: llama.cpp's legacy .dat (oracle: ../shared/reference/refmodel-calibration.imatrix)
// and the GGUF form, round trips, and corrupt inputs (each a one-line error naming the file).
#include "formats/imatrix.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "test_util.h"

namespace qforge {
namespace {

Imatrix sample() {
  Imatrix m;
  m.datasets = {"calib.txt"};
  m.chunk_count = 7;
  ImatrixEntry a;
  a.name = "blk.0.attn_q.weight";
  a.importance = {0.5f, 1.0f, 0.0f, 2.25f};
  a.count = 4;
  ImatrixEntry b;
  b.name = "blk.0.ffn_down.weight";
  b.importance = {3.0f, 0.125f};
  b.count = 2;
  m.entries = {a, b};
  return m;
}

TEST(Imatrix, ReadsLlamaCppLegacyFile) {
  QF_REQUIRE_SHARED("reference/refmodel-calibration.imatrix");
  auto m = load_imatrix(test::shared_path("reference/refmodel-calibration.imatrix"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, "dat");
  // refmodel: 6 layers x 7 matrices; llama-imatrix -c 512 on calibration.txt: 136 chunks.
  EXPECT_EQ(m->entries.size(), 42u);
  EXPECT_EQ(m->chunk_count, 136u);
  ASSERT_EQ(m->datasets.size(), 1u);
  EXPECT_EQ(m->datasets[0], "calibration.txt");
  const ImatrixEntry* e = m->find("blk.5.attn_output.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->count, 136u);
  ASSERT_EQ(e->importance.size(), 512u);  // hidden size of refmodel
  // First stored value: 0x41ceddc0 (25.858...) divided by ncall.
  uint32_t bits = 0x41ceddc0;
  float raw;
  std::memcpy(&raw, &bits, 4);
  EXPECT_FLOAT_EQ(e->importance[0], raw / 136.0f);
  const ImatrixEntry* down = m->find("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->importance.size(), 1536u);  // ffn size
  for (const auto& en : m->entries)
    for (float v : en.importance) ASSERT_TRUE(std::isfinite(v) && v >= 0) << en.name;
}

TEST(Imatrix, DatRoundTrip) {
  test::TempDir tmp;
  const Imatrix m = sample();
  ASSERT_TRUE(write_imatrix_dat(tmp.file("a.dat"), m).ok());
  auto r = load_imatrix(tmp.file("a.dat"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->chunk_count, 7u);
  EXPECT_EQ(r->datasets, std::vector<std::string>{"calib.txt"});
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r->entries[i].name, m.entries[i].name);
    EXPECT_EQ(r->entries[i].count, m.entries[i].count);
    EXPECT_EQ(r->entries[i].importance, m.entries[i].importance);  // exact: powers of two
  }
  // Without the trailer (older files): no chunk count, no dataset.
  Imatrix bare = m;
  bare.chunk_count = 0;
  bare.datasets.clear();
  auto bytes = serialize_imatrix_dat(bare);
  auto p = parse_imatrix_dat(bytes, "bare.dat");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->chunk_count, 0u);
  EXPECT_TRUE(p->datasets.empty());
}

TEST(Imatrix, GgufRoundTrip) {
  test::TempDir tmp;
  Imatrix m = sample();
  ImatrixEntry unseen;  // a matrix that saw no tokens reads back as importance 1
  unseen.name = "blk.1.attn_k.weight";
  unseen.importance = {0.0f, 0.0f};
  unseen.count = 0;
  m.entries.push_back(unseen);
  ASSERT_TRUE(write_imatrix_gguf(tmp.file("a.gguf"), m).ok());
  auto r = load_imatrix(tmp.file("a.gguf"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, "gguf");
  EXPECT_EQ(r->chunk_count, 7u);
  EXPECT_EQ(r->datasets, std::vector<std::string>{"calib.txt"});
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->find("blk.0.attn_q.weight")->importance, m.entries[0].importance);
  EXPECT_EQ(r->find("blk.0.ffn_down.weight")->importance, m.entries[1].importance);
  EXPECT_EQ(r->find("blk.1.attn_k.weight")->importance, (std::vector<float>{1.0f, 1.0f}));
}

std::vector<uint8_t> patched(std::vector<uint8_t> b, size_t at, int32_t v) {
  std::memcpy(b.data() + at, &v, 4);
  return b;
}

TEST(Imatrix, CorruptDatFilesAreCleanErrors) {
  const auto good = serialize_imatrix_dat(sample());
  ASSERT_TRUE(parse_imatrix_dat(good, "x.dat").ok());
  // Layout: [0] n_entries, [4] name len, [8..27] name (19 bytes), [27] ncall, [31] nval, [35] vals
  const size_t kNameLen = 4, kNcall = 27, kNval = 31, kVal0 = 35;
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"empty", {}, "truncated"},
      {"zero entries", patched(good, 0, 0), "entry count"},
      {"huge entry count", patched(good, 0, 1 << 30), "does not fit"},
      {"negative name length", patched(good, kNameLen, -5), "bad name length"},
      {"huge name length", patched(good, kNameLen, 1 << 20), "bad name length"},
      {"negative ncall", patched(good, kNcall, -1), "negative call count"},
      {"zero nval", patched(good, kNval, 0), "value count"},
      {"huge nval", patched(good, kNval, 0x7fffffff), "value count"},
      {"nan value", patched(good, kVal0, 0x7fc00000), "must be finite"},
      {"negative value", patched(good, kVal0, static_cast<int32_t>(0xbf800000u)), "must be finite"},
  };
  for (size_t cut : {size_t{3}, size_t{10}, kNval + 2, kVal0 + 5, good.size() - 3}) {
    cases.push_back({"truncated", std::vector<uint8_t>(good.begin(), good.begin() + cut), ""});
  }
  auto trailing = good;
  trailing.push_back(0);
  cases.push_back({"trailing garbage", trailing, "unexpected bytes"});
  auto dup = serialize_imatrix_dat([] {
    Imatrix m = sample();
    m.entries[1].name = m.entries[0].name;
    return m;
  }());
  cases.push_back({"duplicate", dup, "appears twice"});
  for (const auto& c : cases) {
    auto r = parse_imatrix_dat(c.bytes, "bad.dat");
    ASSERT_FALSE(r.ok()) << c.what;
    const std::string& msg = r.error().message;
    EXPECT_EQ(msg.rfind("bad.dat: ", 0), 0u) << c.what << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
  }
}

TEST(Imatrix, GgufWithoutImatrixTensorsIsAnError) {
  test::TempDir tmp;
  {
    auto w = GgufWriter::create(tmp.file("m.gguf"));
    ASSERT_TRUE(w.ok());
    w->set_kv("general.architecture", GgufValue::string("llama"));
    ASSERT_TRUE(w->commit().ok());
  }
  auto r = load_imatrix(tmp.file("m.gguf"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no imatrix"), std::string::npos);
  auto missing = load_imatrix(tmp.file("nope.dat"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.dat"), std::string::npos);
}

}  // namespace
}  // namespace qforge
