// MvccStore implementation: apply, reads, compaction, history and the snapshot format.
#include "store/mvcc.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "store/keys.h"

namespace vigil::store {
namespace {

constexpr uint32_t kSnapshotMagic = 0x564d5631;  // "VMV1"
constexpr uint8_t kSnapshotVersion = 2;          // 2: leases carry their refreshed index
constexpr uint64_t kMaxSigned = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Smallest encodings in a snapshot, to bound counts against the remaining bytes.
constexpr size_t kMinLeaseBytes = 24;
constexpr size_t kMinKeyEntryBytes = 4 + 1 + 4;
constexpr size_t kMinRecBytes = 8 * 4 + 1 + 4;

bool ordered(int c, Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return c == 0;
    case Compare::Op::kNotEqual:
      return c != 0;
    case Compare::Op::kLess:
      return c < 0;
    case Compare::Op::kGreater:
      return c > 0;
  }
  return false;
}

template <class T>
int three_way(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

std::string quoted(std::string_view key) { return "\"" + std::string(key) + "\""; }

}  // namespace

// ---- reads ----

const MvccStore::Rec* MvccStore::visible(const Recs& recs, int64_t rev) {
  auto it = std::upper_bound(recs.begin(), recs.end(), rev,
                             [](int64_t r, const Rec& rec) { return r < rec.mod; });
  if (it == recs.begin()) return nullptr;
  --it;
  return it->tombstone ? nullptr : &*it;
}

KeyValue MvccStore::to_kv(std::string_view key, const Rec& r) {
  return KeyValue{std::string(key), r.value, r.create, r.mod, r.version, r.lease};
}

Status MvccStore::check_read_revision(int64_t revision) const {
  if (revision < 0) {
    return err(Errc::kInvalidArgument, "negative revision " + std::to_string(revision));
  }
  if (revision > revision_) {
    return err(Errc::kOutOfRange, "revision " + std::to_string(revision) +
                                      " is in the future (current revision " +
                                      std::to_string(revision_) + ")");
  }
  if (revision != 0 && revision < compact_revision_) {
    return err(Errc::kOutOfRange, "revision " + std::to_string(revision) +
                                      " has been compacted (compact revision " +
                                      std::to_string(compact_revision_) + "); read at or after it");
  }
  return Status();
}

template <class F>
void MvccStore::for_each_key(std::string_view key, std::string_view range_end, F&& f) const {
  if (range_end.empty()) {
    auto it = keys_.find(key);
    if (it != keys_.end()) f(it->first, it->second);
    return;
  }
  const bool unbounded = range_end == kRangeAll;
  for (auto it = keys_.lower_bound(key); it != keys_.end(); ++it) {
    if (!unbounded && it->first >= range_end) break;
    f(it->first, it->second);
  }
}

RangeResult MvccStore::read(const RangeOp& op, int64_t at) const {
  RangeResult res;
  res.revision = at;
  for_each_key(op.key, op.range_end, [&](const std::string& k, const Recs& recs) {
    const Rec* r = visible(recs, at);
    if (r == nullptr) return;
    ++res.count;
    if (op.count_only) return;
    if (op.limit > 0 && static_cast<int64_t>(res.kvs.size()) >= op.limit) {
      res.more = true;
      return;
    }
    if (op.keys_only) {
      res.kvs.push_back(KeyValue{k, {}, r->create, r->mod, r->version, r->lease});
    } else {
      res.kvs.push_back(to_kv(k, *r));
    }
  });
  return res;
}

Result<RangeResult> MvccStore::range(std::string_view key, std::string_view range_end,
                                     int64_t revision, int64_t limit, bool keys_only,
                                     bool count_only) const {
  RangeOp op{std::string(key), std::string(range_end), revision, limit, keys_only, count_only};
  return range(op);
}

Result<RangeResult> MvccStore::range(const RangeOp& op) const {
  RETURN_IF_ERROR(validate_range("range", op.key, op.range_end));
  RETURN_IF_ERROR(check_read_revision(op.revision));
  if (op.limit < 0) return err(Errc::kInvalidArgument, "range: negative limit");
  return read(op, op.revision == 0 ? revision_ : op.revision);
}

bool MvccStore::holds(const Compare& c) const {
  bool any = false;
  bool all = true;
  auto check = [&](const Rec* r) {
    int cmp = 0;
    switch (c.target) {
      case Compare::Target::kValue:
        cmp = r->value.compare(c.value);
        break;
      case Compare::Target::kVersion:
        cmp = three_way(r->version, c.number);
        break;
      case Compare::Target::kCreate:
        cmp = three_way(r->create, c.number);
        break;
      case Compare::Target::kMod:
        cmp = three_way(r->mod, c.number);
        break;
      case Compare::Target::kLease:
        cmp = three_way(r->lease, c.lease);
        break;
    }
    return ordered(cmp, c.op);
  };
  for_each_key(c.key, c.range_end, [&](const std::string&, const Recs& recs) {
    const Rec* r = visible(recs, revision_);
    if (r == nullptr) return;
    any = true;
    if (!check(r)) all = false;
  });
  if (any) return all;
  // No key: a value compare fails (a missing value is not ""); the others compare against
  // zeros (version 0, revisions 0, no lease).
  if (c.target == Compare::Target::kValue) return false;
  const Rec zero;
  return check(&zero);
}

Result<LeaseInfo> MvccStore::lease_ttl(LeaseId id) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) return err(Errc::kNotFound, "lease " + id.str() + " not found");
  LeaseInfo info{id, it->second.ttl_s, {}};
  info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<LeaseInfo> MvccStore::leases() const {
  std::vector<LeaseInfo> out;
  out.reserve(leases_.size());
  for (const auto& [id, l] : leases_) out.push_back(LeaseInfo{id, l.ttl_s, {}});
  return out;
}

Result<History> MvccStore::history(std::string_view key, std::string_view range_end, int64_t from,
                                   size_t max_events, bool prev_kv) const {
  RETURN_IF_ERROR(validate_range("history", key, range_end));
  if (from <= compact_revision_) {
    return err(Errc::kOutOfRange, "revision " + std::to_string(from) +
                                      " has been compacted (compact revision " +
                                      std::to_string(compact_revision_) + ", current revision " +
                                      std::to_string(revision_) + "); resync required");
  }
  History h;
  h.next_revision = std::max(from, revision_ + 1);
  for (auto it = changes_from(from); it != changes_.end();) {
    const int64_t rev = it->rev;
    for (; it != changes_.end() && it->rev == rev; ++it) {
      const std::string_view k = it->key;
      if (!in_range(k, key, range_end)) continue;
      const Recs& recs = keys_.find(k)->second;
      auto rec = std::lower_bound(recs.begin(), recs.end(), rev,
                                  [](const Rec& r, int64_t v) { return r.mod < v; });
      CHECK(rec != recs.end() && rec->mod == rev);
      Event e;
      if (rec->tombstone) {
        e.type = Event::Type::kDelete;
        e.kv.key = std::string(k);
        e.kv.mod_revision = rev;
      } else {
        e.kv = to_kv(k, *rec);
      }
      if (prev_kv && rec != recs.begin() && !std::prev(rec)->tombstone) {
        e.prev_kv = to_kv(k, *std::prev(rec));
      }
      h.events.push_back(std::move(e));
    }
    if (max_events != 0 && h.events.size() >= max_events && rev < revision_) {
      h.next_revision = rev + 1;
      break;
    }
  }
  return h;
}

std::deque<MvccStore::Change>::const_iterator MvccStore::changes_from(int64_t rev) const {
  return std::lower_bound(changes_.cbegin(), changes_.cend(), rev,
                          [](const Change& c, int64_t r) { return c.rev < r; });
}

size_t MvccStore::retained_versions_for_test() const {
  size_t n = 0;
  for (const auto& [k, recs] : keys_) n += recs.size();
  return n;
}

// ---- writes ----

Status MvccStore::check_put(const Put& p) const {
  if (p.ignore_lease) {
    auto it = keys_.find(p.key);
    if (it == keys_.end() || visible(it->second, revision_) == nullptr) {
      return err(Errc::kNotFound, "put: key " + quoted(p.key) +
                                      " does not exist (ignore_lease keeps an existing lease)");
    }
  } else if (p.lease != kNoLease && !leases_.contains(p.lease)) {
    return err(Errc::kNotFound, "put: lease " + p.lease.str() + " not found");
  }
  return Status();
}

Status MvccStore::check_ops(const std::vector<TxnOp>& ops) const {
  for (const TxnOp& op : ops) {
    if (const auto* r = std::get_if<RangeOp>(&op)) {
      RETURN_IF_ERROR(check_read_revision(r->revision).with_context("txn range"));
      if (r->limit < 0) return err(Errc::kInvalidArgument, "txn range: negative limit");
    } else if (const auto* p = std::get_if<Put>(&op)) {
      RETURN_IF_ERROR(check_put(*p).with_context("txn"));
    }
  }
  return Status();
}

PutResult MvccStore::do_put(Write& w, const Put& p) {
  auto [it, inserted] = keys_.try_emplace(p.key);
  Recs& recs = it->second;
  DCHECK(recs.empty() || recs.back().mod < w.rev);
  const Rec* cur = recs.empty() || recs.back().tombstone ? nullptr : &recs.back();
  Rec n;
  n.mod = w.rev;
  n.create = cur != nullptr ? cur->create : w.rev;
  n.version = cur != nullptr ? cur->version + 1 : 1;
  n.lease = p.ignore_lease ? cur->lease : p.lease;
  n.value = p.value;

  Event e;
  e.type = Event::Type::kPut;
  e.kv = to_kv(it->first, n);
  if (cur != nullptr) {
    e.prev_kv = to_kv(it->first, *cur);
    if (cur->lease != kNoLease && cur->lease != n.lease) {
      leases_.find(cur->lease)->second.keys.erase(it->first);
    }
  } else {
    ++live_keys_;
  }
  if (n.lease != kNoLease) leases_.find(n.lease)->second.keys.insert(it->first);

  PutResult res;
  if (p.prev_kv) res.prev_kv = e.prev_kv;
  recs.push_back(std::move(n));
  changes_.push_back(Change{w.rev, it->first});
  w.events.push_back(std::move(e));
  return res;
}

bool MvccStore::do_delete_key(Write& w, const std::string& key, KeyValue* prev) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return false;
  Recs& recs = it->second;
  if (recs.empty() || recs.back().tombstone) return false;
  DCHECK(recs.back().mod < w.rev);
  const Rec& cur = recs.back();
  Event e;
  e.type = Event::Type::kDelete;
  e.kv.key = key;
  e.kv.mod_revision = w.rev;
  e.prev_kv = to_kv(key, cur);
  if (prev != nullptr) *prev = *e.prev_kv;
  if (cur.lease != kNoLease) leases_.find(cur.lease)->second.keys.erase(key);
  Rec t;
  t.mod = w.rev;
  t.tombstone = true;
  recs.push_back(std::move(t));
  --live_keys_;
  changes_.push_back(Change{w.rev, it->first});
  w.events.push_back(std::move(e));
  return true;
}

DeleteResult MvccStore::do_delete(Write& w, const DeleteRange& d) {
  std::vector<std::string> doomed;
  for_each_key(d.key, d.range_end, [&](const std::string& k, const Recs& recs) {
    if (visible(recs, w.rev) != nullptr) doomed.push_back(k);
  });
  DeleteResult res;
  for (const std::string& k : doomed) {
    KeyValue prev;
    if (do_delete_key(w, k, &prev)) {
      ++res.deleted;
      if (d.prev_kv) res.prev_kvs.push_back(std::move(prev));
    }
  }
  return res;
}

void MvccStore::finish(Write& w, Response* resp) {
  if (!w.events.empty()) {
    revision_ = w.rev;
    // This revision's changes are the tail of changes_: put them in key order.
    auto first = changes_.end();
    while (first != changes_.begin() && std::prev(first)->rev == w.rev) --first;
    std::sort(first, changes_.end(),
              [](const Change& a, const Change& b) { return a.key < b.key; });
    std::sort(w.events.begin(), w.events.end(),
              [](const Event& a, const Event& b) { return a.kv.key < b.kv.key; });
    resp->events = std::move(w.events);
  }
  resp->revision = revision_;
}

Response MvccStore::apply(LogIndex index, const Request& r) {
  Response resp;
  resp.origin = r.origin;
  resp.request_id = r.request_id;
  resp.index = index;
  resp.revision = revision_;
  if (index <= applied_) {
    resp.status = Status(Errc::kAborted, "index " + index.str() + " already applied (applied " +
                                             applied_.str() + ")");
    return resp;
  }
  applied_ = index;
  if (Status s = validate_request(r); !s.ok()) {
    resp.status = s;
    return resp;
  }
  Write w;
  w.rev = revision_ + 1;
  if (const auto* p = std::get_if<Put>(&r.body)) {
    resp.status = check_put(*p);
    if (!resp.status.ok()) return resp;
    resp.result = do_put(w, *p);
    finish(w, &resp);
  } else if (const auto* d = std::get_if<DeleteRange>(&r.body)) {
    resp.result = do_delete(w, *d);
    finish(w, &resp);
  } else if (const auto* t = std::get_if<Txn>(&r.body)) {
    resp = apply_txn(w, *t, std::move(resp));
  } else if (const auto* g = std::get_if<LeaseGrant>(&r.body)) {
    resp = apply_grant(*g, std::move(resp));
  } else if (const auto* v = std::get_if<LeaseRevoke>(&r.body)) {
    resp = apply_revoke(w, *v, std::move(resp));
  } else if (const auto* k = std::get_if<LeaseKeepAlive>(&r.body)) {
    // No change to the state: the leader's LeaseTracker restarts the TTL when it applies this.
    auto it = leases_.find(k->id);
    if (it == leases_.end()) {
      resp.status = Status(Errc::kNotFound, "lease_keepalive: lease " + k->id.str() + " not found");
    } else {
      it->second.refreshed = index;  // an expiry decided before this no longer applies
      resp.result = LeaseGrantResult{k->id, it->second.ttl_s};
    }
  } else if (const auto* x = std::get_if<LeaseExpire>(&r.body)) {
    auto it = leases_.find(x->id);
    if (it != leases_.end() && it->second.refreshed > x->decided_at) {
      resp.status =
          Status(Errc::kAborted, "lease_expire: lease " + x->id.str() + " was refreshed at index " +
                                     it->second.refreshed.str() +
                                     ", after the expiry was decided at " + x->decided_at.str());
    } else {
      resp = apply_revoke(w, LeaseRevoke{x->id}, std::move(resp));
    }
  } else {
    const int64_t rev = std::get<Compact>(r.body).revision;
    resp.status = compact(rev);
    if (resp.status.ok()) resp.result = CompactResult{compact_revision_};
  }
  return resp;
}

void MvccStore::apply_noop(LogIndex index) {
  if (index > applied_) applied_ = index;
}

Response MvccStore::apply_txn(Write& w, const Txn& t, Response resp) {
  bool ok = true;
  for (const Compare& c : t.compares) {
    if (!holds(c)) {
      ok = false;
      break;
    }
  }
  const std::vector<TxnOp>& ops = ok ? t.success : t.failure;
  // Everything that can fail is checked before the first change, so a txn is all or
  // nothing. The branch's own keys are disjoint (validate_request), so the checks against
  // the state before the txn stay true while it runs.
  resp.status = check_ops(ops);
  if (!resp.status.ok()) return resp;
  TxnResult tr;
  tr.succeeded = ok;
  std::vector<size_t> own_view;  // reads at revision 0: they report the txn's revision
  for (const TxnOp& op : ops) {
    if (const auto* r = std::get_if<RangeOp>(&op)) {
      if (r->revision == 0) own_view.push_back(tr.responses.size());
      tr.responses.emplace_back(read(*r, r->revision == 0 ? w.rev : r->revision));
    } else if (const auto* p = std::get_if<Put>(&op)) {
      tr.responses.emplace_back(do_put(w, *p));
    } else {
      tr.responses.emplace_back(do_delete(w, std::get<DeleteRange>(op)));
    }
  }
  finish(w, &resp);
  for (size_t i : own_view) std::get<RangeResult>(tr.responses[i]).revision = resp.revision;
  resp.result = std::move(tr);
  return resp;
}

Response MvccStore::apply_grant(const LeaseGrant& g, Response resp) {
  if (leases_.size() >= kMaxLeases) {
    resp.status = Status(Errc::kResourceExhausted,
                         "lease_grant: " + std::to_string(kMaxLeases) + " leases exist");
    return resp;
  }
  LeaseId id = g.id;
  if (id == kNoLease) {
    if (next_lease_id_.value() > kMaxSigned) {
      resp.status = Status(Errc::kResourceExhausted, "lease_grant: lease ids exhausted");
      return resp;
    }
    id = next_lease_id_;
  } else if (leases_.contains(id)) {
    resp.status = Status(Errc::kAlreadyExists, "lease_grant: lease " + id.str() + " exists");
    return resp;
  }
  // Ids the store picks stay above every id ever granted, so an id is never reused.
  if (id >= next_lease_id_) next_lease_id_ = id + 1;
  leases_[id].ttl_s = g.ttl_s;
  leases_[id].refreshed = resp.index;
  resp.result = LeaseGrantResult{id, g.ttl_s};
  return resp;
}

Response MvccStore::apply_revoke(Write& w, const LeaseRevoke& v, Response resp) {
  auto it = leases_.find(v.id);
  if (it == leases_.end()) {
    resp.status = Status(Errc::kNotFound, "lease_revoke: lease " + v.id.str() + " not found");
    return resp;
  }
  // Sorted key order (the set's), all under one revision.
  const std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  LeaseRevokeResult res;
  for (const std::string& k : keys) {
    if (do_delete_key(w, k, nullptr)) ++res.deleted;
  }
  leases_.erase(v.id);
  finish(w, &resp);
  resp.result = res;
  return resp;
}

Status MvccStore::compact(int64_t revision) {
  if (revision <= compact_revision_) {
    return err(Errc::kOutOfRange, "compact: revision " + std::to_string(revision) +
                                      " has already been compacted (compact revision " +
                                      std::to_string(compact_revision_) + ")");
  }
  if (revision > revision_) {
    return err(Errc::kOutOfRange, "compact: revision " + std::to_string(revision) +
                                      " is in the future (current revision " +
                                      std::to_string(revision_) + ")");
  }
  // Only keys changed in (compact_revision_, revision] can hold more than one version at or
  // before `revision` or a tombstone there: older versions went at the last compaction.
  std::vector<std::string> touched;
  auto end = changes_from(revision + 1);
  for (auto it = changes_.cbegin(); it != end; ++it) touched.emplace_back(it->key);
  changes_.erase(changes_.cbegin(), end);
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (const std::string& k : touched) {
    auto it = keys_.find(k);
    Recs& recs = it->second;
    // Keep the last version at or before `revision` (what a read there sees), unless it is
    // a tombstone; drop everything before it.
    auto keep = std::upper_bound(recs.begin(), recs.end(), revision,
                                 [](int64_t r, const Rec& rec) { return r < rec.mod; });
    DCHECK(keep != recs.begin());
    --keep;
    if (keep->tombstone) ++keep;
    recs.erase(recs.begin(), keep);
    if (recs.empty()) {
      keys_.erase(it);
    } else if (recs.capacity() >= 2 * recs.size()) {
      recs.shrink_to_fit();  // most keys keep one version: give back the doubled buffer
    }
  }
  compact_revision_ = revision;
  return Status();
}

// ---- snapshot ----

namespace {
constexpr size_t kSnapshotHeader = 8;  // magic, CRC-32C of the body
}  // namespace

size_t MvccStore::serialized_size() const {
  size_t size = kSnapshotHeader + 1 + 5 * 8 + leases_.size() * 3 * 8 + 8;
  for (const auto& [k, recs] : keys_) {
    size += 4 + k.size() + 4;
    for (const Rec& r : recs) size += 4 * 8 + 1 + 4 + r.value.size();
  }
  return size;
}

std::string MvccStore::serialize(std::string buffer) const {
  // Sized first and written once, in place: a snapshot of a large store is megabytes, and
  // on a VM every fresh page costs a fault (agent.cc, snapshots).
  constexpr size_t kHeader = kSnapshotHeader;
  std::string out = std::move(buffer);
  out.clear();
  if (out.capacity() == 0) out.reserve(serialized_size());  // else sized by the caller
  out.resize(kHeader);
  ByteWriter w(&out);
  w.u8(kSnapshotVersion);
  w.u64(applied_.value());
  w.u64(static_cast<uint64_t>(revision_));
  w.u64(static_cast<uint64_t>(compact_revision_));
  w.u64(next_lease_id_.value());
  w.u64(leases_.size());
  for (const auto& [id, l] : leases_) {
    w.u64(id.value());
    w.u64(static_cast<uint64_t>(l.ttl_s));
    w.u64(l.refreshed.value());
  }
  w.u64(keys_.size());
  for (const auto& [k, recs] : keys_) {
    w.bytes(k);
    w.u32(static_cast<uint32_t>(recs.size()));
    for (const Rec& r : recs) {
      w.u64(static_cast<uint64_t>(r.mod));
      w.u64(static_cast<uint64_t>(r.create));
      w.u64(static_cast<uint64_t>(r.version));
      w.u64(r.lease.value());
      w.u8(r.tombstone ? 1 : 0);
      w.bytes(r.value);
    }
  }
  std::string header;
  ByteWriter h(&header);
  h.u32(kSnapshotMagic);
  h.u32(crc32c(std::string_view(out).substr(kHeader)));
  out.replace(0, kHeader, header);
  return out;
}

Status MvccStore::restore(std::string_view data) {
  MvccStore fresh;
  if (data.empty()) {  // the empty snapshot of a brand-new cluster
    *this = std::move(fresh);
    return Status();
  }
  ByteReader hr(data);
  const uint32_t magic = hr.u32();
  const uint32_t crc = hr.u32();
  if (!hr.ok() || magic != kSnapshotMagic) {
    return err(Errc::kCorruption, "mvcc snapshot: bad magic at offset 0");
  }
  const std::string_view body = data.substr(8);
  if (crc32c(body) != crc) return err(Errc::kCorruption, "mvcc snapshot: checksum mismatch");

  ByteReader r(body);
  auto bad = [&](const std::string& what) {
    return err(Errc::kCorruption,
               "mvcc snapshot: " + what + " at offset " + std::to_string(8 + r.position()));
  };
  const uint8_t version = r.u8();
  if (r.ok() && version != kSnapshotVersion) {
    return bad("unknown version " + std::to_string(version));
  }
  fresh.applied_ = LogIndex(r.u64());
  const uint64_t revision = r.u64();
  const uint64_t compact = r.u64();
  fresh.next_lease_id_ = LeaseId(r.u64());
  if (!r.ok()) return bad("truncated header");
  if (revision > kMaxSigned || compact > revision) return bad("bad revision or compact revision");
  if (fresh.next_lease_id_ == kNoLease) return bad("next lease id 0");
  fresh.revision_ = static_cast<int64_t>(revision);
  fresh.compact_revision_ = static_cast<int64_t>(compact);

  const uint64_t n_leases = r.u64();
  if (!r.ok() || n_leases > r.remaining() / kMinLeaseBytes) return bad("bad lease count");
  for (uint64_t i = 0; i < n_leases; ++i) {
    const LeaseId id(r.u64());
    const uint64_t ttl = r.u64();
    const LogIndex refreshed(r.u64());
    if (!r.ok()) return bad("truncated lease");
    if (refreshed > fresh.applied_) return bad("lease " + id.str() + " refreshed in the future");
    if (id == kNoLease || id >= fresh.next_lease_id_) return bad("lease id " + id.str());
    if (!fresh.leases_.empty() && id <= fresh.leases_.rbegin()->first) {
      return bad("leases out of order");
    }
    if (ttl < kMinLeaseTtlS || ttl > kMaxLeaseTtlS) return bad("lease ttl");
    fresh.leases_[id].ttl_s = static_cast<int64_t>(ttl);
    fresh.leases_[id].refreshed = refreshed;
  }

  const uint64_t n_keys = r.u64();
  if (!r.ok() || n_keys > r.remaining() / kMinKeyEntryBytes) return bad("bad key count");
  for (uint64_t i = 0; i < n_keys; ++i) {
    std::string key(r.bytes());
    const uint32_t n_recs = r.u32();
    if (!r.ok()) return bad("truncated key");
    if (key.empty() || key.size() > kMaxKeyBytes) return bad("bad key length");
    if (!fresh.keys_.empty() && key <= fresh.keys_.rbegin()->first) {
      return bad("keys out of order");
    }
    if (n_recs == 0 || n_recs > r.remaining() / kMinRecBytes) return bad("bad version count");
    Recs recs;
    recs.reserve(n_recs);
    for (uint32_t j = 0; j < n_recs; ++j) {
      Rec rec;
      const uint64_t mod = r.u64();
      const uint64_t create = r.u64();
      const uint64_t ver = r.u64();
      rec.lease = LeaseId(r.u64());
      const uint8_t tomb = r.u8();
      rec.value = std::string(r.bytes());
      if (!r.ok()) return bad("truncated version of key " + quoted(key));
      if (mod == 0 || mod > revision || (!recs.empty() && mod <= uint64_t(recs.back().mod))) {
        return bad("bad mod revision of key " + quoted(key));
      }
      if (tomb > 1) return bad("bad tombstone flag");
      rec.mod = static_cast<int64_t>(mod);
      rec.tombstone = tomb == 1;
      if (rec.tombstone) {
        if (create != 0 || ver != 0 || rec.lease != kNoLease || !rec.value.empty()) {
          return bad("tombstone with data for key " + quoted(key));
        }
      } else {
        if (create == 0 || create > mod || ver == 0 || ver > kMaxSigned ||
            rec.value.size() > kMaxValueBytes) {
          return bad("bad version of key " + quoted(key));
        }
        rec.create = static_cast<int64_t>(create);
        rec.version = static_cast<int64_t>(ver);
      }
      // Compaction leaves at most one version at or before the compact revision: the
      // first, and never a tombstone.
      if (mod <= compact && (j != 0 || rec.tombstone)) {
        return bad("uncompacted history of key " + quoted(key));
      }
      recs.push_back(std::move(rec));
    }
    auto [it, inserted] = fresh.keys_.emplace(std::move(key), std::move(recs));
    const Rec& last = it->second.back();
    if (!last.tombstone) {
      ++fresh.live_keys_;
      if (last.lease != kNoLease) {
        auto l = fresh.leases_.find(last.lease);
        if (l == fresh.leases_.end()) return bad("key " + quoted(it->first) + " on no lease");
        l->second.keys.insert(it->first);
      }
    }
  }
  if (!r.ok() || r.remaining() != 0) return bad("trailing bytes");
  // Keys are visited in order, so a stable sort by revision leaves each revision's
  // changes in key order.
  std::vector<Change> changes;
  for (const auto& [k, recs] : fresh.keys_) {
    for (const Rec& rec : recs) {
      if (rec.mod > fresh.compact_revision_) changes.push_back(Change{rec.mod, k});
    }
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const Change& a, const Change& b) { return a.rev < b.rev; });
  fresh.changes_.assign(changes.begin(), changes.end());
  *this = std::move(fresh);
  return Status();
}

}  // namespace vigil::store
