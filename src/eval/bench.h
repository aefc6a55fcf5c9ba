// Speed and memory figures a deployer compares (llama-bench's conventions): pp = prompt
// processing of n_prompt tokens in one batch from an empty cache (logits of the last token
// only), tg = generation of n_gen tokens one at a time from an empty cache, each repeated
// `reps` times after one warm-up run; plus time to first token (prompt + first sampled token),
// load time (map + validate), peak RSS, model size.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/process_memory.h"  // peak_rss_bytes()
#include "core/result.h"
#include "engine/kv_cache.h"

namespace qforge {

struct BenchOptions {
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 3;
  int threads = 0;  // 0: all cores
  KvType kv_type = KvType::F16;
};

struct BenchResult {
  std::string model;
  uint64_t file_bytes = 0;
  uint64_t n_params = 0;
  double bits_per_weight = 0;
  int threads = 0;
  KvType kv_type = KvType::F16;
  int n_prompt = 0, n_gen = 0, reps = 0;
  double load_seconds = 0;
  double pp_tokens_per_second = 0, pp_stddev = 0;
  double tg_tokens_per_second = 0, tg_stddev = 0;
  // Medians over the reps: what a gate compares (one disturbed rep moves the mean, as llama-bench
  // reports it, but not the median).
  double pp_median_tokens_per_second = 0, tg_median_tokens_per_second = 0;
  double ttft_ms = 0;
  uint64_t peak_rss_bytes = 0;
};

Result<BenchResult> run_bench(const std::string& model_path, const BenchOptions& opt);

// The one field list of a BenchResult: `qforge bench --json` prints it, the pipeline's isolated
// benchmark step sends it through its pipe (nlohmann ADL). Keys are the field names, kv_type
// its name ("f16"); a key missing on reading keeps the field's default.
void to_json(nlohmann::json& j, const BenchResult& r);
void from_json(const nlohmann::json& j, BenchResult& r);

}  // namespace qforge
