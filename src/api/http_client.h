// HttpClient: a blocking HTTP/1.1 client with keep-alive and per-request deadlines, for the
// CLI, end-to-end tests and benchmarks. Not for the agent's event loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "base/status.h"

namespace vigil::api {

struct HttpClientOptions {
  // HTTPS (TLS 1.2 or later). The server's certificate must chain to `ca_file` and carry
  // `server_name` (or the host of host_port when empty) as a DNS name or IP address.
  bool tls = false;
  std::string ca_file;      // PEM; "": the system's trusted CAs
  std::string server_name;  // Vigil node certificates name the node: "n1"
  // Checks the chain only: any certificate the CA signed is accepted. Only on request.
  bool skip_host_check = false;
  // Sent as "Authorization: Bearer TOKEN" with every request when not empty.
  std::string bearer_token;
};

// An API address as users write it: "https://HOST:PORT", "http://HOST:PORT" or
// "HOST:PORT" (plain HTTP); one trailing '/' is allowed. Errors name what is wrong.
struct ApiEndpoint {
  bool tls = false;
  std::string host_port;
};
Result<ApiEndpoint> parse_api_url(std::string_view url);

// One connection to one server, reconnected on demand. Not thread-safe: one per thread.
class HttpClient {
 public:
  explicit HttpClient(std::string host_port, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and waits for the whole response. Errors: kUnavailable (cannot
  // connect, connection lost, TLS handshake failed: the message says why, e.g. which name
  // the server's certificate carries), kTimeout (no response within timeout_ms),
  // kInvalidArgument (bad address, unusable CA file). HTTP error statuses are not errors:
  // check HttpResponse::status.
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::string& body = "", int timeout_ms = 5000,
                               const std::string& content_type = "application/json");

  // A streamed GET (chunked answer, e.g. /v1/watch): `on_data` gets the bytes of the body
  // as they arrive and returns false to stop. Returns when the server ends the stream,
  // on_data stops it, or `timeout_ms` passes (then with the status seen, not an error).
  // A non-streamed answer (an error) comes back whole in HttpResponse::body.
  using DataFn = std::function<bool(std::string_view)>;
  Result<HttpResponse> stream(const std::string& target, const DataFn& on_data, int timeout_ms);
  // The same with another method and a body (e.g. etcd's gateway: POST /v3/watch).
  Result<HttpResponse> stream(const std::string& method, const std::string& target,
                              const std::string& body, const DataFn& on_data, int timeout_ms);

  const std::string& host_port() const { return host_port_; }

 private:
  Result<HttpResponse> exchange(const std::string& method, const std::string& target,
                                const std::string& body, int timeout_ms,
                                const std::string& content_type, const DataFn* on_data);
  class Impl;
  std::string host_port_;
  HttpClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::api
