// AgentCluster: real `vigil agent` processes on loopback, driven one by one: `vigil demo`,
// end-to-end tests and benchmarks. Writes configs with the planner of `vigil local-cluster`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/http_client.h"
#include "base/status.h"
#include "cli/hooks.h"
#include "cli/local_cluster.h"

namespace vigil::cli {

struct AgentClusterOptions {
  int nodes = 3;
  std::string dir;           // fresh directory for configs, data and logs
  std::string vigil_binary;  // path to the `vigil` executable ("/proc/self/exe" in vigil)
  // true: plain TCP on loopback, plain and open HTTP API. false: mutual TLS with a fresh
  // CA between the agents, and an HTTPS API with bearer tokens (local-cluster's layout).
  bool insecure = true;
  int base_port = 0;                                                // 0: pick a free range
  uint64_t snapshot_entries = 0;                                    // 0: the agent's default
  uint32_t tick_ms = 0, heartbeat_ms = 0, election_timeout_ms = 0;  // 0: defaults
  bool fsync = true;
};

// Owns the agent processes; the destructor kills every one still running (SIGKILL).
// Not thread-safe. Node numbers are 1-based.
class AgentCluster {
 public:
  // `hooks` supplies cert_init/cert_issue when !options.insecure.
  AgentCluster(AgentClusterOptions options, CliHooks hooks);
  ~AgentCluster();
  AgentCluster(const AgentCluster&) = delete;
  AgentCluster& operator=(const AgentCluster&) = delete;

  // Writes certificates (unless insecure) and configs. Errors: kInvalidArgument when TLS is
  // wanted and the hooks cannot make certificates.
  Status init();
  Status start(int node);
  Status start_all();
  // Sends `sig` and waits until the process is gone (SIGKILL: at once).
  void kill(int node, int sig = 9);
  bool running(int node) const;
  // The agent's pid, or -1 when it is not running (by this object's account).
  pid_t pid(int node) const;
  int size() const { return options_.nodes; }

  std::string api(int node) const;  // HOST:PORT of the API
  // How to reach node's API with `role`'s token: TLS with the cluster CA and the node's
  // name, the token (read at init()). Plain and without a token when insecure.
  api::HttpClientOptions client_options(int node,
                                        daemon::ApiRole role = daemon::ApiRole::kAdmin) const;
  // DIR/<role>.token, or "" when insecure (no tokens).
  std::string token_file(daemon::ApiRole role) const;
  std::string log_path(int node) const;
  std::string data_dir(int node) const;
  // GET /v1/status of one node (short timeout). put/get/status use the admin token.
  Result<nlohmann::json> status(int node) const;
  // Waits until a running node says it is leader and every other running node names it.
  // Returns the leader's number. Errors: kTimeout.
  Result<int> wait_for_leader(std::chrono::milliseconds timeout) const;
  // PUT through node `node` (any node: followers forward). Returns the revision.
  Result<uint64_t> put(int node, const std::string& key, const std::string& value,
                       int timeout_ms = 5000) const;
  // Linearizable GET through `node`; nullopt when the key does not exist.
  Result<std::optional<std::string>> get(int node, const std::string& key,
                                         bool serializable = false) const;

  // The last lines of a node's log, for failure messages.
  std::string log_tail(int node, int lines = 20) const;

 private:
  AgentClusterOptions options_;
  CliHooks hooks_;
  std::vector<cli::LocalNode> nodes_;
  std::map<int, pid_t> pids_;
  std::map<daemon::ApiRole, std::string> tokens_;
};

// Picks a base port P such that P..P+N-1 and P+100..P+100+N-1 are free on 127.0.0.1, below
// the ephemeral port range; 0 if there is none.
int find_free_port_range(int nodes);

}  // namespace vigil::cli
