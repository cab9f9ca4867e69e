// Scheduler edge cases that the case directories do not show well.
#include "sched/plan.h"

#include <gtest/gtest.h>

#include "sched/inject.h"
#include "sched/io/case_yaml.h"

namespace vigil::sched {
namespace {

cluster::ClusterSnapshot parse(const std::string& yaml) {
  auto s = parse_snapshot_yaml(yaml, "test.yaml");
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return s ? *s : cluster::ClusterSnapshot{};
}

TEST(Plan, EmptySnapshotPlansNothing) {
  auto p = plan(cluster::ClusterSnapshot{});
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->actions.empty());
  EXPECT_TRUE(p->placement.empty());
}

TEST(Plan, TieBreaksByLoadThenNodeName) {
  auto s = parse(R"(
nodes: [{name: n2}, {name: n1}, {name: n3}]
resources:
  - {id: a, agent: process}
  - {id: b, agent: process}
  - {id: c, agent: process}
  - {id: d, agent: process}
)");
  auto p = plan(s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->placement["a"].at(0).node, "n1");
  EXPECT_EQ(p->placement["b"].at(0).node, "n2");
  EXPECT_EQ(p->placement["c"].at(0).node, "n3");
  EXPECT_EQ(p->placement["d"].at(0).node, "n1");
}

TEST(Plan, NodeOrderInInputDoesNotMatter) {
  const char* a = R"(
nodes: [{name: n1}, {name: n2}]
resources: [{id: r, agent: process}, {id: s, agent: process}]
)";
  const char* b = R"(
nodes: [{name: n2}, {name: n1}]
resources: [{id: s, agent: process}, {id: r, agent: process}]
)";
  auto pa = plan(parse(a));
  auto pb = plan(parse(b));
  ASSERT_TRUE(pa && pb);
  ASSERT_EQ(pa->actions.size(), pb->actions.size());
  for (size_t i = 0; i < pa->actions.size(); ++i) {
    EXPECT_EQ(pa->actions[i].label(), pb->actions[i].label());
  }
}

TEST(Plan, NegativeFiniteScoreIsNotEligible) {
  auto p = plan(parse(R"(
nodes: [{name: n1}]
resources: [{id: r, agent: process}]
constraints:
  location: [{id: avoid, resource: r, node: n1, score: -10}]
)"));
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->placement["r"].empty());
}

TEST(Plan, InvalidSnapshotIsAnError) {
  cluster::ClusterSnapshot s;
  s.resources.push_back(cluster::Resource{.id = "r"});
  s.resources.push_back(cluster::Resource{.id = "r"});
  auto p = plan(s);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("duplicate id 'r'"), std::string::npos);
}

TEST(Yaml, ErrorsNameFileLineAndPath) {
  auto s = parse_snapshot_yaml("nodes:\n  - name: n1\n    state: sleeping\n", "case/input.yaml");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message(),
            "case/input.yaml:3: nodes.n1.state: unknown node state 'sleeping' (expected online, "
            "offline, standby, maintenance, unclean, fenced)");
}

TEST(Yaml, UnknownKeyIsAnError) {
  auto s = parse_snapshot_yaml("nodes:\n  - name: n1\n    colour: red\n", "x.yaml");
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("x.yaml:3: nodes.n1.colour: unknown key"), std::string::npos);
}

TEST(Yaml, BadReferenceNamesTheLine) {
  auto s = parse_snapshot_yaml(R"(nodes: [{name: n1}]
resources: [{id: r, agent: process}]
constraints:
  location:
    - {id: l1, resource: nope, node: n1, score: 10}
)",
                               "x.yaml");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message(),
            "x.yaml:5: constraints.location.l1.resource: unknown resource 'nope'");
}

TEST(Inject, ErrorsNameFileAndLine) {
  cluster::ClusterSnapshot s;
  s.nodes.push_back(cluster::Node{.name = "n1"});
  Status st = apply_inject("set-time 5\n\nnode-fail n9\n", "inject.txt", s);
  EXPECT_EQ(st.message(), "inject.txt:3: node-fail: unknown node 'n9'");
  EXPECT_EQ(s.now_ms, 5);
}

TEST(Inject, StartFailureIsFatalForTheNode) {
  auto s = parse(R"(
nodes: [{name: n1}, {name: n2}]
resources: [{id: r, agent: process}]
status: {r: {n1: {running: true}}}
)");
  ASSERT_TRUE(apply_inject("op-fail r:start@n1 rc=1", "i", s).ok());
  EXPECT_EQ(s.status["r"]["n1"].fail_count, kInfinity);
  auto p = plan(s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->placement["r"].at(0).node, "n2");
}

TEST(ApplyPlan, RevisedStateIsStable) {
  auto s = parse(R"(
nodes: [{name: n1}, {name: n2, state: standby}]
resources: [{id: r, agent: process, meta: {stickiness: 10}}]
status: {r: {n2: {running: true}}}
)");
  auto p = plan(s);
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->actions.size(), 2u);
  EXPECT_EQ(p->actions[0].label(), "stop r on n2");
  EXPECT_EQ(p->actions[1].label(), "start r on n1");
  EXPECT_EQ(p->actions[1].after, std::vector<int>{1});
  auto revised = apply_plan(s, *p);
  EXPECT_TRUE(revised.status["r"]["n1"].running);
  EXPECT_FALSE(revised.status["r"].contains("n2"));
  auto again = plan(revised);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->actions.empty());
}

}  // namespace
}  // namespace vigil::sched
