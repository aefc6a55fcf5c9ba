// Quality gates for CI: a TOML file (parsed with toml++) of thresholds, checked against a
// variant's measured figures; a table, a JSON form and JUnit XML (one testcase per check).
//
//   [gates]
//   ppl_ratio = 1.10            # PPL / PPL(baseline)            <= limit
//   kld_mean = 0.05             # mean KL-divergence vs baseline <= limit
//   kld_p99 = 0.5               # 99th percentile of the KLD     <= limit
//   same_top_pct = 90           # top-token agreement, %          >= limit
//   critical_pass_rate = 0.9    # critical prompts passed, 0..1   >= limit
//   peak_rss_mb = 4096          # peak RSS while evaluating, MiB  <= limit
//   tg_ratio = 0.66             # generation speed / baseline's   >= limit
//   checksum = "verified"       # sidecar and structure verified  == "verified"
//
// Each key has one direction (a ratio of losses is an upper bound, an agreement a lower bound),
// so a file cannot state a gate the wrong way round. An unknown key, a value of the wrong type
// or a malformed file is one error line naming the file, the line and the key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace qforge {

enum class GateOp { AtMost, AtLeast, Equals };

struct GateCheck {
  std::string key;
  GateOp op = GateOp::AtMost;
  double limit = 0;
  std::string text;  // for Equals
};

struct GateSpec {
  std::string source;  // file name, for messages
  std::vector<GateCheck> checks;
};

// The spec without the checks on figures this run does not measure (keys listed in `skip`,
// e.g. critical_pass_rate without a prompt set); their names are appended to `skipped`.
GateSpec without_gates(const GateSpec& spec, const std::vector<std::string>& skip,
                       std::vector<std::string>* skipped);

// The known gate keys, "ppl_ratio, kld_mean, ...".
std::string gate_key_names();
Result<GateSpec> parse_gates(std::string_view toml_text, const std::string& source);
Result<GateSpec> load_gates(const std::string& path);

// A variant's figures (absent: not measured, and a gate on it fails as "not measured").
struct GateMeasures {
  std::optional<double> ppl_ratio, kld_mean, kld_p99, same_top_pct, critical_pass_rate, peak_rss_mb,
      tg_ratio;
  std::optional<std::string> checksum;  // "verified" or the reason it is not
};

struct CheckOutcome {
  std::string key;
  std::string op;                // "<=", ">=", "=="
  std::string limit;             // as text
  std::string value;             // as text; "not measured" when absent
  std::optional<double> number;  // the measured value when numeric
  bool passed = false;
};

std::vector<CheckOutcome> evaluate_gates(const GateSpec& spec, const GateMeasures& m);
bool all_passed(const std::vector<CheckOutcome>& outcomes);
// "kld_mean 0.0639 > 0.05" for the first failing check, "" when all pass.
std::string first_failure(const std::vector<CheckOutcome>& outcomes);

std::string render_gate_table(const std::vector<CheckOutcome>& outcomes);
nlohmann::json gate_outcomes_to_json(const std::vector<CheckOutcome>& outcomes);
// JUnit XML: one <testsuite name=suite> with one <testcase> per check, <failure> when failed.
std::string gate_junit_xml(const std::vector<CheckOutcome>& outcomes, const std::string& suite,
                           double seconds);

}  // namespace qforge
