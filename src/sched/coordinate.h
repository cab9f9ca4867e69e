// The coordinator's pure half: the store's records of what is assigned and what runs, turned
// into a scheduler snapshot, and a plan turned into the next assignment edits.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cluster/model.h"
#include "sched/plan.h"

namespace vigil::sched {

// What the coordinator asked one node to run: /vigil/assign/NODE/RESOURCE. `token` is the
// record's mod revision: a fencing token that grows with every rewrite. A rewrite of an
// unchanged role asks the node to start the resource again (after a failure).
struct Assignment {
  cluster::Role role = cluster::Role::kStarted;
  int64_t token = 0;
};

// What one node's executor reports for one resource: /vigil/status/NODE/RESOURCE. `token` is
// the assignment token the report answers (0 when it answers none: a stop, a probe).
struct Reported {
  cluster::ResourceState state;
  int64_t token = 0;
};

using NodeResource = std::pair<std::string, std::string>;  // (node, resource)

// Fills `s.status` from the reports, counting an assignment the node has not answered yet
// (report token below the assignment's, or no report) as running in the assigned role, or
// still promoted while a demote is under way: the start may be under way, so the plan must
// treat it as possibly active. Entries for resources the definition does not know are left
// out.
void merge_status(cluster::ClusterSnapshot& s, const std::map<NodeResource, Assignment>& assigned,
                  const std::map<NodeResource, Reported>& reported);

// One change to the assignments.
struct AssignmentEdit {
  bool remove = false;  // delete /vigil/assign/NODE/RESOURCE, else write `role`
  std::string node;
  std::string resource;
  cluster::Role role = cluster::Role::kStarted;
  std::string why;  // the action or rule that asked for it, for the log and events
  bool operator==(const AssignmentEdit&) const = default;
};

// The edits that carry out the actions of `p` that can run now (those with no `after`, and
// no unanswered start or promote they are ordered after by a group or an order constraint,
// which merge_status counted as done), skipping what the assignments already ask for, in
// action order:
//   start / promote / demote → write the role, or rewrite it when the node already answered
//                              the current token and the resource is not running there;
//   stop                     → delete the assignment;
//   fence                    → nothing here (the coordinator runs fence devices itself).
// Then, for every node that is not reachable (offline, unclean, fenced), for every resource
// that the definition no longer lists, and for answered assignments that do not run (failed),
// assignments the placement does not keep are deleted, so a node that comes back (or forgets
// a failure) finds no stale work.
std::vector<AssignmentEdit> next_edits(const cluster::ClusterSnapshot& s, const Plan& p,
                                       const std::map<NodeResource, Assignment>& assigned,
                                       const std::map<NodeResource, Reported>& reported);

}  // namespace vigil::sched
