// RegistryService: the service registry over the replicated store — instances registered
// under /vigil/svc/SERVICE/ID, health checks run by the node that took the registration, and
// health flips written to /vigil/svc-health/SERVICE/ID (docs/API.md "Service registry").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "daemon/store_service.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::daemon {

// Where the registry keeps its records (reserved: clients read and watch them, only Vigil
// writes them).
inline constexpr std::string_view kSvcPrefix = "/vigil/svc/";
inline constexpr std::string_view kSvcHealthPrefix = "/vigil/svc-health/";

// Owned by the Agent next to the StoreService it builds on; runs on the agent's event-loop
// thread (probes run asynchronously on the same io_context, never blocking it). Usage:
// handle() for HTTP requests (after the store's), tick() every tick. The registry keeps no
// state of its own beyond the running checks: after every applied change (seen at the next
// tick) it reconciles the checks with the records that name this node, so checks come back
// after a restart and stop when an instance is deregistered or its lease expires.
class RegistryService {
 public:
  // `node_name` is recorded in the instances this node checks.
  RegistryService(boost::asio::io_context& io, StoreService& store, std::string node_name);
  ~RegistryService();
  RegistryService(const RegistryService&) = delete;
  RegistryService& operator=(const RegistryService&) = delete;

  // Serves /v1/svc and /v1/svc/... Returns false, without answering, for any other path.
  bool handle(const api::HttpRequest& req, const api::Responder& respond, int64_t now_ms);

  // Reconciles the checks with the store if it changed, and (re)publishes health states the
  // store does not show yet.
  void tick(int64_t now_ms);

  size_t check_count() const { return checks_.size(); }

 private:
  struct Check;

  void handle_register(const api::HttpRequest& req, const std::string& service,
                       const api::Responder& respond, int64_t now_ms);
  void handle_deregister(const std::string& service, const std::string& id,
                         const api::Responder& respond, int64_t now_ms);
  void reconcile();
  void start_check(const std::shared_ptr<Check>& c);
  void schedule_probe(const std::shared_ptr<Check>& c, int delay_ms);
  void on_probe_result(const std::shared_ptr<Check>& c, bool ok, const std::string& detail);
  // Writes the check's state to the store if it is known and differs from the stored one
  // (at most once per second per check while it does not show up).
  void maybe_publish(Check& c);

  boost::asio::io_context& io_;
  StoreService& store_;
  std::string node_name_;
  // Running checks by "SERVICE/ID".
  std::map<std::string, std::shared_ptr<Check>> checks_;
  int64_t reconciled_revision_ = -1;
  int64_t now_ms_ = 0;
};

}  // namespace vigil::daemon
