// Tests of the TCP and HTTP probes against real listeners on 127.0.0.1 (port 0).
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "health/io/probe.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>

namespace vigil::health {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Runs one probe to completion on `io` and returns its result.
ProbeResult probe(asio::io_context& io, const ProbeSpec& spec) {
  std::optional<ProbeResult> out;
  run_probe(io, spec, [&](ProbeResult r) {
    out = std::move(r);
    io.stop();
  });
  io.restart();
  io.run();
  EXPECT_TRUE(out.has_value());
  return out.value_or(ProbeResult{false, "no result"});
}

ProbeSpec tcp_spec(uint16_t port, int timeout_ms = 2000) {
  ProbeSpec s;
  s.kind = ProbeSpec::Kind::kTcp;
  s.host = "127.0.0.1";
  s.port = port;
  s.timeout_ms = timeout_ms;
  return s;
}

// A one-shot HTTP server: answers every connection with `response` after reading the
// request head (or never, when `silent`).
class FakeHttp {
 public:
  FakeHttp(asio::io_context& io, std::string response, bool silent = false)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        response_(std::move(response)),
        silent_(silent) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::string& last_request() const { return last_request_; }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    std::array<char, 4096> buf{};
    std::string in;
  };
  void accept() {
    auto conn =
        std::make_shared<Conn>(static_cast<asio::io_context&>(acceptor_.get_executor().context()));
    acceptor_.async_accept(conn->socket, [this, conn](const boost::system::error_code& ec) {
      if (ec) return;
      read(conn);
      accept();
    });
  }
  void read(const std::shared_ptr<Conn>& conn) {
    conn->socket.async_read_some(
        asio::buffer(conn->buf), [this, conn](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          conn->in.append(conn->buf.data(), n);
          if (conn->in.find("\r\n\r\n") == std::string::npos) return read(conn);
          last_request_ = conn->in;
          if (silent_) return read(conn);  // hold the connection open, never answer
          asio::async_write(conn->socket, asio::buffer(response_),
                            [conn](const boost::system::error_code&, size_t) {
                              boost::system::error_code ignored;
                              conn->socket.shutdown(tcp::socket::shutdown_both, ignored);
                              conn->socket.close(ignored);
                            });
        });
  }
  tcp::acceptor acceptor_;
  std::string response_;
  bool silent_;
  std::string last_request_;
};

TEST(TcpProbe, SucceedsAgainstAListener) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto r = probe(io, tcp_spec(acceptor.local_endpoint().port()));
  EXPECT_TRUE(r.ok) << r.detail;
}

TEST(TcpProbe, FailsWhenNothingListens) {
  asio::io_context io;
  uint16_t port;
  {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  auto r = probe(io, tcp_spec(port));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("connect"), std::string::npos) << r.detail;
}

TEST(TcpProbe, ResolvesNames) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ProbeSpec s = tcp_spec(acceptor.local_endpoint().port());
  s.host = "localhost";
  auto r = probe(io, s);
  // localhost may resolve to ::1 first; async_connect tries every address.
  EXPECT_TRUE(r.ok) << r.detail;
}

TEST(HttpProbe, AcceptsTwoHundredAndChecksTheBody) {
  asio::io_context io;
  FakeHttp server(io, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nstatus: up\n");
  auto spec = parse_http_probe("http://127.0.0.1:" + std::to_string(server.port()) + "/health");
  ASSERT_TRUE(spec.has_value());
  auto r = probe(io, *spec);
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(server.last_request().substr(0, 24), "GET /health HTTP/1.1\r\nHo");
  spec->expect_body = "up";
  EXPECT_TRUE(probe(io, *spec).ok);
  spec->expect_body = "down";
  r = probe(io, *spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("lacks"), std::string::npos) << r.detail;
}

TEST(HttpProbe, ChecksTheStatus) {
  asio::io_context io;
  FakeHttp server(io, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  auto spec = parse_http_probe("http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(spec.has_value());
  auto r = probe(io, *spec);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "HTTP 503 (want 2xx)");
  spec->expect_status = 503;
  EXPECT_TRUE(probe(io, *spec).ok);
}

TEST(HttpProbe, DecodesChunkedBodies) {
  asio::io_context io;
  FakeHttp server(io,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nrea\r\n"
                  "3\r\ndy!\r\n0\r\n\r\n");
  auto spec = parse_http_probe("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  ASSERT_TRUE(spec.has_value());
  spec->expect_body = "ready";  // split across two chunks
  auto r = probe(io, *spec);
  EXPECT_TRUE(r.ok) << r.detail;
}

TEST(HttpProbe, TimesOutOnASilentServer) {
  asio::io_context io;
  FakeHttp server(io, "", /*silent=*/true);
  auto spec = parse_http_probe("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  ASSERT_TRUE(spec.has_value());
  spec->timeout_ms = 100;
  auto r = probe(io, *spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("timed out"), std::string::npos) << r.detail;
}

TEST(ProbeParse, NamesWhatIsWrong) {
  EXPECT_EQ(parse_tcp_probe("db:5432")->port, 5432);
  EXPECT_EQ(parse_tcp_probe("[::1]:80")->host, "::1");
  EXPECT_FALSE(parse_tcp_probe("db").has_value());
  EXPECT_FALSE(parse_tcp_probe(":80").has_value());
  EXPECT_FALSE(parse_tcp_probe("db:70000").has_value());
  auto h = parse_http_probe("http://web/ready?x=1");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->port, 80);
  EXPECT_EQ(h->path, "/ready?x=1");
  auto tls = parse_http_probe("https://web/");
  ASSERT_FALSE(tls.has_value());
  EXPECT_NE(tls.error().message().find("https"), std::string::npos);
  EXPECT_FALSE(parse_http_probe("ftp://x/").has_value());
}

}  // namespace
}  // namespace vigil::health
