#include "kernels/kquant_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/lanes.h"
#include "kernels/quant_math.h"

namespace qforge::kq {

namespace {

constexpr float kGroupEps = 1e-15f;  // groups whose largest magnitude is below this are zero

// The ggml helpers compare with C's MAX/MIN macros; these keep the same operand order (which
// matters only for NaN, but costs nothing).
template <typename T>
inline T max_of(T a, T b) {
  return a > b ? a : b;
}
template <typename T>
inline T min_of(T a, T b) {
  return a < b ? a : b;
}

}  // namespace

// ---- ggml-compatible searches: float expressions keep ggml's evaluation order ---------------

namespace {

// Sums sum w*x*l and sum w*l^2 of the symmetric search for the 24 inverse scales
// -(nmax + 0.1*is)/max, is = is0 .. is0+23: one candidate per lane, each in the scalar loop's
// order; the three vectors are independent chains (so the adds overlap).
constexpr int kSymVecs = 3;
struct SymChunk {
  lanes::f32x8 sumlx[kSymVecs], suml2[kSymVecs];
};
SymChunk symmetric_chunk(int n, int nmax, const float* x, const float* w, float max, int is0) {
  using namespace lanes;
  f32x8 isc[kSymVecs];
  SymChunk c;
  for (int v = 0; v < kSymVecs; ++v) {
    const f32x8 is = to_float(lane_index() + (is0 + v * kWidth));
    isc[v] = -(static_cast<float>(nmax) + 0.1f * is) / max;
    c.sumlx[v] = c.suml2[v] = splat(0.f);
  }
  for (int i = 0; i < n; ++i) {
    const float wx = w[i] * x[i];
    for (int v = 0; v < kSymVecs; ++v) {
      const f32x8 fl = to_float(clamp(lanes::nearest_int_ggml(isc[v] * x[i]), -nmax, nmax - 1));
      c.sumlx[v] += wx * fl;
      c.suml2[v] += (w[i] * fl) * fl;
    }
  }
  return c;
}

}  // namespace

float ggml_symmetric_search(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  const auto [max, amax] = qmath::signed_absmax(x, n);
  if (amax < kGroupEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float w[kMaxGroup];
  for (int i = 0; i < n; ++i) w[i] = qw ? qw[i] : x[i] * x[i];
  // ggml scans is = 0 (round to nearest), then -9..9; the candidates are independent (only the
  // acceptance test depends on the best so far), so all 19 are summed up front in one pass.
  constexpr int kLo = -9, kHi = 9;
  float sumlx[kSymVecs * lanes::kWidth], suml2[kSymVecs * lanes::kWidth];
  static_assert(kSymVecs * lanes::kWidth >= kHi - kLo + 1);
  const SymChunk c = symmetric_chunk(n, nmax, x, w, max, kLo);
  for (int v = 0; v < kSymVecs; ++v) {
    for (int k = 0; k < lanes::kWidth; ++k) {
      sumlx[v * lanes::kWidth + k] = c.sumlx[v][k];
      suml2[v * lanes::kWidth + k] = c.suml2[v][k];
    }
  }
  // -(nmax + 0.1*0)/max is bit for bit ggml's first inverse scale -nmax/max.
  float scale = suml2[-kLo] != 0 ? sumlx[-kLo] / suml2[-kLo] : 0.0f;
  float best = scale * sumlx[-kLo];
  int best_is = 0;
  for (int is = kLo; is <= kHi; ++is) {
    if (is == 0) continue;
    const float slx = sumlx[is - kLo], sl2 = suml2[is - kLo];
    if (sl2 > 0 && slx * slx > best * sl2) {
      scale = slx / sl2;
      best = scale * slx;
      best_is = is;
    }
  }
  const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(best_is)) / max;
  for (int i = 0; i < n; ++i) {
    const int l = qmath::nearest_int_ggml(iscale * x[i]);
    L[i] = static_cast<int8_t>(nmax + max_of(-nmax, min_of(nmax - 1, l)));
  }
  return scale;
}

namespace {

// ggml's coordinate descent on single quants (make_q3_quants, make_qp_quants): up to 5 passes,
// each moving a quant to its least-squares value given the others when that raises
// sumlx^2 / suml2. kPositive (make_qp_quants): quants clamped to <= hi, sl2 > 0 required before
// the move; otherwise (make_q3_quants) clamped to [lo, hi], sl2 > 0 required after it.
template <bool kPositive, class Lt>
void descend_quants(int n, int lo, int hi, const float* x, const float* w, Lt* L, float& sumlx,
                    float& suml2) {
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w[i] * x[i] * li;
      float sl2 = suml2 - w[i] * li * li;
      if (!(slx > 0) || (kPositive && !(sl2 > 0))) continue;
      int new_l = qmath::nearest_int_ggml(x[i] * sl2 / slx);
      new_l = kPositive ? min_of(hi, new_l) : max_of(lo, min_of(hi, new_l));
      if (new_l == L[i]) continue;
      const float fl = static_cast<float>(new_l);
      slx += w[i] * x[i] * fl;
      sl2 += w[i] * fl * fl;
      if ((kPositive || sl2 > 0) && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<Lt>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
}

}  // namespace

float ggml_symmetric_iterative(int n, int nmax, const float* x, int8_t* L) {
  const auto [max, amax] = qmath::signed_absmax(x, n);
  if (amax < kGroupEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float w[kMaxGroup];
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = qmath::nearest_int_ggml(iscale * x[i]);
    l = max_of(-nmax, min_of(nmax - 1, l));
    L[i] = static_cast<int8_t>(l);
    w[i] = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w[i] * x[i] * fl;
    suml2 += w[i] * fl * fl;
  }
  descend_quants<false>(n, -nmax, nmax - 1, x, w, L, sumlx, suml2);
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

namespace {

// Eight consecutive candidates of the affine search, one per lane. Each lane's sums and
// error accumulate in the scalar loop's order, so its figures are bit-identical to evaluating
// that candidate alone with the same min.
// kChunks * 8 lanes per pass (independent chains hide the add latency, but every accepted
// candidate that moves min discards the rest of the pass: 2 and 3 measured slower than 1).
constexpr int kChunks = 1;
constexpr int kChunkLanes = kChunks * lanes::kWidth;
struct AffineChunk {
  float error[kChunkLanes], scale[kChunkLanes], min[kChunkLanes];
  bool valid[kChunkLanes];
};

// Quant of x_minus_min = x[i] - min for the inverse scale(s) isc, as ggml rounds it.
template <class F>
inline auto affine_level(F isc, F xm, float fnmax, int nmax, bool guarded) {
  using namespace lanes;
  if constexpr (std::is_same_v<F, float>) {
    if (guarded) {
      // min may sit at or near max here, so v can be huge or NaN: clamp before rounding.
      const float v = isc * xm;
      return v > 0 ? qmath::nearest_int_ggml(min_of(v, fnmax)) : 0;
    }
    return max_of(0, min_of(nmax, qmath::nearest_int_ggml(isc * xm)));
  } else {
    const f32x8 v = isc * xm;
    if (guarded) {
      const f32x8 vmax = splat(fnmax);
      const i32x8 l = lanes::nearest_int_ggml(v < vmax ? v : vmax);
      return v > splat(0.f) ? l : splat_i(0);
    }
    return clamp(lanes::nearest_int_ggml(v), 0, nmax);
  }
}

template <bool kGuarded, bool kMad>
AffineChunk affine_chunk(int n, int nmax, const float* x, const float* w, float min, float max,
                         float sum_w, float sum_x, float rmin, float rdelta, int is0) {
  using namespace lanes;
  const float fnmax = static_cast<float>(nmax);
  f32x8 isc[kChunks];
  for (int c = 0; c < kChunks; ++c) {
    const f32x8 is = to_float(lane_index() + (is0 + c * kWidth));
    isc[c] = (rmin + rdelta * is + fnmax) / (max - min);
  }
  f32x8 lf[kMaxGroup][kChunks];
  f32x8 sum_l[kChunks], sum_l2[kChunks], sum_xl[kChunks];
  for (int c = 0; c < kChunks; ++c) sum_l[c] = sum_l2[c] = sum_xl[c] = splat(0.f);
  for (int i = 0; i < n; ++i) {
    const f32x8 xm = splat(x[i] - min);
    for (int c = 0; c < kChunks; ++c) {
      const f32x8 fl = to_float(affine_level(isc[c], xm, fnmax, nmax, kGuarded));
      lf[i][c] = fl;
      const f32x8 wl = w[i] * fl;
      sum_l[c] += wl;
      sum_l2[c] += wl * fl;
      sum_xl[c] += wl * x[i];
    }
  }
  f32x8 scale[kChunks], mn[kChunks], err[kChunks];
  i32x8 valid[kChunks];
  for (int c = 0; c < kChunks; ++c) {
    const f32x8 D = sum_w * sum_l2[c] - sum_l[c] * sum_l[c];
    valid[c] = D > splat(0.f);
    scale[c] = (sum_w * sum_xl[c] - sum_x * sum_l[c]) / D;
    mn[c] = (sum_l2[c] * sum_x - sum_l[c] * sum_xl[c]) / D;
    const i32x8 pos = mn[c] > splat(0.f);
    mn[c] = pos ? splat(0.f) : mn[c];
    scale[c] = pos ? sum_xl[c] / sum_l2[c] : scale[c];
    err[c] = splat(0.f);
  }
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < kChunks; ++c) {
      f32x8 diff = scale[c] * lf[i][c] + mn[c] - x[i];
      diff = kMad ? lanes::abs(diff) : diff * diff;
      err[c] += w[i] * diff;
    }
  }
  AffineChunk out;
  for (int c = 0; c < kChunks; ++c) {
    for (int k = 0; k < kWidth; ++k) {
      out.error[c * kWidth + k] = err[c][k];
      out.scale[c * kWidth + k] = scale[c][k];
      out.min[c * kWidth + k] = mn[c][k];
      out.valid[c * kWidth + k] = valid[c][k] != 0;
    }
  }
  return out;
}

// Shared body of the two affine searches; `guarded` selects the rounding of the scan.
float affine_search_impl(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                         float* min_out, float rmin, float rdelta, int nstep, bool use_mad,
                         bool guarded) {
  float w[kMaxGroup];
  w[0] = weights ? weights[0] : x[0] * x[0];
  for (int i = 1; i < n; ++i) w[i] = weights ? weights[i] : x[i] * x[i];
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (guarded ? max <= min : max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *min_out = -min;
    return 0.f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = qmath::nearest_int_ggml(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(max_of(0, min_of(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += w[i] * diff;
  }
  if (nstep < 1) {
    *min_out = -min;
    return scale;
  }
  // ggml's scan moves `min` to each accepted candidate's, and later candidates use it. So
  // eight candidates are evaluated speculatively with the current min and scanned in order;
  // after an acceptance that changes min, the scan restarts with the next candidate.
  int best = -1;
  float best_min = min;  // the min that the winning candidate was evaluated with
  for (int is0 = 0; is0 <= nstep;) {
    const auto chunk = guarded ? (use_mad ? affine_chunk<true, true> : affine_chunk<true, false>)
                               : (use_mad ? affine_chunk<false, true> : affine_chunk<false, false>);
    const AffineChunk c = chunk(n, nmax, x, w, min, max, sum_w, sum_x, rmin, rdelta, is0);
    const float eval_min = min;
    int next = is0 + kChunkLanes;
    for (int k = 0; k < kChunkLanes && is0 + k <= nstep; ++k) {
      if (!c.valid[k] || !(c.error[k] < best_error)) continue;
      best_error = c.error[k];
      best = is0 + k;
      best_min = eval_min;
      scale = c.scale[k];
      min = c.min[k];
      if (std::memcmp(&min, &eval_min, sizeof min) != 0) {
        next = is0 + k + 1;
        break;
      }
    }
    is0 = next;
  }
  if (best >= 0) {
    iscale = (rmin + rdelta * static_cast<float>(best) + fnmax) / (max - best_min);
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<uint8_t>(affine_level(iscale, x[i] - best_min, fnmax, nmax, guarded));
  }
  *min_out = -min;
  return scale;
}

}  // namespace

float ggml_affine_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                         float* min_out, float rmin, float rdelta, int nstep, bool use_mad) {
  return affine_search_impl(n, nmax, x, weights, L, min_out, rmin, rdelta, nstep, use_mad, false);
}

float ggml_affine_search_guarded(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                                 float* min_out, float rmin, float rdelta, int nstep,
                                 bool use_mad) {
  return affine_search_impl(n, nmax, x, weights, L, min_out, rmin, rdelta, nstep, use_mad, true);
}

float ggml_positive_search(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max_of(max, x[i]);
  if (max < kGroupEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(qmath::nearest_int_ggml(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + fnmax) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = min_of(nmax, qmath::nearest_int_ggml(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = min_of(nmax, qmath::nearest_int_ggml(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    const float w = qw[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  descend_quants<true>(n, 0, nmax, x, qw, L, sumlx, suml2);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ---- refiners ---------------------------------------------------------------------------------

namespace {

inline bool finite_half(uint16_t h) {
  return (h & 0x7c00u) != 0x7c00u;
}

// Search-time errors: float arithmetic in 8 partial sums so that the compiler can vectorize
// (len is 16 or 32). Accepting a refined block is decided in double by *_error below.
inline float finish(const float* acc) {
  float e = 0;
  for (int k = 0; k < 8; ++k) e += acc[k];
  return std::isnan(e) ? std::numeric_limits<float>::infinity() : e;
}

// Candidates of one window search: (2*window+1)^2 - 1 for window <= 3.
constexpr int kMaxCandidates = 48;

// finish() per lane: e = 0 + acc[0] + ... + acc[7], NaN mapped to +Inf.
inline lanes::f32x8 finish8(const lanes::f32x8* acc) {
  using namespace lanes;
  f32x8 e = splat(0.f);
  for (int k = 0; k < 8; ++k) e += acc[k];
  return e == e ? e : splat(std::numeric_limits<float>::infinity());
}

// Rounds v (already clamped to [-2^22, 2^22]) to the nearest integer, ties to even, as a float:
// the same result as nearest_int, in a form the compiler vectorizes.
inline float round_even(float v) {
  return (v + 12582912.f) - 12582912.f;
}

// Quantizes one sub-block of LEN values to quants in [qmin, qmax] for y = dl*q - ml, as the
// decoder computes it (affine types: qmin = 0, ml = dmin*lm; symmetric ones: no ml), writing
// the quants to q; returns the weighted squared error.
template <int LEN, bool kAffine, class Q>
float sub_encode_n(const float* x, const float* w, int qmin, int qmax, float dl, float ml, Q* q) {
  const float inv = dl != 0 ? 1.0f / dl : 0.0f;
  const float fmin = static_cast<float>(qmin), fmax = static_cast<float>(qmax);
  float lf[LEN];
  for (int i = 0; i < LEN; ++i) {
    float v = kAffine ? (x[i] + ml) * inv : x[i] * inv;
    v = v > fmin ? v : fmin;  // also maps NaN to qmin
    v = v < fmax ? v : fmax;
    lf[i] = round_even(v);
  }
  float acc[8] = {};
  for (int i0 = 0; i0 < LEN; i0 += 8) {
    for (int k = 0; k < 8; ++k) {
      const int i = i0 + k;
      const float diff = kAffine ? dl * lf[i] - ml - x[i] : dl * lf[i] - x[i];
      acc[k] += w[i] * diff * diff;
    }
  }
  for (int i = 0; i < LEN; ++i) q[i] = static_cast<Q>(static_cast<int>(lf[i]));
  return finish(acc);
}
template <bool kAffine, class Q>
float sub_encode(const float* x, const float* w, int len, int qmin, int qmax, float dl, float ml,
                 Q* q) {
  return len == 16 ? sub_encode_n<16, kAffine>(x, w, qmin, qmax, dl, ml, q)
                   : sub_encode_n<32, kAffine>(x, w, qmin, qmax, dl, ml, q);
}

// The errors of sub_encode for eight candidate (dl, ml) at once (one per lane, same values):
// every lane keeps the 8 partial sums of the scalar version (element i in sum i % 8) and adds
// them in the same order, so each lane's error is bit-identical to the scalar one.
template <int LEN, bool kAffine>
lanes::f32x8 sub_err8_n(const float* x, const float* w, int qmin, int qmax, lanes::f32x8 dl,
                        lanes::f32x8 ml) {
  using namespace lanes;
  const f32x8 zero = splat(0.f);
  const f32x8 fmin = splat(static_cast<float>(qmin)), fmax = splat(static_cast<float>(qmax));
  const f32x8 inv = dl != zero ? splat(1.0f) / dl : zero;
  f32x8 acc[8];
  for (auto& a : acc) a = zero;
  for (int i0 = 0; i0 < LEN; i0 += 8) {
    for (int k = 0; k < 8; ++k) {
      const int i = i0 + k;
      f32x8 v = kAffine ? (x[i] + ml) * inv : x[i] * inv;
      v = v > fmin ? v : fmin;  // also maps NaN to qmin
      v = v < fmax ? v : fmax;
      const f32x8 lf = (v + 12582912.f) - 12582912.f;
      const f32x8 diff = kAffine ? dl * lf - ml - x[i] : dl * lf - x[i];
      acc[k] += w[i] * diff * diff;
    }
  }
  return finish8(acc);
}
template <bool kAffine>
lanes::f32x8 sub_err8(const float* x, const float* w, int len, int qmin, int qmax, lanes::f32x8 dl,
                      lanes::f32x8 ml) {
  return len == 16 ? sub_err8_n<16, kAffine>(x, w, qmin, qmax, dl, ml)
                   : sub_err8_n<32, kAffine>(x, w, qmin, qmax, dl, ml);
}

// Index of the first entry of e[0..n) below `best` that also beats every earlier one (the
// winner of a sequential "if (e < best) best = e" scan), or -1; best is updated.
int first_best(const double* e, int n, double& best) {
  int win = -1;
  for (int c = 0; c < n; ++c) {
    if (e[c] < best) {
      best = e[c];
      win = c;
    }
  }
  return win;
}

// Weighted moments of one sub-block's quants q against its values x (weights w), for the
// least-squares refits: sums of w, w*q, w*q^2, w*x*q, w*x, in four interleaved partial sums
// so that the loop vectorizes (the refit only picks fp16 candidates, every one of which is
// then judged by its exact error).
struct Moments {
  double w = 0, wq = 0, wqq = 0, wxq = 0, wx = 0;
};
template <class Q>
Moments sub_moments(const float* x, const float* w, const Q* q, int len) {
  double a[5][4] = {};
  for (int i0 = 0; i0 < len; i0 += 4) {
    for (int k = 0; k < 4; ++k) {
      const int i = i0 + k;
      const double wi = w[i], qi = q[i], wx = wi * static_cast<double>(x[i]);
      a[0][k] += wi;
      a[1][k] += wi * qi;
      a[2][k] += wi * qi * qi;
      a[3][k] += wx * qi;
      a[4][k] += wx;
    }
  }
  auto sum4 = [](const double* v) { return (v[0] + v[1]) + (v[2] + v[3]); };
  return {sum4(a[0]), sum4(a[1]), sum4(a[2]), sum4(a[3]), sum4(a[4])};
}

// fp16 candidates around a real value: the nearest half and its two neighbours (finite only).
int half_candidates(double v, uint16_t out[3]) {
  if (std::isnan(v)) return 0;
  v = std::clamp(v, -65504.0, 65504.0);  // the largest finite halves
  const uint16_t h = f32_to_fp16(static_cast<float>(v));
  int n = 0;
  if (finite_half(h)) out[n++] = h;
  // Neighbours by magnitude; for h == +0 / -0 step to the smallest subnormals of both signs.
  const uint16_t mag = h & 0x7fffu, sign = h & 0x8000u;
  if (mag == 0) {
    out[n++] = 0x0001u;
    out[n++] = 0x8001u;
    return n;
  }
  if (finite_half(static_cast<uint16_t>(h + 1))) out[n++] = static_cast<uint16_t>(h + 1);
  out[n++] = mag == 1 ? static_cast<uint16_t>(0) : static_cast<uint16_t>(sign | (mag - 1));
  return n;
}

}  // namespace

namespace {

// sum w (y - x)^2 over a decoded super-block in double, four interleaved partial sums (the
// loop vectorizes); NaN maps to +Inf so that a broken block never wins a comparison.
double block_error(const float* y, const float* x, const float* w, int n) {
  double acc[4] = {};
  for (int i0 = 0; i0 < n; i0 += 4) {
    for (int k = 0; k < 4; ++k) {
      const int i = i0 + k;
      const double diff = static_cast<double>(y[i]) - static_cast<double>(x[i]);
      acc[k] += (w ? static_cast<double>(w[i]) : 1.0) * diff * diff;
    }
  }
  const double e = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

}  // namespace

double affine_error(const AffineSpec& sp, const AffineBlock& b, const float* x, const float* w) {
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  float y[256];
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(b.ls[j]);
    const float ml = dmin * static_cast<float>(b.lm[j]);
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      y[k] = dl * static_cast<float>(b.q[k]) - ml;
    }
  }
  return block_error(y, x, w, sp.n_sub * sp.sub_len);
}

double sym_error(const SymSpec& sp, const SymBlock& b, const float* x, const float* w) {
  const float d = fp16_to_f32(b.d);
  float y[256];
  for (int j = 0; j < sp.n_sub; ++j) {
    const float dl = d * static_cast<float>(b.s[j]);
    for (int i = 0; i < sp.sub_len; ++i) {
      const int k = j * sp.sub_len + i;
      y[k] = dl * static_cast<float>(b.q[k]);
    }
  }
  return block_error(y, x, w, sp.n_sub * sp.sub_len);
}

namespace {

// The two block families as the one refiner below sees them: per-sub-block integer parameters
// (Sub), the fp16 super-block scales (Glob), the scale and offset a sub-block decodes with
// (dl, ml: y = dl*q - ml), the window of Sub candidates, and the fp16 trials of the
// least-squares refit of the Glob for fixed integers.
struct AffineModel {
  using Spec = AffineSpec;
  using Block = AffineBlock;
  struct Sub {
    int ls, lm;
  };
  struct Glob {
    uint16_t d, dmin;
  };
  struct Scales {
    float d, dmin;
  };
  static Sub sub(const Block& b, int j) { return {b.ls[j], b.lm[j]}; }
  static void set_sub(Block& b, int j, Sub p) {
    b.ls[j] = static_cast<uint8_t>(p.ls);
    b.lm[j] = static_cast<uint8_t>(p.lm);
  }
  static Glob glob(const Block& b) { return {b.d, b.dmin}; }
  static void set_glob(Block& b, Glob g) {
    b.d = g.d;
    b.dmin = g.dmin;
  }
  static Scales scales(Glob g) { return {fp16_to_f32(g.d), fp16_to_f32(g.dmin)}; }
  static float dl(Scales g, Sub p) { return g.d * static_cast<float>(p.ls); }
  static float ml(Scales g, Sub p) { return g.dmin * static_cast<float>(p.lm); }
  static int window(const Spec& sp, Sub p0, Sub* out) {
    int n = 0;
    for (int ls = std::max(0, p0.ls - sp.window); ls <= std::min(sp.smax, p0.ls + sp.window); ++ls)
      for (int lm = std::max(0, p0.lm - sp.window); lm <= std::min(sp.smax, p0.lm + sp.window);
           ++lm)
        if (ls != p0.ls || lm != p0.lm) out[n++] = {ls, lm};
    return n;
  }
  // x ~ d*a - m*c with a = ls*q, c = lm: the normal equations, then the fp16 roundings around
  // the optimum (all pairs but the current one).
  static int trials(const Spec& sp, const Block& cur, const float* x, const float* w, Glob* out) {
    const int L = sp.sub_len;
    double saa = 0, sac = 0, scc = 0, sxa = 0, sxc = 0;
    for (int j = 0; j < sp.n_sub; ++j) {
      const Moments m = sub_moments(x + j * L, w + j * L, cur.q + j * L, L);
      const double ls = cur.ls[j], lm = cur.lm[j];
      saa += ls * ls * m.wqq;
      sac += ls * lm * m.wq;
      scc += lm * lm * m.w;
      sxa += ls * m.wxq;
      sxc += lm * m.wx;
    }
    // d*saa - m*sac = sxa ; d*sac - m*scc = sxc.
    double dstar = fp16_to_f32(cur.d), mstar = fp16_to_f32(cur.dmin);
    const double det = saa * scc - sac * sac;
    if (det > 1e-12 * saa * scc && det > 0) {
      dstar = (sxa * scc - sac * sxc) / det;
      mstar = (sxa * sac - saa * sxc) / det;
    } else if (saa > 0) {
      dstar = (sxa + mstar * sac) / saa;
    }
    uint16_t dc[3], mc[3];
    const int nd = half_candidates(dstar, dc), nm = half_candidates(mstar, mc);
    int n = 0;
    for (int a = 0; a < nd; ++a)
      for (int c = 0; c < nm; ++c)
        if (dc[a] != cur.d || mc[c] != cur.dmin) out[n++] = {dc[a], mc[c]};
    return n;
  }
  static lanes::f32x8 err8(const Spec& sp, const float* x, const float* w, lanes::f32x8 dl,
                           lanes::f32x8 ml) {
    return sub_err8<true>(x, w, sp.sub_len, 0, sp.qmax, dl, ml);
  }
  static float encode(const Spec& sp, const float* x, const float* w, float dl, float ml,
                      uint8_t* q) {
    return sub_encode<true>(x, w, sp.sub_len, 0, sp.qmax, dl, ml, q);
  }
  static double error(const Spec& sp, const Block& b, const float* x, const float* w) {
    return affine_error(sp, b, x, w);
  }
};

struct SymModel {
  using Spec = SymSpec;
  using Block = SymBlock;
  struct Sub {
    int s;
  };
  struct Glob {
    uint16_t d;
  };
  struct Scales {
    float d;
  };
  static Sub sub(const Block& b, int j) { return {b.s[j]}; }
  static void set_sub(Block& b, int j, Sub p) { b.s[j] = p.s; }
  static Glob glob(const Block& b) { return {b.d}; }
  static void set_glob(Block& b, Glob g) { b.d = g.d; }
  static Scales scales(Glob g) { return {fp16_to_f32(g.d)}; }
  static float dl(Scales g, Sub p) { return g.d * static_cast<float>(p.s); }
  static float ml(Scales, Sub) { return 0.f; }
  static int window(const Spec& sp, Sub p0, Sub* out) {
    int n = 0;
    for (int s = std::max(sp.smin, p0.s - sp.window); s <= std::min(sp.smax, p0.s + sp.window); ++s)
      if (s != p0.s) out[n++] = {s};
    return n;
  }
  // x ~ d*p with p = s*q: d = sum w x p / sum w p^2, then its fp16 roundings but the current.
  static int trials(const Spec& sp, const Block& cur, const float* x, const float* w, Glob* out) {
    const int L = sp.sub_len;
    double spp = 0, sxp = 0;
    for (int j = 0; j < sp.n_sub; ++j) {
      const Moments m = sub_moments(x + j * L, w + j * L, cur.q + j * L, L);
      const double sj = cur.s[j];
      spp += sj * sj * m.wqq;
      sxp += sj * m.wxq;
    }
    if (!(spp > 0)) return 0;
    uint16_t dc[3];
    const int nd = half_candidates(sxp / spp, dc);
    int n = 0;
    for (int a = 0; a < nd; ++a)
      if (dc[a] != cur.d) out[n++] = {dc[a]};
    return n;
  }
  static lanes::f32x8 err8(const Spec& sp, const float* x, const float* w, lanes::f32x8 dl,
                           lanes::f32x8 ml) {
    return sub_err8<false>(x, w, sp.sub_len, sp.qmin, sp.qmax, dl, ml);
  }
  static float encode(const Spec& sp, const float* x, const float* w, float dl, float /*ml*/,
                      int8_t* q) {
    return sub_encode<false>(x, w, sp.sub_len, sp.qmin, sp.qmax, dl, 0.f, q);
  }
  static double error(const Spec& sp, const Block& b, const float* x, const float* w) {
    return sym_error(sp, b, x, w);
  }
};

inline double inf_if_nan(double e) {
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

// The refiner of both families. Rounds: (1) each sub-block's integer parameters in a window
// around the current ones, (2) the least-squares refit of the fp16 scales for the fixed
// integers; until a round changes nothing. Candidates are evaluated 8 per pass (one per lane);
// the first strictly better one in scan order wins, as a one-at-a-time scan would choose.
template <class M>
void refine(const typename M::Spec& sp, const float* x, const float* w_in, typename M::Block& b) {
  using Block = typename M::Block;
  using Sub = typename M::Sub;
  using Glob = typename M::Glob;
  constexpr int W = lanes::kWidth;
  float ones[256];
  const float* w = w_in;
  if (!w) {
    std::fill(ones, ones + 256, 1.0f);
    w = ones;
  }
  const double e_start = M::error(sp, b, x, w);
  if (e_start == 0) return;
  Block cur = b;
  const int L = sp.sub_len;
  double sub_err[16];

  // Re-round every quant against the current scales (never worse than the stored ones, up to
  // rounding of the division; the final comparison below keeps whichever is better).
  auto requant_all = [&](Block& blk) {
    const auto g = M::scales(M::glob(blk));
    double tot = 0;
    for (int j = 0; j < sp.n_sub; ++j) {
      const Sub p = M::sub(blk, j);
      sub_err[j] = M::encode(sp, x + j * L, w + j * L, M::dl(g, p), M::ml(g, p), blk.q + j * L);
      tot += sub_err[j];
    }
    return inf_if_nan(tot);
  };
  double e_cur = requant_all(cur);

  for (int iter = 0; iter < sp.iters; ++iter) {
    bool changed = false;
    const auto g = M::scales(M::glob(cur));
    for (int j = 0; j < sp.n_sub; ++j) {
      const float* xj = x + j * L;
      const float* wj = w + j * L;
      Sub cand[kMaxCandidates];
      const int nc = M::window(sp, M::sub(cur, j), cand);
      double errs[kMaxCandidates];
      for (int c0 = 0; c0 < nc; c0 += W) {
        lanes::f32x8 dl, ml;
        for (int k = 0; k < W; ++k) {
          const Sub& p = cand[std::min(c0 + k, nc - 1)];
          dl[k] = M::dl(g, p);
          ml[k] = M::ml(g, p);
        }
        const lanes::f32x8 e = M::err8(sp, xj, wj, dl, ml);
        for (int k = 0; k < W && c0 + k < nc; ++k) errs[c0 + k] = e[k];
      }
      const int win = first_best(errs, nc, sub_err[j]);
      if (win >= 0) {
        M::set_sub(cur, j, cand[win]);
        M::encode(sp, xj, wj, M::dl(g, cand[win]), M::ml(g, cand[win]), cur.q + j * L);
        changed = true;
      }
    }
    e_cur = 0;
    for (int j = 0; j < sp.n_sub; ++j) e_cur += sub_err[j];

    Glob trial[9];
    const int nt = M::trials(sp, cur, x, w, trial);
    double terr[9];
    // A lane pass costs about L element steps whatever the number of trials; one trial
    // encoded with its elements in lanes about L/8 + 2. Both give the same error bits.
    const bool few = nt * (L / W + 2) < L;
    for (int t = 0; few && t < nt; ++t) {
      const auto tg = M::scales(trial[t]);
      typename M::Block scratch;
      double tot = 0;
      for (int j = 0; j < sp.n_sub; ++j) {
        const Sub p = M::sub(cur, j);
        tot += M::encode(sp, x + j * L, w + j * L, M::dl(tg, p), M::ml(tg, p), scratch.q + j * L);
      }
      terr[t] = inf_if_nan(tot);
    }
    for (int c0 = 0; !few && c0 < nt; c0 += W) {
      typename M::Scales tg[W];
      for (int k = 0; k < W; ++k) tg[k] = M::scales(trial[std::min(c0 + k, nt - 1)]);
      double tot[W] = {};  // as requant_all sums them
      for (int j = 0; j < sp.n_sub; ++j) {
        const Sub p = M::sub(cur, j);
        lanes::f32x8 dl, ml;
        for (int k = 0; k < W; ++k) {
          dl[k] = M::dl(tg[k], p);
          ml[k] = M::ml(tg[k], p);
        }
        const lanes::f32x8 e = M::err8(sp, x + j * L, w + j * L, dl, ml);
        for (int k = 0; k < W; ++k) tot[k] += e[k];
      }
      for (int k = 0; k < W && c0 + k < nt; ++k) terr[c0 + k] = inf_if_nan(tot[k]);
    }
    const int win = first_best(terr, nt, e_cur);
    if (win >= 0) {
      M::set_glob(cur, trial[win]);
      requant_all(cur);
      changed = true;
    }
    if (!changed) break;
  }
  if (M::error(sp, cur, x, w) < e_start) b = cur;
}

}  // namespace

void refine_affine(const AffineSpec& sp, const float* x, const float* w, AffineBlock& b) {
  refine<AffineModel>(sp, x, w, b);
}
void refine_sym(const SymSpec& sp, const float* x, const float* w, SymBlock& b) {
  refine<SymModel>(sp, x, w, b);
}

}  // namespace qforge::kq
