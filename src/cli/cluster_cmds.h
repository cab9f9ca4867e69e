// Resource-manager commands of the `vigil` CLI: apply, status, explain, resource operations.
#pragma once

#include <cstdint>
#include <string>

#include "cli/client_cmds.h"

namespace vigil::cli {

// `vigil apply -f FILE [--dry-run]`: validates FILE on the agent (errors name FILE, line and
// key path: exit 2), prints the changes and the plan, and (without --dry-run) stores it.
int cmd_apply(const ClientTarget& to, const std::string& file, bool dry_run, bool json);

// The resource-manager part of `vigil status`: node states, every resource where it runs,
// failures and fail counts, warnings and pending actions. `watch_ms` > 0 refreshes.
int cmd_cluster_status(const ClientTarget& to, bool json, int watch_ms);

// `vigil explain RESOURCE`: the scores per node with the terms that make them, and why it
// runs where it runs (or nowhere).
int cmd_explain(const ClientTarget& to, const std::string& resource, bool json);

struct ResourceOpOptions {
  std::string op;  // move, ban, clear, cleanup, restart, enable, disable
  std::string resource;
  std::string node;
  int64_t lifetime_s = 0;  // move/ban: the constraint ends by itself after this (0: never)
  int wait_ms = 30000;     // move: how long to wait for the resource to run on `node`
};
// `vigil resource move|ban|clear|cleanup NAME [NODE]`. A move waits until the resource
// runs on NODE (exit 0) or reports why it does not (exit 1, with the explanation).
int cmd_resource(const ClientTarget& to, const ResourceOpOptions& o, bool json);

// `vigil node standby|unstandby|maintenance|unmaintenance NAME`.
int cmd_node(const ClientTarget& to, const std::string& op, const std::string& node, bool json);

// `vigil events [--limit N] [--follow]`: the newest N events, then (with --follow) every new
// one as it commits, until Ctrl-C.
int cmd_events(const ClientTarget& to, int limit, bool follow, bool json);

}  // namespace vigil::cli
