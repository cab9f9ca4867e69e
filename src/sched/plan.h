// plan(snapshot) → placement, an ordered action graph and the explanation of every score.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "cluster/model.h"
#include "sched/score.h"

namespace vigil::sched {

// The operations the executors run, in the order the graph allows. A move is a stop on one
// node and a start on another; a restart or recovery is a stop and a start on one node.
enum class ActionKind { kFence, kDemote, kStop, kStart, kPromote };
std::string_view action_kind_name(ActionKind k);

struct Action {
  int id = 0;  // 1..N in the order of `Plan::actions`, a topological order of the graph
  ActionKind kind = ActionKind::kStart;
  std::string resource;  // empty for fence
  std::string node;
  int64_t copies = 1;      // clone copies started or stopped on the node at once
  std::vector<int> after;  // ids of actions that must complete first, ascending
  std::string reason;      // why, in a few words ("move", "node standby", "recover")

  std::string label() const;  // "start web on n2", "fence n3"
};

// Where one primitive (or a clone's primitive) runs after the plan.
struct Placed {
  std::string node;
  cluster::Role role = cluster::Role::kStarted;
  int64_t copies = 1;
};

// One line of the plan summary: what changes for a resource, as an operator says it.
struct Change {
  std::string verb;  // Start, Stop, Move, Restart, Recover, Promote, Demote, Fence
  std::string resource;
  std::string detail;  // "n1 -> n2", "n3", "n1 (node standby)"
};

// Why a placement unit (a primitive, a group or a clone) ended where it did.
struct Explanation {
  std::string unit;                  // the primitive, group or clone id
  std::string kind;                  // "primitive", "group", "clone", "promotable clone"
  std::vector<NodeScore> scores;     // one per node, sorted by node name
  std::vector<NodeScore> promotion;  // promotable clones: promotion scores per node
  std::vector<std::string> notes;    // decisions: "placed on n1 (highest score)"
};

struct Plan {
  std::map<std::string, std::vector<Placed>> placement;  // primitive id → nodes (sorted)
  std::vector<Action> actions;                           // topologically ordered
  std::vector<Change> changes;                           // sorted by resource, then verb
  std::vector<Explanation> explanation;                  // sorted by unit id
  std::vector<std::string> warnings;                     // things an operator must act on
};

// The scheduler: a pure, deterministic function of the snapshot. Errors only for a
// snapshot that fails cluster::validate().
Result<Plan> plan(const cluster::ClusterSnapshot& snapshot);

// The state after every action of `p` succeeded: what the executors would report back.
// Fenced nodes become `fenced` with nothing running; failed flags of recovered resources
// clear; fail counts stay (an operator's cleanup clears them, or failure_timeout).
cluster::ClusterSnapshot apply_plan(const cluster::ClusterSnapshot& snapshot, const Plan& p);

}  // namespace vigil::sched
