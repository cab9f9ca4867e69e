// The agent command's checks (agent_cmd.h).
#include "cli/agent_cmd.h"

#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "daemon/config.h"

namespace vigil::cli {

int agent_command(const std::string& path, bool check_only, const CliHooks& hooks) {
  auto config = daemon::load_agent_config(path);
  if (!config) {
    const std::string& msg = config.error().message();
    if (config.error().code() != Errc::kInvalidArgument) {
      std::fprintf(stderr, "vigil agent: %s\n", msg.c_str());
    } else {
      std::fprintf(stderr, "%s\n", msg.c_str());
      size_t count = 1;
      for (char c : msg) {
        count += c == '\n' ? 1 : 0;
      }
      std::fprintf(stderr, "vigil agent: %s is not valid (%zu error%s; see docs/CONFIG.md)\n",
                   path.c_str(), count, count == 1 ? "" : "s");
    }
    return kExitUsage;
  }
  if (!config->tls.insecure && hooks.cert_verify) {
    const auto& tls = config->tls;
    if (Status s = hooks.cert_verify(tls.ca_file, tls.cert_file, tls.key_file); !s.ok()) {
      std::fprintf(stderr, "%s: tls: %s\nvigil agent: %s is not valid (see docs/CONFIG.md)\n",
                   path.c_str(), s.message().c_str(), path.c_str());
      return kExitUsage;
    }
  }
  std::vector<std::string> warnings = daemon::config_warnings(*config);
  if (auto tokens = daemon::read_api_tokens(*config, &warnings); !tokens) {
    // load_agent_config() checked the files a moment ago: this is a race, but say so.
    std::fprintf(stderr, "%s: %s\n", path.c_str(), tokens.error().message().c_str());
    return kExitUsage;
  }
  for (const auto& w : warnings) {
    std::fprintf(stderr, "%s: warning: %s\n", path.c_str(), w.c_str());
  }
  if (check_only) {
    std::printf("config OK\n");
    return kExitOk;
  }
  if (!hooks.run_agent) {
    std::fprintf(stderr,
                 "vigil agent: this build has no running agent yet (src/daemon/agent.cc is "
                 "not written); only --check-config works\n");
    return kExitFailure;
  }
  return hooks.run_agent(*config);
}

}  // namespace vigil::cli
