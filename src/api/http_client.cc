// HttpClient implementation: Beast async operations on a private io_context, run with a
// deadline so a hung server cannot block the caller forever.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "api/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace vigil::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpClient::Impl {
 public:
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(std::string host_port)
    : host_port_(std::move(host_port)), impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                         const std::string& body, int timeout_ms,
                                         const std::string& content_type) {
  ASSIGN_OR_RETURN(auto hp, split_host_port(host_port_));
  Impl& d = *impl_;
  auto deadline = std::chrono::milliseconds(timeout_ms);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !d.stream.has_value();
    beast::error_code ec;
    if (fresh) {
      d.stream.emplace(d.io);
      auto addr = asio::ip::make_address(hp.first, ec);
      if (ec) return err(Errc::kInvalidArgument, "address " + host_port_ + ": " + ec.message());
      d.io.restart();
      bool done = false;
      d.stream->async_connect(tcp::endpoint(addr, hp.second), [&](beast::error_code e) {
        ec = e;
        done = true;
      });
      d.io.run_for(deadline);
      if (!done) {
        d.stream.reset();
        return err(Errc::kTimeout, "connect " + host_port_ + ": timed out");
      }
      if (ec) {
        d.stream.reset();
        return err(Errc::kUnavailable, "connect " + host_port_ + ": " + ec.message());
      }
      beast::error_code ignored;
      d.stream->socket().set_option(tcp::no_delay(true), ignored);
    }
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host_port_);
    req.set(http::field::user_agent, "vigil");
    if (!body.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(256ull << 20);
    bool done = false;
    d.io.restart();
    http::async_write(*d.stream, req, [&](beast::error_code e, size_t) {
      if (e) {
        ec = e;
        done = true;
        return;
      }
      http::async_read(*d.stream, d.buffer, parser, [&](beast::error_code e2, size_t) {
        ec = e2;
        done = true;
      });
    });
    d.io.run_for(deadline);
    if (!done) {
      d.stream.reset();  // closes the socket; the next request reconnects
      d.buffer.clear();
      d.io.restart();
      d.io.poll();
      return err(Errc::kTimeout, method + " " + target + " on " + host_port_ +
                                     ": no response within " + std::to_string(timeout_ms) + " ms");
    }
    if (ec) {
      d.stream.reset();
      d.buffer.clear();
      // A kept-alive connection the server closed: retry once on a fresh one.
      if (!fresh) continue;
      return err(Errc::kUnavailable,
                 method + " " + target + " on " + host_port_ + ": " + ec.message());
    }
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    if (!res.keep_alive()) {
      d.stream.reset();
      d.buffer.clear();
    }
    return out;
  }
  return err(Errc::kUnavailable, "request to " + host_port_ + " failed");
}

}  // namespace vigil::api
