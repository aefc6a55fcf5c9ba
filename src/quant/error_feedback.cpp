#include "quant/error_feedback.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "core/log.h"
#include "kernels/codec.h"
#include "kernels/fixed_scale.h"
#include "kernels/lanes.h"

namespace qforge {
namespace {

// Columns per lazy batch: the errors of a batch are applied to the columns after it as one
// matrix product. A multiple of every block size (32, 256).
constexpr int64_t kBatch = 256;

// Dot products (double for the Cholesky factor, float for the short block sums of the search)
// are lanes::dot_lanes: vectorised and deterministic for a given length.
using lanes::dot_lanes;

// Reverse Cholesky: A = V Vᵀ with V upper (row-major), computed from the last column:
// V[i][j] = (A[i][j] - sum_{k>j} V[i][k] V[j][k]) / V[j][j] for i <= j. Returns false when a
// pivot is not positive. O(n³/6). Blocked in panels of kPanel columns from the end: for the
// panel [j0, j1), every row i gets the part of its sums over k >= j1 against all the panel's
// rows at once (the panel rows stay in cache and each row is read once per panel; the column-by-
// column form read every row once per column, memory-bound: 12 % of an error-feedback quantize
// of refmodel), then the panel's columns add the terms j < k < j1. Each entry is computed by one
// thread in a fixed order, so the factor does not depend on the thread count.
bool reverse_cholesky(const std::vector<double>& A, int64_t n, std::vector<double>& V,
                      ThreadPool& pool) {
  constexpr int64_t kPanel = 64;
  V.assign(static_cast<size_t>(n * n), 0.0);
  std::vector<double> S;  // S[i * w + (j - j0)] = sum_{k >= j1} V[i][k] V[j][k], i <= j
  for (int64_t j1 = n; j1 > 0; j1 -= kPanel) {
    const int64_t j0 = std::max<int64_t>(0, j1 - kPanel), w = j1 - j0, tail = n - j1;
    S.assign(static_cast<size_t>(j1 * w), 0.0);
    if (tail > 0) {
      auto tails = [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
          const double* vi = V.data() + i * n + j1;
          for (int64_t j = std::max(i, j0); j < j1; ++j)
            S[static_cast<size_t>(i * w + j - j0)] = dot_lanes(vi, V.data() + j * n + j1, tail);
        }
      };
      if (j1 * w * tail > 65536)
        pool.parallel_for(j1, 0, tails);
      else
        tails(0, j1, 0);
    }
    for (int64_t j = j1 - 1; j >= j0; --j) {
      const double* vj = V.data() + j * n;
      const int64_t in_panel = j1 - j - 1;  // k in (j, j1)
      const double s = A[static_cast<size_t>(j * n + j)] - S[static_cast<size_t>(j * w + j - j0)] -
                       dot_lanes(vj + j + 1, vj + j + 1, in_panel);
      if (!(s > 0) || !std::isfinite(s)) return false;
      const double djj = std::sqrt(s);
      V[static_cast<size_t>(j * n + j)] = djj;
      auto rows = [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
          double* vi = V.data() + i * n;
          vi[j] = (A[static_cast<size_t>(i * n + j)] - S[static_cast<size_t>(i * w + j - j0)] -
                   dot_lanes(vi + j + 1, vj + j + 1, in_panel)) /
                  djj;
        }
      };
      if (j * in_panel > 65536)
        pool.parallel_for(j, 0, rows);
      else
        rows(0, j, 0);
    }
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
  // Local search: codes and element grids of the chunk, residual e = w0 - y and g = H_s e.
  std::vector<uint8_t> codes;
  std::vector<float> gstep, goff, e, g, ba, bb, hu, hv, nstep, noff, dy, best_dy;
  std::vector<uint8_t> trial;
  std::vector<uint8_t> prev_bytes;  // repeated column passes: the encoding before the pass
  std::vector<double> prev_e;
  std::vector<float> js;  // joint sub-block moves
  std::vector<uint8_t> jcodes;
};

// The local search of one row (ErrorFeedbackOptions::hessian). H_s = H + diag(extra).
struct RowSearch {
  const FixedScaleCodec& fc;
  const float* H;
  const float* extra;
  int64_t n;
  uint8_t* row;  // the row's encoded blocks
  uint8_t* codes;
  float *step, *off, *e, *g;
  double err = 0;  // e H_s eᵀ, kept up to date
  int64_t changed = 0, refit = 0, subs = 0;

  // e -= dy at element j: g -= dy H_s[j, :] (H symmetric).
  void move(int64_t j, float dy) {
    e[j] -= dy;
    // Locals: stores through g could alias the members, which made the loop reload n.
    const int64_t len = n;
    const float* __restrict h = H + j * len;
    float* __restrict gr = g;
    for (int64_t k = 0; k < len; ++k) gr[k] = std::fma(-dy, h[k], gr[k]);
    g[j] -= dy * extra[j];
  }

  // One pass of coordinate descent over the codes; returns the number of codes changed.
  int64_t code_pass() {
    const int64_t S = fc.block;
    int64_t n_changed = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int c = codes[j];
      const float yc = grid_value(fc, step[j], off[j], c);
      const double hjj = static_cast<double>(H[j * n + j]) + extra[j];
      double best = 0;
      int best_c = -1;
      float best_dy = 0;
      for (int c2 : {c - 1, c + 1}) {
        if (c2 < fc.code_min || c2 > fc.code_max) continue;
        const float dy = grid_value(fc, step[j], off[j], c2) - yc;
        const double dE = dy * (dy * hjj - 2.0 * g[j]);
        if (dE < best) {
          best = dE;
          best_c = c2;
          best_dy = dy;
        }
      }
      if (best_c < 0) continue;
      codes[j] = static_cast<uint8_t>(best_c);
      fc.set_code(row + static_cast<size_t>(j / S) * fc.block_bytes, static_cast<int>(j % S),
                  best_c);
      move(j, best_dy);
      err += best;
      ++n_changed;
    }
    changed += n_changed;
    return n_changed;
  }

  // Decodes (into s.nstep / s.noff) block `blk` with sub-block sb's stored scale (which = 0) or
  // min (which = 1) moved to a neighbouring value: one up, or one down at the top of the range.
  // Returns the sign of the move (+1 / -1).
  float decode_neighbour(ChunkScratch& s, const uint8_t* blk, int sb, int which) {
    int sc, m;
    fc.get_sub(blk, sb, &sc, &m);
    const int v = which == 0 ? sc : m, hi = which == 0 ? fc.sc_max : fc.m_max;
    const int nv = v < hi ? v + 1 : v - 1;
    std::memcpy(s.trial.data(), blk, fc.block_bytes);
    fc.set_sub(s.trial.data(), sb, which == 0 ? nv : sc, which == 0 ? m : nv);
    block_grid(fc, s.trial.data(), s.nstep.data(), s.noff.data(), s.block_tmp.data());
    return nv > v ? 1.0f : -1.0f;
  }

  // Change of the sub-block's decoded values when its stored scale (which = 0) or min
  // (which = 1) goes up by one, codes fixed (the decoders are affine in each). At the top of
  // the range, the change from one below is used (the same by affinity).
  void unit_delta(ChunkScratch& s, const uint8_t* blk, int64_t b0, int sb, int which, float* out) {
    const float sgn = decode_neighbour(s, blk, sb, which);
    const int64_t L = fc.sub_size, j0 = b0 + sb * L;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t j = j0 + i, jb = j - b0;
      const float d = grid_value(fc, s.nstep[static_cast<size_t>(jb)],
                                 s.noff[static_cast<size_t>(jb)], codes[j]) -
                      grid_value(fc, step[j], off[j], codes[j]);
      out[i] = sgn * d;
    }
  }

  // u H_s v over the sub-block starting at j0 (length L).
  double sub_form(const float* u, const float* v, int64_t j0, int64_t L) const {
    double acc = 0;
    for (int64_t i = 0; i < L; ++i)
      if (u[i] != 0)
        acc += u[i] *
               (dot_lanes(H + (j0 + i) * n + j0, v, L) + static_cast<double>(extra[j0 + i]) * v[i]);
    return acc;
  }

  // Coordinate descent over the stored sub-block scales and mins (K-quants, IQ4_XS): each
  // tries its neighbouring integers (types with mins: also both together, since a scale and
  // min fitted jointly often only improve when moved together) with the codes fixed; the cost
  // of a change is exact, with the sub-block's full H_s. Returns the number of changes.
  int64_t subscale_pass(ChunkScratch& s) {
    const int64_t S = fc.block, L = fc.sub_size;
    s.nstep.resize(static_cast<size_t>(S));
    s.noff.resize(static_cast<size_t>(S));
    s.dy.resize(static_cast<size_t>(L));
    s.best_dy.resize(static_cast<size_t>(L));
    s.trial.resize(fc.block_bytes);
    int64_t n_changed = 0;
    for (int64_t b0 = 0; b0 < n; b0 += S) {
      uint8_t* blk = row + static_cast<size_t>(b0 / S) * fc.block_bytes;
      for (int sb = 0; sb < fc.n_sub; ++sb) {
        const int64_t j0 = b0 + sb * L;
        int sc, m;
        fc.get_sub(blk, sb, &sc, &m);
        float* us = s.dy.data();
        float* um = s.best_dy.data();
        unit_delta(s, blk, b0, sb, 0, us);
        double gs = 0, gm = 0, hss = sub_form(us, us, j0, L), hsm = 0, hmm = 0;
        for (int64_t i = 0; i < L; ++i) gs += static_cast<double>(us[i]) * g[j0 + i];
        if (fc.has_min) {
          unit_delta(s, blk, b0, sb, 1, um);
          for (int64_t i = 0; i < L; ++i) gm += static_cast<double>(um[i]) * g[j0 + i];
          hsm = sub_form(us, um, j0, L);
          hmm = sub_form(um, um, j0, L);
        }
        double best = 0;
        int best_a = 0, best_b = 0;
        const int db_max = fc.has_min ? 1 : 0;
        for (int da = -1; da <= 1; ++da)
          for (int db = -db_max; db <= db_max; ++db) {
            if ((da == 0 && db == 0) || sc + da < fc.sc_min || sc + da > fc.sc_max || m + db < 0 ||
                m + db > fc.m_max)
              continue;
            // e -= da us + db um: dE = -2 (da gs + db gm) + (da, db) Q (da, db)ᵀ.
            const double dE =
                -2 * (da * gs + db * gm) + da * da * hss + 2 * da * db * hsm + db * db * hmm;
            if (dE < best) {
              best = dE;
              best_a = da;
              best_b = db;
            }
          }
        if (best_a == 0 && best_b == 0) continue;
        fc.set_sub(blk, sb, sc + best_a, m + best_b);
        // The exact change, from the decoder's grid after the move.
        for (int64_t i = 0; i < L; ++i)
          s.nstep[static_cast<size_t>(i)] =
              grid_value(fc, step[j0 + i], off[j0 + i], codes[j0 + i]);
        block_grid(fc, blk, step + b0, off + b0, s.block_tmp.data());
        double lin = 0, quad = 0;
        for (int64_t i = 0; i < L; ++i)
          s.noff[static_cast<size_t>(i)] =
              grid_value(fc, step[j0 + i], off[j0 + i], codes[j0 + i]) -
              s.nstep[static_cast<size_t>(i)];
        for (int64_t i = 0; i < L; ++i)
          lin += static_cast<double>(s.noff[static_cast<size_t>(i)]) * g[j0 + i];
        quad = sub_form(s.noff.data(), s.noff.data(), j0, L);
        for (int64_t i = 0; i < L; ++i)
          if (s.noff[static_cast<size_t>(i)] != 0) move(j0 + i, s.noff[static_cast<size_t>(i)]);
        err += quad - 2 * lin;
        ++n_changed;
      }
    }
    subs += n_changed;
    return n_changed;
  }

  // Per-element grid derivatives of sub-block sb in the stored scale (which = 0) or min
  // (which = 1): the grids are affine in each, so one decode at a neighbouring value gives them.
  void grid_slope(ChunkScratch& s, const uint8_t* blk, int64_t b0, int sb, int which, float* dst,
                  float* dof) {
    const float sgn = decode_neighbour(s, blk, sb, which);
    const int64_t L = fc.sub_size, j0 = b0 + sb * L;
    for (int64_t i = 0; i < L; ++i) {
      const size_t jb = static_cast<size_t>(j0 + i - b0);
      dst[i] = sgn * (s.nstep[jb] - step[j0 + i]);
      dof[i] = sgn * (s.noff[jb] - off[j0 + i]);
    }
  }

  // Joint moves of a sub-block's stored scale/min and its codes: for each (scale, min) within
  // `win` of the current ones, the sub-block's codes are re-chosen one element at a time
  // (each rounded to its optimum given the row's residual, with the sub-block's H_s coupling
  // the later ones), and the best candidate is kept when it lowers e H_s eᵀ. Returns the
  // number of sub-blocks changed.
  int64_t joint_pass(ChunkScratch& s, int win) {
    const int64_t S = fc.block, L = fc.sub_size;
    s.nstep.resize(static_cast<size_t>(S));
    s.noff.resize(static_cast<size_t>(S));
    s.trial.resize(fc.block_bytes);
    s.js.resize(static_cast<size_t>(8 * L));
    float *dss = s.js.data(), *dos = dss + L, *dsm = dos + L, *dom = dsm + L;
    float *gl = dom + L, *dy = gl + L, *best_dy = dy + L, *y0 = best_dy + L;
    s.jcodes.resize(static_cast<size_t>(2 * L));
    uint8_t *cc = s.jcodes.data(), *best_cc = cc + L;
    int64_t n_changed = 0;
    for (int64_t b0 = 0; b0 < n; b0 += S) {
      uint8_t* blk = row + static_cast<size_t>(b0 / S) * fc.block_bytes;
      for (int sb = 0; sb < fc.n_sub; ++sb) {
        const int64_t j0 = b0 + sb * L;
        int sc, m;
        fc.get_sub(blk, sb, &sc, &m);
        grid_slope(s, blk, b0, sb, 0, dss, dos);
        if (fc.has_min) grid_slope(s, blk, b0, sb, 1, dsm, dom);
        for (int64_t i = 0; i < L; ++i)
          y0[i] = grid_value(fc, step[j0 + i], off[j0 + i], codes[j0 + i]);
        double best = 0;
        int best_a = 0, best_b = 0;
        const int wb = fc.has_min ? win : 0;
        for (int da = -win; da <= win; ++da)
          for (int db = -wb; db <= wb; ++db) {
            if (sc + da < fc.sc_min || sc + da > fc.sc_max || m + db < 0 || m + db > fc.m_max)
              continue;
            for (int64_t i = 0; i < L; ++i) gl[i] = g[j0 + i];
            double dE = 0;
            for (int64_t i = 0; i < L; ++i) {
              const int64_t j = j0 + i;
              const float st = step[j] + da * dss[i] + (fc.has_min ? db * dsm[i] : 0.0f);
              const float of = off[j] + da * dos[i] + (fc.has_min ? db * dom[i] : 0.0f);
              const double hjj = static_cast<double>(H[j * n + j]) + extra[j];
              float y;
              const float target = static_cast<float>(y0[i] + gl[i] / hjj);
              cc[i] = static_cast<uint8_t>(round_to_grid(fc, st, of, target, &y));
              const float d = y - y0[i];
              dy[i] = d;
              if (d == 0) continue;
              dE += d * (d * hjj - 2.0 * gl[i]);
              const float* h = H + j * n + j0;
              for (int64_t k = i + 1; k < L; ++k) gl[k] = std::fma(-d, h[k], gl[k]);
            }
            if (dE < best) {
              best = dE;
              best_a = da;
              best_b = db;
              std::memcpy(best_cc, cc, static_cast<size_t>(L));
            }
          }
        if (!(best < 0)) continue;
        fc.set_sub(blk, sb, sc + best_a, m + best_b);
        for (int64_t i = 0; i < L; ++i) {
          codes[j0 + i] = best_cc[i];
          fc.set_code(blk, static_cast<int>(j0 + i - b0), best_cc[i]);
        }
        block_grid(fc, blk, step + b0, off + b0, s.block_tmp.data());
        // The exact change, from the decoder's grid after the move.
        for (int64_t i = 0; i < L; ++i)
          best_dy[i] = grid_value(fc, step[j0 + i], off[j0 + i], codes[j0 + i]) - y0[i];
        double lin = 0;
        for (int64_t i = 0; i < L; ++i) lin += static_cast<double>(best_dy[i]) * g[j0 + i];
        const double quad = sub_form(best_dy, best_dy, j0, L);
        for (int64_t i = 0; i < L; ++i)
          if (best_dy[i] != 0) move(j0 + i, best_dy[i]);
        err += quad - 2 * lin;
        ++n_changed;
      }
    }
    subs += n_changed;
    return n_changed;
  }

  // Re-fits each block's f16 header scales given its codes (the other blocks fixed).
  void refit_pass(ChunkScratch& s) {
    const int64_t S = fc.block;
    const bool has_min = fc.dmin_offset >= 0;
    s.ba.resize(static_cast<size_t>(S));
    s.bb.resize(static_cast<size_t>(S));
    s.hu.resize(static_cast<size_t>(S));
    s.hv.resize(static_cast<size_t>(S));
    for (int64_t b0 = 0; b0 < n; b0 += S) {
      uint8_t* blk = row + static_cast<size_t>(b0 / S) * fc.block_bytes;
      header_basis(fc, blk, s.ba.data(), s.bb.data(), s.block_tmp.data());
      // Normal equations of min over (dd, dm) of (e - a dd - b dm) H_s (…)ᵀ, block b0 only.
      double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
      for (int64_t i = 0; i < S; ++i) {
        const float* h = H + (b0 + i) * n + b0;
        double u = dot_lanes(h, s.ba.data(), S), v = has_min ? dot_lanes(h, s.bb.data(), S) : 0.0;
        u += static_cast<double>(extra[b0 + i]) * s.ba[static_cast<size_t>(i)];
        v += static_cast<double>(extra[b0 + i]) * s.bb[static_cast<size_t>(i)];
        ga += s.ba[static_cast<size_t>(i)] * static_cast<double>(g[b0 + i]);
        gb += s.bb[static_cast<size_t>(i)] * static_cast<double>(g[b0 + i]);
        haa += s.ba[static_cast<size_t>(i)] * u;
        hab += s.bb[static_cast<size_t>(i)] * u;
        hbb += s.bb[static_cast<size_t>(i)] * v;
      }
      double dd = 0, dm = 0;
      if (has_min) {
        const double det = haa * hbb - hab * hab;
        if (!(det > 1e-12 * haa * hbb) || !(haa > 0)) continue;
        dd = (ga * hbb - gb * hab) / det;
        dm = (haa * gb - hab * ga) / det;
      } else {
        if (!(haa > 0)) continue;
        dd = ga / haa;
      }
      uint16_t hd, hm = 0;
      std::memcpy(&hd, blk + fc.d_offset, 2);
      if (has_min) std::memcpy(&hm, blk + fc.dmin_offset, 2);
      const float d0 = fp16_to_f32(hd), m0 = has_min ? fp16_to_f32(hm) : 0.0f;
      const uint16_t nd = f32_to_fp16(static_cast<float>(d0 + dd));
      const uint16_t nm = has_min ? f32_to_fp16(static_cast<float>(m0 + dm)) : hm;
      if (nd == hd && nm == hm) continue;
      const float d1 = fp16_to_f32(nd), m1 = has_min ? fp16_to_f32(nm) : 0.0f;
      if (!std::isfinite(d1) || !std::isfinite(m1)) continue;
      const double ad = static_cast<double>(d1) - d0, am = static_cast<double>(m1) - m0;
      const double dE =
          -2 * (ad * ga + am * gb) + ad * ad * haa + 2 * ad * am * hab + am * am * hbb;
      if (!(dE < 0)) continue;
      std::memcpy(blk + fc.d_offset, &nd, 2);
      if (has_min) std::memcpy(blk + fc.dmin_offset, &nm, 2);
      block_grid(fc, blk, step + b0, off + b0, s.block_tmp.data());
      for (int64_t i = 0; i < S; ++i) {
        const float dy = static_cast<float>(ad * s.ba[static_cast<size_t>(i)] +
                                            am * s.bb[static_cast<size_t>(i)]);
        if (dy != 0) move(b0 + i, dy);
      }
      err += dE;
      ++refit;
    }
  }
};

// Runs the local search on the chunk's rows; sets s.e_fb to each row's tr((w-q)H(w-q)ᵀ).
void local_search(const FixedScaleCodec& fc, const Codec& codec, const float* W0, int64_t nr,
                  int64_t n, const HessianFactor& f, const ErrorFeedbackOptions& opt, uint8_t* out,
                  size_t row_bytes, ChunkScratch& s, ErrorFeedbackStats& st) {
  std::vector<float> extra(static_cast<size_t>(n));
  // Dead columns (no calibration input) keep the weight the factor gave them, so that a block
  // scale re-fit cannot move them arbitrarily far.
  for (int64_t c = 0; c < n; ++c)
    extra[static_cast<size_t>(c)] =
        static_cast<float>((f.raw_diag()[c] > 0 ? opt.search_damp : 1.0) * f.added()[c]);
  s.dec.resize(static_cast<size_t>(nr * n));
  codec.dequantize(out, s.dec.data(), nr * n);
  s.e.resize(static_cast<size_t>(nr * n));
  for (int64_t i = 0; i < nr * n; ++i) s.e[i] = W0[i] - s.dec[i];
  s.g.assign(static_cast<size_t>(nr * n), 0.0f);
  gemm_sub(nr, n, n, s.e.data(), n, opt.hessian, n, s.g.data(), n);  // g = -(E H)
  for (int64_t r = 0; r < nr; ++r) {
    float* e = s.e.data() + r * n;
    float* g = s.g.data() + r * n;
    double err = 0;
    for (int64_t c = 0; c < n; ++c) {
      g[c] = -g[c] + extra[static_cast<size_t>(c)] * e[c];
      err += static_cast<double>(e[c]) * g[c];
    }
    RowSearch rs{fc,
                 opt.hessian,
                 extra.data(),
                 n,
                 out + static_cast<size_t>(r) * row_bytes,
                 s.codes.data() + r * n,
                 s.gstep.data() + r * n,
                 s.goff.data() + r * n,
                 e,
                 g};
    rs.err = err;
    for (int round = 0; round < opt.search_rounds; ++round) {
      int64_t moved = 0;
      for (int p = 0; p < opt.code_passes; ++p) {
        const int64_t c = rs.code_pass();
        moved += c;
        if (c == 0) break;
      }
      const int64_t refit0 = rs.refit;
      if (opt.refit_scales && fc.n_sub > 0)
        moved += opt.joint_window > 0 ? rs.joint_pass(s, opt.joint_window) : rs.subscale_pass(s);
      if (opt.refit_scales && fc.d_offset >= 0) rs.refit_pass(s);
      if (moved == 0 && rs.refit == refit0) break;
    }
    double corr = 0;
    for (int64_t c = 0; c < n; ++c) corr += static_cast<double>(extra[c]) * e[c] * e[c];
    s.e_fb[static_cast<size_t>(r)] = rs.err - corr;
    st.codes_changed += rs.changed;
    st.scales_refit += rs.refit + rs.subs;
  }
}

// The GPTQ/LDLQ column pass over rows r0 .. r0+nr of W into `out`; sets s.e_fb to each row's
// tr((w-q)H(w-q)ᵀ) and (search) s.codes/gstep/goff. keep_scales: every block keeps the scale
// bytes already in `out` (only its codes are re-chosen), else they are chosen by the codec's
// refined search on the error-updated weights when the block starts.
void column_pass(const FixedScaleCodec& fc, const Codec& codec, const float* W, int64_t r0,
                 int64_t nr, int64_t cols, const HessianFactor& f, const float* imp,
                 bool keep_scales, bool search, uint8_t* out, size_t row_bytes, ChunkScratch& s) {
  const int64_t S = fc.block;
  const float* Vn = f.vn();
  const float* vd = f.vdiag().data();
  s.w.assign(W + r0 * cols, W + (r0 + nr) * cols);
  s.err.assign(static_cast<size_t>(nr * kBatch), 0.0f);
  s.step.resize(static_cast<size_t>(S));
  s.offset.resize(static_cast<size_t>(S));
  s.block_tmp.resize(fc.block_bytes);
  s.e_fb.assign(static_cast<size_t>(nr), 0.0);
  QuantizeOptions qo;
  if (search) {
    s.codes.resize(static_cast<size_t>(nr * cols));
    s.gstep.resize(static_cast<size_t>(nr * cols));
    s.goff.resize(static_cast<size_t>(nr * cols));
  }
  for (int64_t c0 = 0; c0 < cols; c0 += kBatch) {
    const int64_t c1 = std::min(cols, c0 + kBatch);
    for (int64_t r = 0; r < nr; ++r) {
      float* w = s.w.data() + r * cols;  // the targets (error-updated weights)
      const float* w0 = W + (r0 + r) * cols;
      float* e = s.err.data() + r * kBatch;
      for (int64_t b0 = c0; b0 < c1; b0 += S) {
        uint8_t* blk =
            out + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b0 / S) * fc.block_bytes;
        if (!keep_scales) {
          qo.imatrix = imp + b0;
          codec.quantize(w + b0, blk, 1, S, qo);  // scales from the updated weights
        }
        block_grid(fc, blk, s.step.data(), s.offset.data(), s.block_tmp.data());
        for (int64_t j = b0; j < b0 + S; ++j) {
          float y;
          const int code = round_to_grid(fc, s.step[static_cast<size_t>(j - b0)],
                                         s.offset[static_cast<size_t>(j - b0)], w[j], &y);
          fc.set_code(blk, static_cast<int>(j - b0), code);
          if (search) {
            const size_t at = static_cast<size_t>(r * cols + j);
            s.codes[at] = static_cast<uint8_t>(code);
            s.gstep[at] = s.step[static_cast<size_t>(j - b0)];
            s.goff[at] = s.offset[static_cast<size_t>(j - b0)];
          }
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
  for (int64_t r = 0; r < nr; ++r)
    s.e_fb[static_cast<size_t>(r)] -=
        damping_error(W + (r0 + r) * cols, s.dec.data() + r * cols, 1, cols, f.added());
}

}  // namespace

ErrorFeedbackStats quantize_error_feedback(Type t, const float* W, int64_t rows, int64_t cols,
                                           const HessianFactor& f, const ErrorFeedbackOptions& opt,
                                           uint8_t* dst, ThreadPool& pool) {
  const FixedScaleCodec& fc = *find_fixed_scale_codec(t);
  const Codec& codec = *find_codec(t);
  const int64_t S = fc.block;
  const size_t row_bytes = static_cast<size_t>(cols / S) * fc.block_bytes;
  const float* vd = f.vdiag().data();

  std::vector<float> imp_buf(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    imp_buf[static_cast<size_t>(c)] =
        opt.importance == ScaleImportance::InvChol ? vd[c] * vd[c] : f.diag()[c];
  }
  const float* imp = imp_buf.data();
  const bool search = opt.hessian != nullptr && opt.search_rounds > 0;

  const int64_t R = std::max<int64_t>(1, opt.rows_per_task);
  const int64_t n_tasks = (rows + R - 1) / R;
  std::vector<ErrorFeedbackStats> per_task(static_cast<size_t>(n_tasks));
  pool.parallel_for(n_tasks, 1, [&](int64_t tb, int64_t te, int) {
    ChunkScratch s;
    for (int64_t task = tb; task < te; ++task) {
      const int64_t r0 = task * R, nr = std::min(R, rows - r0);
      uint8_t* out = dst + static_cast<size_t>(r0) * row_bytes;
      ErrorFeedbackStats& st = per_task[static_cast<size_t>(task)];
      QuantizeOptions qo;
      column_pass(fc, codec, W, r0, nr, cols, f, imp, false, search, out, row_bytes, s);
      for (int64_t r = 0; r < nr; ++r) st.err_column_pass += s.e_fb[static_cast<size_t>(r)];
      if (search) local_search(fc, codec, W + r0 * cols, nr, cols, f, opt, out, row_bytes, s, st);
      // Repeated passes: the column pass again with the scales the search left, then the
      // search; a row keeps the new encoding only where its error is lower.
      for (int pass = 1; search && pass < opt.column_passes; ++pass) {
        s.prev_bytes.assign(out, out + static_cast<size_t>(nr) * row_bytes);
        s.prev_e = s.e_fb;
        column_pass(fc, codec, W, r0, nr, cols, f, imp, true, search, out, row_bytes, s);
        local_search(fc, codec, W + r0 * cols, nr, cols, f, opt, out, row_bytes, s, st);
        for (int64_t r = 0; r < nr; ++r) {
          if (s.e_fb[static_cast<size_t>(r)] < s.prev_e[static_cast<size_t>(r)]) {
            ++st.rows_repassed;
            continue;
          }
          s.e_fb[static_cast<size_t>(r)] = s.prev_e[static_cast<size_t>(r)];
          std::memcpy(out + static_cast<size_t>(r) * row_bytes,
                      s.prev_bytes.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
        }
      }
      for (int64_t r = 0; r < nr; ++r) st.err_feedback += s.e_fb[static_cast<size_t>(r)];
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
    total.err_column_pass += p.err_column_pass;
    total.codes_changed += p.codes_changed;
    total.scales_refit += p.scales_refit;
    total.rows_repassed += p.rows_repassed;
  }
  return total;
}

double damping_error(const float* W, const float* Q, int64_t rows, int64_t cols,
                     std::span<const float> added) {
  double extra = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double d = static_cast<double>(W[r * cols + c]) - Q[r * cols + c];
      extra += added[static_cast<size_t>(c)] * d * d;
    }
  return extra;
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

Result<const HessianFactor*> HessianFactorCache::get(const CovarianceView& view, uint32_t matrix,
                                                     double damp, ThreadPool& pool) {
  const std::string key = view.name + "#" + std::to_string(matrix) + "@" + std::to_string(damp);
  for (auto& e : entries_)
    if (e.first == key) return &e.second;
  auto f = HessianFactor::build(view.matrix(matrix), static_cast<int64_t>(view.n), damp, pool);
  if (!f) return make_error(view.name, ": ", f.error().message);
  if (entries_.size() >= 3) entries_.erase(entries_.begin());
  entries_.emplace_back(key, std::move(*f));
  return &entries_.back().second;
}

}  // namespace qforge
