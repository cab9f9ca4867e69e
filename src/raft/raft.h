// Raft: the pure consensus core. No I/O, no clock, no threads: tick/step/propose in,
// Ready out (in the style of etcd's raft package).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/rng.h"
#include "base/status.h"
#include "raft/types.h"

namespace vigil::raft {

struct Config {
  NodeId id;
  // Membership of a brand-new cluster (ignored when the restored state has a snapshot).
  ConfState initial_conf;
  // Ticks without hearing from a leader before a follower campaigns; the actual timeout
  // is randomized in [election_tick, 2 * election_tick). Must be > heartbeat_tick.
  int election_tick = 10;
  // Ticks between leader heartbeats.
  int heartbeat_tick = 1;
  // Pre-vote (Raft dissertation §9.6): a partitioned node does not bump terms on return.
  bool pre_vote = true;
  // Check-quorum: a leader that has not heard from a quorum in an election timeout steps
  // down; nodes that heard from a leader within the election timeout (or restarted within
  // it) ignore votes and do not campaign. Required on every node for the leader lease.
  bool check_quorum = true;
  // Flow control: bytes of entries per append message, append messages in flight per
  // peer, and bytes in flight per peer (0 = unlimited).
  uint64_t max_size_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 32ull << 20;
  // Proposals rejected with kResourceExhausted once uncommitted bytes exceed this (0 = off).
  uint64_t max_uncommitted_bytes = 256ull << 20;
  // Test-only: break Raft §5.4.2 by committing previous-term entries by counting replicas,
  // so tests can prove the simulator's checkers catch a real safety bug.
  bool unsafe_commit_previous_term_for_test = false;
};

// State read back from storage at start-up. Empty for a brand-new node.
struct Restored {
  HardState hard_state;
  Snapshot snapshot;           // may be empty
  std::vector<Entry> entries;  // contiguous, starting at snapshot.meta.index + 1
  // Index the state machine already has (>= snapshot index). Entries up to it count as
  // committed even if hard_state.commit lags (commit-only changes are not synced), and the
  // membership changes among them are replayed from `entries`, since they are not handed
  // out again.
  LogIndex applied;
};

// Replication progress of one peer, as the leader sees it (for status and tests).
struct PeerProgress {
  NodeId id;
  LogIndex match;
  LogIndex next;
  bool is_learner = false;
  bool recent_active = false;
  const char* state = "probe";  // probe | replicate | snapshot
};

// Raft owns the in-memory log (entries after the latest snapshot), the membership and the
// per-peer progress. One owner, one thread. Usage:
//
//   raft.tick() every tick interval; raft.step(m) for every received message;
//   raft.propose(data) for client writes;
//   while (raft.has_ready()) { Ready rd = raft.ready(); <do rd, see types.h>; raft.advance(rd); }
//
// Committed kConfChange entries must be handed back through apply_conf_change() when the
// application applies them. Snapshots taken by the application are handed to compact().
class Raft {
 public:
  Raft(const Config& config, Rng& rng, Restored restored = {});
  ~Raft();
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  // Advances the logical clock by one tick.
  void tick();
  // Processes a message from a peer. Messages from nodes outside the configuration are
  // processed (a joining node hears from a leader it does not know yet); a leader ignores
  // replies from non-members and a candidate counts only voters' votes.
  // Errors: kInvalidArgument, and the message is dropped without any effect, for a message
  // not addressed to this node, from node 0 or from this node, or that no correct peer
  // sends: append entries that do not follow `index` contiguously or whose terms decrease or
  // exceed the sender's, a snapshot message without a snapshot, an append response past the
  // leader's log, a heartbeat response echoing a tick the leader has not reached.
  Status step(const Message& m);

  // Appends data to the log if this node is leader, or forwards it to a known leader.
  // Errors: kUnavailable (no leader known), kResourceExhausted (too many uncommitted bytes),
  // kAborted (leadership transfer in progress). Success means "accepted", not committed.
  // (A forwarded kPropose carrying a membership change is checked as propose_conf_change()
  // checks it: kInvalidArgument if it does not decode or is impossible.)
  Status propose(std::string data);
  // Proposes one membership change. Errors as propose(), plus kUnavailable while another
  // change is pending (not yet applied) and kInvalidArgument for an impossible change.
  Status propose_conf_change(const ConfChange& cc);
  // Applies a committed membership change; returns the new configuration.
  ConfState apply_conf_change(const ConfChange& cc);

  // Requests a linearizable read point; answered by a ReadState carrying `context` in a
  // later Ready (dropped silently if leadership is lost: the caller times out and retries).
  void read_index(std::string context);
  // Hands leadership to `target` once it is caught up (Raft dissertation §3.10). Proposals
  // are refused (kAborted) until it completes or is abandoned after an election timeout;
  // abandoned after TimeoutNow was sent, it also ends this leader's term (see the lease).
  Status transfer_leadership(NodeId target);
  // Starts an election now (as if the election timeout elapsed). Ignored by a leader, by a
  // node that cannot be elected (learner, removed, installing a snapshot) and, with
  // check_quorum, inside a lease: within election_tick ticks of hearing from the leader or of
  // a restart, this node promised not to vote, for itself included (see lease_expiry_tick).
  // To move leadership on purpose, use transfer_leadership().
  void campaign();

  // The application took a snapshot of its state at snap.meta.index (which it has applied).
  // Entries up to that index are dropped from memory; the snapshot is kept to send to
  // followers that fall behind. Errors: kOutOfRange if the index is not applied or is older
  // than the current snapshot.
  Status compact(Snapshot snap);

  // The application keeps the current snapshot's data durable and can produce it on demand
  // (the agent reads it back from its snapshot file): Raft drops its in-memory copy. From
  // then on kSnapshot messages carry the meta and an empty data string, and the application
  // must attach the data before it sends them. A snapshot still waiting to be persisted
  // (in Ready) keeps its data until advance(). A snapshot given to compact() or restored
  // without data needs the same.
  void release_snapshot_data();

  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);

  // Introspection.
  NodeId id() const;
  NodeId leader() const;
  Term term() const;
  StateRole role() const;
  LogIndex commit_index() const;
  LogIndex applied_index() const;
  LogIndex first_index() const;
  LogIndex last_index() const;
  const ConfState& conf() const;
  uint64_t now_tick() const;
  // Leader lease: the tick until which no other leader can have been elected, measured from
  // when this leader *sent* the heartbeats a quorum acknowledged. nullopt when not leader,
  // without check_quorum, with no quorum acknowledgement in this term yet, or once this
  // leader has sent TimeoutNow. Valid while now_tick() < *lease_expiry_tick().
  //
  // Why it holds (dissertation §4.2.3, §6.4.1): a voter that acknowledged a heartbeat sent
  // at tick t neither votes nor campaigns until it has counted election_tick of its own
  // ticks, which can take as little as election_tick - 1 tick periods (its first tick may
  // follow at once); so the lease ends at t + election_tick - 1. It assumes:
  //  - every node runs with check_quorum and the same election_tick;
  //  - every node's tick lasts as long as the leader's. With clocks that drift by up to a
  //    factor (1 + d), the caller must end the lease earlier: at
  //    t + (election_tick - 1) / (1 + d) of the leader's ticks (holds use d = 1 %);
  //  - a restarted node forgets when it last heard from a leader, so for election_tick ticks
  //    after it starts from persisted state it keeps the promise anyway (no votes, no
  //    campaign). A restart that wipes the disk is a new node and breaks this.
  //  - leadership transfer is the one bypass: votes for a TimeoutNow campaign ignore the
  //    promise. So the lease ends for good in a term once TimeoutNow is sent (a delayed one
  //    may arrive at any time), and a leader whose transfer is abandoned after TimeoutNow
  //    steps down, so that the next term can hold a sound lease again.
  std::optional<uint64_t> lease_expiry_tick() const;
  bool lease_valid() const;
  std::vector<PeerProgress> progress() const;
  // Entries in [lo, hi) still held in memory (for tests and the sim).
  std::vector<Entry> entries_for_test(LogIndex lo, LogIndex hi) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::raft
