// The `vigil-agent` binary: one node, `vigil-agent --config FILE [--check-config]`, the same
// as `vigil agent` (which execs this). It links the node and the agent command's checks but
// not the command line, the lab or the demos: every page of code a node maps counts in its
// memory (docs/BENCHMARKS.md, idle RSS).
#include <malloc.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "cli/agent_cmd.h"
#include "cli/cli.h"
#include "daemon/agent.h"
#include "net/certs.h"
#include "net/vip_guard.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: vigil-agent --config FILE [--check-config]\n"
               "Runs this node's agent in the foreground (the same as `vigil agent`); "
               "docs/CONFIG.md, docs/OPERATIONS.md.\n");
  return vigil::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // Internal: the VIP guard an agent starts (net/vip_guard.h), not a command for people.
  if (argc == 2 && std::string_view(argv[1]) == "__vip-guard") return vigil::net::run_vip_guard(0);
  // Blocks of 1 MiB and more (a snapshot's buffer: megabytes) are mapped and unmapped, so
  // the memory goes back at once; a fixed threshold also stops glibc from raising it after
  // the first such free, which would keep later snapshots' buffers in the heap.
  (void)::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::string config;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (a.starts_with("--config=")) {
      config = std::string(a.substr(9));
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "-h" || a == "--help") {
      usage();
      return vigil::cli::kExitOk;
    } else {
      std::fprintf(stderr, "vigil-agent: unexpected argument '%s'\n", argv[i]);
      return usage();
    }
  }
  if (config.empty()) {
    std::fprintf(stderr, "vigil-agent: --config FILE is required\n");
    return usage();
  }
  vigil::cli::CliHooks hooks;
  hooks.run_agent = [](const vigil::daemon::AgentConfig& c) { return vigil::daemon::run_agent(c); };
  hooks.cert_verify = [](const std::string& ca, const std::string& cert, const std::string& key) {
    return vigil::net::cert_verify_files(ca, cert, key);
  };
  return vigil::cli::agent_command(config, check_only, hooks);
}
