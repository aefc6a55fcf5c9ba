#include "quant/model_quantizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/checked.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "kernels/codec.h"
#include "quant/error_feedback.h"

namespace qforge {
namespace {

// f32 values converted per chunk of rows: bounds the output buffer (<= 16 MiB even for F32
// output) independently of the tensor size.
constexpr int64_t kChunkElems = int64_t{4} << 20;
// Values per parallel task: big enough to amortise scheduling, small enough for the L2 cache.
constexpr int64_t kTaskElems = int64_t{64} << 10;

constexpr std::string_view kDroppedKeys[] = {"general.quantization_version",
                                             "general.file_type",
                                             "split.no",
                                             "split.count",
                                             "split.tensors.count",
                                             "quantize.imatrix.file",
                                             "quantize.imatrix.dataset",
                                             "quantize.imatrix.entries_count",
                                             "quantize.imatrix.chunks_count"};

uint64_t n_elements_of(const std::vector<uint64_t>& dims) {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

// Index of the first non-finite value of a float-typed buffer, or -1.
int64_t first_non_finite(Type t, std::span<const uint8_t> data) {
  if (t == Type::F32) {
    const size_t n = data.size() / 4;
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, data.data() + 4 * i, 4);
      if ((u & 0x7f800000u) == 0x7f800000u) return static_cast<int64_t>(i);
    }
  } else if (t == Type::F16 || t == Type::BF16) {
    const uint16_t mask = t == Type::F16 ? 0x7c00 : 0x7f80;
    const size_t n = data.size() / 2;
    for (size_t i = 0; i < n; ++i) {
      uint16_t u;
      std::memcpy(&u, data.data() + 2 * i, 2);
      if ((u & mask) == mask) return static_cast<int64_t>(i);
    }
  }
  return -1;
}

// Per-thread work space and statistics of the tensor being quantized.
struct Scratch {
  std::vector<float> x, y;  // input rows as f32, decoded output rows
  double err = 0, ref = 0;  // sum (y-x)^2, sum x^2
  int64_t bad_input_row = -1, bad_output_row = -1;
  void reset() {
    err = ref = 0;
    bad_input_row = bad_output_row = -1;
  }
};

// Sum of x^2 and of (y-x)^2 in double, in independent lanes so that the compiler vectorises
// them (a single accumulator would serialise on the add latency).
double sum_sq(const float* x, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += static_cast<double>(x[i + l]) * x[i + l];
  for (; i < n; ++i) acc[0] += static_cast<double>(x[i]) * x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
double sum_sq_diff(const float* x, const float* y, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(y[i + l]) - x[i + l];
      acc[l] += d * d;
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - x[i];
    acc[0] += d * d;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
int64_t first_non_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

void note_row(int64_t& slot, int64_t row) {
  if (slot < 0 || row < slot) slot = row;
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

// Whether error feedback encodes tensor `s` (to `dst`): the method allows it, the type has
// fixed-scale helpers and a covariance of the right shape covers it (a wrong shape is an error:
// the covariance file belongs to another model).
Result<bool> plan_error_feedback(const SourceTensor& s, Type dst, const ModelQuantizeOptions& o) {
  if (!o.covariance || o.method == QuantMethod::Refined || o.method == QuantMethod::Ggml ||
      o.ggml_compatible || !error_feedback_supports(dst))
    return false;
  const auto view = o.covariance->find(s.name);
  if (!view) return false;
  const uint64_t n_mat = s.dims.size() > 2 ? s.dims[2] : 1;
  if (view->n != s.dims[0] || view->n_mat != n_mat || s.dims.size() > 3)
    return make_error(o.covariance->path(), ": covariance '", view->name, "' is ", view->n, " x ",
                      view->n, " x ", view->n_mat, ", tensor '", s.name, "' needs ", s.dims[0],
                      " x ", s.dims[0], " x ", n_mat);
  return true;
}

// Streams one tensor through error feedback, chunk of rows by chunk of rows (each chunk in
// parallel inside quantize_error_feedback). Experts use their own covariance matrix; an expert
// that no calibration token reached is quantized by the refined search without weights.
Status quantize_tensor_ef(const PlannedTensor& t, std::span<const uint8_t> data,
                          const ModelQuantizeOptions& opts, ThreadPool& pool,
                          HessianFactorCache& cache, GgufWriter& w, const std::string& where,
                          TensorReport& tr) {
  const CovarianceView view = *opts.covariance->find(t.name);
  const int64_t n_per_row = static_cast<int64_t>(t.dims[0]);
  const int64_t rows_per_mat = t.dims.size() > 1 ? static_cast<int64_t>(t.dims[1]) : 1;
  const uint64_t src_row = *row_size(t.src_type, n_per_row);
  const uint64_t dst_row = *row_size(t.dst_type, n_per_row);
  const Codec* dc = find_codec(t.dst_type);
  const Codec* sc = t.src_type == Type::F32 ? nullptr : find_codec(t.src_type);
  const float* imx = t.uses_imatrix ? opts.imatrix->find(t.name)->importance.data() : nullptr;
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / n_per_row);
  std::vector<float> x, y;
  std::vector<uint8_t> out;
  double err = 0, ref = 0;
  for (uint32_t m = 0; m < view.n_mat; ++m) {
    const HessianFactor* f = nullptr;
    if (view.counts[m] > 0) {
      const double damp = t.dst_type == Type::Q3_K ? opts.gptq_damp_q3_k : opts.gptq_damp;
      QF_TRY(f, cache.get(view, m, damp, pool));
    }
    for (int64_t r0 = m * rows_per_mat; r0 < (m + 1) * rows_per_mat; r0 += chunk_rows) {
      const int64_t nr = std::min(chunk_rows, (m + 1) * rows_per_mat - r0), n = nr * n_per_row;
      x.resize(static_cast<size_t>(n));
      y.resize(static_cast<size_t>(n));
      out.resize(static_cast<size_t>(nr * dst_row));
      const uint8_t* sp = data.data() + static_cast<uint64_t>(r0) * src_row;
      if (sc)
        sc->dequantize(sp, x.data(), n);
      else
        std::memcpy(x.data(), sp, static_cast<size_t>(n) * sizeof(float));
      const double r_sq = sum_sq(x.data(), n);
      if (!std::isfinite(r_sq))
        return make_error(where, ": tensor '", t.name, "': NaN or Inf in the input (row ",
                          r0 + first_non_finite(x.data(), n) / n_per_row, ")");
      if (f) {
        ErrorFeedbackOptions eo;
        eo.importance =
            opts.gptq_inv_chol_importance ? ScaleImportance::InvChol : ScaleImportance::Diag;
        eo.refined_importance = imx ? imx + m * n_per_row : nullptr;
        eo.hessian = opts.gptq_search_rounds > 0 ? view.matrix(m) : nullptr;
        eo.search_rounds = opts.gptq_search_rounds;
        eo.search_damp = opts.gptq_search_damp;
        eo.column_passes = opts.gptq_column_passes;
        eo.joint_window = joint_window_for(t.dst_type, opts.gptq_joint_window);
        const ErrorFeedbackStats st =
            quantize_error_feedback(t.dst_type, x.data(), nr, n_per_row, *f, eo, out.data(), pool);
        tr.hessian_error += st.err_kept;
        tr.hessian_error_refined += st.err_refined;
        tr.rows_refined += st.rows_refined;
      } else {
        dc->quantize(x.data(), out.data(), nr, n_per_row, QuantizeOptions{});
      }
      dc->dequantize(out.data(), y.data(), n);
      const double e = sum_sq_diff(x.data(), y.data(), n);
      if (!std::isfinite(e))
        return make_error(where, ": tensor '", t.name, "': quantizing to ", type_name(t.dst_type),
                          " produced NaN or Inf (row ",
                          r0 + first_non_finite(y.data(), n) / n_per_row, ")");
      err += e;
      ref += r_sq;
      QF_CHECK(w.append_tensor_data(out));
    }
  }
  QF_CHECK(w.finish_tensor());
  tr.rel_rmse = ref > 0 ? std::sqrt(err / ref) : (err > 0 ? INFINITY : 0.0);
  return {};
}

}  // namespace

std::string_view tensor_method(const PlannedTensor& t, const ModelQuantizeOptions& o) {
  if (!t.convert) return "copy";
  if (t.error_feedback) return "gptq";
  return o.ggml_compatible || o.method == QuantMethod::Ggml ? "ggml" : "refined";
}

std::string_view quant_method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::Auto:
      return "auto";
    case QuantMethod::Refined:
      return "refined";
    case QuantMethod::ErrorFeedback:
      return "gptq";
    case QuantMethod::Ggml:
      return "ggml";
  }
  return "auto";
}

Result<QuantizePlan> plan_quantization(const TensorSource& src, const ModelQuantizeOptions& opts) {
  QuantizePlan plan;
  QF_TRY(plan.mix, mix_for(opts.mix));
  if (opts.method == QuantMethod::ErrorFeedback && !opts.covariance)
    return make_error(
        "error feedback (--method gptq) needs covariances (FILE.cov beside the "
        "imatrix, written by qforge imatrix)");
  RecipeOptions ro = opts.recipe;
  ro.has_imatrix = opts.imatrix != nullptr;
  QF_TRY(Recipe recipe, Recipe::create(*plan.mix, ro));
  const std::string where = src.describe();

  const auto& st = src.tensors();
  std::vector<std::string> names;
  names.reserve(st.size());
  for (const auto& t : st) names.push_back(t.name);
  const std::vector<size_t> order = llama_tensor_order(names);
  std::vector<RecipeTensor> rts;
  rts.reserve(st.size());
  for (size_t i : order) rts.push_back({st[i].name, st[i].dims, st[i].type});
  QF_TRY(std::vector<TensorChoice> choices, recipe.plan(rts, src.kvs()));

  for (size_t k = 0; k < order.size(); ++k) {
    const SourceTensor& s = st[order[k]];
    const TensorChoice& c = choices[k];
    PlannedTensor p;
    p.name = s.name;
    p.dims = s.dims;
    p.source_index = order[k];
    p.src_type = s.type;
    p.fallback = c.fallback;
    p.overridden = c.overridden;
    if (s.dims.empty() || s.dims.size() > 4)
      return make_error(where, ": tensor '", s.name, "': bad number of dimensions ", s.dims.size());
    auto sbytes = tensor_size(s.type, s.dims);
    if (!sbytes) return make_error(where, ": tensor '", s.name, "': ", sbytes.error().message);
    if (*sbytes != s.size)
      return make_error(where, ": tensor '", s.name, "': holds ", s.size,
                        " bytes, its shape needs ", *sbytes);
    p.src_bytes = s.size;
    p.dst_type = c.quantize ? c.type : s.type;
    if (auto it = opts.tensor_type_map.find(s.name);
        c.quantize && it != opts.tensor_type_map.end()) {
      p.dst_type = it->second;
      p.overridden = true;
      p.fallback = false;
    }
    p.convert = p.dst_type != p.src_type;
    if (p.convert) {
      if (type_info(s.type).quantized && !opts.allow_requantize)
        return make_error(where, ": tensor '", s.name, "' is already quantized (",
                          type_name(s.type),
                          "); quantizing it again loses more quality (use --allow-requantize)");
      if (s.type != Type::F32) {
        auto sc = codec_for(s.type);
        if (!sc)
          return make_error(where, ": tensor '", s.name, "': cannot decode: ", sc.error().message);
      }
      auto dc = codec_for(p.dst_type);
      if (!dc) return make_error(where, ": tensor '", s.name, "': ", dc.error().message);
      if (opts.imatrix) {
        if (const ImatrixEntry* e = opts.imatrix->find(s.name)) {
          const uint64_t n_mat = s.dims.size() > 2 ? s.dims[2] : 1;
          if (e->importance.size() == s.dims[0] * n_mat) {
            p.uses_imatrix = true;
          } else if (s.name != "token_embd.weight") {
            return make_error(opts.imatrix->source, ": entry '", s.name, "' has ",
                              e->importance.size(), " values, the tensor needs ",
                              s.dims[0] * n_mat);
          }
        }
      }
      QF_TRY(p.error_feedback, plan_error_feedback(s, p.dst_type, opts));
    }
    auto dbytes = tensor_size(p.dst_type, s.dims);
    if (!dbytes) return make_error(where, ": tensor '", s.name, "': ", dbytes.error().message);
    p.dst_bytes = *dbytes;
    plan.input_tensor_bytes += p.src_bytes;
    plan.output_tensor_bytes += p.dst_bytes;
    plan.max_tensor_f32_bytes = std::max(plan.max_tensor_f32_bytes, n_elements_of(s.dims) * 4);
    plan.tensors.push_back(std::move(p));
  }

  for (const auto& kv : src.kvs()) {
    if (std::find(std::begin(kDroppedKeys), std::end(kDroppedKeys), kv.first) !=
        std::end(kDroppedKeys))
      continue;
    plan.kvs.push_back(kv);
  }
  plan.kvs.emplace_back("general.quantization_version", GgufValue::u32(2));
  plan.kvs.emplace_back("general.file_type", GgufValue::u32(plan.mix->file_type));
  if (opts.imatrix) {
    const Imatrix& m = *opts.imatrix;
    plan.kvs.emplace_back("quantize.imatrix.file", GgufValue::string(m.source));
    if (!m.datasets.empty())
      plan.kvs.emplace_back("quantize.imatrix.dataset", GgufValue::string(m.datasets.front()));
    plan.kvs.emplace_back("quantize.imatrix.entries_count",
                          GgufValue::i32(static_cast<int32_t>(m.entries.size())));
    if (m.chunk_count > 0)
      plan.kvs.emplace_back("quantize.imatrix.chunks_count",
                            GgufValue::i32(static_cast<int32_t>(m.chunk_count)));
  }

  for (const auto& [k, v] : plan.kvs)
    if (k == "general.alignment") {
      auto a = v.as_uint();
      if (a && is_pow2(*a) && *a <= UINT32_MAX) plan.alignment = static_cast<uint32_t>(*a);
    }
  std::vector<GgufTensorInfo> infos;
  for (const auto& t : plan.tensors) {
    GgufTensorInfo gi;
    gi.name = t.name;
    gi.dims = t.dims;
    gi.type = t.dst_type;
    infos.push_back(std::move(gi));
  }
  uint64_t size = gguf_serialize_header(3, plan.kvs, infos).size();
  if (!plan.tensors.empty()) {
    size = *checked_align_up(size, plan.alignment);
    for (const auto& t : plan.tensors) size += *checked_align_up(t.dst_bytes, plan.alignment);
  }
  plan.output_file_bytes = size;
  return plan;
}

Result<QuantizeReport> quantize_model(TensorSource& src, const std::string& out_path,
                                      const ModelQuantizeOptions& opts) {
  QF_TRY(QuantizePlan plan, plan_quantization(src, opts));
  const std::string where = src.describe();
  ThreadPool pool(opts.threads);
  QuantizeReport rep;
  rep.input = where;
  rep.output_path = out_path;
  rep.input_sha256 = opts.input_sha256;
  rep.threads = pool.size();

  GgufWriterOptions wo;
  wo.overwrite = opts.overwrite;
  wo.write_sidecar = opts.write_sidecar;
  QF_TRY(GgufWriter w, GgufWriter::create(out_path, wo));
  for (const auto& [k, v] : plan.kvs) w.set_kv(k, v);
  for (const auto& t : plan.tensors) QF_CHECK(w.add_tensor(t.name, t.dims, t.dst_type));
  if (w.planned_size() != plan.output_file_bytes)
    return make_error(out_path, ": internal error: planned ", plan.output_file_bytes,
                      " bytes, writer expects ", w.planned_size());
  LogFields start = {{"input", where},
                     {"output", out_path},
                     {"mix", std::string(plan.mix->name)},
                     {"tensors", plan.tensors.size()},
                     {"threads", pool.size()},
                     {"output_bytes", plan.output_file_bytes}};
  if (!opts.input_sha256.empty()) start.emplace_back("input_sha256", opts.input_sha256);
  if (opts.imatrix) start.emplace_back("imatrix", opts.imatrix->source);
  log_info("quantize.starting", "quantizing " + where + " to " + std::string(plan.mix->name),
           start);

  QF_CHECK(w.write_header());

  if (opts.imatrix) {
    // llama-imatrix collects the blk.* matrices only; anything else without an entry is normal.
    std::vector<std::string> missing;
    for (const auto& t : plan.tensors)
      if (t.convert && !t.uses_imatrix && t.name.rfind("blk.", 0) == 0) missing.push_back(t.name);
    if (!missing.empty())
      log_warn("quantize.imatrix_missing",
               cat(opts.imatrix->source, " has no entry for ", missing.size(),
                   " quantized tensors; they are quantized without importance weights"),
               {{"first", missing.front()}, {"count", missing.size()}});
  }

  if (opts.covariance) {
    // One warning naming every matmul that error feedback cannot cover (token_embd is a
    // lookup table, not a matmul).
    std::string names;
    size_t n_missing = 0;
    for (const auto& t : plan.tensors)
      if (t.convert && !t.error_feedback && t.name != "token_embd.weight" &&
          error_feedback_supports(t.dst_type) && opts.method != QuantMethod::Refined &&
          opts.method != QuantMethod::Ggml && !opts.ggml_compatible) {
        names += (n_missing++ ? ", " : "") + t.name;
      }
    if (n_missing)
      log_warn("quantize.covariance_missing",
               cat(opts.covariance->path(), " has no covariance for ", n_missing,
                   " quantized tensors; they use the refined search: ", names),
               {{"count", n_missing}, {"tensors", names}});
  }
  HessianFactorCache factors;

  const auto t_start = std::chrono::steady_clock::now();
  std::vector<Scratch> scratch(pool.size());
  std::vector<uint8_t> out_buf;
  Progress progress("quantize", "quantize", plan.tensors.size());
  uint64_t bytes_in = 0;
  const LogLevel tensor_level = log_format() == LogFormat::Json ? LogLevel::Info : LogLevel::Debug;

  for (size_t ti = 0; ti < plan.tensors.size(); ++ti) {
    const PlannedTensor& t = plan.tensors[ti];
    const auto t0 = std::chrono::steady_clock::now();
    QF_TRY(std::span<const uint8_t> data, src.data(t.source_index));
    if (data.size() != t.src_bytes)
      return make_error(where, ": tensor '", t.name, "': source gave ", data.size(),
                        " bytes, expected ", t.src_bytes);
    TensorReport tr;
    tr.name = t.name;
    tr.src_type = t.src_type;
    tr.dst_type = t.dst_type;
    tr.src_bytes = t.src_bytes;
    tr.dst_bytes = t.dst_bytes;
    tr.method = std::string(tensor_method(t, opts));

    if (!t.convert) {
      const int64_t bad = first_non_finite(t.src_type, data);
      if (bad >= 0)
        return make_error(where, ": tensor '", t.name, "': NaN or Inf in the input (element ", bad,
                          ")");
      QF_CHECK(w.write_tensor_data(data));
    } else if (t.error_feedback) {
      QF_CHECK(quantize_tensor_ef(t, data, opts, pool, factors, w, where, tr));
    } else {
      const int64_t n_per_row = static_cast<int64_t>(t.dims[0]);
      const int64_t n_rows = static_cast<int64_t>(n_elements_of(t.dims)) / n_per_row;
      const int64_t rows_per_mat = t.dims.size() > 1 ? static_cast<int64_t>(t.dims[1]) : 1;
      const uint64_t src_row = *row_size(t.src_type, n_per_row);
      const uint64_t dst_row = *row_size(t.dst_type, n_per_row);
      const Codec* dc = find_codec(t.dst_type);
      const Codec* sc = t.src_type == Type::F32 ? nullptr : find_codec(t.src_type);
      const float* imx = nullptr;
      if (t.uses_imatrix) imx = opts.imatrix->find(t.name)->importance.data();
      QuantizeOptions qo;
      qo.ggml_compatible = opts.ggml_compatible;
      qo.refine_round_to_nearest = opts.refine_all;

      const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / n_per_row);
      const int64_t task_rows = std::max<int64_t>(1, kTaskElems / n_per_row);
      for (auto& s : scratch) {
        s.reset();
        const size_t need = static_cast<size_t>(task_rows * n_per_row);
        if (s.x.size() < need) s.x.resize(need);
        if (s.y.size() < need) s.y.resize(need);
      }
      for (int64_t r0 = 0; r0 < n_rows; r0 += chunk_rows) {
        const int64_t r1 = std::min(n_rows, r0 + chunk_rows);
        out_buf.resize(static_cast<size_t>((r1 - r0) * dst_row));
        pool.parallel_for(r1 - r0, task_rows, [&](int64_t b, int64_t e, int thread) {
          Scratch& s = scratch[thread];
          for (int64_t r = r0 + b; r < r0 + e;) {
            // A run of rows inside one matrix (experts have their own imatrix slice) that fits
            // the scratch buffers (the pool may hand out more than `task_rows` rows at once).
            const int64_t mat = r / rows_per_mat;
            const int64_t nr = std::min({r0 + e, (mat + 1) * rows_per_mat, r + task_rows}) - r;
            const int64_t n = nr * n_per_row;
            const uint8_t* sp = data.data() + static_cast<uint64_t>(r) * src_row;
            const float* x = s.x.data();
            if (sc)
              sc->dequantize(sp, s.x.data(), n);
            else if (reinterpret_cast<uintptr_t>(sp) % alignof(float) == 0)
              x = reinterpret_cast<const float*>(sp);  // F32 rows are used in place
            else
              std::memcpy(s.x.data(), sp, static_cast<size_t>(n) * sizeof(float));
            // Squares of finite floats cannot overflow a double: a non-finite sum means a
            // NaN or Inf among the values (located only then).
            const double ref = sum_sq(x, n);
            if (!std::isfinite(ref)) {
              note_row(s.bad_input_row, r + first_non_finite(x, n) / n_per_row);
              r += nr;
              continue;
            }
            uint8_t* dp = out_buf.data() + static_cast<uint64_t>(r - r0) * dst_row;
            QuantizeOptions o = qo;
            o.imatrix = imx ? imx + mat * n_per_row : nullptr;
            dc->quantize(x, dp, nr, n_per_row, o);
            dc->dequantize(dp, s.y.data(), n);
            const double err = sum_sq_diff(x, s.y.data(), n);
            if (!std::isfinite(err))
              note_row(s.bad_output_row, r + first_non_finite(s.y.data(), n) / n_per_row);
            s.err += err;
            s.ref += ref;
            r += nr;
          }
        });
        int64_t bad_in = -1, bad_out = -1;
        for (const auto& s : scratch) {
          if (s.bad_input_row >= 0) note_row(bad_in, s.bad_input_row);
          if (s.bad_output_row >= 0) note_row(bad_out, s.bad_output_row);
        }
        if (bad_in >= 0)
          return make_error(where, ": tensor '", t.name, "': NaN or Inf in the input (row ", bad_in,
                            ")");
        if (bad_out >= 0)
          return make_error(where, ": tensor '", t.name, "': quantizing to ", type_name(t.dst_type),
                            " produced NaN or Inf (row ", bad_out,
                            "; values too large for the format)");
        QF_CHECK(w.append_tensor_data(out_buf));
      }
      QF_CHECK(w.finish_tensor());
      double err = 0, ref = 0;
      for (const auto& s : scratch) {
        err += s.err;
        ref += s.ref;
      }
      tr.rel_rmse = ref > 0 ? std::sqrt(err / ref) : (err > 0 ? INFINITY : 0.0);
    }
    src.release(t.source_index);
    tr.seconds = seconds_since(t0);
    bytes_in += t.src_bytes;
    log_event(tensor_level, "quantize.tensor", t.name,
              {{"index", ti + 1},
               {"of", plan.tensors.size()},
               {"dims", dims_text(t.dims)},
               {"from", std::string(type_name(t.src_type))},
               {"to", std::string(type_name(t.dst_type))},
               {"bytes_in", t.src_bytes},
               {"bytes_out", t.dst_bytes},
               {"rel_rmse", tr.rel_rmse},
               {"method", std::string(tensor_method(t, opts))},
               {"ms", tr.seconds * 1e3}});
    rep.tensors.push_back(std::move(tr));
    progress.update(ti + 1, bytes_in, t.name);
  }
  QF_TRY(rep.output_sha256, w.commit());
  progress.finish();
  rep.seconds = seconds_since(t_start);
  rep.plan = std::move(plan);
  const double mbs = rep.seconds > 0 ? rep.plan.input_tensor_bytes / 1e6 / rep.seconds : 0.0;
  log_info("quantize.done", "wrote " + out_path,
           {{"output", out_path},
            {"bytes", rep.plan.output_file_bytes},
            {"sha256", rep.output_sha256},
            {"seconds", rep.seconds},
            {"input_mb_per_s", mbs}});
  return rep;
}

nlohmann::json plan_to_json(const QuantizePlan& plan) {
  nlohmann::json j;
  j["mix"] = std::string(plan.mix ? plan.mix->name : "");
  j["file_type"] = plan.mix ? plan.mix->file_type : 0;
  j["alignment"] = plan.alignment;
  j["input_tensor_bytes"] = plan.input_tensor_bytes;
  j["output_tensor_bytes"] = plan.output_tensor_bytes;
  j["output_file_bytes"] = plan.output_file_bytes;
  uint64_t n_params = 0;
  nlohmann::json ts = nlohmann::json::array();
  for (const auto& t : plan.tensors) {
    n_params += n_elements_of(t.dims);
    ts.push_back({{"name", t.name},
                  {"dims", t.dims},
                  {"from", std::string(type_name(t.src_type))},
                  {"to", std::string(type_name(t.dst_type))},
                  {"bytes_in", t.src_bytes},
                  {"bytes_out", t.dst_bytes},
                  {"converted", t.convert},
                  {"fallback", t.fallback},
                  {"overridden", t.overridden},
                  {"imatrix", t.uses_imatrix},
                  {"error_feedback", t.error_feedback}});
  }
  j["n_params"] = n_params;
  j["bits_per_weight"] = n_params ? 8.0 * plan.output_tensor_bytes / n_params : 0.0;
  j["tensors"] = ts;
  return j;
}

nlohmann::json report_to_json(const QuantizeReport& r) {
  nlohmann::json j = plan_to_json(r.plan);
  j["input"] = r.input;
  j["output"] = r.output_path;
  if (!r.input_sha256.empty()) j["input_sha256"] = r.input_sha256;
  j["output_sha256"] = r.output_sha256;
  j["threads"] = r.threads;
  j["seconds"] = r.seconds;
  j["input_mb_per_s"] = r.seconds > 0 ? r.plan.input_tensor_bytes / 1e6 / r.seconds : 0.0;
  for (size_t i = 0; i < r.tensors.size() && i < j["tensors"].size(); ++i) {
    j["tensors"][i]["rel_rmse"] = r.tensors[i].rel_rmse;
    j["tensors"][i]["seconds"] = r.tensors[i].seconds;
    j["tensors"][i]["method"] = r.tensors[i].method;
    if (r.plan.tensors[i].error_feedback) {
      j["tensors"][i]["hessian_error"] = r.tensors[i].hessian_error;
      j["tensors"][i]["hessian_error_refined"] = r.tensors[i].hessian_error_refined;
      j["tensors"][i]["rows_refined"] = r.tensors[i].rows_refined;
    }
  }
  return j;
}

}  // namespace qforge
