// Score arithmetic with saturating ±INFINITY, as Pacemaker users know it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/model.h"

namespace vigil::sched {

using cluster::kInfinity;

// a + b where -INFINITY wins over everything, then +INFINITY, and finite sums clamp to
// ±INFINITY: INF + -INF = -INF, INF + 5 = INF, 999999 + 2 = INF.
constexpr int64_t score_add(int64_t a, int64_t b) {
  if (a <= -kInfinity || b <= -kInfinity) return -kInfinity;
  if (a >= kInfinity || b >= kInfinity) return kInfinity;
  int64_t s = a + b;  // both operands are within ±1e6: no overflow
  if (s >= kInfinity) return kInfinity;
  if (s <= -kInfinity) return -kInfinity;
  return s;
}

// One reason that moved a score: "location loc-web-n1" +100.
struct Term {
  std::string what;
  int64_t value = 0;
};

// A node's score for one resource, with the terms that sum to it (in the order applied).
struct NodeScore {
  std::string node;
  int64_t total = 0;
  std::vector<Term> terms;

  void add(std::string what, int64_t value) {
    total = score_add(total, value);
    terms.push_back(Term{std::move(what), value});
  }
};

// "+100", "-50", "+INFINITY", "-INFINITY", "0".
std::string signed_score_str(int64_t v);

}  // namespace vigil::sched
