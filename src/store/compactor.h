// AutoCompactor: the leader's policy for proposing Compact by revision count or by age.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace vigil::store {

// Decides when the leader proposes a Compact, so history (and memory) stays bounded without
// an operator. Pure: the shell passes the time and the store's revisions. Compaction itself
// is replicated (a Compact request through Raft), so every replica drops the same history.
//
// Owned by the event loop next to the LeaseTracker; used on the leader only (a new leader
// starts with no samples, so age-based compaction waits retain_ms after an election).
class AutoCompactor {
 public:
  struct Options {
    // Keep at least this many revisions of history (0: no count policy). etcd's
    // "revision" mode. More history lets slow watchers catch up; it costs memory.
    int64_t retain_revisions = 0;
    // Keep at least this much time of history, in ms (0: no age policy). etcd's
    // "periodic" mode. With both policies, the history both ask for is kept.
    int64_t retain_ms = 0;
    // At most one proposal per interval; with the age policy, also the sampling period
    // (0: retain_ms / 10, at least 1 ms).
    int64_t interval_ms = 0;
    // At most this many revisions dropped by one proposal (0: no limit). Every replica
    // applies a Compact on its event loop, so a large one stalls every request there (40k
    // revisions took ~30 ms); the leader proposes the rest in steps of this size, the next
    // as soon as the previous one has applied (etcd compacts in batches for the same reason).
    int64_t max_step = 0;
  };

  explicit AutoCompactor(Options options);

  // Records the store's revision now (call on every tick; cheap, samples are thinned).
  void observe(int64_t now_ms, int64_t revision);
  // The revision to propose a Compact for, if one is due; records the proposal time. A
  // step of a compaction larger than max_step is proposed once the previous step has
  // applied (compact_revision reached it), or again after an interval if it never does.
  std::optional<int64_t> next(int64_t now_ms, int64_t revision, int64_t compact_revision);

 private:
  int64_t interval() const;
  int64_t step(int64_t now_ms, int64_t compact_revision, int64_t goal);

  Options options_;
  std::deque<std::pair<int64_t, int64_t>> samples_;  // (time ms, revision), ascending
  int64_t last_proposal_ms_ = -1;
  int64_t last_target_ = 0;  // the revision last proposed
  int64_t goal_ = 0;         // where the steps under way end (0: no steps under way)
};

}  // namespace vigil::store
