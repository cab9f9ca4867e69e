// AutoCompactor implementation.
#include "store/compactor.h"

#include <algorithm>

namespace vigil::store {

AutoCompactor::AutoCompactor(Options options) : options_(options) {}

int64_t AutoCompactor::interval() const {
  if (options_.interval_ms > 0) return options_.interval_ms;
  return std::max<int64_t>(1, options_.retain_ms / 10);
}

void AutoCompactor::observe(int64_t now_ms, int64_t revision) {
  if (options_.retain_ms <= 0) return;
  if (!samples_.empty() && now_ms - samples_.back().first < interval()) return;
  samples_.emplace_back(now_ms, revision);
  // Keep one sample at or before now - retain_ms (the one next() uses) and those after it;
  // that is about retain_ms / interval samples.
  while (samples_.size() >= 2 && samples_[1].first <= now_ms - options_.retain_ms) {
    samples_.pop_front();
  }
}

std::optional<int64_t> AutoCompactor::next(int64_t now_ms, int64_t revision,
                                           int64_t compact_revision) {
  if (options_.retain_revisions <= 0 && options_.retain_ms <= 0) return std::nullopt;
  const bool waited = last_proposal_ms_ < 0 || now_ms - last_proposal_ms_ >= interval();
  if (goal_ > compact_revision && !waited) {
    // Steps under way: the next one once the last one has applied.
    if (compact_revision < last_target_) return std::nullopt;
    return step(now_ms, compact_revision, goal_);
  }
  goal_ = 0;  // none under way, or a step never applied within an interval: start over
  if (!waited) return std::nullopt;
  int64_t target = revision;
  if (options_.retain_revisions > 0) {
    target = std::min(target, revision - options_.retain_revisions);
  }
  if (options_.retain_ms > 0) {
    // The newest sample old enough: every revision up to it is older than retain_ms.
    std::optional<int64_t> aged;
    for (const auto& [t, r] : samples_) {
      if (t > now_ms - options_.retain_ms) break;
      aged = r;
    }
    if (!aged) return std::nullopt;
    target = std::min(target, *aged);
  }
  if (target <= compact_revision) return std::nullopt;
  return step(now_ms, compact_revision, target);
}

int64_t AutoCompactor::step(int64_t now_ms, int64_t compact_revision, int64_t goal) {
  int64_t target = goal;
  if (options_.max_step > 0 && goal - compact_revision > options_.max_step) {
    target = compact_revision + options_.max_step;
  }
  goal_ = target < goal ? goal : 0;
  last_target_ = target;
  last_proposal_ms_ = now_ms;
  return target;
}

}  // namespace vigil::store
