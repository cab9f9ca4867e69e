// The cluster model: nodes, resources, groups, clones, constraints and their current state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace vigil::cluster {

// Scores follow Pacemaker's convention: INFINITY is 1,000,000 and sums saturate.
inline constexpr int64_t kInfinity = 1000000;

enum class NodeRole { kVoter, kLearner, kWitness };

// online: takes resources. standby: keeps nothing, stops what runs. maintenance: what runs
// there is left alone (no stop, no monitor) and nothing new is placed there. offline: known
// down, nothing runs there. unclean: lost and not fenced, what ran there may still run.
// fenced: cut off for sure, nothing runs there.
enum class NodeState { kOnline, kOffline, kStandby, kMaintenance, kUnclean, kFenced };

// The role of a resource (or of one copy of a clone) on a node. kUnpromoted is the
// started role of a promotable clone's copy.
enum class Role { kStopped, kStarted, kUnpromoted, kPromoted };

enum class TargetRole { kStarted, kStopped, kPromoted };
enum class Failback { kPrefer, kStay };
enum class Requires { kNothing, kQuorum, kFencing };

struct Node {
  std::string name;
  NodeRole role = NodeRole::kVoter;
  NodeState state = NodeState::kOnline;
  std::map<std::string, std::string> attributes;
  // Utilization capacity (e.g. cpu: 8). A key the node does not list is capacity 0.
  std::map<std::string, int64_t> capacity;
  // The leader's view of when this node's hold ends (DESIGN.md "Holds"); with now_ms past
  // it, exclusive resources of an unclean node count as stopped.
  std::optional<int64_t> hold_expires_ms;
};

struct Operation {
  std::string name;  // monitor, start, stop, promote, demote
  int64_t interval_ms = 0;
  int64_t timeout_ms = 20000;
  std::string role;  // for monitors of promotable clones: "promoted", "unpromoted" or ""
};

struct ResourceMeta {
  int64_t stickiness = 0;                   // added to the node(s) where it runs now
  int64_t migration_threshold = kInfinity;  // fail count that bans a node; INFINITY = never
  int64_t failure_timeout_s = 600;          // fail counts expire after this; 0 = never
  TargetRole target_role = TargetRole::kStarted;
  int64_t priority = 0;  // higher is placed first when not everything fits
  Failback failback = Failback::kPrefer;
  bool exclusive = false;                 // runs only under a valid hold (a VIP, a single writer)
  Requires require = Requires::kFencing;  // what a start needs
};

struct Resource {
  std::string id;
  std::string agent;  // ocf:heartbeat:nginx, lsb:foo, systemd:nginx.service, process, vip
  std::map<std::string, std::string> params;
  std::vector<Operation> operations;
  ResourceMeta meta;
  std::map<std::string, int64_t> utilization;  // e.g. cpu: 2; checked against node capacity
};

// Members start in order on one node and stop in reverse.
struct Group {
  std::string id;
  std::vector<std::string> members;
  TargetRole target_role = TargetRole::kStarted;
  int64_t priority = 0;
};

// clone_max copies of one primitive, at most clone_node_max per node. A promotable clone
// promotes up to promoted_max copies (one per node), chosen by promotion score.
struct Clone {
  std::string id;
  std::string resource;
  int64_t clone_max = 0;  // 0: one per eligible node
  int64_t clone_node_max = 1;
  bool promotable = false;
  int64_t promoted_max = 1;
};

enum class RuleOp { kEq, kNe, kLt, kLte, kGt, kGte, kDefined, kNotDefined };

struct RuleExpression {
  std::string attribute;
  RuleOp op = RuleOp::kEq;
  std::string value;
};

// Either `node` (one node) or a rule (every node whose attributes match) gets `score`.
// With role kPromoted the score counts toward promotion instead of placement.
struct LocationConstraint {
  std::string id;
  std::string resource;
  int64_t score = 0;
  std::string node;
  std::vector<RuleExpression> rule;
  bool rule_match_all = true;  // all expressions (and), or any (or)
  Role role = Role::kStarted;
};

// `resource` (in resource_role) is placed relative to `with` (in with_role), which is
// placed first. +INFINITY: only where `with` runs; -INFINITY: never there; else advisory.
struct ColocationConstraint {
  std::string id;
  std::string resource;
  std::string with;
  int64_t score = kInfinity;
  Role resource_role = Role::kStarted;
  Role with_role = Role::kStarted;
};

enum class OrderKind { kMandatory, kOptional };
enum class OrderAction { kStart, kPromote };

// then_action of `then` waits for first_action of `first`. Mandatory: `then` runs only if
// `first` does, and restarts when `first` restarts. Symmetrical: stops in reverse order.
struct OrderConstraint {
  std::string id;
  std::string first;
  std::string then;
  OrderKind kind = OrderKind::kMandatory;
  OrderAction first_action = OrderAction::kStart;
  OrderAction then_action = OrderAction::kStart;
  bool symmetrical = true;
};

// A fence agent (fence-agents: "fence_ipmilan") that can cut off `nodes`. To fence a node,
// the devices of level 1 that list it are tried first, then those of level 2, and so on.
struct FenceDevice {
  std::string id;
  std::string agent;
  std::map<std::string, std::string> params;  // passed on the agent's stdin (ipaddr=, ...)
  std::vector<std::string> nodes;             // the nodes it can fence
  int level = 1;                              // >= 1; lower levels are tried first
};

// The current state of one resource (a primitive, or a clone's primitive) on one node.
struct ResourceState {
  bool running = false;
  Role role = Role::kStarted;  // kPromoted / kUnpromoted for promotable clones
  int64_t copies = 1;          // clone copies on this node (clone_node_max > 1)
  bool failed = false;         // a failed operation left it in need of recovery
  // A restart was asked for (`vigil resource restart`, or a definition change of its agent
  // or params): stopped and started where it runs, with what is ordered after it, in order.
  bool restart = false;
  int64_t fail_count = 0;
  int64_t last_failure_ms = 0;             // when fail_count was last raised
  std::optional<int64_t> promotion_score;  // set by the agent (promotable clones)
};

struct ClusterSnapshot {
  int64_t now_ms = 0;
  bool has_quorum = true;
  std::vector<Node> nodes;
  std::vector<Resource> resources;
  std::vector<Group> groups;
  std::vector<Clone> clones;
  std::vector<LocationConstraint> locations;
  std::vector<ColocationConstraint> colocations;
  std::vector<OrderConstraint> orders;
  std::vector<FenceDevice> fence_devices;
  // resource id → node name → state. Nodes not listed: not running, no failures.
  std::map<std::string, std::map<std::string, ResourceState>> status;
};

std::string_view node_role_name(NodeRole r);
std::string_view node_state_name(NodeState s);
std::string_view role_name(Role r);
std::string_view target_role_name(TargetRole r);
std::string_view failback_name(Failback f);
std::string_view requires_name(Requires r);
std::string_view rule_op_name(RuleOp op);
std::string_view order_kind_name(OrderKind k);
std::string_view order_action_name(OrderAction a);

Result<NodeRole> parse_node_role(std::string_view s);
Result<NodeState> parse_node_state(std::string_view s);
Result<Role> parse_role(std::string_view s);
Result<TargetRole> parse_target_role(std::string_view s);
Result<Failback> parse_failback(std::string_view s);
Result<Requires> parse_requires(std::string_view s);
Result<RuleOp> parse_rule_op(std::string_view s);
Result<OrderKind> parse_order_kind(std::string_view s);
Result<OrderAction> parse_order_action(std::string_view s);
// "INFINITY", "+INFINITY", "-INFINITY", "inf" or an integer; values beyond ±INFINITY clamp.
Result<int64_t> parse_score(std::string_view s);
std::string score_str(int64_t score);  // "-INFINITY", "100", "INFINITY"

// Does the node's attribute set satisfy the expression? Numbers compare as integers when
// both sides parse as integers, else as strings.
bool rule_expression_matches(const RuleExpression& e,
                             const std::map<std::string, std::string>& attributes);

// Names of nodes and ids of resources, groups, clones, constraints and fence devices:
// [A-Za-z0-9_.:@+-]{1,128} (the executor uses them in file names and environments).
bool is_valid_name(std::string_view s);
// The copy number N when `id` is "BASE:N", N >= 1 in at most 9 digits with no leading zero:
// the name copy N of a clone of BASE runs under (sched/coordinate.h clone_instance_id).
std::optional<int64_t> clone_copy_number(std::string_view id, std::string_view base);
// The syntax of a resource agent: "ocf:PROVIDER:TYPE", "lsb:NAME", "systemd:UNIT",
// "process" or "vip"; each part a plain file name (no '/', not "." or "..", printable, no
// spaces). Only the syntax: whether the agent is installed is the executor's business.
Status check_agent_syntax(std::string_view agent);
// The syntax of a fence agent: a plain file name, "fence_ipmilan".
Status check_fence_agent_syntax(std::string_view agent);
// An IPv4 or IPv6 literal with an optional "/prefix" (0-32 or 0-128): "198.18.0.100/24",
// "fd00::10". No leading zeros in IPv4 octets (ambiguous: octal to some parsers).
Status check_ip_address(std::string_view s);
// The argv of a `process` resource's params.command: split on spaces and tabs (no shell, no
// quoting). Empty if the command is blank.
std::vector<std::string> split_command(std::string_view command);

// Structural checks: unique and well-formed ids, known references, agent syntax, a
// resource in at most one group or clone, sane clone counts, operations (known names,
// timeouts > 0, no duplicate name and interval), fence levels >= 1, and constraints that
// cannot be satisfied or ordered: order cycles, mandatory colocation cycles, +INFINITY
// locations on two nodes, +INFINITY and -INFINITY on the same node or the same pair.
// Every error message starts with the key path of the object ("constraints.order: cycle
// web -> db -> web"), which the YAML readers turn into a line.
Status validate(const ClusterSnapshot& s);
// validate() plus what only a cluster definition (vigil apply -f) must satisfy: no runtime
// state (status, node states other than online, standby and maintenance, holds), a `process`
// resource has a non-blank params.command, a `vip` resource a valid params.ip.
Status validate_definition(const ClusterSnapshot& s);

// What changes when definition `before` is replaced by `after`, for `vigil apply --dry-run`.
// One line per changed object, sorted as strings (so additions, then removals, then
// changes): "+ resource web (ocf:heartbeat:nginx)", "- resource old",
// "~ resource db: params.port 5432 -> 5433", "~ node n2: state online -> standby",
// "+ constraint location loc-web", ... Several changes of one object are joined by ", ".
// Values of params whose key contains "pass", "secret" or "token" print as "***".
// Empty when the definitions are the same. Runtime state (status, now_ms, holds) is
// ignored; node states are compared (standby, maintenance). Both sides should have passed
// validate(): of two objects with one id, the first counts.
std::vector<std::string> diff_definitions(const ClusterSnapshot& before,
                                          const ClusterSnapshot& after);
// True when a running copy of `a` must be restarted to become `b` (agent or params changed);
// meta, operations, utilization and constraints changes do not restart.
bool needs_restart(const Resource& a, const Resource& b);

}  // namespace vigil::cluster
