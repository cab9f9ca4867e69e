// `vigil svc register|list|deregister|watch`: the service registry (docs/API.md "Service
// registry") over the agent's HTTP API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/http_client.h"
#include "cli/client_cmds.h"

namespace vigil::cli {

struct SvcRegisterOptions {
  std::string service, id, address;
  int port = 0;
  std::vector<std::string> meta;  // "k=v"
  int64_t ttl_s = 0;              // >0: grant a lease, keep it alive until Ctrl-C, deregister
  int64_t lease = 0;              // >0: attach to this existing lease and return at once
  std::string check_tcp;          // HOST:PORT
  std::string check_http;         // http://HOST[:PORT]/PATH
  int interval_ms = 0, timeout_ms = 0, rise = 0, fall = 0;  // 0: the agent's defaults
};

// Exit codes (all svc commands): 0 ok, 1 failure (agent unreachable, error, lease lost),
// 2 usage (bad flags), 3 not found (deregister: no such instance; list: no instance, or
// with --healthy no healthy instance).
int cmd_svc_register(const ClientTarget& to, const SvcRegisterOptions& o, bool json);
int cmd_svc_list(const ClientTarget& to, const std::string& service, bool healthy_only, bool json);
int cmd_svc_deregister(const ClientTarget& to, const std::string& service, const std::string& id,
                       bool json);
// Prints the healthy instances now and each time the list changes, until Ctrl-C;
// reconnects by itself and resumes from the last revision seen.
int cmd_svc_watch(const ClientTarget& to, const std::string& service, bool json);

}  // namespace vigil::cli
