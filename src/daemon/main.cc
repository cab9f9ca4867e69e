// The `vigil` binary: plugs the running node and the certificate code into the CLI.
#include <string>
#include <string_view>

#include "cli/cli.h"
#include "daemon/agent.h"
#include "net/certs.h"
#include "net/vip_guard.h"

int main(int argc, char** argv) {
  // Internal: the VIP guard an agent starts (net/vip_guard.h), not a command for people.
  if (argc == 2 && std::string_view(argv[1]) == "__vip-guard") return vigil::net::run_vip_guard(0);
  vigil::cli::CliHooks hooks;
  hooks.cert_paths = vigil::cli::default_cert_paths;
  hooks.run_agent = [](const vigil::daemon::AgentConfig& c) { return vigil::daemon::run_agent(c); };
  hooks.cert_init = [](const std::string& dir, const std::string& cluster) {
    return vigil::net::cert_init(dir, cluster);
  };
  hooks.cert_issue = [](const std::string& dir, const std::string& node) {
    return vigil::net::cert_issue(dir, node);
  };
  hooks.cert_verify = [](const std::string& ca, const std::string& cert, const std::string& key) {
    return vigil::net::cert_verify_files(ca, cert, key);
  };
  return vigil::cli::run_cli(argc, argv, hooks);
}
