// `vigil agent --config FILE [--check-config]`: validates the agent config (every error with
// its file, line and key), the TLS files and the API tokens, then runs the node through
// hooks.run_agent. Apart from the rest of the CLI so that the `vigil-agent` binary
// (daemon/agent_main.cc) runs the very same checks without linking the command line.
#pragma once

#include <string>

#include "cli/hooks.h"

namespace vigil::cli {

// Returns the process exit code (cli.h): kExitUsage for an invalid config, kExitOk after
// --check-config passes, otherwise what hooks.run_agent returns.
int agent_command(const std::string& path, bool check_only, const CliHooks& hooks);

}  // namespace vigil::cli
