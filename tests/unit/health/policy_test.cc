// Tests of the rise/fall HealthTracker: flips only after `rise` successes or `fall` failures.
#include "health/policy.h"

#include <gtest/gtest.h>

namespace vigil::health {
namespace {

TEST(HealthTracker, StartsUnknownAndRisesAfterRiseSuccesses) {
  HealthTracker t(HealthPolicy{.rise = 3, .fall = 2});
  EXPECT_EQ(t.state(), HealthState::kUnknown);
  EXPECT_FALSE(t.healthy());
  EXPECT_EQ(t.observe(true), std::nullopt);
  EXPECT_EQ(t.observe(true), std::nullopt);
  EXPECT_EQ(t.observe(true), HealthState::kHealthy);
  EXPECT_TRUE(t.healthy());
  EXPECT_EQ(t.observe(true), std::nullopt);  // no second flip
}

TEST(HealthTracker, FallsAfterFallConsecutiveFailures) {
  HealthTracker t(HealthPolicy{.rise = 1, .fall = 3});
  EXPECT_EQ(t.observe(true), HealthState::kHealthy);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(true), std::nullopt);  // a success resets the failure count
  EXPECT_EQ(t.failures(), 0);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(false), HealthState::kUnhealthy);
  EXPECT_EQ(t.observe(false), std::nullopt);
  // Back after rise successes, and a failure in between restarts the count.
  EXPECT_EQ(t.observe(true), HealthState::kHealthy);
}

TEST(HealthTracker, UnknownBecomesUnhealthyAfterFallFailures) {
  HealthTracker t(HealthPolicy{.rise = 2, .fall = 2});
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(false), HealthState::kUnhealthy);
  EXPECT_EQ(t.observe(true), std::nullopt);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(true), std::nullopt);
  EXPECT_EQ(t.observe(true), HealthState::kHealthy);
}

TEST(HealthTracker, InitialHealthyNeedsFallFailures) {
  HealthTracker t(HealthPolicy{.rise = 2, .fall = 2, .initial = HealthState::kHealthy});
  EXPECT_TRUE(t.healthy());
  EXPECT_EQ(t.observe(true), std::nullopt);
  EXPECT_EQ(t.observe(false), std::nullopt);
  EXPECT_EQ(t.observe(false), HealthState::kUnhealthy);
}

TEST(HealthTracker, RiseAndFallOfOneFlipOnEveryChange) {
  HealthTracker t(HealthPolicy{.rise = 1, .fall = 1});
  EXPECT_EQ(t.observe(false), HealthState::kUnhealthy);
  EXPECT_EQ(t.observe(true), HealthState::kHealthy);
  EXPECT_EQ(t.observe(false), HealthState::kUnhealthy);
}

TEST(HealthPolicy, ValidateNamesTheField) {
  EXPECT_TRUE(validate(HealthPolicy{}).ok());
  Status s = validate(HealthPolicy{.rise = 0, .fall = 3});
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("rise"), std::string::npos);
  s = validate(HealthPolicy{.rise = 1, .fall = kMaxRiseFall + 1});
  EXPECT_NE(s.message().find("fall"), std::string::npos);
  // Out-of-range values are clamped, never trusted.
  HealthTracker t(HealthPolicy{.rise = 0, .fall = -5});
  EXPECT_EQ(t.policy().rise, 1);
  EXPECT_EQ(t.policy().fall, 1);
}

TEST(HealthState, NamesRoundTrip) {
  for (HealthState s : {HealthState::kUnknown, HealthState::kHealthy, HealthState::kUnhealthy}) {
    EXPECT_EQ(parse_health_state(health_state_name(s)), s);
  }
  EXPECT_EQ(parse_health_state("passing"), std::nullopt);
}

}  // namespace
}  // namespace vigil::health
