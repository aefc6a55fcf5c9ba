#include "pipeline/target_step.h"

#include <cstdio>
#include <filesystem>

#include "core/process_memory.h"
#include "formats/gguf.h"
#include "formats/imatrix.h"
#include "formats/tensor_source.h"
#include "quant/size_target.h"

namespace qforge {

std::string target_variant_name(uint64_t budget_bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "T%.2fMB", budget_bytes / 1e6);
  return buf;
}

Result<TargetStepResult> target_quantize_step(const std::string& in, const std::string& out,
                                              uint64_t budget_bytes, const QuantizeStepOptions& o) {
  QF_TRY(GgufFile f, GgufFile::open(in));
  GgufTensorSource src(std::make_shared<const GgufFile>(std::move(f)));
  ModelQuantizeOptions qo;
  qo.threads = o.threads;
  qo.overwrite = o.overwrite;
  if (!o.imatrix.empty()) {
    QF_TRY(Imatrix m, load_imatrix(o.imatrix));
    qo.imatrix = std::make_shared<const Imatrix>(std::move(m));
  }
  SensitivityOptions so;
  so.threads = o.threads;
  QF_TRY(TargetPlan tp, plan_size_target(src, qo, budget_bytes, so, default_proxy_model()));
  QF_TRY(QuantizeReport rep, quantize_model(src, out, tp.options));
  TargetStepResult r;
  r.quantize = quantize_step_result(rep, in, out);
  QuantizeStepResult& q = r.quantize;
  q.mix = target_variant_name(budget_bytes);
  q.seconds = rep.seconds + tp.sensitivity_seconds + tp.allocation_seconds;
  r.allocation = allocation_to_json(tp);
  r.allocation.erase("sensitivity");
  r.allocation.erase("tensors");
  return r;
}

}  // namespace qforge
