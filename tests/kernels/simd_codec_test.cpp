// Every SIMD variant, at every ISA level this CPU supports, against oracles on the same data:
//  * dequantize: bit-identical to ggml's decoding in ../shared/reference/quant-vectors.gguf
//    (and to the scalar reference codec, when registered);
//  * vec_dot: the exact dot of the decoded weights with the decoded activations, computed in
//    double, within a tight relative tolerance (and the reference codec's vec_dot likewise);
//  * activation encoders (Q8_0, Q8_K) and float encoders (F16, BF16): bit-identical to the
//    reference codec's encoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "formats/gguf.h"
#include "kernels/blocks.h"
#include "kernels/codec.h"
#include "kernels/cpu.h"
#include "kernels/simd_variants.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<Isa> supported_levels() {
  std::vector<Isa> v;
  for (int l = 1; l <= static_cast<int>(detected_isa()); ++l) v.push_back(static_cast<Isa>(l));
  return v;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}
// quant-vectors names types as ggml does ("q4_K", "iq4_nl", "f16").
std::string ggml_name(Type t) {
  std::string n = lower(type_name(t));
  if (n.size() > 2 && n.substr(n.size() - 2) == "_k") n[n.size() - 1] = 'K';
  return n;
}

// Decoded activations of a row in format vdt.
std::vector<double> decode_activations(Type vdt, const std::vector<uint8_t>& x, int64_t n) {
  std::vector<double> out(n);
  switch (vdt) {
    case Type::F32:
      for (int64_t i = 0; i < n; ++i) out[i] = reinterpret_cast<const float*>(x.data())[i];
      break;
    case Type::Q8_0: {
      const auto* b = reinterpret_cast<const block_q8_0*>(x.data());
      for (int64_t i = 0; i < n; ++i)
        out[i] = double(fp16_to_f32(b[i / 32].d)) * b[i / 32].qs[i % 32];
      break;
    }
    case Type::Q8_K: {
      const auto* b = reinterpret_cast<const block_q8_K*>(x.data());
      for (int64_t i = 0; i < n; ++i) out[i] = double(b[i / 256].d) * b[i / 256].qs[i % 256];
      break;
    }
    default:
      ADD_FAILURE() << "unexpected activation type " << type_name(vdt);
  }
  return out;
}

// Random activations in format vdt (scales in a sane range, full int8 range of quants).
std::vector<uint8_t> random_activations(Type vdt, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> x(*row_size(vdt, n));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int> q8(-127, 127);
  switch (vdt) {
    case Type::F32:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<float*>(x.data())[i] = nd(rng);
      break;
    case Type::Q8_0: {
      auto* b = reinterpret_cast<block_q8_0*>(x.data());
      for (int64_t i = 0; i < n / 32; ++i) {
        b[i].d = f32_to_fp16(0.01f + std::fabs(nd(rng)) * 0.02f);
        for (auto& q : b[i].qs) q = static_cast<int8_t>(q8(rng));
      }
      break;
    }
    case Type::Q8_K: {
      auto* b = reinterpret_cast<block_q8_K*>(x.data());
      std::uniform_int_distribution<int> qk(-127, 127);  // the encoder's range
      for (int64_t i = 0; i < n / 256; ++i) {
        b[i].d = 0.01f + std::fabs(nd(rng)) * 0.02f;
        for (auto& q : b[i].qs) q = static_cast<int8_t>(qk(rng));
        for (int g = 0; g < 16; ++g) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += b[i].qs[16 * g + l];
          b[i].bsums[g] = static_cast<int16_t>(s);
        }
      }
      break;
    }
    default:
      ADD_FAILURE() << "unexpected activation type " << type_name(vdt);
  }
  return x;
}

struct ReferenceVectors {
  std::optional<GgufFile> file;
  std::vector<std::string> sets;
};

const ReferenceVectors& vectors() {
  static const ReferenceVectors v = [] {
    ReferenceVectors r;
    const std::string path = test::shared_path("reference/quant-vectors.gguf");
    if (!std::filesystem::exists(path)) return r;
    auto f = GgufFile::open(path);
    if (!f) return r;
    r.file = std::move(*f);
    if (const GgufValue* s = r.file->find("vectors.sets"); s && s->as_array())
      for (const auto& it : s->as_array()->items)
        if (it.as_string()) r.sets.push_back(*it.as_string());
    return r;
  }();
  return v;
}

// Weight rows of type t with their exact decoding: quant-vectors when present, else the
// reference codec applied to random data (nullopt when neither exists).
struct WeightRows {
  std::vector<uint8_t> q;
  std::vector<float> deq;
  int64_t rows = 0, cols = 0;
  std::string origin;
};

std::vector<WeightRows> weight_rows(Type t) {
  std::vector<WeightRows> out;
  const ReferenceVectors& v = vectors();
  if (v.file) {
    for (const auto& s : v.sets) {
      const auto* tq = v.file->find_tensor(s + "." + ggml_name(t) + ".q");
      const auto* td = v.file->find_tensor(s + "." + ggml_name(t) + ".deq");
      if (!tq || !td || tq->type != t || td->type != Type::F32) continue;
      WeightRows w;
      w.cols = static_cast<int64_t>(tq->dims[0]);
      w.rows = static_cast<int64_t>(tq->n_rows());
      auto qb = v.file->tensor_data(*tq);
      auto db = v.file->tensor_data(*td);
      w.q.assign(qb.begin(), qb.end());
      w.deq.resize(db.size() / 4);
      std::memcpy(w.deq.data(), db.data(), db.size());
      w.origin = "quant-vectors " + s;
      out.push_back(std::move(w));
    }
  }
  const Codec& ref = reference_codecs()[static_cast<size_t>(t)];
  if (ref.quantize && ref.dequantize) {
    WeightRows w;
    w.cols = 512;
    w.rows = 8;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> src(w.rows * w.cols);
    for (auto& x : src) x = nd(rng);
    w.q.resize(*row_size(t, w.cols) * w.rows);
    ref.quantize(src.data(), w.q.data(), w.rows, w.cols, QuantizeOptions{});
    w.deq.resize(src.size());
    ref.dequantize(w.q.data(), w.deq.data(), static_cast<int64_t>(src.size()));
    w.origin = "reference codec, random data";
    out.push_back(std::move(w));
  }
  return out;
}

TEST(SimdCodec, DequantizeIsBitIdentical) {
  int checked = 0;
  for (Isa isa : supported_levels()) {
    for (const SimdVariant& v : simd_variants(isa)) {
      if (!v.dequantize) continue;
      for (const WeightRows& w : weight_rows(v.type)) {
        std::vector<float> got(w.deq.size());
        v.dequantize(w.q.data(), got.data(), static_cast<int64_t>(got.size()));
        ASSERT_EQ(0, std::memcmp(got.data(), w.deq.data(), got.size() * sizeof(float)))
            << type_name(v.type) << " at " << isa_name(isa) << " on " << w.origin;
        ++checked;
      }
    }
  }
  if (!checked) GTEST_SKIP() << "no oracle data (quant-vectors.gguf or reference codecs)";
}

TEST(SimdCodec, VecDotMatchesExactDot) {
  int checked = 0;
  std::mt19937 rng(1234);
  for (Isa isa : supported_levels()) {
    for (const SimdVariant& v : simd_variants(isa)) {
      if (!v.vec_dot) continue;
      const Codec& ref = reference_codecs()[static_cast<size_t>(v.type)];
      const bool ref_dot = ref.vec_dot && ref.vec_dot_type == v.vec_dot_type;
      const uint64_t rb_size = 0;
      (void)rb_size;
      for (const WeightRows& w : weight_rows(v.type)) {
        const uint64_t rs = *row_size(v.type, w.cols);
        for (int64_t r = 0; r < std::min<int64_t>(w.rows, 16); ++r) {
          const auto x = random_activations(v.vec_dot_type, w.cols, rng);
          const auto xd = decode_activations(v.vec_dot_type, x, w.cols);
          double exact = 0, mag = 0;
          for (int64_t i = 0; i < w.cols; ++i) {
            exact += double(w.deq[r * w.cols + i]) * xd[i];
            mag += std::fabs(double(w.deq[r * w.cols + i]) * xd[i]);
          }
          float got = NAN;
          v.vec_dot(w.cols, &got, w.q.data() + r * rs, x.data());
          const double tol = 2e-6 * mag + 1e-30;
          ASSERT_NEAR(got, exact, tol)
              << type_name(v.type) << " x " << type_name(v.vec_dot_type) << " at " << isa_name(isa)
              << ", row " << r << " of " << w.origin;
          if (ref_dot) {
            float want = NAN;
            ref.vec_dot(w.cols, &want, w.q.data() + r * rs, x.data());
            ASSERT_NEAR(got, want, 2 * tol)
                << type_name(v.type) << " vs reference vec_dot at " << isa_name(isa);
          }
          ++checked;
        }
      }
    }
  }
  if (!checked) GTEST_SKIP() << "no oracle data (quant-vectors.gguf or reference codecs)";
}

TEST(SimdCodec, ActivationEncodersMatchReference) {
  int checked = 0;
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Isa isa : supported_levels()) {
    for (const SimdVariant& v : simd_variants(isa)) {
      if (!v.quantize_activations) continue;
      const int64_t n = 1024, rows = 3;
      std::vector<float> x(n * rows);
      for (auto& f : x) f = nd(rng) * 3.f;
      // Edge cases: a zero block, ties at .5 after scaling, a block with one huge value.
      for (int i = 0; i < 256; ++i) x[i] = 0.f;
      for (int i = 256; i < 288; ++i)
        x[i] = (i % 2 ? 0.5f : -1.5f) * (i == 256 ? 127.f / 1.5f : 1.f);
      x[300] = 1e6f;
      std::vector<uint8_t> got(*row_size(v.type, n) * rows);
      v.quantize_activations(x.data(), got.data(), rows, n, QuantizeOptions{});
      // Self-check: every value decodes within half a step of the input.
      const auto dec = decode_activations(v.type, got, n * rows);
      const int bs = static_cast<int>(type_info(v.type).block_size);
      for (int64_t b = 0; b < n * rows / bs; ++b) {
        double amax = 0;
        for (int i = 0; i < bs; ++i) amax = std::max(amax, double(std::fabs(x[b * bs + i])));
        for (int i = 0; i < bs; ++i)
          // half a step, plus the scale's own rounding (Q8_0 stores it as f16)
          ASSERT_NEAR(dec[b * bs + i], x[b * bs + i], amax / 127 * (0.5 + 127 * 0x1p-11) + 1e-12)
              << type_name(v.type) << " block " << b << " at " << isa_name(isa);
      }
      const Codec& ref = reference_codecs()[static_cast<size_t>(v.type)];
      if (ref.quantize) {
        std::vector<uint8_t> want(got.size());
        QuantizeOptions rtn;
        rtn.ggml_compatible = true;  // activations use ggml's round-to-nearest, not a search
        ref.quantize(x.data(), want.data(), rows, n, rtn);
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size()))
            << type_name(v.type) << " activation encoder differs from the reference at "
            << isa_name(isa);
      }
      ++checked;
    }
  }
  if (!checked) GTEST_SKIP() << "no activation encoders at this CPU's levels";
}

TEST(SimdCodec, FloatConvertersAreByteIdentical) {
  // Random magnitudes over the whole finite range plus the rounding edge cases: ties at the
  // f16 / bf16 step, denormal inputs and results, signed zeros, overflow to infinity.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(1.f, 2.f);
  std::uniform_int_distribution<int> ex(-140, 127), bits(0, 0x7fffffff);
  std::vector<float> x(4099);
  for (size_t i = 0; i < x.size(); ++i) {
    switch (i % 4) {
      case 0:
        x[i] = std::ldexp(mant(rng), ex(rng) % 20);
        break;
      case 1:
        x[i] = std::ldexp(mant(rng), ex(rng));
        break;
      case 2: {  // any finite bit pattern
        uint32_t u = static_cast<uint32_t>(bits(rng));
        if ((u & 0x7f800000u) == 0x7f800000u) u &= 0xbfffffffu;
        std::memcpy(&x[i], &u, 4);
        break;
      }
      default:
        x[i] = std::ldexp(1.f + (2 * (i % 8) + 1) * 0x1p-11f, ex(rng) % 30);
        break;
    }
    if (i % 3 == 0) x[i] = -x[i];
  }
  const float edges[] = {
      0.f,           -0.f,           65504.f,       65519.f,         65520.f,
      -65520.f,      0x1p-24f,       0x1p-25f,      0x1.8p-25f,      0x1p-14f,
      0x1p-126f,     0x1p-149f,      -0x1p-140f,    0x1.fffffep127f, 1.f + 0x1p-8f,
      1.f + 0x3p-8f, 1.f + 0x1p-11f, 1.f + 0x3p-11f};
  std::copy(std::begin(edges), std::end(edges), x.begin());
  int checked = 0;
  for (Isa isa : supported_levels()) {
    for (const SimdVariant& v : simd_variants(isa)) {
      if (!v.convert) continue;
      const Codec& ref = reference_codecs()[static_cast<size_t>(v.type)];
      const int64_t rows = 1, n = static_cast<int64_t>(x.size());
      std::vector<uint8_t> got(*row_size(v.type, n)), want(got.size());
      v.convert(x.data(), got.data(), rows, n, QuantizeOptions{});
      ref.quantize(x.data(), want.data(), rows, n, QuantizeOptions{});
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_EQ(0, std::memcmp(got.data() + 2 * i, want.data() + 2 * i, 2))
            << type_name(v.type) << " encoder at " << isa_name(isa) << " differs at value " << i
            << " (" << x[i] << ")";
      ++checked;
    }
  }
  if (!checked) GTEST_SKIP() << "no float encoder variants at this CPU's levels";
}

TEST(SimdCodec, EveryLevelHasItsOwnKernels) {
  // A level that registers nothing would be a name without code: each one above generic has
  // variants, and each name round-trips through QFORGE_FORCE_ISA's parser.
  for (int l = 0; l <= static_cast<int>(kHighestIsa); ++l) {
    const Isa isa = static_cast<Isa>(l);
    EXPECT_EQ(parse_isa(isa_name(isa)), isa);
    if (isa != Isa::Generic) {
      EXPECT_FALSE(simd_variants(isa).empty()) << isa_name(isa);
    }
  }
  // A dot whose activation format the reference codec does not declare would never be
  // selected (register_simd_codecs matches the formats): no such dead variants.
  for (int l = 1; l <= static_cast<int>(kHighestIsa); ++l)
    for (const SimdVariant& v : simd_variants(static_cast<Isa>(l)))
      if (v.vec_dot) {
        EXPECT_EQ(v.vec_dot_type, reference_codecs()[static_cast<size_t>(v.type)].vec_dot_type)
            << type_name(v.type) << " at " << isa_name(static_cast<Isa>(l));
      }
  EXPECT_FALSE(parse_isa("avx512_vnni").has_value());
}

TEST(SimdCodec, RegisteredTableKeepsReferenceContracts) {
  for (Isa isa : supported_levels()) {
    CodecTable tab = reference_codecs();
    register_simd_codecs(tab, static_cast<int>(isa));
    for (size_t i = 0; i < tab.size(); ++i) {
      const Codec& r = reference_codecs()[i];
      // Only the float formats' encoders are replaced, by their byte-identical variants.
      const QuantizeFn cv = simd_converter(isa, r.type);
      EXPECT_EQ(tab[i].quantize, r.quantize && cv ? cv : r.quantize)
          << "block-format quantizers are never replaced";
      if (cv) {
        EXPECT_TRUE(r.type == Type::F16 || r.type == Type::BF16) << type_name(r.type);
      }
      EXPECT_EQ(tab[i].vec_dot_type, r.vec_dot_type);
      EXPECT_EQ(tab[i].dequantize == nullptr, r.dequantize == nullptr);
      EXPECT_EQ(tab[i].vec_dot == nullptr, r.vec_dot == nullptr);
    }
  }
}

}  // namespace
}  // namespace qforge
