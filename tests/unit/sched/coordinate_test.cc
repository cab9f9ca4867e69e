// The coordinator's pure half: merge_status() and next_edits(), rule by rule, then the
// whole loop (plan → edits → fake store → fake executors → reports → plan) to convergence.
#include "sched/coordinate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sched/plan.h"

namespace vigil::sched {
namespace {

using cluster::ClusterSnapshot;
using cluster::NodeState;
using cluster::ResourceState;
using cluster::Role;

// ---- building inputs ----------------------------------------------------------------------

cluster::Resource prim(const std::string& id, bool exclusive = false) {
  cluster::Resource r;
  r.id = id;
  r.agent = "process";
  r.params["command"] = "/bin/true";
  r.meta.exclusive = exclusive;
  return r;
}

ClusterSnapshot cluster_of(const std::vector<std::string>& nodes,
                           const std::vector<cluster::Resource>& resources) {
  ClusterSnapshot s;
  for (const auto& n : nodes) s.nodes.push_back(cluster::Node{.name = n});
  s.resources = resources;
  return s;
}

void set_state(ClusterSnapshot& s, const std::string& node, NodeState state) {
  for (auto& n : s.nodes) {
    if (n.name == node) n.state = state;
  }
}

cluster::Clone promotable(const std::string& id, const std::string& resource) {
  return cluster::Clone{.id = id, .resource = resource, .promotable = true, .promoted_max = 1};
}

Action act(int id, ActionKind kind, const std::string& resource, const std::string& node,
           std::vector<int> after = {}, const std::string& reason = "test") {
  Action a;
  a.id = id;
  a.kind = kind;
  a.resource = resource;
  a.node = node;
  a.after = std::move(after);
  a.reason = reason;
  return a;
}

Reported report(bool running, int64_t token, Role role = Role::kStarted) {
  Reported r;
  r.state.running = running;
  r.state.role = role;
  r.token = token;
  return r;
}

Reported failed_report(int64_t token, int64_t fail_count) {
  Reported r = report(false, token);
  r.state.failed = true;
  r.state.fail_count = fail_count;
  r.state.last_failure_ms = 1000;
  return r;
}

using Assigned = std::map<NodeResource, Assignment>;
using Reports = std::map<NodeResource, Reported>;

// "put n1/web started", "delete n1/web": what an edit does, without its log text.
std::vector<std::string> brief(const std::vector<AssignmentEdit>& edits) {
  std::vector<std::string> out;
  for (const auto& e : edits) {
    std::string what = (e.remove ? "delete " : "put ") + e.node + "/" + e.resource;
    if (!e.remove) what += " " + std::string(cluster::role_name(e.role));
    out.push_back(what);
  }
  return out;
}

using Strings = std::vector<std::string>;

// The snapshot the coordinator plans from: the definition plus the merged records.
ClusterSnapshot merged(const ClusterSnapshot& def, const Assigned& assigned,
                       const Reports& reported) {
  ClusterSnapshot s = def;
  merge_status(s, assigned, reported);
  return s;
}

Plan plan_of(const ClusterSnapshot& s) {
  auto p = plan(s);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message());
  return p ? *p : Plan{};
}

Strings labels(const Plan& p) {
  Strings out;
  for (const auto& a : p.actions) {
    std::string l = a.label();
    if (!a.after.empty()) l += " (after)";
    out.push_back(l);
  }
  return out;
}

// ---- merge_status -------------------------------------------------------------------------

TEST(MergeStatus, AssignmentWithoutReportCountsAsRunning) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStarted, 5}}}, {});
  ASSERT_TRUE(s.status["web"].contains("n1"));
  const ResourceState& st = s.status["web"]["n1"];
  EXPECT_TRUE(st.running);
  EXPECT_EQ(st.role, Role::kStarted);
  EXPECT_FALSE(st.failed);
}

TEST(MergeStatus, AssignmentCountsAsRunningInTheAssignedRole) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  merge_status(s,
               {{{"n1", "pg"}, Assignment{Role::kPromoted, 9}},
                {{"n2", "pg"}, Assignment{Role::kUnpromoted, 8}}},
               {});
  EXPECT_TRUE(s.status["pg"]["n1"].running);
  EXPECT_EQ(s.status["pg"]["n1"].role, Role::kPromoted);
  EXPECT_TRUE(s.status["pg"]["n2"].running);
  EXPECT_EQ(s.status["pg"]["n2"].role, Role::kUnpromoted);
}

TEST(MergeStatus, UnansweredStopOrderCountsAsRunningInTheReportedRole) {
  ClusterSnapshot s = cluster_of({"n1", "n2", "n3"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  merge_status(
      s,
      {{{"n1", "pg"}, Assignment{Role::kStopped, 9}},
       {{"n2", "pg"}, Assignment{Role::kStopped, 9}},
       {{"n3", "pg"}, Assignment{Role::kStopped, 9}}},
      {{{"n1", "pg"}, report(true, 7, Role::kPromoted)}, {{"n2", "pg"}, report(false, 7)}});
  EXPECT_TRUE(s.status["pg"]["n1"].running);
  EXPECT_EQ(s.status["pg"]["n1"].role, Role::kPromoted);
  // Reported stopped (or no report): a start may still be under way there.
  EXPECT_TRUE(s.status["pg"]["n2"].running);
  EXPECT_EQ(s.status["pg"]["n2"].role, Role::kStarted);
  EXPECT_TRUE(s.status["pg"]["n3"].running);
  EXPECT_EQ(s.status["pg"]["n3"].role, Role::kStarted);
}

TEST(MergeStatus, AnsweredStopOrderIsWhatTheNodeReports) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStopped, 9}}},
               {{{"n1", "web"}, report(false, 9)}});
  EXPECT_FALSE(s.status["web"]["n1"].running);
}

// ---- PendingEdits ----------------------------------------------------------------------------

TEST(PendingEdits, PendingWriteShowsAsUnansweredUntilCommitted) {
  PendingEdits pe;
  pe.proposed(AssignmentEdit{false, "n1", "db", Role::kStarted, "start"}, 10, 1000);
  Assigned committed;
  EXPECT_EQ(pe.settle(committed, 1001, 3000), 1u);
  Assigned view = pe.overlay(committed);
  ASSERT_TRUE(view.contains({"n1", "db"}));
  EXPECT_EQ((view[{"n1", "db"}].role), Role::kStarted);
  EXPECT_EQ((view[{"n1", "db"}].token), PendingEdits::kPendingToken);
  ClusterSnapshot s = cluster_of({"n1"}, {prim("db", true)});
  merge_status(s, view, {{{"n1", "db"}, report(false, 9)}});
  EXPECT_TRUE(s.status["db"]["n1"].running);  // possibly running: the start is on its way

  // An older record of the key does not settle it; a write after `revision` does.
  committed[{"n1", "db"}] = Assignment{Role::kStopped, 7};
  EXPECT_EQ(pe.settle(committed, 1002, 3000), 1u);
  EXPECT_EQ((pe.overlay(committed)[{"n1", "db"}].token), PendingEdits::kPendingToken);
  committed[{"n1", "db"}] = Assignment{Role::kStarted, 11};
  EXPECT_EQ(pe.settle(committed, 1003, 3000), 0u);
  EXPECT_EQ((pe.overlay(committed)[{"n1", "db"}].token), 11);
}

TEST(PendingEdits, PendingDeleteHidesTheRecordUntilItIsGone) {
  PendingEdits pe;
  pe.proposed(AssignmentEdit{true, "n2", "db", Role::kStopped, "gone"}, 10, 1000);
  Assigned committed{{{"n2", "db"}, Assignment{Role::kStarted, 5}}};
  EXPECT_EQ(pe.settle(committed, 1001, 3000), 1u);
  EXPECT_FALSE(pe.overlay(committed).contains({"n2", "db"}));
  EXPECT_TRUE(pe.contains({"n2", "db"}));
  committed.clear();
  EXPECT_EQ(pe.settle(committed, 1002, 3000), 0u);
  EXPECT_FALSE(pe.contains({"n2", "db"}));
}

TEST(PendingEdits, LostProposalIsForgottenAfterTheTimeout) {
  PendingEdits pe;
  pe.proposed(AssignmentEdit{false, "n1", "db", Role::kStarted, "start"}, 10, 1000);
  EXPECT_EQ(pe.settle({}, 4000, 3000), 1u);
  EXPECT_EQ(pe.settle({}, 4001, 3000), 0u);
  EXPECT_TRUE(pe.overlay({}).empty());
}

TEST(PendingEdits, TheLastProposalOfAKeyWins) {
  PendingEdits pe;
  pe.proposed(AssignmentEdit{false, "n1", "db", Role::kStarted, "start"}, 10, 1000);
  pe.proposed(AssignmentEdit{false, "n1", "db", Role::kStopped, "stop"}, 10, 1001);
  EXPECT_EQ((pe.overlay({})[{"n1", "db"}].role), Role::kStopped);
}

TEST(MergeStatus, StaleReportCountsAsRunningButKeepsItsFailCount) {
  // The node answered token 3 with a failure; the coordinator rewrote the assignment (5) to
  // retry: until the node answers 5, the retry may be under way.
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStarted, 5}}},
               {{{"n1", "web"}, failed_report(3, 2)}});
  const ResourceState& st = s.status["web"]["n1"];
  EXPECT_TRUE(st.running);
  EXPECT_FALSE(st.failed);
  EXPECT_EQ(st.fail_count, 2);
  EXPECT_EQ(st.last_failure_ms, 1000);
}

TEST(MergeStatus, StopReportWithTokenZeroDoesNotAnswerAnAssignment) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStarted, 5}}},
               {{{"n1", "web"}, report(false, 0)}});
  EXPECT_TRUE(s.status["web"]["n1"].running);
}

TEST(MergeStatus, ReportOfTheCurrentTokenIsTakenAsIs) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStarted, 5}}},
               {{{"n1", "web"}, failed_report(5, cluster::kInfinity)}});
  const ResourceState& st = s.status["web"]["n1"];
  EXPECT_FALSE(st.running);
  EXPECT_TRUE(st.failed);
  EXPECT_EQ(st.fail_count, cluster::kInfinity);
}

TEST(MergeStatus, ReportOfANewerTokenCountsAsAnswered) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "web"}, Assignment{Role::kStarted, 5}}},
               {{{"n1", "web"}, report(false, 7)}});
  EXPECT_FALSE(s.status["web"]["n1"].running);
}

TEST(MergeStatus, ReportWithoutAssignmentIsTakenAsIs) {
  // A probe found it running, or a stop is under way after the assignment was deleted.
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("web")});
  merge_status(s, {}, {{{"n1", "web"}, report(true, 0)}, {{"n2", "web"}, report(false, 4)}});
  EXPECT_TRUE(s.status["web"]["n1"].running);
  EXPECT_FALSE(s.status["web"]["n2"].running);
}

TEST(MergeStatus, ResourcesNoLongerDefinedAreLeftOut) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  merge_status(s, {{{"n1", "old"}, Assignment{Role::kStarted, 5}}},
               {{{"n1", "gone"}, report(true, 2)}, {{"n1", "web"}, report(true, 0)}});
  EXPECT_FALSE(s.status.contains("old"));
  EXPECT_FALSE(s.status.contains("gone"));
  EXPECT_TRUE(s.status["web"]["n1"].running);
}

TEST(MergeStatus, PromotionScoreOfAStaleReportIsKept) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Reported r = report(true, 3);
  r.state.promotion_score = 10;
  merge_status(s, {{{"n1", "pg"}, Assignment{Role::kPromoted, 6}}}, {{{"n1", "pg"}, r}});
  EXPECT_EQ(s.status["pg"]["n1"].role, Role::kPromoted);
  EXPECT_EQ(s.status["pg"]["n1"].promotion_score, 10);
}

// Regression: an unanswered demote counted as done, so the plan promoted another copy while
// the old primary might still be promoted.
TEST(MergeStatus, UnansweredDemoteStillCountsAsPromoted) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  merge_status(s, {{{"n1", "pg"}, Assignment{Role::kUnpromoted, 6}}},
               {{{"n1", "pg"}, report(true, 4, Role::kPromoted)}});
  EXPECT_TRUE(s.status["pg"]["n1"].running);
  EXPECT_EQ(s.status["pg"]["n1"].role, Role::kPromoted);
}

TEST(MergeStatus, UnansweredStartIsNotStartedAgain) {
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("web")});
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 5}}};
  ClusterSnapshot s = merged(def, assigned, {});
  Plan p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{});
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{});
}

TEST(MergeStatus, StaleFailureReportDoesNotRecoverARetry) {
  // The retry (token 5) of a failed start (token 3) is under way: no recovery, no move.
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("web")});
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 5}}};
  Reports reported{{{"n1", "web"}, failed_report(3, 1)}};
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{});
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
}

TEST(MergeStatus, FailureBelowThresholdIsRetriedOnTheSameNode) {
  cluster::Resource web = prim("web");
  web.meta.migration_threshold = 3;
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {web});
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 5}}};
  Reports reported{{{"n1", "web"}, failed_report(5, 1)}};
  ClusterSnapshot s = merged(def, assigned, reported);
  EXPECT_EQ(s.status["web"]["n1"].fail_count, 1);
  Plan p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{"start web on n1"});
  auto edits = next_edits(s, p, assigned, reported);
  EXPECT_EQ(brief(edits), Strings{"put n1/web started"});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_NE(edits[0].why.find("again"), std::string::npos) << edits[0].why;
}

TEST(MergeStatus, FailCountAtThresholdMovesTheResource) {
  // A failed start counts INFINITY: the node is banned and the resource starts elsewhere.
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("db", true)});
  Assigned assigned{{{"n1", "db"}, Assignment{Role::kStarted, 5}}};
  Reports reported{{{"n1", "db"}, failed_report(5, cluster::kInfinity)}};
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{"start db on n2"});
  // The failed assignment on n1 goes too (see NextEdits.FailedAssignmentPlacedElsewhere...).
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)),
            (Strings{"put n2/db started", "delete n1/db"}));
}

// ---- next_edits: one action kind at a time -------------------------------------------------

TEST(NextEdits, StartWritesThePlacedRole) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.placement["web"] = {Placed{"n1", Role::kStarted}};
  p.actions = {act(1, ActionKind::kStart, "web", "n1", {}, "start")};
  auto edits = next_edits(s, p, {}, {});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0],
            (AssignmentEdit{false, "n1", "web", Role::kStarted, "start web on n1 (start)"}));
}

TEST(NextEdits, StartOfAPromotableCopyWritesUnpromoted) {
  // The copy starts unpromoted; the promote that follows rewrites the role.
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kPromoted}};
  p.actions = {act(1, ActionKind::kStart, "pg", "n1"),
               act(2, ActionKind::kPromote, "pg", "n1", {1})};
  EXPECT_EQ(brief(next_edits(s, p, {}, {})), Strings{"put n1/pg unpromoted"});
}

TEST(NextEdits, PromoteRewritesTheRole) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kPromoted}};
  p.actions = {act(1, ActionKind::kPromote, "pg", "n1", {}, "promote")};
  Assigned assigned{{{"n1", "pg"}, Assignment{Role::kUnpromoted, 4}}};
  Reports reported{{{"n1", "pg"}, report(true, 4)}};
  auto edits = next_edits(s, p, assigned, reported);
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0],
            (AssignmentEdit{false, "n1", "pg", Role::kPromoted, "promote pg on n1 (promote)"}));
}

TEST(NextEdits, DemoteRewritesTheRole) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kUnpromoted}};
  p.actions = {act(1, ActionKind::kDemote, "pg", "n1", {}, "demote")};
  Assigned assigned{{{"n1", "pg"}, Assignment{Role::kPromoted, 4}}};
  Reports reported{{{"n1", "pg"}, report(true, 4, Role::kPromoted)}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n1/pg unpromoted"});
}

TEST(NextEdits, StopWritesAStopOrder) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "web", "n1", {}, "stop")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 4}}};
  Reports reported{{{"n1", "web"}, report(true, 4)}};
  auto edits = next_edits(s, p, assigned, reported);
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0],
            (AssignmentEdit{false, "n1", "web", Role::kStopped, "stop web on n1 (stop)"}));
}

TEST(NextEdits, StopOnAnUnreachableNodeDeletesTheAssignment) {
  // It cannot answer a stop order: the assignment goes, and holds decide the rest.
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("web")});
  set_state(s, "n2", NodeState::kUnclean);
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "web", "n2", {}, "stop")};
  Assigned assigned{{{"n2", "web"}, Assignment{Role::kStarted, 4}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n2", "web"}, report(true, 4)}})),
            Strings{"delete n2/web"});
}

TEST(NextEdits, StopOrderIsWrittenOnceAndAgainOnlyIfAnsweredAndStillRunning) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "web", "n1", {}, "stop")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStopped, 8}}};
  // Unanswered: wait.
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, report(true, 4)}})), Strings{});
  // Answered, yet it runs (the stop failed): ask again.
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, report(true, 8)}})),
            Strings{"put n1/web stopped"});
}

TEST(NextEdits, CarriedOutStopOrderIsDeleted) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStopped, 8}}};
  auto edits = next_edits(s, p, assigned, {{{"n1", "web"}, report(false, 8)}});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0], (AssignmentEdit{true, "n1", "web", Role::kStopped,
                                      "stop web on n1 (stopped there: the stop order is done)"}));
  // Not yet carried out: kept.
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, report(false, 4)}})), Strings{});
}

TEST(NextEdits, StopOrderOfAResourcePlacedThereAgainBecomesAStart) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStart, "web", "n1")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStopped, 8}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, report(false, 8)}})),
            Strings{"put n1/web started"});
}

TEST(NextEdits, StopOfAnUnassignedResourceWritesNothing) {
  // Deleted already: the node stops it (or is stopping it) on its own.
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "web", "n1")};
  EXPECT_EQ(brief(next_edits(s, p, {}, {{{"n1", "web"}, report(true, 4)}})), Strings{});
}

TEST(NextEdits, FenceWritesNothing) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {});
  Plan p;
  p.actions = {act(1, ActionKind::kFence, "", "n2")};
  EXPECT_EQ(brief(next_edits(s, p, {}, {})), Strings{});
}

TEST(NextEdits, MoveRunsTheStopFirstAndTheStartOnceItIsDone) {
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("db", true)});
  def.locations.push_back(
      cluster::LocationConstraint{.id = "prefer-n2", .resource = "db", .score = 100, .node = "n2"});
  Assigned assigned{{{"n1", "db"}, Assignment{Role::kStarted, 4}}};
  Reports reported{{{"n1", "db"}, report(true, 4)}};
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  ASSERT_EQ(labels(p), (Strings{"stop db on n1", "start db on n2 (after)"}));
  auto edits = next_edits(s, p, assigned, reported);
  EXPECT_EQ(brief(edits), Strings{"put n1/db stopped"});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0].why, "stop db on n1 (move)");

  // The stop order is written, but n1 has not answered it yet: the start still waits.
  assigned[{"n1", "db"}] = Assignment{Role::kStopped, 9};
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(labels(p), (Strings{"stop db on n1", "start db on n2 (after)"}));
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});

  // Even when n1's last report says it does not run: a start may still be under way there.
  reported[{"n1", "db"}] = report(false, 4);
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(labels(p), (Strings{"stop db on n1", "start db on n2 (after)"}));
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});

  // n1 answers the stop order: the start is the frontier now, and the order is cleared.
  reported[{"n1", "db"}] = report(false, 9);
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{"start db on n2"});
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)),
            (Strings{"put n2/db started", "delete n1/db"}));
}

TEST(NextEdits, ActionsWithPredecessorsWriteNothing) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("a"), prim("b")});
  Plan p;
  p.placement["a"] = {Placed{"n1"}};
  p.placement["b"] = {Placed{"n2"}};
  p.actions = {act(1, ActionKind::kStart, "a", "n1"), act(2, ActionKind::kStart, "b", "n2", {1}),
               act(3, ActionKind::kPromote, "b", "n2", {2})};
  EXPECT_EQ(brief(next_edits(s, p, {}, {})), Strings{"put n1/a started"});
}

TEST(NextEdits, UnansweredAssignmentIsNotRewritten) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStart, "web", "n1")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 6}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{});
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, failed_report(5, 1)}})), Strings{});
}

TEST(NextEdits, AnsweredAndStoppedIsRewrittenToStartAgain) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStart, "web", "n1", {}, "start")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 6}}};
  auto edits = next_edits(s, p, assigned, {{{"n1", "web"}, failed_report(6, 1)}});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0],
            (AssignmentEdit{false, "n1", "web", Role::kStarted, "start web on n1 (start, again)"}));
}

TEST(NextEdits, AnsweredAndRunningIsNotRewritten) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStart, "web", "n1")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 6}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {{{"n1", "web"}, report(true, 6)}})), Strings{});
}

TEST(NextEdits, AnsweredPromoteThatDidNotPromoteIsAskedAgain) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kPromoted}};
  p.actions = {act(1, ActionKind::kPromote, "pg", "n1", {}, "promote")};
  Assigned assigned{{{"n1", "pg"}, Assignment{Role::kPromoted, 7}}};
  Reports reported{{{"n1", "pg"}, report(true, 7)}};
  auto edits = next_edits(s, p, assigned, reported);
  EXPECT_EQ(brief(edits), Strings{"put n1/pg promoted"});
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0].why, "promote pg on n1 (promote, again)");
  reported[{"n1", "pg"}] = report(true, 7, Role::kPromoted);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
}

TEST(NextEdits, ChangedRoleIsRewrittenWhateverTheReport) {
  // The assignment asks for another role than the action: rewrite without waiting.
  ClusterSnapshot s = cluster_of({"n1"}, {prim("pg")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kUnpromoted}};
  p.actions = {act(1, ActionKind::kStart, "pg", "n1")};
  Assigned assigned{{{"n1", "pg"}, Assignment{Role::kPromoted, 6}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{"put n1/pg unpromoted"});
}

// ---- next_edits: independence and ordering -------------------------------------------------

TEST(NextEdits, IndependentResourcesStartInTheSameRound) {
  ClusterSnapshot def = cluster_of({"n1", "n2", "n3"}, {prim("a"), prim("b", true), prim("c")});
  ClusterSnapshot s = merged(def, {}, {});
  Plan p = plan_of(s);
  EXPECT_EQ(brief(next_edits(s, p, {}, {})),
            (Strings{"put n1/a started", "put n2/b started", "put n3/c started"}));
}

TEST(NextEdits, SlowStartDoesNotHoldBackAnUnrelatedResource) {
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("a"), prim("b")});
  // a's start on n1 is under way (no answer); b failed on n2 and must start again.
  Assigned assigned{{{"n1", "a"}, Assignment{Role::kStarted, 5}},
                    {{"n2", "b"}, Assignment{Role::kStarted, 6}}};
  def.resources[1].meta.migration_threshold = 3;
  Reports reported{{{"n2", "b"}, failed_report(6, 1)}};
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  EXPECT_EQ(labels(p), Strings{"start b on n2"});
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n2/b started"});

  // A new resource is not held back either.
  def.resources.push_back(prim("c"));
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)),
            (Strings{"put n2/b started", "put n1/c started"}));
}

// Regression: the plan counts an unanswered start as done, so the next group member's start
// was assigned while the first member was still starting.
TEST(NextEdits, GroupMemberWaitsForTheUnansweredStartOfTheOneBefore) {
  ClusterSnapshot def = cluster_of({"n1"}, {prim("vip", true), prim("web"), prim("c")});
  def.groups.push_back(cluster::Group{.id = "g", .members = {"vip", "web"}});
  ClusterSnapshot s = merged(def, {}, {});
  Plan p = plan_of(s);
  ASSERT_EQ(labels(p), (Strings{"start c on n1", "start vip on n1", "start web on n1 (after)"}));
  Assigned assigned;
  for (const auto& e : next_edits(s, p, {}, {})) {
    assigned[{e.node, e.resource}] = Assignment{e.role, int64_t(assigned.size()) + 1};
  }
  ASSERT_EQ(assigned.size(), 2u);  // c and vip

  // vip is still starting: the plan lists only web's start, which must still wait.
  s = merged(def, assigned, {});
  p = plan_of(s);
  ASSERT_EQ(labels(p), Strings{"start web on n1"});
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{});

  // vip answers: now web starts.
  Reports reported{{{"n1", "vip"}, report(true, assigned[{"n1", "vip"}].token)}};
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n1/web started"});
}

TEST(NextEdits, OrderedResourceWaitsForTheUnansweredStartOfItsFirst) {
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("db"), prim("app"), prim("c")});
  def.orders.push_back(cluster::OrderConstraint{.id = "db-app", .first = "db", .then = "app"});
  Assigned assigned{{{"n1", "db"}, Assignment{Role::kStarted, 5}}};
  Reports reported;
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  ASSERT_EQ(labels(p), (Strings{"start app on n2", "start c on n1"}));
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n1/c started"});

  reported[{"n1", "db"}] = report(true, 5);
  s = merged(def, assigned, reported);
  p = plan_of(s);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)),
            (Strings{"put n2/app started", "put n1/c started"}));
}

TEST(NextEdits, OrderAfterPromotionWaitsForTheUnansweredPromote) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("pg"), prim("app")});
  s.clones.push_back(promotable("pg-clone", "pg"));
  s.orders.push_back(cluster::OrderConstraint{.id = "pg-app",
                                              .first = "pg-clone",
                                              .then = "app",
                                              .first_action = cluster::OrderAction::kPromote});
  Plan p;
  p.placement["pg"] = {Placed{"n1", Role::kPromoted}, Placed{"n2", Role::kUnpromoted}};
  p.placement["app"] = {Placed{"n2"}};
  p.actions = {act(1, ActionKind::kStart, "app", "n2")};
  // pg runs on both nodes; the promote on n1 is assigned but not answered.
  Assigned assigned{{{"n1", "pg"}, Assignment{Role::kPromoted, 9}},
                    {{"n2", "pg"}, Assignment{Role::kUnpromoted, 4}}};
  Reports reported{{{"n1", "pg"}, report(true, 3)}, {{"n2", "pg"}, report(true, 4)}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
  reported[{"n1", "pg"}] = report(true, 9, Role::kPromoted);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n2/app started"});
}

TEST(NextEdits, RewriteOfARunningFirstDoesNotHoldBackItsThen) {
  // A rewritten assignment of something already running (a new spec) is no start under way.
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("db"), prim("app")});
  s.orders.push_back(cluster::OrderConstraint{.id = "db-app", .first = "db", .then = "app"});
  Plan p;
  p.placement["db"] = {Placed{"n1"}};
  p.placement["app"] = {Placed{"n2"}};
  p.actions = {act(1, ActionKind::kStart, "app", "n2")};
  Assigned assigned{{{"n1", "db"}, Assignment{Role::kStarted, 9}}};
  Reports reported{{{"n1", "db"}, report(true, 3)}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n2/app started"});
}

// Deletes on unreachable nodes first (a start elsewhere must not commit without them), then
// the actions in order, then the rest of the clean-up.
TEST(NextEdits, UnreachableDeletesThenTheActionOrderThenTheCleanUp) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("a"), prim("b"), prim("c")});
  set_state(s, "n2", NodeState::kOffline);
  Plan p;
  p.placement["a"] = {Placed{"n1"}};
  p.placement["c"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStop, "b", "n1"), act(2, ActionKind::kStart, "c", "n1"),
               act(3, ActionKind::kStart, "a", "n1")};
  Assigned assigned{{{"n1", "b"}, Assignment{Role::kStarted, 1}},
                    {{"n2", "a"}, Assignment{Role::kStarted, 2}},
                    {{"n1", "zz"}, Assignment{Role::kStarted, 3}},
                    {{"n2", "c"}, Assignment{Role::kStarted, 4}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})),
            (Strings{"delete n2/a", "delete n2/c", "put n1/b stopped", "put n1/c started",
                     "put n1/a started", "delete n1/zz"}));
}

// ---- next_edits: clean-up of stale assignments ----------------------------------------------

TEST(NextEdits, AssignmentsOfUndefinedResourcesAreDeleted) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("web")});
  set_state(s, "n2", NodeState::kMaintenance);
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 1}},
                    {{"n1", "old"}, Assignment{Role::kStarted, 2}},
                    {{"n2", "old"}, Assignment{Role::kPromoted, 3}}};
  Reports reported{{{"n1", "web"}, report(true, 1)}, {{"n1", "old"}, report(true, 2)}};
  auto edits = next_edits(s, p, assigned, reported);
  EXPECT_EQ(brief(edits), (Strings{"delete n1/old", "delete n2/old"}));
  ASSERT_EQ(edits.size(), 2u);
  EXPECT_EQ(edits[0].why, "stop old on n1 (no longer defined)");
}

TEST(NextEdits, AssignmentsOfUnreachableNodesAreDeletedWhenPlacedElsewhere) {
  ClusterSnapshot s = cluster_of({"n1", "n2", "n3", "n4", "n5", "n6"}, {prim("web")});
  set_state(s, "n2", NodeState::kOffline);
  set_state(s, "n3", NodeState::kUnclean);
  set_state(s, "n4", NodeState::kFenced);
  set_state(s, "n5", NodeState::kStandby);
  set_state(s, "n6", NodeState::kMaintenance);
  Plan p;
  p.placement["web"] = {Placed{"n1"}};
  Assigned assigned;
  Reports reported;
  for (std::string n : {"n1", "n2", "n3", "n4", "n5", "n6", "gone"}) {
    assigned[{n, "web"}] = Assignment{Role::kStarted, 1};
    reported[{n, "web"}] = report(true, 1);
  }
  auto edits = next_edits(s, p, assigned, reported);
  // Standby and maintenance nodes are reachable: what runs there is the plan's business.
  EXPECT_EQ(brief(edits),
            (Strings{"delete gone/web", "delete n2/web", "delete n3/web", "delete n4/web"}));
  ASSERT_EQ(edits.size(), 4u);
  EXPECT_EQ(edits[0].why,
            "stop web on gone (node gone is not a member and the resource is placed elsewhere)");
  EXPECT_EQ(edits[1].why,
            "stop web on n2 (node n2 is offline and the resource is placed elsewhere)");
}

TEST(NextEdits, AssignmentOfAnUnreachableNodeIsKeptWhenPlacedThere) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("web"), prim("db")});
  set_state(s, "n2", NodeState::kOffline);
  Plan p;
  p.placement["web"] = {Placed{"n2"}};
  p.placement["db"] = {Placed{"n1"}};
  Assigned assigned{{{"n2", "web"}, Assignment{Role::kStarted, 1}},
                    {{"n2", "db"}, Assignment{Role::kStarted, 2}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{"delete n2/db"});
}

TEST(NextEdits, StopActionAndCleanUpDeleteOnlyOnce) {
  ClusterSnapshot s = cluster_of({"n1"}, {prim("web")});
  set_state(s, "n1", NodeState::kOffline);
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "web", "n1")};
  Assigned assigned{{{"n1", "web"}, Assignment{Role::kStarted, 1}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), Strings{"delete n1/web"});
}

// Regression: a start that failed on n1 moved the resource to n2 but left n1's assignment:
// an exclusive resource assigned on two nodes, which n1 starts again after a cleanup or an
// executor restart (they forget that the token failed).
TEST(NextEdits, FailedAssignmentPlacedElsewhereIsDeleted) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("db", true)});
  Plan p;
  p.placement["db"] = {Placed{"n2"}};
  p.actions = {act(1, ActionKind::kStart, "db", "n2")};
  Assigned assigned{{{"n1", "db"}, Assignment{Role::kStarted, 5}}};
  Reports reported{{{"n1", "db"}, failed_report(5, cluster::kInfinity)}};
  auto edits = next_edits(s, p, assigned, reported);
  EXPECT_EQ(brief(edits), (Strings{"put n2/db started", "delete n1/db"}));
  ASSERT_EQ(edits.size(), 2u);
  EXPECT_EQ(edits[1].why, "stop db on n1 (not running on n1 and placed elsewhere)");
}

TEST(NextEdits, AssignmentOfAReachableNodeIsKeptWhileItMayRun) {
  // Not placed on n1, but unanswered (may be starting) or reported running: the plan's stop
  // deletes it, after a demote if need be; nothing is deleted behind the plan's back.
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("a"), prim("b"), prim("c")});
  Plan p;
  Assigned assigned{{{"n1", "a"}, Assignment{Role::kStarted, 5}},
                    {{"n1", "b"}, Assignment{Role::kStarted, 6}},
                    {{"n1", "c"}, Assignment{Role::kStarted, 7}}};
  Reports reported{{{"n1", "b"}, report(true, 6)}, {{"n1", "c"}, report(false, 6)}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
}

// ---- determinism -----------------------------------------------------------------------------

ClusterSnapshot busy_cluster() {
  ClusterSnapshot def = cluster_of(
      {"n3", "n1", "n2", "n4"},
      {prim("db", true), prim("vip", true), prim("web"), prim("pg"), prim("app"), prim("mon")});
  def.groups.push_back(cluster::Group{.id = "g", .members = {"vip", "web"}});
  def.clones.push_back(promotable("pg-clone", "pg"));
  def.orders.push_back(cluster::OrderConstraint{.id = "db-g", .first = "db", .then = "g"});
  set_state(def, "n4", NodeState::kStandby);
  return def;
}

TEST(NextEdits, SameInputGivesTheSameEditsInTheSameOrder) {
  ClusterSnapshot def = busy_cluster();
  Assigned assigned{{{"n4", "db"}, Assignment{Role::kStarted, 3}},
                    {{"n1", "pg"}, Assignment{Role::kUnpromoted, 4}},
                    {{"n2", "pg"}, Assignment{Role::kPromoted, 5}},
                    {{"n1", "old"}, Assignment{Role::kStarted, 6}}};
  Reports reported{{{"n4", "db"}, report(true, 3)},
                   {{"n1", "pg"}, report(true, 4)},
                   {{"n2", "pg"}, report(true, 2)}};
  reported[{"n1", "pg"}].state.promotion_score = 5;
  reported[{"n2", "pg"}].state.promotion_score = 10;
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  auto first = next_edits(s, p, assigned, reported);
  EXPECT_FALSE(first.empty());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(next_edits(s, p, assigned, reported), first);

  // Another order of nodes and resources in the definition: the same edits.
  ClusterSnapshot shuffled = def;
  std::reverse(shuffled.nodes.begin(), shuffled.nodes.end());
  std::reverse(shuffled.resources.begin(), shuffled.resources.end());
  ClusterSnapshot s2 = merged(shuffled, assigned, reported);
  EXPECT_EQ(next_edits(s2, plan_of(s2), assigned, reported), first);
}

// ---- next_edits: unreachable nodes whose hold has not expired -------------------------------

TEST(NextEdits, StopOnAnUnreachableNodeWithAValidHoldWritesAStopOrder) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("db", true)});
  set_state(s, "n2", NodeState::kUnclean);
  s.now_ms = 1000;
  s.nodes[1].hold_expires_ms = 1400;
  Plan p;
  p.placement["db"] = {Placed{"n1"}};
  p.actions = {act(1, ActionKind::kStop, "db", "n2"), act(2, ActionKind::kStart, "db", "n1", {1})};
  Assigned assigned{{{"n2", "db"}, Assignment{Role::kStarted, 5}}};
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), (Strings{"put n2/db stopped"}));
  // Once the hold has expired the assignment is deleted, before anything else.
  s.now_ms = 1500;
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), (Strings{"delete n2/db"}));
}

TEST(NextEdits, CleanUpOnAnUnreachableNodeWithAValidHoldWritesAStopOrder) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("db", true), prim("web")});
  set_state(s, "n2", NodeState::kOffline);
  s.now_ms = 1000;
  s.nodes[1].hold_expires_ms = 1400;
  Plan p;
  p.placement["db"] = {Placed{"n1"}};
  p.placement["web"] = {Placed{"n1"}};
  Assigned assigned{{{"n2", "db"}, Assignment{Role::kStarted, 5}},
                    {{"n2", "web"}, Assignment{Role::kStopped, 6}}};
  // The stop order already there stays until it is answered or the hold expires.
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), (Strings{"put n2/db stopped"}));
  s.nodes[1].state = NodeState::kFenced;  // fenced: nothing can run there, whatever the hold
  EXPECT_EQ(brief(next_edits(s, p, assigned, {})), (Strings{"delete n2/db", "delete n2/web"}));
}

// ---- member_state, may_run_on, HoldClock, executor_step ------------------------------------

TEST(MemberState, OnlineOnlyWhileHeardWithinTheHoldAndReady) {
  MemberView m;
  m.last_heard_ms = 1000;
  m.executor_ready = true;
  EXPECT_EQ(member_state(m, 1400, 400), NodeState::kOnline);
  EXPECT_EQ(member_state(m, 1401, 400), NodeState::kOffline);
  m.reports_running = true;
  EXPECT_EQ(member_state(m, 1401, 400), NodeState::kUnclean);
  m.stored_fenced = true;
  EXPECT_EQ(member_state(m, 1401, 400), NodeState::kFenced);
  m.executor_ready = false;  // heard, but its executor has not said it is ready
  EXPECT_EQ(member_state(m, 1100, 400), NodeState::kFenced);
  m.stored_fenced = false;
  EXPECT_EQ(member_state(m, 1100, 400), NodeState::kUnclean);
  MemberView self;
  self.self = true;
  EXPECT_EQ(member_state(self, 99999, 400), NodeState::kOnline);
}

TEST(MayRunOn, ReportsThatRunAndAssignmentsNotAnswered) {
  Assigned assigned{{{"n1", "a"}, Assignment{Role::kStarted, 5}},
                    {{"n2", "b"}, Assignment{Role::kStopped, 7}}};
  Reports reported{{{"n1", "a"}, report(false, 5)}, {{"n2", "b"}, report(false, 3)}};
  EXPECT_FALSE(may_run_on("n1", assigned, reported));  // answered, not running
  EXPECT_TRUE(may_run_on("n2", assigned, reported));   // a stop order not answered yet
  reported[{"n2", "b"}] = report(false, 7);
  EXPECT_FALSE(may_run_on("n2", assigned, reported));
  reported[{"n2", "c"}] = report(true, 0);  // found running by a probe
  EXPECT_TRUE(may_run_on("n2", assigned, reported));
  EXPECT_TRUE(may_run_on("n3", {{{"n3", "a"}, Assignment{Role::kStarted, 9}}}, {}));
  EXPECT_FALSE(may_run_on("n3", assigned, reported));
}

TEST(HoldClock, ExpiresAfterHTimesDriftFromTheLaterOfContactAndLeadership) {
  HoldClock h(400, 0.01);
  EXPECT_EQ(h.expiry(1000, 500), 1404);
  EXPECT_EQ(h.expiry(1000, 2000), 2404);
  EXPECT_EQ(h.expiry(std::nullopt, 2000), 2404);
}

TEST(HoldClock, AnExpiredHoldStaysExpiredUntilTheNodeIsOnline) {
  HoldClock h(400, 0.01);
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {});
  set_state(s, "n2", NodeState::kUnclean);
  std::optional<int64_t> heard = 1000;
  auto last = [&](const std::string&) { return heard; };
  h.apply(s, 1500, 0, last);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 1404);
  EXPECT_FALSE(s.nodes[0].hold_expires_ms.has_value());
  heard = 1600;  // heard again (its executor not ready yet): the hold does not revive
  h.apply(s, 1700, 0, last);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 1404);
  set_state(s, "n2", NodeState::kOnline);
  h.apply(s, 1800, 0, last);
  set_state(s, "n2", NodeState::kOffline);
  s.nodes[1].hold_expires_ms.reset();
  h.apply(s, 1900, 0, last);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 2004);  // online in between: reckoned afresh
  h.apply(s, 2100, 0, last);
  h.clear();  // a new leader reckons from its own start
  h.apply(s, 2100, 2000, last);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 2404);
}

// A new leader waits (up to one hold) for every member to be heard since its election and
// ready; for the previous leader only for the guard.
TEST(NewLeaderWaits, ForEveryMemberUpToAHoldAndThePreviousLeaderForTheGuard) {
  std::map<std::string, int64_t> heard{{"n2", 1010}, {"n3", 900}};
  std::set<std::string> ready{"n2", "n3"};
  auto last = [&](const std::string& m) {
    auto it = heard.find(m);
    return it == heard.end() ? std::optional<int64_t>() : it->second;
  };
  auto is_ready = [&](const std::string& m) { return ready.count(m) > 0; };
  const Strings others{"n2", "n3"};
  // Leader since 1000, hold 400, guard 100; n3 (heard at 900, before the election) is silent.
  EXPECT_TRUE(new_leader_waits(others, 1050, 1000, 400, 100, "", last, is_ready));
  EXPECT_FALSE(new_leader_waits(others, 1400, 1000, 400, 100, "", last, is_ready));  // a hold
  EXPECT_TRUE(new_leader_waits(others, 1050, 1000, 400, 100, "n3", last, is_ready));
  EXPECT_FALSE(new_leader_waits(others, 1100, 1000, 400, 100, "n3", last, is_ready));  // guard
  heard["n3"] = 1020;
  EXPECT_FALSE(new_leader_waits(others, 1050, 1000, 400, 100, "", last, is_ready));
  ready.erase("n2");  // heard, but its executor has not said it is ready
  EXPECT_TRUE(new_leader_waits(others, 1050, 1000, 400, 100, "", last, is_ready));
}

// The previous term's leader held its lease, which ended before this leader was elected:
// only the guard is left, and only until this leader hears from it.
TEST(HoldClock, ThePreviousLeaderGetsTheGuardUntilHeardFrom) {
  HoldClock h(400, 0.01, 100);
  EXPECT_EQ(h.expiry(900, 1000, true), 1101);           // leader since 1000 + 100 × 1.01
  EXPECT_EQ(h.expiry(std::nullopt, 1000, true), 1101);  // never heard
  EXPECT_EQ(h.expiry(1050, 1000, true), 1454);          // heard since: may hold our grant
  EXPECT_EQ(h.expiry(900, 1000, false), 1404);
  ClusterSnapshot s = cluster_of({"n1", "n2", "n3"}, {});
  set_state(s, "n2", NodeState::kUnclean);
  set_state(s, "n3", NodeState::kUnclean);
  auto last = [](const std::string&) { return std::optional<int64_t>(900); };
  h.apply(s, 1200, 1000, last, "n2");
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 1101);  // n2 led the term before
  EXPECT_EQ(s.nodes[2].hold_expires_ms, 1404);  // n3 followed: a full hold
}

// A start proposed to a node and not committed yet keeps its hold from expiring: committed
// after the node resynced, it would be a fresh assignment there.
TEST(HoldClock, AStartInFlightToTheNodeKeepsItsHold) {
  HoldClock h(400, 0.01);
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {});
  set_state(s, "n2", NodeState::kUnclean);
  auto last = [](const std::string&) { return std::optional<int64_t>(1000); };
  PendingEdits pe;
  pe.proposed(AssignmentEdit{false, "n2", "db", Role::kStarted, "start"}, 10, 1300);
  h.apply(s, 1500, 0, last, "", &pe);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 1501);  // not expired while the start is in flight
  PendingEdits stop;
  stop.proposed(AssignmentEdit{false, "n2", "db", Role::kStopped, "stop"}, 10, 1300);
  stop.proposed(AssignmentEdit{true, "n2", "web", Role::kStopped, "gone"}, 10, 1300);
  h.apply(s, 1500, 0, last, "", &stop);
  EXPECT_EQ(s.nodes[1].hold_expires_ms, 1404);  // stops and deletes do not hold it
}

LocalView local(bool running, int64_t token, bool exclusive = true, int64_t blocked = -1,
                int64_t synced_at = 0) {
  LocalView l;
  l.running = running;
  l.exclusive = exclusive;
  l.token = token;
  l.blocked_token = blocked;
  l.synced_at = synced_at;
  return l;
}

TEST(ExecutorStep, HoldLostStopsAnExclusiveResourceAndBlocksItsToken) {
  auto d = executor_step(local(true, 4), Assignment{Role::kStarted, 4}, false, false);
  EXPECT_EQ(d.step, ExecStep::kStop);
  EXPECT_EQ(d.blocked_token, 4);
  EXPECT_STREQ(d.why, "hold lost");
  // Not exclusive: left running; nothing is done without the hold.
  EXPECT_EQ(executor_step(local(true, 4, false), Assignment{Role::kStarted, 4}, false, false).step,
            ExecStep::kNone);
  EXPECT_EQ(executor_step(local(false, 3), Assignment{Role::kStarted, 4}, false, false).step,
            ExecStep::kNone);
}

// An agent restarted while a start ran: its start-up probe finds the resource running, and
// with no hold yet it is stopped under a token it never answered (its reports say 0). Once
// the hold is back the blocked token is answered, or the coordinator would wait for it
// forever (the group's next member with it).
TEST(ExecutorStep, ABlockedTokenIsAnsweredEvenIfItWasNeverAnsweredBefore) {
  auto d = executor_step(local(true, 0), Assignment{Role::kStarted, 156}, false, false);
  EXPECT_EQ(d.step, ExecStep::kStop);
  EXPECT_EQ(d.blocked_token, 156);
  d = executor_step(local(false, 0, true, 156, 231), Assignment{Role::kStarted, 156}, true, true);
  EXPECT_EQ(d.step, ExecStep::kNone);
  EXPECT_EQ(d.token, 156);
}

TEST(ExecutorStep, StartsStopsAndAnswersAsAssigned) {
  auto d = executor_step(local(false, 3), Assignment{Role::kStarted, 4}, true, true);
  EXPECT_EQ(d.step, ExecStep::kStart);
  EXPECT_EQ(d.token, 4);
  d = executor_step(local(true, 3), std::nullopt, true, true);
  EXPECT_EQ(d.step, ExecStep::kStop);
  EXPECT_STREQ(d.why, "not assigned");
  d = executor_step(local(true, 3), Assignment{Role::kStopped, 6}, true, true);
  EXPECT_EQ(d.step, ExecStep::kStop);
  EXPECT_EQ(d.token, 6);  // answered once the stop is done
  d = executor_step(local(false, 3), Assignment{Role::kStopped, 6}, true, true);
  EXPECT_EQ(d.step, ExecStep::kNone);
  EXPECT_EQ(d.token, 6);
  d = executor_step(local(true, 3), Assignment{Role::kStarted, 8}, true, true);
  EXPECT_EQ(d.step, ExecStep::kNone);
  EXPECT_EQ(d.token, 8);  // runs as assigned: the new token is answered
  EXPECT_EQ(executor_step(local(false, 3, true, 4), Assignment{Role::kStarted, 4}, true, true).step,
            ExecStep::kNone);  // failed under this token: waits for a new one
  LocalView promoted = local(true, 3);
  promoted.role = Role::kPromoted;
  EXPECT_EQ(executor_step(local(true, 3), Assignment{Role::kPromoted, 9}, true, true).step,
            ExecStep::kPromote);
  EXPECT_EQ(executor_step(promoted, Assignment{Role::kUnpromoted, 9}, true, true).step,
            ExecStep::kDemote);
}

TEST(ExecutorStep, AfterRegainingTheHoldAnOldAssignmentIsAnsweredNotStarted) {
  // Assigned at revision 10, synced at 12: the leader may have given up on this node's hold
  // and started the resource elsewhere, its delete not committed yet.
  auto d = executor_step(local(false, 3, true, -1, 12), Assignment{Role::kStarted, 10}, true, true);
  EXPECT_EQ(d.step, ExecStep::kNone);
  EXPECT_EQ(d.token, 10);
  EXPECT_EQ(d.blocked_token, 10);
  // A new assignment (written after the sync) is started; so is a resource that is not
  // exclusive; one that runs just answers.
  EXPECT_EQ(
      executor_step(local(false, 10, true, 10, 12), Assignment{Role::kStarted, 13}, true, true)
          .step,
      ExecStep::kStart);
  EXPECT_EQ(
      executor_step(local(false, 3, false, -1, 12), Assignment{Role::kStarted, 10}, true, true)
          .step,
      ExecStep::kStart);
  d = executor_step(local(true, 3, true, -1, 12), Assignment{Role::kStarted, 10}, true, true);
  EXPECT_EQ(d.step, ExecStep::kNone);
  EXPECT_EQ(d.token, 10);
}

// ---- the whole loop --------------------------------------------------------------------------

// The store's assignments and reports, executors that act on them like the daemon's
// (an action takes `delay` rounds; the report is published when it completes), and checkers
// that run after every change.
class FakeCluster {
 public:
  explicit FakeCluster(ClusterSnapshot def) : def_(std::move(def)) {}

  ClusterSnapshot def_;
  Assigned assigned_;
  Reports reported_;
  std::map<NodeResource, int> delay_;          // rounds an action takes; default 0
  std::set<NodeResource> fail_start_;          // starts that fail
  std::map<NodeResource, int64_t> promotion_;  // what the agent reports as promotion score
  std::vector<std::string> log_;               // every edit, for determinism checks
  std::vector<std::string> violations_;

  // Runs rounds until the plan is empty, the edits too and everything is answered; returns
  // the number of rounds, or -1 after `max_rounds`.
  //
  // With `commit_lag_` > 0 an edit reaches the store (and the executors) that many rounds
  // after it was proposed, and the coordinator plans meanwhile, as the daemon does: on the
  // committed state with its PendingEdits overlaid (unless `use_pending_` is off, to show
  // that the checkers catch what the overlay prevents).
  int converge(int max_rounds = 60) {
    for (int round = 0; round < max_rounds; ++round) {
      ++round_;
      commit_due();
      pending_.settle(assigned_, round_, 1000);
      Assigned view = use_pending_ ? pending_.overlay(assigned_) : assigned_;
      ClusterSnapshot s = merged(def_, view, reported_);
      auto p = plan(s);
      if (!p) {
        violations_.push_back("plan: " + p.error().message());
        return -1;
      }
      plan_ = *p;
      auto edits = next_edits(s, *p, view, reported_);
      if (p->actions.empty() && edits.empty() && idle() && in_flight_.empty()) return round;
      if (commit_lag_ > 0) {
        for (const auto& e : edits) {
          in_flight_.push_back({round_ + commit_lag_, e});
          pending_.proposed(e, revision_, round_);
        }
      } else {
        apply(edits);
      }
      for (const auto& n : def_.nodes) step(n.name);
    }
    return -1;
  }

  int commit_lag_ = 0;
  bool use_pending_ = true;

  // The node is lost: what ran there is gone, its reports stay in the store.
  void lose(const std::string& node, NodeState state) {
    set_state(def_, node, state);
    std::erase_if(local_, [&](const auto& kv) { return kv.first.first == node; });
  }

  // The node comes back: its executor probes what it reported before (nothing runs).
  void restart(const std::string& node, NodeState state = NodeState::kOnline) {
    set_state(def_, node, state);
    std::erase_if(local_, [&](const auto& kv) { return kv.first.first == node; });
    for (const auto& [key, r] : reported_) {
      if (key.first != node) continue;
      Local& l = local_[key];
      l.token = r.token;
      l.fail_count = r.state.fail_count;
      l.last_failure_ms = r.state.last_failure_ms;
    }
    for (auto& [key, l] : local_) {
      if (key.first == node) publish(key, l);
    }
    check();
    step(node);  // then it acts on its assignments at once
  }

  // The agent reports a new promotion score (with its next monitor).
  void rescore(const NodeResource& key, int64_t score) {
    promotion_[key] = score;
    auto it = local_.find(key);
    if (it != local_.end() && it->second.busy == Op::kNone) publish(key, it->second);
  }

  // vigil resource cleanup: fail counts and the memory of failed tokens are cleared.
  void cleanup(const NodeResource& key) {
    fail_start_.erase(key);
    auto it = local_.find(key);
    if (it == local_.end()) return;
    it->second.fail_count = 0;
    it->second.failed = false;
    it->second.blocked = -1;
    publish(key, it->second);
    step(key.first);  // the executor adopts the cleanup at once
  }

  // After convergence: every placed copy is assigned and runs, nothing else is assigned.
  void expect_assignments_match_placement() const {
    std::set<NodeResource> placed;
    for (const auto& [r, where] : plan_.placement) {
      for (const auto& pl : where) placed.insert({pl.node, r});
    }
    std::set<NodeResource> have;
    for (const auto& [key, a] : assigned_) have.insert(key);
    EXPECT_EQ(have, placed);
    for (const auto& key : placed) {
      auto it = local_.find(key);
      EXPECT_TRUE(it != local_.end() && it->second.running && !it->second.failed)
          << key.first << "/" << key.second << " does not run";
    }
    for (const auto& [key, l] : local_) {
      if (l.running) {
        EXPECT_TRUE(placed.contains(key)) << key.first << "/" << key.second << " runs";
      }
    }
  }

  std::string where_assigned(const std::string& resource) const {
    std::string out;
    for (const auto& [key, a] : assigned_) {
      if (key.second == resource && a.role != Role::kStopped) {
        out += (out.empty() ? "" : " ") + key.first;
      }
    }
    return out;
  }

  bool running_on(const NodeResource& key, Role role = Role::kStarted) const {
    auto it = local_.find(key);
    if (it == local_.end() || !it->second.running || it->second.busy != Op::kNone) return false;
    return role != Role::kPromoted || it->second.role == Role::kPromoted;
  }

  const Plan& last_plan() const { return plan_; }

 private:
  enum class Op { kNone, kStart, kStop, kPromote, kDemote };
  struct Local {
    bool running = false;
    Role role = Role::kStarted;
    bool failed = false;
    int64_t fail_count = 0;
    int64_t last_failure_ms = 0;
    int64_t token = 0;
    int64_t blocked = -1;  // failed under this token: act again only on a new one
    Op busy = Op::kNone;
    int remaining = 0;
  };

  bool idle() const {
    for (const auto& [key, l] : local_) {
      if (l.busy != Op::kNone) return false;
    }
    for (const auto& [key, a] : assigned_) {
      if (!acts(key.first)) continue;
      auto r = reported_.find(key);
      if (r == reported_.end() || r->second.token < a.token) return false;
    }
    return true;
  }

  NodeState state_of(const std::string& node) const {
    for (const auto& n : def_.nodes) {
      if (n.name == node) return n.state;
    }
    return NodeState::kOffline;
  }

  bool acts(const std::string& node) const {
    NodeState st = state_of(node);
    return st == NodeState::kOnline || st == NodeState::kStandby;
  }

  void commit_due() {
    std::vector<AssignmentEdit> due;
    std::erase_if(in_flight_, [&](const auto& f) {
      if (f.first > round_) return false;
      due.push_back(f.second);
      return true;
    });
    apply(due);
  }

  void apply(const std::vector<AssignmentEdit>& edits) {
    for (const auto& e : edits) {
      NodeResource key{e.node, e.resource};
      if (e.remove) {
        assigned_.erase(key);
      } else {
        assigned_[key] = Assignment{e.role, ++revision_};
      }
      log_.push_back((e.remove ? "delete " : "put ") + e.node + "/" + e.resource + " " +
                     std::string(cluster::role_name(e.role)) + ": " + e.why);
    }
    check();
  }

  // One round of one node's executor: in-flight actions progress, then it acts on its
  // assignments (daemon/cluster_service.cc reconcile()).
  void step(const std::string& node) {
    NodeState st = state_of(node);
    if (st != NodeState::kOnline && st != NodeState::kStandby && st != NodeState::kMaintenance) {
      return;
    }
    for (auto& [key, l] : local_) {
      if (key.first != node || l.busy == Op::kNone) continue;
      if (--l.remaining <= 0) complete(key, l);
    }
    if (st == NodeState::kMaintenance) return;
    std::set<NodeResource> keys;
    for (const auto& [key, l] : local_) {
      if (key.first == node) keys.insert(key);
    }
    for (const auto& [key, a] : assigned_) {
      if (key.first == node) keys.insert(key);
    }
    for (const auto& key : keys) {
      Local& l = local_[key];
      if (l.busy != Op::kNone) continue;
      auto it = assigned_.find(key);
      if (it == assigned_.end() || it->second.role == Role::kStopped) {
        // Unassigned, or a stop order: stopped, and the order's token answered.
        bool answer = it != assigned_.end() && l.token != it->second.token;
        if (answer) l.token = it->second.token;
        if (l.running) {
          begin(key, l, Op::kStop);
        } else if (answer) {
          publish(key, l);
        }
        continue;
      }
      const Assignment& a = it->second;
      if (a.token == l.blocked) continue;
      if (!l.running) {
        l.token = a.token;
        begin(key, l, Op::kStart);
      } else if (a.role == Role::kPromoted && l.role != Role::kPromoted) {
        l.token = a.token;
        begin(key, l, Op::kPromote);
      } else if (a.role != Role::kPromoted && l.role == Role::kPromoted) {
        l.token = a.token;
        begin(key, l, Op::kDemote);
      } else if (l.token != a.token) {
        l.token = a.token;
        publish(key, l);
      }
    }
  }

  void begin(const NodeResource& key, Local& l, Op op) {
    if (op == Op::kStart || op == Op::kPromote) check_order(key, op);
    l.busy = op;
    auto d = delay_.find(key);
    l.remaining = d == delay_.end() ? 0 : d->second;
    check();
    if (l.remaining <= 0) complete(key, l);
  }

  void complete(const NodeResource& key, Local& l) {
    Op op = l.busy;
    l.busy = Op::kNone;
    switch (op) {
      case Op::kStart:
        if (fail_start_.contains(key)) {
          // The daemon's fail(): counted, stopped to clean up, blocked until a new token.
          l.failed = true;
          l.fail_count = cluster::kInfinity;
          l.last_failure_ms = 1000;
          l.blocked = l.token;
          l.running = false;
        } else {
          l.running = true;
          l.failed = false;
          l.role = Role::kStarted;
        }
        break;
      case Op::kStop:
        l.running = false;
        l.role = Role::kStarted;
        break;
      case Op::kPromote:
        l.role = Role::kPromoted;
        break;
      case Op::kDemote:
        l.role = Role::kStarted;
        break;
      case Op::kNone:
        break;
    }
    publish(key, l);
    check();
  }

  void publish(const NodeResource& key, const Local& l) {
    Reported r;
    r.state.running = l.running;
    r.state.role = l.role;
    r.state.failed = l.failed;
    r.state.fail_count = l.fail_count;
    r.state.last_failure_ms = l.last_failure_ms;
    auto p = promotion_.find(key);
    if (p != promotion_.end() && l.running) r.state.promotion_score = p->second;
    r.token = l.token;
    reported_[key] = r;
  }

  // A start or promote begins only once what it is ordered after has completed.
  void check_order(const NodeResource& key, Op op) {
    auto members = [&](const std::string& id) -> Strings {
      for (const auto& g : def_.groups) {
        if (g.id == id) return g.members;
      }
      for (const auto& c : def_.clones) {
        if (c.id == id) return {c.resource};
      }
      return {id};
    };
    if (op == Op::kStart) {
      for (const auto& g : def_.groups) {
        for (size_t i = 1; i < g.members.size(); ++i) {
          if (g.members[i] != key.second) continue;
          if (!running_on({key.first, g.members[i - 1]})) {
            violations_.push_back("start " + key.second + " on " + key.first + " before " +
                                  g.members[i - 1] + " runs there");
          }
        }
      }
    }
    for (const auto& c : def_.orders) {
      bool then_promote = c.then_action == cluster::OrderAction::kPromote;
      if (then_promote != (op == Op::kPromote)) continue;
      Strings thens = members(c.then);
      if (std::find(thens.begin(), thens.end(), key.second) == thens.end()) continue;
      Role need =
          c.first_action == cluster::OrderAction::kPromote ? Role::kPromoted : Role::kStarted;
      bool done = false;
      for (const auto& f : members(c.first)) {
        for (const auto& n : def_.nodes) done = done || running_on({n.name, f}, need);
      }
      if (!done) {
        violations_.push_back("start " + key.second + " on " + key.first + " before " + c.first +
                              " is done (order " + c.id + ")");
      }
    }
  }

  // Exclusive resources: assigned on one node at most, possibly active on one at most.
  // Promotable clones: possibly promoted on promoted_max nodes at most.
  void check() {
    for (const auto& r : def_.resources) {
      if (!r.meta.exclusive) continue;
      std::string assigned = where_assigned(r.id);
      if (assigned.find(' ') != std::string::npos) {
        violations_.push_back("exclusive " + r.id + " assigned on " + assigned);
      }
      std::string active;
      for (const auto& [key, l] : local_) {
        if (key.second == r.id && (l.running || l.busy == Op::kStart || l.busy == Op::kStop)) {
          active += " " + key.first;
        }
      }
      if (std::count(active.begin(), active.end(), ' ') > 1) {
        violations_.push_back("exclusive " + r.id + " active on" + active);
      }
    }
    for (const auto& c : def_.clones) {
      if (!c.promotable) continue;
      std::string promoted;
      int64_t count = 0;
      for (const auto& [key, l] : local_) {
        if (key.second != c.resource) continue;
        if ((l.running && l.role == Role::kPromoted) || l.busy == Op::kPromote ||
            l.busy == Op::kDemote) {
          promoted += " " + key.first;
          ++count;
        }
      }
      if (count > c.promoted_max) {
        violations_.push_back(c.resource + " possibly promoted on" + promoted);
      }
    }
  }

  std::map<NodeResource, Local> local_;
  int64_t revision_ = 0;
  int64_t round_ = 0;
  PendingEdits pending_;
  std::vector<std::pair<int64_t, AssignmentEdit>> in_flight_;  // (round it commits, edit)
  Plan plan_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

TEST(CoordinatorLoop, ConvergesFromNothing) {
  FakeCluster c(busy_cluster());
  EXPECT_GT(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  std::string db = c.where_assigned("db");
  EXPECT_TRUE(!db.empty() && db.find(' ') == std::string::npos) << db;
  EXPECT_EQ(c.where_assigned("vip"), c.where_assigned("web"));
}

TEST(CoordinatorLoop, SlowStartsKeepTheOrderAndHoldBackNothingElse) {
  FakeCluster c(busy_cluster());
  for (std::string n : {"n1", "n2", "n3"}) {
    c.delay_[{n, "db"}] = 4;
    c.delay_[{n, "vip"}] = 3;
  }
  c.promotion_[{"n2", "pg"}] = 10;
  EXPECT_GT(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  // mon and app do not wait for db, which vip (and web after it) wait for.
  auto assigned_before_vip = [&](const std::string& what) {
    for (const auto& l : c.log_) {
      if (l.rfind("put " + c.where_assigned("vip") + "/vip", 0) == 0) return false;
      if (l.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(assigned_before_vip("/mon ")) << joined(c.log_);
  EXPECT_TRUE(assigned_before_vip("/app ")) << joined(c.log_);
  EXPECT_TRUE(c.running_on({"n2", "pg"}, Role::kPromoted));
}

TEST(CoordinatorLoop, StandbyMovesExclusiveResourcesWithoutOverlap) {
  FakeCluster c(busy_cluster());
  ASSERT_GE(c.converge(), 0);
  std::string was = c.where_assigned("db");
  ASSERT_FALSE(was.empty());
  for (const auto& n : c.def_.nodes) {
    c.delay_[{n.name, "db"}] = 3;
    c.delay_[{n.name, "vip"}] = 2;
    c.delay_[{n.name, "web"}] = 2;
  }
  set_state(c.def_, was, NodeState::kStandby);
  set_state(c.def_, "n4", NodeState::kOnline);
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  EXPECT_NE(c.where_assigned("db"), was);
  EXPECT_FALSE(c.where_assigned("db").empty());
}

TEST(CoordinatorLoop, LostNodeLosesItsAssignmentsAndComesBackClean) {
  FakeCluster c(busy_cluster());
  ASSERT_GE(c.converge(), 0);
  const std::string lost = c.where_assigned("db");
  c.lose(lost, NodeState::kOffline);
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  for (const auto& [key, a] : c.assigned_) EXPECT_NE(key.first, lost) << key.second;
  EXPECT_FALSE(c.where_assigned("db").empty());

  c.restart(lost);
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
}

TEST(CoordinatorLoop, FailedStartMovesAndACleanupDoesNotStartItTwice) {
  FakeCluster c(cluster_of({"n1", "n2"}, {prim("db", true)}));
  c.fail_start_.insert({"n1", "db"});
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  EXPECT_EQ(c.where_assigned("db"), "n2");

  // The operator clears n1's failure; n1 must not start db while n2 runs it.
  c.cleanup({"n1", "db"});
  EXPECT_EQ(joined(c.violations_), "");
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();

  // An executor restart forgets failed tokens just the same.
  FakeCluster d(cluster_of({"n1", "n2"}, {prim("db", true)}));
  d.fail_start_.insert({"n1", "db"});
  EXPECT_GE(d.converge(), 0);
  d.restart("n1");
  EXPECT_GE(d.converge(), 0);
  EXPECT_EQ(joined(d.violations_), "");
  EXPECT_EQ(d.where_assigned("db"), "n2");
}

TEST(CoordinatorLoop, StopWhileTheStartIsUnderWayWaitsForIt) {
  // n1 is slow to start db; the operator puts n1 in standby before it finished. The stop
  // order is answered only after the start completed and the stop ran: n2 waits for that.
  FakeCluster c(cluster_of({"n1", "n2"}, {prim("db", true)}));
  c.delay_[{"n1", "db"}] = 4;
  c.delay_[{"n2", "db"}] = 2;
  ASSERT_EQ(c.converge(2), -1);  // the start on n1 is under way
  ASSERT_EQ(c.where_assigned("db"), "n1");
  set_state(c.def_, "n1", NodeState::kStandby);
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  EXPECT_EQ(c.where_assigned("db"), "n2");
}

// Proposals commit two rounds after they are made; the coordinator plans in between.
TEST(CoordinatorLoop, CommitLagChangesNothing) {
  for (int lag : {1, 2, 3}) {
    FakeCluster c(busy_cluster());
    c.commit_lag_ = lag;
    for (const auto& n : c.def_.nodes) c.delay_[{n.name, "db"}] = 2;
    EXPECT_GT(c.converge(), 0) << lag;
    EXPECT_EQ(joined(c.violations_), "") << lag;
    c.expect_assignments_match_placement();
    const std::string was = c.where_assigned("db");
    set_state(c.def_, was, NodeState::kStandby);
    set_state(c.def_, "n4", NodeState::kOnline);
    EXPECT_GE(c.converge(), 0) << lag;
    EXPECT_EQ(joined(c.violations_), "") << lag;
    c.expect_assignments_match_placement();
    c.lose(c.where_assigned("db"), NodeState::kOffline);
    EXPECT_GE(c.converge(), 0) << lag;
    EXPECT_EQ(joined(c.violations_), "") << lag;
    c.expect_assignments_match_placement();
  }
}

// A plan made while a start is still being committed: the operator moves db to n2 right
// after the coordinator proposed its start on n1. The pending start counts as possibly
// running, so n1 is told to stop before n2 starts. Without the overlay the checker sees db
// assigned on both.
TEST(CoordinatorLoop, PlanDuringACommitSeesThePendingStart) {
  for (bool use_pending : {true, false}) {
    FakeCluster c(cluster_of({"n1", "n2"}, {prim("db", true)}));
    c.commit_lag_ = 2;
    c.use_pending_ = use_pending;
    ASSERT_EQ(c.converge(1), -1);  // start on n1 proposed, not committed
    c.def_.locations.push_back(cluster::LocationConstraint{
        .id = "move-db", .resource = "db", .score = cluster::kInfinity, .node = "n2"});
    EXPECT_GE(c.converge(), 0);
    if (use_pending) {
      EXPECT_EQ(joined(c.violations_), "");
      c.expect_assignments_match_placement();
      EXPECT_EQ(c.where_assigned("db"), "n2");
    } else {
      EXPECT_NE(joined(c.violations_).find("exclusive db assigned on n1 n2"), std::string::npos)
          << joined(c.violations_);
    }
  }
}

TEST(CoordinatorLoop, PromotionMovesWithoutTwoPromotedCopies) {
  ClusterSnapshot def = cluster_of({"n1", "n2"}, {prim("pg"), prim("app")});
  def.clones.push_back(promotable("pg-clone", "pg"));
  def.orders.push_back(cluster::OrderConstraint{.id = "pg-app",
                                                .first = "pg-clone",
                                                .then = "app",
                                                .first_action = cluster::OrderAction::kPromote});
  FakeCluster c(def);
  c.promotion_[{"n1", "pg"}] = 10;
  c.promotion_[{"n2", "pg"}] = 5;
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  EXPECT_TRUE(c.running_on({"n1", "pg"}, Role::kPromoted));

  // The agent on n2 now prefers n2; the demote on n1 is slow.
  c.delay_[{"n1", "pg"}] = 3;
  c.delay_[{"n2", "pg"}] = 2;
  c.rescore({"n2", "pg"}, 50);
  EXPECT_GE(c.converge(), 0);
  EXPECT_EQ(joined(c.violations_), "");
  c.expect_assignments_match_placement();
  EXPECT_TRUE(c.running_on({"n2", "pg"}, Role::kPromoted));
  EXPECT_FALSE(c.running_on({"n1", "pg"}, Role::kPromoted));
}

TEST(CoordinatorLoop, SameScenarioGivesTheSameEdits) {
  auto run = [] {
    FakeCluster c(busy_cluster());
    for (std::string n : {"n1", "n2", "n3"}) c.delay_[{n, "db"}] = 2;
    c.promotion_[{"n3", "pg"}] = 7;
    EXPECT_GE(c.converge(), 0);
    set_state(c.def_, "n1", NodeState::kStandby);
    EXPECT_GE(c.converge(), 0);
    return c.log_;
  };
  Strings a = run();
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(run(), a);
}

// ---- clone copies on one node (clone_node_max > 1) ----------------------------------------

ClusterSnapshot copies_cluster(int64_t clone_max, int64_t node_max) {
  ClusterSnapshot s = cluster_of({"n1", "n2"}, {prim("worker")});
  s.clones.push_back(cluster::Clone{
      .id = "workers", .resource = "worker", .clone_max = clone_max, .clone_node_max = node_max});
  return s;
}

// fold_clone_instances() over `reported` (clone primitive "worker"): n1's folded report.
Reported folded(Reports reported, const Assigned& assigned) {
  fold_clone_instances(reported, assigned, {"worker"});
  return reported[NodeResource("n1", "worker")];
}

TEST(CloneInstances, CopyZeroIsThePrimitiveTheOthersAreNumbered) {
  EXPECT_EQ(clone_instance_id("worker", 0), "worker");
  EXPECT_EQ(clone_instance_id("worker", 2), "worker:2");
  const std::set<std::string> prims{"worker", "db:7"};
  EXPECT_EQ(split_clone_instance("worker:2", prims), std::make_pair(std::string("worker"), 2L));
  EXPECT_EQ(split_clone_instance("worker:12", prims), std::make_pair(std::string("worker"), 12L));
  // Not an instance: copy 0 is the primitive, no leading zeros, digits only, a known
  // primitive, and not a resource of its own.
  for (const char* id : {"worker", "worker:0", "worker:01", "worker:", "worker:x", "web:1", "db:7",
                         "worker:99999999999"}) {
    EXPECT_EQ(split_clone_instance(id, prims), std::nullopt) << id;
  }
}

TEST(CloneInstances, ReportsOfTheCopiesFoldIntoOne) {
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 9, 3}}};
  Reports reported{{{"n1", "worker"}, report(true, 9)},
                   {{"n1", "worker:1"}, report(true, 9)},
                   {{"n1", "worker:2"}, report(true, 9)},
                   {{"n1", "web"}, report(true, 4)}};
  fold_clone_instances(reported, assigned, {"worker"});
  ASSERT_EQ(reported.size(), 2u);
  const Reported& r = reported[NodeResource("n1", "worker")];
  EXPECT_TRUE(r.state.running);
  EXPECT_EQ(r.state.copies, 3);
  EXPECT_EQ(r.token, 9);  // every copy answered
  EXPECT_EQ(reported[NodeResource("n1", "web")].token, 4);
}

TEST(CloneInstances, TheAssignmentIsAnsweredOnlyWhenEveryCopyAnswered) {
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 9, 3}}};
  // Copy 2 still answers the old token; copy 1 has no report yet.
  Reported r = folded({{{"n1", "worker"}, report(true, 9)}, {{"n1", "worker:2"}, report(true, 5)}},
                      assigned);
  EXPECT_EQ(r.token, 0);
  EXPECT_EQ(r.state.copies, 2);
  // Copies 0, 1 and 2 running; copy 2 answers `copy2`'s token.
  auto three = [](Reported copy2) {
    return Reports{{{"n1", "worker"}, report(true, 9)},
                   {{"n1", "worker:1"}, report(true, 9)},
                   {{"n1", "worker:2"}, copy2}};
  };
  EXPECT_EQ(folded(three(report(true, 5)), assigned).token, 5);
  // A copy the assignment no longer asks for counts while it runs, and the node has not
  // answered until it stopped.
  assigned[NodeResource("n1", "worker")].copies = 2;
  r = folded(three(report(true, 5)), assigned);
  EXPECT_EQ(r.token, 5);
  EXPECT_EQ(r.state.copies, 3);
  r = folded(three(report(false, 5)), assigned);
  EXPECT_EQ(r.token, 9);
  EXPECT_EQ(r.state.copies, 2);
}

TEST(CloneInstances, AStopOrderIsAnsweredOnceEveryCopyStopped) {
  // Copy 0 stopped and answered the stop order; copy 1 is still stopping.
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStopped, 12}}};
  Reports reported{{{"n1", "worker"}, report(false, 12)}, {{"n1", "worker:1"}, report(true, 9)}};
  fold_clone_instances(reported, assigned, {"worker"});
  EXPECT_EQ(reported[NodeResource("n1", "worker")].token, 9);  // not answered
  EXPECT_TRUE(reported[NodeResource("n1", "worker")].state.running);
  // So the coordinator waits: no second stop order.
  ClusterSnapshot s = copies_cluster(2, 2);
  Plan p;
  p.actions = {act(1, ActionKind::kStop, "worker", "n1")};
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
  // Copy 1 stopped and answered too: done, and the order is deleted.
  reported = {{{"n1", "worker"}, report(false, 12)}, {{"n1", "worker:1"}, report(false, 12)}};
  fold_clone_instances(reported, assigned, {"worker"});
  EXPECT_EQ(reported[NodeResource("n1", "worker")].token, 12);
  EXPECT_FALSE(reported[NodeResource("n1", "worker")].state.running);
  EXPECT_EQ(brief(next_edits(s, Plan{}, assigned, reported)), Strings{"delete n1/worker"});
}

TEST(CloneInstances, ACopyCountThePlanNoLongerActsOnIsCorrected) {
  // n1 was asked for two copies, one failed and stopped, and clone_max went down so the
  // placement keeps one there: no action, but the assignment still says two.
  ClusterSnapshot def = copies_cluster(2, 2);
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 5, 2}},
                    {{"n2", "worker"}, Assignment{Role::kStarted, 6}}};
  Reports reported{{{"n1", "worker"}, report(true, 5)},
                   {{"n1", "worker:1"}, failed_report(5, 1)},
                   {{"n2", "worker"}, report(true, 6)}};
  fold_clone_instances(reported, assigned, {"worker"});
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  ASSERT_TRUE(p.actions.empty()) << labels(p).front();
  auto edits = next_edits(s, p, assigned, reported);
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0].node, "n1");
  EXPECT_EQ(edits[0].copies, 1);
  EXPECT_FALSE(edits[0].remove);
}

TEST(CloneInstances, AFailedCopyThatStoppedLowersTheCountAndKeepsItsFailCount) {
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 9, 2}}};
  Reported r = folded(
      {{{"n1", "worker"}, report(true, 9)}, {{"n1", "worker:1"}, failed_report(9, 2)}}, assigned);
  EXPECT_TRUE(r.state.running);
  EXPECT_EQ(r.state.copies, 1);
  EXPECT_FALSE(r.state.failed);  // the plan starts a copy again, the other runs on
  EXPECT_EQ(r.state.fail_count, 2);
  // A copy whose stop failed may still run: the whole is failed (recovered by a restart).
  Reported stuck = failed_report(9, 2);
  stuck.state.running = true;
  EXPECT_TRUE(folded({{{"n1", "worker"}, report(true, 9)}, {{"n1", "worker:1"}, stuck}}, assigned)
                  .state.failed);
  // No copy runs and one failed: failed.
  r = folded({{{"n1", "worker"}, report(false, 9)}, {{"n1", "worker:1"}, failed_report(9, 1)}},
             assigned);
  EXPECT_FALSE(r.state.running);
  EXPECT_TRUE(r.state.failed);
}

TEST(CloneInstances, UnansweredAssignmentCountsItsCopies) {
  ClusterSnapshot s = copies_cluster(4, 2);
  merge_status(s, {{{"n1", "worker"}, Assignment{Role::kStarted, 5, 2}}}, {});
  EXPECT_EQ(s.status["worker"]["n1"].copies, 2);
}

TEST(CloneInstances, StartWritesThePlacedCopiesAndAPartialStopRewritesThem) {
  ClusterSnapshot def = copies_cluster(4, 2);
  Plan p = plan_of(def);
  auto edits = next_edits(def, p, {}, {});
  ASSERT_EQ(edits.size(), 2u);
  for (const auto& e : edits) {
    EXPECT_EQ(e.copies, 2) << e.node;
    EXPECT_EQ(e.role, Role::kStarted);
  }
  // Both nodes run two copies: nothing to do.
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 5, 2}},
                    {{"n2", "worker"}, Assignment{Role::kStarted, 6, 2}}};
  Reports reported{{{"n1", "worker"}, report(true, 5)},
                   {{"n1", "worker:1"}, report(true, 5)},
                   {{"n2", "worker"}, report(true, 6)},
                   {{"n2", "worker:1"}, report(true, 6)}};
  fold_clone_instances(reported, assigned, {"worker"});
  EXPECT_TRUE(plan_of(merged(def, assigned, reported)).actions.empty());
  // clone_max 3: one node keeps one copy, by a rewrite of its assignment, not a stop order.
  ClusterSnapshot three = copies_cluster(3, 2);
  ClusterSnapshot s = merged(three, assigned, reported);
  p = plan_of(s);
  ASSERT_EQ(p.actions.size(), 1u) << labels(p).front();
  EXPECT_EQ(p.actions[0].kind, ActionKind::kStop);
  edits = next_edits(s, p, assigned, reported);
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_FALSE(edits[0].remove);
  EXPECT_EQ(edits[0].role, Role::kStarted);
  EXPECT_EQ(edits[0].copies, 1);
  // Written, not answered yet: the copy that stops may still run, and nothing is rewritten.
  const std::string n = edits[0].node;
  assigned[NodeResource(n, "worker")] = Assignment{Role::kStarted, 10, 1};
  s = merged(three, assigned, reported);
  EXPECT_EQ(brief(next_edits(s, plan_of(s), assigned, reported)), Strings{});
  // Answered with one copy: done.
  reported = {{{n, "worker"}, report(true, 10)},
              {{n == "n1" ? "n2" : "n1", "worker"}, report(true, n == "n1" ? 6 : 5)},
              {{n == "n1" ? "n2" : "n1", "worker:1"}, report(true, n == "n1" ? 6 : 5)}};
  fold_clone_instances(reported, assigned, {"worker"});
  s = merged(three, assigned, reported);
  p = plan_of(s);
  EXPECT_TRUE(p.actions.empty()) << labels(p).front();
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{});
}

TEST(CloneInstances, AnsweredWithTooFewCopiesIsAskedAgain) {
  ClusterSnapshot def = copies_cluster(2, 2);
  def.nodes.pop_back();  // n1 alone: two copies there
  Assigned assigned{{{"n1", "worker"}, Assignment{Role::kStarted, 5, 2}}};
  // Copy 1 failed to start and was cleaned up: the node answered with one copy running.
  Reports reported{{{"n1", "worker"}, report(true, 5)}, {{"n1", "worker:1"}, report(false, 5)}};
  fold_clone_instances(reported, assigned, {"worker"});
  ClusterSnapshot s = merged(def, assigned, reported);
  Plan p = plan_of(s);
  EXPECT_EQ(brief(next_edits(s, p, assigned, reported)), Strings{"put n1/worker started"});
}

}  // namespace
}  // namespace vigil::sched
