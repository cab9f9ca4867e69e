// Tests of the simulator itself: determinism, the KV state machine and its codec, and the
// store checkers on hand-made wrong answers.
#include <gtest/gtest.h>

#include "sim/kv.h"
#include "sim/simulator.h"
#include "sim/store_check.h"

namespace vigil::sim {
namespace {

TEST(Simulator, SameSeedSameTrace) {
  for (uint64_t seed : {1, 7, 12345}) {
    SimOptions opts;
    opts.seed = seed;
    opts.steps = 3000;
    SimResult a = run_simulation(opts);
    SimResult b = run_simulation(opts);
    EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed;
    EXPECT_EQ(a.ok, b.ok);
    EXPECT_EQ(a.stats.steps, b.stats.steps);
    EXPECT_EQ(a.stats.ops_ok, b.stats.ops_ok);
    EXPECT_TRUE(a.ok) << a.invariant << ": " << a.details;
  }
}

TEST(Simulator, SameSeedSameTraceKvMachine) {
  SimOptions opts;
  opts.seed = 5;
  opts.machine = SimOptions::Machine::kKv;
  SimResult a = run_simulation(opts);
  SimResult b = run_simulation(opts);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_TRUE(a.ok) << a.invariant << ": " << a.details;
}

TEST(Simulator, StoreModeExercisesLeasesWatchesAndElection) {
  uint64_t expiries = 0, holdings = 0, watch_events = 0, resyncs = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SimOptions opts;
    opts.seed = seed;
    SimResult r = run_simulation(opts);
    ASSERT_TRUE(r.ok) << "seed " << seed << " " << r.invariant << ": " << r.details;
    expiries += r.stats.expiry_revokes;
    holdings += r.stats.holdings;
    watch_events += r.stats.watch_events;
    resyncs += r.stats.watch_resyncs;
  }
  EXPECT_GT(expiries, 0u);
  EXPECT_GT(holdings, 0u);
  EXPECT_GT(watch_events, 0u);
  EXPECT_GT(resyncs, 0u);
}

// Applies a request to a real store and hands the (possibly doctored) response to the
// checker.
struct StoreBench {
  store::MvccStore st;
  StoreChecker ch;
  uint64_t index = 0;
  store::Response apply(store::RequestBody body) {
    store::Request r{NodeId(1), ++index, std::move(body)};
    store::Response resp = st.apply(LogIndex(index), r);
    ch.on_first_apply(r, resp);
    return resp;
  }
};

TEST(StoreChecker, ReportsAKeyRemovedByTheWrongRevoke) {
  StoreBench b;
  b.apply(store::Put{"k", "v", store::kNoLease});
  auto g = b.apply(store::LeaseGrant{store::kNoLease, 1});
  const store::LeaseId lease = std::get<store::LeaseGrantResult>(g.result).id;
  b.apply(store::Put{"l", "w", lease});
  ASSERT_FALSE(b.ch.failed()) << b.ch.details();
  // The revoke deletes "l"; a store that also deleted the lease-less "k" is caught.
  store::Request r{NodeId(1), ++b.index, store::LeaseRevoke{lease}};
  store::Response resp = b.st.apply(LogIndex(b.index), r);
  store::Event lost;
  lost.type = store::Event::Type::kDelete;
  lost.kv.key = "k";
  lost.kv.mod_revision = resp.revision;
  resp.events.insert(resp.events.begin(), lost);
  b.ch.on_first_apply(r, resp);
  EXPECT_EQ(b.ch.invariant(), "key-removal") << b.ch.details();
}

TEST(StoreChecker, ReportsAWatchGapAndADoubledRevision) {
  StoreBench b;
  b.apply(store::Put{"a", "1", store::kNoLease});
  b.apply(store::Put{"b", "2", store::kNoLease});
  auto r3 = b.apply(store::Put{"a", "3", store::kNoLease});
  ASSERT_FALSE(b.ch.failed()) << b.ch.details();
  WatchConsumer c;
  store::WatchResponse w;
  w.events = r3.events;  // revision 3, but revisions 1 and 2 were never delivered
  b.ch.on_watch_response(c, w);
  EXPECT_EQ(b.ch.invariant(), "watch-gap");

  StoreBench d;
  auto r1 = d.apply(store::Put{"a", "1", store::kNoLease});
  WatchConsumer c2;
  store::WatchResponse w2;
  w2.events = r1.events;
  for (store::Event& e : w2.events) e.prev_kv.reset();
  d.ch.on_watch_response(c2, w2);
  ASSERT_FALSE(d.ch.failed()) << d.ch.details();
  d.ch.on_watch_response(c2, w2);
  EXPECT_EQ(d.ch.invariant(), "watch-order");
}

TEST(StoreChecker, ReportsTwoElectionHoldersAtOnce) {
  StoreChecker ch;
  ch.end_holding(ch.begin_holding(1, 5, 100), 300);
  ch.end_holding(ch.begin_holding(2, 9, 250), 400);
  ch.finish_elections();
  EXPECT_EQ(ch.invariant(), "election-exclusive");
  StoreChecker order;
  order.end_holding(order.begin_holding(1, 9, 100), 200);
  order.end_holding(order.begin_holding(2, 5, 300), 400);
  order.finish_elections();
  EXPECT_EQ(order.invariant(), "election-token-order");
}

TEST(StoreChecker, LeaseExpiryBeforeTheClientsValidityIsReported) {
  StoreBench b;
  auto g = b.apply(store::LeaseGrant{store::kNoLease, 1});
  const store::LeaseId lease = std::get<store::LeaseGrantResult>(g.result).id;
  b.ch.on_refresh_counted(lease, 1, 1000, 7);  // protects until 1000 + validity
  b.ch.on_expiry_proposed(99, lease, 1000 + lease_validity_units(1) - 1);
  store::Request r{NodeId(1), 99, store::LeaseRevoke{lease}};
  b.ch.on_first_apply(r, b.st.apply(LogIndex(++b.index), r));
  EXPECT_EQ(b.ch.invariant(), "lease-validity") << b.ch.details();
}

TEST(Simulator, DifferentSeedsDiffer) {
  SimOptions a, b;
  a.seed = 1;
  b.seed = 2;
  EXPECT_NE(run_simulation(a).trace_hash, run_simulation(b).trace_hash);
}

TEST(Simulator, RunsWithFixedNodeCount) {
  for (int nodes : {3, 5}) {
    SimOptions opts;
    opts.seed = 99;
    opts.nodes = nodes;
    SimResult r = run_simulation(opts);
    EXPECT_EQ(r.nodes, nodes);
    EXPECT_TRUE(r.ok) << r.invariant << ": " << r.details;
    EXPECT_GT(r.stats.ops_ok, 0u);
  }
}

TEST(KvCommand, RoundTrips) {
  KvCommand c{KvOpKind::kCas, 3, 17, "k1", "v2", std::string("v1")};
  std::optional<KvCommand> d = decode_command(encode_command(c));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, c);
  c.expected.reset();
  EXPECT_EQ(*decode_command(encode_command(c)), c);
  EXPECT_FALSE(decode_command("").has_value());
  EXPECT_FALSE(decode_command(encode_command(c).substr(1)).has_value());
}

TEST(KvStateMachine, DedupsRetriedCommands) {
  KvStateMachine kv;
  KvCommand put{KvOpKind::kPut, 1, 1, "k", "a", std::nullopt};
  EXPECT_EQ(kv.apply(put).applied, KvStateMachine::Applied::kFresh);
  KvCommand other{KvOpKind::kPut, 2, 1, "k", "b", std::nullopt};
  kv.apply(other);
  // A retry of client 1's seq 1 must not overwrite client 2's later write.
  EXPECT_EQ(kv.apply(put).applied, KvStateMachine::Applied::kDuplicate);
  EXPECT_EQ(kv.get("k"), "b");
  KvCommand cas{KvOpKind::kCas, 1, 2, "k", "c", std::string("b")};
  KvStateMachine::ApplyResult r = kv.apply(cas);
  EXPECT_TRUE(r.output.cas_ok);
  EXPECT_EQ(kv.apply(cas).output, r.output);  // duplicate returns the cached output
  EXPECT_EQ(kv.apply(put).applied, KvStateMachine::Applied::kStale);
  EXPECT_EQ(kv.get("k"), "c");
}

TEST(KvStateMachine, SnapshotRoundTrip) {
  KvStateMachine kv;
  kv.apply({KvOpKind::kPut, 1, 1, "x", "1", std::nullopt});
  kv.apply({KvOpKind::kGet, 2, 5, "x", "", std::nullopt});
  KvStateMachine copy;
  uint64_t digest = 0;
  ASSERT_TRUE(copy.deserialize(kv.serialize(42), &digest));
  EXPECT_EQ(digest, 42u);
  EXPECT_EQ(copy.state_hash(), kv.state_hash());
  EXPECT_EQ(copy.apply({KvOpKind::kGet, 2, 5, "x", "", std::nullopt}).applied,
            KvStateMachine::Applied::kDuplicate);
}

}  // namespace
}  // namespace vigil::sim
