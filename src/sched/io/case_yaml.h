// The YAML form of a cluster snapshot (a scheduler case's input.yaml), parsed from a string.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "cluster/model.h"

namespace vigil::sched {

// Parses and validates a snapshot. Unknown keys, wrong types, bad values and bad
// references are errors of the form "FILE:LINE: key.path: what" (the file name is only
// used in messages; nothing is read here). The format is described in src/sched/README.md.
Result<cluster::ClusterSnapshot> parse_snapshot_yaml(std::string_view text, std::string_view file);

}  // namespace vigil::sched
