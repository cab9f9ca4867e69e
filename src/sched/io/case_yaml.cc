// input.yaml → ClusterSnapshot with yaml-cpp; every error names file, line and key path.
#include "sched/io/case_yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <map>
#include <set>
#include <sstream>

namespace vigil::sched {
namespace {

using cluster::ClusterSnapshot;

// Inputs larger than this are refused before parsing (a definition is a few KiB).
constexpr size_t kMaxInputBytes = size_t{4} << 20;

// Thrown inside this file only, caught at the entry point: the parser is a tree of small
// functions and every one of them may fail.
struct Failure {
  Status status;
};

// Records where a document starts and ignores its content: counts documents without
// building nodes.
struct DocumentStart : YAML::EventHandler {
  YAML::Mark mark;
  void OnDocumentStart(const YAML::Mark& m) override { mark = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The two formats one reader serves: a scheduler case (runtime state included) and a
// cluster definition (vigil apply -f: no runtime state, strict types, durations, defaults).
enum class Format { kCase, kDefinition };

class Reader {
 public:
  Reader(std::string_view file, Format format) : file_(file), format_(format) {}

  bool definition() const { return format_ == Format::kDefinition; }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& path, const std::string& msg) {
    int line = n.IsDefined() ? n.Mark().line + 1 : 0;
    throw Failure{Status(Errc::kInvalidArgument,
                         file_ + ":" + std::to_string(line) + ": " + path + ": " + msg)};
  }

  void note(const std::string& path, const YAML::Node& n) {
    if (n.IsDefined() && n.Mark().line >= 0) lines_[path] = n.Mark().line + 1;
  }

  // The line recorded for the longest known prefix of `path`.
  int line_of(const std::string& path) const {
    std::string p = path;
    while (!p.empty()) {
      auto it = lines_.find(p);
      if (it != lines_.end()) return it->second;
      size_t cut = p.find_last_of(".[");
      if (cut == std::string::npos) break;
      p.resize(cut);
    }
    return 0;
  }

  const std::string& file() const { return file_; }

  // A mapping whose keys are all in `allowed`, plus `case_only` keys in a case (runtime
  // state: in a definition they are errors that say so) and `definition_only` keys in a
  // definition. A key given twice is an error in both formats.
  void keys(const YAML::Node& n, const std::string& path, std::set<std::string> allowed,
            const std::set<std::string>& case_only = {},
            const std::set<std::string>& definition_only = {}) {
    if (!n.IsMap()) fail(n, path, "expected a mapping");
    const std::set<std::string>& extra = definition() ? definition_only : case_only;
    allowed.insert(extra.begin(), extra.end());
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, path, "a key must be a plain string");
      std::string k = kv.first.Scalar();
      std::string kp = path.empty() ? k : path + "." + k;
      if (definition() && case_only.contains(k)) {
        fail(kv.first, kp,
             std::string("runtime state, not part of a cluster definition") +
                 (k == "state" ? " (use standby: true or maintenance: true)" : ""));
      }
      if (!allowed.contains(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first, kp, "unknown key (expected one of: " + list + ")");
      }
      if (!seen.insert(k).second) fail(kv.first, kp, "duplicate key");
      note(kp, kv.first);
    }
  }

  std::string str(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) fail(n, path, "expected a string");
    note(path, n);
    return n.Scalar();
  }
  // In a definition, numbers and booleans must be plain YAML scalars: a quoted "5" is a
  // string. yaml-cpp tags plain scalars "?" and quoted ones "!".
  std::string plain(const YAML::Node& n, const std::string& path, const char* what) {
    std::string s = str(n, path);
    if (definition() && n.Tag() == "!") {
      fail(n, path, std::string("expected ") + what + ", got the quoted string '" + s + "'");
    }
    return s;
  }
  int64_t integer(const YAML::Node& n, const std::string& path) {
    std::string s = plain(n, path, "an integer");
    int64_t v = 0;
    const char* b = s.data();
    if (!s.empty() && s[0] == '+') ++b;
    auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      fail(n, path, "expected an integer, got '" + s + "'");
    }
    return v;
  }
  int64_t score(const YAML::Node& n, const std::string& path) {
    std::string s = plain(n, path, "a score");
    auto v = cluster::parse_score(s);
    if (!v) fail(n, path, v.error().message());
    return *v;
  }
  bool boolean(const YAML::Node& n, const std::string& path) {
    std::string s = plain(n, path, "true or false");
    if (s == "true") return true;
    if (s == "false") return false;
    if (!definition() && s == "yes") return true;
    if (!definition() && s == "no") return false;
    fail(n, path, "expected true or false, got '" + s + "'");
  }
  // "10s", "500ms", "2m" → milliseconds. A bare number is an error: the unit is not guessed.
  int64_t duration_ms(const YAML::Node& n, const std::string& path) {
    std::string s = plain(n, path, "a duration");
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    std::string_view unit = std::string_view(s).substr(digits);
    int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
    if (digits == 0 || digits > 9 || scale == 0) {
      fail(n, path, "expected a duration like 500ms, 10s or 2m, got '" + s + "'");
    }
    return std::stoll(s.substr(0, digits)) * scale;
  }
  template <class E>
  E enumeration(const YAML::Node& n, const std::string& path,
                Result<E> (*parse)(std::string_view)) {
    std::string s = str(n, path);
    auto v = parse(s);
    if (!v) fail(n, path, v.error().message());
    return *v;
  }
  std::map<std::string, std::string> str_map(const YAML::Node& n, const std::string& path) {
    keys_unique(n, path);
    std::map<std::string, std::string> out;
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      out[k] = str(kv.second, path + "." + k);
    }
    return out;
  }
  std::map<std::string, int64_t> int_map(const YAML::Node& n, const std::string& path) {
    keys_unique(n, path);
    std::map<std::string, int64_t> out;
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      out[k] = integer(kv.second, path + "." + k);
    }
    return out;
  }
  std::vector<std::string> str_list(const YAML::Node& n, const std::string& path) {
    if (!n.IsSequence()) fail(n, path, "expected a list");
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) {
      out.push_back(str(n[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
  }
  // A list of mappings; `id_key` names each element in paths ("resources.web").
  template <class F>
  void list(const YAML::Node& n, const std::string& path, const char* id_key, F&& each) {
    if (!n.IsSequence()) fail(n, path, "expected a list");
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node& item = n[i];
      std::string p = path + "[" + std::to_string(i) + "]";
      if (!item.IsMap()) fail(item, p, "expected a mapping");
      if (item[id_key]) {
        p = path + "." + str(item[id_key], p + "." + id_key);
      } else {
        fail(item, p, std::string("missing key '") + id_key + "'");
      }
      note(p, item);
      each(item, p);
    }
  }

 private:
  // A mapping of free-form keys (params, attributes): plain string keys, none twice.
  void keys_unique(const YAML::Node& n, const std::string& path) {
    if (!n.IsMap()) fail(n, path, "expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, path, "a key must be a plain string");
      if (!seen.insert(kv.first.Scalar()).second) {
        fail(kv.first, path + "." + kv.first.Scalar(), "duplicate key");
      }
    }
  }

  std::string file_;
  Format format_;
  std::map<std::string, int> lines_;
};

cluster::Node read_node(Reader& r, const YAML::Node& n, const std::string& p) {
  r.keys(n, p, {"name", "role", "attributes", "capacity"}, {"state", "hold_expires_ms"},
         {"standby", "maintenance"});
  cluster::Node node;
  node.name = r.str(n["name"], p + ".name");
  if (n["role"]) node.role = r.enumeration(n["role"], p + ".role", cluster::parse_node_role);
  if (n["state"]) node.state = r.enumeration(n["state"], p + ".state", cluster::parse_node_state);
  if (n["attributes"]) node.attributes = r.str_map(n["attributes"], p + ".attributes");
  if (n["capacity"]) node.capacity = r.int_map(n["capacity"], p + ".capacity");
  if (n["hold_expires_ms"])
    node.hold_expires_ms = r.integer(n["hold_expires_ms"], p + ".hold_expires_ms");
  bool standby = n["standby"] && r.boolean(n["standby"], p + ".standby");
  bool maintenance = n["maintenance"] && r.boolean(n["maintenance"], p + ".maintenance");
  if (standby && maintenance) {
    r.fail(n["maintenance"], p + ".maintenance", "a node is either standby or in maintenance");
  }
  if (standby) node.state = cluster::NodeState::kStandby;
  if (maintenance) node.state = cluster::NodeState::kMaintenance;
  return node;
}

// A duration given either as `NAME_ms: 10000` or (both formats) `NAME: 10s`.
void read_duration(Reader& r, const YAML::Node& n, const std::string& p, const std::string& name,
                   int64_t* out) {
  const YAML::Node& human = n[name];
  const YAML::Node& ms = n[name + "_ms"];
  if (human && ms)
    r.fail(ms, p + "." + name + "_ms", "give " + name + " or " + name + "_ms, not both");
  if (human) *out = r.duration_ms(human, p + "." + name);
  if (ms) *out = r.integer(ms, p + "." + name + "_ms");
}

cluster::Operation read_operation(Reader& r, const YAML::Node& n, const std::string& p) {
  r.keys(n, p, {"name", "interval_ms", "timeout_ms", "interval", "timeout", "role"});
  r.note(p, n);
  cluster::Operation o;
  if (!n["name"]) r.fail(n, p, "missing key 'name'");
  o.name = r.str(n["name"], p + ".name");
  read_duration(r, n, p, "interval", &o.interval_ms);
  read_duration(r, n, p, "timeout", &o.timeout_ms);
  if (n["role"]) o.role = r.str(n["role"], p + ".role");
  return o;
}

std::vector<cluster::Operation> read_operations(Reader& r, const YAML::Node& ops,
                                                const std::string& p) {
  if (!ops.IsSequence()) r.fail(ops, p, "expected a list");
  std::vector<cluster::Operation> out;
  for (size_t i = 0; i < ops.size(); ++i) {
    out.push_back(read_operation(r, ops[i], p + "[" + std::to_string(i) + "]"));
  }
  return out;
}

// Sets the fields of `meta` that `m` gives; the others keep their value (the defaults).
void read_meta(Reader& r, const YAML::Node& m, const std::string& mp, cluster::ResourceMeta* meta,
               std::set<std::string> extra_keys = {}) {
  extra_keys.insert({"stickiness", "migration_threshold", "failure_timeout_s", "target_role",
                     "priority", "failback", "exclusive", "requires"});
  r.keys(m, mp, extra_keys);
  if (m["stickiness"]) meta->stickiness = r.score(m["stickiness"], mp + ".stickiness");
  if (m["migration_threshold"]) {
    meta->migration_threshold = r.score(m["migration_threshold"], mp + ".migration_threshold");
    if (meta->migration_threshold < 1) {
      r.fail(m["migration_threshold"], mp + ".migration_threshold", "must be >= 1");
    }
  }
  if (m["failure_timeout_s"]) {
    meta->failure_timeout_s = r.integer(m["failure_timeout_s"], mp + ".failure_timeout_s");
    if (meta->failure_timeout_s < 0) {
      r.fail(m["failure_timeout_s"], mp + ".failure_timeout_s", "must be >= 0 (0 = never)");
    }
  }
  if (m["target_role"]) {
    meta->target_role =
        r.enumeration(m["target_role"], mp + ".target_role", cluster::parse_target_role);
  }
  if (m["priority"]) meta->priority = r.integer(m["priority"], mp + ".priority");
  if (m["failback"]) {
    meta->failback = r.enumeration(m["failback"], mp + ".failback", cluster::parse_failback);
  }
  if (m["exclusive"]) meta->exclusive = r.boolean(m["exclusive"], mp + ".exclusive");
  if (m["requires"]) {
    meta->require = r.enumeration(m["requires"], mp + ".requires", cluster::parse_requires);
  }
}

// What a definition's `defaults:` gives every resource.
struct Defaults {
  cluster::ResourceMeta meta;
  std::vector<cluster::Operation> operations;
};

cluster::Resource read_resource(Reader& r, const YAML::Node& n, const std::string& p,
                                const Defaults& defaults) {
  r.keys(n, p, {"id", "agent", "params", "operations", "meta", "utilization"});
  cluster::Resource res;
  res.id = r.str(n["id"], p + ".id");
  if (!n["agent"]) r.fail(n, p, "missing key 'agent'");
  res.agent = r.str(n["agent"], p + ".agent");
  if (n["params"]) res.params = r.str_map(n["params"], p + ".params");
  if (n["utilization"]) res.utilization = r.int_map(n["utilization"], p + ".utilization");
  if (n["operations"]) res.operations = read_operations(r, n["operations"], p + ".operations");
  // A default operation applies to a resource that lists no operation of that name.
  std::set<std::string> named;
  for (const cluster::Operation& o : res.operations) named.insert(o.name);
  for (const cluster::Operation& o : defaults.operations) {
    if (!named.contains(o.name)) res.operations.push_back(o);
  }
  res.meta = defaults.meta;
  if (const YAML::Node& m = n["meta"]) read_meta(r, m, p + ".meta", &res.meta);
  return res;
}

cluster::LocationConstraint read_location(Reader& r, const YAML::Node& n, const std::string& p) {
  r.keys(n, p, {"id", "resource", "score", "node", "rule", "role"});
  cluster::LocationConstraint c;
  c.id = r.str(n["id"], p + ".id");
  if (!n["resource"]) r.fail(n, p, "missing key 'resource'");
  c.resource = r.str(n["resource"], p + ".resource");
  if (!n["score"]) r.fail(n, p, "missing key 'score'");
  c.score = r.score(n["score"], p + ".score");
  if (n["node"]) c.node = r.str(n["node"], p + ".node");
  if (n["role"]) c.role = r.enumeration(n["role"], p + ".role", cluster::parse_role);
  if (const YAML::Node& rule = n["rule"]) {
    std::string rp = p + ".rule";
    r.keys(rule, rp, {"match", "expressions"});
    if (rule["match"]) {
      std::string m = r.str(rule["match"], rp + ".match");
      if (m != "all" && m != "any") r.fail(rule["match"], rp + ".match", "expected all or any");
      c.rule_match_all = m == "all";
    }
    const YAML::Node& ex = rule["expressions"];
    if (!ex || !ex.IsSequence() || ex.size() == 0) {
      r.fail(ex ? ex : rule, rp + ".expressions", "expected a non-empty list");
    }
    for (size_t i = 0; i < ex.size(); ++i) {
      std::string ep = rp + ".expressions[" + std::to_string(i) + "]";
      r.keys(ex[i], ep, {"attribute", "op", "value"});
      cluster::RuleExpression e;
      if (!ex[i]["attribute"]) r.fail(ex[i], ep, "missing key 'attribute'");
      e.attribute = r.str(ex[i]["attribute"], ep + ".attribute");
      if (ex[i]["op"]) e.op = r.enumeration(ex[i]["op"], ep + ".op", cluster::parse_rule_op);
      bool unary = e.op == cluster::RuleOp::kDefined || e.op == cluster::RuleOp::kNotDefined;
      if (ex[i]["value"]) {
        if (unary) r.fail(ex[i]["value"], ep + ".value", "not allowed with this op");
        e.value = r.str(ex[i]["value"], ep + ".value");
      } else if (!unary) {
        r.fail(ex[i], ep, "missing key 'value'");
      }
      c.rule.push_back(std::move(e));
    }
  }
  return c;
}

cluster::ColocationConstraint read_colocation(Reader& r, const YAML::Node& n,
                                              const std::string& p) {
  r.keys(n, p, {"id", "resource", "with", "score", "resource_role", "with_role"});
  cluster::ColocationConstraint c;
  c.id = r.str(n["id"], p + ".id");
  if (!n["resource"] || !n["with"]) r.fail(n, p, "needs keys 'resource' and 'with'");
  c.resource = r.str(n["resource"], p + ".resource");
  c.with = r.str(n["with"], p + ".with");
  if (n["score"]) c.score = r.score(n["score"], p + ".score");
  if (n["resource_role"]) {
    c.resource_role = r.enumeration(n["resource_role"], p + ".resource_role", cluster::parse_role);
  }
  if (n["with_role"]) {
    c.with_role = r.enumeration(n["with_role"], p + ".with_role", cluster::parse_role);
  }
  return c;
}

cluster::OrderConstraint read_order(Reader& r, const YAML::Node& n, const std::string& p) {
  r.keys(n, p, {"id", "first", "then", "kind", "first_action", "then_action", "symmetrical"});
  cluster::OrderConstraint c;
  c.id = r.str(n["id"], p + ".id");
  if (!n["first"] || !n["then"]) r.fail(n, p, "needs keys 'first' and 'then'");
  c.first = r.str(n["first"], p + ".first");
  c.then = r.str(n["then"], p + ".then");
  if (n["kind"]) c.kind = r.enumeration(n["kind"], p + ".kind", cluster::parse_order_kind);
  if (n["first_action"]) {
    c.first_action =
        r.enumeration(n["first_action"], p + ".first_action", cluster::parse_order_action);
  }
  if (n["then_action"]) {
    c.then_action =
        r.enumeration(n["then_action"], p + ".then_action", cluster::parse_order_action);
  }
  if (n["symmetrical"]) c.symmetrical = r.boolean(n["symmetrical"], p + ".symmetrical");
  return c;
}

Defaults read_defaults(Reader& r, const YAML::Node& d) {
  Defaults out;
  read_meta(r, d, "defaults", &out.meta, {"operations"});
  if (d["operations"]) {
    out.operations = read_operations(r, d["operations"], "defaults.operations");
    std::set<std::pair<std::string, int64_t>> seen;
    for (size_t i = 0; i < out.operations.size(); ++i) {
      const cluster::Operation& o = out.operations[i];
      std::string op = "defaults.operations[" + std::to_string(i) + "]";
      if (!seen.insert({o.name, o.interval_ms}).second) {
        r.fail(d["operations"][i], op,
               "duplicate operation " + o.name + " with interval " + std::to_string(o.interval_ms) +
                   " ms");
      }
      if (o.timeout_ms <= 0) r.fail(d["operations"][i], op + ".timeout", "must be > 0");
    }
  }
  return out;
}

cluster::FenceDevice read_fence_device(Reader& r, const YAML::Node& n, const std::string& p) {
  r.keys(n, p, {"id", "agent", "params", "nodes", "level"});
  cluster::FenceDevice f;
  f.id = r.str(n["id"], p + ".id");
  if (!n["agent"] && r.definition()) r.fail(n, p, "missing key 'agent'");
  if (n["agent"]) f.agent = r.str(n["agent"], p + ".agent");
  if (n["params"]) f.params = r.str_map(n["params"], p + ".params");
  if (!n["nodes"]) r.fail(n, p, "missing key 'nodes'");
  f.nodes = r.str_list(n["nodes"], p + ".nodes");
  if (n["level"]) {
    int64_t level = r.integer(n["level"], p + ".level");
    if (level < 1 || level > 100) r.fail(n["level"], p + ".level", "must be 1..100");
    f.level = static_cast<int>(level);
  }
  return f;
}

ClusterSnapshot read_snapshot(Reader& r, const YAML::Node& root) {
  r.keys(root, "", {"nodes", "resources", "groups", "clones", "constraints", "fence_devices"},
         {"now_ms", "has_quorum", "status"}, {"defaults"});
  ClusterSnapshot s;
  Defaults defaults;
  if (root["defaults"]) defaults = read_defaults(r, root["defaults"]);
  if (root["now_ms"]) s.now_ms = r.integer(root["now_ms"], "now_ms");
  if (root["has_quorum"]) s.has_quorum = r.boolean(root["has_quorum"], "has_quorum");
  if (root["nodes"]) {
    r.list(root["nodes"], "nodes", "name", [&](const YAML::Node& n, const std::string& p) {
      s.nodes.push_back(read_node(r, n, p));
    });
  }
  if (root["resources"]) {
    r.list(root["resources"], "resources", "id", [&](const YAML::Node& n, const std::string& p) {
      s.resources.push_back(read_resource(r, n, p, defaults));
    });
  }
  if (root["groups"]) {
    r.list(root["groups"], "groups", "id", [&](const YAML::Node& n, const std::string& p) {
      r.keys(n, p, {"id", "members", "target_role", "priority"});
      cluster::Group g;
      g.id = r.str(n["id"], p + ".id");
      if (!n["members"]) r.fail(n, p, "missing key 'members'");
      g.members = r.str_list(n["members"], p + ".members");
      if (n["target_role"]) {
        g.target_role =
            r.enumeration(n["target_role"], p + ".target_role", cluster::parse_target_role);
      }
      if (n["priority"]) g.priority = r.integer(n["priority"], p + ".priority");
      s.groups.push_back(std::move(g));
    });
  }
  if (root["clones"]) {
    r.list(root["clones"], "clones", "id", [&](const YAML::Node& n, const std::string& p) {
      r.keys(n, p, {"id", "resource", "clone_max", "clone_node_max", "promotable", "promoted_max"});
      cluster::Clone c;
      c.id = r.str(n["id"], p + ".id");
      if (!n["resource"]) r.fail(n, p, "missing key 'resource'");
      c.resource = r.str(n["resource"], p + ".resource");
      if (n["clone_max"]) c.clone_max = r.integer(n["clone_max"], p + ".clone_max");
      if (n["clone_node_max"])
        c.clone_node_max = r.integer(n["clone_node_max"], p + ".clone_node_max");
      if (n["promotable"]) c.promotable = r.boolean(n["promotable"], p + ".promotable");
      if (n["promoted_max"]) {
        if (!c.promotable)
          r.fail(n["promoted_max"], p + ".promoted_max", "only for a promotable clone");
        c.promoted_max = r.integer(n["promoted_max"], p + ".promoted_max");
      }
      s.clones.push_back(std::move(c));
    });
  }
  if (const YAML::Node& c = root["constraints"]) {
    r.keys(c, "constraints", {"location", "colocation", "order"});
    if (c["location"]) {
      r.list(c["location"], "constraints.location", "id",
             [&](const YAML::Node& n, const std::string& p) {
               s.locations.push_back(read_location(r, n, p));
             });
    }
    if (c["colocation"]) {
      r.list(c["colocation"], "constraints.colocation", "id",
             [&](const YAML::Node& n, const std::string& p) {
               s.colocations.push_back(read_colocation(r, n, p));
             });
    }
    if (c["order"]) {
      r.list(c["order"], "constraints.order", "id", [&](const YAML::Node& n, const std::string& p) {
        s.orders.push_back(read_order(r, n, p));
      });
    }
  }
  if (root["fence_devices"]) {
    r.list(root["fence_devices"], "fence_devices", "id",
           [&](const YAML::Node& n, const std::string& p) {
             s.fence_devices.push_back(read_fence_device(r, n, p));
           });
  }
  if (const YAML::Node& st = root["status"]) {
    if (!st.IsMap()) r.fail(st, "status", "expected a mapping: resource → node → state");
    for (const auto& rkv : st) {
      std::string rid = rkv.first.as<std::string>();
      std::string rp = "status." + rid;
      r.note(rp, rkv.first);
      if (!rkv.second.IsMap()) r.fail(rkv.second, rp, "expected a mapping: node → state");
      for (const auto& nkv : rkv.second) {
        std::string node = nkv.first.as<std::string>();
        std::string np = rp + "." + node;
        const YAML::Node& v = nkv.second;
        r.note(np, nkv.first);
        r.keys(v, np,
               {"running", "role", "copies", "failed", "restart", "fail_count", "last_failure_ms",
                "promotion_score"});
        cluster::ResourceState rs;
        if (v["running"]) rs.running = r.boolean(v["running"], np + ".running");
        if (v["role"]) rs.role = r.enumeration(v["role"], np + ".role", cluster::parse_role);
        if (v["copies"]) rs.copies = r.integer(v["copies"], np + ".copies");
        if (v["failed"]) rs.failed = r.boolean(v["failed"], np + ".failed");
        if (v["restart"]) rs.restart = r.boolean(v["restart"], np + ".restart");
        if (v["fail_count"]) rs.fail_count = r.score(v["fail_count"], np + ".fail_count");
        if (v["last_failure_ms"]) {
          rs.last_failure_ms = r.integer(v["last_failure_ms"], np + ".last_failure_ms");
        }
        if (v["promotion_score"]) {
          rs.promotion_score = r.score(v["promotion_score"], np + ".promotion_score");
        }
        if (rs.copies < 1) r.fail(v["copies"], np + ".copies", "must be >= 1");
        s.status[rid][node] = rs;
      }
    }
  }
  return s;
}

// Both entry points: YAML → snapshot → validation, every error as "FILE:LINE: path: what".
Result<ClusterSnapshot> parse(std::string_view text, std::string_view file, Format format,
                              const ParamCheck* check = nullptr) {
  const std::string f(file);
  if (text.size() > kMaxInputBytes) {
    return err(Errc::kInvalidArgument,
               f + ":1: larger than " + std::to_string(kMaxInputBytes >> 20) + " MiB");
  }
  Reader r(file, format);
  ClusterSnapshot s;
  try {
    // Not YAML::LoadAll: yaml-cpp 0.7 loops forever on a stray top-level ',' (each call
    // returns the same empty document without consuming it). Count documents with the
    // parser, at most two calls, then load the first.
    const std::string owned(text);
    std::istringstream in(owned);
    YAML::Parser parser(in);
    DocumentStart first, second;
    if (parser.HandleNextDocument(first) && parser.HandleNextDocument(second)) {
      if (second.mark.pos <= first.mark.pos) {
        return err(Errc::kInvalidArgument,
                   f + ":" + std::to_string(second.mark.line + 1) +
                       ": unexpected ',' outside a flow collection ([...] or {...})");
      }
      return err(Errc::kInvalidArgument, f + ":" + std::to_string(second.mark.line + 1) +
                                             ": one YAML document per file (found a second one)");
    }
    YAML::Node doc = YAML::Load(owned);
    if (!doc || doc.IsNull()) return err(Errc::kInvalidArgument, f + ":1: empty input");
    s = read_snapshot(r, doc);
  } catch (const Failure& fail) {
    return std::unexpected(fail.status);
  } catch (const YAML::Exception& e) {
    return err(Errc::kInvalidArgument, f + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Status v = format == Format::kDefinition ? cluster::validate_definition(s) : cluster::validate(s);
  if (v.ok() && check != nullptr && *check) {
    // The agent's own parameter rules ("params.ip: ..."), under the resource's path.
    for (const auto& res : s.resources) {
      Status c = (*check)(res);
      if (!c.ok()) {
        v = err(Errc::kInvalidArgument, "resources." + res.id + "." + c.message());
        break;
      }
    }
  }
  if (!v.ok()) {
    // validate() names a key path first ("constraints.location.x.resource: ..."): find
    // the line it was read from. Paths hold no spaces (ids may hold ':').
    const std::string& m = v.message();
    std::string path = m.substr(0, m.find(": "));
    return err(Errc::kInvalidArgument, f + ":" + std::to_string(r.line_of(path)) + ": " + m);
  }
  return s;
}

}  // namespace

Result<ClusterSnapshot> parse_snapshot_yaml(std::string_view text, std::string_view file) {
  return parse(text, file, Format::kCase);
}

Result<ClusterSnapshot> parse_cluster_yaml(std::string_view text, std::string_view file,
                                           const ParamCheck& check) {
  return parse(text, file, Format::kDefinition, &check);
}

}  // namespace vigil::sched
