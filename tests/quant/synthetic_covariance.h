// Covariance files (formats/covariance.h) for the synthetic models of synthetic_gguf.h: per
// distinct matmul input, H = mean of x xᵀ over random correlated "tokens" (uneven column scales,
// a shared component and a running one), so error feedback has correlations to exploit.
#pragma once

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "formats/covariance.h"
#include "formats/imatrix.h"
#include "quant/synthetic_gguf.h"

namespace qforge::test {

// The covariance name of a synthetic weight (q/k/v and gate/up share one), "" for non-matmuls.
inline std::string synthetic_cov_name(const std::string& weight) {
  if (weight.rfind("blk.", 0) != 0) return "";
  const size_t dot = weight.find('.', 4);
  const std::string layer = weight.substr(0, dot), kind = weight.substr(dot + 1);
  if (kind == "attn_q.weight" || kind == "attn_k.weight" || kind == "attn_v.weight")
    return "cov." + layer + ".attn_in";
  if (kind == "ffn_gate.weight" || kind == "ffn_up.weight") return "cov." + layer + ".ffn_in";
  if (kind == "attn_output.weight") return "cov." + layer + ".attn_output";
  if (kind == "ffn_down.weight") return "cov." + layer + ".ffn_down";
  return "";
}

// n_tok tokens (0: 2n, full rank; fewer: cheaper, rank-deficient, as real calibration often is).
inline std::vector<float> synthetic_hessian(uint64_t n, uint32_t seed, uint64_t n_tok = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> scale(n);
  for (auto& s : scale) s = std::exp(0.7f * nd(rng));
  if (n_tok == 0) n_tok = 2 * n;
  std::vector<float> X(n_tok * n);
  for (uint64_t t = 0; t < n_tok; ++t) {
    float shared = nd(rng), prev = 0;
    for (uint64_t c = 0; c < n; ++c) {
      prev = 0.5f * nd(rng) + 0.6f * shared + 0.5f * prev;
      X[t * n + c] = prev * scale[c];
    }
  }
  std::vector<float> H(n * n);
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t j = i; j < n; ++j) {
      double s = 0;
      for (uint64_t t = 0; t < n_tok; ++t) s += static_cast<double>(X[t * n + i]) * X[t * n + j];
      H[i * n + j] = H[j * n + i] = static_cast<float>(s / static_cast<double>(n_tok));
    }
  return H;
}

// Writes an imatrix (all ones: 2 chunks) for every blk matmul of `m`, the weights that
// write_synthetic_covariance covers.
inline Status write_synthetic_imatrix(const std::string& path, const SyntheticModel& m) {
  Imatrix im;
  im.chunk_count = 2;
  im.datasets = {"synthetic"};
  for (const auto& t : synthetic_tensors(m))
    if (!synthetic_cov_name(t.name).empty())
      im.entries.push_back({t.name, std::vector<float>(t.dims[0], 1.0f), 1, 2});
  return write_imatrix_dat(path, im);
}

// Writes a covariance file for every matmul of `m` except those named in `skip`.
inline Status write_synthetic_covariance(const std::string& path, const SyntheticModel& m,
                                         const std::vector<std::string>& skip = {}) {
  std::map<std::string, CovarianceSpec> by_name;
  for (const auto& t : synthetic_tensors(m)) {
    const std::string cov = synthetic_cov_name(t.name);
    if (cov.empty() || std::find(skip.begin(), skip.end(), t.name) != skip.end()) continue;
    CovarianceSpec& s = by_name[cov];
    s.name = cov;
    s.n = t.dims[0];
    s.counts = {1000};
    s.weights.push_back(t.name);
  }
  std::vector<CovarianceSpec> specs;
  for (auto& [k, s] : by_name) specs.push_back(s);
  CovarianceMeta meta;
  meta.chunk_count = 2;
  meta.chunk_size = 512;
  meta.datasets = {"synthetic"};
  return write_covariance(
      path, specs, meta,
      [&](size_t i, uint32_t, std::span<float> out) {
        const auto H = synthetic_hessian(specs[i].n, static_cast<uint32_t>(i + 1));
        std::copy(H.begin(), H.end(), out.begin());
      },
      true);
}

}  // namespace qforge::test
