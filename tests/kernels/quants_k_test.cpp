// K-quant codecs (Q2_K..Q6_K, Q8_K) against ggml's test vectors: bit-exact decoding,
// byte-exact ggml-compatible encoding, refined encoding never worse than ggml, sane edge cases,
// and the Q8_K dot products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/types.h"
#include "formats/gguf.h"
#include "kernels/codec.h"
#include "kernels/quants_k.h"
#include "kernels/relative_error.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::rel_err;

const Type kKTypes[] = {Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};

// tests/data copy first (committed by the legacy codecs), then ../shared; "" when neither.
std::string vectors_path() {
  const std::string local = test::data_dir() + "/quant-vectors.gguf";
  if (std::filesystem::exists(local)) return local;
  const std::string shared = test::shared_path("reference/quant-vectors.gguf");
  if (std::filesystem::exists(shared)) return shared;
  return "";
}

std::string lower_name(Type t) {
  std::string s(type_name(t));
  // ggml's tensor names in the vectors file: q4_K (lower-case q, upper-case K).
  s[0] = 'q';
  return s;
}

const Codec& ref_codec(Type t) {
  return reference_codecs()[static_cast<size_t>(t)];
}

struct Vectors {
  GgufFile file;
  std::vector<std::string> sets;

  std::vector<float> f32(const std::string& name) const {
    const GgufTensorInfo* t = file.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (!t) return {};
    EXPECT_EQ(t->type, Type::F32) << name;
    std::vector<float> v(t->n_elements());
    std::memcpy(v.data(), file.tensor_data(*t).data(), v.size() * sizeof(float));
    return v;
  }
  std::vector<uint8_t> bytes(const std::string& name) const {
    const GgufTensorInfo* t = file.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (!t) return {};
    auto d = file.tensor_data(*t);
    return {d.begin(), d.end()};
  }
  int64_t row_len(const std::string& set) const {
    return static_cast<int64_t>(file.find_tensor(set + ".input")->dims[0]);
  }
};

std::optional<Vectors> load_vectors() {
  const std::string path = vectors_path();
  if (path.empty()) return std::nullopt;
  auto f = GgufFile::open(path);
  if (!f.ok()) {
    ADD_FAILURE() << f.error().message;
    return std::nullopt;
  }
  Vectors v{std::move(*f), {}};
  const GgufValue* sets = v.file.find("vectors.sets");
  if (!sets || !sets->as_array()) {
    ADD_FAILURE() << path << ": no vectors.sets";
    return std::nullopt;
  }
  for (const auto& it : sets->as_array()->items) v.sets.push_back(*it.as_string());
  return v;
}

#define REQUIRE_VECTORS(v) \
  auto v = load_vectors(); \
  if (!v) GTEST_SKIP() << "quant-vectors.gguf not found (tests/data or ../shared)"

std::vector<uint8_t> quantize(Type t, const std::vector<float>& x, int64_t n_per_row,
                              const float* imatrix, bool ggml_compatible) {
  const int64_t rows = static_cast<int64_t>(x.size()) / n_per_row;
  std::vector<uint8_t> q(*row_size(t, static_cast<uint64_t>(n_per_row)) * rows);
  QuantizeOptions opt;
  opt.imatrix = imatrix;
  opt.ggml_compatible = ggml_compatible;
  ref_codec(t).quantize(x.data(), q.data(), rows, n_per_row, opt);
  return q;
}

std::vector<float> dequantize(Type t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  ref_codec(t).dequantize(q.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

bool all_finite(const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

TEST(KQuants, RegisteredWithQ8KDots) {
  for (Type t : kKTypes) {
    const Codec& c = ref_codec(t);
    EXPECT_TRUE(c.quantize && c.dequantize && c.vec_dot) << type_name(t);
    EXPECT_EQ(c.vec_dot_type, Type::Q8_K) << type_name(t);
  }
  const Codec& q8 = ref_codec(Type::Q8_K);
  EXPECT_TRUE(q8.quantize && q8.dequantize);
}

// Decoding ggml's encodings reproduces ggml's decoding bit for bit.
TEST(KQuants, DequantizeMatchesGgmlBitForBit) {
  REQUIRE_VECTORS(v);
  for (const auto& set : v->sets) {
    for (Type t : kKTypes) {
      const std::string base = set + "." + lower_name(t);
      SCOPED_TRACE(base);
      const auto deq = v->f32(base + ".deq");
      const auto y = dequantize(t, v->bytes(base + ".q"), deq.size());
      ASSERT_EQ(std::memcmp(y.data(), deq.data(), deq.size() * sizeof(float)), 0);
    }
  }
}

// ggml_compatible encoding is byte-identical to ggml's, with and without the imatrix.
TEST(KQuants, GgmlCompatibleEncodingIsByteIdentical) {
  REQUIRE_VECTORS(v);
  for (const auto& set : v->sets) {
    const auto x = v->f32(set + ".input");
    const auto imx = v->f32(set + ".imatrix");
    const int64_t n = v->row_len(set);
    for (Type t : kKTypes) {
      const std::string name = lower_name(t);
      SCOPED_TRACE(set + "." + name);
      const auto plain = quantize(t, x, n, nullptr, true);
      const auto want_plain = v->bytes(set + "." + name + ".q");
      ASSERT_EQ(plain.size(), want_plain.size());
      size_t bad = 0;
      for (size_t i = 0; i < plain.size(); ++i) bad += plain[i] != want_plain[i];
      EXPECT_EQ(bad, 0u) << "bytes differ (no imatrix)";
      const auto weighted = quantize(t, x, n, imx.data(), true);
      const auto want_w = v->bytes(set + ".imx." + name + ".q");
      bad = 0;
      for (size_t i = 0; i < weighted.size(); ++i) bad += weighted[i] != want_w[i];
      EXPECT_EQ(bad, 0u) << "bytes differ (imatrix)";
    }
  }
}

// The refined mode is never worse than ggml: plain relative RMS error without an imatrix,
// imatrix-weighted error with one. Prints the ratios (ours / ggml's).
TEST(KQuants, RefinedEncodingIsNeverWorseThanGgml) {
  REQUIRE_VECTORS(v);
  for (const auto& set : v->sets) {
    const auto x = v->f32(set + ".input");
    const auto imx = v->f32(set + ".imatrix");
    const int64_t n = v->row_len(set);
    for (Type t : kKTypes) {
      const std::string name = lower_name(t);
      SCOPED_TRACE(set + "." + name);
      const double ggml_plain = rel_err(x, v->f32(set + "." + name + ".deq"), n, nullptr);
      const double ggml_w =
          rel_err(x, dequantize(t, v->bytes(set + ".imx." + name + ".q"), x.size()), n, imx.data());
      const auto ours_plain_y = dequantize(t, quantize(t, x, n, nullptr, false), x.size());
      const auto ours_w_y = dequantize(t, quantize(t, x, n, imx.data(), false), x.size());
      EXPECT_TRUE(all_finite(ours_plain_y));
      EXPECT_TRUE(all_finite(ours_w_y));
      const double ours_plain = rel_err(x, ours_plain_y, n, nullptr);
      const double ours_w = rel_err(x, ours_w_y, n, imx.data());
      EXPECT_LE(ours_plain, ggml_plain * (1 + 1e-6));
      EXPECT_LE(ours_w, ggml_w * (1 + 1e-6));
      std::printf("[ ratio    ] %-14s %-5s plain %.6f / %.6f = %.4f   imatrix %.6f / %.6f = %.4f\n",
                  set.c_str(), std::string(type_name(t)).c_str(), ours_plain, ggml_plain,
                  ours_plain / ggml_plain, ours_w, ggml_w, ours_w / ggml_w);
    }
  }
}

// Rows of zeros, constants, tiny and huge values: finite output, sane error, both modes.
TEST(KQuants, EdgeRowsStayFinite) {
  const int64_t n = 512;
  std::vector<std::vector<float>> rows;
  rows.emplace_back(n, 0.0f);
  rows.emplace_back(n, 1.0f);
  rows.emplace_back(n, -3.5f);
  std::vector<float> tiny(n), huge(n), mixed(n), denorm(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float r = g(rng);
    tiny[i] = r * 1e-12f;
    huge[i] = r * 1e6f;
    mixed[i] = i % 64 == 0 ? 1e4f : r * 1e-3f;
    denorm[i] = r * 1e-40f;
  }
  rows.push_back(tiny);
  rows.push_back(huge);
  rows.push_back(mixed);
  rows.push_back(denorm);
  std::vector<float> imx(n, 1.0f);
  imx[3] = 0.0f;
  for (Type t : kKTypes) {
    for (size_t r = 0; r < rows.size(); ++r) {
      for (int mode = 0; mode < 4; ++mode) {
        SCOPED_TRACE(std::string(type_name(t)) + " row " + std::to_string(r) + " mode " +
                     std::to_string(mode));
        const bool compat = mode & 1;
        const float* w = mode & 2 ? imx.data() : nullptr;
        const auto y = dequantize(t, quantize(t, rows[r], n, w, compat), n);
        if (compat && r == 4) continue;  // ggml's own encoder overflows fp16 at 1e6: not ours
        ASSERT_TRUE(all_finite(y));
        const double e = rel_err(rows[r], y, n, nullptr);
        if (r == 0) {
          EXPECT_EQ(e, 0.0);
        } else if (r <= 2) {
          EXPECT_LT(e, 1e-2);  // constants are representable almost exactly
        } else if (r == 5) {
          EXPECT_LT(e, 0.1);  // the outliers dominate and are kept
        } else {
          // Below fp16's range (1e-12, 1e-40) the best the format can do is about zero; 1e6 is
          // near the top of its range. Both must stay finite and no worse than all-zero output.
          EXPECT_LE(e, 1.0 + 1e-6);
        }
      }
    }
  }
}

// Q8_K: round to nearest at d = max|x|/127, bsums are sums of 16, zero blocks are zero.
TEST(KQuants, Q8KQuantization) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 2.0f);
  std::vector<float> x(2 * QK_K);
  for (auto& f : x) f = g(rng);
  std::fill(x.begin() + QK_K, x.end(), 0.0f);
  std::vector<block_q8_K> q(2);
  quantize_row_q8_K(x.data(), q.data(), 2 * QK_K);
  float amax = 0;
  for (int i = 0; i < QK_K; ++i) amax = std::max(amax, std::fabs(x[i]));
  EXPECT_FLOAT_EQ(std::fabs(q[0].d), amax / 127);
  for (int j = 0; j < 16; ++j) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += q[0].qs[16 * j + l];
    EXPECT_EQ(q[0].bsums[j], s);
  }
  std::vector<float> y(2 * QK_K);
  ref_codec(Type::Q8_K).dequantize(q.data(), y.data(), 2 * QK_K);
  for (int i = 0; i < QK_K; ++i) EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(q[0].d) * 0.5001f);
  EXPECT_EQ(q[1].d, 0.0f);
  for (int i = QK_K; i < 2 * QK_K; ++i) EXPECT_EQ(y[i], 0.0f);
}

// vec_dot(w, Q8_K(x)) equals the dot of the two decoded vectors up to float rounding.
TEST(KQuants, VecDotMatchesDequantizedDot) {
  const int64_t n = 4 * QK_K;
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> w(n), x(n);
  for (auto& f : w) f = g(rng);
  for (auto& f : x) f = g(rng) * 3.0f;
  std::vector<block_q8_K> xq(n / QK_K);
  quantize_row_q8_K(x.data(), xq.data(), n);
  std::vector<float> xd(n);
  ref_codec(Type::Q8_K).dequantize(xq.data(), xd.data(), n);
  for (Type t : kKTypes) {
    SCOPED_TRACE(type_name(t));
    const auto wq = quantize(t, w, n, nullptr, false);
    const auto wd = dequantize(t, wq, n);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(wd[i]) * xd[i];
      mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
    }
    float got = 0;
    ref_codec(t).vec_dot(n, &got, wq.data(), xq.data());
    EXPECT_NEAR(got, ref, 1e-5 * mag + 1e-6);
  }
}

}  // namespace
}  // namespace qforge
