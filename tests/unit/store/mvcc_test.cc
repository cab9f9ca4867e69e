// Tests of MvccStore: revisions and versions, ranges, past reads, compaction, txn, leases,
// snapshots.
#include "store/mvcc.h"

#include <gtest/gtest.h>

#include "store/keys.h"

namespace vigil::store {
namespace {

// Applies requests at increasing Raft indexes.
class Applier {
 public:
  MvccStore store;
  Response apply(RequestBody body) {
    ++index_;
    return store.apply(LogIndex(index_), Request{NodeId(1), index_, std::move(body)});
  }
  Response put(std::string k, std::string v, LeaseId lease = kNoLease) {
    return apply(Put{std::move(k), std::move(v), lease});
  }
  Response del(std::string k, std::string end = "") {
    return apply(DeleteRange{std::move(k), std::move(end), true});
  }
  KeyValue get(const std::string& k, int64_t rev = 0) {
    auto r = store.range(k, "", rev);
    EXPECT_TRUE(r.has_value()) << r.error().to_string();
    if (!r.has_value() || r->kvs.empty()) return KeyValue{};
    return r->kvs[0];
  }
  LeaseId grant(int64_t ttl_s) {
    Response r = apply(LeaseGrant{kNoLease, ttl_s});
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return std::get<LeaseGrantResult>(r.result).id;
  }
  uint64_t index() const { return index_; }

 private:
  uint64_t index_ = 0;
};

std::vector<std::string> keys_of(const RangeResult& r) {
  std::vector<std::string> out;
  for (const KeyValue& kv : r.kvs) out.push_back(kv.key);
  return out;
}

TEST(Mvcc, RevisionsAndVersions) {
  Applier a;
  EXPECT_EQ(a.store.revision(), 0);
  Response r = a.put("k", "v1");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 1);
  EXPECT_EQ(a.get("k"), (KeyValue{"k", "v1", 1, 1, 1, kNoLease}));
  a.put("other", "x");
  a.put("k", "v2");
  EXPECT_EQ(a.get("k"), (KeyValue{"k", "v2", 1, 3, 2, kNoLease}));
  // Delete: version resets; events carry the deleting revision and the previous value.
  r = a.del("k");
  EXPECT_EQ(r.revision, 4);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].type, Event::Type::kDelete);
  EXPECT_EQ(r.events[0].kv.mod_revision, 4);
  EXPECT_EQ(r.events[0].prev_kv->value, "v2");
  EXPECT_EQ(std::get<DeleteResult>(r.result).deleted, 1);
  EXPECT_EQ(a.get("k"), KeyValue{});
  // Re-created: create_revision is the new revision, version starts at 1 again.
  a.put("k", "v3");
  EXPECT_EQ(a.get("k"), (KeyValue{"k", "v3", 5, 5, 1, kNoLease}));
  EXPECT_EQ(a.store.applied(), LogIndex(5));
  EXPECT_EQ(a.store.key_count(), 2u);
}

TEST(Mvcc, NoOpWritesDoNotBumpRevision) {
  Applier a;
  a.put("k", "v");
  Response r = a.del("missing");
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 1);
  EXPECT_TRUE(r.events.empty());
  r = a.apply(LeaseGrant{kNoLease, 5});
  EXPECT_EQ(r.revision, 1);
  // An old index is refused and changes nothing.
  Response old = a.store.apply(LogIndex(1), Request{NodeId(1), 9, Put{"k", "zzz"}});
  EXPECT_EQ(old.status.code(), Errc::kAborted);
  EXPECT_EQ(a.get("k").value, "v");
}

TEST(Mvcc, RangeByPrefixAndInterval) {
  Applier a;
  for (const char* k : {"a", "app/1", "app/2", "app/3", "apq", "b", "c"}) a.put(k, k);
  auto r = a.store.range("app/", prefix_end("app/"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(keys_of(*r), (std::vector<std::string>{"app/1", "app/2", "app/3"}));
  EXPECT_EQ(r->count, 3);
  EXPECT_FALSE(r->more);
  r = a.store.range("app/", prefix_end("app/"), 0, 2);
  EXPECT_EQ(keys_of(*r), (std::vector<std::string>{"app/1", "app/2"}));
  EXPECT_EQ(r->count, 3);
  EXPECT_TRUE(r->more);
  r = a.store.range("apq", "c");  // [from, to)
  EXPECT_EQ(keys_of(*r), (std::vector<std::string>{"apq", "b"}));
  r = a.store.range("b", std::string(kRangeAll));  // >= key
  EXPECT_EQ(keys_of(*r), (std::vector<std::string>{"b", "c"}));
  r = a.store.range("", std::string(kRangeAll), 0, 0, false, true);  // count only
  EXPECT_EQ(r->count, 7);
  EXPECT_TRUE(r->kvs.empty());
  r = a.store.range("a", "b", 0, 0, true);  // keys only
  ASSERT_EQ(r->kvs.size(), 5u);
  EXPECT_EQ(r->kvs[1].key, "app/1");
  EXPECT_EQ(r->kvs[1].value, "");
  EXPECT_EQ(r->kvs[1].mod_revision, 2);
  EXPECT_EQ(a.store.range("b", "a").error().code(), Errc::kInvalidArgument);
}

TEST(Mvcc, ReadsAtPastRevisions) {
  Applier a;
  a.put("k", "1");  // 1
  a.put("j", "x");  // 2
  a.put("k", "2");  // 3
  a.del("k");       // 4
  a.put("k", "3");  // 5
  EXPECT_EQ(a.get("k", 1).value, "1");
  EXPECT_EQ(a.get("k", 2).value, "1");
  EXPECT_EQ(a.get("k", 3).value, "2");
  EXPECT_EQ(a.get("k", 4), KeyValue{});
  EXPECT_EQ(a.get("k", 5).value, "3");
  auto r = a.store.range("", std::string(kRangeAll), 4);
  EXPECT_EQ(keys_of(*r), (std::vector<std::string>{"j"}));
  EXPECT_EQ(r->revision, 4);
  auto future = a.store.range("k", "", 6);
  ASSERT_FALSE(future.has_value());
  EXPECT_EQ(future.error().code(), Errc::kOutOfRange);
  EXPECT_NE(future.error().message().find("future (current revision 5)"), std::string::npos);
}

TEST(Mvcc, CompactionDropsHistoryAndErrorsBelowIt) {
  Applier a;
  a.put("k", "1");  // 1
  a.put("k", "2");  // 2
  a.put("d", "x");  // 3
  a.del("d");       // 4
  a.put("k", "3");  // 5
  EXPECT_EQ(a.store.retained_versions_for_test(), 5u);
  Response r = a.apply(Compact{4});
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(a.store.compact_revision(), 4);
  // k keeps version 2 (what a read at 4 sees) and 5; d's tombstone and past are gone.
  EXPECT_EQ(a.store.retained_versions_for_test(), 2u);
  EXPECT_EQ(a.get("k", 4).value, "2");
  EXPECT_EQ(a.get("d", 4), KeyValue{});
  auto old = a.store.range("k", "", 3);
  ASSERT_FALSE(old.has_value());
  EXPECT_EQ(old.error().code(), Errc::kOutOfRange);
  EXPECT_NE(old.error().message().find("compacted (compact revision 4)"), std::string::npos);
  EXPECT_EQ(a.apply(Compact{4}).status.code(), Errc::kOutOfRange);
  EXPECT_EQ(a.apply(Compact{9}).status.code(), Errc::kOutOfRange);
  EXPECT_EQ(a.get("k"), (KeyValue{"k", "3", 1, 5, 3, kNoLease}));
  // A later compaction at the head keeps only the live version.
  ASSERT_TRUE(a.apply(Compact{5}).status.ok());
  EXPECT_EQ(a.store.retained_versions_for_test(), 1u);
}

TEST(Mvcc, MemoryStaysBoundedWithCompaction) {
  Applier a;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 20; ++i) a.put("k" + std::to_string(i), std::to_string(round));
    for (int i = 0; i < 20; ++i)
      a.put("tmp" + std::to_string(round) + "/" + std::to_string(i), "x");
    a.del("tmp" + std::to_string(round) + "/", prefix_end("tmp" + std::to_string(round) + "/"));
    ASSERT_TRUE(a.apply(Compact{a.store.revision()}).status.ok());
    EXPECT_EQ(a.store.retained_versions_for_test(), 20u);
  }
}

Compare cmp(std::string key, Compare::Target t, Compare::Op op, int64_t n) {
  Compare c;
  c.key = std::move(key);
  c.target = t;
  c.op = op;
  c.number = n;
  return c;
}

TEST(Mvcc, TxnComparesEachTarget) {
  Applier a;
  LeaseId l = a.grant(10);
  a.put("k", "b");     // 1
  a.put("k", "c", l);  // 2
  using T = Compare::Target;
  using O = Compare::Op;
  auto run = [&](Compare c) {
    Txn t;
    t.compares = {std::move(c)};
    t.success = {RangeOp{"k", ""}};
    t.failure = {};
    Response r = a.apply(t);
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    return std::get<TxnResult>(r.result).succeeded;
  };
  Compare v;
  v.key = "k";
  v.target = T::kValue;
  v.op = O::kEqual;
  v.value = "c";
  EXPECT_TRUE(run(v));
  v.op = O::kGreater;
  v.value = "b";
  EXPECT_TRUE(run(v));
  v.op = O::kLess;
  EXPECT_FALSE(run(v));
  EXPECT_TRUE(run(cmp("k", T::kVersion, O::kEqual, 2)));
  EXPECT_TRUE(run(cmp("k", T::kVersion, O::kNotEqual, 1)));
  EXPECT_TRUE(run(cmp("k", T::kCreate, O::kEqual, 1)));
  EXPECT_TRUE(run(cmp("k", T::kMod, O::kGreater, 1)));
  EXPECT_FALSE(run(cmp("k", T::kMod, O::kLess, 2)));
  Compare lc;
  lc.key = "k";
  lc.target = T::kLease;
  lc.lease = l;
  EXPECT_TRUE(run(lc));
  lc.lease = kNoLease;
  EXPECT_FALSE(run(lc));
  // A missing key: version 0 (the "create if absent" idiom); a value compare fails.
  EXPECT_TRUE(run(cmp("nope", T::kVersion, O::kEqual, 0)));
  EXPECT_TRUE(run(cmp("nope", T::kCreate, O::kEqual, 0)));
  v.key = "nope";
  v.op = O::kNotEqual;
  EXPECT_FALSE(run(v));
  // A range compare: every key must satisfy it.
  a.put("k2", "x");
  Compare range = cmp("k", T::kVersion, O::kGreater, 0);
  range.range_end = "l";
  EXPECT_TRUE(run(range));
  range.number = 1;
  EXPECT_FALSE(run(range));
  EXPECT_EQ(a.store.revision(), 3);  // reads only: no revision
}

TEST(Mvcc, TxnThenElseSharesOneRevision) {
  Applier a;
  a.put("lock", "owner-1");  // 1
  a.put("old", "x");         // 2
  Txn t;
  t.compares = {cmp("lock", Compare::Target::kVersion, Compare::Op::kEqual, 0)};
  t.success = {Put{"lock", "owner-2"}};
  t.failure = {Put{"z", "1"}, DeleteRange{"old", "", true}, Put{"b", "2"},
               RangeOp{"", std::string(kRangeAll)}};
  Response r = a.apply(t);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  const auto& tr = std::get<TxnResult>(r.result);
  EXPECT_FALSE(tr.succeeded);
  ASSERT_EQ(tr.responses.size(), 4u);
  EXPECT_EQ(std::get<DeleteResult>(tr.responses[1]).prev_kvs[0].value, "x");
  // The read in the txn sees the txn's own writes, at the txn's revision.
  const auto& read = std::get<RangeResult>(tr.responses[3]);
  EXPECT_EQ(keys_of(read), (std::vector<std::string>{"b", "lock", "z"}));
  EXPECT_EQ(read.revision, 3);
  EXPECT_EQ(r.revision, 3);
  EXPECT_EQ(a.get("z").mod_revision, 3);
  EXPECT_EQ(a.get("b").mod_revision, 3);
  // Events of the revision in key order.
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[0].kv.key, "b");
  EXPECT_EQ(r.events[1].kv.key, "old");
  EXPECT_EQ(r.events[2].kv.key, "z");
  EXPECT_EQ(a.get("lock").value, "owner-1");
}

TEST(Mvcc, TxnIsAllOrNothing) {
  Applier a;
  Txn t;
  t.success = {Put{"a", "1"}, Put{"b", "2", LeaseId(77)}};
  Response r = a.apply(t);
  EXPECT_EQ(r.status.code(), Errc::kNotFound);  // lease 77
  EXPECT_EQ(a.store.revision(), 0);
  EXPECT_EQ(a.get("a"), KeyValue{});
  Txn bad_read;
  bad_read.success = {Put{"a", "1"}, RangeOp{"a", "", 5}};
  EXPECT_EQ(a.apply(bad_read).status.code(), Errc::kOutOfRange);
  EXPECT_EQ(a.store.revision(), 0);
}

TEST(Mvcc, PutLeaseRules) {
  Applier a;
  EXPECT_EQ(a.put("k", "v", LeaseId(3)).status.code(), Errc::kNotFound);
  LeaseId l = a.grant(5);
  EXPECT_EQ(l, LeaseId(1));
  ASSERT_TRUE(a.put("k", "v", l).status.ok());
  // ignore_lease keeps the lease; a plain put detaches it.
  ASSERT_TRUE(a.apply(Put{"k", "v2", kNoLease, false, true}).status.ok());
  EXPECT_EQ(a.get("k").lease, l);
  EXPECT_EQ(a.apply(Put{"missing", "v", kNoLease, false, true}).status.code(), Errc::kNotFound);
  ASSERT_TRUE(a.put("k", "v3").status.ok());
  EXPECT_TRUE(a.store.lease_ttl(l)->keys.empty());
}

TEST(Mvcc, LeaseRevokeDeletesKeysUnderOneRevision) {
  Applier a;
  LeaseId l = a.grant(10);
  LeaseId other = a.grant(10);
  EXPECT_EQ(other, LeaseId(2));
  a.put("s/2", "x", l);
  a.put("s/1", "x", l);
  a.put("s/3", "x", other);
  a.put("plain", "x");
  auto info = a.store.lease_ttl(l);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->ttl_s, 10);
  EXPECT_EQ(info->keys, (std::vector<std::string>{"s/1", "s/2"}));
  // A keep-alive changes nothing but answers with the granted TTL.
  Response ka = a.apply(LeaseKeepAlive{l});
  ASSERT_TRUE(ka.status.ok());
  EXPECT_EQ(std::get<LeaseGrantResult>(ka.result).ttl_s, 10);
  EXPECT_EQ(ka.revision, 4);
  EXPECT_TRUE(ka.events.empty());
  Response r = a.apply(LeaseRevoke{l});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 5);
  EXPECT_EQ(std::get<LeaseRevokeResult>(r.result).deleted, 2);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].kv.key, "s/1");
  EXPECT_EQ(r.events[1].kv.key, "s/2");
  EXPECT_EQ(r.events[1].type, Event::Type::kDelete);
  EXPECT_EQ(a.store.lease_ttl(l).error().code(), Errc::kNotFound);
  EXPECT_EQ(a.get("s/3").value, "x");
  EXPECT_EQ(a.apply(LeaseRevoke{l}).status.code(), Errc::kNotFound);
  EXPECT_EQ(a.apply(LeaseKeepAlive{l}).status.code(), Errc::kNotFound);
  // Explicit ids: taken ones are refused; picked ids stay above every id seen.
  EXPECT_EQ(a.apply(LeaseGrant{other, 5}).status.code(), Errc::kAlreadyExists);
  EXPECT_TRUE(a.apply(LeaseGrant{LeaseId(100), 5}).status.ok());
  EXPECT_EQ(a.grant(1), LeaseId(101));
  // A revoke of a lease without keys writes nothing.
  r = a.apply(LeaseRevoke{LeaseId(101)});
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 5);
  std::vector<LeaseInfo> all = a.store.leases();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, other);
  EXPECT_EQ(all[1].id, LeaseId(100));
}

TEST(Mvcc, SnapshotRoundTripIsByteIdentical) {
  Applier a;
  LeaseId l = a.grant(7);
  a.put("a", "1", l);
  a.put("b", std::string("\0\xff", 2));
  a.put("a", "2", l);
  a.del("b");
  a.put("c", "3");
  ASSERT_TRUE(a.apply(Compact{2}).status.ok());
  a.put("d", "4");
  const std::string snap = a.store.serialize();

  MvccStore other;
  ASSERT_TRUE(other.restore(snap).ok());
  EXPECT_EQ(other.serialize(), snap);
  EXPECT_EQ(other.revision(), a.store.revision());
  EXPECT_EQ(other.compact_revision(), 2);
  EXPECT_EQ(other.applied(), a.store.applied());
  EXPECT_EQ(other.key_count(), 3u);
  EXPECT_EQ(other.lease_ttl(l)->keys, (std::vector<std::string>{"a"}));
  EXPECT_EQ(*other.range("", std::string(kRangeAll), 3),
            *a.store.range("", std::string(kRangeAll), 3));
  auto h1 = other.history("", std::string(kRangeAll), 3, 0, true);
  auto h2 = a.store.history("", std::string(kRangeAll), 3, 0, true);
  ASSERT_TRUE(h1.has_value() && h2.has_value());
  EXPECT_EQ(h1->events, h2->events);

  // Both replicas go on identically.
  Request next{NodeId(2), 1, Put{"e", "5", l}};
  Response r1 = a.store.apply(LogIndex(100), next);
  Response r2 = other.apply(LogIndex(100), next);
  EXPECT_EQ(r1.events, r2.events);
  EXPECT_EQ(a.store.serialize(), other.serialize());
  // Revoking the lease on the restored copy removes the same keys.
  EXPECT_EQ(
      std::get<LeaseRevokeResult>(other.apply(LogIndex(101), {NodeId(1), 2, LeaseRevoke{l}}).result)
          .deleted,
      2);
}

// serialize() is sized in advance and may write into a caller's buffer: the result is the
// same bytes either way, and serialized_size() is exact.
TEST(Mvcc, SerializeIntoABufferAndExactSize) {
  Applier a;
  EXPECT_EQ(a.store.serialized_size(), a.store.serialize().size());
  LeaseId l = a.grant(3);
  a.put("a", "1", l);
  a.put("a", std::string(5000, 'x'));
  a.put("b", "");
  a.apply(DeleteRange{"b", ""});
  const std::string snap = a.store.serialize();
  EXPECT_EQ(a.store.serialized_size(), snap.size());
  std::string buffer = "stale bytes that must not survive";
  buffer.reserve(snap.size() + 100);
  const char* memory = buffer.data();
  const std::string into = a.store.serialize(std::move(buffer));
  EXPECT_EQ(into, snap);
  EXPECT_EQ(into.data(), memory);  // the buffer's memory was used, not a new allocation
  EXPECT_EQ(a.store.serialize(std::string(3, 'z')), snap);  // too small: grows
}

TEST(Mvcc, CorruptSnapshotRejectedStateUnchanged) {
  Applier a;
  LeaseId l = a.grant(3);
  a.put("a", "1", l);
  a.put("a", "2");
  const std::string snap = a.store.serialize();
  MvccStore other;
  ASSERT_TRUE(other.apply(LogIndex(1), Request{NodeId(1), 1, Put{"keep", "me"}}).status.ok());
  const std::string before = other.serialize();
  for (size_t i = 0; i < snap.size(); ++i) {
    std::string bad = snap;
    bad[i] ^= 0x10;
    EXPECT_EQ(other.restore(bad).code(), Errc::kCorruption) << i;
    if (i > 0) {
      EXPECT_EQ(other.restore(snap.substr(0, i)).code(), Errc::kCorruption) << i;
    }
  }
  EXPECT_EQ(other.serialize(), before);
  EXPECT_TRUE(other.restore("").ok());  // "" is the empty store
  EXPECT_EQ(other.revision(), 0);
  EXPECT_EQ(other.key_count(), 0u);
}

TEST(Mvcc, HistoryReplaysWholeRevisions) {
  Applier a;
  a.put("a", "1");                                                      // 1
  a.apply(Txn{{}, {Put{"a", "2"}, Put{"b", "1"}, Put{"c", "1"}}, {}});  // 2
  a.put("b", "2");                                                      // 3
  auto h = a.store.history("", std::string(kRangeAll), 1, 2, true);
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->events.size(), 4u);  // revision 2 is not split
  EXPECT_EQ(h->next_revision, 3);
  EXPECT_EQ(h->events[1].prev_kv->value, "1");
  h = a.store.history("b", "", 3, 0, false);
  ASSERT_EQ(h->events.size(), 1u);
  EXPECT_FALSE(h->events[0].prev_kv.has_value());
  EXPECT_EQ(h->next_revision, 4);
  ASSERT_TRUE(a.apply(Compact{2}).status.ok());
  EXPECT_EQ(a.store.history("a", "", 2, 0, false).error().code(), Errc::kOutOfRange);
  EXPECT_TRUE(a.store.history("a", "", 3, 0, false).has_value());
}

}  // namespace
}  // namespace vigil::store

namespace vigil::store {
namespace {

// An expiry decided before a keep-alive was applied must not revoke the lease: a client whose
// keep-alive was acknowledged keeps it (simulator finding S2).
TEST(Mvcc, LeaseExpireYieldsToALaterKeepAlive) {
  Applier a;
  LeaseId l = a.grant(5);
  a.put("svc/a", "x", l);
  const LogIndex decided(a.index());                    // the leader decides the expiry here...
  ASSERT_TRUE(a.apply(LeaseKeepAlive{l}).status.ok());  // ...but a keep-alive lands first
  Response r = a.apply(LeaseExpire{l, decided});
  EXPECT_EQ(r.status.code(), Errc::kAborted) << r.status.to_string();
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(a.get("svc/a").value, "x");
  // A later expiry, decided after the keep-alive, applies like a revoke.
  r = a.apply(LeaseExpire{l, LogIndex(a.index())});
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(std::get<LeaseRevokeResult>(r.result).deleted, 1);
  EXPECT_EQ(a.store.lease_ttl(l).error().code(), Errc::kNotFound);
  EXPECT_EQ(a.apply(LeaseExpire{l, LogIndex(a.index())}).status.code(), Errc::kNotFound);
}

TEST(Mvcc, LeaseRefreshIndexSurvivesASnapshot) {
  Applier a;
  LeaseId l = a.grant(5);
  ASSERT_TRUE(a.apply(LeaseKeepAlive{l}).status.ok());
  const LogIndex refreshed(a.index());
  MvccStore copy;
  ASSERT_TRUE(copy.restore(a.store.serialize()).ok());
  EXPECT_EQ(copy.serialize(), a.store.serialize());
  // The copy still knows the keep-alive came after an expiry decided just before it.
  Response r =
      copy.apply(LogIndex(a.index() + 1), Request{NodeId(1), 1, LeaseExpire{l, refreshed - 1}});
  EXPECT_EQ(r.status.code(), Errc::kAborted);
}

}  // namespace
}  // namespace vigil::store
