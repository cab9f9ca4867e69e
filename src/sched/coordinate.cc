// Assignments and reports → snapshot status; a plan's runnable actions → assignment edits.
#include "sched/coordinate.h"

#include <algorithm>
#include <set>

namespace vigil::sched {
namespace {

using cluster::NodeState;
using cluster::Role;

bool reachable(NodeState s) {
  return s == NodeState::kOnline || s == NodeState::kStandby || s == NodeState::kMaintenance;
}

// The role the placement gives `resource` on `node`, or kStarted.
Role placed_role(const Plan& p, const std::string& resource, const std::string& node) {
  auto it = p.placement.find(resource);
  if (it == p.placement.end()) return Role::kStarted;
  for (const auto& pl : it->second) {
    if (pl.node == node) return pl.role;
  }
  return Role::kStarted;
}

// The copies the placement puts on `node` (0: none).
int64_t placed_copies(const Plan& p, const std::string& resource, const std::string& node) {
  auto it = p.placement.find(resource);
  if (it == p.placement.end()) return 0;
  for (const auto& pl : it->second) {
    if (pl.node == node) return pl.copies;
  }
  return 0;
}

bool placed_on(const Plan& p, const std::string& resource, const std::string& node) {
  return placed_copies(p, resource, node) > 0;
}

// The primitives an id stands for: itself, a group's members, a clone's primitive.
std::vector<std::string> primitives_of(const cluster::ClusterSnapshot& s, const std::string& id) {
  for (const auto& g : s.groups) {
    if (g.id == id) return g.members;
  }
  for (const auto& c : s.clones) {
    if (c.id == id) return {c.resource};
  }
  return {id};
}

}  // namespace

std::string clone_instance_id(const std::string& resource, int64_t i) {
  return i == 0 ? resource : resource + ":" + std::to_string(i);
}

std::optional<std::pair<std::string, int64_t>> split_clone_instance(
    const std::string& id, const std::set<std::string>& primitives) {
  const size_t colon = id.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string base = id.substr(0, colon);
  auto i = cluster::clone_copy_number(id, base);  // not "web:0", "web:01"
  if (!i || !primitives.contains(base) || primitives.contains(id)) return std::nullopt;
  return std::make_pair(std::move(base), *i);
}

void fold_clone_instances(std::map<NodeResource, Reported>& reported,
                          const std::map<NodeResource, Assignment>& assigned,
                          const std::set<std::string>& primitives) {
  // (node, resource) → the reports of copies 1.. by copy number.
  std::map<NodeResource, std::map<int64_t, Reported>> extra;
  for (auto it = reported.begin(); it != reported.end();) {
    auto inst = split_clone_instance(it->first.second, primitives);
    if (!inst) {
      ++it;
      continue;
    }
    extra[{it->first.first, inst->first}][inst->second] = it->second;
    it = reported.erase(it);
  }
  for (auto& [key, copies] : extra) {
    auto a = assigned.find(key);
    const int64_t asked = a == assigned.end() || a->second.role == Role::kStopped
                              ? 1
                              : std::max<int64_t>(a->second.copies, 1);
    auto base = reported.find(key);
    Reported out = base != reported.end() ? base->second : Reported{};
    int64_t running = out.state.running ? 1 : 0;
    // Copy 0 missing from the reports: it has answered nothing. The copies asked for must
    // answer; so must any other that still runs (a copy being stopped: the assignment asks
    // for fewer, or it is a stop order): the node has not finished until it is stopped.
    int64_t token = base != reported.end() ? out.token : 0;
    for (int64_t i = 1; i < asked; ++i) {
      if (!copies.contains(i)) token = 0;  // not reported yet: not answered
    }
    // A failed copy that was stopped (the executor's clean-up) only lowers the count: the
    // plan starts one again beside the others. One that may still run (a failed stop) marks
    // the whole failed, as does a failure when no copy runs.
    bool failed_running = out.state.failed && out.state.running;
    bool failed = out.state.failed;
    for (const auto& [i, r] : copies) {
      if (r.state.running) ++running;
      failed_running |= r.state.failed && r.state.running;
      failed |= r.state.failed;
      out.state.fail_count = std::max(out.state.fail_count, r.state.fail_count);
      out.state.last_failure_ms = std::max(out.state.last_failure_ms, r.state.last_failure_ms);
      if (i < asked || r.state.running) token = std::min(token, r.token);
    }
    out.state.running = running > 0;
    out.state.failed = failed_running || (running == 0 && failed);
    out.state.copies = std::max<int64_t>(running, 1);
    out.token = token;
    reported[key] = out;
  }
}

void merge_status(cluster::ClusterSnapshot& s, const std::map<NodeResource, Assignment>& assigned,
                  const std::map<NodeResource, Reported>& reported) {
  std::set<std::string> known;
  for (const auto& r : s.resources) known.insert(r.id);
  for (const auto& [key, rep] : reported) {
    if (!known.contains(key.second)) continue;
    s.status[key.second][key.first] = rep.state;
  }
  for (const auto& [key, a] : assigned) {
    if (!known.contains(key.second)) continue;
    auto rep = reported.find(key);
    if (rep != reported.end() && rep->second.token >= a.token) continue;  // answered
    cluster::ResourceState& st = s.status[key.second][key.first];
    // A demote under way: until the node answers, the copy may still be promoted.
    const bool was_running = rep != reported.end() && rep->second.state.running;
    const bool promoted = was_running && rep->second.state.role == Role::kPromoted;
    st.running = true;
    if (a.role == Role::kStopped) {
      st.role = was_running ? rep->second.state.role : Role::kStarted;
    } else {
      st.role = promoted ? Role::kPromoted : a.role;
      // Possibly running: as many copies as asked for, or as still ran (fewer asked for).
      st.copies = std::max(a.copies, was_running ? rep->second.state.copies : int64_t{1});
    }
    st.failed = false;
  }
}

std::vector<AssignmentEdit> next_edits(const cluster::ClusterSnapshot& s, const Plan& p,
                                       const std::map<NodeResource, Assignment>& assigned,
                                       const std::map<NodeResource, Reported>& reported) {
  std::vector<AssignmentEdit> out;
  std::set<NodeResource> touched;
  // The node answered the current token: a rewrite is needed to make it act again.
  auto answered = [&](const NodeResource& key, const Assignment& a) {
    auto rep = reported.find(key);
    return rep != reported.end() && rep->second.token >= a.token;
  };
  auto running_as = [&](const NodeResource& key, Role role, int64_t copies = 1) {
    auto rep = reported.find(key);
    if (rep == reported.end() || !rep->second.state.running) return false;
    if (rep->second.state.copies < copies) return false;
    return role != Role::kPromoted || rep->second.state.role == Role::kPromoted;
  };
  // merge_status counts an unanswered start or promote as done, so the plan no longer lists
  // it and what is ordered after it (the next group member, the `then` of an order) is
  // frontier too soon: it waits here until the node answers.
  std::set<std::string> starting, promoting;
  for (const auto& [key, a] : assigned) {
    if (answered(key, a) || a.role == Role::kStopped) continue;
    if (!running_as(key, Role::kStarted, a.copies)) starting.insert(key.second);
    if (a.role == Role::kPromoted && !running_as(key, Role::kPromoted)) {
      promoting.insert(key.second);
    }
  }
  auto waits = [&](const Action& a) {
    if (a.kind == ActionKind::kStart) {
      for (const auto& g : s.groups) {
        for (size_t i = 1; i < g.members.size(); ++i) {
          if (g.members[i] == a.resource && starting.contains(g.members[i - 1])) return true;
        }
      }
    }
    for (const auto& c : s.orders) {
      ActionKind then = c.then_action == cluster::OrderAction::kPromote ? ActionKind::kPromote
                                                                        : ActionKind::kStart;
      if (then != a.kind) continue;
      auto thens = primitives_of(s, c.then);
      if (std::find(thens.begin(), thens.end(), a.resource) == thens.end()) continue;
      const auto& pending = c.first_action == cluster::OrderAction::kPromote ? promoting : starting;
      for (const auto& f : primitives_of(s, c.first)) {
        if (pending.contains(f)) return true;
      }
    }
    return false;
  };
  auto put = [&](const NodeResource& key, Role role, std::string why, int64_t copies = 1) {
    if (!touched.insert(key).second) return;
    out.push_back(AssignmentEdit{false, key.first, key.second, role, std::move(why), copies});
  };
  std::map<std::string, NodeState> states;
  for (const auto& n : s.nodes) states[n.name] = n.state;
  auto reachable_node = [&](const std::string& node) {
    auto st = states.find(node);
    return st != states.end() && reachable(st->second);
  };
  // A node that is not reachable but whose hold has not expired may still be alive (an
  // executor that restarted, a node heard again): it gets a stop order like any node, and
  // what it was assigned stays until it answers or its hold expires. Deleting it would make
  // merge_status forget a start that may be under way there.
  std::set<std::string> held;
  for (const auto& n : s.nodes) {
    if (!reachable(n.state) && n.state != NodeState::kFenced && n.hold_expires_ms &&
        *n.hold_expires_ms > s.now_ms) {
      held.insert(n.name);
    }
  }
  // (node, resource) with an action in the plan, runnable now or not; and with a start.
  std::set<NodeResource> acted, starts;
  for (const Action& a : p.actions) {
    acted.insert({a.node, a.resource});
    if (a.kind == ActionKind::kStart) starts.insert({a.node, a.resource});
  }
  for (const Action& a : p.actions) {
    if (!a.after.empty() || a.kind == ActionKind::kFence || waits(a)) continue;
    NodeResource key{a.node, a.resource};
    auto it = assigned.find(key);
    switch (a.kind) {
      case ActionKind::kStart:
      case ActionKind::kPromote:
      case ActionKind::kDemote: {
        Role want = a.kind == ActionKind::kPromote  ? Role::kPromoted
                    : a.kind == ActionKind::kDemote ? Role::kUnpromoted
                                                    : placed_role(p, a.resource, a.node);
        if (a.kind == ActionKind::kStart && want == Role::kPromoted) want = Role::kUnpromoted;
        const int64_t copies = std::max<int64_t>(placed_copies(p, a.resource, a.node), 1);
        if (it == assigned.end() || it->second.role != want || it->second.copies != copies) {
          put(key, want, a.label() + " (" + a.reason + ")", copies);
        } else if (answered(key, it->second) && !running_as(key, want, copies)) {
          put(key, want, a.label() + " (" + a.reason + ", again)", copies);
        }
        break;
      }
      case ActionKind::kStop:
        if (it == assigned.end()) break;
        if (const int64_t keep = placed_copies(p, a.resource, a.node);
            keep > 0 && it->second.role != Role::kStopped && reachable_node(a.node) &&
            !starts.contains(key)) {
          // Some of a clone's copies stop; the node keeps the others. (A restart or a
          // recovery, a stop with a start after it, stops them all: the stop order below.)
          if (it->second.copies != keep) {
            put(key, placed_role(p, a.resource, a.node), a.label() + " (" + a.reason + ")", keep);
          }
          break;
        }
        if (!reachable_node(a.node) && !held.contains(a.node)) {
          if (touched.insert(key).second) {
            out.push_back(AssignmentEdit{true, a.node, a.resource, Role::kStopped,
                                         a.label() + " (" + a.reason + ")"});
          }
        } else if (it->second.role != Role::kStopped) {
          put(key, Role::kStopped, a.label() + " (" + a.reason + ")");
        } else if (answered(key, it->second) && running_as(key, Role::kStarted)) {
          put(key, Role::kStopped, a.label() + " (" + a.reason + ", again)");
        }
        break;
      case ActionKind::kFence:
        break;
    }
  }
  std::set<std::string> known;
  for (const auto& r : s.resources) known.insert(r.id);
  for (const auto& [key, a] : assigned) {
    if (touched.contains(key)) continue;
    std::string why;
    if (!known.contains(key.second)) {
      why = "no longer defined";
    } else if (placed_on(p, key.second, key.first)) {
      // Placed there: kept. A clone's copy count that differs from the placement's (the
      // clone changed while a copy had failed, so no action asked for it) is corrected once
      // the node answered.
      const int64_t want = placed_copies(p, key.second, key.first);
      if (a.role != Role::kStopped && a.copies != want && answered(key, a) &&
          reachable_node(key.first) && !acted.contains(key)) {
        put(key, placed_role(p, key.second, key.first),
            "set " + key.second + " on " + key.first + " to " + std::to_string(want) +
                " copies (placed)",
            want);
      }
      continue;
    } else if (auto st = states.find(key.first); st == states.end() || !reachable(st->second)) {
      if (held.contains(key.first)) {
        if (a.role != Role::kStopped) {
          put(key, Role::kStopped,
              "stop " + key.second + " on " + key.first + " (node " + key.first + " is " +
                  std::string(cluster::node_state_name(st->second)) +
                  " and its hold has not expired; the resource is placed elsewhere)");
        }
        continue;
      }
      why =
          "node " + key.first + " is " +
          std::string(st == states.end() ? "not a member" : cluster::node_state_name(st->second)) +
          " and the resource is placed elsewhere";
    } else if (answered(key, a) && !running_as(key, Role::kStarted)) {
      // Failed (or stopped when the hold was lost) there: no stop will come for it, and the
      // node starts it again once it forgets the failed token (a cleanup, a restart). Or a
      // stop order that was carried out.
      why = a.role == Role::kStopped ? "stopped there: the stop order is done"
                                     : "not running on " + key.first + " and placed elsewhere";
    } else {
      continue;
    }
    touched.insert(key);
    out.push_back(AssignmentEdit{true, key.first, key.second, Role::kStopped,
                                 "stop " + key.second + " on " + key.first + " (" + why + ")"});
  }
  // Deletes on nodes that are not reachable go first: a start elsewhere proposed in the same
  // round must not commit without them. Raft commits a prefix of what a deposed leader
  // proposed, and a node that comes back must not find its stale assignment beside the new
  // one (found by the whole-cluster simulation).
  std::stable_partition(out.begin(), out.end(), [&](const AssignmentEdit& e) {
    return e.remove && !reachable_node(e.node);
  });
  return out;
}

void PendingEdits::proposed(const AssignmentEdit& e, int64_t revision, int64_t now_ms) {
  pending_[{e.node, e.resource}] = Pending{e.remove, e.role, revision, now_ms, e.copies};
}

size_t PendingEdits::settle(const std::map<NodeResource, Assignment>& committed, int64_t now_ms,
                            int64_t timeout_ms) {
  std::erase_if(pending_, [&](const auto& kv) {
    const Pending& p = kv.second;
    auto it = committed.find(kv.first);
    if (it == committed.end()) return p.remove || now_ms - p.at_ms > timeout_ms;
    return it->second.token > p.revision || now_ms - p.at_ms > timeout_ms;
  });
  return pending_.size();
}

bool PendingEdits::writes_pending_on(const std::string& node) const {
  for (const auto& [key, p] : pending_) {
    if (key.first == node && !p.remove && p.role != cluster::Role::kStopped) return true;
  }
  return false;
}

std::map<NodeResource, Assignment> PendingEdits::overlay(
    const std::map<NodeResource, Assignment>& committed) const {
  std::map<NodeResource, Assignment> out = committed;
  for (const auto& [key, p] : pending_) {
    if (p.remove) {
      out.erase(key);
    } else {
      out[key] = Assignment{p.role, kPendingToken, p.copies};
    }
  }
  return out;
}

bool may_run_on(const std::string& node, const std::map<NodeResource, Assignment>& assigned,
                const std::map<NodeResource, Reported>& reported) {
  for (const auto& [key, r] : reported) {
    if (key.first == node && r.state.running) return true;
  }
  for (const auto& [key, a] : assigned) {
    if (key.first != node) continue;
    // Not answered yet: a start may be under way (even under a stop order, merge_status).
    auto r = reported.find(key);
    if (r == reported.end() || r->second.token < a.token) return true;
  }
  return false;
}

cluster::NodeState member_state(const MemberView& m, int64_t now_ms, int64_t hold_ms) {
  using cluster::NodeState;
  if (m.self) return NodeState::kOnline;
  if (m.last_heard_ms && now_ms - *m.last_heard_ms <= hold_ms && m.executor_ready) {
    return NodeState::kOnline;
  }
  if (m.stored_fenced) return NodeState::kFenced;
  return m.reports_running ? NodeState::kUnclean : NodeState::kOffline;
}

bool new_leader_waits(const std::vector<std::string>& others, int64_t now_ms,
                      int64_t leader_since_ms, int64_t hold_ms, int64_t guard_ms,
                      const std::string& previous_leader,
                      const std::function<std::optional<int64_t>(const std::string&)>& last_heard,
                      const std::function<bool(const std::string&)>& executor_ready) {
  if (now_ms - leader_since_ms >= hold_ms) return false;
  for (const auto& m : others) {
    if (m == previous_leader && now_ms - leader_since_ms >= guard_ms) continue;
    auto heard = last_heard(m);
    if (!heard || *heard < leader_since_ms || !executor_ready(m)) return true;
  }
  return false;
}

int64_t HoldClock::expiry(std::optional<int64_t> last_heard_ms, int64_t leader_since_ms,
                          bool previous_leader) const {
  int64_t base = last_heard_ms ? std::max(*last_heard_ms, leader_since_ms) : leader_since_ms;
  int64_t e = base + static_cast<int64_t>(static_cast<double>(hold_ms_) * (1 + drift_));
  // Only for the hold it had when this leader was elected: once heard from since, it may
  // hold one this leader granted.
  if (previous_leader && (!last_heard_ms || *last_heard_ms < leader_since_ms)) {
    e = std::min(
        e, leader_since_ms + static_cast<int64_t>(static_cast<double>(guard_ms_) * (1 + drift_)));
  }
  return e;
}

void HoldClock::apply(cluster::ClusterSnapshot& s, int64_t now_ms, int64_t leader_since_ms,
                      const std::function<std::optional<int64_t>(const std::string&)>& last_heard,
                      const std::string& previous_leader, const PendingEdits* pending) {
  using cluster::NodeState;
  for (auto& n : s.nodes) {
    if (n.state == NodeState::kUnclean || n.state == NodeState::kOffline) {
      if (pending != nullptr && pending->writes_pending_on(n.name)) {
        n.hold_expires_ms = std::max(expiry(last_heard(n.name), leader_since_ms), now_ms + 1);
        continue;
      }
      auto it = expired_.find(n.name);
      if (it != expired_.end()) {
        n.hold_expires_ms = it->second;
      } else {
        n.hold_expires_ms = expiry(last_heard(n.name), leader_since_ms,
                                   !previous_leader.empty() && n.name == previous_leader);
        if (*n.hold_expires_ms <= now_ms) expired_[n.name] = *n.hold_expires_ms;
      }
    } else if (n.state != NodeState::kFenced) {
      expired_.erase(n.name);
    }
  }
}

ExecDecision executor_step(const LocalView& l, const std::optional<Assignment>& assigned, bool hold,
                           bool act) {
  ExecDecision d{ExecStep::kNone, l.token, l.blocked_token, ""};
  if (!hold && l.exclusive && l.running) {
    d.blocked_token = assigned ? assigned->token : l.token;
    d.step = ExecStep::kStop;
    d.why = "hold lost";
    return d;
  }
  if (!act) return d;
  if (!assigned || assigned->role == cluster::Role::kStopped) {
    // Unassigned, or a stop order: stopped here, and the order's token answered (once the
    // stop is done) so that the coordinator knows nothing runs here any more.
    if (assigned) d.token = assigned->token;
    if (l.running) {
      d.step = ExecStep::kStop;
      d.why = assigned ? "stop order" : "not assigned";
    }
    return d;
  }
  const Assignment& a = *assigned;
  if (a.token == l.blocked_token) {
    // Stopped or failed under this token: answered, so that the coordinator writes a new
    // one. (An agent that restarted mid-start stops what its probe found while it has no
    // hold, under a token its reports never answered: found by tests/sim_cluster.)
    d.token = std::max(l.token, a.token);
    return d;
  }
  if (!l.running && l.exclusive && a.token <= l.synced_at) {
    d.token = a.token;  // answered, not running: a new assignment is needed
    d.blocked_token = a.token;
    d.why = "assigned before the hold was regained";
    return d;
  }
  if (!l.running) {
    d = {ExecStep::kStart, a.token, l.blocked_token, "assigned"};
  } else if (a.role == cluster::Role::kPromoted && l.role != cluster::Role::kPromoted) {
    d = {ExecStep::kPromote, a.token, l.blocked_token, "assigned promoted"};
  } else if (a.role != cluster::Role::kPromoted && l.role == cluster::Role::kPromoted) {
    d = {ExecStep::kDemote, a.token, l.blocked_token, "assigned unpromoted"};
  } else {
    d.token = a.token;  // already runs as assigned: answer the new token
  }
  return d;
}

}  // namespace vigil::sched
