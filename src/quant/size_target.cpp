#include "quant/size_target.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <queue>
#include <regex>

#include "core/checked.h"
#include "core/log.h"
#include "core/stopwatch.h"

namespace qforge {
namespace {

uint64_t padded(uint64_t bytes, uint32_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

struct Option {
  Type type;
  uint64_t bytes = 0;  // padded, summed over the group
  double err = 0;      // predicted, summed over the group
};

struct Group {
  std::vector<size_t> members;  // table indices
  std::vector<Option> options;  // in the members' cost order (same for all members)
  std::vector<size_t> hull;     // option indices on the lower convex hull, by bytes
  size_t cur = 0;               // current option index
  size_t hull_pos = 0;          // position of cur in hull (while on it)
};

// Lower convex hull of (bytes, err) over options sorted by bytes, dominated points removed.
std::vector<size_t> convex_hull(const std::vector<Option>& o) {
  std::vector<size_t> idx(o.size());
  for (size_t i = 0; i < o.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return o[a].bytes != o[b].bytes ? o[a].bytes < o[b].bytes : o[a].err < o[b].err;
  });
  std::vector<size_t> h;
  for (size_t i : idx) {
    if (!h.empty() && o[i].err >= o[h.back()].err) continue;  // dominated
    while (h.size() >= 2) {
      const Option& a = o[h[h.size() - 2]];
      const Option& b = o[h.back()];
      // b is above the segment a-i: drop it.
      const double lhs = (b.err - a.err) * static_cast<double>(o[i].bytes - a.bytes);
      const double rhs = (o[i].err - a.err) * static_cast<double>(b.bytes - a.bytes);
      if (lhs >= rhs)
        h.pop_back();
      else
        break;
    }
    h.push_back(i);
  }
  return h;
}

struct Move {
  size_t g1 = SIZE_MAX, o1 = 0, g2 = SIZE_MAX, o2 = 0;
  int64_t dbytes = 0;
  double derr = 0;
};

// The best change of one group's option, or of two groups' options at once, that keeps the
// file within `budget`: with `need_bytes` false the largest error reduction; with it true (the
// file is more than 0.5 % under the budget) the least error among the moves that reach the band
// within 0.5 % of the budget, else the move that adds the most bytes. Moves never leave the file
// below `min_file`.
Move best_move(const std::vector<Group>& groups, uint64_t file_bytes, uint64_t budget,
               bool need_bytes, uint64_t min_file) {
  Move best;
  const uint64_t floor_bytes = budget - budget / 200;
  auto in_band = [&](const Move& m) {
    return static_cast<int64_t>(file_bytes) + m.dbytes >= static_cast<int64_t>(floor_bytes);
  };
  auto better = [&](const Move& m) {
    if (best.g1 == SIZE_MAX) return need_bytes ? m.dbytes > 0 : m.derr < 0;
    if (need_bytes) {
      if (in_band(m) != in_band(best)) return in_band(m);
      if (in_band(m)) return m.derr < best.derr;
      return m.dbytes > best.dbytes || (m.dbytes == best.dbytes && m.derr < best.derr);
    }
    return m.derr < best.derr;
  };
  for (size_t g1 = 0; g1 < groups.size(); ++g1) {
    const Group& a = groups[g1];
    for (size_t o1 = 0; o1 < a.options.size(); ++o1) {
      if (o1 == a.cur) continue;
      const int64_t db1 =
          static_cast<int64_t>(a.options[o1].bytes) - static_cast<int64_t>(a.options[a.cur].bytes);
      const double de1 = a.options[o1].err - a.options[a.cur].err;
      if (db1 <= 0) continue;  // pairs are (upgrade, downgrade); lone downgrades never help
      if (file_bytes + db1 <= budget) {
        Move m{g1, o1, SIZE_MAX, 0, db1, de1};
        if (better(m)) best = m;
      }
      for (size_t g2 = 0; g2 < groups.size(); ++g2) {
        if (g2 == g1) continue;
        const Group& b = groups[g2];
        for (size_t o2 = 0; o2 < b.options.size(); ++o2) {
          const int64_t db2 = static_cast<int64_t>(b.options[o2].bytes) -
                              static_cast<int64_t>(b.options[b.cur].bytes);
          if (db2 >= 0) continue;
          const int64_t db = db1 + db2;
          if (static_cast<int64_t>(file_bytes) + db > static_cast<int64_t>(budget) ||
              static_cast<int64_t>(file_bytes) + db < static_cast<int64_t>(min_file))
            continue;
          Move m{g1, o1, g2, o2, db, de1 + b.options[o2].err - b.options[b.cur].err};
          if (better(m)) best = m;
        }
      }
    }
  }
  return best;
}

// After the greedy and fill passes: pairs of changes that lower the predicted error, then,
// while the file is more than 0.5 % under the budget, the changes that use the bytes left.
void pair_moves(std::vector<Group>& groups, uint64_t budget, Allocation& a) {
  const uint64_t floor_bytes = budget - budget / 200;
  for (int iter = 0; iter < 4 * static_cast<int>(groups.size()) + 16; ++iter) {
    const bool need = a.file_bytes < floor_bytes;
    // Once within 0.5 %, error-lowering pairs may not leave that band again.
    Move m = best_move(groups, a.file_bytes, budget, need,
                       need ? 0 : std::min(a.file_bytes, floor_bytes));
    if (m.g1 == SIZE_MAX) break;
    if (!need && m.derr > -1e-15 * std::abs(groups[m.g1].options[groups[m.g1].cur].err)) break;
    groups[m.g1].cur = m.o1;
    if (m.g2 != SIZE_MAX) groups[m.g2].cur = m.o2;
    a.file_bytes = static_cast<uint64_t>(static_cast<int64_t>(a.file_bytes) + m.dbytes);
    ++a.fill_steps;
  }
}

}  // namespace

double ProxyModel::scale_for(const std::string& kind) const {
  auto it = kind_scale.find(kind);
  return it != kind_scale.end() ? it->second : default_scale;
}

ProxyModel default_proxy_model() {
  ProxyModel m;
  m.source = "built-in (fitted on refmodel, 3 chunks of data/calibration.txt, Q2_K one at a time)";
  // bench/target_fit.py on bench/target_calibrate.sh's measurement (docs/BENCHMARKS.md).
  m.kind_scale = {
      {"attn_k.weight", 0.00025802},     {"attn_output.weight", 0.0016923},
      {"attn_q.weight", 9.1287e-05},     {"attn_v.weight", 0.0010442},
      {"ffn_down.weight", 0.00065071},   {"ffn_gate.weight", 0.00014819},
      {"ffn_up.weight", 0.00011942},     {"output.weight", 8.7694e-05},
      {"token_embd.weight", 6.0417e-05},
  };
  m.default_scale = 3e-4;  // kinds it never saw: about attn_k's..ffn_down's
  m.depth_factors = {3.089, 1.27, 1.081, 1.034, 0.5707, 0.3995};
  return m;
}

ProxyModel hessian_proxy_model() {
  ProxyModel m;
  m.source =
      "built-in (Hessian-weighted relative error; fitted on refmodel and mini, each tensor alone "
      "at Q4_K, 3 chunks of data/calibration.txt)";
  m.relative = true;
  // bench/target_prior_fit.py (docs/BENCHMARKS.md, issue 14): KLD / relative error per kind and
  // the first block's factor per kind; refmodel's constant (mini's is ~2.4x: scale-free here).
  m.kind_scale = {
      {"attn_k.weight", 0.21841},  {"attn_output.weight", 0.12813}, {"attn_q.weight", 0.066593},
      {"attn_v.weight", 0.099601}, {"ffn_down.weight", 0.22277},    {"ffn_gate.weight", 0.20882},
      {"ffn_up.weight", 0.13189},  {"output.weight", 2.57},         {"token_embd.weight", 0.34031},
  };
  // The head without an imatrix entry (`qforge imatrix` without --process-output, like
  // llama-imatrix's default): its plain relative error, measured on refmodel (0.93) and mini
  // (0.62).
  m.unweighted_scale = {{"output.weight", 0.757}};
  m.first_layer_scale = {
      {"attn_k.weight", 0.037},  {"attn_output.weight", 0.4117}, {"attn_q.weight", 0.0671},
      {"attn_v.weight", 0.1781}, {"ffn_down.weight", 3.54},      {"ffn_gate.weight", 1.1592},
      {"ffn_up.weight", 1.4558},
  };
  m.default_scale = 0.13;  // kinds it never saw: the median block kind
  return m;
}

ProxyModel builtin_proxy_model(bool hessian) {
  return hessian ? hessian_proxy_model() : default_proxy_model();
}

double ProxyModel::first_layer_factor(const std::string& kind, int layer) const {
  if (layer != 0) return 1.0;
  auto it = first_layer_scale.find(kind);
  return it != first_layer_scale.end() ? it->second : 1.0;
}

double ProxyModel::depth_factor(int layer, int n_layer) const {
  if (layer < 0 || depth_factors.empty()) return 1.0;
  if (depth_factors.size() == 1 || n_layer <= 1) return depth_factors.front();
  const double pos = std::clamp(static_cast<double>(layer) / (n_layer - 1), 0.0, 1.0) *
                     static_cast<double>(depth_factors.size() - 1);
  const size_t i = std::min(static_cast<size_t>(pos), depth_factors.size() - 2);
  const double f = pos - static_cast<double>(i);
  return depth_factors[i] * (1 - f) + depth_factors[i + 1] * f;
}

Result<ProxyModel> proxy_model_from_json(const nlohmann::json& j, const std::string& source) {
  ProxyModel m = default_proxy_model();
  m.source = source;
  if (!j.is_object() || !j.contains("factors") || !j["factors"].is_object())
    return make_error(source, ": expected an object with \"factors\": {kind: number}");
  // The fit's keys, then what `--proxy-out` and bench/target_fit.py write beside them as a record
  // of the measurement. Any other key (a misspelt "tensor_factors", say) would silently leave
  // the defaults in place: refuse it, naming it.
  static constexpr std::string_view kKnown[] = {"factors",
                                                "error",
                                                "depth_factors",
                                                "default_factor",
                                                "first_layer_factors",
                                                "tensor_factors",
                                                "chunks",
                                                "tokens_scored",
                                                "spearman_error",
                                                "spearman_prior",
                                                "spearman_fitted",
                                                "spearman_leave_one_out",
                                                "base_seconds",
                                                "seconds",
                                                "measured",
                                                "n_tensors",
                                                "spearman_weighted_error",
                                                "spearman_relative_error"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(std::begin(kKnown), std::end(kKnown), it.key()) == std::end(kKnown))
      return make_error(source, ": unknown key '", it.key(), "' in a proxy file");
  if (j.contains("error")) {
    if (j["error"] != "absolute" && j["error"] != "relative")
      return make_error(source, ": \"error\" must be \"absolute\" or \"relative\"");
    m.relative = j["error"] == "relative";
  }
  if (j.contains("depth_factors")) {
    if (!j["depth_factors"].is_array())
      return make_error(source, ": \"depth_factors\" must be an array of numbers");
    m.depth_factors.clear();
    for (const auto& v : j["depth_factors"]) {
      if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
        return make_error(source, ": depth factors must be positive numbers");
      m.depth_factors.push_back(v.get<double>());
    }
  }
  if (j.contains("default_factor")) {
    if (!j["default_factor"].is_number() || !(j["default_factor"].get<double>() > 0) ||
        !std::isfinite(j["default_factor"].get<double>()))
      return make_error(source, ": \"default_factor\" must be a positive number");
    m.default_scale = j["default_factor"].get<double>();
    m.kind_scale.clear();  // a complete fit: kinds it does not name use default_factor
  }
  if (j.contains("tensor_factors")) {
    if (!j["tensor_factors"].is_object())
      return make_error(source, ": \"tensor_factors\" must be an object {tensor: number}");
    for (auto it = j["tensor_factors"].begin(); it != j["tensor_factors"].end(); ++it) {
      if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>()))
        return make_error(source, ": factor of tensor '", it.key(), "' must be a positive number");
      m.tensor_scale[it.key()] = it->get<double>();
    }
  }
  if (j.contains("first_layer_factors")) {
    if (!j["first_layer_factors"].is_object())
      return make_error(source, ": \"first_layer_factors\" must be an object {kind: number}");
    for (auto it = j["first_layer_factors"].begin(); it != j["first_layer_factors"].end(); ++it) {
      if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>()))
        return make_error(source, ": first-layer factor of '", it.key(),
                          "' must be a positive number");
      m.first_layer_scale[it.key()] = it->get<double>();
    }
  }
  for (auto it = j["factors"].begin(); it != j["factors"].end(); ++it) {
    if (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>()))
      return make_error(source, ": factor of '", it.key(), "' must be a positive number");
    m.kind_scale[it.key()] = it->get<double>();
  }
  return m;
}

double predicted_kld(const TensorSensitivity& t, const TypeCost& c, const ProxyModel& m,
                     bool tied_embeddings, int n_layer) {
  const std::string& kind =
      tied_embeddings && t.kind == "token_embd.weight" ? std::string("output.weight") : t.kind;
  const double e = m.relative ? (t.signal > 0 ? c.error / t.signal : c.error) : c.error;
  if (auto it = m.tensor_scale.find(t.name); it != m.tensor_scale.end()) return it->second * e;
  const auto uw = t.weighted ? m.unweighted_scale.end() : m.unweighted_scale.find(kind);
  const double scale = uw != m.unweighted_scale.end() ? uw->second : m.scale_for(kind);
  return scale * m.depth_factor(t.layer, n_layer) * m.first_layer_factor(kind, t.layer) * e;
}

namespace {
int table_layers(const std::vector<TensorSensitivity>& table) {
  int n = 0;
  for (const auto& t : table) n = std::max(n, t.layer + 1);
  return n;
}
}  // namespace

std::string type_group_key(const std::string& name) {
  // Split per-expert tensors: blk.N.ffn_{gate,up,down}.E.weight (and _exps variants).
  static const std::regex re(R"(^(blk\.\d+\.ffn_(gate|up|down)(_exps)?)\.\d+\.weight$)");
  std::smatch m;
  if (std::regex_match(name, m, re)) return m[1].str() + ".experts";
  return {};
}

Result<Allocation> allocate_types(const std::vector<TensorSensitivity>& table, const ProxyModel& m,
                                  const AllocationInput& in) {
  // Build the groups.
  std::vector<Group> groups;
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].costs.empty())
      return make_error("tensor '", table[i].name, "': no candidate type");
    const std::string key = type_group_key(table[i].name);
    if (!key.empty()) {
      auto [it, added] = by_key.try_emplace(key, groups.size());
      if (!added) {
        Group& g = groups[it->second];
        if (table[g.members.front()].costs.size() != table[i].costs.size())
          return make_error("tensor '", table[i].name, "': its group differs in shape");
        g.members.push_back(i);
        continue;
      }
    }
    groups.push_back({});
    groups.back().members.push_back(i);
  }
  const int n_layer = table_layers(table);
  Allocation a;
  a.choice.assign(table.size(), 0);
  a.file_bytes = in.fixed_bytes;
  a.min_file_bytes = a.max_file_bytes = in.fixed_bytes;
  for (Group& g : groups) {
    const auto& costs0 = table[g.members.front()].costs;
    for (size_t o = 0; o < costs0.size(); ++o) {
      Option op{costs0[o].type, 0, 0.0};
      for (size_t i : g.members) {
        const TypeCost& c = table[i].costs[o];
        if (c.type != op.type)
          return make_error("tensor '", table[i].name, "': its group differs in types");
        op.bytes += padded(c.bytes, in.alignment);
        op.err += predicted_kld(table[i], c, m, in.tied_embeddings, n_layer);
      }
      g.options.push_back(op);
    }
    g.hull = convex_hull(g.options);
    g.cur = g.hull.front();
    uint64_t mn = UINT64_MAX, mx = 0;
    for (const auto& op : g.options) {
      mn = std::min(mn, op.bytes);
      mx = std::max(mx, op.bytes);
    }
    a.min_file_bytes += mn;
    a.max_file_bytes += mx;
    a.file_bytes += g.options[g.cur].bytes;
  }
  if (a.file_bytes > in.budget_bytes)
    return make_error("budget of ", in.budget_bytes, " bytes is below the smallest possible file (",
                      a.file_bytes, " bytes with every tensor at its smallest candidate type)");

  // Greedy on the hulls: largest error reduction per byte first.
  using Step = std::pair<double, size_t>;  // (gain per byte, group)
  std::priority_queue<Step> q;
  auto push_next = [&](size_t gi) {
    Group& g = groups[gi];
    if (g.hull_pos + 1 >= g.hull.size()) return;
    const Option& c = g.options[g.hull[g.hull_pos]];
    const Option& n = g.options[g.hull[g.hull_pos + 1]];
    q.push({(c.err - n.err) / static_cast<double>(n.bytes - c.bytes), gi});
  };
  for (size_t gi = 0; gi < groups.size(); ++gi) push_next(gi);
  while (!q.empty()) {
    const size_t gi = q.top().second;
    q.pop();
    Group& g = groups[gi];
    const Option& c = g.options[g.cur];
    const Option& n = g.options[g.hull[g.hull_pos + 1]];
    if (a.file_bytes - c.bytes + n.bytes > in.budget_bytes) continue;  // this group stops here
    a.file_bytes = a.file_bytes - c.bytes + n.bytes;
    g.cur = g.hull[++g.hull_pos];
    ++a.greedy_steps;
    push_next(gi);
  }
  // Fill: the single change (any option, on the hull or not) of largest error reduction that
  // fits the bytes left, until none does.
  for (;;) {
    double best_gain = 0;
    size_t best_g = SIZE_MAX, best_o = 0;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const Group& g = groups[gi];
      const Option& c = g.options[g.cur];
      for (size_t o = 0; o < g.options.size(); ++o) {
        const Option& n = g.options[o];
        if (a.file_bytes - c.bytes + n.bytes > in.budget_bytes) continue;
        const double gain = c.err - n.err;
        if (gain > best_gain) {
          best_gain = gain;
          best_g = gi;
          best_o = o;
        }
      }
    }
    if (best_g == SIZE_MAX) break;
    Group& g = groups[best_g];
    a.file_bytes = a.file_bytes - g.options[g.cur].bytes + g.options[best_o].bytes;
    g.cur = best_o;
    ++a.fill_steps;
  }
  pair_moves(groups, in.budget_bytes, a);
  for (const Group& g : groups) {
    a.predicted_kld += g.options[g.cur].err;
    for (size_t i : g.members) a.choice[i] = g.cur;
  }
  return a;
}

namespace {

bool has_output_tensor(const TensorSource& src) {
  for (const auto& t : src.tensors())
    if (t.name == "output.weight") return true;
  return false;
}

// The mix whose general.file_type describes a file mostly of `t` (by weights).
std::string mix_for_base(Type t) {
  switch (t) {
    case Type::Q3_K:
      return "Q3_K_M";
    case Type::Q4_K:
      return "Q4_K_M";
    case Type::Q5_K:
      return "Q5_K_M";
    default:
      break;
  }
  if (const Mix* m = find_mix(type_name(t))) return std::string(m->name);
  return "Q4_K_M";
}

// File bytes outside the table's tensors, from a plan that gives every table tensor its first
// candidate (header size does not depend on the types).
Result<uint64_t> fixed_file_bytes(const TensorSource& src, ModelQuantizeOptions o,
                                  const std::vector<TensorSensitivity>& table,
                                  uint32_t* alignment) {
  o.tensor_type_map.clear();
  for (const auto& t : table) o.tensor_type_map[t.name] = t.costs.front().type;
  QF_TRY(QuantizePlan p, plan_quantization(src, o));
  *alignment = p.alignment;
  uint64_t tensors = 0;
  for (const auto& t : table) tensors += padded(t.costs.front().bytes, p.alignment);
  return p.output_file_bytes - tensors;
}

}  // namespace

SensitivityOptions writer_sensitivity(const ModelQuantizeOptions& base, SensitivityOptions so) {
  so.ggml_compatible = so.ggml_compatible || base.ggml_compatible;
  const bool ef = base.covariance && !base.ggml_compatible && base.method != QuantMethod::Refined &&
                  base.method != QuantMethod::Ggml;
  if (!ef) return so;
  if (!so.covariance) so.covariance = base.covariance;
  so.gptq_damp = base.gptq_damp;
  so.gptq_inv_chol_importance = base.gptq_inv_chol_importance;
  so.gptq_search_rounds = base.gptq_search_rounds;
  so.gptq_search_damp = base.gptq_search_damp;
  so.gptq_damp_q3_k = base.gptq_damp_q3_k;
  so.gptq_column_passes = base.gptq_column_passes;
  so.gptq_joint_window = base.gptq_joint_window;
  return so;
}

namespace {

// The tensors whose type the user fixed (--tensor-type, --output-tensor-type,
// --token-embedding-type: the recipe's explicit choices) keep only that candidate, so the
// allocation spends the rest of the budget around them instead of overriding them. A pinned
// type that is not among the measured candidates is an error naming the tensor.
Result<std::vector<TensorSensitivity>> pin_user_types(TensorSource& src,
                                                      const ModelQuantizeOptions& base,
                                                      std::vector<TensorSensitivity> table) {
  const RecipeOptions& r = base.recipe;
  if (r.tensor_types.empty() && !r.output_tensor_type && !r.token_embedding_type) return table;
  ModelQuantizeOptions o = base;
  o.tensor_type_map.clear();
  QF_TRY(const QuantizePlan plan, plan_quantization(src, o));
  std::map<std::string, Type, std::less<>> pinned;
  for (const auto& t : plan.tensors)
    if (t.overridden) pinned[t.name] = t.dst_type;
  for (auto& ts : table) {
    const auto it = pinned.find(ts.name);
    if (it == pinned.end()) continue;
    const auto c = std::find_if(ts.costs.begin(), ts.costs.end(),
                                [&](const TypeCost& tc) { return tc.type == it->second; });
    if (c == ts.costs.end())
      return make_error("size target: tensor '", ts.name, "' is given ", type_name(it->second),
                        " explicitly, which is not among the candidate types (--types)");
    ts.costs = {*c};
  }
  return table;
}

}  // namespace

Result<TargetPlan> plan_size_target(TensorSource& src, const ModelQuantizeOptions& base,
                                    uint64_t budget_bytes, const SensitivityOptions& sopts,
                                    const ProxyModel& model, std::vector<TensorSensitivity> table) {
  TargetPlan tp;
  tp.model = model;
  tp.budget_bytes = budget_bytes;
  auto t0 = std::chrono::steady_clock::now();
  if (table.empty()) {
    QF_TRY(table, measure_sensitivity(src, base.imatrix.get(), writer_sensitivity(base, sopts)));
    tp.sensitivity_seconds = seconds_since(t0);
  }
  t0 = std::chrono::steady_clock::now();
  QF_TRY(table, pin_user_types(src, base, std::move(table)));
  AllocationInput in;
  in.budget_bytes = budget_bytes;
  in.tied_embeddings = !has_output_tensor(src);
  QF_TRY(in.fixed_bytes, fixed_file_bytes(src, base, table, &in.alignment));
  QF_TRY(tp.allocation, allocate_types(table, model, in));

  tp.options = base;
  tp.options.tensor_type_map.clear();
  std::map<Type, uint64_t> weights_of;
  for (size_t i = 0; i < table.size(); ++i) {
    const Type t = table[i].costs[tp.allocation.choice[i]].type;
    tp.options.tensor_type_map[table[i].name] = t;
    weights_of[t] += table[i].n_elements;
  }
  Type major = Type::Q4_K;
  uint64_t most = 0;
  for (auto [t, n] : weights_of)
    if (n > most) most = n, major = t;
  tp.options.mix = mix_for_base(major);
  QF_TRY(tp.plan, plan_quantization(src, tp.options));
  if (tp.plan.output_file_bytes != tp.allocation.file_bytes)
    return make_error(src.describe(), ": internal error: allocation counted ",
                      tp.allocation.file_bytes, " bytes, the plan ", tp.plan.output_file_bytes);
  if (tp.plan.output_file_bytes > budget_bytes)
    return make_error(src.describe(), ": internal error: plan exceeds the budget");
  tp.allocation_seconds = seconds_since(t0);
  tp.table = std::move(table);
  log_info("target.allocated",
           "allocated types for a " + std::to_string(budget_bytes) + " byte budget",
           {{"budget_bytes", budget_bytes},
            {"file_bytes", tp.plan.output_file_bytes},
            {"predicted_kld", tp.allocation.predicted_kld},
            {"greedy_steps", tp.allocation.greedy_steps},
            {"fill_steps", tp.allocation.fill_steps},
            {"sensitivity_seconds", tp.sensitivity_seconds}});
  return tp;
}

Result<uint64_t> budget_for_bpw(TensorSource& src, const ModelQuantizeOptions& base, double bpw) {
  if (!(bpw > 0) || bpw > 32) return make_error("bits per weight must be in (0, 32], not ", bpw);
  ModelQuantizeOptions o = base;
  o.mix = "Q8_0";
  o.recipe.pure = true;
  o.tensor_type_map.clear();
  QF_TRY(QuantizePlan p, plan_quantization(src, o));
  uint64_t quantized_elems = 0, quantized_bytes = 0;
  for (const auto& t : p.tensors) {
    if (!is_quantizable(t.name, t.dims)) continue;
    uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    quantized_elems += n;
    quantized_bytes += padded(t.dst_bytes, p.alignment);
  }
  const uint64_t fixed = p.output_file_bytes - quantized_bytes;
  return fixed + static_cast<uint64_t>(std::floor(bpw * static_cast<double>(quantized_elems) / 8));
}

nlohmann::json allocation_to_json(const TargetPlan& tp) {
  const bool tied = std::none_of(tp.table.begin(), tp.table.end(),
                                 [](const auto& t) { return t.name == "output.weight"; });
  struct Agg {
    uint64_t bytes = 0, elems = 0;
    double pred = 0;
    std::map<std::string, int> types;
  };
  std::map<std::string, Agg> by_kind;
  std::map<int, Agg> by_layer;
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < tp.table.size(); ++i) {
    const auto& t = tp.table[i];
    const TypeCost& c = t.costs[tp.allocation.choice[i]];
    const double pred = predicted_kld(t, c, tp.model, tied, table_layers(tp.table));
    const std::string tn(type_name(c.type));
    tensors.push_back({{"name", t.name},
                       {"kind", t.kind},
                       {"layer", t.layer},
                       {"type", tn},
                       {"bytes", c.bytes},
                       {"bits_per_weight", 8.0 * c.bytes / t.n_elements},
                       {"predicted_kld", pred},
                       {"weighted_error", c.error},
                       {"relative_error", t.signal > 0 ? c.error / t.signal : 0.0}});
    for (Agg* g : {&by_kind[t.kind], &by_layer[t.layer]}) {
      g->bytes += c.bytes;
      g->elems += t.n_elements;
      g->pred += pred;
      g->types[tn]++;
    }
  }
  auto agg_json = [](const Agg& g) {
    return nlohmann::json{{"bytes", g.bytes},
                          {"bits_per_weight", g.elems ? 8.0 * g.bytes / g.elems : 0.0},
                          {"predicted_kld", g.pred},
                          {"types", g.types}};
  };
  nlohmann::json kinds = nlohmann::json::object(), layers = nlohmann::json::array();
  for (const auto& [k, g] : by_kind) kinds[k] = agg_json(g);
  for (const auto& [l, g] : by_layer) {
    nlohmann::json j = agg_json(g);
    j["layer"] = l;
    layers.push_back(j);
  }
  uint64_t elems = 0, bytes = 0;
  for (size_t i = 0; i < tp.table.size(); ++i) {
    elems += tp.table[i].n_elements;
    bytes += tp.table[i].costs[tp.allocation.choice[i]].bytes;
  }
  return {
      {"budget_bytes", tp.budget_bytes},
      {"file_bytes", tp.plan.output_file_bytes},
      {"budget_used", tp.budget_bytes ? double(tp.plan.output_file_bytes) / tp.budget_bytes : 0.0},
      {"min_file_bytes", tp.allocation.min_file_bytes},
      {"max_file_bytes", tp.allocation.max_file_bytes},
      {"mix_file_type", std::string(tp.plan.mix->name)},
      {"bits_per_weight", elems ? 8.0 * bytes / elems : 0.0},
      {"predicted_kld", tp.allocation.predicted_kld},
      {"proxy", tp.model.source},
      {"greedy_steps", tp.allocation.greedy_steps},
      {"fill_steps", tp.allocation.fill_steps},
      {"sensitivity_seconds", tp.sensitivity_seconds},
      {"allocation_seconds", tp.allocation_seconds},
      {"by_kind", kinds},
      {"by_layer", layers},
      {"tensors", tensors},
      {"sensitivity", sensitivity_to_json(tp.table)}};
}

std::string allocation_summary(const TargetPlan& tp) {
  const nlohmann::json j = allocation_to_json(tp);
  std::string s;
  char line[256];
  auto types_text = [](const nlohmann::json& t) {
    std::string out;
    for (auto it = t.begin(); it != t.end(); ++it)
      out += (out.empty() ? "" : " ") + it.key() + "x" + std::to_string(it.value().get<int>());
    return out;
  };
  s += "  kind                      bits/w  predicted KLD  types\n";
  for (auto it = j["by_kind"].begin(); it != j["by_kind"].end(); ++it) {
    std::snprintf(line, sizeof line, "  %-24s %7.3f  %13.6f  %s\n", it.key().c_str(),
                  (*it)["bits_per_weight"].get<double>(), (*it)["predicted_kld"].get<double>(),
                  types_text((*it)["types"]).c_str());
    s += line;
  }
  s += "  layer  bits/w  predicted KLD  types\n";
  for (const auto& l : j["by_layer"]) {
    const int layer = l["layer"].get<int>();
    std::snprintf(line, sizeof line, "  %5s %7.3f  %13.6f  %s\n",
                  layer < 0 ? "-" : std::to_string(layer).c_str(),
                  l["bits_per_weight"].get<double>(), l["predicted_kld"].get<double>(),
                  types_text(l["types"]).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line,
                "target %llu bytes: file %llu bytes (%.3f%% of the budget), %.3f bits/weight, "
                "predicted KLD %.6f\n",
                static_cast<unsigned long long>(tp.budget_bytes),
                static_cast<unsigned long long>(tp.plan.output_file_bytes),
                100.0 * tp.plan.output_file_bytes / tp.budget_bytes,
                j["bits_per_weight"].get<double>(), tp.allocation.predicted_kld);
  s += line;
  return s;
}

}  // namespace qforge
