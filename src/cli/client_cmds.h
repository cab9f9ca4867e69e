// Client commands of the `vigil` CLI (status, kv): thin wrappers over the HTTP API.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/http_client.h"

namespace vigil::cli {

// Where the client commands send requests: --api, else $VIGIL_API, else 127.0.0.1:7101.
std::string default_api_address();

// Where and how the client commands reach an agent (flags, else environment variables).
struct ClientTarget {
  std::string api;               // --api / $VIGIL_API: [https://]HOST:PORT
  std::string token_file;        // --token-file / $VIGIL_TOKEN_FILE: bearer token ("": none)
  std::string cacert;            // --cacert / $VIGIL_CACERT: CA to verify an https:// agent
  std::string server_name;       // --server-name / $VIGIL_SERVER_NAME: name in its certificate
  bool skip_host_check = false;  // --tls-skip-host-check: trust any certificate of the CA
};
// A client for `to` (TLS, CA, token), or null after printing why on stderr.
std::unique_ptr<api::HttpClient> client_for(const std::string& what, const ClientTarget& to);

// A ClientTarget filled from the environment (each flag overrides its variable).
ClientTarget default_client_target();

// Sends one request; on failure prints what to do (on stderr) and returns nullopt; `*usage`
// is set when the flags themselves are wrong. `what` names the command in messages.
std::optional<api::HttpResponse> call(const std::string& what, const ClientTarget& to,
                                      const std::string& method, const std::string& target,
                                      bool* usage, const std::string& body = "");
// Prints an API error body as one line ("vigil kv put: 503 timeout: message"); returns 1.
int report_error(const std::string& what, const api::HttpResponse& r);

// `vigil status`: this node's view (role, term, leader, indexes) for people or --json.
// Exit codes: 0 OK, 1 the node answered with an error or could not be reached, 2 a bad
// --api, --token-file or --cacert.
int cmd_status(const ClientTarget& to, bool json);

// `vigil kv put|get|del`. get: exit 0 and the value on stdout; exit 3 when the key does not
// exist (so scripts can tell "missing" from "failed", 1). --json prints the API's answer.
int cmd_kv_put(const ClientTarget& to, const std::string& key, const std::string& value, bool json);
int cmd_kv_get(const ClientTarget& to, const std::string& key, bool serializable, bool json);
int cmd_kv_del(const ClientTarget& to, const std::string& key, bool json);

inline constexpr int kExitNotFound = 3;

}  // namespace vigil::cli

namespace vigil::cli {

struct HoldOptions {
  std::string name;
  int ttl_s = 5;                     // the lease that keeps the leadership or lock alive
  std::string value;                 // election only: the value others see for the leader
  std::vector<std::string> command;  // run while held; empty: hold until Ctrl-C
};

// `vigil elect NAME [-- CMD...]` and `vigil lock NAME -- CMD...`: grant a lease, keep it
// alive, campaign (or queue for the lock) until first, then run CMD while held. If the
// lease is lost, CMD gets SIGTERM (SIGKILL 5 s later) at once and the exit code is 1;
// otherwise it is CMD's. The leadership or lock is given up when CMD exits.
int cmd_hold(const ClientTarget& to, const HoldOptions& options, bool lock);

}  // namespace vigil::cli

namespace vigil::cli {

// `vigil kv watch KEY [--prefix] [--rev N]`: prints changes as they commit, until Ctrl-C.
// Reconnects by itself and resumes after the last revision it printed, so nothing is lost
// or doubled; if that history was compacted it says so and exits 1 (resync with kv get).
int cmd_kv_watch(const ClientTarget& to, const std::string& key, bool prefix,
                 int64_t start_revision, bool json);

// The watch behind `kv watch` and `events --follow`: streams /v1/watch from start_revision
// (0: now), hands every batch line (and its JSON) to `on_batch`, reconnects and resumes
// after the last batch; exit code as cmd_kv_watch's.
using WatchBatch = std::function<void(const std::string& line, const nlohmann::json& batch)>;
int watch_loop(const char* what, const ClientTarget& to, const std::string& key, bool prefix,
               int64_t start_revision, const WatchBatch& on_batch);

}  // namespace vigil::cli

namespace vigil::cli {

// `vigil kv txn [--file F]`: the JSON body of POST /v1/txn from F or stdin (docs/API.md).
// Exit 0 if the compares held (success branch ran), 4 if not (failure branch ran).
inline constexpr int kExitTxnFailed = 4;
int cmd_kv_txn(const ClientTarget& to, const std::string& file, bool json);

// `vigil lease grant TTL | ttl ID | revoke ID | keepalive ID [--once]`. keepalive renews
// every TTL/3 until Ctrl-C (or once); exit 3 when the lease does not exist (any more).
int cmd_lease(const ClientTarget& to, const std::string& verb, int64_t arg, bool once, bool json);

}  // namespace vigil::cli
