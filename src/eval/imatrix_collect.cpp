#include "eval/imatrix_collect.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "core/stopwatch.h"
#include "eval/perplexity.h"
#include "kernels/vec_ops.h"

namespace qforge {
namespace {

constexpr int64_t kRoles = static_cast<int64_t>(MatRole::Output) + 1;
// llama-imatrix ignores dense matmuls of fewer rows (its "ask" filter).
constexpr int64_t kMinDenseRows = 16;

// The distinct input a role's matmul reads, named as in the covariance file.
const char* input_group(MatRole r) {
  switch (r) {
    case MatRole::AttnQ:
    case MatRole::AttnK:
    case MatRole::AttnV:
    case MatRole::AttnQkv:
      return "attn_in";
    case MatRole::AttnOut:
      return "attn_output";
    case MatRole::FfnGate:
    case MatRole::FfnUp:
      return "ffn_in";
    case MatRole::FfnDown:
      return "ffn_down";
    case MatRole::FfnGateInp:
      return "ffn_gate_inp";
    case MatRole::FfnGateExps:
    case MatRole::FfnUpExps:
      return "ffn_in_exps";
    case MatRole::FfnDownExps:
      return "ffn_down_exps";
    case MatRole::Output:
      return "output";
  }
  return "";
}

// Row i of the panel [j0, j0 + jw), scalar.
void gram_row(const float* x, int64_t n, int64_t cols, int64_t i, int64_t j0, int64_t jw,
              float* c) {
  float acc[16] = {};
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * cols;
    const float a = row[i];
    for (int64_t j = 0; j < jw; ++j) acc[j] += a * row[j0 + j];
  }
  for (int64_t j = 0; j < jw; ++j) c[i * cols + j0 + j] += acc[j];
}

}  // namespace

void add_gram_upper(const float* x, int64_t n, int64_t cols, float* c, ThreadPool& pool) {
  constexpr int64_t P = 16;
  const auto gram = vec_ops().gram_6x16;  // 6 x 16 tiles at the active ISA level
  const int64_t panels = (cols + P - 1) / P;
  auto work = [&](int64_t b, int64_t e, int) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t jp = panels - 1 - k;  // the widest (most rows) panels first
      const int64_t j0 = jp * P, jw = std::min(P, cols - j0), i_end = j0 + jw;
      int64_t i0 = 0;
      if (jw == P)
        for (; i0 + 6 <= i_end; i0 += 6) gram(x, n, cols, i0, j0, c);
      for (; i0 < i_end; ++i0) gram_row(x, n, cols, i0, j0, jw, c);
    }
  };
  if (pool.size() == 1 || n * cols * cols < (int64_t{1} << 20))
    work(0, panels, 0);
  else
    pool.parallel_for(panels, 1, work);
}

ActivationStats::ActivationStats(const Model& model, ThreadPool& pool, ActivationStatsOptions opt)
    : pool_(pool), opt_(opt) {
  const ModelParams& p = model.params();
  slot_to_weight_.assign(static_cast<size_t>((p.n_layer + 1) * kRoles), -1);
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const LayerWeights& L = model.layers()[static_cast<size_t>(l)];
    if (!L.wqkv.empty()) {
      add_weight(l, MatRole::AttnQkv, L.wqkv.cols, 1);
    } else {
      add_weight(l, MatRole::AttnQ, L.wq.cols, 1);
      add_weight(l, MatRole::AttnK, L.wk.cols, 1);
      add_weight(l, MatRole::AttnV, L.wv.cols, 1);
    }
    add_weight(l, MatRole::AttnOut, L.wo.cols, 1);
    if (p.n_expert > 0) {
      const auto X = static_cast<uint32_t>(p.n_expert);
      add_weight(l, MatRole::FfnGateInp, L.ffn_gate_inp.cols, 1);
      add_weight(l, MatRole::FfnGateExps, L.gate_exps.front().cols, X);
      add_weight(l, MatRole::FfnUpExps, L.up_exps.front().cols, X);
      add_weight(l, MatRole::FfnDownExps, L.down_exps.front().cols, X);
    } else {
      if (!L.ffn_gate.empty()) add_weight(l, MatRole::FfnGate, L.ffn_gate.cols, 1);
      add_weight(l, MatRole::FfnUp, L.ffn_up.cols, 1);
      add_weight(l, MatRole::FfnDown, L.ffn_down.cols, 1);
    }
  }
  // llama-imatrix collects the head only as "output.weight" (never a tied token_embd).
  if (opt_.process_output && !model.tied_embeddings())
    add_weight(-1, MatRole::Output, model.output().cols, 1);
  if (opt_.covariance) group_covariances();
}

void ActivationStats::add_weight(int64_t layer, MatRole role, int64_t cols, uint32_t n_mat) {
  WeightStats w;
  w.name = weight_tensor_name({layer, role}, false);  // the head is only kept untied
  w.cols = cols;
  w.n_mat = n_mat;
  w.sums.assign(static_cast<size_t>(cols) * n_mat, 0.0);
  w.counts.assign(n_mat, 0);
  slot_to_weight_[static_cast<size_t>(slot({layer, role}))] = static_cast<int64_t>(weights_.size());
  weights_.push_back(std::move(w));
}

void ActivationStats::group_covariances() {
  std::map<std::string, size_t> by_name;
  for (int64_t s = 0; s < static_cast<int64_t>(slot_to_weight_.size()); ++s) {
    const int64_t wi = slot_to_weight_[static_cast<size_t>(s)];
    if (wi < 0) continue;
    const int64_t layer = s / kRoles - 1;
    const auto role = static_cast<MatRole>(s % kRoles);
    const std::string name = layer < 0
                                 ? std::string("cov.output")
                                 : "cov.blk." + std::to_string(layer) + "." + input_group(role);
    WeightStats& w = weights_[static_cast<size_t>(wi)];
    auto [it, fresh] = by_name.emplace(name, covs_.size());
    if (fresh) {
      Cov c;
      c.name = name;
      c.n = w.cols;
      c.n_mat = w.n_mat;
      c.leader = role;  // slots are in forward order within a layer
      c.sum.assign(static_cast<size_t>(w.cols * w.cols) * w.n_mat, 0.0f);
      c.counts.assign(w.n_mat, 0);
      covs_.push_back(std::move(c));
    }
    covs_[it->second].members.push_back(static_cast<size_t>(wi));
    w.cov = static_cast<int64_t>(it->second);
  }
}

int64_t ActivationStats::slot(const MatmulSite& s) const {
  return (s.layer + 1) * kRoles + static_cast<int64_t>(s.role);
}

void ActivationStats::on_matmul(const MatmulSite& site, const float* x, int64_t n, int64_t cols) {
  const int64_t s = slot(site);
  if (s < 0 || s >= static_cast<int64_t>(slot_to_weight_.size())) return;
  const int64_t wi = slot_to_weight_[static_cast<size_t>(s)];
  if (wi < 0) return;
  const bool expert = site.expert >= 0;
  if (!expert && n < kMinDenseRows) return;
  WeightStats& w = weights_[static_cast<size_t>(wi)];
  const auto m = static_cast<uint32_t>(expert ? site.expert : 0);
  if (cols != w.cols || m >= w.n_mat) return;  // not the layout we planned (cannot happen)
  double* sums = w.sums.data() + static_cast<size_t>(m) * cols;
  for (int64_t t = 0; t < n; ++t) {
    const float* r = x + t * cols;
    for (int64_t j = 0; j < cols; ++j) sums[j] += static_cast<double>(r[j] * r[j]);
  }
  w.counts[m] += static_cast<uint64_t>(n);
  if (w.cov < 0) return;
  Cov& c = covs_[static_cast<size_t>(w.cov)];
  if (site.role != c.leader) return;  // the same input was added by the group's first matmul
  add_gram_upper(x, n, cols, c.sum.data() + static_cast<size_t>(m) * cols * cols, pool_);
  c.counts[m] += static_cast<uint64_t>(n);
}

const ActivationStats::WeightStats* ActivationStats::find(std::string_view weight_name) const {
  for (const auto& w : weights_)
    if (w.name == weight_name) return &w;
  return nullptr;
}

Imatrix ActivationStats::imatrix(const std::string& format, uint32_t chunk_count,
                                 uint32_t chunk_size, std::vector<std::string> datasets) const {
  Imatrix im;
  im.format = format;
  im.chunk_count = chunk_count;
  im.datasets = std::move(datasets);
  for (const auto& w : weights_) {
    const uint64_t max_count = *std::max_element(w.counts.begin(), w.counts.end());
    if (max_count == 0) continue;
    ImatrixEntry e;
    e.name = w.name;
    e.n_mat = w.n_mat;
    e.importance.resize(w.sums.size());
    for (uint32_t m = 0; m < w.n_mat; ++m)
      for (int64_t j = 0; j < w.cols; ++j) {
        const size_t k = static_cast<size_t>(m) * w.cols + j;
        e.importance[k] = w.counts[m] > 0 ? static_cast<float>(w.sums[k] / w.counts[m]) : 1.0f;
      }
    // GGUF: in_sum2 = importance * count per matrix, so any non-zero count reproduces the
    // importances; the legacy file wants llama-imatrix's call count (chunks, rounded up).
    e.count =
        format == "dat" && chunk_size > 0 ? (max_count + chunk_size - 1) / chunk_size : max_count;
    im.entries.push_back(std::move(e));
  }
  std::sort(im.entries.begin(), im.entries.end(),
            [](const ImatrixEntry& a, const ImatrixEntry& b) { return a.name < b.name; });
  return im;
}

std::vector<CovarianceSpec> ActivationStats::covariance_specs() const {
  std::vector<CovarianceSpec> out;
  for (const auto& c : covs_) {
    CovarianceSpec s;
    s.name = c.name;
    s.n = static_cast<uint64_t>(c.n);
    s.counts = c.counts;
    for (size_t wi : c.members) s.weights.push_back(weights_[wi].name);
    out.push_back(std::move(s));
  }
  return out;
}

void ActivationStats::covariance_matrix(size_t i, uint32_t m, std::span<float> out) const {
  const Cov& c = covs_[i];
  const int64_t n = c.n;
  if (c.counts[m] == 0) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  const float* s = c.sum.data() + static_cast<size_t>(m) * n * n;
  const double inv = 1.0 / static_cast<double>(c.counts[m]);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = r; k < n; ++k) {
      const auto v = static_cast<float>(s[r * n + k] * inv);
      out[static_cast<size_t>(r * n + k)] = v;
      out[static_cast<size_t>(k * n + r)] = v;
    }
}

uint64_t ActivationStats::covariance_accumulator_bytes() const {
  uint64_t b = 0;
  for (const auto& c : covs_) b += c.sum.size() * sizeof(float);
  return b;
}

Result<ImatrixRunResult> run_imatrix(Context& ctx, std::span<const int32_t> tokens,
                                     const ImatrixRunOptions& opt, ActivationStats& stats) {
  const int64_t n_ctx = opt.n_ctx, n_tok = static_cast<int64_t>(tokens.size());
  if (n_ctx < 4 || n_ctx > ctx.n_ctx())
    return make_error("imatrix: context of ", n_ctx, " tokens (this context holds ", ctx.n_ctx(),
                      ", minimum 4)");
  if (n_tok < 2 * n_ctx)
    return make_error("imatrix: ", n_tok, " tokens, fewer than 2 x ctx = ", 2 * n_ctx);
  int64_t n_chunks = n_tok / n_ctx;
  if (opt.n_chunks > 0) n_chunks = std::min(n_chunks, opt.n_chunks);
  const int64_t first = n_ctx / 2, n_vocab = ctx.n_vocab();
  ImatrixRunResult r;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  ctx.set_observer(&stats);
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (opt.replace_bos) chunk[0] = opt.bos_id;
    ctx.clear();
    // Every position's logits, as llama-imatrix requests them (the head sees all tokens).
    Status st = ctx.decode(chunk, n_ctx);
    if (!st.ok()) {
      ctx.set_observer(nullptr);
      return st.error();
    }
    for (int64_t i = first; i < n_ctx - 1; ++i) {
      const double lp =
          log_softmax_at(ctx.logits_row(i), n_vocab, chunk[static_cast<size_t>(i + 1)]);
      if (!std::isfinite(lp)) {
        ctx.set_observer(nullptr);
        return make_error("imatrix: non-finite log-probability in chunk ", c + 1,
                          " (NaN/Inf in the model's weights?)");
      }
      nll -= lp;
      nll2 += lp * lp;
      ++count;
    }
    r.chunk_ppl.push_back(std::exp(nll / static_cast<double>(count)));
    if (opt.progress) opt.progress(c + 1, n_chunks, r.chunk_ppl.back());
  }
  ctx.set_observer(nullptr);
  r.chunks = n_chunks;
  r.tokens = n_chunks * n_ctx;
  r.seconds = seconds_since(t0);
  const double mean = nll / static_cast<double>(count);
  r.ppl = std::exp(mean);
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  r.ppl_stderr = var > 0 && count > 1 ? r.ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0;
  return r;
}

}  // namespace qforge

namespace qforge {

ImatrixComparison compare_imatrix(const Imatrix& a, const Imatrix& b) {
  ImatrixComparison c;
  std::vector<double> rel;
  for (const auto& ea : a.entries) {
    const ImatrixEntry* eb = b.find(ea.name);
    if (!eb) {
      c.only_a.push_back(ea.name);
      continue;
    }
    if (eb->importance.size() != ea.importance.size()) {
      c.shape_mismatch.push_back(ea.name);
      continue;
    }
    ++c.tensors;
    for (size_t i = 0; i < ea.importance.size(); ++i) {
      const double x = ea.importance[i], y = eb->importance[i];
      const double r = x == y ? 0.0 : std::abs(x - y) / std::max(std::abs(y), 1e-30);
      if (r > c.max_rel || rel.empty()) {
        c.max_rel = std::max(c.max_rel, r);
        if (r >= c.max_rel) c.max_tensor = ea.name;
      }
      rel.push_back(r);
    }
  }
  for (const auto& eb : b.entries)
    if (!a.find(eb.name)) c.only_b.push_back(eb.name);
  c.values = rel.size();
  if (!rel.empty()) {
    double sum = 0;
    for (double r : rel) sum += r;
    c.mean_rel = sum / static_cast<double>(rel.size());
    auto mid = rel.begin() + static_cast<std::ptrdiff_t>(rel.size() / 2);
    std::nth_element(rel.begin(), mid, rel.end());
    c.median_rel = *mid;
  }
  return c;
}

}  // namespace qforge
