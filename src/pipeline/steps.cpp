#include "pipeline/steps.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/log.h"
#include "core/process_memory.h"
#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "engine/forward.h"
#include "engine/tokenizer.h"
#include "eval/kld.h"
#include "eval/perplexity.h"
#include "eval/text_eval.h"
#include "formats/covariance.h"
#include "formats/gguf.h"
#include "formats/hf_source.h"
#include "io/mapped_file.h"
#include "io/sha256.h"
#include "quant/model_quantizer.h"

namespace qforge {

// ---- JSON ---------------------------------------------------------------------------------

#define QF_J(field) j[#field] = r.field
#define QF_G(field) r.field = j.value(#field, decltype(r.field){})

void to_json(nlohmann::json& j, const ConvertStepResult& r) {
  j = nlohmann::json::object();
  QF_J(input);
  QF_J(output);
  QF_J(sha256);
  QF_J(architecture);
  QF_J(file_bytes);
  QF_J(tensors);
  QF_J(seconds);
  QF_J(peak_rss_bytes);
}
void from_json(const nlohmann::json& j, ConvertStepResult& r) {
  QF_G(input);
  QF_G(output);
  QF_G(sha256);
  QF_G(architecture);
  QF_G(file_bytes);
  QF_G(tensors);
  QF_G(seconds);
  QF_G(peak_rss_bytes);
}
void to_json(nlohmann::json& j, const QuantizeStepResult& r) {
  j = nlohmann::json::object();
  QF_J(mix);
  QF_J(input);
  QF_J(output);
  QF_J(sha256);
  QF_J(file_bytes);
  QF_J(planned_bytes);
  QF_J(n_params);
  QF_J(bits_per_weight);
  QF_J(seconds);
  QF_J(peak_rss_bytes);
}
void from_json(const nlohmann::json& j, QuantizeStepResult& r) {
  QF_G(mix);
  QF_G(input);
  QF_G(output);
  QF_G(sha256);
  QF_G(file_bytes);
  QF_G(planned_bytes);
  QF_G(n_params);
  QF_G(bits_per_weight);
  QF_G(seconds);
  QF_G(peak_rss_bytes);
}
void to_json(nlohmann::json& j, const VerifyStepResult& r) {
  j = nlohmann::json::object();
  QF_J(file);
  QF_J(sha256);
  QF_J(tensors);
  QF_J(ok);
  QF_J(error);
}
void from_json(const nlohmann::json& j, VerifyStepResult& r) {
  QF_G(file);
  QF_G(sha256);
  QF_G(tensors);
  QF_G(ok);
  QF_G(error);
}
void to_json(nlohmann::json& j, const QualityStepResult& r) {
  j = nlohmann::json::object();
  QF_J(model);
  QF_J(text);
  QF_J(ctx);
  QF_J(chunks);
  QF_J(tokens_scored);
  QF_J(ppl);
  QF_J(ppl_stderr);
  QF_J(seconds);
  QF_J(tokens_per_second);
  QF_J(has_kld);
  if (r.has_kld) {
    QF_J(kld_mean);
    QF_J(kld_mean_stderr);
    QF_J(kld_median);
    QF_J(kld_p90);
    QF_J(kld_p99);
    QF_J(kld_max);
    QF_J(same_top_pct);
    QF_J(rms_dp_pct);
    QF_J(ppl_base);
    QF_J(ppl_ratio);
  }
  QF_J(peak_rss_bytes);
}
void from_json(const nlohmann::json& j, QualityStepResult& r) {
  QF_G(model);
  QF_G(text);
  QF_G(ctx);
  QF_G(chunks);
  QF_G(tokens_scored);
  QF_G(ppl);
  QF_G(ppl_stderr);
  QF_G(seconds);
  QF_G(tokens_per_second);
  QF_G(has_kld);
  QF_G(kld_mean);
  QF_G(kld_mean_stderr);
  QF_G(kld_median);
  QF_G(kld_p90);
  QF_G(kld_p99);
  QF_G(kld_max);
  QF_G(same_top_pct);
  QF_G(rms_dp_pct);
  QF_G(ppl_base);
  QF_G(ppl_ratio);
  QF_G(peak_rss_bytes);
}
void to_json(nlohmann::json& j, const CriticalCase& r) {
  j = nlohmann::json::object();
  QF_J(prompt);
  QF_J(expected);
  QF_J(output);
  QF_J(chat);
  QF_J(passed);
}
void from_json(const nlohmann::json& j, CriticalCase& r) {
  QF_G(prompt);
  QF_G(expected);
  QF_G(output);
  QF_G(chat);
  QF_G(passed);
}
void to_json(nlohmann::json& j, const CriticalStepResult& r) {
  j = nlohmann::json::object();
  QF_J(model);
  QF_J(prompts_file);
  QF_J(passed);
  QF_J(total);
  QF_J(pass_rate);
  QF_J(cases);
  QF_J(peak_rss_bytes);
}
void from_json(const nlohmann::json& j, CriticalStepResult& r) {
  QF_G(model);
  QF_G(prompts_file);
  QF_G(passed);
  QF_G(total);
  QF_G(pass_rate);
  QF_G(cases);
  QF_G(peak_rss_bytes);
}

#undef QF_J
#undef QF_G

// ---- steps --------------------------------------------------------------------------------

Result<ConvertStepResult> convert_step(const std::string& hf_dir, const std::string& out,
                                       bool overwrite) {
  const auto t0 = std::chrono::steady_clock::now();
  QF_TRY(std::unique_ptr<HfTensorSource> src, HfTensorSource::open(hf_dir));
  GgufWriterOptions wo;
  wo.overwrite = overwrite;
  QF_TRY(GgufWriter w, GgufWriter::create(out, wo));
  for (const auto& [k, v] : src->kvs()) w.set_kv(k, v);
  for (const auto& t : src->tensors()) QF_CHECK(w.add_tensor(t.name, t.dims, t.type));
  ConvertStepResult r;
  r.file_bytes = w.planned_size();
  QF_CHECK(w.write_header());
  for (size_t i = 0; i < src->tensors().size(); ++i) {
    QF_TRY(std::span<const uint8_t> data, src->data(i));
    QF_CHECK(w.write_tensor_data(data));
    src->release(i);
  }
  QF_TRY(r.sha256, w.commit());
  r.input = hf_dir;
  r.output = out;
  r.architecture = src->config().arch;
  r.tensors = src->tensors().size();
  r.seconds = seconds_since(t0);
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

QuantizeStepResult quantize_step_result(const QuantizeReport& rep, const std::string& in,
                                        const std::string& out) {
  QuantizeStepResult r;
  r.mix = rep.plan.mix ? std::string(rep.plan.mix->name) : std::string();
  r.input = in;
  r.output = out;
  r.sha256 = rep.output_sha256;
  std::error_code ec;
  r.file_bytes = std::filesystem::file_size(out, ec);
  r.planned_bytes = rep.plan.output_file_bytes;
  for (const auto& t : rep.plan.tensors) {
    uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    r.n_params += n;
  }
  r.bits_per_weight = r.n_params ? 8.0 * rep.plan.output_tensor_bytes / r.n_params : 0;
  r.seconds = rep.seconds;
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

Status load_quantizer_statistics(const std::string& imatrix, ModelQuantizeOptions& qo) {
  if (imatrix.empty()) return ok_status();
  QF_TRY(Imatrix m, load_imatrix(imatrix));
  qo.imatrix = std::make_shared<const Imatrix>(std::move(m));
  QF_TRY(qo.covariance, open_covariance_beside(imatrix));
  if (qo.covariance)
    log_info("quantize.covariance",
             "error feedback with covariances " + covariance_path_for(imatrix),
             {{"file", covariance_path_for(imatrix)}, {"weights", qo.covariance->size()}});
  return ok_status();
}

Result<QuantizeStepResult> quantize_step(const std::string& in, const std::string& out,
                                         const std::string& mix, const QuantizeStepOptions& o) {
  QF_TRY(GgufFile f, GgufFile::open(in));
  auto file = std::make_shared<const GgufFile>(std::move(f));
  GgufTensorSource src(file);
  ModelQuantizeOptions qo;
  qo.mix = mix;
  qo.threads = o.threads;
  qo.overwrite = o.overwrite;
  QF_CHECK(load_quantizer_statistics(o.imatrix, qo));
  QF_TRY(QuantizeReport rep, quantize_model(src, out, qo));
  return quantize_step_result(rep, in, out);
}

VerifyStepResult verify_step(const std::string& file) {
  VerifyStepResult r;
  r.file = file;
  Status st = verify_sidecar(file);
  if (!st.ok()) {
    r.error = st.error().message;
    return r;
  }
  auto sc = read_sidecar(file);
  if (sc.ok()) r.sha256 = *sc;
  auto f = GgufFile::open(file);
  if (!f.ok()) {
    r.error = f.error().message;
    return r;
  }
  r.tensors = f->tensors().size();
  r.ok = true;
  return r;
}

VerifyStepResult verify_step_without_sidecar(const std::string& file) {
  VerifyStepResult r;
  r.file = file;
  auto f = GgufFile::open(file);
  if (!f.ok()) {
    r.error = f.error().message;
    return r;
  }
  r.tensors = f->tensors().size();
  auto h = sha256_file(file);
  if (!h.ok()) {
    r.error = h.error().message;
    return r;
  }
  r.sha256 = *h;
  r.ok = true;
  return r;
}

Result<QualityStepResult> quality_step(const std::string& model_path, const std::string& text_path,
                                       const QualityStepOptions& o) {
  QF_TRY(Model model, Model::load(model_path));
  QF_TRY(Tokenizer tok, Tokenizer::from_gguf(model.file()));
  QF_TRY(std::string text, read_file_text(text_path));
  const std::vector<int32_t> tokens = tok.encode(text, true, false);
  TextEvalOptions eo;
  eo.ctx = o.ctx;
  eo.chunks = o.chunks;
  eo.threads = o.threads;
  eo.kld_compare = o.kld_compare;
  eo.kld_write = o.kld_write;
  eo.overwrite = o.overwrite;
  eo.model_name = model_path;
  QF_TRY(TextEvalResult ev, evaluate_text(model, tok, tokens, text_path, eo));
  const PerplexityResult& pr = ev.ppl;
  QualityStepResult r;
  r.model = model_path;
  r.text = text_path;
  r.ctx = pr.n_ctx;
  r.chunks = pr.chunks;
  r.tokens_scored = pr.tokens_scored;
  r.ppl = pr.ppl;
  r.ppl_stderr = pr.ppl_stderr;
  r.seconds = pr.seconds;
  r.tokens_per_second = pr.tokens_per_second;
  if (ev.kld) {
    const KldResult& k = *ev.kld;
    r.has_kld = true;
    r.kld_mean = k.kld_mean;
    r.kld_mean_stderr = k.kld_mean_err;
    r.kld_median = k.kld_median;
    r.kld_p90 = k.kld_p90;
    r.kld_p99 = k.kld_p99;
    r.kld_max = k.kld_max;
    r.same_top_pct = k.same_top_pct;
    r.rms_dp_pct = k.rms_dp_pct;
    r.ppl_base = k.ppl_base;
    r.ppl_ratio = k.ppl_ratio;
  }
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

Result<BenchResult> speed_step(const std::string& model, const BenchOptions& o) {
  return run_bench(model, o);
}

}  // namespace qforge
