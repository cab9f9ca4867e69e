// Rise/fall health policy (see policy.h).
#include "health/policy.h"

#include <algorithm>
#include <string>

namespace vigil::health {

std::string_view health_state_name(HealthState s) {
  switch (s) {
    case HealthState::kUnknown:
      return "unknown";
    case HealthState::kHealthy:
      return "healthy";
    case HealthState::kUnhealthy:
      return "unhealthy";
  }
  return "unknown";
}

std::optional<HealthState> parse_health_state(std::string_view name) {
  for (HealthState s : {HealthState::kUnknown, HealthState::kHealthy, HealthState::kUnhealthy}) {
    if (health_state_name(s) == name) return s;
  }
  return std::nullopt;
}

Status validate(const HealthPolicy& p) {
  auto in_range = [](int v) { return v >= 1 && v <= kMaxRiseFall; };
  if (!in_range(p.rise)) {
    return err(Errc::kInvalidArgument, "rise: want 1 to " + std::to_string(kMaxRiseFall) +
                                           " (got " + std::to_string(p.rise) + ")");
  }
  if (!in_range(p.fall)) {
    return err(Errc::kInvalidArgument, "fall: want 1 to " + std::to_string(kMaxRiseFall) +
                                           " (got " + std::to_string(p.fall) + ")");
  }
  return Status();
}

HealthTracker::HealthTracker(HealthPolicy policy) : policy_(policy), state_(policy.initial) {
  policy_.rise = std::clamp(policy_.rise, 1, kMaxRiseFall);
  policy_.fall = std::clamp(policy_.fall, 1, kMaxRiseFall);
}

std::optional<HealthState> HealthTracker::observe(bool success) {
  if (success) {
    failures_ = 0;
    successes_ = std::min(successes_ + 1, kMaxRiseFall);
    if (state_ != HealthState::kHealthy && successes_ >= policy_.rise) {
      state_ = HealthState::kHealthy;
      return state_;
    }
    return std::nullopt;
  }
  successes_ = 0;
  failures_ = std::min(failures_ + 1, kMaxRiseFall);
  if (state_ != HealthState::kUnhealthy && failures_ >= policy_.fall) {
    state_ = HealthState::kUnhealthy;
    return state_;
  }
  return std::nullopt;
}

}  // namespace vigil::health
