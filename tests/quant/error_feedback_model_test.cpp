// Error feedback inside the model quantizer: tensors with a covariance are encoded by it (and
// say so in the report), the others by the refined search; the file has exactly the refined
// file's types and size, and every error-feedback tensor has a lower Hessian-weighted error.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "formats/covariance.h"
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

using test::decode;

struct EfFixture {
  test::TempDir dir;
  test::SyntheticModel m;
  std::shared_ptr<const GgufFile> file;
  std::shared_ptr<const CovarianceFile> cov;
  EfFixture() {
    m.n_layer = 1;
    EXPECT_TRUE(test::write_synthetic_gguf(dir.file("in.gguf"), m).ok());
    file = std::make_shared<const GgufFile>(std::move(GgufFile::open(dir.file("in.gguf"))).value());
    auto st = test::write_synthetic_covariance(dir.file("c.cov"), m, {"blk.0.ffn_down.weight"});
    EXPECT_TRUE(st.ok()) << st.error().message;
    auto c = CovarianceFile::open(dir.file("c.cov"));
    EXPECT_TRUE(c.ok()) << c.error().message;
    cov = std::make_shared<const CovarianceFile>(std::move(*c));
  }
};

TEST(ErrorFeedbackModel, CoveredTensorsUseItSameBytesLowerHessianError) {
  EfFixture fx;
  for (const char* mix : {"Q4_K_M", "Q2_K"}) {
    SCOPED_TRACE(mix);
    ModelQuantizeOptions o;
    o.mix = mix;
    o.threads = 2;
    o.overwrite = true;
    o.covariance = fx.cov;
    GgufTensorSource src(fx.file);
    auto rep = quantize_model(src, fx.dir.file("gptq.gguf"), o);
    ASSERT_TRUE(rep.ok()) << rep.error().message;
    o.method = QuantMethod::Refined;
    GgufTensorSource src2(fx.file);
    auto rep_ref = quantize_model(src2, fx.dir.file("ref.gguf"), o);
    ASSERT_TRUE(rep_ref.ok()) << rep_ref.error().message;
    EXPECT_EQ(std::filesystem::file_size(fx.dir.file("gptq.gguf")),
              std::filesystem::file_size(fx.dir.file("ref.gguf")));
    EXPECT_EQ(rep->plan.output_file_bytes, rep_ref->plan.output_file_bytes);

    auto g = GgufFile::open(fx.dir.file("gptq.gguf"));
    auto r = GgufFile::open(fx.dir.file("ref.gguf"));
    ASSERT_TRUE(g.ok() && r.ok());
    int n_ef = 0;
    for (size_t i = 0; i < rep->plan.tensors.size(); ++i) {
      const auto& pt = rep->plan.tensors[i];
      const bool covered = fx.cov->find(pt.name).has_value();
      EXPECT_EQ(pt.error_feedback, covered && pt.convert) << pt.name;
      EXPECT_EQ(rep->tensors[i].method, !pt.convert         ? "copy"
                                        : pt.error_feedback ? "gptq"
                                                            : "refined")
          << pt.name;
      EXPECT_EQ(rep_ref->tensors[i].method, pt.convert ? "refined" : "copy") << pt.name;
      const auto& gt = g->tensors()[i];
      const auto& rt = r->tensors()[i];
      ASSERT_EQ(gt.type, rt.type) << pt.name;
      ASSERT_EQ(g->tensor_data(gt).size(), r->tensor_data(rt).size()) << pt.name;
      if (!pt.error_feedback) continue;
      ++n_ef;
      const auto view = *fx.cov->find(pt.name);
      const auto w = decode(*fx.file, *fx.file->find_tensor(pt.name));
      const auto yg = decode(*g, gt), yr = decode(*r, rt);
      const int64_t cols = static_cast<int64_t>(pt.dims[0]);
      const int64_t rows = static_cast<int64_t>(w.size()) / cols;
      const double eg = hessian_weighted_error(w.data(), yg.data(), rows, cols, view.matrix(0));
      const double er = hessian_weighted_error(w.data(), yr.data(), rows, cols, view.matrix(0));
      EXPECT_LT(eg, 0.9 * er) << pt.name;
      EXPECT_NEAR(rep->tensors[i].hessian_error, eg, 1e-3 * eg) << pt.name;
    }
    EXPECT_EQ(n_ef, 6);
    // The JSON report names the method of every tensor.
    const auto j = report_to_json(*rep);
    for (const auto& t : j["tensors"]) EXPECT_TRUE(t.contains("method")) << t["name"];
  }
}

// Q3_K tensors take their own damping (ModelQuantizeOptions::gptq_damp_q3_k), the others
// gptq_damp: changing the first changes exactly the Q3_K tensors' bytes.
TEST(ErrorFeedbackModel, Q3KTensorsUseTheirOwnDamping) {
  EfFixture fx;
  auto run = [&](double damp_q3_k, const char* name) {
    ModelQuantizeOptions o;
    o.mix = "Q3_K_M";
    o.threads = 2;
    o.overwrite = true;
    o.covariance = fx.cov;
    o.gptq_damp_q3_k = damp_q3_k;
    GgufTensorSource src(fx.file);
    auto rep = quantize_model(src, fx.dir.file(name), o);
    EXPECT_TRUE(rep.ok()) << rep.error().message;
    return std::move(GgufFile::open(fx.dir.file(name))).value();
  };
  const GgufFile a = run(1.0, "a.gguf"), b = run(0.3, "b.gguf");
  int n_q3 = 0, n_other = 0;
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto& ta = a.tensors()[i];
    if (!fx.cov->find(ta.name)) continue;
    const auto da = a.tensor_data(ta), db = b.tensor_data(b.tensors()[i]);
    const bool same = std::equal(da.begin(), da.end(), db.begin(), db.end());
    if (ta.type == Type::Q3_K) {
      EXPECT_FALSE(same) << ta.name;
      ++n_q3;
    } else {
      EXPECT_TRUE(same) << ta.name;
      ++n_other;
    }
  }
  EXPECT_GT(n_q3, 0);
  EXPECT_GT(n_other, 0);
}

TEST(ErrorFeedbackModel, MethodsAndShapeErrors) {
  EfFixture fx;
  ModelQuantizeOptions o;
  o.mix = "Q4_K_M";
  o.method = QuantMethod::ErrorFeedback;  // without covariances: an error
  GgufTensorSource src(fx.file);
  auto p = plan_quantization(src, o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("covariances"), std::string::npos) << p.error().message;
  o.covariance = fx.cov;
  o.ggml_compatible = true;  // ggml's bytes never use error feedback
  p = plan_quantization(src, o);
  ASSERT_TRUE(p.ok());
  for (const auto& t : p->tensors) EXPECT_FALSE(t.error_feedback) << t.name;

  // A covariance of another model (wrong width) is an error naming the tensor.
  test::SyntheticModel other = fx.m;
  other.hidden = 128;
  other.n_head = 2;
  other.n_head_kv = 1;
  ASSERT_TRUE(test::write_synthetic_covariance(fx.dir.file("o.cov"), other).ok());
  o.ggml_compatible = false;
  o.covariance = std::make_shared<const CovarianceFile>(
      std::move(CovarianceFile::open(fx.dir.file("o.cov"))).value());
  p = plan_quantization(src, o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("blk.0.attn_"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace qforge
