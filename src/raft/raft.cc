// Raft consensus core (Ongaro & Ousterhout 2014; Ongaro's dissertation 2014). Pure: no I/O.
#include "raft/raft.h"

#include <algorithm>
#include <deque>
#include <set>

#include "base/check.h"
#include "raft/codec.h"

namespace vigil::raft {

const char* msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kPreVote: return "PreVote";
    case MsgType::kPreVoteResp: return "PreVoteResp";
    case MsgType::kVote: return "Vote";
    case MsgType::kVoteResp: return "VoteResp";
    case MsgType::kAppend: return "Append";
    case MsgType::kAppendResp: return "AppendResp";
    case MsgType::kHeartbeat: return "Heartbeat";
    case MsgType::kHeartbeatResp: return "HeartbeatResp";
    case MsgType::kSnapshot: return "Snapshot";
    case MsgType::kTimeoutNow: return "TimeoutNow";
    case MsgType::kReadIndex: return "ReadIndex";
    case MsgType::kReadIndexResp: return "ReadIndexResp";
    case MsgType::kPropose: return "Propose";
    case MsgType::kTransferLeader: return "TransferLeader";
    case MsgType::kCount: break;
  }
  return "?";
}

const char* role_name(StateRole r) {
  switch (r) {
    case StateRole::kFollower: return "follower";
    case StateRole::kPreCandidate: return "pre-candidate";
    case StateRole::kCandidate: return "candidate";
    case StateRole::kLeader: return "leader";
  }
  return "?";
}

namespace {

constexpr char kCampaignTransfer[] = "transfer";

uint64_t entry_bytes(const Entry& e) { return e.data.size() + 24; }

bool contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

void insert_sorted(std::vector<NodeId>* v, NodeId id) {
  if (!contains(*v, id)) {
    v->push_back(id);
    std::sort(v->begin(), v->end());
  }
}

void erase_id(std::vector<NodeId>* v, NodeId id) {
  v->erase(std::remove(v->begin(), v->end(), id), v->end());
}

// Replication state of one peer as the leader tracks it (etcd's Progress, simplified).
struct Progress {
  enum class State { kProbe, kReplicate, kSnapshot };
  LogIndex match;
  LogIndex next{1};
  State state = State::kProbe;
  bool probe_sent = false;        // in probe: one append in flight, wait for its answer
  LogIndex pending_snapshot;      // in snapshot: index of the snapshot sent
  uint64_t snapshot_sent_tick = 0;
  bool recent_active = false;     // heard from within the current election timeout
  bool is_learner = false;
  uint64_t acked_lease_tick = 0;  // latest heartbeat send tick this peer acknowledged
  std::deque<std::pair<LogIndex, uint64_t>> inflight;  // (last index, bytes) per append
  uint64_t inflight_bytes = 0;

  void become_probe() {
    // After a snapshot, resume from just past it; otherwise from just past match.
    if (state == State::kSnapshot) {
      next = std::max(match, pending_snapshot) + 1;
    } else {
      next = match + 1;
    }
    state = State::kProbe;
    probe_sent = false;
    pending_snapshot = LogIndex(0);
    clear_inflight();
  }
  void become_replicate() {
    state = State::kReplicate;
    next = match + 1;
    probe_sent = false;
    clear_inflight();
  }
  void become_snapshot(LogIndex index, uint64_t tick) {
    state = State::kSnapshot;
    pending_snapshot = index;
    snapshot_sent_tick = tick;
    probe_sent = false;
    clear_inflight();
  }
  void clear_inflight() {
    inflight.clear();
    inflight_bytes = 0;
  }
  // Returns false if the update is stale.
  bool maybe_update(LogIndex n) {
    bool updated = false;
    if (match < n) {
      match = n;
      updated = true;
      probe_sent = false;
    }
    if (next < n + 1) next = n + 1;
    return updated;
  }
  // Handles a rejected append of prev index `rejected`; `hint` is the follower's guess of
  // the last index that may match. Returns false if the rejection is stale.
  bool maybe_decr_to(LogIndex rejected, LogIndex hint) {
    if (state == State::kReplicate) {
      if (rejected <= match) return false;
      next = match + 1;
      return true;
    }
    if (next - 1 != rejected) return false;
    next = std::max(std::min(rejected, hint + 1), match + 1);
    if (next.v < 1) next = LogIndex(1);
    probe_sent = false;
    return true;
  }
  void free_le(LogIndex index) {
    while (!inflight.empty() && inflight.front().first <= index) {
      inflight_bytes -= inflight.front().second;
      inflight.pop_front();
    }
  }
  bool inflight_full(const Config& c) const {
    return inflight.size() >= c.max_inflight_msgs ||
           (c.max_inflight_bytes > 0 && inflight_bytes >= c.max_inflight_bytes);
  }
  bool paused(const Config& c) const {
    switch (state) {
      case State::kProbe: return probe_sent;
      case State::kReplicate: return inflight_full(c);
      case State::kSnapshot: return true;
    }
    return true;
  }
  const char* state_name() const {
    switch (state) {
      case State::kProbe: return "probe";
      case State::kReplicate: return "replicate";
      case State::kSnapshot: return "snapshot";
    }
    return "?";
  }
};

// A ReadIndex request waiting for a quorum to confirm this node is still leader
// (Raft dissertation §6.4).
struct PendingRead {
  uint64_t seq = 0;        // heartbeat context identifying this read
  LogIndex index;          // commit index when the read arrived
  NodeId from;             // requester (this node or a follower)
  std::string context;     // the requester's context, echoed in the ReadState
  std::set<NodeId> acks;
};

}  // namespace

class Raft::Impl {
 public:
  Impl(const Config& config, Rng& rng, Restored restored) : cfg_(config), rng_(rng) {
    CHECK(cfg_.id != kNoNode);
    CHECK(cfg_.heartbeat_tick > 0);
    CHECK(cfg_.election_tick > cfg_.heartbeat_tick);
    id_ = cfg_.id;
    snapshot_ = std::move(restored.snapshot);
    if (!snapshot_.data) snapshot_.data = std::make_shared<const std::string>();
    conf_ = snapshot_.empty() ? cfg_.initial_conf : snapshot_.meta.conf;
    std::sort(conf_.voters.begin(), conf_.voters.end());
    std::sort(conf_.learners.begin(), conf_.learners.end());
    log_ = std::move(restored.entries);
    const bool brand_new = restored.hard_state.empty() && snapshot_.empty() && log_.empty();
    if (brand_new && !conf_.voters.empty()) {
      // Bootstrap: the initial membership becomes committed entries at term 1, identical on
      // every founding member, so a node that joins later learns it from the log.
      auto add = [&](NodeId id, ConfChangeType type) {
        Entry e;
        e.term = Term(1);
        e.index = LogIndex(log_.size() + 1);
        e.type = EntryType::kConfChange;
        e.data = encode_conf_change(ConfChange{type, id, ""});
        log_.push_back(std::move(e));
      };
      for (NodeId v : conf_.voters) add(v, ConfChangeType::kAddVoter);
      for (NodeId l : conf_.learners) add(l, ConfChangeType::kAddLearner);
      restored.hard_state = HardState{Term(1), kNoNode, LogIndex(log_.size())};
    }
    for (size_t i = 0; i < log_.size(); ++i) {
      CHECK(log_[i].index == snapshot_.meta.index + (i + 1));
    }
    stable_ = brand_new ? LogIndex(0) : last_index();
    restarted_ = !brand_new;
    term_ = restored.hard_state.term;
    vote_ = restored.hard_state.vote;
    committed_ = std::min(restored.hard_state.commit, last_index());
    committed_ = std::max(committed_, snapshot_.meta.index);
    applied_ = std::max(restored.applied, snapshot_.meta.index);
    CHECK(applied_ <= last_index());  // the state machine cannot be ahead of the log
    // What the state machine applied was committed, even if the synced commit index lags
    // (commit-only hard states are not synced).
    committed_ = std::max(committed_, applied_);
    // Membership changes applied after the snapshot will not be handed out again: redo them.
    for (LogIndex i = snapshot_.meta.index + 1; i <= applied_; ++i) {
      const Entry& e = entry(i);
      if (e.type != EntryType::kConfChange) continue;
      auto cc = decode_conf_change(e.data);
      CHECK(cc.has_value());  // a committed entry we wrote ourselves
      apply_to_conf(*cc);
    }
    applying_ = applied_;
    prev_hard_ = brand_new ? HardState{} : HardState{term_, vote_, committed_};
    rebuild_progress();
    become_follower(term_, kNoNode);
    prev_soft_ = SoftState{leader_, role_};
  }

  // ---------------------------------------------------------------- log helpers
  LogIndex snap_index() const { return snapshot_.meta.index; }
  LogIndex first_index() const { return snap_index() + 1; }
  LogIndex last_index() const { return snap_index() + log_.size(); }
  std::optional<Term> term_at(LogIndex i) const {
    if (i == snap_index()) return snapshot_.meta.term;
    if (i < snap_index() || i > last_index()) return std::nullopt;
    return log_[i - snap_index() - 1].term;
  }
  Term last_term() const { return *term_at(last_index()); }
  bool match_term(LogIndex i, Term t) const {
    auto lt = term_at(i);
    return lt && *lt == t;
  }
  const Entry& entry(LogIndex i) const { return log_[i - snap_index() - 1]; }
  bool up_to_date(Term lterm, LogIndex lindex) const {
    return lterm > last_term() || (lterm == last_term() && lindex >= last_index());
  }
  // Drops entries from index `from` on (a conflicting suffix).
  void truncate_from(LogIndex from) {
    CHECK(from > committed_);  // Raft §5.3: committed entries are never overwritten
    log_.resize(from - snap_index() - 1);
    if (stable_ >= from) stable_ = from - 1;
  }
  void append_entries(std::vector<Entry> entries) {
    for (auto& e : entries) {
      CHECK(e.index == last_index() + 1);
      log_.push_back(std::move(e));
    }
  }
  // Largest index <= index whose term is <= term (for the fast rejection hint).
  LogIndex find_conflict_by_term(LogIndex index, Term term) const {
    LogIndex i = std::min(index, last_index());
    while (i > snap_index()) {
      auto t = term_at(i);
      if (t && *t <= term) break;
      i = i - 1;
    }
    return i;
  }

  bool is_voter(NodeId id) const { return contains(conf_.voters, id); }
  bool promotable() const { return is_voter(id_) && !pending_snapshot_; }
  size_t quorum() const { return conf_.voters.size() / 2 + 1; }

  void rebuild_progress() {
    std::map<NodeId, Progress> old = std::move(prs_);
    prs_.clear();
    auto add = [&](NodeId id, bool learner) {
      auto it = old.find(id);
      Progress pr = it != old.end() ? it->second : Progress{};
      if (it == old.end()) {
        pr.next = last_index() + 1;
        pr.recent_active = true;  // a new member gets a full timeout before it counts
      }
      pr.is_learner = learner;
      prs_[id] = pr;
    };
    for (NodeId v : conf_.voters) add(v, false);
    for (NodeId l : conf_.learners) add(l, true);
  }

  // ---------------------------------------------------------------- role changes
  void reset(Term term) {
    if (term_ != term) {
      term_ = term;
      vote_ = kNoNode;
    }
    leader_ = kNoNode;
    election_elapsed_ = 0;
    heartbeat_elapsed_ = 0;
    randomized_election_timeout_ =
        cfg_.election_tick + static_cast<int>(rng_.uniform(0, cfg_.election_tick - 1));
    lead_transferee_ = kNoNode;
    timeout_now_sent_ = false;
    votes_.clear();
    for (auto& [id, pr] : prs_) {
      Progress fresh;
      fresh.is_learner = pr.is_learner;
      fresh.next = last_index() + 1;
      if (id == id_) fresh.match = stable_;
      pr = fresh;
    }
    pending_conf_index_ = LogIndex(0);
    pending_reads_.clear();
    pending_read_msgs_.clear();
    uncommitted_bytes_ = 0;
  }

  void become_follower(Term term, NodeId lead) {
    reset(term);
    role_ = StateRole::kFollower;
    leader_ = lead;
  }
  void become_pre_candidate() {
    CHECK(role_ != StateRole::kLeader);
    // Pre-vote does not change the term or the vote (dissertation §9.6).
    votes_.clear();
    leader_ = kNoNode;
    role_ = StateRole::kPreCandidate;
  }
  void become_candidate() {
    CHECK(role_ != StateRole::kLeader);
    reset(term_ + 1);
    vote_ = id_;
    role_ = StateRole::kCandidate;
  }
  void become_leader() {
    CHECK(role_ == StateRole::kCandidate);
    reset(term_);
    role_ = StateRole::kLeader;
    leader_ = id_;
    for (auto& [id, pr] : prs_) pr.recent_active = true;
    // A no-op entry of the new term lets the leader commit everything before it (§5.4.2).
    Entry e;
    e.term = term_;
    e.index = last_index() + 1;
    log_.push_back(std::move(e));
    // No membership change until an entry of this term is applied (the single-server
    // change fix, Ongaro's raft-dev post of 2015).
    pending_conf_index_ = last_index();
    first_proposal_index_ = last_index() + 1;
    broadcast_append();
    // And a heartbeat at once: the lease (lease_expiry_tick) counts only acknowledged
    // heartbeats, and holds rest on it, so it is established one round trip after the
    // election rather than at the first heartbeat tick.
    broadcast_heartbeat(0);
  }

  void campaign(bool pre, bool transfer) {
    // A leader ignores "campaign now" (as etcd ignores MsgHup on a leader).
    if (!promotable() || role_ == StateRole::kLeader) return;
    Term vote_term;
    MsgType type;
    if (pre) {
      become_pre_candidate();
      vote_term = term_ + 1;
      type = MsgType::kPreVote;
    } else {
      become_candidate();
      vote_term = term_;
      type = MsgType::kVote;
    }
    if (poll(id_, true) == VoteResult::kWon) {
      if (pre) {
        campaign(false, transfer);
      } else {
        become_leader();
      }
      return;
    }
    for (NodeId v : conf_.voters) {
      if (v == id_) continue;
      Message m;
      m.type = type;
      m.to = v;
      m.term = vote_term;
      m.index = last_index();
      m.log_term = last_term();
      if (transfer) m.context = kCampaignTransfer;
      send(std::move(m));
    }
  }

  enum class VoteResult { kPending, kWon, kLost };
  VoteResult poll(NodeId from, bool granted) {
    if (!is_voter(from)) return VoteResult::kPending;
    votes_.emplace(from, granted);
    size_t yes = 0, no = 0;
    for (auto& [id, g] : votes_) {
      if (!is_voter(id)) continue;
      (g ? yes : no)++;
    }
    if (yes >= quorum()) return VoteResult::kWon;
    if (no >= quorum()) return VoteResult::kLost;
    return VoteResult::kPending;
  }

  // ---------------------------------------------------------------- sending
  void send(Message m) {
    m.from = id_;
    // Votes carry their own term; local-forwarded messages carry 0.
    if (m.type != MsgType::kPreVote && m.type != MsgType::kVote &&
        m.type != MsgType::kPreVoteResp && m.type != MsgType::kVoteResp &&
        m.type != MsgType::kPropose && m.type != MsgType::kReadIndex &&
        m.type != MsgType::kTransferLeader) {
      m.term = term_;
    }
    msgs_.push_back(std::move(m));
  }

  // Sends entries (or a snapshot) to `to` if its progress allows. Returns true if sent.
  bool send_append(NodeId to, bool send_if_empty = true) {
    auto it = prs_.find(to);
    if (it == prs_.end()) return false;
    Progress& pr = it->second;
    if (pr.paused(cfg_)) return false;
    LogIndex prev = pr.next - 1;
    auto prev_term = term_at(prev);
    if (!prev_term) {
      // The entries the peer needs were compacted: send the snapshot (§7).
      if (snapshot_.empty()) return false;
      Message m;
      m.type = MsgType::kSnapshot;
      m.to = to;
      m.snapshot = snapshot_;
      pr.become_snapshot(snap_index(), now_tick_);
      send(std::move(m));
      return true;
    }
    Message m;
    m.type = MsgType::kAppend;
    m.to = to;
    m.index = prev;
    m.log_term = *prev_term;
    m.commit = committed_;
    uint64_t bytes = 0;
    for (LogIndex i = pr.next; i <= last_index(); ++i) {
      const Entry& e = entry(i);
      if (!m.entries.empty() && bytes + entry_bytes(e) > cfg_.max_size_per_msg) break;
      bytes += entry_bytes(e);
      m.entries.push_back(e);
    }
    if (m.entries.empty() && !send_if_empty) return false;
    if (!m.entries.empty()) {
      LogIndex last = m.entries.back().index;
      if (pr.state == Progress::State::kReplicate) {
        pr.next = last + 1;  // optimistic: pipeline the next append (§10.2.1)
        pr.inflight.emplace_back(last, bytes);
        pr.inflight_bytes += bytes;
      } else {
        pr.probe_sent = true;
      }
    } else if (pr.state == Progress::State::kProbe) {
      pr.probe_sent = true;
    }
    send(std::move(m));
    return true;
  }

  void broadcast_append() {
    for (auto& [id, pr] : prs_) {
      if (id != id_) send_append(id);
    }
  }

  void broadcast_heartbeat(uint64_t read_seq) {
    for (auto& [id, pr] : prs_) {
      if (id == id_) continue;
      Message m;
      m.type = MsgType::kHeartbeat;
      m.to = id;
      // Never tell a follower to commit past what it is known to hold.
      m.commit = std::min(pr.match, committed_);
      m.lease_tick = now_tick_;
      if (read_seq != 0) m.context = std::to_string(read_seq);
      send(std::move(m));
    }
  }

  // ---------------------------------------------------------------- commit
  bool maybe_commit() {
    std::vector<LogIndex> matches;
    for (NodeId v : conf_.voters) {
      auto it = prs_.find(v);
      if (it == prs_.end()) continue;
      matches.push_back(v == id_ ? stable_ : it->second.match);
    }
    if (matches.size() < quorum()) return false;
    std::sort(matches.begin(), matches.end(), std::greater<>());
    LogIndex mci = matches[quorum() - 1];
    if (mci <= committed_) return false;
    // Raft §5.4.2: only entries of the current term are committed by counting replicas.
    if (!cfg_.unsafe_commit_previous_term_for_test && *term_at(mci) != term_) return false;
    commit_to(mci);
    return true;
  }

  void commit_to(LogIndex index) {
    if (index <= committed_) return;
    CHECK(index <= last_index());
    if (role_ == StateRole::kLeader) {
      // Only proposals of this term were counted; earlier entries must not cancel them.
      for (LogIndex i = std::max(committed_ + 1, first_proposal_index_); i <= index; ++i) {
        uint64_t b = entry_bytes(entry(i));
        uncommitted_bytes_ = uncommitted_bytes_ > b ? uncommitted_bytes_ - b : 0;
      }
    }
    committed_ = index;
    if (role_ == StateRole::kLeader && committed_entry_in_current_term()) {
      release_pending_read_msgs();
    }
  }

  bool committed_entry_in_current_term() const {
    auto t = term_at(committed_);
    return t && *t == term_;
  }

  // ---------------------------------------------------------------- ticks
  void tick() {
    ++now_tick_;
    if (role_ == StateRole::kLeader) {
      tick_heartbeat();
    } else {
      tick_election();
    }
  }

  void tick_election() {
    ++election_elapsed_;
    if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
      election_elapsed_ = 0;
      campaign(cfg_.pre_vote, false);
    }
  }

  void tick_heartbeat() {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    if (election_elapsed_ >= cfg_.election_tick) {
      election_elapsed_ = 0;
      if (cfg_.check_quorum) {
        size_t active = 0;
        for (NodeId v : conf_.voters) {
          auto it = prs_.find(v);
          if (v == id_ || (it != prs_.end() && it->second.recent_active)) ++active;
        }
        for (auto& [id, pr] : prs_) {
          if (id != id_) pr.recent_active = false;
        }
        if (active < quorum()) {
          become_follower(term_, kNoNode);
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned (§3.10).
      lead_transferee_ = kNoNode;
      if (timeout_now_sent_) {
        // The target may still campaign on that TimeoutNow, past every lease: this term has
        // no sound lease left, so end it rather than lead on without one.
        become_follower(term_, kNoNode);
        return;
      }
    }
    // A snapshot that got no answer for a while is presumed lost: probe again.
    for (auto& [id, pr] : prs_) {
      if (pr.state == Progress::State::kSnapshot &&
          now_tick_ - pr.snapshot_sent_tick >= static_cast<uint64_t>(2 * cfg_.election_tick)) {
        pr.become_probe();
      }
    }
    if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
      heartbeat_elapsed_ = 0;
      broadcast_heartbeat(0);
    }
  }

  // ---------------------------------------------------------------- step
  // Structural checks of a peer message, before it can change any state. The decoder
  // guarantees only that the fields are well-typed; a buggy or hostile peer can still send
  // what no correct node would, and the core must drop it rather than CHECK-fail on it.
  Status validate(const Message& m) const {
    if (m.to != id_) return err(Errc::kInvalidArgument, "message addressed to another node");
    if (m.type >= MsgType::kCount) return err(Errc::kInvalidArgument, "unknown message type");
    if (is_local(m.type)) return Status();
    if (m.from == kNoNode || m.from == id_) {
      return err(Errc::kInvalidArgument, std::string(msg_type_name(m.type)) +
                                             " from node " + m.from.str() + " (self or none)");
    }
    switch (m.type) {
      case MsgType::kAppend: {
        // Raft §5.3: the entries follow `index` without a gap, their terms never decrease,
        // start at or after log_term and never exceed the sender's term.
        Term prev_term = m.log_term;
        for (size_t k = 0; k < m.entries.size(); ++k) {
          const Entry& e = m.entries[k];
          if (e.index != m.index + (k + 1) || e.index.v == 0) {
            return err(Errc::kInvalidArgument,
                       "append: entries[" + std::to_string(k) + "] has index " + e.index.str() +
                           ", expected " + (m.index + (k + 1)).str());
          }
          if (e.term < prev_term || e.term > m.term) {
            return err(Errc::kInvalidArgument,
                       "append: entries[" + std::to_string(k) + "] has term " + e.term.str() +
                           " outside [" + prev_term.str() + ", " + m.term.str() + "]");
          }
          prev_term = e.term;
        }
        return Status();
      }
      case MsgType::kSnapshot:
        if (!m.snapshot) return err(Errc::kInvalidArgument, "snapshot message without snapshot");
        if (m.snapshot->meta.term > m.term) {
          return err(Errc::kInvalidArgument, "snapshot of term " + m.snapshot->meta.term.str() +
                                                 " from a sender at term " + m.term.str());
        }
        return Status();
      default:
        return Status();
    }
  }

  static bool is_local(MsgType t) {
    return t == MsgType::kPropose || t == MsgType::kReadIndex || t == MsgType::kTransferLeader;
  }

  // Dissertation §4.2.3: a node that heard from a leader within the minimum election timeout
  // neither grants a vote nor starts an election. The leader lease rests on this promise, so
  // it also covers a node that restarted within an election timeout: it may have
  // acknowledged a heartbeat just before it went down, and forgot that it did.
  bool in_lease() const {
    if (!cfg_.check_quorum) return false;
    if (leader_ != kNoNode && election_elapsed_ < cfg_.election_tick) return true;
    return restarted_ && now_tick_ < static_cast<uint64_t>(cfg_.election_tick);
  }

  Status step(const Message& m) {
    RETURN_IF_ERROR(validate(m));
    const bool local = is_local(m.type);
    if (!local) {
      if (m.term > term_) {
        if (m.type == MsgType::kPreVote || m.type == MsgType::kVote) {
          const bool force = m.context == kCampaignTransfer;
          // A node that hears from a live leader ignores campaigns (dissertation §4.2.3).
          if (!force && in_lease()) return Status();
        }
        if (m.type == MsgType::kPreVote) {
          // Pre-votes never change our term.
        } else if (m.type == MsgType::kPreVoteResp && !m.reject) {
          // The term in a granted pre-vote is the one we asked for; adopt it only if elected.
        } else if (m.type == MsgType::kAppend || m.type == MsgType::kHeartbeat ||
                   m.type == MsgType::kSnapshot) {
          become_follower(m.term, m.from);
        } else {
          become_follower(m.term, kNoNode);
        }
      } else if (m.term < term_) {
        if ((cfg_.check_quorum || cfg_.pre_vote) &&
            (m.type == MsgType::kHeartbeat || m.type == MsgType::kAppend)) {
          // A stale leader learns the new term and steps down; without this, a node
          // partitioned with pre-vote could never disturb it and it would never learn.
          Message r;
          r.type = MsgType::kAppendResp;
          r.to = m.from;
          send(std::move(r));
        } else if (m.type == MsgType::kPreVote) {
          Message r;
          r.type = MsgType::kPreVoteResp;
          r.to = m.from;
          r.term = term_;
          r.reject = true;
          send(std::move(r));
        }
        return Status();
      }
    }

    switch (m.type) {
      case MsgType::kPreVote:
      case MsgType::kVote: {
        const bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) ||
                              (m.type == MsgType::kPreVote && m.term > term_);
        Message r;
        r.type = m.type == MsgType::kVote ? MsgType::kVoteResp : MsgType::kPreVoteResp;
        r.to = m.from;
        if (can_vote && up_to_date(m.log_term, m.index)) {
          // A granted pre-vote carries the term asked for; a vote carries ours (== m.term).
          r.term = m.term;
          if (m.type == MsgType::kVote) {
            election_elapsed_ = 0;
            vote_ = m.from;
          }
        } else {
          r.term = term_;
          r.reject = true;
        }
        send(std::move(r));
        return Status();
      }
      default:
        break;
    }

    switch (role_) {
      case StateRole::kLeader: return step_leader(m);
      case StateRole::kPreCandidate:
      case StateRole::kCandidate: return step_candidate(m);
      case StateRole::kFollower: return step_follower(m);
    }
    return Status();
  }

  // Checks that a membership change is possible from the current configuration. Proposals
  // forwarded by peers pass here too, not only those of propose_conf_change().
  Status check_conf_change(const ConfChange& cc) const {
    if (cc.node == kNoNode) return err(Errc::kInvalidArgument, "membership change without node");
    if (cc.type != ConfChangeType::kAddVoter && is_voter(cc.node) && conf_.voters.size() == 1) {
      return err(Errc::kInvalidArgument, "cannot remove or demote the last voter");
    }
    return Status();
  }

  Status append_proposal(std::vector<Entry> entries) {
    for (const Entry& e : entries) {
      if (e.type != EntryType::kConfChange) continue;
      auto cc = decode_conf_change(e.data);
      if (!cc) return cc.error().with_context("proposed membership change");
      RETURN_IF_ERROR(check_conf_change(*cc));
    }
    if (lead_transferee_ != kNoNode) {
      return err(Errc::kAborted, "leadership transfer in progress");
    }
    if (!prs_.count(id_)) return err(Errc::kUnavailable, "this node was removed");
    uint64_t bytes = 0;
    for (auto& e : entries) bytes += entry_bytes(e);
    if (cfg_.max_uncommitted_bytes > 0 && uncommitted_bytes_ > 0 &&
        uncommitted_bytes_ + bytes > cfg_.max_uncommitted_bytes) {
      return err(Errc::kResourceExhausted, "too many uncommitted bytes on the leader");
    }
    for (auto& e : entries) {
      if (e.type == EntryType::kConfChange) {
        if (pending_conf_index_ > applied_) {
          // Only one membership change at a time: drop this one (make it a no-op).
          e.type = EntryType::kNormal;
          e.data.clear();
        } else {
          pending_conf_index_ = last_index() + 1;
        }
      }
      e.term = term_;
      e.index = last_index() + 1;
      // Count what is appended (a dropped change lost its data), as commit_to() releases it.
      uncommitted_bytes_ += entry_bytes(e);
      log_.push_back(std::move(e));
    }
    broadcast_append();
    return Status();
  }

  Status step_leader(const Message& m) {
    switch (m.type) {
      case MsgType::kPropose:
        return append_proposal(m.entries);
      case MsgType::kReadIndex: {
        if (!committed_entry_in_current_term()) {
          // Wait until the no-op of this term commits (dissertation §6.4 step 1). A single
          // voter waits too: after a restart its commit index may lag what it had committed
          // (commit-only hard states are not synced) and what clients saw applied.
          pending_read_msgs_.push_back(m);
          return Status();
        }
        if (conf_.voters.size() == 1 && is_voter(id_)) {
          answer_read(m.from, committed_, m.context);
          return Status();
        }
        start_read(m.from, m.context);
        return Status();
      }
      case MsgType::kTransferLeader:
        return handle_transfer(m.from);
      default:
        break;
    }
    auto it = prs_.find(m.from);
    if (it == prs_.end()) return Status();  // not a member: ignore
    Progress& pr = it->second;
    switch (m.type) {
      case MsgType::kAppendResp: {
        // In this term our log only grows, and a follower acknowledges only what we sent.
        if (!m.reject && m.index > last_index()) {
          return err(Errc::kInvalidArgument, "append response from " + m.from.str() +
                                                 " acknowledges index " + m.index.str() +
                                                 " past our last index " + last_index().str());
        }
        pr.recent_active = true;
        if (m.reject) {
          if (pr.maybe_decr_to(m.index, m.reject_hint)) {
            if (pr.state == Progress::State::kReplicate) pr.become_probe();
            send_append(m.from);
          }
          return Status();
        }
        const bool was_paused = pr.paused(cfg_);
        const bool updated = pr.maybe_update(m.index);
        // A successful probe at an unchanged match also proves where the logs agree.
        if (updated || (pr.match == m.index && pr.state == Progress::State::kProbe)) {
          if (pr.state == Progress::State::kProbe) {
            pr.become_replicate();
          } else if (pr.state == Progress::State::kSnapshot &&
                     pr.match >= pr.pending_snapshot) {
            pr.become_probe();
            pr.become_replicate();
          } else if (pr.state == Progress::State::kReplicate) {
            pr.free_le(m.index);
          }
          if (maybe_commit()) {
            broadcast_append();
          } else if (was_paused) {
            send_append(m.from);
          }
          // Keep the pipeline full while there is more to send.
          while (send_append(m.from, false)) {
          }
          if (m.from == lead_transferee_ && pr.match == last_index()) {
            send_timeout_now(m.from);
          }
        }
        return Status();
      }
      case MsgType::kHeartbeatResp: {
        // A heartbeat of this term was sent at a tick we have already reached; a later one
        // would stretch the lease past what the follower promised.
        if (m.lease_tick > now_tick_) {
          return err(Errc::kInvalidArgument, "heartbeat response from " + m.from.str() +
                                                 " echoes future tick " +
                                                 std::to_string(m.lease_tick));
        }
        pr.recent_active = true;
        pr.probe_sent = false;
        pr.acked_lease_tick = std::max(pr.acked_lease_tick, m.lease_tick);
        if (pr.state == Progress::State::kReplicate && pr.inflight_full(cfg_) &&
            !pr.inflight.empty()) {
          pr.inflight_bytes -= pr.inflight.front().second;
          pr.inflight.pop_front();
        }
        if (pr.match < last_index()) send_append(m.from);
        if (!m.context.empty()) ack_read(m.from, m.context);
        return Status();
      }
      default:
        return Status();
    }
  }

  Status step_candidate(const Message& m) {
    switch (m.type) {
      case MsgType::kPropose:
        return err(Errc::kUnavailable, "no leader: election in progress");
      case MsgType::kAppend:
      case MsgType::kHeartbeat:
      case MsgType::kSnapshot:
        // m.term == term_ here: a leader of our term exists.
        become_follower(m.term, m.from);
        return step_follower(m);
      case MsgType::kPreVoteResp:
      case MsgType::kVoteResp: {
        const bool mine = (role_ == StateRole::kPreCandidate) == (m.type == MsgType::kPreVoteResp);
        if (!mine) return Status();
        switch (poll(m.from, !m.reject)) {
          case VoteResult::kWon:
            if (role_ == StateRole::kPreCandidate) {
              campaign(false, false);
            } else {
              become_leader();
            }
            break;
          case VoteResult::kLost:
            become_follower(term_, kNoNode);
            break;
          case VoteResult::kPending:
            break;
        }
        return Status();
      }
      default:
        return Status();
    }
  }

  Status step_follower(const Message& m) {
    switch (m.type) {
      case MsgType::kPropose:
      case MsgType::kReadIndex:
      case MsgType::kTransferLeader: {
        if (leader_ == kNoNode) return err(Errc::kUnavailable, "no leader known");
        Message f = m;
        f.to = leader_;
        f.term = Term(0);
        msgs_.push_back(std::move(f));  // keep m.from: the requester / transferee
        return Status();
      }
      case MsgType::kAppend:
        election_elapsed_ = 0;
        leader_ = m.from;
        handle_append(m);
        return Status();
      case MsgType::kHeartbeat: {
        election_elapsed_ = 0;
        leader_ = m.from;
        if (m.commit > committed_ && m.commit <= last_index()) commit_to(m.commit);
        Message r;
        r.type = MsgType::kHeartbeatResp;
        r.to = m.from;
        r.context = m.context;
        r.lease_tick = m.lease_tick;
        send(std::move(r));
        return Status();
      }
      case MsgType::kSnapshot:
        election_elapsed_ = 0;
        leader_ = m.from;
        handle_snapshot(m);
        return Status();
      case MsgType::kTimeoutNow:
        // Leadership transfer: campaign at once, skipping pre-vote (§3.10).
        campaign(false, true);
        return Status();
      case MsgType::kReadIndexResp:
        read_states_.push_back(ReadState{m.index, m.context});
        return Status();
      default:
        return Status();
    }
  }

  void handle_append(const Message& m) {
    Message r;
    r.type = MsgType::kAppendResp;
    r.to = m.from;
    if (m.index < committed_) {
      r.index = committed_;
      send(std::move(r));
      return;
    }
    if (match_term(m.index, m.log_term)) {
      LogIndex last_new = m.index + m.entries.size();
      // Find the first entry that is new or conflicts (§5.3).
      size_t i = 0;
      for (; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        if (!match_term(e.index, e.term)) break;
      }
      if (i < m.entries.size()) {
        const Entry& first_new = m.entries[i];
        if (first_new.index <= last_index()) truncate_from(first_new.index);
        std::vector<Entry> rest(m.entries.begin() + static_cast<long>(i), m.entries.end());
        append_entries(std::move(rest));
      }
      commit_to(std::min(m.commit, last_new));
      r.index = last_new;
      send(std::move(r));
      return;
    }
    r.reject = true;
    r.index = m.index;
    r.reject_hint = find_conflict_by_term(m.index, m.log_term);
    send(std::move(r));
  }

  void handle_snapshot(const Message& m) {
    Message r;
    r.type = MsgType::kAppendResp;
    r.to = m.from;
    const Snapshot& s = *m.snapshot;
    if (s.meta.index <= committed_) {
      r.index = committed_;
    } else if (match_term(s.meta.index, s.meta.term)) {
      // We already hold the entries: just advance the commit index.
      commit_to(s.meta.index);
      r.index = committed_;
    } else {
      restore(s);
      r.index = last_index();
    }
    send(std::move(r));
  }

  void restore(const Snapshot& s) {
    log_.clear();
    snapshot_ = s;
    if (!snapshot_.data) snapshot_.data = std::make_shared<const std::string>();
    committed_ = s.meta.index;
    stable_ = s.meta.index;
    conf_ = s.meta.conf;
    rebuild_progress();
    pending_snapshot_ = snapshot_;
  }

  Status handle_transfer(NodeId target) {
    if (!is_voter(target)) {
      return err(Errc::kInvalidArgument, "transfer target " + target.str() + " is not a voter");
    }
    if (target == id_ || target == lead_transferee_) return Status();
    lead_transferee_ = target;
    election_elapsed_ = 0;  // the transfer must finish within one election timeout
    if (prs_[target].match == last_index()) {
      send_timeout_now(target);
    } else {
      send_append(target);
    }
    return Status();
  }

  void send_timeout_now(NodeId to) {
    timeout_now_sent_ = true;  // ends the lease for the rest of this term
    Message m;
    m.type = MsgType::kTimeoutNow;
    m.to = to;
    send(std::move(m));
  }

  // ---------------------------------------------------------------- reads
  void answer_read(NodeId from, LogIndex index, const std::string& context) {
    if (from == id_ || from == kNoNode) {
      read_states_.push_back(ReadState{index, context});
    } else {
      Message r;
      r.type = MsgType::kReadIndexResp;
      r.to = from;
      r.index = index;
      r.context = context;
      send(std::move(r));
    }
  }

  void start_read(NodeId from, const std::string& context) {
    PendingRead pr;
    pr.seq = ++read_seq_;
    pr.index = committed_;
    pr.from = from == kNoNode ? id_ : from;
    pr.context = context;
    pr.acks.insert(id_);
    pending_reads_.push_back(std::move(pr));
    broadcast_heartbeat(read_seq_);
  }

  void ack_read(NodeId from, const std::string& context) {
    uint64_t seq = 0;
    for (char c : context) {
      if (c < '0' || c > '9') return;
      seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    auto it = std::find_if(pending_reads_.begin(), pending_reads_.end(),
                           [&](const PendingRead& r) { return r.seq == seq; });
    if (it == pending_reads_.end()) return;
    if (is_voter(from)) it->acks.insert(from);
    size_t voters_acked = 0;
    for (NodeId a : it->acks) {
      if (is_voter(a)) ++voters_acked;
    }
    if (voters_acked < quorum()) return;
    // This read and every earlier one are confirmed by the same quorum round.
    auto end = std::next(it);
    for (auto r = pending_reads_.begin(); r != end; ++r) answer_read(r->from, r->index, r->context);
    pending_reads_.erase(pending_reads_.begin(), end);
  }

  void release_pending_read_msgs() {
    std::vector<Message> msgs = std::move(pending_read_msgs_);
    pending_read_msgs_.clear();
    for (auto& m : msgs) {
      if (conf_.voters.size() == 1) {
        answer_read(m.from, committed_, m.context);
      } else {
        start_read(m.from, m.context);
      }
    }
  }

  // ---------------------------------------------------------------- membership
  void apply_to_conf(const ConfChange& cc) {
    switch (cc.type) {
      case ConfChangeType::kAddVoter:
        erase_id(&conf_.learners, cc.node);
        insert_sorted(&conf_.voters, cc.node);
        break;
      case ConfChangeType::kAddLearner:
        erase_id(&conf_.voters, cc.node);
        insert_sorted(&conf_.learners, cc.node);
        break;
      case ConfChangeType::kRemoveNode:
        erase_id(&conf_.voters, cc.node);
        erase_id(&conf_.learners, cc.node);
        break;
    }
  }

  ConfState apply_conf_change(const ConfChange& cc) {
    apply_to_conf(cc);
    rebuild_progress();
    if (!prs_.count(id_) || !is_voter(id_)) {
      if (role_ == StateRole::kLeader) become_follower(term_, kNoNode);
    }
    if (lead_transferee_ != kNoNode && !is_voter(lead_transferee_)) lead_transferee_ = kNoNode;
    if (role_ == StateRole::kLeader && !conf_.voters.empty()) {
      if (maybe_commit()) broadcast_append();
    }
    return conf_;
  }

  // ---------------------------------------------------------------- ready
  SoftState soft_state() const { return SoftState{leader_, role_}; }
  HardState hard_state() const { return HardState{term_, vote_, committed_}; }

  LogIndex apply_limit() const { return std::min(committed_, last_index()); }

  bool has_ready() const {
    if (soft_state() != prev_soft_) return true;
    if (hard_state() != prev_hard_) return true;
    if (pending_snapshot_) return true;
    if (last_index() > stable_) return true;
    if (!msgs_.empty() || !read_states_.empty()) return true;
    return apply_limit() > applying_;
  }

  Ready ready() {
    Ready rd;
    if (soft_state() != prev_soft_) rd.soft_state = soft_state();
    HardState hs = hard_state();
    if (hs != prev_hard_) rd.hard_state = hs;
    if (pending_snapshot_) rd.snapshot = *pending_snapshot_;
    for (LogIndex i = stable_ + 1; i <= last_index(); ++i) rd.entries.push_back(entry(i));
    LogIndex from = std::max(applying_, snap_index()) + 1;
    for (LogIndex i = from; i <= apply_limit(); ++i) rd.committed_entries.push_back(entry(i));
    rd.messages = std::move(msgs_);
    msgs_.clear();
    rd.read_states = std::move(read_states_);
    read_states_.clear();
    rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                   (rd.hard_state && (hs.term != prev_hard_.term || hs.vote != prev_hard_.vote));
    if (!rd.committed_entries.empty()) applying_ = rd.committed_entries.back().index;
    if (rd.snapshot) applying_ = std::max(applying_, rd.snapshot->meta.index);
    return rd;
  }

  void advance(const Ready& rd) {
    if (rd.soft_state) prev_soft_ = *rd.soft_state;
    if (rd.hard_state) prev_hard_ = *rd.hard_state;
    if (rd.snapshot) {
      stable_ = std::max(stable_, rd.snapshot->meta.index);
      applied_ = std::max(applied_, rd.snapshot->meta.index);
      if (pending_snapshot_ && pending_snapshot_->meta.index == rd.snapshot->meta.index) {
        pending_snapshot_.reset();
      }
    }
    if (!rd.entries.empty()) {
      LogIndex last = rd.entries.back().index;
      // Entries may have been truncated since ready(); only what still matches is stable.
      if (match_term(last, rd.entries.back().term)) stable_ = std::max(stable_, last);
    }
    if (!rd.committed_entries.empty()) {
      applied_ = std::max(applied_, rd.committed_entries.back().index);
    }
    applying_ = std::max(applying_, applied_);
    if (role_ == StateRole::kLeader) {
      auto self = prs_.find(id_);
      if (self != prs_.end()) self->second.match = stable_;
      if (maybe_commit()) broadcast_append();
    }
  }

  // ---------------------------------------------------------------- compaction
  Status compact(Snapshot snap) {
    if (snap.meta.index > applied_) {
      return err(Errc::kOutOfRange, "snapshot index " + snap.meta.index.str() +
                                        " is past the applied index " + applied_.str());
    }
    if (snap.meta.index <= snap_index()) {
      return err(Errc::kOutOfRange, "snapshot index " + snap.meta.index.str() +
                                        " is not newer than " + snap_index().str());
    }
    auto t = term_at(snap.meta.index);
    if (!t || *t != snap.meta.term) {
      return err(Errc::kInvalidArgument, "snapshot term does not match the log");
    }
    log_.erase(log_.begin(), log_.begin() + static_cast<long>(snap.meta.index - snap_index()));
    snapshot_ = std::move(snap);
    if (!snapshot_.data) snapshot_.data = std::make_shared<const std::string>();
    return Status();
  }

  std::optional<uint64_t> lease_expiry_tick() const {
    if (role_ != StateRole::kLeader || !cfg_.check_quorum) return std::nullopt;
    // After TimeoutNow the target campaigns with votes that ignore the followers' leases.
    if (timeout_now_sent_) return std::nullopt;
    std::vector<uint64_t> acked;
    for (NodeId v : conf_.voters) {
      auto it = prs_.find(v);
      if (v == id_) {
        acked.push_back(now_tick_);
      } else if (it != prs_.end() && it->second.acked_lease_tick > 0) {
        acked.push_back(it->second.acked_lease_tick);
      }
    }
    if (acked.size() < quorum()) return std::nullopt;
    std::sort(acked.begin(), acked.end(), std::greater<>());
    // Every member of that quorum heard from us at or after this tick, and ignores other
    // candidates until it has counted election_tick of its own ticks. Its first tick may
    // come at once, so that covers only election_tick - 1 full tick periods: the lease ends
    // one tick earlier than the heartbeat tick + election_tick.
    return acked[quorum() - 1] + static_cast<uint64_t>(cfg_.election_tick - 1);
  }

  // ---------------------------------------------------------------- state
  Config cfg_;
  Rng& rng_;
  NodeId id_;
  Term term_;
  NodeId vote_;
  NodeId leader_;
  StateRole role_ = StateRole::kFollower;

  Snapshot snapshot_;
  std::vector<Entry> log_;
  LogIndex committed_;
  LogIndex applied_;
  LogIndex applying_;
  LogIndex stable_;
  std::optional<Snapshot> pending_snapshot_;

  ConfState conf_;
  std::map<NodeId, Progress> prs_;
  std::map<NodeId, bool> votes_;
  LogIndex pending_conf_index_;
  NodeId lead_transferee_;
  bool timeout_now_sent_ = false;  // leader: TimeoutNow sent in this term (no lease)
  LogIndex first_proposal_index_;  // leader: entries from here on count as uncommitted bytes
  bool restarted_ = false;         // started from persisted state (see in_lease())
  uint64_t uncommitted_bytes_ = 0;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  uint64_t now_tick_ = 0;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  std::deque<PendingRead> pending_reads_;
  std::vector<Message> pending_read_msgs_;
  uint64_t read_seq_ = 0;

  SoftState prev_soft_;
  HardState prev_hard_;
};

// -------------------------------------------------------------------- public API

Raft::Raft(const Config& config, Rng& rng, Restored restored)
    : impl_(std::make_unique<Impl>(config, rng, std::move(restored))) {}
Raft::~Raft() = default;

void Raft::tick() { impl_->tick(); }
Status Raft::step(const Message& m) { return impl_->step(m); }

Status Raft::propose(std::string data) {
  Message m;
  m.type = MsgType::kPropose;
  m.from = impl_->id_;
  m.to = impl_->id_;
  Entry e;
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return impl_->step(m);
}

Status Raft::propose_conf_change(const ConfChange& cc) {
  if (impl_->role_ != StateRole::kLeader) {
    return err(Errc::kNotLeader, "membership changes are proposed on the leader");
  }
  if (impl_->pending_conf_index_ > impl_->applied_) {
    return err(Errc::kUnavailable, "another membership change is still pending");
  }
  RETURN_IF_ERROR(impl_->check_conf_change(cc));
  Message m;
  m.type = MsgType::kPropose;
  m.from = impl_->id_;
  m.to = impl_->id_;
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = encode_conf_change(cc);
  m.entries.push_back(std::move(e));
  return impl_->step(m);
}

ConfState Raft::apply_conf_change(const ConfChange& cc) { return impl_->apply_conf_change(cc); }

void Raft::read_index(std::string context) {
  Message m;
  m.type = MsgType::kReadIndex;
  m.from = impl_->id_;
  m.to = impl_->id_;
  m.context = std::move(context);
  (void)impl_->step(m);
}

Status Raft::transfer_leadership(NodeId target) {
  Message m;
  m.type = MsgType::kTransferLeader;
  m.from = target;
  m.to = impl_->id_;
  return impl_->step(m);
}

void Raft::campaign() {
  // Within the lease this node promised a leader not to vote, itself included.
  if (impl_->in_lease()) return;
  impl_->campaign(impl_->cfg_.pre_vote, false);
}

Status Raft::compact(Snapshot snap) { return impl_->compact(std::move(snap)); }
void Raft::release_snapshot_data() {
  if (impl_->pending_snapshot_) return;
  impl_->snapshot_.data = std::make_shared<const std::string>();
}

bool Raft::has_ready() const { return impl_->has_ready(); }
Ready Raft::ready() { return impl_->ready(); }
void Raft::advance(const Ready& rd) { impl_->advance(rd); }

NodeId Raft::id() const { return impl_->id_; }
NodeId Raft::leader() const { return impl_->leader_; }
Term Raft::term() const { return impl_->term_; }
StateRole Raft::role() const { return impl_->role_; }
LogIndex Raft::commit_index() const { return impl_->committed_; }
LogIndex Raft::applied_index() const { return impl_->applied_; }
LogIndex Raft::first_index() const { return impl_->first_index(); }
LogIndex Raft::last_index() const { return impl_->last_index(); }
const ConfState& Raft::conf() const { return impl_->conf_; }
uint64_t Raft::now_tick() const { return impl_->now_tick_; }
std::optional<uint64_t> Raft::lease_expiry_tick() const { return impl_->lease_expiry_tick(); }
bool Raft::lease_valid() const {
  auto e = impl_->lease_expiry_tick();
  return e && impl_->now_tick_ < *e;
}

std::vector<PeerProgress> Raft::progress() const {
  std::vector<PeerProgress> out;
  for (const auto& [id, pr] : impl_->prs_) {
    PeerProgress p;
    p.id = id;
    p.match = pr.match;
    p.next = pr.next;
    p.is_learner = pr.is_learner;
    p.recent_active = pr.recent_active;
    p.state = pr.state_name();
    out.push_back(p);
  }
  return out;
}

std::vector<Entry> Raft::entries_for_test(LogIndex lo, LogIndex hi) const {
  std::vector<Entry> out;
  for (LogIndex i = std::max(lo, impl_->first_index()); i < hi && i <= impl_->last_index(); ++i) {
    out.push_back(impl_->entry(i));
  }
  return out;
}

}  // namespace vigil::raft
