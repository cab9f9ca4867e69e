// Names, parsers and validation of the cluster model.
#include "cluster/model.h"

#include <algorithm>
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

std::optional<int64_t> clone_copy_number(std::string_view id, std::string_view base) {
  if (id.size() <= base.size() + 1 || !id.starts_with(base) || id[base.size()] != ':') {
    return std::nullopt;
  }
  const std::string_view n = id.substr(base.size() + 1);
  if (n.size() > 9 || n[0] == '0') return std::nullopt;
  int64_t v = 0;
  for (char ch : n) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  return v;
}

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '@' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// A part of an agent name that becomes a file name (or a unit name): printable, no spaces,
// no '/', not "." or "..".
Status check_component(std::string_view agent, std::string_view part, std::string_view what) {
  auto bad = [&](const std::string& why) {
    return err(Errc::kInvalidArgument, "agent '" + std::string(agent) + "': " + why);
  };
  if (part.empty()) return bad("missing " + std::string(what));
  if (part.size() > 128) return bad(std::string(what) + " longer than 128 characters");
  if (part == "." || part == "..") return bad(std::string(what) + " is not a plain file name");
  for (char c : part) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || u <= ' ' || u == 0x7f) {
      return bad(std::string(what) + " '" + std::string(part) +
                 "' is not a plain file name (no '/', spaces or control characters)");
    }
  }
  return Status();
}

}  // namespace

Status check_agent_syntax(std::string_view agent) {
  if (agent == "process" || agent == "vip") return Status();
  size_t colon = agent.find(':');
  std::string_view cls = agent.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? "" : agent.substr(colon + 1);
  if (cls == "ocf") {
    size_t c2 = rest.find(':');
    if (colon == std::string_view::npos || c2 == std::string_view::npos ||
        rest.find(':', c2 + 1) != std::string_view::npos) {
      return err(Errc::kInvalidArgument,
                 "agent '" + std::string(agent) + "': want ocf:PROVIDER:TYPE");
    }
    RETURN_IF_ERROR(check_component(agent, rest.substr(0, c2), "provider"));
    return check_component(agent, rest.substr(c2 + 1), "type");
  }
  if (cls == "lsb" || cls == "systemd") {
    if (colon == std::string_view::npos) {
      return err(Errc::kInvalidArgument, "agent '" + std::string(agent) + "': want " +
                                             std::string(cls) + (cls == "lsb" ? ":NAME" : ":UNIT"));
    }
    return check_component(agent, rest, cls == "lsb" ? "name" : "unit");
  }
  if (cls == "process" || cls == "vip") {
    return err(Errc::kInvalidArgument, "agent '" + std::string(agent) + "': '" + std::string(cls) +
                                           "' takes no ':' suffix");
  }
  if (cls == "fence" || cls.starts_with("fence_")) {
    return err(Errc::kInvalidArgument, "agent '" + std::string(agent) +
                                           "': fence agents belong in fence_devices, not "
                                           "resources");
  }
  return err(Errc::kInvalidArgument,
             "agent '" + std::string(agent) +
                 "': unknown agent (want ocf:PROVIDER:TYPE, lsb:NAME, systemd:UNIT, process "
                 "or vip)");
}

Status check_fence_agent_syntax(std::string_view agent) {
  return check_component(agent, agent, "fence agent name");
}

namespace {

// Decimal 0..max without sign or leading zeros.
std::optional<int> small_decimal(std::string_view s, int max) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  while (true) {
    size_t dot = s.find('.');
    if (!small_decimal(s.substr(0, dot), 255)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

bool is_hex_group(std::string_view g) {
  if (g.empty() || g.size() > 4) return false;
  for (char c : g) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

// RFC 4291 §2.2 text forms: eight groups, one "::" for a run of zeros, an IPv4 tail.
bool is_ipv6(std::string_view s) {
  size_t dc = s.find("::");
  if (dc != std::string_view::npos && s.find("::", dc + 1) != std::string_view::npos) {
    return false;
  }
  auto count = [](std::string_view part, bool last_part, int* groups) {
    if (part.empty()) return true;
    while (true) {
      size_t c = part.find(':');
      std::string_view g = part.substr(0, c);
      if (c == std::string_view::npos && last_part && g.find('.') != std::string_view::npos) {
        if (!is_ipv4(g)) return false;
        *groups += 2;
        return true;
      }
      if (!is_hex_group(g)) return false;
      ++*groups;
      if (c == std::string_view::npos) return true;
      part.remove_prefix(c + 1);
    }
  };
  int groups = 0;
  if (dc == std::string_view::npos) {
    return count(s, true, &groups) && groups == 8;
  }
  std::string_view head = s.substr(0, dc);
  std::string_view tail = s.substr(dc + 2);
  if (!count(head, false, &groups) || !count(tail, true, &groups)) return false;
  return groups <= 7;
}

}  // namespace

Status check_ip_address(std::string_view s) {
  std::string_view addr = s;
  std::optional<std::string_view> prefix;
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    addr = s.substr(0, slash);
    prefix = s.substr(slash + 1);
  }
  bool v4 = is_ipv4(addr);
  if (!v4 && !is_ipv6(addr)) {
    return err(Errc::kInvalidArgument, "'" + std::string(s) +
                                           "' is not an IPv4 or IPv6 address (optionally with "
                                           "/prefix)");
  }
  if (prefix && !small_decimal(*prefix, v4 ? 32 : 128)) {
    return err(Errc::kInvalidArgument,
               "'" + std::string(s) + "': prefix must be 0.." + (v4 ? "32" : "128"));
  }
  return Status();
}

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> argv;
  size_t i = 0;
  while (i < command.size()) {
    while (i < command.size() && (command[i] == ' ' || command[i] == '\t')) ++i;
    size_t start = i;
    while (i < command.size() && command[i] != ' ' && command[i] != '\t') ++i;
    if (i > start) argv.emplace_back(command.substr(start, i - start));
  }
  return argv;
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

namespace {

Status check_name(const std::string& name, const std::string& path, std::string_view what) {
  if (is_valid_name(name)) return Status();
  return err(Errc::kInvalidArgument, path + ": " + std::string(what) + " '" + name +
                                         "' must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -");
}

// The executor's limit on one action (exec::kMaxTimeoutMs).
constexpr int64_t kMaxOperationMs = int64_t{24} * 3600 * 1000;

Status check_operations(const Resource& r) {
  std::map<std::pair<std::string, int64_t>, size_t> seen;
  for (size_t i = 0; i < r.operations.size(); ++i) {
    const Operation& o = r.operations[i];
    const std::string op = "resources." + r.id + ".operations[" + std::to_string(i) + "]";
    if (o.name != "monitor" && o.name != "start" && o.name != "stop" && o.name != "promote" &&
        o.name != "demote") {
      return err(Errc::kInvalidArgument, op + ".name: unknown operation '" + o.name +
                                             "' (expected monitor, start, stop, promote, demote)");
    }
    if (o.interval_ms < 0 || o.interval_ms > kMaxOperationMs) {
      return err(Errc::kInvalidArgument, op + ".interval: must be 0 .. 24 h");
    }
    if (o.interval_ms > 0 && o.name != "monitor") {
      return err(Errc::kInvalidArgument, op + ".interval: only a monitor recurs");
    }
    if (o.timeout_ms <= 0 || o.timeout_ms > kMaxOperationMs) {
      return err(Errc::kInvalidArgument, op + ".timeout: must be > 0 and at most 24 h");
    }
    if (!o.role.empty() && o.role != "promoted" && o.role != "unpromoted") {
      return err(Errc::kInvalidArgument,
                 op + ".role: unknown role '" + o.role + "' (expected promoted, unpromoted)");
    }
    if (!o.role.empty() && o.name != "monitor") {
      return err(Errc::kInvalidArgument, op + ".role: only for a monitor");
    }
    auto [it, fresh] = seen.insert({{o.name, o.interval_ms}, i});
    if (!fresh) {
      return err(Errc::kInvalidArgument, op + ": duplicate operation " + o.name +
                                             " with interval " + std::to_string(o.interval_ms) +
                                             " ms (also operations[" + std::to_string(it->second) +
                                             "])");
    }
  }
  return Status();
}

// What a location constraint binds: a member binds its group, a clone's primitive its
// clone, anything else itself. Maps the first two; lookups fall back to the id.
std::map<std::string, std::string> placement_units(const ClusterSnapshot& s) {
  std::map<std::string, std::string> unit;
  for (const Group& g : s.groups) {
    for (const std::string& m : g.members) unit.emplace(m, g.id);
  }
  for (const Clone& c : s.clones) unit.emplace(c.resource, c.id);
  return unit;
}

// Node-bound ±INFINITY locations that no placement can satisfy (rules depend on attributes
// that change at runtime, and are left alone).
Status check_locations(const ClusterSnapshot& s) {
  std::set<std::string> clones;
  for (const Clone& c : s.clones) clones.insert(c.id);
  const std::map<std::string, std::string> units = placement_units(s);
  std::map<std::string, std::pair<std::string, std::string>> bound;        // unit → (node, by)
  std::map<std::pair<std::string, std::string>, std::string> plus, minus;  // (unit, node) → by
  for (const LocationConstraint& c : s.locations) {
    if (c.node.empty() || c.role != Role::kStarted) continue;
    if (c.score < kInfinity && c.score > -kInfinity) continue;
    auto u = units.find(c.resource);
    const std::string& unit = u == units.end() ? c.resource : u->second;
    const std::string name =
        "'" + unit + "'" + (unit == c.resource ? "" : " (through '" + c.resource + "')");
    const std::string p = "constraints.location." + c.id;
    auto key = std::make_pair(unit, c.node);
    if (c.score >= kInfinity) {
      if (auto it = minus.find(key); it != minus.end()) {
        return err(Errc::kInvalidArgument, p + ": " + name + " gets +INFINITY on " + c.node +
                                               " here and -INFINITY there from '" + it->second +
                                               "'");
      }
      plus.emplace(key, c.id);
      if (clones.contains(unit)) continue;  // copies run on several nodes
      auto [it, fresh] = bound.insert({unit, {c.node, c.id}});
      if (!fresh && it->second.first != c.node) {
        return err(Errc::kInvalidArgument, p + ": " + name + " is bound to " + c.node +
                                               " here and to " + it->second.first + " by '" +
                                               it->second.second + "' (both +INFINITY)");
      }
    } else {
      if (auto it = plus.find(key); it != plus.end()) {
        return err(Errc::kInvalidArgument, p + ": " + name + " gets -INFINITY on " + c.node +
                                               " here and +INFINITY there from '" + it->second +
                                               "'");
      }
      minus.emplace(key, c.id);
    }
  }
  return Status();
}

// The first cycle of a directed graph, as its vertices with the first repeated at the end;
// empty if there is none. Iterative (a long chain must not exhaust the stack) and
// deterministic (vertices and edges in sorted order).
std::vector<std::string> find_cycle(const std::map<std::string, std::set<std::string>>& edges) {
  std::map<std::string, int> color;  // 0 new, 1 on the stack, 2 done
  for (const auto& [root, unused] : edges) {
    (void)unused;
    if (color[root] != 0) continue;
    struct Frame {
      const std::string* v;
      std::set<std::string>::const_iterator next, end;
    };
    std::vector<Frame> stack;
    auto push = [&](const std::string& v) {
      color[v] = 1;
      auto it = edges.find(v);
      static const std::set<std::string> kNone;
      const std::set<std::string>& out = it == edges.end() ? kNone : it->second;
      stack.push_back(
          {&(it == edges.end() ? color.find(v)->first : it->first), out.begin(), out.end()});
    };
    push(root);
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next == f.end) {
        color[*f.v] = 2;
        stack.pop_back();
        continue;
      }
      const std::string& w = *f.next++;
      int c = color[w];
      if (c == 0) {
        push(w);
      } else if (c == 1) {
        std::vector<std::string> cycle;
        size_t i = 0;
        while (*stack[i].v != w) ++i;
        for (; i < stack.size(); ++i) cycle.push_back(*stack[i].v);
        cycle.push_back(w);
        return cycle;
      }
    }
  }
  return {};
}

std::string join_cycle(const std::vector<std::string>& cycle) {
  std::string out;
  for (const std::string& v : cycle) out += (out.empty() ? "" : " -> ") + v;
  return out;
}

// Mandatory colocations must form chains ("with" is placed first): no cycles, and no pair
// that is both +INFINITY and -INFINITY.
Status check_colocations(const ClusterSnapshot& s) {
  std::map<std::string, std::set<std::string>> with;
  std::map<std::pair<std::string, std::string>, const ColocationConstraint*> pairs;
  for (const ColocationConstraint& c : s.colocations) {
    if (c.score >= kInfinity) with[c.resource].insert(c.with);
    if (c.score < kInfinity && c.score > -kInfinity) continue;
    auto key = std::minmax(c.resource, c.with);
    auto [it, fresh] = pairs.insert({{key.first, key.second}, &c});
    if (!fresh && (it->second->score >= kInfinity) != (c.score >= kInfinity)) {
      return err(Errc::kInvalidArgument,
                 "constraints.colocation." + c.id + ": '" + c.resource + "' and '" + c.with +
                     "' are colocated with " + score_str(c.score) + " here and " +
                     score_str(it->second->score) + " by '" + it->second->id + "'");
    }
  }
  if (auto cycle = find_cycle(with); !cycle.empty()) {
    return err(Errc::kInvalidArgument,
               "constraints.colocation: cycle of +INFINITY colocations " + join_cycle(cycle));
  }
  return Status();
}

// Order constraints (mandatory or optional: either way a cycle cannot be ordered), group
// members (each starts after the one before) and the start before the promote of each
// resource, as one graph of "id" (start) and "id (promote)" vertices.
Status check_order_cycles(const ClusterSnapshot& s) {
  auto vertex = [](const std::string& id, OrderAction a) {
    return a == OrderAction::kPromote ? id + " (promote)" : id;
  };
  std::map<std::string, std::set<std::string>> edges;
  bool promote = false;
  for (const OrderConstraint& c : s.orders) {
    edges[vertex(c.first, c.first_action)].insert(vertex(c.then, c.then_action));
    promote = promote || c.first_action == OrderAction::kPromote ||
              c.then_action == OrderAction::kPromote;
  }
  if (edges.empty()) return Status();
  for (const Group& g : s.groups) {
    for (size_t i = 0; i + 1 < g.members.size(); ++i) edges[g.members[i]].insert(g.members[i + 1]);
  }
  if (promote) {
    for (const OrderConstraint& c : s.orders) {
      for (auto [id, a] :
           {std::pair{&c.first, c.first_action}, std::pair{&c.then, c.then_action}}) {
        if (a == OrderAction::kPromote) edges[*id].insert(vertex(*id, a));
      }
    }
  }
  if (auto cycle = find_cycle(edges); !cycle.empty()) {
    return err(Errc::kInvalidArgument, "constraints.order: cycle " + join_cycle(cycle));
  }
  return Status();
}

}  // namespace

Status validate(const ClusterSnapshot& s) {
  std::set<std::string> nodes;
  for (const Node& n : s.nodes) {
    if (n.name.empty()) return err(Errc::kInvalidArgument, "nodes: a node has no name");
    RETURN_IF_ERROR(check_name(n.name, "nodes." + n.name, "node name"));
    if (!nodes.insert(n.name).second) {
      return err(Errc::kInvalidArgument, "nodes." + n.name + ": duplicate node '" + n.name + "'");
    }
  }
  std::set<std::string> ids;  // resources, groups and clones share one namespace
  std::set<std::string> primitives;
  for (const Resource& r : s.resources) {
    if (r.id.empty()) return err(Errc::kInvalidArgument, "resources: a resource has no id");
    RETURN_IF_ERROR(check_name(r.id, "resources." + r.id, "resource id"));
    if (!ids.insert(r.id).second) {
      return err(Errc::kInvalidArgument, "resources." + r.id + ": duplicate id '" + r.id + "'");
    }
    if (r.meta.migration_threshold < 1) {
      return err(Errc::kInvalidArgument,
                 "resources." + r.id + ".meta.migration_threshold: must be >= 1");
    }
    primitives.insert(r.id);
  }
  for (const Resource& r : s.resources) {
    if (Status a = check_agent_syntax(r.agent); !a.ok()) {
      return err(Errc::kInvalidArgument, "resources." + r.id + ".agent: " + a.message());
    }
    RETURN_IF_ERROR(check_operations(r));
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
    RETURN_IF_ERROR(check_name(g.id, "groups." + g.id, "group id"));
    if (!ids.insert(g.id).second) {
      return err(Errc::kInvalidArgument, "groups." + g.id + ": duplicate id '" + g.id + "'");
    }
    if (g.members.empty()) {
      return err(Errc::kInvalidArgument, "groups." + g.id + ".members: empty");
    }
    for (const std::string& m : g.members) RETURN_IF_ERROR(own(m, "groups." + g.id + ".members"));
  }
  for (const Clone& c : s.clones) {
    RETURN_IF_ERROR(check_name(c.id, "clones." + c.id, "clone id"));
    if (!ids.insert(c.id).second) {
      return err(Errc::kInvalidArgument, "clones." + c.id + ": duplicate id '" + c.id + "'");
    }
    RETURN_IF_ERROR(own(c.resource, "clones." + c.id + ".resource"));
    const std::string cp = "clones." + c.id;
    if (c.clone_max < 0) {
      return err(Errc::kInvalidArgument,
                 cp + ".clone_max: must be >= 0 (0 = one per eligible node)");
    }
    if (c.clone_node_max < 1) {
      return err(Errc::kInvalidArgument, cp + ".clone_node_max: must be >= 1");
    }
    if (c.promotable && c.promoted_max < 1) {
      return err(Errc::kInvalidArgument, cp + ".promoted_max: must be >= 1");
    }
    if (c.promotable && c.clone_max > 0 && c.promoted_max > c.clone_max) {
      return err(Errc::kInvalidArgument, cp + ".promoted_max: " + std::to_string(c.promoted_max) +
                                             " is more than clone_max " +
                                             std::to_string(c.clone_max));
    }
    if (c.promotable && c.clone_node_max != 1) {
      return err(Errc::kInvalidArgument,
                 "clones." + c.id + ".clone_node_max: a promotable clone needs 1");
    }
    // Copies 1.. of the clone run as RESOURCE:1, RESOURCE:2, ... (sched/coordinate.h): no
    // other resource may be called that.
    const std::string inst = c.resource + ":";
    for (auto it = ids.lower_bound(inst); it != ids.end() && it->starts_with(inst); ++it) {
      if (auto n = cluster::clone_copy_number(*it, c.resource)) {
        return err(Errc::kInvalidArgument, cp + ".resource: '" + *it + "' is the name of copy " +
                                               std::to_string(*n) + " of " + c.resource +
                                               " (clone copies run as " + c.resource +
                                               ":N): rename that resource");
      }
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
    RETURN_IF_ERROR(check_name(id, where + "." + id, "constraint id"));
    if (!cids.insert(id).second) {
      return err(Errc::kInvalidArgument,
                 where + "." + id + ": duplicate constraint id '" + id + "'");
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
  RETURN_IF_ERROR(check_locations(s));
  RETURN_IF_ERROR(check_colocations(s));
  RETURN_IF_ERROR(check_order_cycles(s));
  std::set<std::string> fence_ids;
  for (const FenceDevice& f : s.fence_devices) {
    const std::string fp = "fence_devices." + f.id;
    RETURN_IF_ERROR(check_name(f.id, fp, "fence device id"));
    if (!fence_ids.insert(f.id).second) {
      return err(Errc::kInvalidArgument, fp + ": duplicate id '" + f.id + "'");
    }
    if (!f.agent.empty()) {
      if (Status a = check_fence_agent_syntax(f.agent); !a.ok()) {
        return err(Errc::kInvalidArgument, fp + ".agent: " + a.message());
      }
    }
    if (f.level < 1) return err(Errc::kInvalidArgument, fp + ".level: must be >= 1");
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

namespace vigil::cluster {

Status validate_definition(const ClusterSnapshot& s) {
  RETURN_IF_ERROR(validate(s));
  for (const Node& n : s.nodes) {
    if (n.state != NodeState::kOnline && n.state != NodeState::kStandby &&
        n.state != NodeState::kMaintenance) {
      return err(Errc::kInvalidArgument, "nodes." + n.name + ": state '" +
                                             std::string(node_state_name(n.state)) +
                                             "' is runtime state, not part of a definition");
    }
    if (n.hold_expires_ms) {
      return err(Errc::kInvalidArgument,
                 "nodes." + n.name + ": a hold is runtime state, not part of a definition");
    }
  }
  for (const Resource& r : s.resources) {
    if (r.agent == "process") {
      auto it = r.params.find("command");
      if (it == r.params.end()) {
        return err(Errc::kInvalidArgument,
                   "resources." + r.id + ".params: a process resource needs 'command'");
      }
      if (split_command(it->second).empty()) {
        return err(Errc::kInvalidArgument, "resources." + r.id + ".params.command: blank");
      }
    }
    if (r.agent == "vip") {
      auto it = r.params.find("ip");
      if (it == r.params.end()) {
        return err(Errc::kInvalidArgument,
                   "resources." + r.id + ".params: a vip resource needs 'ip'");
      }
      if (Status a = check_ip_address(it->second); !a.ok()) {
        return err(Errc::kInvalidArgument, "resources." + r.id + ".params.ip: " + a.message());
      }
    }
  }
  if (!s.status.empty()) {
    return err(Errc::kInvalidArgument, "status: runtime state, not part of a definition");
  }
  return Status();
}

}  // namespace vigil::cluster

// --- diff_definitions ---------------------------------------------------------------------

namespace vigil::cluster {
namespace {

// A value as the diff prints it: quoted when empty or when it holds a space or a comma.
std::string show(const std::string& v) {
  if (v.empty() || v.find_first_of(" ,\t") != std::string::npos) return "\"" + v + "\"";
  return v;
}

bool is_secret(const std::string& key) {
  std::string k;
  for (char c : key) k += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return k.find("pass") != std::string::npos || k.find("secret") != std::string::npos ||
         k.find("token") != std::string::npos;
}

// The changes of one object, as "field old -> new".
class Changes {
 public:
  template <class T>
  void field(const std::string& name, const T& a, const T& b) {
    if (a != b) add(name, text(a), text(b));
  }
  template <class V>
  void map(const std::string& name, const std::map<std::string, V>& a,
           const std::map<std::string, V>& b, bool mask_secrets = false) {
    auto ia = a.begin();
    auto ib = b.begin();
    while (ia != a.end() || ib != b.end()) {
      if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
        add(name + "." + ia->first, value(ia->first, ia->second, mask_secrets), "unset");
        ++ia;
      } else if (ia == a.end() || ib->first < ia->first) {
        add(name + "." + ib->first, "unset", value(ib->first, ib->second, mask_secrets));
        ++ib;
      } else {
        if (ia->second != ib->second) {
          add(name + "." + ia->first, value(ia->first, ia->second, mask_secrets),
              value(ib->first, ib->second, mask_secrets));
        }
        ++ia, ++ib;
      }
    }
  }
  bool empty() const { return out_.empty(); }
  const std::string& str() const { return out_; }

 private:
  static std::string text(const std::string& v) { return show(v); }
  static std::string text(int64_t v) { return std::to_string(v); }
  static std::string text(int v) { return std::to_string(v); }
  static std::string text(bool v) { return v ? "true" : "false"; }
  static std::string text(const std::vector<std::string>& v) {
    std::string out = "[";
    for (const std::string& s : v) out += (out.size() > 1 ? " " : "") + show(s);
    return out + "]";
  }
  template <class V>
  static std::string value(const std::string& key, const V& v, bool mask) {
    if (mask && is_secret(key)) return "***";
    return text(v);
  }
  void add(const std::string& name, const std::string& a, const std::string& b) {
    out_ += (out_.empty() ? "" : ", ") + name + " " + a + " -> " + b;
  }
  std::string out_;
};

std::string op_text(const Operation& o) {
  std::string s =
      o.name + "/" + std::to_string(o.interval_ms) + "ms/" + std::to_string(o.timeout_ms) + "ms";
  return o.role.empty() ? s : s + "/" + o.role;
}

std::vector<std::string> ops_text(const std::vector<Operation>& ops) {
  std::vector<std::string> out;
  for (const Operation& o : ops) out.push_back(op_text(o));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> rule_text(const LocationConstraint& c) {
  std::vector<std::string> out;
  for (const RuleExpression& e : c.rule) {
    out.push_back(e.attribute + " " + std::string(rule_op_name(e.op)) +
                  (e.value.empty() ? "" : " " + e.value));
  }
  if (!out.empty()) out.insert(out.begin(), c.rule_match_all ? "all:" : "any:");
  return out;
}

void diff_node(const Node& a, const Node& b, Changes& c) {
  c.field("role", std::string(node_role_name(a.role)), std::string(node_role_name(b.role)));
  c.field("state", std::string(node_state_name(a.state)), std::string(node_state_name(b.state)));
  c.map("attributes", a.attributes, b.attributes);
  c.map("capacity", a.capacity, b.capacity);
}

void diff_resource(const Resource& a, const Resource& b, Changes& c) {
  c.field("agent", a.agent, b.agent);
  c.map("params", a.params, b.params, true);
  c.field("operations", ops_text(a.operations), ops_text(b.operations));
  const ResourceMeta& x = a.meta;
  const ResourceMeta& y = b.meta;
  c.field("meta.stickiness", score_str(x.stickiness), score_str(y.stickiness));
  c.field("meta.migration_threshold", score_str(x.migration_threshold),
          score_str(y.migration_threshold));
  c.field("meta.failure_timeout_s", x.failure_timeout_s, y.failure_timeout_s);
  c.field("meta.target_role", std::string(target_role_name(x.target_role)),
          std::string(target_role_name(y.target_role)));
  c.field("meta.priority", x.priority, y.priority);
  c.field("meta.failback", std::string(failback_name(x.failback)),
          std::string(failback_name(y.failback)));
  c.field("meta.exclusive", x.exclusive, y.exclusive);
  c.field("meta.requires", std::string(requires_name(x.require)),
          std::string(requires_name(y.require)));
  c.map("utilization", a.utilization, b.utilization);
}

void diff_group(const Group& a, const Group& b, Changes& c) {
  c.field("members", a.members, b.members);
  c.field("target_role", std::string(target_role_name(a.target_role)),
          std::string(target_role_name(b.target_role)));
  c.field("priority", a.priority, b.priority);
}

void diff_clone(const Clone& a, const Clone& b, Changes& c) {
  c.field("resource", a.resource, b.resource);
  c.field("clone_max", a.clone_max, b.clone_max);
  c.field("clone_node_max", a.clone_node_max, b.clone_node_max);
  c.field("promotable", a.promotable, b.promotable);
  c.field("promoted_max", a.promoted_max, b.promoted_max);
}

void diff_location(const LocationConstraint& a, const LocationConstraint& b, Changes& c) {
  c.field("resource", a.resource, b.resource);
  c.field("score", score_str(a.score), score_str(b.score));
  c.field("node", a.node, b.node);
  c.field("rule", rule_text(a), rule_text(b));
  c.field("role", std::string(role_name(a.role)), std::string(role_name(b.role)));
}

void diff_colocation(const ColocationConstraint& a, const ColocationConstraint& b, Changes& c) {
  c.field("resource", a.resource, b.resource);
  c.field("with", a.with, b.with);
  c.field("score", score_str(a.score), score_str(b.score));
  c.field("resource_role", std::string(role_name(a.resource_role)),
          std::string(role_name(b.resource_role)));
  c.field("with_role", std::string(role_name(a.with_role)), std::string(role_name(b.with_role)));
}

void diff_order(const OrderConstraint& a, const OrderConstraint& b, Changes& c) {
  c.field("first", a.first, b.first);
  c.field("then", a.then, b.then);
  c.field("kind", std::string(order_kind_name(a.kind)), std::string(order_kind_name(b.kind)));
  c.field("first_action", std::string(order_action_name(a.first_action)),
          std::string(order_action_name(b.first_action)));
  c.field("then_action", std::string(order_action_name(a.then_action)),
          std::string(order_action_name(b.then_action)));
  c.field("symmetrical", a.symmetrical, b.symmetrical);
}

void diff_fence(const FenceDevice& a, const FenceDevice& b, Changes& c) {
  c.field("agent", a.agent, b.agent);
  c.map("params", a.params, b.params, true);
  c.field("nodes", a.nodes, b.nodes);
  c.field("level", a.level, b.level);
}

// Objects of one kind matched by id: "+ KIND id[ (note)]", "- KIND id", "~ KIND id: changes".
template <class T, class Id, class Note, class Diff>
void diff_list(const std::vector<T>& before, const std::vector<T>& after, const std::string& kind,
               Id id, Note note, Diff diff, std::vector<std::string>* out) {
  std::map<std::string, const T*> a, b;
  for (const T& x : before) a.emplace(id(x), &x);
  for (const T& x : after) b.emplace(id(x), &x);
  for (const auto& [k, x] : a) {
    if (!b.contains(k)) out->push_back("- " + kind + " " + k);
  }
  for (const auto& [k, y] : b) {
    auto it = a.find(k);
    if (it == a.end()) {
      std::string n = note(*y);
      out->push_back("+ " + kind + " " + k + (n.empty() ? "" : " (" + n + ")"));
      continue;
    }
    Changes c;
    diff(*it->second, *y, c);
    if (!c.empty()) out->push_back("~ " + kind + " " + k + ": " + c.str());
  }
}

}  // namespace

std::vector<std::string> diff_definitions(const ClusterSnapshot& before,
                                          const ClusterSnapshot& after) {
  std::vector<std::string> out;
  auto none = [](const auto&) { return std::string(); };
  auto by_id = [](const auto& x) { return x.id; };
  diff_list(
      before.nodes, after.nodes, "node", [](const Node& n) { return n.name; }, none, diff_node,
      &out);
  diff_list(
      before.resources, after.resources, "resource", by_id,
      [](const Resource& r) { return r.agent; }, diff_resource, &out);
  diff_list(before.groups, after.groups, "group", by_id, none, diff_group, &out);
  diff_list(
      before.clones, after.clones, "clone", by_id,
      [](const Clone& c) {
        return c.promotable ? "promotable, of " + c.resource : "of " + c.resource;
      },
      diff_clone, &out);
  diff_list(before.locations, after.locations, "constraint location", by_id, none, diff_location,
            &out);
  diff_list(before.colocations, after.colocations, "constraint colocation", by_id, none,
            diff_colocation, &out);
  diff_list(before.orders, after.orders, "constraint order", by_id, none, diff_order, &out);
  diff_list(
      before.fence_devices, after.fence_devices, "fence_device", by_id,
      [](const FenceDevice& f) { return f.agent; }, diff_fence, &out);
  std::sort(out.begin(), out.end());
  return out;
}

bool needs_restart(const Resource& a, const Resource& b) {
  return a.agent != b.agent || a.params != b.params;
}

}  // namespace vigil::cluster
