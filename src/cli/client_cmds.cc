// Client commands: HTTP requests to one agent, human or JSON output, scriptable exit codes.
#include "cli/client_cmds.h"

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cli/cli.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return out;
}

// Sends one request; on transport failure prints what to do and returns nullopt.
std::optional<api::HttpResponse> call(const std::string& what, const std::string& api,
                                      const std::string& method, const std::string& target,
                                      const std::string& body = "") {
  api::HttpClient client(api);
  auto r = client.request(method, target, body, 10000, "application/octet-stream");
  if (!r) {
    std::fprintf(stderr, "vigil %s: %s\n  is an agent listening on %s? (set --api or VIGIL_API)\n",
                 what.c_str(), r.error().to_string().c_str(), api.c_str());
    return std::nullopt;
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

}  // namespace

std::string default_api_address() {
  const char* env = std::getenv("VIGIL_API");
  return env && *env ? env : "127.0.0.1:7101";
}

int cmd_status(const std::string& api, bool as_json) {
  auto r = call("status", api, "GET", "/v1/status");
  if (!r) return kExitFailure;
  if (r->status != 200) return report_error("status", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "vigil status: the agent at %s sent invalid JSON\n", api.c_str());
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

int cmd_kv_put(const std::string& api, const std::string& key, const std::string& value,
               bool as_json) {
  auto r = call("kv put", api, "PUT", "/v1/kv/" + url_encode(key), value);
  if (!r) return kExitFailure;
  if (r->status != 200) return report_error("kv put", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    auto j = json::parse(r->body, nullptr, false);
    std::printf("OK (revision %llu)\n", j.is_discarded() ? 0ULL : j.value("revision", 0ULL));
  }
  return kExitOk;
}

int cmd_kv_get(const std::string& api, const std::string& key, bool serializable, bool as_json) {
  std::string target = "/v1/kv/" + url_encode(key);
  if (serializable) target += "?serializable=true";
  auto r = call("kv get", api, "GET", target);
  if (!r) return kExitFailure;
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

int cmd_kv_del(const std::string& api, const std::string& key, bool as_json) {
  auto r = call("kv del", api, "DELETE", "/v1/kv/" + url_encode(key));
  if (!r) return kExitFailure;
  if (r->status != 200) return report_error("kv del", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  auto j = json::parse(r->body, nullptr, false);
  bool deleted = !j.is_discarded() && j.value("deleted", false);
  std::printf("%s\n", deleted ? "deleted" : "no such key (nothing to delete)");
  return kExitOk;
}

}  // namespace vigil::cli
