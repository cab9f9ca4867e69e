// StoreService: the replicated MVCC store as the agent serves it — requests in over HTTP,
// through Raft, applied, answered; leases expired and history compacted by the leader.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "base/ids.h"
#include "base/status.h"
#include "raft/types.h"
#include "store/compactor.h"
#include "store/lease_tracker.h"
#include "store/mvcc.h"
#include "store/watch.h"

namespace vigil::daemon {

// What the service needs from the node that hosts it (the Agent; a fake in tests).
class StoreHost {
 public:
  virtual ~StoreHost() = default;
  // Proposes an encoded store::Request to Raft. Errors as raft::Raft::propose.
  virtual Status propose(std::string data) = 0;
  // Asks Raft for a linearizable read point; the answer comes to on_read_state().
  // Errors: kUnavailable when no leader is known.
  virtual Status read_index(std::string context) = 0;
};

struct StoreServiceOptions {
  int request_timeout_ms = 5000;  // a write or read not answered by then gets 503
  // Automatic compaction, proposed by the leader: keep at least this many revisions, and
  // check at most once per interval. Trade-off: more history for watchers that reconnect
  // late, against memory. A short interval keeps each compaction small (it costs time in
  // proportion to the revisions it drops, on every replica's loop) and memory flat under
  // a write burst: at 10,000 writes/s, 60 s would let ~600,000 revisions pile up.
  int64_t retain_revisions = 10000;
  int64_t compaction_interval_ms = 5000;
  // At most this many revisions per Compact (store/compactor.h): at ~1 us a revision, a
  // step costs every replica ~1 ms of its loop; the steps follow one another each tick.
  int64_t compaction_max_step = 1000;
};

// Owned by the Agent, on its event-loop thread. Usage: handle() for HTTP requests,
// apply()/apply_noop() for every committed entry in order, on_read_state() and
// serve_reads() after each Ready, tick() every tick, on_leadership() on leader changes,
// snapshot()/restore() for Raft snapshots.
class StoreService {
 public:
  StoreService(NodeId self, StoreHost& host, StoreServiceOptions options = {});

  // Serves the store's endpoints (/v1/kv, /v1/txn, /v1/lease, /v1/leases, /v1/compact,
  // /v1/election, /v1/lock, /v1/watch).
  // Returns false, without answering, for any other path.
  bool handle(const api::HttpRequest& req, const api::Responder& respond, int64_t now_ms);

  // A committed entry carrying an encoded store::Request (undecodable entries are skipped
  // the same way on every replica, and logged by the caller from the returned Status).
  Status apply(LogIndex index, std::string_view data, int64_t now_ms);
  void apply_noop(LogIndex index);

  void on_read_state(const raft::ReadState& rs);
  // Answers linearizable reads whose read index is now applied.
  void serve_reads();
  // Times out requests; on the leader, proposes revokes of expired leases and compactions.
  void tick(int64_t now_ms);
  void on_leadership(bool leader, int64_t now_ms);

  // The store's bytes for a Raft snapshot, written into `buffer`'s memory if it is large
  // enough (store::MvccStore::serialize); snapshot_size() is their exact size now.
  std::string snapshot(std::string buffer = {}) const {
    return store_.serialize(std::move(buffer));
  }
  size_t snapshot_size() const { return store_.serialized_size(); }
  Status restore(std::string_view data, int64_t now_ms);

  LogIndex applied() const { return store_.applied(); }
  int64_t revision() const { return store_.revision(); }
  int64_t compact_revision() const { return store_.compact_revision(); }
  size_t key_count() const { return store_.key_count(); }
  size_t lease_count() const { return lease_tracker_.size(); }
  size_t watch_count() const { return watches_.size(); }

  // For services built on the store (the registry): the store as applied on this node,
  // proposing a request whose applied response `render` turns into the HTTP answer, and a
  // linearizable (or serializable) read. Writes under /vigil/ are allowed here.
  const store::MvccStore& store() const { return store_; }
  void propose(store::RequestBody body, const api::Responder& respond, int64_t now_ms,
               std::function<api::HttpResponse(const store::Response&)> render);
  // Proposes without a client waiting (background writes such as health state).
  Status propose_background(store::RequestBody body);
  // Runs `compute` now (serializable) or after a ReadIndex round (linearizable).
  void read(bool serializable, const api::Responder& respond, int64_t now_ms,
            std::function<api::HttpResponse()> compute);

 private:
  struct PendingWrite {
    api::Responder respond;
    int64_t deadline_ms = 0;
    // Turns the applied response into the HTTP answer.
    std::function<api::HttpResponse(const store::Response&)> render;
    // Instead of render: takes over answering (a campaign starts waiting).
    std::function<void(const store::Response&, const api::Responder&)> then;
  };
  // A campaign or lock acquisition waiting to be first in its queue.
  struct QueueWaiter {
    std::string prefix;
    std::string key;
    api::Responder respond;
    int64_t deadline_ms = 0;
  };
  struct PendingRead {
    api::Responder respond;
    int64_t deadline_ms = 0;
    LogIndex index;
    bool have_index = false;
    std::function<api::HttpResponse()> compute;
  };

  void handle_kv(const api::HttpRequest& req, std::string_view path, std::string_view query,
                 const api::Responder& respond, int64_t now_ms);
  void handle_lease(const api::HttpRequest& req, std::string_view path,
                    const api::Responder& respond, int64_t now_ms);
  // /v1/election/NAME[/campaign|/proclaim|/resign] and /v1/lock/NAME.
  void handle_queue(const api::HttpRequest& req, std::string_view path, bool lock,
                    const api::Responder& respond, int64_t now_ms);
  // Answers waiters whose key became first in its queue or disappeared; times out others.
  void check_waiters(int64_t now_ms);
  // GET /v1/watch: a stream of JSON lines.
  void handle_watch(const api::HttpRequest& req, std::string_view query,
                    const api::Responder& respond, int64_t now_ms);
  // Streams what watchers have pending; sends progress to idle ones; drops closed streams.
  void pump_watches(int64_t now_ms);

  NodeId self_;
  StoreHost& host_;
  StoreServiceOptions options_;
  store::MvccStore store_;
  store::LeaseTracker lease_tracker_;
  store::AutoCompactor compactor_;
  // Followers' estimate of lease deadlines (from when they applied the grant or the last
  // keep-alive); the leader's LeaseTracker is authoritative.
  std::map<store::LeaseId, int64_t> refreshed_ms_;
  bool leader_ = false;
  uint64_t next_request_ = 1;
  std::map<uint64_t, PendingWrite> pending_writes_;
  std::map<std::string, PendingRead> pending_reads_;
  std::vector<QueueWaiter> waiters_;
  struct WatchStream {
    std::shared_ptr<api::ResponseStream> out;
    int64_t progress_ms = 0;  // interval of progress notifications (0: none)
    int64_t last_sent_ms = 0;
  };
  // GET /v1/election/NAME/observe: a stream of leader changes.
  struct Observer {
    std::string prefix;
    std::shared_ptr<api::ResponseStream> out;
    std::string last_key;  // "" = no leader announced yet / none
    bool announced = false;
    int64_t last_sent_ms = 0;
  };
  std::vector<Observer> observers_;
  void pump_observers(int64_t now_ms);
  store::WatchHub hub_;
  std::map<store::WatchId, WatchStream> watches_;
  int64_t last_now_ms_ = 0;
};

}  // namespace vigil::daemon
