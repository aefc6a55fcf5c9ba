#include "app/commands.h"
#include "core/result.h"

namespace qforge {

// Placeholder until the command lands (see the open issues); refuses cleanly.
void add_ladder_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("ladder", "(not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw CliError{"ladder: not available yet", 2}; });
}

}  // namespace qforge
