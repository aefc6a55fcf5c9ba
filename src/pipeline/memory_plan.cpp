#include "pipeline/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <filesystem>

#include "formats/hf_source.h"
#include "io/mapped_file.h"
#include "quant/model_quantizer.h"
#include "quant/recipe.h"

namespace qforge {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

const GgufValue* find(const std::vector<GgufKv>& kvs, const std::string& key) {
  for (const auto& [k, v] : kvs)
    if (k == key) return &v;
  return nullptr;
}

std::string arch_of(const std::vector<GgufKv>& kvs) {
  const GgufValue* v = find(kvs, "general.architecture");
  return v && v->as_string() ? *v->as_string() : "";
}

// An integer hyper-parameter; for a per-layer array, element `layer` (or the maximum when
// layer < 0).
std::optional<int64_t> hparam(const std::vector<GgufKv>& kvs, const std::string& key,
                              int64_t layer = -1) {
  const GgufValue* v = find(kvs, arch_of(kvs) + "." + key);
  if (!v) return std::nullopt;
  if (const GgufArray* a = v->as_array()) {
    if (a->items.empty()) return std::nullopt;
    if (layer >= 0 && static_cast<size_t>(layer) < a->items.size())
      return a->items[static_cast<size_t>(layer)].as_int();
    int64_t m = 0;
    for (const auto& it : a->items) m = std::max(m, it.as_int().value_or(0));
    return m;
  }
  return v->as_int();
}

Result<int64_t> need(const std::vector<GgufKv>& kvs, const std::string& key) {
  auto v = hparam(kvs, key);
  if (!v || *v <= 0)
    return make_error("missing or invalid metadata key '", arch_of(kvs), ".", key, "'");
  return *v;
}

// llama.cpp's sliding-window layers: gemma2 alternates (pattern 2), gemma3 slides five of six
// (pattern 6); a GGUF may state the pattern itself. Pattern n: layer il slides when
// il % n < n - 1.
bool is_swa_layer(const std::vector<GgufKv>& kvs, int64_t il) {
  const std::string arch = arch_of(kvs);
  int64_t pattern = 0;
  if (auto p = hparam(kvs, "attention.sliding_window_pattern"))
    pattern = *p;
  else if (arch == "gemma2")
    pattern = 2;
  else if (arch == "gemma3")
    pattern = 6;
  if (pattern <= 1) return false;
  return il % pattern < pattern - 1;
}

std::string fmt_mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b / 1048576.0);
  return buf;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  const std::string num = s.substr(0, i);
  std::string unit = lower(s.substr(i));
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  if (num.empty() || std::count(num.begin(), num.end(), '.') > 1)
    return make_error("invalid size '", text, "' (e.g. 8GiB, 512MB, 1000000)");
  double mult = 0;
  const std::pair<const char*, double> units[] = {{"", 1},
                                                  {"b", 1},
                                                  {"kb", 1e3},
                                                  {"mb", 1e6},
                                                  {"gb", 1e9},
                                                  {"tb", 1e12},
                                                  {"kib", 1024.0},
                                                  {"mib", 1048576.0},
                                                  {"gib", 1073741824.0},
                                                  {"tib", 1099511627776.0},
                                                  {"k", 1e3},
                                                  {"m", 1e6},
                                                  {"g", 1e9}};
  for (const auto& [u, m] : units)
    if (unit == u) mult = m;
  if (mult == 0)
    return make_error("invalid size '", text,
                      "': unknown unit (bytes, KB/MB/GB/TB = 10^3, KiB/MiB/GiB/TiB = 2^10)");
  const double v = std::strtod(num.c_str(), nullptr) * mult;
  if (!std::isfinite(v) || v < 0 || v > 1.8e19) return make_error("invalid size '", text, "'");
  return static_cast<uint64_t>(std::llround(v));
}

Result<KvCacheSize> kv_cache_size(const std::vector<GgufKv>& kvs, int64_t n_ctx, Type kv_type,
                                  int64_t n_ubatch) {
  if (n_ctx <= 0) return make_error("context size must be positive, not ", n_ctx);
  KvCacheSize kv;
  kv.n_ctx = n_ctx;
  kv.type = kv_type;
  QF_TRY(const int64_t n_layer, need(kvs, "block_count"));
  QF_TRY(const int64_t n_head, need(kvs, "attention.head_count"));
  QF_TRY(const int64_t n_embd, need(kvs, "embedding_length"));
  const int64_t k_len = hparam(kvs, "attention.key_length").value_or(n_embd / n_head);
  const int64_t v_len = hparam(kvs, "attention.value_length").value_or(n_embd / n_head);
  const int64_t n_swa = hparam(kvs, "attention.sliding_window").value_or(0);
  kv.n_layer = n_layer;
  kv.cells = n_ctx;
  for (int64_t il = 0; il < n_layer; ++il) {
    const int64_t n_head_kv = hparam(kvs, "attention.head_count_kv", il).value_or(n_head);
    if (n_head_kv == 0) continue;  // a layer without attention keeps no cache
    int64_t cells = n_ctx;
    if (n_swa > 0 && is_swa_layer(kvs, il)) {
      // llama.cpp's SWA cache holds the window plus one micro-batch, padded to 256 cells
      // (measured: gemma3 probe, window 8, -c 2048 -ub 512 -> "SWA KV cache, size = 768 cells").
      cells = std::min(n_ctx, (n_swa + n_ubatch + 255) / 256 * 256);
      kv.swa_cells = cells;
      ++kv.n_layer_swa;
    }
    QF_TRY(uint64_t krow, row_size(kv_type, static_cast<uint64_t>(n_head_kv * k_len)));
    QF_TRY(uint64_t vrow, row_size(kv_type, static_cast<uint64_t>(n_head_kv * v_len)));
    kv.k_bytes += krow * static_cast<uint64_t>(cells);
    kv.v_bytes += vrow * static_cast<uint64_t>(cells);
  }
  return kv;
}

Result<uint64_t> compute_buffer_bytes(const std::vector<GgufKv>& kvs, int64_t n_ctx,
                                      int64_t n_batch, int n_threads) {
  QF_TRY(const int64_t n_embd, need(kvs, "embedding_length"));
  QF_TRY(const int64_t n_head, need(kvs, "attention.head_count"));
  int64_t n_ff = hparam(kvs, "feed_forward_length").value_or(0);
  n_ff = std::max(n_ff, hparam(kvs, "expert_feed_forward_length").value_or(0));
  const int64_t head_dim = hparam(kvs, "attention.key_length").value_or(n_embd / n_head);
  const int64_t n_head_kv = hparam(kvs, "attention.head_count_kv").value_or(n_head);
  int64_t n_vocab = 0;
  if (const GgufValue* t = find(kvs, "tokenizer.ggml.tokens"))
    if (const GgufArray* a = t->as_array()) n_vocab = static_cast<int64_t>(a->items.size());
  if (n_vocab == 0) n_vocab = hparam(kvs, "vocab_size").value_or(0);
  const int64_t nb = std::min(n_batch, n_ctx);
  const int64_t q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim;
  const int64_t stride = (n_ctx + 15) / 16 * 16;
  int64_t floats = nb * (n_embd + std::max(n_embd, n_ff) + q_dim + 2 * kv_dim + q_dim + 2 * n_ff);
  floats += nb * n_vocab;                     // logits of a micro-batch
  floats += n_ctx * head_dim;                 // RoPE cos + sin tables (half each)
  floats += int64_t{4} * stride * n_threads;  // attention rows per thread
  return static_cast<uint64_t>(floats) * 4;
}

uint64_t runtime_overhead_bytes(const std::vector<GgufKv>& kvs) {
  uint64_t n_vocab = 0;
  if (const GgufValue* t = find(kvs, "tokenizer.ggml.tokens"))
    if (const GgufArray* a = t->as_array()) n_vocab = a->items.size();
  return kRuntimeBaseBytes + n_vocab * 64;
}

Result<Priority> priority_from_name(std::string_view name) {
  const std::string n = lower(name);
  if (n == "quality") return Priority::Quality;
  if (n == "balanced") return Priority::Balanced;
  if (n == "speed") return Priority::Speed;
  return make_error("unknown priority '", name, "' (quality, balanced or speed)");
}

std::string_view priority_name(Priority p) {
  switch (p) {
    case Priority::Quality:
      return "quality";
    case Priority::Balanced:
      return "balanced";
    case Priority::Speed:
      return "speed";
  }
  return "balanced";
}

uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

namespace {

// Without measurements, the prior for "quality passes the default gates": Q4_K_M and the mixes
// above it in llama.cpp's quality ordering (llama-quantize's guidance calls Q4_K_M the balanced
// choice; this repo's ladders on mini and refmodel: Q4_K_M is the smallest mix with mean KLD
// <= 0.05, Q4_0 / Q4_K_S / IQ4_* / Q3_* / Q2_K are not).
bool prior_good(std::string_view mix) {
  for (std::string_view m :
       {"Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "F16", "BF16", "F32"})
    if (m == mix) return true;
  return false;
}

void choose(HardwarePlan& hp) {
  auto& ms = hp.mixes;
  std::optional<size_t> best;
  auto better = [&](size_t i, size_t j) {  // is i preferable to j for the priority?
    const MixPlan &a = ms[i], &b = ms[j];
    switch (hp.options.priority) {
      case Priority::Quality: {
        if (a.measured && b.measured && a.measured->kld_mean && b.measured->kld_mean)
          return *a.measured->kld_mean < *b.measured->kld_mean;
        return a.file_bytes > b.file_bytes;
      }
      case Priority::Speed:
        if (a.measured && b.measured && a.measured->tg_tokens_per_s > 0 &&
            b.measured->tg_tokens_per_s > 0)
          return a.measured->tg_tokens_per_s > b.measured->tg_tokens_per_s;
        return a.file_bytes < b.file_bytes;
      case Priority::Balanced:
        return a.file_bytes < b.file_bytes;
    }
    return false;
  };
  for (size_t i = 0; i < ms.size(); ++i) {
    if (!ms[i].fits_ram) continue;
    if (hp.options.priority != Priority::Quality && !ms[i].known_good) continue;
    if (!best || better(i, *best)) best = i;
  }
  // Quality with nothing good: the best that fits; balanced/speed with nothing passing either.
  if (!best)
    for (size_t i = 0; i < ms.size(); ++i)
      if (ms[i].fits_ram && (!best || ms[i].file_bytes > ms[*best].file_bytes)) best = i;
  hp.recommended = best;
  if (!best) return;
  // Fallback: the next smaller option that fits and passes.
  for (size_t i = 0; i < ms.size(); ++i)
    if (i != *best && ms[i].fits_ram && ms[i].known_good &&
        ms[i].file_bytes < ms[*best].file_bytes &&
        (!hp.fallback || ms[i].file_bytes > ms[*hp.fallback].file_bytes))
      hp.fallback = i;
  const MixPlan& r = ms[*best];
  std::ostringstream why;
  why << r.mix << " (" << priority_name(hp.options.priority) << "): ";
  const bool measured = r.measured.has_value();
  switch (hp.options.priority) {
    case Priority::Quality:
      why << (measured && r.measured->kld_mean ? "lowest measured KLD" : "largest file")
          << " that fits";
      break;
    case Priority::Balanced:
      why << "smallest that fits and whose quality passes the gates"
          << (measured ? " (measured)" : " (prior: Q4_K_M or better)");
      break;
    case Priority::Speed:
      why << (measured && r.measured->tg_tokens_per_s > 0 ? "fastest measured" : "smallest")
          << " that fits and passes the gates";
      break;
  }
  if (!r.known_good) why << "; nothing that fits passes the quality gates";
  why << ", " << fmt_mib(r.total_bytes) << " MiB of " << fmt_mib(hp.options.ram_bytes) << " MiB";
  hp.reason = why.str();
}

}  // namespace

Result<HardwarePlan> make_hardware_plan(const TensorSource& src, const std::string& model_name,
                                        const PlanOptions& opts) {
  HardwarePlan hp;
  hp.model = model_name;
  hp.options = opts;
  hp.architecture = arch_of(src.kvs());
  for (const auto& t : src.tensors()) hp.n_params += t.n_elements();
  QF_TRY(hp.kv, kv_cache_size(src.kvs(), opts.n_ctx, opts.kv_type));
  QF_TRY(const uint64_t compute, compute_buffer_bytes(src.kvs(), opts.n_ctx, 512, opts.n_threads));
  const uint64_t overhead = runtime_overhead_bytes(src.kvs());
  std::vector<std::string> names = opts.mixes;
  if (names.empty())
    for (const auto& m : all_mixes()) names.emplace_back(m.name);
  for (const auto& name : names) {
    ModelQuantizeOptions qo;
    qo.mix = name;
    qo.allow_requantize = true;
    auto plan = plan_quantization(src, qo);
    if (!plan.ok()) return Error{plan.error().message};
    MixPlan m;
    m.mix = std::string(plan->mix->name);
    m.file_bytes = plan->output_file_bytes;
    m.bits_per_weight = hp.n_params ? 8.0 * plan->output_tensor_bytes / hp.n_params : 0;
    m.kv_bytes = hp.kv.bytes();
    m.compute_bytes = compute;
    m.overhead_bytes = overhead;
    m.total_bytes = m.file_bytes + m.kv_bytes + m.compute_bytes + m.overhead_bytes;
    m.fits_ram = m.total_bytes <= opts.ram_bytes;
    m.headroom_bytes = static_cast<int64_t>(opts.ram_bytes) - static_cast<int64_t>(m.total_bytes);
    if (opts.vram_bytes) m.fits_vram = m.total_bytes <= *opts.vram_bytes;
    for (const auto& q : opts.measured)
      if (lower(q.mix) == lower(m.mix)) m.measured = q;
    m.known_good = m.measured ? m.measured->passes : prior_good(m.mix);
    hp.mixes.push_back(std::move(m));
  }
  std::stable_sort(hp.mixes.begin(), hp.mixes.end(),
                   [](const MixPlan& a, const MixPlan& b) { return a.file_bytes > b.file_bytes; });
  for (size_t i = 0; i < hp.mixes.size(); ++i)
    if (!hp.smallest || hp.mixes[i].total_bytes < hp.mixes[*hp.smallest].total_bytes)
      hp.smallest = i;
  choose(hp);
  if (!hp.recommended && hp.smallest) {
    const MixPlan& s = hp.mixes[*hp.smallest];
    hp.missing_bytes = s.total_bytes > opts.ram_bytes ? s.total_bytes - opts.ram_bytes : 0;
    hp.reason = "nothing fits in " + fmt_mib(opts.ram_bytes) + " MiB: the smallest option, " +
                s.mix + ", needs " + fmt_mib(s.total_bytes) + " MiB (" + fmt_mib(hp.missing_bytes) +
                " MiB missing)";
  }
  return hp;
}

nlohmann::json to_json(const KvCacheSize& kv) {
  return {{"n_ctx", kv.n_ctx},
          {"cells", kv.cells},
          {"swa_cells", kv.swa_cells},
          {"n_layer", kv.n_layer},
          {"n_layer_swa", kv.n_layer_swa},
          {"type", lower(type_name(kv.type))},
          {"k_bytes", kv.k_bytes},
          {"v_bytes", kv.v_bytes},
          {"bytes", kv.bytes()}};
}

nlohmann::json to_json(const HardwarePlan& hp) {
  nlohmann::json j;
  j["model"] = hp.model;
  j["architecture"] = hp.architecture;
  j["n_params"] = hp.n_params;
  j["ctx"] = hp.options.n_ctx;
  j["kv_type"] = lower(type_name(hp.options.kv_type));
  j["ram_bytes"] = hp.options.ram_bytes;
  j["ram_source"] = hp.options.ram_source;
  if (hp.options.vram_bytes) j["vram_bytes"] = *hp.options.vram_bytes;
  j["priority"] = std::string(priority_name(hp.options.priority));
  j["kv_cache"] = to_json(hp.kv);
  j["estimate"] =
      "total = file bytes (weights, mapped) + KV cache (llama.cpp's allocation for the cache "
      "type) + compute buffers (qforge engine activations for a 512-token micro-batch, its "
      "logits, RoPE tables, attention rows) + runtime overhead (6 MiB + 64 bytes per vocabulary "
      "entry for the tokenizer)";
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& m : hp.mixes) {
    nlohmann::json e = {{"mix", m.mix},
                        {"file_bytes", m.file_bytes},
                        {"bits_per_weight", m.bits_per_weight},
                        {"kv_bytes", m.kv_bytes},
                        {"compute_bytes", m.compute_bytes},
                        {"overhead_bytes", m.overhead_bytes},
                        {"total_bytes", m.total_bytes},
                        {"fits", m.fits_ram},
                        {"headroom_bytes", m.headroom_bytes},
                        {"quality_passes", m.known_good},
                        {"quality_source", m.measured ? "measured" : "prior"}};
    if (m.fits_vram) e["fits_vram"] = *m.fits_vram;
    if (m.measured) {
      if (m.measured->kld_mean) e["kld_mean"] = *m.measured->kld_mean;
      e["tg_tokens_per_second"] = m.measured->tg_tokens_per_s;
    }
    arr.push_back(e);
  }
  j["mixes"] = arr;
  j["recommended"] = hp.recommended ? nlohmann::json(hp.mixes[*hp.recommended].mix) : nullptr;
  j["fallback"] = hp.fallback ? nlohmann::json(hp.mixes[*hp.fallback].mix) : nullptr;
  j["reason"] = hp.reason;
  if (!hp.recommended) {
    j["missing_bytes"] = hp.missing_bytes;
    if (hp.smallest) j["smallest"] = hp.mixes[*hp.smallest].mix;
  }
  return j;
}

std::string render_plan_table(const HardwarePlan& hp) {
  std::ostringstream o;
  o << "plan for " << hp.model << " (" << hp.architecture << ", "
    << fmt_mib(hp.n_params * 1048576ull / 1000000ull) << " M params), ctx " << hp.options.n_ctx
    << ", KV " << lower(type_name(hp.options.kv_type)) << ", RAM " << fmt_mib(hp.options.ram_bytes)
    << " MiB (" << hp.options.ram_source << ")";
  if (hp.options.vram_bytes) o << ", VRAM " << fmt_mib(*hp.options.vram_bytes) << " MiB";
  o << "\nKV cache: " << fmt_mib(hp.kv.bytes()) << " MiB (" << hp.kv.cells << " cells, "
    << hp.kv.n_layer << " layers";
  if (hp.kv.n_layer_swa)
    o << ", " << hp.kv.n_layer_swa << " sliding with " << hp.kv.swa_cells << " cells";
  o << ")\n\n| mix | file bytes | bits/weight | KV (MiB) | compute+overhead (MiB) | total (MiB) | "
       "fits | headroom (MiB) | quality |\n";
  o << "|---|---:|---:|---:|---:|---:|---|---:|---|\n";
  for (size_t i = 0; i < hp.mixes.size(); ++i) {
    const MixPlan& m = hp.mixes[i];
    char bpw[16];
    std::snprintf(bpw, sizeof bpw, "%.2f", m.bits_per_weight);
    std::string q = m.known_good ? "passes" : "fails";
    q += m.measured ? " (measured)" : " (prior)";
    o << "| " << m.mix << (hp.recommended && *hp.recommended == i ? " **(recommended)**" : "")
      << (hp.fallback && *hp.fallback == i ? " (fallback)" : "") << " | " << m.file_bytes << " | "
      << bpw << " | " << fmt_mib(m.kv_bytes) << " | " << fmt_mib(m.compute_bytes + m.overhead_bytes)
      << " | " << fmt_mib(m.total_bytes) << " | " << (m.fits_ram ? "yes" : "no")
      << (m.fits_vram ? (*m.fits_vram ? ", VRAM yes" : ", VRAM no") : "") << " | "
      << (m.headroom_bytes < 0 ? "-" : "")
      << fmt_mib(static_cast<uint64_t>(std::llabs(m.headroom_bytes))) << " | " << q << " |\n";
  }
  o << "\nRecommendation: " << hp.reason << "\n";
  if (hp.fallback)
    o << "Fallback: " << hp.mixes[*hp.fallback].mix << " (next smaller that fits and passes)\n";
  return o.str();
}

Result<std::vector<MeasuredQuality>> read_measured(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  QF_TRY(std::string text, read_file_text(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("variants") || !j["variants"].is_array())
    return make_error(path, ": not a ladder manifest (no \"variants\" array)");
  std::vector<MeasuredQuality> out;
  for (const auto& v : j["variants"]) {
    if (!v.is_object() || !v.contains("name") || !v["name"].is_string())
      return make_error(path, ": a variant without a name");
    MeasuredQuality q;
    q.mix = v["name"].get<std::string>();
    if (v.contains("kld_mean") && v["kld_mean"].is_number())
      q.kld_mean = v["kld_mean"].get<double>();
    if (v.contains("tg_tokens_per_second") && v["tg_tokens_per_second"].is_number())
      q.tg_tokens_per_s = v["tg_tokens_per_second"].get<double>();
    q.passes = v.value("passes", false);
    out.push_back(q);
  }
  return out;
}

}  // namespace qforge

namespace qforge {
Result<std::unique_ptr<TensorSource>> open_model_source(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    QF_TRY(std::unique_ptr<HfTensorSource> hf, HfTensorSource::open(path));
    return std::unique_ptr<TensorSource>(std::move(hf));
  }
  QF_TRY(GgufFile f, GgufFile::open(path));
  auto file = std::make_shared<const GgufFile>(std::move(f));
  return std::unique_ptr<TensorSource>(std::make_unique<GgufTensorSource>(file));
}
}  // namespace qforge
