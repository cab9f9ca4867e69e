// `vigil local-cluster`: N agents on 127.0.0.1 as child processes, for trials and demos.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "cli/hooks.h"
#include "daemon/config.h"

namespace vigil::cli {

inline constexpr int kDefaultBasePort = 7001;
inline constexpr int kApiPortOffset = 100;  // node i: peer port P+i-1, API port P+100+i-1
inline constexpr int kStopGraceMs = 5000;   // SIGTERM, then SIGKILL after this long

struct LocalClusterOptions {
  int nodes = 3;
  std::string dir;  // created if missing; made absolute
  int base_port = kDefaultBasePort;
  bool insecure = false;  // no certificates: plain TCP on loopback
  std::string cluster = "local";
};

// One node's files inside the cluster directory.
struct LocalNode {
  daemon::AgentConfig config;
  std::string config_path;  // DIR/nK.yaml
  std::string log_path;     // DIR/nK.log (the agent's stdout and stderr)
};

// The API tokens of a local cluster with TLS: one file per role, DIR/<role>.token
// ("admin.token", "read-write.token", "read-only.token"), shared by every node.
inline constexpr daemon::ApiRole kLocalTokenRoles[] = {
    daemon::ApiRole::kAdmin, daemon::ApiRole::kReadWrite, daemon::ApiRole::kReadOnly};
std::string local_token_path(const std::string& dir, daemon::ApiRole role);

// Writes every api.tokens[] file of `nodes` that does not exist yet: 32 random bytes as 64
// hex digits and a newline, mode 0600 (a file left by an earlier run is kept, so clients
// keep working across restarts). Errors: kIoError naming the file.
Status write_local_tokens(const std::vector<LocalNode>& nodes);

// The nodes local-cluster writes and starts: names n1..nN, ids 1..N, data in DIR/nK,
// certificates in DIR/certs (see hooks.cert_paths). Unless insecure, the API speaks HTTPS
// with each node's certificate and needs one of the tokens of local_token_path().
// Pure apart from making `dir` absolute.
// Errors: kInvalidArgument for options out of range, with what to do instead.
Result<std::vector<LocalNode>> plan_local_cluster(const LocalClusterOptions& options,
                                                  const CliHooks& hooks);

// Writes the files, starts the agents (fork/exec of /proc/self/exe, each in its own process
// group, logs to DIR/nK.log), and supervises them in the foreground until SIGINT/SIGTERM,
// then stops them (SIGTERM, SIGKILL after kStopGraceMs). Reports every child that dies.
// Returns the process exit code.
int run_local_cluster(const LocalClusterOptions& options, const CliHooks& hooks);

}  // namespace vigil::cli
