#include "formats/hf_config.h"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "formats/untrusted_text.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

using nlohmann::json;

// transformers' defaults for the keys a config.json may leave out (LlamaConfig, MistralConfig,
// Qwen2Config). required = the newer families' structural keys, which must be present.
// kv_heads = 0 means "same as num_attention_heads"; head_dim = 0 means hidden / heads.
struct ClassDefaults {
  std::string_view hf_name;
  bool required;
  uint64_t vocab, hidden, ffn, layers, heads, kv_heads, max_pos, head_dim;
  double rms_eps, rope_theta;
  bool tie;
};
constexpr ClassDefaults kDefaults[] = {
    {"LlamaForCausalLM", false, 32000, 4096, 11008, 32, 32, 0, 2048, 0, 1e-6, 10000.0, false},
    {"MistralForCausalLM", false, 32000, 4096, 14336, 32, 32, 8, 4096 * 32, 0, 1e-6, 10000.0,
     false},
    {"Qwen2ForCausalLM", false, 151936, 4096, 22016, 32, 32, 32, 32768, 0, 1e-6, 10000.0, false},
    {"Qwen3ForCausalLM", true, 151936, 4096, 22016, 32, 32, 32, 32768, 128, 1e-6, 10000.0, false},
    {"Qwen3MoeForCausalLM", true, 151936, 2048, 6144, 24, 32, 4, 32768, 0, 1e-6, 10000.0, false},
    {"Gemma2ForCausalLM", true, 256000, 2304, 9216, 26, 8, 4, 8192, 256, 1e-6, 10000.0, true},
    {"Gemma3ForCausalLM", true, 262208, 2304, 9216, 26, 8, 4, 131072, 256, 1e-6, 1e6, true},
    {"Phi3ForCausalLM", true, 32064, 3072, 8192, 32, 32, 0, 4096, 0, 1e-5, 10000.0, false},
};

// Bound for every size from the file, so that products of a few of them cannot overflow.
constexpr uint64_t kMaxDim = 1ull << 31;

bool present(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && !it->is_null();
}

class Reader {
 public:
  Reader(const json& j, const std::string& name, bool required)
      : j_(j), name_(name), required_(required) {}

  // A positive integer key, or `def` when absent/null (an error for a required key).
  Result<uint64_t> dim(const char* key, uint64_t def, bool structural = true) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required_ && structural)
        return make_error(name_, ": required key '", key, "' is missing");
      return def;
    }
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 ||
        static_cast<uint64_t>(it->get<int64_t>()) > kMaxDim)
      return make_error(name_, ": '", key, "' must be a positive integer below 2^31, got ",
                        printable(it->dump()));
    return static_cast<uint64_t>(it->get<int64_t>());
  }
  // A positive number in `obj` (the config or one of its rope objects).
  Result<double> number(const json& obj, const char* key, double def,
                        const char* where = "") const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return def;
    if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>()))
      return make_error(name_, ": '", where, key, "' must be a positive number, got ",
                        printable(it->dump()));
    return it->get<double>();
  }
  Result<bool> flag(const char* key, bool def) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return def;
    if (!it->is_boolean()) return make_error(name_, ": '", key, "' must be true or false");
    return it->get<bool>();
  }
  // A token id: an integer, or a list whose first element is used (generation configs list
  // several eos ids).
  Result<std::optional<int64_t>> token_id(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::optional<int64_t>();
    const json* v = &*it;
    if (v->is_array()) {
      if (v->empty()) return std::optional<int64_t>();
      v = &(*v)[0];
    }
    if (!v->is_number_integer() || v->get<int64_t>() < 0)
      return make_error(name_, ": '", key, "' must be a non-negative integer, got ",
                        printable(it->dump()));
    return std::optional<int64_t>(v->get<int64_t>());
  }
  const std::string& name() const { return name_; }

 private:
  const json& j_;
  const std::string& name_;
  bool required_;
};

Status read_sizes(const json& j, const Reader& r, const ClassDefaults& d, HfConfig& c) {
  QF_TRY(c.vocab_size, r.dim("vocab_size", d.vocab));
  QF_TRY(c.hidden_size, r.dim("hidden_size", d.hidden));
  QF_TRY(c.intermediate_size, r.dim("intermediate_size", d.ffn, !c.family->traits.moe));
  QF_TRY(c.num_hidden_layers, r.dim("num_hidden_layers", d.layers));
  QF_TRY(c.num_attention_heads, r.dim("num_attention_heads", d.heads));
  const uint64_t kv_default = d.kv_heads ? d.kv_heads : c.num_attention_heads;
  QF_TRY(c.num_key_value_heads, r.dim("num_key_value_heads", kv_default, false));
  QF_TRY(c.max_position_embeddings, r.dim("max_position_embeddings", d.max_pos, false));
  QF_TRY(c.rms_norm_eps, r.number(j, "rms_norm_eps", d.rms_eps));
  c.head_dim_explicit = present(j, "head_dim");
  const uint64_t derived =
      c.hidden_size % c.num_attention_heads == 0 ? c.hidden_size / c.num_attention_heads : 0;
  const uint64_t hd_default = d.head_dim ? d.head_dim : derived;
  if (!c.head_dim_explicit && hd_default == 0)
    return make_error(r.name(), ": hidden_size ", c.hidden_size, " is not a multiple of ",
                      "num_attention_heads ", c.num_attention_heads);
  QF_TRY(c.head_dim, r.dim("head_dim", hd_default, false));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return make_error(r.name(), ": num_attention_heads ", c.num_attention_heads,
                      " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
  if (c.head_dim % 2 != 0) return make_error(r.name(), ": head_dim ", c.head_dim, " is odd");
  return ok_status();
}

// The RoPE parameters of the global (full-attention) layers and, for Gemma-3, the local ones,
// in either config style.
struct RopeObjects {
  json full = json::object();
  json local;         // null unless the config has per-layer-type parameters or a local base
  std::string where;  // "rope_scaling." / "rope_parameters." for messages
};

Result<RopeObjects> rope_objects(const json& j, const Reader& r) {
  RopeObjects o;
  auto rp = j.find("rope_parameters");
  if (rp != j.end() && !rp->is_null()) {
    if (!rp->is_object()) return make_error(r.name(), ": 'rope_parameters' must be an object");
    o.where = "rope_parameters.";
    if (rp->contains("full_attention") || rp->contains("sliding_attention")) {
      if (rp->contains("full_attention")) o.full = (*rp)["full_attention"];
      if (rp->contains("sliding_attention")) o.local = (*rp)["sliding_attention"];
      if (!o.full.is_object() || (!o.local.is_null() && !o.local.is_object()))
        return make_error(r.name(), ": rope_parameters per layer type must be objects");
    } else {
      o.full = *rp;
    }
    return o;
  }
  o.where = "rope_scaling.";
  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) return make_error(r.name(), ": 'rope_scaling' must be an object");
    o.full = *rs;
  }
  if (j.contains("rope_theta")) o.full["rope_theta"] = j["rope_theta"];
  if (present(j, "rope_local_base_freq"))
    o.local = json{{"rope_theta", j["rope_local_base_freq"]}, {"rope_type", "default"}};
  return o;
}

std::string rope_type_of(const json& obj) {
  for (const char* k : {"rope_type", "type"}) {
    auto it = obj.find(k);
    if (it != obj.end() && it->is_string()) return it->get<std::string>();
  }
  return "default";
}

Result<std::vector<float>> factor_list(const json& obj, const char* key, size_t want,
                                       const Reader& r, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array())
    return make_error(r.name(), ": '", where, key, "' (a list of numbers) is missing");
  if (it->size() != want)
    return make_error(r.name(), ": '", where, key, "' has ", it->size(),
                      " entries; rotary dimension / 2 = ", want);
  std::vector<float> v;
  for (const auto& x : *it) {
    if (!x.is_number() || !(x.get<double>() > 0))
      return make_error(r.name(), ": '", where, key, "' entries must be positive numbers");
    v.push_back(static_cast<float>(x.get<double>()));
  }
  return v;
}

Status read_rope(const json& j, const Reader& r, const ClassDefaults& d, HfConfig& c) {
  ModelHParams& hp = c.hp;
  QF_TRY(RopeObjects o, rope_objects(j, r));
  QF_TRY(c.rope_theta, r.number(o.full, "rope_theta", d.rope_theta, o.where.c_str()));
  hp.rope_freq_base = static_cast<float>(c.rope_theta);
  if (!o.local.is_null()) {
    if (c.family->traits.sliding_pattern <= 1)
      return make_error(r.name(), ": local (sliding_attention) RoPE parameters are not ",
                        "supported for ", c.hf_architecture);
    if (rope_type_of(o.local) != "default")
      return make_error(r.name(), ": sliding_attention rope_type '",
                        printable(rope_type_of(o.local)), "' is not supported (only default)");
    QF_TRY(double local, r.number(o.local, "rope_theta", 10000.0, o.where.c_str()));
    // Only GGUF gemma3 has a separate local base (rope.freq_base_swa).
    if (c.family->name == std::string_view("gemma3"))
      hp.rope_freq_base_swa = static_cast<float>(local);
    else if (local != c.rope_theta)
      return make_error(r.name(), ": a local RoPE base (", local, ") different from rope_theta ",
                        "is not supported for ", c.hf_architecture);
  } else if (c.family->name == std::string_view("gemma3")) {
    hp.rope_freq_base_swa = 10000.0f;  // Gemma3TextConfig.rope_local_base_freq default
  }

  // Partial rotary (Phi-3: llama.cpp's int(factor * n_embd) // n_head).
  double prf = 1.0;
  QF_TRY(prf, r.number(o.full, "partial_rotary_factor", 1.0, o.where.c_str()));
  if (present(j, "partial_rotary_factor")) {
    QF_TRY(prf, r.number(j, "partial_rotary_factor", 1.0));
  }
  if (prf > 1.0) return make_error(r.name(), ": 'partial_rotary_factor' must be at most 1");
  if (c.family->traits.fused_qkv) {
    hp.n_rot =
        static_cast<uint64_t>(prf * static_cast<double>(c.hidden_size)) / c.num_attention_heads;
  } else if (prf != 1.0) {
    return make_error(r.name(), ": partial_rotary_factor ", prf, " is not supported for ",
                      c.hf_architecture);
  } else {
    hp.n_rot = c.head_dim;
  }
  if (hp.n_rot == 0 || hp.n_rot % 2 != 0 || hp.n_rot > c.head_dim)
    return make_error(r.name(), ": rotary dimension ", hp.n_rot, " must be even, positive and ",
                      "at most head_dim ", c.head_dim);

  const std::string type = rope_type_of(o.full);
  const std::string_view fam = c.family->name;
  const std::string key = o.where + (o.full.contains("rope_type") ? "rope_type" : "type");
  auto refuse = [&](std::string_view why) {
    return make_error(r.name(), ": ", key, " '", printable(type), "' ", why);
  };
  double factor = 0;
  if (type == "linear" || type == "yarn" || type == "llama3") {
    if (!present(o.full, "factor"))
      return make_error(r.name(), ": '", o.where, "factor' is missing");
    QF_TRY(factor, r.number(o.full, "factor", 1.0, o.where.c_str()));
  }
  if (type == "default") {
    return ok_status();
  } else if (type == "linear") {
    if (fam == "phi3" || fam == "gemma2") return refuse(cat("is not supported for ", fam));
    hp.rope_scaling = RopeScalingKind::Linear;
    hp.rope_scaling_factor = static_cast<float>(factor);
  } else if (type == "yarn") {
    if (fam == "phi3" || fam.substr(0, 5) == "gemma")
      return refuse(cat("is not supported for ", fam));
    hp.rope_scaling = RopeScalingKind::Yarn;
    hp.rope_scaling_factor = static_cast<float>(factor);
    const Reader rope_reader(o.full, r.name(), true);
    QF_TRY(uint64_t orig, rope_reader.dim("original_max_position_embeddings", 0));
    hp.rope_orig_ctx = orig;
    double v = 0;
    QF_TRY(v, r.number(o.full, "beta_fast", 0, o.where.c_str()));
    hp.yarn_beta_fast = static_cast<float>(v);
    QF_TRY(v, r.number(o.full, "beta_slow", 0, o.where.c_str()));
    hp.yarn_beta_slow = static_cast<float>(v);
    const char* af = o.full.contains("attention_factor") ? "attention_factor" : "attn_factor";
    QF_TRY(v, r.number(o.full, af, 0, o.where.c_str()));
    hp.yarn_attn_factor = static_cast<float>(v);
    if (present(o.full, "extrapolation_factor")) {
      const auto& e = o.full["extrapolation_factor"];
      if (!e.is_number() || e.get<double>() < 0)
        return make_error(r.name(), ": '", o.where, "extrapolation_factor' must be >= 0");
      hp.yarn_ext_factor = static_cast<float>(e.get<double>());
    }
  } else if (type == "llama3") {
    if (fam != "llama") return refuse(cat("is not supported for ", fam));
    hp.rope_scaling = RopeScalingKind::Llama3;
    hp.rope_scaling_factor = static_cast<float>(factor);
    double lo = 1, hi = 4;
    QF_TRY(lo, r.number(o.full, "low_freq_factor", 1.0, o.where.c_str()));
    QF_TRY(hi, r.number(o.full, "high_freq_factor", 4.0, o.where.c_str()));
    hp.llama3_low_freq_factor = static_cast<float>(lo);
    hp.llama3_high_freq_factor = static_cast<float>(hi);
    const Reader rope_reader(o.full, r.name(), true);
    QF_TRY(uint64_t orig, rope_reader.dim("original_max_position_embeddings", 0));
    hp.llama3_orig_ctx = orig;
  } else if (type == "longrope" || type == "su") {
    if (fam != "phi3") return refuse(cat("is not supported for ", fam));
    hp.rope_scaling = RopeScalingKind::LongRope;
    QF_TRY(hp.longrope_short, factor_list(o.full, "short_factor", hp.n_rot / 2, r, o.where));
    QF_TRY(hp.longrope_long, factor_list(o.full, "long_factor", hp.n_rot / 2, r, o.where));
  } else {
    return refuse("is not supported (supported: default, linear, yarn, llama3, longrope)");
  }
  return ok_status();
}

// Phi-3's original context (rope parameters or top level) and the longrope attention factor
// as llama.cpp computes it: sqrt(1 + ln(scale) / ln(orig)) for scale = max_pos / orig > 1.
Status read_phi3(const json& j, const Reader& r, HfConfig& c) {
  ModelHParams& hp = c.hp;
  QF_TRY(RopeObjects o, rope_objects(j, r));
  const json& src = present(o.full, "original_max_position_embeddings") ? o.full : j;
  if (present(src, "original_max_position_embeddings")) {
    const Reader src_reader(src, r.name(), true);
    QF_TRY(hp.rope_orig_ctx, src_reader.dim("original_max_position_embeddings", 0));
  }
  if (hp.rope_scaling == RopeScalingKind::LongRope) {
    if (hp.rope_orig_ctx == 0)
      return make_error(r.name(), ": longrope needs 'original_max_position_embeddings'");
    const double scale =
        static_cast<double>(hp.n_ctx_train) / static_cast<double>(hp.rope_orig_ctx);
    hp.rope_attn_factor =
        scale > 1.0 ? static_cast<float>(std::sqrt(
                          1.0 + std::log(scale) / std::log(static_cast<double>(hp.rope_orig_ctx))))
                    : 1.0f;
  }
  if (present(j, "sliding_window")) {
    QF_TRY(hp.sliding_window, r.dim("sliding_window", 0, false));
  }
  return ok_status();
}

// Activation: SiLU for the llama-like families, GELU-tanh for Gemma.
Status check_activation(const json& j, const Reader& r, const HfConfig& c) {
  const bool gemma = c.family->traits.act == Activation::GeluTanh;
  for (const char* key : {"hidden_activation", "hidden_act"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    const std::string a = it->is_string() ? it->get<std::string>() : it->dump();
    const bool ok = gemma ? (a == "gelu_pytorch_tanh" || a == "gelu_tanh") : a == "silu";
    if (!ok)
      return make_error(r.name(), ": '", key, "' ", printable(a), " is not supported for ",
                        c.hf_architecture, " (", gemma ? "gelu_pytorch_tanh" : "silu", ")");
    return ok_status();
  }
  return ok_status();
}

// Gemma: soft-caps, query_pre_attn_scalar, sliding window and its layer pattern.
Status read_gemma(const json& j, const Reader& r, HfConfig& c) {
  ModelHParams& hp = c.hp;
  const bool g3 = c.family->name == std::string_view("gemma3");
  double v = 0;
  QF_TRY(v, r.number(j, "attn_logit_softcapping", g3 ? 0 : 50.0));
  if (g3 && v > 0)
    return make_error(r.name(), ": 'attn_logit_softcapping' is not supported for Gemma 3");
  hp.attn_softcap = static_cast<float>(v);
  QF_TRY(v, r.number(j, "final_logit_softcapping", g3 ? 0 : 30.0));
  hp.final_softcap = static_cast<float>(v);
  if (j.contains("final_logit_softcapping") && j["final_logit_softcapping"].is_null())
    hp.final_softcap = 0;
  if (!g3 && j.contains("attn_logit_softcapping") && j["attn_logit_softcapping"].is_null())
    hp.attn_softcap = 0;
  QF_TRY(v, r.number(j, "query_pre_attn_scalar", 256.0));
  hp.attention_scale = static_cast<float>(1.0 / std::sqrt(v));
  QF_TRY(hp.sliding_window, r.dim("sliding_window", 4096, false));

  // The sliding pattern: layer_types (transformers 5) or sliding_window_pattern.
  uint32_t pattern = c.family->traits.sliding_pattern;
  if (g3 && present(j, "sliding_window_pattern")) {
    QF_TRY(uint64_t p, r.dim("sliding_window_pattern", 6, false));
    pattern = static_cast<uint32_t>(p);
  }
  auto lt = j.find("layer_types");
  if (lt != j.end() && !lt->is_null()) {
    if (!lt->is_array() || lt->size() != c.num_hidden_layers)
      return make_error(r.name(), ": 'layer_types' must list ", c.num_hidden_layers, " layers");
    // The family's own pattern first (a pattern longer than the model is indistinguishable).
    auto matches = [&](uint32_t p) {
      for (size_t i = 0; i < lt->size(); ++i) {
        const bool sliding = p > 1 && i % p < p - 1;
        if ((*lt)[i] != (sliding ? "sliding_attention" : "full_attention")) return false;
      }
      return true;
    };
    uint32_t found =
        matches(c.family->traits.sliding_pattern) ? c.family->traits.sliding_pattern : 0;
    for (uint32_t p = 1; p <= c.num_hidden_layers && !found; ++p)
      if (matches(p)) found = p;
    if (!found)
      return make_error(r.name(), ": 'layer_types' is not a repeating pattern of ",
                        "sliding_attention layers followed by one full_attention layer");
    pattern = found;
  }
  if (pattern != 1 && pattern != c.family->traits.sliding_pattern)
    return make_error(r.name(), ": sliding window pattern ", pattern, " is not the pattern ",
                      c.family->traits.sliding_pattern, " that GGUF ", c.arch, " assumes");
  hp.sliding_pattern = pattern;
  return ok_status();
}

Status read_moe(const json& j, const Reader& r, HfConfig& c) {
  ModelHParams& hp = c.hp;
  const char* ne = present(j, "num_experts") ? "num_experts" : "num_local_experts";
  QF_TRY(hp.n_expert, r.dim(ne, 128));
  QF_TRY(hp.n_expert_used, r.dim("num_experts_per_tok", 8));
  QF_TRY(hp.n_ff_exp, r.dim("moe_intermediate_size", 768));
  if (hp.n_expert_used > hp.n_expert)
    return make_error(r.name(), ": num_experts_per_tok ", hp.n_expert_used, " exceeds ", ne, " ",
                      hp.n_expert);
  QF_TRY(hp.expert_weights_norm, r.flag("norm_topk_prob", false));
  QF_TRY(uint64_t step, r.dim("decoder_sparse_step", 1, false));
  auto mlp_only = j.find("mlp_only_layers");
  if (step != 1 || (mlp_only != j.end() && mlp_only->is_array() && !mlp_only->empty()))
    return make_error(r.name(), ": dense layers in a MoE model (decoder_sparse_step / ",
                      "mlp_only_layers) are not supported");
  if (present(j, "shared_expert_intermediate_size"))
    return make_error(r.name(), ": shared experts are not supported for ", c.hf_architecture);
  return ok_status();
}

// Non-Gemma families run every layer with full attention (llama.cpp ignores windows there).
Status check_layer_types(const json& j, const Reader& r, const HfConfig& c) {
  if (c.family->traits.sliding_pattern != 1) return ok_status();
  auto lt = j.find("layer_types");
  if (lt == j.end() || !lt->is_array()) return ok_status();
  for (const auto& t : *lt)
    if (t != "full_attention")
      return make_error(r.name(), ": layer_types entry ", printable(t.dump()),
                        " is not supported for ", c.hf_architecture, " (only full_attention)");
  return ok_status();
}

void fill_hparams(HfConfig& c) {
  ModelHParams& hp = c.hp;
  hp.family = c.family;
  hp.n_vocab = c.vocab_size;
  hp.n_ctx_train = c.max_position_embeddings;
  hp.n_embd = c.hidden_size;
  hp.n_layer = c.num_hidden_layers;
  hp.n_ff = c.intermediate_size;
  hp.n_head = c.num_attention_heads;
  hp.n_head_kv = c.num_key_value_heads;
  hp.head_dim = c.head_dim;
  hp.head_dim_explicit = c.head_dim_explicit;
  hp.norm_eps = static_cast<float>(c.rms_norm_eps);
  hp.tie_word_embeddings = c.tie_word_embeddings;
  hp.attention_bias = c.attention_bias;
}

}  // namespace

Result<HfConfig> parse_hf_config(std::string_view json_text, const std::string& name) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(name, ": not valid JSON");
  if (!j.is_object()) return make_error(name, ": not a JSON object");

  auto ai = j.find("architectures");
  if (ai == j.end() || !ai->is_array() || ai->empty() || !(*ai)[0].is_string())
    return make_error(name, ": no 'architectures' list naming the model class");
  if (ai->size() > 1)
    return make_error(name, ": ", ai->size(), " architectures listed; expected exactly one");
  const std::string hf = (*ai)[0].get<std::string>();
  const ModelFamily* fam = family_by_hf_class(hf);
  const ClassDefaults* d = nullptr;
  for (const auto& x : kDefaults)
    if (x.hf_name == hf) d = &x;
  if (!fam || !d)
    return make_error(name, ": unsupported architecture '", printable(hf),
                      "' (supported: ", supported_hf_classes(), ")");

  HfConfig c;
  c.hf_architecture = hf;
  c.family = fam;
  c.arch = std::string(fam->gguf_arch);
  c.permute_qk = fam->traits.permute_qk;
  const Reader r(j, name, d->required);
  QF_CHECK(read_sizes(j, r, *d, c));
  QF_TRY(c.tie_word_embeddings, r.flag("tie_word_embeddings", d->tie));
  if (fam->traits.always_tied) c.tie_word_embeddings = true;
  if (fam->traits.qkv_bias) {
    c.attention_bias = true;
  } else if (fam->traits.fused_qkv || fam->traits.post_norms) {
    QF_TRY(c.attention_bias, r.flag("attention_bias", false));
    if (c.attention_bias)
      return make_error(name, ": attention_bias is not supported for ", c.hf_architecture);
  } else {
    QF_TRY(c.attention_bias, r.flag("attention_bias", false));
  }
  fill_hparams(c);
  QF_CHECK(check_activation(j, r, c));
  QF_CHECK(check_layer_types(j, r, c));
  QF_CHECK(read_rope(j, r, *d, c));
  if (fam->traits.fused_qkv) QF_CHECK(read_phi3(j, r, c));
  if (fam->traits.post_norms) QF_CHECK(read_gemma(j, r, c));
  if (fam->traits.moe) QF_CHECK(read_moe(j, r, c));
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) {
      c.dtype = it->get<std::string>();
      break;
    }
  }
  QF_TRY(c.bos_token_id, r.token_id("bos_token_id"));
  QF_TRY(c.eos_token_id, r.token_id("eos_token_id"));
  QF_TRY(c.pad_token_id, r.token_id("pad_token_id"));
  return c;
}

Result<HfConfig> load_hf_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return make_error(path, ": missing (not a Hugging Face model folder?)");
  QF_TRY(std::string text, read_file_text(path));
  return parse_hf_config(text, path);
}

}  // namespace qforge
