// Client commands: HTTP requests to one agent, human or JSON output, scriptable exit codes.
#include "cli/client_cmds.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "api/request.h"
#include "cli/cli.h"
#include "daemon/config.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::string default_api_address() {
  const char* env = std::getenv("VIGIL_API");
  return env && *env ? env : "127.0.0.1:7101";
}

// Sends one request; on failure prints what to do and returns nullopt (`*usage` is set when
// the flags themselves are wrong).
std::optional<api::HttpResponse> call(const std::string& what, const ClientTarget& to,
                                      const std::string& method, const std::string& target,
                                      bool* usage, const std::string& body) {
  auto client = client_for(what, to);
  if (!client) {
    *usage = true;
    return std::nullopt;
  }
  auto r = client->request(method, target, body, 10000, "application/octet-stream");
  if (!r) {
    const std::string msg = r.error().to_string();
    std::string hint = "is an agent listening on " + to.api + "? (set --api or VIGIL_API)";
    if (msg.find("certificate is for") != std::string::npos) {
      hint =
          "pass --server-name with the node name the certificate carries (or "
          "VIGIL_SERVER_NAME)";
    } else if (msg.find("not trusted") != std::string::npos) {
      hint = "pass the cluster CA with --cacert (or VIGIL_CACERT), e.g. DIR/certs/ca.crt";
    } else if (msg.find("TLS handshake") != std::string::npos) {
      hint = "is " + client->host_port() + " an HTTPS port? for plain HTTP use --api HOST:PORT";
    }
    std::fprintf(stderr, "vigil %s: %s\n  %s\n", what.c_str(), msg.c_str(), hint.c_str());
    return std::nullopt;
  }
  if (r->status == 401 && to.token_file.empty()) {
    std::fprintf(stderr,
                 "vigil %s: the agent wants a bearer token: pass --token-file FILE (or "
                 "set VIGIL_TOKEN_FILE)\n",
                 what.c_str());
  } else if (r->status == 400 && r->body.find("tls_required") != std::string::npos) {
    std::fprintf(stderr, "vigil %s: %s speaks HTTPS: use --api https://%s\n", what.c_str(),
                 client->host_port().c_str(), client->host_port().c_str());
  }
  return *r;
}

// Prints an API error body as one line: "vigil kv put: 503 timeout: message".
int report_error(const std::string& what, const api::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.contains("error")) {
    std::fprintf(stderr, "vigil %s: %d %s: %s\n", what.c_str(), r.status,
                 j["error"].value("code", "").c_str(), j["error"].value("message", "").c_str());
  } else {
    std::fprintf(stderr, "vigil %s: HTTP %d: %s\n", what.c_str(), r.status, r.body.c_str());
  }
  return kExitFailure;
}

ClientTarget default_client_target() {
  ClientTarget t;
  t.api = default_api_address();
  t.token_file = env_or_empty("VIGIL_TOKEN_FILE");
  t.cacert = env_or_empty("VIGIL_CACERT");
  t.server_name = env_or_empty("VIGIL_SERVER_NAME");
  return t;
}

int cmd_status(const ClientTarget& to, bool as_json) {
  bool usage = false;
  auto r = call("status", to, "GET", "/v1/status", &usage);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status != 200) return report_error("status", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "vigil status: the agent at %s sent invalid JSON\n", to.api.c_str());
    return kExitFailure;
  }
  std::printf("node      %s (id %llu) in cluster %s\n", j.value("node", "?").c_str(),
              j.value("id", 0ULL), j.value("cluster", "?").c_str());
  std::printf("role      %s, term %llu\n", j.value("role", "?").c_str(), j.value("term", 0ULL));
  std::printf("leader    %s\n",
              j["leader"].is_string() ? j["leader"].get<std::string>().c_str() : "(none)");
  std::printf("log       commit %llu, applied %llu, last %llu, snapshot %llu\n",
              j.value("commit", 0ULL), j.value("applied", 0ULL), j.value("last_index", 0ULL),
              j.value("snapshot_index", 0ULL));
  std::string voters;
  for (const auto& v : j["voters"]) voters += (voters.empty() ? "" : " ") + v.get<std::string>();
  std::printf("voters    %s\n", voters.c_str());
  if (j.contains("progress")) {
    std::printf("replication (as seen by this leader):\n");
    for (const auto& p : j["progress"]) {
      std::printf("  %-8s match %-8llu %s%s\n", p.value("node", "?").c_str(),
                  p.value("match", 0ULL), p.value("state", "?").c_str(),
                  p.value("active", false) ? "" : "  (not heard from recently)");
    }
  }
  return kExitOk;
}

int cmd_kv_put(const ClientTarget& to, const std::string& key, const std::string& value,
               bool as_json) {
  bool usage = false;
  auto r = call("kv put", to, "PUT", "/v1/kv/" + api::url_encode(key), &usage, value);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status != 200) return report_error("kv put", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    auto j = json::parse(r->body, nullptr, false);
    std::printf("OK (revision %llu)\n", j.is_discarded() ? 0ULL : j.value("revision", 0ULL));
  }
  return kExitOk;
}

int cmd_kv_get(const ClientTarget& to, const std::string& key, bool serializable, bool as_json) {
  std::string target = "/v1/kv/" + api::url_encode(key);
  if (serializable) target += "?serializable=true";
  bool usage = false;
  auto r = call("kv get", to, "GET", target, &usage);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status == 404) {
    if (as_json)
      std::printf("%s\n", r->body.c_str());
    else
      std::fprintf(stderr, "vigil kv get: key \"%s\" not found\n", key.c_str());
    return kExitNotFound;
  }
  if (r->status != 200) return report_error("kv get", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return report_error("kv get", *r);
  std::printf("%s\n", j.value("value", "").c_str());
  return kExitOk;
}

int cmd_kv_del(const ClientTarget& to, const std::string& key, bool as_json) {
  bool usage = false;
  auto r = call("kv del", to, "DELETE", "/v1/kv/" + api::url_encode(key), &usage);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status != 200) return report_error("kv del", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  auto j = json::parse(r->body, nullptr, false);
  const int64_t deleted = j.is_discarded() ? 0 : j.value("deleted", int64_t{0});
  std::printf("%s\n", deleted > 0 ? "deleted" : "no such key (nothing to delete)");
  return kExitOk;
}

}  // namespace vigil::cli

namespace vigil::cli {
namespace {

std::atomic<bool> g_hold_stop{false};
void on_hold_signal(int) { g_hold_stop = true; }

}  // namespace

int cmd_hold(const ClientTarget& to, const HoldOptions& o, bool lock) {
  const std::string what = lock ? "lock" : "elect";
  const std::string base = (lock ? "/v1/lock/" : "/v1/election/") + api::url_encode(o.name);
  auto client_ptr = client_for(what, to);
  if (!client_ptr) return kExitUsage;
  api::HttpClient& client = *client_ptr;
  auto grant = client.request("POST", "/v1/lease", json{{"ttl", o.ttl_s}}.dump(), 10000);
  if (!grant) {
    std::fprintf(stderr, "vigil %s: %s\n", what.c_str(), grant.error().to_string().c_str());
    return kExitFailure;
  }
  if (grant->status != 200) return report_error(what, *grant);
  const int64_t lease = json::parse(grant->body, nullptr, false).value("id", int64_t{0});

  // Keep the lease alive from a second thread; `lost` once the lease cannot be renewed
  // within its TTL.
  std::atomic<bool> lost{false}, done{false};
  std::thread keeper([&] {
    auto kc_ptr = client_for(what, to);
    api::HttpClient& kc = *kc_ptr;
    auto last_ok = std::chrono::steady_clock::now();
    const auto period = std::chrono::milliseconds(o.ttl_s * 1000 / 3);
    while (!done) {
      auto r = kc.request("POST", "/v1/lease/" + std::to_string(lease) + "/keepalive", "", 2000);
      if (r && r->status == 200) {
        last_ok = std::chrono::steady_clock::now();
      } else if ((r && r->status == 404) ||
                 std::chrono::steady_clock::now() - last_ok > std::chrono::seconds(o.ttl_s)) {
        lost = true;
        return;
      }
      for (auto t = std::chrono::steady_clock::now();
           !done && std::chrono::steady_clock::now() - t < period;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  });
  auto finish = [&](int code) {
    done = true;
    keeper.join();
    // Give up what we hold and the lease (deleting the lease deletes the queue key too).
    (void)client.request("DELETE", "/v1/lease/" + std::to_string(lease), "", 5000);
    return code;
  };

  struct sigaction sa {};
  sa.sa_handler = on_hold_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  json body{{"lease", lease}, {"timeout_ms", 10000}};
  if (!lock) body["value"] = o.value;
  const std::string target = lock ? base : base + "/campaign";
  int64_t token = 0;
  std::fprintf(stderr, "vigil %s: waiting for %s '%s' (lease %lld, TTL %d s)\n", what.c_str(),
               lock ? "lock" : "leadership of", o.name.c_str(), static_cast<long long>(lease),
               o.ttl_s);
  while (token == 0) {
    if (g_hold_stop) return finish(kExitFailure);
    if (lost) {
      std::fprintf(stderr, "vigil %s: the lease was lost while waiting\n", what.c_str());
      return finish(kExitFailure);
    }
    auto r = client.request("POST", target, body.dump(), 15000);
    if (!r) continue;  // transient: the agent restarts, a leader changes
    if (r->status == 408) continue;
    if (r->status != 200) return finish(report_error(what, *r));
    token = json::parse(r->body, nullptr, false).value("token", int64_t{0});
  }
  std::printf("%s '%s' held: token %lld\n", lock ? "lock" : "leadership of", o.name.c_str(),
              static_cast<long long>(token));
  std::fflush(stdout);

  pid_t child = -1;
  if (!o.command.empty()) {
    std::vector<char*> argv;
    for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    child = fork();
    if (child == 0) {
      setenv("VIGIL_FENCING_TOKEN", std::to_string(token).c_str(), 1);
      execvp(argv[0], argv.data());
      std::fprintf(stderr, "vigil %s: cannot run %s: %s\n", what.c_str(), argv[0],
                   std::strerror(errno));
      _exit(127);
    }
  }
  while (true) {
    if (child > 0) {
      int st = 0;
      if (waitpid(child, &st, WNOHANG) == child) {
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return finish(code);
      }
    }
    if (lost || g_hold_stop) {
      if (lost) {
        std::fprintf(stderr, "vigil %s: %s lost (lease %lld not renewed)%s\n", what.c_str(),
                     lock ? "lock" : "leadership", static_cast<long long>(lease),
                     child > 0 ? ": stopping the command" : "");
      }
      if (child > 0) {
        kill(child, SIGTERM);
        for (int i = 0; i < 250 && waitpid(child, nullptr, WNOHANG) != child; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
      }
      return finish(lost ? kExitFailure : kExitOk);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace vigil::cli

namespace vigil::cli {

int watch_loop(const char* what, const ClientTarget& to, const std::string& key, bool prefix,
               int64_t start_revision, const WatchBatch& on_batch) {
  auto client = client_for(what, to);
  if (!client) return kExitUsage;
  struct sigaction sa {};
  sa.sa_handler = on_hold_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  int64_t next = start_revision;  // 0: from now
  int exit_code = kExitOk;
  std::string partial;
  while (!g_hold_stop) {
    std::string target =
        "/v1/watch?" + std::string(prefix ? "prefix=" : "key=") + api::url_encode(key);
    if (next > 0) target += "&start_revision=" + std::to_string(next);
    bool fatal = false;
    partial.clear();
    auto r = client->stream(
        target,
        [&](std::string_view data) {
          partial.append(data);
          size_t nl;
          while ((nl = partial.find('\n')) != std::string::npos) {
            std::string line = partial.substr(0, nl);
            partial.erase(0, nl + 1);
            auto j = json::parse(line, nullptr, false);
            if (j.is_discarded()) continue;
            if (j.contains("created") && next == 0) next = j.value("start_revision", int64_t{0});
            if (j.value("compacted", false)) {
              std::fprintf(stderr,
                           "vigil %s: history before revision %lld was compacted; read "
                           "the current value and watch again from %lld\n",
                           what, static_cast<long long>(j.value("compact_revision", int64_t{0})),
                           static_cast<long long>(j.value("revision", int64_t{0}) + 1));
              fatal = true;
              exit_code = kExitFailure;
              return false;
            }
            if (!j.contains("events")) continue;
            on_batch(line, j);
            next = j.value("revision", next) + 1;
            std::fflush(stdout);
          }
          return !g_hold_stop.load();
        },
        3600 * 1000);
    if (fatal) break;
    if (r && r->status != 200) {
      exit_code = report_error(what, *r);
      break;
    }
    if (!g_hold_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));  // reconnect
  }
  return exit_code;
}

int cmd_kv_watch(const ClientTarget& to, const std::string& key, bool prefix,
                 int64_t start_revision, bool as_json) {
  return watch_loop("kv watch", to, key, prefix, start_revision,
                    [as_json](const std::string& line, const json& j) {
                      if (as_json) {
                        std::printf("%s\n", line.c_str());
                        return;
                      }
                      for (const auto& e : j["events"]) {
                        const auto& kv = e["kv"];
                        if (e.value("type", "") == "put") {
                          std::printf("PUT %s = %s (revision %lld)\n", kv.value("key", "").c_str(),
                                      kv.value("value", "").c_str(),
                                      static_cast<long long>(kv.value("mod_revision", int64_t{0})));
                        } else {
                          std::printf("DELETE %s (revision %lld)\n", kv.value("key", "").c_str(),
                                      static_cast<long long>(kv.value("mod_revision", int64_t{0})));
                        }
                      }
                    });
}

}  // namespace vigil::cli

namespace vigil::cli {

int cmd_kv_txn(const ClientTarget& to, const std::string& file, bool as_json) {
  std::string body;
  if (file.empty() || file == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    body = ss.str();
  } else {
    std::ifstream f(file);
    if (!f) {
      std::fprintf(stderr, "vigil kv txn: cannot read %s: %s\n", file.c_str(),
                   std::strerror(errno));
      return kExitUsage;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    body = ss.str();
  }
  bool usage = false;
  auto r = call("kv txn", to, "POST", "/v1/txn", &usage, body);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status != 200) return report_error("kv txn", *r);
  auto j = json::parse(r->body, nullptr, false);
  const bool ok = !j.is_discarded() && j.value("succeeded", false);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    std::printf("%s (revision %lld)\n", ok ? "SUCCEEDED" : "FAILED: compares did not hold",
                static_cast<long long>(j.is_discarded() ? 0 : j.value("revision", int64_t{0})));
    if (!j.is_discarded()) {
      for (const auto& resp : j["responses"]) {
        if (!resp.contains("get")) continue;
        for (const auto& kv : resp["get"]["kvs"]) {
          std::printf("%s = %s\n", kv.value("key", "").c_str(), kv.value("value", "").c_str());
        }
      }
    }
  }
  return ok ? kExitOk : kExitTxnFailed;
}

int cmd_lease(const ClientTarget& to, const std::string& verb, int64_t arg, bool once,
              bool as_json) {
  const std::string what = "lease " + verb;
  bool usage = false;
  auto show = [&](const api::HttpResponse& r) {
    if (as_json) {
      std::printf("%s\n", r.body.c_str());
      return;
    }
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) return;
    if (verb == "grant") {
      std::printf("lease %lld granted, TTL %lld s\n",
                  static_cast<long long>(j.value("id", int64_t{0})),
                  static_cast<long long>(j.value("ttl", int64_t{0})));
    } else if (verb == "ttl") {
      std::string keys;
      for (const auto& k : j["keys"]) keys += " " + k.get<std::string>();
      std::printf("lease %lld: TTL %lld s, %lld ms left (%s), keys:%s\n",
                  static_cast<long long>(j.value("id", int64_t{0})),
                  static_cast<long long>(j.value("ttl", int64_t{0})),
                  static_cast<long long>(j.value("remaining_ms", int64_t{0})),
                  j.value("remaining_from", "").c_str(), keys.empty() ? " (none)" : keys.c_str());
    } else if (verb == "revoke") {
      std::printf("lease %lld revoked, %lld key(s) deleted\n", static_cast<long long>(arg),
                  static_cast<long long>(j.value("deleted", int64_t{0})));
    } else {
      std::printf("lease %lld renewed (TTL %lld s)\n", static_cast<long long>(arg),
                  static_cast<long long>(j.value("ttl", int64_t{0})));
    }
    std::fflush(stdout);
  };
  auto one = [&](const std::string& method, const std::string& target,
                 const std::string& body) -> int {
    auto r = call(what, to, method, target, &usage, body);
    if (!r) return usage ? kExitUsage : kExitFailure;
    if (r->status == 404) {
      report_error(what, *r);
      return kExitNotFound;
    }
    if (r->status != 200) return report_error(what, *r);
    show(*r);
    return kExitOk;
  };
  const std::string path = "/v1/lease/" + std::to_string(arg);
  if (verb == "grant") return one("POST", "/v1/lease", json{{"ttl", arg}}.dump());
  if (verb == "ttl") return one("GET", path, "");
  if (verb == "revoke") return one("DELETE", path, "");
  // keepalive: renew every TTL/3 until Ctrl-C.
  struct sigaction sa {};
  sa.sa_handler = on_hold_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  while (true) {
    auto r = call(what, to, "POST", path + "/keepalive", &usage, "");
    if (!r) return usage ? kExitUsage : kExitFailure;
    if (r->status == 404) {
      report_error(what, *r);
      return kExitNotFound;
    }
    if (r->status != 200) return report_error(what, *r);
    show(*r);
    if (once) return kExitOk;
    auto j = json::parse(r->body, nullptr, false);
    const int64_t ttl = j.is_discarded() ? 3 : std::max<int64_t>(1, j.value("ttl", int64_t{3}));
    for (int64_t waited = 0; waited < ttl * 1000 / 3 && !g_hold_stop; waited += 20) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (g_hold_stop) return kExitOk;
  }
}

}  // namespace vigil::cli

namespace vigil::cli {

// A client for `to` (TLS, CA, token), or null after printing why not.
std::unique_ptr<api::HttpClient> client_for(const std::string& what, const ClientTarget& to) {
  auto endpoint = api::parse_api_url(to.api);
  if (!endpoint) {
    std::fprintf(stderr, "vigil %s: %s (set --api or VIGIL_API)\n", what.c_str(),
                 endpoint.error().message().c_str());
    return nullptr;
  }
  api::HttpClientOptions o;
  o.tls = endpoint->tls;
  o.ca_file = to.cacert;
  o.server_name = to.server_name;
  o.skip_host_check = to.skip_host_check;
  if (!to.token_file.empty()) {
    auto token = daemon::read_api_token_file(to.token_file);
    if (!token) {
      std::fprintf(stderr, "vigil %s: token file %s: %s\n", what.c_str(), to.token_file.c_str(),
                   token.error().message().c_str());
      return nullptr;
    }
    o.bearer_token = *token;
  }
  return std::make_unique<api::HttpClient>(endpoint->host_port, o);
}

}  // namespace vigil::cli
