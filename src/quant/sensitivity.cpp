#include "quant/sensitivity.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "core/log.h"
#include "core/thread_pool.h"
#include "kernels/codec.h"
#include "quant/error_feedback.h"
#include "quant/recipe.h"

namespace qforge {
namespace {

struct ThreadAcc {
  std::vector<float> x, y;
  std::vector<uint8_t> q;
  std::vector<double> err;  // per candidate
  double signal = 0;
  int64_t bad_row = -1;
};

// Weighted sums in independent lanes (vectorisable); w may be null (weight 1).
double weighted_sq(const float* x, const float* w, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double v = x[i + l];
      acc[l] += (w ? w[i + l] : 1.0) * v * v;
    }
  for (; i < n; ++i) acc[0] += (w ? w[i] : 1.0) * static_cast<double>(x[i]) * x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
double weighted_sq_diff(const float* x, const float* y, const float* w, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(y[i + l]) - x[i + l];
      acc[l] += (w ? w[i + l] : 1.0) * d * d;
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - x[i];
    acc[0] += (w ? w[i] : 1.0) * d * d;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

bool is_block_type(Type t) {
  return t == Type::Q2_K || t == Type::Q3_K || t == Type::Q4_K || t == Type::Q5_K ||
         t == Type::Q6_K || t == Type::IQ4_XS;
}

// Per-row tr((w - q) H (w - q)ᵀ) of nr rows (Q null: of the rows themselves), rows in parallel.
double hessian_rows_error(const float* W, const float* Q, int64_t nr, int64_t n, const float* H,
                          ThreadPool& pool) {
  std::vector<double> per(static_cast<size_t>(nr), 0.0);
  std::vector<float> zero(Q ? 0 : static_cast<size_t>(n), 0.0f);
  pool.parallel_for(nr, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r)
      per[static_cast<size_t>(r)] =
          hessian_weighted_error(W + r * n, Q ? Q + r * n : zero.data(), 1, n, H);
  });
  double total = 0;
  for (double v : per) total += v;
  return total;
}

// What one tensor's measurement needs besides its data.
struct CoveredJob {
  const CovarianceView* view = nullptr;
  const Codec* src_codec = nullptr;  // null: F32 source
  uint64_t src_row = 0;
  const float* imx = nullptr;  // imatrix entry (n_mat * n_per_row) or null
  int64_t stride = 1;
};

// A covered tensor, measured as the writer encodes it: per matrix (expert) the sampled rows are
// encoded with error feedback (or the refined search for types without it) and their
// Hessian-weighted errors summed (unscaled). Matrices no calibration token reached add nothing.
Status measure_covered(const SourceTensor& s, std::span<const uint8_t> data, const CoveredJob& j,
                       const std::vector<const Codec*>& codecs, const SensitivityOptions& opts,
                       ThreadPool& pool, HessianFactorCache& cache, TensorSensitivity& ts) {
  const int64_t n = static_cast<int64_t>(s.dims[0]);
  const int64_t rows_per_mat = s.dims.size() > 1 ? static_cast<int64_t>(s.dims[1]) : 1;
  std::vector<float> W, Y;
  std::vector<uint8_t> q;
  for (uint32_t m = 0; m < j.view->n_mat; ++m) {
    std::vector<int64_t> rows;
    for (int64_t r = ((m * rows_per_mat + j.stride - 1) / j.stride) * j.stride;
         r < (m + 1) * rows_per_mat; r += j.stride)
      rows.push_back(r);
    const int64_t nr = static_cast<int64_t>(rows.size());
    if (nr == 0 || j.view->counts[m] <= 0) continue;
    W.resize(static_cast<size_t>(nr * n));
    Y.resize(W.size());
    for (int64_t i = 0; i < nr; ++i) {
      const uint8_t* sp = data.data() + static_cast<uint64_t>(rows[i]) * j.src_row;
      float* x = W.data() + i * n;
      if (j.src_codec)
        j.src_codec->dequantize(sp, x, n);
      else
        std::memcpy(x, sp, static_cast<size_t>(n) * sizeof(float));
      if (!std::isfinite(weighted_sq(x, nullptr, n)))
        return make_error("NaN or Inf in the input (row ", rows[i], ")");
    }
    const float* H = j.view->matrix(m);
    const float* imx = j.imx ? j.imx + m * n : nullptr;
    ts.signal += hessian_rows_error(W.data(), nullptr, nr, n, H, pool);
    for (size_t c = 0; c < codecs.size(); ++c) {
      const Type t = ts.costs[c].type;
      q.resize(static_cast<size_t>(nr) * *row_size(t, n));
      if (error_feedback_supports(t)) {
        ErrorFeedbackOptions eo;
        eo.importance =
            opts.gptq_inv_chol_importance ? ScaleImportance::InvChol : ScaleImportance::Diag;
        eo.refined_importance = imx;
        eo.hessian = opts.gptq_search_rounds > 0 ? H : nullptr;
        eo.search_rounds = opts.gptq_search_rounds;
        eo.search_damp = opts.gptq_search_damp;
        eo.column_passes = opts.gptq_column_passes;
        eo.joint_window = joint_window_for(t, opts.gptq_joint_window);
        // The writer's damping for this type (model_quantizer.cpp, quantize_tensor_ef).
        const double damp = t == Type::Q3_K ? opts.gptq_damp_q3_k : opts.gptq_damp;
        QF_TRY(const HessianFactor* f, cache.get(*j.view, m, damp, pool));
        const double raw =
            quantize_error_feedback(t, W.data(), nr, n, *f, eo, q.data(), pool).err_kept;
        codecs[c]->dequantize(q.data(), Y.data(), nr * n);
        ts.costs[c].hessian_error += raw;
        ts.costs[c].error += raw + damping_error(W.data(), Y.data(), nr, n, f->added());
      } else {
        QuantizeOptions qo;
        qo.ggml_compatible = opts.ggml_compatible;
        qo.refine_round_to_nearest = opts.refine_all;
        qo.imatrix = imx;
        codecs[c]->quantize(W.data(), q.data(), nr, n, qo);
        codecs[c]->dequantize(q.data(), Y.data(), nr * n);
        QF_TRY(const HessianFactor* f, cache.get(*j.view, m, opts.gptq_damp, pool));
        const double raw = hessian_rows_error(W.data(), Y.data(), nr, n, H, pool);
        ts.costs[c].hessian_error += raw;
        ts.costs[c].error += raw + damping_error(W.data(), Y.data(), nr, n, f->added());
      }
    }
  }
  return {};
}

// Scales a covered tensor's sums (sampled rows) to the whole tensor and sorts its costs.
void finish_tensor(TensorSensitivity& ts, int64_t n_sampled) {
  const double scale = static_cast<double>(ts.n_rows) / static_cast<double>(n_sampled);
  ts.signal *= scale;
  for (auto& c : ts.costs) {
    c.error *= scale;
    c.hessian_error *= scale;
  }
  std::sort(ts.costs.begin(), ts.costs.end(),
            [](const TypeCost& x, const TypeCost& y) { return x.bytes < y.bytes; });
}

Status check_finite(const TensorSensitivity& ts, const std::string& where) {
  for (const auto& c : ts.costs)
    if (!std::isfinite(c.error))
      return make_error(where, ": tensor '", ts.name, "': quantizing to ", type_name(c.type),
                        " produced NaN or Inf");
  return {};
}

}  // namespace

std::vector<Type> default_candidate_types() {
  return {Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::Q8_0, Type::IQ4_XS};
}

Result<std::vector<Type>> parse_candidate_types(std::string_view list) {
  std::vector<Type> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string_view item = list.substr(pos, comma - pos);
    QF_TRY(Type t, target_type_from_name(item));
    if (!type_info(t).quantized)
      return make_error("type '", item, "' is not a quantized type (a target needs those)");
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    pos = comma + 1;
  }
  if (out.empty()) return make_error("empty type list");
  return out;
}

Type fit_candidate(Type t, uint64_t row) {
  if (row % type_info(t).block_size == 0) return t;
  Type f = Type::F16;
  if (is_block_type(t)) {
    f = t == Type::Q4_K   ? Type::Q5_0
        : t == Type::Q5_K ? Type::Q5_1
        : t == Type::Q6_K ? Type::Q8_0
                          : Type::IQ4_NL;
  }
  if (row % type_info(f).block_size != 0) f = Type::F16;
  return f;
}

std::string tensor_kind(const std::string& name, int* layer) {
  *layer = -1;
  if (name.rfind("blk.", 0) != 0) return name;
  int v = -1;
  const char* b = name.data() + 4;
  const char* e = name.data() + name.size();
  auto r = std::from_chars(b, e, v);
  if (r.ec != std::errc() || r.ptr == b || r.ptr == e || *r.ptr != '.') return name;
  *layer = v;
  return std::string(r.ptr + 1, e);
}

Result<std::vector<TensorSensitivity>> measure_sensitivity(TensorSource& src,
                                                           const Imatrix* imatrix,
                                                           const SensitivityOptions& opts) {
  if (opts.types.empty()) return make_error("no candidate types");
  const std::string where = src.describe();
  const auto& st = src.tensors();
  std::vector<std::string> names;
  for (const auto& t : st) names.push_back(t.name);
  ThreadPool pool(opts.threads);
  std::vector<ThreadAcc> acc(pool.size());
  std::vector<TensorSensitivity> table;
  std::vector<size_t> todo;
  for (size_t i : llama_tensor_order(names))
    if (is_quantizable(st[i].name, st[i].dims)) todo.push_back(i);
  Progress progress("sensitivity", "sensitivity", todo.size());
  HessianFactorCache cache;

  for (size_t k = 0; k < todo.size(); ++k) {
    const SourceTensor& s = st[todo[k]];
    TensorSensitivity ts;
    ts.name = s.name;
    ts.kind = tensor_kind(s.name, &ts.layer);
    ts.dims = s.dims;
    ts.n_elements = 1;
    for (uint64_t d : s.dims) ts.n_elements *= d;
    const int64_t n_per_row = static_cast<int64_t>(s.dims[0]);
    ts.n_rows = static_cast<int64_t>(ts.n_elements) / n_per_row;
    const int64_t rows_per_mat = s.dims.size() > 1 ? static_cast<int64_t>(s.dims[1]) : 1;
    if (type_info(s.type).quantized)
      return make_error(where, ": tensor '", s.name, "' is already quantized (", type_name(s.type),
                        "); a size target needs F32/F16/BF16 input");
    const Codec* sc = s.type == Type::F32 ? nullptr : find_codec(s.type);
    if (s.type != Type::F32 && !sc)
      return make_error(where, ": tensor '", s.name, "': no codec for ", type_name(s.type));

    std::vector<Type> cands;
    for (Type t : opts.types) {
      const Type f = fit_candidate(t, s.dims[0]);
      if (std::find(cands.begin(), cands.end(), f) == cands.end()) cands.push_back(f);
    }
    std::vector<const Codec*> codecs;
    for (Type t : cands) {
      QF_TRY(const Codec* c, codec_for(t));
      codecs.push_back(c);
      QF_TRY(uint64_t b, tensor_size(t, s.dims));
      ts.costs.push_back({t, b, 0.0});
    }
    const float* imx = nullptr;
    if (imatrix) {
      if (const ImatrixEntry* e = imatrix->find(s.name)) {
        const uint64_t n_mat = s.dims.size() > 2 ? s.dims[2] : 1;
        if (e->importance.size() == s.dims[0] * n_mat)
          imx = e->importance.data();
        else if (s.name != "token_embd.weight")
          return make_error(imatrix->source, ": entry '", s.name, "' has ", e->importance.size(),
                            " values, the tensor needs ", s.dims[0] * n_mat);
      }
    }
    ts.weighted = imx != nullptr;

    const int64_t stride =
        opts.sample_rows > 0 ? std::max<int64_t>(1, ts.n_rows / opts.sample_rows) : 1;
    const int64_t n_sampled = (ts.n_rows + stride - 1) / stride;
    ts.rows_sampled = n_sampled;
    QF_TRY(std::span<const uint8_t> data, src.data(todo[k]));
    QF_TRY(uint64_t src_row, row_size(s.type, n_per_row));
    uint64_t max_row = 0;
    for (Type t : cands) max_row = std::max(max_row, *row_size(t, n_per_row));
    for (auto& a : acc) {
      a.x.resize(n_per_row);
      a.y.resize(n_per_row);
      a.q.resize(max_row);
      a.err.assign(cands.size(), 0.0);
      a.signal = 0;
      a.bad_row = -1;
    }
    std::optional<CovarianceView> view;
    if (opts.covariance && !opts.ggml_compatible) view = opts.covariance->find(s.name);
    if (view) {
      const uint64_t n_mat = s.dims.size() > 2 ? s.dims[2] : 1;
      if (view->n != s.dims[0] || view->n_mat != n_mat || s.dims.size() > 3)
        return make_error(opts.covariance->path(), ": covariance '", view->name, "' is ", view->n,
                          " x ", view->n, " x ", view->n_mat, ", tensor '", s.name, "' needs ",
                          s.dims[0], " x ", s.dims[0], " x ", n_mat);
      ts.hessian = true;
      CoveredJob job{&*view, sc, src_row, imx, stride};
      if (Status st = measure_covered(s, data, job, codecs, opts, pool, cache, ts); !st.ok())
        return make_error(where, ": tensor '", s.name, "': ", st.error().message);
      src.release(todo[k]);
      finish_tensor(ts, n_sampled);
      QF_CHECK(check_finite(ts, where));
      table.push_back(std::move(ts));
      progress.update(k + 1, 0, s.name);
      continue;
    }
    QuantizeOptions qo;
    qo.ggml_compatible = opts.ggml_compatible;
    qo.refine_round_to_nearest = opts.refine_all;
    pool.parallel_for(n_sampled, 0, [&](int64_t b, int64_t e, int thread) {
      ThreadAcc& a = acc[thread];
      for (int64_t i = b; i < e; ++i) {
        const int64_t r = i * stride;
        const uint8_t* sp = data.data() + static_cast<uint64_t>(r) * src_row;
        if (sc)
          sc->dequantize(sp, a.x.data(), n_per_row);
        else
          std::memcpy(a.x.data(), sp, static_cast<size_t>(n_per_row) * sizeof(float));
        const float* w = imx ? imx + (r / rows_per_mat) * n_per_row : nullptr;
        const double sig = weighted_sq(a.x.data(), w, n_per_row);
        if (!std::isfinite(sig)) {
          a.bad_row = r;
          continue;
        }
        a.signal += sig;
        QuantizeOptions o = qo;
        o.imatrix = w;
        for (size_t c = 0; c < codecs.size(); ++c) {
          codecs[c]->quantize(a.x.data(), a.q.data(), 1, n_per_row, o);
          codecs[c]->dequantize(a.q.data(), a.y.data(), n_per_row);
          a.err[c] += weighted_sq_diff(a.x.data(), a.y.data(), w, n_per_row);
        }
      }
    });
    src.release(todo[k]);
    const double scale = static_cast<double>(ts.n_rows) / static_cast<double>(n_sampled);
    for (const auto& a : acc) {
      if (a.bad_row >= 0)
        return make_error(where, ": tensor '", s.name, "': NaN or Inf in the input (row ",
                          a.bad_row, ")");
      ts.signal += a.signal * scale;
      for (size_t c = 0; c < cands.size(); ++c) ts.costs[c].error += a.err[c] * scale;
    }
    QF_CHECK(check_finite(ts, where));
    std::sort(ts.costs.begin(), ts.costs.end(),
              [](const TypeCost& x, const TypeCost& y) { return x.bytes < y.bytes; });
    table.push_back(std::move(ts));
    progress.update(k + 1, 0, s.name);
  }
  progress.finish();
  return table;
}

nlohmann::json sensitivity_to_json(const std::vector<TensorSensitivity>& table) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& t : table) {
    nlohmann::json costs = nlohmann::json::array();
    for (const auto& c : t.costs)
      costs.push_back({{"type", std::string(type_name(c.type))},
                       {"bytes", c.bytes},
                       {"error", c.error},
                       {"hessian_error", c.hessian_error}});
    arr.push_back({{"name", t.name},
                   {"kind", t.kind},
                   {"layer", t.layer},
                   {"n_elements", t.n_elements},
                   {"weighted", t.weighted},
                   {"hessian", t.hessian},
                   {"signal", t.signal},
                   {"rows_sampled", t.rows_sampled},
                   {"n_rows", t.n_rows},
                   {"costs", costs}});
  }
  return arr;
}

}  // namespace qforge
