// The whole-cluster simulation (cluster_sim.h). Time moves in steps of kStepMs; in every step
// the modelled Raft layer delivers heartbeats, elects, commits and applies; every live
// executor completes, starts and reports actions; the leader's coordinator plans; then the
// checkers run. Everything random comes from one seeded generator, so a seed replays exactly.
#include "sim_cluster/cluster_sim.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <utility>

#include "cluster/model.h"
#include "sched/coordinate.h"
#include "sched/plan.h"

namespace vigil::simcluster {
namespace {

using cluster::ClusterSnapshot;
using cluster::NodeState;
using cluster::Role;
using sched::Assignment;
using sched::NodeResource;
using sched::Reported;

// The daemon's timers (daemon/cluster_service.cc and the agent's defaults).
constexpr int64_t kStepMs = 10;
constexpr int64_t kElectionMinMs = 300;
constexpr int64_t kElectionMaxMs = 600;
constexpr int64_t kHoldMs = 480;
constexpr double kDrift = 0.01;
constexpr int64_t kHoldGuardMs = 120;  // a node's hold ends this much before the leader's view
constexpr int64_t kReplanMs = 100;
constexpr int64_t kEditRepeatMs = 1000;
constexpr int64_t kPendingEditMs = 3000;
constexpr int64_t kRepublishMs = 300;
constexpr int64_t kMonitorMs = 200;
constexpr int64_t kStartTimeoutMs = 2000;

// splitmix64: small, fast and the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int64_t range(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return static_cast<double>(next() % 1000000) < p * 1e6; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[next() % v.size()];
  }

 private:
  uint64_t s_;
};

// ---- the store -------------------------------------------------------------------------------

struct ExecRecord {
  int64_t boot = 0;
  bool ready = false;
  int64_t rev = 0;
};

struct NodeRecord {
  std::string state;
  int64_t rev = 0;
};

enum class OpKind { kAssign, kUnassign, kStatus, kExec, kNodeState };

struct Op {
  OpKind kind = OpKind::kAssign;
  std::string node;
  std::string resource;
  Role role = Role::kStarted;  // kAssign
  Reported report;             // kStatus
  int64_t boot = 0;            // kExec
  bool ready = false;          // kExec
  std::string state;           // kNodeState
};

// What one replica has applied.
struct View {
  int64_t rev = 0;
  std::map<NodeResource, Assignment> assigned;
  std::map<NodeResource, Reported> reported;
  std::map<std::string, ExecRecord> exec;
  std::map<std::string, NodeRecord> nodes;

  void apply(const Op& op, int64_t r) {
    rev = r;
    switch (op.kind) {
      case OpKind::kAssign:
        assigned[{op.node, op.resource}] = Assignment{op.role, r};
        break;
      case OpKind::kUnassign:
        assigned.erase({op.node, op.resource});
        break;
      case OpKind::kStatus:
        reported[{op.node, op.resource}] = op.report;
        break;
      case OpKind::kExec:
        exec[op.node] = ExecRecord{op.boot, op.ready, r};
        break;
      case OpKind::kNodeState:
        nodes[op.node] = NodeRecord{op.state, r};
        break;
    }
  }
};

bool same_report(const Reported& a, const Reported& b) {
  return a.token == b.token && a.state.running == b.state.running && a.state.role == b.state.role &&
         a.state.failed == b.state.failed && a.state.fail_count == b.state.fail_count &&
         a.state.last_failure_ms == b.state.last_failure_ms;
}

// ---- the fake agents ------------------------------------------------------------------------

enum class Fault { kNone, kSlow, kHang, kFail };
enum class Act { kNone, kProbe, kStart, kStop, kMonitor };

const char* act_name(Act a) {
  switch (a) {
    case Act::kProbe:
      return "probe";
    case Act::kStart:
      return "start";
    case Act::kStop:
      return "stop";
    case Act::kMonitor:
      return "monitor";
    case Act::kNone:
      break;
  }
  return "none";
}

// The executor's record of one resource (daemon/cluster_service.cc Local).
struct Local {
  bool probed = false;
  bool running = false;
  Role role = Role::kStarted;
  bool failed = false;
  int64_t fail_count = 0;
  int64_t last_failure_ms = 0;
  int64_t token = 0;
  int64_t blocked = -1;
  Act busy = Act::kNone;
  int64_t done_at = 0;
  bool will_fail = false;
  int64_t next_monitor = 0;
  bool monitor_fails = false;  // the next monitor reports a failure (the service is sick)
  int64_t published_at = -1000000;
};

struct Node {
  std::string name;
  bool up = true;     // the agent runs (false: crashed agent, or the whole machine is down)
  int group = 0;      // nodes talk only within a group
  bool mute = false;  // what it sends reaches no one; it still hears its group (one-way)
  // Raft, as far as this node knows.
  bool believes_leader = false;
  // Bumped whenever it stops leading; the executor counts its hold as lost once for each
  // (ClusterHost::hold_generation()).
  uint64_t hold_gen = 0;
  uint64_t seen_hold_gen = 0;
  // Its hold runs from here: the send of its latest answer that a leader with a valid lease
  // confirmed it received (the daemon's hold_granted; Bug::kHoldOnReceipt: its last receipt).
  int64_t last_leader_contact = 0;
  int64_t election_deadline = 0;
  int64_t last_majority = 0;  // as leader: its last heartbeat that a majority answered
  // When it last heard a leader (or restarted): for an election timeout after, it grants no
  // vote (raft.cc in_lease(), the promise the leader's lease rests on).
  int64_t heard_leader = -1000000;
  // The replica.
  View view;
  // The executor.
  std::map<std::string, Local> local;
  bool synced = false;
  int64_t synced_at = 0;  // the revision of the last ReadIndex that (re)synced it
  int64_t sync_rev = -1;  // a ReadIndex under way: synced once applied up to this
  bool started = false;
  int64_t boot = 0;
  bool ready_once = false;
  int64_t readiness_at = -1000000;
  bool readiness_stale_sent = false;
  // The coordinator (used while leader). sent_edits_ survives leader changes, as in the daemon.
  sched::PendingEdits pending;
  sched::HoldClock holds{kHoldMs, kDrift, kHoldGuardMs};
  int64_t leader_since = 0;
  // The leader it last followed and that leader's term; as leader, the previous term's
  // leader if it followed that one (sched::HoldClock's previous leader), else "".
  std::string followed;
  int64_t followed_term = -1;
  std::string previous_leader;
  std::map<std::string, int64_t> last_heard;   // as leader: members' last answers
  std::map<std::string, int64_t> answer_sent;  // as leader: when those answers were sent
  int64_t planned_rev = -1;
  int64_t planned_ms = 0;
  std::map<std::string, std::pair<std::string, int64_t>> sent;
};

struct Proposal {
  int64_t commit_at = 0;
  int64_t term = 0;
  Op op;
};

// What the operator's definition declares, plus how each fake agent notices failures.
struct Cluster {
  ClusterSnapshot def;
  std::set<std::string> supervised;  // "process" agents: a death is seen at once (pidfd)
  std::set<std::string> vips;        // "vip" agents: exclusive ones go with their agent (the
                                     // VIP guard, net/vip_guard.h)
};

Cluster make_cluster(int nodes) {
  Cluster c;
  for (int i = 1; i <= nodes; ++i) {
    c.def.nodes.push_back(cluster::Node{.name = "n" + std::to_string(i)});
  }
  auto prim = [&](const std::string& id, bool exclusive, bool supervised) {
    cluster::Resource r;
    r.id = id;
    r.agent = supervised ? "process" : id == "vip" || id == "g_ip" ? "vip" : "ocf:heartbeat:Dummy";
    if (supervised) r.params["command"] = "/bin/sleep 1000";
    r.meta.exclusive = exclusive;
    r.meta.failure_timeout_s = 2;
    r.meta.migration_threshold = 3;
    c.def.resources.push_back(r);
    if (supervised) c.supervised.insert(id);
  };
  prim("vip", true, false);
  c.vips.insert("vip");
  prim("db", true, true);
  prim("web", true, true);
  prim("g_ip", true, false);
  c.vips.insert("g_ip");
  prim("g_app", true, true);
  prim("mon", false, false);
  prim("batch", false, true);
  for (auto& r : c.def.resources) {
    if (r.id == "web") r.meta.stickiness = 100;
    if (r.id == "batch") r.meta.exclusive = false;
  }
  c.def.groups.push_back(cluster::Group{.id = "g", .members = {"g_ip", "g_app"}});
  c.def.clones.push_back(cluster::Clone{.id = "mon-clone", .resource = "mon"});
  c.def.locations.push_back(
      cluster::LocationConstraint{.id = "db-on-n1", .resource = "db", .score = 100, .node = "n1"});
  c.def.locations.push_back(
      cluster::LocationConstraint{.id = "g-on-n2", .resource = "g", .score = 50, .node = "n2"});
  c.def.colocations.push_back(cluster::ColocationConstraint{
      .id = "web-not-with-db", .resource = "web", .with = "db", .score = -cluster::kInfinity});
  c.def.colocations.push_back(
      cluster::ColocationConstraint{.id = "vip-with-web", .resource = "vip", .with = "web"});
  c.def.orders.push_back(
      cluster::OrderConstraint{.id = "web-then-vip", .first = "web", .then = "vip"});
  return c;
}

class Sim {
 public:
  explicit Sim(const Options& o) : o_(o), rng_(o.seed), cluster_(make_cluster(o.nodes)) {
    for (const auto& n : cluster_.def.nodes) {
      Node x;
      x.name = n.name;
      x.boot = 1;
      nodes_.push_back(std::move(x));
    }
    for (auto& n : nodes_) n.election_deadline = rng_.range(kElectionMinMs, kElectionMaxMs);
  }

  Outcome run() {
    const int64_t fault_end = o_.fault_steps * kStepMs;
    while (now_ < fault_end && out_.violations.size() < 5) {
      maybe_fault();
      step();
    }
    heal_all();
    const int64_t heal_start = now_;
    int64_t quiet_since = -1;
    while (now_ - heal_start < o_.heal_ms && out_.violations.size() < 5) {
      step();
      if (converged()) {
        if (quiet_since < 0) quiet_since = now_;
        if (now_ - quiet_since >= 500) {
          out_.converged_after_ms = quiet_since - heal_start;
          break;
        }
      } else {
        quiet_since = -1;
      }
    }
    if (out_.converged_after_ms < 0 && out_.violations.empty()) {
      violation("did not converge within " + std::to_string(o_.heal_ms) +
                " ms of healing: " + why_not_converged());
    }
    return out_;
  }

 private:
  // ---- faults --------------------------------------------------------------------------------

  void maybe_fault() {
    // Timed returns first.
    for (auto it = returns_.begin(); it != returns_.end();) {
      if (it->first > now_) {
        ++it;
        continue;
      }
      auto [kind, name] = it->second;
      Node& n = node(name);
      if (kind == "machine" || kind == "agent") {
        boot(n);
        log("%s %s back", name.c_str(), kind == "machine" ? "machine" : "agent");
      } else if (kind == "heal") {
        n.group = 0;
        n.mute = false;
        log("%s rejoins", name.c_str());
      } else if (kind == "lag") {
        lag_max_ = 20;
        log("commit lag back to normal");
      }
      it = returns_.erase(it);
    }
    if (!rng_.chance(0.02)) return;
    std::vector<std::string> names;
    for (const auto& n : nodes_) names.push_back(n.name);
    const std::string& who = rng_.pick(names);
    Node& n = node(who);
    const auto& rs = cluster_.def.resources;
    const std::string& res = rs[rng_.next() % rs.size()].id;
    // The pair partition only with five nodes: three-node seeds replay as they always did.
    const int kind = static_cast<int>(rng_.range(0, o_.nodes == 5 ? 13 : 12));
    const bool someone_out =
        !returns_.empty() && std::any_of(returns_.begin(), returns_.end(),
                                         [](const auto& r) { return r.second.first != "lag"; });
    switch (kind) {
      case 0:
      case 1: {  // a resource dies by itself
        if (!active_.contains({who, res})) return;
        active_.erase({who, res});
        note("crash", "%s dies on %s", res.c_str(), who.c_str());
        break;
      }
      case 2: {  // the service is sick: its next monitor fails
        auto it = n.local.find(res);
        if (it == n.local.end() || !it->second.running) return;
        it->second.monitor_fails = true;
        note("monitor-failure", "%s on %s: next monitor fails", res.c_str(), who.c_str());
        break;
      }
      case 3:
        next_fault_[{who, res}] = Fault::kSlow;
        note("slow-start", "next start of %s on %s is slow", res.c_str(), who.c_str());
        break;
      case 4:
        next_fault_[{who, res}] = Fault::kHang;
        note("hang", "next start of %s on %s hangs", res.c_str(), who.c_str());
        break;
      case 5:
        next_fault_[{who, res}] = Fault::kFail;
        note("start-failure", "next start of %s on %s fails", res.c_str(), who.c_str());
        break;
      case 6: {  // the machine dies: agent and processes
        if (someone_out || !n.up) return;
        crash(n, true);
        returns_.insert({now_ + rng_.range(300, 5000), {"machine", who}});
        note("node-crash", "machine %s dies", who.c_str());
        break;
      }
      case 7: {  // the agent alone restarts; its processes live on (shorter than a hold)
        if (someone_out || !n.up) return;
        crash(n, false);
        returns_.insert({now_ + rng_.range(20, kHoldMs - kHoldGuardMs - 50), {"agent", who}});
        note("agent-restart", "agent of %s restarts", who.c_str());
        break;
      }
      case 8:
      case 9: {  // partition: cut off with its link up
        if (someone_out || !n.up) return;
        n.group = 1;
        returns_.insert({now_ + rng_.range(200, 4000), {"heal", who}});
        note("partition", "%s cut off", who.c_str());
        break;
      }
      case 10: {  // leadership moves (a transfer)
        Node* l = leader();
        if (l == nullptr || l->name == who || !connected(*l, n)) return;
        l->believes_leader = false;
        ++l->hold_gen;
        elect(n);
        note("leader-change", "leadership moves to %s", who.c_str());
        break;
      }
      case 11:  // the disk or the network slows down: commits take up to 300 ms
        if (lag_max_ > 20) return;
        lag_max_ = rng_.range(100, 300);
        returns_.insert({now_ + rng_.range(500, 3000), {"lag", ""}});
        note("commit-lag", "commits take up to %lld ms", static_cast<long long>(lag_max_));
        break;
      case 12: {  // one-way partition: what it sends is dropped, it still hears everyone
        if (someone_out || !n.up) return;
        n.mute = true;
        returns_.insert({now_ + rng_.range(200, 4000), {"heal", who}});
        note("one-way-partition", "%s's messages are dropped", who.c_str());
        break;
      }
      case 13: {  // a pair cut off together, the leader in it if there is one: with five
                  // nodes, a minority whose follower still hears a deposed leader
        if (someone_out || !n.up) return;
        Node* l = leader();
        std::vector<std::string> others;
        for (const auto& m : nodes_) {
          if (m.name != who && m.up) others.push_back(m.name);
        }
        if (others.empty()) return;
        const std::string with =
            l != nullptr && l->name != who && rng_.chance(0.7) ? l->name : rng_.pick(others);
        n.group = 1;
        node(with).group = 1;
        const int64_t back = now_ + rng_.range(200, 4000);
        returns_.insert({back, {"heal", who}});
        returns_.insert({back, {"heal", with}});
        note("pair-partition", "%s and %s cut off together", who.c_str(), with.c_str());
        break;
      }
    }
  }

  void heal_all() {
    for (const auto& [at, r] : returns_) {
      if (r.first == "machine" || r.first == "agent") boot(node(r.second));
    }
    returns_.clear();
    for (auto& n : nodes_) {
      n.group = 0;
      n.mute = false;
    }
    lag_max_ = 20;
    next_fault_.clear();
    for (auto& n : nodes_) {
      for (auto& [id, l] : n.local) l.monitor_fails = false;
    }
    log("heal: every node up and connected, no faults");
  }

  // The agent stops (and with it the machine's processes when `machine`).
  void crash(Node& n, bool machine) {
    n.up = false;
    n.believes_leader = false;
    n.local.clear();
    // The machine takes every process with it; an agent alone takes its exclusive
    // supervised processes (they die with it: PR_SET_PDEATHSIG) and its exclusive VIPs (the
    // VIP guard removes them), the rest live on.
    std::erase_if(active_, [&](const NodeResource& k) {
      const bool goes = cluster_.supervised.contains(k.second) || cluster_.vips.contains(k.second);
      return k.first == n.name && (machine || (goes && exclusive(k.second)));
    });
  }

  void boot(Node& n) {
    if (n.up) return;
    n.up = true;
    ++n.boot;
    n.synced = false;
    n.sync_rev = -1;
    n.started = false;
    n.ready_once = false;
    n.readiness_at = -1000000;
    n.pending.clear();
    n.holds.clear();
    n.sent.clear();
    n.last_heard.clear();
    n.answer_sent.clear();
    n.planned_rev = -1;
    n.followed.clear();
    n.followed_term = -1;
    n.last_leader_contact = now_ - kHoldMs;  // nothing heard yet
    n.heard_leader = now_;  // a restarted node votes only after an election timeout
    n.election_deadline = now_ + rng_.range(kElectionMinMs, kElectionMaxMs);
    // The replica survives in its WAL: it keeps what it had applied.
  }

  // ---- Raft, modelled --------------------------------------------------------------------------

  // What `from` sends reaches `to`.
  bool delivers(const Node& from, const Node& to) const {
    return from.up && to.up && from.group == to.group && !from.mute;
  }
  // Both ways: what a round trip (a vote, a ReadIndex, a proposal and its result) needs.
  bool connected(const Node& a, const Node& b) const { return delivers(a, b) && delivers(b, a); }

  int majority() const { return static_cast<int>(nodes_.size()) / 2 + 1; }

  Node* leader() {
    for (auto& n : nodes_) {
      if (n.up && n.believes_leader && n.name == leader_) return &n;
    }
    return nullptr;
  }

  void elect(Node& n) {
    // What the old leader had in flight was replicated or not: a prefix of it commits in the
    // new term, the rest is lost (a Raft log has no holes).
    size_t in_term = 0;
    for (const auto& p : in_flight_) in_term += p.term == term_ ? 1 : 0;
    size_t keep = static_cast<size_t>(rng_.range(0, static_cast<int64_t>(in_term)));
    for (auto& p : in_flight_) {
      if (p.term != term_ || keep == 0) continue;
      --keep;
      p.term = term_ + 1;
      p.commit_at = now_ + kStepMs;
    }
    last_commit_at_ = std::max(last_commit_at_, now_ + kStepMs);
    n.previous_leader = n.followed_term == term_ && n.followed != n.name ? n.followed : "";
    ++term_;
    catch_up(n);  // a Raft leader has every committed entry
    leader_ = n.name;
    n.believes_leader = true;
    n.leader_since = now_;
    n.last_majority = now_;
    n.last_heard.clear();
    n.answer_sent.clear();
    n.holds.clear();
    n.pending.clear();
    ++out_.leader_changes;
    for (auto& m : nodes_) {
      if (delivers(n, m) || &m == &n) {
        if (&m != &n && m.believes_leader) {  // it hears the new term
          m.believes_leader = false;
          ++m.hold_gen;
        }
        // A vote it sent just now reached the leader, whose first heartbeat confirms it.
        if (connected(n, m) || o_.bug == Bug::kHoldOnReceipt) m.last_leader_contact = now_;
        m.heard_leader = now_;
        m.followed = n.name;
        m.followed_term = term_;
        m.election_deadline = now_ + rng_.range(kElectionMinMs, kElectionMaxMs);
      }
    }
    log("%s leads (term %lld)", n.name.c_str(), static_cast<long long>(term_));
  }

  // When a node campaigns: at its randomized deadline, or, while it holds and runs something
  // exclusive, as soon as its promise to the leader it heard allows (the daemon's
  // campaign_if_holding: elected within its hold, it keeps holding).
  int64_t election_due(const Node& n) const {
    if (!hold_valid(n)) return n.election_deadline;
    bool runs = false;
    for (const auto& [id, l] : n.local) runs = runs || (l.running && exclusive(id));
    return runs ? std::min(n.election_deadline, n.heard_leader + kElectionMinMs)
                : n.election_deadline;
  }

  // The votes a candidate gets: its own and those of the nodes it reaches that have not
  // heard a leader for an election timeout.
  int votes(const Node& n) const {
    int v = 0;
    for (const auto& m : nodes_) {
      v += &m == &n || (connected(n, m) && now_ - m.heard_leader >= kElectionMinMs) ? 1 : 0;
    }
    return v;
  }

  int reach(const Node& n) const {
    int r = 0;
    for (const auto& m : nodes_) r += connected(n, m) ? 1 : 0;
    return r;
  }

  void raft_step() {
    // Every node that believes it leads keeps its lease while a majority answers, and steps
    // down (check-quorum) after an election timeout without one.
    for (auto& n : nodes_) {
      if (!n.believes_leader) continue;
      if (reach(n) >= majority() && now_ % o_.heartbeat_ms == 0) n.last_majority = now_;
      if (now_ - n.last_majority >= kElectionMinMs) {
        n.believes_leader = false;
        ++n.hold_gen;
        log("%s steps down (no quorum)", n.name.c_str());
      }
    }
    Node* l = leader();
    if (l != nullptr && now_ % o_.heartbeat_ms == 0) {
      const bool grants = lease_valid(*l);  // only under a valid lease
      for (auto& m : nodes_) {
        if (&m == l || !delivers(*l, m)) continue;
        if (o_.bug == Bug::kHoldOnReceipt) {
          m.last_leader_contact = now_ - 2;  // received 2 ms after it was sent
        } else if (auto it = l->answer_sent.find(m.name); grants && it != l->answer_sent.end()) {
          m.last_leader_contact = std::max(m.last_leader_contact, it->second);
        }
        m.followed = l->name;
        m.followed_term = term_;
        m.heard_leader = now_;
        m.election_deadline = now_ + rng_.range(kElectionMinMs, kElectionMaxMs);
        if (!delivers(m, *l)) continue;
        l->last_heard[m.name] = now_;       // its answer, back at the leader
        l->answer_sent[m.name] = now_ - 1;  // sent 1 ms before; the next heartbeat confirms it
      }
    }
    // Elections: a node of a majority group that has not heard a leader in time campaigns.
    if (l == nullptr || reach(*l) < majority()) {
      for (auto& n : nodes_) {
        if (!n.up || n.believes_leader || now_ < election_due(n)) continue;
        if (votes(n) >= majority()) {
          elect(n);
          break;
        }
        n.election_deadline = now_ + rng_.range(kElectionMinMs, kElectionMaxMs);
      }
    }
    // Commits.
    l = leader();
    std::vector<Proposal> due;
    std::erase_if(in_flight_, [&](const Proposal& p) {
      if (p.term < term_) return true;  // lost with its leader
      if (p.commit_at > now_) return false;
      due.push_back(p);
      return true;
    });
    std::stable_sort(due.begin(), due.end(),
                     [](const auto& a, const auto& b) { return a.commit_at < b.commit_at; });
    for (const auto& p : due) {
      if (l == nullptr || reach(*l) < majority()) continue;  // cannot commit: lost
      log_.push_back({now_, p.op});
      catch_up(*l);
    }
    // Followers apply what they can see, a little later.
    for (auto& n : nodes_) {
      if (l == nullptr || &n == l || !delivers(*l, n)) continue;
      int64_t lag = rng_.range(0, 10);
      while (n.view.rev < static_cast<int64_t>(log_.size()) &&
             log_[static_cast<size_t>(n.view.rev)].first <= now_ - lag) {
        n.view.apply(log_[static_cast<size_t>(n.view.rev)].second, n.view.rev + 1);
      }
    }
  }

  void catch_up(Node& n) {
    while (n.view.rev < static_cast<int64_t>(log_.size())) {
      n.view.apply(log_[static_cast<size_t>(n.view.rev)].second, n.view.rev + 1);
    }
  }

  // A node proposes through the leader it can reach; nothing happens otherwise.
  void propose(Node& from, const Op& op) {
    Node* l = leader();
    if (!from.up || l == nullptr || !connected(from, *l)) return;
    // Raft commits in log order: never before what was proposed earlier.
    last_commit_at_ = std::max(last_commit_at_, now_ + rng_.range(5, lag_max_));
    in_flight_.push_back(Proposal{last_commit_at_, term_, op});
  }

  // The leader's lease (has_quorum(): it plans and grants holds only under it).
  bool lease_valid(const Node& n) const {
    return n.believes_leader && now_ - n.last_majority < kElectionMinMs * 100 / 101;
  }
  // A node's hold: a leader's is its lease, and the hold it had as a follower until that
  // ends (the daemon's hold_deadline(): its lease is established only once its first
  // heartbeats are acknowledged, later than here).
  bool hold_valid(const Node& n) const {
    if (lease_valid(n)) return true;
    const int64_t guard = o_.bug == Bug::kNoHoldGuard ? 0 : kHoldGuardMs;
    return n.up && now_ - n.last_leader_contact < kHoldMs - guard;
  }

  // ---- the executor ---------------------------------------------------------------------------

  void begin(Node& n, const std::string& id, Local& l, Act a, const char* why) {
    l.busy = a;
    ++out_.actions;
    int64_t d = rng_.range(10, 40);
    l.will_fail = false;
    if (a == Act::kStart) {
      active_.insert({n.name, id});  // possibly active from the moment it starts
      auto f = next_fault_.find({n.name, id});
      if (f != next_fault_.end()) {
        if (f->second == Fault::kSlow) d = rng_.range(1000, 3000);
        if (f->second == Fault::kHang) {
          d = kStartTimeoutMs;
          l.will_fail = true;
        }
        if (f->second == Fault::kFail) l.will_fail = true;
        next_fault_.erase(f);
      }
    } else if (a == Act::kProbe || a == Act::kMonitor) {
      d = 10;
    }
    l.done_at = now_ + d;
    log("%s: %s %s (%s)", n.name.c_str(), act_name(a), id.c_str(), why);
  }

  void fail(Node& n, const std::string& id, Local& l, bool start_failed) {
    l.failed = true;
    l.fail_count =
        start_failed ? cluster::kInfinity : std::min(l.fail_count + 1, cluster::kInfinity);
    l.last_failure_ms = now_;
    l.blocked = l.token;
    l.running = true;  // until the cleanup stop says otherwise
    begin(n, id, l, Act::kStop, start_failed ? "start failed" : "monitor failed");
  }

  void complete(Node& n, const std::string& id, Local& l) {
    const Act a = l.busy;
    l.busy = Act::kNone;
    const bool alive = active_.contains({n.name, id});
    switch (a) {
      case Act::kProbe:
        l.probed = true;
        l.running = alive;
        l.role = Role::kStarted;
        break;
      case Act::kStart:
        if (l.will_fail) {
          fail(n, id, l, true);
        } else {
          l.running = true;
          l.failed = false;
          l.role = Role::kStarted;
        }
        break;
      case Act::kStop:
        active_.erase({n.name, id});
        l.running = false;
        l.role = Role::kStarted;
        break;
      case Act::kMonitor:
        if (!alive || l.monitor_fails) {
          l.monitor_fails = false;
          fail(n, id, l, false);
        }
        break;
      case Act::kNone:
        break;
    }
    if (l.running && l.busy == Act::kNone) l.next_monitor = now_ + kMonitorMs;
  }

  void executor_step(Node& n) {
    for (auto& [id, l] : n.local) {
      if (l.busy != Act::kNone && l.done_at <= now_) complete(n, id, l);
    }
    bool hold = hold_valid(n);
    if (n.seen_hold_gen != n.hold_gen && o_.bug != Bug::kNoStepDownGap) {
      n.seen_hold_gen = n.hold_gen;
      hold = false;  // it led until now: its lease's hold ends before any follower hold
    }
    if (!hold) {
      n.synced = false;
      n.sync_rev = -1;
    } else if (!n.synced) {
      if (n.sync_rev < 0) {
        Node* l = leader();
        if (l != nullptr && connected(*l, n)) n.sync_rev = l->view.rev;  // ReadIndex
      } else if (n.view.rev >= n.sync_rev) {
        n.synced = true;
        n.synced_at = n.sync_rev;
      }
    }
    if (!n.started && n.synced) {
      n.started = true;
      for (const auto& [key, r] : n.view.reported) {
        if (key.first != n.name) continue;
        Local& l = n.local[key.second];
        l.fail_count = r.state.fail_count;
        l.last_failure_ms = r.state.last_failure_ms;
        l.token = r.token;
      }
    }
    // What its replica assigns it is probed at once, before any hold or sync (the daemon's
    // adopt()): after an agent restart, what still runs of it is then stopped below while
    // the node has no hold.
    for (const auto& [key, a] : n.view.assigned) {
      if (key.first == n.name) (void)n.local[key.second];
    }
    for (auto& [id, l] : n.local) {
      if (l.busy != Act::kNone) continue;
      if (!l.probed) {
        begin(n, id, l, Act::kProbe, "adopt");
        continue;
      }
      // A supervised process that died is seen at once (pidfd); others at their monitor.
      if (l.running && !active_.contains({n.name, id}) && cluster_.supervised.contains(id)) {
        fail(n, id, l, false);
        continue;
      }
      if (l.running && now_ >= l.next_monitor && !cluster_.supervised.contains(id)) {
        begin(n, id, l, Act::kMonitor, "recurring");
        continue;
      }
    }
    if (!hold && o_.bug != Bug::kNoHoldStop) {
      // A start of an exclusive resource under way when the hold ends is cancelled (its agent
      // killed): what it may have started is stopped at once below.
      for (auto& [id, l] : n.local) {
        if (l.busy == Act::kStart && exclusive(id)) {
          l.busy = Act::kNone;
          l.running = true;
          log("%s: start of %s cancelled (hold lost)", n.name.c_str(), id.c_str());
        }
      }
    }
    const bool act = hold && n.synced;
    for (auto& [id, l] : n.local) {
      if (!l.probed || l.busy != Act::kNone) continue;
      std::optional<Assignment> assigned;
      auto it = n.view.assigned.find({n.name, id});
      if (it != n.view.assigned.end()) assigned = it->second;
      sched::ExecDecision d = sched::executor_step(
          sched::LocalView{l.running, l.role, exclusive(id), l.token, l.blocked,
                           o_.bug == Bug::kNoResyncBlock ? 0 : n.synced_at},
          assigned, o_.bug == Bug::kNoHoldStop ? true : hold, act);
      l.token = d.token;
      l.blocked = d.blocked_token;
      switch (d.step) {
        case sched::ExecStep::kNone:
        case sched::ExecStep::kPromote:
        case sched::ExecStep::kDemote:
          break;
        case sched::ExecStep::kStart:
          begin(n, id, l, Act::kStart, d.why);
          break;
        case sched::ExecStep::kStop:
          begin(n, id, l, Act::kStop, d.why);
          break;
      }
    }
    publish(n);
    publish_readiness(n);
  }

  Reported report_of(const Local& l) const {
    Reported r;
    r.state.running = l.running;
    r.state.role = l.role;
    r.state.failed = l.failed;
    r.state.fail_count = l.fail_count;
    r.state.last_failure_ms = l.last_failure_ms;
    r.token = l.token;
    return r;
  }

  // daemon/cluster_service.cc publish(): not while an action runs.
  void publish(Node& n) {
    for (auto& [id, l] : n.local) {
      if (!l.probed || l.busy != Act::kNone) continue;
      Reported want = report_of(l);
      auto it = n.view.reported.find({n.name, id});
      if (it != n.view.reported.end() && same_report(it->second, want)) continue;
      if (now_ - l.published_at < kRepublishMs && !changed_since_publish(n, id, want)) continue;
      if (o_.bug == Bug::kNoRepublish && !changed_since_publish(n, id, want)) continue;
      l.published_at = now_;
      last_published_[{n.name, id}] = want;
      Op op;
      op.kind = OpKind::kStatus;
      op.node = n.name;
      op.resource = id;
      op.report = want;
      propose(n, op);
    }
  }

  bool changed_since_publish(const Node& n, const std::string& id, const Reported& want) {
    auto it = last_published_.find({n.name, id});
    return it == last_published_.end() || !same_report(it->second, want);
  }

  // daemon/cluster_service.cc publish_readiness(): ready once everything is probed and its
  // reports are in the store; again after the leader marked it not online.
  void publish_readiness(Node& n) {
    if (!n.synced) return;
    bool current = true;
    for (const auto& [id, l] : n.local) {
      auto it = n.view.reported.find({n.name, id});
      if (!l.probed || it == n.view.reported.end() || !same_report(it->second, report_of(l))) {
        current = false;
      }
    }
    if (!n.ready_once) n.ready_once = current;
    const bool ready = n.ready_once && current;
    int64_t marked = 0;
    auto st = n.view.nodes.find(n.name);
    if (st != n.view.nodes.end() && st->second.state != "online") marked = st->second.rev;
    auto cur = n.view.exec.find(n.name);
    const bool stale = cur != n.view.exec.end() && marked > cur->second.rev;
    if (cur != n.view.exec.end() && cur->second.boot == n.boot &&
        cur->second.ready == n.ready_once && !(ready && stale)) {
      return;
    }
    if (now_ - n.readiness_at < kRepublishMs) return;
    n.readiness_at = now_;
    Op op;
    op.kind = OpKind::kExec;
    op.node = n.name;
    op.boot = n.boot;
    op.ready = n.ready_once;
    propose(n, op);
  }

  bool exclusive(const std::string& id) const {
    for (const auto& r : cluster_.def.resources) {
      if (r.id == id) return r.meta.exclusive;
    }
    return false;
  }

  // ---- the coordinator (daemon/cluster_service.cc coordinate()) -------------------------------

  bool executor_ready(const View& v, const std::string& node) const {
    auto e = v.exec.find(node);
    if (e == v.exec.end() || !e->second.ready) return false;
    auto n = v.nodes.find(node);
    if (n == v.nodes.end() || n->second.state == "online") return true;
    return e->second.rev > n->second.rev;
  }

  void coordinate(Node& l) {
    if (!lease_valid(l)) return;  // has_quorum(): the leader's lease
    const View& v = l.view;
    if (v.rev == l.planned_rev && now_ - l.planned_ms < kReplanMs) return;
    std::vector<std::string> others;
    for (const auto& m : nodes_) {
      if (m.name != l.name) others.push_back(m.name);
    }
    auto heard = [&](const std::string& name) {
      auto h = l.last_heard.find(name);
      return h == l.last_heard.end() ? std::optional<int64_t>() : h->second;
    };
    if (sched::new_leader_waits(others, now_, l.leader_since, kHoldMs, kHoldGuardMs,
                                l.previous_leader, heard,
                                [&](const std::string& name) { return executor_ready(v, name); })) {
      return;
    }
    l.planned_rev = v.rev;
    l.planned_ms = now_;
    l.pending.settle(v.assigned, now_, kPendingEditMs);
    std::map<NodeResource, Assignment> assigned =
        o_.bug == Bug::kNoOverlay ? v.assigned : l.pending.overlay(v.assigned);
    // Node states, with what this leader proposed and is not committed yet.
    std::map<std::string, NodeState> states;
    for (const auto& m : nodes_) {
      sched::MemberView mv;
      mv.self = m.name == l.name;
      auto h = l.last_heard.find(m.name);
      if (h != l.last_heard.end()) mv.last_heard_ms = h->second;
      mv.executor_ready = !mv.self && executor_ready(v, m.name);
      auto st = v.nodes.find(m.name);
      mv.stored_fenced = st != v.nodes.end() && st->second.state == "fenced";
      mv.reports_running = sched::may_run_on(m.name, assigned, v.reported);
      states[m.name] = sched::member_state(mv, now_, kHoldMs);
      std::string name(cluster::node_state_name(states[m.name]));
      if (st == v.nodes.end() || st->second.state != name) {
        auto& last = l.sent["node/" + m.name];
        if (last.first != name || now_ - last.second >= kEditRepeatMs) {
          last = {name, now_};
          Op op;
          op.kind = OpKind::kNodeState;
          op.node = m.name;
          op.state = name;
          propose(l, op);
        }
      }
    }
    ClusterSnapshot s = cluster_.def;
    s.now_ms = now_;
    s.has_quorum = true;
    for (auto& n : s.nodes) n.state = states[n.name];
    sched::merge_status(s, assigned, v.reported);
    l.holds.apply(s, now_, l.leader_since, heard, l.previous_leader,
                  o_.bug == Bug::kExpireWithStartInFlight ? nullptr : &l.pending);
    if (o_.bug == Bug::kHoldsIgnored) {
      for (auto& n : s.nodes) {
        if (n.hold_expires_ms) n.hold_expires_ms = now_ - 1;
      }
    }
    auto p = sched::plan(s);
    if (!p) {
      violation("plan failed: " + p.error().message());
      return;
    }
    last_plan_ = *p;
    last_plan_at_ = now_;
    if (o_.trace && !p->actions.empty()) {
      std::string st;
      for (const auto& n : s.nodes) {
        st += " " + n.name + "=" + std::string(cluster::node_state_name(n.state));
        if (n.hold_expires_ms) st += "(hold until " + std::to_string(*n.hold_expires_ms) + ")";
      }
      std::string running;
      for (const auto& [r, on] : s.status) {
        for (const auto& [nn, rs] : on) {
          if (rs.running) running += " " + r + "@" + nn;
        }
      }
      log("%s: plans with%s; running:%s", l.name.c_str(), st.c_str(), running.c_str());
    }
    for (auto e : sched::next_edits(s, *p, assigned, v.reported)) {
      if (o_.bug == Bug::kStopByDelete && !e.remove && e.role == Role::kStopped) e.remove = true;
      const NodeResource key{e.node, e.resource};
      auto a = assigned.find(key);
      std::string fp = std::string(e.remove ? "-" : "+") + std::string(cluster::role_name(e.role)) +
                       "@" + std::to_string(a == assigned.end() ? 0 : a->second.token);
      auto& last = l.sent["assign/" + e.node + "/" + e.resource];
      if (last.first == fp && now_ - last.second < kEditRepeatMs) continue;
      last = {fp, now_};
      Op op;
      op.kind = e.remove ? OpKind::kUnassign : OpKind::kAssign;
      op.node = e.node;
      op.resource = e.resource;
      op.role = e.role;
      propose(l, op);
      l.pending.proposed(e, v.rev, now_);
      log("%s: coordinator: %s", l.name.c_str(), e.why.c_str());
    }
  }

  // ---- one step ---------------------------------------------------------------------------------

  void step() {
    now_ += kStepMs;
    raft_step();
    for (auto& n : nodes_) {
      if (n.up) executor_step(n);
    }
    if (Node* l = leader()) coordinate(*l);
    check();
  }

  // An exclusive resource possibly active (starting, running or stopping) on two nodes.
  void check() {
    for (const auto& r : cluster_.def.resources) {
      if (!r.meta.exclusive) continue;
      std::string where;
      int count = 0;
      for (const auto& key : active_) {
        if (key.second != r.id) continue;
        where += " " + key.first;
        ++count;
      }
      if (count > 1 && !reported_double_.contains(r.id)) {
        reported_double_.insert(r.id);
        violation("exclusive " + r.id + " active on" + where);
      }
      if (count <= 1) reported_double_.erase(r.id);
    }
  }

  bool converged() const { return why_not_converged().empty(); }

  std::string why_not_converged() const {
    const Node* l = nullptr;
    for (const auto& n : nodes_) {
      if (n.up && n.believes_leader && n.name == leader_) l = &n;
    }
    if (l == nullptr) return "no leader";
    if (now_ - last_plan_at_ > 2 * kReplanMs) return "the leader does not plan";
    if (!last_plan_.actions.empty())
      return "the plan is not empty: " + last_plan_.actions[0].label();
    if (!in_flight_.empty()) return "proposals in flight";
    std::set<NodeResource> placed;
    for (const auto& r : cluster_.def.resources) {
      auto it = last_plan_.placement.find(r.id);
      if (it == last_plan_.placement.end() || it->second.empty()) return r.id + " is not placed";
      for (const auto& p : it->second) placed.insert({p.node, r.id});
    }
    for (const auto& key : placed) {
      if (!active_.contains(key)) return key.second + " does not run on " + key.first;
      auto a = l->view.assigned.find(key);
      auto r = l->view.reported.find(key);
      if (a == l->view.assigned.end()) return key.second + " is not assigned to " + key.first;
      if (r == l->view.reported.end() || !r->second.state.running ||
          r->second.token < a->second.token) {
        return key.second + " on " + key.first + " is not reported running";
      }
    }
    for (const auto& key : active_) {
      if (!placed.contains(key)) return key.second + " runs on " + key.first + " (not placed)";
    }
    for (const auto& [key, a] : l->view.assigned) {
      if (!placed.contains(key) && a.role != Role::kStopped) {
        return key.second + " still assigned to " + key.first;
      }
    }
    return "";
  }

  // ---- helpers ---------------------------------------------------------------------------------

  Node& node(const std::string& name) {
    for (auto& n : nodes_) {
      if (n.name == name) return n;
    }
    return nodes_.front();
  }

  template <typename... A>
  void log(const char* fmt, A... args) {
    if (!o_.trace) return;
    std::printf("  t=%6lld ", static_cast<long long>(now_));
    std::printf(fmt, args...);
    std::printf("\n");
  }

  template <typename... A>
  void note(const char* kind, const char* fmt, A... args) {
    ++out_.faults;
    out_.fault_kinds.insert(kind);
    log(fmt, args...);
  }

  void violation(const std::string& what) {
    out_.violations.push_back("t=" + std::to_string(now_) + " ms: " + what);
    if (o_.trace)
      std::printf("  VIOLATION t=%lld %s\n", static_cast<long long>(now_), what.c_str());
  }

  Options o_;
  Rng rng_;
  Cluster cluster_;
  std::vector<Node> nodes_;
  int64_t now_ = 0;
  int64_t term_ = 0;
  std::string leader_;
  std::vector<Proposal> in_flight_;
  std::vector<std::pair<int64_t, Op>> log_;  // committed: (commit time, op); revision = index+1
  int64_t lag_max_ = 20;
  int64_t last_commit_at_ = 0;
  std::set<NodeResource> active_;  // the truth: where each resource's process may be alive
  std::map<NodeResource, Fault> next_fault_;
  std::multimap<int64_t, std::pair<std::string, std::string>> returns_;  // when → (what, node)
  std::map<NodeResource, Reported> last_published_;
  std::set<std::string> reported_double_;
  sched::Plan last_plan_;
  int64_t last_plan_at_ = -1000000;
  Outcome out_;
};

}  // namespace

Outcome run(const Options& o) {
  Sim s(o);
  return s.run();
}

}  // namespace vigil::simcluster
