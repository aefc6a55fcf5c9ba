// Float and legacy codecs (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS) against
// ggml's test vectors (tests/data/quant-vectors.gguf, a copy of
// ../shared/reference/quant-vectors.gguf): bit-exact decoding, byte-exact ggml-compatible
// encoding with and without an imatrix, refined encoding never worse than ggml (plain and
// imatrix-weighted relative RMS error), sane edge cases, and the scalar vec_dot references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/types.h"
#include "formats/gguf.h"
#include "kernels/blocks.h"
#include "kernels/codec.h"
#include "kernels/quants_legacy.h"
#include "kernels/relative_error.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::rel_err;

const Type kLegacyTypes[] = {Type::F16,  Type::BF16, Type::Q4_0,   Type::Q4_1,  Type::Q5_0,
                             Type::Q5_1, Type::Q8_0, Type::IQ4_NL, Type::IQ4_XS};

// The name ggml uses in the vectors file (lower case: "q4_0", "iq4_xs", "bf16").
std::string vec_name(Type t) {
  std::string s(type_name(t));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const Codec& codec(Type t) {
  return reference_codecs()[static_cast<size_t>(t)];
}

std::string find_vectors() {
  const std::string local = test::data_dir() + "/quant-vectors.gguf";
  if (std::filesystem::exists(local)) return local;
  const std::string shared = test::shared_path("reference/quant-vectors.gguf");
  return std::filesystem::exists(shared) ? shared : "";
}

class QuantVectors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = find_vectors();
    if (path.empty()) return;
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    file_ = new GgufFile(std::move(*f));
    const GgufValue* sets = file_->find("vectors.sets");
    ASSERT_TRUE(sets && sets->as_array());
    for (const auto& it : sets->as_array()->items) sets_.push_back(*it.as_string());
  }
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
  }
  void SetUp() override {
    if (!file_) GTEST_SKIP() << "quant-vectors.gguf not found (tests/data or ../shared)";
  }

  static std::vector<uint8_t> bytes(const std::string& name) {
    const GgufTensorInfo* t = file_->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (!t) return {};
    auto d = file_->tensor_data(*t);
    return {d.begin(), d.end()};
  }
  static std::vector<float> floats(const std::string& name) {
    std::vector<uint8_t> b = bytes(name);
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
    return v;
  }
  static int64_t row_len(const std::string& set) {
    return static_cast<int64_t>(file_->find_tensor(set + ".input")->dims[0]);
  }

  static inline GgufFile* file_ = nullptr;
  static inline std::vector<std::string> sets_;
};

std::vector<uint8_t> encode(Type t, const std::vector<float>& x, int64_t n, const float* imatrix,
                            bool ggml_compatible) {
  const int64_t rows = static_cast<int64_t>(x.size()) / n;
  std::vector<uint8_t> q(*row_size(t, static_cast<uint64_t>(n)) * static_cast<uint64_t>(rows));
  QuantizeOptions opt;
  opt.imatrix = imatrix;
  opt.ggml_compatible = ggml_compatible;
  codec(t).quantize(x.data(), q.data(), rows, n, opt);
  return q;
}

std::vector<float> decode(Type t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  codec(t).dequantize(q.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

TEST_F(QuantVectors, DecodingIsBitExact) {
  for (const std::string& s : sets_) {
    for (Type t : kLegacyTypes) {
      const std::string base = s + "." + vec_name(t);
      const std::vector<uint8_t> q = bytes(base + ".q");
      const std::vector<float> want = floats(base + ".deq");
      const std::vector<float> got = decode(t, q, want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0) << base;
    }
  }
}

// Byte-exact except blocks that ggml encodes with a non-finite scale (one block of
// edge.imx.q4_1, where ggml's least-squares min overflows fp16 to -Inf): those must decode finite.
void expect_ggml_bytes(Type t, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const TypeInfo& ti = type_info(t);
  const size_t bb = ti.block_bytes;
  size_t replaced = 0;
  std::vector<float> yw(ti.block_size), yg(ti.block_size);
  for (size_t off = 0; off < want.size(); off += bb) {
    if (std::memcmp(got.data() + off, want.data() + off, bb) == 0) continue;
    codec(t).dequantize(want.data() + off, yw.data(), ti.block_size);
    codec(t).dequantize(got.data() + off, yg.data(), ti.block_size);
    bool want_finite = true, got_finite = true;
    for (uint32_t j = 0; j < ti.block_size; ++j) {
      want_finite = want_finite && std::isfinite(yw[j]);
      got_finite = got_finite && std::isfinite(yg[j]);
    }
    EXPECT_FALSE(want_finite) << what << ": block " << off / bb << " differs from ggml's";
    EXPECT_TRUE(got_finite) << what << ": block " << off / bb;
    ++replaced;
  }
  EXPECT_LE(replaced, 1u) << what;
}

TEST_F(QuantVectors, GgmlCompatibleEncodingIsByteExact) {
  for (const std::string& s : sets_) {
    const std::vector<float> x = floats(s + ".input");
    const std::vector<float> im = floats(s + ".imatrix");
    const int64_t n = row_len(s);
    for (Type t : kLegacyTypes) {
      const std::string base = s + "." + vec_name(t) + ".q";
      expect_ggml_bytes(t, encode(t, x, n, nullptr, true), bytes(base), base);
      const std::string imx_name = s + ".imx." + vec_name(t) + ".q";
      expect_ggml_bytes(t, encode(t, x, n, im.data(), true), bytes(imx_name), imx_name);
    }
  }
}

// Issue #3: Q8_0 and Q4_0 without an imatrix are plain round-to-nearest in the DEFAULT mode too,
// bit-identical to ggml (so `qforge quantize` reproduces llama.cpp's Q8_0/Q4_0 tensors).
TEST_F(QuantVectors, DefaultQ8_0AndQ4_0WithoutImatrixAreGgmlBytes) {
  for (const std::string& s : sets_) {
    const std::vector<float> x = floats(s + ".input");
    for (Type t : {Type::Q8_0, Type::Q4_0}) {
      const std::string base = s + "." + vec_name(t) + ".q";
      expect_ggml_bytes(t, encode(t, x, row_len(s), nullptr, false), bytes(base), base);
      // Opt-in (--refine-all): the refined search, never worse than ggml's rounding.
      const int64_t n = row_len(s);
      std::vector<uint8_t> q(*row_size(t, static_cast<uint64_t>(n)) * (x.size() / n));
      QuantizeOptions opt;
      opt.refine_round_to_nearest = true;
      codec(t).quantize(x.data(), q.data(), static_cast<int64_t>(x.size()) / n, n, opt);
      const double g = rel_err(x, floats(s + "." + vec_name(t) + ".deq"), n, nullptr);
      const double r = rel_err(x, decode(t, q, x.size()), n, nullptr);
      EXPECT_LE(r, g * (1 + 1e-6)) << base;
      if (s == "gauss") {
        EXPECT_LT(r, g * 0.999) << base;
      }
    }
  }
}

TEST_F(QuantVectors, FloatConversionsAreBitExactInEveryMode) {
  for (const std::string& s : sets_) {
    const std::vector<float> x = floats(s + ".input");
    for (Type t : {Type::F16, Type::BF16}) {
      EXPECT_EQ(encode(t, x, row_len(s), nullptr, false), bytes(s + "." + vec_name(t) + ".q"))
          << s << " " << type_name(t);
    }
  }
}

// The refined (default) mode: relative RMS error <= ggml's x (1 + 1e-6) on every set, plain and
// imatrix-weighted; prints the ratios (they are quoted in docs/BENCHMARKS.md).
TEST_F(QuantVectors, RefinedErrorNeverWorseThanGgml) {
  std::printf("%-14s %-7s %10s %10s %7s | %10s %10s %7s\n", "set", "type", "ggml", "qforge",
              "ratio", "ggml imx", "qf imx", "ratio");
  for (const std::string& s : sets_) {
    const std::vector<float> x = floats(s + ".input");
    const std::vector<float> im = floats(s + ".imatrix");
    const int64_t n = row_len(s);
    for (Type t : kLegacyTypes) {
      const std::string name = vec_name(t);
      const double g = rel_err(x, floats(s + "." + name + ".deq"), n, nullptr);
      const double q = rel_err(x, decode(t, encode(t, x, n, nullptr, false), x.size()), n, nullptr);
      EXPECT_LE(q, g * (1 + 1e-6)) << s << " " << name;
      const double gi =
          rel_err(x, decode(t, bytes(s + ".imx." + name + ".q"), x.size()), n, im.data());
      const double qi =
          rel_err(x, decode(t, encode(t, x, n, im.data(), false), x.size()), n, im.data());
      EXPECT_LE(qi, gi * (1 + 1e-6)) << s << " imx " << name;
      std::printf("%-14s %-7s %10.6f %10.6f %7.4f | %10.6f %10.6f %7.4f\n", s.c_str(), name.c_str(),
                  g, q, g > 0 ? q / g : 1.0, gi, qi, gi > 0 ? qi / gi : 1.0);
    }
  }
}

// Rows of zeros, constants, tiny, huge and mixed-magnitude values: finite output in both modes,
// zeros decode to zeros, and moderate constants decode close to themselves.
TEST(LegacyCodecs, EdgeRowsStayFinite) {
  const int64_t n = 256;
  std::vector<std::vector<float>> rows;
  rows.emplace_back(n, 0.0f);
  rows.emplace_back(n, 1.0f);
  rows.emplace_back(n, -3.5f);
  rows.emplace_back(n, 1e-30f);
  rows.emplace_back(n, 1e-8f);
  rows.emplace_back(n, 1e-40f);  // subnormal: ggml's inverse scale becomes infinite
  std::vector<float> sub_mix(n, 0.0f);
  for (int64_t i = 0; i < n; i += 3) sub_mix[i] = (i % 2 ? -1.0f : 1.0f) * 3e-39f;
  rows.push_back(sub_mix);
  rows.emplace_back(n, 3e4f);
  rows.emplace_back(n, -1e9f);
  std::vector<float> mixed(n);
  for (int64_t i = 0; i < n; ++i) mixed[i] = (i % 7 == 0) ? 1e6f : (i % 2 ? 1e-6f : -2.0f);
  rows.push_back(mixed);
  std::vector<float> one_hot(n, 0.0f);
  one_hot[5] = 1.0f;
  rows.push_back(one_hot);
  const std::vector<float> imatrix(n, 0.0f);  // all-zero importance: must not produce NaN
  for (Type t : kLegacyTypes) {
    for (const auto& x : rows) {
      for (int mode = 0; mode < 4; ++mode) {
        const bool ggml = mode & 1;
        const float* im = (mode & 2) ? imatrix.data() : nullptr;
        const std::vector<float> y = decode(t, encode(t, x, n, im, ggml), x.size());
        for (int64_t i = 0; i < n; ++i) {
          // F16 cannot hold |x| > 65504: the conversion gives Inf (quantize rejects it).
          if (t == Type::F16 && std::fabs(x[i]) > 65504.0f) continue;
          ASSERT_TRUE(std::isfinite(y[i])) << type_name(t) << " mode " << mode << " x=" << x[i];
          if (x[i] == 0.0f && x == rows[0]) {
            ASSERT_EQ(y[i], 0.0f) << type_name(t);
          }
        }
        // (ggml with all-zero importance may legitimately return zeros: its weighted error is 0)
        if ((x[0] == 1.0f || x[0] == -3.5f) && mode != 3) {
          for (int64_t i = 0; i < n; ++i) {
            EXPECT_NEAR(y[i], x[i], std::fabs(x[i]) * 0.02) << type_name(t) << " mode " << mode;
          }
        }
      }
    }
  }
}

// A Q8_K block (the IQ4_XS activation format), built here so that this test does not depend on
// the K-quant codecs: d = amax/127, round to nearest, bsums of 16.
std::vector<block_q8_K> make_q8_k(const std::vector<float>& x) {
  std::vector<block_q8_K> out(x.size() / QK_K);
  for (size_t b = 0; b < out.size(); ++b) {
    const float* xb = x.data() + b * QK_K;
    float amax = 0;
    for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    out[b].d = d;
    for (int j = 0; j < QK_K; ++j) {
      out[b].qs[j] = static_cast<int8_t>(d > 0 ? std::lround(xb[j] / d) : 0);
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += out[b].qs[16 * g + j];
      out[b].bsums[g] = static_cast<int16_t>(s);
    }
  }
  return out;
}

// vec_dot(w, x) == dequantize(w) . dequantize(x) within float rounding, for every type, with x
// converted to the codec's vec_dot_type.
TEST(LegacyCodecs, VecDotMatchesDequantizedDot) {
  const int64_t n = 1024;
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<float> w(n), x(n);
    for (auto& v : w) v = g(rng) * (trial + 1) * 0.1f;
    for (auto& v : x) v = g(rng) + (trial == 3 ? 2.0f : 0.0f);
    for (Type t : kLegacyTypes) {
      const Codec& c = codec(t);
      const std::vector<uint8_t> wq = encode(t, w, n, nullptr, false);
      const std::vector<float> wd = decode(t, wq, n);
      std::vector<uint8_t> xq;
      std::vector<float> xd(n);
      if (c.vec_dot_type == Type::F32) {
        xq.resize(n * 4);
        std::memcpy(xq.data(), x.data(), n * 4);
        xd = x;
      } else if (c.vec_dot_type == Type::Q8_0) {
        xq.resize(*row_size(Type::Q8_0, n));
        quantize_row_q8_0_rtn(x.data(), xq.data(), n);
        xd = decode(Type::Q8_0, xq, n);
      } else {
        ASSERT_EQ(c.vec_dot_type, Type::Q8_K) << type_name(t);
        const std::vector<block_q8_K> b = make_q8_k(x);
        xq.resize(b.size() * sizeof(block_q8_K));
        std::memcpy(xq.data(), b.data(), xq.size());
        for (size_t i = 0; i < b.size(); ++i) {
          for (int j = 0; j < QK_K; ++j) xd[i * QK_K + j] = b[i].d * b[i].qs[j];
        }
      }
      double want = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        want += static_cast<double>(wd[i]) * xd[i];
        mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
      }
      float got = 0;
      c.vec_dot(n, &got, wq.data(), xq.data());
      EXPECT_NEAR(got, want, 1e-5 * mag + 1e-30) << type_name(t) << " trial " << trial;
    }
  }
}

// The activation encoder is ggml's round-to-nearest Q8_0, i.e. the ggml-compatible codec mode.
TEST(LegacyCodecs, ActivationEncoderIsGgmlQ8_0) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 3.0f);
  std::vector<float> x(512);
  for (auto& v : x) v = g(rng);
  std::vector<uint8_t> a(*row_size(Type::Q8_0, x.size()));
  quantize_row_q8_0_rtn(x.data(), a.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(a, encode(Type::Q8_0, x, static_cast<int64_t>(x.size()), nullptr, true));
}

// Refined encoding also beats (or ties) ggml on data unlike the vectors: heavy-tailed rows with
// a random imatrix, checked block by block through the whole-tensor error.
TEST(LegacyCodecs, RefinedBeatsGgmlOnHeavyTails) {
  const int64_t n = 512, rows = 8;
  std::mt19937 rng(3);
  std::student_t_distribution<float> st(2.5f);
  std::uniform_real_distribution<float> u(0.0f, 4.0f);
  std::vector<float> x(n * rows), im(n);
  for (auto& v : x) v = st(rng) * 0.02f;
  for (auto& v : im) v = u(rng) * u(rng);
  for (Type t : kLegacyTypes) {
    for (const float* w :
         {static_cast<const float*>(nullptr), static_cast<const float*>(im.data())}) {
      const double g = rel_err(x, decode(t, encode(t, x, n, w, true), x.size()), n, w);
      const double q = rel_err(x, decode(t, encode(t, x, n, w, false), x.size()), n, w);
      EXPECT_LE(q, g * (1 + 1e-6)) << type_name(t) << (w ? " imatrix" : "");
    }
  }
}

}  // namespace
}  // namespace qforge
