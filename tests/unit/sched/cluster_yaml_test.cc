// The cluster definition reader (parse_cluster_yaml), the definition checks of
// cluster::validate() and the definition diff: every error class with its exact message.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cluster/model.h"
#include "sched/io/case_yaml.h"

namespace vigil::sched {
namespace {

using cluster::ClusterSnapshot;

ClusterSnapshot ok(const std::string& yaml) {
  auto s = parse_cluster_yaml(yaml, "c.yaml");
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return s ? *s : ClusterSnapshot{};
}

// The error message of a definition that must be rejected.
std::string error(const std::string& yaml) {
  auto s = parse_cluster_yaml(yaml, "c.yaml");
  if (s) return "(accepted)";
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument);
  return s.error().message();
}

constexpr const char* kNodes = "nodes: [{name: n1}, {name: n2}]\n";

TEST(ClusterYaml, ExampleParses) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/examples/cluster.yaml");
  ASSERT_TRUE(in) << "examples/cluster.yaml not found";
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = parse_cluster_yaml(ss.str(), "examples/cluster.yaml");
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->nodes.size(), 3u);
  EXPECT_EQ(s->nodes[2].state, cluster::NodeState::kStandby);
  EXPECT_EQ(s->resources.size(), 5u);
  EXPECT_EQ(s->fence_devices.back().level, 2);
  EXPECT_TRUE(cluster::diff_definitions(*s, *s).empty());
}

TEST(ClusterYaml, MinimalDefinition) {
  auto s = ok(std::string(kNodes) + R"(
resources:
  - {id: web, agent: "ocf:heartbeat:nginx", params: {port: 8080}}
)");
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].state, cluster::NodeState::kOnline);
  ASSERT_EQ(s.resources.size(), 1u);
  EXPECT_EQ(s.resources[0].params.at("port"), "8080");
  EXPECT_TRUE(s.resources[0].operations.empty());
}

TEST(ClusterYaml, EmptyInput) {
  EXPECT_EQ(error(""), "c.yaml:1: empty input");
  EXPECT_EQ(error("# nothing\n"), "c.yaml:1: empty input");
}

TEST(ClusterYaml, OneDocumentOnly) {
  EXPECT_EQ(error("nodes: [{name: n1}]\n---\nnodes: []\n"),
            "c.yaml:2: one YAML document per file (found a second one)");
}

// yaml-cpp 0.7's LoadAll never returns on a stray top-level ','; the reader must.
TEST(ClusterYaml, StrayCommaIsAnError) {
  EXPECT_EQ(error(","), "c.yaml:1: unexpected ',' outside a flow collection ([...] or {...})");
  EXPECT_EQ(error("nodes: [{name: n1}]\n,\n").substr(0, 7), "c.yaml:");
}

TEST(ClusterYaml, SyntaxErrorNamesLine) {
  EXPECT_EQ(error("nodes:\n  - {name: n1\n"), "c.yaml:3: end of map flow not found");
}

TEST(ClusterYaml, TooLarge) {
  EXPECT_EQ(error(std::string((4 << 20) + 1, '#')), "c.yaml:1: larger than 4 MiB");
}

TEST(ClusterYaml, RuntimeKeysAreErrors) {
  EXPECT_EQ(error("now_ms: 5\n"),
            "c.yaml:1: now_ms: runtime state, not part of a cluster "
            "definition");
  EXPECT_EQ(error("has_quorum: true\n"),
            "c.yaml:1: has_quorum: runtime state, not part of a cluster definition");
  EXPECT_EQ(error("nodes: [{name: n1}]\nstatus: {}\n"),
            "c.yaml:2: status: runtime state, not part of a cluster definition");
  EXPECT_EQ(error("nodes:\n  - {name: n1, state: standby}\n"),
            "c.yaml:2: nodes.n1.state: runtime state, not part of a cluster definition (use "
            "standby: true or maintenance: true)");
  EXPECT_EQ(error("nodes:\n  - {name: n1, hold_expires_ms: 5}\n"),
            "c.yaml:2: nodes.n1.hold_expires_ms: runtime state, not part of a cluster "
            "definition");
}

TEST(ClusterYaml, CaseFormatKeepsRuntimeKeysAndRefusesDefinitionKeys) {
  auto s = parse_snapshot_yaml("now_ms: 5\nnodes: [{name: n1, state: standby}]\n", "i.yaml");
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->nodes[0].state, cluster::NodeState::kStandby);
  auto d = parse_snapshot_yaml("defaults: {stickiness: 1}\n", "i.yaml");
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().message(),
            "i.yaml:1: defaults: unknown key (expected one of: clones, constraints, "
            "fence_devices, groups, has_quorum, nodes, now_ms, resources, status)");
  auto f = parse_snapshot_yaml("nodes: [{name: n1, standby: true}]\n", "i.yaml");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().message(),
            "i.yaml:1: nodes.n1.standby: unknown key (expected one of: attributes, capacity, "
            "hold_expires_ms, name, role, state)");
}

TEST(ClusterYaml, UnknownKeyListsTheAllowedOnes) {
  EXPECT_EQ(error("nodes:\n  - {name: n1, standy: true}\n"),
            "c.yaml:2: nodes.n1.standy: unknown key (expected one of: attributes, capacity, "
            "maintenance, name, role, standby)");
  EXPECT_EQ(error("resource: []\n"),
            "c.yaml:1: resource: unknown key (expected one of: clones, constraints, defaults, "
            "fence_devices, groups, nodes, resources)");
}

TEST(ClusterYaml, DuplicateKey) {
  EXPECT_EQ(error("nodes:\n  - name: n1\n    role: voter\n    role: learner\n"),
            "c.yaml:4: nodes.n1.role: duplicate key");
  EXPECT_EQ(
      error(std::string(kNodes) +
            "resources:\n  - id: a\n    agent: vip\n    params: {ip: 10.0.0.1, ip: 10.0.0.2}\n"),
      "c.yaml:5: resources.a.params.ip: duplicate key");
}

TEST(ClusterYaml, NodeFlags) {
  auto s = ok(R"(
nodes:
  - {name: n1, standby: true}
  - {name: n2, maintenance: true}
  - {name: n3, standby: false, maintenance: false, role: witness}
)");
  EXPECT_EQ(s.nodes[0].state, cluster::NodeState::kStandby);
  EXPECT_EQ(s.nodes[1].state, cluster::NodeState::kMaintenance);
  EXPECT_EQ(s.nodes[2].state, cluster::NodeState::kOnline);
  EXPECT_EQ(s.nodes[2].role, cluster::NodeRole::kWitness);
  EXPECT_EQ(error("nodes:\n  - {name: n1, standby: true, maintenance: true}\n"),
            "c.yaml:2: nodes.n1.maintenance: a node is either standby or in maintenance");
}

TEST(ClusterYaml, StrictTypes) {
  EXPECT_EQ(error("nodes:\n  - {name: n1, standby: yes}\n"),
            "c.yaml:2: nodes.n1.standby: expected true or false, got 'yes'");
  EXPECT_EQ(error("nodes:\n  - {name: n1, standby: \"true\"}\n"),
            "c.yaml:2: nodes.n1.standby: expected true or false, got the quoted string 'true'");
  EXPECT_EQ(error("nodes:\n  - {name: n1, capacity: {cpu: \"8\"}}\n"),
            "c.yaml:2: nodes.n1.capacity.cpu: expected an integer, got the quoted string '8'");
  EXPECT_EQ(error("nodes:\n  - {name: n1, capacity: {cpu: 8.5}}\n"),
            "c.yaml:2: nodes.n1.capacity.cpu: expected an integer, got '8.5'");
  EXPECT_EQ(error("nodes:\n  - {name: n1, attributes: {rack: [a]}}\n"),
            "c.yaml:2: nodes.n1.attributes.rack: expected a string");
  EXPECT_EQ(error("nodes: {n1: {}}\n"), "c.yaml:1: nodes: expected a list");
  EXPECT_EQ(error("nodes:\n  - {role: voter}\n"), "c.yaml:2: nodes[0]: missing key 'name'");
  // The case format stays lenient, as its cases were written.
  EXPECT_TRUE(parse_snapshot_yaml("nodes: [{name: n1}]\nhas_quorum: yes\n", "i.yaml"));
}

TEST(ClusterYaml, NamesCharset) {
  EXPECT_EQ(error("nodes:\n  - {name: \"n 1\"}\n"),
            "c.yaml:2: nodes.n 1: node name 'n 1' must be 1-128 characters of A-Z a-z 0-9 _ . "
            ": @ + -");
  EXPECT_EQ(error(std::string(kNodes) + "resources:\n  - {id: web/1, agent: vip}\n"),
            "c.yaml:3: resources.web/1: resource id 'web/1' must be 1-128 characters of A-Z "
            "a-z 0-9 _ . : @ + -");
  EXPECT_EQ(error("nodes:\n  - {name: " + std::string(129, 'n') + "}\n").substr(0, 17),
            "c.yaml:2: nodes.n");
  // Every allowed character, and ids with ':' still find their line.
  auto s = ok(std::string(kNodes) +
              "resources:\n  - {id: \"a-Z_0.9:x@y+z\", agent: vip, params: {ip: 10.0.0.1}}\n");
  EXPECT_EQ(s.resources.at(0).id, "a-Z_0.9:x@y+z");
  EXPECT_EQ(error(std::string(kNodes) + "resources:\n  - {id: \"web:1\", agent: vip}\n"),
            "c.yaml:3: resources.web:1.params: a vip resource needs 'ip'");
}

TEST(ClusterYaml, AgentSyntax) {
  auto agent_error = [](const std::string& agent) {
    return error(std::string(kNodes) + "resources:\n  - {id: r, agent: \"" + agent +
                 "\", params: {command: x, ip: 10.0.0.1}}\n");
  };
  for (const char* good : {"ocf:heartbeat:nginx", "lsb:foo", "systemd:nginx.service", "process",
                           "vip", "ocf:vigil:a-b_c.d"}) {
    EXPECT_EQ(agent_error(good), "(accepted)") << good;
  }
  EXPECT_EQ(agent_error("ocf:heartbeat"),
            "c.yaml:3: resources.r.agent: agent 'ocf:heartbeat': want ocf:PROVIDER:TYPE");
  EXPECT_EQ(agent_error("ocf:a:b:c"),
            "c.yaml:3: resources.r.agent: agent 'ocf:a:b:c': want ocf:PROVIDER:TYPE");
  EXPECT_EQ(agent_error("ocf::nginx"),
            "c.yaml:3: resources.r.agent: agent 'ocf::nginx': missing provider");
  EXPECT_EQ(agent_error("ocf:heartbeat:.."),
            "c.yaml:3: resources.r.agent: agent 'ocf:heartbeat:..': type is not a plain file "
            "name");
  EXPECT_EQ(agent_error("lsb:../../bin/sh"),
            "c.yaml:3: resources.r.agent: agent 'lsb:../../bin/sh': name '../../bin/sh' is not "
            "a plain file name (no '/', spaces or control characters)");
  EXPECT_EQ(agent_error("systemd:"), "c.yaml:3: resources.r.agent: agent 'systemd:': missing unit");
  EXPECT_EQ(agent_error("lsb"), "c.yaml:3: resources.r.agent: agent 'lsb': want lsb:NAME");
  EXPECT_EQ(agent_error("process:x"),
            "c.yaml:3: resources.r.agent: agent 'process:x': 'process' takes no ':' suffix");
  EXPECT_EQ(agent_error("fence_ipmilan"),
            "c.yaml:3: resources.r.agent: agent 'fence_ipmilan': fence agents belong in "
            "fence_devices, not resources");
  EXPECT_EQ(agent_error("docker:nginx"),
            "c.yaml:3: resources.r.agent: agent 'docker:nginx': unknown agent (want "
            "ocf:PROVIDER:TYPE, lsb:NAME, systemd:UNIT, process or vip)");
}

TEST(ClusterYaml, ProcessNeedsCommand) {
  auto s = ok(std::string(kNodes) + R"(
resources:
  - id: http
    agent: process
    params: {command: "/usr/bin/python3  -m http.server	8080"}
)");
  EXPECT_EQ(cluster::split_command(s.resources[0].params.at("command")),
            (std::vector<std::string>{"/usr/bin/python3", "-m", "http.server", "8080"}));
  EXPECT_EQ(error(std::string(kNodes) + "resources:\n  - {id: p, agent: process}\n"),
            "c.yaml:3: resources.p.params: a process resource needs 'command'");
  EXPECT_EQ(error(std::string(kNodes) +
                  "resources:\n  - id: p\n    agent: process\n    params: {command: \"  \"}\n"),
            "c.yaml:5: resources.p.params.command: blank");
}

TEST(ClusterYaml, VipNeedsAnAddress) {
  auto vip_error = [](const std::string& ip) {
    return error(std::string(kNodes) +
                 "resources:\n  - id: v\n    agent: vip\n    params: {ip: \"" + ip + "\"}\n");
  };
  for (const char* good :
       {"198.18.0.100", "198.18.0.100/24", "0.0.0.0/0", "fd00::10", "fd00::10/64", "::", "::1",
        "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::ffff:10.0.0.1", "FE80::ABCD/128"}) {
    EXPECT_EQ(vip_error(good), "(accepted)") << good;
  }
  for (const char* bad : {"198.18.0", "198.18.0.256", "198.018.0.1", "1.2.3.4.5", "a.b.c.d",
                          "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "12345::", "fe80::1%eth0",
                          "1:2:3:4:5:6:7", "localhost", "", "10.0.0.1:80"}) {
    EXPECT_EQ(vip_error(bad), "c.yaml:5: resources.v.params.ip: '" + std::string(bad) +
                                  "' is not an IPv4 or IPv6 address (optionally with /prefix)")
        << bad;
  }
  EXPECT_EQ(vip_error("10.0.0.1/33"),
            "c.yaml:5: resources.v.params.ip: '10.0.0.1/33': prefix "
            "must be 0..32");
  EXPECT_EQ(vip_error("fd00::1/129"),
            "c.yaml:5: resources.v.params.ip: 'fd00::1/129': prefix "
            "must be 0..128");
  EXPECT_EQ(vip_error("10.0.0.1/"),
            "c.yaml:5: resources.v.params.ip: '10.0.0.1/': prefix must "
            "be 0..32");
  EXPECT_EQ(error(std::string(kNodes) + "resources:\n  - {id: v, agent: vip}\n"),
            "c.yaml:3: resources.v.params: a vip resource needs 'ip'");
}

TEST(ClusterYaml, Durations) {
  auto s = ok(std::string(kNodes) + R"(
resources:
  - id: web
    agent: "ocf:heartbeat:nginx"
    operations:
      - {name: monitor, interval: 10s, timeout: 20s}
      - {name: start, timeout: 2m}
      - {name: stop, timeout_ms: 1500}
      - {name: monitor, interval: 500ms, timeout: 1s}
)");
  const auto& ops = s.resources[0].operations;
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].interval_ms, 10000);
  EXPECT_EQ(ops[0].timeout_ms, 20000);
  EXPECT_EQ(ops[1].interval_ms, 0);
  EXPECT_EQ(ops[1].timeout_ms, 120000);
  EXPECT_EQ(ops[2].timeout_ms, 1500);
  EXPECT_EQ(ops[3].interval_ms, 500);
  auto op_error = [](const std::string& op) {
    return error(std::string(kNodes) + "resources:\n  - id: web\n    agent: vip\n" +
                 "    params: {ip: 10.0.0.1}\n    operations:\n      - " + op + "\n");
  };
  EXPECT_EQ(op_error("{name: monitor, interval: 10}"),
            "c.yaml:7: resources.web.operations[0].interval: expected a duration like 500ms, "
            "10s or 2m, got '10'");
  EXPECT_EQ(op_error("{name: monitor, interval: 10h}"),
            "c.yaml:7: resources.web.operations[0].interval: expected a duration like 500ms, "
            "10s or 2m, got '10h'");
  EXPECT_EQ(op_error("{name: monitor, interval: -1s}"),
            "c.yaml:7: resources.web.operations[0].interval: expected a duration like 500ms, "
            "10s or 2m, got '-1s'");
  EXPECT_EQ(op_error("{name: monitor, interval: 10s, interval_ms: 10000}"),
            "c.yaml:7: resources.web.operations[0].interval_ms: give interval or interval_ms, "
            "not both");
  EXPECT_EQ(op_error("{name: monitor, timeout: 1s, timeout_ms: 1000}"),
            "c.yaml:7: resources.web.operations[0].timeout_ms: give timeout or timeout_ms, not "
            "both");
  EXPECT_EQ(op_error("{interval: 1s}"),
            "c.yaml:7: resources.web.operations[0]: missing key 'name'");
}

TEST(ClusterYaml, Defaults) {
  auto s = ok(std::string(kNodes) + R"(
defaults:
  stickiness: 100
  migration_threshold: 3
  failure_timeout_s: 60
  priority: 5
  failback: stay
  exclusive: true
  requires: quorum
  operations:
    - {name: monitor, interval: 10s, timeout: 20s}
    - {name: stop, timeout: 1m}
resources:
  - {id: a, agent: "lsb:a"}
  - id: b
    agent: "lsb:b"
    meta: {stickiness: 0, exclusive: false, target_role: stopped}
    operations:
      - {name: monitor, interval: 5s}
)");
  const auto& a = s.resources[0];
  EXPECT_EQ(a.meta.stickiness, 100);
  EXPECT_EQ(a.meta.migration_threshold, 3);
  EXPECT_EQ(a.meta.failure_timeout_s, 60);
  EXPECT_EQ(a.meta.priority, 5);
  EXPECT_EQ(a.meta.failback, cluster::Failback::kStay);
  EXPECT_TRUE(a.meta.exclusive);
  EXPECT_EQ(a.meta.require, cluster::Requires::kQuorum);
  EXPECT_EQ(a.meta.target_role, cluster::TargetRole::kStarted);
  ASSERT_EQ(a.operations.size(), 2u);
  EXPECT_EQ(a.operations[0].name, "monitor");
  EXPECT_EQ(a.operations[0].interval_ms, 10000);
  EXPECT_EQ(a.operations[1].name, "stop");
  EXPECT_EQ(a.operations[1].timeout_ms, 60000);
  const auto& b = s.resources[1];
  EXPECT_EQ(b.meta.stickiness, 0);
  EXPECT_FALSE(b.meta.exclusive);
  EXPECT_EQ(b.meta.migration_threshold, 3);
  EXPECT_EQ(b.meta.target_role, cluster::TargetRole::kStopped);
  // b lists a monitor, so only the default stop is added.
  ASSERT_EQ(b.operations.size(), 2u);
  EXPECT_EQ(b.operations[0].interval_ms, 5000);
  EXPECT_EQ(b.operations[0].timeout_ms, 20000);
  EXPECT_EQ(b.operations[1].name, "stop");

  EXPECT_EQ(error("defaults: {stickyness: 1}\n"),
            "c.yaml:1: defaults.stickyness: unknown key (expected one of: exclusive, failback, "
            "failure_timeout_s, migration_threshold, operations, priority, requires, "
            "stickiness, target_role)");
  EXPECT_EQ(error("defaults: {migration_threshold: 0}\n"),
            "c.yaml:1: defaults.migration_threshold: must be >= 1");
  EXPECT_EQ(error("defaults:\n  operations:\n    - {name: monitor, interval: 1s}\n"
                  "    - {name: monitor, interval: 1000ms}\n"),
            "c.yaml:4: defaults.operations[1]: duplicate operation monitor with interval 1000 "
            "ms");
  EXPECT_EQ(error("defaults:\n  operations:\n    - {name: stop, timeout: 0s}\n"),
            "c.yaml:3: defaults.operations[0].timeout: must be > 0");
}

TEST(ClusterYaml, FenceDevices) {
  auto s = ok(R"(
nodes: [{name: n1}, {name: n2}]
fence_devices:
  - id: ipmi-n1
    agent: fence_ipmilan
    params: {ip: 10.1.0.1, username: admin, password: secret, lanplus: 1}
    nodes: [n1]
  - {id: pdu, agent: fence_apc, level: 2, nodes: [n1, n2], params: {plug: "3"}}
)");
  ASSERT_EQ(s.fence_devices.size(), 2u);
  EXPECT_EQ(s.fence_devices[0].level, 1);
  EXPECT_EQ(s.fence_devices[0].params.at("username"), "admin");
  EXPECT_EQ(s.fence_devices[0].params.at("lanplus"), "1");
  EXPECT_EQ(s.fence_devices[1].level, 2);
  EXPECT_EQ(s.fence_devices[1].params.at("plug"), "3");
  EXPECT_EQ(error("nodes: [{name: n1}]\nfence_devices:\n  - {id: f, nodes: [n1]}\n"),
            "c.yaml:3: fence_devices.f: missing key 'agent'");
  EXPECT_EQ(
      error("nodes: [{name: n1}]\nfence_devices:\n  - {id: f, agent: x, nodes: [n1], level: 0}\n"),
      "c.yaml:3: fence_devices.f.level: must be 1..100");
  EXPECT_EQ(error("nodes: [{name: n1}]\nfence_devices:\n  - {id: f, agent: x, nodes: [n2]}\n"),
            "c.yaml:3: fence_devices.f.nodes: unknown node 'n2'");
  EXPECT_EQ(error("nodes: [{name: n1}]\nfence_devices:\n  - {id: f, agent: ../x, nodes: [n1]}\n"),
            "c.yaml:3: fence_devices.f.agent: agent '../x': fence agent name '../x' is not a "
            "plain file name (no '/', spaces or control characters)");
  // The case format reads params and level too, and still takes a device without agent.
  auto c = parse_snapshot_yaml(
      "nodes: [{name: n1}]\nfence_devices:\n  - {id: f, nodes: [n1], level: 3, params: {a: b}}\n",
      "i.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->fence_devices[0].level, 3);
  EXPECT_EQ(c->fence_devices[0].params.at("a"), "b");
}

// Three resources a, b, c on n1, n2 and the given constraints (a YAML block under
// `constraints:`, from line 7).
std::string with_constraints(const std::string& constraints, const std::string& extra = "") {
  return "nodes: [{name: n1}, {name: n2}]\n"
         "resources:\n"
         "  - {id: a, agent: \"lsb:a\"}\n"
         "  - {id: b, agent: \"lsb:b\"}\n"
         "  - {id: c, agent: \"lsb:c\"}\n" +
         extra + "constraints:\n" + constraints;
}

TEST(ClusterValidate, OrderCycle) {
  EXPECT_EQ(error(with_constraints("  order:\n"
                                   "    - {id: o1, first: a, then: b}\n"
                                   "    - {id: o2, first: b, then: c}\n"
                                   "    - {id: o3, first: c, then: a, kind: optional}\n")),
            "c.yaml:7: constraints.order: cycle a -> b -> c -> a");
  EXPECT_EQ(error(with_constraints("  order:\n    - {id: o1, first: a, then: a}\n")),
            "c.yaml:8: constraints.order.o1: a resource ordered after itself");
  // A chain is fine.
  ok(
      with_constraints("  order:\n    - {id: o1, first: a, then: b}\n"
                       "    - {id: o2, first: a, then: c}\n    - {id: o3, first: b, then: c}\n"));
}

TEST(ClusterValidate, OrderCycleThroughGroupAndPromote) {
  // Group g starts a before b; an order asks for b before a.
  EXPECT_EQ(error(with_constraints("  order:\n    - {id: o1, first: b, then: a}\n",
                                   "groups:\n  - {id: g, members: [a, b]}\n")),
            "c.yaml:9: constraints.order: cycle a -> b -> a");
  // b's promote waits for a's start, a's start for b's start: fine. But a's start waiting
  // for b's promote while b's start waits for a's start is a cycle through b's start → b's
  // promote.
  ok(
      with_constraints("  order:\n"
                       "    - {id: o1, first: b, then: a}\n"
                       "    - {id: o2, first: a, then: b, then_action: promote}\n"));
  EXPECT_EQ(error(with_constraints("  order:\n"
                                   "    - {id: o1, first: b, first_action: promote, then: a}\n"
                                   "    - {id: o2, first: a, then: b}\n")),
            "c.yaml:7: constraints.order: cycle a -> b -> b (promote) -> a");
}

TEST(ClusterValidate, LocationsThatCannotHold) {
  EXPECT_EQ(error(with_constraints("  location:\n"
                                   "    - {id: l1, resource: a, node: n1, score: INFINITY}\n"
                                   "    - {id: l2, resource: a, node: n2, score: INFINITY}\n")),
            "c.yaml:9: constraints.location.l2: 'a' is bound to n2 here and to n1 by 'l1' (both "
            "+INFINITY)");
  // Through a group: the member and the group are placed together.
  EXPECT_EQ(error(with_constraints("  location:\n"
                                   "    - {id: l1, resource: g, node: n1, score: INFINITY}\n"
                                   "    - {id: l2, resource: b, node: n2, score: INFINITY}\n",
                                   "groups:\n  - {id: g, members: [a, b]}\n")),
            "c.yaml:11: constraints.location.l2: 'g' (through 'b') is bound to n2 here and to n1 "
            "by 'l1' (both "
            "+INFINITY)");
  EXPECT_EQ(error(with_constraints("  location:\n"
                                   "    - {id: l1, resource: a, node: n1, score: -INFINITY}\n"
                                   "    - {id: l2, resource: a, node: n1, score: INFINITY}\n")),
            "c.yaml:9: constraints.location.l2: 'a' gets +INFINITY on n1 here and -INFINITY there "
            "from 'l1'");
  EXPECT_EQ(error(with_constraints("  location:\n"
                                   "    - {id: l1, resource: a, node: n1, score: INFINITY}\n"
                                   "    - {id: l2, resource: a, node: n1, score: -INFINITY}\n")),
            "c.yaml:9: constraints.location.l2: 'a' gets -INFINITY on n1 here and +INFINITY there "
            "from 'l1'");
  EXPECT_EQ(error(with_constraints("  location:\n"
                                   "    - {id: l1, resource: a, node: n3, score: 100}\n")),
            "c.yaml:8: constraints.location.l1.node: unknown node 'n3'");
  // A clone may be bound to several nodes; finite scores never conflict; neither do
  // promotion scores.
  ok(
      with_constraints("  location:\n"
                       "    - {id: l1, resource: ca, node: n1, score: INFINITY}\n"
                       "    - {id: l2, resource: a, node: n2, score: INFINITY}\n"
                       "    - {id: l3, resource: b, node: n1, score: 100}\n"
                       "    - {id: l4, resource: b, node: n2, score: 200}\n"
                       "    - {id: l5, resource: b, node: n2, score: INFINITY, role: promoted}\n"
                       "    - {id: l6, resource: b, node: n1, score: INFINITY}\n",
                       "clones:\n  - {id: ca, resource: a}\n"));
}

TEST(ClusterValidate, Colocations) {
  EXPECT_EQ(error(with_constraints("  colocation:\n"
                                   "    - {id: c1, resource: a, with: b}\n"
                                   "    - {id: c2, resource: b, with: c, score: INFINITY}\n"
                                   "    - {id: c3, resource: c, with: a}\n")),
            "c.yaml:7: constraints.colocation: cycle of +INFINITY colocations a -> b -> c -> a");
  EXPECT_EQ(error(with_constraints("  colocation:\n"
                                   "    - {id: c1, resource: a, with: b}\n"
                                   "    - {id: c2, resource: b, with: a, score: -INFINITY}\n")),
            "c.yaml:9: constraints.colocation.c2: 'b' and 'a' are colocated with -INFINITY here "
            "and INFINITY by 'c1'");
  EXPECT_EQ(error(with_constraints("  colocation:\n    - {id: c1, resource: a, with: a}\n")),
            "c.yaml:8: constraints.colocation.c1: a resource colocated with itself");
  // Advisory cycles are fine (they only add scores).
  ok(
      with_constraints("  colocation:\n"
                       "    - {id: c1, resource: a, with: b, score: 100}\n"
                       "    - {id: c2, resource: b, with: a, score: 100}\n"
                       "    - {id: c3, resource: c, with: a, score: -INFINITY}\n"));
}

TEST(ClusterValidate, CloneCounts) {
  auto clone_error = [](const std::string& clone) {
    return error("nodes: [{name: n1}]\nresources:\n  - {id: a, agent: \"lsb:a\"}\nclones:\n  - " +
                 clone + "\n");
  };
  EXPECT_EQ(clone_error("{id: c, resource: a, clone_max: -1}"),
            "c.yaml:5: clones.c.clone_max: must be >= 0 (0 = one per eligible node)");
  EXPECT_EQ(clone_error("{id: c, resource: a, clone_node_max: 0}"),
            "c.yaml:5: clones.c.clone_node_max: must be >= 1");
  EXPECT_EQ(clone_error("{id: c, resource: a, promotable: true, promoted_max: 0}"),
            "c.yaml:5: clones.c.promoted_max: must be >= 1");
  EXPECT_EQ(clone_error("{id: c, resource: a, promotable: true, clone_max: 2, promoted_max: 3}"),
            "c.yaml:5: clones.c.promoted_max: 3 is more than clone_max 2");
  EXPECT_EQ(clone_error("{id: c, resource: a, promoted_max: 1}"),
            "c.yaml:5: clones.c.promoted_max: only for a promotable clone");
  EXPECT_EQ(clone_error("{id: c, resource: a, promotable: true, clone_node_max: 2}"),
            "c.yaml:5: clones.c.clone_node_max: a promotable clone needs 1");
  EXPECT_EQ(clone_error("{id: c, resource: b}"),
            "c.yaml:5: clones.c.resource: unknown resource 'b'");
  EXPECT_EQ(clone_error("{id: a, resource: a}"), "c.yaml:5: clones.a: duplicate id 'a'");
  EXPECT_EQ(clone_error("{id: c, resource: a, promotable: true, clone_max: 0, promoted_max: 2}"),
            "(accepted)");
  // Copies 1.. of a clone run as a:1, a:2, ...: no resource may be called that.
  auto named = [](const std::string& id) {
    return error("nodes: [{name: n1}]\nresources:\n  - {id: a, agent: \"lsb:a\"}\n  - {id: \"" +
                 id + "\", agent: \"lsb:b\"}\nclones:\n  - {id: c, resource: a}\n");
  };
  EXPECT_EQ(named("a:2"),
            "c.yaml:6: clones.c.resource: 'a:2' is the name of copy 2 of a (clone copies run as "
            "a:N): rename that resource");
  EXPECT_EQ(named("a:x"), "(accepted)");
  EXPECT_EQ(named("a:0"), "(accepted)");
}

TEST(ClusterValidate, Operations) {
  auto op_error = [](const std::string& ops) {
    return error(
        "nodes: [{name: n1}]\nresources:\n  - id: r\n    agent: \"lsb:r\"\n"
        "    operations:\n" +
        ops);
  };
  EXPECT_EQ(op_error("      - {name: reload}\n"),
            "c.yaml:6: resources.r.operations[0].name: unknown operation 'reload' (expected "
            "monitor, start, stop, promote, demote)");
  EXPECT_EQ(op_error("      - {name: start, interval: 10s}\n"),
            "c.yaml:6: resources.r.operations[0].interval: only a monitor recurs");
  EXPECT_EQ(op_error("      - {name: start, timeout: 0s}\n"),
            "c.yaml:6: resources.r.operations[0].timeout: must be > 0 and at most 24 h");
  EXPECT_EQ(op_error("      - {name: start, timeout_ms: -5}\n"),
            "c.yaml:6: resources.r.operations[0].timeout: must be > 0 and at most 24 h");
  EXPECT_EQ(op_error("      - {name: start, timeout: 1441m}\n"),
            "c.yaml:6: resources.r.operations[0].timeout: must be > 0 and at most 24 h");
  EXPECT_EQ(op_error("      - {name: monitor, interval_ms: -1}\n"),
            "c.yaml:6: resources.r.operations[0].interval: must be 0 .. 24 h");
  EXPECT_EQ(op_error("      - {name: monitor, interval: 10s}\n"
                     "      - {name: monitor, interval: 10000ms, role: promoted}\n"),
            "c.yaml:7: resources.r.operations[1]: duplicate operation monitor with interval "
            "10000 ms (also operations[0])");
  EXPECT_EQ(op_error("      - {name: monitor, interval: 10s, role: primary}\n"),
            "c.yaml:6: resources.r.operations[0].role: unknown role 'primary' (expected "
            "promoted, unpromoted)");
  EXPECT_EQ(op_error("      - {name: stop, role: promoted}\n"),
            "c.yaml:6: resources.r.operations[0].role: only for a monitor");
  EXPECT_EQ(op_error("      - {name: monitor, interval: 10s, role: promoted}\n"
                     "      - {name: monitor, interval: 11s, role: unpromoted}\n"),
            "(accepted)");
}

TEST(ClusterValidate, DuplicatesAndReferences) {
  EXPECT_EQ(error("nodes: [{name: n1}, {name: n1}]\n"), "c.yaml:1: nodes.n1: duplicate node 'n1'");
  EXPECT_EQ(error("nodes: [{name: n1}]\nfence_devices:\n  - {id: f, agent: x, nodes: [n1]}\n"
                  "  - {id: f, agent: y, nodes: [n1]}\n"),
            "c.yaml:4: fence_devices.f: duplicate id 'f'");
  EXPECT_EQ(
      error(with_constraints("  order:\n    - {id: x, first: a, then: b}\n"
                             "  location:\n    - {id: x, resource: a, node: n1, score: 1}\n")),
      "c.yaml:8: constraints.order.x: duplicate constraint id 'x'");
}

constexpr const char* kBefore = R"(
nodes: [{name: n1}, {name: n2, attributes: {rack: a}}]
resources:
  - {id: web, agent: "ocf:heartbeat:nginx", params: {port: 80}}
  - {id: db, agent: "ocf:heartbeat:pgsql", params: {port: 5432, password: hunter2}}
  - {id: old, agent: "lsb:old"}
groups:
  - {id: g, members: [web, db]}
constraints:
  location:
    - {id: loc-db, resource: g, node: n1, score: 100}
fence_devices:
  - {id: f, agent: fence_ipmilan, nodes: [n1, n2], params: {ip: 10.0.0.9}}
)";

TEST(ClusterDiff, SameDefinitionIsEmpty) {
  auto a = ok(kBefore);
  EXPECT_TRUE(cluster::diff_definitions(a, a).empty());
  EXPECT_TRUE(cluster::diff_definitions(a, ok(kBefore)).empty());
  // Order in the file does not matter: objects match by id.
  auto b = a;
  std::swap(b.resources[0], b.resources[2]);
  EXPECT_TRUE(cluster::diff_definitions(a, b).empty());
}

TEST(ClusterDiff, OneLinePerChangedObjectSorted) {
  auto after = ok(R"(
nodes: [{name: n1}, {name: n2, standby: true, attributes: {rack: b}}, {name: n3}]
defaults: {stickiness: 100}
resources:
  - id: web
    agent: "ocf:heartbeat:nginx"
    params: {port: 80}
    operations: [{name: monitor, interval: 10s}]
  - {id: db, agent: "ocf:heartbeat:pgsql", params: {port: 5433, password: hunter3}}
  - {id: new, agent: process, params: {command: "/bin/sleep 100"}}
groups:
  - {id: g, members: [web, db]}
constraints:
  location:
    - {id: loc-db, resource: g, node: n1, score: INFINITY}
  order:
    - {id: new-then-g, first: new, then: g}
fence_devices:
  - {id: f, agent: fence_ipmilan, nodes: [n1, n2], params: {ip: 10.0.0.9}, level: 2}
)");
  EXPECT_EQ(cluster::diff_definitions(ok(kBefore), after),
            (std::vector<std::string>{
                "+ constraint order new-then-g",
                "+ node n3",
                "+ resource new (process)",
                "- resource old",
                "~ constraint location loc-db: score 100 -> INFINITY",
                "~ fence_device f: level 1 -> 2",
                "~ node n2: state online -> standby, attributes.rack a -> b",
                "~ resource db: params.password *** -> ***, params.port 5432 -> 5433, "
                "meta.stickiness 0 -> 100",
                "~ resource web: operations [] -> [monitor/10000ms/20000ms], meta.stickiness 0 "
                "-> 100",
            }));
}

TEST(ClusterDiff, ValuesAndLists) {
  auto a = ok(kBefore);
  auto b = a;
  b.resources[0].params["cmd"] = "a b";
  b.resources[0].params.erase("port");
  b.groups[0].members = {"db", "web"};
  b.fence_devices[0].params["passwd"] = "x";
  b.nodes[0].capacity["cpu"] = 8;
  EXPECT_EQ(cluster::diff_definitions(a, b),
            (std::vector<std::string>{
                "~ fence_device f: params.passwd unset -> ***",
                "~ group g: members [web db] -> [db web]",
                "~ node n1: capacity.cpu unset -> 8",
                "~ resource web: params.cmd unset -> \"a b\", params.port 80 -> unset",
            }));
  EXPECT_EQ(cluster::diff_definitions(a, cluster::ClusterSnapshot{}).size(), 8u);
}

TEST(ClusterDiff, NeedsRestart) {
  auto a = ok(kBefore).resources[0];
  auto b = a;
  b.meta.stickiness = 100;
  b.meta.target_role = cluster::TargetRole::kStopped;
  b.operations.push_back({.name = "monitor", .interval_ms = 5000});
  b.utilization["cpu"] = 1;
  EXPECT_FALSE(cluster::needs_restart(a, b));
  b.params["port"] = "81";
  EXPECT_TRUE(cluster::needs_restart(a, b));
  b = a;
  b.params["extra"] = "1";
  EXPECT_TRUE(cluster::needs_restart(a, b));
  b = a;
  b.agent = "ocf:heartbeat:apache";
  EXPECT_TRUE(cluster::needs_restart(a, b));
  EXPECT_FALSE(cluster::needs_restart(a, a));
}

}  // namespace
}  // namespace vigil::sched
