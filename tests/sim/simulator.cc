// The cluster simulator: nodes (raft + simulated disk + state machine: the MvccStore with
// its LeaseTracker and WatchHub, or the small KV map), network, faults, clients, and the
// safety checkers that run after every event.
#include "sim/simulator.h"

#include <algorithm>
#include <cstdarg>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/rng.h"
#include "raft/raft.h"
#include "raft/types.h"
#include "sim/kv.h"
#include "sim/linearizability.h"
#include "sim/store_check.h"
#include "store/compactor.h"
#include "store/keys.h"
#include "store/lease_tracker.h"
#include "store/mvcc.h"
#include "store/request.h"
#include "store/watch.h"

namespace vigil::sim {
namespace {

using raft::Entry;
using raft::HardState;
using raft::Message;
using raft::Ready;
using raft::Snapshot;

// Simulated time units per nominal tick. Durations below are written in tenths of a tick
// (tenths(3) = 0.3 ticks); 100 units per tick lets clock drift be as small as 1 %
// (DESIGN.md "Holds" assumes 1 %).
constexpr uint64_t kTickUnits = 100;
constexpr uint64_t tenths(uint64_t t) { return t * (kTickUnits / 10); }
// After the fault phase, the cluster must elect a leader, finish every client op and
// bring every replica to the same applied index within this many units (300 ticks,
// i.e. 15-30 election timeouts).
constexpr uint64_t kLivenessBoundUnits = tenths(3000);
constexpr uint64_t kDeepCheckEvery = 50;  // steps between full in-memory log comparisons
// Store mode: steps between byte comparisons of replicas' serialize() (check a).
constexpr uint64_t kBytesSampleEvery = 20;
constexpr int kElectionTick = 10;

// ---------------------------------------------------------------------------------------
// Fault profile: everything the seed decides about how hostile this run is.

enum FaultKind : int {
  kFaultSplit = 0,      // random two-way partition
  kFaultIsolateLeader,  // cut the current leader off from everyone
  kFaultOneWay,         // one direction of one link (or all of a node's sends) blocked
  kFaultHeal,           // remove every partition
  kFaultCrash,          // crash a random node (loses unsynced writes, maybe a torn tail)
  kFaultCrashLeader,    // crash the current leader
  kFaultTransfer,       // ask the leader to transfer leadership
  kFaultCampaign,       // a random node campaigns at once
  kFaultKinds,
};
const char* const kFaultNames[kFaultKinds] = {"split", "isolate-leader", "one-way",  "heal",
                                              "crash", "crash-leader",   "transfer", "campaign"};

struct Profile {
  int nodes = 3;
  int clients = 3;
  int keys = 3;
  double drop_p = 0;
  double dup_p = 0;
  uint64_t lat_min = 1, lat_max = 10;
  double slow_p = 0;  // chance a message takes the slow path (reordering, long delays)
  uint64_t slow_max = 100;
  uint64_t fault_gap_min = 100, fault_gap_max = 400;
  int weights[kFaultKinds] = {};
  int max_down = 1;
  uint64_t down_min = 20, down_max = 200;
  double sync_p = 0.3;  // per tick: background fsync of unsynced writes
  double torn_p = 0.5;  // on crash: the first lost write survives partially
  // A leader sends its appends before persisting them (raft::can_send_before_persist); with
  // this chance it crashes right then, its write lost, the appends already on the wire.
  double crash_mid_ready_p = 0;
  uint64_t compact_every = 20;
  double read_index_p = 0.5;  // gets served through ReadIndex instead of the log
  uint64_t retry_timeout = 100;
  uint64_t op_deadline = 500;
  uint64_t think_max = 20;
  // Raft configuration.
  bool pre_vote = true;
  bool check_quorum = true;
  int heartbeat_tick = 1;
  uint64_t max_size_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  std::vector<uint64_t> tick_period;  // per node: clock drift
  // Store mode.
  bool store = false;
  int lease_clients = 1;          // clients that hold leases and run for election
  double silence_p = 0.05;        // per due keep-alive: stop keep-alives for 1-2 TTLs
  int64_t retain_revisions = 20;  // AutoCompactor: history kept by the leader's Compacts
  int64_t compact_interval_ms = 500;
  int64_t compact_max_step = 0;  // AutoCompactor::Options::max_step (the daemon's: 1000)
  size_t watch_buffer = 1000;    // WatchHub::Options::max_buffered_events
  size_t watch_pull = 1000;      // WatchHub::Options::max_events_per_pull
  double pull_p = 1.0;           // per node tick and watcher: the consumer pulls

  std::string describe() const {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "nodes=%d clients=%d keys=%d drop=%.2f dup=%.2f lat=%llu..%llu slow=%.2f/%llu "
                  "fault_gap=%llu..%llu max_down=%d sync_p=%.2f compact_every=%llu "
                  "read_index_p=%.1f pre_vote=%d check_quorum=%d hb=%d max_msg=%llu "
                  "inflight=%zu weights=",
                  nodes, clients, keys, drop_p, dup_p, (unsigned long long)lat_min,
                  (unsigned long long)lat_max, slow_p, (unsigned long long)slow_max,
                  (unsigned long long)fault_gap_min, (unsigned long long)fault_gap_max, max_down,
                  sync_p, (unsigned long long)compact_every, read_index_p, pre_vote, check_quorum,
                  heartbeat_tick, (unsigned long long)max_size_per_msg, max_inflight_msgs);
    std::string s = buf;
    for (int k = 0; k < kFaultKinds; ++k) {
      if (weights[k] == 0) continue;
      s += std::string(kFaultNames[k]) + ":" + std::to_string(weights[k]) + ",";
    }
    if (store) {
      std::snprintf(buf, sizeof(buf),
                    " store: lease_clients=%d silence=%.2f retain=%lld compact_ms=%lld "
                    "compact_step=%lld watch_buffer=%zu watch_pull=%zu pull_p=%.1f",
                    lease_clients, silence_p, (long long)retain_revisions,
                    (long long)compact_interval_ms, (long long)compact_max_step, watch_buffer,
                    watch_pull, pull_p);
      s += buf;
    }
    return s;
  }
};

template <class T>
T pick(Rng& rng, std::initializer_list<T> options) {
  return *(options.begin() + rng.uniform(0, options.size() - 1));
}

Profile choose_profile(Rng& rng, const SimOptions& opts) {
  Profile p;
  p.nodes = opts.nodes > 0 ? opts.nodes : pick(rng, {3, 5});
  p.clients = static_cast<int>(rng.uniform(3, 5));
  p.keys = static_cast<int>(rng.uniform(2, 5));
  p.drop_p = pick(rng, {0.0, 0.01, 0.05, 0.15});
  p.dup_p = pick(rng, {0.0, 0.01, 0.05});
  p.lat_min = tenths(1);
  p.lat_max = tenths(pick<uint64_t>(rng, {5, 15, 30}));
  p.slow_p = pick(rng, {0.0, 0.02, 0.1});
  p.slow_max = tenths(pick<uint64_t>(rng, {60, 200}));
  const int gap = static_cast<int>(rng.uniform(0, 2));
  p.fault_gap_min = tenths(gap == 0 ? 30 : gap == 1 ? 100 : 300);
  p.fault_gap_max = tenths(gap == 0 ? 150 : gap == 1 ? 400 : 1000);
  for (int k = 0; k < kFaultKinds; ++k) p.weights[k] = static_cast<int>(rng.uniform(0, 3));
  p.weights[kFaultHeal] += 2;  // partitions should come and go
  p.max_down = pick(rng, {1, (p.nodes - 1) / 2, p.nodes - 1});
  p.down_min = tenths(20);
  p.down_max = tenths(pick<uint64_t>(rng, {100, 400}));
  p.sync_p = pick(rng, {0.05, 0.3, 1.0});
  p.torn_p = 0.5;
  p.crash_mid_ready_p = pick(rng, {0.0, 0.0005, 0.003});
  p.compact_every = pick<uint64_t>(rng, {5, 20, 60, uint64_t{1} << 40});
  p.read_index_p = pick(rng, {0.0, 0.5, 1.0});
  p.retry_timeout = tenths(pick<uint64_t>(rng, {60, 150}));
  p.op_deadline = tenths(pick<uint64_t>(rng, {300, 800}));
  p.think_max = tenths(pick<uint64_t>(rng, {5, 30}));
  p.pre_vote = rng.chance(0.75);
  p.check_quorum = rng.chance(0.75);
  p.heartbeat_tick = static_cast<int>(rng.uniform(1, 3));
  // One entry per message splits a new leader's catch-up of old entries from its own
  // no-op, which is what Raft's Figure 8 needs to go wrong when §5.4.2 is broken.
  p.max_size_per_msg = pick<uint64_t>(rng, {1, 200, 1 << 20});
  p.max_inflight_msgs = pick<size_t>(rng, {1, 4, 256});
  const bool drift = rng.chance(0.5);
  for (int i = 0; i < p.nodes; ++i) {
    p.tick_period.push_back(drift ? rng.uniform(kTickUnits - 1, kTickUnits + 1) : kTickUnits);
  }
  if (opts.machine == SimOptions::Machine::kStore) {
    // Drawn after everything else, so the KV mode's profiles stay as they were.
    p.store = true;
    p.lease_clients = static_cast<int>(rng.uniform(1, 3));
    p.silence_p = pick(rng, {0.0, 0.05, 0.15});
    p.retain_revisions = pick<int64_t>(rng, {3, 20, 200});
    p.compact_interval_ms = pick<int64_t>(rng, {200, 1000, 5000});
    p.watch_buffer = pick<size_t>(rng, {2, 1000});
    p.watch_pull = pick<size_t>(rng, {1, 1000});
    p.pull_p = pick(rng, {0.2, 1.0});
    // Compaction in steps, each once the last applied, as the daemon does it (0: one step).
    p.compact_max_step = pick<int64_t>(rng, {0, 1, 5});
  }
  if (opts.unsafe_commit_previous_term) {
    // Make Raft's Figure 8 likely: leaders that lose their quorum or crash soon after
    // appending entries (so logs diverge in several terms), then catch-up that sends old
    // entries one per message, separately from the new leader's own no-op.
    p.fault_gap_min = tenths(20);
    p.fault_gap_max = tenths(100);
    std::fill(std::begin(p.weights), std::end(p.weights), 0);
    p.weights[kFaultIsolateLeader] = 6;
    p.weights[kFaultCrashLeader] = 2;
    p.weights[kFaultSplit] = 2;
    p.weights[kFaultHeal] = 5;
    p.max_down = 1;
    p.think_max = tenths(5);
    p.clients = 5;
    p.max_size_per_msg = 1;
    p.max_inflight_msgs = 1;
  }
  for (int k = 0; k < kFaultKinds; ++k) {
    const std::string name = kFaultNames[k];
    const std::string list = "," + opts.disabled_faults + ",";
    if (list.find("," + name + ",") != std::string::npos) p.weights[k] = 0;
  }
  int total = 0;
  for (int w : p.weights) total += w;
  if (total == 0) p.weights[kFaultHeal] = 1;
  return p;
}

// ---------------------------------------------------------------------------------------
// Simulated durable storage.

// A log entry with the simulator's digest of the whole log prefix ending at it. Equal
// digests at an index mean equal logs up to there, which turns Log Matching and Leader
// Completeness into O(1) comparisons.
struct LogRec {
  Entry entry;
  uint64_t digest = 0;
};

uint64_t chain_digest(uint64_t prev, const Entry& e) {
  uint64_t h = hash_mix(prev, e.index.v);
  h = hash_mix(h, e.term.v);
  h = hash_mix(h, static_cast<uint64_t>(e.type));
  return hash_mix(h, hash_bytes(e.data));
}

// One node's storage: hard state, latest snapshot, and the entries after it.
struct Disk {
  HardState hs;
  Snapshot snap;
  uint64_t snap_digest = 0;
  std::vector<LogRec> log;  // indexes snap.meta.index + 1 ...

  LogIndex last_index() const { return snap.meta.index + log.size(); }
  const LogRec* rec(LogIndex i) const {
    if (i <= snap.meta.index || i > last_index()) return nullptr;
    return &log[i - snap.meta.index - 1];
  }
  std::optional<uint64_t> digest_at(LogIndex i) const {
    if (i == snap.meta.index) return snap_digest;
    const LogRec* r = rec(i);
    if (r == nullptr) return std::nullopt;
    return r->digest;
  }
  // Writes entries at their indexes, truncating any suffix from the first one (what a
  // WAL does for a conflicting append). Returns an error text for a gap.
  std::string append(const std::vector<LogRec>& recs) {
    size_t k = 0;
    while (k < recs.size() && recs[k].entry.index <= snap.meta.index) ++k;
    if (k == recs.size()) return {};
    const LogIndex first = recs[k].entry.index;
    if (first > last_index() + 1) {
      return "entries start at " + first.str() + " but the log ends at " + last_index().str();
    }
    log.resize(first - snap.meta.index - 1);
    for (; k < recs.size(); ++k) log.push_back(recs[k]);
    return {};
  }
  void install_snapshot(const Snapshot& s, uint64_t digest) {
    snap = s;
    snap_digest = digest;
    log.clear();
  }
  void compact(const Snapshot& s, uint64_t digest) {
    const uint64_t drop = std::min<uint64_t>(log.size(), s.meta.index - snap.meta.index);
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(drop));
    snap = s;
    snap_digest = digest;
  }
};

// A write that reached the OS but maybe not the platter.
struct WriteOp {
  bool is_hard_state = false;
  HardState hs;
  std::vector<LogRec> recs;
};

void apply_write(Disk* d, const WriteOp& op) {
  if (op.is_hard_state) {
    d->hs = op.hs;
  } else {
    (void)d->append(op.recs);  // a gap was reported when the write was issued
  }
}

// ---------------------------------------------------------------------------------------
// Nodes, clients, events.

struct ReadWaiter {
  int client = 0;
  uint64_t seq = 0;
  std::string key;
  LogIndex index;  // set once the ReadState arrived
};

struct Node {
  NodeId id;
  bool up = true;
  uint64_t incarnation = 0;
  std::unique_ptr<SplitMix64> rng;
  std::unique_ptr<raft::Raft> raft;
  Disk durable;                  // survives a crash
  Disk written;                  // durable + pending: what raft believes it persisted
  std::vector<WriteOp> pending;  // written but not yet synced, in order
  HardState last_hs;             // last hard state handed to storage
  KvStateMachine kv;
  // Store mode: the replicated store and the node-local parts a StoreService keeps beside it
  // (daemon/store_service.cc): lease deadlines, watchers, the compaction policy.
  store::MvccStore mvcc;
  store::LeaseTracker leases;
  std::optional<store::WatchHub> hub;
  std::optional<store::AutoCompactor> compactor;
  bool store_leader = false;              // what on_leadership() was last told
  uint64_t response_chain = 0;            // digest of every response applied (state-machine safety)
  std::map<uint64_t, int> store_waiters;  // request id -> client
  std::map<store::LeaseId, int64_t> grant_ms;  // node clock when it applied each grant
  LogIndex applied;
  Term applied_term;
  uint64_t applied_digest = 0;
  LogIndex commit_seen;  // commits up to here were recorded in the global committed log
  std::map<std::pair<uint64_t, uint64_t>, int> waiters;  // (client id, seq) -> client
  std::map<std::string, ReadWaiter> read_waiters;        // read_index context -> waiter
  std::vector<ReadWaiter> ready_reads;                   // read index known, not yet served
};

struct Client {
  int index = 0;
  uint64_t id = 0;
  uint64_t seq = 0;
  bool busy = false;
  size_t hist = 0;  // index of the current op in the history
  KvCommand cmd;
  bool via_read_index = false;
  int target = -1;
  uint64_t first_call = 0;
  uint64_t attempts = 0;
  uint64_t token = 0;  // wake-ups carrying an older token are stale
  NodeId believed_leader;
  std::map<std::string, std::optional<std::string>> seen;  // last value seen per key
  // Store mode. One request at a time; a request accepted by a leader is never proposed
  // again (the store has no client sessions): it completes, or its outcome is unknown.
  bool leased = false;  // a lease client (lease keys, keep-alives, election) or a KV client
  int store_op = 0;     // StoreOp
  store::Request req;
  bool accepted = false;
  uint64_t accepted_incarnation = 0;
  uint64_t sent_at = 0;   // when the accepted attempt was sent (the lease rule's start)
  uint64_t deadline = 0;  // give up (outcome unknown) at this time
  store::LeaseId lease;   // kNoLease: none
  int64_t ttl_s = 0;
  uint64_t valid_until = 0;  // the lease rule: valid while now < valid_until
  uint64_t next_keepalive = 0;
  uint64_t silent_until = 0;  // keep-alives paused (the lease should expire)
  bool holder = false;        // believes it holds the election
  size_t holding = 0;         // StoreChecker holding index
  int64_t fence_token = 0;    // fencing token while holder
};

enum StoreOp : int {
  kOpKv = 0,     // put / get / delete / cas / cas-delete on the linearizable keys
  kOpGrant,      // lease grant
  kOpKeepAlive,  // lease keep-alive
  kOpLeasePut,   // put of a lease key (with the lease, or without it: detaches)
  kOpCampaign,   // txn: create election/x with the lease if absent, else read it
  kOpResign,     // txn: delete election/x if its create revision is the token
  kOpRevoke,     // lease revoke by the client
};

enum class EvKind : uint8_t { kTick, kDeliver, kFault, kClient, kRestart };

struct Event {
  EvKind kind = EvKind::kTick;
  int node = 0;
  uint64_t token = 0;  // node incarnation or client token
  int client = 0;
  Message msg;
};

// What every node ever applied at one index; all must agree (State Machine Safety).
struct ApplyRec {
  bool set = false;
  uint64_t term = 0;
  uint64_t data_hash = 0;
  uint64_t digest = 0;
  uint64_t state_hash = 0;
  int node = 0;
};

std::string msg_str(const Message& m) {
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "%s %llu->%llu term=%llu log_term=%llu index=%llu ents=%zu "
                "commit=%llu%s%s",
                raft::msg_type_name(m.type), (unsigned long long)m.from.v,
                (unsigned long long)m.to.v, (unsigned long long)m.term.v,
                (unsigned long long)m.log_term.v, (unsigned long long)m.index.v, m.entries.size(),
                (unsigned long long)m.commit.v, m.reject ? " reject" : "",
                m.snapshot ? " +snapshot" : "");
  return buf;
}

// ---------------------------------------------------------------------------------------

class Simulator {
 public:
  explicit Simulator(const SimOptions& opts) : opts_(opts), rng_(opts.seed) {
    if (("," + opts.disabled_checks + ",").find(",lease-validity,") != std::string::npos) {
      checker_.disable_lease_validity();
    }
  }

  SimResult run();

 private:
  // Setup and the main loop.
  raft::Config raft_config(const Node& n) const;
  void start_node(int i, bool fresh);
  void schedule(uint64_t at, Event ev);
  void dispatch(Event& ev);
  void enter_liveness();
  bool converged();
  void finish_checks();

  // Nodes, storage and network.
  void process_ready(int i);
  void persist(Node& n, const Ready& rd, std::optional<uint64_t>* snap_digest);
  void sync(Node& n);
  void apply_snapshot(int i, const Snapshot& s, uint64_t digest);
  void apply_entry(int i, const Entry& e);
  void serve_reads(int i);
  void maybe_compact(int i);
  void crash(int i);
  void send(const Message& m);
  void deliver(Message& m);
  void do_fault();
  int leader_index();

  // Clients.
  void client_wake(int c, uint64_t token);
  void start_op(Client& c);
  void submit(Client& c);
  void complete(Client& c, const KvOutput& out, int node);
  void wake_client_at(Client& c, uint64_t at);
  std::optional<std::string> read_local(const Node& n, const std::string& key) const;

  // The state machine, either mode: snapshots and the state digest of state-machine safety.
  bool store_mode() const { return opts_.machine == SimOptions::Machine::kStore; }
  std::string make_snapshot(int i);
  bool snapshot_digest(const std::string& data, uint64_t* digest) const;
  bool load_snapshot(int i, const std::string& data, uint64_t* digest);
  uint64_t sm_state_hash(const Node& n) const;

  // Store mode: the node shell (what daemon/store_service.cc does around the store).
  int64_t node_ms(int i) const;
  void store_apply(int i, const Entry& e);
  void on_leadership(int i, bool leader);
  void store_tick(int i);
  void record_bytes(uint64_t index, uint64_t hash, int node);
  void sample_bytes();
  void open_watch(size_t k);
  void pull_watch(size_t k, bool drain);
  void finish_store_checks();

  // Store mode: clients.
  void store_client_wake(Client& c);
  void store_start_op(Client& c);
  bool lease_client_next(Client& c);
  void store_submit(Client& c);
  void store_complete(Client& c, const store::Response& resp, int node);
  void store_give_up(Client& c);
  void lose_lease(Client& c, uint64_t end);
  void next_wake(Client& c);
  uint64_t keepalive_period(const Client& c) {
    return static_cast<uint64_t>(c.ttl_s) * 1000 * kUnitsPerMs / rng_.uniform(3, 4);
  }

  // Checkers.
  void check_after_event();
  void check_log_digest(LogIndex index, Term term, uint64_t digest, int node);
  void record_commits(int i);
  void check_leader_completeness(int i);
  void deep_check(int i);
  void check_leases();
  void fail(std::string invariant, std::string details);

  void trace_hash(std::initializer_list<uint64_t> values) {
    for (uint64_t v : values) trace_hash_ = hash_mix(trace_hash_, v);
  }
  void tracef(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  SimOptions opts_;
  SplitMix64 rng_;
  Profile profile_;
  std::vector<Node> nodes_;
  std::vector<Client> clients_;
  std::vector<std::vector<bool>> blocked_;                // blocked_[from][to]
  std::map<std::pair<uint64_t, uint64_t>, Event> queue_;  // (time, seq) -> event
  uint64_t queue_seq_ = 0;
  uint64_t now_ = 0;
  uint64_t step_ = 0;
  uint64_t fault_steps_ = 0;
  bool liveness_ = false;
  uint64_t liveness_deadline_ = 0;
  uint64_t hclock_ = 1;  // history clock: strictly increasing over calls and returns
  std::vector<KvOp> history_;
  // For each history op: the history-clock time at which some replica first executed it
  // (0 = never), and the op's (client id, seq) -> history index.
  std::vector<uint64_t> first_applied_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> op_index_;

  // Checker state.
  std::map<uint64_t, NodeId> leader_of_term_;
  uint64_t max_leader_term_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> digest_of_;  // (index, term) -> digest
  std::vector<std::optional<uint64_t>> committed_;               // index -> prefix digest
  uint64_t max_committed_ = 0;
  std::vector<ApplyRec> applied_;
  std::vector<std::string> written_values_;

  // Store mode.
  StoreChecker checker_;
  uint64_t next_request_id_ = 1;          // unique over all nodes and incarnations
  std::map<uint64_t, size_t> req_hist_;   // request id -> history op (linearizable keys)
  std::vector<WatchConsumer> consumers_;  // per node: from rev 1, late, late from rev 1
  std::vector<uint64_t> consumer_start_;  // when each consumer first watches
  std::vector<bool> consumer_opened_;
  std::map<uint64_t, std::pair<uint64_t, int>> bytes_at_;  // index -> (serialize hash, node)

  bool failed_ = false;
  SimResult result_;
  uint64_t trace_hash_ = 0x5157;
};

void Simulator::tracef(const char* fmt, ...) {
  if (!opts_.verbose) return;
  std::fprintf(opts_.trace, "[%6llu t=%6llu] ", (unsigned long long)step_,
               (unsigned long long)now_);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(opts_.trace, fmt, ap);
  va_end(ap);
  std::fputc('\n', opts_.trace);
}

void Simulator::fail(std::string invariant, std::string details) {
  if (failed_) return;
  failed_ = true;
  result_.ok = false;
  result_.invariant = std::move(invariant);
  result_.details = std::move(details);
  result_.step = step_;
  tracef("VIOLATION %s: %s", result_.invariant.c_str(), result_.details.c_str());
}

raft::Config Simulator::raft_config(const Node& n) const {
  raft::Config c;
  c.id = n.id;
  for (int i = 0; i < profile_.nodes; ++i) c.initial_conf.voters.push_back(NodeId(i + 1));
  c.election_tick = kElectionTick;
  c.heartbeat_tick = profile_.heartbeat_tick;
  c.pre_vote = profile_.pre_vote;
  c.check_quorum = profile_.check_quorum;
  c.max_size_per_msg = profile_.max_size_per_msg;
  c.max_inflight_msgs = profile_.max_inflight_msgs;
  c.unsafe_commit_previous_term_for_test = opts_.unsafe_commit_previous_term;
  return c;
}

void Simulator::schedule(uint64_t at, Event ev) {
  queue_.emplace(std::make_pair(at, queue_seq_++), std::move(ev));
}

// Brings node i up: brand new (fresh) or rebuilt from its synced storage after a crash.
void Simulator::start_node(int i, bool fresh) {
  Node& n = nodes_[static_cast<size_t>(i)];
  raft::Restored restored;
  n.kv = KvStateMachine();
  n.mvcc = store::MvccStore();
  n.leases = store::LeaseTracker();
  n.hub.emplace(store::WatchHub::Options{10000, profile_.watch_buffer, profile_.watch_pull});
  n.compactor.reset();
  n.store_leader = false;
  n.response_chain = 0;
  n.store_waiters.clear();
  n.grant_ms.clear();
  if (store_mode() && opts_.inject == SimOptions::InjectedBug::kFollowerExpiry) {
    n.leases.on_become_leader(node_ms(i));
  }
  n.applied = LogIndex(0);
  n.applied_term = Term(0);
  n.applied_digest = 0;
  if (!fresh) {
    n.written = n.durable;
    n.pending.clear();
    const Snapshot& s = n.durable.snap;
    if (!s.empty()) {
      uint64_t digest = 0;
      if (!s.data || !load_snapshot(i, *s.data, &digest)) {
        fail("snapshot-corrupt", "node " + n.id.str() + " cannot decode its own snapshot");
        return;
      }
      n.applied = s.meta.index;
      n.applied_term = s.meta.term;
      n.applied_digest = digest;
      const ApplyRec* rec = s.meta.index.v < applied_.size() ? &applied_[s.meta.index.v] : nullptr;
      if (rec && rec->set && rec->state_hash != sm_state_hash(n)) {
        fail("state-machine-safety", "node " + n.id.str() + " restored a snapshot at index " +
                                         s.meta.index.str() + " whose state differs");
        return;
      }
    }
    restored.hard_state = n.durable.hs;
    restored.snapshot = n.durable.snap;
    for (const LogRec& r : n.durable.log) restored.entries.push_back(r.entry);
    restored.applied = n.applied;
  }
  n.last_hs = n.durable.hs;
  n.commit_seen = n.applied;  // re-verify everything the restored node believes committed
  n.rng = std::make_unique<SplitMix64>(rng_.next_u64());
  n.raft = std::make_unique<raft::Raft>(raft_config(n), *n.rng, std::move(restored));
  n.up = true;
  // Watch streams of this node come back (re-watching from the next revision they need).
  for (size_t k = 0; k < consumers_.size(); ++k) {
    if (consumers_[k].node == i && consumer_opened_[k]) open_watch(k);
  }
  Event tick;
  tick.kind = EvKind::kTick;
  tick.node = i;
  tick.token = n.incarnation;
  schedule(now_ + rng_.uniform(1, profile_.tick_period[static_cast<size_t>(i)]), std::move(tick));
  tracef("n%llu %s: term=%llu commit=%llu last=%llu snap=%llu", (unsigned long long)n.id.v,
         fresh ? "starts" : "restarts", (unsigned long long)n.durable.hs.term.v,
         (unsigned long long)n.durable.hs.commit.v, (unsigned long long)n.durable.last_index().v,
         (unsigned long long)n.durable.snap.meta.index.v);
  trace_hash({1, n.id.v, n.durable.hs.term.v, n.durable.last_index().v});
}

SimResult Simulator::run() {
  profile_ = choose_profile(rng_, opts_);
  result_.nodes = profile_.nodes;
  result_.profile = profile_.describe();
  tracef("seed %llu profile: %s", (unsigned long long)opts_.seed, result_.profile.c_str());
  const size_t n = static_cast<size_t>(profile_.nodes);
  nodes_.resize(n);
  blocked_.assign(n, std::vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i) {
    nodes_[i].id = NodeId(i + 1);
    start_node(static_cast<int>(i), /*fresh=*/true);
  }
  const int lease_clients = store_mode() ? profile_.lease_clients : 0;
  clients_.resize(static_cast<size_t>(profile_.clients + lease_clients));
  if (store_mode()) {
    for (size_t i = 0; i < n; ++i) {
      for (int kind = 0; kind < 3; ++kind) {
        WatchConsumer c;
        c.node = static_cast<int>(i);
        c.kind = kind;
        c.prev_kv = kind == 0;
        consumers_.push_back(c);
        consumer_opened_.push_back(false);
        consumer_start_.push_back(kind == 0   ? 0
                                  : kind == 1 ? rng_.uniform(10, 100) * kTickUnits
                                              : rng_.uniform(30, 150) * kTickUnits);
      }
    }
  }
  for (size_t c = 0; c < clients_.size(); ++c) {
    clients_[c].index = static_cast<int>(c);
    clients_[c].leased = c >= static_cast<size_t>(profile_.clients);
    clients_[c].id = c + 1;
    wake_client_at(clients_[c],
                   rng_.uniform(kTickUnits * kElectionTick, 4 * kTickUnits * kElectionTick));
  }
  Event fault;
  fault.kind = EvKind::kFault;
  schedule(rng_.uniform(profile_.fault_gap_min, profile_.fault_gap_max), std::move(fault));

  // Bound the liveness phase in steps too, in case time stops advancing.
  const uint64_t step_cap = opts_.steps + 2'000'000;
  while (!failed_) {
    if (!liveness_ && fault_steps_ >= opts_.steps) enter_liveness();
    if (liveness_) {
      if (converged()) break;
      if (now_ > liveness_deadline_ || step_ > step_cap) {
        std::string d = "no convergence within " + std::to_string(kLivenessBoundUnits) +
                        " units after healing:";
        for (const Node& nd : nodes_) {
          d += " n" + nd.id.str() + "{" + (nd.up ? raft::role_name(nd.raft->role()) : "down") +
               (nd.up ? " term=" + nd.raft->term().str() + " leader=" + nd.raft->leader().str() +
                            " commit=" + nd.raft->commit_index().str() +
                            " last=" + nd.raft->last_index().str() + " applied=" + nd.applied.str()
                      : std::string()) +
               "}";
        }
        int busy = 0;
        for (const Client& c : clients_) busy += c.busy ? 1 : 0;
        d += " clients_busy=" + std::to_string(busy);
        fail("liveness", d);
        break;
      }
    }
    if (queue_.empty()) {
      fail("liveness", "event queue ran dry");
      break;
    }
    auto node = queue_.extract(queue_.begin());
    now_ = node.key().first;
    ++step_;
    if (!liveness_) ++fault_steps_;
    trace_hash({now_, static_cast<uint64_t>(node.mapped().kind)});
    dispatch(node.mapped());
    if (failed_) break;
    check_after_event();
  }
  if (!failed_) finish_checks();

  if (store_mode()) {
    const StoreCheckStats& cs = checker_.stats();
    result_.stats.store_revision = cs.model_revision;
    result_.stats.expiry_revokes = cs.expiry_revokes;
    result_.stats.counted_refreshes = cs.counted_refreshes;
    result_.stats.late_refresh_acks = cs.late_refresh_acks;
    result_.stats.naive_lease_violations = cs.naive_lease_violations;
    result_.stats.holdings = cs.holdings;
    result_.stats.watch_events = cs.watch_events;
    result_.stats.watch_resyncs = cs.watch_resyncs;
  }
  result_.trace_hash = trace_hash_;
  result_.stats.steps = step_;
  result_.stats.end_time = now_;
  result_.stats.max_term = max_leader_term_;
  result_.stats.max_commit = max_committed_;
  return result_;
}

void Simulator::dispatch(Event& ev) {
  switch (ev.kind) {
    case EvKind::kTick: {
      Node& n = nodes_[static_cast<size_t>(ev.node)];
      if (!n.up || ev.token != n.incarnation) return;
      n.raft->tick();
      if (store_mode()) store_tick(ev.node);
      if (failed_) return;
      if (!n.pending.empty() && rng_.chance(profile_.sync_p)) sync(n);
      Event next;
      next.kind = EvKind::kTick;
      next.node = ev.node;
      next.token = n.incarnation;
      schedule(now_ + profile_.tick_period[static_cast<size_t>(ev.node)], std::move(next));
      return;
    }
    case EvKind::kDeliver:
      deliver(ev.msg);
      return;
    case EvKind::kFault: {
      if (liveness_) return;
      do_fault();
      Event next;
      next.kind = EvKind::kFault;
      schedule(now_ + rng_.uniform(profile_.fault_gap_min, profile_.fault_gap_max),
               std::move(next));
      return;
    }
    case EvKind::kClient:
      client_wake(ev.client, ev.token);
      return;
    case EvKind::kRestart: {
      Node& n = nodes_[static_cast<size_t>(ev.node)];
      if (n.up || ev.token != n.incarnation) return;
      start_node(ev.node, /*fresh=*/false);
      return;
    }
  }
}

void Simulator::enter_liveness() {
  liveness_ = true;
  liveness_deadline_ = now_ + kLivenessBoundUnits;
  for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
  profile_.drop_p = 0;
  profile_.dup_p = 0;
  profile_.slow_p = 0;
  profile_.lat_max = std::min<uint64_t>(profile_.lat_max, tenths(5));
  tracef("liveness phase: heal everything, restart crashed nodes");
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].up) {
      ++nodes_[i].incarnation;  // cancels the pending restart event
      start_node(static_cast<int>(i), /*fresh=*/false);
    }
  }
}

bool Simulator::converged() {
  for (const Client& c : clients_) {
    if (c.busy) return false;
  }
  const int l = leader_index();
  if (l < 0) return false;
  const Node& leader = nodes_[static_cast<size_t>(l)];
  if (leader.raft->commit_index() != leader.raft->last_index()) return false;
  for (const Node& n : nodes_) {
    if (!n.up || n.raft->leader() != leader.id || n.raft->term() != leader.raft->term()) {
      return false;
    }
    if (n.applied != leader.raft->commit_index()) return false;
  }
  return true;
}

void Simulator::finish_checks() {
  // Replicas that applied the same prefix hold byte-identical state.
  const uint64_t h = sm_state_hash(nodes_[0]);
  for (const Node& n : nodes_) {
    if (sm_state_hash(n) != h) {
      fail("state-machine-safety", "after convergence node " + n.id.str() +
                                       " state differs from node 1 at applied index " +
                                       n.applied.str());
      return;
    }
  }
  // Ops whose outcome the client never learned would be open-ended intervals, and a few
  // dozen of them make the search exponential. The simulator knows when a replica first
  // executed each command, so it bounds them instead: in a correct system a log command
  // takes effect no later than its first execution anywhere, so that time is a valid
  // return time; a command no replica ever executed took effect "never", so it is left
  // out (if some read saw its value, that read is then rightly reported). Reads through
  // ReadIndex never enter the log; an unanswered one changes nothing and is dropped.
  std::vector<KvOp> checked;
  checked.reserve(history_.size());
  for (size_t k = 0; k < history_.size(); ++k) {
    KvOp op = history_[k];
    if (!op.outcome_known()) {
      if (first_applied_[k] == 0) continue;
      op.return_time = first_applied_[k];
      op.output_unknown = true;
    }
    checked.push_back(std::move(op));
  }
  LinearizabilityResult lin = check_kv_linearizable(checked);
  result_.stats.linearizability_steps = lin.search_steps;
  if (lin.verdict == LinearizabilityResult::Verdict::kNotLinearizable) {
    fail("linearizability", lin.details);
  } else if (lin.verdict == LinearizabilityResult::Verdict::kInconclusive) {
    result_.stats.linearizability_inconclusive = true;
  }
  if (!failed_ && store_mode()) finish_store_checks();
}

// ---------------------------------------------------------------------------------------
// Storage and the Ready cycle.

void Simulator::sync(Node& n) {
  for (const WriteOp& op : n.pending) apply_write(&n.durable, op);
  n.pending.clear();
}

// Step 1 of the Ready contract: hand snapshot, entries and hard state to storage, and
// make them durable if the Ready says so.
void Simulator::persist(Node& n, const Ready& rd, std::optional<uint64_t>* snap_digest) {
  const bool term_or_vote_changed = rd.hard_state && (rd.hard_state->term != n.last_hs.term ||
                                                      rd.hard_state->vote != n.last_hs.vote);
  if ((!rd.entries.empty() || rd.snapshot || term_or_vote_changed) && !rd.must_sync) {
    fail("ready-contract", "node " + n.id.str() + " Ready has " +
                               std::to_string(rd.entries.size()) + " entries" +
                               (rd.snapshot ? ", a snapshot" : "") +
                               (term_or_vote_changed ? ", a new term/vote" : "") +
                               " but must_sync=false: a crash could lose what was acknowledged");
    return;
  }
  if (rd.snapshot) {
    const Snapshot& s = *rd.snapshot;
    uint64_t digest = 0;
    if (!s.data || !snapshot_digest(*s.data, &digest)) {
      fail("snapshot-corrupt",
           "node " + n.id.str() + " received an undecodable snapshot at " + s.meta.index.str());
      return;
    }
    check_log_digest(s.meta.index, s.meta.term, digest, static_cast<int>(n.id.v - 1));
    // Installing a snapshot writes it to a temp file, fsyncs and renames: durable at once.
    sync(n);
    n.durable.install_snapshot(s, digest);
    n.written.install_snapshot(s, digest);
    *snap_digest = digest;
  }
  if (!rd.entries.empty()) {
    WriteOp op;
    std::optional<uint64_t> prev;
    for (const Entry& e : rd.entries) {
      if (e.index <= n.written.snap.meta.index) continue;
      if (!prev) {
        prev = n.written.digest_at(e.index - 1);
        if (!prev) {
          fail("persist-contract", "node " + n.id.str() + " Ready entries start at " +
                                       e.index.str() + " past its log end " +
                                       n.written.last_index().str());
          return;
        }
      } else if (e.index != op.recs.back().entry.index + 1) {
        fail("persist-contract",
             "node " + n.id.str() + " Ready entries not contiguous at " + e.index.str());
        return;
      }
      LogRec r{e, chain_digest(*prev, e)};
      prev = r.digest;
      check_log_digest(e.index, e.term, r.digest, static_cast<int>(n.id.v - 1));
      op.recs.push_back(std::move(r));
    }
    if (!op.recs.empty()) {
      std::string error = n.written.append(op.recs);
      if (!error.empty()) {
        fail("persist-contract", "node " + n.id.str() + ": " + error);
        return;
      }
      n.pending.push_back(std::move(op));
    }
  }
  if (rd.hard_state) {
    WriteOp op;
    op.is_hard_state = true;
    op.hs = *rd.hard_state;
    n.written.hs = *rd.hard_state;
    n.last_hs = *rd.hard_state;
    n.pending.push_back(std::move(op));
  }
  if (rd.must_sync && opts_.inject != SimOptions::InjectedBug::kSkipFsync) sync(n);
}

void Simulator::process_ready(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  while (!failed_ && n.up && n.raft->has_ready()) {
    Ready rd = n.raft->ready();
    trace_hash({2, n.id.v, rd.entries.size(), rd.committed_entries.size(), rd.messages.size(),
                rd.hard_state ? rd.hard_state->term.v : 0,
                rd.hard_state ? rd.hard_state->commit.v : 0,
                rd.snapshot ? rd.snapshot->meta.index.v : 0, rd.must_sync ? 1u : 0u});
    if (rd.soft_state) {
      tracef("n%llu soft state: %s leader=%llu term=%llu", (unsigned long long)n.id.v,
             raft::role_name(rd.soft_state->role), (unsigned long long)rd.soft_state->leader.v,
             (unsigned long long)n.raft->term().v);
    }
    std::optional<uint64_t> snap_digest;
    // As the agent does: a leader's appends go before the persist (types.h).
    std::vector<Message> after_persist;
    bool sent_early = false;
    for (const Message& m : rd.messages) {
      if (raft::can_send_before_persist(m.type)) {
        send(m);
        sent_early = sent_early || !rd.entries.empty();
      } else {
        after_persist.push_back(m);
      }
    }
    size_t down = 0;
    for (const Node& other : nodes_) down += other.up ? 0 : 1;
    // Like any crash fault: not in the liveness phase, and within the profile's max_down.
    if (sent_early && !liveness_ && static_cast<int>(down) < profile_.max_down &&
        rng_.chance(profile_.crash_mid_ready_p)) {
      tracef("n%llu crashes after sending its appends, before persisting them",
             (unsigned long long)n.id.v);
      ++result_.stats.crashes_mid_ready;
      crash(i);
      return;
    }
    persist(n, rd, &snap_digest);
    if (failed_) return;
    for (const Message& m : after_persist) send(m);  // only after persist (types.h)
    // As the agent does: leadership news before the snapshot and the committed entries.
    if (rd.soft_state && store_mode()) {
      on_leadership(i, rd.soft_state->role == raft::StateRole::kLeader);
    }
    if (rd.snapshot) apply_snapshot(i, *rd.snapshot, *snap_digest);
    for (const Entry& e : rd.committed_entries) {
      if (failed_) return;
      apply_entry(i, e);
    }
    if (failed_) return;
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = n.read_waiters.find(rs.context);
      tracef("n%llu read state ctx=%s index=%llu", (unsigned long long)n.id.v, rs.context.c_str(),
             (unsigned long long)rs.index.v);
      if (it == n.read_waiters.end()) continue;
      ReadWaiter w = it->second;
      w.index = rs.index;
      n.read_waiters.erase(it);
      n.ready_reads.push_back(std::move(w));
    }
    serve_reads(i);
    n.raft->advance(rd);
  }
  if (!failed_ && n.up) maybe_compact(i);
}

void Simulator::apply_snapshot(int i, const Snapshot& s, uint64_t digest) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (s.meta.index <= n.applied) {
    fail("apply-order", "node " + n.id.str() + " told to apply a snapshot at " +
                            s.meta.index.str() + " but it already applied " + n.applied.str());
    return;
  }
  uint64_t ignored = 0;
  if (!load_snapshot(i, *s.data, &ignored)) {
    fail("snapshot-corrupt", "node " + n.id.str() + " snapshot at " + s.meta.index.str());
    return;
  }
  n.applied = s.meta.index;
  n.applied_term = s.meta.term;
  n.applied_digest = digest;
  ++result_.stats.snapshots_installed;
  tracef("n%llu installs snapshot index=%llu term=%llu", (unsigned long long)n.id.v,
         (unsigned long long)s.meta.index.v, (unsigned long long)s.meta.term.v);
  const ApplyRec* rec = s.meta.index.v < applied_.size() ? &applied_[s.meta.index.v] : nullptr;
  if (rec && rec->set && (rec->state_hash != sm_state_hash(n) || rec->digest != digest)) {
    fail("state-machine-safety", "node " + n.id.str() + " installed a snapshot at index " +
                                     s.meta.index.str() + " that differs from what node " +
                                     std::to_string(rec->node + 1) + " applied there");
  }
  // A client waiting for an op that the snapshot covers will time out and retry; the
  // session table answers the retry.
}

void Simulator::apply_entry(int i, const Entry& e) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (e.index != n.applied + 1) {
    fail("apply-order",
         "node " + n.id.str() + " applies index " + e.index.str() + " after " + n.applied.str());
    return;
  }
  if (e.index > n.raft->commit_index()) {
    fail("apply-uncommitted", "node " + n.id.str() + " applies index " + e.index.str() +
                                  " beyond its commit index " + n.raft->commit_index().str());
    return;
  }
  const LogRec* rec = n.written.rec(e.index);
  if (rec == nullptr || rec->entry.term != e.term || rec->entry.data != e.data) {
    fail("apply-unpersisted", "node " + n.id.str() + " applies index " + e.index.str() + " term " +
                                  e.term.str() + " which is not in its persisted log");
    return;
  }
  if (store_mode()) {
    if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
      store_apply(i, e);
      if (failed_) return;
    } else {
      n.mvcc.apply_noop(e.index);
    }
  } else if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
    std::optional<KvCommand> cmd = decode_command(e.data);
    if (!cmd) {
      fail("apply-corrupt", "node " + n.id.str() + " index " + e.index.str() +
                                " holds data that is no client command");
      return;
    }
    KvStateMachine::ApplyResult r = n.kv.apply(*cmd);
    if (r.applied == KvStateMachine::Applied::kFresh) {
      auto h = op_index_.find({cmd->client, cmd->seq});
      if (h != op_index_.end() && first_applied_[h->second] == 0) {
        first_applied_[h->second] = hclock_++;
      }
    }
    if (r.applied != KvStateMachine::Applied::kStale) {
      auto w = n.waiters.find({cmd->client, cmd->seq});
      if (w != n.waiters.end()) {
        Client& c = clients_[static_cast<size_t>(w->second)];
        n.waiters.erase(w);
        if (c.busy && c.cmd.seq == cmd->seq) complete(c, r.output, i);
      }
    }
  }
  n.applied = e.index;
  n.applied_term = e.term;
  n.applied_digest = rec->digest;
  if (applied_.size() <= e.index.v) applied_.resize(e.index.v * 2 + 16);
  ApplyRec& ar = applied_[e.index.v];
  const uint64_t data_hash = hash_bytes(e.data);
  const uint64_t state_hash = sm_state_hash(n);
  if (!ar.set) {
    ar = ApplyRec{true, e.term.v, data_hash, rec->digest, state_hash, i};
  } else if (ar.term != e.term.v || ar.data_hash != data_hash || ar.digest != rec->digest ||
             ar.state_hash != state_hash) {
    fail("state-machine-safety",
         "at index " + e.index.str() + " node " + n.id.str() + " applied term " + e.term.str() +
             " data#" + std::to_string(data_hash % 100000) + " but node " +
             std::to_string(ar.node + 1) + " applied term " + std::to_string(ar.term) + " data#" +
             std::to_string(ar.data_hash % 100000) +
             (ar.state_hash != state_hash ? " (states differ)" : ""));
  }
}

void Simulator::serve_reads(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  for (size_t k = 0; k < n.ready_reads.size();) {
    const ReadWaiter& w = n.ready_reads[k];
    if (w.index > n.applied) {
      ++k;
      continue;
    }
    Client& c = clients_[static_cast<size_t>(w.client)];
    if (c.busy && c.cmd.seq == w.seq) {
      KvOutput out;
      out.read_value = read_local(n, w.key);
      ++result_.stats.reads_via_read_index;
      complete(c, out, i);
    }
    n.ready_reads.erase(n.ready_reads.begin() + static_cast<std::ptrdiff_t>(k));
  }
}

void Simulator::maybe_compact(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (n.applied <= n.durable.snap.meta.index ||
      n.applied - n.durable.snap.meta.index < profile_.compact_every) {
    return;
  }
  Snapshot s;
  s.meta.index = n.applied;
  s.meta.term = n.applied_term;
  s.meta.conf = n.raft->conf();
  s.data = std::make_shared<const std::string>(make_snapshot(i));
  Status st = n.raft->compact(s);
  if (!st.ok()) {
    fail("api-contract", "node " + n.id.str() + " compact at applied index " + n.applied.str() +
                             " (raft applied " + n.raft->applied_index().str() +
                             ") failed: " + st.to_string());
    return;
  }
  // Saving a snapshot syncs the log and writes the snapshot file durably.
  sync(n);
  n.durable.compact(s, n.applied_digest);
  n.written.compact(s, n.applied_digest);
  ++result_.stats.compactions;
  tracef("n%llu compacts to %llu", (unsigned long long)n.id.v, (unsigned long long)n.applied.v);
}

void Simulator::crash(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  // The OS wrote some prefix of the unsynced writes; the next one may be torn.
  const size_t survive = rng_.uniform(0, n.pending.size());
  for (size_t k = 0; k < survive; ++k) apply_write(&n.durable, n.pending[k]);
  size_t torn = 0;
  if (survive < n.pending.size() && rng_.chance(profile_.torn_p)) {
    WriteOp partial = n.pending[survive];
    if (!partial.is_hard_state && partial.recs.size() > 1) {
      torn = rng_.uniform(1, partial.recs.size() - 1);
      partial.recs.resize(torn);
      apply_write(&n.durable, partial);
    }
  }
  tracef("n%llu CRASH: %zu of %zu unsynced writes survive, torn=%zu", (unsigned long long)n.id.v,
         survive, n.pending.size(), torn);
  trace_hash({3, n.id.v, survive, torn});
  n.pending.clear();
  n.raft.reset();
  n.up = false;
  ++n.incarnation;
  n.waiters.clear();
  n.read_waiters.clear();
  n.ready_reads.clear();
  n.store_waiters.clear();
  n.store_leader = false;
  for (WatchConsumer& c : consumers_) {
    if (c.node == i) c.active = false;  // the node's watchers die with it
  }
  ++result_.stats.crashes;
  // Clients connected to it see the connection drop and retry elsewhere soon.
  for (Client& c : clients_) {
    if (c.busy && c.target == i) wake_client_at(c, now_ + rng_.uniform(tenths(1), tenths(10)));
  }
  if (!liveness_) {
    Event ev;
    ev.kind = EvKind::kRestart;
    ev.node = i;
    ev.token = n.incarnation;
    schedule(now_ + rng_.uniform(profile_.down_min, profile_.down_max), std::move(ev));
  }
}

void Simulator::send(const Message& m) {
  ++result_.stats.messages_sent;
  if (m.to.v == 0 || m.to.v > nodes_.size() || m.from.v == 0 || m.from.v > nodes_.size()) {
    fail("message-contract", "message with bad endpoints: " + msg_str(m));
    return;
  }
  const size_t from = m.from.v - 1, to = m.to.v - 1;
  if (blocked_[from][to] || rng_.chance(profile_.drop_p)) {
    ++result_.stats.messages_dropped;
    tracef("drop %s", msg_str(m).c_str());
    return;
  }
  const int copies = rng_.chance(profile_.dup_p) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    const uint64_t latency = rng_.chance(profile_.slow_p)
                                 ? rng_.uniform(profile_.lat_max, profile_.slow_max)
                                 : rng_.uniform(profile_.lat_min, profile_.lat_max);
    Event ev;
    ev.kind = EvKind::kDeliver;
    ev.msg = m;
    schedule(now_ + latency, std::move(ev));
  }
}

void Simulator::deliver(Message& m) {
  const size_t from = m.from.v - 1, to = m.to.v - 1;
  trace_hash({4, static_cast<uint64_t>(m.type), m.from.v, m.to.v, m.term.v, m.index.v,
              m.entries.size(), m.commit.v, m.reject ? 1u : 0u});
  Node& n = nodes_[to];
  if (!n.up || blocked_[from][to]) {
    ++result_.stats.messages_dropped;
    tracef("lost %s", msg_str(m).c_str());
    return;
  }
  tracef("deliver %s", msg_str(m).c_str());
  Status st = n.raft->step(m);
  if (!st.ok()) tracef("  step: %s", st.to_string().c_str());
}

// The node that is leader in the highest term, or -1.
int Simulator::leader_index() {
  int best = -1;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (!n.up || n.raft->role() != raft::StateRole::kLeader) continue;
    if (best < 0 || n.raft->term() > nodes_[static_cast<size_t>(best)].raft->term()) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

void Simulator::do_fault() {
  int total = 0;
  for (int w : profile_.weights) total += w;
  int r = static_cast<int>(rng_.uniform(0, static_cast<uint64_t>(total - 1)));
  int kind = 0;
  while (r >= profile_.weights[kind]) r -= profile_.weights[kind++];
  const size_t n = nodes_.size();
  int down = 0;
  for (const Node& nd : nodes_) down += nd.up ? 0 : 1;
  trace_hash({5, static_cast<uint64_t>(kind)});
  switch (kind) {
    case kFaultSplit: {
      const uint64_t mask = rng_.uniform(1, (uint64_t{1} << n) - 2);
      std::string desc;
      for (size_t a = 0; a < n; ++a) {
        desc += ((mask >> a) & 1) ? "A" : "B";
        for (size_t b = 0; b < n; ++b) blocked_[a][b] = ((mask >> a) & 1) != ((mask >> b) & 1);
      }
      ++result_.stats.partitions;
      tracef("FAULT split %s", desc.c_str());
      return;
    }
    case kFaultIsolateLeader: {
      int l = leader_index();
      if (l < 0) l = static_cast<int>(rng_.uniform(0, n - 1));
      for (size_t b = 0; b < n; ++b) {
        if (b == static_cast<size_t>(l)) continue;
        blocked_[static_cast<size_t>(l)][b] = true;
        blocked_[b][static_cast<size_t>(l)] = true;
      }
      ++result_.stats.partitions;
      tracef("FAULT isolate n%d", l + 1);
      return;
    }
    case kFaultOneWay: {
      const size_t a = rng_.uniform(0, n - 1);
      if (rng_.chance(0.3)) {
        for (size_t b = 0; b < n; ++b) blocked_[a][b] = b != a;
        tracef("FAULT n%zu cannot send", a + 1);
      } else {
        const size_t b = (a + rng_.uniform(1, n - 1)) % n;
        blocked_[a][b] = true;
        tracef("FAULT one-way n%zu -/-> n%zu", a + 1, b + 1);
      }
      ++result_.stats.partitions;
      return;
    }
    case kFaultHeal:
      for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
      tracef("FAULT heal");
      return;
    case kFaultCrash:
    case kFaultCrashLeader: {
      if (down >= profile_.max_down) return;
      int target = kind == kFaultCrashLeader ? leader_index() : -1;
      if (target < 0) {
        std::vector<int> up;
        for (size_t i = 0; i < n; ++i) {
          if (nodes_[i].up) up.push_back(static_cast<int>(i));
        }
        if (up.empty()) return;
        target = up[rng_.uniform(0, up.size() - 1)];
      }
      crash(target);
      return;
    }
    case kFaultTransfer: {
      const int l = leader_index();
      if (l < 0) return;
      const size_t to = (static_cast<size_t>(l) + rng_.uniform(1, n - 1)) % n;
      Status st = nodes_[static_cast<size_t>(l)].raft->transfer_leadership(NodeId(to + 1));
      tracef("FAULT transfer n%d -> n%zu: %s", l + 1, to + 1, st.to_string().c_str());
      return;
    }
    case kFaultCampaign: {
      const size_t a = rng_.uniform(0, n - 1);
      // Leaders too: campaign() must then be a no-op (finding F1 in /work/sim-findings.md).
      if (!nodes_[a].up) return;
      nodes_[a].raft->campaign();
      tracef("FAULT n%zu campaigns", a + 1);
      return;
    }
    default:
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Clients.

void Simulator::wake_client_at(Client& c, uint64_t at) {
  ++c.token;
  Event ev;
  ev.kind = EvKind::kClient;
  ev.client = c.index;
  ev.token = c.token;
  schedule(at, std::move(ev));
}

void Simulator::client_wake(int ci, uint64_t token) {
  Client& c = clients_[static_cast<size_t>(ci)];
  if (token != c.token) return;
  if (store_mode()) {
    store_client_wake(c);
    return;
  }
  if (!c.busy) {
    if (!liveness_) start_op(c);
    return;
  }
  // The current attempt timed out (or its node went away).
  if (!liveness_ && now_ - c.first_call >= profile_.op_deadline) {
    tracef("client %llu gives up on seq %llu: outcome unknown", (unsigned long long)c.id,
           (unsigned long long)c.cmd.seq);
    trace_hash({6, c.id, c.cmd.seq});
    c.busy = false;
    ++result_.stats.ops_unknown;
    wake_client_at(c, now_ + rng_.uniform(tenths(1), profile_.think_max));
    return;
  }
  submit(c);
}

void Simulator::start_op(Client& c) {
  KvCommand cmd;
  cmd.client = c.id;
  cmd.seq = ++c.seq;
  cmd.key = "k" + std::to_string(rng_.uniform(0, static_cast<uint64_t>(profile_.keys - 1)));
  const uint64_t roll = rng_.uniform(0, 99);
  cmd.kind = roll < 40 ? KvOpKind::kPut : roll < 75 ? KvOpKind::kGet : KvOpKind::kCas;
  if (cmd.kind != KvOpKind::kGet) {
    cmd.value = "c" + std::to_string(c.id) + "." + std::to_string(cmd.seq);
    written_values_.push_back(cmd.value);
  }
  if (cmd.kind == KvOpKind::kCas) {
    auto it = c.seen.find(cmd.key);
    if (it != c.seen.end() && rng_.chance(0.7)) {
      cmd.expected = it->second;
    } else if (!written_values_.empty() && rng_.chance(0.7)) {
      cmd.expected = written_values_[rng_.uniform(0, written_values_.size() - 1)];
    }
  }
  c.cmd = cmd;
  c.via_read_index = cmd.kind == KvOpKind::kGet && rng_.chance(profile_.read_index_p);
  c.busy = true;
  c.first_call = now_;
  c.attempts = 0;
  KvOp op;
  op.id = history_.size();
  op.client = c.id;
  op.kind = cmd.kind;
  op.key = cmd.key;
  op.value = cmd.value;
  op.expected = cmd.expected;
  op.call_time = hclock_++;
  c.hist = history_.size();
  op_index_[{c.id, cmd.seq}] = history_.size();
  history_.push_back(std::move(op));
  first_applied_.push_back(0);
  tracef("client %llu calls %s%s", (unsigned long long)c.id, describe_op(history_.back()).c_str(),
         c.via_read_index ? " (read index)" : "");
  trace_hash({7, c.id, cmd.seq, static_cast<uint64_t>(cmd.kind)});
  submit(c);
}

void Simulator::submit(Client& c) {
  ++c.attempts;
  size_t target;
  if (c.believed_leader.v != 0 && rng_.chance(0.75)) {
    target = c.believed_leader.v - 1;
  } else {
    target = rng_.uniform(0, nodes_.size() - 1);
  }
  c.target = static_cast<int>(target);
  Node& n = nodes_[target];
  trace_hash({8, c.id, c.cmd.seq, target});
  if (!n.up) {
    c.believed_leader = kNoNode;
    wake_client_at(c, now_ + rng_.uniform(tenths(5), tenths(20)));  // connection refused
    return;
  }
  if (c.via_read_index && opts_.inject == SimOptions::InjectedBug::kLocalReads) {
    KvOutput out;
    out.read_value = read_local(n, c.cmd.key);
    complete(c, out, static_cast<int>(target));
    return;
  }
  if (c.via_read_index) {
    const std::string ctx = "c" + std::to_string(c.id) + "." + std::to_string(c.cmd.seq) + "." +
                            std::to_string(c.attempts);
    n.read_waiters[ctx] = ReadWaiter{c.index, c.cmd.seq, c.cmd.key, LogIndex(0)};
    n.raft->read_index(ctx);
    wake_client_at(c, now_ + profile_.retry_timeout);
    return;
  }
  Status st = n.raft->propose(encode_command(c.cmd));
  if (!st.ok()) {
    const NodeId hint = n.raft->leader();
    c.believed_leader = hint == n.id ? kNoNode : hint;
    wake_client_at(c, now_ + rng_.uniform(tenths(5), tenths(20)));
    return;
  }
  n.waiters[{c.id, c.cmd.seq}] = c.index;
  wake_client_at(c, now_ + profile_.retry_timeout);
}

void Simulator::complete(Client& c, const KvOutput& out, int node) {
  KvOp& op = history_[c.hist];
  op.return_time = hclock_++;
  op.read_value = out.read_value;
  op.cas_ok = out.cas_ok;
  c.busy = false;
  ++result_.stats.ops_ok;
  switch (op.kind) {
    case KvOpKind::kPut:
      c.seen[op.key] = op.value;
      break;
    case KvOpKind::kGet:
      c.seen[op.key] = op.read_value;
      break;
    case KvOpKind::kCas:
      if (op.cas_ok) c.seen[op.key] = op.value;
      break;
    case KvOpKind::kDelete:
      c.seen[op.key] = std::nullopt;
      break;
    case KvOpKind::kCasDelete:
      if (op.cas_ok) c.seen[op.key] = std::nullopt;
      break;
  }
  const NodeId hint = nodes_[static_cast<size_t>(node)].raft->leader();
  if (hint.v != 0) c.believed_leader = hint;
  tracef("client %llu returns %s (via n%d)", (unsigned long long)c.id, describe_op(op).c_str(),
         node + 1);
  trace_hash({9, c.id, op.read_value ? hash_bytes(*op.read_value) : 1, op.cas_ok ? 1u : 0u});
  if (!liveness_) {
    wake_client_at(c, now_ + rng_.uniform(tenths(1), profile_.think_max));
  } else {
    ++c.token;  // no more ops; cancel the pending timeout
  }
}

std::optional<std::string> Simulator::read_local(const Node& n, const std::string& key) const {
  if (!store_mode()) return n.kv.get(key);
  auto r = n.mvcc.range(key, "");
  if (!r || r->kvs.empty()) return std::nullopt;
  return r->kvs.front().value;
}

// ---------------------------------------------------------------------------------------
// The state machine, either mode.

// Store-mode snapshot: the simulator's log digest and response chain (so checking goes on
// across snapshots), then MvccStore::serialize() exactly as the agent stores it.
constexpr uint8_t kStoreSnapshotMagic = 0xD7;
const std::string kAllKeys(1, '\0');  // with store::kRangeAll: every key

std::string Simulator::make_snapshot(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (!store_mode()) return n.kv.serialize(n.applied_digest);
  const std::string bytes = n.mvcc.serialize();
  record_bytes(n.applied.v, hash_bytes(bytes), i);
  std::string out;
  ByteWriter w(&out);
  w.u8(kStoreSnapshotMagic);
  w.u64(n.applied_digest);
  w.u64(n.response_chain);
  w.bytes(bytes);
  return out;
}

namespace {
bool parse_store_snapshot(std::string_view data, uint64_t* digest, uint64_t* chain,
                          std::string_view* bytes) {
  ByteReader r(data);
  if (r.u8() != kStoreSnapshotMagic) return false;
  *digest = r.u64();
  *chain = r.u64();
  *bytes = r.bytes();
  return r.ok() && r.remaining() == 0;
}
}  // namespace

bool Simulator::snapshot_digest(const std::string& data, uint64_t* digest) const {
  if (!store_mode()) {
    KvStateMachine probe;
    return probe.deserialize(data, digest);
  }
  uint64_t chain = 0;
  std::string_view bytes;
  return parse_store_snapshot(data, digest, &chain, &bytes);
}

// Replaces node i's state machine with a snapshot (install or restart), as the agent does:
// store.restore(), then the lease tracker from the store's leases, then the watchers.
bool Simulator::load_snapshot(int i, const std::string& data, uint64_t* digest) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (!store_mode()) return n.kv.deserialize(data, digest);
  uint64_t chain = 0;
  std::string_view bytes;
  if (!parse_store_snapshot(data, digest, &chain, &bytes)) return false;
  Status st = n.mvcc.restore(bytes);
  if (!st.ok()) {
    fail("snapshot-corrupt", "node " + n.id.str() + " restore: " + st.to_string());
    return false;
  }
  if (n.mvcc.serialize() != bytes) {
    fail("snapshot-canonical", "node " + n.id.str() + " restored a snapshot at index " +
                                   n.mvcc.applied().str() + " whose serialize() differs");
    return false;
  }
  record_bytes(n.mvcc.applied().v, hash_bytes(bytes), i);
  n.response_chain = chain;
  const int64_t ms = node_ms(i);
  n.leases.reset(n.mvcc.leases(), ms);
  n.grant_ms.clear();
  for (const store::LeaseInfo& l : n.mvcc.leases()) n.grant_ms[l.id] = ms;
  n.hub->on_restore(n.mvcc);
  return true;
}

uint64_t Simulator::sm_state_hash(const Node& n) const {
  return store_mode() ? n.response_chain : n.kv.state_hash();
}

// ---------------------------------------------------------------------------------------
// Store mode: the node shell.

// The node's clock in ms: 50 ms per tick of its own (drifting) tick period.
int64_t Simulator::node_ms(int i) const {
  return static_cast<int64_t>(now_ * (kTickUnits / 2) /
                              profile_.tick_period[static_cast<size_t>(i)]);
}

namespace {
// What every replica must answer alike at one index (state-machine safety, per apply).
uint64_t response_hash(const store::Response& r) {
  uint64_t h = hash_mix(static_cast<uint64_t>(r.status.code()), static_cast<uint64_t>(r.revision));
  h = hash_mix(h, r.result.index());
  auto hash_kvs = [&](const std::vector<store::KeyValue>& kvs) {
    for (const store::KeyValue& kv : kvs) {
      h = hash_mix(hash_mix(h, hash_bytes(kv.key)), hash_bytes(kv.value));
      h = hash_mix(hash_mix(h, static_cast<uint64_t>(kv.create_revision)),
                   static_cast<uint64_t>(kv.mod_revision));
      h = hash_mix(hash_mix(h, static_cast<uint64_t>(kv.version)), kv.lease.v);
    }
  };
  if (const auto* t = std::get_if<store::TxnResult>(&r.result)) {
    h = hash_mix(h, t->succeeded ? 1 : 2);
    for (const store::OpResult& o : t->responses) {
      if (const auto* rr = std::get_if<store::RangeResult>(&o)) hash_kvs(rr->kvs);
    }
  } else if (const auto* g = std::get_if<store::LeaseGrantResult>(&r.result)) {
    h = hash_mix(hash_mix(h, g->id.v), static_cast<uint64_t>(g->ttl_s));
  }
  for (const store::Event& e : r.events) {
    h = hash_mix(h, static_cast<uint64_t>(e.type));
    hash_kvs({e.kv});
  }
  return h;
}
}  // namespace

// StoreService::apply: the store, then the lease tracker, then watchers, then the client.
void Simulator::store_apply(int i, const Entry& e) {
  Node& n = nodes_[static_cast<size_t>(i)];
  const bool first = !(e.index.v < applied_.size() && applied_[e.index.v].set);
  auto req = store::decode_request(e.data);
  if (!req) {
    fail("apply-corrupt", "node " + n.id.str() + " index " + e.index.str() +
                              " holds no store request: " + req.error().to_string());
    return;
  }
  const int64_t ms = node_ms(i);
  store::Response resp = n.mvcc.apply(e.index, *req);
  if (resp.status.ok()) {
    if (std::holds_alternative<store::LeaseGrant>(req->body)) {
      const auto& g = std::get<store::LeaseGrantResult>(resp.result);
      n.leases.on_grant(g.id, g.ttl_s, ms);
      n.grant_ms[g.id] = ms;
    } else if (const auto* k = std::get_if<store::LeaseKeepAlive>(&req->body)) {
      // As StoreService: a full TTL from now (an expiry decided before this will not apply).
      const auto& ka = std::get<store::LeaseGrantResult>(resp.result);
      // The injected bug: followers expire leases from deadlines they never renew.
      if (n.store_leader || opts_.inject != SimOptions::InjectedBug::kFollowerExpiry) {
        n.leases.on_grant(k->id, ka.ttl_s, ms);
      }
    } else if (const auto* v = std::get_if<store::LeaseRevoke>(&req->body)) {
      n.leases.on_revoke(v->id);
      n.grant_ms.erase(v->id);
    } else if (const auto* x = std::get_if<store::LeaseExpire>(&req->body)) {
      n.leases.on_revoke(x->id);
      n.grant_ms.erase(x->id);
    } else if (first && std::holds_alternative<store::Compact>(req->body)) {
      ++result_.stats.store_compactions;
    }
  }
  n.hub->on_apply(resp);
  n.response_chain = hash_mix(n.response_chain, response_hash(resp));
  trace_hash({11, n.id.v, e.index.v, static_cast<uint64_t>(resp.revision)});
  if (first) {
    checker_.on_first_apply(*req, resp);
    auto all = n.mvcc.range(kAllKeys, store::kRangeAll);
    if (!all) {
      fail("store-range", "node " + n.id.str() + " range of every key: " + all.error().to_string());
      return;
    }
    checker_.check_state(all->kvs, "node " + n.id.str() + " at index " + e.index.str());
    if (checker_.failed()) {
      fail(checker_.invariant(), checker_.details());
      return;
    }
    auto h = req_hist_.find(req->request_id);
    if (h != req_hist_.end() && first_applied_[h->second] == 0) {
      first_applied_[h->second] = hclock_++;
    }
  }
  if (req->origin == n.id) {
    auto w = n.store_waiters.find(req->request_id);
    if (w != n.store_waiters.end()) {
      Client& c = clients_[static_cast<size_t>(w->second)];
      n.store_waiters.erase(w);
      if (c.busy && c.accepted && c.req.request_id == req->request_id) store_complete(c, resp, i);
    }
  }
}

// StoreService::on_leadership: a new leader gives every lease a full TTL from now.
void Simulator::on_leadership(int i, bool leader) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (leader == n.store_leader) return;
  n.store_leader = leader;
  const int64_t ms = node_ms(i);
  tracef("n%llu store leadership %s at %lld ms", (unsigned long long)n.id.v,
         leader ? "gained" : "lost", (long long)ms);
  if (leader) {
    n.leases.reset(n.mvcc.leases(), ms);
    n.leases.on_become_leader(ms);
    if (opts_.inject == SimOptions::InjectedBug::kNoTtlReset) {
      // The bug: keep the deadlines of the grants this node applied as a follower.
      for (const store::LeaseInfo& l : n.mvcc.leases()) {
        auto g = n.grant_ms.find(l.id);
        n.leases.on_grant(l.id, l.ttl_s, g != n.grant_ms.end() ? g->second : ms);
      }
    }
    n.compactor.emplace(store::AutoCompactor::Options{
        profile_.retain_revisions, 0, profile_.compact_interval_ms, profile_.compact_max_step});
  } else if (opts_.inject != SimOptions::InjectedBug::kFollowerExpiry) {
    n.leases.on_lose_leadership();
  }
}

// StoreService::tick on the leader (expiry, compaction), and the node's watch consumers.
void Simulator::store_tick(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  const int64_t ms = node_ms(i);
  if (n.store_leader || opts_.inject == SimOptions::InjectedBug::kFollowerExpiry) {
    for (store::LeaseId id : n.leases.expired(ms)) {
      store::Request r{n.id, next_request_id_++, store::LeaseExpire{id, n.mvcc.applied()}};
      Status st = n.raft->propose(store::encode_request(r));
      tracef("n%llu proposes the expiry of lease %llu (#%llu): %s", (unsigned long long)n.id.v,
             (unsigned long long)id.v, (unsigned long long)r.request_id, st.to_string().c_str());
      trace_hash({12, n.id.v, id.v, st.ok() ? 1u : 0u});
      if (st.ok()) checker_.on_expiry_proposed(r.request_id, id, now_);
    }
  }
  if (n.store_leader && n.compactor) {
    n.compactor->observe(ms, n.mvcc.revision());
    if (auto rev = n.compactor->next(ms, n.mvcc.revision(), n.mvcc.compact_revision())) {
      store::Request r{n.id, next_request_id_++, store::Compact{*rev}};
      Status st = n.raft->propose(store::encode_request(r));
      tracef("n%llu proposes compact %lld: %s", (unsigned long long)n.id.v, (long long)*rev,
             st.to_string().c_str());
    }
  }
  for (size_t k = 0; k < consumers_.size() && !failed_; ++k) {
    WatchConsumer& c = consumers_[k];
    if (c.node != i) continue;
    if (!consumer_opened_[k]) {
      if (now_ < consumer_start_[k]) continue;
      consumer_opened_[k] = true;
      if (c.kind == 1) {
        c.next_revision = static_cast<int64_t>(
            rng_.uniform(1, static_cast<uint64_t>(std::max<int64_t>(1, n.mvcc.revision()))));
      }
      open_watch(k);
      continue;
    }
    if (!c.active || !rng_.chance(profile_.pull_p)) continue;
    pull_watch(k, false);
    if (failed_ || !c.active || !rng_.chance(0.3)) continue;
    if (auto pr = n.hub->progress(c.id, n.mvcc)) {
      checker_.on_watch_progress(c, *pr);
      if (checker_.failed()) fail(checker_.invariant(), checker_.details());
    }
  }
}

void Simulator::record_bytes(uint64_t index, uint64_t hash, int node) {
  ++result_.stats.bytes_samples;
  auto [it, inserted] = bytes_at_.emplace(index, std::make_pair(hash, node));
  if (!inserted && it->second.first != hash) {
    fail("replica-bytes",
         "node " + std::to_string(node + 1) + " and node " + std::to_string(it->second.second + 1) +
             " serialize() different bytes at applied index " + std::to_string(index));
  }
}

void Simulator::sample_bytes() {
  for (size_t i = 0; i < nodes_.size() && !failed_; ++i) {
    const Node& n = nodes_[i];
    if (n.up) record_bytes(n.applied.v, hash_bytes(n.mvcc.serialize()), static_cast<int>(i));
  }
}

// A watch on every key from the consumer's next revision (a new watcher each time: at
// first, after the node restarted, after a resync).
void Simulator::open_watch(size_t k) {
  WatchConsumer& c = consumers_[k];
  Node& n = nodes_[static_cast<size_t>(c.node)];
  store::WatchSpec spec;
  spec.key = kAllKeys;
  spec.range_end = std::string(store::kRangeAll);
  spec.start_revision = c.next_revision;
  spec.prev_kv = c.prev_kv;
  auto id = n.hub->create(spec, n.mvcc);
  if (!id) {
    fail("watch-create", "node " + n.id.str() + ": " + id.error().to_string());
    return;
  }
  c.id = *id;
  c.active = true;
  tracef("n%d watcher kind %d watches from revision %lld", c.node + 1, c.kind,
         (long long)c.next_revision);
}

void Simulator::pull_watch(size_t k, bool drain) {
  WatchConsumer& c = consumers_[k];
  Node& n = nodes_[static_cast<size_t>(c.node)];
  for (int round = 0; round < 100000 && c.active; ++round) {
    auto r = n.hub->pull(c.id, n.mvcc);
    if (!r) {
      fail("watch-pull", "node " + n.id.str() + ": " + r.error().to_string());
      return;
    }
    checker_.on_watch_response(c, *r);
    if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
    if (r->compacted) {
      // Resync: read everything now, watch again from the next revision.
      auto all = n.mvcc.range(kAllKeys, store::kRangeAll);
      if (!all) return fail("store-range", all.error().to_string());
      tracef("n%d watcher kind %d compacted at %lld: resync at revision %lld", c.node + 1, c.kind,
             (long long)r->compact_revision, (long long)all->revision);
      checker_.on_resync(c, all->kvs, all->revision);
      if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
      c.active = false;
      open_watch(k);
      continue;
    }
    if (!drain) return;
    const std::vector<store::WatchId> ready = n.hub->ready();
    if (std::find(ready.begin(), ready.end(), c.id) == ready.end()) return;
  }
}

void Simulator::finish_store_checks() {
  const std::string bytes = nodes_[0].mvcc.serialize();
  for (const Node& n : nodes_) {
    if (n.mvcc.serialize() != bytes) {
      return fail("replica-bytes", "after convergence node " + n.id.str() +
                                       " serializes different bytes than node 1 at index " +
                                       n.applied.str());
    }
  }
  auto all = nodes_[0].mvcc.range(kAllKeys, store::kRangeAll);
  if (all) checker_.check_state(all->kvs, "node 1 after convergence");
  if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
  // Every watch stream must have seen the whole applied history.
  for (size_t k = 0; k < consumers_.size() && !failed_; ++k) {
    WatchConsumer& c = consumers_[k];
    if (!consumer_opened_[k]) {
      consumer_opened_[k] = true;
      open_watch(k);
    }
    if (!c.active) open_watch(k);
    pull_watch(k, true);
    if (failed_) return;
    const Node& n = nodes_[static_cast<size_t>(c.node)];
    if (c.next_revision != n.mvcc.revision() + 1) {
      return fail("watch-incomplete", "watcher kind " + std::to_string(c.kind) + " on node " +
                                          n.id.str() + " saw revisions up to " +
                                          std::to_string(c.next_revision - 1) + " of the store's " +
                                          std::to_string(n.mvcc.revision()));
    }
    if (auto pr = n.hub->progress(c.id, n.mvcc)) checker_.on_watch_progress(c, *pr);
    if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
  }
  for (Client& c : clients_) {
    if (c.holder) checker_.end_holding(c.holding, std::min(now_, c.valid_until));
  }
  checker_.finish_elections();
  if (checker_.failed()) fail(checker_.invariant(), checker_.details());
}

// ---------------------------------------------------------------------------------------
// Store mode: clients.

const std::string kElectionKey = "election/x";

void Simulator::store_client_wake(Client& c) {
  if (!c.busy) {
    if (!liveness_) store_start_op(c);
    return;
  }
  if (c.accepted) {
    const Node& n = nodes_[static_cast<size_t>(c.target)];
    const bool lost = !n.up || n.incarnation != c.accepted_incarnation;
    if (now_ >= c.deadline || lost) {
      store_give_up(c);
    } else {
      wake_client_at(c, c.deadline);
    }
    return;
  }
  if (now_ >= c.deadline) {
    store_give_up(c);
    return;
  }
  store_submit(c);
}

void Simulator::store_start_op(Client& c) {
  ++c.seq;
  c.cmd = KvCommand();
  c.cmd.client = c.id;
  c.cmd.seq = c.seq;
  c.via_read_index = false;
  c.accepted = false;
  c.req = store::Request();
  if (c.leased) {
    if (!lease_client_next(c)) return;
    c.deadline = now_ + std::min<uint64_t>(profile_.op_deadline,
                                           lease_validity_units(std::max<int64_t>(1, c.ttl_s)) / 2);
  } else {
    c.store_op = kOpKv;
    KvOp op;
    op.key = "k" + std::to_string(rng_.uniform(0, static_cast<uint64_t>(profile_.keys - 1)));
    const uint64_t roll = rng_.uniform(0, 99);
    op.kind = roll < 30   ? KvOpKind::kPut
              : roll < 55 ? KvOpKind::kGet
              : roll < 65 ? KvOpKind::kDelete
              : roll < 85 ? KvOpKind::kCas
                          : KvOpKind::kCasDelete;
    if (op.kind == KvOpKind::kPut || op.kind == KvOpKind::kCas) {
      op.value = "c" + std::to_string(c.id) + "." + std::to_string(c.seq);
      written_values_.push_back(op.value);
    }
    auto it = c.seen.find(op.key);
    if (op.kind == KvOpKind::kCas) {
      if (it != c.seen.end() && rng_.chance(0.7)) {
        op.expected = it->second;
      } else if (!written_values_.empty() && rng_.chance(0.7)) {
        op.expected = written_values_[rng_.uniform(0, written_values_.size() - 1)];
      }
    } else if (op.kind == KvOpKind::kCasDelete) {
      if (it != c.seen.end() && it->second && rng_.chance(0.7)) {
        op.expected = it->second;
      } else if (!written_values_.empty()) {
        op.expected = written_values_[rng_.uniform(0, written_values_.size() - 1)];
      } else {
        op.kind = KvOpKind::kDelete;
      }
    }
    store::Compare cmp;
    cmp.key = op.key;
    if (op.expected) {
      cmp.target = store::Compare::Target::kValue;
      cmp.value = *op.expected;
    } else {
      cmp.target = store::Compare::Target::kVersion;  // absent: version 0
      cmp.number = 0;
    }
    switch (op.kind) {
      case KvOpKind::kPut:
        c.req.body = store::Put{op.key, op.value, store::kNoLease};
        break;
      case KvOpKind::kGet: {
        c.via_read_index = rng_.chance(profile_.read_index_p);
        store::Txn t;
        t.success.push_back(store::RangeOp{op.key});
        c.req.body = std::move(t);
        break;
      }
      case KvOpKind::kDelete:
        c.req.body = store::DeleteRange{op.key};
        break;
      case KvOpKind::kCas: {
        store::Txn t;
        t.compares.push_back(cmp);
        t.success.push_back(store::Put{op.key, op.value, store::kNoLease});
        c.req.body = std::move(t);
        break;
      }
      case KvOpKind::kCasDelete: {
        store::Txn t;
        t.compares.push_back(cmp);
        t.success.push_back(store::DeleteRange{op.key});
        c.req.body = std::move(t);
        break;
      }
    }
    c.cmd.key = op.key;
    c.cmd.kind = op.kind;
    op.id = history_.size();
    op.client = c.id;
    op.call_time = hclock_++;
    c.hist = history_.size();
    history_.push_back(std::move(op));
    first_applied_.push_back(0);
    c.deadline = now_ + profile_.op_deadline;
  }
  c.busy = true;
  c.first_call = now_;
  c.attempts = 0;
  tracef(
      "client %llu calls %s%s", (unsigned long long)c.id,
      c.store_op == kOpKv ? describe_op(history_[c.hist]).c_str() : describe_request(c.req).c_str(),
      c.via_read_index ? " (read index)" : "");
  trace_hash({7, c.id, c.seq, static_cast<uint64_t>(c.store_op)});
  store_submit(c);
}

// The lease client's next step: grant a lease when it has none, keep it alive on schedule
// (or fall silent so it expires), write its keys, run for election, resign, revoke. Returns
// false (after scheduling a wake-up) when it only waits.
bool Simulator::lease_client_next(Client& c) {
  if (c.lease != store::kNoLease && now_ >= c.valid_until) lose_lease(c, c.valid_until);
  if (c.lease == store::kNoLease) {
    c.ttl_s = static_cast<int64_t>(rng_.uniform(1, 2));
    c.store_op = kOpGrant;
    c.req.body = store::LeaseGrant{store::kNoLease, c.ttl_s};
    return true;
  }
  if (now_ >= c.next_keepalive && now_ >= c.silent_until) {
    if (rng_.chance(profile_.silence_p)) {
      const uint64_t ttl = static_cast<uint64_t>(c.ttl_s) * 1000 * kUnitsPerMs;
      c.silent_until = now_ + rng_.uniform(ttl, 2 * ttl);
      tracef("client %llu stops keep-alives of lease %llu until t=%llu", (unsigned long long)c.id,
             (unsigned long long)c.lease.v, (unsigned long long)c.silent_until);
      next_wake(c);
      return false;
    }
    c.store_op = kOpKeepAlive;
    c.req.body = store::LeaseKeepAlive{c.lease};
    c.next_keepalive = now_ + keepalive_period(c);
    return true;
  }
  const uint64_t roll = rng_.uniform(0, 99);
  const std::string key = "l" + std::to_string(c.id) + "." + std::to_string(rng_.uniform(0, 1));
  const std::string value = "c" + std::to_string(c.id) + "." + std::to_string(c.seq);
  if (roll < 40 || (roll >= 50 && roll < 70 && c.holder)) {
    c.store_op = kOpLeasePut;
    c.req.body = store::Put{key, value, c.lease};
  } else if (roll < 50) {
    c.store_op = kOpLeasePut;  // without the lease: detaches the key from it
    c.req.body = store::Put{key, value, store::kNoLease};
  } else if (roll < 70) {
    c.store_op = kOpCampaign;
    store::Compare absent;
    absent.key = kElectionKey;
    absent.target = store::Compare::Target::kCreate;
    absent.number = 0;
    store::Txn t;
    t.compares.push_back(absent);
    t.success.push_back(store::Put{kElectionKey, "c" + std::to_string(c.id), c.lease});
    t.failure.push_back(store::RangeOp{kElectionKey});
    c.req.body = std::move(t);
  } else if (roll < 75 && c.holder) {
    c.store_op = kOpResign;
    checker_.end_holding(c.holding, now_);  // no longer acts as holder from now on
    c.holder = false;
    store::Compare mine;
    mine.key = kElectionKey;
    mine.target = store::Compare::Target::kCreate;
    mine.number = c.fence_token;
    store::Txn t;
    t.compares.push_back(mine);
    t.success.push_back(store::DeleteRange{kElectionKey});
    c.req.body = std::move(t);
  } else if (roll >= 75 && roll < 78) {
    c.store_op = kOpRevoke;
    const store::LeaseId id = c.lease;
    lose_lease(c, now_);
    c.req.body = store::LeaseRevoke{id};
  } else {
    next_wake(c);
    return false;
  }
  return true;
}

void Simulator::next_wake(Client& c) {
  if (liveness_) {
    ++c.token;
    return;
  }
  uint64_t at = now_ + rng_.uniform(tenths(1), profile_.think_max);
  if (c.leased && c.lease != store::kNoLease && c.next_keepalive > now_) {
    at = std::min(at, c.next_keepalive);
  }
  wake_client_at(c, at);
}

void Simulator::lose_lease(Client& c, uint64_t end) {
  if (c.holder) {
    checker_.end_holding(c.holding, std::min(end, c.valid_until));
    c.holder = false;
  }
  tracef("client %llu drops lease %llu", (unsigned long long)c.id, (unsigned long long)c.lease.v);
  c.lease = store::kNoLease;
  c.valid_until = 0;
  c.silent_until = 0;
}

// Sends the current request to the believed leader or a random node. Only a leader accepts
// a write: a follower answers with its leader hint (Raft would forward, but the simulated
// network duplicates messages, and the store has no client sessions to drop a duplicate).
void Simulator::store_submit(Client& c) {
  ++c.attempts;
  size_t target;
  if (c.believed_leader.v != 0 && rng_.chance(0.75)) {
    target = c.believed_leader.v - 1;
  } else {
    target = rng_.uniform(0, nodes_.size() - 1);
  }
  c.target = static_cast<int>(target);
  Node& n = nodes_[target];
  trace_hash({8, c.id, c.seq, target});
  const uint64_t retry_at = std::min(c.deadline, now_ + rng_.uniform(tenths(5), tenths(20)));
  if (!n.up) {
    c.believed_leader = kNoNode;
    wake_client_at(c, retry_at);  // connection refused
    return;
  }
  if (c.via_read_index && opts_.inject == SimOptions::InjectedBug::kLocalReads) {
    KvOutput out;
    out.read_value = read_local(n, c.cmd.key);
    complete(c, out, static_cast<int>(target));
    return;
  }
  if (c.via_read_index) {
    const std::string ctx = "c" + std::to_string(c.id) + "." + std::to_string(c.cmd.seq) + "." +
                            std::to_string(c.attempts);
    n.read_waiters[ctx] = ReadWaiter{c.index, c.cmd.seq, c.cmd.key, LogIndex(0)};
    n.raft->read_index(ctx);
    wake_client_at(c, std::min(c.deadline, now_ + profile_.retry_timeout));
    return;
  }
  if (n.raft->role() != raft::StateRole::kLeader) {
    const NodeId hint = n.raft->leader();
    c.believed_leader = hint == n.id ? kNoNode : hint;
    wake_client_at(c, retry_at);
    return;
  }
  c.req.origin = n.id;
  c.req.request_id = next_request_id_++;
  Status st = n.raft->propose(store::encode_request(c.req));
  if (!st.ok()) {
    wake_client_at(c, retry_at);
    return;
  }
  c.accepted = true;
  c.accepted_incarnation = n.incarnation;
  c.sent_at = now_;
  n.store_waiters[c.req.request_id] = c.index;
  if (c.store_op == kOpKv) req_hist_[c.req.request_id] = c.hist;
  wake_client_at(c, c.deadline);
}

void Simulator::store_give_up(Client& c) {
  tracef("client %llu gives up on seq %llu: outcome unknown", (unsigned long long)c.id,
         (unsigned long long)c.seq);
  trace_hash({6, c.id, c.seq});
  c.busy = false;
  c.accepted = false;
  ++result_.stats.ops_unknown;
  next_wake(c);
}

void Simulator::store_complete(Client& c, const store::Response& resp, int node) {
  c.accepted = false;
  if (c.store_op == kOpKv) {
    const KvOp& op = history_[c.hist];
    if (!resp.status.ok()) {
      return fail("store-error", describe_op(op) + " failed: " + resp.status.to_string());
    }
    KvOutput out;
    if (const auto* tr = std::get_if<store::TxnResult>(&resp.result)) {
      out.cas_ok = tr->succeeded;
      if (op.kind == KvOpKind::kGet) {
        const auto& rr = std::get<store::RangeResult>(tr->responses.at(0));
        if (!rr.kvs.empty()) out.read_value = rr.kvs.front().value;
      }
    }
    complete(c, out, node);
    return;
  }
  const uint64_t validity = lease_validity_units(std::max<int64_t>(1, c.ttl_s));
  switch (c.store_op) {
    case kOpGrant:
      if (resp.status.ok()) {
        const auto& g = std::get<store::LeaseGrantResult>(resp.result);
        if (now_ < c.sent_at + validity) {
          c.lease = g.id;
          c.valid_until = c.sent_at + validity;
          c.next_keepalive = now_ + keepalive_period(c);
          c.silent_until = 0;
          checker_.on_refresh_counted(g.id, c.ttl_s, c.sent_at, c.id);
        }
      }
      break;
    case kOpKeepAlive: {
      const auto& ka = std::get<store::LeaseKeepAlive>(c.req.body);
      if (ka.id != c.lease) break;
      if (!resp.status.ok()) {
        lose_lease(c, std::min(now_, c.valid_until));
      } else if (now_ < c.valid_until) {
        c.valid_until = std::max(c.valid_until, c.sent_at + validity);
        checker_.on_refresh_counted(ka.id, c.ttl_s, c.sent_at, c.id);
      } else {
        // Acknowledged after the lease's validity lapsed: the client already stopped
        // counting on it, and this acknowledgement does not bring it back.
        checker_.on_refresh_late(ka.id, c.ttl_s, c.sent_at);
        lose_lease(c, c.valid_until);
      }
      break;
    }
    case kOpLeasePut: {
      const auto& p = std::get<store::Put>(c.req.body);
      if (!resp.status.ok() && p.lease != store::kNoLease && p.lease == c.lease) {
        lose_lease(c, std::min(now_, c.valid_until));
      }
      break;
    }
    case kOpCampaign: {
      const auto& t = std::get<store::Txn>(c.req.body);
      const auto& p = std::get<store::Put>(t.success.at(0));
      if (p.lease != c.lease || c.lease == store::kNoLease) break;
      if (!resp.status.ok()) {
        lose_lease(c, std::min(now_, c.valid_until));
        break;
      }
      if (c.holder || now_ >= c.valid_until) break;
      const auto& tr = std::get<store::TxnResult>(resp.result);
      int64_t token = 0;
      if (tr.succeeded) {
        token = resp.revision;
      } else {
        const auto& rr = std::get<store::RangeResult>(tr.responses.at(0));
        if (!rr.kvs.empty() && rr.kvs.front().lease == c.lease) {
          token = rr.kvs.front().create_revision;  // an earlier campaign of ours won
        }
      }
      if (token > 0) {
        c.holder = true;
        c.fence_token = token;
        c.holding = checker_.begin_holding(c.id, token, now_);
        tracef("client %llu holds the election with token %lld", (unsigned long long)c.id,
               (long long)token);
        if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
      }
      break;
    }
    default:
      break;  // resign and revoke took effect for the client when sent
  }
  if (checker_.failed()) return fail(checker_.invariant(), checker_.details());
  c.busy = false;
  ++result_.stats.ops_ok;
  tracef("client %llu done: %s -> %s (via n%d)", (unsigned long long)c.id,
         describe_request(c.req).c_str(), resp.status.to_string().c_str(), node + 1);
  trace_hash({9, c.id, c.seq, static_cast<uint64_t>(resp.revision)});
  const NodeId hint = nodes_[static_cast<size_t>(node)].raft->leader();
  if (hint.v != 0) c.believed_leader = hint;
  next_wake(c);
}

// ---------------------------------------------------------------------------------------
// Checkers.

// Log Matching (Raft §5.3): an entry with the same index and term has the same prefix.
void Simulator::check_log_digest(LogIndex index, Term term, uint64_t digest, int node) {
  auto [it, inserted] = digest_of_.emplace(std::make_pair(index.v, term.v), digest);
  if (!inserted && it->second != digest) {
    fail("log-matching", "node " + std::to_string(node + 1) + " holds an entry at index " +
                             index.str() + " term " + term.str() +
                             " whose log prefix differs from another node's entry with the "
                             "same index and term");
  }
}

// Committed entries never change (and never disappear from a node that knew them).
void Simulator::record_commits(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  const LogIndex commit = n.raft->commit_index();
  if (commit < n.commit_seen) {
    // The commit index went backwards within one incarnation.
    fail("commit-regress", "node " + n.id.str() + " commit index went from " + n.commit_seen.str() +
                               " to " + commit.str());
    return;
  }
  for (LogIndex k = n.commit_seen + 1; k <= commit; ++k) {
    std::optional<uint64_t> d = n.written.digest_at(k);
    if (!d) {
      if (k < n.written.snap.meta.index) continue;
      fail("commit-beyond-log", "node " + n.id.str() + " commit index " + commit.str() +
                                    " is past its persisted log end " +
                                    n.written.last_index().str());
      return;
    }
    if (committed_.size() <= k.v) committed_.resize(k.v * 2 + 16);
    if (!committed_[k.v]) {
      committed_[k.v] = *d;
      max_committed_ = std::max(max_committed_, k.v);
    } else if (*committed_[k.v] != *d) {
      fail("committed-entry-changed",
           "node " + n.id.str() + " considers index " + k.str() + " committed with term " +
               (n.written.rec(k) ? n.written.rec(k)->entry.term.str() : std::string("?")) +
               " but a different entry (or log prefix) was committed there before");
      return;
    }
  }
  if (commit > n.commit_seen) {
    // Diagnostic only (Raft §5.4.2 forbids it, but it is not itself a safety violation):
    // a leader whose commit index lands on an entry of an older term.
    const LogRec* rec = n.written.rec(commit);
    if (n.raft->role() == raft::StateRole::kLeader && rec && rec->entry.term < n.raft->term()) {
      ++result_.stats.old_term_commits;
    }
    n.commit_seen = commit;
  }
}

// Leader Completeness (Raft §5.4): the leader of the highest term holds every committed
// entry. Checked through the prefix digest at the highest committed index.
void Simulator::check_leader_completeness(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (max_committed_ == 0) return;
  const LogIndex m(max_committed_);
  std::optional<uint64_t> d = n.written.digest_at(m);
  LogIndex at = m;
  if (!d && m < n.written.snap.meta.index) {
    at = n.written.snap.meta.index;
    d = n.written.snap_digest;
  }
  if (!d) {
    fail("leader-completeness", "node " + n.id.str() + " is leader of term " +
                                    n.raft->term().str() + " but its log ends at " +
                                    n.written.last_index().str() + " while index " + m.str() +
                                    " is committed");
    return;
  }
  if (at.v < committed_.size() && committed_[at.v] && *committed_[at.v] != *d) {
    const LogRec* rec = n.written.rec(at);
    fail("leader-completeness",
         "node " + n.id.str() + " is leader of term " + n.raft->term().str() +
             " but its log differs from the committed log at or before index " + at.str() +
             " (its entry there has term " + (rec ? rec->entry.term.str() : std::string("?")) +
             ")");
  }
}

// Leader lease (raft.h lease_expiry_tick: "the tick until which no other leader can have
// been elected"; DESIGN.md "Holds"): while a leader believes its lease valid, no node may
// be leader of a higher term. Leases are measured in each node's own ticks, so clock drift
// between nodes (profile tick_period) is part of what this checks. Findings F2 (transfer)
// and F3 (one tick) in /work/sim-findings.md came from here.
void Simulator::check_leases() {
  for (size_t a = 0; a < nodes_.size(); ++a) {
    const Node& old_leader = nodes_[a];
    if (!old_leader.up || old_leader.raft->role() != raft::StateRole::kLeader ||
        !old_leader.raft->lease_valid()) {
      continue;
    }
    for (size_t b = 0; b < nodes_.size(); ++b) {
      const Node& n = nodes_[b];
      if (b == a || !n.up || n.raft->role() != raft::StateRole::kLeader ||
          n.raft->term() <= old_leader.raft->term()) {
        continue;
      }
      fail("leader-lease",
           "node " + n.id.str() + " is leader of term " + n.raft->term().str() + " while node " +
               old_leader.id.str() + " (leader of term " + old_leader.raft->term().str() +
               ") holds a valid lease: now_tick=" + std::to_string(old_leader.raft->now_tick()) +
               " expiry_tick=" + std::to_string(*old_leader.raft->lease_expiry_tick()) +
               " (tick periods n" + old_leader.id.str() + "=" +
               std::to_string(profile_.tick_period[a]) + " n" + n.id.str() + "=" +
               std::to_string(profile_.tick_period[b]) + " units)");
      return;
    }
  }
}

void Simulator::deep_check(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  const raft::Raft& r = *n.raft;
  if (r.last_index() != n.written.last_index()) {
    fail("persist-contract", "node " + n.id.str() + " raft last index " + r.last_index().str() +
                                 " but it asked to persist a log ending at " +
                                 n.written.last_index().str());
    return;
  }
  if (r.term() != n.written.hs.term) {
    fail("persist-contract", "node " + n.id.str() + " is in term " + r.term().str() +
                                 " but persisted term " + n.written.hs.term.str());
    return;
  }
  const LogIndex lo = std::max(r.first_index(), n.written.snap.meta.index + 1);
  if (lo > r.last_index()) return;
  std::vector<Entry> mem = r.entries_for_test(lo, r.last_index() + 1);
  if (mem.size() != r.last_index() + 1 - lo) {
    fail("persist-contract", "node " + n.id.str() + " entries_for_test returned " +
                                 std::to_string(mem.size()) + " entries for [" + lo.str() + ", " +
                                 (r.last_index() + 1).str() + ")");
    return;
  }
  for (const Entry& e : mem) {
    const LogRec* rec = n.written.rec(e.index);
    if (rec == nullptr || !(rec->entry == e)) {
      fail("persist-contract", "node " + n.id.str() + " in-memory entry " + e.index.str() +
                                   " term " + e.term.str() + " differs from the persisted one");
      return;
    }
  }
}

void Simulator::check_after_event() {
  for (size_t i = 0; i < nodes_.size() && !failed_; ++i) {
    if (nodes_[i].up) process_ready(static_cast<int>(i));
  }
  for (size_t i = 0; i < nodes_.size() && !failed_; ++i) {
    if (nodes_[i].up) record_commits(static_cast<int>(i));
  }
  for (size_t i = 0; i < nodes_.size() && !failed_; ++i) {
    Node& n = nodes_[i];
    if (!n.up || n.raft->role() != raft::StateRole::kLeader) continue;
    // Election Safety (Raft §5.2): at most one leader per term, ever.
    const uint64_t term = n.raft->term().v;
    auto [it, inserted] = leader_of_term_.emplace(term, n.id);
    if (inserted) {
      ++result_.stats.leaders;
      tracef("n%llu is leader of term %llu", (unsigned long long)n.id.v, (unsigned long long)term);
      trace_hash({10, n.id.v, term});
    } else if (it->second != n.id) {
      fail("election-safety", "term " + std::to_string(term) + " has two leaders: node " +
                                  it->second.str() + " and node " + n.id.str());
      return;
    }
    max_leader_term_ = std::max(max_leader_term_, term);
    if (term == max_leader_term_) check_leader_completeness(static_cast<int>(i));
  }
  check_leases();
  if (store_mode() && step_ % kBytesSampleEvery == 0) sample_bytes();
  if (step_ % kDeepCheckEvery == 0) {
    for (size_t i = 0; i < nodes_.size() && !failed_; ++i) {
      if (nodes_[i].up) deep_check(static_cast<int>(i));
    }
  }
}

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  Simulator sim(options);
  return sim.run();
}

}  // namespace vigil::sim
