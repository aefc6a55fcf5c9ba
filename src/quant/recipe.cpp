#include "quant/recipe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <numeric>

#include "formats/model_family.h"

namespace qforge {
namespace {

// llama_ftype ids of the mixes whose rules differ (general.file_type values).
constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 7, kQ5_0 = 8, kQ5_1 = 9,
                   kQ2_K = 10, kQ3_K_S = 11, kQ3_K_M = 12, kQ3_K_L = 13, kQ4_K_S = 14, kQ4_K_M = 15,
                   kQ5_K_S = 16, kQ5_K_M = 17, kQ6_K = 18, kIQ4_NL = 25, kIQ4_XS = 30, kBF16 = 32;

constexpr std::array<Mix, 19> kMixes = {{
    {"Q2_K", kQ2_K, Type::Q2_K},       {"Q3_K_S", kQ3_K_S, Type::Q3_K},
    {"Q3_K_M", kQ3_K_M, Type::Q3_K},   {"Q3_K_L", kQ3_K_L, Type::Q3_K},
    {"Q4_K_S", kQ4_K_S, Type::Q4_K},   {"Q4_K_M", kQ4_K_M, Type::Q4_K},
    {"Q5_K_S", kQ5_K_S, Type::Q5_K},   {"Q5_K_M", kQ5_K_M, Type::Q5_K},
    {"Q6_K", kQ6_K, Type::Q6_K},       {"Q4_0", kQ4_0, Type::Q4_0},
    {"Q4_1", kQ4_1, Type::Q4_1},       {"Q5_0", kQ5_0, Type::Q5_0},
    {"Q5_1", kQ5_1, Type::Q5_1},       {"Q8_0", kQ8_0, Type::Q8_0},
    {"IQ4_NL", kIQ4_NL, Type::IQ4_NL}, {"IQ4_XS", kIQ4_XS, Type::IQ4_XS},
    {"F16", kF16, Type::F16},          {"BF16", kBF16, Type::BF16},
    {"F32", kF32, Type::F32},
}};

constexpr std::array<Type, 15> kTargetTypes = {
    Type::F32,  Type::F16,  Type::BF16, Type::Q4_0,   Type::Q4_1,
    Type::Q5_0, Type::Q5_1, Type::Q8_0, Type::Q2_K,   Type::Q3_K,
    Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::IQ4_NL, Type::IQ4_XS,
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}
bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The layer index of "blk.N.…", or -1.
int layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int v = -1;
  auto r = std::from_chars(name.data() + 4, name.data() + name.size(), v);
  if (r.ec != std::errc() || r.ptr == name.data() + 4 || r.ptr == name.data() + name.size() ||
      *r.ptr != '.')
    return -1;
  return v;
}

bool is_k_type(Type t) {
  return t == Type::Q2_K || t == Type::Q3_K || t == Type::Q4_K || t == Type::Q5_K ||
         t == Type::Q6_K || t == Type::IQ4_XS;
}

// llama.cpp's fallback for rows that a 256-block type cannot hold, then F16 for anything that
// still does not fit. Returns t unchanged when it fits.
Type fit_row(Type t, uint64_t row, bool* fell_back) {
  if (row % type_info(t).block_size == 0) return t;
  Type f = Type::F16;
  if (is_k_type(t)) {
    switch (t) {
      case Type::Q4_K:
        f = Type::Q5_0;
        break;
      case Type::Q5_K:
        f = Type::Q5_1;
        break;
      case Type::Q6_K:
        f = Type::Q8_0;
        break;
      default:
        f = Type::IQ4_NL;
        break;  // Q2_K, Q3_K, IQ4_XS
    }
  }
  if (row % type_info(f).block_size != 0) f = Type::F16;
  *fell_back = true;
  return f;
}

bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

std::optional<uint64_t> kv_uint(const std::vector<GgufKv>& kvs, const std::string& key) {
  for (const auto& [k, v] : kvs) {
    if (k != key) continue;
    if (auto u = v.as_uint()) return u;
    // Per-layer arrays (e.g. head_count_kv of hybrid models): the largest entry.
    if (const GgufArray* a = v.as_array()) {
      std::optional<uint64_t> best;
      for (const auto& item : a->items)
        if (auto u = item.as_uint()) best = std::max(best.value_or(0), *u);
      return best;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

struct ModelFacts {
  int n_gqa = 1;
  int n_layer = 0;
  int n_expert = 0;
  int n_attention_wv = 0;
  bool has_output = false;
  // The family's fused attn_qkv follows the attn_v rules (llama.cpp counts it as attn_v).
  bool qkv_as_v = false;
};

ModelFacts model_facts(std::span<const RecipeTensor> tensors, const std::vector<GgufKv>& kvs) {
  ModelFacts f;
  int max_layer = -1;
  for (const auto& t : tensors) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
        contains(t.name, "attn_kv_b.weight"))
      ++f.n_attention_wv;
    if (t.name == "output.weight") f.has_output = true;
    max_layer = std::max(max_layer, layer_of(t.name));
  }
  // A family of the architecture descriptor: its hyper-parameters as the engine reads them.
  auto has_tensor = [&](std::string_view n) {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == n; });
  };
  auto hp = read_hparams(kvs, has_tensor, "model");
  if (hp.ok()) {
    f.n_gqa = static_cast<int>(hp->n_head / hp->n_head_kv);
    f.n_expert = static_cast<int>(hp->n_expert);
    f.n_layer = static_cast<int>(hp->n_layer);
    f.qkv_as_v = hp->family->traits.fused_qkv;
    return f;
  }
  // Another architecture: the generic keys, as llama-quantize reads them.
  std::string arch;
  for (const auto& [k, v] : kvs)
    if (k == "general.architecture" && v.as_string()) arch = *v.as_string();
  const uint64_t n_head = kv_uint(kvs, arch + ".attention.head_count").value_or(0);
  const uint64_t n_head_kv = kv_uint(kvs, arch + ".attention.head_count_kv").value_or(n_head);
  f.n_gqa = n_head_kv > 0 ? static_cast<int>(n_head / n_head_kv) : 0;
  f.n_expert = static_cast<int>(kv_uint(kvs, arch + ".expert_count").value_or(0));
  f.n_layer = static_cast<int>(kv_uint(kvs, arch + ".block_count").value_or(max_layer + 1));
  return f;
}

}  // namespace

std::span<const Mix> all_mixes() {
  return kMixes;
}

const Mix* find_mix(std::string_view name) {
  for (const auto& m : kMixes)
    if (iequals(m.name, name)) return &m;
  return nullptr;
}

std::string mix_names() {
  std::string s;
  for (const auto& m : kMixes) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

Result<const Mix*> mix_for(std::string_view name) {
  const Mix* m = find_mix(name);
  if (!m) return make_error("unknown quantization type '", name, "' (valid: ", mix_names(), ")");
  return m;
}

bool is_target_type(Type t) {
  return std::find(kTargetTypes.begin(), kTargetTypes.end(), t) != kTargetTypes.end();
}

Result<Type> target_type_from_name(std::string_view name) {
  auto t = type_from_name(name);
  if (t && is_target_type(*t)) return *t;
  std::string valid;
  for (Type x : kTargetTypes) valid += (valid.empty() ? "" : ", ") + std::string(type_name(x));
  return make_error("unknown tensor type '", name, "' (valid: ", valid, ")");
}

Result<TensorTypeOverride> parse_tensor_type_override(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size())
    return make_error("--tensor-type '", spec, "': expected REGEX=TYPE");
  TensorTypeOverride o;
  o.pattern = std::string(spec.substr(0, eq));
  auto t = target_type_from_name(spec.substr(eq + 1));
  if (!t) return make_error("--tensor-type '", spec, "': ", t.error().message);
  o.type = *t;
  try {
    std::regex re(o.pattern);
  } catch (const std::regex_error& e) {
    return make_error("--tensor-type '", spec, "': invalid regex: ", e.what());
  }
  return o;
}

bool is_quantizable(std::string_view name, std::span<const uint64_t> dims) {
  if (!ends_with(name, "weight")) return false;
  int n_dims = 0;  // ggml_n_dims: trailing dims of 1 do not count
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] > 1) n_dims = static_cast<int>(i) + 1;
  if (n_dims < 2) return false;
  static constexpr std::string_view kNever[] = {"_norm.weight",
                                                "ffn_gate_inp.weight",
                                                "ssm_conv1d.weight",
                                                "attn_rel_b.weight",
                                                ".position_embd.",
                                                "time_mix_first.weight",
                                                "time_mix_w1.weight",
                                                "time_mix_w2.weight",
                                                "time_mix_decay_w1.weight",
                                                "time_mix_decay_w2.weight",
                                                "time_mix_lerp_fused.weight"};
  for (auto part : kNever)
    if (contains(name, part)) return false;
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  return true;
}

bool llama_tensor_order_less(std::string_view a, std::string_view b) {
  const int la = layer_of(a), lb = layer_of(b);
  if (la != lb) return la < lb;
  return a < b;
}

std::vector<size_t> llama_tensor_order(std::span<const std::string> names) {
  std::vector<size_t> idx(names.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t x, size_t y) { return llama_tensor_order_less(names[x], names[y]); });
  return idx;
}

Result<Recipe> Recipe::create(const Mix& mix, RecipeOptions opts) {
  Recipe r;
  r.mix_ = &mix;
  for (const auto& o : opts.tensor_types) {
    try {
      r.regexes_.emplace_back(o.pattern);
    } catch (const std::regex_error& e) {
      return make_error("--tensor-type '", o.pattern, "': invalid regex: ", e.what());
    }
  }
  r.opts_ = std::move(opts);
  return r;
}

Result<std::vector<TensorChoice>> Recipe::plan(std::span<const RecipeTensor> tensors,
                                               const std::vector<GgufKv>& kvs) const {
  const ModelFacts facts = model_facts(tensors, kvs);
  const uint32_t ft = mix_->file_type;
  const bool quantized_mix = type_info(mix_->base).quantized;
  int i_attention_wv = 0, i_ffn_down = 0;
  std::vector<TensorChoice> out;
  out.reserve(tensors.size());

  for (const auto& t : tensors) {
    TensorChoice c;
    c.quantize = is_quantizable(t.name, t.dims);
    if (!c.quantize) {
      c.type = t.type;
      out.push_back(c);
      continue;
    }
    const std::string_view name = t.name;
    const uint64_t nx = t.dims[0];
    Type nt = mix_->base;
    if (quantized_mix && !opts_.pure) {
      if (name == "output.weight" || (!facts.has_output && name == "token_embd.weight")) {
        if (nx % type_info(nt).block_size != 0)
          nt = Type::Q8_0;
        else if (nt != Type::Q8_0)
          nt = Type::Q6_K;
      } else if (name == "token_embd.weight") {
        // untied embeddings keep the base type
      } else if (contains(name, "attn_v.weight") ||
                 (facts.qkv_as_v && contains(name, "attn_qkv.weight"))) {
        const int i = i_attention_wv, n = facts.n_attention_wv;
        if (ft == kQ2_K)
          nt = facts.n_gqa >= 4 ? Type::Q4_K : Type::Q3_K;
        else if (ft == kQ3_K_M)
          nt = i < 2 ? Type::Q5_K : Type::Q4_K;
        else if (ft == kQ3_K_L)
          nt = Type::Q5_K;
        else if ((ft == kIQ4_NL || ft == kIQ4_XS) && facts.n_gqa >= 4)
          nt = Type::Q5_K;
        else if ((ft == kQ4_K_M || ft == kQ5_K_M) && use_more_bits(i, n))
          nt = Type::Q6_K;
        else if (ft == kQ4_K_S && i < 4)
          nt = Type::Q5_K;
        if (facts.n_expert == 8) nt = Type::Q8_0;
        ++i_attention_wv;
      } else if (contains(name, "attn_k.weight")) {
        if (facts.n_expert == 8) nt = Type::Q8_0;
      } else if (contains(name, "ffn_down")) {
        int i = i_ffn_down;
        const int n = facts.n_layer;
        if (facts.n_expert > 1) {
          // Expert tensors need not come in layer order: take the layer from the name.
          i = layer_of(name);
          if (i < 0 || i >= n)
            return make_error("tensor '", name, "': cannot tell its layer (0..", n - 1, ")");
        }
        if (ft == kQ2_K)
          nt = Type::Q3_K;
        else if (ft == kQ3_K_M)
          nt = i < n / 16 ? Type::Q5_K : Type::Q4_K;
        else if (ft == kQ3_K_L)
          nt = Type::Q5_K;
        else if (ft == kQ4_K_M) {
          if (use_more_bits(i, n)) nt = Type::Q6_K;
        } else if (i < n / 8 && (ft == kIQ4_NL || ft == kIQ4_XS) && !opts_.has_imatrix)
          nt = Type::Q5_K;
        else if (ft == kQ5_K_M && use_more_bits(i, n))
          nt = Type::Q6_K;
        else if (ft == kQ4_K_S && i < n / 8)
          nt = Type::Q5_K;
        else if ((ft == kQ4_0 || ft == kQ5_0) && opts_.has_imatrix && i < n / 8)
          nt = ft == kQ4_0 ? Type::Q4_1 : Type::Q5_1;
        ++i_ffn_down;
      } else if (contains(name, "attn_output.weight")) {
        if (facts.n_expert == 8) {
          if (ft == kQ2_K || ft == kQ3_K_S || ft == kQ3_K_M || ft == kIQ4_NL || ft == kQ4_K_S ||
              ft == kQ4_K_M || ft == kIQ4_XS)
            nt = Type::Q5_K;
        } else if (ft == kQ2_K) {
          nt = Type::Q3_K;
        } else if (ft == kQ3_K_M) {
          nt = Type::Q4_K;
        } else if (ft == kQ3_K_L) {
          nt = Type::Q5_K;
        }
      } else if (contains(name, "attn_qkv.weight")) {
        if (ft == kQ3_K_M || ft == kQ3_K_L)
          nt = Type::Q4_K;
        else if (ft == kQ4_K_M)
          nt = Type::Q5_K;
        else if (ft == kQ5_K_M)
          nt = Type::Q6_K;
      }
      nt = fit_row(nt, nx, &c.fallback);
    }

    // Explicit choices of the user.
    std::optional<Type> chosen;
    for (size_t k = 0; k < regexes_.size(); ++k)
      if (std::regex_search(t.name, regexes_[k])) chosen = opts_.tensor_types[k].type;
    if (name == "token_embd.weight") {
      if (opts_.token_embedding_type)
        chosen = opts_.token_embedding_type;
      else if (!facts.has_output && opts_.output_tensor_type)
        chosen = opts_.output_tensor_type;
    }
    if (name == "output.weight" && opts_.output_tensor_type) chosen = opts_.output_tensor_type;
    if (chosen) {
      c.overridden = true;
      c.fallback = false;
      nt = fit_row(*chosen, nx, &c.fallback);
    } else if (!quantized_mix || opts_.pure) {
      nt = fit_row(nt, nx, &c.fallback);
    }
    c.type = nt;
    out.push_back(c);
  }
  return out;
}

}  // namespace qforge
