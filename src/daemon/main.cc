// The `vigil` binary: the command line, with the certificate code plugged in. `vigil agent`
// execs `vigil-agent` (agent_main.cc) from the same directory: the running node is a binary
// of its own, without the command line's code (its memory: docs/BENCHMARKS.md).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "net/certs.h"

namespace {

// Replaces this process with DIR/vigil-agent, DIR being this binary's directory; returns
// only if that fails.
int exec_agent(const std::string& config_path, bool check_only) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "vigil agent: cannot find this binary (/proc/self/exe): %s\n",
                 ec.message().c_str());
    return vigil::cli::kExitFailure;
  }
  const std::string agent = (self.parent_path() / "vigil-agent").string();
  std::vector<std::string> args = {agent, "--config", config_path};
  if (check_only) args.emplace_back("--check-config");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(agent.c_str(), argv.data());
  std::fprintf(stderr, "vigil agent: cannot run %s: %s (it is built and installed beside vigil)\n",
               agent.c_str(), std::strerror(errno));
  return vigil::cli::kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  vigil::cli::CliHooks hooks;
  hooks.cert_paths = vigil::cli::default_cert_paths;
  hooks.exec_agent = exec_agent;
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
