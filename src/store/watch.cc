// WatchHub implementation.
#include "store/watch.h"

#include <utility>

#include "store/keys.h"

namespace vigil::store {

Result<WatchId> WatchHub::create(const WatchSpec& spec, const MvccStore& store) {
  RETURN_IF_ERROR(validate_range("watch", spec.key, spec.range_end));
  if (spec.start_revision < 0) {
    return err(Errc::kInvalidArgument,
               "watch: negative start revision " + std::to_string(spec.start_revision));
  }
  if (watchers_.size() >= options_.max_watchers) {
    return err(Errc::kResourceExhausted,
               "watch: " + std::to_string(options_.max_watchers) + " watchers exist");
  }
  Watcher w;
  w.spec = spec;
  if (spec.start_revision == 0 || spec.start_revision > store.revision()) {
    // From now, or from a future revision: apply() feeds it (and skips what is before).
    w.next_revision = spec.start_revision == 0 ? store.revision() + 1 : spec.start_revision;
    w.synced = true;
  } else {
    w.next_revision = spec.start_revision;  // history replay (or compacted) on pull
    w.synced = false;
  }
  const WatchId id = next_id_;
  ++next_id_;
  watchers_.emplace(id, std::move(w));
  return id;
}

Status WatchHub::cancel(WatchId id) {
  if (watchers_.erase(id) == 0) return err(Errc::kNotFound, "watch " + id.str() + " not found");
  return Status();
}

void WatchHub::on_apply(const Response& r) {
  if (r.events.empty()) return;
  const int64_t rev = r.revision;
  for (auto& [id, w] : watchers_) {
    if (!w.synced || rev < w.next_revision) continue;
    if (rev > w.next_revision) {
      // A revision went by without on_apply (a shell bug, or a restore without
      // on_restore): the history has it, so replay rather than leave a gap.
      w.synced = false;
      continue;
    }
    size_t matching = 0;
    for (const Event& e : r.events) {
      if (in_range(e.kv.key, w.spec.key, w.spec.range_end)) ++matching;
    }
    if (w.buffer.size() + matching > options_.max_buffered_events) {
      w.synced = false;  // the consumer is slow: read this revision from history later
      continue;
    }
    for (const Event& e : r.events) {
      if (!in_range(e.kv.key, w.spec.key, w.spec.range_end)) continue;
      w.buffer.push_back(e);
      if (!w.spec.prev_kv) w.buffer.back().prev_kv.reset();
    }
    w.next_revision = rev + 1;
  }
}

void WatchHub::on_restore(const MvccStore& store) {
  for (auto& [id, w] : watchers_) {
    if (w.synced && w.next_revision <= store.revision()) w.synced = false;
  }
}

std::vector<WatchId> WatchHub::ready() const {
  std::vector<WatchId> out;
  for (const auto& [id, w] : watchers_) {
    if (!w.buffer.empty() || !w.synced) out.push_back(id);
  }
  return out;
}

Result<WatchResponse> WatchHub::pull(WatchId id, const MvccStore& store) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return err(Errc::kNotFound, "watch " + id.str() + " not found");
  Watcher& w = it->second;
  WatchResponse resp;
  resp.id = id;
  resp.compact_revision = store.compact_revision();
  resp.revision = store.revision();
  if (!w.buffer.empty()) {
    // Whole revisions only: a revision's events are delivered together.
    while (!w.buffer.empty() && resp.events.size() < options_.max_events_per_pull) {
      const int64_t rev = w.buffer.front().kv.mod_revision;
      while (!w.buffer.empty() && w.buffer.front().kv.mod_revision == rev) {
        resp.events.push_back(std::move(w.buffer.front()));
        w.buffer.pop_front();
      }
    }
    return resp;
  }
  if (w.synced) return resp;
  auto h = store.history(w.spec.key, w.spec.range_end, w.next_revision,
                         options_.max_events_per_pull, w.spec.prev_kv);
  if (!h.has_value()) {
    // The only error left once create() checked the range: the history is compacted.
    resp.compacted = true;
    watchers_.erase(it);
    return resp;
  }
  resp.events = std::move(h->events);
  w.next_revision = h->next_revision;
  if (w.next_revision > store.revision()) w.synced = true;
  return resp;
}

std::optional<WatchResponse> WatchHub::progress(WatchId id, const MvccStore& store) const {
  auto it = watchers_.find(id);
  if (it == watchers_.end() || !it->second.synced || !it->second.buffer.empty()) {
    return std::nullopt;
  }
  WatchResponse resp;
  resp.id = id;
  resp.compact_revision = store.compact_revision();
  resp.revision = store.revision();
  return resp;
}

}  // namespace vigil::store
