// qforge: convert, quantize, verify and evaluate LLMs in GGUF format.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "app/commands.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/result.h"
#include "io/load_policy.h"

int main(int argc, char** argv) {
  // Writes past RLIMIT_FSIZE must fail with EFBIG (a clean error), not kill the process.
  std::signal(SIGXFSZ, SIG_IGN);
  // SIGINT/SIGTERM/SIGHUP remove unfinished outputs' temp files and exit 128 + signal.
  qforge::install_interrupt_handlers();

  CLI::App app{"qforge: turn a language model into a smaller, faster one that still answers well"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qforge::CliError& e) {
    std::fflush(stdout);
    // Always one line: names taken from a corrupt file may hold control characters.
    std::string line;
    for (char c : e.message) {
      if (c == '\n' || c == '\r') {
        line += "\\n";
      } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        line += '?';
      } else {
        line += c;
      }
    }
    std::fprintf(stderr, "qforge: error: %s\n", line.c_str());
    return e.exit_code;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "qforge: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qforge: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
