// ClusterService: the resource manager as the agent runs it — the cluster definition applied
// through the store, the coordinator on the leader (scheduler → assignments) and the executor
// on every node (assignments → resource agents → reports). docs/API.md "Cluster".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_server.h"
#include "cluster/model.h"
#include "daemon/store_service.h"
#include "sched/coordinate.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::daemon {

// Where the resource manager keeps its records (under the reserved /vigil/ prefix):
//   /vigil/cluster/definition   the YAML text last applied (vigil apply -f)
//   /vigil/cluster/cli/ID       constraints the CLI added (move, ban), JSON
//   /vigil/nodes/NODE           the leader's view of the node: {"state": ...}
//   /vigil/exec/NODE            NODE's executor: {"boot": ..., "ready": true once it has
//                               probed and reported everything it may run}
//   /vigil/assign/NODE/RES      what NODE must run: {"role": ..., "spec": {...}}
//   /vigil/status/NODE/RES      what NODE's executor reports
//   /vigil/cluster/node/NODE    operator flags: {"standby": bool, "maintenance": bool}
//   /vigil/cluster/role/RES     operator target role: {"target_role": "stopped"} (disable)
//   /vigil/cluster/restart/RES  a restart request: its mod_revision is the restart generation
//   /vigil/events/TIME-NODE-SEQ what happened (JSON), the oldest deleted past the retention
inline constexpr std::string_view kDefinitionKey = "/vigil/cluster/definition";
inline constexpr std::string_view kCliConstraintPrefix = "/vigil/cluster/cli/";
inline constexpr std::string_view kNodePrefix = "/vigil/nodes/";
inline constexpr std::string_view kExecPrefix = "/vigil/exec/";
inline constexpr std::string_view kAssignPrefix = "/vigil/assign/";
inline constexpr std::string_view kStatusPrefix = "/vigil/status/";
inline constexpr std::string_view kNodeFlagPrefix = "/vigil/cluster/node/";
inline constexpr std::string_view kRoleOverridePrefix = "/vigil/cluster/role/";
inline constexpr std::string_view kRestartPrefix = "/vigil/cluster/restart/";
inline constexpr std::string_view kEventPrefix = "/vigil/events/";

// What the service needs from the agent that hosts it.
class ClusterHost {
 public:
  virtual ~ClusterHost() = default;
  virtual bool is_leader() const = 0;
  // The leader's lease (quorum contact within the election timeout).
  virtual bool has_quorum() const = 0;
  // This node holds a valid hold (DESIGN.md "Holds"): as leader, while its lease is valid;
  // as a follower, for hold_ms after the last message it received from the leader.
  virtual bool hold_valid() const = 0;
  // When that hold ends if it is not renewed (steady-clock ms, CLOCK_MONOTONIC); 0: none.
  virtual int64_t hold_until_ms() const = 0;
  // When (steady-clock ms, like hold_until_ms) this leader last heard from `node`; nullopt
  // if never. Holds are reckoned on the steady clock: a wall-clock step must not end one.
  virtual std::optional<int64_t> last_heard_ms(const std::string& node) const = 0;
  // When this node became leader (steady-clock ms).
  virtual int64_t leader_since_ms() const = 0;
  // As leader: the node that led the term just before this leader's, if this node followed
  // it in that term; "" otherwise (sched::HoldClock: its hold ended with its lease).
  virtual std::string previous_leader() const = 0;
  // Bumped each time this node stops leading. The executor counts its hold as lost once for
  // each, even when a follower hold follows at once: what it ran under its lease stops, so
  // that the next leader may count that hold as ended (sched::HoldClock, previous leader).
  virtual uint64_t hold_generation() const = 0;
};

struct ClusterServiceOptions {
  std::string node;                  // this node's name
  std::vector<std::string> members;  // every voter's name
  std::string data_dir;              // the agent's; supervised processes keep pid files here
  int64_t hold_ms = 480;
  int64_t hold_guard_ms = 120;  // timers.hold_guard_ms: what a lost hold's stops get
  int64_t tick_ms = 10;         // timers.tick_ms: how often tick() runs
  double clock_drift = 0.01;
  std::string ocf_root = "/usr/lib/ocf";
  std::string fence_dir = "/usr/sbin";  // fence agents (Debian's fence-agents: fence_*)
  size_t event_retention = 1000;        // events kept in the store; the leader deletes older ones
};

// Owned by the Agent after the StoreService it builds on; runs on the agent's event-loop
// thread; agent actions run asynchronously on the same io_context. Usage: handle() for
// HTTP requests, after_apply() after every batch of applied entries, tick() every tick.
class ClusterService {
 public:
  ClusterService(boost::asio::io_context& io, StoreService& store, ClusterHost& host,
                 ClusterServiceOptions options);
  ~ClusterService();
  ClusterService(const ClusterService&) = delete;
  ClusterService& operator=(const ClusterService&) = delete;

  // Serves /v1/cluster..., /v1/resources/... Returns false for any other path.
  bool handle(const api::HttpRequest& req, const api::Responder& respond, int64_t now_ms);
  // Reacts to what was applied: the executor reconciles, the coordinator (on the leader)
  // plans again.
  void after_apply(int64_t now_ms);
  void tick(int64_t now_ms);
  // The hold may have been renewed (a grant, a lease acknowledgement): the VIP guard is told.
  void hold_changed();
  // Whether `node` is assigned an exclusive resource (as this replica knows).
  bool runs_exclusive(const std::string& node) const;
  // The agent is stopping: the node gives up its hold and stops its exclusive resources
  // (VIPs first); `done` runs on the event loop once they are stopped (or their stop
  // timeouts passed).
  void shutdown(std::function<void()> done);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::daemon
