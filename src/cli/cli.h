// The `vigil` command line: parses argv and runs one subcommand.
#pragma once

#include "cli/hooks.h"

namespace vigil::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (message on stderr)
inline constexpr int kExitUsage = 2;    // bad command line or invalid config file

// Runs `vigil ARGS...` and returns the process exit code. Writes results to stdout and
// errors to stderr. Single-threaded; local-cluster blocks signals and waits for children.
int run_cli(int argc, char** argv, const CliHooks& hooks);

}  // namespace vigil::cli
