#include "pipeline/target_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/log.h"
#include "core/process_memory.h"
#include "core/stopwatch.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "eval/text_eval.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "formats/tensor_source.h"
#include "io/mapped_file.h"
#include "quant/size_target.h"

namespace qforge {

std::string target_variant_name(uint64_t budget_bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "T%.2fMB", budget_bytes / 1e6);
  return buf;
}

Result<TargetStepResult> target_quantize_step(const std::string& in, const std::string& out,
                                              uint64_t budget_bytes, const QuantizeStepOptions& o) {
  QF_TRY(GgufFile f, GgufFile::open(in));
  GgufTensorSource src(std::make_shared<const GgufFile>(std::move(f)));
  ModelQuantizeOptions qo;
  qo.threads = o.threads;
  qo.overwrite = o.overwrite;
  QF_CHECK(load_quantizer_statistics(o.imatrix, qo));
  SensitivityOptions so;
  so.threads = o.threads;
  // The same prior as `qforge quantize --target-size`: Hessian-weighted when covariances exist.
  QF_TRY(TargetPlan tp, plan_size_target(src, qo, budget_bytes, so,
                                         builtin_proxy_model(qo.covariance != nullptr)));
  QF_TRY(QuantizeReport rep, quantize_model(src, out, tp.options));
  TargetStepResult r;
  r.quantize = quantize_step_result(rep, in, out);
  QuantizeStepResult& q = r.quantize;
  q.mix = target_variant_name(budget_bytes);
  q.seconds = rep.seconds + tp.sensitivity_seconds + tp.allocation_seconds;
  r.allocation = allocation_to_json(tp);
  r.allocation.erase("sensitivity");
  r.allocation.erase("tensors");
  return r;
}

namespace {

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < v.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * static_cast<double>(i + j);
    i = j + 1;
  }
  return r;
}

// A private scratch folder for the one-tensor files and the base logits, removed on every exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (std::filesystem::temp_directory_path() / "qforge-measure-XXXXXX").string();
    if (mkdtemp(t.data())) path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// About max_tensors table indices spread evenly over the table (all when 0 or more).
std::vector<size_t> pick_tensors(size_t n, int64_t max_tensors) {
  std::vector<size_t> idx;
  if (max_tensors <= 0 || static_cast<size_t>(max_tensors) >= n) {
    for (size_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  for (int64_t k = 0; k < max_tensors; ++k)
    idx.push_back(static_cast<size_t>(k * static_cast<int64_t>(n) / max_tensors));
  return idx;
}

class QuietLog {
 public:
  explicit QuietLog(LogLevel l) : prev_(log_level()) { set_log_level(std::max(l, prev_)); }
  ~QuietLog() { set_log_level(prev_); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;

 private:
  LogLevel prev_;
};

double fitted_prediction(const MeasuredTensor& m, const ProxyModel& pm, int n_layer) {
  return pm.scale_for(m.kind) * pm.depth_factor(m.layer, n_layer) * m.error;
}

// The fit on every measurement, its in-sample and leave-one-out predictions and the rank
// correlations of each predictor with the measured KLD.
ProxyCalibration finish_calibration(ProxyCalibration cal, int n_layer,
                                    std::chrono::steady_clock::time_point t0) {
  auto& ms = cal.measured;
  cal.model = fit_proxy(ms, n_layer, "measured (--calibration)");
  for (size_t i = 0; i < ms.size(); ++i) {
    ms[i].predicted_fitted = fitted_prediction(ms[i], cal.model, n_layer);
    std::vector<MeasuredTensor> rest;
    for (size_t j = 0; j < ms.size(); ++j)
      if (j != i) rest.push_back(ms[j]);
    ms[i].predicted_loo = fitted_prediction(ms[i], fit_proxy(rest, n_layer, ""), n_layer);
  }
  std::vector<double> kld, err, prior, fitted, loo;
  for (const auto& m : ms) {
    kld.push_back(m.kld);
    err.push_back(m.error);
    prior.push_back(m.predicted_prior);
    fitted.push_back(m.predicted_fitted);
    loo.push_back(m.predicted_loo);
  }
  cal.spearman_error = spearman(err, kld);
  cal.spearman_prior = spearman(prior, kld);
  cal.spearman_fitted = spearman(fitted, kld);
  cal.spearman_loo = spearman(loo, kld);
  cal.seconds = seconds_since(t0);
  return cal;
}

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || a.size() != b.size()) return 0;
  const auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < ra.size(); ++i) ma += ra[i] / n, mb += rb[i] / n;
  double c = 0, va = 0, vb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    c += (ra[i] - ma) * (rb[i] - mb);
    va += (ra[i] - ma) * (ra[i] - ma);
    vb += (rb[i] - mb) * (rb[i] - mb);
  }
  return va > 0 && vb > 0 ? c / std::sqrt(va * vb) : 0;
}

ProxyModel fit_proxy(const std::vector<MeasuredTensor>& measured, int n_layer,
                     const std::string& source) {
  std::map<std::string, double> a;
  std::map<int, double> b;
  auto lr = [](const MeasuredTensor& m) {
    return std::log(std::max(m.kld, 1e-12) / std::max(m.error, 1e-30));
  };
  for (int iter = 0; iter < 50; ++iter) {
    std::map<std::string, std::pair<double, int>> sa;
    for (const auto& m : measured) {
      auto& [s, n] = sa[m.kind];
      s += lr(m) - (b.count(m.layer) ? b[m.layer] : 0.0);
      ++n;
    }
    for (auto& [k, v] : sa) a[k] = v.first / v.second;
    std::map<int, std::pair<double, int>> sb;
    for (const auto& m : measured)
      if (m.layer >= 0) {
        auto& [s, n] = sb[m.layer];
        s += lr(m) - a[m.kind];
        ++n;
      }
    for (auto& [l, v] : sb) b[l] = v.first / v.second;
  }
  ProxyModel pm;
  pm.source = source;
  std::vector<double> scales;
  for (auto& [k, v] : a) {
    pm.kind_scale[k] = std::exp(v);
    scales.push_back(std::exp(v));
  }
  if (!scales.empty()) {
    std::nth_element(scales.begin(), scales.begin() + scales.size() / 2, scales.end());
    pm.default_scale = scales[scales.size() / 2];
  }
  // Per-layer factors; a layer not measured takes the mean of its nearest measured neighbours.
  for (int l = 0; l < n_layer; ++l) {
    if (b.count(l)) {
      pm.depth_factors.push_back(std::exp(b[l]));
      continue;
    }
    double s = 0;
    int n = 0;
    auto lo = b.lower_bound(l);
    if (lo != b.end()) s += lo->second, ++n;
    if (lo != b.begin()) s += std::prev(lo)->second, ++n;
    pm.depth_factors.push_back(n ? std::exp(s / n) : 1.0);
  }
  return pm;
}

Result<ProxyCalibration> calibrate_proxy(const std::string& model_path, TensorSource& src,
                                         const ModelQuantizeOptions& base,
                                         const std::vector<TensorSensitivity>& table,
                                         const ProxyModel& prior,
                                         const ProxyCalibrationOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ScratchDir scratch;
  if (scratch.path().empty()) return make_error("cannot create a scratch folder for --measure");
  QF_TRY(Model f16, Model::load(model_path));
  QF_TRY(Tokenizer tok, Tokenizer::from_gguf(f16.file()));
  QF_TRY(std::string text, read_file_text(o.text_path));
  const std::vector<int32_t> tokens = tok.encode(text, true, false);
  TextEvalOptions eo;
  eo.ctx = o.ctx;
  eo.chunks = o.chunks;
  eo.threads = o.threads;
  const std::string base_path = scratch.path() + "/base.kldb";
  eo.kld_write = base_path;
  QF_TRY(TextEvalResult b, evaluate_text(f16, tok, tokens, o.text_path, eo));
  ProxyCalibration cal;
  cal.base_seconds = seconds_since(t0);
  cal.chunks = b.ppl.chunks;
  cal.tokens_scored = b.ppl.tokens_scored;
  eo.kld_write.clear();
  eo.kld_compare = base_path;

  const bool tied = std::none_of(table.begin(), table.end(),
                                 [](const auto& t) { return t.name == "output.weight"; });
  int n_layer = 0;
  for (const auto& t : table) n_layer = std::max(n_layer, t.layer + 1);
  const std::vector<size_t> pick = pick_tensors(table.size(), o.max_tensors);
  Progress progress("target.measure", "measure", pick.size());
  for (size_t k = 0; k < pick.size(); ++k) {
    const TensorSensitivity& ts = table[pick[k]];
    const Type t = fit_candidate(o.type, ts.dims[0]);
    const auto c = std::find_if(ts.costs.begin(), ts.costs.end(),
                                [&](const TypeCost& x) { return x.type == t; });
    if (c == ts.costs.end())
      return make_error("--measure type ", type_name(t), " is not a candidate of tensor '", ts.name,
                        "' (add it to --types)");
    ModelQuantizeOptions qo = base;
    qo.mix = "F16";
    qo.recipe.pure = false;
    qo.tensor_type_map = {{ts.name, t}};
    qo.write_sidecar = false;
    qo.overwrite = true;
    qo.input_sha256.clear();
    const std::string one = scratch.path() + "/one.gguf";
    {
      QuietLog quiet(LogLevel::Error);
      QF_TRY(QuantizeReport rep, quantize_model(src, one, qo));
    }
    QF_TRY(Model qm, Model::load(one));
    QF_TRY(TextEvalResult r, evaluate_text(qm, tok, tokens, o.text_path, eo));
    MeasuredTensor m;
    m.name = ts.name;
    // With tied embeddings token_embd is the head and shares output.weight's factor.
    m.kind = tied && ts.kind == "token_embd.weight" ? std::string("output.weight") : ts.kind;
    m.layer = ts.layer;
    m.type = t;
    m.error = c->error;
    m.kld = r.kld ? r.kld->kld_mean : 0.0;
    m.predicted_prior = predicted_kld(ts, *c, prior, tied, n_layer);
    cal.measured.push_back(m);
    progress.update(k + 1, 0, ts.name);
  }
  progress.finish();
  ProxyCalibration done = finish_calibration(std::move(cal), n_layer, t0);
  // Measured tensors use their own factor: the kind x depth fit misses outliers (layer 0's
  // attn_output on refmodel: 40x under-predicted), and the measurement is at hand.
  for (const auto& m : done.measured)
    if (m.kld > 0 && m.error > 0) done.model.tensor_scale[m.name] = m.kld / m.error;
  log_info("target.measured",
           "proxy fitted to " + std::to_string(done.measured.size()) +
               " measured tensors; Spearman vs measured KLD: raw error " +
               std::to_string(done.spearman_error) + ", prior proxy " +
               std::to_string(done.spearman_prior) + ", fitted " +
               std::to_string(done.spearman_fitted) + ", leave-one-out " +
               std::to_string(done.spearman_loo),
           {{"tensors", done.measured.size()},
            {"chunks", done.chunks},
            {"spearman_error", done.spearman_error},
            {"spearman_prior", done.spearman_prior},
            {"spearman_fitted", done.spearman_fitted},
            {"spearman_leave_one_out", done.spearman_loo},
            {"seconds", done.seconds}});
  return done;
}

nlohmann::json calibration_to_json(const ProxyCalibration& c) {
  nlohmann::json measured = nlohmann::json::array();
  for (const auto& m : c.measured)
    measured.push_back({{"name", m.name},
                        {"kind", m.kind},
                        {"layer", m.layer},
                        {"type", std::string(type_name(m.type))},
                        {"error", m.error},
                        {"kld", m.kld},
                        {"predicted_prior", m.predicted_prior},
                        {"predicted_fitted", m.predicted_fitted},
                        {"predicted_leave_one_out", m.predicted_loo}});
  nlohmann::json factors = nlohmann::json::object();
  for (const auto& [k, v] : c.model.kind_scale) factors[k] = v;
  nlohmann::json tensor_factors = nlohmann::json::object();
  for (const auto& [k, v] : c.model.tensor_scale) tensor_factors[k] = v;
  return {{"error", "absolute"},
          {"factors", factors},
          {"tensor_factors", tensor_factors},
          {"default_factor", c.model.default_scale},
          {"depth_factors", c.model.depth_factors},
          {"chunks", c.chunks},
          {"tokens_scored", c.tokens_scored},
          {"spearman_error", c.spearman_error},
          {"spearman_prior", c.spearman_prior},
          {"spearman_fitted", c.spearman_fitted},
          {"spearman_leave_one_out", c.spearman_loo},
          {"base_seconds", c.base_seconds},
          {"seconds", c.seconds},
          {"measured", measured}};
}

}  // namespace qforge
