// The model quantizer: exact planned sizes, metadata, llama.cpp tensor order, error paths (NaN,
// overflow, requantize, imatrix mismatch) leaving no output, streaming contract; and issue #3's
// acceptance 1 against llama-quantize's files of the mini model (../shared, skipped if absent).
#include "quant/model_quantizer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "core/fp16.h"
#include "core/log.h"
#include "kernels/codec.h"
#include "quant/decode_tensor.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::decode;

namespace fs = std::filesystem;

bool have_codecs(std::initializer_list<Type> types) {
  for (Type t : types)
    if (!find_codec(t)) return false;
  return true;
}
#define REQUIRE_CODECS(...)                                                     \
  do {                                                                          \
    if (!have_codecs({__VA_ARGS__})) GTEST_SKIP() << "codec not available yet"; \
  } while (0)

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, r = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(y[i]) - x[i];
    e += d * d;
    r += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(e / r);
}

void expect_no_output(const test::TempDir& dir, const std::string& out) {
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".sha256"));
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".qforge-tmp."), std::string::npos) << e.path();
}

struct Fixture {
  test::TempDir dir;
  std::string in;
  std::shared_ptr<const GgufFile> file;
  explicit Fixture(test::SyntheticModel m = {}) {
    in = dir.file("in.gguf");
    auto st = test::write_synthetic_gguf(in, m);
    EXPECT_TRUE(st.ok()) << st.error().message;
    file = std::make_shared<const GgufFile>(std::move(GgufFile::open(in)).value());
  }
  GgufTensorSource source() const { return GgufTensorSource(file); }
};

ModelQuantizeOptions opts_for(const std::string& mix, int threads = 2) {
  ModelQuantizeOptions o;
  o.mix = mix;
  o.threads = threads;
  return o;
}

TEST(ModelQuantizer, WritesThePlannedFileWithMetadataAndLowError) {
  struct Case {
    std::string mix;
    double max_err;  // loose bounds: gaussian weights, the types' usual error
  };
  int ran = 0;
  for (const Case& c : std::vector<Case>{{"Q8_0", 0.01},
                                         {"Q6_K", 0.02},
                                         {"Q4_K_M", 0.12},
                                         {"Q4_0", 0.15},
                                         {"BF16", 0.005},
                                         {"F32", 0.0}}) {
    SCOPED_TRACE(c.mix);
    const Mix* mix = find_mix(c.mix);
    ASSERT_NE(mix, nullptr);
    if (!have_codecs({mix->base, Type::Q6_K, Type::Q8_0})) continue;
    Fixture fx;
    auto src = fx.source();
    const std::string out = fx.dir.file("out.gguf");
    auto plan = plan_quantization(src, opts_for(c.mix));
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    auto rep = quantize_model(src, out, opts_for(c.mix));
    ASSERT_TRUE(rep.ok()) << rep.error().message;
    ++ran;
    EXPECT_EQ(fs::file_size(out), plan->output_file_bytes);
    EXPECT_EQ(rep->plan.output_file_bytes, plan->output_file_bytes);
    EXPECT_TRUE(fs::exists(out + ".sha256"));
    EXPECT_EQ(*sha256_file(out), rep->output_sha256);

    auto g = GgufFile::open(out);
    ASSERT_TRUE(g.ok()) << g.error().message;
    // Every input KV is kept (same value); file_type and quantization_version come last.
    const auto& kvs = g->kvs();
    ASSERT_GE(kvs.size(), 2u);
    EXPECT_EQ(kvs[kvs.size() - 2].first, "general.quantization_version");
    EXPECT_EQ(kvs[kvs.size() - 2].second, GgufValue::u32(2));
    EXPECT_EQ(kvs.back().first, "general.file_type");
    EXPECT_EQ(kvs.back().second, GgufValue::u32(mix->file_type));
    for (const auto& [k, v] : fx.file->kvs())
      if (k != "general.file_type") {
        ASSERT_NE(g->find(k), nullptr) << k;
        EXPECT_EQ(*g->find(k), v) << k;
      }
    // Types as planned; the error the report gives is the real one.
    ASSERT_EQ(g->tensors().size(), plan->tensors.size());
    for (size_t i = 0; i < plan->tensors.size(); ++i) {
      const auto& pt = plan->tensors[i];
      const auto& ot = g->tensors()[i];
      EXPECT_EQ(ot.name, pt.name);
      EXPECT_EQ(ot.type, pt.dst_type) << pt.name;
      const auto* it = fx.file->find_tensor(pt.name);
      ASSERT_NE(it, nullptr);
      if (!pt.convert) {
        EXPECT_TRUE(std::equal(fx.file->tensor_data(*it).begin(), fx.file->tensor_data(*it).end(),
                               g->tensor_data(ot).begin()))
            << pt.name;
        continue;
      }
      const double err = rel_rmse(decode(*fx.file, *it), decode(*g, ot));
      EXPECT_NEAR(rep->tensors[i].rel_rmse, err, 1e-9 + 1e-6 * err) << pt.name;
      EXPECT_LE(err, c.max_err + (ot.type == Type::Q6_K || ot.type == Type::Q8_0 ? 0 : 0.1))
          << pt.name;
    }
  }
  if (ran == 0) GTEST_SKIP() << "no codecs available yet";
}

TEST(ModelQuantizer, WritesTensorsInLlamaCppOrder) {
  REQUIRE_CODECS(Type::F16, Type::BF16);
  test::SyntheticModel m;
  m.n_layer = 12;
  Fixture fx(m);
  auto src = fx.source();
  auto plan = plan_quantization(src, opts_for("BF16"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::vector<std::string> names;
  for (const auto& t : plan->tensors) names.push_back(t.name);
  ASSERT_GE(names.size(), 6u);
  EXPECT_EQ(names[0], "output.weight");
  EXPECT_EQ(names[1], "output_norm.weight");
  EXPECT_EQ(names[2], "token_embd.weight");
  EXPECT_EQ(names[3], "blk.0.attn_k.weight");
  EXPECT_EQ(names.back(), "blk.11.ffn_up.weight");
  // blk.2 comes before blk.10 (numeric, not lexical).
  auto pos = [&](const std::string& n) { return std::find(names.begin(), names.end(), n); };
  EXPECT_LT(pos("blk.2.attn_q.weight"), pos("blk.10.attn_q.weight"));
}

TEST(ModelQuantizer, NonFiniteInputFailsNamingTheTensorAndLeavesNothing) {
  REQUIRE_CODECS(Type::Q8_0, Type::Q6_K);
  for (const std::string bad : {"blk.1.ffn_up.weight", "blk.0.attn_norm.weight"}) {
    SCOPED_TRACE(bad);
    test::SyntheticModel m;
    m.non_finite_tensor = bad;
    Fixture fx(m);
    auto src = fx.source();
    const std::string out = fx.dir.file("out.gguf");
    auto rep = quantize_model(src, out, opts_for("Q8_0"));
    ASSERT_FALSE(rep.ok());
    EXPECT_NE(rep.error().message.find("'" + bad + "'"), std::string::npos) << rep.error().message;
    EXPECT_NE(rep.error().message.find("NaN or Inf in the input"), std::string::npos);
    expect_no_output(fx.dir, out);
  }
}

// An in-memory source: F32 tensors given as vectors. Records how it is used.
class VectorSource : public TensorSource {
 public:
  void add(std::string name, std::vector<uint64_t> dims, std::vector<float> values) {
    SourceTensor t;
    t.name = std::move(name);
    t.dims = std::move(dims);
    t.type = Type::F32;
    t.size = values.size() * 4;
    tensors_.push_back(t);
    data_.push_back(std::move(values));
  }
  // `offset` > 0 serves the bytes at a misaligned address (as a safetensors file may).
  void add_raw(std::string name, std::vector<uint64_t> dims, Type type, std::vector<uint8_t> b,
               size_t offset = 0) {
    SourceTensor t{std::move(name), std::move(dims), type, b.size()};
    tensors_.push_back(t);
    b.insert(b.begin(), offset, uint8_t{0});
    raw_.emplace(tensors_.size() - 1, std::make_pair(std::move(b), offset));
    data_.emplace_back();
  }
  const std::vector<GgufKv>& kvs() const override { return kvs_; }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  Result<std::span<const uint8_t>> data(size_t i) override {
    ++data_calls[i];
    if (auto it = raw_.find(i); it != raw_.end())
      return std::span<const uint8_t>(it->second.first).subspan(it->second.second);
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data_[i].data()),
                                    data_[i].size() * 4);
  }
  void release(size_t i) override { ++release_calls[i]; }
  std::string describe() const override { return "memory"; }

  std::vector<GgufKv> kvs_ = {{"general.architecture", GgufValue::string("llama")},
                              {"llama.block_count", GgufValue::u32(1)},
                              {"split.count", GgufValue::u16(1)}};
  std::map<size_t, int> data_calls, release_calls;

 private:
  std::vector<SourceTensor> tensors_;
  std::vector<std::vector<float>> data_;
  std::map<size_t, std::pair<std::vector<uint8_t>, size_t>> raw_;
};

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i));
  return v;
}

TEST(ModelQuantizer, StreamsEachTensorOnceAndReleasesIt) {
  REQUIRE_CODECS(Type::F16);
  test::TempDir dir;
  VectorSource src;
  src.add("blk.0.attn_q.weight", {64, 8}, ramp(512, 1.0f));
  src.add("blk.0.attn_norm.weight", {64}, ramp(64, 1.0f));
  src.add("token_embd.weight", {64, 16}, ramp(1024, 0.5f));
  auto rep = quantize_model(src, dir.file("o.gguf"), opts_for("F16", 1));
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(src.data_calls[i], 1) << i;
    EXPECT_EQ(src.release_calls[i], 1) << i;
  }
  auto g = GgufFile::open(dir.file("o.gguf"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->find("split.count"), nullptr);  // split metadata is dropped
  EXPECT_EQ(g->find_tensor("blk.0.attn_q.weight")->type, Type::F16);
  EXPECT_EQ(g->find_tensor("blk.0.attn_norm.weight")->type, Type::F32);
}

TEST(ModelQuantizer, MisalignedF32SourceRowsAreHandled) {
  REQUIRE_CODECS(Type::F16);
  test::TempDir dir;
  const std::vector<float> v = ramp(256, 2.0f);
  std::vector<uint8_t> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());
  VectorSource src;
  src.add_raw("blk.0.attn_q.weight", {64, 4}, Type::F32, bytes, 1);
  auto rep = quantize_model(src, dir.file("o.gguf"), opts_for("F16", 1));
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  auto g = GgufFile::open(dir.file("o.gguf"));
  ASSERT_TRUE(g.ok());
  const auto out = decode(*g, g->tensors()[0]);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(out[i], fp16_to_f32(f32_to_fp16(v[i]))) << i;
}

TEST(ModelQuantizer, OverflowInTheOutputFormatFails) {
  REQUIRE_CODECS(Type::F16);
  test::TempDir dir;
  VectorSource src;
  src.add("blk.0.attn_q.weight", {64, 4}, ramp(256, 1e6f));  // > 65504: Inf in F16
  auto rep = quantize_model(src, dir.file("o.gguf"), opts_for("F16"));
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(
      rep.error().message.find("'blk.0.attn_q.weight': quantizing to F16 produced NaN or Inf"),
      std::string::npos)
      << rep.error().message;
  expect_no_output(dir, dir.file("o.gguf"));
}

TEST(ModelQuantizer, RefusesToRequantizeUnlessAllowed) {
  REQUIRE_CODECS(Type::Q8_0, Type::Q6_K, Type::Q4_K);
  test::TempDir dir;
  std::vector<float> w = ramp(256 * 4, 0.1f);
  std::vector<uint8_t> q8(34 * 8 * 4);
  find_codec(Type::Q8_0)->quantize(w.data(), q8.data(), 4, 256, {});
  auto make = [&] {
    auto s = std::make_unique<VectorSource>();
    s->add_raw("blk.0.attn_q.weight", {256, 4}, Type::Q8_0, q8);
    return s;
  };
  auto refused = quantize_model(*make(), dir.file("a.gguf"), opts_for("Q4_K_M"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("already quantized (Q8_0)"), std::string::npos);
  EXPECT_NE(refused.error().message.find("--allow-requantize"), std::string::npos);
  expect_no_output(dir, dir.file("a.gguf"));
  // Same type: nothing to requantize, the bytes are copied.
  auto same = quantize_model(*make(), dir.file("b.gguf"), opts_for("Q8_0"));
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_FALSE(same->plan.tensors[0].convert);
  auto o = opts_for("Q4_K_M");
  o.allow_requantize = true;
  auto allowed = quantize_model(*make(), dir.file("c.gguf"), o);
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  EXPECT_EQ(allowed->plan.tensors[0].dst_type, Type::Q4_K);
  EXPECT_LT(allowed->tensors[0].rel_rmse, 0.1);
}

TEST(ModelQuantizer, ImatrixIsUsedAndRecordedInMetadata) {
  REQUIRE_CODECS(Type::Q4_K, Type::Q6_K, Type::Q8_0);
  Fixture fx;
  auto m = std::make_shared<Imatrix>();
  m->source = "calib.imatrix";
  m->datasets = {"calibration.txt"};
  m->chunk_count = 12;
  for (const auto& t : fx.file->tensors())
    if (t.name.rfind("blk.", 0) == 0 && t.dims.size() == 2) {
      ImatrixEntry e;
      e.name = t.name;
      e.importance = ramp(t.dims[0], 1.0f);
      for (auto& v : e.importance) v = v * v + 0.01f;
      m->entries.push_back(e);
    }
  auto o = opts_for("Q4_K_M");
  o.imatrix = m;
  auto src = fx.source();
  auto rep = quantize_model(src, fx.dir.file("o.gguf"), o);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  for (const auto& t : rep->plan.tensors)
    EXPECT_EQ(t.uses_imatrix, t.convert && t.name.rfind("blk.", 0) == 0) << t.name;
  auto g = GgufFile::open(fx.dir.file("o.gguf"));
  ASSERT_TRUE(g.ok());
  const auto& kvs = g->kvs();
  ASSERT_GE(kvs.size(), 6u);
  const size_t n = kvs.size();
  EXPECT_EQ(kvs[n - 5].first, "general.file_type");
  EXPECT_EQ(kvs[n - 4], GgufKv("quantize.imatrix.file", GgufValue::string("calib.imatrix")));
  EXPECT_EQ(kvs[n - 3], GgufKv("quantize.imatrix.dataset", GgufValue::string("calibration.txt")));
  EXPECT_EQ(kvs[n - 2], GgufKv("quantize.imatrix.entries_count",
                               GgufValue::i32(static_cast<int32_t>(m->entries.size()))));
  EXPECT_EQ(kvs[n - 1], GgufKv("quantize.imatrix.chunks_count", GgufValue::i32(12)));

  // An entry whose length does not match its tensor is an error naming both.
  m->entries[0].importance.pop_back();
  auto bad = plan_quantization(src, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("calib.imatrix: entry '" + m->entries[0].name + "'"),
            std::string::npos)
      << bad.error().message;
}

TEST(ModelQuantizer, PlanJsonAndExplicitTypes) {
  REQUIRE_CODECS(Type::Q8_0, Type::Q6_K, Type::Q4_K, Type::F16);
  Fixture fx;
  auto o = opts_for("Q4_K_M");
  o.recipe.tensor_types.push_back(*parse_tensor_type_override("attn_k=Q8_0"));
  o.recipe.output_tensor_type = Type::F16;
  auto src = fx.source();
  auto plan = plan_quantization(src, o);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto j = plan_to_json(*plan);
  EXPECT_EQ(j["mix"], "Q4_K_M");
  EXPECT_EQ(j["file_type"], 15);
  EXPECT_EQ(j["output_file_bytes"], plan->output_file_bytes);
  std::map<std::string, nlohmann::json> by;
  for (const auto& t : j["tensors"]) by[t["name"]] = t;
  EXPECT_EQ(by["blk.0.attn_k.weight"]["to"], "Q8_0");
  EXPECT_EQ(by["blk.0.attn_k.weight"]["overridden"], true);
  EXPECT_EQ(by["output.weight"]["to"], "F16");
  EXPECT_EQ(by["output.weight"]["converted"], false);  // already F16: copied
  EXPECT_EQ(by["blk.0.attn_norm.weight"]["to"], "F32");
}

// Streaming: the peak RSS of a whole quantization stays under 3 x the largest tensor as f32 +
// 64 MiB even when the model is larger than that (measured in a forked child, ru_maxrss as
// /usr/bin/time -v reports it; touched pages of the mapped input count). Not under ASan, whose
// shadow memory inflates RSS.
TEST(ModelQuantizer, PeakMemoryDoesNotGrowWithModelSize) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RSS is not meaningful under AddressSanitizer";
#endif
  REQUIRE_CODECS(Type::Q8_0, Type::Q6_K, Type::F16);
  test::SyntheticModel m;
  m.n_layer = 12;
  m.hidden = 512;
  m.ffn = 2048;
  m.n_head = 8;
  m.n_head_kv = 8;
  m.vocab = 2048;
  Fixture fx(m);
  const uint64_t model_bytes = fx.file->tensor_data_bytes();
  uint64_t max_f32 = 0;
  for (const auto& t : fx.file->tensors()) max_f32 = std::max(max_f32, t.n_elements() * 4);
  const uint64_t bound = 3 * max_f32 + (uint64_t{64} << 20);
  ASSERT_GT(model_bytes, bound);  // the model alone would not fit under the bound
  fx.file.reset();                // the parent's mapping is not the child's business
  const std::string out = fx.dir.file("o.gguf");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    set_log_level(LogLevel::Warn);
    auto f = GgufFile::open(fx.in);
    if (!f.ok()) _exit(2);
    GgufTensorSource src(std::make_shared<const GgufFile>(std::move(f).value()));
    auto o = opts_for("Q8_0");
    o.ggml_compatible = true;  // the fast encoder: this test is about memory
    _exit(quantize_model(src, out, o).ok() ? 0 : 1);
  }
  int status = 0;
  rusage ru{};
  ASSERT_EQ(wait4(pid, &status, 0, &ru), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const uint64_t rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  std::printf("peak RSS %.1f MB for a %.1f MB model (bound %.1f MB)\n", rss / 1e6,
              model_bytes / 1e6, bound / 1e6);
  EXPECT_LT(rss, bound) << "peak RSS " << rss / 1e6 << " MB, model " << model_bytes / 1e6 << " MB";
  EXPECT_TRUE(GgufFile::open(out).ok());
}

// ---- acceptance 1: llama-quantize's files of the mini model ----
// With --ggml-compatible the codecs reproduce ggml's encoders, so every file is byte-identical
// to llama-quantize's. The default (refined) encoders choose the same types, hence the same
// sizes, and must never have a larger per-tensor error than llama.cpp's.

// A source exposing only the tensors `keep` accepts (to bound the time of slow searches).
class FilteredSource : public TensorSource {
 public:
  FilteredSource(TensorSource& inner, std::function<bool(const std::string&)> keep)
      : inner_(inner) {
    for (size_t i = 0; i < inner.tensors().size(); ++i)
      if (keep(inner.tensors()[i].name)) {
        map_.push_back(i);
        tensors_.push_back(inner.tensors()[i]);
      }
  }
  const std::vector<GgufKv>& kvs() const override { return inner_.kvs(); }
  const std::vector<SourceTensor>& tensors() const override { return tensors_; }
  Result<std::span<const uint8_t>> data(size_t i) override { return inner_.data(map_[i]); }
  void release(size_t i) override { inner_.release(map_[i]); }
  std::string describe() const override { return inner_.describe(); }

 private:
  TensorSource& inner_;
  std::vector<size_t> map_;
  std::vector<SourceTensor> tensors_;
};

struct Comparison {
  std::map<std::string, std::pair<double, double>> err;  // quantized tensors: (ours, llama.cpp)
  std::map<std::string, bool> same_bytes;
  std::map<std::string, Type> type;
  bool file_identical = false;
};

// Quantizes mini-f16 (the tensors `keep` accepts) and compares with llama.cpp's file tensor by
// tensor: names, types and sizes must agree; records byte equality and relative errors.
Comparison compare_with_llama(const std::string& mix, bool ggml_compatible,
                              const std::function<bool(const std::string&)>& keep = nullptr) {
  Comparison c;
  auto f16 = std::make_shared<const GgufFile>(
      std::move(GgufFile::open(test::shared_path("reference/mini-f16.gguf"))).value());
  auto theirs = GgufFile::open(test::shared_path("reference/mini-" + mix + ".gguf"));
  EXPECT_TRUE(theirs.ok());
  test::TempDir dir;
  GgufTensorSource full(f16);
  FilteredSource some(
      full, keep ? keep : [](const std::string&) { return true; });
  auto o = opts_for(mix);
  o.ggml_compatible = ggml_compatible;
  const std::string out = dir.file("o.gguf");
  auto rep = quantize_model(some, out, o);
  EXPECT_TRUE(rep.ok()) << rep.error().message;
  if (!rep.ok() || !theirs.ok()) return c;
  auto ours = GgufFile::open(out);
  EXPECT_TRUE(ours.ok());
  if (!keep) {
    EXPECT_EQ(ours->kvs(), theirs->kvs());
    EXPECT_EQ(ours->tensors().size(), theirs->tensors().size());
    c.file_identical =
        ours->bytes().size() == theirs->bytes().size() &&
        std::equal(ours->bytes().begin(), ours->bytes().end(), theirs->bytes().begin());
  }
  for (const auto& a : ours->tensors()) {
    const auto* b = theirs->find_tensor(a.name);
    EXPECT_NE(b, nullptr) << a.name;
    if (!b) continue;
    EXPECT_EQ(a.type, b->type) << a.name;
    EXPECT_EQ(a.size, b->size) << a.name;
    if (a.type != b->type || a.size != b->size) continue;
    auto da = ours->tensor_data(a), db = theirs->tensor_data(*b);
    c.same_bytes[a.name] = std::equal(da.begin(), da.end(), db.begin());
    c.type[a.name] = a.type;
    if (type_info(a.type).quantized) {
      const auto x = decode(*f16, *f16->find_tensor(a.name));
      c.err[a.name] = {rel_rmse(x, decode(*ours, a)), rel_rmse(x, decode(*theirs, *b))};
    }
  }
  return c;
}

bool shared_mix(const std::string& mix) {
  return fs::exists(test::shared_path("reference/mini-" + mix + ".gguf"));
}

TEST(ModelQuantizerReference, MiniGgmlCompatibleFilesAreByteIdentical) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  REQUIRE_CODECS(Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q6_K, Type::F16);
  for (const std::string mix : {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}) {
    SCOPED_TRACE(mix);
    if (!shared_mix(mix)) continue;
    const Comparison c = compare_with_llama(mix, true);
    ASSERT_FALSE(c.same_bytes.empty());
    for (const auto& [name, same] : c.same_bytes) EXPECT_TRUE(same) << name;
    EXPECT_TRUE(c.file_identical);
  }
}

TEST(ModelQuantizerReference, MiniDefaultModeHasSameTypesAndNoLargerError) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  REQUIRE_CODECS(Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q6_K, Type::F16);
  // Issue #3 acceptance 1, default mode (no --ggml-compatible): Q8_0 tensor data byte-identical
  // to llama.cpp's; every Q4_0 tensor byte-identical (the output tensor is Q6_K: error no larger);
  // Q4_K_M and Q6_K: same types and sizes, per-tensor error no larger than llama.cpp's.
  for (const std::string mix : {"Q4_K_M", "Q6_K", "Q8_0", "Q4_0"}) {
    SCOPED_TRACE(mix);
    if (!shared_mix(mix)) continue;
    const Comparison c = compare_with_llama(mix, false);
    ASSERT_FALSE(c.err.empty());
    for (const auto& [name, e] : c.err) EXPECT_LE(e.first, e.second * (1 + 1e-6)) << name;
    for (const auto& [name, t] : c.type) {
      if (t == Type::Q8_0 || t == Type::Q4_0) {
        EXPECT_TRUE(c.same_bytes.at(name)) << name;
      }
    }
    if (mix == "Q8_0") {
      EXPECT_TRUE(c.file_identical);
    }
    if (mix == "Q4_0") {
      EXPECT_EQ(c.type.at("output.weight"), Type::Q6_K);
    }
  }
}

}  // namespace
}  // namespace qforge
