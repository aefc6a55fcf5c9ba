// Scale searches for the K-quant codecs (quants_k.cpp).
//
// Two families live here:
//  * ggml-compatible searches: the sub-block scale/min searches that ggml's reference encoders
//    use, re-expressed so that every float operation happens in the same order (the build uses
//    -ffp-contract=off), which makes QuantizeOptions::ggml_compatible byte-identical to ggml.
//  * refiners: local searches that start from any valid encoding of a super-block and only
//    ever lower its weighted squared error (exactly as the decoder reconstructs values), used by
//    qforge's default (refined) mode.
#pragma once

#include <cstdint>

namespace qforge::kq {

// ---- ggml-compatible sub-block searches -------------------------------------------------------
// Groups hold 1 <= n <= 32 values (kMaxGroup). The candidate scales of one search are evaluated
// eight at a time in vector lanes, each lane in ggml's scalar order, so results are bit-exact.
inline constexpr int kMaxGroup = 32;
// Symmetric scale for n values with quants in [-nmax, nmax-1], stored in L as l + nmax. Weights
// are qw (nullptr: x^2). Tries the round-to-nearest scale and 18 perturbed ones, keeping the one
// with the best weighted least-squares fit. Returns the scale (0 for an all-zero group).
float ggml_symmetric_search(int n, int nmax, const float* x, int8_t* L, const float* qw);
// Symmetric scale for Q3_K without importance: weights x^2, then coordinate-descent on single
// quants (up to 5 passes). L as above.
float ggml_symmetric_iterative(int n, int nmax, const float* x, int8_t* L);
// Affine fit x ~ scale*L - min_out with L in [0, nmax], min_out >= 0: scans nstep+1 inverse
// scales (rmin + rdelta*is + nmax)/(max - min), each followed by a weighted least-squares fit of
// scale and min; the error is weighted |diff| (use_mad) or diff^2.
float ggml_affine_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                         float* min_out, float rmin, float rdelta, int nstep, bool use_mad);
// As ggml_affine_search, with a guarded rounding (the variant used with importance weights).
float ggml_affine_search_guarded(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                                 float* min_out, float rmin, float rdelta, int nstep, bool use_mad);
// Non-negative scale for quantizing non-negative values (sub-block scales or mins) to
// [0, nmax] with weights qw; L receives the quants.
float ggml_positive_search(int n, int nmax, const float* x, uint8_t* L, const float* qw);

// ---- refiners ---------------------------------------------------------------------------------
// A super-block decoded as y = (d*ls[j])*q - (dmin*lm[j]) for element i of sub-block j
// (Q2_K, Q4_K, Q5_K). d and dmin are fp16 bit patterns, exactly as stored.
struct AffineBlock {
  uint16_t d = 0, dmin = 0;
  uint8_t ls[16] = {}, lm[16] = {};
  uint8_t q[256] = {};
};
struct AffineSpec {
  int n_sub;    // sub-blocks per 256
  int sub_len;  // 256 / n_sub
  int qmax;     // quants in [0, qmax]
  int smax;     // ls, lm in [0, smax]
  int window;   // integer scale/min search radius
  int iters;    // refinement rounds
};
// A super-block decoded as y = (d*s[j])*q with signed s and q (Q3_K, Q6_K).
struct SymBlock {
  uint16_t d = 0;
  int s[16] = {};
  int8_t q[256] = {};
};
struct SymSpec {
  int n_sub, sub_len;
  int qmin, qmax;  // quants in [qmin, qmax]
  int smin, smax;  // scales in [smin, smax]
  int window;
  int iters;
};

// Weighted squared error sum w_i (y_i - x_i)^2 of a block as decoded (w == nullptr: 1).
double affine_error(const AffineSpec& sp, const AffineBlock& b, const float* x, const float* w);
double sym_error(const SymSpec& sp, const SymBlock& b, const float* x, const float* w);

// Improve b in place; the result's error (as computed by *_error) is never larger than b's.
void refine_affine(const AffineSpec& sp, const float* x, const float* w, AffineBlock& b);
void refine_sym(const SymSpec& sp, const float* x, const float* w, SymBlock& b);

}  // namespace qforge::kq
