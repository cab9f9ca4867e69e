// LeaseTracker implementation.
#include "store/lease_tracker.h"

#include <algorithm>

namespace vigil::store {
namespace {

int64_t ttl_ms_of(int64_t ttl_s) { return std::max(ttl_s, kMinLeaseTtlS) * 1000; }

}  // namespace

void LeaseTracker::on_grant(LeaseId id, int64_t ttl_s, int64_t now_ms) {
  Entry e;
  e.ttl_ms = ttl_ms_of(ttl_s);
  e.deadline_ms = now_ms + e.ttl_ms;
  leases_[id] = e;
}

void LeaseTracker::on_revoke(LeaseId id) { leases_.erase(id); }

void LeaseTracker::reset(const std::vector<LeaseInfo>& leases, int64_t now_ms) {
  leases_.clear();
  for (const LeaseInfo& l : leases) on_grant(l.id, l.ttl_s, now_ms);
}

void LeaseTracker::on_become_leader(int64_t now_ms) {
  leader_ = true;
  for (auto& [id, e] : leases_) {
    e.deadline_ms = now_ms + e.ttl_ms;
    e.proposed_ms = -1;
    e.retry_ms = 0;
  }
}

void LeaseTracker::on_lose_leadership() { leader_ = false; }

Result<int64_t> LeaseTracker::keep_alive(LeaseId id, int64_t now_ms) {
  if (!leader_) return err(Errc::kNotLeader, "lease keep-alive: not the leader");
  auto it = leases_.find(id);
  if (it == leases_.end()) return err(Errc::kNotFound, "lease " + id.str() + " not found");
  Entry& e = it->second;
  if (now_ms >= e.deadline_ms) {
    return err(Errc::kNotFound, "lease " + id.str() + " expired");
  }
  e.deadline_ms = now_ms + e.ttl_ms;
  return e.ttl_ms;
}

Result<int64_t> LeaseTracker::remaining_ms(LeaseId id, int64_t now_ms) const {
  if (!leader_) return err(Errc::kNotLeader, "lease time-to-live: not the leader");
  auto it = leases_.find(id);
  if (it == leases_.end()) return err(Errc::kNotFound, "lease " + id.str() + " not found");
  return std::max<int64_t>(0, it->second.deadline_ms - now_ms);
}

std::vector<LeaseId> LeaseTracker::expired(int64_t now_ms) {
  std::vector<LeaseId> out;
  if (!leader_) return out;
  for (auto& [id, e] : leases_) {
    if (out.size() >= options_.max_expired_per_call) break;
    if (now_ms < e.deadline_ms) continue;
    if (e.proposed_ms >= 0 && now_ms < e.proposed_ms + e.retry_ms) continue;
    e.retry_ms = e.proposed_ms < 0 ? options_.revoke_retry_ms
                                   : std::min(2 * e.retry_ms, std::max(options_.max_revoke_retry_ms,
                                                                       options_.revoke_retry_ms));
    e.proposed_ms = now_ms;
    out.push_back(id);
  }
  return out;
}

}  // namespace vigil::store
