#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace qforge {

int32_t argmax(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(SamplerOptions opt) : opt_(opt), rng_(opt.seed) {}

int32_t Sampler::sample(std::span<const float> logits) {
  if (!(opt_.temperature > 0.0f)) return argmax(logits);
  cand_.clear();
  cand_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    cand_.emplace_back(logits[i] / opt_.temperature, static_cast<int32_t>(i));
  // Sorted by descending logit, ties by ascending id, so the result does not depend on the
  // sort's stability.
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t k = cand_.size();
  if (opt_.top_k > 0 && static_cast<size_t>(opt_.top_k) < k) {
    k = static_cast<size_t>(opt_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<ptrdiff_t>(k), cand_.end(),
                      by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(k);
  const float mx = cand_[0].first;
  std::vector<double> p(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += (p[i] = std::exp(static_cast<double>(cand_[i].first - mx)));
  size_t keep = k;
  if (opt_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < k; ++i) {
      cum += p[i] / sum;
      if (cum >= opt_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_), acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (r < acc) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace qforge
