// The running node: Raft + WAL + transport + the client API, wired on one event loop.
#pragma once

#include "daemon/config.h"

namespace vigil::daemon {

// Runs this node in the foreground until SIGTERM or SIGINT, then shuts down cleanly.
// `config` has been validated by load_agent_config(). Returns the process exit code:
// 0 after a clean stop, non-zero after a fatal error (already logged).
// Implemented in src/daemon/agent.cc (owned by the lead engineer; not written yet).
int run_agent(const AgentConfig& config);

}  // namespace vigil::daemon
