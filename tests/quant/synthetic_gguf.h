// A synthetic llama-shaped GGUF (random weights, real tensor names and shapes, no tokenizer),
// written tensor by tensor so that even a multi-GB model needs only a small buffer. Used by the
// quantizer tests and by bench/quantize_bench.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/result.h"
#include "formats/gguf.h"

namespace qforge::test {

struct SyntheticModel {
  int n_layer = 2;
  int hidden = 256;
  int ffn = 512;
  int n_head = 4;
  int n_head_kv = 2;
  int vocab = 512;
  bool tied = false;             // no output.weight
  Type weight_type = Type::F16;  // matrices: F32, F16 or BF16; norms are always F32
  uint64_t seed = 1;
  float scale = 0.02f;            // standard deviation of the weights
  std::string non_finite_tensor;  // if set, this tensor gets one NaN
  std::vector<GgufKv> extra_kvs;  // written after the hyper-parameters (e.g. a tokenizer)
};

struct SyntheticTensor {
  std::string name;
  std::vector<uint64_t> dims;
  Type type;
};

inline std::vector<SyntheticTensor> synthetic_tensors(const SyntheticModel& m) {
  const uint64_t h = m.hidden, f = m.ffn, v = m.vocab;
  const uint64_t kv = h / m.n_head * m.n_head_kv;
  const Type w = m.weight_type;
  std::vector<SyntheticTensor> ts = {{"token_embd.weight", {h, v}, w},
                                     {"output_norm.weight", {h}, Type::F32}};
  if (!m.tied) ts.push_back({"output.weight", {h, v}, w});
  for (int l = 0; l < m.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ts.push_back({p + "attn_norm.weight", {h}, Type::F32});
    ts.push_back({p + "attn_q.weight", {h, h}, w});
    ts.push_back({p + "attn_k.weight", {h, kv}, w});
    ts.push_back({p + "attn_v.weight", {h, kv}, w});
    ts.push_back({p + "attn_output.weight", {h, h}, w});
    ts.push_back({p + "ffn_norm.weight", {h}, Type::F32});
    ts.push_back({p + "ffn_gate.weight", {h, f}, w});
    ts.push_back({p + "ffn_up.weight", {h, f}, w});
    ts.push_back({p + "ffn_down.weight", {f, h}, w});
  }
  return ts;
}

// Fast deterministic pseudo-gaussian values (Irwin-Hall of four 16-bit uniforms).
class SyntheticRng {
 public:
  explicit SyntheticRng(uint64_t seed) : s_(seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float gauss() {
    const uint64_t r = next();
    const float s =
        static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) *
        (1.0f / 65536.0f);
    return (s - 2.0f) * 1.7320508f;  // mean 0, variance 1
  }

 private:
  uint64_t s_;
};

inline Status write_synthetic_gguf(const std::string& path, const SyntheticModel& m,
                                   bool overwrite = false) {
  GgufWriterOptions o;
  o.overwrite = overwrite;
  QF_TRY(GgufWriter w, GgufWriter::create(path, o));
  w.set_kv("general.architecture", GgufValue::string("llama"));
  w.set_kv("general.name", GgufValue::string("synthetic"));
  w.set_kv("llama.context_length", GgufValue::u32(2048));
  w.set_kv("llama.embedding_length", GgufValue::u32(m.hidden));
  w.set_kv("llama.block_count", GgufValue::u32(m.n_layer));
  w.set_kv("llama.feed_forward_length", GgufValue::u32(m.ffn));
  w.set_kv("llama.rope.dimension_count", GgufValue::u32(m.hidden / m.n_head));
  w.set_kv("llama.attention.head_count", GgufValue::u32(m.n_head));
  w.set_kv("llama.attention.head_count_kv", GgufValue::u32(m.n_head_kv));
  w.set_kv("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set_kv("llama.vocab_size", GgufValue::u32(m.vocab));
  w.set_kv("general.file_type", GgufValue::u32(m.weight_type == Type::F32   ? 0
                                               : m.weight_type == Type::F16 ? 1
                                                                            : 32));
  for (const auto& [key, value] : m.extra_kvs) w.set_kv(key, value);
  const auto ts = synthetic_tensors(m);
  for (const auto& t : ts) QF_CHECK(w.add_tensor(t.name, t.dims, t.type));
  QF_CHECK(w.write_header());
  std::vector<uint8_t> buf;
  constexpr uint64_t kChunk = 1 << 20;
  for (size_t ti = 0; ti < ts.size(); ++ti) {
    const auto& t = ts[ti];
    SyntheticRng rng(m.seed * 1000003 + ti);
    uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    const bool norm = t.dims.size() == 1;
    const size_t esize = t.type == Type::F32 ? 4 : 2;
    for (uint64_t done = 0; done < n; done += kChunk) {
      const uint64_t c = std::min(kChunk, n - done);
      buf.resize(c * esize);
      for (uint64_t i = 0; i < c; ++i) {
        float x = norm ? 1.0f + 0.1f * rng.gauss() : m.scale * rng.gauss();
        if (done + i == n / 2 && t.name == m.non_finite_tensor) x = std::nanf("");
        if (t.type == Type::F32) {
          std::memcpy(buf.data() + 4 * i, &x, 4);
        } else {
          const uint16_t hbits = t.type == Type::F16 ? f32_to_fp16(x) : f32_to_bf16(x);
          std::memcpy(buf.data() + 2 * i, &hbits, 2);
        }
      }
      QF_CHECK(w.append_tensor_data(buf));
    }
    QF_CHECK(w.finish_tensor());
  }
  QF_TRY(std::string digest, w.commit());
  (void)digest;
  return ok_status();
}

}  // namespace qforge::test
