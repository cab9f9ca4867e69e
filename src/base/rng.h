// Rng: the only source of randomness in cores; seeded so a simulation replays exactly.
#pragma once

#include <cstdint>

namespace vigil {

// Injected into every core that needs randomness (election timeouts, simulation faults).
// Not thread-safe; each owner keeps its own.
class Rng {
 public:
  virtual ~Rng() = default;
  virtual uint64_t next_u64() = 0;

  // Uniform in [lo, hi] (inclusive). lo <= hi.
  uint64_t uniform(uint64_t lo, uint64_t hi) {
    const uint64_t span = hi - lo + 1;
    if (span == 0) return next_u64();  // full range
    return lo + next_u64() % span;
  }
  // True with probability p (0..1).
  bool chance(double p) {
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53 < p;
  }
};

// SplitMix64 (Steele, Lea, Flood 2014): small, fast, good enough for timeouts and faults.
class SplitMix64 final : public Rng {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace vigil
