#include "formats/hf_source.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/fp16.h"
#include "formats/hf_tokenizer.h"
#include "formats/untrusted_text.h"
#include "io/mapped_file.h"

#include <nlohmann/json.hpp>

namespace qforge {
namespace {

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

namespace {

// llama.cpp's Llama-3 rope factors: per rotary pair, a divisor of the frequency, every step in
// float32 arithmetic (torch float32 tensors in the reference converter).
std::vector<float> llama3_rope_factors(const ModelHParams& hp) {
  std::vector<float> out;
  const float dim = static_cast<float>(hp.n_rot);
  const float base = hp.rope_freq_base, factor = hp.rope_scaling_factor;
  const float lo = hp.llama3_low_freq_factor, hi = hp.llama3_high_freq_factor;
  const float old_ctx = static_cast<float>(hp.llama3_orig_ctx);
  const float low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
  const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  for (uint64_t i = 0; i < hp.n_rot; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / dim);
    const float wavelen = two_pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      const float smooth = (old_ctx / wavelen - lo) / (hi - lo);
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

// Counts the entries of tokenizer.json's model.vocab object and added_tokens array in one pass
// over the bytes (a 33 MB Gemma tokenizer.json would take seconds to parse into a DOM). Returns
// 0 for anything it does not understand; the tokenizer loader validates the file properly.
uint64_t count_tokenizer_entries(std::string_view t) {
  struct Level {
    bool object;
    std::string key;  // the key whose value is being read (levels 0 and 1 only)
  };
  std::vector<Level> stack;
  uint64_t vocab = 0, added = 0;
  bool have_vocab = false, expect_key = false;
  std::string last;
  auto at_vocab = [&] {  // inside model.vocab
    return stack.size() == 3 && stack[0].key == "model" && stack[1].key == "vocab";
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch == '"') {
      size_t j = i + 1;
      while (j < t.size() && t[j] != '"') j += t[j] == '\\' ? 2 : 1;
      if (j >= t.size()) return 0;
      if (expect_key) {
        if (at_vocab() && stack[2].object) ++vocab;
        if (stack.size() <= 2) last.assign(t.substr(i + 1, j - i - 1));
      }
      i = j;
    } else if (ch == ':') {
      if (stack.empty() || !stack.back().object) return 0;
      if (stack.size() <= 2) stack.back().key = last;
      expect_key = false;
    } else if (ch == ',') {
      expect_key = !stack.empty() && stack.back().object;
    } else if (ch == '{' || ch == '[') {
      if (at_vocab() && !stack[2].object) ++vocab;  // Unigram: [piece, score] entries
      if (stack.size() == 2 && stack[0].key == "added_tokens" && !stack[1].object) ++added;
      stack.push_back({ch == '{', ""});
      expect_key = ch == '{';
    } else if (ch == '}' || ch == ']') {
      if (stack.empty()) return 0;
      if (at_vocab()) have_vocab = true;
      stack.pop_back();
      expect_key = false;
    }
  }
  return have_vocab && stack.empty() ? vocab + added : 0;
}

// Gemma-3 without tokenizer.model: llama.cpp's count of tokenizer.json's tokens,
// len(model.vocab) + len(added_tokens) (an over-count when added tokens are also in the vocab,
// as in the published Gemma 3 file); it drops the embedding rows past it. 0 when unknown.
uint64_t gemma3_real_vocab(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "tokenizer.model", ec)) return 0;
  auto text = read_file_text((fs::path(dir) / "tokenizer.json").string());
  if (!text) return 0;
  return count_tokenizer_entries(*text);
}

std::string shape_note(ShapeKind k) {
  switch (k) {
    case ShapeKind::QKV:
      return " (fused q, k, v: (num_attention_heads + 2 num_key_value_heads) x head_dim rows)";
    case ShapeKind::GateUp:
      return " (fused gate and up: 2 x intermediate_size rows)";
    case ShapeKind::Router:
      return " (one router row per expert)";
    default:
      return "";
  }
}

}  // namespace

void HfTensorSource::add_generated(std::string name, std::vector<float> values) {
  SourceTensor st;
  st.name = std::move(name);
  st.dims = {values.size()};
  st.type = Type::F32;
  tensors_.push_back(std::move(st));
  Slot slot;
  slot.generated = std::move(values);
  slots_.push_back(std::move(slot));
}

Status HfTensorSource::plan_tensors() {
  const HfConfig& c = cfg_;
  const ModelHParams& hp = c.hp;
  const FamilyTraits& tr = c.family->traits;
  if (hp.rope_scaling == RopeScalingKind::Llama3)
    add_generated("rope_freqs.weight", llama3_rope_factors(hp));
  if (hp.rope_scaling == RopeScalingKind::LongRope) {
    add_generated("rope_factors_long.weight", hp.longrope_long);
    add_generated("rope_factors_short.weight", hp.longrope_short);
  }
  std::set<size_t> used;
  if (tr.always_tied)  // Gemma: lm_head (when a checkpoint has one) is the embedding again
    if (const SafetensorsTensor* t = ckpt_.find("lm_head.weight"))
      used.insert(static_cast<size_t>(t - ckpt_.tensors().data()));

  auto add = [&](const TensorRule& rule, uint64_t layer) -> Status {
    const bool required = rule.need == Need::Always ||
                          (rule.need == Need::IfBias && c.attention_bias) ||
                          (rule.need == Need::IfUntied && !c.tie_word_embeddings);
    if (rule.need == Need::IfUntied && tr.always_tied) return ok_status();
    const std::string gguf = gguf_tensor_name(rule, layer);
    std::vector<uint64_t> want = rule_shape(rule, hp);
    const bool stacked = is_stacked(rule);
    const uint64_t n_parts = stacked ? hp.n_expert : 1;
    std::vector<uint64_t> part_shape = want;
    if (stacked) part_shape.erase(part_shape.begin());
    Slot slot;
    for (uint64_t e = 0; e < n_parts; ++e) {
      const std::string hf = hf_tensor_name(rule, layer, e);
      const SafetensorsTensor* t = ckpt_.find(hf);
      if (!t) {
        if (!required && e == 0) return ok_status();
        if (stacked)
          return make_error(dir_, ": tensor '", hf, "' (expert ", e, " of num_experts ",
                            hp.n_expert, ") is missing from the checkpoint");
        return make_error(dir_, ": tensor '", hf, "' (", gguf, ") is missing from the checkpoint");
      }
      const std::string& file = ckpt_.file_of(*t);
      if (!t->type)
        return make_error(file, ": tensor '", hf, "': dtype ", t->dtype,
                          " is not supported (F32, F16 or BF16)");
      uint64_t keep = 0;
      if (rule.shape == ShapeKind::Embd && gguf == "token_embd.weight" && t->shape.size() == 2 &&
          t->shape[0] > hp.n_vocab && t->shape[1] == hp.n_embd && c.family->name == "gemma3")
        keep = hp.n_vocab * hp.n_embd * elem_size(*t->type);
      if (t->shape != part_shape && keep == 0)
        return make_error(file, ": tensor '", hf, "' has shape ", shape_str(t->shape),
                          " but config.json implies ", shape_str(part_shape),
                          shape_note(rule.shape));
      slot.keep_bytes = keep;
      slot.st.push_back(static_cast<size_t>(t - ckpt_.tensors().data()));
      used.insert(slot.st.back());
    }
    if (stacked) {  // one expert too many means num_experts disagrees with the checkpoint
      const std::string extra = hf_tensor_name(rule, layer, hp.n_expert);
      if (ckpt_.find(extra))
        return make_error(dir_, ": tensor '", extra, "' exists but config.json says num_experts ",
                          hp.n_expert);
    }
    if (tr.permute_qk && rule.transform == Transform::PermuteQ) slot.permute_heads = hp.n_head;
    if (tr.permute_qk && rule.transform == Transform::PermuteK) slot.permute_heads = hp.n_head_kv;
    slot.plus_one = rule.transform == Transform::PlusOne;
    slot.force_f32 = rule.force_f32;
    SourceTensor st;
    st.name = gguf;
    st.dims.assign(want.rbegin(), want.rend());
    st.type = rule.force_f32 ? Type::F32 : Type::F16;  // matrices: decided once the type is known
    tensors_.push_back(std::move(st));
    slots_.push_back(std::move(slot));
    return ok_status();
  };
  const auto& g = c.family->globals;
  for (size_t i = 0; i < c.family->globals_before_layers; ++i) QF_CHECK(add(g[i], 0));
  for (uint64_t l = 0; l < hp.n_layer; ++l)
    for (const auto& rule : c.family->layer) QF_CHECK(add(rule, l));
  for (size_t i = c.family->globals_before_layers; i < g.size(); ++i) QF_CHECK(add(g[i], 0));

  for (size_t i = 0; i < ckpt_.tensors().size(); ++i) {
    const auto& t = ckpt_.tensors()[i];
    if (used.count(i)) continue;
    if (t.name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed by every runtime
    return make_error(ckpt_.file_of(t), ": unexpected tensor '", printable(t.name), "' for ",
                      c.hf_architecture, " with ", hp.n_layer, " layers",
                      tr.moe ? cat(" and ", hp.n_expert, " experts") : std::string());
  }
  return ok_status();
}

Status HfTensorSource::plan(const HfSourceOptions& opts) {
  if (cfg_.family->name == "gemma3") {
    const uint64_t real = gemma3_real_vocab(dir_);
    if (real > 0 && real < cfg_.hp.n_vocab) cfg_.hp.n_vocab = cfg_.vocab_size = real;
  }
  QF_CHECK(plan_tensors());
  const HfConfig& c = cfg_;

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
      matrix_type_ = Type::F16;
      for (size_t i = 0; i < tensors_.size(); ++i)
        if (tensors_[i].name == "token_embd.weight")
          matrix_type_ =
              *ckpt_.tensors()[slots_[i].st.at(0)].type == Type::BF16 ? Type::BF16 : Type::F16;
      break;
    }
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    auto& t = tensors_[i];
    const bool f32 = slots_[i].st.empty() || t.dims.size() == 1 || slots_[i].force_f32;
    t.type = f32 ? Type::F32 : matrix_type_;
    t.size = t.n_elements() * elem_size(t.type);
  }

  // Metadata.
  std::string name = opts.name;
  if (name.empty()) {
    auto p = std::filesystem::path(dir_);
    if (!p.has_filename()) p = p.parent_path();  // "models/mini/"
    name = std::filesystem::absolute(p).lexically_normal().filename().string();
    if (name.empty() || name == ".") name = "model";
  }
  kvs_.emplace_back("general.architecture", GgufValue::string(c.arch));
  kvs_.emplace_back("general.name", GgufValue::string(name));
  for (auto& kv : write_hparams(c.hp)) kvs_.push_back(std::move(kv));
  kvs_.emplace_back("general.file_type", GgufValue::u32(file_type()));
  if (!opts.tokenizer) return ok_status();
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
  static const std::string generated = "(generated)";
  const Slot& s = slots_.at(i);
  return s.st.empty() ? generated : ckpt_.tensors()[s.st.front()].name;
}

// Converts one source tensor (one expert of a stacked tensor) into dst in out_type.
Result<std::span<const uint8_t>> HfTensorSource::convert_part(const SafetensorsTensor& st,
                                                              const Slot& slot, Type out_type,
                                                              uint8_t* dst) {
  const Type src_type = *st.type;
  std::span<const uint8_t> src = ckpt_.data(st);
  if (slot.keep_bytes) src = src.first(slot.keep_bytes);
  const uint64_t n = src.size() / elem_size(src_type);
  const uint32_t ss = elem_size(src_type), ds = elem_size(out_type);
  if (slot.plus_one) {
    for (uint64_t i = 0; i < n; ++i)
      store_f32(dst + i * ds, out_type, load_f32(src.data() + i * ss, src_type) + 1.0f);
    return std::span<const uint8_t>(dst, n * ds);
  }
  if (slot.permute_heads == 0) {
    convert_elems(src.data(), src_type, dst, out_type, n);
    return std::span<const uint8_t>(dst, n * ds);
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
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t h = r / hd, j = (r % hd) / 2, k = r % 2;
    const uint64_t sr = h * hd + k * half + j;
    convert_elems(src.data() + sr * cols * ss, src_type, dst + r * cols * ds, out_type, cols);
  }
  return std::span<const uint8_t>(dst, n * ds);
}

Result<std::span<const uint8_t>> HfTensorSource::data(size_t i) {
  if (i >= tensors_.size()) return make_error(dir_, ": tensor index ", i, " out of range");
  const SourceTensor& out = tensors_[i];
  const Slot& slot = slots_[i];
  if (slot.st.empty())
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(slot.generated.data()),
                                    slot.generated.size() * sizeof(float));
  if (slot.st.size() == 1) {
    const SafetensorsTensor& st = ckpt_.tensors()[slot.st[0]];
    if (*st.type == out.type && slot.permute_heads == 0 && !slot.plus_one) {  // zero-copy
      std::span<const uint8_t> src = ckpt_.data(st);
      return slot.keep_bytes ? src.first(slot.keep_bytes) : src;
    }
  }
  buf_.clear();
  buf_.shrink_to_fit();
  buf_.resize(out.size);
  uint64_t off = 0;
  for (size_t idx : slot.st) {
    QF_TRY(auto part, convert_part(ckpt_.tensors()[idx], slot, out.type, buf_.data() + off));
    off += part.size();
  }
  if (off != out.size)
    return make_error(dir_, ": tensor '", out.name, "': converted ", off, " bytes, expected ",
                      out.size);
  return std::span<const uint8_t>(buf_);
}

void HfTensorSource::release(size_t i) {
  if (i >= slots_.size()) return;
  for (size_t idx : slots_[i].st) ckpt_.release(ckpt_.tensors()[idx]);
  buf_.clear();
  buf_.shrink_to_fit();
}

}  // namespace qforge
