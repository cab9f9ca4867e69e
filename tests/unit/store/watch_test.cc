// Tests of WatchHub: from now, from the past, prefixes, progress, slow watchers, compaction
// (resync required) and snapshot restore.
#include "store/watch.h"

#include <gtest/gtest.h>

#include "store/keys.h"

namespace vigil::store {
namespace {

// A store and a hub wired as the shell wires them.
class Rig {
 public:
  explicit Rig(WatchHub::Options o = {}) : hub(o) {}
  MvccStore store;
  WatchHub hub;
  Response apply(RequestBody body) {
    ++index_;
    Response r = store.apply(LogIndex(index_), Request{NodeId(1), index_, std::move(body)});
    hub.on_apply(r);
    return r;
  }
  void put(std::string k, std::string v) { apply(Put{std::move(k), std::move(v)}); }
  WatchId watch(std::string key, std::string end, int64_t start, bool prev = false) {
    auto id = hub.create(WatchSpec{std::move(key), std::move(end), start, prev}, store);
    EXPECT_TRUE(id.has_value());
    return *id;
  }
  // Pulls until nothing is pending; returns "rev:key=value" or "rev:key deleted".
  std::vector<std::string> drain(WatchId id, bool* compacted = nullptr) {
    std::vector<std::string> out;
    for (int i = 0; i < 1000; ++i) {
      auto r = hub.pull(id, store);
      if (!r.has_value()) break;
      if (r->compacted) {
        if (compacted != nullptr) *compacted = true;
        break;
      }
      if (r->events.empty()) break;
      for (const Event& e : r->events) out.push_back(describe(e));
    }
    return out;
  }
  static std::string describe(const Event& e) {
    std::string s = std::to_string(e.kv.mod_revision) + ":" + e.kv.key;
    s += e.type == Event::Type::kPut ? "=" + e.kv.value : " deleted";
    if (e.prev_kv) s += " (was " + e.prev_kv->value + ")";
    return s;
  }

 private:
  uint64_t index_ = 0;
};

using Strings = std::vector<std::string>;

TEST(Watch, FromNowOnKeyAndPrefix) {
  Rig rig;
  rig.put("svc/a", "old");
  WatchId key = rig.watch("svc/a", "", 0);
  WatchId prefix = rig.watch("svc/", prefix_end("svc/"), 0, true);
  EXPECT_TRUE(rig.hub.ready().empty());
  rig.put("svc/a", "1");
  rig.put("other", "x");
  rig.put("svc/b", "2");
  rig.apply(DeleteRange{"svc/a", "", false});
  EXPECT_EQ(rig.hub.ready(), (std::vector<WatchId>{key, prefix}));
  EXPECT_EQ(rig.drain(key), (Strings{"2:svc/a=1", "5:svc/a deleted"}));
  EXPECT_EQ(rig.drain(prefix),
            (Strings{"2:svc/a=1 (was old)", "4:svc/b=2", "5:svc/a deleted (was 1)"}));
  EXPECT_TRUE(rig.hub.ready().empty());
}

TEST(Watch, FromThePastReplaysThenFollows) {
  Rig rig;
  rig.put("k", "1");  // 1
  rig.put("j", "1");  // 2
  rig.put("k", "2");  // 3
  WatchId w = rig.watch("k", "", 2);
  EXPECT_EQ(rig.hub.ready(), (std::vector<WatchId>{w}));
  rig.put("k", "3");  // 4, while the watcher is still replaying
  EXPECT_EQ(rig.drain(w), (Strings{"3:k=2", "4:k=3"}));
  rig.put("k", "4");  // 5, now live
  EXPECT_EQ(rig.drain(w), (Strings{"5:k=4"}));
  WatchId all = rig.watch("", std::string(kRangeAll), 1);
  EXPECT_EQ(rig.drain(all), (Strings{"1:k=1", "2:j=1", "3:k=2", "4:k=3", "5:k=4"}));
}

TEST(Watch, FutureStartSkipsEarlierRevisions) {
  Rig rig;
  rig.put("k", "1");  // 1
  WatchId w = rig.watch("k", "", 3);
  rig.put("k", "2");  // 2
  EXPECT_TRUE(rig.drain(w).empty());
  rig.put("k", "3");  // 3
  EXPECT_EQ(rig.drain(w), (Strings{"3:k=3"}));
}

TEST(Watch, TxnEventsDeliveredTogetherInKeyOrder) {
  Rig rig(WatchHub::Options{100, 100, 1});  // one event per pull, but revisions whole
  WatchId w = rig.watch("", std::string(kRangeAll), 0);
  rig.apply(Txn{{}, {Put{"c", "1"}, Put{"a", "1"}, Put{"b", "1"}}, {}});
  rig.put("a", "2");
  auto r = rig.hub.pull(w, rig.store);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->events.size(), 3u);
  EXPECT_EQ(r->events[0].kv.key, "a");
  EXPECT_EQ(r->events[2].kv.key, "c");
  r = rig.hub.pull(w, rig.store);
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].kv.mod_revision, 2);
}

TEST(Watch, ProgressOnlyWhenCaughtUp) {
  Rig rig;
  WatchId w = rig.watch("k", "", 0);
  auto p = rig.hub.progress(w, rig.store);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->revision, 0);
  rig.put("other", "x");  // not in the range: the watcher has still seen everything
  p = rig.hub.progress(w, rig.store);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->revision, 1);
  rig.put("k", "x");
  EXPECT_FALSE(rig.hub.progress(w, rig.store).has_value());  // an event is pending
  rig.drain(w);
  EXPECT_EQ(rig.hub.progress(w, rig.store)->revision, 2);
  WatchId past = rig.watch("k", "", 1);
  EXPECT_FALSE(rig.hub.progress(past, rig.store).has_value());  // replay pending
  EXPECT_FALSE(rig.hub.progress(WatchId(99), rig.store).has_value());
}

TEST(Watch, SlowWatcherFallsBackToHistoryWithoutLossOrDuplicates) {
  Rig rig(WatchHub::Options{100, 3, 2});
  WatchId w = rig.watch("k", prefix_end("k"), 0);
  Strings expected;
  for (int i = 1; i <= 20; ++i) {
    rig.put("k" + std::to_string(i % 4), std::to_string(i));
    expected.push_back(std::to_string(i) + ":k" + std::to_string(i % 4) + "=" + std::to_string(i));
    if (i == 10) {  // a partial drain in the middle
      auto r = rig.hub.pull(w, rig.store);
      ASSERT_TRUE(r.has_value());
      ASSERT_EQ(r->events.size(), 2u);
      EXPECT_EQ(Rig::describe(r->events[0]), expected[0]);
      expected.erase(expected.begin(), expected.begin() + 2);
    }
  }
  EXPECT_EQ(rig.drain(w), expected);
  rig.put("k1", "after");
  EXPECT_EQ(rig.drain(w), (Strings{"21:k1=after"}));
}

TEST(Watch, CompactionOvertakingAWatcherMeansResync) {
  Rig rig(WatchHub::Options{100, 2, 100});
  rig.put("k", "1");  // 1
  rig.put("k", "2");  // 2
  rig.apply(Compact{2});
  // Watching from a compacted revision: an explicit compacted result, not a gap.
  WatchId early = rig.watch("k", "", 2);
  auto r = rig.hub.pull(early, rig.store);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->compacted);
  EXPECT_EQ(r->compact_revision, 2);
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(rig.hub.pull(early, rig.store).error().code(), Errc::kNotFound);  // cancelled
  // From compact_revision + 1 the history is complete.
  WatchId ok = rig.watch("k", "", 3);
  rig.put("k", "3");  // 3
  EXPECT_EQ(rig.drain(ok), (Strings{"3:k=3"}));

  // A live watcher whose buffer overflows and whose history is then compacted.
  WatchId slow = rig.watch("k", "", 0);
  for (int i = 4; i <= 8; ++i) rig.put("k", std::to_string(i));
  rig.apply(Compact{7});
  bool compacted = false;
  // The buffered revisions 4 and 5 still arrive, then the resync.
  EXPECT_EQ(rig.drain(slow, &compacted), (Strings{"4:k=4", "5:k=5"}));
  EXPECT_TRUE(compacted);
  EXPECT_EQ(rig.hub.size(), 1u);
}

TEST(Watch, RestoreFromSnapshotCatchesUpFromHistory) {
  Rig leader;
  Rig follower;
  leader.put("k", "1");
  ASSERT_TRUE(follower.store.restore(leader.store.serialize()).ok());
  WatchId w = follower.watch("k", "", 0);
  leader.put("k", "2");
  leader.put("k", "3");
  ASSERT_TRUE(follower.store.restore(leader.store.serialize()).ok());
  follower.hub.on_restore(follower.store);
  EXPECT_EQ(follower.drain(w), (Strings{"2:k=2", "3:k=3"}));
  // Past the compaction, the watcher is told to resync.
  WatchId w2 = follower.watch("k", "", 0);
  leader.put("k", "4");
  leader.apply(Compact{4});
  ASSERT_TRUE(follower.store.restore(leader.store.serialize()).ok());
  follower.hub.on_restore(follower.store);
  bool compacted = false;
  follower.drain(w2, &compacted);
  EXPECT_TRUE(compacted);
}

TEST(Watch, LimitsAndErrors) {
  Rig rig(WatchHub::Options{1, 10, 10});
  EXPECT_EQ(rig.hub.create(WatchSpec{"", ""}, rig.store).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(rig.hub.create(WatchSpec{"k", "", -1}, rig.store).error().code(),
            Errc::kInvalidArgument);
  WatchId w = rig.watch("k", "", 0);
  EXPECT_EQ(rig.hub.create(WatchSpec{"j", ""}, rig.store).error().code(), Errc::kResourceExhausted);
  EXPECT_TRUE(rig.hub.cancel(w).ok());
  EXPECT_EQ(rig.hub.cancel(w).code(), Errc::kNotFound);
  EXPECT_EQ(rig.hub.size(), 0u);
}

}  // namespace
}  // namespace vigil::store
