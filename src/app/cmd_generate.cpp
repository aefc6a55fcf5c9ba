#include "app/commands.h"
#include "core/result.h"

namespace qforge {

// Placeholder until the command lands (see the open issues); refuses cleanly.
void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw CliError{"generate: not available yet", 2}; });
}

}  // namespace qforge
