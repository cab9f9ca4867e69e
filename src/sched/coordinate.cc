// Assignments and reports → snapshot status; a plan's runnable actions → assignment edits.
#include "sched/coordinate.h"

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

bool placed_on(const Plan& p, const std::string& resource, const std::string& node) {
  auto it = p.placement.find(resource);
  if (it == p.placement.end()) return false;
  for (const auto& pl : it->second) {
    if (pl.node == node) return true;
  }
  return false;
}

}  // namespace

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
    st.running = true;
    st.role = a.role;
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
  auto running_as = [&](const NodeResource& key, Role role) {
    auto rep = reported.find(key);
    if (rep == reported.end() || !rep->second.state.running) return false;
    return role != Role::kPromoted || rep->second.state.role == Role::kPromoted;
  };
  auto put = [&](const NodeResource& key, Role role, std::string why) {
    if (!touched.insert(key).second) return;
    out.push_back(AssignmentEdit{false, key.first, key.second, role, std::move(why)});
  };
  for (const Action& a : p.actions) {
    if (!a.after.empty() || a.kind == ActionKind::kFence) continue;
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
        if (it == assigned.end() || it->second.role != want) {
          put(key, want, a.label() + " (" + a.reason + ")");
        } else if (answered(key, it->second) && !running_as(key, want)) {
          put(key, want, a.label() + " (" + a.reason + ", again)");
        }
        break;
      }
      case ActionKind::kStop:
        if (it != assigned.end() && touched.insert(key).second) {
          out.push_back(AssignmentEdit{true, a.node, a.resource, Role::kStopped,
                                       a.label() + " (" + a.reason + ")"});
        }
        break;
      case ActionKind::kFence:
        break;
    }
  }
  std::set<std::string> known;
  for (const auto& r : s.resources) known.insert(r.id);
  std::map<std::string, NodeState> states;
  for (const auto& n : s.nodes) states[n.name] = n.state;
  for (const auto& [key, a] : assigned) {
    if (touched.contains(key)) continue;
    std::string why;
    if (!known.contains(key.second)) {
      why = "no longer defined";
    } else {
      auto st = states.find(key.first);
      bool gone = st == states.end() || !reachable(st->second);
      if (!gone || placed_on(p, key.second, key.first)) continue;
      why =
          "node " + key.first + " is " +
          std::string(st == states.end() ? "not a member" : cluster::node_state_name(st->second)) +
          " and the resource is placed elsewhere";
    }
    touched.insert(key);
    out.push_back(AssignmentEdit{true, key.first, key.second, Role::kStopped,
                                 "stop " + key.second + " on " + key.first + " (" + why + ")"});
  }
  return out;
}

}  // namespace vigil::sched
