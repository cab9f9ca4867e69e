// Tests of LeaseTracker (leader-side expiry, keep-alive, leader change) and AutoCompactor.
#include "store/lease_tracker.h"

#include <gtest/gtest.h>

#include "store/compactor.h"

namespace vigil::store {
namespace {

TEST(LeaseTracker, ExpiresAfterTtlSorted) {
  LeaseTracker t;
  t.on_become_leader(0);
  t.on_grant(LeaseId(3), 1, 0);
  t.on_grant(LeaseId(1), 1, 0);
  t.on_grant(LeaseId(2), 5, 0);
  EXPECT_EQ(*t.remaining_ms(LeaseId(1), 400), 600);
  EXPECT_TRUE(t.expired(999).empty());
  EXPECT_EQ(t.expired(1000), (std::vector<LeaseId>{LeaseId(1), LeaseId(3)}));
  EXPECT_EQ(*t.remaining_ms(LeaseId(1), 1500), 0);
  // Held back while the revoke is in flight, proposed again if it never applies.
  EXPECT_TRUE(t.expired(1500).empty());
  EXPECT_EQ(t.expired(2000), (std::vector<LeaseId>{LeaseId(1), LeaseId(3)}));
  t.on_revoke(LeaseId(1));
  t.on_revoke(LeaseId(3));
  EXPECT_TRUE(t.expired(4999).empty());
  EXPECT_EQ(t.expired(5000), (std::vector<LeaseId>{LeaseId(2)}));
  EXPECT_EQ(t.remaining_ms(LeaseId(1), 0).error().code(), Errc::kNotFound);
}

// Regression (sim-findings S1): a revoke still waiting in a slow log was proposed again every
// second, so the log grew faster than it committed. Retries now back off exponentially.
TEST(LeaseTracker, RevokeRetriesBackOff) {
  LeaseTracker::Options o;
  o.revoke_retry_ms = 1000;
  o.max_revoke_retry_ms = 4000;
  LeaseTracker t(o);
  t.on_become_leader(0);
  t.on_grant(LeaseId(1), 1, 0);
  const std::vector<LeaseId> one{LeaseId(1)};
  EXPECT_EQ(t.expired(1000), one);
  EXPECT_TRUE(t.expired(1999).empty());
  EXPECT_EQ(t.expired(2000), one);  // +1 s
  EXPECT_TRUE(t.expired(3999).empty());
  EXPECT_EQ(t.expired(4000), one);  // +2 s
  EXPECT_TRUE(t.expired(7999).empty());
  EXPECT_EQ(t.expired(8000), one);  // +4 s, the cap
  EXPECT_TRUE(t.expired(11999).empty());
  EXPECT_EQ(t.expired(12000), one);  // +4 s again
  // A new leadership starts over with a full TTL and the first retry delay.
  t.on_lose_leadership();
  t.on_become_leader(20000);
  EXPECT_EQ(t.expired(21000), one);
  EXPECT_EQ(t.expired(22000), one);
}

TEST(LeaseTracker, KeepAliveExtends) {
  LeaseTracker t;
  t.on_become_leader(0);
  t.on_grant(LeaseId(1), 2, 0);
  EXPECT_EQ(*t.keep_alive(LeaseId(1), 1500), 2000);
  EXPECT_EQ(*t.remaining_ms(LeaseId(1), 2000), 1500);
  EXPECT_TRUE(t.expired(3499).empty());
  EXPECT_EQ(t.expired(3500), (std::vector<LeaseId>{LeaseId(1)}));
  // Past its deadline a lease cannot be renewed: its revoke is on the way.
  EXPECT_EQ(t.keep_alive(LeaseId(1), 3600).error().code(), Errc::kNotFound);
  EXPECT_EQ(t.keep_alive(LeaseId(9), 0).error().code(), Errc::kNotFound);
}

TEST(LeaseTracker, FollowerNeverExpiresAndNewLeaderExtends) {
  LeaseTracker t;
  t.on_grant(LeaseId(1), 1, 0);
  t.on_grant(LeaseId(2), 10, 0);
  EXPECT_TRUE(t.expired(100000).empty());  // a follower proposes nothing
  EXPECT_EQ(t.keep_alive(LeaseId(1), 0).error().code(), Errc::kNotLeader);
  EXPECT_EQ(t.remaining_ms(LeaseId(1), 0).error().code(), Errc::kNotLeader);
  // Elected long after the grant: every lease gets its full TTL from now, none at once.
  t.on_become_leader(100000);
  EXPECT_TRUE(t.expired(100000).empty());
  EXPECT_EQ(*t.remaining_ms(LeaseId(1), 100000), 1000);
  EXPECT_EQ(*t.remaining_ms(LeaseId(2), 100000), 10000);
  EXPECT_EQ(t.expired(101000), (std::vector<LeaseId>{LeaseId(1)}));
  // Deposed: nothing more is proposed, even long past the deadlines.
  t.on_lose_leadership();
  EXPECT_TRUE(t.expired(200000).empty());
  EXPECT_FALSE(t.is_leader());
}

TEST(LeaseTracker, ResetFromStoreAfterSnapshot) {
  MvccStore store;
  ASSERT_TRUE(store.apply(LogIndex(1), {NodeId(1), 1, LeaseGrant{kNoLease, 3}}).status.ok());
  ASSERT_TRUE(store.apply(LogIndex(2), {NodeId(1), 2, LeaseGrant{kNoLease, 1}}).status.ok());
  LeaseTracker t;
  t.on_grant(LeaseId(77), 1, 0);  // stale: not in the snapshot
  t.on_become_leader(0);
  t.reset(store.leases(), 5000);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.remaining_ms(LeaseId(77), 5000).error().code(), Errc::kNotFound);
  EXPECT_EQ(*t.remaining_ms(LeaseId(1), 5000), 3000);
  EXPECT_EQ(t.expired(6000), (std::vector<LeaseId>{LeaseId(2)}));
}

TEST(LeaseTracker, ExpiryRevokesThroughTheStore) {
  MvccStore store;
  LeaseTracker t;
  t.on_become_leader(0);
  uint64_t index = 0;
  auto apply = [&](RequestBody b, int64_t now) {
    ++index;
    Response r = store.apply(LogIndex(index), {NodeId(1), index, std::move(b)});
    if (const auto* g = std::get_if<LeaseGrantResult>(&r.result)) {
      t.on_grant(g->id, g->ttl_s, now);
    }
    return r;
  };
  Response g = apply(LeaseGrant{kNoLease, 1}, 0);
  const LeaseId id = std::get<LeaseGrantResult>(g.result).id;
  ASSERT_TRUE(apply(Put{"session", "me", id}, 0).status.ok());
  std::vector<LeaseId> due = t.expired(1000);
  ASSERT_EQ(due, (std::vector<LeaseId>{id}));
  Response r = store.apply(LogIndex(++index), {NodeId(1), 9, LeaseRevoke{due[0]}});
  ASSERT_TRUE(r.status.ok());
  t.on_revoke(due[0]);
  EXPECT_EQ(store.key_count(), 0u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(AutoCompactor, ByRevisionCount) {
  AutoCompactor c(AutoCompactor::Options{100, 0, 1000});
  EXPECT_FALSE(c.next(0, 50, 0).has_value());
  EXPECT_EQ(c.next(0, 150, 0), 50);
  EXPECT_FALSE(c.next(500, 300, 50).has_value());  // once per interval
  EXPECT_EQ(c.next(1000, 300, 50), 200);
  EXPECT_FALSE(c.next(2000, 300, 200).has_value());  // nothing new to drop
}

TEST(AutoCompactor, ByAge) {
  AutoCompactor c(AutoCompactor::Options{0, 10000, 1000});
  for (int64_t t = 0; t <= 10000; t += 100) {
    c.observe(t, t / 10);                                 // one revision per 10 ms
    EXPECT_FALSE(c.next(t, t / 10, 0).has_value()) << t;  // nothing older than 10 s above 0
  }
  c.observe(11000, 1100);
  EXPECT_EQ(c.next(11000, 1100, 0), 100);  // the revision of 1 s, now 10 s old

  AutoCompactor d(AutoCompactor::Options{0, 10000, 1000});
  for (int64_t t = 0; t <= 25000; t += 1000) d.observe(t, t / 10);
  // At 25 s, history older than 15 s may go: the newest sample at or before 15 s.
  EXPECT_EQ(d.next(25000, 2500, 0), 1500);
}

TEST(AutoCompactor, BothPoliciesKeepTheLongerHistory) {
  AutoCompactor c(AutoCompactor::Options{2000, 10000, 1000});
  for (int64_t t = 0; t <= 25000; t += 1000) c.observe(t, t / 10);
  // By age 1500, by count 2500 - 2000 = 500: keep the longer history.
  EXPECT_EQ(c.next(25000, 2500, 0), 500);
}

// A large compaction goes in steps of max_step, each proposed once the last one applied.
TEST(AutoCompactor, LargeCompactionInSteps) {
  AutoCompactor c(AutoCompactor::Options{100, 0, 1000, 30});
  EXPECT_EQ(c.next(0, 200, 0), 30);                 // goal 100
  EXPECT_FALSE(c.next(50, 200, 0).has_value());     // the step has not applied yet
  EXPECT_EQ(c.next(100, 200, 30), 60);              // applied: the next at once
  EXPECT_EQ(c.next(150, 210, 60), 90);              // the goal stays where it was
  EXPECT_EQ(c.next(200, 210, 90), 100);             // the last, shorter step
  EXPECT_FALSE(c.next(250, 300, 100).has_value());  // then once per interval again
  EXPECT_EQ(c.next(1200, 300, 100), 130);
  // A step that never applies (lost in a leader change) is proposed again after an
  // interval, towards the goal of that time.
  EXPECT_FALSE(c.next(1500, 300, 100).has_value());
  EXPECT_EQ(c.next(2200, 400, 100), 130);
  EXPECT_EQ(c.next(2250, 400, 130), 160);
}

TEST(AutoCompactor, NoStepLimitByDefault) {
  AutoCompactor c(AutoCompactor::Options{100, 0, 1000});
  EXPECT_EQ(c.next(0, 100000, 0), 99900);
}

}  // namespace
}  // namespace vigil::store
