// Client commands of the `vigil` CLI (status, kv): thin wrappers over the HTTP API.
#pragma once

#include <string>

namespace vigil::cli {

// Where the client commands send requests: --api, else $VIGIL_API, else 127.0.0.1:7101.
std::string default_api_address();

// `vigil status`: this node's view (role, term, leader, indexes) for people or --json.
// Exit codes: 0 OK, 1 the node answered with an error or could not be reached.
int cmd_status(const std::string& api, bool json);

// `vigil kv put|get|del`. get: exit 0 and the value on stdout; exit 3 when the key does not
// exist (so scripts can tell "missing" from "failed", 1). --json prints the API's answer.
int cmd_kv_put(const std::string& api, const std::string& key, const std::string& value, bool json);
int cmd_kv_get(const std::string& api, const std::string& key, bool serializable, bool json);
int cmd_kv_del(const std::string& api, const std::string& key, bool json);

inline constexpr int kExitNotFound = 3;

}  // namespace vigil::cli
