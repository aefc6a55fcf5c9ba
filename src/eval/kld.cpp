#include "eval/kld.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "eval/perplexity.h"
#include "io/sha256.h"

namespace qforge {
namespace {

constexpr char kMagic[8] = {'Q', 'F', 'K', 'L', 'D', 'B', '1', '\n'};
constexpr uint32_t kVersion = 1;
constexpr float kRange = 24.0f;  // nats below the top token that are represented

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

size_t record_bytes(uint32_t n_vocab) {
  return 12 + 2 * static_cast<size_t>(n_vocab);
}

}  // namespace

std::string tokens_digest(const std::vector<int32_t>& tokens) {
  return sha256_hex({reinterpret_cast<const uint8_t*>(tokens.data()), tokens.size() * 4});
}

Result<KldBaseWriter> KldBaseWriter::create(const std::string& path, const KldBaseHeader& header,
                                            bool overwrite) {
  KldBaseWriter w;
  w.h_ = header;
  QF_TRY(w.out_, AtomicFile::create(path, AtomicFileOptions{overwrite, true}));
  std::vector<uint8_t> b(kMagic, kMagic + 8);
  put<uint32_t>(b, kVersion);
  put<uint32_t>(b, header.n_vocab);
  put<uint32_t>(b, header.n_ctx);
  put<uint32_t>(b, header.n_chunks);
  put<uint32_t>(b, header.n_scored);
  put<uint32_t>(b, 0);
  put<uint64_t>(b, header.n_text_tokens);
  std::string sha = header.tokens_sha256;
  sha.resize(64, '0');
  b.insert(b.end(), sha.begin(), sha.end());
  std::string name = header.model.substr(0, 1024);
  put<uint16_t>(b, static_cast<uint16_t>(name.size()));
  b.insert(b.end(), name.begin(), name.end());
  QF_CHECK(w.out_.write(b.data(), b.size()));
  w.lp_.resize(header.n_vocab);
  w.rec_.resize(record_bytes(header.n_vocab));
  return w;
}

Status KldBaseWriter::add(const float* logits, const int32_t* targets, int64_t n) {
  const uint32_t V = h_.n_vocab;
  for (int64_t t = 0; t < n; ++t) {
    log_softmax_row(logits + t * static_cast<int64_t>(V), V, lp_.data());
    const float hi = *std::max_element(lp_.begin(), lp_.end());
    const float mn = *std::min_element(lp_.begin(), lp_.end());
    const float lo = std::max(mn, hi - kRange);
    const float step = hi > lo ? (hi - lo) / 65535.0f : 1.0f;
    uint8_t* r = rec_.data();
    std::memcpy(r, &lo, 4);
    std::memcpy(r + 4, &step, 4);
    std::memcpy(r + 8, &lp_[static_cast<size_t>(targets[t])], 4);
    for (uint32_t i = 0; i < V; ++i) {
      const float q = std::nearbyint((std::max(lp_[i], lo) - lo) / step);
      const auto code = static_cast<uint16_t>(std::clamp(q, 0.0f, 65535.0f));
      std::memcpy(r + 12 + 2 * i, &code, 2);
    }
    QF_CHECK(out_.write(rec_.data(), rec_.size()));
    ++records_;
  }
  return ok_status();
}

Status KldBaseWriter::commit() {
  const uint64_t want = uint64_t{h_.n_chunks} * h_.n_scored;
  if (records_ != want)
    return make_error(out_.path(), ": wrote ", records_, " records, expected ", want);
  return out_.commit();
}

Result<KldComparer> KldComparer::open(const std::string& path) {
  KldComparer c;
  c.path_ = path;
  c.in_.reset(std::fopen(path.c_str(), "rb"));
  if (!c.in_) return make_error(path, ": cannot open: ", std::strerror(errno));
  uint8_t h[8 + 4 * 6 + 8 + 64 + 2];
  if (std::fread(h, 1, sizeof(h), c.in_.get()) != sizeof(h) || std::memcmp(h, kMagic, 8) != 0)
    return make_error(path, ": not a qforge KLD base file (bad magic)");
  if (get<uint32_t>(h + 8) != kVersion)
    return make_error(path, ": unsupported KLD base version ", get<uint32_t>(h + 8));
  c.h_.n_vocab = get<uint32_t>(h + 12);
  c.h_.n_ctx = get<uint32_t>(h + 16);
  c.h_.n_chunks = get<uint32_t>(h + 20);
  c.h_.n_scored = get<uint32_t>(h + 24);
  c.h_.n_text_tokens = get<uint64_t>(h + 32);
  c.h_.tokens_sha256.assign(reinterpret_cast<const char*>(h + 40), 64);
  const uint16_t name_len = get<uint16_t>(h + 104);
  c.h_.model.resize(name_len);
  if (name_len && std::fread(c.h_.model.data(), 1, name_len, c.in_.get()) != name_len)
    return make_error(path, ": truncated header");
  if (c.h_.n_vocab == 0 || c.h_.n_vocab > (1u << 24) || c.h_.n_ctx < 4 ||
      c.h_.n_scored != static_cast<uint32_t>(scored_per_chunk(c.h_.n_ctx)))
    return make_error(path, ": inconsistent header (vocab ", c.h_.n_vocab, ", ctx ", c.h_.n_ctx,
                      ", scored ", c.h_.n_scored, ")");
  // The file must hold exactly the announced records.
  const long here = std::ftell(c.in_.get());
  std::fseek(c.in_.get(), 0, SEEK_END);
  const long end = std::ftell(c.in_.get());
  std::fseek(c.in_.get(), here, SEEK_SET);
  const uint64_t want = uint64_t{c.h_.n_chunks} * c.h_.n_scored * record_bytes(c.h_.n_vocab);
  if (static_cast<uint64_t>(end - here) != want)
    return make_error(path, ": ", end - here, " bytes of records, expected ", want,
                      " (truncated or corrupt)");
  c.rec_.resize(record_bytes(c.h_.n_vocab));
  c.lp_base_.resize(c.h_.n_vocab);
  c.lp_q_.resize(c.h_.n_vocab);
  return c;
}

Status KldComparer::check_compatible(uint32_t n_vocab, uint32_t n_ctx,
                                     const std::string& tokens_sha256, int64_t n_chunks) const {
  if (n_vocab != h_.n_vocab)
    return make_error(path_, ": KLD base has vocabulary ", h_.n_vocab, ", this model has ",
                      n_vocab);
  if (n_ctx != h_.n_ctx)
    return make_error(path_, ": KLD base was made with --ctx ", h_.n_ctx, ", this run uses ",
                      n_ctx);
  if (tokens_sha256 != h_.tokens_sha256)
    return make_error(path_,
                      ": KLD base was made from another text or tokenization "
                      "(token digest differs)");
  if (n_chunks != static_cast<int64_t>(h_.n_chunks))
    return make_error(path_, ": KLD base holds ", h_.n_chunks, " chunks, this run evaluates ",
                      n_chunks);
  return ok_status();
}

Status KldComparer::add(const float* logits, const int32_t* targets, int64_t n) {
  const uint32_t V = h_.n_vocab;
  for (int64_t t = 0; t < n; ++t) {
    if (records_read_ >= uint64_t{h_.n_chunks} * h_.n_scored)
      return make_error(path_, ": more tokens than the KLD base holds");
    if (std::fread(rec_.data(), 1, rec_.size(), in_.get()) != rec_.size())
      return make_error(path_, ": truncated record ", records_read_);
    ++records_read_;
    const float lo = get<float>(rec_.data()), step = get<float>(rec_.data() + 4);
    const float lp_target_base = get<float>(rec_.data() + 8);
    double sum = 0;
    uint16_t best_code = 0;
    uint32_t base_top = 0;
    for (uint32_t i = 0; i < V; ++i) {
      const uint16_t code = get<uint16_t>(rec_.data() + 12 + 2 * i);
      if (code > best_code) best_code = code, base_top = i;
      lp_base_[i] = lo + static_cast<float>(code) * step;
      sum += std::exp(static_cast<double>(lp_base_[i]));
    }
    // A corrupt record must not turn into a NaN or infinite KLD: accept only what the writer
    // produces (finite lo/step, step > 0, the top log-probability in [-ln V, 0], a finite
    // log-probability <= 0 for the true token).
    const double top = lo + static_cast<double>(best_code) * step, tol = 1e-3 + step;
    if (!std::isfinite(lo) || !std::isfinite(step) || !(step > 0) || !(top <= tol) ||
        !(top >= -std::log(static_cast<double>(V)) - tol) || !std::isfinite(lp_target_base) ||
        !(lp_target_base <= tol))
      return make_error(path_, ": record ", records_read_ - 1, " is corrupt (lo ", lo, ", step ",
                        step, ", target log-probability ", lp_target_base, ")");
    const double renorm = std::log(sum);  // the clamped/rounded values do not sum to exactly 1
    log_softmax_row(logits + t * static_cast<int64_t>(V), V, lp_q_.data());
    double kld = 0;
    uint32_t q_top = 0;
    for (uint32_t i = 0; i < V; ++i) {
      const double lb = lp_base_[i] - renorm;
      kld += std::exp(lb) * (lb - lp_q_[i]);
      if (lp_q_[i] > lp_q_[q_top]) q_top = i;
    }
    kld = std::max(kld, 0.0);
    kld_.push_back(static_cast<float>(kld));
    sum_kld_ += kld;
    sum_kld2_ += kld * kld;
    const double lpq_t = lp_q_[static_cast<size_t>(targets[t])];
    const double dp = std::exp(lpq_t) - std::exp(static_cast<double>(lp_target_base));
    sum_dp2_ += dp * dp;
    nll_base_ -= lp_target_base;
    nll_q_ -= lpq_t;
    if (q_top == base_top) ++same_top_;
  }
  return ok_status();
}

KldResult KldComparer::finish() const {
  KldResult r;
  const auto n = static_cast<int64_t>(kld_.size());
  r.n_tokens = n;
  if (n == 0) return r;
  const double dn = static_cast<double>(n);
  r.kld_mean = sum_kld_ / dn;
  const double var = sum_kld2_ / dn - r.kld_mean * r.kld_mean;
  r.kld_mean_err = n > 1 && var > 0 ? std::sqrt(var / (dn - 1)) : 0;
  std::vector<float> s = kld_;
  std::sort(s.begin(), s.end());
  auto pct = [&](double q) {
    const double pos = q * (dn - 1);
    const auto i = static_cast<size_t>(pos);
    const double f = pos - static_cast<double>(i);
    return i + 1 < s.size() ? s[i] * (1 - f) + s[i + 1] * f : static_cast<double>(s[i]);
  };
  r.kld_median = pct(0.5);
  r.kld_p90 = pct(0.9);
  r.kld_p99 = pct(0.99);
  r.kld_max = s.back();
  const double p = static_cast<double>(same_top_) / dn;
  r.same_top_pct = 100.0 * p;
  r.same_top_err_pct = n > 1 ? 100.0 * std::sqrt(p * (1 - p) / (dn - 1)) : 0;
  r.rms_dp_pct = 100.0 * std::sqrt(sum_dp2_ / dn);
  r.ppl_base = std::exp(nll_base_ / dn);
  r.ppl = std::exp(nll_q_ / dn);
  r.ppl_ratio = r.ppl / r.ppl_base;
  return r;
}

}  // namespace qforge
