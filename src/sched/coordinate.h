// The coordinator's pure half: the store's records of what is assigned and what runs, turned
// into a scheduler snapshot, and a plan turned into the next assignment edits.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
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
// `copies`: how many copies of a clone run on the node (clone_node_max > 1); the executor
// runs copy 0 as RESOURCE and the others as instances RESOURCE:1, RESOURCE:2, ...
// (clone_instance_id), each its own agent instance, and reports each under its own id.
struct Assignment {
  cluster::Role role = cluster::Role::kStarted;
  int64_t token = 0;
  int64_t copies = 1;
};

// What one node's executor reports for one resource: /vigil/status/NODE/RESOURCE. `token` is
// the assignment token the report answers (0 when it answers none: a stop, a probe).
struct Reported {
  cluster::ResourceState state;
  int64_t token = 0;
};

using NodeResource = std::pair<std::string, std::string>;  // (node, resource)

// The id the executor runs copy `i` of a clone's primitive under: copy 0 is the primitive
// itself, copy i > 0 is "RESOURCE:i" (Pacemaker names clone instances alike; the agent sees
// it as OCF_RESOURCE_INSTANCE, so two copies keep their state apart).
std::string clone_instance_id(const std::string& resource, int64_t i);
// "RESOURCE:i" with i >= 1 → (RESOURCE, i), when RESOURCE is in `primitives` and the id
// itself is not; nullopt otherwise.
std::optional<std::pair<std::string, int64_t>> split_clone_instance(
    const std::string& id, const std::set<std::string>& primitives);
// Folds the reports of copies 1.. of a clone (instances "RESOURCE:i") into the report of
// RESOURCE on that node: running if any copy runs, `copies` = the copies that run, the
// highest fail count, and the lowest token of the copies the assignment asks for (the
// assignment is answered once every copy answered it). Failed if a failed copy may still run
// or none runs; a failed copy that was stopped only lowers the count, so the plan starts one
// again without restarting the others. The instances' entries go.
void fold_clone_instances(std::map<NodeResource, Reported>& reported,
                          const std::map<NodeResource, Assignment>& assigned,
                          const std::set<std::string>& primitives);

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
  std::string why;     // the action or rule that asked for it, for the log and events
  int64_t copies = 1;  // clone copies on the node (Assignment::copies)
  bool operator==(const AssignmentEdit&) const = default;
};

// The edits that carry out the actions of `p` that can run now (those with no `after`, and
// no unanswered start or promote they are ordered after by a group or an order constraint,
// which merge_status counted as done), skipping what the assignments already ask for, in
// action order:
//   start / promote / demote → write the role (and the placement's copies on the node), or
//                              rewrite it when the node already answered the current token
//                              and the resource does not run there as asked (fewer copies);
//   stop of some copies      → a node the placement keeps with fewer copies: rewrite the
//                              assignment with the copies placed;
//   stop                     → write a stop order (role kStopped) on a reachable node, again
//                              when it answered and still runs; delete the assignment on a
//                              node that is not reachable (it cannot answer);
//   fence                    → nothing here (the coordinator runs fence devices itself).
// Then, for every node that is not reachable (offline, unclean, fenced), for every resource
// that the definition no longer lists, and for answered assignments that do not run (failed,
// or stopped by a stop order), assignments the placement does not keep are deleted, so a
// node that comes back (or forgets a failure) finds no stale work. A node that is not
// reachable but whose hold has not expired (hold_expires_ms > now_ms) gets stop orders
// instead of deletes: it may still be alive. Deletes on unreachable nodes come first.
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
  // A start or role write (not a stop order, not a delete) to `node` is proposed and not
  // committed yet.
  bool writes_pending_on(const std::string& node) const;
  void clear() { pending_.clear(); }

 private:
  struct Pending {
    bool remove = false;
    cluster::Role role = cluster::Role::kStarted;
    int64_t revision = 0;
    int64_t at_ms = 0;
    int64_t copies = 1;
  };
  std::map<NodeResource, Pending> pending_;
};

// ---- the rest of the coordinator's and the executor's rules, pure so that the whole-cluster
// simulation (tests/sim_cluster) runs the very rules the daemon runs.

// The leader's view of one member (daemon/cluster_service.cc node_states()): online while
// heard from within the hold and its executor has said it is ready; otherwise fenced if the
// store says so (until it is online again), unclean if something may run there, else
// offline. Standby and maintenance come from the definition on top of this.
struct MemberView {
  bool self = false;
  std::optional<int64_t> last_heard_ms;  // the leader's last contact with it
  bool executor_ready = false;
  bool stored_fenced = false;
  bool reports_running = false;  // may_run_on()
};
// Whether anything may run on `node`: a report says it runs, or an assignment there is not
// answered yet (a start may be under way, as merge_status counts it).
bool may_run_on(const std::string& node, const std::map<NodeResource, Assignment>& assigned,
                const std::map<NodeResource, Reported>& reported);
cluster::NodeState member_state(const MemberView& m, int64_t now_ms, int64_t hold_ms);

// Whether a new leader still waits before it plans (daemon/cluster_service.cc coordinate()):
// for up to one hold after its election, until every other member has been heard from since
// then and its executor is ready, so that a cold start or a leader change does not mark live
// nodes offline. The previous leader (HoldClock below) is waited for only for the guard.
bool new_leader_waits(const std::vector<std::string>& others, int64_t now_ms,
                      int64_t leader_since_ms, int64_t hold_ms, int64_t guard_ms,
                      const std::string& previous_leader,
                      const std::function<std::optional<int64_t>(const std::string&)>& last_heard,
                      const std::function<bool(const std::string&)>& executor_ready);

// Holds as the leader reckons them (DESIGN.md "Holds"): a silent node's hold ends at
// max(last contact, leader since) + H × (1 + drift). Once expired it stays expired until the
// node is online again: a returning node is heard before its executor has probed, and its
// stale reports must not count as running under a revived hold. clear() on a leader change.
//
// One exception, the previous leader: the leader of the term just before this leader's,
// whom this leader followed in that term. Its hold was its leader lease (a leader's hold is
// its lease, not a grant), and that lease had ended before this leader was elected: a
// quorum promised not to vote until it would have (raft.h lease_expiry_tick()), and this
// leader's votes came from a quorum. No term came between (this leader's term is the next),
// so no other leader can have granted it a hold since. What it ran stops at once when its
// lease ends; like a follower's, that stop gets the guard: its hold ends at leader since +
// guard × (1 + drift), as long as this leader has not heard from it (once it has, it may
// hold a hold this leader granted: the usual rule). This is what makes the leader's own
// death cost an election, not an election and then a hold.
class HoldClock {
 public:
  HoldClock(int64_t hold_ms, double drift, int64_t guard_ms = 0)
      : hold_ms_(hold_ms), drift_(drift), guard_ms_(guard_ms) {}
  int64_t expiry(std::optional<int64_t> last_heard_ms, int64_t leader_since_ms,
                 bool previous_leader = false) const;
  // Sets hold_expires_ms of every offline or unclean node of `s`. `previous_leader`: the
  // node that led the term just before this leader's, as this leader followed it ("" if it
  // did not know that term's leader).
  // `pending`: this leader's proposals not committed yet. A node with a start proposed to it
  // keeps its hold until that commits (or is lost): committed after the node resynced, it
  // would be a fresh assignment to the node, which then starts it (found by
  // tests/sim_cluster with commits lagging).
  void apply(cluster::ClusterSnapshot& s, int64_t now_ms, int64_t leader_since_ms,
             const std::function<std::optional<int64_t>(const std::string&)>& last_heard,
             const std::string& previous_leader = "", const PendingEdits* pending = nullptr);
  void clear() { expired_.clear(); }

 private:
  int64_t hold_ms_;
  double drift_;
  int64_t guard_ms_;
  std::map<std::string, int64_t> expired_;
};

// The executor's rule for one resource it knows and is not busy with
// (daemon/cluster_service.cc reconcile()).
struct LocalView {
  bool running = false;
  cluster::Role role = cluster::Role::kStarted;
  bool exclusive = false;
  int64_t token = 0;           // the assignment token last answered
  int64_t blocked_token = -1;  // failed (or hold lost) under this token: wait for a new one
  // The revision this node synced to when it last (re)gained its hold (start-up, or after
  // losing it). An exclusive resource that does not run is not started under an assignment
  // this old: the leader may have counted the hold expired meanwhile and recovered the
  // resource elsewhere, its delete of this assignment not committed yet. The node answers the
  // token instead (not running), and a leader that still wants it here writes a new one.
  int64_t synced_at = 0;
};
enum class ExecStep { kNone, kStart, kStop, kPromote, kDemote };
struct ExecDecision {
  ExecStep step = ExecStep::kNone;
  int64_t token = 0;           // the token to answer (the new LocalView::token)
  int64_t blocked_token = -1;  // the new LocalView::blocked_token
  const char* why = "";
};
// `hold`: this node's hold is valid; `act`: it may act (hold, synced with the leader, not in
// maintenance). Without the hold an exclusive resource that runs is stopped at once and
// blocked under its token, whatever the assignment says.
ExecDecision executor_step(const LocalView& l, const std::optional<Assignment>& assigned, bool hold,
                           bool act);

}  // namespace vigil::sched
