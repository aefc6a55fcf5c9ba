// `qforge plan`: which mix of a model fits a machine, and what it costs.
//
// For every mix the whole-file size comes from plan_quantization() (quant/model_quantizer.h):
// the very planner quantize_model() runs and checks against the GGUF writer, so the figure is
// the byte count `quantize` writes (metadata, tensor infos, alignment padding included).
//
// The KV cache is sized as llama.cpp allocates it for one sequence of n_ctx positions
// (llama_kv_cache / llama_kv_cache_iswa, n_pad 1): per layer, K = row_size(kv_type, n_head_kv(il)
// * key_length) * cells and V likewise with value_length; cells = n_ctx, or for sliding-window
// layers min(n_ctx, n_swa + n_ubatch). Which layers slide: gemma2 every other layer (pattern 2),
// gemma3 five of six (pattern 6), or the GGUF's `{arch}.attention.sliding_window_pattern`.
//
// Compute buffers and runtime overhead are estimates for qforge's own engine (state of the
// art for this repo, documented in docs/ARCHITECTURE.md): the activations engine/forward.cpp
// allocates for a micro-batch of n_batch tokens (x, xn, q, k, v, attn, gate, up in f32), the
// logits of n_batch rows, the RoPE tables and the per-thread attention rows; plus a fixed
// runtime overhead (binary, C++ runtime, tokenizer tables ~ vocab x 64 bytes, allocator slack).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"
#include "formats/tensor_source.h"

namespace qforge {

// "8GiB", "512MB", "123456" (bytes). KB/MB/GB/TB are powers of 10^3, KiB/MiB/GiB/TiB of 2^10;
// a bare number is bytes; case-insensitive units, optional space, decimals allowed ("1.5GiB").
Result<uint64_t> parse_size(std::string_view text);

struct KvCacheSize {
  int64_t n_ctx = 0;
  int64_t cells = 0;      // positions of the full-attention layers
  int64_t swa_cells = 0;  // positions of the sliding-window layers (0 when none)
  int64_t n_layer = 0, n_layer_swa = 0;
  Type type = Type::F16;
  uint64_t k_bytes = 0, v_bytes = 0;
  uint64_t bytes() const { return k_bytes + v_bytes; }
};

// KV-cache bytes of a model (its GGUF metadata) as llama.cpp allocates them. kv_type: F16,
// Q8_0 or F32. Errors name the missing key.
Result<KvCacheSize> kv_cache_size(const std::vector<GgufKv>& kvs, int64_t n_ctx, Type kv_type,
                                  int64_t n_ubatch = 512);

// Estimated compute buffers of qforge's engine for a context of n_ctx and n_batch tokens per
// micro-batch, on n_threads threads (see the header comment).
Result<uint64_t> compute_buffer_bytes(const std::vector<GgufKv>& kvs, int64_t n_ctx,
                                      int64_t n_batch = 512, int n_threads = 2);
// Runtime overhead: a fixed part (binary, C++ runtime, allocator slack, thread stacks) plus the
// tokenizer's tables (64 bytes per vocabulary entry).
constexpr uint64_t kRuntimeBaseBytes = uint64_t{6} << 20;
uint64_t runtime_overhead_bytes(const std::vector<GgufKv>& kvs);

enum class Priority { Quality, Balanced, Speed };
Result<Priority> priority_from_name(std::string_view name);
std::string_view priority_name(Priority p);

// A ladder's measured figures for one mix (from manifest.json, `--measured DIR`).
struct MeasuredQuality {
  std::string mix;
  std::optional<double> kld_mean;
  double tg_tokens_per_s = 0;
  bool passes = false;  // passed the ladder's gates
};

struct PlanOptions {
  int64_t n_ctx = 4096;
  Type kv_type = Type::F16;
  uint64_t ram_bytes = 0;
  std::string ram_source;  // "--ram" or "MemAvailable"
  std::optional<uint64_t> vram_bytes;
  Priority priority = Priority::Balanced;
  std::vector<std::string> mixes;  // empty: every mix of all_mixes()
  std::vector<MeasuredQuality> measured;
  int n_threads = 2;
};

struct MixPlan {
  std::string mix;
  uint64_t file_bytes = 0;  // exact: what `quantize` writes
  double bits_per_weight = 0;
  uint64_t kv_bytes = 0, compute_bytes = 0, overhead_bytes = 0;
  uint64_t total_bytes = 0;  // file + kv + compute + overhead
  bool fits_ram = false;
  int64_t headroom_bytes = 0;  // ram - total (negative: missing)
  std::optional<bool> fits_vram;
  std::optional<MeasuredQuality> measured;
  bool known_good = false;  // quality passes: measured, or by the prior (Q4_K_M or better)
};

struct HardwarePlan {
  std::string model;
  std::string architecture;
  uint64_t n_params = 0;
  PlanOptions options;
  KvCacheSize kv;
  std::vector<MixPlan> mixes;                   // ordered by file size, largest first
  std::optional<size_t> recommended, fallback;  // indices into mixes
  std::string reason;
  uint64_t missing_bytes = 0;      // when nothing fits: smallest total - ram
  std::optional<size_t> smallest;  // the smallest option
};

// Plans every mix for `src` (an F16/BF16/F32 GGUF or an HF folder's source).
Result<HardwarePlan> make_hardware_plan(const TensorSource& src, const std::string& model_name,
                                        const PlanOptions& opts);

// The machine's available memory (MemAvailable of /proc/meminfo), 0 when unknown.
uint64_t mem_available_bytes();

nlohmann::json to_json(const KvCacheSize& kv);
nlohmann::json to_json(const HardwarePlan& plan);
std::string render_plan_table(const HardwarePlan& plan);
// Reads the measured figures of a ladder's OUTDIR/manifest.json.
Result<std::vector<MeasuredQuality>> read_measured(const std::string& dir);

}  // namespace qforge

namespace qforge {
// The tensors of MODEL: an HF folder (converted on the fly to F16 in GGUF conventions, as
// `convert` would write it) or a GGUF file.
Result<std::unique_ptr<TensorSource>> open_model_source(const std::string& path);
}  // namespace qforge
