// What the command line needs from the rest of the binary, handed in by daemon/main.cc.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "daemon/config.h"

namespace vigil::cli {

// The CLI library depends only on base and the config library; everything heavier (the
// running node, the certificate code of src/net) is plugged in here by main.cc, so that the
// CLI builds and is testable on its own. An empty function means "not in this build": the
// command then says so and exits 1.
struct CliHooks {
  // Runs a node in the foreground until SIGTERM/SIGINT; returns the process exit code.
  std::function<int(const daemon::AgentConfig&)> run_agent;
  // When set, `vigil agent` hands its arguments to this at once instead (the `vigil` binary
  // execs `vigil-agent`, which then runs agent_command() itself); returns only on failure.
  std::function<int(const std::string& config_path, bool check_only)> exec_agent;
  // Creates a cluster CA in `dir` for cluster `cluster`.
  std::function<Status(const std::string& dir, const std::string& cluster)> cert_init;
  // Issues a node certificate and key signed by the CA in `dir`.
  std::function<Status(const std::string& dir, const std::string& node)> cert_issue;
  // Checks that the cert chains to the CA and the key matches it (agent --check-config).
  std::function<Status(const std::string& ca, const std::string& cert, const std::string& key)>
      cert_verify;
  // Where cert_init/cert_issue put the CA certificate and a node's certificate and key
  // (absolute `dir`). Defaults to default_cert_paths().
  std::function<daemon::TlsConfig(const std::string& dir, const std::string& node)> cert_paths;
};

// DIR/ca.crt, DIR/NODE.crt, DIR/NODE.key.
// TODO(net owner): keep in step with src/net/certs.h, or have main.cc plug in its own.
daemon::TlsConfig default_cert_paths(const std::string& dir, const std::string& node);

}  // namespace vigil::cli
