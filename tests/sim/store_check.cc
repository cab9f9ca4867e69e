// The store simulation's checkers: reference model, leases, election, watches.
#include "sim/store_check.h"

#include <algorithm>

#include "sim/kv.h"
#include "store/keys.h"

namespace vigil::sim {
namespace {

using store::Event;
using store::KeyValue;
using store::LeaseId;

std::string kv_str(const KeyValue& kv) {
  return kv.key + "=" + kv.value + "{c" + std::to_string(kv.create_revision) + " m" +
         std::to_string(kv.mod_revision) + " v" + std::to_string(kv.version) + " l" +
         kv.lease.str() + "}";
}

std::string event_str(const Event& e) {
  std::string s = (e.type == Event::Type::kPut ? "PUT " : "DEL ") + kv_str(e.kv);
  if (e.prev_kv) s += " prev " + kv_str(*e.prev_kv);
  return s;
}

std::string events_str(const std::vector<Event>& evs) {
  std::string s;
  for (const Event& e : evs) s += "\n    " + event_str(e);
  return s.empty() ? " (none)" : s;
}

std::string range_str(const std::string& key, const std::string& end) {
  if (end.empty()) return key;
  return "[" + key + "," + (end == store::kRangeAll ? std::string("<all>") : end) + ")";
}

std::string ops_str(const std::vector<store::TxnOp>& ops) {
  std::string s;
  for (const store::TxnOp& op : ops) {
    if (!s.empty()) s += "; ";
    if (const auto* r = std::get_if<store::RangeOp>(&op)) {
      s += "get " + range_str(r->key, r->range_end);
    } else if (const auto* p = std::get_if<store::Put>(&op)) {
      s += "put " + p->key + "=" + p->value + " lease=" + p->lease.str();
    } else {
      const auto& d = std::get<store::DeleteRange>(op);
      s += "del " + range_str(d.key, d.range_end);
    }
  }
  return s;
}

}  // namespace

uint64_t lease_validity_units(int64_t ttl_s) {
  const uint64_t ttl_ms = static_cast<uint64_t>(ttl_s) * 1000;
  return (ttl_ms - 1) * kUnitsPerMs * 99 / 100;
}

std::string describe_request(const store::Request& r) {
  std::string s = "req n" + r.origin.str() + "#" + std::to_string(r.request_id) + " ";
  if (const auto* p = std::get_if<store::Put>(&r.body)) {
    s += "put " + p->key + "=" + p->value + " lease=" + p->lease.str();
  } else if (const auto* d = std::get_if<store::DeleteRange>(&r.body)) {
    s += "delete " + range_str(d->key, d->range_end);
  } else if (const auto* t = std::get_if<store::Txn>(&r.body)) {
    s += "txn if";
    for (const store::Compare& c : t->compares) {
      s += " " + c.key + "." + std::string(store::compare_target_name(c.target)) + " " +
           std::string(store::compare_op_name(c.op)) + " " +
           (c.target == store::Compare::Target::kValue ? c.value : std::to_string(c.number));
    }
    s += " then {" + ops_str(t->success) + "} else {" + ops_str(t->failure) + "}";
  } else if (const auto* g = std::get_if<store::LeaseGrant>(&r.body)) {
    s += "lease-grant ttl=" + std::to_string(g->ttl_s) + "s";
  } else if (const auto* v = std::get_if<store::LeaseRevoke>(&r.body)) {
    s += "lease-revoke " + v->id.str();
  } else if (const auto* k = std::get_if<store::LeaseKeepAlive>(&r.body)) {
    s += "lease-keepalive " + k->id.str();
  } else if (const auto* x = std::get_if<store::LeaseExpire>(&r.body)) {
    s += "lease-expire " + x->id.str() + " decided at " + x->decided_at.str();
  } else {
    s += "compact " + std::to_string(std::get<store::Compact>(r.body).revision);
  }
  return s;
}

StoreChecker::StoreChecker() {
  events_.resize(1);
  state_hash_.push_back(hash_kvs({}));
}

void StoreChecker::fail(std::string invariant, std::string details) {
  if (failed()) return;
  invariant_ = std::move(invariant);
  details_ = std::move(details);
}

uint64_t StoreChecker::hash_kvs(const std::vector<KeyValue>& kvs) {
  uint64_t h = 0x51;
  for (const KeyValue& kv : kvs) {
    h = hash_mix(hash_mix(h, hash_bytes(kv.key)), hash_bytes(kv.value));
    h = hash_mix(hash_mix(h, static_cast<uint64_t>(kv.create_revision)),
                 static_cast<uint64_t>(kv.mod_revision));
    h = hash_mix(hash_mix(h, static_cast<uint64_t>(kv.version)), kv.lease.v);
  }
  return h;
}

KeyValue StoreChecker::to_kv(const std::string& key, const ModelKv& m) const {
  return KeyValue{key, m.value, m.create, m.mod, m.version, m.lease};
}

std::vector<KeyValue> StoreChecker::model_kvs() const {
  std::vector<KeyValue> out;
  for (const auto& [k, m] : kv_) out.push_back(to_kv(k, m));
  return out;
}

bool StoreChecker::compare_holds(const store::Compare& c) const {
  // Every key of the range must satisfy it; the simulator compares single keys only, and
  // an empty range (no such key) is compared as a missing key.
  auto check_one = [&](const ModelKv* m) {
    int64_t have = 0;
    switch (c.target) {
      case store::Compare::Target::kValue: {
        if (m == nullptr) return false;
        const int cmp = m->value.compare(c.value);
        switch (c.op) {
          case store::Compare::Op::kEqual:
            return cmp == 0;
          case store::Compare::Op::kNotEqual:
            return cmp != 0;
          case store::Compare::Op::kLess:
            return cmp < 0;
          case store::Compare::Op::kGreater:
            return cmp > 0;
        }
        return false;
      }
      case store::Compare::Target::kVersion:
        have = m ? m->version : 0;
        break;
      case store::Compare::Target::kCreate:
        have = m ? m->create : 0;
        break;
      case store::Compare::Target::kMod:
        have = m ? m->mod : 0;
        break;
      case store::Compare::Target::kLease: {
        const LeaseId l = m ? m->lease : store::kNoLease;
        return c.op == store::Compare::Op::kEqual ? l == c.lease : l != c.lease;
      }
    }
    switch (c.op) {
      case store::Compare::Op::kEqual:
        return have == c.number;
      case store::Compare::Op::kNotEqual:
        return have != c.number;
      case store::Compare::Op::kLess:
        return have < c.number;
      case store::Compare::Op::kGreater:
        return have > c.number;
    }
    return false;
  };
  if (c.range_end.empty()) {
    auto it = kv_.find(c.key);
    return check_one(it == kv_.end() ? nullptr : &it->second);
  }
  bool any = false;
  for (const auto& [k, m] : kv_) {
    if (!store::in_range(k, c.key, c.range_end)) continue;
    any = true;
    if (!check_one(&m)) return false;
  }
  return any || check_one(nullptr);
}

void StoreChecker::on_first_apply(const store::Request& req, const store::Response& resp) {
  if (failed()) return;
  const int64_t next = revision_ + 1;
  std::vector<Event> evs;
  bool ok = true;  // the model's verdict on the request's status
  std::string what = describe_request(req) + " at index " + resp.index.str();
  auto mismatch = [&](const std::string& why) {
    fail("store-model", what + ": " + why + " (store status " + resp.status.to_string() +
                            ", revision " + std::to_string(resp.revision) + ", model revision " +
                            std::to_string(revision_) + ")");
  };
  auto put_ok = [&](const store::Put& p) {
    if (p.ignore_lease) return kv_.contains(p.key);
    return p.lease == store::kNoLease || leases_.contains(p.lease);
  };
  auto do_put = [&](const store::Put& p) {
    auto it = kv_.find(p.key);
    ModelKv n;
    Event e;
    e.type = Event::Type::kPut;
    if (it != kv_.end()) {
      e.prev_kv = to_kv(p.key, it->second);
      n.create = it->second.create;
      n.version = it->second.version + 1;
    } else {
      n.create = next;
      n.version = 1;
    }
    n.mod = next;
    n.value = p.value;
    n.lease = p.ignore_lease ? it->second.lease : p.lease;
    e.kv = to_kv(p.key, n);
    kv_[p.key] = n;
    evs.push_back(std::move(e));
  };
  auto do_delete_key = [&](const std::string& key) {
    auto it = kv_.find(key);
    if (it == kv_.end()) return false;
    Event e;
    e.type = Event::Type::kDelete;
    e.kv.key = key;
    e.kv.mod_revision = next;
    e.prev_kv = to_kv(key, it->second);
    kv_.erase(it);
    evs.push_back(std::move(e));
    return true;
  };
  auto do_delete = [&](const store::DeleteRange& d) {
    std::vector<std::string> doomed;
    for (const auto& [k, m] : kv_) {
      if (store::in_range(k, d.key, d.range_end)) doomed.push_back(k);
    }
    for (const std::string& k : doomed) do_delete_key(k);
    return static_cast<int64_t>(doomed.size());
  };

  const Status valid = store::validate_request(req);
  if (!valid.ok()) {
    ok = false;
  } else if (const auto* p = std::get_if<store::Put>(&req.body)) {
    ok = put_ok(*p);
    if (ok) do_put(*p);
  } else if (const auto* d = std::get_if<store::DeleteRange>(&req.body)) {
    do_delete(*d);
  } else if (const auto* t = std::get_if<store::Txn>(&req.body)) {
    bool holds = true;
    for (const store::Compare& c : t->compares) holds = holds && compare_holds(c);
    const std::vector<store::TxnOp>& ops = holds ? t->success : t->failure;
    for (const store::TxnOp& op : ops) {
      if (const auto* p = std::get_if<store::Put>(&op)) ok = ok && put_ok(*p);
    }
    if (ok && resp.status.ok()) {
      const auto* tr = std::get_if<store::TxnResult>(&resp.result);
      if (tr == nullptr || tr->succeeded != holds || tr->responses.size() != ops.size()) {
        return mismatch(std::string("txn outcome differs: model says the compares ") +
                        (holds ? "hold" : "fail"));
      }
      for (size_t i = 0; i < ops.size(); ++i) {
        if (const auto* r = std::get_if<store::RangeOp>(&ops[i])) {
          std::vector<KeyValue> want;
          for (const auto& [k, m] : kv_) {
            if (store::in_range(k, r->key, r->range_end)) want.push_back(to_kv(k, m));
          }
          const auto* got = std::get_if<store::RangeResult>(&tr->responses[i]);
          if (r->revision == 0 && (got == nullptr || got->kvs != want)) {
            std::string g;
            if (got != nullptr) {
              for (const KeyValue& kv : got->kvs) g += " " + kv_str(kv);
            }
            std::string w;
            for (const KeyValue& kv : want) w += " " + kv_str(kv);
            return mismatch("txn read " + r->key + " returned{" + g + " } but the model has{" + w +
                            " }");
          }
        } else if (const auto* p = std::get_if<store::Put>(&ops[i])) {
          do_put(*p);
        } else {
          do_delete(std::get<store::DeleteRange>(ops[i]));
        }
      }
    }
  } else if (const auto* g = std::get_if<store::LeaseGrant>(&req.body)) {
    (void)g;
    if (resp.status.ok()) {
      const auto* gr = std::get_if<store::LeaseGrantResult>(&resp.result);
      if (gr == nullptr || gr->id.v != max_lease_id_ + 1 || gr->ttl_s != g->ttl_s) {
        return mismatch("granted lease " + (gr ? gr->id.str() : std::string("?")) +
                        ", the model expects the next id " + std::to_string(max_lease_id_ + 1));
      }
      leases_[gr->id] = g->ttl_s;
      refreshed_[gr->id] = resp.index;
      max_lease_id_ = gr->id.v;
    }
  } else if (std::holds_alternative<store::LeaseRevoke>(req.body) ||
             std::holds_alternative<store::LeaseExpire>(req.body)) {
    // An expiry applies only if no keep-alive was applied after it was decided.
    const auto* x = std::get_if<store::LeaseExpire>(&req.body);
    const store::LeaseRevoke revoke{x ? x->id : std::get<store::LeaseRevoke>(req.body).id};
    const store::LeaseRevoke* v = &revoke;
    ok = leases_.contains(v->id) && (x == nullptr || refreshed_[v->id] <= x->decided_at);
    if (ok) {
      std::vector<std::string> doomed;
      for (const auto& [k, m] : kv_) {
        if (m.lease == v->id) doomed.push_back(k);
      }
      for (const std::string& k : doomed) do_delete_key(k);
      leases_.erase(v->id);
      refreshed_.erase(v->id);
      auto e = expiry_proposals_.find(req.request_id);
      if (e != expiry_proposals_.end() && e->second.first == v->id) {
        ++stats_.expiry_revokes;
        LeaseCheck& lc = lease_checks_[v->id];
        const uint64_t p = e->second.second;
        lc.expired_at = p;
        if (lc.late_until > p) ++stats_.naive_lease_violations;
        if (lease_validity_ && lc.protected_until > p) {
          fail("lease-validity",
               "lease " + v->id.str() + " (ttl " + std::to_string(lc.ttl_s) + " s, client " +
                   std::to_string(lc.client) + ") was revoked by an expiry proposed at t=" +
                   std::to_string(p) + ", but a refresh the client counted protects it until t=" +
                   std::to_string(lc.protected_until) + " (" + what + ")");
          return;
        }
      }
    }
  } else if (const auto* k = std::get_if<store::LeaseKeepAlive>(&req.body)) {
    ok = leases_.contains(k->id);
    if (ok) refreshed_[k->id] = resp.index;
  } else {
    const int64_t rev = std::get<store::Compact>(req.body).revision;
    ok = rev > compact_revision_ && rev <= revision_;
    if (ok) compact_revision_ = rev;
  }
  if (ok != resp.status.ok() && !failed()) {
    return mismatch(std::string("the model expects ") + (ok ? "success" : "an error"));
  }
  std::stable_sort(evs.begin(), evs.end(),
                   [](const Event& a, const Event& b) { return a.kv.key < b.kv.key; });
  if (!evs.empty()) revision_ = next;
  if (resp.revision != revision_) {
    return mismatch("revision " + std::to_string(resp.revision) + ", model expects " +
                    std::to_string(revision_));
  }
  if (resp.events != evs) {
    // Which key did the store remove that the model keeps?
    for (const Event& e : resp.events) {
      if (e.type != Event::Type::kDelete) continue;
      const bool expected = std::any_of(evs.begin(), evs.end(), [&](const Event& m) {
        return m.type == Event::Type::kDelete && m.kv.key == e.kv.key;
      });
      if (!expected) {
        fail("key-removal", "key " + e.kv.key + " was deleted at revision " +
                                std::to_string(e.kv.mod_revision) + " by " + what +
                                ", which neither deletes it explicitly nor revokes its lease" +
                                (e.prev_kv ? " (it was " + kv_str(*e.prev_kv) + ")" : ""));
        return;
      }
    }
    return mismatch("events differ; store:" + events_str(resp.events) +
                    "\n  model:" + events_str(evs));
  }
  if (!evs.empty()) {
    events_.push_back(std::move(evs));
    state_hash_.push_back(hash_kvs(model_kvs()));
    stats_.model_revision = static_cast<uint64_t>(revision_);
  }
}

void StoreChecker::check_state(const std::vector<KeyValue>& kvs, const std::string& who) {
  if (failed()) return;
  const std::vector<KeyValue> want = model_kvs();
  if (kvs == want) return;
  std::string d = who + " holds";
  for (const KeyValue& kv : kvs) d += " " + kv_str(kv);
  d += "\n  the model holds";
  for (const KeyValue& kv : want) d += " " + kv_str(kv);
  // A key of the model that the replica lost is a removal no request explains.
  for (const KeyValue& kv : want) {
    const bool have =
        std::any_of(kvs.begin(), kvs.end(), [&](const KeyValue& x) { return x.key == kv.key; });
    if (!have) return fail("key-removal", "key " + kv.key + " vanished: " + d);
  }
  fail("store-model", d);
}

// --------------------------------------------------------------------------- leases

void StoreChecker::on_expiry_proposed(uint64_t request_id, LeaseId lease, uint64_t now) {
  expiry_proposals_[request_id] = {lease, now};
}

void StoreChecker::on_refresh_counted(LeaseId lease, int64_t ttl_s, uint64_t sent,
                                      uint64_t client) {
  ++stats_.counted_refreshes;
  LeaseCheck& lc = lease_checks_[lease];
  lc.ttl_s = ttl_s;
  lc.client = client;
  const uint64_t until = sent + lease_validity_units(ttl_s);
  lc.protected_until = std::max(lc.protected_until, until);
  if (lease_validity_ && lc.expired_at && *lc.expired_at < until) {
    fail("lease-validity",
         "lease " + lease.str() + " (ttl " + std::to_string(ttl_s) + " s, client " +
             std::to_string(client) + "): a refresh sent at t=" + std::to_string(sent) +
             " was acknowledged in time (protects until t=" + std::to_string(until) +
             "), but an expiry proposed at t=" + std::to_string(*lc.expired_at) +
             " revoked the lease");
  }
}

void StoreChecker::on_refresh_late(LeaseId lease, int64_t ttl_s, uint64_t sent) {
  ++stats_.late_refresh_acks;
  LeaseCheck& lc = lease_checks_[lease];
  const uint64_t until = sent + lease_validity_units(ttl_s);
  lc.late_until = std::max(lc.late_until, until);
  if (lc.expired_at && *lc.expired_at < until) ++stats_.naive_lease_violations;
}

// --------------------------------------------------------------------------- election

size_t StoreChecker::begin_holding(uint64_t client, int64_t token, uint64_t start) {
  ++stats_.holdings;
  auto [it, inserted] = token_holder_.emplace(token, client);
  if (!inserted && it->second != client) {
    fail("election-token", "fencing token " + std::to_string(token) + " is held by client " +
                               std::to_string(client) + " and was held by client " +
                               std::to_string(it->second));
  }
  holdings_.push_back(Holding{client, token, start, start, true});
  return holdings_.size() - 1;
}

void StoreChecker::end_holding(size_t holding, uint64_t end) {
  Holding& h = holdings_[holding];
  if (!h.open) return;
  h.open = false;
  h.end = std::max(end, h.start);
}

void StoreChecker::finish_elections() {
  if (failed()) return;
  std::vector<Holding> hs = holdings_;
  std::stable_sort(hs.begin(), hs.end(),
                   [](const Holding& a, const Holding& b) { return a.start < b.start; });
  auto str = [](const Holding& h) {
    return "client " + std::to_string(h.client) + " token " + std::to_string(h.token) + " [" +
           std::to_string(h.start) + "," + std::to_string(h.end) + ")";
  };
  size_t longest = 0;  // the earlier holding that ends last
  for (size_t i = 1; i < hs.size(); ++i) {
    const Holding& a = hs[i - 1];
    const Holding& b = hs[i];
    if (hs[longest].end > b.start) {
      return fail("election-exclusive",
                  "two holders at once: " + str(hs[longest]) + " and " + str(b));
    }
    const bool same = a.client == b.client && a.token == b.token;
    if (!same && a.token >= b.token) {
      return fail("election-token-order",
                  "fencing tokens must increase over successive "
                  "holders: " +
                      str(a) + " then " + str(b));
    }
    if (b.end > hs[longest].end) longest = i;
  }
}

// --------------------------------------------------------------------------- watches

void StoreChecker::on_watch_response(WatchConsumer& c, const store::WatchResponse& r) {
  if (failed()) return;
  const std::string who = "watcher kind " + std::to_string(c.kind) + " on n" +
                          std::to_string(c.node + 1) + " (next revision " +
                          std::to_string(c.next_revision) + ")";
  if (r.compacted && c.next_revision > r.compact_revision) {
    return fail("watch-compacted", who +
                                       " was told its history is compacted, but the compact "
                                       "revision is only " +
                                       std::to_string(r.compact_revision));
  }
  size_t i = 0;
  while (i < r.events.size()) {
    const int64_t rev = r.events[i].kv.mod_revision;
    if (rev < c.next_revision) {
      return fail("watch-order", who + " got revision " + std::to_string(rev) +
                                     " again or out of order: " + event_str(r.events[i]));
    }
    if (rev > c.next_revision) {
      return fail("watch-gap", who + " got revision " + std::to_string(rev) + " but revisions " +
                                   std::to_string(c.next_revision) + ".." +
                                   std::to_string(rev - 1) + " had changes it never saw");
    }
    if (static_cast<size_t>(rev) >= events_.size()) {
      return fail("watch-unknown",
                  who + " got revision " + std::to_string(rev) + " that no replica applied yet");
    }
    std::vector<Event> want = events_[static_cast<size_t>(rev)];
    if (!c.prev_kv) {
      for (Event& e : want) e.prev_kv.reset();
    }
    std::vector<Event> got;
    while (i < r.events.size() && r.events[i].kv.mod_revision == rev) got.push_back(r.events[i++]);
    if (got != want) {
      return fail("watch-events", who + " revision " + std::to_string(rev) +
                                      " events differ; got:" + events_str(got) +
                                      "\n  applied:" + events_str(want));
    }
    c.events += got.size();
    stats_.watch_events += got.size();
    c.next_revision = rev + 1;
  }
}

void StoreChecker::on_watch_progress(const WatchConsumer& c, const store::WatchResponse& r) {
  if (failed()) return;
  // Progress at R says every change up to R was delivered. A consumer may be ahead of the
  // node (it re-watched from the future on a node that restarted behind what it had seen).
  if (c.next_revision < r.revision + 1) {
    fail("watch-progress",
         "watcher kind " + std::to_string(c.kind) + " on n" + std::to_string(c.node + 1) +
             " got a progress notification at " + "revision " + std::to_string(r.revision) +
             " but has seen revisions up to " + std::to_string(c.next_revision - 1));
  }
}

void StoreChecker::on_resync(WatchConsumer& c, const std::vector<KeyValue>& kvs, int64_t revision) {
  if (failed()) return;
  ++c.resyncs;
  ++stats_.watch_resyncs;
  if (revision < 0 || static_cast<size_t>(revision) >= state_hash_.size() ||
      state_hash_[static_cast<size_t>(revision)] != hash_kvs(kvs)) {
    fail("watch-resync", "after a compacted response, watcher kind " + std::to_string(c.kind) +
                             " on n" + std::to_string(c.node + 1) +
                             " read a state that differs from the applied state at revision " +
                             std::to_string(revision));
    return;
  }
  c.next_revision = revision + 1;
}

}  // namespace vigil::sim
