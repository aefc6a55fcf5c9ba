#include "formats/hf_config.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "formats/untrusted_text.h"
#include "io/mapped_file.h"

namespace qforge {
namespace {

using nlohmann::json;

// transformers' defaults for the keys a config.json may leave out (LlamaConfig, MistralConfig,
// Qwen2Config). num_key_value_heads = 0 means "same as num_attention_heads".
struct ArchDefaults {
  std::string_view hf_name;
  std::string_view arch;
  bool permute_qk;
  uint64_t vocab, hidden, ffn, layers, heads, kv_heads, max_pos;
  double rms_eps, rope_theta;
};
constexpr ArchDefaults kArchs[] = {
    {"LlamaForCausalLM", "llama", true, 32000, 4096, 11008, 32, 32, 0, 2048, 1e-6, 10000.0},
    {"MistralForCausalLM", "llama", true, 32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-6, 10000.0},
    {"Qwen2ForCausalLM", "qwen2", false, 151936, 4096, 22016, 32, 32, 32, 32768, 1e-6, 10000.0},
};

// Bound for every size from the file, so that products of a few of them cannot overflow.
constexpr uint64_t kMaxDim = 1ull << 31;

class Reader {
 public:
  Reader(const json& j, const std::string& name) : j_(j), name_(name) {}

  // A positive integer key, or `def` when absent/null.
  Result<uint64_t> dim(const char* key, uint64_t def) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return def;
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 ||
        static_cast<uint64_t>(it->get<int64_t>()) > kMaxDim)
      return make_error(name_, ": '", key, "' must be a positive integer below 2^31, got ",
                        printable(it->dump()));
    return static_cast<uint64_t>(it->get<int64_t>());
  }
  Result<double> number(const json& obj, const char* key, double def) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return def;
    if (!it->is_number() || !(it->get<double>() > 0))
      return make_error(name_, ": '", key, "' must be a positive number, got ",
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

 private:
  const json& j_;
  const std::string& name_;
};

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
  const ArchDefaults* d = nullptr;
  for (const auto& a : kArchs)
    if (a.hf_name == hf) d = &a;
  if (!d)
    return make_error(name, ": unsupported architecture '", printable(hf),
                      "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");

  HfConfig c;
  c.hf_architecture = hf;
  c.arch = std::string(d->arch);
  c.permute_qk = d->permute_qk;
  Reader r(j, name);
  QF_TRY(c.vocab_size, r.dim("vocab_size", d->vocab));
  QF_TRY(c.hidden_size, r.dim("hidden_size", d->hidden));
  QF_TRY(c.intermediate_size, r.dim("intermediate_size", d->ffn));
  QF_TRY(c.num_hidden_layers, r.dim("num_hidden_layers", d->layers));
  QF_TRY(c.num_attention_heads, r.dim("num_attention_heads", d->heads));
  QF_TRY(c.num_key_value_heads,
         r.dim("num_key_value_heads", d->kv_heads ? d->kv_heads : c.num_attention_heads));
  QF_TRY(c.max_position_embeddings, r.dim("max_position_embeddings", d->max_pos));
  QF_TRY(c.rms_norm_eps, r.number(j, "rms_norm_eps", d->rms_eps));
  c.head_dim_explicit = j.contains("head_dim") && !j["head_dim"].is_null();
  if (!c.head_dim_explicit && c.hidden_size % c.num_attention_heads != 0)
    return make_error(name, ": hidden_size ", c.hidden_size, " is not a multiple of ",
                      "num_attention_heads ", c.num_attention_heads);
  QF_TRY(c.head_dim, r.dim("head_dim", c.hidden_size / c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return make_error(name, ": num_attention_heads ", c.num_attention_heads,
                      " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
  if (c.head_dim % 2 != 0) return make_error(name, ": head_dim ", c.head_dim, " is odd");

  // rope_theta: top-level in older files, under rope_parameters (transformers 5) in newer ones.
  double theta = d->rope_theta;
  auto rp = j.find("rope_parameters");
  if (rp != j.end() && rp->is_object() && rp->contains("rope_theta")) {
    QF_TRY(theta, r.number(*rp, "rope_theta", d->rope_theta));
  } else {
    QF_TRY(theta, r.number(j, "rope_theta", d->rope_theta));
  }
  c.rope_theta = theta;
  // Scaled RoPE variants change the frequencies; refuse rather than write a wrong model.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_object()) continue;
    auto ty = it->find("rope_type");
    if (ty == it->end()) ty = it->find("type");
    if (ty != it->end() && ty->is_string() && ty->get<std::string>() != "default")
      return make_error(name, ": ", key, ".rope_type '", printable(ty->get<std::string>()),
                        "' is not supported (only default RoPE)");
  }

  QF_TRY(c.tie_word_embeddings, r.flag("tie_word_embeddings", false));
  if (c.arch == "qwen2") {
    c.attention_bias = true;
  } else {
    QF_TRY(c.attention_bias, r.flag("attention_bias", false));
  }
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
