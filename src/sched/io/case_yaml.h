// The YAML forms of a cluster snapshot, parsed from a string: a scheduler case's input.yaml
// and a cluster definition (`vigil apply -f cluster.yaml`). One reader serves both.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "cluster/model.h"

namespace vigil::sched {

// Parses and validates a snapshot. Unknown keys, wrong types, bad values and bad
// references are errors of the form "FILE:LINE: key.path: what" (the file name is only
// used in messages; nothing is read here). The format is described in src/sched/README.md.
Result<cluster::ClusterSnapshot> parse_snapshot_yaml(std::string_view text, std::string_view file);

// A cluster definition (vigil apply -f): nodes, resources, groups, clones, constraints,
// fence devices, defaults. No status, now_ms, has_quorum, node state or hold (those are
// runtime facts): such keys are errors. Node flags `standby: true` / `maintenance: true`
// become NodeState kStandby / kMaintenance (else kOnline). Errors "FILE:LINE: key.path: what".
// Stricter than a case: numbers and booleans unquoted, booleans only true/false; operations
// take `interval: 10s` / `timeout: 20s` as well as `interval_ms` / `timeout_ms`; validated
// with cluster::validate_definition(). The first error found is returned. The format is
// documented in docs/CONFIG.md "Cluster definition".
// `check`, when set, applies an agent class's own parameter rules to each resource (the
// daemon checks `vip` params with net::parse_vip_params); its error starts with the key path
// under the resource ("params.ip: ...") and gets the resource's path and line.
using ParamCheck = std::function<Status(const cluster::Resource&)>;
Result<cluster::ClusterSnapshot> parse_cluster_yaml(std::string_view text, std::string_view file,
                                                    const ParamCheck& check = {});

}  // namespace vigil::sched
