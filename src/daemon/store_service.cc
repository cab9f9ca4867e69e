// StoreService: HTTP endpoints of the store, requests through Raft, leader duties.
#include "daemon/store_service.h"

#include <charconv>

#include "api/request.h"
#include "api/store_json.h"
#include "store/keys.h"
#include "store/recipes.h"

namespace vigil::daemon {
namespace {

using api::json;

// Keys under this prefix belong to the cluster manager (DESIGN.md "The store").
constexpr std::string_view kReservedPrefix = "/vigil/";

api::HttpResponse ok(const json& j) { return api::json_response(j); }
using api::error_response;

// The HTTP answer for a Status the store or the codec returned.
api::HttpResponse status_response(const Status& s) {
  switch (s.code()) {
    case Errc::kInvalidArgument:
      return error_response(400, "invalid_argument", s.message());
    case Errc::kNotFound:
      return error_response(404, "not_found", s.message());
    case Errc::kAlreadyExists:
      return error_response(409, "already_exists", s.message());
    case Errc::kOutOfRange:
      if (s.message().find("compact") != std::string::npos) {
        return error_response(410, "compacted", s.message());
      }
      return error_response(400, "out_of_range", s.message());
    case Errc::kResourceExhausted:
      return error_response(429, "resource_exhausted", s.message());
    case Errc::kPermissionDenied:
      return error_response(403, "reserved", s.message());
    default:
      return error_response(503, "unavailable", s.message());
  }
}

// An integer query parameter; `*out` unchanged when absent. Errors name the parameter.
Status query_int(std::string_view query, std::string_view name, int64_t* out) {
  auto v = api::query_param(query, name);
  if (!v) return Status();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < 0) {
    return err(Errc::kInvalidArgument,
               "query parameter " + std::string(name) + "=" + *v + ": want a whole number >= 0");
  }
  *out = n;
  return Status();
}

bool reserved(std::string_view key) {
  return key.substr(0, kReservedPrefix.size()) == kReservedPrefix;
}

// Whether [key, range_end) touches the reserved prefix.
bool range_touches_reserved(std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return reserved(key);
  const std::string res_end = store::prefix_end(kReservedPrefix);
  const bool starts_before_end = key < std::string_view(res_end);
  const bool ends_after_start = range_end == store::kRangeAll || range_end > kReservedPrefix;
  return starts_before_end && ends_after_start;
}

Status check_writable(const store::Txn& t) {
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      if (const auto* p = std::get_if<store::Put>(&op); p && reserved(p->key)) {
        return err(Errc::kPermissionDenied, "keys under /vigil/ are written only by Vigil itself");
      }
      if (const auto* d = std::get_if<store::DeleteRange>(&op);
          d && range_touches_reserved(d->key, d->range_end)) {
        return err(Errc::kPermissionDenied, "keys under /vigil/ are written only by Vigil itself");
      }
    }
  }
  return Status();
}

store::AutoCompactor::Options compactor_options(const StoreServiceOptions& o) {
  return store::AutoCompactor::Options{o.retain_revisions, 0, o.compaction_interval_ms,
                                       o.compaction_max_step};
}

}  // namespace

StoreService::StoreService(NodeId self, StoreHost& host, StoreServiceOptions options)
    : self_(self), host_(host), options_(options), compactor_(compactor_options(options)) {}

// ------------------------------------------------------------------------------ apply

Status StoreService::apply(LogIndex index, std::string_view data, int64_t now_ms) {
  last_now_ms_ = now_ms;
  auto req = store::decode_request(data);
  if (!req) {
    store_.apply_noop(index);
    return req.error();
  }
  store::Response resp = store_.apply(index, *req);
  hub_.on_apply(resp);
  if (resp.status.ok()) {
    if (const auto* g = std::get_if<store::LeaseGrant>(&req->body)) {
      (void)g;
      const auto& res = std::get<store::LeaseGrantResult>(resp.result);
      lease_tracker_.on_grant(res.id, res.ttl_s, now_ms);
      refreshed_ms_[res.id] = now_ms;
    } else if (const auto* k = std::get_if<store::LeaseKeepAlive>(&req->body)) {
      // A full TTL from now, also for a lease whose expiry this leader already proposed:
      // that LeaseExpire was decided before this keep-alive and will not apply.
      const auto& res = std::get<store::LeaseGrantResult>(resp.result);
      lease_tracker_.on_grant(k->id, res.ttl_s, now_ms);
      refreshed_ms_[k->id] = now_ms;
    } else if (const auto* v = std::get_if<store::LeaseRevoke>(&req->body)) {
      lease_tracker_.on_revoke(v->id);
      refreshed_ms_.erase(v->id);
    } else if (const auto* x = std::get_if<store::LeaseExpire>(&req->body)) {
      lease_tracker_.on_revoke(x->id);
      refreshed_ms_.erase(x->id);
    }
  }
  if (req->origin == self_) {
    auto it = pending_writes_.find(req->request_id);
    if (it != pending_writes_.end()) {
      PendingWrite w = std::move(it->second);
      pending_writes_.erase(it);
      if (!resp.status.ok()) {
        w.respond(status_response(resp.status));
      } else if (w.then) {
        w.then(resp, w.respond);
      } else {
        w.respond(w.render(resp));
      }
    }
  }
  return Status();
}

void StoreService::apply_noop(LogIndex index) { store_.apply_noop(index); }

Status StoreService::restore(std::string_view data, int64_t now_ms) {
  RETURN_IF_ERROR(store_.restore(data));
  hub_.on_restore(store_);
  lease_tracker_.reset(store_.leases(), now_ms);
  refreshed_ms_.clear();
  for (const auto& l : store_.leases()) refreshed_ms_[l.id] = now_ms;
  return Status();
}

// ------------------------------------------------------------------------------ time

void StoreService::on_leadership(bool leader, int64_t now_ms) {
  if (leader == leader_) return;
  leader_ = leader;
  if (leader) {
    // A new leader gives every lease a full TTL: it cannot know the old deadlines.
    lease_tracker_.reset(store_.leases(), now_ms);
    lease_tracker_.on_become_leader(now_ms);
    compactor_ = store::AutoCompactor(compactor_options(options_));
  } else {
    lease_tracker_.on_lose_leadership();
  }
}

void StoreService::tick(int64_t now_ms) {
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (now_ms >= it->second.deadline_ms) {
      it->second.respond(
          error_response(503, "timeout",
                         "not committed within " + std::to_string(options_.request_timeout_ms) +
                             " ms (no quorum?); the request may still be applied later"));
      it = pending_writes_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (now_ms >= it->second.deadline_ms) {
      it->second.respond(
          error_response(503, "timeout",
                         "could not confirm leadership for a linearizable read within " +
                             std::to_string(options_.request_timeout_ms) + " ms (no quorum?)"));
      it = pending_reads_.erase(it);
    } else {
      ++it;
    }
  }
  last_now_ms_ = now_ms;
  check_waiters(now_ms);
  pump_watches(now_ms);
  if (!leader_) return;
  // Leader duties: expiry and compaction are decided here and committed through the log.
  for (store::LeaseId id : lease_tracker_.expired(now_ms)) {
    // Conditional on no keep-alive being applied after what this node has applied now.
    store::Request r{self_, 0, store::LeaseExpire{id, store_.applied()}};
    (void)host_.propose(store::encode_request(r));
  }
  compactor_.observe(now_ms, store_.revision());
  if (auto rev = compactor_.next(now_ms, store_.revision(), store_.compact_revision())) {
    store::Request r{self_, 0, store::Compact{*rev}};
    (void)host_.propose(store::encode_request(r));
  }
}

// ------------------------------------------------------------------------------ plumbing

void StoreService::propose(store::RequestBody body, const api::Responder& respond, int64_t now_ms,
                           std::function<api::HttpResponse(const store::Response&)> render) {
  store::Request r{self_, next_request_++, std::move(body)};
  if (Status v = store::validate_request(r); !v.ok()) return respond(status_response(v));
  Status s = host_.propose(store::encode_request(r));
  if (!s.ok()) {
    const int status = s.code() == Errc::kResourceExhausted ? 429 : 503;
    return respond(error_response(status, "unavailable", s.message()));
  }
  pending_writes_[r.request_id] =
      PendingWrite{respond, now_ms + options_.request_timeout_ms, std::move(render)};
}

Status StoreService::propose_background(store::RequestBody body) {
  store::Request r{self_, 0, std::move(body)};
  RETURN_IF_ERROR(store::validate_request(r));
  return host_.propose(store::encode_request(r));
}

void StoreService::read(bool serializable, const api::Responder& respond, int64_t now_ms,
                        std::function<api::HttpResponse()> compute) {
  if (serializable) return respond(compute());
  std::string ctx = "r/" + std::to_string(next_request_++);
  Status s = host_.read_index(ctx);
  if (!s.ok()) {
    return respond(error_response(
        503, "unavailable",
        s.message() + ": a linearizable read needs a leader and a quorum (retry, or add "
                      "serializable=true for this node's possibly stale view)"));
  }
  pending_reads_[ctx] = PendingRead{respond, now_ms + options_.request_timeout_ms, LogIndex(0),
                                    false, std::move(compute)};
}

void StoreService::on_read_state(const raft::ReadState& rs) {
  auto it = pending_reads_.find(rs.context);
  if (it == pending_reads_.end()) return;
  it->second.index = rs.index;
  it->second.have_index = true;
}

void StoreService::check_waiters(int64_t now_ms) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    auto mine = store_.range(it->key, "");
    auto view = store::queue_view(store_, it->prefix);
    if (mine && mine->kvs.empty()) {
      it->respond(error_response(
          409, "lease_lost",
          "the candidate key " + it->key +
              " is gone: its lease expired or was revoked (or it resigned); not elected"));
      it = waiters_.erase(it);
    } else if (mine && view && view->holder && view->holder->key == it->key) {
      const auto& kv = view->holder.value();
      it->respond(ok(json{{"key", kv.key},
                          {"value", kv.value},
                          {"token", kv.create_revision},
                          {"lease", kv.lease.value()},
                          {"revision", store_.revision()}}));
      it = waiters_.erase(it);
    } else if (now_ms >= it->deadline_ms) {
      it->respond(error_response(
          408, "still_waiting",
          "not first in the queue yet (" + std::to_string(view ? view->waiting : 0) +
              " waiting); the candidacy stays while its lease lives: call again to keep "
              "waiting"));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void StoreService::serve_reads() {
  check_waiters(last_now_ms_);
  pump_watches(last_now_ms_);
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.have_index && store_.applied() >= it->second.index) {
      it->second.respond(it->second.compute());
      it = pending_reads_.erase(it);
    } else {
      ++it;
    }
  }
}

// ------------------------------------------------------------------------------ HTTP

bool StoreService::handle(const api::HttpRequest& req, const api::Responder& respond,
                          int64_t now_ms) {
  api::Target t = api::split_target(req.target);
  std::string_view path = t.path;
  if (path == "/v1/kv" || path.substr(0, 7) == "/v1/kv/") {
    handle_kv(req, path, t.query, respond, now_ms);
    return true;
  }
  if (path == "/v1/txn") {
    if (req.method != "POST") {
      respond(error_response(405, "method_not_allowed", "use POST on /v1/txn"));
      return true;
    }
    auto j = api::parse_json_body(req.body);
    if (!j) {
      respond(error_response(400, "invalid_json", j.error().message()));
      return true;
    }
    auto txn = api::parse_txn(*j);
    if (!txn) {
      respond(error_response(400, "invalid_argument", txn.error().message()));
      return true;
    }
    if (Status s = check_writable(*txn); !s.ok()) {
      respond(status_response(s));
      return true;
    }
    propose(std::move(*txn), respond, now_ms, [](const store::Response& r) {
      return ok(api::txn_result_json(std::get<store::TxnResult>(r.result), r.revision));
    });
    return true;
  }
  if (path == "/v1/lease" || path.substr(0, 10) == "/v1/lease/" || path == "/v1/leases") {
    handle_lease(req, path, respond, now_ms);
    return true;
  }
  if (path.substr(0, 13) == "/v1/election/" || path.substr(0, 9) == "/v1/lock/") {
    handle_queue(req, path, path.substr(0, 9) == "/v1/lock/", respond, now_ms);
    return true;
  }
  if (path == "/v1/watch") {
    handle_watch(req, t.query, respond, now_ms);
    return true;
  }
  if (path == "/v1/compact") {
    if (req.method != "POST") {
      respond(error_response(405, "method_not_allowed", "use POST on /v1/compact"));
      return true;
    }
    auto j = api::parse_json_body(req.body);
    if (!j) {
      respond(error_response(400, "invalid_json", j.error().message()));
      return true;
    }
    if (!j->is_object() || !j->contains("revision") || !(*j)["revision"].is_number_integer()) {
      respond(error_response(400, "invalid_argument", "want {\"revision\": N}"));
      return true;
    }
    propose(store::Compact{(*j)["revision"].get<int64_t>()}, respond, now_ms,
            [](const store::Response& r) {
              return ok(json{
                  {"compact_revision", std::get<store::CompactResult>(r.result).compact_revision}});
            });
    return true;
  }
  return false;
}

void StoreService::handle_kv(const api::HttpRequest& req, std::string_view path,
                             std::string_view query, const api::Responder& respond,
                             int64_t now_ms) {
  const bool serializable = api::query_flag(query, "serializable");
  int64_t revision = 0, limit = 0;
  if (Status s = query_int(query, "revision", &revision); !s.ok()) {
    return respond(status_response(s));
  }
  if (Status s = query_int(query, "limit", &limit); !s.ok()) return respond(status_response(s));
  const bool keys_only = api::query_flag(query, "keys_only");
  const bool count_only = api::query_flag(query, "count_only");
  const bool prev_kv = api::query_flag(query, "prev_kv");

  // The key or range the request names.
  std::string key, range_end;
  const bool single = path.size() > 7;
  if (single) {
    auto k = api::parse_kv_target(path, store::kMaxKeyBytes);
    if (!k) return respond(status_response(k.error()));
    key = *k;
  } else {
    auto prefix = api::query_param(query, "prefix");
    auto from = api::query_param(query, "key");
    if (prefix && from) {
      return respond(error_response(400, "invalid_argument",
                                    "give either prefix= or key= (with an optional range_end=)"));
    }
    if (prefix) {
      key = prefix->empty() ? std::string(1, '\0') : *prefix;
      range_end = prefix->empty() ? std::string(store::kRangeAll) : store::prefix_end(*prefix);
    } else if (from) {
      key = *from;
      range_end = api::query_param(query, "range_end").value_or("");
    } else {
      return respond(
          error_response(400, "invalid_argument",
                         "/v1/kv needs prefix=P (\"\" for every key) or key=K[&range_end=E]; "
                         "or use /v1/kv/KEY for one key"));
    }
    if (Status s = store::validate_range("range", key, range_end); !s.ok()) {
      return respond(status_response(s));
    }
  }

  if (req.method == "GET") {
    return read(serializable, respond, now_ms,
                [this, key, range_end, revision, limit, keys_only, count_only, single]() {
                  auto r = store_.range(key, range_end, revision, limit, keys_only, count_only);
                  if (!r) return status_response(r.error());
                  if (!single) return ok(api::range_json(*r));
                  if (r->kvs.empty()) {
                    return error_response(404, "not_found", "key '" + key + "' not found");
                  }
                  json j = api::kv_json(r->kvs.front());
                  j["revision"] = r->revision;
                  return ok(j);
                });
  }
  if (req.method == "PUT" || req.method == "POST") {
    if (!single) {
      return respond(error_response(405, "method_not_allowed", "PUT needs /v1/kv/KEY"));
    }
    if (reserved(key)) {
      return respond(status_response(
          Status(Errc::kPermissionDenied, "keys under /vigil/ are written only by Vigil itself")));
    }
    if (req.body.size() > store::kMaxValueBytes) {
      return respond(
          error_response(413, "too_large",
                         "value larger than " + std::to_string(store::kMaxValueBytes) + " bytes"));
    }
    int64_t lease = 0;
    if (Status s = query_int(query, "lease", &lease); !s.ok()) return respond(status_response(s));
    store::Put put{key, req.body, store::LeaseId(static_cast<uint64_t>(lease)), prev_kv, false};
    return propose(std::move(put), respond, now_ms, [key](const store::Response& r) {
      json j{{"key", key}, {"revision", r.revision}};
      const auto& pr = std::get<store::PutResult>(r.result);
      if (pr.prev_kv) j["prev_kv"] = api::kv_json(*pr.prev_kv);
      return ok(j);
    });
  }
  if (req.method == "DELETE") {
    if (range_touches_reserved(key, range_end)) {
      return respond(status_response(
          Status(Errc::kPermissionDenied, "keys under /vigil/ are written only by Vigil itself")));
    }
    store::DeleteRange d{key, range_end, prev_kv};
    return propose(std::move(d), respond, now_ms, [key, single](const store::Response& r) {
      const auto& dr = std::get<store::DeleteResult>(r.result);
      json j{{"deleted", dr.deleted}, {"revision", r.revision}};
      if (single) j["key"] = key;
      if (!dr.prev_kvs.empty()) {
        json prev = json::array();
        for (const auto& kv : dr.prev_kvs) prev.push_back(api::kv_json(kv));
        j["prev_kvs"] = prev;
      }
      return ok(j);
    });
  }
  respond(error_response(
      405, "method_not_allowed",
      req.method + " is not allowed on " + std::string(path) + " (allowed: GET, PUT, DELETE)"));
}

void StoreService::handle_lease(const api::HttpRequest& req, std::string_view path,
                                const api::Responder& respond, int64_t now_ms) {
  if (path == "/v1/leases") {
    if (req.method != "GET") {
      return respond(error_response(405, "method_not_allowed", "use GET on /v1/leases"));
    }
    json list = json::array();
    for (const auto& l : store_.leases())
      list.push_back(json{{"id", l.id.value()}, {"ttl", l.ttl_s}});
    return respond(ok(json{{"leases", list}}));
  }
  if (path == "/v1/lease") {
    if (req.method != "POST") {
      return respond(error_response(405, "method_not_allowed", "use POST on /v1/lease"));
    }
    auto j = api::parse_json_body(req.body);
    if (!j) return respond(error_response(400, "invalid_json", j.error().message()));
    if (!j->is_object() || !j->contains("ttl") || !(*j)["ttl"].is_number_integer()) {
      return respond(error_response(400, "invalid_argument",
                                    "want {\"ttl\": SECONDS} (and optionally \"id\": N)"));
    }
    int64_t id = 0;
    if (j->contains("id")) {
      if (!(*j)["id"].is_number_integer() || (*j)["id"].get<int64_t>() < 0) {
        return respond(error_response(400, "invalid_argument", "id: want a whole number"));
      }
      id = (*j)["id"].get<int64_t>();
    }
    store::LeaseGrant g{store::LeaseId(static_cast<uint64_t>(id)), (*j)["ttl"].get<int64_t>()};
    return propose(std::move(g), respond, now_ms, [](const store::Response& r) {
      const auto& gr = std::get<store::LeaseGrantResult>(r.result);
      return ok(json{{"id", gr.id.value()}, {"ttl", gr.ttl_s}, {"revision", r.revision}});
    });
  }
  // /v1/lease/ID[/keepalive]
  std::string_view rest = path.substr(10);
  std::string_view action;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    action = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
  if (ec != std::errc() || end != rest.data() + rest.size() || id == 0) {
    return respond(error_response(400, "invalid_argument",
                                  "lease id '" + std::string(rest) + "': want a number > 0"));
  }
  const store::LeaseId lid(id);
  if (action == "keepalive") {
    if (req.method != "POST") {
      return respond(error_response(405, "method_not_allowed", "use POST for a keep-alive"));
    }
    return propose(store::LeaseKeepAlive{lid}, respond, now_ms, [](const store::Response& r) {
      const auto& gr = std::get<store::LeaseGrantResult>(r.result);
      return ok(json{{"id", gr.id.value()}, {"ttl", gr.ttl_s}});
    });
  }
  if (!action.empty()) {
    return respond(error_response(404, "not_found", "no such endpoint: " + std::string(path)));
  }
  if (req.method == "DELETE") {
    return propose(store::LeaseRevoke{lid}, respond, now_ms, [lid](const store::Response& r) {
      return ok(json{{"id", lid.value()},
                     {"deleted", std::get<store::LeaseRevokeResult>(r.result).deleted},
                     {"revision", r.revision}});
    });
  }
  if (req.method == "GET") {
    // Linearizable like every read (serializable=true for this node's view).
    const bool serializable = api::query_flag(api::split_target(req.target).query, "serializable");
    return read(serializable, respond, now_ms, [this, lid, id]() {
      auto info = store_.lease_ttl(lid);
      if (!info) return status_response(info.error());
      json j{{"id", id}, {"ttl", info->ttl_s}, {"keys", info->keys}};
      if (leader_) {
        auto rem = lease_tracker_.remaining_ms(lid, last_now_ms_);
        j["remaining_ms"] = rem ? *rem : 0;
        j["remaining_from"] = "leader";
      } else {
        auto it = refreshed_ms_.find(lid);
        int64_t since = it == refreshed_ms_.end() ? 0 : last_now_ms_ - it->second;
        j["remaining_ms"] = std::max<int64_t>(0, info->ttl_s * 1000 - since);
        // A follower only knows when it applied the last keep-alive: an estimate.
        j["remaining_from"] = "follower-estimate";
      }
      return ok(j);
    });
  }
  respond(error_response(405, "method_not_allowed",
                         req.method + " is not allowed on " + std::string(path) +
                             " (allowed: GET, DELETE; POST .../keepalive)"));
}

}  // namespace vigil::daemon

namespace vigil::daemon {

void StoreService::handle_queue(const api::HttpRequest& req, std::string_view path, bool lock,
                                const api::Responder& respond, int64_t now_ms) {
  std::string_view rest = path.substr(lock ? 9 : 13);
  std::string_view action;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    action = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  auto name = api::url_decode(rest);
  if (!name) return respond(error_response(400, "invalid_argument", "bad percent-encoding"));
  if (Status s = store::check_queue_name(*name); !s.ok()) return respond(status_response(s));
  const std::string prefix =
      store::queue_prefix(lock ? store::kLockPrefix : store::kElectionPrefix, *name);
  const std::string what = lock ? "lock" : "election";

  if (req.method == "GET" && !lock && action == "observe") {
    if (!req.start_stream) {
      return respond(error_response(500, "internal", "this server cannot stream"));
    }
    observers_.push_back(
        Observer{prefix, req.start_stream(200, "application/x-ndjson"), "", false, now_ms});
    return pump_observers(now_ms);
  }
  if (req.method == "GET" && action.empty()) {
    return read(false, respond, now_ms, [this, prefix, what, n = *name]() {
      auto v = store::queue_view(store_, prefix);
      if (!v) return status_response(v.error());
      if (!v->holder) {
        return error_response(404, "not_found", "nobody holds " + what + " '" + n + "'");
      }
      return ok(json{{"key", v->holder->key},
                     {"value", v->holder->value},
                     {"token", v->holder->create_revision},
                     {"lease", v->holder->lease.value()},
                     {"waiting", v->waiting},
                     {"revision", store_.revision()}});
    });
  }
  if (lock && req.method == "DELETE" && action.empty()) {
    auto q = api::split_target(req.target).query;
    int64_t lease = 0;
    if (Status s = query_int(q, "lease", &lease); !s.ok() || lease <= 0) {
      return respond(error_response(400, "invalid_argument", "DELETE needs ?lease=ID"));
    }
    const std::string key = store::queue_key(prefix, store::LeaseId(static_cast<uint64_t>(lease)));
    return propose(
        store::DeleteRange{key, "", false}, respond, now_ms, [key](const store::Response& r) {
          const auto& d = std::get<store::DeleteResult>(r.result);
          return ok(json{{"released", d.deleted > 0}, {"key", key}, {"revision", r.revision}});
        });
  }
  if (req.method != "POST") {
    return respond(error_response(405, "method_not_allowed",
                                  req.method + " is not allowed on " + std::string(path)));
  }
  auto j = api::parse_json_body(req.body.empty() ? std::string_view("{}") : req.body);
  if (!j) return respond(error_response(400, "invalid_json", j.error().message()));
  if (!j->is_object() || !j->contains("lease") || !(*j)["lease"].is_number_integer() ||
      (*j)["lease"].get<int64_t>() <= 0) {
    return respond(error_response(400, "invalid_argument",
                                  "want {\"lease\": ID} (grant one with POST /v1/lease; the " +
                                      what + " ends when it does)"));
  }
  const store::LeaseId lease(static_cast<uint64_t>((*j)["lease"].get<int64_t>()));
  const std::string key = store::queue_key(prefix, lease);
  std::string value;
  if (j->contains("value")) {
    if (!(*j)["value"].is_string()) {
      return respond(error_response(400, "invalid_argument", "value: want a string"));
    }
    value = (*j)["value"].get<std::string>();
  }
  int64_t timeout_ms = 30000;
  if (j->contains("timeout_ms")) {
    const json& t = (*j)["timeout_ms"];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > 300000) {
      return respond(error_response(400, "invalid_argument",
                                    "timeout_ms: want 0 to 300000 (how long to wait here)"));
    }
    timeout_ms = t.get<int64_t>();
  }

  const bool acquire = lock ? action.empty() : action == "campaign";
  if (acquire) {
    // Join the queue (idempotent per lease), then wait here until first in it.
    store::Request r{self_, next_request_++, store::join_queue_txn(key, value, lease)};
    if (Status v = store::validate_request(r); !v.ok()) return respond(status_response(v));
    Status s = host_.propose(store::encode_request(r));
    if (!s.ok()) return respond(error_response(503, "unavailable", s.message()));
    PendingWrite w;
    w.respond = respond;
    w.deadline_ms = now_ms + options_.request_timeout_ms;
    w.then = [this, prefix, key, timeout_ms, now_ms](const store::Response&,
                                                     const api::Responder& answer) {
      waiters_.push_back(QueueWaiter{prefix, key, answer, now_ms + timeout_ms});
      check_waiters(last_now_ms_);
    };
    pending_writes_[r.request_id] = std::move(w);
    return;
  }
  if (!lock && action == "proclaim") {
    if (!j->contains("token") || !(*j)["token"].is_number_integer()) {
      return respond(error_response(400, "invalid_argument",
                                    "want {\"lease\": ID, \"token\": T, \"value\": V}"));
    }
    // Still the leader elected with this token: the key exists with that create revision.
    store::Txn t;
    store::Compare c;
    c.key = key;
    c.target = store::Compare::Target::kCreate;
    c.op = store::Compare::Op::kEqual;
    c.number = (*j)["token"].get<int64_t>();
    t.compares.push_back(c);
    t.success.push_back(store::Put{key, value, store::kNoLease, false, true});
    return propose(std::move(t), respond, now_ms, [key](const store::Response& r) {
      if (!std::get<store::TxnResult>(r.result).succeeded) {
        return error_response(409, "not_leader",
                              "not the leader with this token any more (" + key + ")");
      }
      return ok(json{{"key", key}, {"revision", r.revision}});
    });
  }
  if (!lock && action == "resign") {
    return propose(
        store::DeleteRange{key, "", false}, respond, now_ms, [key](const store::Response& r) {
          const auto& d = std::get<store::DeleteResult>(r.result);
          return ok(json{{"resigned", d.deleted > 0}, {"key", key}, {"revision", r.revision}});
        });
  }
  respond(error_response(404, "not_found", "no such endpoint: " + std::string(path)));
}

}  // namespace vigil::daemon

namespace vigil::daemon {

void StoreService::handle_watch(const api::HttpRequest& req, std::string_view query,
                                const api::Responder& respond, int64_t now_ms) {
  if (req.method != "GET") {
    return respond(error_response(405, "method_not_allowed", "use GET on /v1/watch"));
  }
  if (!req.start_stream) {
    return respond(error_response(500, "internal", "this server cannot stream"));
  }
  store::WatchSpec spec;
  auto prefix = api::query_param(query, "prefix");
  auto key = api::query_param(query, "key");
  if (prefix && key) {
    return respond(error_response(400, "invalid_argument",
                                  "give either prefix= or key= (with an optional range_end=)"));
  }
  if (prefix) {
    spec.key = prefix->empty() ? std::string(1, '\0') : *prefix;
    spec.range_end = prefix->empty() ? std::string(store::kRangeAll) : store::prefix_end(*prefix);
  } else if (key) {
    spec.key = *key;
    spec.range_end = api::query_param(query, "range_end").value_or("");
  } else {
    return respond(
        error_response(400, "invalid_argument", "/v1/watch needs key=K[&range_end=E] or prefix=P"));
  }
  if (Status s = query_int(query, "start_revision", &spec.start_revision); !s.ok()) {
    return respond(status_response(s));
  }
  spec.prev_kv = api::query_flag(query, "prev_kv");
  int64_t progress_ms = 5000;
  if (Status s = query_int(query, "progress_ms", &progress_ms); !s.ok()) {
    return respond(status_response(s));
  }
  if (progress_ms != 0 && progress_ms < 100) progress_ms = 100;
  auto id = hub_.create(spec, store_);
  if (!id) return respond(status_response(id.error()));
  auto out = req.start_stream(200, "application/x-ndjson");
  // The first line says where the stream starts: a client that reconnects passes the last
  // revision it saw + 1 as start_revision and loses nothing.
  const int64_t start = spec.start_revision ? spec.start_revision : store_.revision() + 1;
  out->write(api::dump_json(json{{"created", true},
                                 {"watch_id", id->value()},
                                 {"start_revision", start},
                                 {"revision", store_.revision()}}) +
             "\n");
  watches_[*id] = WatchStream{out, progress_ms, now_ms};
  pump_watches(now_ms);
}

void StoreService::pump_observers(int64_t now_ms) {
  for (auto it = observers_.begin(); it != observers_.end();) {
    if (it->out->closed()) {
      it = observers_.erase(it);
      continue;
    }
    auto v = store::queue_view(store_, it->prefix);
    const std::string key = v && v->holder ? v->holder->key : "";
    if (!it->announced || key != it->last_key) {
      json j{{"revision", store_.revision()}};
      if (v && v->holder) {
        j["leader"] = json{{"key", v->holder->key},
                           {"value", v->holder->value},
                           {"token", v->holder->create_revision}};
      } else {
        j["leader"] = nullptr;
      }
      it->out->write(api::dump_json(j) + "\n");
      it->announced = true;
      it->last_key = key;
      it->last_sent_ms = now_ms;
    } else if (now_ms - it->last_sent_ms >= 5000) {
      // Keeps idle streams alive and finds clients that went away.
      it->out->write(api::dump_json(json{{"progress", true}, {"revision", store_.revision()}}) +
                     "\n");
      it->last_sent_ms = now_ms;
    }
    ++it;
  }
}

void StoreService::pump_watches(int64_t now_ms) {
  pump_observers(now_ms);
  for (store::WatchId id : hub_.ready()) {
    auto w = watches_.find(id);
    if (w == watches_.end()) continue;
    // Bounded per call: a watcher replaying long history gets the rest on the next pump.
    for (int round = 0; round < 16; ++round) {
      auto r = hub_.pull(id, store_);
      if (!r) break;
      if (r->compacted) {
        w->second.out->write(api::dump_json(json{{"compacted", true},
                                                 {"compact_revision", r->compact_revision},
                                                 {"revision", r->revision}}) +
                             "\n");
        w->second.out->end();
        watches_.erase(w);
        break;
      }
      if (r->events.empty()) break;
      json events = json::array();
      for (const auto& e : r->events) events.push_back(api::event_json(e));
      w->second.out->write(api::dump_json(json{{"events", events}, {"revision", r->revision}}) +
                           "\n");
      w->second.last_sent_ms = now_ms;
    }
  }
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (it->second.out->closed()) {
      (void)hub_.cancel(it->first);
      it = watches_.erase(it);
      continue;
    }
    if (it->second.progress_ms > 0 && now_ms - it->second.last_sent_ms >= it->second.progress_ms) {
      if (auto p = hub_.progress(it->first, store_)) {
        it->second.out->write(api::dump_json(json{{"progress", true}, {"revision", p->revision}}) +
                              "\n");
        it->second.last_sent_ms = now_ms;
      }
    }
    ++it;
  }
}

}  // namespace vigil::daemon
