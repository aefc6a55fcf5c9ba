// The sensitivity table with covariances (quant/sensitivity.h) measures what the writer does:
// error feedback where the type has it; its raw Hessian-weighted error tr((W-Q)H(W-Q)ᵀ) is
// checked against an independent refined encoding (never worse) and against the written file's
// own error, and the allocation's measure against that error plus the damping term computed
// from the written file.
#include "quant/sensitivity.h"

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/codec.h"
#include "quant/decode_tensor.h"
#include "quant/error_feedback.h"
#include "quant/model_quantizer.h"
#include "quant/synthetic_covariance.h"
#include "quant/synthetic_gguf.h"
#include "test_util.h"

namespace qforge {
namespace {

struct CovFixture {
  test::TempDir dir;
  test::SyntheticModel m;
  std::shared_ptr<const GgufFile> file;
  std::shared_ptr<const CovarianceFile> cov;
  CovFixture() {
    m.n_layer = 1;
    EXPECT_TRUE(test::write_synthetic_gguf(dir.file("in.gguf"), m).ok());
    file = std::make_shared<const GgufFile>(std::move(GgufFile::open(dir.file("in.gguf"))).value());
    auto st = test::write_synthetic_covariance(dir.file("c.cov"), m, {"blk.0.ffn_down.weight"});
    EXPECT_TRUE(st.ok()) << st.error().message;
    auto c = CovarianceFile::open(dir.file("c.cov"));
    EXPECT_TRUE(c.ok()) << c.error().message;
    cov = std::make_shared<const CovarianceFile>(std::move(*c));
  }
  std::vector<float> weights(const std::string& name) const {
    const GgufTensorInfo& t = *file->find_tensor(name);
    std::vector<float> w(t.n_elements());
    find_codec(t.type)->dequantize(file->tensor_data(t).data(), w.data(),
                                   static_cast<int64_t>(w.size()));
    return w;
  }
};

// Every row encoded by the refined search with diag(H) as importance (what error feedback's
// guard compares with), its Hessian-weighted error.
double refined_hessian_error(const std::vector<float>& w, int64_t cols, Type t, const float* H) {
  const int64_t rows = static_cast<int64_t>(w.size()) / cols;
  std::vector<float> diag(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) diag[static_cast<size_t>(c)] = std::max(0.0f, H[c * cols + c]);
  const Codec* codec = find_codec(t);
  std::vector<uint8_t> q(static_cast<size_t>(rows) * *row_size(t, cols));
  std::vector<float> y(w.size());
  QuantizeOptions qo;
  qo.imatrix = diag.data();
  codec->quantize(w.data(), q.data(), rows, cols, qo);
  codec->dequantize(q.data(), y.data(), static_cast<int64_t>(y.size()));
  return hessian_weighted_error(w.data(), y.data(), rows, cols, H);
}

TEST(Sensitivity, ErrorFeedbackNeverExceedsTheRefinedHessianError) {
  CovFixture fx;
  GgufTensorSource src(fx.file);
  SensitivityOptions so;
  so.threads = 2;
  so.sample_rows = 0;  // every row: the table's errors are the whole tensor's
  so.covariance = fx.cov;
  auto table = measure_sensitivity(src, nullptr, so);
  ASSERT_TRUE(table.ok()) << table.error().message;
  int n_checked = 0;
  for (const auto& ts : *table) {
    const auto view = fx.cov->find(ts.name);
    EXPECT_EQ(ts.hessian, view.has_value()) << ts.name;
    if (!view) continue;
    const auto w = fx.weights(ts.name);
    const int64_t cols = static_cast<int64_t>(ts.dims[0]);
    const double signal =
        hessian_weighted_error(w.data(), std::vector<float>(w.size()).data(),
                               static_cast<int64_t>(w.size()) / cols, cols, view->matrix(0));
    EXPECT_NEAR(ts.signal, signal, 1e-6 * signal) << ts.name;
    for (const auto& c : ts.costs) {
      if (!error_feedback_supports(c.type)) continue;
      const double ref = refined_hessian_error(w, cols, c.type, view->matrix(0));
      EXPECT_LE(c.hessian_error, ref * (1 + 1e-5)) << ts.name << " " << type_name(c.type);
      EXPECT_GT(c.hessian_error, 0) << ts.name << " " << type_name(c.type);
      EXPECT_GT(c.error, c.hessian_error) << "the damped measure adds the damping term";
      ++n_checked;
    }
  }
  EXPECT_GE(n_checked, 6 * 5);  // 6 covered matrices, Q2_K..Q6_K and Q8_0
}

TEST(Sensitivity, CoveredErrorsAreTheWrittenFilesErrors) {
  CovFixture fx;
  // The table (every candidate type of every tensor) does not depend on the mix: measured once.
  SensitivityOptions so;
  so.threads = 1;
  so.sample_rows = 0;
  so.covariance = fx.cov;
  GgufTensorSource src2(fx.file);
  auto table = measure_sensitivity(src2, nullptr, so);
  ASSERT_TRUE(table.ok()) << table.error().message;
  for (const char* mix : {"Q3_K_M", "Q5_K_M"}) {
    SCOPED_TRACE(mix);
    ModelQuantizeOptions o;
    o.mix = mix;
    o.recipe.pure = true;
    o.threads = 2;
    o.overwrite = true;
    o.covariance = fx.cov;
    GgufTensorSource src(fx.file);
    auto rep = quantize_model(src, fx.dir.file("out.gguf"), o);
    ASSERT_TRUE(rep.ok()) << rep.error().message;
    int n_ef = 0;
    for (size_t i = 0; i < rep->plan.tensors.size(); ++i) {
      const auto& pt = rep->plan.tensors[i];
      if (!pt.error_feedback) continue;
      const auto it = std::find_if(table->begin(), table->end(),
                                   [&](const auto& t) { return t.name == pt.name; });
      ASSERT_NE(it, table->end()) << pt.name;
      const auto c = std::find_if(it->costs.begin(), it->costs.end(),
                                  [&](const auto& x) { return x.type == pt.dst_type; });
      ASSERT_NE(c, it->costs.end()) << pt.name;
      EXPECT_EQ(c->bytes, pt.dst_bytes) << pt.name;
      const double e = rep->tensors[i].hessian_error;
      EXPECT_NEAR(c->hessian_error, e, 1e-6 * e) << pt.name;
      // The damped measure: the raw error plus sum_k added_k (w - q)^2 of the written tensor,
      // `added` from the writer's damping of this covariance.
      const auto view = fx.cov->find(pt.name);
      ASSERT_TRUE(view.has_value());
      const int64_t n = static_cast<int64_t>(pt.dims[0]);
      ThreadPool pool(1);
      auto factor = HessianFactor::build(view->matrix(0), n, o.gptq_damp, pool);
      ASSERT_TRUE(factor.ok());
      const auto w = fx.weights(pt.name);
      auto out = GgufFile::open(fx.dir.file("out.gguf"));
      ASSERT_TRUE(out.ok());
      const auto q = test::decode(*out, *out->find_tensor(pt.name));
      ASSERT_EQ(q.size(), w.size());
      double damping = 0;
      for (size_t k = 0; k < w.size(); ++k) {
        const double d = double(w[k]) - q[k];
        damping += factor->added()[k % static_cast<size_t>(n)] * d * d;
      }
      EXPECT_GT(damping, 0);
      EXPECT_NEAR(c->error, e + damping, 1e-5 * (e + damping)) << pt.name;
      ++n_ef;
    }
    EXPECT_EQ(n_ef, 6);
  }
}

TEST(Sensitivity, SampledRowsEstimateTheWholeTensor) {
  CovFixture fx;
  SensitivityOptions so;
  so.threads = 2;
  so.covariance = fx.cov;
  so.sample_rows = 0;
  GgufTensorSource src(fx.file);
  auto full = measure_sensitivity(src, nullptr, so);
  so.sample_rows = 64;
  GgufTensorSource src2(fx.file);
  auto part = measure_sensitivity(src2, nullptr, so);
  ASSERT_TRUE(full.ok() && part.ok());
  ASSERT_EQ(full->size(), part->size());
  for (size_t i = 0; i < full->size(); ++i) {
    const auto& a = (*full)[i];
    const auto& b = (*part)[i];
    ASSERT_EQ(a.costs.size(), b.costs.size());
    EXPECT_LT(b.rows_sampled, a.rows_sampled) << a.name;
    for (size_t c = 0; c < a.costs.size(); ++c) {
      EXPECT_EQ(a.costs[c].bytes, b.costs[c].bytes);
      // Same order of magnitude (rows are i.i.d. in the synthetic model).
      EXPECT_NEAR(b.costs[c].error / a.costs[c].error, 1.0, 0.35)
          << a.name << " " << type_name(a.costs[c].type);
    }
  }
}

TEST(Sensitivity, CovarianceOfAnotherModelIsAnError) {
  CovFixture fx;
  test::SyntheticModel other = fx.m;
  other.hidden = 128;
  ASSERT_TRUE(test::write_synthetic_covariance(fx.dir.file("o.cov"), other).ok());
  SensitivityOptions so;
  so.threads = 1;
  so.covariance =
      std::make_shared<const CovarianceFile>(*CovarianceFile::open(fx.dir.file("o.cov")));
  GgufTensorSource src(fx.file);
  auto table = measure_sensitivity(src, nullptr, so);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.error().message.find("tensor 'blk.0."), std::string::npos)
      << table.error().message;
}

}  // namespace
}  // namespace qforge
