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
// unchanged role asks the node to start the resource again (after a failure). Role kStopped
// is a stop order (a tombstone): the node stops the resource and answers the token, so the
// coordinator knows when it is stopped; a deleted assignment would say nothing about a
// start still under way there.
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
// treat it as possibly active. An unanswered stop order counts as running in the reported
// role (started if the report says stopped: a start may still be under way). Entries for
// resources the definition does not know are left out.
void merge_status(cluster::ClusterSnapshot& s, const std::map<NodeResource, Assignment>& assigned,
                  const std::map<NodeResource, Reported>& reported);

// One change to the assignments.
struct AssignmentEdit {
  bool remove = false;  // delete /vigil/assign/NODE/RESOURCE, else write `role` (kStopped: stop)
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
//   stop                     → write a stop order (role kStopped) on a reachable node, again
//                              when it answered and still runs; delete the assignment on a
//                              node that is not reachable (it cannot answer);
//   fence                    → nothing here (the coordinator runs fence devices itself).
// Then, for every node that is not reachable (offline, unclean, fenced), for every resource
// that the definition no longer lists, and for answered assignments that do not run (failed,
// or stopped by a stop order), assignments the placement does not keep are deleted, so a
// node that comes back (or forgets a failure) finds no stale work.
std::vector<AssignmentEdit> next_edits(const cluster::ClusterSnapshot& s, const Plan& p,
                                       const std::map<NodeResource, Assignment>& assigned,
                                       const std::map<NodeResource, Reported>& reported);

// Assignment edits the coordinator proposed that the committed store does not show yet. It
// plans on committed state, and a plan made a moment after a proposal must not miss it: an
// exclusive resource whose start was just proposed on one node would be started on another.
// overlay() shows each pending write as an unanswered assignment (merge_status counts it as
// possibly running) and each pending delete as done.
class PendingEdits {
 public:
  static constexpr int64_t kPendingToken = INT64_MAX;  // above every real token: unanswered

  // `revision`: the store's committed revision when the edit was proposed.
  void proposed(const AssignmentEdit& e, int64_t revision, int64_t now_ms);
  // Forgets what `committed` reflects (a write to the key after `revision`, or for a delete
  // the key gone) and what was proposed more than `timeout_ms` ago (a proposal that was lost,
  // say with the leadership). Returns the number still pending.
  size_t settle(const std::map<NodeResource, Assignment>& committed, int64_t now_ms,
                int64_t timeout_ms);
  std::map<NodeResource, Assignment> overlay(
      const std::map<NodeResource, Assignment>& committed) const;
  bool contains(const NodeResource& key) const { return pending_.contains(key); }
  void clear() { pending_.clear(); }

 private:
  struct Pending {
    bool remove = false;
    cluster::Role role = cluster::Role::kStarted;
    int64_t revision = 0;
    int64_t at_ms = 0;
  };
  std::map<NodeResource, Pending> pending_;
};

}  // namespace vigil::sched
