// Seeded simulation of a whole Vigil cluster: the coordinator on the leader and an executor
// on every node, running the daemon's own rules (sched::plan, merge_status, next_edits,
// PendingEdits, HoldClock, member_state, executor_step), over a modelled Raft store (commit
// lag, apply lag, leader changes that commit or lose what was in flight) and fake agents
// (crash, hang, slow start, failed start, monitor failure). Nodes crash and return, agents
// restart with their processes alive, nodes are partitioned and healed. After every step
// the checkers ask: is an exclusive resource active on two nodes? At the end, with every
// fault healed: is every resource that can be placed running where the plan places it?
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace vigil::simcluster {

// Bugs the checkers must catch (self-tests): each turns one rule of the daemon off.
enum class Bug {
  kNone,
  kNoOverlay,                // plans on committed assignments only (no PendingEdits)
  kStopByDelete,             // a stop deletes the assignment instead of writing a stop order
  kHoldsIgnored,             // the leader counts a silent node's hold as expired at once
  kNoHoldStop,               // a node that loses its hold keeps its exclusive resources running
  kNoHoldGuard,              // a node's hold ends when the leader's reckoning does (no stop margin)
  kNoResyncBlock,            // a node that regains its hold starts what was assigned before
  kNoRepublish,              // a report whose proposal was lost is never sent again (liveness)
  kNoStepDownGap,            // a leader that steps down keeps running into a follower hold
  kExpireWithStartInFlight,  // a hold expires while a start proposed to the node is uncommitted
  kHoldOnReceipt,            // a follower renews its hold on receipt of the leader's messages
                             // (not from the send of what the leader confirms it received)
};

struct Options {
  uint64_t seed = 1;
  int fault_steps = 3000;  // steps of 10 ms with faults, then a heal phase
  int heal_ms = 30000;     // the heal phase's budget to converge
  Bug bug = Bug::kNone;
  bool trace = false;     // print every event
  int nodes = 3;          // voters n1..nN (3 or 5)
  int heartbeat_ms = 20;  // the agent's timers.heartbeat_ms (a multiple of the 10 ms step)
};

struct Outcome {
  std::vector<std::string> violations;  // "t=1234 ms: exclusive db active on n1 n2"
  int64_t converged_after_ms = -1;      // into the heal phase; -1: did not converge
  int64_t faults = 0;
  int64_t actions = 0;  // agent actions run
  int64_t leader_changes = 0;
  std::set<std::string> fault_kinds;
};

Outcome run(const Options& o);

}  // namespace vigil::simcluster
