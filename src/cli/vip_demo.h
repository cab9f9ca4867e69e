// `vigil demo`: a virtual IP in front of nginx on three "machines" (network namespaces), a
// fault, and what a client saw. The loopback store demo (demo.h) is `vigil demo --store`.
#pragma once

#include <string>

namespace vigil::cli {

enum class DemoFault { kNode, kService, kPartition, kLeader };

struct VipDemoOptions {
  std::string vigil_binary = "/proc/self/exe";
  DemoFault fault = DemoFault::kNode;
  bool script = false;  // no countdowns; print the figures; the exit code says if targets met
  bool keep = false;    // keep the lab's directory (configs, logs) afterwards
  int target_ms = 0;    // 0: issue #5's (machine dies 600, or 1000 if the leader; service 300)
};

// The page nginx serves on lab host `host` (its name), in the foreground, everything under
// the host's private /run. Used by the demo, the end-to-end tests and the VIP benchmark.
std::string lab_nginx_conf(const std::string& host);
// nodes n1..n3, the group web = [www (nginx as a supervised process), vip (198.18.0.100/24
// on eth0)], both exclusive with stickiness 100, plus `extra` YAML; `vip_params` are more
// of the vip's parameters (", probe_ms: 30").
// `vip`/`cidr_netmask` replace the VIP (kLabVip6 with 64 for IPv6).
inline constexpr const char* kLabVip = "198.18.0.100";
inline constexpr const char* kLabVip6 = "2001:2::100";
std::string lab_web_definition(const std::string& extra = "", const std::string& vip_params = "",
                               const std::string& vip = kLabVip, int cidr_netmask = 24);

// Needs root (network namespaces): without it, says so, points at `vigil demo --store` and
// `vigil local-cluster`, and returns 2. Cleans up on exit, on Ctrl-C and what a crashed
// earlier run left. Returns 0 if the client's outage met the target, 1 otherwise.
int run_vip_demo(const VipDemoOptions& options);

}  // namespace vigil::cli
