// HttpServer: a small asynchronous HTTP/1.1 server (Boost.Beast) for the agent's API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace boost::asio {
class io_context;
}

namespace vigil::api {

// A streamed answer (chunked transfer encoding), for watches: one chunk per event batch.
// Used on the io_context thread only. The stream ends when end() is called, when the client
// goes away, or when the client reads so slowly that kMaxStreamBacklogBytes pile up (it
// then reconnects and resumes from the last revision it saw).
class ResponseStream {
 public:
  static constexpr size_t kMaxStreamBacklogBytes = 8 << 20;
  virtual ~ResponseStream() = default;
  // Queues one chunk. Returns false (and drops it) once the stream is closed.
  virtual bool write(std::string chunk) = 0;
  // Sends the final chunk and closes the connection.
  virtual void end() = 0;
  virtual bool closed() const = 0;
};

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query, undecoded
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
  // Set by the server: answers with a stream instead of through the Responder (call one of
  // the two, once). Empty outside a server (tests, fuzzing).
  std::function<std::shared_ptr<ResponseStream>(int status, std::string content_type)> start_stream;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (WWW-Authenticate)
};

// The API's error format: {"error": {"code": CODE, "message": MESSAGE}} with `status`.
HttpResponse error_response(int status, std::string_view code, std::string_view message);

// Called once per request with the response; may be called later (after a Raft commit),
// always on the io_context thread. Calling it after the connection closed is harmless.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(const HttpRequest&, Responder)>;
// Called before the handler: nullopt lets the request through, a response refuses it
// (sent instead of calling the handler). See api/auth.h for the bearer-token one.
using Authorize = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

struct HttpServerOptions {
  uint64_t max_body_bytes = 1 << 20;     // larger bodies get 413
  uint64_t max_header_bytes = 16 << 10;  // larger headers get 431
  int idle_timeout_ms = 60000;           // keep-alive connections idle longer are closed
  size_t max_connections = 4096;         // further connections are refused at accept
  // HTTPS (TLS 1.2 or later) with this PEM certificate chain and private key; both empty:
  // plain HTTP. listen() loads them and fails naming the file that is wrong. On a TLS port
  // a client speaking plain HTTP gets a plain-text 400 "tls_required" and is disconnected.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Empty: every request reaches the handler.
  Authorize authorize;
  // After a 413 the server stops answering but reads (and drops) what the client still
  // sends, for at most this long and max_drain_bytes, so that the client sees the 413
  // rather than a connection reset in the middle of its upload.
  int drain_timeout_ms = 2000;
  uint64_t max_drain_bytes = 64 << 20;
};

// Owned by the daemon; single-threaded on the io_context passed in. Keep-alive is
// supported; one request at a time per connection (no pipelining of responses).
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS files (if any), binds and starts accepting. `host_port` like
  // "127.0.0.1:8001" (port 0: any free port). Errors: kInvalidArgument naming a TLS file
  // that cannot be used or a bad address, kIoError when the address cannot be bound.
  Status listen(const std::string& host_port);
  bool tls() const;
  uint16_t port() const;
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

// Parses one request from `bytes` exactly as a connection of a server with `options` would
// (same Beast parser, same header and body limits), without any I/O: for the fuzz target
// and tests. Errors: kInvalidArgument (malformed; the message says where),
// kResourceExhausted (a limit: header or body too large), kUnavailable (incomplete).
Result<HttpRequest> parse_http_request(std::string_view bytes, const HttpServerOptions& options);

// Splits "host:port" (IPv6 as "[::1]:80"). Errors name the bad part.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view host_port);

}  // namespace vigil::api
