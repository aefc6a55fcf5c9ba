// libFuzzer target for the Hugging Face input parsers: the first byte picks the parser
// (safetensors file, SentencePiece tokenizer.model, config.json, tokenizer.json), the rest is
// its input. A tokenizer.json that parses must give a consistent vocabulary (one type per token,
// a registry pre-tokenizer, special ids inside) that the engine's tokenizer builds from or
// refuses cleanly. Any
// byte string must parse or give a non-empty one-line error, never crash or read out of bounds;
// what parses must be consistent (every safetensors tensor's bytes inside the buffer, sized
// dtype x shape, pairwise disjoint; every SentencePiece byte piece spelled <0xHH>).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "engine/tokenizer.h"
#include "formats/hf_config.h"
#include "formats/hf_tokenizer.h"
#include "formats/model_family.h"
#include "formats/pretokenizer_registry.h"
#include "formats/safetensors.h"

namespace {

template <class R>
bool failed_cleanly(const R& r) {
  if (r.ok()) return false;
  const auto& m = r.error().message;
  if (m.empty() || m.find('\n') != std::string::npos) std::abort();
  return true;
}

void fuzz_safetensors(std::span<const uint8_t> b) {
  auto f = qforge::SafetensorsFile::parse(b, "fuzz.safetensors");
  if (failed_cleanly(f)) return;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& t : f->tensors()) {
    if (f->data_offset() + t.end > b.size() || t.begin > t.end) std::abort();
    auto es = qforge::safetensors_dtype_size(t.dtype);
    if (!es || t.n_elements() * *es != t.n_bytes()) std::abort();
    if (f->data(t).size() != t.n_bytes()) std::abort();
    if (t.n_bytes()) ranges.emplace_back(t.begin, t.end);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) std::abort();
}

void fuzz_sentencepiece(std::span<const uint8_t> b) {
  auto m = qforge::parse_sentencepiece_model(b, "fuzz.model");
  if (failed_cleanly(m)) return;
  if (m->pieces.empty()) std::abort();
  for (const auto& p : m->pieces) {
    if (p.text.empty()) std::abort();
    if (p.type == qforge::TokenType::Byte &&
        (p.text.size() != 6 || p.text.compare(0, 3, "<0x") != 0))
      std::abort();
  }
}

void fuzz_config(std::span<const uint8_t> b) {
  std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
  auto c = qforge::parse_hf_config(text, "fuzz/config.json");
  if (failed_cleanly(c)) return;
  if (c->num_attention_heads == 0 || c->num_key_value_heads == 0 || c->head_dim % 2 != 0 ||
      c->num_attention_heads % c->num_key_value_heads != 0)
    std::abort();
  // The descriptor's hyper-parameters (rope scaling, longrope factors, Gemma pattern and
  // soft-caps, experts) must be internally consistent and write / read back through the one
  // GGUF key table unchanged.
  const qforge::ModelHParams& hp = c->hp;
  if (!c->family || hp.family != c->family || hp.n_rot == 0 || hp.n_rot % 2 != 0 ||
      hp.n_rot > hp.head_dim)
    std::abort();
  using K = qforge::RopeScalingKind;
  if ((hp.rope_scaling == K::Linear || hp.rope_scaling == K::Yarn ||
       hp.rope_scaling == K::Llama3) &&
      !(hp.rope_scaling_factor > 0))
    std::abort();
  if (hp.rope_scaling == K::LongRope &&
      (hp.longrope_short.size() != hp.n_rot / 2 || hp.longrope_long.size() != hp.n_rot / 2 ||
       hp.rope_orig_ctx == 0 || !(hp.rope_attn_factor >= 1.0f)))
    std::abort();
  if (c->family->traits.moe && (hp.n_expert == 0 || hp.n_expert_used == 0 ||
                                hp.n_expert_used > hp.n_expert || hp.n_ff_exp == 0))
    std::abort();
  if (hp.sliding_pattern != 1 && hp.sliding_pattern != c->family->traits.sliding_pattern)
    std::abort();
  if (!(hp.attn_scale() > 0) || hp.attn_softcap < 0 || hp.final_softcap < 0) std::abort();
  std::vector<qforge::GgufKv> kvs = qforge::write_hparams(hp);
  kvs.emplace_back("general.architecture",
                   qforge::GgufValue::string(std::string(c->family->gguf_arch)));
  auto back = qforge::read_hparams(
      kvs,
      [&](std::string_view n) {
        return (n == "rope_freqs.weight" && hp.rope_scaling == K::Llama3) ||
               (n == "rope_factors_long.weight" && hp.rope_scaling == K::LongRope);
      },
      "fuzz.gguf");
  if (failed_cleanly(back)) return;  // e.g. sizes past what a u32 KV holds are refused there
  if (back->n_embd != hp.n_embd || back->n_layer != hp.n_layer || back->n_head != hp.n_head ||
      back->n_head_kv != hp.n_head_kv || back->head_dim != hp.head_dim ||
      back->rope_scaling != hp.rope_scaling || back->n_expert != hp.n_expert)
    std::abort();
  for (uint64_t il = 0; il < std::min<uint64_t>(hp.n_layer, 64); ++il)
    if (back->is_sliding(il) != hp.is_sliding(il) || back->rope_base(il) != hp.rope_base(il) ||
        back->rope_freq_scale(il) != hp.rope_freq_scale(il))
      std::abort();
}

void fuzz_tokenizer_json(std::span<const uint8_t> b) {
  std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
  qforge::HfConfig cfg;
  cfg.arch = "llama";
  cfg.vocab_size = 300;
  auto v = qforge::parse_hf_tokenizer_json(text, "fuzz/tokenizer.json", cfg);
  if (failed_cleanly(v)) return;
  const size_t n = v->tokens.size();
  if (n != cfg.vocab_size || v->token_types.size() != n) std::abort();
  if (!v->scores.empty() && v->scores.size() != n) std::abort();
  if (v->model == "gpt2" && !qforge::find_pre_tokenizer(v->pre)) std::abort();
  if (v->model != "gpt2" && v->model != "llama") std::abort();
  for (const auto& id : {v->bos, v->eos, v->unk, v->pad})
    if (id && (*id < 0 || static_cast<size_t>(*id) >= n)) std::abort();
  auto vocab = qforge::Vocab::build(*v, "fuzz");
  if (failed_cleanly(vocab)) return;  // e.g. an added token repeating a vocabulary text
  auto tok = qforge::Tokenizer::from_vocab(std::move(vocab).value());
  if (!tok.ok()) std::abort();
  for (int32_t id : tok->encode("Hello, World! 123 \xC3\xA9\t<s>", true, true))
    if (id < 0 || static_cast<size_t>(id) >= n) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      fuzz_safetensors(rest);
      break;
    case 1:
      fuzz_sentencepiece(rest);
      break;
    case 2:
      fuzz_config(rest);
      break;
    default:
      fuzz_tokenizer_json(rest);
      break;
  }
  return 0;
}
