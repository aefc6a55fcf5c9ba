#include "quant/error_feedback.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/log.h"
#include "kernels/codec.h"
#include "kernels/fixed_scale.h"

namespace qforge {
namespace {

// Columns per lazy batch: the errors of a batch are applied to the columns after it as one
// matrix product. A multiple of every block size (32, 256).
constexpr int64_t kBatch = 256;

// sum a[k] * b[k] in double, in 8 independent lanes so that the compiler vectorises it
// (a single accumulator would serialise on the add latency; the lane order is fixed, so the
// result is deterministic).
double dot(const double* a, const double* b, int64_t n) {
  double acc[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(a[k + l], b[k + l], acc[l]);
  for (; k < n; ++k) acc[0] = std::fma(a[k], b[k], acc[0]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Reverse Cholesky: A = V Vᵀ with V upper (row-major), computed from the last column. Returns
// false when a pivot is not positive. O(n³/6), parallel over rows for each column.
bool reverse_cholesky(const std::vector<double>& A, int64_t n, std::vector<double>& V,
                      ThreadPool& pool) {
  V.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = n - 1; j >= 0; --j) {
    const double* vj = V.data() + j * n;
    const double s = A[static_cast<size_t>(j * n + j)] - dot(vj + j + 1, vj + j + 1, n - j - 1);
    if (!(s > 0) || !std::isfinite(s)) return false;
    const double djj = std::sqrt(s);
    V[static_cast<size_t>(j * n + j)] = djj;
    auto rows = [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        double* vi = V.data() + i * n;
        vi[j] = (A[static_cast<size_t>(i * n + j)] - dot(vi + j + 1, vj + j + 1, n - j - 1)) / djj;
      }
    };
    if (j * (n - j) > 65536)
      pool.parallel_for(j, 0, rows);
    else
      rows(0, j, 0);
  }
  return true;
}

}  // namespace

Result<HessianFactor> HessianFactor::build(const float* H, int64_t n, double damp,
                                           ThreadPool& pool) {
  if (n <= 0) return make_error("Hessian factor: empty matrix");
  const size_t nn = static_cast<size_t>(n * n);
  for (size_t i = 0; i < nn; ++i)
    if (!std::isfinite(H[i])) return make_error("Hessian factor: non-finite entry ", i);
  HessianFactor f;
  f.n_ = n;
  std::vector<double> A(H, H + nn);
  double mean = 0;
  int64_t live = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = A[static_cast<size_t>(i * n + i)];
    if (d > 0) {
      mean += d;
      ++live;
    }
  }
  mean = live > 0 ? mean / static_cast<double>(live) : 1.0;
  f.added_.assign(static_cast<size_t>(n), 0.0f);
  f.raw_diag_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    f.raw_diag_[static_cast<size_t>(i)] = std::max(0.0f, H[i * n + i]);
  for (int64_t i = 0; i < n; ++i) {
    if (A[static_cast<size_t>(i * n + i)] > 0) continue;
    ++f.n_dead_;
    for (int64_t k = 0; k < n; ++k) {
      A[static_cast<size_t>(i * n + k)] = 0;
      A[static_cast<size_t>(k * n + i)] = 0;
    }
    A[static_cast<size_t>(i * n + i)] = mean;
    f.added_[static_cast<size_t>(i)] = static_cast<float>(mean);
  }
  double lambda = std::max(damp, 1e-6) * mean;
  std::vector<double> V;
  for (int attempt = 0;; ++attempt) {
    std::vector<double> Ad = A;
    for (int64_t i = 0; i < n; ++i) Ad[static_cast<size_t>(i * n + i)] += lambda;
    if (reverse_cholesky(Ad, n, V, pool)) {
      f.diag_.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) f.diag_[i] = static_cast<float>(Ad[i * n + i]);
      break;
    }
    if (attempt == 6) return make_error("Hessian factor: not positive definite after damping");
    lambda *= 10;
  }
  f.lambda_ = lambda;
  for (auto& a : f.added_) a += static_cast<float>(lambda);
  // Column-normalised factor: Vn[i][k] = V[i][k] / V[k][k] (unit diagonal).
  f.vn_.resize(nn);
  f.vdiag_.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    f.vdiag_[static_cast<size_t>(k)] = static_cast<float>(V[k * n + k]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      f.vn_[static_cast<size_t>(i * n + k)] = static_cast<float>(V[i * n + k] / V[k * n + k]);
  return f;
}

bool error_feedback_supports(Type t) {
  return find_fixed_scale_codec(t) != nullptr && find_codec(t) != nullptr;
}

namespace {

// C[r, c] -= sum_k A[r, k] * B[k, c] for r < nr, c < m, k < kk (row-major with leading
// dimensions). 4 x 32 register tiles; the inner loops have fixed trip counts so that the
// compiler keeps the tile in vector registers.
void gemm_sub(int64_t nr, int64_t m, int64_t kk, const float* A, int64_t lda, const float* B,
              int64_t ldb, float* C, int64_t ldc) {
  constexpr int kR = 4, kC = 32;
  for (int64_t c0 = 0; c0 < m; c0 += kC) {
    const int64_t cw = std::min<int64_t>(kC, m - c0);
    for (int64_t r0 = 0; r0 < nr; r0 += kR) {
      const int64_t rw = std::min<int64_t>(kR, nr - r0);
      if (cw == kC && rw == kR) {
        float acc[kR][kC] = {};
        for (int64_t k = 0; k < kk; ++k) {
          const float* b = B + k * ldb + c0;
          for (int r = 0; r < kR; ++r) {
            const float a = A[(r0 + r) * lda + k];
            for (int c = 0; c < kC; ++c) acc[r][c] = std::fma(a, b[c], acc[r][c]);
          }
        }
        for (int r = 0; r < kR; ++r)
          for (int c = 0; c < kC; ++c) C[(r0 + r) * ldc + c0 + c] -= acc[r][c];
      } else {
        for (int64_t r = 0; r < rw; ++r)
          for (int64_t k = 0; k < kk; ++k) {
            const float a = A[(r0 + r) * lda + k];
            const float* b = B + k * ldb + c0;
            float* c = C + (r0 + r) * ldc + c0;
            for (int64_t x = 0; x < cw; ++x) c[x] = std::fma(-a, b[x], c[x]);
          }
      }
    }
  }
}

// Per-row tr((w-q)H(w-q)ᵀ) from the damped factor: ||(w-q) V||² minus what damping and dead
// columns added, sum_i added_i (w_i-q_i)². D is overwritten.
void rows_weighted_error(const HessianFactor& f, float* D, int64_t nr, double* out,
                         std::vector<float>& tmp) {
  const int64_t n = f.n();
  tmp.assign(static_cast<size_t>(nr * n), 0.0f);
  // tmp = -(D V): gemm_sub subtracts; only rows k <= c of V are non-zero in column c.
  for (int64_t c0 = 0; c0 < n; c0 += 256) {
    const int64_t cw = std::min<int64_t>(256, n - c0);
    gemm_sub(nr, cw, c0 + cw, D, n, f.vn() + c0, n, tmp.data() + c0, n);
  }
  const float* add = f.added().data();
  const float* vd = f.vdiag().data();
  for (int64_t r = 0; r < nr; ++r) {
    double e = 0, corr = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double t = static_cast<double>(tmp[static_cast<size_t>(r * n + c)]) * vd[c];
      const double d = D[r * n + c];
      e += t * t;
      corr += add[c] * d * d;
    }
    out[r] = e - corr;
  }
}

struct ChunkScratch {
  std::vector<float> w, err, step, offset, dec, dref, tmp;
  std::vector<uint8_t> ref_bytes, block_tmp;
  std::vector<double> e_fb, e_ref;
};

}  // namespace

ErrorFeedbackStats quantize_error_feedback(Type t, const float* W, int64_t rows, int64_t cols,
                                           const HessianFactor& f, const ErrorFeedbackOptions& opt,
                                           uint8_t* dst, ThreadPool& pool) {
  const FixedScaleCodec& fc = *find_fixed_scale_codec(t);
  const Codec& codec = *find_codec(t);
  const int64_t S = fc.block;
  const size_t row_bytes = static_cast<size_t>(cols / S) * fc.block_bytes;
  const float* Vn = f.vn();
  const float* vd = f.vdiag().data();

  std::vector<float> imp_buf(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    imp_buf[static_cast<size_t>(c)] =
        opt.importance == ScaleImportance::InvChol ? vd[c] * vd[c] : f.diag()[c];
  }
  const float* imp = imp_buf.data();

  const int64_t R = std::max<int64_t>(1, opt.rows_per_task);
  const int64_t n_tasks = (rows + R - 1) / R;
  std::vector<ErrorFeedbackStats> per_task(static_cast<size_t>(n_tasks));
  pool.parallel_for(n_tasks, 1, [&](int64_t tb, int64_t te, int) {
    ChunkScratch s;
    for (int64_t task = tb; task < te; ++task) {
      const int64_t r0 = task * R, nr = std::min(R, rows - r0);
      s.w.assign(W + r0 * cols, W + (r0 + nr) * cols);
      s.err.assign(static_cast<size_t>(nr * kBatch), 0.0f);
      s.step.resize(static_cast<size_t>(S));
      s.offset.resize(static_cast<size_t>(S));
      s.block_tmp.resize(fc.block_bytes);
      uint8_t* out = dst + static_cast<size_t>(r0) * row_bytes;
      ErrorFeedbackStats& st = per_task[static_cast<size_t>(task)];
      s.e_fb.assign(static_cast<size_t>(nr), 0.0);
      QuantizeOptions qo;
      for (int64_t c0 = 0; c0 < cols; c0 += kBatch) {
        const int64_t c1 = std::min(cols, c0 + kBatch);
        for (int64_t r = 0; r < nr; ++r) {
          float* w = s.w.data() + r * cols;  // the targets (error-updated weights)
          const float* w0 = W + (r0 + r) * cols;
          float* e = s.err.data() + r * kBatch;
          for (int64_t b0 = c0; b0 < c1; b0 += S) {
            uint8_t* blk = out + static_cast<size_t>(r) * row_bytes +
                           static_cast<size_t>(b0 / S) * fc.block_bytes;
            qo.imatrix = imp + b0;
            codec.quantize(w + b0, blk, 1, S, qo);  // scales from the updated weights
            block_grid(fc, blk, s.step.data(), s.offset.data(), s.block_tmp.data());
            for (int64_t j = b0; j < b0 + S; ++j) {
              float y;
              const int code = round_to_grid(fc, s.step[static_cast<size_t>(j - b0)],
                                             s.offset[static_cast<size_t>(j - b0)], w[j], &y);
              fc.set_code(blk, static_cast<int>(j - b0), code);
              // LDLQ form of GPTQ's update: target_k = w0_k + Σ_{i<k} Δ_i Vn[i][k] with
              // Δ = w0 - q, and the damped error is Σ_k (V_kk (target_k - q_k))².
              const float delta = w0[j] - y;
              const double ej = static_cast<double>(vd[j]) * (w[j] - y);
              s.e_fb[static_cast<size_t>(r)] += ej * ej;
              e[j - c0] = -delta;
              const float* vj = Vn + j * cols;
              for (int64_t k = j + 1; k < c1; ++k) w[k] = std::fma(delta, vj[k], w[k]);
            }
          }
        }
        if (c1 < cols)  // w[:, c1:] += Δ[:, c0:c1] Vn[c0:c1, c1:]
          gemm_sub(nr, cols - c1, c1 - c0, s.err.data(), kBatch, Vn + c0 * cols + c1, cols,
                   s.w.data() + c1, cols);
      }
      // Σ e² is the damped weighted error; remove what damping and dead columns added.
      s.dec.resize(static_cast<size_t>(nr * cols));
      codec.dequantize(out, s.dec.data(), nr * cols);
      const float* add = f.added().data();
      for (int64_t r = 0; r < nr; ++r) {
        double corr = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const double d = static_cast<double>(W[(r0 + r) * cols + c]) - s.dec[r * cols + c];
          corr += add[c] * d * d;
        }
        s.e_fb[static_cast<size_t>(r)] -= corr;
        st.err_feedback += s.e_fb[static_cast<size_t>(r)];
      }
      if (!opt.keep_better_rows) {
        st.err_kept = st.err_feedback;
        continue;
      }
      // The refined search on the original rows, kept where it is better.
      s.ref_bytes.resize(static_cast<size_t>(nr) * row_bytes);
      qo.imatrix = opt.refined_importance ? opt.refined_importance : f.raw_diag().data();
      codec.quantize(W + r0 * cols, s.ref_bytes.data(), nr, cols, qo);
      s.dref.resize(static_cast<size_t>(nr * cols));
      codec.dequantize(s.ref_bytes.data(), s.dref.data(), nr * cols);
      for (int64_t i = 0; i < nr * cols; ++i) s.dref[i] = W[r0 * cols + i] - s.dref[i];
      s.e_ref.resize(static_cast<size_t>(nr));
      rows_weighted_error(f, s.dref.data(), nr, s.e_ref.data(), s.tmp);
      for (int64_t r = 0; r < nr; ++r) {
        const double ef = s.e_fb[static_cast<size_t>(r)], er = s.e_ref[static_cast<size_t>(r)];
        st.err_refined += er;
        if (er < ef) {
          std::memcpy(out + static_cast<size_t>(r) * row_bytes,
                      s.ref_bytes.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
          ++st.rows_refined;
          st.err_kept += er;
        } else {
          st.err_kept += ef;
        }
      }
    }
  });
  ErrorFeedbackStats total;
  for (const auto& p : per_task) {
    total.err_feedback += p.err_feedback;
    total.err_refined += p.err_refined;
    total.err_kept += p.err_kept;
    total.rows_refined += p.rows_refined;
  }
  return total;
}

double hessian_weighted_error(const float* W, const float* Q, int64_t rows, int64_t cols,
                              const float* H) {
  double total = 0;
  std::vector<double> d(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      d[static_cast<size_t>(c)] = static_cast<double>(W[r * cols + c]) - Q[r * cols + c];
    for (int64_t i = 0; i < cols; ++i) {
      double s = 0;
      const float* h = H + i * cols;
      for (int64_t k = 0; k < cols; ++k) s += h[k] * d[static_cast<size_t>(k)];
      total += d[static_cast<size_t>(i)] * s;
    }
  }
  return total;
}

}  // namespace qforge
