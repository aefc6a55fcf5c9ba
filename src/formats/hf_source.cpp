#include "formats/hf_source.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/fp16.h"
#include "formats/hf_tokenizer.h"
#include "formats/untrusted_text.h"

namespace qforge {
namespace {

// Expected shape (numpy order) of a tensor, from config.json.
enum class Kind { Embd, Norm, Q, KV, O, Qb, KVb, Ob, Up, Down };
// When a tensor must be present.
enum class Need { Always, IfBias, Optional };
enum class Perm { None, Q, K };

struct SlotDef {
  std::string_view gguf;  // suffix after "blk.N." for layer tensors
  std::string_view hf;    // suffix after "model.layers.N."
  Kind kind;
  Need need;
  Perm perm;
};

// Per-layer tensors in the order the reference conversions write them.
constexpr SlotDef kLlamaLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight", Kind::Norm, Need::Always, Perm::None},
    {"attn_q.weight", "self_attn.q_proj.weight", Kind::Q, Need::Always, Perm::Q},
    {"attn_q.bias", "self_attn.q_proj.bias", Kind::Qb, Need::IfBias, Perm::Q},
    {"attn_k.weight", "self_attn.k_proj.weight", Kind::KV, Need::Always, Perm::K},
    {"attn_k.bias", "self_attn.k_proj.bias", Kind::KVb, Need::IfBias, Perm::K},
    {"attn_v.weight", "self_attn.v_proj.weight", Kind::KV, Need::Always, Perm::None},
    {"attn_v.bias", "self_attn.v_proj.bias", Kind::KVb, Need::IfBias, Perm::None},
    {"attn_output.weight", "self_attn.o_proj.weight", Kind::O, Need::Always, Perm::None},
    {"attn_output.bias", "self_attn.o_proj.bias", Kind::Ob, Need::IfBias, Perm::None},
    {"ffn_norm.weight", "post_attention_layernorm.weight", Kind::Norm, Need::Always, Perm::None},
    {"ffn_gate.weight", "mlp.gate_proj.weight", Kind::Up, Need::Always, Perm::None},
    {"ffn_up.weight", "mlp.up_proj.weight", Kind::Up, Need::Always, Perm::None},
    {"ffn_down.weight", "mlp.down_proj.weight", Kind::Down, Need::Always, Perm::None},
};
constexpr SlotDef kQwen2Layer[] = {
    {"attn_norm.weight", "input_layernorm.weight", Kind::Norm, Need::Always, Perm::None},
    {"attn_q.weight", "self_attn.q_proj.weight", Kind::Q, Need::Always, Perm::None},
    {"attn_k.weight", "self_attn.k_proj.weight", Kind::KV, Need::Always, Perm::None},
    {"attn_q.bias", "self_attn.q_proj.bias", Kind::Qb, Need::IfBias, Perm::None},
    {"attn_k.bias", "self_attn.k_proj.bias", Kind::KVb, Need::IfBias, Perm::None},
    {"attn_v.bias", "self_attn.v_proj.bias", Kind::KVb, Need::IfBias, Perm::None},
    {"attn_v.weight", "self_attn.v_proj.weight", Kind::KV, Need::Always, Perm::None},
    {"attn_output.weight", "self_attn.o_proj.weight", Kind::O, Need::Always, Perm::None},
    {"attn_output.bias", "self_attn.o_proj.bias", Kind::Ob, Need::Optional, Perm::None},
    {"ffn_norm.weight", "post_attention_layernorm.weight", Kind::Norm, Need::Always, Perm::None},
    {"ffn_gate.weight", "mlp.gate_proj.weight", Kind::Up, Need::Always, Perm::None},
    {"ffn_up.weight", "mlp.up_proj.weight", Kind::Up, Need::Always, Perm::None},
    {"ffn_down.weight", "mlp.down_proj.weight", Kind::Down, Need::Always, Perm::None},
};

std::vector<uint64_t> expected_shape(Kind k, const HfConfig& c) {
  const uint64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                 kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size, v = c.vocab_size;
  switch (k) {
    case Kind::Embd:
      return {v, h};
    case Kind::Norm:
      return {h};
    case Kind::Q:
      return {q, h};
    case Kind::KV:
      return {kv, h};
    case Kind::O:
      return {h, q};
    case Kind::Qb:
      return {q};
    case Kind::KVb:
      return {kv};
    case Kind::Ob:
      return {h};
    case Kind::Up:
      return {f, h};
    case Kind::Down:
      return {h, f};
  }
  return {};
}

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

uint32_t elem_size(Type t) {
  return t == Type::F32 ? 4 : 2;
}

float load_f32(const uint8_t* p, Type t) {
  if (t == Type::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == Type::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
}

void store_f32(uint8_t* p, Type t, float f) {
  if (t == Type::F32) {
    std::memcpy(p, &f, 4);
    return;
  }
  const uint16_t h = t == Type::F16 ? f32_to_fp16(f) : f32_to_bf16(f);
  std::memcpy(p, &h, 2);
}

// Converts n elements; the same type is copied bit for bit (bf16 -> bf16 keeps every bit).
void convert_elems(const uint8_t* src, Type st, uint8_t* dst, Type dt, uint64_t n) {
  if (st == dt) {
    std::memcpy(dst, src, n * elem_size(st));
    return;
  }
  const uint32_t ss = elem_size(st), ds = elem_size(dt);
  for (uint64_t i = 0; i < n; ++i) store_f32(dst + i * ds, dt, load_f32(src + i * ss, st));
}

}  // namespace

std::optional<OutType> outtype_from_name(std::string_view name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "f32") return OutType::F32;
  if (s == "f16") return OutType::F16;
  if (s == "bf16") return OutType::BF16;
  if (s == "auto") return OutType::Auto;
  return std::nullopt;
}

Result<std::unique_ptr<HfTensorSource>> HfTensorSource::open(const std::string& dir,
                                                             const HfSourceOptions& opts) {
  auto s = std::make_unique<HfTensorSource>(Key{});
  s->dir_ = dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return make_error(dir, ": not a directory (expected a Hugging Face model folder)");
  QF_TRY(s->cfg_, load_hf_config(dir));
  QF_TRY(s->ckpt_, SafetensorsCheckpoint::open_dir(dir));
  QF_CHECK(s->plan(opts));
  return s;
}

Status HfTensorSource::plan(const HfSourceOptions& opts) {
  const HfConfig& c = cfg_;
  std::set<size_t> used;

  struct Want {
    std::string gguf, hf;
    Kind kind;
    bool required;
    uint64_t permute_heads;
  };
  std::vector<Want> wants;
  wants.push_back({"token_embd.weight", "model.embed_tokens.weight", Kind::Embd, true, 0});
  wants.push_back({"output_norm.weight", "model.norm.weight", Kind::Norm, true, 0});
  wants.push_back({"output.weight", "lm_head.weight", Kind::Embd, !c.tie_word_embeddings, 0});
  std::span<const SlotDef> layer = c.arch == "qwen2" ? std::span<const SlotDef>(kQwen2Layer)
                                                     : std::span<const SlotDef>(kLlamaLayer);
  for (uint64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& d : layer) {
      const bool req = d.need == Need::Always || (d.need == Need::IfBias && c.attention_bias);
      uint64_t ph = 0;
      if (c.permute_qk && d.perm == Perm::Q) ph = c.num_attention_heads;
      if (c.permute_qk && d.perm == Perm::K) ph = c.num_key_value_heads;
      wants.push_back(
          {cat("blk.", l, ".", d.gguf), cat("model.layers.", l, ".", d.hf), d.kind, req, ph});
    }

  for (const auto& w : wants) {
    const SafetensorsTensor* t = ckpt_.find(w.hf);
    if (!t) {
      if (w.required)
        return make_error(dir_, ": tensor '", w.hf, "' (", w.gguf,
                          ") is missing from the checkpoint");
      continue;
    }
    const std::string& file = ckpt_.file_of(*t);
    if (!t->type)
      return make_error(file, ": tensor '", w.hf, "': dtype ", t->dtype,
                        " is not supported (F32, F16 or BF16)");
    const auto want = expected_shape(w.kind, c);
    if (t->shape != want)
      return make_error(file, ": tensor '", w.hf, "' has shape ", shape_str(t->shape),
                        " but config.json implies ", shape_str(want));
    const size_t idx = static_cast<size_t>(t - ckpt_.tensors().data());
    used.insert(idx);
    SourceTensor st;
    st.name = w.gguf;
    st.dims.assign(t->shape.rbegin(), t->shape.rend());
    st.type = Type::F32;  // decided below, once the output type is known
    tensors_.push_back(std::move(st));
    slots_.push_back({idx, w.permute_heads});
  }
  for (size_t i = 0; i < ckpt_.tensors().size(); ++i) {
    const auto& t = ckpt_.tensors()[i];
    if (used.count(i)) continue;
    if (t.name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed by every runtime
    return make_error(ckpt_.file_of(t), ": unexpected tensor '", printable(t.name), "' for ",
                      c.hf_architecture, " with ", c.num_hidden_layers, " layers");
  }

  // Output type of the matrices.
  switch (opts.outtype) {
    case OutType::F32:
      matrix_type_ = Type::F32;
      break;
    case OutType::F16:
      matrix_type_ = Type::F16;
      break;
    case OutType::BF16:
      matrix_type_ = Type::BF16;
      break;
    case OutType::Auto: {
      const auto& embd = ckpt_.tensors()[slots_.front().st];
      matrix_type_ = *embd.type == Type::BF16 ? Type::BF16 : Type::F16;
      break;
    }
  }
  for (auto& t : tensors_) {
    t.type = t.dims.size() == 1 ? Type::F32 : matrix_type_;
    t.size = t.n_elements() * elem_size(t.type);
  }

  // Metadata, in the reference conversions' order.
  std::string name = opts.name;
  if (name.empty()) {
    auto p = std::filesystem::path(dir_);
    if (!p.has_filename()) p = p.parent_path();  // "models/mini/"
    name = std::filesystem::absolute(p).lexically_normal().filename().string();
    if (name.empty() || name == ".") name = "model";
  }
  const std::string a = c.arch;
  auto u32 = [](uint64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  kvs_.emplace_back("general.architecture", GgufValue::string(a));
  kvs_.emplace_back("general.name", GgufValue::string(name));
  kvs_.emplace_back(a + ".context_length", u32(c.max_position_embeddings));
  kvs_.emplace_back(a + ".embedding_length", u32(c.hidden_size));
  kvs_.emplace_back(a + ".block_count", u32(c.num_hidden_layers));
  kvs_.emplace_back(a + ".feed_forward_length", u32(c.intermediate_size));
  if (a == "llama") kvs_.emplace_back(a + ".rope.dimension_count", u32(c.head_dim));
  kvs_.emplace_back(a + ".attention.head_count", u32(c.num_attention_heads));
  kvs_.emplace_back(a + ".attention.head_count_kv", u32(c.num_key_value_heads));
  // Runtimes derive the head size as embedding_length / head_count unless told otherwise.
  if (c.head_dim * c.num_attention_heads != c.hidden_size) {
    kvs_.emplace_back(a + ".attention.key_length", u32(c.head_dim));
    kvs_.emplace_back(a + ".attention.value_length", u32(c.head_dim));
  }
  kvs_.emplace_back(a + ".attention.layer_norm_rms_epsilon",
                    GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  kvs_.emplace_back(a + ".rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  if (a == "llama") kvs_.emplace_back(a + ".vocab_size", u32(c.vocab_size));
  kvs_.emplace_back("general.file_type", GgufValue::u32(file_type()));
  QF_TRY(auto tok, load_hf_tokenizer(dir_, c));
  for (auto& kv : tok) kvs_.push_back(std::move(kv));
  return ok_status();
}

uint32_t HfTensorSource::file_type() const {
  switch (matrix_type_) {
    case Type::F32:
      return 0;
    case Type::BF16:
      return 32;
    default:
      return 1;
  }
}

uint64_t HfTensorSource::max_tensor_f32_bytes() const {
  uint64_t m = 0;
  for (const auto& t : tensors_) m = std::max(m, t.n_elements() * 4);
  return m;
}

const std::string& HfTensorSource::hf_name(size_t i) const {
  return ckpt_.tensors()[slots_.at(i).st].name;
}

Result<std::span<const uint8_t>> HfTensorSource::data(size_t i) {
  if (i >= tensors_.size()) return make_error(dir_, ": tensor index ", i, " out of range");
  const SourceTensor& out = tensors_[i];
  const Slot& slot = slots_[i];
  const SafetensorsTensor& st = ckpt_.tensors()[slot.st];
  const Type src_type = *st.type;
  std::span<const uint8_t> src = ckpt_.data(st);
  if (src_type == out.type && slot.permute_heads == 0) return src;  // zero-copy

  buf_.clear();
  buf_.shrink_to_fit();
  buf_.resize(out.size);
  const uint64_t n = out.n_elements();
  if (slot.permute_heads == 0) {
    convert_elems(src.data(), src_type, buf_.data(), out.type, n);
    return std::span<const uint8_t>(buf_);
  }
  // Rows grouped as (heads, 2, head_dim/2) in HF's rotate-half order become (heads, head_dim/2,
  // 2): output row h*hd + 2j + k takes source row h*hd + k*hd/2 + j.
  const uint64_t rows = st.shape[0];
  const uint64_t cols = st.shape.size() > 1 ? st.shape[1] : 1;
  const uint64_t heads = slot.permute_heads;
  if (rows % (2 * heads) != 0)
    return make_error(ckpt_.file_of(st), ": tensor '", st.name, "': ", rows,
                      " rows cannot be split into ", heads, " heads of pairs");
  const uint64_t hd = rows / heads, half = hd / 2;
  const uint32_t ss = elem_size(src_type), ds = elem_size(out.type);
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t h = r / hd, j = (r % hd) / 2, k = r % 2;
    const uint64_t sr = h * hd + k * half + j;
    convert_elems(src.data() + sr * cols * ss, src_type, buf_.data() + r * cols * ds, out.type,
                  cols);
  }
  return std::span<const uint8_t>(buf_);
}

void HfTensorSource::release(size_t i) {
  if (i >= slots_.size()) return;
  ckpt_.release(ckpt_.tensors()[slots_[i].st]);
  buf_.clear();
  buf_.shrink_to_fit();
}

}  // namespace qforge
