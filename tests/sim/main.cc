// vigil-sim: runs seeded whole-cluster simulations (Raft + store) and reports violations.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/simulator.h"

namespace {

// The replay line for the seed being run, kept for the abort handler: a Raft CHECK
// failure aborts the process and must still say how to reproduce it.
char g_replay[256];

void on_abort(int) {
  std::fflush(stdout);  // not async-signal-safe, but we are dying anyway and want the trace
  const char prefix[] = "\nvigil-sim: aborted (CHECK failure?) while running; replay: ";
  (void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  (void)!write(STDERR_FILENO, g_replay, std::strlen(g_replay));
  (void)!write(STDERR_FILENO, "\n", 1);
}

void usage() {
  std::fprintf(stderr,
               "usage: vigil-sim [--seed=S | --seeds=N [--first-seed=S]] [--steps=K] "
               "[--nodes=3|5]\n"
               "                 [--machine=store|kv] [--unsafe-commit-previous-term]\n"
               "                 [--expect-violation[=INVARIANT]] [-v]\n"
               "  --seed=S          run one seed (default 1)\n"
               "  --seeds=N         run N seeds starting at --first-seed (default 1)\n"
               "  --steps=K         events in the fault phase (default 2000)\n"
               "  --nodes=N         voters (default: the seed chooses 3 or 5)\n"
               "  --machine=M       state machine: store (MvccStore, default) or kv\n"
               "  --unsafe-commit-previous-term  break Raft 5.4.2 (checker self-test)\n"
               "  --inject-bug=B    break the simulated shell (self-test): skip-fsync,\n"
               "                    local-reads, follower-expiry (store), no-ttl-reset (store)\n"
               "  --disable-checks=a,b  checks not to run (lease-validity)\n"
               "  --disable-faults=a,b  fault kinds not to use (split, isolate-leader, one-way,\n"
               "                    heal, crash, crash-leader, transfer, campaign)\n"
               "  --expect-violation[=I]  succeed iff some seed breaks an invariant (I, if given)\n"
               "  -v                trace every event\n");
}

// Accepts "--name=value" and "--name value".
bool flag_value(int argc, char** argv, int* i, const char* name, std::string* out) {
  const size_t len = std::strlen(name);
  const char* arg = argv[*i];
  if (std::strncmp(arg, name, len) != 0) return false;
  if (arg[len] == '=') {
    *out = arg + len + 1;
    return true;
  }
  if (arg[len] == '\0' && *i + 1 < argc) {
    *out = argv[++*i];
    return true;
  }
  return false;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtoull(s.c_str(), &end, 10);
  return *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  vigil::sim::SimOptions opts;
  uint64_t seeds = 1;
  uint64_t first_seed = 1;
  bool multi = false;
  bool expect_violation = false;
  std::string expect_invariant;
  std::string inject_name;
  std::string machine_name;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    uint64_t n = 0;
    if (flag_value(argc, argv, &i, "--seed", &v) && parse_u64(v, &n)) {
      first_seed = n;
    } else if (flag_value(argc, argv, &i, "--seeds", &v) && parse_u64(v, &n)) {
      seeds = n;
      multi = true;
    } else if (flag_value(argc, argv, &i, "--first-seed", &v) && parse_u64(v, &n)) {
      first_seed = n;
    } else if (flag_value(argc, argv, &i, "--steps", &v) && parse_u64(v, &n)) {
      opts.steps = n;
    } else if (flag_value(argc, argv, &i, "--nodes", &v) && parse_u64(v, &n) &&
               (n == 3 || n == 5)) {
      opts.nodes = static_cast<int>(n);
    } else if (std::strcmp(argv[i], "--unsafe-commit-previous-term") == 0) {
      opts.unsafe_commit_previous_term = true;
    } else if (flag_value(argc, argv, &i, "--machine", &v) && (v == "store" || v == "kv")) {
      opts.machine = v == "kv" ? vigil::sim::SimOptions::Machine::kKv
                               : vigil::sim::SimOptions::Machine::kStore;
      machine_name = v;
    } else if (flag_value(argc, argv, &i, "--inject-bug", &v) &&
               (v == "skip-fsync" || v == "local-reads" || v == "follower-expiry" ||
                v == "no-ttl-reset")) {
      using Bug = vigil::sim::SimOptions::InjectedBug;
      opts.inject = v == "skip-fsync"        ? Bug::kSkipFsync
                    : v == "local-reads"     ? Bug::kLocalReads
                    : v == "follower-expiry" ? Bug::kFollowerExpiry
                                             : Bug::kNoTtlReset;
      inject_name = v;
    } else if (flag_value(argc, argv, &i, "--disable-checks", &v)) {
      opts.disabled_checks = v;
    } else if (flag_value(argc, argv, &i, "--disable-faults", &v)) {
      opts.disabled_faults = v;
    } else if (std::strcmp(argv[i], "--expect-violation") == 0) {
      expect_violation = true;
    } else if (std::strncmp(argv[i], "--expect-violation=", 19) == 0) {
      expect_violation = true;
      expect_invariant = argv[i] + 19;
    } else if (std::strcmp(argv[i], "-v") == 0) {
      opts.verbose = true;
    } else {
      std::fprintf(stderr, "vigil-sim: bad argument '%s'\n", argv[i]);
      usage();
      return 2;
    }
  }
  std::signal(SIGABRT, on_abort);

  uint64_t crashes_mid_ready = 0;
  uint64_t total_steps = 0, ops_ok = 0, ops_unknown = 0, crashes = 0, snapshots = 0,
           inconclusive = 0, leaders = 0, expiries = 0, holdings = 0, watch_events = 0, resyncs = 0,
           late_acks = 0, naive = 0, revisions = 0;
  for (uint64_t s = first_seed; s < first_seed + seeds; ++s) {
    opts.seed = s;
    std::string replay =
        "vigil-sim --seed=" + std::to_string(s) + " --steps=" + std::to_string(opts.steps);
    if (opts.nodes != 0) replay += " --nodes=" + std::to_string(opts.nodes);
    if (!machine_name.empty()) replay += " --machine=" + machine_name;
    if (opts.unsafe_commit_previous_term) replay += " --unsafe-commit-previous-term";
    if (!inject_name.empty()) replay += " --inject-bug=" + inject_name;
    if (!opts.disabled_faults.empty()) replay += " --disable-faults=" + opts.disabled_faults;
    if (!opts.disabled_checks.empty()) replay += " --disable-checks=" + opts.disabled_checks;
    std::snprintf(g_replay, sizeof(g_replay), "%s", replay.c_str());

    vigil::sim::SimResult r = vigil::sim::run_simulation(opts);
    const vigil::sim::SimStats& st = r.stats;
    total_steps += st.steps;
    ops_ok += st.ops_ok;
    ops_unknown += st.ops_unknown;
    crashes += st.crashes;
    crashes_mid_ready += st.crashes_mid_ready;
    snapshots += st.snapshots_installed;
    leaders += st.leaders;
    inconclusive += st.linearizability_inconclusive ? 1 : 0;
    expiries += st.expiry_revokes;
    holdings += st.holdings;
    watch_events += st.watch_events;
    resyncs += st.watch_resyncs;
    late_acks += st.late_refresh_acks;
    naive += st.naive_lease_violations;
    revisions += st.store_revision;
    if (!multi || opts.verbose) {
      std::printf(
          "seed %llu: %s steps=%llu time=%llu leaders=%llu max_term=%llu commit=%llu "
          "crashes=%llu partitions=%llu snapshots=%llu compactions=%llu ops_ok=%llu "
          "ops_unknown=%llu read_index_reads=%llu msgs=%llu dropped=%llu "
          "old_term_commits=%llu lin_steps=%llu%s trace_hash=%016llx\n  profile: %s\n",
          (unsigned long long)s, r.ok ? "ok" : "VIOLATION", (unsigned long long)st.steps,
          (unsigned long long)st.end_time, (unsigned long long)st.leaders,
          (unsigned long long)st.max_term, (unsigned long long)st.max_commit,
          (unsigned long long)st.crashes, (unsigned long long)st.partitions,
          (unsigned long long)st.snapshots_installed, (unsigned long long)st.compactions,
          (unsigned long long)st.ops_ok, (unsigned long long)st.ops_unknown,
          (unsigned long long)st.reads_via_read_index, (unsigned long long)st.messages_sent,
          (unsigned long long)st.messages_dropped, (unsigned long long)st.old_term_commits,
          (unsigned long long)st.linearizability_steps,
          st.linearizability_inconclusive ? " (linearizability INCONCLUSIVE)" : "",
          (unsigned long long)r.trace_hash, r.profile.c_str());
      if (opts.machine == vigil::sim::SimOptions::Machine::kStore) {
        std::printf(
            "  store: revisions=%llu store_compactions=%llu expiry_revokes=%llu "
            "counted_refreshes=%llu late_refresh_acks=%llu naive_lease_violations=%llu "
            "holdings=%llu watch_events=%llu watch_resyncs=%llu bytes_samples=%llu\n",
            (unsigned long long)st.store_revision, (unsigned long long)st.store_compactions,
            (unsigned long long)st.expiry_revokes, (unsigned long long)st.counted_refreshes,
            (unsigned long long)st.late_refresh_acks, (unsigned long long)st.naive_lease_violations,
            (unsigned long long)st.holdings, (unsigned long long)st.watch_events,
            (unsigned long long)st.watch_resyncs, (unsigned long long)st.bytes_samples);
      }
    }
    if (!r.ok) {
      std::printf("\nVIOLATION of %s at step %llu (seed %llu, %d nodes)\n%s\n", r.invariant.c_str(),
                  (unsigned long long)r.step, (unsigned long long)s, r.nodes, r.details.c_str());
      std::printf("profile: %s\nreplay: %s -v\n", r.profile.c_str(), replay.c_str());
      std::fflush(stdout);
      if (!expect_invariant.empty() && r.invariant != expect_invariant) {
        std::printf("expected a violation of %s, not of %s\n", expect_invariant.c_str(),
                    r.invariant.c_str());
        return 1;
      }
      return expect_violation ? 0 : 1;
    }
  }
  std::printf(
      "%llu seed(s) from %llu passed: steps=%llu leaders=%llu crashes=%llu "
      "(%llu mid-ready) snapshots_installed=%llu ops_ok=%llu ops_unknown=%llu%s\n",
      (unsigned long long)seeds, (unsigned long long)first_seed, (unsigned long long)total_steps,
      (unsigned long long)leaders, (unsigned long long)crashes,
      (unsigned long long)crashes_mid_ready, (unsigned long long)snapshots,
      (unsigned long long)ops_ok, (unsigned long long)ops_unknown,
      inconclusive ? (" linearizability_inconclusive=" + std::to_string(inconclusive)).c_str()
                   : "");
  if (opts.machine == vigil::sim::SimOptions::Machine::kStore) {
    std::printf(
        "  store: revisions=%llu expiry_revokes=%llu holdings=%llu watch_events=%llu "
        "watch_resyncs=%llu late_refresh_acks=%llu naive_lease_violations=%llu\n",
        (unsigned long long)revisions, (unsigned long long)expiries, (unsigned long long)holdings,
        (unsigned long long)watch_events, (unsigned long long)resyncs,
        (unsigned long long)late_acks, (unsigned long long)naive);
  }
  if (expect_violation) {
    std::printf("expected a violation but every seed passed: the checkers missed the bug\n");
    return 1;
  }
  return 0;
}
