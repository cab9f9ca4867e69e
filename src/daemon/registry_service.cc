// RegistryService: service instances in the store, health checks on the agent's loop.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "daemon/registry_service.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>

#include "api/request.h"
#include "api/store_json.h"
#include "health/io/probe.h"
#include "health/policy.h"
#include "store/keys.h"

namespace vigil::daemon {
namespace {

namespace asio = boost::asio;
using api::json;

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxAddressBytes = 255;
constexpr size_t kMaxMetaEntries = 64;
constexpr int kDefaultIntervalMs = 10000;
constexpr int kMinIntervalMs = 100;
constexpr int kMaxIntervalMs = 3600 * 1000;
constexpr int kDefaultTimeoutMs = 2000;
constexpr int kRepublishMs = 1000;

api::HttpResponse ok(const json& j) { return api::json_response(j); }
using api::error_response;

api::HttpResponse bad(std::string_view message) {
  return error_response(400, "invalid_argument", message);
}

// Service names and instance ids: 1 to 128 of A-Z a-z 0-9 . _ - (they are key segments).
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes || s == "." || s == "..") return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string record_key(std::string_view service, std::string_view id) {
  return std::string(kSvcPrefix) + std::string(service) + "/" + std::string(id);
}
std::string health_key(std::string_view service, std::string_view id) {
  return std::string(kSvcHealthPrefix) + std::string(service) + "/" + std::string(id);
}

// An integer field of `j` in [lo, hi], `*out` unchanged when absent.
Status int_field(const json& j, const char* name, int64_t lo, int64_t hi, int64_t* out) {
  if (!j.contains(name)) return Status();
  const json& v = j[name];
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    return err(Errc::kInvalidArgument, std::string(name) + ": want a whole number from " +
                                           std::to_string(lo) + " to " + std::to_string(hi));
  }
  *out = v.get<int64_t>();
  return Status();
}

// The probe a record's "check" describes. Errors name the field.
Result<health::ProbeSpec> probe_of(const json& check, int64_t timeout_ms) {
  if (!check.is_object()) return err(Errc::kInvalidArgument, "check: want an object");
  const bool tcp = check.contains("tcp"), http = check.contains("http");
  if (tcp == http) {
    return err(Errc::kInvalidArgument,
               "check: want exactly one of {\"tcp\": \"HOST:PORT\"} or {\"http\": \"URL\"}");
  }
  const json& target = check[tcp ? "tcp" : "http"];
  if (!target.is_string()) {
    return err(Errc::kInvalidArgument,
               std::string("check.") + (tcp ? "tcp" : "http") + ": want a string");
  }
  auto spec = tcp ? health::parse_tcp_probe(target.get<std::string>())
                  : health::parse_http_probe(target.get<std::string>());
  if (!spec) return ErrorValue{spec.error()};
  if (http) {
    int64_t status = 0;
    RETURN_IF_ERROR(int_field(check, "expect_status", 100, 599, &status));
    spec->expect_status = static_cast<int>(status);
    if (check.contains("expect_body")) {
      if (!check["expect_body"].is_string()) {
        return err(Errc::kInvalidArgument, "check.expect_body: want a string");
      }
      spec->expect_body = check["expect_body"].get<std::string>();
    }
  }
  spec->timeout_ms = static_cast<int>(timeout_ms);
  return spec;
}

std::string state_of(const json& health_value) {
  if (!health_value.is_object()) return "unknown";
  return health_value.value("state", "unknown");
}

// One instance as GET /v1/svc/SERVICE shows it: the record plus its health.
json instance_json(const store::KeyValue& rec, const json& health_value) {
  json j = json::parse(rec.value, nullptr, false);
  if (!j.is_object()) j = json{{"error", "unreadable record"}};
  j["key"] = rec.key;
  j["create_revision"] = rec.create_revision;
  j["mod_revision"] = rec.mod_revision;
  std::string state = j.contains("check") ? state_of(health_value) : "healthy";
  j["health"] = state;
  j["healthy"] = state == "healthy";
  if (health_value.is_object() && health_value.contains("detail")) {
    j["health_detail"] = health_value["detail"];
  }
  return j;
}

// Every key under `prefix` in the store as applied here.
std::vector<store::KeyValue> scan(const store::MvccStore& s, const std::string& prefix) {
  auto r = s.range(prefix, store::prefix_end(prefix));
  if (!r) return {};
  return std::move(r->kvs);
}

}  // namespace

// One running health check of an instance this node took the registration of.
struct RegistryService::Check {
  explicit Check(asio::io_context& io) : timer(io), tracker(health::HealthPolicy{}) {}
  std::string service, id;
  int64_t mod_revision = 0;  // of the record: a re-registration is a new check
  store::LeaseId lease;
  health::ProbeSpec spec;
  int interval_ms = kDefaultIntervalMs;
  asio::steady_timer timer;
  health::HealthTracker tracker;
  std::string detail;                                          // of the last probe
  health::HealthState stored = health::HealthState::kUnknown;  // as the store shows it
  health::HealthState attempted = health::HealthState::kUnknown;
  int64_t attempted_ms = 0;
};

RegistryService::RegistryService(asio::io_context& io, StoreService& store, std::string node_name)
    : io_(io), store_(store), node_name_(std::move(node_name)) {}

RegistryService::~RegistryService() {
  for (auto& [key, c] : checks_) c->timer.cancel();
}

// ------------------------------------------------------------------------------ HTTP

bool RegistryService::handle(const api::HttpRequest& req, const api::Responder& respond,
                             int64_t now_ms) {
  api::Target t = api::split_target(req.target);
  std::string_view path = t.path;
  if (path != "/v1/svc" && path.substr(0, 8) != "/v1/svc/") return false;
  now_ms_ = now_ms;
  const bool serializable = api::query_flag(t.query, "serializable");
  if (path == "/v1/svc" || path == "/v1/svc/") {
    if (req.method != "GET") {
      respond(error_response(405, "method_not_allowed", "use GET on /v1/svc"));
      return true;
    }
    store_.read(serializable, respond, now_ms, [this] {
      const auto& s = store_.store();
      std::map<std::string, std::pair<int64_t, int64_t>> counts;  // service → (all, healthy)
      std::map<std::string, json> health;
      for (const auto& kv : scan(s, std::string(kSvcHealthPrefix))) {
        health[kv.key.substr(kSvcHealthPrefix.size())] = json::parse(kv.value, nullptr, false);
      }
      for (const auto& kv : scan(s, std::string(kSvcPrefix))) {
        std::string rest = kv.key.substr(kSvcPrefix.size());
        std::string service = rest.substr(0, rest.find('/'));
        auto h = health.find(rest);
        json inst = instance_json(kv, h == health.end() ? json() : h->second);
        auto& c = counts[service];
        c.first++;
        if (inst["healthy"].get<bool>()) c.second++;
      }
      json list = json::array();
      for (const auto& [name, c] : counts) {
        list.push_back(json{{"name", name}, {"instances", c.first}, {"healthy", c.second}});
      }
      return ok(json{{"services", list}, {"revision", s.revision()}});
    });
    return true;
  }
  // /v1/svc/SERVICE[/ID]
  std::string_view rest = path.substr(8);
  std::string service(rest.substr(0, rest.find('/')));
  std::string id;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    id = std::string(rest.substr(slash + 1));
  }
  if (!valid_name(service) || (rest.find('/') != std::string_view::npos && !valid_name(id))) {
    respond(bad("service names and instance ids are 1 to 128 characters of A-Z a-z 0-9 . _ -"));
    return true;
  }
  if (!id.empty()) {
    if (req.method != "DELETE") {
      respond(error_response(405, "method_not_allowed",
                             "use DELETE on /v1/svc/SERVICE/ID (GET /v1/svc/SERVICE lists)"));
      return true;
    }
    handle_deregister(service, id, respond, now_ms);
    return true;
  }
  if (req.method == "POST") {
    handle_register(req, service, respond, now_ms);
    return true;
  }
  if (req.method != "GET") {
    respond(error_response(
        405, "method_not_allowed",
        req.method + " is not allowed on " + std::string(path) + " (allowed: GET, POST)"));
    return true;
  }
  const bool healthy_only = api::query_flag(t.query, "healthy");
  store_.read(serializable, respond, now_ms, [this, service, healthy_only] {
    const auto& s = store_.store();
    std::map<std::string, json> health;
    const std::string hprefix = health_key(service, "");
    for (const auto& kv : scan(s, hprefix)) {
      health[kv.key.substr(hprefix.size())] = json::parse(kv.value, nullptr, false);
    }
    const std::string prefix = record_key(service, "");
    json list = json::array();
    for (const auto& kv : scan(s, prefix)) {
      auto h = health.find(kv.key.substr(prefix.size()));
      json inst = instance_json(kv, h == health.end() ? json() : h->second);
      if (healthy_only && !inst["healthy"].get<bool>()) continue;
      list.push_back(std::move(inst));
    }
    return ok(json{{"service", service}, {"instances", list}, {"revision", s.revision()}});
  });
  return true;
}

void RegistryService::handle_register(const api::HttpRequest& req, const std::string& service,
                                      const api::Responder& respond, int64_t now_ms) {
  auto body = api::parse_json_body(req.body);
  if (!body) return respond(error_response(400, "invalid_json", body.error().message()));
  const json& j = *body;
  if (!j.is_object()) return respond(bad("want a JSON object (see docs/API.md)"));
  if (!j.contains("id") || !j["id"].is_string() || !valid_name(j["id"].get<std::string>())) {
    return respond(bad("id: want 1 to 128 characters of A-Z a-z 0-9 . _ -"));
  }
  const std::string id = j["id"].get<std::string>();
  if (!j.contains("address") || !j["address"].is_string() ||
      j["address"].get<std::string>().empty() ||
      j["address"].get<std::string>().size() > kMaxAddressBytes) {
    return respond(bad("address: want a host name or IP address"));
  }
  int64_t port = 0;
  if (Status s = int_field(j, "port", 1, 65535, &port); !s.ok() || port == 0) {
    return respond(bad("port: want a whole number from 1 to 65535"));
  }
  json record{{"service", service},
              {"id", id},
              {"address", j["address"]},
              {"port", port},
              {"node", node_name_}};
  if (j.contains("meta")) {
    const json& meta = j["meta"];
    if (!meta.is_object() || meta.size() > kMaxMetaEntries) {
      return respond(bad("meta: want an object of at most 64 string values"));
    }
    for (const auto& [k, v] : meta.items()) {
      if (!v.is_string()) return respond(bad("meta." + k + ": want a string"));
    }
    record["meta"] = meta;
  } else {
    record["meta"] = json::object();
  }
  if (j.contains("ttl") && j.contains("lease")) {
    return respond(bad("give either ttl (the registry grants a lease) or lease, not both"));
  }
  int64_t ttl = 0, lease = 0;
  if (Status s = int_field(j, "ttl", store::kMinLeaseTtlS, store::kMaxLeaseTtlS, &ttl); !s.ok()) {
    return respond(bad(s.message()));
  }
  if (Status s = int_field(j, "lease", 1, INT64_MAX, &lease); !s.ok()) {
    return respond(bad(s.message()));
  }
  if (j.contains("check")) {
    int64_t interval = kDefaultIntervalMs, timeout = kDefaultTimeoutMs, rise = 2, fall = 3;
    for (Status s : {int_field(j, "interval_ms", kMinIntervalMs, kMaxIntervalMs, &interval),
                     int_field(j, "timeout_ms", 10, health::kMaxProbeTimeoutMs, &timeout),
                     int_field(j, "rise", 1, health::kMaxRiseFall, &rise),
                     int_field(j, "fall", 1, health::kMaxRiseFall, &fall)}) {
      if (!s.ok()) return respond(bad(s.message()));
    }
    if (timeout > interval) return respond(bad("timeout_ms: must not exceed interval_ms"));
    auto spec = probe_of(j["check"], timeout);
    if (!spec) return respond(bad(spec.error().message()));
    json check{{j["check"].contains("tcp") ? "tcp" : "http",
                j["check"].contains("tcp") ? j["check"]["tcp"] : j["check"]["http"]}};
    if (spec->expect_status != 0) check["expect_status"] = spec->expect_status;
    if (!spec->expect_body.empty()) check["expect_body"] = spec->expect_body;
    record["check"] = check;
    record["interval_ms"] = interval;
    record["timeout_ms"] = timeout;
    record["rise"] = rise;
    record["fall"] = fall;
  }

  // Writes the record (and clears a stale health state) in one revision.
  auto write = [this, service, id, record, ttl, now_ms](store::LeaseId lid, bool owned,
                                                        const api::Responder& respond) mutable {
    record["lease"] = lid.value();
    record["lease_owned"] = owned;
    store::Txn txn;
    txn.success.push_back(
        store::Put{record_key(service, id), api::dump_json(record), lid, false, false});
    txn.success.push_back(store::DeleteRange{health_key(service, id), "", false});
    store_.propose(std::move(txn), respond, now_ms,
                   [service, id, lid, ttl, node = node_name_](const store::Response& r) {
                     json out{
                         {"service", service},   {"id", id},     {"key", record_key(service, id)},
                         {"lease", lid.value()}, {"node", node}, {"revision", r.revision}};
                     if (ttl > 0) out["ttl"] = ttl;
                     return ok(out);
                   });
  };
  if (ttl == 0) return write(store::LeaseId(static_cast<uint64_t>(lease)), false, respond);
  // Grant first; the record is written once the lease exists. The second proposal is
  // posted: the grant's answer comes while the agent applies entries.
  store_.propose(
      store::LeaseGrant{store::kNoLease, ttl},
      [this, write, respond](api::HttpResponse r) mutable {
        if (r.status != 200) return respond(std::move(r));
        const uint64_t lid = std::stoull(r.body);
        asio::post(io_,
                   [write, respond, lid]() mutable { write(store::LeaseId(lid), true, respond); });
      },
      now_ms,
      [](const store::Response& r) {
        api::HttpResponse h;
        h.body = std::to_string(std::get<store::LeaseGrantResult>(r.result).id.value());
        return h;
      });
}

void RegistryService::handle_deregister(const std::string& service, const std::string& id,
                                        const api::Responder& respond, int64_t now_ms) {
  auto r = store_.store().range(record_key(service, id), "");
  if (!r || r->kvs.empty()) {
    return respond(
        error_response(404, "not_found", "no instance " + id + " of service " + service));
  }
  json rec = json::parse(r->kvs[0].value, nullptr, false);
  store::LeaseId owned;
  if (rec.is_object() && rec.value("lease_owned", false)) {
    owned = store::LeaseId(rec.value("lease", uint64_t{0}));
  }
  store::Txn txn;
  txn.success.push_back(store::DeleteRange{record_key(service, id), "", false});
  txn.success.push_back(store::DeleteRange{health_key(service, id), "", false});
  store_.propose(
      std::move(txn), respond, now_ms, [this, service, id, owned](const store::Response& resp) {
        if (owned != store::kNoLease) {
          // The registry granted this lease for the instance: end it too.
          asio::post(io_,
                     [this, owned] { (void)store_.propose_background(store::LeaseRevoke{owned}); });
        }
        const auto& tr = std::get<store::TxnResult>(resp.result);
        int64_t deleted = 0;
        if (!tr.responses.empty()) {
          deleted = std::get<store::DeleteResult>(tr.responses[0]).deleted;
        }
        return ok(json{{"service", service},
                       {"id", id},
                       {"deleted", deleted > 0},
                       {"revision", resp.revision}});
      });
}

// ------------------------------------------------------------------------------ checks

void RegistryService::tick(int64_t now_ms) {
  now_ms_ = now_ms;
  if (store_.store().revision() != reconciled_revision_) reconcile();
  for (auto& [key, c] : checks_) maybe_publish(*c);
}

void RegistryService::reconcile() {
  const auto& s = store_.store();
  reconciled_revision_ = s.revision();
  std::map<std::string, health::HealthState> stored;
  for (const auto& kv : scan(s, std::string(kSvcHealthPrefix))) {
    auto state = health::parse_health_state(state_of(json::parse(kv.value, nullptr, false)));
    stored[kv.key.substr(kSvcHealthPrefix.size())] = state.value_or(health::HealthState::kUnknown);
  }
  std::map<std::string, std::shared_ptr<Check>> wanted;
  for (const auto& kv : scan(s, std::string(kSvcPrefix))) {
    json rec = json::parse(kv.value, nullptr, false);
    if (!rec.is_object() || rec.value("node", "") != node_name_ || !rec.contains("check")) {
      continue;
    }
    const std::string key = kv.key.substr(kSvcPrefix.size());
    auto st = stored.find(key);
    const health::HealthState stored_state =
        st == stored.end() ? health::HealthState::kUnknown : st->second;
    if (auto it = checks_.find(key);
        it != checks_.end() && it->second->mod_revision == kv.mod_revision) {
      it->second->stored = stored_state;
      wanted[key] = it->second;
      continue;
    }
    auto spec = probe_of(rec["check"], rec.value("timeout_ms", int64_t{kDefaultTimeoutMs}));
    if (!spec) {
      spdlog::warn("{}: registry: instance {}: {}", node_name_, key, spec.error().to_string());
      continue;
    }
    auto c = std::make_shared<Check>(io_);
    c->service = rec.value("service", "");
    c->id = rec.value("id", "");
    c->mod_revision = kv.mod_revision;
    c->lease = kv.lease;
    c->spec = *spec;
    c->interval_ms = static_cast<int>(rec.value("interval_ms", int64_t{kDefaultIntervalMs}));
    // After a restart the stored state stands until the probes contradict it `fall` (or
    // `rise`) times in a row.
    c->tracker = health::HealthTracker(
        health::HealthPolicy{static_cast<int>(rec.value("rise", int64_t{2})),
                             static_cast<int>(rec.value("fall", int64_t{3})), stored_state});
    c->stored = stored_state;
    wanted[key] = c;
    start_check(c);
  }
  for (auto& [key, c] : checks_) {
    auto it = wanted.find(key);
    if (it == wanted.end() || it->second != c) {
      spdlog::info("{}: registry: check of {} stopped", node_name_, key);
      c->timer.cancel();
    }
  }
  checks_ = std::move(wanted);
}

void RegistryService::start_check(const std::shared_ptr<Check>& c) {
  spdlog::info("{}: registry: checking {}/{} every {} ms", node_name_, c->service, c->id,
               c->interval_ms);
  schedule_probe(c, 0);
}

void RegistryService::schedule_probe(const std::shared_ptr<Check>& c, int delay_ms) {
  std::weak_ptr<Check> weak = c;
  c->timer.expires_after(std::chrono::milliseconds(delay_ms));
  c->timer.async_wait([this, weak](const boost::system::error_code& ec) {
    auto c = weak.lock();
    if (ec || !c) return;
    health::run_probe(io_, c->spec, [this, weak](health::ProbeResult r) {
      auto c = weak.lock();
      if (!c) return;  // deregistered (or the registry is gone) meanwhile
      on_probe_result(c, r.ok, r.detail);
    });
  });
}

void RegistryService::on_probe_result(const std::shared_ptr<Check>& c, bool ok,
                                      const std::string& detail) {
  c->detail = detail;
  if (auto flip = c->tracker.observe(ok)) {
    spdlog::info("{}: registry: {}/{} is {} ({})", node_name_, c->service, c->id,
                 health::health_state_name(*flip), detail);
  }
  maybe_publish(*c);
  schedule_probe(c, c->interval_ms);
}

void RegistryService::maybe_publish(Check& c) {
  const health::HealthState want = c.tracker.state();
  if (want == health::HealthState::kUnknown || want == c.stored) return;
  if (want == c.attempted && now_ms_ - c.attempted_ms < kRepublishMs) return;
  c.attempted = want;
  c.attempted_ms = now_ms_;
  json value{
      {"state", health::health_state_name(want)}, {"node", node_name_}, {"detail", c.detail}};
  // Only while the record is the one this check belongs to: a health state never outlives
  // or precedes its instance.
  store::Txn txn;
  store::Compare same;
  same.key = record_key(c.service, c.id);
  same.target = store::Compare::Target::kMod;
  same.op = store::Compare::Op::kEqual;
  same.number = c.mod_revision;
  txn.compares.push_back(same);
  txn.success.push_back(
      store::Put{health_key(c.service, c.id), api::dump_json(value), c.lease, false, false});
  Status s = store_.propose_background(std::move(txn));
  if (!s.ok()) {
    spdlog::debug("{}: registry: publish {}/{}: {}", node_name_, c.service, c.id, s.to_string());
  }
}

}  // namespace vigil::daemon
