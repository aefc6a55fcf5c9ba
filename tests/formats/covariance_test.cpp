// Covariance files (formats/covariance.h): round trip of dense and stacked-expert covariances,
// the shared-input map, the size prediction, and corrupt or mismatched files (one-line errors).
#include "formats/covariance.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace qforge {
namespace {

// Matrix m of covariance i: entry (r, c) = i + m + r * c (symmetric), zeros for count 0.
void fill_pattern(const std::vector<CovarianceSpec>& specs, size_t i, uint32_t m,
                  std::span<float> out) {
  const uint64_t n = specs[i].n;
  if (specs[i].counts[m] == 0) return;
  for (uint64_t r = 0; r < n; ++r)
    for (uint64_t c = 0; c < n; ++c)
      out[r * n + c] = static_cast<float>(i + m) + static_cast<float>(r * c);
}

std::vector<CovarianceSpec> sample_specs() {
  return {{"cov.blk.0.attn_in", 4, {10}, {"blk.0.attn_q.weight", "blk.0.attn_k.weight"}},
          {"cov.blk.0.ffn_in_exps", 3, {5, 0, 7}, {"blk.0.ffn_gate_exps.weight"}}};
}

TEST(Covariance, RoundTripsDenseAndExperts) {
  test::TempDir dir;
  const std::string path = dir.file("m.imatrix.cov");
  EXPECT_EQ(covariance_path_for(dir.file("m.imatrix")), path);
  const auto specs = sample_specs();
  CovarianceMeta meta{12, 512, {"calib.txt"}};
  auto fill = [&](size_t i, uint32_t m, std::span<float> out) { fill_pattern(specs, i, m, out); };
  ASSERT_TRUE(write_covariance(path, specs, meta, fill).ok());
  EXPECT_EQ(std::filesystem::file_size(path), covariance_file_bytes(specs, meta));

  auto f = CovarianceFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->size(), 3u);
  EXPECT_EQ(f->chunk_count(), 12u);
  EXPECT_EQ(f->chunk_size(), 512u);
  ASSERT_EQ(f->datasets().size(), 1u);
  EXPECT_EQ(f->datasets()[0], "calib.txt");
  auto q = f->find("blk.0.attn_q.weight"), k = f->find("blk.0.attn_k.weight");
  ASSERT_TRUE(q && k);
  EXPECT_EQ(q->name, "cov.blk.0.attn_in");
  EXPECT_EQ(q->data, k->data);  // one shared input, stored once
  EXPECT_EQ(q->n, 4u);
  EXPECT_EQ(q->n_mat, 1u);
  EXPECT_EQ(q->counts[0], 10.0f);
  EXPECT_EQ(q->matrix(0)[2 * 4 + 3], 6.0f);
  auto e = f->find("blk.0.ffn_gate_exps.weight");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->n_mat, 3u);
  EXPECT_EQ(e->counts[1], 0.0f);
  EXPECT_EQ(e->matrix(1)[4], 0.0f);          // an expert no token reached: zeros
  EXPECT_EQ(e->matrix(2)[1 * 3 + 2], 5.0f);  // i 1 + m 2 + 1*2
  EXPECT_FALSE(f->find("blk.0.attn_v.weight"));
}

TEST(Covariance, RefusesBadSpecsAndExistingTarget) {
  test::TempDir dir;
  const std::string path = dir.file("x.cov");
  auto specs = sample_specs();
  auto fill = [&](size_t i, uint32_t m, std::span<float> out) { fill_pattern(specs, i, m, out); };
  ASSERT_TRUE(write_covariance(path, specs, {}, fill).ok());
  auto again = write_covariance(path, specs, {}, fill);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(write_covariance(path, specs, {}, fill, true).ok());
  specs[1].weights.push_back("blk.0.attn_q.weight");  // covered twice
  auto dup = write_covariance(dir.file("y.cov"), specs, {}, fill);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("y.cov")));
}

TEST(Covariance, RefusesAnImatrixGguf) {
  test::TempDir dir;
  const std::string path = dir.file("plain.gguf");
  auto w = GgufWriter::create(path);
  ASSERT_TRUE(w.ok());
  w->set_kv("general.type", GgufValue::string("imatrix"));
  ASSERT_TRUE(w->write_header().ok());
  ASSERT_TRUE(w->commit().ok());
  auto f = CovarianceFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find(path), std::string::npos);
  EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
}

TEST(Covariance, RefusesAMapToAMissingTensor) {
  test::TempDir dir;
  const std::string path = dir.file("bad.cov");
  auto w = GgufWriter::create(path);
  ASSERT_TRUE(w.ok());
  w->set_kv("general.type", GgufValue::string("covariance"));
  w->set_kv("qforge.covariance.version", GgufValue::u32(1));
  w->set_kv("qforge.covariance.map", GgufValue::string_array({"blk.0.attn_q.weight\tcov.nope"}));
  ASSERT_TRUE(w->write_header().ok());
  ASSERT_TRUE(w->commit().ok());
  auto f = CovarianceFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("cov.nope"), std::string::npos);
}

}  // namespace
}  // namespace qforge
