// HttpClient: a blocking HTTP/1.1 client with keep-alive and per-request deadlines, for the
// CLI, end-to-end tests and benchmarks. Not for the agent's event loop.
#pragma once

#include <memory>
#include <string>

#include "api/http_server.h"
#include "base/status.h"

namespace vigil::api {

// One connection to one server, reconnected on demand. Not thread-safe: one per thread.
class HttpClient {
 public:
  explicit HttpClient(std::string host_port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and waits for the whole response. Errors: kUnavailable (cannot
  // connect, connection lost), kTimeout (no response within timeout_ms). HTTP error
  // statuses are not errors: check HttpResponse::status.
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::string& body = "", int timeout_ms = 5000,
                               const std::string& content_type = "application/json");

  const std::string& host_port() const { return host_port_; }

 private:
  class Impl;
  std::string host_port_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::api
