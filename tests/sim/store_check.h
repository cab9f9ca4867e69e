// Checkers of the store simulation: a reference model that every applied response must
// match (key removal included), lease validity, election exclusivity and watch streams.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/mvcc.h"
#include "store/request.h"
#include "store/watch.h"

namespace vigil::sim {

// Simulated time units per millisecond of a perfect clock (100 units = one 50 ms tick).
inline constexpr uint64_t kUnitsPerMs = 2;

// How long after *sending* a grant or keep-alive a client may count on its lease, in
// units of the perfect clock: (TTL - 1 ms) / (1 + d) with d = 1/99. Node clocks run at
// 100/101 to 100/99 of real time (tick periods of 99 to 101 units), so a leader whose
// clock says TTL ms elapsed saw at least TTL * 99/100 of real time; the 1 ms covers the
// rounding of node clocks to whole milliseconds. Clients use the perfect clock.
uint64_t lease_validity_units(int64_t ttl_s);

// A watch stream as one client consumes it from one node (it re-creates the watcher after
// the node restarts and resyncs after a compaction).
struct WatchConsumer {
  int node = 0;
  int kind = 0;  // 0: from revision 1 at start; 1: starts late; 2: starts late from rev 1
  bool active = false;
  store::WatchId id;
  bool prev_kv = false;
  int64_t next_revision = 1;  // the first revision not yet seen
  uint64_t events = 0;
  uint64_t resyncs = 0;
};

struct StoreCheckStats {
  uint64_t expiry_revokes = 0;          // expiry revokes applied
  uint64_t counted_refreshes = 0;       // grants and keep-alives acknowledged in time
  uint64_t late_refresh_acks = 0;       // keep-alives acknowledged after validity lapsed
  uint64_t naive_lease_violations = 0;  // expiry before send + validity of a late-acked refresh
  uint64_t holdings = 0;                // election holdings
  uint64_t watch_events = 0;
  uint64_t watch_resyncs = 0;
  uint64_t model_revision = 0;
};

// Owned by the simulator. The first failure is kept (invariant + details); later ones are
// ignored. All inputs are deterministic, so a failure replays with the seed.
class StoreChecker {
 public:
  StoreChecker();

  // --- Reference model (checks a, b). Called for the first application of every request
  // anywhere (log order): the model applies the request by its own rules and compares the
  // status, revision, txn outcome, reads and every event. A key the store deletes that the
  // model does not is reported as "key-removal" (only an explicit delete, a txn delete or
  // the revoke of the key's lease may remove a key).
  void on_first_apply(const store::Request& req, const store::Response& resp);
  // The whole key space as a replica read it right after applying the model's latest index.
  void check_state(const std::vector<store::KeyValue>& kvs, const std::string& who);
  int64_t revision() const { return revision_; }
  static uint64_t hash_kvs(const std::vector<store::KeyValue>& kvs);

  // --- Lease validity (check c). See README "Leases".
  void on_expiry_proposed(uint64_t request_id, store::LeaseId lease, uint64_t now);
  void on_refresh_counted(store::LeaseId lease, int64_t ttl_s, uint64_t sent, uint64_t client);
  void on_refresh_late(store::LeaseId lease, int64_t ttl_s, uint64_t sent);

  // --- Election (check d): holdings as clients believe them, [start, end) in units.
  size_t begin_holding(uint64_t client, int64_t token, uint64_t start);
  void end_holding(size_t holding, uint64_t end);
  bool holding_open(size_t holding) const { return holdings_[holding].open; }
  void finish_elections();

  // --- Watches (check e).
  void on_watch_response(WatchConsumer& c, const store::WatchResponse& r);
  void on_watch_progress(const WatchConsumer& c, const store::WatchResponse& r);
  // After a compacted response: the client read every key at `revision`.
  void on_resync(WatchConsumer& c, const std::vector<store::KeyValue>& kvs, int64_t revision);

  // Turns check c off (to show that check d catches a lease bug on its own).
  void disable_lease_validity() { lease_validity_ = false; }

  bool failed() const { return !invariant_.empty(); }
  const std::string& invariant() const { return invariant_; }
  const std::string& details() const { return details_; }
  const StoreCheckStats& stats() const { return stats_; }

 private:
  struct ModelKv {
    std::string value;
    store::LeaseId lease;
    int64_t create = 0;
    int64_t mod = 0;
    int64_t version = 0;
  };
  struct LeaseCheck {
    int64_t ttl_s = 0;
    uint64_t protected_until = 0;        // max over counted refreshes of sent + validity
    uint64_t late_until = 0;             // the same over late acknowledgements (diagnostics)
    std::optional<uint64_t> expired_at;  // proposal time of the applied expiry revoke
    uint64_t client = 0;
  };
  struct Holding {
    uint64_t client = 0;
    int64_t token = 0;
    uint64_t start = 0;
    uint64_t end = 0;
    bool open = true;
  };

  void fail(std::string invariant, std::string details);
  std::vector<store::KeyValue> model_kvs() const;
  store::KeyValue to_kv(const std::string& key, const ModelKv& m) const;
  bool compare_holds(const store::Compare& c) const;

  std::map<std::string, ModelKv> kv_;
  std::map<store::LeaseId, int64_t> leases_;      // id -> ttl_s
  std::map<store::LeaseId, LogIndex> refreshed_;  // id -> index of grant / last keep-alive
  uint64_t max_lease_id_ = 0;
  int64_t revision_ = 0;
  int64_t compact_revision_ = 0;
  std::vector<std::vector<store::Event>> events_;  // by revision (0 unused)
  std::vector<uint64_t> state_hash_;               // by revision

  std::map<store::LeaseId, LeaseCheck> lease_checks_;
  std::map<uint64_t, std::pair<store::LeaseId, uint64_t>> expiry_proposals_;
  std::vector<Holding> holdings_;
  std::map<int64_t, uint64_t> token_holder_;

  bool lease_validity_ = true;
  std::string invariant_;
  std::string details_;
  StoreCheckStats stats_;
};

// "put k=v lease=3", "txn ...": a request for reports.
std::string describe_request(const store::Request& r);

}  // namespace vigil::sim
