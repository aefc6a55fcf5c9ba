#include "eval/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "engine/forward.h"
#include "engine/sampler.h"

namespace qforge {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0;
}

}  // namespace

Result<BenchResult> run_bench(const std::string& model_path, const BenchOptions& opt) {
  if (opt.n_prompt < 1 || opt.n_gen < 1 || opt.reps < 1)
    return make_error("bench: prompt, generation and repetition counts must be positive");
  BenchResult r;
  r.model = model_path;
  const double t0 = now_s();
  QF_TRY(Model model, Model::load(model_path));
  r.load_seconds = now_s() - t0;
  const ModelParams& p = model.params();
  const int64_t n_ctx = std::max<int64_t>(opt.n_prompt + 1, opt.n_gen);
  if (n_ctx > p.n_ctx_train)
    return make_error(model_path, ": bench needs ", n_ctx,
                      " positions, more than the model's context length ", p.n_ctx_train);
  ThreadPool pool(opt.threads);
  r.threads = pool.size();
  r.file_bytes = model.file().file_size();
  r.n_params = model.n_params();
  r.bits_per_weight =
      r.n_params ? 8.0 * static_cast<double>(model.weight_bytes()) / static_cast<double>(r.n_params)
                 : 0;
  r.n_prompt = opt.n_prompt;
  r.n_gen = opt.n_gen;
  r.reps = opt.reps;
  r.kv_type = opt.kv_type;
  Context ctx(model, n_ctx, pool, opt.n_prompt, opt.kv_type);
  // Deterministic pseudo-random prompt tokens (llama-bench also uses arbitrary ids).
  std::vector<int32_t> prompt(static_cast<size_t>(opt.n_prompt));
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (auto& t : prompt) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(p.n_vocab));
  }
  std::vector<double> pp, tg;
  for (int rep = 0; rep <= opt.reps; ++rep) {  // rep 0 is the warm-up
    ctx.clear();
    double a = now_s();
    QF_CHECK(ctx.decode(prompt, 1));
    const double pp_s = now_s() - a;
    ctx.clear();
    int32_t tok = prompt[0];
    a = now_s();
    for (int i = 0; i < opt.n_gen; ++i) {
      QF_CHECK(ctx.decode(std::span<const int32_t>(&tok, 1), 1));
      tok = argmax(ctx.logits());
    }
    const double tg_s = now_s() - a;
    if (rep > 0) {
      pp.push_back(opt.n_prompt / pp_s);
      tg.push_back(opt.n_gen / tg_s);
    }
  }
  mean_sd(pp, r.pp_tokens_per_second, r.pp_stddev);
  mean_sd(tg, r.tg_tokens_per_second, r.tg_stddev);
  r.pp_median_tokens_per_second = median_of(pp);
  r.tg_median_tokens_per_second = median_of(tg);
  // Time to first token: the prompt processed and the first token picked.
  ctx.clear();
  const double a = now_s();
  QF_CHECK(ctx.decode(prompt, 1));
  volatile int32_t first = argmax(ctx.logits());
  (void)first;
  r.ttft_ms = 1000.0 * (now_s() - a);
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

// clang-format off
#define QF_BENCH_FIELDS(X)                                                                       \
  X(model) X(file_bytes) X(n_params) X(bits_per_weight) X(threads) X(n_prompt) X(n_gen) X(reps) \
  X(load_seconds) X(pp_tokens_per_second) X(pp_stddev) X(tg_tokens_per_second) X(tg_stddev)     \
  X(pp_median_tokens_per_second) X(tg_median_tokens_per_second) X(ttft_ms) X(peak_rss_bytes)
// clang-format on

void to_json(nlohmann::json& j, const BenchResult& r) {
  j = nlohmann::json::object();
#define QF_PUT(field) j[#field] = r.field;
  QF_BENCH_FIELDS(QF_PUT)
#undef QF_PUT
  j["kv_type"] = std::string(kv_type_name(r.kv_type));
}

void from_json(const nlohmann::json& j, BenchResult& r) {
#define QF_GET(field) r.field = j.value(#field, decltype(r.field){});
  QF_BENCH_FIELDS(QF_GET)
#undef QF_GET
  r.kv_type = parse_kv_type(j.value("kv_type", std::string("f16"))).value_or(KvType::F16);
}

#undef QF_BENCH_FIELDS

}  // namespace qforge
