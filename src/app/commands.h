// CLI subcommands. Each add_*_command registers one subcommand on the root app; its callback
// throws CliError (core/result.h) on failure, which main() prints as a one-line error with a
// non-zero exit code. Commands print data to stdout (--json for machine-readable output) and
// log/progress to stderr.
#pragma once

#include <CLI/CLI.hpp>

namespace qforge {

void add_inspect_command(CLI::App& app);     // cmd_inspect.cpp
void add_verify_command(CLI::App& app);      // cmd_verify.cpp   (verify + checksum)
void add_quantize_command(CLI::App& app);    // cmd_quantize.cpp
void add_convert_command(CLI::App& app);     // cmd_convert.cpp
void add_tokenize_command(CLI::App& app);    // cmd_tokenize.cpp
void add_perplexity_command(CLI::App& app);  // cmd_perplexity.cpp
void add_generate_command(CLI::App& app);    // cmd_generate.cpp
void add_bench_command(CLI::App& app);       // cmd_bench.cpp
void add_ladder_command(CLI::App& app);      // cmd_ladder.cpp (the main job)
void add_logits_command(CLI::App& app);      // cmd_logits.cpp
void add_plan_command(CLI::App& app);        // cmd_plan.cpp
void add_gate_command(CLI::App& app);        // cmd_gate.cpp
void add_prompts_command(CLI::App& app);     // cmd_prompts.cpp (critical prompts)
void add_imatrix_command(CLI::App& app);     // cmd_imatrix.cpp

}  // namespace qforge
