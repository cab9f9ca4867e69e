// Tests of the simulator itself: determinism, the KV state machine and its codec.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include "sim/kv.h"

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
