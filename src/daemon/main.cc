// The `vigil` binary: plugs the running node and the certificate code into the CLI.
#include <string>
#include <type_traits>
#include <utility>

#include "cli/cli.h"

#ifdef VIGIL_HAVE_AGENT
#include "daemon/agent.h"
#endif
#ifdef VIGIL_HAVE_CERTS
#include "net/certs.h"
#endif

namespace {

// Accepts a Status or a Result<T> from the certificate functions, whichever they return.
template <class R>
vigil::Status to_status(R&& r) {
  if constexpr (std::is_same_v<std::decay_t<R>, vigil::Status>) {
    return std::forward<R>(r);
  } else {
    return r ? vigil::Status() : r.error();
  }
}

}  // namespace

int main(int argc, char** argv) {
  vigil::cli::CliHooks hooks;
  hooks.cert_paths = vigil::cli::default_cert_paths;
  // TODO(lead): when agent.cc and net/certs.h exist, src/daemon/CMakeLists.txt defines these
  // and the branches below are taken; then delete the #ifdefs.
#ifdef VIGIL_HAVE_AGENT
  hooks.run_agent = [](const vigil::daemon::AgentConfig& c) { return vigil::daemon::run_agent(c); };
#endif
#ifdef VIGIL_HAVE_CERTS
  hooks.cert_init = [](const std::string& dir, const std::string& cluster) {
    return to_status(vigil::net::cert_init(dir, cluster));
  };
  hooks.cert_issue = [](const std::string& dir, const std::string& node) {
    return to_status(vigil::net::cert_issue(dir, node));
  };
#endif
  return vigil::cli::run_cli(argc, argv, hooks);
}
