// Injected events of a scheduler case (inject.txt): node failures, operation failures,
// time, fencing, standby, move/ban/clear — applied to a snapshot before planning.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "cluster/model.h"

namespace vigil::sched {

// Applies each line of `text` in order. One event per line, '#' starts a comment:
//   node-fail N            N is lost: unclean (what ran there may still run)
//   node-offline N         N left cleanly: nothing runs there
//   node-online N | node-standby N | node-maintenance N
//   fence-ok N             N is confirmed fenced: nothing runs there
//   op-fail R:OP@N rc=X    OP (monitor, start, stop, promote, demote) of R failed on N:
//                          fail count +1 (start: INFINITY), R needs recovery there; a
//                          failed stop makes N unclean (it must be fenced)
//   set-time MS            now_ms = MS
//   quorum-lost | quorum-ok
//   move R N               location cli-move-R: R on N with +INFINITY
//   ban R N                location cli-ban-R-N: R on N with -INFINITY
//   clear R                removes every cli-move-R / cli-ban-R-* constraint
//   cleanup R [N]          clears R's fail counts and failed flags (on N, or everywhere)
//   promotion-score R@N S  the agent's promotion score of R on N
//   attr N KEY=VALUE       sets a node attribute
// Errors name `file`, the line and what was wrong; the snapshot is then unspecified.
Status apply_inject(std::string_view text, std::string_view file, cluster::ClusterSnapshot& s);

}  // namespace vigil::sched
