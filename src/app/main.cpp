// qforge: convert, quantize, verify and evaluate LLMs in GGUF format.
//
// Exit codes: 0 success; 1 the operation failed (bad or missing input file, a failed check,
// I/O error); 2 usage error (unknown command or option, a missing or out-of-range argument).
// Every error is one line on stderr: "qforge: error: ..." or, with --log-format json, one JSON
// event {"ts", "level": "error", "event": "error" | "usage_error", "msg", "exit_code"}.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "app/cli_checks.h"
#include "app/commands.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/result.h"
#include "io/load_policy.h"

namespace {

// Control characters (from names read out of a corrupt file) would split the line.
std::string one_line(std::string_view msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == ' '))
    msg.remove_suffix(1);
  std::string line;
  for (char c : msg) {
    if (c == '\n' || c == '\r') {
      line += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      line += '?';
    } else {
      line += c;
    }
  }
  return line;
}

// Prints the error (one line, in the chosen log format) and returns its exit code.
int report(std::string_view event, std::string_view msg, int exit_code) {
  std::fflush(stdout);
  if (qforge::log_format() == qforge::LogFormat::Json) {
    nlohmann::json j;
    j["ts"] =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    j["level"] = "error";
    j["event"] = std::string(event);
    j["msg"] = one_line(msg);
    j["exit_code"] = exit_code;
    std::fprintf(stderr, "%s\n",
                 j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fprintf(stderr, "qforge: error: %s\n", one_line(msg).c_str());
  }
  return exit_code;
}

// The log format must be known before parsing, so that parse errors are reported in it too.
void preset_log_format(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if ((a == "--log-format" && i + 1 < argc && std::string_view(argv[i + 1]) == "json") ||
        a == "--log-format=json")
      qforge::set_log_format(qforge::LogFormat::Json);
  }
}

// The first word that is neither an option nor a global option's value must name a command:
// CLI11 would otherwise say "A subcommand is required" for a misspelled one.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") return {};
    if (a.starts_with("-")) {
      if (a == "--log-format" || a == "--log-level" || a == "--allowed-dir") ++i;
      continue;
    }
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->check_name(std::string(a))) return {};
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({}))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    return qforge::cat("unknown command '", a, "' (commands: ", names, ")");
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  // Writes past RLIMIT_FSIZE must fail with EFBIG (a clean error), not kill the process.
  std::signal(SIGXFSZ, SIG_IGN);
  preset_log_format(argc, argv);
  // SIGINT/SIGTERM/SIGHUP remove unfinished outputs' temp files and exit 128 + signal.
  qforge::install_interrupt_handlers();

  CLI::App app{"qforge: turn a language model into a smaller, faster one that still answers well"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  app.footer(
      "Exit codes: 0 success, 1 failure (input, check or I/O error), 2 usage error. With "
      "--log-format json every error is one JSON line on stderr.");
  std::string log_fmt = "human", log_lvl = "info";
  std::string allowed_dir;
  bool require_checksum = false, no_verify = false;
  app.add_option("--log-format", log_fmt, "Log format on stderr: human or json")
      ->check(CLI::IsMember({"human", "json"}));
  app.add_option("--log-level", log_lvl, "debug, info, warn, error or quiet")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "quiet"}));
  app.add_option("--allowed-dir", allowed_dir,
                 "Refuse to load files whose real path is outside this directory "
                 "(default: $QFORGE_ALLOWED_DIR)");
  app.add_flag("--require-checksum", require_checksum,
               "Refuse to load files without a .sha256 sidecar (a present sidecar is always "
               "checked)");
  app.add_flag("--no-verify", no_verify,
               "Do not check present .sha256 sidecars when loading (by default a sidecar that "
               "does not match its file, or names another file, is an error)");
  app.parse_complete_callback([&] {
    qforge::set_log_format(log_fmt == "json" ? qforge::LogFormat::Json : qforge::LogFormat::Human);
    qforge::LogLevel lvl = qforge::LogLevel::Info;
    if (log_lvl == "debug") lvl = qforge::LogLevel::Debug;
    if (log_lvl == "warn") lvl = qforge::LogLevel::Warn;
    if (log_lvl == "error") lvl = qforge::LogLevel::Error;
    if (log_lvl == "quiet") lvl = qforge::LogLevel::Quiet;
    qforge::set_log_level(lvl);
    auto& policy = qforge::load_policy();
    policy.allowed_dir = allowed_dir;
    if (policy.allowed_dir.empty())
      if (const char* env = std::getenv("QFORGE_ALLOWED_DIR")) policy.allowed_dir = env;
    policy.require_checksum = require_checksum;
    policy.verify_sidecar = !no_verify;
    qforge::install_interrupt_handlers(log_fmt == "json");
  });

  qforge::add_inspect_command(app);
  qforge::add_verify_command(app);
  qforge::add_quantize_command(app);
  qforge::add_convert_command(app);
  qforge::add_tokenize_command(app);
  qforge::add_perplexity_command(app);
  qforge::add_generate_command(app);
  qforge::add_bench_command(app);
  qforge::add_ladder_command(app);
  qforge::add_logits_command(app);
  qforge::add_plan_command(app);
  qforge::add_gate_command(app);
  qforge::add_prompts_command(app);
  qforge::add_imatrix_command(app);

  if (std::string msg = unknown_command(app, argc, argv); !msg.empty())
    return report("usage_error", msg, qforge::kUsageExit);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are not errors: CLI11 prints them (stdout) and exits 0.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string msg = e.what();
    const CLI::App* where = &app;
    while (!where->get_subcommands().empty()) where = where->get_subcommands().front();
    msg += where == &app ? " (run 'qforge --help')"
                         : " (run 'qforge " + where->get_name() + " --help')";
    return report("usage_error", msg, qforge::kUsageExit);
  } catch (const qforge::CliError& e) {
    return report(e.exit_code == qforge::kUsageExit ? "usage_error" : "error", e.message,
                  e.exit_code);
  } catch (const std::bad_alloc&) {
    return report("error", "out of memory", 1);
  } catch (const std::exception& e) {
    return report("error", e.what(), 1);
  }
  return 0;
}
