// qforge logits MODEL --tokens-file IDS.json --out FILE.f32 [--threads N] [--batch N] [--force]
// [--json]: runs the token ids (a JSON array of integers) through the engine as one sequence
// starting at position 0 and writes every position's logits: n_tokens rows of n_vocab float32,
// little-endian, row-major, no header (numpy: fromfile(F, '<f4').reshape(n_tokens, n_vocab)).
// The file is written atomically with its .sha256 sidecar. --json prints a summary (sizes, the
// file's SHA-256, the argmax of the last row).
#include <bit>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "io/atomic_file.h"

namespace qforge {
namespace {

static_assert(std::endian::native == std::endian::little, "logits files are little-endian");

struct LogitsArgs {
  std::string model, tokens_file, out;
  int threads = 0;
  int64_t batch = 512;
  bool force = false, json = false;
};

// The ids of IDS.json: a non-empty array of integers in [0, n_vocab).
std::vector<int32_t> read_ids(const std::string& path, int64_t n_vocab) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError{path + ": cannot open file", 1};
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    throw CliError{path + ": not a JSON array of token ids", 1};
  if (j.empty()) throw CliError{path + ": the token array is empty", 1};
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= n_vocab)
      throw CliError{cat(path, ": element ", i, " is not a token id below ", n_vocab), 1};
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

void run_logits(const LogitsArgs& a) {
  check_input(a.model);
  check_input(a.tokens_file);
  if (a.batch < 1) throw CliError{"logits: --batch must be positive", 2};
  Model model = unwrap(Model::load(a.model));
  const ModelParams& p = model.params();
  const std::vector<int32_t> ids = read_ids(a.tokens_file, p.n_vocab);
  const auto n = static_cast<int64_t>(ids.size());
  if (n > p.n_ctx_train)
    throw CliError{
        cat(a.tokens_file, ": ", n, " tokens exceed the model's context length ", p.n_ctx_train)};
  AtomicFileOptions opts;
  opts.overwrite = a.force;
  AtomicFile out = unwrap(AtomicFile::create(a.out, opts));
  ThreadPool pool(a.threads);
  // The context is exactly the sequence (phi3's longrope picks its factors from it, as HF
  // does from the sequence length). An f32 KV cache: these logits are compared with HF's f32.
  Context ctx(model, n, pool, a.batch, KvType::F32);
  int32_t last_argmax = -1;
  for (int64_t b = 0; b < n; b += a.batch) {
    const int64_t m = std::min(a.batch, n - b);
    unwrap(ctx.decode(
        std::span<const int32_t>(ids).subspan(static_cast<size_t>(b), static_cast<size_t>(m)), m));
    const std::span<const float> rows = ctx.logits();
    unwrap(out.write(rows.data(), rows.size_bytes()));
    const float* last = ctx.logits_row(m - 1);
    last_argmax = static_cast<int32_t>(std::max_element(last, last + p.n_vocab) - last);
  }
  unwrap(out.commit());
  log_info("logits.done", "logits written", {{"tokens", n}, {"vocab", p.n_vocab}});
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["file"] = a.out;
    j["n_tokens"] = n;
    j["n_vocab"] = p.n_vocab;
    j["bytes"] = out.bytes_written();
    j["sha256"] = out.sha256();
    j["last_argmax"] = last_argmax;
    j["threads"] = pool.size();
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::printf("%s: %lld tokens x %lld logits (float32) written, sha256 %s, last argmax %d\n",
              a.out.c_str(), static_cast<long long>(n), static_cast<long long>(p.n_vocab),
              out.sha256().c_str(), last_argmax);
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "logits", "Write the logits of every position of a token sequence (float32 rows)");
  auto a = std::make_shared<LogitsArgs>();
  cmd->add_option("MODEL", a->model, "GGUF model")->required();
  cmd->add_option("--tokens-file", a->tokens_file, "JSON array of token ids (one sequence)")
      ->required();
  cmd->add_option("--out", a->out, "Output file: n_tokens x n_vocab float32 little-endian")
      ->required();
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)")
      ->check(thread_count());
  cmd->add_option("-b,--batch", a->batch, "Tokens per forward micro-batch")->capture_default_str();
  cmd->add_flag("--force", a->force, "Overwrite an existing output file");
  cmd->add_flag("--json", a->json, "Print a JSON summary on stdout");
  cmd->callback([a] { run_logits(*a); });
}

}  // namespace qforge
