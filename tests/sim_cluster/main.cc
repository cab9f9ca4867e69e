// vigil-sim-cluster: runs seeded whole-cluster simulations of the resource manager
// (cluster_sim.h) and reports what the checkers found.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sim_cluster/cluster_sim.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: vigil-sim-cluster [--seed=S | --seeds=N [--first-seed=S]] [--steps=K]\n"
               "                         [--nodes=N] [--heartbeat-ms=M] [--inject-bug=B]\n"
               "                         [--expect-violation] [-v]\n"
               "  --seed=S            run one seed\n"
               "  --seeds=N           run N seeds from --first-seed (default 1)\n"
               "  --steps=K           10 ms steps with faults before the heal phase (3000)\n"
               "  --nodes=N           voters: 3 (default) or 5\n"
               "  --heartbeat-ms=M    the agents' heartbeat: 10 to 100, a multiple of 10 (20)\n"
               "  --inject-bug=B      turn one rule off (checker self-test): no-overlay,\n"
               "                      stop-by-delete, holds-ignored, no-hold-stop, no-hold-guard,\n"
               "                      no-resync-block, no-republish, no-step-down-gap,\n"
               "                      expire-with-start-in-flight, hold-on-receipt\n"
               "  --expect-violation  succeed iff some seed breaks an invariant\n"
               "  -v                  trace every event\n");
}

bool value_of(const char* arg, const char* name, std::string* out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using vigil::simcluster::Bug;
  uint64_t first = 1, seeds = 1, steps = 3000, nodes = 3, heartbeat = 20;
  bool expect = false, trace = false;
  Bug bug = Bug::kNone;
  std::string bug_name = "none";
  for (int i = 1; i < argc; ++i) {
    std::string v;
    const char* a = argv[i];
    bool ok = true;
    if (value_of(a, "--seed", &v)) {
      ok = parse_u64(v, &first);
      seeds = 1;
    } else if (value_of(a, "--seeds", &v)) {
      ok = parse_u64(v, &seeds);
    } else if (value_of(a, "--first-seed", &v)) {
      ok = parse_u64(v, &first);
    } else if (value_of(a, "--steps", &v)) {
      ok = parse_u64(v, &steps);
    } else if (value_of(a, "--nodes", &v)) {
      ok = parse_u64(v, &nodes) && (nodes == 3 || nodes == 5);
    } else if (value_of(a, "--heartbeat-ms", &v)) {
      ok = parse_u64(v, &heartbeat) && heartbeat >= 10 && heartbeat <= 100 && heartbeat % 10 == 0;
    } else if (value_of(a, "--inject-bug", &v)) {
      bug_name = v;
      if (v == "no-overlay") {
        bug = Bug::kNoOverlay;
      } else if (v == "stop-by-delete") {
        bug = Bug::kStopByDelete;
      } else if (v == "holds-ignored") {
        bug = Bug::kHoldsIgnored;
      } else if (v == "no-hold-stop") {
        bug = Bug::kNoHoldStop;
      } else if (v == "no-hold-guard") {
        bug = Bug::kNoHoldGuard;
      } else if (v == "no-resync-block") {
        bug = Bug::kNoResyncBlock;
      } else if (v == "no-republish") {
        bug = Bug::kNoRepublish;
      } else if (v == "no-step-down-gap") {
        bug = Bug::kNoStepDownGap;
      } else if (v == "expire-with-start-in-flight") {
        bug = Bug::kExpireWithStartInFlight;
      } else if (v == "hold-on-receipt") {
        bug = Bug::kHoldOnReceipt;
      } else {
        ok = false;
      }
    } else if (std::strcmp(a, "--expect-violation") == 0) {
      expect = true;
    } else if (std::strcmp(a, "-v") == 0) {
      trace = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "vigil-sim-cluster: bad argument '%s'\n", a);
      usage();
      return 2;
    }
  }
  uint64_t failing = 0, first_failing = 0;
  int64_t faults = 0, actions = 0, leader_changes = 0;
  std::vector<int64_t> converge;
  std::vector<std::string> kinds;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    vigil::simcluster::Options o;
    o.seed = seed;
    o.heartbeat_ms = static_cast<int>(heartbeat);
    o.fault_steps = static_cast<int>(steps);
    o.bug = bug;
    o.trace = trace;
    o.nodes = static_cast<int>(nodes);
    auto out = vigil::simcluster::run(o);
    faults += out.faults;
    actions += out.actions;
    leader_changes += out.leader_changes;
    for (const auto& k : out.fault_kinds) {
      if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
    }
    if (out.converged_after_ms >= 0) converge.push_back(out.converged_after_ms);
    if (!out.violations.empty()) {
      if (failing++ == 0) first_failing = seed;
      if (!expect || failing <= 3) {
        std::printf("seed %llu:\n", static_cast<unsigned long long>(seed));
        for (const auto& v : out.violations) std::printf("  %s\n", v.c_str());
        std::printf(
            "  replay: vigil-sim-cluster --seed=%llu --steps=%llu --nodes=%llu --heartbeat-ms=%llu"
            "%s%s -v\n",
            static_cast<unsigned long long>(seed), static_cast<unsigned long long>(steps),
            static_cast<unsigned long long>(nodes), static_cast<unsigned long long>(heartbeat),
            bug == Bug::kNone ? "" : " --inject-bug=", bug == Bug::kNone ? "" : bug_name.c_str());
      }
      if (expect) {
        seeds = seed - first + 1;  // caught: that is all a self-test needs
        break;
      }
    }
  }
  std::sort(kinds.begin(), kinds.end());
  std::string kind_list;
  for (const auto& k : kinds) kind_list += (kind_list.empty() ? "" : ",") + k;
  std::sort(converge.begin(), converge.end());
  long long median = converge.empty() ? -1 : static_cast<long long>(converge[converge.size() / 2]);
  long long worst = converge.empty() ? -1 : static_cast<long long>(converge.back());
  std::printf(
      "vigil-sim-cluster: %llu seeds x %llu steps (bug: %s): %llu with violations%s; %lld "
      "faults (%s), %lld agent actions, %lld leader changes; converged after healing in "
      "median %lld ms, at worst %lld ms\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(steps),
      bug_name.c_str(), static_cast<unsigned long long>(failing),
      failing ? (" (first: seed " + std::to_string(first_failing) + ")").c_str() : "",
      static_cast<long long>(faults), kind_list.c_str(), static_cast<long long>(actions),
      static_cast<long long>(leader_changes), median, worst);
  if (expect) {
    if (failing == 0) {
      std::printf("vigil-sim-cluster: expected a violation with bug %s, none found\n",
                  bug_name.c_str());
      return 1;
    }
    return 0;
  }
  return failing == 0 ? 0 : 1;
}
