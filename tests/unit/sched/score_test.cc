// Score arithmetic: saturation at ±INFINITY, -INFINITY winning, parsing and printing.
#include "sched/score.h"

#include <gtest/gtest.h>

namespace vigil::sched {
namespace {

constexpr int64_t kInf = kInfinity;

TEST(ScoreAdd, FiniteSums) {
  EXPECT_EQ(score_add(100, 50), 150);
  EXPECT_EQ(score_add(-100, 50), -50);
  EXPECT_EQ(score_add(0, 0), 0);
}

TEST(ScoreAdd, MinusInfinityWinsOverPlusInfinity) {
  EXPECT_EQ(score_add(kInf, -kInf), -kInf);
  EXPECT_EQ(score_add(-kInf, kInf), -kInf);
}

TEST(ScoreAdd, InfinityAbsorbsFiniteValues) {
  EXPECT_EQ(score_add(kInf, 5), kInf);
  EXPECT_EQ(score_add(kInf, -999999), kInf);
  EXPECT_EQ(score_add(-kInf, 999999), -kInf);
  EXPECT_EQ(score_add(kInf, kInf), kInf);
}

TEST(ScoreAdd, FiniteSumsClampAtInfinity) {
  EXPECT_EQ(score_add(999999, 2), kInf);
  EXPECT_EQ(score_add(-999999, -2), -kInf);
  EXPECT_EQ(score_add(600000, 600000), kInf);
}

TEST(ScoreAdd, ValuesBeyondInfinityAreInfinity) {
  EXPECT_EQ(score_add(5 * kInf, -10), kInf);
  EXPECT_EQ(score_add(-5 * kInf, 10 * kInf), -kInf);
}

TEST(NodeScore, TermsSumInOrder) {
  NodeScore ns;
  ns.add("location a", 100);
  ns.add("stickiness", 50);
  EXPECT_EQ(ns.total, 150);
  ns.add("node standby", -kInf);
  ns.add("location move", kInf);
  EXPECT_EQ(ns.total, -kInf);
  ASSERT_EQ(ns.terms.size(), 4u);
  EXPECT_EQ(ns.terms[1].what, "stickiness");
}

TEST(ScoreText, ParseAndPrint) {
  EXPECT_EQ(*cluster::parse_score("INFINITY"), kInf);
  EXPECT_EQ(*cluster::parse_score("+INFINITY"), kInf);
  EXPECT_EQ(*cluster::parse_score("-INFINITY"), -kInf);
  EXPECT_EQ(*cluster::parse_score("-inf"), -kInf);
  EXPECT_EQ(*cluster::parse_score("42"), 42);
  EXPECT_EQ(*cluster::parse_score("+7"), 7);
  EXPECT_EQ(*cluster::parse_score("2000000"), kInf);
  EXPECT_EQ(*cluster::parse_score("-2000000"), -kInf);
  EXPECT_FALSE(cluster::parse_score("lots").has_value());
  EXPECT_FALSE(cluster::parse_score("").has_value());
  EXPECT_FALSE(cluster::parse_score("12x").has_value());
  EXPECT_EQ(cluster::score_str(kInf), "INFINITY");
  EXPECT_EQ(cluster::score_str(-kInf), "-INFINITY");
  EXPECT_EQ(cluster::score_str(-3), "-3");
  EXPECT_EQ(signed_score_str(50), "+50");
  EXPECT_EQ(signed_score_str(0), "0");
  EXPECT_EQ(signed_score_str(kInf), "+INFINITY");
  EXPECT_EQ(signed_score_str(-kInf), "-INFINITY");
}

TEST(Rules, Expressions) {
  std::map<std::string, std::string> attrs{{"dc", "east"}, {"ram", "64"}};
  using cluster::RuleExpression;
  using cluster::RuleOp;
  EXPECT_TRUE(cluster::rule_expression_matches({"dc", RuleOp::kEq, "east"}, attrs));
  EXPECT_FALSE(cluster::rule_expression_matches({"dc", RuleOp::kNe, "east"}, attrs));
  EXPECT_TRUE(cluster::rule_expression_matches({"zone", RuleOp::kNe, "a"}, attrs));
  EXPECT_FALSE(cluster::rule_expression_matches({"zone", RuleOp::kEq, "a"}, attrs));
  // Integers compare as integers: 64 > 8 although "64" < "8" as strings.
  EXPECT_TRUE(cluster::rule_expression_matches({"ram", RuleOp::kGt, "8"}, attrs));
  EXPECT_TRUE(cluster::rule_expression_matches({"ram", RuleOp::kLte, "64"}, attrs));
  EXPECT_TRUE(cluster::rule_expression_matches({"ram", RuleOp::kDefined, ""}, attrs));
  EXPECT_TRUE(cluster::rule_expression_matches({"gpu", RuleOp::kNotDefined, ""}, attrs));
}

}  // namespace
}  // namespace vigil::sched
