// The ladder's size-targeted variants (issue 14): quantize with every tensor's type allocated for
// a byte budget (quant/size_target.h), and the allocation's report beside the step result.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "pipeline/steps.h"

namespace qforge {

struct TargetStepResult {
  QuantizeStepResult quantize;
  nlohmann::json allocation;  // allocation_to_json without the sensitivity table
};

// Variant name of a budget, e.g. "T17.18MB" (10^6 bytes, two decimals).
std::string target_variant_name(uint64_t budget_bytes);

Result<TargetStepResult> target_quantize_step(const std::string& in, const std::string& out,
                                              uint64_t budget_bytes, const QuantizeStepOptions& o);

}  // namespace qforge
