// Rise/fall health policy: turns a sequence of probe results into a health state that flips
// only after `rise` consecutive successes or `fall` consecutive failures (keepalived's and
// HAProxy's rise/fall counters). Pure: no clock, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/status.h"

namespace vigil::health {

enum class HealthState : uint8_t {
  kUnknown = 0,  // no verdict yet: treated as not healthy
  kHealthy = 1,
  kUnhealthy = 2,
};

std::string_view health_state_name(HealthState s);  // "unknown", "healthy", "unhealthy"
// Parses health_state_name()'s output. nullopt for anything else.
std::optional<HealthState> parse_health_state(std::string_view name);

inline constexpr int kMaxRiseFall = 100;

struct HealthPolicy {
  // Consecutive successes that make a not-healthy check healthy. Default 2: one lucky probe
  // is not enough, and a recovered instance returns after two intervals.
  int rise = 2;
  // Consecutive failures that make a healthy (or unknown) check unhealthy. Default 3:
  // tolerates one or two lost probes at the cost of slower detection (interval × fall).
  int fall = 3;
  // The state before any probe. kUnknown (default) keeps a new instance out of the healthy
  // list until it proves itself; kHealthy trusts it until `fall` failures (for restarts
  // that must not drop known-good instances). kUnhealthy is allowed too.
  HealthState initial = HealthState::kUnknown;
};

// Errors (kInvalidArgument) name the field: "rise: want 1 to 100 (got 0)".
Status validate(const HealthPolicy& p);

// The state machine of one check. Single-threaded value type; owned by whoever runs the
// probes. Usage: feed every probe result to observe() in the order they completed; act on
// the returned flip.
class HealthTracker {
 public:
  // `policy` must pass validate() (checked with CHECK-like clamping: values out of range
  // are clamped to [1, kMaxRiseFall], never trusted).
  explicit HealthTracker(HealthPolicy policy);

  // Records one probe result. Returns the new state when this result flips it, nullopt
  // otherwise (including while counting towards rise or fall).
  std::optional<HealthState> observe(bool success);

  HealthState state() const { return state_; }
  bool healthy() const { return state_ == HealthState::kHealthy; }
  // Consecutive successes (or failures) seen so far, 0 after the other kind.
  int successes() const { return successes_; }
  int failures() const { return failures_; }
  const HealthPolicy& policy() const { return policy_; }

 private:
  HealthPolicy policy_;
  HealthState state_;
  int successes_ = 0;
  int failures_ = 0;
};

}  // namespace vigil::health
