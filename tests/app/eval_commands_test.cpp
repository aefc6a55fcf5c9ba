// perplexity / generate / bench on the command line: reports, acceptance figures on a few
// chunks of the reference models, and clean one-line errors for bad inputs.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_expect.h"
#include "engine/tiny_model_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::expect_clean_error;
using test::shell_quote;
using test::write_text;

using test::run_qforge;

TEST(EvalCommands, BadModelsAreRefusedWithTheTensorNamed) {
  test::TempDir tmp;
  write_text(tmp.file("t.txt"), "hello world");
  test::TinySpec missing;
  missing.drop = "blk.1.attn_v.weight";
  ASSERT_EQ(test::write_tiny_model(tmp.file("missing.gguf"), missing), "");
  test::TinySpec shape;
  shape.wrong_shape = "blk.0.ffn_down.weight";
  ASSERT_EQ(test::write_tiny_model(tmp.file("shape.gguf"), shape), "");
  test::TinySpec arch;
  arch.arch = "falcon";
  ASSERT_EQ(test::write_tiny_model(tmp.file("arch.gguf"), arch), "");
  for (const char* cmd : {"perplexity", "generate", "bench"}) {
    SCOPED_TRACE(cmd);
    const std::string extra = std::string(cmd) == "perplexity"
                                  ? " --file " + shell_quote(tmp.file("t.txt"))
                              : std::string(cmd) == "generate" ? " -p hi"
                                                               : "";
    expect_clean_error(
        run_qforge(std::string(cmd) + " " + shell_quote(tmp.file("missing.gguf")) + extra),
        "missing tensor 'blk.1.attn_v.weight'");
    expect_clean_error(
        run_qforge(std::string(cmd) + " " + shell_quote(tmp.file("shape.gguf")) + extra),
        "tensor 'blk.0.ffn_down.weight' has shape [192, 64], expected [96, 64]");
    expect_clean_error(
        run_qforge(std::string(cmd) + " " + shell_quote(tmp.file("arch.gguf")) + extra),
        "unsupported architecture 'falcon'");
  }
  expect_clean_error(run_qforge("perplexity " + shell_quote(tmp.file("nope.gguf")) + " --file " +
                                shell_quote(tmp.file("t.txt"))),
                     "nope.gguf");
}

TEST(EvalCommands, ContextLargerThanTheModelsIsRefused) {
  test::TempDir tmp;
  ASSERT_EQ(test::write_tiny_model(tmp.file("m.gguf"), {}), "");  // context_length 256
  write_text(tmp.file("t.txt"), std::string(10000, 'a'));
  expect_clean_error(run_qforge("perplexity " + shell_quote(tmp.file("m.gguf")) + " --file " +
                                shell_quote(tmp.file("t.txt")) + " --ctx 512"),
                     "--ctx 512 exceeds the model's context length 256");
}

TEST(EvalCommands, TextShorterThanTwoContextsIsRefused) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  test::TempDir tmp;
  write_text(tmp.file("short.txt"), "The kernel is the core of the operating system.");
  expect_clean_error(
      run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-f16.gguf")) +
                 " --file " + shell_quote(tmp.file("short.txt")) + " --ctx 128"),
      "short.txt: ");
  auto r = run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-f16.gguf")) +
                      " --file " + shell_quote(tmp.file("short.txt")) + " --ctx 128");
  EXPECT_NE(r.err.find("fewer than 2 x ctx = 256"), std::string::npos) << r.err;
}

TEST(EvalCommands, BenchReportsTheFiguresAsJson) {
  test::TempDir tmp;
  ASSERT_EQ(test::write_tiny_model(tmp.file("m.gguf"), {}), "");
  auto r = run_qforge("bench " + shell_quote(tmp.file("m.gguf")) + " -p 32 -n 8 -r 1 -t 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"pp_tokens_per_second", "tg_tokens_per_second", "ttft_ms", "load_seconds",
                        "peak_rss_bytes", "file_bytes", "n_params", "bits_per_weight"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GT(j["pp_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(j["tg_tokens_per_second"].get<double>(), 0);
  // One rep: its median is its value, the mean too.
  EXPECT_DOUBLE_EQ(j["tg_median_tokens_per_second"].get<double>(),
                   j["tg_tokens_per_second"].get<double>());
  EXPECT_DOUBLE_EQ(j["pp_median_tokens_per_second"].get<double>(),
                   j["pp_tokens_per_second"].get<double>());
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 1e6);
  EXPECT_EQ(j["threads"].get<int>(), 2);
  EXPECT_NEAR(j["bits_per_weight"].get<double>(), 32.0, 1e-9);
}

// Whether the tokenizer gives mini a realistic token count for a text (it is written by
// another issue; these tests skip until it lands).
bool tokenizer_ready() {
  test::TempDir tmp;
  write_text(tmp.file("t.txt"), std::string(4000, 'x'));
  auto r = run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-f16.gguf")) +
                      " --file " + shell_quote(tmp.file("t.txt")) + " --ctx 4");
  return r.err.find(": 0 tokens") == std::string::npos;
}

// Acceptance 2 on the first chunks (the whole-file figures are in docs/BENCHMARKS.md).
TEST(EvalCommands, PerplexityAndKldOfMiniOnAFewChunks) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.gguf");
  if (!tokenizer_ready()) GTEST_SKIP() << "tokenizer not available yet";
  test::TempDir tmp;
  const std::string text = shell_quote(test::shared_path("data/eval.txt"));
  const std::string base = tmp.file("mini.kld");
  auto r =
      run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-f16.gguf")) +
                 " --file " + text + " --chunks 4 -t 2 --json --kld-base " + shell_quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["chunks"], 4);
  EXPECT_EQ(j["tokens_scored"], 4 * 255);
  // qforge over the whole file gives llama.cpp's 13.0613 +/- 0.15817 (docs/BENCHMARKS.md); its
  // first four chunks (kernel documentation) are harder: 31.282.
  EXPECT_NEAR(j["ppl"].get<double>(), 31.282, 0.1);
  EXPECT_GT(j["ppl_stderr"].get<double>(), 0.0);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0.0);
  const double ppl_base = j["ppl"].get<double>();

  r = run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-Q4_K_M.gguf")) +
                 " --file " + text + " -t 2 --json --kld " + shell_quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["chunks"], 4);
  for (const char* k : {"kld_mean", "kld_median", "kld_p99", "same_top_pct", "rms_dp_pct"})
    EXPECT_TRUE(j.contains(k)) << k;
  // llama.cpp over the whole file: mean KLD 0.033588, same top 89.845 %.
  EXPECT_GT(j["kld_mean"].get<double>(), 0.02);
  EXPECT_LT(j["kld_mean"].get<double>(), 0.05);
  EXPECT_GT(j["same_top_pct"].get<double>(), 84.0);
  EXPECT_LT(j["same_top_pct"].get<double>(), 95.0);
  EXPECT_NEAR(j["ppl_base"].get<double>(), ppl_base, 1e-3 * ppl_base);
  EXPECT_GT(j["ppl"].get<double>(), ppl_base);

  // A base made with another context is refused.
  r = run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-Q4_K_M.gguf")) +
                 " --file " + text + " --ctx 256 --json --kld " + shell_quote(base));
  expect_clean_error(r, "KLD base was made with --ctx 512, this run uses 256");
  // ... and one made from another text.
  r = run_qforge("perplexity " + shell_quote(test::shared_path("reference/mini-Q4_K_M.gguf")) +
                 " --file " + shell_quote(test::shared_path("data/calibration.txt")) +
                 " --json --kld " + shell_quote(base));
  expect_clean_error(r, "another text");
}

// Acceptance 3: greedy continuation of "The kernel" by refmodel-f16 (../shared/README.md).
TEST(EvalCommands, GreedyGenerationReproducesLlamaCpp) {
  QF_REQUIRE_SHARED("reference/refmodel-f16.gguf");
  if (!tokenizer_ready()) GTEST_SKIP() << "tokenizer not available yet";
  auto r = run_qforge("generate " + shell_quote(test::shared_path("reference/refmodel-f16.gguf")) +
                      " -p 'The kernel' -n 24 --temp 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "The kernel will be able to\nuse the same mechanism as the kernel.\n\nThe kernel "
            "is not aware that the kernel is\n");
}

}  // namespace
}  // namespace qforge
