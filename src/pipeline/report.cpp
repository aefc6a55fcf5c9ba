// The ladder's reports: manifest.json (every file, SHA-256, every figure), report.md and a
// self-contained report.html (inline SVG charts, no script, no external resource). The HTML
// table carries each figure also as a data-* attribute written with the manifest's own JSON
// number rendering, so that a test can check the two agree exactly.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "io/atomic_file.h"
#include "pipeline/ladder.h"

namespace qforge {
namespace {

std::string f(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string jnum(double v) {
  return nlohmann::json(v).dump();
}
std::string esc(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '&')
      r += "&amp;";
    else if (c == '<')
      r += "&lt;";
    else if (c == '>')
      r += "&gt;";
    else if (c == '"')
      r += "&quot;";
    else
      r += c;
  }
  return r;
}

struct ChecklistItem {
  std::string item;
  bool ok = false;
  std::string detail;
};

const CheckOutcome* find_check(const VariantRecord& v, const std::string& key) {
  for (const auto& c : v.checks)
    if (c.key == key) return &c;
  return nullptr;
}

std::vector<ChecklistItem> checklist(const LadderResult& r) {
  std::vector<ChecklistItem> out;
  bool all_verified = true;
  std::string bad;
  for (const auto& v : r.variants)
    if (!v.verify.ok) {
      all_verified = false;
      bad = v.name + ": " + v.verify.error;
    }
  out.push_back({"Checksums written and verified", all_verified,
                 all_verified ? std::to_string(r.variants.size()) +
                                    " files, every .sha256 sidecar and GGUF structure checked"
                              : bad});
  const VariantRecord* rec = r.recommended ? &r.variants[*r.recommended] : nullptr;
  const MixPlan* mp = nullptr;
  if (rec && r.plan)
    for (const auto& m : r.plan->mixes)
      if (m.mix == rec->name) mp = &m;
  out.push_back({"Fits the target hardware", mp && mp->fits_ram,
                 mp ? rec->name + ": " + f("%.1f", mp->total_bytes / 1048576.0) + " MiB of " +
                          f("%.1f", r.plan->options.ram_bytes / 1048576.0) + " MiB (" +
                          r.plan->options.ram_source + ", ctx " +
                          std::to_string(r.plan->options.n_ctx) + ")"
                    : "no recommended variant"});
  auto gate_item = [&](const std::string& title, const std::string& key, const std::string& what) {
    const CheckOutcome* c = rec ? find_check(*rec, key) : nullptr;
    if (!c) {
      out.push_back(
          {title, false, rec ? "no " + key + " gate in the gates file" : "no recommended variant"});
      return;
    }
    out.push_back(
        {title, c->passed, what + " " + c->value + " (gate " + c->op + " " + c->limit + ")"});
  };
  gate_item("PPL within range", "ppl_ratio", "PPL ratio");
  if (rec && rec->speed)
    out.push_back({"Latency", true,
                   "time to first token " + f("%.1f", rec->speed->ttft_ms) + " ms, " +
                       f("%.0f", rec->speed->tg_tokens_per_second) + " tokens/s generation"});
  else
    out.push_back({"Latency", false, "not measured (--no-bench)"});
  gate_item("Memory", "peak_rss_mb", "peak RSS (MiB)");
  if (rec && rec->critical)
    gate_item("Critical prompts", "critical_pass_rate", "pass rate");
  else
    out.push_back({"Critical prompts", false, "no prompt set given (--prompts)"});
  const VariantRecord* fb = r.fallback ? &r.variants[*r.fallback] : nullptr;
  out.push_back({"Fallback variant named", fb != nullptr,
                 fb ? fb->name + " (the next smaller variant that also passes and fits)"
                    : "no smaller variant passes the gates"});
  return out;
}

// Size-targeted variants: per tensor kind and per layer, the types, bits per weight and the
// predicted KLD, with the measured KLD of the whole file beside the predicted total.
std::string allocation_tables(const LadderResult& r) {
  std::ostringstream h;
  for (const auto& v : r.variants) {
    if (!v.allocation) continue;
    const nlohmann::json& a = *v.allocation;
    h << "<h2>Allocation of " << esc(v.name) << "</h2>\n<p>budget "
      << a.value("budget_bytes", uint64_t{0}) << " bytes, file "
      << a.value("file_bytes", uint64_t{0}) << " bytes, "
      << f("%.3f", a.value("bits_per_weight", 0.0)) << " bits/weight; predicted KLD "
      << f("%.6f", a.value("predicted_kld", 0.0)) << ", measured "
      << (v.quality.has_kld ? f("%.6f", v.quality.kld_mean) : std::string("-")) << "</p>\n";
    auto types = [](const nlohmann::json& t) {
      std::string out;
      for (auto it = t.begin(); it != t.end(); ++it)
        out += (out.empty() ? "" : ", ") + it.key() + " &times;" + std::to_string(it->get<int>());
      return out;
    };
    h << "<table class=\"allocation\" data-variant=\"" << esc(v.name)
      << "\"><tr><th>tensor kind / layer</th><th>types</th><th>bits/weight</th>"
         "<th>predicted KLD</th></tr>\n";
    if (a.contains("by_kind"))
      for (auto it = a["by_kind"].begin(); it != a["by_kind"].end(); ++it)
        h << "<tr><td>" << esc(it.key()) << "</td><td>" << types((*it)["types"]) << "</td><td>"
          << f("%.3f", (*it)["bits_per_weight"].get<double>()) << "</td><td>"
          << f("%.6f", (*it)["predicted_kld"].get<double>()) << "</td></tr>\n";
    if (a.contains("by_layer"))
      for (const auto& l : a["by_layer"]) {
        const int layer = l["layer"].get<int>();
        h << "<tr><td>"
          << (layer < 0 ? std::string("outside blocks") : "layer " + std::to_string(layer))
          << "</td><td>" << types(l["types"]) << "</td><td>"
          << f("%.3f", l["bits_per_weight"].get<double>()) << "</td><td>"
          << f("%.6f", l["predicted_kld"].get<double>()) << "</td></tr>\n";
      }
    h << "</table>\n";
  }
  return h.str();
}

nlohmann::json variant_json(const VariantRecord& v) {
  nlohmann::json e = {{"name", v.name},
                      {"is_base", v.is_base},
                      {"path", v.path},
                      {"sha256", v.sha256},
                      {"file_bytes", v.file_bytes},
                      {"bits_per_weight", v.bits_per_weight},
                      {"ppl", v.quality.ppl},
                      {"ppl_stderr", v.quality.ppl_stderr},
                      {"peak_rss_bytes", v.peak_rss_bytes},
                      {"passes", v.passes}};
  if (v.quality.has_kld) {
    e["kld_mean"] = v.quality.kld_mean;
    e["kld_p99"] = v.quality.kld_p99;
    e["same_top_pct"] = v.quality.same_top_pct;
    e["ppl_ratio"] = v.quality.ppl_ratio;
  }
  if (v.allocation) e["allocation"] = *v.allocation;
  if (v.speed) {
    e["pp_tokens_per_second"] = v.speed->pp_tokens_per_second;
    e["tg_tokens_per_second"] = v.speed->tg_tokens_per_second;
    e["ttft_ms"] = v.speed->ttft_ms;
  }
  if (v.critical) {
    e["critical_pass_rate"] = v.critical->pass_rate;
    e["critical_passed"] = v.critical->passed;
    e["critical_total"] = v.critical->total;
    e["critical_lost"] = v.critical_lost;
  }
  e["checks"] = gate_outcomes_to_json(v.checks);
  nlohmann::json steps;
  if (v.convert) steps["convert"] = *v.convert;
  if (v.quantize) steps["quantize"] = *v.quantize;
  steps["verify"] = v.verify;
  steps["quality"] = v.quality;
  if (v.speed) steps["speed"] = *v.speed;
  if (v.critical) steps["critical"] = *v.critical;
  e["steps"] = steps;
  return e;
}

// ---- SVG ------------------------------------------------------------------------------------

struct Pt {
  double x, y;
  std::string label;
  bool good;
};

// A scatter plot; log_y for KLD. `front` draws the Pareto front (lower-left is better when
// minimize_y, lower x and higher y when !minimize_y).
std::string scatter(const std::string& title, const std::string& xl, const std::string& yl,
                    std::vector<Pt> pts, bool log_y, bool minimize_y) {
  const double W = 560, H = 320, L = 70, R = 20, T = 30, B = 50;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << esc(title)
    << "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  s << "<text x=\"" << W / 2
    << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" << esc(title)
    << "</text>\n";
  if (pts.empty()) {
    s << "<text x=\"" << W / 2 << "\" y=\"" << H / 2
      << "\" text-anchor=\"middle\">not measured</text></svg>\n";
    return s.str();
  }
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-6)) : y; };
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& p : pts) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, ty(p.y)), y1 = std::max(y1, ty(p.y));
  }
  if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
  if (y1 - y0 < 1e-9) y0 -= 1, y1 += 1;
  const double px = (x1 - x0) * 0.08, py = (y1 - y0) * 0.1;
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return H - B - (ty(y) - y0) / (y1 - y0) * (H - T - B); };
  s << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
    << "\" stroke=\"#333\"/>\n<line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\""
    << H - B << "\" stroke=\"#333\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    const double yy = H - B - (H - T - B) * i / 4.0;
    s << "<text x=\"" << X(xv) << "\" y=\"" << H - B + 16
      << "\" text-anchor=\"middle\" font-size=\"11\">" << f("%.2f", xv) << "</text>\n";
    s << "<text x=\"" << L - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << (log_y ? f("%.4g", std::pow(10.0, yv)) : f("%.4g", yv)) << "</text>\n";
    s << "<line x1=\"" << L << "\" y1=\"" << yy << "\" x2=\"" << W - R << "\" y2=\"" << yy
      << "\" stroke=\"#eee\"/>\n";
  }
  s << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12
    << "\" text-anchor=\"middle\" font-size=\"12\">" << esc(xl) << "</text>\n";
  s << "<text x=\"14\" y=\"" << (T + H - B) / 2
    << "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 " << (T + H - B) / 2
    << ")\">" << esc(yl) << "</text>\n";
  // Pareto front: by size ascending, keep each point better in y than every smaller one.
  std::sort(pts.begin(), pts.end(), [](const Pt& a, const Pt& b) { return a.x < b.x; });
  std::vector<const Pt*> front;
  for (const auto& p : pts) {
    bool dominated = false;
    for (const auto& q : pts)
      if (&q != &p && q.x <= p.x && (minimize_y ? q.y < p.y : q.y > p.y) &&
          (q.x < p.x || q.y != p.y))
        dominated = true;
    if (!dominated) front.push_back(&p);
  }
  if (front.size() > 1) {
    s << "<polyline fill=\"none\" stroke=\"#2a6\" stroke-width=\"2\" stroke-dasharray=\"5,3\" "
         "points=\"";
    for (const Pt* p : front) s << X(p->x) << "," << Y(p->y) << " ";
    s << "\"><title>Pareto front</title></polyline>\n";
  }
  for (const auto& p : pts) {
    s << "<circle cx=\"" << X(p.x) << "\" cy=\"" << Y(p.y) << "\" r=\"5\" fill=\""
      << (p.good ? "#2a6" : "#c33") << "\"><title>" << esc(p.label) << "</title></circle>\n";
    s << "<text x=\"" << X(p.x) + 7 << "\" y=\"" << Y(p.y) - 7 << "\" font-size=\"11\">"
      << esc(p.label) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string critical_chart(const LadderResult& r) {
  std::ostringstream s;
  const double W = 560, row = 24, T = 30;
  const double H = T + row * static_cast<double>(r.variants.size()) + 20;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" aria-label=\"critical prompts\">\n<rect width=\"100%\" height=\"100%\" "
       "fill=\"#fff\"/>\n"
    << "<text x=\"" << W / 2
    << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
       "Critical prompts passed per variant</text>\n";
  double y = T;
  for (const auto& v : r.variants) {
    s << "<text x=\"80\" y=\"" << y + 16 << "\" text-anchor=\"end\" font-size=\"12\">"
      << esc(v.name) << "</text>\n";
    if (v.critical && v.critical->total > 0) {
      const double w = (W - 180) * v.critical->pass_rate;
      s << "<rect x=\"90\" y=\"" << y + 4 << "\" width=\"" << W - 180
        << "\" height=\"16\" fill=\"#eee\"/>\n"
        << "<rect x=\"90\" y=\"" << y + 4 << "\" width=\"" << w << "\" height=\"16\" fill=\""
        << (v.passes ? "#2a6" : "#c33") << "\"/>\n<text x=\"" << W - 80 << "\" y=\"" << y + 16
        << "\" font-size=\"12\">" << v.critical->passed << "/" << v.critical->total << "</text>\n";
    } else {
      s << "<text x=\"90\" y=\"" << y + 16 << "\" font-size=\"12\">not measured</text>\n";
    }
    y += row;
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace

nlohmann::json manifest_json(const LadderResult& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["input"] = r.options.input;
  j["eval_text"] = r.options.eval_text;
  j["prompts"] = r.options.prompts;
  j["ctx"] = r.options.ctx;
  j["chunks"] = r.options.chunks;
  j["gates_file"] = r.options.gates.source;
  nlohmann::json gates = nlohmann::json::array();
  for (const auto& c : r.options.gates.checks)
    gates.push_back(
        {{"check", c.key},
         {"op", c.op == GateOp::AtMost    ? "<="
                : c.op == GateOp::AtLeast ? ">="
                                          : "=="},
         {"limit", c.op == GateOp::Equals ? nlohmann::json(c.text) : nlohmann::json(c.limit)}});
  j["gates"] = gates;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& v : r.variants)
    files.push_back({{"path", v.path},
                     {"sha256", v.sha256},
                     {"bytes", v.file_bytes},
                     {"verified", v.verify.ok}});
  j["files"] = files;
  nlohmann::json vs = nlohmann::json::array();
  for (const auto& v : r.variants) vs.push_back(variant_json(v));
  j["variants"] = vs;
  j["recommended"] = r.recommended ? nlohmann::json(r.variants[*r.recommended].name) : nullptr;
  j["fallback"] = r.fallback ? nlohmann::json(r.variants[*r.fallback].name) : nullptr;
  j["reason"] = r.reason;
  if (r.plan) j["plan"] = to_json(*r.plan);
  nlohmann::json cl = nlohmann::json::array();
  for (const auto& c : checklist(r))
    cl.push_back({{"item", c.item}, {"ok", c.ok}, {"detail", c.detail}});
  j["checklist"] = cl;
  j["skipped_gates"] = r.skipped_gates;
  j["seconds"] = r.seconds;
  return j;
}

std::string render_report_md(const LadderResult& r) {
  std::ostringstream md;
  md << "# qforge ladder: " << r.model << "\n\n";
  md << "Evaluation text `" << r.options.eval_text << "`, context " << r.options.ctx
     << (r.options.chunks ? ", " + std::to_string(r.options.chunks) + " chunks"
                          : std::string(", all chunks"))
     << "; gates `" << r.options.gates.source << "`"
     << (r.options.prompts.empty() ? "" : "; critical prompts `" + r.options.prompts + "`")
     << ". KLD, same-top and ratios are against the F16 base.";
  if (!r.skipped_gates.empty()) {
    md << " Gates not measured in this run (skipped):";
    for (const auto& k : r.skipped_gates) md << " `" << k << "`";
    md << ".";
  }
  md << "\n\n";
  md << "| variant | size (MiB) | bits/weight | PPL | mean KLD | KLD p99 | same top % | pp tok/s | "
        "tg tok/s | peak RSS (MiB) | critical | gates |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (size_t i = 0; i < r.variants.size(); ++i) {
    const auto& v = r.variants[i];
    const std::string fail = first_failure(v.checks);
    md << "| " << v.name << (r.recommended && *r.recommended == i ? " **(recommended)**" : "")
       << (r.fallback && *r.fallback == i ? " (fallback)" : "") << " | "
       << f("%.2f", v.file_bytes / 1048576.0) << " | " << f("%.2f", v.bits_per_weight) << " | "
       << f("%.4f", v.quality.ppl) << " | "
       << (v.quality.has_kld ? f("%.6f", v.quality.kld_mean) : "–") << " | "
       << (v.quality.has_kld ? f("%.4f", v.quality.kld_p99) : "–") << " | "
       << (v.quality.has_kld ? f("%.2f", v.quality.same_top_pct) : "–") << " | "
       << (v.speed ? f("%.0f", v.speed->pp_tokens_per_second) : "–") << " | "
       << (v.speed ? f("%.0f", v.speed->tg_tokens_per_second) : "–") << " | "
       << f("%.1f", v.peak_rss_bytes / 1048576.0) << " | "
       << (v.critical ? std::to_string(v.critical->passed) + "/" + std::to_string(v.critical->total)
                      : "–")
       << " | " << (v.passes ? "pass" : "fail: " + fail) << " |\n";
  }
  md << "\n**Recommendation (" << priority_name(r.options.priority) << "):** "
     << (r.recommended ? r.reason : "none — " + r.reason) << "\n";
  md << "**Fallback:** "
     << (r.fallback ? r.variants[*r.fallback].name + " (next smaller variant that also passes)"
                    : std::string("none (no smaller variant passes)"))
     << "\n";
  for (const auto& v : r.variants)
    if (!v.critical_lost.empty()) {
      md << "\n"
         << v.name << " loses " << v.critical_lost.size()
         << " critical prompt(s) the base answered:";
      for (const auto& p : v.critical_lost) md << " `" << p << "`";
      md << "\n";
    }
  md << "\n## Pre-deployment checklist\n\n";
  for (const auto& c : checklist(r))
    md << "- [" << (c.ok ? "x" : " ") << "] " << c.item << ": " << c.detail << "\n";
  return md.str();
}

std::string render_report_html(const LadderResult& r) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>qforge report: "
    << esc(r.model)
    << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;"
       "text-align:right}td:first-child,th:first-child{text-align:left}.pass{color:#176}.fail{"
       "color:#b22}"
       ".charts{display:flex;flex-wrap:wrap;gap:16px}svg{border:1px solid "
       "#ddd}</style></head><body>\n";
  h << "<h1>qforge report: " << esc(r.model) << "</h1>\n<p>Evaluation text <code>"
    << esc(r.options.eval_text) << "</code>, context " << r.options.ctx << "; gates <code>"
    << esc(r.options.gates.source) << "</code>.</p>\n";
  h << "<p><b>Recommendation (" << priority_name(r.options.priority) << "):</b> "
    << esc(r.recommended ? r.reason : "none — " + r.reason) << "<br><b>Fallback:</b> "
    << esc(r.fallback ? r.variants[*r.fallback].name : std::string("none")) << "</p>\n";
  h << "<table id=\"variants\"><tr><th>variant</th><th>size "
       "(bytes)</th><th>bits/weight</th><th>PPL</th>"
       "<th>mean KLD</th><th>same top %</th><th>tg tok/s</th><th>peak RSS "
       "(MiB)</th><th>critical</th><th>gates</th></tr>\n";
  for (const auto& v : r.variants) {
    h << "<tr data-variant=\"" << esc(v.name) << "\" data-file-bytes=\"" << v.file_bytes
      << "\" data-ppl=\"" << jnum(v.quality.ppl) << "\"";
    if (v.quality.has_kld) h << " data-kld-mean=\"" << jnum(v.quality.kld_mean) << "\"";
    if (v.speed)
      h << " data-tg-tokens-per-second=\"" << jnum(v.speed->tg_tokens_per_second) << "\"";
    if (v.critical) h << " data-critical-pass-rate=\"" << jnum(v.critical->pass_rate) << "\"";
    h << " data-sha256=\"" << esc(v.sha256) << "\"><td>" << esc(v.name) << "</td><td>"
      << v.file_bytes << "</td><td>" << f("%.2f", v.bits_per_weight) << "</td><td>"
      << f("%.4f", v.quality.ppl) << "</td><td>"
      << (v.quality.has_kld ? f("%.6f", v.quality.kld_mean) : "–") << "</td><td>"
      << (v.quality.has_kld ? f("%.2f", v.quality.same_top_pct) : "–") << "</td><td>"
      << (v.speed ? f("%.0f", v.speed->tg_tokens_per_second) : "–") << "</td><td>"
      << f("%.1f", v.peak_rss_bytes / 1048576.0) << "</td><td>"
      << (v.critical ? std::to_string(v.critical->passed) + "/" + std::to_string(v.critical->total)
                     : "–")
      << "</td><td class=\""
      << (v.passes ? "pass\">pass" : "fail\">fail: " + esc(first_failure(v.checks)))
      << "</td></tr>\n";
  }
  h << "</table>\n<h2>Charts</h2>\n<div class=\"charts\">\n";
  std::vector<Pt> kld, speed;
  for (const auto& v : r.variants) {
    const double mib = v.file_bytes / 1048576.0;
    if (v.quality.has_kld) kld.push_back({mib, v.quality.kld_mean, v.name, v.passes});
    if (v.speed) speed.push_back({mib, v.speed->tg_tokens_per_second, v.name, v.passes});
  }
  h << scatter("Size vs mean KLD (log scale), Pareto front dashed", "file size (MiB)", "mean KLD",
               kld, true, true);
  h << scatter("Size vs generation speed", "file size (MiB)", "tg tokens/s", speed, false, false);
  h << critical_chart(r) << "</div>\n";
  h << "<h2>Pre-deployment checklist</h2>\n<ul id=\"checklist\">\n";
  for (const auto& c : checklist(r))
    h << "<li class=\"" << (c.ok ? "pass" : "fail") << "\">" << (c.ok ? "&#10004; " : "&#10008; ")
      << esc(c.item) << ": " << esc(c.detail) << "</li>\n";
  h << "</ul>\n";
  if (r.plan) {
    h << "<h2>Plan for this machine</h2>\n<p>" << esc(r.plan->reason) << "</p>\n";
  }
  h << allocation_tables(r);
  bool any_critical = false;
  for (const auto& v : r.variants) any_critical |= v.critical.has_value();
  if (any_critical) {
    h << "<h2>Critical prompts</h2>\n<table id=\"critical\"><tr><th>prompt</th>";
    for (const auto& v : r.variants) h << "<th>" << esc(v.name) << "</th>";
    h << "</tr>\n";
    const size_t n = r.variants.front().critical ? r.variants.front().critical->cases.size() : 0;
    for (size_t i = 0; i < n; ++i) {
      h << "<tr><td>" << esc(r.variants.front().critical->cases[i].prompt) << "</td>";
      for (const auto& v : r.variants) {
        const bool ok = v.critical && i < v.critical->cases.size() && v.critical->cases[i].passed;
        h << "<td class=\"" << (ok ? "pass\">pass" : "fail\">fail") << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</table>\n";
  }
  h << "</body></html>\n";
  return h.str();
}

Status write_reports(const LadderResult& r) {
  AtomicFileOptions wo;
  wo.overwrite = true;  // reports are regenerated on every run
  const std::string dir = r.options.out_dir + "/";
  const std::pair<std::string, std::string> files[] = {
      {dir + "manifest.json", manifest_json(r).dump(1) + "\n"},
      {dir + "report.md", render_report_md(r)},
      {dir + "report.html", render_report_html(r)}};
  for (const auto& [path, text] : files) {
    QF_TRY(AtomicFile out, AtomicFile::create(path, wo));
    QF_CHECK(out.write(text.data(), text.size()));
    QF_CHECK(out.commit());
  }
  return ok_status();
}

}  // namespace qforge
