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
  if (last_proposal_ms_ >= 0 && now_ms - last_proposal_ms_ < interval()) return std::nullopt;
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
  last_proposal_ms_ = now_ms;
  return target;
}

}  // namespace vigil::store
