#include "app/quantize_flags.h"

#include <filesystem>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "core/log.h"

namespace qforge {

std::shared_ptr<QuantizeFlags> add_quantize_flags(CLI::App* cmd) {
  auto f = std::make_shared<QuantizeFlags>();
  cmd->add_option("--imatrix", f->imatrix,
                  "Importance matrix from llama-imatrix (legacy .dat or GGUF): weights the "
                  "quantization error by how much each input column matters");
  cmd->add_option("--tensor-type", f->tensor_types,
                  "REGEX=TYPE: give tensors whose name matches REGEX this type (repeatable; the "
                  "last match wins), e.g. --tensor-type 'attn_v=Q8_0'")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--output-tensor-type", f->output_tensor_type,
                  "Type of output.weight (of token_embd.weight when embeddings are tied)");
  cmd->add_option("--token-embedding-type", f->token_embedding_type, "Type of token_embd.weight");
  cmd->add_flag("--pure", f->pure,
                "Give every quantized tensor the mix's base type (no per-tensor rules)");
  cmd->add_flag("--allow-requantize", f->allow_requantize,
                "Accept an input whose tensors are already quantized (loses quality twice)");
  cmd->add_flag("--ggml-compatible", f->ggml_compatible,
                "Use ggml's exact encoder choices: output byte-identical to llama-quantize "
                "(qforge's default search is never worse in error)");
  cmd->add_flag("--refine-all", f->refine_all,
                "Also search scales for Q8_0/Q4_0 without an imatrix (lower error; by default "
                "those are round-to-nearest, byte-identical to llama-quantize)");
  cmd->add_option("--method", f->method,
                  "Encoder: gptq (error feedback through the input covariances FILE.cov that "
                  "qforge imatrix writes beside the --imatrix FILE; the default when it exists), "
                  "refined (qforge's per-block search; the default otherwise) or ggml (= "
                  "--ggml-compatible)")
      ->check(CLI::IsMember({"refined", "gptq", "ggml"}));
  cmd->add_option("--gptq-damp", f->gptq_damp,
                  "Error feedback: dampening added to the Hessian's diagonal, as a fraction of "
                  "its mean (default 0.3)")
      ->check(CLI::Range(1e-6, 10.0));
  cmd->add_option("--gptq-importance", f->gptq_importance,
                  "Error feedback: weights of the block scale search, diag (diag(H), default) or "
                  "invchol (1/U_jj^2 of the inverse Hessian's Cholesky factor)")
      ->check(CLI::IsMember({"diag", "invchol"}));
  cmd->add_option("--gptq-search", f->gptq_search,
                  "Error feedback: rounds of local search after the column pass (codes, "
                  "sub-block scales and f16 scales re-fit with the full Hessian; default 1, "
                  "0 = off)")
      ->check(CLI::Range(0, 8));
  cmd->add_option("--threads,-t", f->threads, "Threads (default: all cores)")
      ->check(thread_count());
  return f;
}

namespace {

// --method and the covariances beside the imatrix (issue 13).
void add_error_feedback_options(const QuantizeFlags& f, ModelQuantizeOptions& o) {
  o.method = f.method == "gptq"      ? QuantMethod::ErrorFeedback
             : f.method == "refined" ? QuantMethod::Refined
             : f.method == "ggml"    ? QuantMethod::Ggml
                                     : QuantMethod::Auto;
  if (o.method == QuantMethod::Ggml) o.ggml_compatible = true;
  o.gptq_damp = f.gptq_damp;
  o.gptq_inv_chol_importance = f.gptq_importance == "invchol";
  o.gptq_search_rounds = f.gptq_search;
  const bool wants = o.method == QuantMethod::Auto || o.method == QuantMethod::ErrorFeedback;
  const std::string cov = f.imatrix.empty() ? std::string() : covariance_path_for(f.imatrix);
  if (wants && !o.ggml_compatible && !cov.empty() && std::filesystem::exists(cov)) {
    auto c = std::make_shared<CovarianceFile>(unwrap(CovarianceFile::open(cov)));
    log_info("quantize.covariance", "error feedback with covariances " + cov,
             {{"file", cov}, {"weights", c->size()}, {"damp", o.gptq_damp}});
    o.covariance = std::move(c);
  }
  if (o.method == QuantMethod::ErrorFeedback && !o.covariance)
    throw CliError{f.imatrix.empty()
                       ? std::string("--method gptq needs --imatrix FILE with FILE.cov beside it")
                       : "--method gptq: " + cov +
                             " not found (qforge imatrix writes it beside its output)"};
}

}  // namespace

ModelQuantizeOptions build_quantize_options(const QuantizeFlags& f, const std::string& mix) {
  ModelQuantizeOptions o;
  o.mix = std::string(unwrap(mix_for(mix))->name);
  o.recipe.pure = f.pure;
  for (const auto& spec : f.tensor_types)
    o.recipe.tensor_types.push_back(unwrap(parse_tensor_type_override(spec)));
  if (!f.output_tensor_type.empty())
    o.recipe.output_tensor_type = unwrap(
        std::move(target_type_from_name(f.output_tensor_type)).context("--output-tensor-type: "));
  if (!f.token_embedding_type.empty())
    o.recipe.token_embedding_type = unwrap(std::move(target_type_from_name(f.token_embedding_type))
                                               .context("--token-embedding-type: "));
  o.allow_requantize = f.allow_requantize;
  o.ggml_compatible = f.ggml_compatible;
  o.refine_all = f.refine_all;
  o.threads = f.threads;
  if (!f.imatrix.empty()) {
    check_input(f.imatrix);
    auto m = std::make_shared<Imatrix>(unwrap(load_imatrix(f.imatrix)));
    log_info("quantize.imatrix", "loaded importance matrix " + f.imatrix,
             {{"file", f.imatrix},
              {"format", m->format},
              {"entries", m->entries.size()},
              {"chunks", m->chunk_count},
              {"dataset", m->datasets.empty() ? std::string() : m->datasets.front()}});
    o.imatrix = std::move(m);
  }
  add_error_feedback_options(f, o);
  return o;
}

}  // namespace qforge
