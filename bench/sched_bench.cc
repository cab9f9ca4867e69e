// sched_bench: time of one sched::plan() on synthetic clusters of 10/100 nodes × 100/1,000/10,000
// resources, in steady state and after one node failed (issue #4; figures in docs/BENCHMARKS.md),
// and for comparison a cold start (nothing running yet).
//
//   sched_bench [--benchmark_filter=REGEX] [google-benchmark flags]
//
// Every snapshot comes from a fixed seed, so two runs plan exactly the same input. Each
// benchmark reports ms per plan, the number of actions, and the process's peak RSS so far
// (ru_maxrss: a high-water mark of the whole process, so run one size per process with
// --benchmark_filter for a per-size figure).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/model.h"
#include "sched/plan.h"

namespace {

using vigil::cluster::ClusterSnapshot;
using vigil::cluster::kInfinity;

// Knuth's MMIX LCG: enough for a reproducible mix; the high bits are the better ones.
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : x_(seed) {}
  uint64_t next() {
    x_ = x_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return x_ >> 33;
  }
  int below(int n) { return int(next() % uint64_t(n)); }
  bool chance(int percent) { return below(100) < percent; }

 private:
  uint64_t x_;
};

constexpr uint64_t kSeed = 20261205;

std::string padded(const char* prefix, int i, int width) {
  std::string digits = std::to_string(i);
  if (int(digits.size()) < width) digits.insert(0, size_t(width) - digits.size(), '0');
  return prefix + digits;
}

vigil::cluster::Resource primitive(const std::string& id) {
  vigil::cluster::Resource r;
  r.id = id;
  r.agent = "ocf:heartbeat:Dummy";
  r.params["state"] = "/run/vigil/" + id + ".state";
  r.operations.push_back({"monitor", 10000, 20000, ""});
  r.meta.stickiness = 100;  // the default the issue asks for
  return r;
}

// A cluster of `n_nodes` nodes (racks of 5, 3 zones) and `n_resources` primitives laid out
// in blocks of 30: 21 plain, one group of 3, 3 clones (every third promotable, with
// promotion scores from the agent), 3 placed by a location rule. About 10 % of the plain
// primitives have a node location (a preference or a ban). 13 % of the plain primitives and
// groups (about 10 % of all primitives) are colocated with an earlier unit, and as many are
// ordered after one. Dependencies always point to an earlier unit, so there are no cycles.
ClusterSnapshot make_cluster(int n_nodes, int n_resources) {
  Lcg rng(kSeed + uint64_t(n_nodes) * 100003 + uint64_t(n_resources));
  ClusterSnapshot s;
  s.now_ms = 1'000'000;
  for (int i = 0; i < n_nodes; ++i) {
    vigil::cluster::Node n;
    n.name = padded("n", i + 1, 3);
    n.attributes["rack"] = padded("rack", i / 5, 2);
    n.attributes["zone"] = padded("z", i % 3, 1);
    s.nodes.push_back(std::move(n));
  }
  auto node_name = [&](int i) { return s.nodes[size_t(i)].name; };

  struct UnitRef {
    std::string id;
    bool promotable = false;
  };
  std::vector<UnitRef> units;  // in creation order: the candidates for a dependency
  int n_constraints = 0;
  auto constraint_id = [&](const char* kind) { return padded(kind, ++n_constraints, 6); };

  // Colocation and order of a plain primitive or a group after an earlier unit.
  auto relate = [&](const std::string& id) {
    if (!units.empty() && rng.chance(13)) {
      const UnitRef& with = units[size_t(rng.below(int(units.size())))];
      vigil::cluster::ColocationConstraint c;
      c.id = constraint_id("col-");
      c.resource = id;
      c.with = with.id;
      int kind = rng.below(10);
      c.score = kind < 6 ? kInfinity : kind < 8 ? 50 : -kInfinity;
      if (with.promotable && rng.chance(50)) c.with_role = vigil::cluster::Role::kPromoted;
      s.colocations.push_back(std::move(c));
    }
    if (!units.empty() && rng.chance(13)) {
      const UnitRef& first = units[size_t(rng.below(int(units.size())))];
      vigil::cluster::OrderConstraint o;
      o.id = constraint_id("ord-");
      o.first = first.id;
      o.then = id;
      o.kind = rng.chance(70) ? vigil::cluster::OrderKind::kMandatory
                              : vigil::cluster::OrderKind::kOptional;
      o.symmetrical = rng.chance(80);
      if (first.promotable && rng.chance(50))
        o.first_action = vigil::cluster::OrderAction::kPromote;
      s.orders.push_back(std::move(o));
    }
  };

  int n_groups = 0;
  int n_clones = 0;
  for (int i = 0; i < n_resources;) {
    const int slot = i % 30;
    if (slot == 21 && i + 3 <= n_resources) {
      vigil::cluster::Group g;
      g.id = padded("g", ++n_groups, 5);
      for (int k = 0; k < 3; ++k) {
        s.resources.push_back(primitive(padded("r", i++, 5)));
        g.members.push_back(s.resources.back().id);
      }
      if (rng.chance(25)) {
        vigil::cluster::LocationConstraint l;
        l.id = constraint_id("loc-");
        l.resource = g.id;
        l.score = 50;
        l.rule.push_back(
            {"rack", vigil::cluster::RuleOp::kEq, padded("rack", rng.below((n_nodes + 4) / 5), 2)});
        s.locations.push_back(std::move(l));
      }
      relate(g.id);
      units.push_back({g.id, false});
      s.groups.push_back(std::move(g));
      continue;
    }
    const std::string id = padded("r", i++, 5);
    s.resources.push_back(primitive(id));
    if (slot >= 24 && slot < 27) {
      vigil::cluster::Clone c;
      c.id = padded("c", ++n_clones, 5);
      c.resource = id;
      c.promotable = n_clones % 3 == 0;
      // Most clones run a few copies; one in five runs on every eligible node.
      c.clone_max = n_clones % 5 == 0 ? 0 : 2 + rng.below(2);
      if (c.promotable) {
        for (int n = 0; n < n_nodes; ++n) {
          s.status[id][node_name(n)].promotion_score = 1 + rng.below(100);
        }
        if (rng.chance(50)) {
          vigil::cluster::LocationConstraint l;
          l.id = constraint_id("loc-");
          l.resource = c.id;
          l.score = 20;
          l.node = node_name(rng.below(n_nodes));
          l.role = vigil::cluster::Role::kPromoted;
          s.locations.push_back(std::move(l));
        }
      }
      units.push_back({c.id, c.promotable});
      s.clones.push_back(std::move(c));
      continue;
    }
    if (slot >= 27) {
      vigil::cluster::LocationConstraint l;
      l.id = constraint_id("loc-");
      l.resource = id;
      switch (rng.below(3)) {
        case 0:
          l.score = 100;
          l.rule.push_back({"zone", vigil::cluster::RuleOp::kEq, padded("z", rng.below(3), 1)});
          break;
        case 1:
          l.score = -kInfinity;
          l.rule.push_back({"rack", vigil::cluster::RuleOp::kEq,
                            padded("rack", rng.below((n_nodes + 4) / 5), 2)});
          break;
        default:
          l.score = 60;
          l.rule_match_all = false;
          l.rule.push_back({"zone", vigil::cluster::RuleOp::kNe, "z0"});
          l.rule.push_back({"rack", vigil::cluster::RuleOp::kLt, "rack01"});
          break;
      }
      s.locations.push_back(std::move(l));
      units.push_back({id, false});
      continue;
    }
    if (rng.chance(10)) {
      vigil::cluster::LocationConstraint l;
      l.id = constraint_id("loc-");
      l.resource = id;
      int kind = rng.below(8);
      l.score = kind == 0 ? -kInfinity : kind < 4 ? 50 : kind < 7 ? 100 : 200;
      l.node = node_name(rng.below(n_nodes));
      s.locations.push_back(std::move(l));
    }
    relate(id);
    units.push_back({id, false});
  }
  return s;
}

struct Scenario {
  ClusterSnapshot snapshot;
  size_t setup_actions = 0;  // actions of the first plan, from nothing running
};

// Everything runs where the plan from an empty cluster put it; planning it again must do
// nothing (the property every sched-regress case checks).
bool steady_state(int n_nodes, int n_resources, Scenario* out, std::string* error) {
  ClusterSnapshot empty = make_cluster(n_nodes, n_resources);
  auto first = vigil::sched::plan(empty);
  if (!first) {
    *error = "plan from empty: " + first.error().message();
    return false;
  }
  out->setup_actions = first->actions.size();
  out->snapshot = vigil::sched::apply_plan(empty, *first);
  return true;
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

void report(benchmark::State& state, size_t actions, int n_resources) {
  state.counters["actions"] = double(actions);
  state.counters["primitives"] = double(n_resources);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}

void bm_steady(benchmark::State& state, int n_nodes, int n_resources) {
  Scenario sc;
  std::string error;
  if (!steady_state(n_nodes, n_resources, &sc, &error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  size_t actions = 0;
  for (auto _ : state) {
    auto p = vigil::sched::plan(sc.snapshot);
    if (!p) {
      state.SkipWithError(p.error().message().c_str());
      return;
    }
    actions = p->actions.size();
    if (actions != 0) {
      error = "steady state planned " + std::to_string(actions) +
              " action(s), first: " + p->actions.front().label();
      state.SkipWithError(error.c_str());
      return;
    }
    benchmark::DoNotOptimize(p);
  }
  report(state, actions, n_resources);
}

// Not one of the two scenarios, but the plan with the most actions: a whole
// cluster starting with nothing running (the setup of the other two).
void bm_cold_start(benchmark::State& state, int n_nodes, int n_resources) {
  const ClusterSnapshot empty = make_cluster(n_nodes, n_resources);
  size_t actions = 0;
  for (auto _ : state) {
    auto p = vigil::sched::plan(empty);
    if (!p) {
      state.SkipWithError(p.error().message().c_str());
      return;
    }
    actions = p->actions.size();
    benchmark::DoNotOptimize(p);
  }
  report(state, actions, n_resources);
}

void bm_node_failed(benchmark::State& state, int n_nodes, int n_resources) {
  Scenario sc;
  std::string error;
  if (!steady_state(n_nodes, n_resources, &sc, &error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  // A node in the middle of the name order: it carries its share of everything.
  sc.snapshot.nodes[size_t(n_nodes / 2)].state = vigil::cluster::NodeState::kOffline;
  size_t actions = 0;
  for (auto _ : state) {
    auto p = vigil::sched::plan(sc.snapshot);
    if (!p) {
      state.SkipWithError(p.error().message().c_str());
      return;
    }
    actions = p->actions.size();
    if (actions == 0) {
      state.SkipWithError("a failed node planned no recovery");
      return;
    }
    benchmark::DoNotOptimize(p);
  }
  report(state, actions, n_resources);
}

}  // namespace

int main(int argc, char** argv) {
  // Smallest first, so that the peak RSS printed with each size is close to its own.
  for (int n_resources : {100, 1000, 10000}) {
    for (int n_nodes : {10, 100}) {
      const std::string size =
          "/nodes:" + std::to_string(n_nodes) + "/resources:" + std::to_string(n_resources);
      benchmark::RegisterBenchmark(("plan/steady" + size).c_str(), bm_steady, n_nodes, n_resources)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("plan/node_failed" + size).c_str(), bm_node_failed, n_nodes,
                                   n_resources)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("plan/cold_start" + size).c_str(), bm_cold_start, n_nodes,
                                   n_resources)
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
