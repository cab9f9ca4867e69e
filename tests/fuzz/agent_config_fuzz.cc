// Fuzz target: the agent config parser must never crash on arbitrary text, and whatever it
// accepts must render to YAML that it reads back equal.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vigil::daemon::parse_agent_config(text, "fuzz.yaml");
  if (!config) {
    return 0;
  }
  auto back = vigil::daemon::parse_agent_config(vigil::daemon::render_agent_config(*config),
                                                "rendered.yaml");
  if (!back || !(*back == *config)) {
    std::abort();  // render and parse disagree
  }
  (void)vigil::daemon::config_warnings(*config);
  return 0;
}
