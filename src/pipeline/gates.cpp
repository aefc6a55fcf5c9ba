#include "pipeline/gates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <toml++/toml.h>

#include "io/mapped_file.h"

namespace qforge {
namespace {

struct KeyInfo {
  std::string_view key;
  GateOp op;
};
constexpr KeyInfo kKeys[] = {
    {"ppl_ratio", GateOp::AtMost},
    {"kld_mean", GateOp::AtMost},
    {"kld_p99", GateOp::AtMost},
    {"same_top_pct", GateOp::AtLeast},
    {"critical_pass_rate", GateOp::AtLeast},
    {"peak_rss_mb", GateOp::AtMost},
    {"tg_ratio", GateOp::AtLeast},
    {"checksum", GateOp::Equals},
};

std::string num_text(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (v != 0 && std::fabs(v) < 0.01)
    std::snprintf(buf, sizeof buf, "%.6f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string op_text(GateOp op) {
  return op == GateOp::AtMost ? "<=" : op == GateOp::AtLeast ? ">=" : "==";
}

std::string xml_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&':
        r += "&amp;";
        break;
      case '<':
        r += "&lt;";
        break;
      case '>':
        r += "&gt;";
        break;
      case '"':
        r += "&quot;";
        break;
      case '\'':
        r += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters, even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          r += '?';
        else
          r += c;
    }
  }
  return r;
}

std::optional<double> measured(const GateMeasures& m, std::string_view key) {
  if (key == "ppl_ratio") return m.ppl_ratio;
  if (key == "kld_mean") return m.kld_mean;
  if (key == "kld_p99") return m.kld_p99;
  if (key == "same_top_pct") return m.same_top_pct;
  if (key == "critical_pass_rate") return m.critical_pass_rate;
  if (key == "peak_rss_mb") return m.peak_rss_mb;
  if (key == "tg_ratio") return m.tg_ratio;
  return std::nullopt;
}

}  // namespace

GateSpec without_gates(const GateSpec& spec, const std::vector<std::string>& skip,
                       std::vector<std::string>* skipped) {
  GateSpec out;
  out.source = spec.source;
  for (const auto& c : spec.checks) {
    if (std::find(skip.begin(), skip.end(), c.key) != skip.end()) {
      if (skipped) skipped->push_back(c.key);
      continue;
    }
    out.checks.push_back(c);
  }
  return out;
}

std::string gate_key_names() {
  std::string s;
  for (const auto& k : kKeys) s += (s.empty() ? "" : ", ") + std::string(k.key);
  return s;
}

Result<GateSpec> parse_gates(std::string_view toml_text, const std::string& source) {
  toml::table tbl;
  try {
    tbl = toml::parse(toml_text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    std::string desc(e.description());
    for (auto& c : desc)
      if (c == '\n' || c == '\r') c = ' ';
    return make_error(source, ":", b.line, ":", b.column, ": malformed TOML: ", desc);
  }
  GateSpec spec;
  spec.source = source;
  std::vector<uint32_t> lines;  // toml++ iterates keys sorted; checks keep the file's order
  for (const auto& [top_key, top_node] : tbl) {
    if (top_key.str() != "gates")
      return make_error(source, ":", top_node.source().begin.line, ": unknown section '",
                        top_key.str(), "' (expected [gates])");
  }
  const toml::table* g = tbl["gates"].as_table();
  if (!g) return make_error(source, ": no [gates] table");
  for (const auto& [key, node] : *g) {
    const std::string k(key.str());
    const auto line = node.source().begin.line;
    const KeyInfo* info = nullptr;
    for (const auto& ki : kKeys)
      if (ki.key == k) info = &ki;
    if (!info)
      return make_error(source, ":", line, ": unknown gate key '", k,
                        "' (known: ", gate_key_names(), ")");
    GateCheck c;
    c.key = k;
    c.op = info->op;
    if (info->op == GateOp::Equals) {
      auto s = node.value<std::string>();
      if (!s || *s != "verified")
        return make_error(source, ":", line, ": gate '", k, "' must be \"verified\"");
      c.text = *s;
    } else {
      auto v = node.value<double>();  // integers convert
      if (!v || !std::isfinite(*v) || *v < 0)
        return make_error(source, ":", line, ": gate '", k, "' needs a non-negative number");
      c.limit = *v;
    }
    const auto at = std::upper_bound(lines.begin(), lines.end(), line) - lines.begin();
    lines.insert(lines.begin() + at, line);
    spec.checks.insert(spec.checks.begin() + at, std::move(c));
  }
  if (spec.checks.empty()) return make_error(source, ": [gates] holds no gate");
  return spec;
}

Result<GateSpec> load_gates(const std::string& path) {
  QF_TRY(std::string text, read_file_text(path));
  return parse_gates(text, path);
}

std::vector<CheckOutcome> evaluate_gates(const GateSpec& spec, const GateMeasures& m) {
  std::vector<CheckOutcome> out;
  for (const auto& c : spec.checks) {
    CheckOutcome o;
    o.key = c.key;
    o.op = op_text(c.op);
    if (c.op == GateOp::Equals) {
      o.limit = c.text;
      o.value = m.checksum.value_or("not measured");
      o.passed = m.checksum && *m.checksum == c.text;
    } else {
      o.limit = num_text(c.limit);
      const auto v = measured(m, c.key);
      o.number = v;
      o.value = v ? num_text(*v) : "not measured";
      o.passed = v && (c.op == GateOp::AtMost ? *v <= c.limit : *v >= c.limit);
    }
    out.push_back(std::move(o));
  }
  return out;
}

bool all_passed(const std::vector<CheckOutcome>& outcomes) {
  for (const auto& o : outcomes)
    if (!o.passed) return false;
  return true;
}

std::string first_failure(const std::vector<CheckOutcome>& outcomes) {
  for (const auto& o : outcomes)
    if (!o.passed) {
      const std::string neg = o.op == "<=" ? ">" : o.op == ">=" ? "<" : "!=";
      return o.value == "not measured" ? o.key + " not measured"
                                       : o.key + " " + o.value + " " + neg + " " + o.limit;
    }
  return "";
}

std::string render_gate_table(const std::vector<CheckOutcome>& outcomes) {
  std::ostringstream o;
  o << "| check | value | limit | result |\n|---|---:|---:|---|\n";
  for (const auto& c : outcomes)
    o << "| " << c.key << " | " << c.value << " | " << c.op << " " << c.limit << " | "
      << (c.passed ? "pass" : "FAIL") << " |\n";
  return o.str();
}

nlohmann::json gate_outcomes_to_json(const std::vector<CheckOutcome>& outcomes) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : outcomes) {
    nlohmann::json e = {{"check", c.key},
                        {"op", c.op},
                        {"limit", c.limit},
                        {"value", c.value},
                        {"passed", c.passed}};
    if (c.number) e["number"] = *c.number;
    a.push_back(e);
  }
  return a;
}

std::string gate_junit_xml(const std::vector<CheckOutcome>& outcomes, const std::string& suite,
                           double seconds) {
  int failures = 0;
  for (const auto& c : outcomes) failures += c.passed ? 0 : 1;
  std::ostringstream x;
  char t[32];
  std::snprintf(t, sizeof t, "%.3f", seconds);
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"qforge gate\" tests=\"" << outcomes.size() << "\" failures=\""
    << failures << "\" time=\"" << t << "\">\n";
  x << "  <testsuite name=\"" << xml_escape(suite) << "\" tests=\"" << outcomes.size()
    << "\" failures=\"" << failures << "\" errors=\"0\" time=\"" << t << "\">\n";
  for (const auto& c : outcomes) {
    x << "    <testcase classname=\"qforge.gate\" name=\"" << xml_escape(c.key) << "\" time=\"0\"";
    if (c.passed) {
      x << ">\n      <system-out>" << xml_escape(c.value + " " + c.op + " " + c.limit)
        << "</system-out>\n    </testcase>\n";
    } else {
      x << ">\n      <failure message=\""
        << xml_escape(c.key + ": " + c.value + " (limit " + c.op + " " + c.limit + ")")
        << "\" type=\"gate\"/>\n    </testcase>\n";
    }
  }
  x << "  </testsuite>\n</testsuites>\n";
  return x.str();
}

}  // namespace qforge
