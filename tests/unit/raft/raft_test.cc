// Unit tests of the Raft core over an in-memory, fully controlled network.
#include "raft/raft.h"

#include <gtest/gtest.h>

#include "raft/codec.h"
#include "net_harness.h"

namespace vigil::raft {
namespace {

TEST(Raft, ElectsExactlyOneLeader) {
  Net net(3);
  int l = net.elect();
  ASSERT_NE(l, 0);
  int leaders = 0;
  for (int i = 1; i <= 3; ++i) {
    if (net.node(i).role() == StateRole::kLeader) ++leaders;
    EXPECT_EQ(net.node(i).leader(), NodeId(l));
    EXPECT_EQ(net.node(i).term(), net.node(l).term());
  }
  EXPECT_EQ(leaders, 1);
}

TEST(Raft, SingleNodeCommitsAlone) {
  Net net(1);
  ASSERT_EQ(net.elect(), 1);
  ASSERT_TRUE(net.node(1).propose("a").ok());
  net.settle();
  EXPECT_EQ(net.data_applied(1), std::vector<std::string>{"a"});
}

TEST(Raft, ReplicatesAndCommitsOnEveryNode) {
  Net net(3);
  int l = net.elect();
  for (int k = 0; k < 50; ++k) ASSERT_TRUE(net.node(l).propose("v" + std::to_string(k)).ok());
  net.settle();
  for (int i = 1; i <= 3; ++i) {
    auto got = net.data_applied(i);
    ASSERT_EQ(got.size(), 50u) << "node " << i;
    EXPECT_EQ(got.front(), "v0");
    EXPECT_EQ(got.back(), "v49");
  }
}

TEST(Raft, FollowerForwardsProposalToLeader) {
  Net net(3);
  int l = net.elect();
  int f = l % 3 + 1;
  ASSERT_TRUE(net.node(f).propose("from-follower").ok());
  net.settle();
  EXPECT_EQ(net.data_applied(l), std::vector<std::string>{"from-follower"});
}

TEST(Raft, ProposeWithoutLeaderIsUnavailable) {
  Net net(3);
  Status s = net.node(1).propose("x");
  EXPECT_EQ(s.code(), Errc::kUnavailable);
}

TEST(Raft, NewLeaderAfterLeaderIsolatedAndOldLeaderStepsDown) {
  Net net(3);
  int l = net.elect();
  ASSERT_TRUE(net.node(l).propose("before").ok());
  net.settle();
  net.isolate(l);
  // Check-quorum: the isolated leader steps down within an election timeout or two.
  net.tick_all(40);
  EXPECT_NE(net.node(l).role(), StateRole::kLeader);
  int l2 = net.leader();
  ASSERT_NE(l2, 0);
  ASSERT_NE(l2, l);
  ASSERT_TRUE(net.node(l2).propose("after").ok());
  net.settle();
  net.heal();
  net.tick_all(20);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(net.data_applied(i), (std::vector<std::string>{"before", "after"})) << i;
  }
}

TEST(Raft, PreVoteKeepsPartitionedNodeFromBumpingTerm) {
  Net net(3);
  int l = net.elect();
  Term t = net.node(l).term();
  int f = l % 3 + 1;
  net.isolate(f);
  net.tick_all(100);
  // The isolated node never won a pre-vote, so its term did not move.
  EXPECT_EQ(net.node(f).term(), t);
  net.heal();
  net.tick_all(10);
  EXPECT_EQ(net.leader(), l);
  EXPECT_EQ(net.node(l).term(), t);
}

TEST(Raft, WithoutPreVoteTheTermGrows) {
  Net net(3, 1, [](Config& c) { c.pre_vote = false; });
  int l = net.elect();
  Term t = net.node(l).term();
  int f = l % 3 + 1;
  net.isolate(f);
  net.tick_all(100);
  EXPECT_GT(net.node(f).term(), t);
}

TEST(Raft, RejoiningNodeWithLongerStaleLogIsOverwritten) {
  Net net(3);
  int l = net.elect();
  ASSERT_TRUE(net.node(l).propose("a").ok());
  net.settle();
  net.isolate(l);
  // Uncommittable entries on the isolated leader.
  for (int k = 0; k < 5; ++k) (void)net.node(l).propose("lost" + std::to_string(k));
  net.settle();
  net.tick_all(40);
  int l2 = net.leader();
  ASSERT_NE(l2, l);
  ASSERT_TRUE(net.node(l2).propose("b").ok());
  net.settle();
  net.heal();
  net.tick_all(20);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(net.data_applied(i), (std::vector<std::string>{"a", "b"})) << i;
    EXPECT_EQ(net.node(i).last_index(), net.node(l2).last_index());
  }
}

TEST(Raft, ReadIndexOnLeaderAndFollower) {
  Net net(3);
  int l = net.elect();
  ASSERT_TRUE(net.node(l).propose("a").ok());
  net.settle();
  net.node(l).read_index("r1");
  net.settle();
  ASSERT_EQ(net.reads_[NodeId(l)].size(), 1u);
  EXPECT_EQ(net.reads_[NodeId(l)][0].context, "r1");
  EXPECT_EQ(net.reads_[NodeId(l)][0].index, net.node(l).commit_index());
  int f = l % 3 + 1;
  net.node(f).read_index("r2");
  net.settle();
  ASSERT_EQ(net.reads_[NodeId(f)].size(), 1u);
  EXPECT_EQ(net.reads_[NodeId(f)][0].context, "r2");
}

TEST(Raft, ReadIndexNotAnsweredByIsolatedLeader) {
  Net net(3);
  int l = net.elect();
  net.settle();
  net.isolate(l);
  net.node(l).read_index("stale");
  net.settle();
  EXPECT_TRUE(net.reads_[NodeId(l)].empty());
}

TEST(Raft, LeadershipTransfer) {
  Net net(3);
  int l = net.elect();
  ASSERT_TRUE(net.node(l).propose("a").ok());
  net.settle();
  int target = l % 3 + 1;
  ASSERT_TRUE(net.node(l).transfer_leadership(NodeId(target)).ok());
  net.settle();
  EXPECT_EQ(net.leader(), target);
  EXPECT_EQ(net.node(l).role(), StateRole::kFollower);
}

TEST(Raft, LaggingFollowerCatchesUpBySnapshot) {
  Net net(3);
  int l = net.elect();
  int f = l % 3 + 1;
  net.isolate(f);
  for (int k = 0; k < 20; ++k) ASSERT_TRUE(net.node(l).propose("v" + std::to_string(k)).ok());
  net.settle();
  // Leader compacts its log: the isolated follower can only catch up by snapshot.
  Snapshot snap;
  snap.meta.index = net.node(l).applied_index();
  snap.meta.term = net.node(l).term();
  snap.meta.conf = net.node(l).conf();
  snap.data = std::make_shared<const std::string>("state-at-" + snap.meta.index.str());
  ASSERT_TRUE(net.node(l).compact(snap).ok());
  EXPECT_GT(net.node(l).first_index(), LogIndex(20));
  ASSERT_TRUE(net.node(l).propose("after-snap").ok());
  net.settle();
  net.heal();
  net.tick_all(10);
  EXPECT_EQ(net.node(f).commit_index(), net.node(l).commit_index());
  EXPECT_EQ(net.node(f).first_index(), net.node(l).first_index());
  EXPECT_EQ(net.data_applied(f), std::vector<std::string>{"after-snap"});
}

TEST(Raft, CompactRejectsUnappliedIndex) {
  Net net(1);
  net.elect();
  Snapshot snap;
  snap.meta.index = LogIndex(100);
  EXPECT_EQ(net.node(1).compact(snap).code(), Errc::kOutOfRange);
}

TEST(Raft, MembershipAddLearnerPromoteAndRemove) {
  Net net(3);
  int l = net.elect();
  net.add_empty(4);
  ConfChange add{ConfChangeType::kAddLearner, NodeId(4), ""};
  ASSERT_TRUE(net.node(l).propose_conf_change(add).ok());
  net.settle();
  net.tick_all(3);
  EXPECT_EQ(net.node(l).conf().learners, std::vector<NodeId>{NodeId(4)});
  EXPECT_EQ(net.node(4).commit_index(), net.node(l).commit_index());
  ConfChange promote{ConfChangeType::kAddVoter, NodeId(4), ""};
  ASSERT_TRUE(net.node(l).propose_conf_change(promote).ok());
  net.settle();
  EXPECT_EQ(net.node(l).conf().voters.size(), 4u);
  EXPECT_EQ(net.node(4).conf().voters.size(), 4u);
  ConfChange remove{ConfChangeType::kRemoveNode, NodeId(l == 1 ? 2 : 1), ""};
  ASSERT_TRUE(net.node(l).propose_conf_change(remove).ok());
  net.settle();
  EXPECT_EQ(net.node(l).conf().voters.size(), 3u);
  ASSERT_TRUE(net.node(l).propose("post-change").ok());
  net.settle();
  EXPECT_EQ(net.data_applied(4).back(), "post-change");
}

TEST(Raft, SecondMembershipChangeWaitsForTheFirst) {
  Net net(3);
  int l = net.elect();
  net.settle();
  net.isolate(l % 3 + 1);
  net.isolate((l + 1) % 3 + 1);  // the change cannot commit
  ASSERT_TRUE(
      net.node(l).propose_conf_change({ConfChangeType::kAddLearner, NodeId(4), ""}).ok());
  net.settle();
  EXPECT_EQ(net.node(l).propose_conf_change({ConfChangeType::kAddLearner, NodeId(5), ""}).code(),
            Errc::kUnavailable);
}

TEST(Raft, LeaderLeaseValidOnlyWithQuorumContact) {
  Net net(3);
  int l = net.elect();
  net.tick_all(2);
  EXPECT_TRUE(net.node(l).lease_valid());
  net.isolate(l);
  // Within one election timeout of the last acknowledged heartbeat the lease runs out.
  net.tick_all(11);
  EXPECT_FALSE(net.node(l).lease_valid());
}

TEST(Raft, FollowerInLeaseIgnoresDisruptiveCandidate) {
  Net net(3, 3, [](Config& c) { c.pre_vote = false; });
  int l = net.elect();
  Term t = net.node(l).term();
  int f = l % 3 + 1;
  // A vote request at a higher term from a node that is not up to date does not depose a
  // leader whose followers heard from it recently.
  Message m;
  m.type = MsgType::kVote;
  m.from = NodeId(f);
  m.to = NodeId(l % 3 + 1 == f ? (f % 3 + 1) : l % 3 + 1);
  m.term = t + 5;
  ASSERT_TRUE(net.node(static_cast<int>(m.to.value())).step(m).ok());
  EXPECT_EQ(net.node(static_cast<int>(m.to.value())).term(), t);
}

TEST(Raft, StepRejectsMisaddressedMessage) {
  Net net(3);
  Message m;
  m.to = NodeId(2);
  EXPECT_EQ(net.node(1).step(m).code(), Errc::kInvalidArgument);
}

TEST(Raft, RestartFromRestoredStateKeepsTermVoteAndLog) {
  SplitMix64 rng(7);
  Config c;
  c.id = NodeId(1);
  c.initial_conf.voters = {NodeId(1)};
  Restored r;
  r.hard_state = HardState{Term(5), NodeId(1), LogIndex(2)};
  r.entries = {Entry{Term(4), LogIndex(1), EntryType::kNormal, "a"},
               Entry{Term(5), LogIndex(2), EntryType::kNormal, "b"}};
  Raft raft(c, rng, r);
  EXPECT_EQ(raft.term(), Term(5));
  EXPECT_EQ(raft.last_index(), LogIndex(2));
  EXPECT_EQ(raft.commit_index(), LogIndex(2));
  ASSERT_TRUE(raft.has_ready());
  Ready rd = raft.ready();
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_TRUE(rd.entries.empty());  // already stable
  raft.advance(rd);
}

}  // namespace
}  // namespace vigil::raft
