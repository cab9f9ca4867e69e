// WatchHub: watchers on a key or a range, fed by MvccStore::apply, with history replay,
// bounded buffers, progress notifications and an explicit "resync required" on compaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "store/mvcc.h"

namespace vigil::store {

struct WatchIdTag {};
using WatchId = StrongId<WatchIdTag>;

struct WatchSpec {
  std::string key;
  std::string range_end;       // as in a range: "" = one key, prefix_end(p) = a prefix
  int64_t start_revision = 0;  // 0 = from now (the next revision); else replay from it
  bool prev_kv = false;        // events carry the key before the change
};

// What a watcher gets on one pull.
struct WatchResponse {
  WatchId id;
  // Whole revisions, ascending, key order within one revision; never a revision twice, never
  // a gap: the revisions between two responses that carry no event for this watcher had no
  // change in its range.
  std::vector<Event> events;
  // Resync required: the history from the watcher's next revision is compacted. The watcher
  // is cancelled; the client reads the current state (at `revision`) and watches again from
  // revision + 1.
  bool compacted = false;
  int64_t compact_revision = 0;
  int64_t revision = 0;  // the store's revision when this was produced
};

// The watchers of one node. Watchers are local (not replicated, not in snapshots). Owned by
// the event loop with the MvccStore it watches; single-threaded.
//
// Use: after every store.apply(), hub.on_apply(response); after store.restore(),
// hub.on_restore(store). The shell pulls each id in ready() and streams the responses; it
// sends progress(id) on a timer for idle watchers.
//
// A watcher is "synced" when everything up to the store's revision is in its buffer or
// delivered: on_apply() appends the new revision's matching events to it. A watcher that
// starts in the past, or whose buffer fills (max_buffered_events), is "unsynced": apply()
// skips it and pull() reads its next revisions from the store's history until it is level
// again. So a slow watcher costs a bounded buffer, and history replay never loses or
// doubles an event; if compaction overtakes it, its next pull says so (compacted).
class WatchHub {
 public:
  struct Options {
    // Watchers at once; create() fails with kResourceExhausted beyond.
    size_t max_watchers = 10000;
    // Events buffered per synced watcher before it falls back to history replay. A bigger
    // buffer spares history scans for bursty watchers and costs memory.
    size_t max_buffered_events = 1000;
    // Events per pull (a revision is never split, so one pull may exceed it).
    size_t max_events_per_pull = 1000;
  };

  WatchHub() : WatchHub(Options{}) {}
  explicit WatchHub(Options options) : options_(options) {}

  // Registers a watcher. Errors: kInvalidArgument (range, negative start),
  // kResourceExhausted. A start at or below the store's compact revision is accepted; the
  // first pull then reports compacted.
  Result<WatchId> create(const WatchSpec& spec, const MvccStore& store);
  // Errors: kNotFound.
  Status cancel(WatchId id);

  // Feeds the events of one applied request (none if it wrote nothing).
  void on_apply(const Response& r);
  // After the store was replaced by a snapshot: watchers behind it catch up from history.
  void on_restore(const MvccStore& store);

  // Watchers with something to pull (events, history to replay, a compaction), by id.
  std::vector<WatchId> ready() const;
  // The next events of a watcher: buffered ones first, then history. A compacted response
  // ends the watcher. Errors: kNotFound.
  Result<WatchResponse> pull(WatchId id, const MvccStore& store);
  // A progress notification (no events, revision = the store's) if the watcher has seen
  // everything up to the store's revision; nullopt if it has events pending or is unknown.
  std::optional<WatchResponse> progress(WatchId id, const MvccStore& store) const;

  size_t size() const { return watchers_.size(); }

 private:
  struct Watcher {
    WatchSpec spec;
    int64_t next_revision = 0;  // the first revision not in buffer or delivered
    bool synced = false;
    std::deque<Event> buffer;  // revisions < next_revision, in order
  };

  std::map<WatchId, Watcher> watchers_;
  WatchId next_id_{1};
  Options options_;
};

}  // namespace vigil::store
