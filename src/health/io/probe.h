// Health probes on an Asio event loop: TCP connect and HTTP GET, each with a timeout. The
// shell half of src/health (the policy in health/policy.h decides what results mean).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::health {

struct ProbeSpec {
  enum class Kind : uint8_t { kTcp = 0, kHttp = 1 };
  Kind kind = Kind::kTcp;
  std::string host;  // IPv4/IPv6 literal or a name (names are resolved asynchronously)
  uint16_t port = 0;
  std::string path = "/";  // kHttp: the request target
  // kHttp: the status wanted; 0 (default) accepts any 2xx.
  int expect_status = 0;
  // kHttp: a substring the body must contain ("" = no body check). Only the first
  // kMaxProbeBodyBytes of the body are searched.
  std::string expect_body;
  // The whole probe (resolve, connect, request, response) must finish within this.
  int timeout_ms = 2000;
};

inline constexpr size_t kMaxProbeBodyBytes = 64 << 10;
inline constexpr int kMaxProbeTimeoutMs = 60000;

// Parses "HOST:PORT" or "[V6]:PORT" into a TCP spec. Errors (kInvalidArgument) say what.
Result<ProbeSpec> parse_tcp_probe(std::string_view host_port);
// Parses "http://HOST[:PORT][/PATH]" (port 80 by default) into an HTTP spec. https:// is
// refused with a message (not supported yet).
Result<ProbeSpec> parse_http_probe(std::string_view url);

struct ProbeResult {
  bool ok = false;
  std::string detail;  // why it failed, or what succeeded ("connected", "HTTP 200")
};

// Runs one probe on `io` without blocking it and calls `done` exactly once, on `io`'s
// thread, unless `io` is stopped first. The probe keeps itself alive until then; `done`
// must guard against its owner being gone (e.g. with a weak_ptr).
void run_probe(boost::asio::io_context& io, const ProbeSpec& spec,
               std::function<void(ProbeResult)> done);

}  // namespace vigil::health
