#include "engine/model.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "core/fp16.h"
#include "formats/model_family.h"
#include "kernels/finite_check.h"

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

// Range checks on the descriptor's hyper-parameters (the file is untrusted).
Status check_shape_params(const Loader& L, const ModelParams& p) {
  const auto bad = [&](std::string_view what) { return L.err(what); };
  if (p.n_embd <= 0 || p.n_embd > (1 << 20)) return bad("embedding_length out of range");
  if (p.n_layer <= 0 || p.n_layer > 4096) return bad("block_count out of range");
  if (p.n_ff <= 0 || p.n_ff > (1 << 22)) return bad("feed_forward_length out of range");
  if (p.n_head <= 0 || p.n_head > 4096) return bad("attention.head_count out of range");
  if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0)
    return bad("attention.head_count_kv does not divide attention.head_count");
  if (p.n_ctx_train <= 0) return bad("context_length must be positive");
  if (p.head_dim <= 0 || p.head_dim > 4096) return bad("attention.key_length out of range");
  if (L.f.find(p.arch + ".attention.value_length")) {
    QF_TRY(uint64_t vlen, L.hp("attention.value_length"));
    if (static_cast<int64_t>(vlen) != p.head_dim)
      return bad("attention.value_length differs from attention.key_length (not supported)");
  }
  if (p.n_rot <= 0 || p.n_rot > p.head_dim || p.n_rot % 2 != 0)
    return bad("rope.dimension_count must be even and at most the head size");
  if (!(p.norm_eps > 0) || !std::isfinite(p.norm_eps))
    return bad("attention.layer_norm_rms_epsilon must be positive");
  return ok_status();
}

// The RoPE of global and sliding layers, with llama.cpp's defaults for absent keys.
Status rope_params(const Loader& L, const ModelHParams& hp, ModelParams& p) {
  p.rope_freq_base = hp.rope_freq_base;
  p.rope.freq_base = hp.rope_freq_base;
  switch (hp.rope_scaling) {
    case RopeScalingKind::Linear:
      p.rope.scaling = RopeScaling::Linear;
      break;
    case RopeScalingKind::Yarn:
      p.rope.scaling = RopeScaling::Yarn;
      break;
    default:  // none; llama3 / longrope are per-dimension factor tensors
      break;
  }
  if (p.rope.scaling != RopeScaling::None) {
    if (!(hp.rope_scaling_factor > 0) || !std::isfinite(hp.rope_scaling_factor))
      return L.err("rope.scaling.factor must be positive");
    p.rope.freq_scale = 1.0f / hp.rope_scaling_factor;
  }
  p.n_ctx_orig = hp.rope_orig_ctx > 0 ? static_cast<int64_t>(hp.rope_orig_ctx) : p.n_ctx_train;
  p.rope_attn_factor = hp.rope_attn_factor > 0 ? hp.rope_attn_factor : 1.0f;
  if (p.rope.scaling == RopeScaling::Yarn && hp.yarn_attn_factor > 0)
    p.rope_attn_factor = hp.yarn_attn_factor;
  p.yarn_ext_factor = hp.yarn_ext_factor >= 0 ? hp.yarn_ext_factor : 1.0f;
  if (hp.yarn_beta_fast > 0) p.yarn_beta_fast = hp.yarn_beta_fast;
  if (hp.yarn_beta_slow > 0) p.yarn_beta_slow = hp.yarn_beta_slow;
  // Sliding layers: their own base, never scaled (llama.cpp: Gemma-3 local layers use
  // freq_base_swa, 10000 when the key is absent).
  p.rope_swa = p.rope;
  if (hp.family->traits.embed_scale_sqrt && hp.sliding_window > 0) {
    p.rope_swa.freq_base = hp.rope_freq_base_swa > 0     ? hp.rope_freq_base_swa
                           : hp.family->name == "gemma3" ? 10000.0f
                                                         : hp.rope_freq_base;
    p.rope_swa.freq_scale = 1.0f;
    p.rope_swa.scaling = RopeScaling::None;
  }
  for (float b : {p.rope.freq_base, p.rope_swa.freq_base})
    if (!(b > 0) || !std::isfinite(b)) return L.err("rope.freq_base must be positive");
  return ok_status();
}

// ModelParams from the architecture descriptor (formats/model_family.h): the family's static
// graph switches plus the file's hyper-parameters.
Status params_from_descriptor(const Loader& L, const ModelHParams& hp, ModelParams& p) {
  const FamilyTraits& t = hp.family->traits;
  p.n_embd = static_cast<int64_t>(hp.n_embd);
  p.n_layer = static_cast<int64_t>(hp.n_layer);
  p.n_ff = static_cast<int64_t>(hp.n_ff);
  p.n_head = static_cast<int64_t>(hp.n_head);
  p.n_head_kv = static_cast<int64_t>(hp.n_head_kv);
  p.head_dim = static_cast<int64_t>(hp.head_dim);
  p.n_rot = static_cast<int64_t>(hp.n_rot);
  p.n_ctx_train = static_cast<int64_t>(hp.n_ctx_train);
  p.norm_eps = hp.norm_eps;
  QF_CHECK(check_shape_params(L, p));
  p.rope_type = t.rope == RopeLayout::Neox ? RopeType::Neox : RopeType::Normal;
  QF_CHECK(rope_params(L, hp, p));
  p.act = t.act;
  p.qkv_bias = t.qkv_bias;
  p.qk_norm = t.qk_norm;
  p.post_norms = t.post_norms;
  p.fused_qkv = t.fused_qkv;
  p.fused_up = t.fused_gate_up;
  if (t.embed_scale_sqrt) p.embd_scale = std::sqrt(static_cast<float>(p.n_embd));
  p.attn_scale = hp.attn_scale();
  p.attn_softcap = hp.attn_softcap;
  p.final_softcap = hp.final_softcap;
  for (float v : {p.attn_scale, p.attn_softcap, p.final_softcap})
    if (!(v >= 0) || !std::isfinite(v))
      return L.err("attention.scale and the soft-caps must be finite and not negative");
  if (hp.sliding_window > 0 && hp.sliding_pattern != 1) {
    p.n_swa = static_cast<int64_t>(hp.sliding_window);
    p.swa_layers.resize(static_cast<size_t>(p.n_layer));
    for (int64_t i = 0; i < p.n_layer; ++i)
      p.swa_layers[static_cast<size_t>(i)] = hp.is_sliding(static_cast<uint64_t>(i)) ? 1 : 0;
  }
  if (t.moe) {
    p.n_expert = static_cast<int64_t>(hp.n_expert);
    p.n_expert_used = static_cast<int64_t>(hp.n_expert_used);
    p.n_ff_exp = hp.n_ff_exp > 0 ? static_cast<int64_t>(hp.n_ff_exp) : p.n_ff;
    if (p.n_expert > 4096) return L.err("expert_count out of range");
    if (p.n_ff_exp > (1 << 22)) return L.err("expert_feed_forward_length out of range");
    p.expert_weights_norm = hp.expert_weights_norm;
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
  if (p.arch.empty()) return make_error(f.path(), ": unsupported architecture '(none)'");
  QF_TRY(ModelHParams hp, read_hparams(f));
  QF_CHECK(params_from_descriptor(L, hp, p));

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
  QF_CHECK(check_tensors_finite(f, FiniteScope::Cheap));  // NaN/Inf norms or block scales
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
