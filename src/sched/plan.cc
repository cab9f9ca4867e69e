// The scheduler: scores every placement unit on every node, places units in dependency and
// priority order, then derives the actions and their ordering graph.
#include "sched/plan.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <set>
#include <string_view>
#include <tuple>

namespace vigil::sched {
namespace {

using cluster::Clone;
using cluster::ClusterSnapshot;
using cluster::ColocationConstraint;
using cluster::Group;
using cluster::LocationConstraint;
using cluster::Node;
using cluster::NodeRole;
using cluster::NodeState;
using cluster::OrderAction;
using cluster::OrderConstraint;
using cluster::OrderKind;
using cluster::Requires;
using cluster::Resource;
using cluster::ResourceState;
using cluster::Role;
using cluster::TargetRole;

enum class UnitKind { kPrimitive, kGroup, kClone };

// A primitive with its state per node, resolved once.
struct Prim {
  const Resource* r = nullptr;
  int unit = -1;
  // (node index, state) for every node the status lists, ascending by node index.
  std::vector<std::pair<int, const ResourceState*>> st;
  std::vector<const LocationConstraint*> locs;
  std::string blocked;           // non-empty: may not start anywhere (waiting for fencing)
  std::vector<int> fence_waits;  // unclean nodes it ran on that this plan fences first
  std::vector<Placed> target;    // the placement decided
  bool bounced = false;          // stops somewhere and runs again (moves or restarts)
  std::vector<int> firsts;       // primitives whose restart restarts this one (mandatory)
};

struct Unit {
  UnitKind kind = UnitKind::kPrimitive;
  std::string id;
  std::vector<int> members;  // primitive indices
  const Clone* clone = nullptr;
  int64_t priority = 0;
  TargetRole target = TargetRole::kStarted;
  std::vector<const LocationConstraint*> locs;      // naming the group or clone id
  std::vector<const ColocationConstraint*> colocs;  // this unit is the dependent
  std::vector<const OrderConstraint*> orders;       // mandatory, this unit is `then`
  std::vector<int> deps;                            // units placed before this one
  bool placed = false;
};

bool role_matches(Role want, Role have) {
  if (have == Role::kStopped) return false;
  if (want == Role::kStarted || want == Role::kStopped) return true;
  return want == have;
}

bool reachable(NodeState s) {
  return s == NodeState::kOnline || s == NodeState::kStandby || s == NodeState::kMaintenance;
}

class Planner {
 public:
  explicit Planner(const ClusterSnapshot& s) : s_(s) {}

  Plan run() {
    index();
    decide_fencing();
    order_ = placement_order();
    for (int u : order_) place(u);
    for (auto& p : prims_) out_.placement[p.r->id] = p.target;
    actions();
    sort_explanation();
    return std::move(out_);
  }

 private:
  // By unit id (unique: units share one namespace). Sorting indices and moving each
  // explanation once is cheaper than moving the explanations themselves through the sort.
  void sort_explanation() {
    std::vector<Explanation>& ex = out_.explanation;
    std::vector<size_t> idx(ex.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ex[a].unit < ex[b].unit; });
    std::vector<Explanation> sorted;
    sorted.reserve(ex.size());
    for (size_t i : idx) sorted.push_back(std::move(ex[i]));
    ex = std::move(sorted);
  }

  // ---- indexing -------------------------------------------------------------------------
  void index() {
    for (const Node& n : s_.nodes) nodes_.push_back(&n);
    std::sort(nodes_.begin(), nodes_.end(),
              [](const Node* a, const Node* b) { return a->name < b->name; });
    for (size_t i = 0; i < nodes_.size(); ++i) node_index_[nodes_[i]->name] = int(i);
    load_.assign(nodes_.size(), 0);
    free_.resize(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) free_[i] = nodes_[i]->capacity;

    prims_.reserve(s_.resources.size());
    for (const Resource& r : s_.resources) {
      prim_index_[r.id] = int(prims_.size());
      Prim p;
      p.r = &r;
      auto it = s_.status.find(r.id);
      if (it != s_.status.end()) {
        for (const auto& [node, st] : it->second) {
          auto ni = node_index_.find(node);
          if (ni != node_index_.end()) p.st.emplace_back(ni->second, &st);
        }
        std::sort(p.st.begin(), p.st.end());
      }
      prims_.push_back(std::move(p));
    }
    std::map<std::string, int> owner;  // primitive id → group or clone unit
    for (const Group& g : s_.groups) {
      Unit u;
      u.kind = UnitKind::kGroup;
      u.id = g.id;
      u.priority = g.priority;
      u.target = g.target_role;
      for (const std::string& m : g.members) u.members.push_back(prim_index_.at(m));
      add_unit(std::move(u));
    }
    for (const Clone& c : s_.clones) {
      Unit u;
      u.kind = UnitKind::kClone;
      u.id = c.id;
      u.clone = &c;
      int pi = prim_index_.at(c.resource);
      u.members.push_back(pi);
      u.priority = prims_[pi].r->meta.priority;
      u.target = prims_[pi].r->meta.target_role;
      add_unit(std::move(u));
    }
    for (size_t i = 0; i < prims_.size(); ++i) {
      if (prims_[i].unit >= 0) continue;
      Unit u;
      u.kind = UnitKind::kPrimitive;
      u.id = prims_[i].r->id;
      u.members.push_back(int(i));
      u.priority = prims_[i].r->meta.priority;
      u.target = prims_[i].r->meta.target_role;
      add_unit(std::move(u));
    }
    // A label is the same on every node it applies to: built once, not once per node and
    // unit; a node constraint compares node indices, not names.
    loc_label_.reserve(s_.locations.size());
    loc_node_.reserve(s_.locations.size());
    for (const LocationConstraint& c : s_.locations) {
      loc_label_.push_back(location_label(c));
      auto ni = c.node.empty() ? node_index_.end() : node_index_.find(c.node);
      loc_node_.push_back(ni == node_index_.end() ? -1 : ni->second);
    }
    for (const LocationConstraint& c : s_.locations) {
      auto pi = prim_index_.find(c.resource);
      if (pi != prim_index_.end()) {
        prims_[pi->second].locs.push_back(&c);
      } else {
        units_[unit_of_.at(c.resource)].locs.push_back(&c);
      }
    }
    for (const ColocationConstraint& c : s_.colocations) {
      int du = unit_of_.at(c.resource);
      int wu = unit_of_.at(c.with);
      if (du == wu) {
        out_.warnings.push_back("colocation " + c.id + " ignored: both sides are in " +
                                units_[du].id);
        continue;
      }
      units_[du].colocs.push_back(&c);
      units_[du].deps.push_back(wu);
    }
    for (const OrderConstraint& c : s_.orders) {
      if (c.kind != OrderKind::kMandatory) continue;
      int fu = unit_of_.at(c.first);
      int tu = unit_of_.at(c.then);
      if (fu == tu) continue;
      units_[tu].orders.push_back(&c);
      units_[tu].deps.push_back(fu);
      for (int t : prims_of(c.then)) {
        for (int f : prims_of(c.first)) prims_[t].firsts.push_back(f);
      }
    }
    for (const Unit& u : units_) {
      if (u.kind != UnitKind::kGroup) continue;
      for (size_t i = 1; i < u.members.size(); ++i) {
        prims_[u.members[i]].firsts.push_back(u.members[i - 1]);
      }
    }
  }

  void add_unit(Unit u) {
    int ui = int(units_.size());
    unit_of_[u.id] = ui;
    for (int m : u.members) {
      prims_[m].unit = ui;
      unit_of_[prims_[m].r->id] = ui;
    }
    units_.push_back(std::move(u));
  }

  // The primitives an id stands for: itself, a group's members, a clone's primitive.
  std::vector<int> prims_of(const std::string& id) const {
    auto pi = prim_index_.find(id);
    if (pi != prim_index_.end()) return {pi->second};
    return units_[unit_of_.at(id)].members;
  }

  // ---- fencing --------------------------------------------------------------------------
  void decide_fencing() {
    fence_.assign(nodes_.size(), false);
    std::set<std::string> fenceable;
    for (const auto& d : s_.fence_devices) fenceable.insert(d.nodes.begin(), d.nodes.end());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->state != NodeState::kUnclean) continue;
      if (!s_.has_quorum) {
        out_.warnings.push_back("node " + nodes_[i]->name +
                                " is unclean: no quorum, so it is not fenced");
      } else if (!fenceable.contains(nodes_[i]->name)) {
        out_.warnings.push_back("node " + nodes_[i]->name +
                                " is unclean and no fence device can fence it: confirm it is "
                                "down (fence-ok) to recover what ran there");
      } else {
        fence_[i] = true;
      }
    }
    for (Prim& p : prims_) {
      for (auto [n, st] : p.st) {
        if (nodes_[n]->state != NodeState::kUnclean || !st->running) continue;
        if (fence_[n]) {
          p.fence_waits.push_back(n);
          continue;
        }
        const auto& hold = nodes_[n]->hold_expires_ms;
        if (p.r->meta.exclusive && hold && *hold <= s_.now_ms) continue;  // it stopped itself
        if (p.r->meta.require == Requires::kFencing && p.blocked.empty()) {
          p.blocked = "active on unclean " + nodes_[n]->name + ", not fenced";
        }
      }
    }
  }

  // ---- placement order ------------------------------------------------------------------
  // Priority first (higher earlier), then id; a unit's dependencies (the `with` side of its
  // colocations, the `first` side of its mandatory orders) are placed before it.
  std::vector<int> placement_order() {
    std::vector<int> by_priority(units_.size());
    for (size_t i = 0; i < units_.size(); ++i) by_priority[i] = int(i);
    std::sort(by_priority.begin(), by_priority.end(), [&](int a, int b) {
      if (units_[a].priority != units_[b].priority) {
        return units_[a].priority > units_[b].priority;
      }
      return units_[a].id < units_[b].id;
    });
    std::vector<int> rank(units_.size());
    for (size_t i = 0; i < by_priority.size(); ++i) rank[by_priority[i]] = int(i);
    for (Unit& u : units_) {
      std::sort(u.deps.begin(), u.deps.end(), [&](int a, int b) { return rank[a] < rank[b]; });
      u.deps.erase(std::unique(u.deps.begin(), u.deps.end()), u.deps.end());
    }
    std::vector<int> order;
    order.reserve(units_.size());
    std::vector<char> state(units_.size(), 0);  // 0 new, 1 visiting, 2 done
    // Iterative DFS so that long dependency chains do not exhaust the stack.
    for (int root : by_priority) {
      if (state[root]) continue;
      std::vector<std::pair<int, size_t>> stack{{root, 0}};
      state[root] = 1;
      while (!stack.empty()) {
        auto& [u, next] = stack.back();
        if (next < units_[u].deps.size()) {
          int d = units_[u].deps[next++];
          if (state[d] == 0) {
            state[d] = 1;
            stack.emplace_back(d, 0);
          } else if (state[d] == 1) {
            out_.warnings.push_back("dependency cycle between " + units_[d].id + " and " +
                                    units_[u].id + ": " + units_[u].id +
                                    " is placed without waiting for " + units_[d].id);
          }
          continue;
        }
        state[u] = 2;
        order.push_back(u);
        stack.pop_back();
      }
    }
    return order;
  }

  // ---- scoring --------------------------------------------------------------------------
  void node_terms(int n, NodeScore& ns) const {
    const Node& node = *nodes_[n];
    switch (node.state) {
      case NodeState::kOnline:
        break;
      case NodeState::kOffline:
        ns.add("node offline", -kInfinity);
        break;
      case NodeState::kStandby:
        ns.add("node standby", -kInfinity);
        break;
      case NodeState::kMaintenance:
        ns.add("node maintenance", -kInfinity);
        break;
      case NodeState::kUnclean:
        ns.add("node unclean", -kInfinity);
        break;
      case NodeState::kFenced:
        ns.add("node fenced", -kInfinity);
        break;
    }
    if (node.role == NodeRole::kWitness) ns.add("witness node holds no resources", -kInfinity);
  }

  bool location_applies(const LocationConstraint& c, int n) const {
    if (!c.node.empty()) return loc_node_[loc_of(c)] == n;
    const Node& node = *nodes_[n];
    bool all = true;
    bool any = false;
    for (const auto& e : c.rule) {
      bool m = cluster::rule_expression_matches(e, node.attributes);
      all = all && m;
      any = any || m;
    }
    return c.rule_match_all ? all : any;
  }

  static std::string location_label(const LocationConstraint& c) {
    if (!c.node.empty()) return "location " + c.id;
    std::string s = "location " + c.id + " (rule:";
    for (size_t i = 0; i < c.rule.size(); ++i) {
      const auto& e = c.rule[i];
      if (i > 0) s += c.rule_match_all ? " and" : " or";
      s += " " + e.attribute + " " + std::string(cluster::rule_op_name(e.op));
      if (e.op != cluster::RuleOp::kDefined && e.op != cluster::RuleOp::kNotDefined) {
        s += " " + e.value;
      }
    }
    return s + ")";
  }

  // `prefix` is a view: callers pass "" once per node and unit, which must not build a string.
  void location_terms(const std::vector<const LocationConstraint*>& locs, int n, bool promotion,
                      std::string_view prefix, NodeScore& ns) const {
    for (const LocationConstraint* c : locs) {
      if ((c->role == Role::kPromoted) != promotion) continue;
      if (!location_applies(*c, n)) continue;
      std::string what(prefix);
      what += loc_label_[loc_of(*c)];
      ns.add(std::move(what), c->score);
    }
  }

  // The index of a location constraint in the snapshot, for loc_label_ and loc_node_.
  size_t loc_of(const LocationConstraint& c) const { return size_t(&c - s_.locations.data()); }

  // p.st is sorted by node index: a clone's primitive may list every node.
  const ResourceState* state_on(const Prim& p, int n) const {
    auto it = std::lower_bound(p.st.begin(), p.st.end(), n,
                               [](const auto& entry, int node) { return entry.first < node; });
    return it != p.st.end() && it->first == n ? it->second : nullptr;
  }

  // Is the fail count on this node still counting, at now_ms?
  bool fail_count_live(const Prim& p, const ResourceState& st) const {
    int64_t timeout_s = p.r->meta.failure_timeout_s;
    return timeout_s <= 0 || s_.now_ms < st.last_failure_ms + timeout_s * 1000;
  }

  // What one primitive contributes on node n (besides the node's own state).
  // `clone`: the primitive of a clone, whose copy on an unclean node is left in place
  // (place_clone) instead of blocking every copy.
  void prim_terms(const Prim& p, int n, const std::string& prefix, NodeScore& ns,
                  bool clone = false) const {
    const auto& meta = p.r->meta;
    if (!s_.has_quorum && meta.require != Requires::kNothing) {
      ns.add(
          prefix + "no quorum (requires " + std::string(cluster::requires_name(meta.require)) + ")",
          -kInfinity);
    }
    if (!p.blocked.empty() && !clone) ns.add(prefix + p.blocked, -kInfinity);
    location_terms(p.locs, n, false, prefix, ns);
    const ResourceState* st = state_on(p, n);
    if (st == nullptr) return;
    if (st->running && !st->failed && meta.stickiness != 0 && reachable(nodes_[n]->state)) {
      ns.add(prefix + "stickiness", meta.stickiness);
    }
    if (st->fail_count > 0) {
      std::string fc = "fail-count " + cluster::score_str(st->fail_count);
      if (!fail_count_live(p, *st)) {
        ns.add(prefix + fc + " expired (failure-timeout " + std::to_string(meta.failure_timeout_s) +
                   "s)",
               0);
      } else if (st->fail_count >= meta.migration_threshold) {
        ns.add(
            prefix + fc + " >= migration-threshold " + cluster::score_str(meta.migration_threshold),
            -kInfinity);
      } else {
        ns.add(
            prefix + fc + " < migration-threshold " + cluster::score_str(meta.migration_threshold),
            0);
      }
    }
  }

  // The nodes where `id` is placed in a role matching `role`.
  std::vector<char> where(const std::string& id, Role role) const {
    std::vector<char> on(nodes_.size(), 0);
    auto pi = prim_index_.find(id);
    std::vector<int> ps;
    if (pi != prim_index_.end()) {
      ps.push_back(pi->second);
    } else {
      const Unit& u = units_[unit_of_.at(id)];
      ps.push_back(u.members.front());  // a group is where its first member is
    }
    for (int p : ps) {
      for (const Placed& pl : prims_[p].target) {
        if (role_matches(role, pl.role)) on[node_index_.at(pl.node)] = 1;
      }
    }
    return on;
  }

  static bool any(const std::vector<char>& v) {
    return std::find(v.begin(), v.end(), 1) != v.end();
  }

  // Colocation (dependent side) and mandatory order terms; `promotion` selects the
  // colocations whose dependent role is promoted.
  void relation_terms(const Unit& u, bool promotion, std::vector<NodeScore>& scores) const {
    for (const ColocationConstraint* c : u.colocs) {
      if ((c->resource_role == Role::kPromoted) != promotion) continue;
      std::vector<char> on = where(c->with, c->with_role);
      std::string with = c->with;
      if (c->with_role != Role::kStarted) {
        with += " (" + std::string(cluster::role_name(c->with_role)) + ")";
      }
      bool with_anywhere = any(on);
      // One text per constraint, copied to each node it scores (often all but one).
      std::string what;
      if (c->score < kInfinity) {
        what = "colocation " + c->id + " with " + with;
      } else if (!with_anywhere) {
        what = "colocation " + c->id + ": " + with + " is not running";
      } else {
        what = "colocation " + c->id + ": " + with + " not here";
      }
      for (size_t n = 0; n < nodes_.size(); ++n) {
        if (c->score >= kInfinity) {
          if (!with_anywhere || !on[n]) scores[n].add(what, -kInfinity);
        } else if (on[n]) {
          scores[n].add(what, c->score);
        }
      }
    }
    if (promotion) return;
    for (const OrderConstraint* c : u.orders) {
      Role r = c->first_action == OrderAction::kPromote ? Role::kPromoted : Role::kStarted;
      if (any(where(c->first, r))) continue;
      const std::string what =
          "order " + c->id + ": " + c->first +
          (c->first_action == OrderAction::kPromote ? " is not promoted" : " is not running");
      for (auto& ns : scores) ns.add(what, -kInfinity);
    }
  }

  std::map<std::string, int64_t> utilization(const std::vector<int>& members) const {
    std::map<std::string, int64_t> need;
    for (int m : members) {
      for (const auto& [k, v] : prims_[m].r->utilization) need[k] += v;
    }
    return need;
  }

  Plan out_;
  const ClusterSnapshot& s_;
  std::vector<const Node*> nodes_;
  std::map<std::string, int> node_index_;
  std::vector<Prim> prims_;
  std::map<std::string, int> prim_index_;
  std::vector<Unit> units_;
  std::map<std::string, int> unit_of_;
  std::vector<int64_t> load_;
  std::vector<std::map<std::string, int64_t>> free_;
  std::vector<bool> fence_;
  std::vector<std::string> loc_label_;  // per s_.locations entry: its term's text
  std::vector<int> loc_node_;           // per s_.locations entry: its node's index, or -1

  std::vector<int> order_;  // units in placement order

  void place(int ui);
  void place_clone(Unit& u, Explanation& ex);
  void actions();
  bool fits(int n, const std::map<std::string, int64_t>& need, std::string* why) const;
  void consume(int n, const std::map<std::string, int64_t>& need);
  int best_node(const std::vector<NodeScore>& scores) const;
};

bool Planner::fits(int n, const std::map<std::string, int64_t>& need, std::string* why) const {
  if (need.empty()) return true;  // the common case, asked once per node and unit
  for (const auto& [key, amount] : need) {
    auto it = free_[n].find(key);
    int64_t have = it == free_[n].end() ? 0 : it->second;
    if (have < amount) {
      *why =
          "utilization " + key + " " + std::to_string(amount) + " > free " + std::to_string(have);
      return false;
    }
  }
  return true;
}

void Planner::consume(int n, const std::map<std::string, int64_t>& need) {
  for (const auto& [key, amount] : need) free_[n][key] -= amount;
}

// Highest score >= 0; ties go to the node with fewer units placed so far, then by name.
int Planner::best_node(const std::vector<NodeScore>& scores) const {
  int best = -1;
  for (size_t n = 0; n < scores.size(); ++n) {
    if (scores[n].total < 0) continue;
    if (best < 0 || scores[n].total > scores[best].total ||
        (scores[n].total == scores[best].total && load_[n] < load_[best])) {
      best = int(n);
    }
  }
  return best;
}

void Planner::place(int ui) {
  Unit& u = units_[ui];
  Explanation ex;
  ex.unit = u.id;
  u.placed = true;
  if (u.kind == UnitKind::kClone) {
    place_clone(u, ex);
    out_.explanation.push_back(std::move(ex));
    return;
  }
  const bool group = u.kind == UnitKind::kGroup;
  ex.kind = group ? "group" : "primitive";
  const size_t n_nodes = nodes_.size();
  std::vector<NodeScore> scores(n_nodes);
  for (size_t n = 0; n < n_nodes; ++n) {
    scores[n].node = nodes_[n]->name;
    node_terms(int(n), scores[n]);
    if (group && u.target == TargetRole::kStopped) scores[n].add("target-role stopped", -kInfinity);
    location_terms(u.locs, int(n), false, "", scores[n]);
  }
  // A group runs the prefix of its members that can run somewhere; the first member that
  // cannot run anywhere stops, and so does every member after it.
  std::vector<int> live;
  std::vector<NodeScore> mine(group ? n_nodes : 0);
  for (int m : u.members) {
    const Prim& p = prims_[m];
    if (!group) {
      // A lone primitive: its terms go straight into the unit's scores, in the order the
      // group path below adds them, without a second NodeScore per node.
      const std::string no_prefix;
      for (size_t n = 0; n < n_nodes; ++n) {
        if (p.r->meta.target_role == TargetRole::kStopped) {
          scores[n].add("target-role stopped", -kInfinity);
        }
        prim_terms(p, int(n), no_prefix, scores[n]);
      }
      live.push_back(m);
      continue;
    }
    std::string prefix = p.r->id + ": ";
    for (size_t n = 0; n < n_nodes; ++n) {
      mine[n] = NodeScore{};
      if (p.r->meta.target_role == TargetRole::kStopped) {
        mine[n].add(prefix + "target-role stopped", -kInfinity);
      }
      prim_terms(p, int(n), prefix, mine[n]);
    }
    bool runnable = std::any_of(mine.begin(), mine.end(),
                                [](const NodeScore& ns) { return ns.total > -kInfinity; });
    if (group && !runnable) {
      std::string why;
      for (const Term& t : mine.front().terms) {
        if (t.value <= -kInfinity) {
          why = t.what.substr(prefix.size());
          break;
        }
      }
      ex.notes.push_back("member " + p.r->id + " cannot run on any node (" + why +
                         "): it and the members after it stay stopped");
      break;
    }
    live.push_back(m);
    for (size_t n = 0; n < n_nodes; ++n) {
      for (Term& t : mine[n].terms) scores[n].add(std::move(t.what), t.value);
    }
  }
  relation_terms(u, false, scores);

  // Maintenance: what runs on a maintenance node is left exactly as it is.
  int frozen = -1;
  for (int m : u.members) {
    for (auto [n, st] : prims_[m].st) {
      if (st->running && nodes_[n]->state == NodeState::kMaintenance) frozen = n;
    }
  }
  int chosen = -1;
  const auto need = utilization(live);
  if (frozen >= 0) {
    chosen = frozen;
    ex.notes.push_back("left as it is on " + nodes_[frozen]->name + " (node maintenance)");
    for (int m : u.members) {
      const ResourceState* st = state_on(prims_[m], frozen);
      if (st && st->running) prims_[m].target.push_back(Placed{nodes_[frozen]->name, st->role});
    }
  } else {
    for (size_t n = 0; n < n_nodes; ++n) {
      std::string why;
      if (scores[n].total >= 0 && !fits(int(n), need, &why)) scores[n].add(why, -kInfinity);
    }
    int best = best_node(scores);
    chosen = best;
    // failback stay: keep running where it runs while that node is eligible, unless another
    // node is +INFINITY (a move) and this one is not.
    if (!live.empty() && prims_[live.front()].r->meta.failback == cluster::Failback::kStay) {
      int current = -1;
      for (auto [n, st] : prims_[live.front()].st) {
        if (st->running && !st->failed && nodes_[n]->state == NodeState::kOnline) current = n;
      }
      if (current >= 0 && current != best && scores[current].total >= 0 &&
          !(scores[best].total >= kInfinity && scores[current].total < kInfinity)) {
        chosen = current;
        ex.notes.push_back("failback stay: stays on " + nodes_[current]->name + " although " +
                           nodes_[best]->name + " scores higher");
      }
    }
    if (live.empty() || chosen < 0) {
      chosen = -1;
      ex.notes.push_back("stopped: no node with a score >= 0");
    } else {
      ex.notes.push_back("placed on " + nodes_[chosen]->name + " (score " +
                         cluster::score_str(scores[chosen].total) + ")");
      load_[chosen] += 1;
      consume(chosen, need);
      for (int m : live) prims_[m].target.push_back(Placed{nodes_[chosen]->name, Role::kStarted});
    }
  }
  ex.scores = std::move(scores);
  out_.explanation.push_back(std::move(ex));
}

void Planner::place_clone(Unit& u, Explanation& ex) {
  const Clone& c = *u.clone;
  Prim& p = prims_[u.members.front()];
  ex.kind = c.promotable ? "promotable clone" : "clone";
  const size_t n_nodes = nodes_.size();
  std::vector<NodeScore> scores(n_nodes);
  const std::string no_prefix;
  for (size_t n = 0; n < n_nodes; ++n) {
    scores[n].node = nodes_[n]->name;
    node_terms(int(n), scores[n]);
    if (u.target == TargetRole::kStopped) scores[n].add("target-role stopped", -kInfinity);
    location_terms(u.locs, int(n), false, "", scores[n]);
    prim_terms(p, int(n), no_prefix, scores[n], true);
  }
  relation_terms(u, false, scores);

  std::vector<int64_t> alloc(n_nodes, 0);
  std::vector<Role> frozen_role(n_nodes, Role::kStopped);
  int64_t placed = 0;
  for (auto [n, st] : p.st) {
    if (st->running && nodes_[n]->state == NodeState::kMaintenance) {
      alloc[n] = st->copies;
      frozen_role[n] = st->role;
      placed += st->copies;
      ex.notes.push_back("left as it is on " + nodes_[n]->name + " (node maintenance)");
    }
    // A copy on an unclean node that is not fenced (and has not stopped itself with its
    // hold) may still run, in its role: it counts as placed there, so that no copy beyond
    // clone_max starts and no second copy is promoted, while the other copies run on.
    if (st->running && nodes_[n]->state == NodeState::kUnclean && !fence_[n] &&
        p.r->meta.require == Requires::kFencing &&
        !(p.r->meta.exclusive && nodes_[n]->hold_expires_ms &&
          *nodes_[n]->hold_expires_ms <= s_.now_ms)) {
      alloc[n] = st->copies;
      frozen_role[n] = st->role;
      placed += st->copies;
      ex.notes.push_back("left as it is on " + nodes_[n]->name + " (unclean, not fenced)");
    }
  }
  const int64_t want = c.clone_max > 0 ? c.clone_max : int64_t(n_nodes);
  const auto need = utilization(u.members);
  std::vector<char> full(n_nodes, 0);
  // One copy at a time: spread first (fewest copies of this clone), then by score.
  while (placed < want) {
    int best = -1;
    for (size_t n = 0; n < n_nodes; ++n) {
      if (scores[n].total < 0 || alloc[n] >= c.clone_node_max || full[n]) continue;
      std::string why;
      if (!fits(int(n), need, &why)) {
        if (alloc[n] == 0) scores[n].add(why, -kInfinity);
        full[n] = 1;
        continue;
      }
      if (best < 0 || alloc[n] < alloc[best] ||
          (alloc[n] == alloc[best] &&
           (scores[n].total > scores[best].total ||
            (scores[n].total == scores[best].total && load_[n] < load_[best])))) {
        best = int(n);
      }
    }
    if (best < 0) break;
    alloc[best] += 1;
    load_[best] += 1;
    consume(best, need);
    placed += 1;
  }
  ex.notes.push_back(std::to_string(placed) + " of " + std::to_string(want) + " copies placed");

  std::vector<char> promoted(n_nodes, 0);
  if (c.promotable) {
    std::vector<NodeScore> prom(n_nodes);
    int64_t n_promoted = 0;
    for (size_t n = 0; n < n_nodes; ++n) {
      prom[n].node = nodes_[n]->name;
      if (frozen_role[n] == Role::kPromoted) {
        promoted[n] = 1;
        ++n_promoted;
      }
    }
    for (size_t n = 0; n < n_nodes; ++n) {
      const ResourceState* st = state_on(p, int(n));
      if (st && st->promotion_score) {
        prom[n].add("promotion score from the agent", *st->promotion_score);
      } else {
        prom[n].add("no promotion score from the agent", -kInfinity);
      }
      location_terms(p.locs, int(n), true, "", prom[n]);
      location_terms(u.locs, int(n), true, "", prom[n]);
      if (st && st->running && !st->failed && st->role == Role::kPromoted &&
          p.r->meta.stickiness != 0) {
        prom[n].add("stickiness (promoted)", p.r->meta.stickiness);
      }
    }
    relation_terms(u, true, prom);
    if (u.target == TargetRole::kStopped) n_promoted = c.promoted_max;
    while (n_promoted < c.promoted_max) {
      int best = -1;
      for (size_t n = 0; n < n_nodes; ++n) {
        if (alloc[n] == 0 || promoted[n] || prom[n].total < 0 ||
            nodes_[n]->state == NodeState::kMaintenance) {
          continue;
        }
        // A tie goes to the copy that is promoted (or being promoted) already: scores that
        // arrive one by one must not move the promotion back and forth.
        auto now_promoted = [&](size_t m) {
          const ResourceState* st = state_on(p, int(m));
          return st && st->running && st->role == Role::kPromoted;
        };
        if (best < 0 || prom[n].total > prom[best].total ||
            (prom[n].total == prom[best].total && now_promoted(n) && !now_promoted(best))) {
          best = int(n);
        }
      }
      if (best < 0) break;
      promoted[best] = 1;
      ++n_promoted;
      ex.notes.push_back("promoted on " + nodes_[best]->name + " (promotion score " +
                         cluster::score_str(prom[best].total) + ")");
    }
    if (n_promoted == 0 && u.target != TargetRole::kStopped && c.promoted_max > 0) {
      ex.notes.push_back("no copy promoted: no placed copy has a promotion score >= 0");
    }
    for (size_t n = 0; n < n_nodes; ++n) {
      if (alloc[n] > 0) ex.promotion.push_back(std::move(prom[n]));
    }
  }
  for (size_t n = 0; n < n_nodes; ++n) {
    if (alloc[n] == 0) continue;
    Role role = Role::kStarted;
    if (frozen_role[n] != Role::kStopped) {
      role = frozen_role[n];
    } else if (c.promotable) {
      role = promoted[n] ? Role::kPromoted : Role::kUnpromoted;
    }
    p.target.push_back(Placed{nodes_[n]->name, role, alloc[n]});
  }
  ex.scores = std::move(scores);
}

void Planner::actions() {
  struct Pending {
    ActionKind kind;
    int prim;  // -1 for fence
    int node;
    int64_t copies;
    std::string reason;
    std::vector<int> after;  // indices into `acts`
  };
  std::vector<Pending> acts;
  const size_t n_prims = prims_.size();
  std::vector<std::vector<int>> starts(n_prims), stops(n_prims), promotes(n_prims),
      demotes(n_prims);
  std::vector<int> fence_action(nodes_.size(), -1);
  auto add = [&](ActionKind kind, int prim, int node, int64_t copies, std::string reason) {
    acts.push_back(Pending{kind, prim, node, copies, std::move(reason), {}});
    return int(acts.size()) - 1;
  };
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (fence_[n]) {
      fence_action[n] = add(ActionKind::kFence, -1, int(n), 1, "node unclean");
      out_.changes.push_back(Change{"Fence", nodes_[n]->name, "(node unclean)"});
    }
  }
  std::vector<Change> changes;
  // Primitives in placement order, so that a `first` is decided before its `then`.
  std::vector<int> prim_order;
  for (int u : order_) {
    for (int m : units_[u].members) prim_order.push_back(m);
  }
  std::vector<char> has_stop(n_prims, 0);
  for (int pi : prim_order) {
    Prim& p = prims_[pi];
    const bool clone = units_[p.unit].kind == UnitKind::kClone;
    const bool promotable = clone && units_[p.unit].clone->promotable;
    std::string restart_after;
    for (int f : p.firsts) {
      if (has_stop[f]) {
        restart_after = prims_[f].r->id;
        break;
      }
    }
    struct Here {
      int64_t cur = 0;
      Role cur_role = Role::kStopped;
      bool failed = false;
      bool restart = false;
      int64_t tgt = 0;
      Role tgt_role = Role::kStopped;
    };
    std::map<int, Here> per;
    for (auto [n, st] : p.st) {
      if (!st->running || !reachable(nodes_[n]->state)) continue;
      if (nodes_[n]->state == NodeState::kMaintenance) continue;
      Here& h = per[n];
      h.cur = clone ? st->copies : 1;
      h.cur_role = st->role;
      h.failed = st->failed;
      h.restart = st->restart;
    }
    for (const Placed& pl : p.target) {
      int n = node_index_.at(pl.node);
      // Left as it is: maintenance, or a clone's copy on an unclean node (place_clone).
      if (nodes_[n]->state == NodeState::kMaintenance) continue;
      if (nodes_[n]->state == NodeState::kUnclean) continue;
      Here& h = per[n];
      h.tgt = pl.copies;
      h.tgt_role = pl.role;
    }
    bool placed_anywhere = !p.target.empty();
    std::vector<std::string> stop_nodes, start_nodes, restarted, requested;
    bool recovered = false;
    for (auto& [n, h] : per) {
      int64_t stop_n = 0;
      int64_t start_n = 0;
      std::string reason;
      if (h.failed && h.cur > 0) {
        stop_n = h.cur;
        start_n = h.tgt;
        reason = "recover";
        recovered = true;
      } else if (h.restart && h.cur > 0 && h.tgt > 0) {
        stop_n = h.cur;
        start_n = h.tgt;
        reason = "restart";
      } else if (h.cur > 0 && h.tgt > 0 && !restart_after.empty()) {
        stop_n = h.cur;
        start_n = h.tgt;
        reason = "restart after " + restart_after;
      } else if (h.cur > h.tgt) {
        stop_n = h.cur - h.tgt;
        reason = placed_anywhere && !clone ? "move" : "stop";
      } else if (h.tgt > h.cur) {
        start_n = h.tgt - h.cur;
        reason = "start";
      }
      const std::string& name = nodes_[n]->name;
      bool was_promoted = h.cur > 0 && h.cur_role == Role::kPromoted;
      if (was_promoted && (stop_n > 0 || h.tgt_role != Role::kPromoted)) {
        demotes[pi].push_back(
            add(ActionKind::kDemote, pi, int(n), 1, reason.empty() ? "demote" : reason));
        if (stop_n == 0) changes.push_back(Change{"Demote", p.r->id, name});
      }
      if (stop_n > 0) {
        stops[pi].push_back(add(ActionKind::kStop, pi, int(n), stop_n, reason));
        has_stop[pi] = 1;
      }
      if (start_n > 0) {
        if (stop_n == 0 && stops[pi].empty() && !clone) reason = "start";
        starts[pi].push_back(add(ActionKind::kStart, pi, int(n), start_n, reason));
      }
      if (stop_n > 0 && start_n > 0 && reason == "restart") {
        requested.push_back(name);
      } else if (stop_n > 0 && start_n > 0) {
        restarted.push_back(name);
      } else if (stop_n > 0) {
        stop_nodes.push_back(name);
      } else if (start_n > 0) {
        start_nodes.push_back(name);
      }
      bool now_promoted = h.tgt > 0 && h.tgt_role == Role::kPromoted;
      if (now_promoted && (!was_promoted || stop_n > 0)) {
        promotes[pi].push_back(add(ActionKind::kPromote, pi, int(n), 1, "promote"));
        changes.push_back(Change{"Promote", p.r->id, name});
      }
    }
    // What the operator reads: a move, a recovery, a restart, a start or a stop.
    std::string after_fence;
    for (int u : p.fence_waits) {
      after_fence += (after_fence.empty() ? "" : ", ") + nodes_[u]->name;
    }
    if (!clone && stop_nodes.size() == 1 && start_nodes.size() == 1 && restarted.empty()) {
      changes.push_back(Change{"Move", p.r->id, stop_nodes[0] + " -> " + start_nodes[0]});
      stop_nodes.clear();
      start_nodes.clear();
    }
    if (!clone && stop_nodes.empty() && start_nodes.size() == 1 && !after_fence.empty()) {
      changes.push_back(
          Change{"Move", p.r->id,
                 after_fence + " -> " + start_nodes[0] + " (after fencing " + after_fence + ")"});
      start_nodes.clear();
    }
    for (const auto& n : restarted) {
      changes.push_back(Change{recovered ? "Recover" : "Restart", p.r->id,
                               n + (recovered ? "" : " (after " + restart_after + ")")});
    }
    for (const auto& n : requested) changes.push_back(Change{"Restart", p.r->id, n});
    for (const auto& n : start_nodes) changes.push_back(Change{"Start", p.r->id, n});
    for (const auto& n : stop_nodes) changes.push_back(Change{"Stop", p.r->id, n});
    (void)promotable;
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const Change& a, const Change& b) { return a.resource < b.resource; });
  out_.changes.insert(out_.changes.end(), changes.begin(), changes.end());

  // ---- the graph ------------------------------------------------------------------------
  auto edge = [&](int before, int after) {
    if (before != after) acts[after].after.push_back(before);
  };
  auto edges = [&](const std::vector<int>& before, const std::vector<int>& after) {
    for (int a : after) {
      for (int b : before) edge(b, a);
    }
  };
  for (size_t pi = 0; pi < n_prims; ++pi) {
    const bool clone = units_[prims_[pi].unit].kind == UnitKind::kClone;
    for (int d : demotes[pi]) {
      for (int s : stops[pi]) {
        if (acts[s].node == acts[d].node) edge(d, s);
      }
    }
    for (int st : starts[pi]) {
      for (int pr : promotes[pi]) {
        if (acts[pr].node == acts[st].node) edge(st, pr);
      }
    }
    edges(demotes[pi], promotes[pi]);  // at most promoted_max promoted at any time
    if (clone) {
      for (int s : stops[pi]) {
        for (int st : starts[pi]) {
          if (acts[s].node == acts[st].node) edge(s, st);
        }
      }
    } else {
      edges(stops[pi], starts[pi]);  // never active on two nodes at once
    }
    for (int u : prims_[pi].fence_waits) {
      for (int st : starts[pi]) edge(fence_action[u], st);
    }
  }
  for (const Unit& u : units_) {
    if (u.kind != UnitKind::kGroup) continue;
    for (size_t i = 1; i < u.members.size(); ++i) {
      edges(starts[u.members[i - 1]], starts[u.members[i]]);
      edges(stops[u.members[i]], stops[u.members[i - 1]]);
    }
  }
  for (const OrderConstraint& c : s_.orders) {
    std::vector<int> fa, ta, finv, tinv;
    for (int f : prims_of(c.first)) {
      const auto& a = c.first_action == OrderAction::kPromote ? promotes[f] : starts[f];
      const auto& inv = c.first_action == OrderAction::kPromote ? demotes[f] : stops[f];
      fa.insert(fa.end(), a.begin(), a.end());
      finv.insert(finv.end(), inv.begin(), inv.end());
    }
    for (int t : prims_of(c.then)) {
      const auto& a = c.then_action == OrderAction::kPromote ? promotes[t] : starts[t];
      const auto& inv = c.then_action == OrderAction::kPromote ? demotes[t] : stops[t];
      ta.insert(ta.end(), a.begin(), a.end());
      tinv.insert(tinv.end(), inv.begin(), inv.end());
    }
    edges(fa, ta);
    if (c.symmetrical) edges(tinv, finv);
  }

  // Kahn's algorithm; among ready actions the smallest (kind, resource, node) goes first.
  const size_t n_acts = acts.size();
  std::vector<std::vector<int>> succ(n_acts);
  std::vector<int> indegree(n_acts, 0);
  for (size_t i = 0; i < n_acts; ++i) {
    auto& a = acts[i].after;
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    for (int b : a) succ[b].push_back(int(i));
    indegree[i] = int(a.size());
  }
  auto key = [&](int i) {
    const Pending& a = acts[i];
    return std::make_tuple(int(a.kind),
                           a.prim < 0 ? std::string_view() : std::string_view(prims_[a.prim].r->id),
                           std::string_view(nodes_[a.node]->name));
  };
  // Keys are unique (one action of a kind per primitive and node, one fence per node), so
  // ranking them once and keeping ranks in the heap gives the same order as comparing keys
  // there, at one string comparison per pair instead of one per sift step.
  std::vector<int> by_key(n_acts);
  for (size_t i = 0; i < n_acts; ++i) by_key[i] = int(i);
  std::sort(by_key.begin(), by_key.end(), [&](int a, int b) { return key(a) < key(b); });
  std::vector<int> rank(n_acts);
  for (size_t k = 0; k < n_acts; ++k) rank[by_key[k]] = int(k);
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;  // ranks
  for (size_t i = 0; i < n_acts; ++i) {
    if (indegree[i] == 0) ready.push(rank[i]);
  }
  std::vector<int> sorted;
  sorted.reserve(n_acts);
  while (!ready.empty()) {
    int i = by_key[ready.top()];
    ready.pop();
    sorted.push_back(i);
    for (int s : succ[i]) {
      if (--indegree[s] == 0) ready.push(rank[s]);
    }
  }
  if (sorted.size() < n_acts) {
    out_.warnings.push_back(
        "the order constraints form a cycle: " + std::to_string(n_acts - sorted.size()) +
        " action(s) ordered by name only");
    std::vector<int> rest;
    for (size_t i = 0; i < n_acts; ++i) {
      if (indegree[i] > 0) rest.push_back(int(i));
    }
    std::sort(rest.begin(), rest.end(), [&](int a, int b) { return rank[a] < rank[b]; });
    sorted.insert(sorted.end(), rest.begin(), rest.end());
  }
  std::vector<int> id_of(n_acts);
  for (size_t k = 0; k < sorted.size(); ++k) id_of[sorted[k]] = int(k) + 1;
  out_.actions.reserve(n_acts);
  for (int i : sorted) {
    Pending& a = acts[i];
    Action act;
    act.id = id_of[i];
    act.kind = a.kind;
    if (a.prim >= 0) act.resource = prims_[a.prim].r->id;
    act.node = nodes_[a.node]->name;
    act.copies = a.copies;
    act.reason = std::move(a.reason);
    for (int b : a.after) act.after.push_back(id_of[b]);
    std::sort(act.after.begin(), act.after.end());
    out_.actions.push_back(std::move(act));
  }
}

}  // namespace

std::string_view action_kind_name(ActionKind k) {
  switch (k) {
    case ActionKind::kFence:
      return "fence";
    case ActionKind::kDemote:
      return "demote";
    case ActionKind::kStop:
      return "stop";
    case ActionKind::kStart:
      return "start";
    case ActionKind::kPromote:
      return "promote";
  }
  return "?";
}

std::string Action::label() const {
  if (kind == ActionKind::kFence) return "fence " + node;
  std::string s = std::string(action_kind_name(kind)) + " " + resource + " on " + node;
  if (copies > 1) s += " x" + std::to_string(copies);
  return s;
}

std::string signed_score_str(int64_t v) {
  if (v > 0) return "+" + cluster::score_str(v);
  return cluster::score_str(v);
}

Result<Plan> plan(const ClusterSnapshot& snapshot) {
  RETURN_IF_ERROR(cluster::validate(snapshot));
  Planner planner(snapshot);
  return planner.run();
}

ClusterSnapshot apply_plan(const ClusterSnapshot& snapshot, const Plan& p) {
  ClusterSnapshot r = snapshot;
  std::map<std::string, NodeState> state;
  for (const Action& a : p.actions) {
    if (a.kind != ActionKind::kFence) continue;
    for (Node& n : r.nodes) {
      if (n.name == a.node) n.state = NodeState::kFenced;
    }
  }
  for (const Node& n : r.nodes) state[n.name] = n.state;
  for (const Resource& res : r.resources) {
    auto& per = r.status[res.id];
    std::map<std::string, Placed> target;
    auto it = p.placement.find(res.id);
    if (it != p.placement.end()) {
      for (const Placed& pl : it->second) target[pl.node] = pl;
    }
    for (const auto& [node, pl] : target) {
      if (state[node] == NodeState::kMaintenance) continue;
      ResourceState& st = per[node];
      st.running = true;
      st.role = pl.role;
      st.copies = pl.copies;
      st.failed = false;
      st.restart = false;
    }
    for (auto& [node, st] : per) {
      NodeState ns = state[node];
      if (ns == NodeState::kMaintenance || ns == NodeState::kUnclean) continue;
      if (target.contains(node) && reachable(ns)) continue;
      st.running = false;
      st.failed = false;
      st.restart = false;
      st.role = Role::kStarted;
      st.copies = 1;
    }
    std::erase_if(per, [](const auto& kv) {
      const ResourceState& st = kv.second;
      return !st.running && !st.failed && st.fail_count == 0 && !st.promotion_score;
    });
    if (per.empty()) r.status.erase(res.id);
  }
  return r;
}

}  // namespace vigil::sched
