// Raft value types: entries, messages, hard state, snapshots and the Ready batch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"

namespace vigil::raft {

enum class EntryType : uint8_t {
  kNormal = 0,      // application data (may be empty: the no-op a new leader appends)
  kConfChange = 1,  // data is an encoded ConfChange
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;
  bool operator==(const Entry&) const = default;
};

// What must survive a restart besides the log (Raft §5.2, Figure 2).
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;
  bool operator==(const HardState&) const = default;
  bool empty() const { return term.v == 0 && vote.v == 0 && commit.v == 0; }
};

// Cluster membership. Voters elect and count toward quorum; learners only replicate.
// Vigil's witnesses are voters at this layer (they vote and hold no resources).
struct ConfState {
  std::vector<NodeId> voters;    // sorted, unique
  std::vector<NodeId> learners;  // sorted, unique, disjoint from voters
  bool operator==(const ConfState&) const = default;
};

enum class ConfChangeType : uint8_t {
  kAddVoter = 0,    // also promotes a learner
  kAddLearner = 1,  // also demotes a voter
  kRemoveNode = 2,
};

// One single-server membership change (Raft dissertation §4.1): one pending at a time.
struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node;
  std::string context;  // opaque to raft (e.g. the new node's address)
  bool operator==(const ConfChange&) const = default;
};

struct SnapshotMeta {
  LogIndex index;
  Term term;
  ConfState conf;
  bool operator==(const SnapshotMeta&) const = default;
};

// Application state up to meta.index. Data is shared: a leader sends the same snapshot
// to many followers without copying it.
struct Snapshot {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
  bool empty() const { return meta.index.v == 0; }
};

enum class MsgType : uint8_t {
  kPreVote = 0,
  kPreVoteResp,
  kVote,
  kVoteResp,
  kAppend,
  kAppendResp,
  kHeartbeat,
  kHeartbeatResp,
  kSnapshot,
  kTimeoutNow,      // leadership transfer: campaign now, skipping pre-vote and lease
  kReadIndex,       // follower → leader: please confirm leadership for this read
  kReadIndexResp,   // leader → follower: the read index (index 0 + reject: try again)
  kPropose,         // follower → leader: forwarded proposal entries
  kTransferLeader,  // follower → leader: please transfer to `from`
  kCount,
};

const char* msg_type_name(MsgType t);

// Whether a message of a Ready may be sent before that Ready is persisted (Raft thesis
// §10.2.1): a leader's appends, heartbeats and snapshots. The leader writes its log in
// parallel with the followers; it counts itself toward a commit only once its own entries
// are stable (advance()), so an entry is still committed only when a quorum has it on disk.
// Everything else (votes, append responses, read-index answers) must wait for the persist.
inline bool can_send_before_persist(MsgType t) {
  return t == MsgType::kAppend || t == MsgType::kHeartbeat || t == MsgType::kSnapshot;
}

struct Message {
  MsgType type = MsgType::kAppend;
  NodeId from;
  NodeId to;
  Term term;       // sender's term (0 for local/forwarded-only messages)
  Term log_term;   // term of entry at `index` (append), or of last entry (vote)
  LogIndex index;  // prev index (append), last index (vote), match (append resp)
  std::vector<Entry> entries;
  LogIndex commit;
  bool reject = false;
  LogIndex reject_hint;  // follower's last index when rejecting an append
  std::optional<Snapshot> snapshot;
  std::string context;      // read-index context, campaign kind, lease tick
  uint64_t lease_tick = 0;  // leader's tick when it sent a heartbeat; echoed in the reply
  // Holds (DESIGN.md "Holds"), filled in by the shell, not by Raft: the sender's monotonic
  // clock in ms when it sent the message, and, from a leader whose lease is valid, the
  // latest hold_sent it has received from the recipient (0: none). A follower's hold runs
  // from the send of a message the leader confirms it received.
  uint64_t hold_sent = 0;
  uint64_t hold_granted = 0;
};

enum class StateRole : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* role_name(StateRole r);

struct SoftState {
  NodeId leader;
  StateRole role = StateRole::kFollower;
  bool operator==(const SoftState&) const = default;
};

// A linearizable read is safe at `index` once the application has applied it.
struct ReadState {
  LogIndex index;
  std::string context;
};

// Everything the shell must do, in this order (see raft.h):
//   1. persist `snapshot` (if any), then `entries` and `hard_state`, fsync if must_sync;
//   2. send `messages` (only after 1 is durable, except those can_send_before_persist()
//      allows, which may go before 1);
//   3. apply `snapshot` then `committed_entries` to the state machine;
//   4. answer `read_states` once their index is applied;
//   5. call Raft::advance(ready).
struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> committed_entries;
  std::vector<Message> messages;
  std::vector<ReadState> read_states;
  bool must_sync = false;
};

}  // namespace vigil::raft
