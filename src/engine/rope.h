// RoPE angle tables: cos/sin of every (position, rotated pair) for one kind of layer, computed
// once per context the way llama.cpp's ggml_rope_ext does (so that a GGUF behaves as in
// llama.cpp): theta_i = pos * base^(-2i/n_rot) / factor_i, then
//   Linear: theta *= freq_scale;
//   Yarn:   theta mixes freq_scale * theta and theta per dimension (ramp between the yarn
//           correction dims of beta_fast / beta_slow), and cos/sin gain 1 + 0.1 ln(1/scale);
// and cos/sin are multiplied by the model's rope attention factor (phi3 longrope).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/model.h"

namespace qforge {

struct RopeTable {
  int64_t half = 0;             // n_rot / 2
  std::vector<float> cos, sin;  // [pos * half + i]
  const float* cos_at(int64_t pos) const { return cos.data() + pos * half; }
  const float* sin_at(int64_t pos) const { return sin.data() + pos * half; }
};

// Table for positions [0, n_ctx). `factors` holds n_rot/2 frequency divisors or is empty.
RopeTable build_rope_table(const ModelParams& p, const RopeConfig& rc,
                           std::span<const float> factors, int64_t n_ctx);

}  // namespace qforge
