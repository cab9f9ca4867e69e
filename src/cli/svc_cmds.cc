// `vigil svc ...`: register (with a foreground keep-alive), list, deregister, watch.
#include "cli/svc_cmds.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;

std::atomic<bool> g_svc_stop{false};
void on_svc_signal(int) { g_svc_stop = true; }

void catch_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_svc_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Prints the API error of `r` and returns the exit code it maps to.
int fail(const std::string& what, const api::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string code, message = r.body;
  if (!j.is_discarded() && j.contains("error")) {
    code = j["error"].value("code", "");
    message = j["error"].value("message", "");
  }
  std::fprintf(stderr, "vigil %s: %d %s: %s\n", what.c_str(), r.status, code.c_str(),
               message.c_str());
  if (r.status == 404) return kExitNotFound;
  if (r.status == 400) return kExitUsage;
  return kExitFailure;
}

// One request; nullopt (after printing) when the agent cannot be reached.
std::optional<api::HttpResponse> send(api::HttpClient& c, const std::string& what,
                                      const std::string& method, const std::string& target,
                                      const std::string& body = "") {
  auto r = c.request(method, target, body, 10000);
  if (!r) {
    std::fprintf(stderr, "vigil %s: %s\n  is an agent listening on %s? (set --api or VIGIL_API)\n",
                 what.c_str(), r.error().to_string().c_str(), c.host_port().c_str());
    return std::nullopt;
  }
  return *r;
}

std::string instance_line(const json& i) {
  std::string meta;
  if (i.contains("meta") && i["meta"].is_object()) {
    for (const auto& [k, v] : i["meta"].items()) {
      meta += (meta.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : "");
    }
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-20s %-26s %-10s %-8s %s", i.value("id", "").c_str(),
                (i.value("address", "") + ":" + std::to_string(i.value("port", 0))).c_str(),
                i.value("health", "").c_str(), i.value("node", "").c_str(), meta.c_str());
  return buf;
}

}  // namespace

int cmd_svc_register(const ClientTarget& to, const SvcRegisterOptions& o, bool as_json) {
  const std::string what = "svc register";
  if (o.ttl_s > 0 && o.lease > 0) {
    std::fprintf(stderr, "vigil %s: give --ttl or --lease, not both\n", what.c_str());
    return kExitUsage;
  }
  if (!o.check_tcp.empty() && !o.check_http.empty()) {
    std::fprintf(stderr, "vigil %s: give --check-tcp or --check-http, not both\n", what.c_str());
    return kExitUsage;
  }
  json body{{"id", o.id}, {"address", o.address}, {"port", o.port}, {"meta", json::object()}};
  for (const auto& kv : o.meta) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "vigil %s: --meta %s: want KEY=VALUE\n", what.c_str(), kv.c_str());
      return kExitUsage;
    }
    body["meta"][kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (o.ttl_s > 0) body["ttl"] = o.ttl_s;
  if (o.lease > 0) body["lease"] = o.lease;
  if (!o.check_tcp.empty()) body["check"] = json{{"tcp", o.check_tcp}};
  if (!o.check_http.empty()) body["check"] = json{{"http", o.check_http}};
  if (o.interval_ms > 0) body["interval_ms"] = o.interval_ms;
  if (o.timeout_ms > 0) body["timeout_ms"] = o.timeout_ms;
  if (o.rise > 0) body["rise"] = o.rise;
  if (o.fall > 0) body["fall"] = o.fall;
  auto client = client_for(what, to);
  if (!client) return kExitUsage;
  auto r = send(*client, what, "POST", "/v1/svc/" + o.service, body.dump());
  if (!r) return kExitFailure;
  if (r->status != 200) return fail(what, *r);
  auto j = json::parse(r->body, nullptr, false);
  const int64_t lease = j.is_object() ? j.value("lease", int64_t{0}) : 0;
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    std::printf("registered %s/%s (%s:%d)%s\n", o.service.c_str(), o.id.c_str(), o.address.c_str(),
                o.port,
                o.ttl_s > 0 ? (" with lease " + std::to_string(lease) + ", ttl " +
                               std::to_string(o.ttl_s) + " s: keeping it alive until Ctrl-C")
                                  .c_str()
                            : "");
  }
  std::fflush(stdout);
  if (o.ttl_s <= 0) return kExitOk;
  // Foreground keep-alive: a third of the TTL between refreshes, so one lost request does
  // not lose the lease. Ctrl-C deregisters (and the agent revokes the lease it granted).
  catch_signals();
  const auto period = std::chrono::milliseconds(std::max<int64_t>(200, o.ttl_s * 1000 / 3));
  int exit_code = kExitOk;
  auto next = std::chrono::steady_clock::now() + period;
  while (!g_svc_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next) continue;
    next += period;
    auto k = client->request("POST", "/v1/lease/" + std::to_string(lease) + "/keepalive", "", 5000);
    if (k && k->status == 404) {
      std::fprintf(stderr, "vigil %s: lease %lld expired: the instance is gone\n", what.c_str(),
                   static_cast<long long>(lease));
      return kExitFailure;
    }
    if (!k || k->status != 200) {
      std::fprintf(stderr, "vigil %s: keep-alive failed (%s); retrying\n", what.c_str(),
                   k ? std::to_string(k->status).c_str() : k.error().to_string().c_str());
    }
  }
  auto d = send(*client, what, "DELETE", "/v1/svc/" + o.service + "/" + o.id);
  if (!d || (d->status != 200 && d->status != 404)) {
    exit_code = d ? fail(what, *d) : kExitFailure;
  } else if (!as_json) {
    std::printf("deregistered %s/%s\n", o.service.c_str(), o.id.c_str());
  }
  return exit_code;
}

int cmd_svc_list(const ClientTarget& to, const std::string& service, bool healthy_only,
                 bool as_json) {
  const std::string what = "svc list";
  auto client = client_for(what, to);
  if (!client) return kExitUsage;
  auto r = send(*client, what, "GET", "/v1/svc/" + service + (healthy_only ? "?healthy=true" : ""));
  if (!r) return kExitFailure;
  if (r->status != 200) return fail(what, *r);
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.contains("instances")) {
    std::fprintf(stderr, "vigil %s: the agent sent an unexpected answer\n", what.c_str());
    return kExitFailure;
  }
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else if (j["instances"].empty()) {
    std::printf("no %sinstances of %s\n", healthy_only ? "healthy " : "", service.c_str());
  } else {
    std::printf("%-20s %-26s %-10s %-8s %s\n", "ID", "ADDRESS", "HEALTH", "NODE", "META");
    for (const auto& i : j["instances"]) std::printf("%s\n", instance_line(i).c_str());
  }
  return j["instances"].empty() ? kExitNotFound : kExitOk;
}

int cmd_svc_deregister(const ClientTarget& to, const std::string& service, const std::string& id,
                       bool as_json) {
  const std::string what = "svc deregister";
  auto client = client_for(what, to);
  if (!client) return kExitUsage;
  auto r = send(*client, what, "DELETE", "/v1/svc/" + service + "/" + id);
  if (!r) return kExitFailure;
  if (r->status != 200) return fail(what, *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    std::printf("deregistered %s/%s\n", service.c_str(), id.c_str());
  }
  return kExitOk;
}

int cmd_svc_watch(const ClientTarget& to, const std::string& service, bool as_json) {
  const std::string what = "svc watch";
  auto stream_client = client_for(what, to);
  auto list_client = client_for(what, to);
  if (!stream_client || !list_client) return kExitUsage;
  catch_signals();
  const std::string rec_prefix = "/vigil/svc/" + service + "/";
  const std::string health_prefix = "/vigil/svc-health/" + service + "/";
  std::string last_printed;
  int64_t revision = 0;
  // Fetches the healthy list and prints it if it changed. False when it cannot.
  auto refresh = [&]() -> bool {
    auto r = list_client->request("GET", "/v1/svc/" + service + "?healthy=true", "", 10000);
    if (!r || r->status != 200) return false;
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("instances")) return false;
    revision = j.value("revision", revision);
    json ids = json::array();
    for (const auto& i : j["instances"]) ids.push_back(i.value("id", ""));
    const std::string now = j["instances"].dump();
    if (now == last_printed) return true;
    last_printed = now;
    if (as_json) {
      std::printf("%s\n",
                  json{{"service", service}, {"revision", revision}, {"healthy", j["instances"]}}
                      .dump()
                      .c_str());
    } else {
      std::printf("revision %lld: %zu healthy:", static_cast<long long>(revision), ids.size());
      for (const auto& i : j["instances"]) {
        std::printf(" %s(%s:%d)", i.value("id", "").c_str(), i.value("address", "").c_str(),
                    i.value("port", 0));
      }
      std::printf("\n");
    }
    std::fflush(stdout);
    return true;
  };
  while (!g_svc_stop) {
    if (!refresh()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    // Both prefixes start with /vigil/svc: one watch covers them; other services' events
    // are skipped. Resumes after the revision the list was read at.
    std::string partial;
    bool compacted = false;
    auto r = stream_client->stream(
        "/v1/watch?prefix=/vigil/svc&start_revision=" + std::to_string(revision + 1),
        [&](std::string_view data) {
          partial.append(data);
          size_t nl;
          while ((nl = partial.find('\n')) != std::string::npos) {
            auto j = json::parse(partial.substr(0, nl), nullptr, false);
            partial.erase(0, nl + 1);
            if (j.is_discarded()) continue;
            if (j.value("compacted", false)) {
              compacted = true;  // re-read the list and watch again from there
              return false;
            }
            if (!j.contains("events")) continue;
            bool relevant = false;
            for (const auto& e : j["events"]) {
              const std::string key = e["kv"].value("key", "");
              relevant |= key.starts_with(rec_prefix) || key.starts_with(health_prefix);
            }
            if (relevant && !refresh()) return false;
          }
          return !g_svc_stop.load();
        },
        3600 * 1000);
    if (r && r->status != 200 && r->status != 0) {
      return fail(what, *r);
    }
    (void)compacted;
    if (!g_svc_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return kExitOk;
}

}  // namespace vigil::cli
