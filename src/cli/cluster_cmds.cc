// Resource-manager commands: thin clients of /v1/cluster and /v1/resources (docs/API.md).
#include "cli/cluster_cmds.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/request.h"
#include "cli/cli.h"
#include "cli/client_cmds.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxDefinitionBytes = 1 << 20;

// The answer parsed, or null JSON with a message on stderr.
json parse_answer(const std::string& what, const api::HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "vigil %s: the agent sent invalid JSON\n", what.c_str());
    return json();
  }
  return j;
}

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// One line per resource: "web       started on n1 (fail-count 1 on n2)".
void print_status(const json& raft, const json& c) {
  if (raft.is_object()) {
    std::printf("Cluster %s, leader %s (term %llu), quorum %s\n", str(raft, "cluster").c_str(),
                raft["leader"].is_string() ? raft["leader"].get<std::string>().c_str() : "(none)",
                raft.value("term", 0ULL), raft["leader"].is_string() ? "yes" : "no (no leader)");
  }
  std::printf("Nodes:\n");
  for (const auto& n : c["nodes"]) {
    std::printf("  %-10s %s\n", str(n, "name").c_str(), str(n, "state").c_str());
  }
  std::printf("Resources:\n");
  if (c["resources"].empty()) std::printf("  (none: apply a cluster definition)\n");
  for (const auto& r : c["resources"]) {
    std::string where, failures, pending;
    for (const auto& on : r["nodes"]) {
      if (on.value("running", false)) {
        std::string role = str(on, "role");
        const long long copies = on.value("copies", 1LL);  // clone copies on the node
        where += (where.empty() ? "" : " ") + str(on, "node") +
                 (role == "promoted" ? "(promoted)" : "") +
                 (copies > 1 ? " x" + std::to_string(copies) : "");
      }
      if (on.contains("pending")) {
        std::string verb = str(on, "pending");  // start, stop, promote, demote
        verb = verb == "stop" ? "stopping" : verb.substr(0, verb.size() - 1) + "ing";
        pending += (pending.empty() ? "" : ", ") + verb + " on " + str(on, "node");
      }
      if (on.value("fail_count", 0LL) > 0 || on.value("failed", false)) {
        long long fc = on.value("fail_count", 0LL);
        failures += (failures.empty() ? "" : ", ") + std::string("fail-count ") +
                    (fc >= 1000000 ? "INFINITY" : std::to_string(fc)) + " on " + str(on, "node") +
                    (on.value("failed", false) ? " (failed)" : "");
      }
    }
    std::printf("  %-12s %-22s %s%s%s%s%s\n", str(r, "id").c_str(), str(r, "agent").c_str(),
                where.empty() ? "stopped" : ("started on " + where).c_str(),
                pending.empty() ? "" : "; ", pending.c_str(), failures.empty() ? "" : "; ",
                failures.c_str());
  }
  if (!c["warnings"].empty()) {
    std::printf("Warnings:\n");
    for (const auto& w : c["warnings"]) std::printf("  %s\n", w.get<std::string>().c_str());
  }
  if (!c["pending"].empty()) {
    std::printf("Pending actions:\n");
    for (const auto& a : c["pending"]) std::printf("  %s\n", a.get<std::string>().c_str());
  }
}

// "2026-12-06 12:01:02.345  n2  started  web (120 ms): assigned".
void print_event(const json& e) {
  int64_t ms = e.value("at_ms", int64_t{0});
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  std::string what = str(e, "resource");
  if (e.contains("duration_ms")) {
    what += " (" + std::to_string(e.value("duration_ms", int64_t{0})) + " ms)";
  }
  std::string msg = str(e, "message");
  std::printf("%s.%03lld UTC  %-6s %-14s %s%s%s\n", when, static_cast<long long>(ms % 1000),
              str(e, "node").c_str(), str(e, "type").c_str(), what.c_str(),
              msg.empty() || what.empty() ? "" : ": ", msg.c_str());
}

}  // namespace

int cmd_apply(const ClientTarget& to, const std::string& file, bool dry_run, bool as_json) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "vigil apply: cannot read %s\n", file.c_str());
    return kExitUsage;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > kMaxDefinitionBytes) {
    std::fprintf(stderr, "vigil apply: %s is larger than %zu bytes\n", file.c_str(),
                 kMaxDefinitionBytes);
    return kExitUsage;
  }
  std::string target = "/v1/cluster?file=" + api::url_encode(file);
  if (dry_run) target += "&dry_run=true";
  bool usage = false;
  auto r = call("apply", to, "PUT", target, &usage, text);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status == 400) {
    json j = json::parse(r->body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error") ? str(j["error"], "message") : r->body;
    std::fprintf(stderr, "vigil apply: %s\n  nothing was applied\n", msg.c_str());
    return kExitUsage;
  }
  if (r->status != 200) return report_error("apply", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  json j = parse_answer("apply", *r);
  if (j.is_null()) return kExitFailure;
  std::printf("Changes:\n");
  if (j["changes"].empty()) std::printf("  (none: what runs is left alone)\n");
  for (const auto& c : j["changes"]) std::printf("  %s\n", c.get<std::string>().c_str());
  std::printf("%s", str(j, "summary").c_str());
  if (dry_run) {
    std::printf("Dry run: nothing was applied.\n");
  } else {
    std::printf("Applied (revision %llu).\n", j.value("revision", 0ULL));
  }
  return kExitOk;
}

int cmd_cluster_status(const ClientTarget& to, bool as_json, int watch_ms) {
  for (;;) {
    bool usage = false;
    auto raft = call("status", to, "GET", "/v1/status", &usage);
    if (!raft) return usage ? kExitUsage : kExitFailure;
    auto r = call("status", to, "GET", "/v1/cluster/status?serializable=true", &usage);
    if (!r) return usage ? kExitUsage : kExitFailure;
    if (r->status != 200) return report_error("status", *r);
    json c = parse_answer("status", *r);
    json rj = json::parse(raft->body, nullptr, false);
    if (c.is_null()) return kExitFailure;
    if (as_json) {
      json out = c;
      out["raft"] = rj;
      std::printf("%s\n", out.dump().c_str());
    } else {
      if (watch_ms > 0) std::printf("\033[H\033[2J");
      print_status(rj, c);
    }
    std::fflush(stdout);
    if (watch_ms <= 0) return kExitOk;
    std::this_thread::sleep_for(std::chrono::milliseconds(watch_ms));
  }
}

int cmd_explain(const ClientTarget& to, const std::string& resource, bool as_json) {
  bool usage = false;
  auto r = call("explain", to, "GET", "/v1/cluster/explain/" + api::url_encode(resource), &usage);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status == 404) {
    report_error("explain", *r);
    return kExitNotFound;
  }
  if (r->status != 200) return report_error("explain", *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
    return kExitOk;
  }
  json j = parse_answer("explain", *r);
  if (j.is_null()) return kExitFailure;
  std::string placed;
  for (const auto& n : j["placed_on"]) placed += (placed.empty() ? "" : " ") + n.get<std::string>();
  std::printf("%s runs %s\n", resource.c_str(),
              placed.empty() ? "nowhere" : ("on " + placed).c_str());
  std::printf("%s", str(j, "text").c_str());
  return kExitOk;
}

int cmd_resource(const ClientTarget& to, const ResourceOpOptions& o, bool as_json) {
  json body = json::object();
  if (!o.node.empty()) body["node"] = o.node;
  if (o.lifetime_s > 0) body["lifetime_s"] = o.lifetime_s;
  bool usage = false;
  std::string what = "resource " + o.op;
  auto r = call(what, to, "POST", "/v1/resources/" + api::url_encode(o.resource) + "/" + o.op,
                &usage, body.dump());
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status == 404) {
    report_error(what, *r);
    return kExitNotFound;
  }
  if (r->status == 400) {
    report_error(what, *r);
    return kExitUsage;
  }
  if (r->status != 200) return report_error(what, *r);
  if (o.op != "move") {
    if (as_json) {
      std::printf("%s\n", r->body.c_str());
    } else {
      std::printf("OK: %s %s%s\n", o.op.c_str(), o.resource.c_str(),
                  o.node.empty() ? "" : (" " + o.node).c_str());
    }
    return kExitOk;
  }
  // A move is an operation with a result: wait until the resource runs on the node.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.wait_ms);
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = call(what, to, "GET", "/v1/cluster/explain/" + api::url_encode(o.resource), &usage);
    auto s = call(what, to, "GET", "/v1/cluster/status", &usage);
    if (e && s && e->status == 200 && s->status == 200) {
      json st = json::parse(s->body, nullptr, false);
      json ex = json::parse(e->body, nullptr, false);
      // A group moves when every member runs on the node and none elsewhere.
      std::set<std::string> members = {o.resource};
      if (ex.is_object() && ex.contains("members") && ex["members"].is_array()) {
        members.clear();
        for (const auto& m : ex["members"]) {
          if (m.is_string()) members.insert(m.get<std::string>());
        }
      }
      std::set<std::string> there;
      bool elsewhere = false;
      for (const auto& res : st["resources"]) {
        if (members.count(str(res, "id")) == 0) continue;
        for (const auto& on : res["nodes"]) {
          const bool pending = on.contains("pending");
          if (!on.value("running", false) && !pending) continue;
          if (str(on, "node") != o.node) {
            elsewhere = true;  // runs there, or may (a stop not answered yet)
          } else if (!pending) {
            there.insert(str(res, "id"));  // runs there, and the start is answered
          }
        }
      }
      if (there.size() == members.size() && !elsewhere) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        if (as_json) {
          std::printf("%s\n",
                      json{{"resource", o.resource}, {"node", o.node}, {"moved", true}, {"ms", ms}}
                          .dump()
                          .c_str());
        } else {
          std::printf("OK: %s runs on %s (after %lld ms)%s\n", o.resource.c_str(), o.node.c_str(),
                      static_cast<long long>(ms),
                      o.lifetime_s > 0 ? "" : "; `vigil resource clear` lets it move again");
        }
        return kExitOk;
      }
      bool placed_there = false;
      for (const auto& n : ex["placed_on"]) placed_there |= n == o.node;
      if (!placed_there && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(2)) {
        std::fprintf(stderr, "vigil resource move: %s cannot run on %s:\n%s", o.resource.c_str(),
                     o.node.c_str(), str(ex, "text").c_str());
        return kExitFailure;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "vigil resource move: %s is not running on %s after %d ms\n",
               o.resource.c_str(), o.node.c_str(), o.wait_ms);
  return kExitFailure;
}

int cmd_node(const ClientTarget& to, const std::string& op, const std::string& node, bool as_json) {
  bool usage = false;
  std::string what = "node " + op;
  auto r = call(what, to, "POST", "/v1/nodes/" + api::url_encode(node) + "/" + op, &usage, "{}");
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status == 404) {
    report_error(what, *r);
    return kExitNotFound;
  }
  if (r->status != 200) return report_error(what, *r);
  if (as_json) {
    std::printf("%s\n", r->body.c_str());
  } else {
    std::printf("OK: %s %s\n", op.c_str(), node.c_str());
  }
  return kExitOk;
}

int cmd_events(const ClientTarget& to, int limit, bool follow, bool as_json) {
  bool usage = false;
  auto r = call("events", to, "GET", "/v1/cluster/events?limit=" + std::to_string(limit), &usage);
  if (!r) return usage ? kExitUsage : kExitFailure;
  if (r->status != 200) return report_error("events", *r);
  json j = parse_answer("events", *r);
  if (j.is_null()) return kExitFailure;
  for (const auto& e : j["events"]) {
    if (as_json) {
      std::printf("%s\n", e.dump().c_str());
    } else {
      print_event(e);
    }
  }
  std::fflush(stdout);
  if (!follow) return kExitOk;
  const int64_t from = j.value("revision", int64_t{0}) + 1;
  return watch_loop("events", to, "/vigil/events/", true, from,
                    [as_json](const std::string&, const json& batch) {
                      for (const auto& ev : batch["events"]) {
                        if (ev.value("type", "") != "put") continue;  // pruned
                        json e = json::parse(ev["kv"].value("value", ""), nullptr, false);
                        if (!e.is_object()) continue;
                        e["revision"] = ev["kv"].value("mod_revision", int64_t{0});
                        if (as_json) {
                          std::printf("%s\n", e.dump().c_str());
                        } else {
                          print_event(e);
                        }
                      }
                    });
}

}  // namespace vigil::cli
