// The architecture probes of ../shared/arch as test fixtures: a C++ port of make_probe.py that
// regenerates a probe's model.safetensors bit for bit (splitmix64 per tensor seeded by the
// FNV-1a-64 of its name, uniform values in double, -> float32 -> bf16 round-to-nearest-even,
// tensors in name order, Python json.dumps header padded with spaces to 8 bytes), next to the
// probe's config.json (or v5-config.json, or a copy resized to another hidden size as
// `make_probe.py --hidden H` writes it) and the published tokenizer files copied from
// ../shared/arch/tokenizers. Tests call QF_REQUIRE_PROBE(name) first: it skips with a message
// when ../shared/arch is absent.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qforge::test {

inline const std::vector<std::string>& probe_names() {
  static const std::vector<std::string> v = {"llama3", "mistral", "qwen3", "qwen3moe",
                                             "gemma2", "gemma3",  "phi3"};
  return v;
}

inline std::string probe_tokenizer(const std::string& probe) {
  if (probe == "llama3") return "llama3";
  if (probe == "mistral") return "llama2";
  if (probe == "qwen3" || probe == "qwen3moe") return "qwen3";
  if (probe == "gemma2" || probe == "gemma3") return "gemma3";
  return "gpt4o";
}

inline std::string probe_dir(const std::string& probe) {
  return shared_path("arch/" + probe);
}

namespace probe_detail {

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

struct ProbeTensor {
  std::vector<uint64_t> shape;
  double std = 0, mean = 0;
};

// Appends the bf16 bytes of one tensor (make_probe.py's rand()).
inline void append_values(const std::string& name, const ProbeTensor& t, std::string& out) {
  uint64_t n = 1;
  for (auto d : t.shape) n *= d;
  const uint64_t seed = fnv1a64(name);
  const double scale = std::sqrt(3.0) * t.std;
  const size_t at = out.size();
  out.resize(at + 2 * n);
  char* p = out.data() + at;
  for (uint64_t i = 1; i <= n; ++i) {
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
    const float f = static_cast<float>(t.mean + (2.0 * u - 1.0) * scale);
    uint32_t b;
    std::memcpy(&b, &f, 4);
    const uint16_t h = static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    std::memcpy(p + 2 * (i - 1), &h, 2);
  }
}

// make_probe.py's tensor list for `arch` at hidden size H.
inline std::map<std::string, ProbeTensor> probe_tensors(const std::string& arch, uint64_t H,
                                                        uint64_t vocab, uint64_t head_dim = 0) {
  const bool gemma = arch.rfind("gemma", 0) == 0;
  const uint64_t L = arch == "gemma3" ? 6 : 4, n_head = 4, n_kv = 2;
  const uint64_t hd = head_dim ? head_dim : arch == "qwen3" ? 32 : H / n_head, ff = 3 * H;
  const bool tied = !(arch == "mistral" || arch == "qwen3moe" || arch == "phi3");
  std::map<std::string, ProbeTensor> w;
  auto mat = [&](const std::string& n, uint64_t rows, uint64_t cols) {
    w[n] = {{rows, cols}, 1.0 / std::sqrt(static_cast<double>(cols)), 0.0};
  };
  auto norm = [&](const std::string& n, uint64_t len) { w[n] = {{len}, 0.1, gemma ? 0.0 : 1.0}; };
  w["model.embed_tokens.weight"] = {{vocab, H}, 1.0, 0.0};
  norm("model.norm.weight", H);
  if (!tied) mat("lm_head.weight", vocab, H);
  for (uint64_t i = 0; i < L; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    norm(p + "input_layernorm.weight", H);
    norm(p + "post_attention_layernorm.weight", H);
    if (arch == "phi3") {
      mat(p + "self_attn.qkv_proj.weight", n_head * hd + 2 * n_kv * hd, H);
      mat(p + "mlp.gate_up_proj.weight", 2 * ff, H);
      mat(p + "mlp.down_proj.weight", H, ff);
    } else {
      mat(p + "self_attn.q_proj.weight", n_head * hd, H);
      mat(p + "self_attn.k_proj.weight", n_kv * hd, H);
      mat(p + "self_attn.v_proj.weight", n_kv * hd, H);
      if (arch == "qwen3moe") {
        const uint64_t E = 4, mf = 2 * H;
        mat(p + "mlp.gate.weight", E, H);
        for (uint64_t e = 0; e < E; ++e) {
          const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
          mat(x + "gate_proj.weight", mf, H);
          mat(x + "up_proj.weight", mf, H);
          mat(x + "down_proj.weight", H, mf);
        }
      } else {
        mat(p + "mlp.gate_proj.weight", ff, H);
        mat(p + "mlp.up_proj.weight", ff, H);
        mat(p + "mlp.down_proj.weight", H, ff);
      }
    }
    mat(p + "self_attn.o_proj.weight", H, n_head * hd);
    if (arch == "qwen3" || arch == "qwen3moe" || arch == "gemma3") {
      norm(p + "self_attn.q_norm.weight", hd);
      norm(p + "self_attn.k_norm.weight", hd);
    }
    if (gemma) {
      norm(p + "pre_feedforward_layernorm.weight", H);
      norm(p + "post_feedforward_layernorm.weight", H);
    }
  }
  return w;  // std::map: name order, as make_probe.py's sorted(W)
}

inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace probe_detail

// The probe's model.safetensors bytes. With data = false only the length prefix and header
// (the caller extends the file to `*data_bytes` zero bytes: a structure-only checkpoint).
inline std::string probe_safetensors(const std::string& arch, uint64_t vocab, uint64_t H,
                                     bool data = true, uint64_t* data_bytes = nullptr,
                                     uint64_t head_dim = 0) {
  using namespace probe_detail;
  const auto tensors = probe_tensors(arch, H, vocab, head_dim);
  std::string header = "{", blob;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t begin = off;
    uint64_t n = 2;
    for (auto d : t.shape) n *= d;
    if (data) append_values(name, t, blob);
    off += n;
    header += "\"" + name + "\": {\"dtype\": \"BF16\", \"shape\": [";
    for (size_t i = 0; i < t.shape.size(); ++i)
      header += (i ? ", " : "") + std::to_string(t.shape[i]);
    header +=
        "], \"data_offsets\": [" + std::to_string(begin) + ", " + std::to_string(off) + "]}, ";
  }
  header += "\"__metadata__\": {\"format\": \"pt\"}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  if (data_bytes) *data_bytes = off;
  return out + header + blob;
}

// The probe's config at hidden size H, as make_probe.py --hidden H writes it (head_dim > 0:
// with that head size instead).
inline nlohmann::json probe_config(const std::string& arch, uint64_t H, bool v5 = false,
                                   uint64_t head_dim = 0) {
  const std::string file = probe_dir(arch) + (v5 ? "/v5-config.json" : "/config.json");
  nlohmann::json c = nlohmann::json::parse(read_all(file));
  if ((H == 0 || H == c["hidden_size"].get<uint64_t>()) && head_dim == 0) return c;
  if (H == 0) H = c["hidden_size"].get<uint64_t>();
  const uint64_t hd = head_dim ? head_dim : arch == "qwen3" ? 32 : H / 4;
  c["hidden_size"] = H;
  c["intermediate_size"] = 3 * H;
  c["head_dim"] = hd;
  if (c.contains("moe_intermediate_size")) c["moe_intermediate_size"] = 2 * H;
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!c.contains(key) || !c[key].is_object() || !c[key].contains("short_factor")) continue;
    nlohmann::json s = nlohmann::json::array(), l = nlohmann::json::array();
    for (uint64_t i = 0; i < hd / 2; ++i) {
      s.push_back(static_cast<double>(std::llround((1.0 + 0.05 * i) * 1000)) / 1000.0);
      l.push_back(static_cast<double>(std::llround((1.0 + 0.6 * i) * 1000)) / 1000.0);
    }
    c[key]["short_factor"] = s;
    c[key]["long_factor"] = l;
  }
  return c;
}

// Writes the whole probe folder (config.json, model.safetensors, tokenizer files) into dir.
// With weights = false the tensors are all zero (a sparse file: fast, for structure-only tests
// such as the quantization recipes).
inline void write_probe(const std::string& arch, const std::string& dir, uint64_t H = 0,
                        bool v5 = false, bool weights = true, uint64_t head_dim = 0) {
  namespace fs = std::filesystem;
  const nlohmann::json cfg = probe_config(arch, H, v5, head_dim);
  fs::create_directories(dir);
  probe_detail::write_text(fs::path(dir) / "config.json", cfg.dump(1));
  uint64_t data_bytes = 0;
  const std::string st =
      probe_safetensors(arch, cfg["vocab_size"].get<uint64_t>(), cfg["hidden_size"].get<uint64_t>(),
                        weights, &data_bytes, head_dim);
  const fs::path stp = fs::path(dir) / "model.safetensors";
  probe_detail::write_text(stp, st);
  if (!weights) fs::resize_file(stp, st.size() + data_bytes);
  const std::string tk = shared_path("arch/tokenizers/" + probe_tokenizer(arch));
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(fs::path(tk) / f, fs::path(dir) / f, fs::copy_options::overwrite_existing);
}

}  // namespace qforge::test

#define QF_REQUIRE_PROBE(name)                                                      \
  do {                                                                              \
    if (!std::filesystem::exists(::qforge::test::probe_dir(name) + "/config.json")) \
      GTEST_SKIP() << "needs ../shared/arch/" << (name) << " (not present)";        \
  } while (0)
