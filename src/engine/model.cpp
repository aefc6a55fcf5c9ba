#include "engine/model.h"

#include <cstring>
#include <optional>

#include "core/fp16.h"
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
  if (p.arch == "llama") {
    p.rope_type = RopeType::Normal;
  } else if (p.arch == "qwen2") {
    p.rope_type = RopeType::Neox;
  } else {
    return make_error(f.path(), ": unsupported architecture '",
                      p.arch.empty() ? std::string("(none)") : p.arch,
                      "' (supported: llama, qwen2)");
  }
  QF_TRY(p.n_embd, L.hp("embedding_length"));
  QF_TRY(p.n_layer, L.hp("block_count"));
  QF_TRY(p.n_ff, L.hp("feed_forward_length"));
  QF_TRY(p.n_head, L.hp("attention.head_count"));
  p.n_head_kv = p.n_head;
  if (f.find(p.arch + ".attention.head_count_kv")) {
    QF_TRY(p.n_head_kv, L.hp("attention.head_count_kv"));
  }
  QF_TRY(p.n_ctx_train, L.hp("context_length"));
  if (auto e = L.hp_float("attention.layer_norm_rms_epsilon")) p.norm_eps = static_cast<float>(*e);
  if (auto b = L.hp_float("rope.freq_base")) p.rope_freq_base = static_cast<float>(*b);
  const auto bad = [&](std::string_view what) { return L.err(what); };
  if (p.n_embd <= 0 || p.n_embd > (1 << 20)) return bad("embedding_length out of range");
  if (p.n_layer <= 0 || p.n_layer > 4096) return bad("block_count out of range");
  if (p.n_ff <= 0 || p.n_ff > (1 << 22)) return bad("feed_forward_length out of range");
  if (p.n_head <= 0 || p.n_embd % p.n_head != 0)
    return bad("attention.head_count does not divide embedding_length");
  if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0)
    return bad("attention.head_count_kv does not divide attention.head_count");
  if (p.n_ctx_train <= 0) return bad("context_length must be positive");
  if (!(p.rope_freq_base > 0)) return bad("rope.freq_base must be positive");
  p.head_dim = p.n_embd / p.n_head;
  p.n_rot = p.head_dim;
  if (f.find(p.arch + ".rope.dimension_count")) {
    QF_TRY(p.n_rot, L.hp("rope.dimension_count"));
  }
  if (p.n_rot <= 0 || p.n_rot > p.head_dim || p.n_rot % 2 != 0)
    return bad("rope.dimension_count must be even and at most the head size");

  const GgufTensorInfo* te = f.find_tensor("token_embd.weight");
  if (!te) return make_error(f.path(), ": missing tensor 'token_embd.weight'");
  if (te->dims.size() != 2 || te->dims[0] != static_cast<uint64_t>(p.n_embd))
    return make_error(f.path(), ": tensor 'token_embd.weight' has shape ",
                      Loader::dims_str(te->dims), ", expected [", p.n_embd, ", n_vocab]");
  p.n_vocab = static_cast<int64_t>(te->dims[1]);
  if (p.n_vocab <= 0) return bad("empty vocabulary");
  if (const GgufValue* v = f.find(p.arch + ".vocab_size")) {
    auto u = v->as_uint();
    if (!u || *u != static_cast<uint64_t>(p.n_vocab))
      return make_error(f.path(), ": ", p.arch, ".vocab_size disagrees with token_embd.weight (",
                        p.n_vocab, " rows)");
  }
  const int64_t kv = p.n_embd_kv();
  QF_TRY(m.tok_embd_, L.matrix("token_embd.weight", p.n_embd, p.n_vocab));
  QF_TRY(m.output_norm_, L.vec("output_norm.weight", p.n_embd, true));
  if (f.find_tensor("output.weight")) {
    QF_TRY(m.output_, L.matrix("output.weight", p.n_embd, p.n_vocab));
  } else {
    m.output_ = m.tok_embd_;
    m.tied_ = true;
  }
  const bool biases = p.arch == "qwen2";
  m.layers_.resize(static_cast<size_t>(p.n_layer));
  for (int64_t i = 0; i < p.n_layer; ++i) {
    LayerWeights& l = m.layers_[static_cast<size_t>(i)];
    const std::string b = "blk." + std::to_string(i) + ".";
    QF_TRY(l.attn_norm, L.vec(b + "attn_norm.weight", p.n_embd, true));
    QF_TRY(l.wq, L.matrix(b + "attn_q.weight", p.n_embd, p.n_embd));
    QF_TRY(l.wk, L.matrix(b + "attn_k.weight", p.n_embd, kv));
    QF_TRY(l.wv, L.matrix(b + "attn_v.weight", p.n_embd, kv));
    QF_TRY(l.wo, L.matrix(b + "attn_output.weight", p.n_embd, p.n_embd));
    QF_TRY(l.bq, L.vec(b + "attn_q.bias", p.n_embd, biases));
    QF_TRY(l.bk, L.vec(b + "attn_k.bias", kv, biases));
    QF_TRY(l.bv, L.vec(b + "attn_v.bias", kv, biases));
    QF_TRY(l.ffn_norm, L.vec(b + "ffn_norm.weight", p.n_embd, true));
    QF_TRY(l.ffn_gate, L.matrix(b + "ffn_gate.weight", p.n_embd, p.n_ff));
    QF_TRY(l.ffn_up, L.matrix(b + "ffn_up.weight", p.n_embd, p.n_ff));
    QF_TRY(l.ffn_down, L.matrix(b + "ffn_down.weight", p.n_ff, p.n_embd));
  }
  // Every weight must have a codec to compute with.
  std::vector<std::pair<const WeightView*, std::string>> views = {
      {&m.tok_embd_, "token_embd.weight"}, {&m.output_, "output.weight"}};
  for (int64_t i = 0; i < p.n_layer; ++i) {
    const LayerWeights& l = m.layers_[static_cast<size_t>(i)];
    const std::string b = "blk." + std::to_string(i) + ".";
    for (auto [v, n] : {std::pair{&l.wq, "attn_q"},
                        {&l.wk, "attn_k"},
                        {&l.wv, "attn_v"},
                        {&l.wo, "attn_output"},
                        {&l.ffn_gate, "ffn_gate"},
                        {&l.ffn_up, "ffn_up"},
                        {&l.ffn_down, "ffn_down"}})
      views.emplace_back(v, b + n + ".weight");
  }
  for (const auto& [v, name] : views)
    if (!v->codec)
      return make_error(f.path(), ": tensor '", name, "' has type ", type_name(v->type),
                        ", which qforge cannot compute with");
  QF_CHECK(check_tensors_finite(f, FiniteScope::Cheap));  // NaN/Inf norms or block scales
  return m;
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
