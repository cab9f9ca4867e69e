// Deterministic simulation of a whole Raft cluster with a KV state machine and clients.
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
  // Sets raft::Config::unsafe_commit_previous_term_for_test on every node.
  bool unsafe_commit_previous_term = false;
  // Checker self-tests: break the simulated shell (not raft) on purpose.
  //   kSkipFsync: ignore Ready::must_sync, so a crash can lose acknowledged entries and votes.
  //   kLocalReads: answer ReadIndex gets from the local replica at once, without waiting for
  //   the read index (stale reads from followers and deposed leaders).
  enum class InjectedBug { kNone, kSkipFsync, kLocalReads };
  InjectedBug inject = InjectedBug::kNone;
  // Comma-separated fault kinds the seed may not use (split, isolate-leader, one-way, heal,
  // crash, crash-leader, transfer, campaign): to narrow down a failing seed.
  std::string disabled_faults;
  // Print one line per event to `trace`.
  bool verbose = false;
  FILE* trace = stdout;
};

struct SimStats {
  uint64_t steps = 0;           // all events, both phases
  uint64_t end_time = 0;        // simulated time units (10 per tick)
  uint64_t messages_sent = 0;
  uint64_t messages_dropped = 0;
  uint64_t leaders = 0;         // distinct (term, leader) pairs
  uint64_t max_term = 0;
  uint64_t max_commit = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t snapshots_installed = 0;
  uint64_t compactions = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_unknown = 0;
  uint64_t reads_via_read_index = 0;
  uint64_t old_term_commits = 0;  // leader commits landing on an older term's entry
  uint64_t linearizability_steps = 0;
  bool linearizability_inconclusive = false;
};

struct SimResult {
  bool ok = true;
  std::string invariant;  // short name of the invariant that broke
  std::string details;    // what exactly was seen
  uint64_t step = 0;      // the step at which it broke
  uint64_t trace_hash = 0;  // hash of every event and decision: equal runs, equal hashes
  int nodes = 0;
  std::string profile;    // the seed's fault profile, for reports
  SimStats stats;
};

// Runs one seed to completion (fault phase, liveness phase, final history check).
// Never throws; a Raft CHECK failure aborts the process (main prints the replay line).
SimResult run_simulation(const SimOptions& options);

}  // namespace vigil::sim
