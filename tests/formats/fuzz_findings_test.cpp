// Regression tests for what bench/fuzz.sh found (issue 11, docs/BENCHMARKS.md): error messages
// that named an untrusted key or tensor verbatim (a newline in the name split the one-line
// error), an imatrix count that blew the importance up to Inf, and a .dat serialisation of a
// GGUF imatrix that its own reader refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "test_util.h"

namespace qforge {
namespace {

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put_u64(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

TEST(FuzzFindings, GgufKeyAndTensorNamesStayOnOneLine) {
  // A key "a\nb" with an unknown value type.
  std::vector<uint8_t> b{'G', 'G', 'U', 'F'};
  put_u32(b, 3);
  put_u64(b, 0);
  put_u64(b, 1);
  put_str(b, "imatrix.chunk_siz\ne");
  put_u32(b, 1125);
  auto f = GgufFile::parse(b, "k.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message.find('\n'), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("imatrix.chunk_siz\\x0Ae"), std::string::npos)
      << f.error().message;
  // A tensor "b.wei\nht" whose data runs past the end of the file.
  b = {'G', 'G', 'U', 'F'};
  put_u32(b, 3);
  put_u64(b, 1);
  put_u64(b, 0);
  put_str(b, "b.wei\nht");
  put_u32(b, 1);
  put_u64(b, 1u << 20);
  put_u32(b, 0);  // F32
  put_u64(b, 0);
  b.resize((b.size() + 31) / 32 * 32 + 11);
  f = GgufFile::parse(b, "t.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message.find('\n'), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("b.wei\\x0Aht"), std::string::npos) << f.error().message;
}

TEST(FuzzFindings, ImatrixDatEntryNameStaysOnOneLine) {
  std::vector<uint8_t> b;
  put_u32(b, 1);
  const std::string name = "blk.0.attn_q.weig\nht";
  put_u32(b, static_cast<uint32_t>(name.size()));
  b.insert(b.end(), name.begin(), name.end());
  put_u32(b, 0x80000000u);  // negative call count
  put_u32(b, 1);
  put_u32(b, 0);
  auto m = parse_imatrix_dat(b, "n.dat");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("weig\\x0Aht"), std::string::npos) << m.error().message;
}

// Writes a GGUF imatrix with one matrix of 2 columns, the given sums and token count.
std::string gguf_imatrix(const test::TempDir& dir, float sum, float count) {
  const std::string path = dir.file("m.imatrix.gguf");
  auto w = GgufWriter::create(path, GgufWriterOptions{true, false, 3});
  EXPECT_TRUE(w.ok());
  EXPECT_TRUE(w->add_tensor("x.weight.in_sum2", {2, 1}, Type::F32).ok());
  EXPECT_TRUE(w->add_tensor("x.weight.counts", {1, 1}, Type::F32).ok());
  EXPECT_TRUE(w->write_header().ok());
  const float sums[2] = {sum, sum};
  EXPECT_TRUE(w->write_tensor_data({reinterpret_cast<const uint8_t*>(sums), 8}).ok());
  EXPECT_TRUE(w->write_tensor_data({reinterpret_cast<const uint8_t*>(&count), 4}).ok());
  EXPECT_TRUE(w->commit().ok());
  return path;
}

TEST(FuzzFindings, ImatrixCountsMustBeTokenCounts) {
  test::TempDir tmp;
  // 3e38 / 1e-40 is Inf: a fractional count is refused, naming the tensor.
  auto m = load_imatrix(gguf_imatrix(tmp, 3e38f, 1e-40f));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("'x.weight.counts': count"), std::string::npos)
      << m.error().message;
  m = load_imatrix(gguf_imatrix(tmp, 3e38f, 0.5f));
  EXPECT_FALSE(m.ok());
  // A whole count (and 0: "no tokens") is fine; importances stay finite.
  m = load_imatrix(gguf_imatrix(tmp, 6.0f, 3.0f));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FLOAT_EQ(m->entries[0].importance[0], 2.0f);
}

TEST(FuzzFindings, DatSerialisationOfAHugeCountIsReadable) {
  test::TempDir tmp;
  // 1e12 tokens do not fit the legacy i32 call count (it wrapped to a negative one).
  auto m = load_imatrix(gguf_imatrix(tmp, 3e38f, 1e12f));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto back = parse_imatrix_dat(serialize_imatrix_dat(*m), "back.dat");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->entries.size(), 1u);
  EXPECT_TRUE(std::isfinite(back->entries[0].importance[0]));
  EXPECT_GT(back->entries[0].count, 0u);
}

}  // namespace
}  // namespace qforge
