#include "engine/model.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "core/fp16.h"

namespace qforge {
namespace {

struct Loader {
  const GgufFile& f;
  std::string arch;

  Error err(std::string_view what) const { return make_error(f.path(), ": ", what); }

  Result<uint64_t> hp(std::string_view key) const {
    const std::string k = arch + "." + std::string(key);
    const GgufValue* v = f.find(k);
    if (!v) return make_error(f.path(), ": missing hyper-parameter '", k, "'");
    auto u = v->as_uint();
    if (!u)
      return make_error(f.path(), ": hyper-parameter '", k, "' is not a non-negative integer");
    return *u;
  }
  std::optional<double> hp_float(std::string_view key) const {
    const GgufValue* v = f.find(arch + "." + std::string(key));
    if (!v) return std::nullopt;
    return v->as_float();
  }

  // An optional integer hyper-parameter: `def` when absent, an error when not an integer.
  Result<int64_t> hp_or(std::string_view key, int64_t def) const {
    if (!f.find(arch + "." + std::string(key))) return def;
    QF_TRY(uint64_t v, hp(key));
    return static_cast<int64_t>(v);
  }
  float hp_float_or(std::string_view key, float def) const {
    auto v = hp_float(key);
    return v ? static_cast<float>(*v) : def;
  }
  const std::string* hp_string(std::string_view key) const {
    const GgufValue* v = f.find(arch + "." + std::string(key));
    return v ? v->as_string() : nullptr;
  }

  const GgufTensorInfo* tensor(const std::string& name) const { return f.find_tensor(name); }

  static std::string dims_str(const std::vector<uint64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }

  Status check_shape(const GgufTensorInfo& t, std::vector<uint64_t> want) const {
    if (t.dims != want)
      return make_error(f.path(), ": tensor '", t.name, "' has shape ", dims_str(t.dims),
                        ", expected ", dims_str(want));
    return ok_status();
  }

  // A 2-D weight {cols, rows}.
  Result<WeightView> matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const GgufTensorInfo* t = tensor(name);
    if (!t) return make_error(f.path(), ": missing tensor '", name, "'");
    QF_CHECK(check_shape(*t, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)}));
    // The codec is checked once the whole structure is known to be valid (see from_gguf), so
    // that a missing or misshapen tensor is reported first.
    const Codec* c = find_codec(t->type);
    auto rs = row_size(t->type, static_cast<uint64_t>(cols));
    if (!rs) return make_error(f.path(), ": tensor '", name, "': ", rs.error().message);
    WeightView w;
    w.data = f.tensor_data(*t).data();
    w.type = t->type;
    w.codec = c && c->dequantize ? c : nullptr;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = *rs;
    return w;
  }

  // A 1-D vector (norm weight, bias) decoded to f32; optional ones return an empty vector.
  Result<std::vector<float>> vec(const std::string& name, int64_t n, bool required) const {
    const GgufTensorInfo* t = tensor(name);
    if (!t) {
      if (required) return make_error(f.path(), ": missing tensor '", name, "'");
      return std::vector<float>{};
    }
    QF_CHECK(check_shape(*t, {static_cast<uint64_t>(n)}));
    auto bytes = f.tensor_data(*t);
    std::vector<float> out(static_cast<size_t>(n));
    switch (t->type) {
      case Type::F32:
        std::memcpy(out.data(), bytes.data(), out.size() * 4);
        break;
      case Type::F16:
      case Type::BF16:
        for (size_t i = 0; i < out.size(); ++i) {
          uint16_t h;
          std::memcpy(&h, bytes.data() + 2 * i, 2);
          out[i] = t->type == Type::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
        }
        break;
      default: {
        const Codec* c = find_codec(t->type);
        if (!c || !c->dequantize)
          return make_error(f.path(), ": tensor '", name, "' has unsupported type ",
                            type_name(t->type));
        c->dequantize(bytes.data(), out.data(), n);
      }
    }
    return out;
  }
};

// What each supported general.architecture switches on in the graph (llama.cpp's graph for
// that architecture). Hyper-parameters come from the file; these are the structural facts the
// file does not state.
struct Family {
  std::string_view arch;
  RopeType rope;
  bool qkv_bias, qk_norm, post_norms, fused, moe, gemma;
  int swa_pattern;  // every swa_pattern-th layer is global, the others slide (0: none)
};

constexpr Family kFamilies[] = {
    // arch       rope              bias   qknorm post   fused  moe    gemma  swa
    {"llama", RopeType::Normal, false, false, false, false, false, false, 0},
    {"qwen2", RopeType::Neox, true, false, false, false, false, false, 0},
    {"qwen3", RopeType::Neox, false, true, false, false, false, false, 0},
    {"qwen3moe", RopeType::Neox, false, true, false, false, true, false, 0},
    {"gemma2", RopeType::Neox, false, false, true, false, false, true, 2},
    {"gemma3", RopeType::Neox, false, true, true, false, false, true, 6},
    {"phi3", RopeType::Neox, false, false, false, true, false, false, 0},
};

const Family* find_family(std::string_view arch) {
  for (const Family& fam : kFamilies)
    if (fam.arch == arch) return &fam;
  return nullptr;
}

std::string supported_list() {
  std::string s;
  for (const Family& fam : kFamilies) s += (s.empty() ? "" : ", ") + std::string(fam.arch);
  return s;
}

// Attention shape and context keys.
Status read_shape(const Loader& L, ModelParams& p) {
  QF_TRY(p.n_embd, L.hp("embedding_length"));
  QF_TRY(p.n_layer, L.hp("block_count"));
  QF_TRY(p.n_ff, L.hp("feed_forward_length"));
  QF_TRY(p.n_head, L.hp("attention.head_count"));
  QF_TRY(p.n_head_kv, L.hp_or("attention.head_count_kv", p.n_head));
  QF_TRY(p.n_ctx_train, L.hp("context_length"));
  p.norm_eps = L.hp_float_or("attention.layer_norm_rms_epsilon", p.norm_eps);
  const auto bad = [&](std::string_view what) { return L.err(what); };
  if (p.n_embd <= 0 || p.n_embd > (1 << 20)) return bad("embedding_length out of range");
  if (p.n_layer <= 0 || p.n_layer > 4096) return bad("block_count out of range");
  if (p.n_ff <= 0 || p.n_ff > (1 << 22)) return bad("feed_forward_length out of range");
  if (p.n_head <= 0 || p.n_head > 4096) return bad("attention.head_count out of range");
  if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0)
    return bad("attention.head_count_kv does not divide attention.head_count");
  if (p.n_ctx_train <= 0) return bad("context_length must be positive");
  // The head size: attention.key_length when given (qwen3, gemma: != n_embd / n_head).
  const bool has_key_len = L.f.find(p.arch + ".attention.key_length") != nullptr;
  if (!has_key_len && p.n_embd % p.n_head != 0)
    return bad("attention.head_count does not divide embedding_length");
  QF_TRY(p.head_dim, L.hp_or("attention.key_length", p.n_embd / p.n_head));
  QF_TRY(int64_t vlen, L.hp_or("attention.value_length", p.head_dim));
  if (p.head_dim <= 0 || p.head_dim > 4096) return bad("attention.key_length out of range");
  if (vlen != p.head_dim)
    return bad("attention.value_length differs from attention.key_length (not supported)");
  QF_TRY(p.n_rot, L.hp_or("rope.dimension_count", p.head_dim));
  if (p.n_rot <= 0 || p.n_rot > p.head_dim || p.n_rot % 2 != 0)
    return bad("rope.dimension_count must be even and at most the head size");
  return ok_status();
}

// RoPE bases and scaling (llama.cpp's rope.* keys).
Status read_rope(const Loader& L, const Family& fam, ModelParams& p) {
  p.rope_type = fam.rope;
  p.rope_freq_base = L.hp_float_or("rope.freq_base", p.rope_freq_base);
  if (!(p.rope_freq_base > 0)) return L.err("rope.freq_base must be positive");
  p.rope.freq_base = p.rope_freq_base;
  float factor = L.hp_float_or("rope.scaling.factor", 0.0f);
  if (factor == 0.0f) {  // the older key holds the frequency scale itself
    const float s = L.hp_float_or("rope.scale_linear", 1.0f);
    factor = s > 0 ? 1.0f / s : 0.0f;
  }
  const std::string* type = L.hp_string("rope.scaling.type");
  const std::string t = type ? *type : (factor != 1.0f ? "linear" : "none");
  if (t == "linear") {
    p.rope.scaling = RopeScaling::Linear;
  } else if (t == "yarn") {
    p.rope.scaling = RopeScaling::Yarn;
  } else if (t != "none" && t != "longrope") {
    return L.err("rope.scaling.type '" + t + "' is not supported (none, linear, yarn, longrope)");
  }
  if (p.rope.scaling != RopeScaling::None) {
    if (!(factor > 0)) return L.err("rope.scaling.factor must be positive");
    p.rope.freq_scale = 1.0f / factor;
  }
  QF_TRY(p.n_ctx_orig, L.hp_or("rope.scaling.original_context_length", p.n_ctx_train));
  p.rope_attn_factor = L.hp_float_or("rope.scaling.attn_factor", 1.0f);
  p.yarn_ext_factor = L.hp_float_or("rope.scaling.yarn_ext_factor", 1.0f);
  p.yarn_beta_fast = L.hp_float_or("rope.scaling.yarn_beta_fast", 32.0f);
  p.yarn_beta_slow = L.hp_float_or("rope.scaling.yarn_beta_slow", 1.0f);
  // Sliding layers: their own base (gemma3's local base, llama.cpp's default 10000), never
  // scaled; without a sliding window they do not occur.
  p.rope_swa = p.rope;
  if (fam.gemma) {
    p.rope_swa.freq_base =
        L.hp_float_or("rope.freq_base_swa", fam.arch == "gemma3" ? 10000.0f : p.rope_freq_base);
    p.rope_swa.freq_scale = 1.0f;
    p.rope_swa.scaling = RopeScaling::None;
  }
  if (!(p.rope_swa.freq_base > 0)) return L.err("rope.freq_base_swa must be positive");
  return ok_status();
}

// Graph switches of the family and the attention / MoE keys that go with them.
Status read_switches(const Loader& L, const Family& fam, ModelParams& p) {
  p.qkv_bias = fam.qkv_bias;
  p.qk_norm = fam.qk_norm;
  p.post_norms = fam.post_norms;
  p.fused_qkv = p.fused_up = fam.fused;
  if (fam.gemma) {
    p.act = Activation::GeluTanh;
    p.embd_scale = std::sqrt(static_cast<float>(p.n_embd));
  }
  p.attn_scale = L.hp_float_or("attention.scale", 0.0f);
  p.attn_softcap = L.hp_float_or("attn_logit_softcapping", 0.0f);
  p.final_softcap = L.hp_float_or("final_logit_softcapping", 0.0f);
  if (p.attn_scale < 0 || p.attn_softcap < 0 || p.final_softcap < 0)
    return L.err("attention.scale and the soft-caps must not be negative");
  QF_TRY(p.n_swa, L.hp_or("attention.sliding_window", 0));
  if (p.n_swa > 0 && fam.swa_pattern > 0) {
    QF_TRY(int64_t pattern, L.hp_or("attention.sliding_window_pattern", fam.swa_pattern));
    if (pattern <= 0) return L.err("attention.sliding_window_pattern must be positive");
    p.swa_layers.resize(static_cast<size_t>(p.n_layer));
    for (int64_t i = 0; i < p.n_layer; ++i)
      p.swa_layers[static_cast<size_t>(i)] = (i % pattern) < pattern - 1 ? 1 : 0;
  } else if (p.n_swa > 0 && fam.arch == "llama") {  // Mistral-style: every layer slides
    p.swa_layers.assign(static_cast<size_t>(p.n_layer), 1);
  } else {
    p.n_swa = 0;  // llama.cpp ignores a window on the others (phi3 writes 0)
  }
  if (fam.moe) {
    QF_TRY(p.n_expert, L.hp("expert_count"));
    QF_TRY(p.n_expert_used, L.hp("expert_used_count"));
    QF_TRY(p.n_ff_exp, L.hp_or("expert_feed_forward_length", p.n_ff));
    if (p.n_expert <= 0 || p.n_expert > 4096) return L.err("expert_count out of range");
    if (p.n_expert_used <= 0 || p.n_expert_used > p.n_expert)
      return L.err("expert_used_count must be between 1 and expert_count");
    if (p.n_ff_exp <= 0 || p.n_ff_exp > (1 << 22))
      return L.err("expert_feed_forward_length out of range");
    if (const GgufValue* v = L.f.find(p.arch + ".expert_weights_norm"))
      p.expert_weights_norm = v->as_bool().value_or(true);
  }
  return ok_status();
}

// The 3-D expert tensor `name` {cols, rows, n_expert} as one view per expert.
Result<std::vector<WeightView>> expert_views(const Loader& L, const std::string& name, int64_t cols,
                                             int64_t rows, int64_t n_expert) {
  const GgufTensorInfo* t = L.tensor(name);
  if (!t) return make_error(L.f.path(), ": missing tensor '", name, "'");
  QF_CHECK(L.check_shape(*t, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows),
                              static_cast<uint64_t>(n_expert)}));
  auto rs = row_size(t->type, static_cast<uint64_t>(cols));
  if (!rs) return make_error(L.f.path(), ": tensor '", name, "': ", rs.error().message);
  const Codec* c = find_codec(t->type);
  std::vector<WeightView> out(static_cast<size_t>(n_expert));
  for (int64_t e = 0; e < n_expert; ++e) {
    WeightView& w = out[static_cast<size_t>(e)];
    w.data = L.f.tensor_data(*t).data() + static_cast<uint64_t>(e * rows) * *rs;
    w.type = t->type;
    w.codec = c && c->dequantize ? c : nullptr;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = *rs;
  }
  return out;
}

Status load_attention(const Loader& L, const ModelParams& p, const std::string& b,
                      LayerWeights& l) {
  const int64_t E = p.n_embd, Q = p.n_q(), kv = p.n_embd_kv();
  if (p.fused_qkv && L.tensor(b + "attn_qkv.weight")) {
    QF_TRY(l.wqkv, L.matrix(b + "attn_qkv.weight", E, Q + 2 * kv));
  } else {
    QF_TRY(l.wq, L.matrix(b + "attn_q.weight", E, Q));
    QF_TRY(l.wk, L.matrix(b + "attn_k.weight", E, kv));
    QF_TRY(l.wv, L.matrix(b + "attn_v.weight", E, kv));
  }
  QF_TRY(l.wo, L.matrix(b + "attn_output.weight", Q, E));
  QF_TRY(l.bq, L.vec(b + "attn_q.bias", Q, p.qkv_bias));
  QF_TRY(l.bk, L.vec(b + "attn_k.bias", kv, p.qkv_bias));
  QF_TRY(l.bv, L.vec(b + "attn_v.bias", kv, p.qkv_bias));
  QF_TRY(l.q_norm, L.vec(b + "attn_q_norm.weight", p.head_dim, p.qk_norm));
  QF_TRY(l.k_norm, L.vec(b + "attn_k_norm.weight", p.head_dim, p.qk_norm));
  QF_TRY(l.post_attn_norm, L.vec(b + "post_attention_norm.weight", E, p.post_norms));
  return ok_status();
}

Status load_ffn(const Loader& L, const ModelParams& p, const std::string& b, LayerWeights& l) {
  const int64_t E = p.n_embd;
  QF_TRY(l.ffn_norm, L.vec(b + "ffn_norm.weight", E, true));
  QF_TRY(l.post_ffw_norm, L.vec(b + "post_ffw_norm.weight", E, p.post_norms));
  if (p.n_expert > 0) {
    QF_TRY(l.ffn_gate_inp, L.matrix(b + "ffn_gate_inp.weight", E, p.n_expert));
    const int64_t F = p.n_ff_exp, X = p.n_expert;
    QF_TRY(l.gate_exps, expert_views(L, b + "ffn_gate_exps.weight", E, F, X));
    QF_TRY(l.up_exps, expert_views(L, b + "ffn_up_exps.weight", E, F, X));
    QF_TRY(l.down_exps, expert_views(L, b + "ffn_down_exps.weight", F, E, X));
    return ok_status();
  }
  if (p.fused_up) {
    QF_TRY(l.ffn_up, L.matrix(b + "ffn_up.weight", E, 2 * p.n_ff));
  } else {
    QF_TRY(l.ffn_gate, L.matrix(b + "ffn_gate.weight", E, p.n_ff));
    QF_TRY(l.ffn_up, L.matrix(b + "ffn_up.weight", E, p.n_ff));
  }
  QF_TRY(l.ffn_down, L.matrix(b + "ffn_down.weight", p.n_ff, E));
  return ok_status();
}

// Optional per-dimension rope factors (n_rot / 2 values).
Status load_rope_factors(const Loader& L, const ModelParams& p, std::vector<float>& freqs,
                         std::vector<float>& lng, std::vector<float>& shrt) {
  const int64_t half = p.n_rot / 2;
  QF_TRY(freqs, L.vec("rope_freqs.weight", half, false));
  QF_TRY(lng, L.vec("rope_factors_long.weight", half, false));
  QF_TRY(shrt, L.vec("rope_factors_short.weight", half, false));
  if (lng.empty() != shrt.empty())
    return L.err("rope_factors_long.weight and rope_factors_short.weight come as a pair");
  for (const auto* v : {&freqs, &lng, &shrt})
    for (float x : *v)
      if (!(x > 0) || !std::isfinite(x)) return L.err("a rope factor is not a positive number");
  return ok_status();
}

// Every weight must have a codec to compute with.
Status check_codecs(const GgufFile& f, const Model& m) {
  std::vector<std::pair<const WeightView*, std::string>> views = {
      {&m.token_embd(), "token_embd.weight"}, {&m.output(), "output.weight"}};
  for (size_t i = 0; i < m.layers().size(); ++i) {
    const LayerWeights& l = m.layers()[i];
    const std::string b = "blk." + std::to_string(i) + ".";
    for (auto [v, n] : {std::pair{&l.wq, "attn_q"},
                        {&l.wk, "attn_k"},
                        {&l.wv, "attn_v"},
                        {&l.wqkv, "attn_qkv"},
                        {&l.wo, "attn_output"},
                        {&l.ffn_gate, "ffn_gate"},
                        {&l.ffn_up, "ffn_up"},
                        {&l.ffn_down, "ffn_down"},
                        {&l.ffn_gate_inp, "ffn_gate_inp"}})
      if (!v->empty()) views.emplace_back(v, b + n + ".weight");
    for (auto [v, n] : {std::pair{&l.gate_exps, "ffn_gate_exps"},
                        {&l.up_exps, "ffn_up_exps"},
                        {&l.down_exps, "ffn_down_exps"}})
      if (!v->empty()) views.emplace_back(&v->front(), b + n + ".weight");
  }
  for (const auto& [v, name] : views)
    if (!v->codec)
      return make_error(f.path(), ": tensor '", name, "' has type ", type_name(v->type),
                        ", which qforge cannot compute with");
  return ok_status();
}

}  // namespace

Result<Model> Model::load(const std::string& path) {
  QF_TRY(GgufFile f, GgufFile::open(path));
  return from_gguf(std::make_shared<const GgufFile>(std::move(f)));
}

Result<Model> Model::from_gguf(std::shared_ptr<const GgufFile> file) {
  const GgufFile& f = *file;
  Model m;
  m.file_ = file;
  Loader L{f, f.architecture()};
  ModelParams& p = m.params_;
  p.arch = L.arch;
  const Family* fam = find_family(p.arch);
  if (!fam)
    return make_error(f.path(), ": unsupported architecture '",
                      p.arch.empty() ? std::string("(none)") : p.arch,
                      "' (supported: ", supported_list(), ")");
  QF_CHECK(read_shape(L, p));
  QF_CHECK(read_rope(L, *fam, p));
  QF_CHECK(read_switches(L, *fam, p));

  const GgufTensorInfo* te = f.find_tensor("token_embd.weight");
  if (!te) return make_error(f.path(), ": missing tensor 'token_embd.weight'");
  if (te->dims.size() != 2 || te->dims[0] != static_cast<uint64_t>(p.n_embd))
    return make_error(f.path(), ": tensor 'token_embd.weight' has shape ",
                      Loader::dims_str(te->dims), ", expected [", p.n_embd, ", n_vocab]");
  p.n_vocab = static_cast<int64_t>(te->dims[1]);
  if (p.n_vocab <= 0) return L.err("empty vocabulary");
  if (const GgufValue* v = f.find(p.arch + ".vocab_size")) {
    auto u = v->as_uint();
    if (!u || *u != static_cast<uint64_t>(p.n_vocab))
      return make_error(f.path(), ": ", p.arch, ".vocab_size disagrees with token_embd.weight (",
                        p.n_vocab, " rows)");
  }
  QF_TRY(m.tok_embd_, L.matrix("token_embd.weight", p.n_embd, p.n_vocab));
  QF_TRY(m.output_norm_, L.vec("output_norm.weight", p.n_embd, true));
  if (f.find_tensor("output.weight")) {
    QF_TRY(m.output_, L.matrix("output.weight", p.n_embd, p.n_vocab));
  } else {
    m.output_ = m.tok_embd_;
    m.tied_ = true;
  }
  QF_CHECK(load_rope_factors(L, p, m.rope_freqs_, m.rope_long_, m.rope_short_));
  m.layers_.resize(static_cast<size_t>(p.n_layer));
  for (int64_t i = 0; i < p.n_layer; ++i) {
    LayerWeights& l = m.layers_[static_cast<size_t>(i)];
    const std::string b = "blk." + std::to_string(i) + ".";
    QF_TRY(l.attn_norm, L.vec(b + "attn_norm.weight", p.n_embd, true));
    QF_CHECK(load_attention(L, p, b, l));
    QF_CHECK(load_ffn(L, p, b, l));
  }
  QF_CHECK(check_codecs(f, m));
  return m;
}

const std::vector<float>& Model::rope_factors(int64_t n_ctx) const {
  if (!rope_freqs_.empty()) return rope_freqs_;
  if (!rope_long_.empty() && n_ctx > params_.n_ctx_orig) return rope_long_;
  return rope_short_;  // empty when the model has no factors
}

void Model::embed(int32_t token, float* out) const {
  tok_embd_.codec->dequantize(tok_embd_.data + static_cast<uint64_t>(token) * tok_embd_.row_bytes,
                              out, params_.n_embd);
}

uint64_t Model::n_params() const {
  uint64_t n = 0;
  for (const auto& t : file_->tensors()) n += t.n_elements();
  return n;
}

}  // namespace qforge
