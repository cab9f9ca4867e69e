// Review tests of the Raft core: regressions for what the review found, hostile peer
// messages, the leader lease, and behaviours the paper requires that had no test.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "net_harness.h"
#include "raft/codec.h"
#include "raft/raft.h"

namespace vigil::raft {
namespace {

constexpr int kElection = 10;  // Config::election_tick default

// Runs one core's Ready loop as a perfect shell would; returns the messages it sent.
std::vector<Message> drain(Raft& r) {
  std::vector<Message> out;
  while (r.has_ready()) {
    Ready rd = r.ready();
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kConfChange) {
        auto cc = decode_conf_change(e.data);
        EXPECT_TRUE(cc.has_value());
        if (cc) r.apply_conf_change(*cc);
      }
    }
    for (Message& m : rd.messages) out.push_back(std::move(m));
    r.advance(rd);
  }
  return out;
}

Message msg(MsgType type, int from, int to, Term term) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = term;
  return m;
}

ConfState voters(std::initializer_list<int> ids) {
  ConfState cs;
  for (int i : ids) cs.voters.push_back(NodeId(i));
  return cs;
}

Entry entry(uint64_t term, uint64_t index, std::string data = "") {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal, std::move(data)};
}

// Node 1 of {1,2,3} elected leader by hand (pre-vote off): term 2, log = 3 bootstrap
// entries + the no-op at 4, everything persisted.
struct HandLeader {
  SplitMix64 rng{5};
  Config cfg;
  std::unique_ptr<Raft> raft;
  explicit HandLeader(std::function<void(Config&)> tweak = {}) {
    cfg.id = NodeId(1);
    cfg.initial_conf = voters({1, 2, 3});
    cfg.pre_vote = false;
    if (tweak) tweak(cfg);
    raft = std::make_unique<Raft>(cfg, rng);
    drain(*raft);
    raft->campaign();
    drain(*raft);
    Message v = msg(MsgType::kVoteResp, 2, 1, raft->term());
    EXPECT_TRUE(raft->step(v).ok());
    drain(*raft);
    EXPECT_EQ(raft->role(), StateRole::kLeader);
  }
};

// ------------------------------------------------------------------ hostile peer messages

TEST(RaftReview, AppendWithNonContiguousEntriesIsRejectedNotFatal) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(2);
  c.initial_conf = voters({1, 2, 3});
  Raft f(c, rng);
  drain(f);
  // prev index 3 (the last bootstrap entry), but the entries skip index 4.
  Message m = msg(MsgType::kAppend, 1, 2, Term(2));
  m.index = LogIndex(3);
  m.log_term = Term(1);
  m.entries = {entry(2, 5, "gap")};
  m.commit = LogIndex(5);
  EXPECT_EQ(f.step(m).code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.last_index(), LogIndex(3));
  // An entry that claims a committed index with another term must not truncate it.
  Message t = msg(MsgType::kAppend, 1, 2, Term(2));
  t.index = LogIndex(3);
  t.log_term = Term(1);
  t.entries = {entry(2, 3, "overwrite-committed")};
  EXPECT_EQ(f.step(t).code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.entries_for_test(LogIndex(3), LogIndex(4)).at(0).term, Term(1));
  // Entries of a term newer than the sender's, or older than the previous entry's.
  Message n = msg(MsgType::kAppend, 1, 2, Term(2));
  n.index = LogIndex(3);
  n.log_term = Term(1);
  n.entries = {entry(3, 4)};
  EXPECT_EQ(f.step(n).code(), Errc::kInvalidArgument);
  Message o = msg(MsgType::kAppend, 1, 2, Term(2));
  o.index = LogIndex(3);
  o.log_term = Term(1);
  o.entries = {entry(2, 4), entry(1, 5)};
  EXPECT_EQ(f.step(o).code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.last_index(), LogIndex(3));
  // A well-formed append still works after all that.
  Message ok = msg(MsgType::kAppend, 1, 2, Term(2));
  ok.index = LogIndex(3);
  ok.log_term = Term(1);
  ok.entries = {entry(2, 4, "fine")};
  ok.commit = LogIndex(4);
  EXPECT_TRUE(f.step(ok).ok());
  EXPECT_EQ(f.last_index(), LogIndex(4));
  EXPECT_EQ(f.commit_index(), LogIndex(4));
}

TEST(RaftReview, AppendFarBeyondTheLogIsRejectedWithAHint) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(2);
  c.initial_conf = voters({1, 2, 3});
  Raft f(c, rng);
  drain(f);
  Message m = msg(MsgType::kAppend, 1, 2, Term(2));
  m.index = LogIndex(1'000'000);
  m.log_term = Term(2);
  m.entries = {entry(2, 1'000'001)};
  EXPECT_TRUE(f.step(m).ok());
  auto out = drain(f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(out[0].reject_hint, LogIndex(3));
  EXPECT_EQ(f.last_index(), LogIndex(3));
}

TEST(RaftReview, SnapshotMessageWithoutSnapshotIsRejectedNotFatal) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(2);
  c.initial_conf = voters({1, 2, 3});
  Raft f(c, rng);
  drain(f);
  Message m = msg(MsgType::kSnapshot, 1, 2, Term(2));
  EXPECT_EQ(f.step(m).code(), Errc::kInvalidArgument);
  // Dropped before it could change anything: no new term, no leader.
  EXPECT_EQ(f.term(), Term(1));
  EXPECT_EQ(f.leader(), kNoNode);
}

TEST(RaftReview, AppendRespBeyondTheLeadersLogIsRejectedNotFatal) {
  HandLeader h;
  Raft& l = *h.raft;
  LogIndex commit = l.commit_index();
  for (int from : {2, 3}) {
    Message r = msg(MsgType::kAppendResp, from, 1, l.term());
    r.index = LogIndex(1'000'000);
    EXPECT_EQ(l.step(r).code(), Errc::kInvalidArgument);
  }
  drain(l);
  EXPECT_EQ(l.commit_index(), commit);
  EXPECT_EQ(l.role(), StateRole::kLeader);
  for (const PeerProgress& p : l.progress()) EXPECT_LE(p.match, l.last_index());
}

TEST(RaftReview, AppendRespFromANonMemberIsIgnored) {
  HandLeader h;
  Raft& l = *h.raft;
  Message r = msg(MsgType::kAppendResp, 9, 1, l.term());
  r.index = l.last_index();
  EXPECT_TRUE(l.step(r).ok());
  drain(l);
  EXPECT_EQ(l.progress().size(), 3u);
  EXPECT_LT(l.commit_index(), l.last_index());  // one vote (its own) does not commit
}

TEST(RaftReview, MessageFromNodeZeroOrFromSelfIsRejected) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(2);
  c.initial_conf = voters({1, 2, 3});
  c.pre_vote = false;
  Raft f(c, rng);
  drain(f);
  // A vote "from node 0" would record vote = 0, i.e. no vote, and allow a second vote.
  Message v = msg(MsgType::kVote, 0, 2, Term(5));
  v.index = LogIndex(3);
  v.log_term = Term(1);
  EXPECT_EQ(f.step(v).code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.term(), Term(1));
  Message s = msg(MsgType::kHeartbeat, 2, 2, Term(5));
  EXPECT_EQ(f.step(s).code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.term(), Term(1));
}

TEST(RaftReview, HeartbeatRespFromTheFutureDoesNotExtendTheLease) {
  HandLeader h;
  Raft& l = *h.raft;
  Message r = msg(MsgType::kHeartbeatResp, 2, 1, l.term());
  r.lease_tick = l.now_tick() + 1'000'000;
  EXPECT_EQ(l.step(r).code(), Errc::kInvalidArgument);
  EXPECT_FALSE(l.lease_expiry_tick().has_value());
}

TEST(RaftReview, ForwardedConfChangeIsValidatedLikeALocalOne) {
  HandLeader h;
  Raft& l = *h.raft;
  LogIndex last = l.last_index();
  // Undecodable membership change data, forwarded by a peer.
  Message garbage = msg(MsgType::kPropose, 2, 1, Term(0));
  garbage.entries = {Entry{Term(0), LogIndex(0), EntryType::kConfChange, "\xff\xff"}};
  EXPECT_EQ(l.step(garbage).code(), Errc::kInvalidArgument);
  // A change about node 0.
  Message zero = msg(MsgType::kPropose, 2, 1, Term(0));
  zero.entries = {Entry{Term(0), LogIndex(0), EntryType::kConfChange,
                        encode_conf_change(ConfChange{ConfChangeType::kAddVoter, kNoNode, ""})}};
  EXPECT_EQ(l.step(zero).code(), Errc::kInvalidArgument);
  EXPECT_EQ(l.last_index(), last);
}

TEST(RaftReview, ForwardedConfChangeCannotRemoveTheLastVoter) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(1);
  c.initial_conf = voters({1});
  Raft l(c, rng);
  drain(l);
  l.campaign();
  drain(l);
  ASSERT_EQ(l.role(), StateRole::kLeader);
  LogIndex last = l.last_index();
  Message m = msg(MsgType::kPropose, 7, 1, Term(0));
  m.entries = {Entry{Term(0), LogIndex(0), EntryType::kConfChange,
                     encode_conf_change(ConfChange{ConfChangeType::kRemoveNode, NodeId(1), ""})}};
  EXPECT_EQ(l.step(m).code(), Errc::kInvalidArgument);
  EXPECT_EQ(l.last_index(), last);
}

// ------------------------------------------------------------------ leader lease

// A new leader sends a heartbeat with its first append, so its lease is established one
// round trip after the election, not at its first heartbeat tick (holds rest on the lease).
TEST(RaftReview, NewLeaderLeaseOneRoundTripAfterElection) {
  Net net(3, 7, [](Config& c) {
    c.election_tick = 10;
    c.heartbeat_tick = 5;
  });
  int l = net.elect();
  ASSERT_NE(l, 0);
  EXPECT_TRUE(net.node(l).lease_valid()) << "no lease until the first heartbeat tick";
}

// Followers tick on their own clocks, out of phase with the leader. A follower that hears a
// heartbeat just before its own tick counts an election timeout in a little over
// election_tick - 1 tick periods, while a lease of heartbeat tick + election_tick lasts up to
// election_tick periods: the lease must end a tick earlier.
TEST(RaftReview, LeaseEndsBeforeAnOutOfPhaseFollowerCanVote) {
  Net net(3, 4);
  int l = net.elect();
  ASSERT_NE(l, 0);
  net.tick_all(2);
  int f1 = l % 3 + 1;
  int f2 = f1 % 3 + 1;
  net.cut(l, f2);
  net.node(l).tick();  // heartbeat at tick t reaches f1 only
  net.settle();
  net.cut(l, f1);
  ASSERT_TRUE(net.node(l).lease_valid());
  // f1 ticks just after each of the leader's ticks: its E-th tick comes before the
  // leader's (t + E)-th.
  for (int k = 1; k <= kElection; ++k) {
    net.node(f1).tick();
    net.node(f2).tick();
    net.settle();
    if (k < kElection) {
      net.node(l).tick();
      net.settle();
    }
  }
  net.node(f1).campaign();
  net.settle();
  int l2 = net.node(f1).role() == StateRole::kLeader ? f1
           : net.node(f2).role() == StateRole::kLeader ? f2 : 0;
  ASSERT_NE(l2, 0) << "f1 and f2 are out of the lease and should elect a leader";
  EXPECT_GT(net.node(l2).term(), net.node(l).term());
  EXPECT_EQ(net.node(l).role(), StateRole::kLeader);  // it has not heard yet
  EXPECT_FALSE(net.node(l).lease_valid()) << "two leaders, and the old one believes its lease";
}

// A leader that sent TimeoutNow has let the target campaign past every follower's lease.
TEST(RaftReview, LeaseEndsWhenTheLeaderSendsTimeoutNow) {
  Net net(3, 2);
  int l = net.elect();
  ASSERT_NE(l, 0);
  net.tick_all(2);
  ASSERT_TRUE(net.node(l).lease_valid());
  int target = l % 3 + 1;
  // Nothing reaches the old leader after it sends TimeoutNow.
  net.drop_ = [&](const Message& m) { return m.to == NodeId(l); };
  ASSERT_TRUE(net.node(l).transfer_leadership(NodeId(target)).ok());
  net.settle();
  ASSERT_EQ(net.node(target).role(), StateRole::kLeader);
  ASSERT_EQ(net.node(l).role(), StateRole::kLeader);
  EXPECT_FALSE(net.node(l).lease_valid()) << "the new leader was elected inside the lease";
  // The old leader cannot tell the transfer happened; once it is abandoned the leader
  // steps down rather than lead on without a lease for the rest of its term.
  for (int k = 0; k < kElection; ++k) {
    net.node(l).tick();
    net.settle();
  }
  EXPECT_NE(net.node(l).role(), StateRole::kLeader);
}

// A follower that restarts forgets it heard from the leader; it must still keep the promise
// its acknowledgement made (no vote for an election timeout).
TEST(RaftReview, RestartedFollowerKeepsTheLeasePromise) {
  Net net(3, 6);
  int l = net.elect();
  ASSERT_NE(l, 0);
  net.tick_all(2);
  int f1 = l % 3 + 1;
  int f2 = f1 % 3 + 1;
  net.cut(l, f2);
  net.node(l).tick();
  net.settle();  // f1 acknowledges the heartbeat of tick t
  net.cut(l, f1);
  ASSERT_TRUE(net.node(l).lease_valid());
  net.restart(f1);
  // f2 has not heard from the leader for an election timeout and campaigns; the restarted
  // f1 must not grant while the leader's lease (which counts f1) holds.
  for (int k = 0; k < 2 * kElection && net.node(l).lease_valid(); ++k) {
    net.node(f2).tick();
    net.settle();
    net.node(f2).campaign();
    net.settle();
    EXPECT_NE(net.node(f2).role(), StateRole::kLeader) << "elected inside the lease, k=" << k;
    if (net.node(f2).role() == StateRole::kLeader) break;
  }
  // Liveness: once f1 has waited out an election timeout, f2 (or f1) wins.
  net.heal();
  net.isolate(l);
  auto new_leader = [&] {
    return net.node(f1).role() == StateRole::kLeader   ? f1
           : net.node(f2).role() == StateRole::kLeader ? f2
                                                        : 0;
  };
  for (int k = 0; k < 6 * kElection && new_leader() == 0; ++k) net.tick_all(1);
  EXPECT_NE(new_leader(), 0);
}

// campaign() on a follower that heard from the leader within the election timeout would
// spend its own vote inside the lease it acknowledged.
TEST(RaftReview, CampaignInsideTheLeaseIsIgnored) {
  Net net(3, 8);
  int l = net.elect();
  ASSERT_NE(l, 0);
  net.tick_all(2);
  int f1 = l % 3 + 1;
  int f2 = f1 % 3 + 1;
  net.cut(l, f2);
  net.node(l).tick();
  net.settle();
  net.cut(l, f1);
  ASSERT_TRUE(net.node(l).lease_valid());
  for (int k = 0; k < kElection; ++k) {
    net.node(f2).tick();  // f2 leaves the lease (its own campaigns fail: f1 is in it)
    net.settle();
  }
  Term t = net.node(f1).term();
  net.node(f1).campaign();
  net.settle();
  EXPECT_NE(net.node(f1).role(), StateRole::kLeader);
  EXPECT_EQ(net.node(f1).term(), t);
  EXPECT_TRUE(net.node(l).lease_valid());
}

// ------------------------------------------------------------------ reads, restarts, limits

// A single-voter leader that restarts may have lost its last commit index (commit-only hard
// state changes are not synced) while a client saw an entry applied: its read index must
// wait for an entry of its own term, like any other leader (dissertation §6.4).
TEST(RaftReview, SingleVoterReadWaitsForACommitInItsTerm) {
  SplitMix64 rng(3);
  Config c;
  c.id = NodeId(1);
  c.initial_conf = voters({1});
  Restored r;
  r.hard_state = HardState{Term(2), NodeId(1), LogIndex(1)};
  r.entries = {entry(1, 1), entry(2, 2, "a"), entry(2, 3, "acked-write")};
  Raft raft(c, rng, r);
  drain(raft);
  for (int k = 0; k < 3 * kElection && raft.role() != StateRole::kLeader; ++k) raft.tick();
  ASSERT_EQ(raft.role(), StateRole::kLeader);
  raft.read_index("r");
  std::vector<ReadState> reads;
  while (raft.has_ready()) {
    Ready rd = raft.ready();
    for (auto& rs : rd.read_states) reads.push_back(rs);
    raft.advance(rd);
  }
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_GE(reads[0].index, LogIndex(3)) << "the read would miss an acknowledged write";
}

// A state machine that persists on its own may restore past the snapshot; the core must
// count those entries as committed and rebuild the membership they changed.
TEST(RaftReview, RestoreWithAppliedPastTheSnapshotReplaysMembership) {
  SplitMix64 rng(3);
  Config c;
  c.id = NodeId(1);
  c.initial_conf = voters({1, 2, 3});
  Restored r;
  r.hard_state = HardState{Term(2), NodeId(1), LogIndex(1)};  // commit not synced since
  r.entries = {entry(1, 1),
               Entry{Term(2), LogIndex(2), EntryType::kConfChange,
                     encode_conf_change(ConfChange{ConfChangeType::kAddLearner, NodeId(4), ""})},
               entry(2, 3, "x")};
  r.applied = LogIndex(3);
  Raft raft(c, rng, r);
  EXPECT_EQ(raft.commit_index(), LogIndex(3));
  EXPECT_EQ(raft.applied_index(), LogIndex(3));
  EXPECT_EQ(raft.conf().learners, std::vector<NodeId>{NodeId(4)});
  Ready rd = raft.ready();
  EXPECT_TRUE(rd.committed_entries.empty());  // already applied
  raft.advance(rd);
}

// Entries of earlier terms that a new leader commits were never counted by it; they must not
// cancel the bytes of its own proposals that are still uncommitted.
TEST(RaftReview, UncommittedBytesIgnorePreviousTermEntries) {
  SplitMix64 rng(3);
  Config c;
  c.id = NodeId(1);
  c.initial_conf = voters({1, 2, 3});
  c.pre_vote = false;
  c.max_uncommitted_bytes = 1500;
  Restored r;
  r.hard_state = HardState{Term(2), NodeId(1), LogIndex(1)};
  r.entries = {entry(1, 1), entry(2, 2, std::string(1000, 'o')),
               entry(2, 3, std::string(1000, 'p'))};
  Raft l(c, rng, r);
  drain(l);
  for (int k = 0; k < 3 * kElection && l.role() != StateRole::kCandidate; ++k) l.tick();
  ASSERT_EQ(l.role(), StateRole::kCandidate);
  ASSERT_TRUE(l.step(msg(MsgType::kVoteResp, 2, 1, l.term())).ok());
  drain(l);
  ASSERT_EQ(l.role(), StateRole::kLeader);
  ASSERT_EQ(l.last_index(), LogIndex(4));          // the no-op
  ASSERT_TRUE(l.propose(std::string(100, 'x')).ok());  // 124 bytes uncommitted
  drain(l);
  // Node 2 acknowledges up to the no-op: 2, 3 (old term) and 4 commit, the proposal not.
  Message ack = msg(MsgType::kAppendResp, 2, 1, l.term());
  ack.index = LogIndex(4);
  ASSERT_TRUE(l.step(ack).ok());
  drain(l);
  ASSERT_EQ(l.commit_index(), LogIndex(4));
  // 124 + 1424 > 1500.
  EXPECT_EQ(l.propose(std::string(1400, 'y')).code(), Errc::kResourceExhausted);
}

// ------------------------------------------------------------------ verified behaviours

// Raft §5.4.2, Figure 8: a leader must not commit an entry of an earlier term by counting
// replicas, even when a majority holds it.
// Check-quorum (and so the lease) is off: elections are driven by hand with campaign().
void figure8(bool unsafe, LogIndex* commit_while_frozen, bool* overwritten_applied) {
  Net net(5);
  auto restore = [&](int i, uint64_t last_term) {
    Config c;
    c.initial_conf = voters({1, 2, 3, 4, 5});
    c.check_quorum = false;
    c.max_size_per_msg = 1;  // one entry per append, so index 2 and 3 travel apart
    c.unsafe_commit_previous_term_for_test = unsafe;
    Restored r;
    r.hard_state = HardState{Term(3), kNoNode, LogIndex(1)};
    r.entries = {entry(1, 1)};
    if (last_term != 0) r.entries.push_back(entry(last_term, 2, "t" + std::to_string(last_term)));
    net.replace(i, c, r);
  };
  restore(1, 2);  // (a) S1 led term 2 and gave index 2 to S2
  restore(2, 2);
  restore(3, 0);
  restore(4, 0);
  restore(5, 3);  // (b) S5 led term 3 and wrote its own index 2
  // (c) S5 is away; S1 becomes leader of term 4 and replicates 2@2, but its no-op 3@4
  // reaches no one.
  net.isolate(5);
  net.tamper_ = [](Message& m) {
    if (m.type != MsgType::kAppend) return;
    std::erase_if(m.entries, [](const Entry& e) { return e.term == Term(4); });
  };
  net.node(1).campaign();
  net.settle();
  ASSERT_EQ(net.leader(), 1);
  ASSERT_EQ(net.node(1).term(), Term(4));
  net.tick_all(3);
  int holding = 0;
  for (int i = 1; i <= 4; ++i) {
    auto e = net.node(i).entries_for_test(LogIndex(2), LogIndex(3));
    if (!e.empty() && e[0].term == Term(2)) ++holding;
  }
  ASSERT_GE(holding, 3);  // a majority holds 2@2
  *commit_while_frozen = net.node(1).commit_index();
  if (unsafe) return;  // it committed 2@2, which (d) shows S5 can still overwrite
  // (d) S1 is lost; S5 returns and wins with its longer-term log, overwriting index 2.
  net.tamper_ = {};
  net.heal();
  net.isolate(1);
  for (int k = 0; k < 3 && net.leader() != 5; ++k) {
    net.node(5).campaign();  // the first try only teaches it term 4
    net.settle();
  }
  ASSERT_EQ(net.leader(), 5);
  ASSERT_TRUE(net.node(5).propose("after").ok());
  net.settle();
  *overwritten_applied = false;
  for (int i = 1; i <= 5; ++i) {
    for (const std::string& d : net.data_applied(i)) {
      if (d == "t2") *overwritten_applied = true;
    }
  }
  for (int i = 2; i <= 5; ++i) {
    EXPECT_EQ(net.data_applied(i), (std::vector<std::string>{"t3", "after"})) << i;
  }
}

TEST(RaftReview, Figure8PreviousTermEntryIsNotCommittedByCounting) {
  LogIndex commit;
  bool applied_t2 = true;
  figure8(false, &commit, &applied_t2);
  EXPECT_EQ(commit, LogIndex(1));
  EXPECT_FALSE(applied_t2);
}

TEST(RaftReview, Figure8ControlUnsafeCommitCountsTheOldEntry) {
  // The same run with the §5.4.2 check disabled commits 2@2, the entry the safe run shows
  // S5 overwriting: proof the frozen state is the dangerous one.
  LogIndex commit;
  bool unused = false;
  figure8(true, &commit, &unused);
  EXPECT_EQ(commit, LogIndex(2));
}

TEST(RaftReview, TransferToALaggingTargetIsAbortedAfterAnElectionTimeout) {
  Net net(3, 3);
  int l = net.elect();
  ASSERT_NE(l, 0);
  int target = l % 3 + 1;
  net.isolate(target);
  ASSERT_TRUE(net.node(l).propose("a").ok());
  net.settle();
  ASSERT_TRUE(net.node(l).transfer_leadership(NodeId(target)).ok());
  net.settle();
  EXPECT_EQ(net.node(l).propose("refused").code(), Errc::kAborted);
  for (int k = 0; k < kElection; ++k) {
    net.node(l).tick();
    net.settle();
  }
  // No TimeoutNow was sent (the target never caught up): the leader simply carries on.
  EXPECT_EQ(net.node(l).role(), StateRole::kLeader);
  EXPECT_TRUE(net.node(l).propose("accepted").ok());
  net.settle();
  int other = target % 3 + 1;
  EXPECT_EQ(net.data_applied(other), (std::vector<std::string>{"a", "accepted"}));
}

TEST(RaftReview, LostSnapshotIsSentAgain) {
  Net net(3);
  int l = net.elect();
  int f = l % 3 + 1;
  net.isolate(f);
  for (int k = 0; k < 20; ++k) ASSERT_TRUE(net.node(l).propose("v" + std::to_string(k)).ok());
  net.settle();
  Snapshot snap;
  snap.meta.index = net.node(l).applied_index();
  snap.meta.term = net.node(l).term();
  snap.meta.conf = net.node(l).conf();
  snap.data = std::make_shared<const std::string>("state");
  ASSERT_TRUE(net.node(l).compact(snap).ok());
  ASSERT_TRUE(net.node(l).propose("after-snap").ok());
  net.settle();
  net.heal();
  int sent = 0;
  net.drop_ = [&](const Message& m) {
    if (m.type != MsgType::kSnapshot) return false;
    return ++sent == 1;  // the first snapshot is lost on the way
  };
  net.tick_all(5);
  EXPECT_EQ(sent, 1);
  EXPECT_LT(net.node(f).commit_index(), snap.meta.index);
  net.tick_all(3 * kElection);
  EXPECT_GE(sent, 2);
  EXPECT_EQ(net.node(f).commit_index(), net.node(l).commit_index());
  EXPECT_EQ(net.node(f).first_index(), snap.meta.index + 1);
  EXPECT_EQ(net.node(f).applied_index(), net.node(l).commit_index());
  EXPECT_EQ(net.data_applied(f), std::vector<std::string>{"after-snap"});
}

// The agent keeps snapshot data in its file, not in Raft: after release_snapshot_data()
// the snapshot message carries the meta and empty data, for the shell to fill in.
TEST(RaftReview, ReleasedSnapshotDataIsNotSent) {
  Net net(3);
  int l = net.elect();
  int f = l % 3 + 1;
  net.isolate(f);
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(net.node(l).propose("v" + std::to_string(k)).ok());
  net.settle();
  Snapshot snap;
  snap.meta.index = net.node(l).applied_index();
  snap.meta.term = net.node(l).term();
  snap.meta.conf = net.node(l).conf();
  snap.data = std::make_shared<const std::string>("state");
  ASSERT_TRUE(net.node(l).compact(snap).ok());
  net.node(l).release_snapshot_data();
  net.heal();
  std::optional<Snapshot> seen;
  net.drop_ = [&](const Message& m) {
    if (m.type == MsgType::kSnapshot && m.snapshot && !seen) seen = *m.snapshot;
    return m.type == MsgType::kSnapshot;
  };
  net.tick_all(5);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->meta, snap.meta);
  ASSERT_TRUE(seen->data);
  EXPECT_EQ(*seen->data, "");
}

TEST(RaftReview, LearnerNeverCampaignsAndItsAcksAndVotesDoNotCount) {
  Net net(3, 5);
  int l = net.elect();
  ASSERT_NE(l, 0);
  net.add_empty(4);
  ASSERT_TRUE(
      net.node(l).propose_conf_change({ConfChangeType::kAddLearner, NodeId(4), ""}).ok());
  net.settle();
  net.tick_all(3);
  ASSERT_EQ(net.node(4).conf().learners, std::vector<NodeId>{NodeId(4)});
  EXPECT_EQ(net.node(4).conf(), net.node(l).conf());  // learned from the bootstrap entries
  // A learner told to campaign, or left alone for long, never does.
  Message tn = msg(MsgType::kTimeoutNow, l, 4, net.node(4).term());
  net.isolate(4);
  EXPECT_TRUE(net.node(4).step(tn).ok());
  net.node(4).campaign();
  for (int k = 0; k < 5 * kElection; ++k) net.node(4).tick();
  EXPECT_EQ(net.node(4).role(), StateRole::kFollower);
  net.heal();
  net.tick_all(3);
  // With both other voters away, the learner's acknowledgements do not make a quorum.
  net.isolate(l % 3 + 1);
  net.isolate((l + 1) % 3 + 1);
  LogIndex commit = net.node(l).commit_index();
  ASSERT_TRUE(net.node(l).propose("needs-a-voter").ok());
  net.settle();
  EXPECT_EQ(net.node(4).last_index(), net.node(l).last_index());
  EXPECT_EQ(net.node(l).commit_index(), commit);

  // A candidate does not count a learner's vote.
  SplitMix64 rng(2);
  Config c;
  c.id = NodeId(1);
  c.initial_conf = voters({1, 2, 3});
  c.initial_conf.learners = {NodeId(4)};
  c.pre_vote = false;
  Raft cand(c, rng);
  drain(cand);
  cand.campaign();
  drain(cand);
  ASSERT_EQ(cand.role(), StateRole::kCandidate);
  EXPECT_TRUE(cand.step(msg(MsgType::kVoteResp, 4, 1, cand.term())).ok());
  EXPECT_EQ(cand.role(), StateRole::kCandidate);
  EXPECT_TRUE(cand.step(msg(MsgType::kVoteResp, 3, 1, cand.term())).ok());
  EXPECT_EQ(cand.role(), StateRole::kLeader);
}

TEST(RaftReview, RemovedLeaderStepsDownAndTheRestCarryOn) {
  Net net(3, 7);
  int l = net.elect();
  ASSERT_NE(l, 0);
  ASSERT_TRUE(net.node(l).propose("a").ok());
  net.settle();
  ASSERT_TRUE(net.node(l).propose_conf_change({ConfChangeType::kRemoveNode, NodeId(l), ""}).ok());
  net.settle();
  EXPECT_NE(net.node(l).role(), StateRole::kLeader);
  EXPECT_EQ(net.node(l).conf().voters.size(), 2u);
  net.tick_all(6 * kElection);
  int l2 = net.leader();
  ASSERT_NE(l2, 0);
  EXPECT_NE(l2, l);
  for (int i = 1; i <= 3; ++i) {
    if (i != l) {
      EXPECT_EQ(net.node(i).conf().voters.size(), 2u) << i;
    }
  }
  ASSERT_TRUE(net.node(l2).propose("b").ok());
  net.settle();
  int other = 6 - l - l2;
  EXPECT_EQ(net.data_applied(other), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(net.node(l).role(), StateRole::kFollower);  // never campaigns again
}

TEST(RaftReview, VoteSurvivesARestart) {
  Net net(3, 1, [](Config& c) { c.pre_vote = false; });
  net.drop_ = [](const Message&) { return true; };  // hand delivery only
  Message v = msg(MsgType::kVote, 2, 1, Term(5));
  v.index = LogIndex(3);
  v.log_term = Term(1);
  ASSERT_TRUE(net.node(1).step(v).ok());
  net.settle();
  ASSERT_EQ(net.stored(1).hard_state.vote, NodeId(2));
  net.restart(1);
  ASSERT_EQ(net.node(1).term(), Term(5));
  net.wire_.clear();
  Message other = v;
  other.from = NodeId(3);
  ASSERT_TRUE(net.node(1).step(other).ok());
  net.process();
  bool granted = false;
  for (const Message& m : net.wire_) {
    if (m.type == MsgType::kVoteResp && m.to == NodeId(3) && !m.reject) granted = true;
  }
  EXPECT_FALSE(granted) << "voted twice in term 5";
}

TEST(RaftReview, PreVoteChangesNeitherTermNorVote) {
  SplitMix64 rng(1);
  Config c;
  c.id = NodeId(2);
  c.initial_conf = voters({1, 2, 3});
  Raft f(c, rng);
  drain(f);
  Message pv = msg(MsgType::kPreVote, 3, 2, Term(7));
  pv.index = LogIndex(3);
  pv.log_term = Term(1);
  ASSERT_TRUE(f.step(pv).ok());
  auto out = drain(f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MsgType::kPreVoteResp);
  EXPECT_FALSE(out[0].reject);
  EXPECT_EQ(out[0].term, Term(7));  // the term asked for
  EXPECT_EQ(f.term(), Term(1));
  // Not up to date: rejected with our own term.
  Message stale = pv;
  stale.log_term = Term(0);
  stale.index = LogIndex(0);
  ASSERT_TRUE(f.step(stale).ok());
  out = drain(f);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(out[0].term, Term(1));
}

}  // namespace
}  // namespace vigil::raft
