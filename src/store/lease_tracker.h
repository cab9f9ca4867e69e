// LeaseTracker: the leader's view of lease deadlines, from an injected clock (pure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "base/status.h"
#include "store/mvcc.h"
#include "store/request.h"

namespace vigil::store {

// Decides which leases have expired. Leases live in the replicated MvccStore; their
// deadlines live here, on the leader only, and only the leader's clock counts: expiry goes
// through Raft as a LeaseRevoke that the leader proposes for each id expired() returns.
//
// Every node keeps one, fed from applied requests (on_grant after a successful LeaseGrant,
// on_revoke after a LeaseRevoke, reset after a snapshot restore), so a node that becomes
// leader knows every lease. on_become_leader() then gives every lease a full TTL from now:
// the old leader's deadlines are unknown here, so a new leader never expires at once
// (etcd's rule). A node that loses leadership calls on_lose_leadership(): from then on
// expired() returns nothing, so a deposed leader never proposes a revoke (and a revoke it
// proposed before cannot commit unless it is in the log before the new leader's entries).
//
// Keep-alives are not replicated: a client renews at the leader, which moves the deadline.
// Owned by the event loop; single-threaded; times in milliseconds from the node's Clock.
class LeaseTracker {
 public:
  struct Options {
    // A lease returned by expired() is returned again only after this long without its
    // revoke being applied (the proposal was lost: a failed propose), and each further retry
    // waits twice as long, up to max_revoke_retry_ms. A leader's own entry is never lost
    // while it stays leader, so a revoke not yet applied is mostly one still waiting in the
    // log: retrying at a fixed rate would add entries faster than a slow log commits them
    // (found by the simulator, /work/sim-findings.md S1). A leader change starts over.
    int64_t revoke_retry_ms = 1000;
    int64_t max_revoke_retry_ms = 60000;
    // At most this many ids per expired() call, so one tick proposes a bounded batch.
    size_t max_expired_per_call = 1000;
  };

  LeaseTracker() : LeaseTracker(Options{}) {}
  explicit LeaseTracker(Options options) : options_(options) {}

  // A LeaseGrant was applied. On the leader the deadline starts now.
  void on_grant(LeaseId id, int64_t ttl_s, int64_t now_ms);
  // A LeaseRevoke was applied (explicit or expiry).
  void on_revoke(LeaseId id);
  // The store was restored from a snapshot: its leases replace these. On a leader every
  // lease gets a full TTL from now.
  void reset(const std::vector<LeaseInfo>& leases, int64_t now_ms);

  // This node became leader: every lease's deadline becomes now + TTL.
  void on_become_leader(int64_t now_ms);
  void on_lose_leadership();
  bool is_leader() const { return leader_; }

  // Renews a lease: deadline = now + TTL. Returns the TTL in ms (the time left now).
  // Errors: kNotLeader on a follower; kNotFound if the lease is unknown or its deadline
  // passed (it is being revoked).
  Result<int64_t> keep_alive(LeaseId id, int64_t now_ms);
  // Milliseconds until the lease expires (0 once past the deadline, until it is revoked).
  // Errors: kNotLeader on a follower; kNotFound.
  Result<int64_t> remaining_ms(LeaseId id, int64_t now_ms) const;
  // Leases whose deadline passed, sorted by id, to propose as LeaseRevoke. Empty on a
  // follower. A returned id is held back for revoke_retry_ms, doubling on each retry.
  std::vector<LeaseId> expired(int64_t now_ms);

  size_t size() const { return leases_.size(); }

 private:
  struct Entry {
    int64_t ttl_ms = 0;
    int64_t deadline_ms = 0;
    int64_t proposed_ms = -1;  // when expired() last returned it; -1 never
    int64_t retry_ms = 0;      // how long after proposed_ms it may be returned again
  };

  std::map<LeaseId, Entry> leases_;
  bool leader_ = false;
  Options options_;
};

}  // namespace vigil::store
