// Names, parsers and validation of the cluster model.
#include "cluster/model.h"

#include <charconv>
#include <set>

namespace vigil::cluster {
namespace {

template <class E, size_t N>
Result<E> parse_enum(std::string_view s, const std::pair<std::string_view, E> (&table)[N],
                     std::string_view what) {
  std::string allowed;
  for (const auto& [name, value] : table) {
    if (name == s) return value;
    if (!allowed.empty()) allowed += ", ";
    allowed += name;
  }
  return err(Errc::kInvalidArgument, "unknown " + std::string(what) + " '" + std::string(s) +
                                         "' (expected " + allowed + ")");
}

constexpr std::pair<std::string_view, NodeRole> kNodeRoles[] = {
    {"voter", NodeRole::kVoter}, {"learner", NodeRole::kLearner}, {"witness", NodeRole::kWitness}};
constexpr std::pair<std::string_view, NodeState> kNodeStates[] = {
    {"online", NodeState::kOnline},   {"offline", NodeState::kOffline},
    {"standby", NodeState::kStandby}, {"maintenance", NodeState::kMaintenance},
    {"unclean", NodeState::kUnclean}, {"fenced", NodeState::kFenced}};
constexpr std::pair<std::string_view, Role> kRoles[] = {{"stopped", Role::kStopped},
                                                        {"started", Role::kStarted},
                                                        {"unpromoted", Role::kUnpromoted},
                                                        {"promoted", Role::kPromoted}};
constexpr std::pair<std::string_view, TargetRole> kTargetRoles[] = {
    {"started", TargetRole::kStarted},
    {"stopped", TargetRole::kStopped},
    {"promoted", TargetRole::kPromoted}};
constexpr std::pair<std::string_view, Failback> kFailbacks[] = {{"prefer", Failback::kPrefer},
                                                                {"stay", Failback::kStay}};
constexpr std::pair<std::string_view, Requires> kRequires[] = {{"nothing", Requires::kNothing},
                                                               {"quorum", Requires::kQuorum},
                                                               {"fencing", Requires::kFencing}};
constexpr std::pair<std::string_view, RuleOp> kRuleOps[] = {
    {"eq", RuleOp::kEq},           {"ne", RuleOp::kNe},
    {"lt", RuleOp::kLt},           {"lte", RuleOp::kLte},
    {"gt", RuleOp::kGt},           {"gte", RuleOp::kGte},
    {"defined", RuleOp::kDefined}, {"not_defined", RuleOp::kNotDefined}};
constexpr std::pair<std::string_view, OrderKind> kOrderKinds[] = {
    {"mandatory", OrderKind::kMandatory}, {"optional", OrderKind::kOptional}};
constexpr std::pair<std::string_view, OrderAction> kOrderActions[] = {
    {"start", OrderAction::kStart}, {"promote", OrderAction::kPromote}};

template <class E, size_t N>
std::string_view name_of(E v, const std::pair<std::string_view, E> (&table)[N]) {
  for (const auto& [name, value] : table) {
    if (value == v) return name;
  }
  return "?";
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::string_view node_role_name(NodeRole r) { return name_of(r, kNodeRoles); }
std::string_view node_state_name(NodeState s) { return name_of(s, kNodeStates); }
std::string_view role_name(Role r) { return name_of(r, kRoles); }
std::string_view target_role_name(TargetRole r) { return name_of(r, kTargetRoles); }
std::string_view failback_name(Failback f) { return name_of(f, kFailbacks); }
std::string_view requires_name(Requires r) { return name_of(r, kRequires); }
std::string_view rule_op_name(RuleOp op) { return name_of(op, kRuleOps); }
std::string_view order_kind_name(OrderKind k) { return name_of(k, kOrderKinds); }
std::string_view order_action_name(OrderAction a) { return name_of(a, kOrderActions); }

Result<NodeRole> parse_node_role(std::string_view s) { return parse_enum(s, kNodeRoles, "role"); }
Result<NodeState> parse_node_state(std::string_view s) {
  return parse_enum(s, kNodeStates, "node state");
}
Result<Role> parse_role(std::string_view s) { return parse_enum(s, kRoles, "role"); }
Result<TargetRole> parse_target_role(std::string_view s) {
  return parse_enum(s, kTargetRoles, "target_role");
}
Result<Failback> parse_failback(std::string_view s) {
  return parse_enum(s, kFailbacks, "failback");
}
Result<Requires> parse_requires(std::string_view s) { return parse_enum(s, kRequires, "requires"); }
Result<RuleOp> parse_rule_op(std::string_view s) { return parse_enum(s, kRuleOps, "rule op"); }
Result<OrderKind> parse_order_kind(std::string_view s) {
  return parse_enum(s, kOrderKinds, "order kind");
}
Result<OrderAction> parse_order_action(std::string_view s) {
  return parse_enum(s, kOrderActions, "order action");
}

Result<int64_t> parse_score(std::string_view s) {
  if (s == "INFINITY" || s == "+INFINITY" || s == "inf" || s == "+inf") return kInfinity;
  if (s == "-INFINITY" || s == "-inf") return -kInfinity;
  auto v = to_int(s);
  if (!v) {
    return err(Errc::kInvalidArgument,
               "bad score '" + std::string(s) + "' (expected an integer or [-]INFINITY)");
  }
  if (*v > kInfinity) return kInfinity;
  if (*v < -kInfinity) return -kInfinity;
  return *v;
}

std::string score_str(int64_t score) {
  if (score >= kInfinity) return "INFINITY";
  if (score <= -kInfinity) return "-INFINITY";
  return std::to_string(score);
}

bool rule_expression_matches(const RuleExpression& e,
                             const std::map<std::string, std::string>& attributes) {
  auto it = attributes.find(e.attribute);
  if (e.op == RuleOp::kDefined) return it != attributes.end();
  if (e.op == RuleOp::kNotDefined) return it == attributes.end();
  if (it == attributes.end()) return e.op == RuleOp::kNe;
  const std::string& have = it->second;
  int cmp = 0;
  auto a = to_int(have);
  auto b = to_int(e.value);
  if (a && b) {
    cmp = *a < *b ? -1 : (*a > *b ? 1 : 0);
  } else {
    int c = have.compare(e.value);
    cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  switch (e.op) {
    case RuleOp::kEq:
      return cmp == 0;
    case RuleOp::kNe:
      return cmp != 0;
    case RuleOp::kLt:
      return cmp < 0;
    case RuleOp::kLte:
      return cmp <= 0;
    case RuleOp::kGt:
      return cmp > 0;
    case RuleOp::kGte:
      return cmp >= 0;
    default:
      return false;
  }
}

Status validate(const ClusterSnapshot& s) {
  std::set<std::string> nodes;
  for (const Node& n : s.nodes) {
    if (n.name.empty()) return err(Errc::kInvalidArgument, "nodes: a node has no name");
    if (!nodes.insert(n.name).second) {
      return err(Errc::kInvalidArgument, "nodes: duplicate node '" + n.name + "'");
    }
  }
  std::set<std::string> ids;  // resources, groups and clones share one namespace
  std::set<std::string> primitives;
  for (const Resource& r : s.resources) {
    if (r.id.empty()) return err(Errc::kInvalidArgument, "resources: a resource has no id");
    if (!ids.insert(r.id).second) {
      return err(Errc::kInvalidArgument, "resources: duplicate id '" + r.id + "'");
    }
    if (r.meta.migration_threshold < 1) {
      return err(Errc::kInvalidArgument,
                 "resources." + r.id + ".meta.migration_threshold: must be >= 1");
    }
    primitives.insert(r.id);
  }
  std::set<std::string> owned;  // primitives inside a group or a clone
  auto own = [&](const std::string& member, const std::string& where) -> Status {
    if (!primitives.contains(member)) {
      return err(Errc::kInvalidArgument, where + ": unknown resource '" + member + "'");
    }
    if (!owned.insert(member).second) {
      return err(Errc::kInvalidArgument,
                 where + ": resource '" + member + "' is already in a group or clone");
    }
    return Status();
  };
  for (const Group& g : s.groups) {
    if (!ids.insert(g.id).second) {
      return err(Errc::kInvalidArgument, "groups: duplicate id '" + g.id + "'");
    }
    if (g.members.empty()) {
      return err(Errc::kInvalidArgument, "groups." + g.id + ".members: empty");
    }
    for (const std::string& m : g.members) RETURN_IF_ERROR(own(m, "groups." + g.id + ".members"));
  }
  for (const Clone& c : s.clones) {
    if (!ids.insert(c.id).second) {
      return err(Errc::kInvalidArgument, "clones: duplicate id '" + c.id + "'");
    }
    RETURN_IF_ERROR(own(c.resource, "clones." + c.id + ".resource"));
    if (c.clone_max < 0 || c.clone_node_max < 1 || c.promoted_max < 0) {
      return err(Errc::kInvalidArgument, "clones." + c.id +
                                             ": clone_max >= 0, clone_node_max >= 1 and "
                                             "promoted_max >= 0 required");
    }
    if (c.promotable && c.clone_node_max != 1) {
      return err(Errc::kInvalidArgument,
                 "clones." + c.id + ".clone_node_max: a promotable clone needs 1");
    }
  }
  auto known = [&](const std::string& id, const std::string& where) -> Status {
    if (!ids.contains(id)) {
      return err(Errc::kInvalidArgument, where + ": unknown resource '" + id + "'");
    }
    return Status();
  };
  std::set<std::string> cids;
  auto cid = [&](const std::string& id, const std::string& where) -> Status {
    if (id.empty()) return err(Errc::kInvalidArgument, where + ": a constraint has no id");
    if (!cids.insert(id).second) {
      return err(Errc::kInvalidArgument, where + ": duplicate constraint id '" + id + "'");
    }
    return Status();
  };
  for (const LocationConstraint& c : s.locations) {
    RETURN_IF_ERROR(cid(c.id, "constraints.location"));
    RETURN_IF_ERROR(known(c.resource, "constraints.location." + c.id + ".resource"));
    if (c.node.empty() == c.rule.empty()) {
      return err(Errc::kInvalidArgument,
                 "constraints.location." + c.id + ": give exactly one of node and rule");
    }
    if (!c.node.empty() && !nodes.contains(c.node)) {
      return err(Errc::kInvalidArgument,
                 "constraints.location." + c.id + ".node: unknown node '" + c.node + "'");
    }
  }
  for (const ColocationConstraint& c : s.colocations) {
    RETURN_IF_ERROR(cid(c.id, "constraints.colocation"));
    RETURN_IF_ERROR(known(c.resource, "constraints.colocation." + c.id + ".resource"));
    RETURN_IF_ERROR(known(c.with, "constraints.colocation." + c.id + ".with"));
    if (c.resource == c.with) {
      return err(Errc::kInvalidArgument,
                 "constraints.colocation." + c.id + ": a resource colocated with itself");
    }
  }
  for (const OrderConstraint& c : s.orders) {
    RETURN_IF_ERROR(cid(c.id, "constraints.order"));
    RETURN_IF_ERROR(known(c.first, "constraints.order." + c.id + ".first"));
    RETURN_IF_ERROR(known(c.then, "constraints.order." + c.id + ".then"));
    if (c.first == c.then) {
      return err(Errc::kInvalidArgument,
                 "constraints.order." + c.id + ": a resource ordered after itself");
    }
  }
  for (const FenceDevice& f : s.fence_devices) {
    for (const std::string& n : f.nodes) {
      if (!nodes.contains(n)) {
        return err(Errc::kInvalidArgument,
                   "fence_devices." + f.id + ".nodes: unknown node '" + n + "'");
      }
    }
  }
  for (const auto& [rid, per_node] : s.status) {
    if (!primitives.contains(rid)) {
      return err(Errc::kInvalidArgument, "status: unknown resource '" + rid + "'");
    }
    for (const auto& [node, st] : per_node) {
      if (!nodes.contains(node)) {
        return err(Errc::kInvalidArgument, "status." + rid + ": unknown node '" + node + "'");
      }
      (void)st;
    }
  }
  return Status();
}

}  // namespace vigil::cluster
