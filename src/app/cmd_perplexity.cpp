#include "app/commands.h"
#include "core/result.h"

namespace qforge {

// Placeholder until the command lands (see the open issues); refuses cleanly.
void add_perplexity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw CliError{"perplexity: not available yet", 2}; });
}

}  // namespace qforge
