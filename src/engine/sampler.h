// Next-token selection from a row of logits: greedy (argmax) at temperature 0, otherwise
// temperature scaling, then top-k, then top-p (nucleus) filtering, then a draw from the
// renormalised distribution with a seeded generator (same seed + same logits = same token).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace qforge {

struct SamplerOptions {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 40;            // <= 0: no top-k filtering
  float top_p = 0.95f;       // >= 1: no top-p filtering
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions opt);
  // Picks a token id. Contract: logits is non-empty.
  int32_t sample(std::span<const float> logits);
  const SamplerOptions& options() const { return opt_; }

 private:
  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace qforge
