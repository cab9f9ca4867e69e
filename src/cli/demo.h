// `vigil demo`: the guided tour of what Vigil guarantees, on real agents.
#pragma once

#include <string>

#include "cli/hooks.h"

namespace vigil::cli {

struct DemoOptions {
  std::string dir;  // working directory; default /tmp/vigil-demo (removed at the end)
  int nodes = 3;
  int writes = 100;               // acknowledged writes before the leader is killed
  bool keep = false;              // keep the directory (configs, data, logs) for inspection
  int failover_target_ms = 1000;  // --script exits non-zero above this
};

// Starts `nodes` agents on 127.0.0.1 with mutual TLS and fsync on, writes through them,
// kills the leader with SIGKILL, shows the new leader, the outage a client saw and that every
// acknowledged write survived, restarts the old leader and shows it catch up, then cleans up
// (also on Ctrl-C, and what an earlier crashed run left). Returns 0 only if no acknowledged
// write was lost and failover stayed within failover_target_ms.
int run_demo(const DemoOptions& options, const CliHooks& hooks);

}  // namespace vigil::cli
