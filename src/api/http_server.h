// HttpServer: a small asynchronous HTTP/1.1 server (Boost.Beast) for the agent's API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace boost::asio {
class io_context;
}

namespace vigil::api {

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query, undecoded
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Called once per request with the response; may be called later (after a Raft commit),
// always on the io_context thread. Calling it after the connection closed is harmless.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(const HttpRequest&, Responder)>;

struct HttpServerOptions {
  uint64_t max_body_bytes = 1 << 20;    // larger bodies get 413
  uint64_t max_header_bytes = 16 << 10;
  int idle_timeout_ms = 60000;          // keep-alive connections idle longer are closed
  size_t max_connections = 4096;        // further connections are refused at accept
};

// Owned by the daemon; single-threaded on the io_context passed in. Keep-alive is
// supported; one request at a time per connection (no pipelining of responses).
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. `host_port` like "127.0.0.1:8001" (port 0: any free port).
  Status listen(const std::string& host_port);
  uint16_t port() const;
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

// Splits "host:port" (IPv6 as "[::1]:80"). Errors name the bad part.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view host_port);

}  // namespace vigil::api
