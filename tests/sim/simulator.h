// Deterministic simulation of a whole Raft cluster with a replicated state machine (the real
// MvccStore, or the small KV map) and clients.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace vigil::sim {

struct SimOptions {
  uint64_t seed = 1;
  // Events delivered in the fault phase (message, tick, fault, client wake-up). The
  // liveness phase that follows runs until convergence or its bound.
  uint64_t steps = 2000;
  // 3 or 5 voters; 0 lets the seed choose.
  int nodes = 0;
  // The replicated state machine: store::MvccStore driven by encoded store::Requests, with a
  // LeaseTracker and a WatchHub per node (the default), or the simulator's own KV map with
  // client sessions (sim/kv.h).
  enum class Machine { kStore, kKv };
  Machine machine = Machine::kStore;
  // Sets raft::Config::unsafe_commit_previous_term_for_test on every node.
  bool unsafe_commit_previous_term = false;
  // Checker self-tests: break the simulated shell (not raft) on purpose.
  //   kSkipFsync: ignore Ready::must_sync, so a crash can lose acknowledged entries and votes.
  //   kLocalReads: answer ReadIndex gets from the local replica at once, without waiting for
  //   the read index (stale reads from followers and deposed leaders).
  //   kFollowerExpiry (store): every node's LeaseTracker acts as leader, and followers, whose
  //   deadlines keep-alives never refresh, propose LeaseRevoke for what they think expired.
  //   kNoTtlReset (store): a new leader keeps the deadlines its follower tracker had (from
  //   the grants it applied) instead of giving every lease a full TTL.
  enum class InjectedBug { kNone, kSkipFsync, kLocalReads, kFollowerExpiry, kNoTtlReset };
  InjectedBug inject = InjectedBug::kNone;
  // Comma-separated fault kinds the seed may not use (split, isolate-leader, one-way, heal,
  // crash, crash-leader, transfer, campaign): to narrow down a failing seed.
  std::string disabled_faults;
  // Comma-separated checks not to run (store: lease-validity), to show that another checker
  // catches an injected bug on its own.
  std::string disabled_checks;
  // Print one line per event to `trace`.
  bool verbose = false;
  FILE* trace = stdout;
};

struct SimStats {
  uint64_t steps = 0;     // all events, both phases
  uint64_t end_time = 0;  // simulated time units (100 per tick)
  uint64_t messages_sent = 0;
  uint64_t messages_dropped = 0;
  uint64_t leaders = 0;  // distinct (term, leader) pairs
  uint64_t max_term = 0;
  uint64_t max_commit = 0;
  uint64_t crashes = 0;
  uint64_t crashes_mid_ready = 0;  // a leader died between sending appends and persisting
  uint64_t partitions = 0;
  uint64_t snapshots_installed = 0;
  uint64_t compactions = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_unknown = 0;
  uint64_t reads_via_read_index = 0;
  uint64_t old_term_commits = 0;  // leader commits landing on an older term's entry
  uint64_t linearizability_steps = 0;
  bool linearizability_inconclusive = false;
  // Store mode.
  uint64_t store_revision = 0;          // revisions the reference model saw
  uint64_t expiry_revokes = 0;          // leases revoked by expiry (applied)
  uint64_t counted_refreshes = 0;       // grants and keep-alives acknowledged in time
  uint64_t late_refresh_acks = 0;       // keep-alives acknowledged after the lease's validity
  uint64_t naive_lease_violations = 0;  // see README "Leases": not an invariant
  uint64_t holdings = 0;                // election holdings
  uint64_t watch_events = 0;            // events delivered to watchers and checked
  uint64_t watch_resyncs = 0;           // compacted responses followed by a resync
  uint64_t store_compactions = 0;       // Compact requests applied
  uint64_t bytes_samples = 0;           // serialize() comparisons between replicas
};

struct SimResult {
  bool ok = true;
  std::string invariant;    // short name of the invariant that broke
  std::string details;      // what exactly was seen
  uint64_t step = 0;        // the step at which it broke
  uint64_t trace_hash = 0;  // hash of every event and decision: equal runs, equal hashes
  int nodes = 0;
  std::string profile;  // the seed's fault profile, for reports
  SimStats stats;
};

// Runs one seed to completion (fault phase, liveness phase, final history check).
// Never throws; a Raft CHECK failure aborts the process (main prints the replay line).
SimResult run_simulation(const SimOptions& options);

}  // namespace vigil::sim
