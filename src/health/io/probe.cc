// Health probes: raw Asio TCP connect and a minimal HTTP/1.1 GET (Connection: close).
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "health/io/probe.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <memory>

namespace vigil::health {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr size_t kMaxHeaderBytes = 16 << 10;

Result<uint16_t> parse_port(std::string_view s, std::string_view what) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) {
    return err(Errc::kInvalidArgument,
               std::string(what) + ": port '" + std::string(s) + "': want 1 to 65535");
  }
  return static_cast<uint16_t>(v);
}

// Splits "HOST:PORT" / "[V6]:PORT"; `default_port` when the port is absent (0: required).
Status split_host_port(std::string_view in, std::string_view what, uint16_t default_port,
                       std::string* host, uint16_t* port) {
  std::string_view h = in, p;
  if (!in.empty() && in.front() == '[') {
    size_t close = in.find(']');
    if (close == std::string_view::npos) {
      return err(Errc::kInvalidArgument,
                 std::string(what) + ": missing ']' in '" + std::string(in) + "'");
    }
    h = in.substr(1, close - 1);
    std::string_view rest = in.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return err(Errc::kInvalidArgument,
                   std::string(what) + ": want [ADDRESS]:PORT (got '" + std::string(in) + "')");
      }
      p = rest.substr(1);
    }
  } else if (size_t colon = in.rfind(':'); colon != std::string_view::npos) {
    h = in.substr(0, colon);
    p = in.substr(colon + 1);
  }
  if (h.empty()) {
    return err(Errc::kInvalidArgument,
               std::string(what) + ": no host in '" + std::string(in) + "'");
  }
  *host = std::string(h);
  if (p.empty() && default_port != 0) {
    *port = default_port;
    return Status();
  }
  auto port_or = parse_port(p, what);
  if (!port_or) return port_or.error();
  *port = *port_or;
  return Status();
}

// Case-insensitive search of a header's value in the header block ("" if absent).
std::string header_value(std::string_view headers, std::string_view name) {
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    std::string_view line = headers.substr(pos, eol - pos);
    size_t colon = line.find(':');
    if (colon == name.size()) {
      bool same = true;
      for (size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) !=
            std::tolower(static_cast<unsigned char>(name[i]))) {
          same = false;
          break;
        }
      }
      if (same) {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        std::string out(v);
        for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
      }
    }
    pos = eol + 2;
  }
  return "";
}

// Decodes a chunked body as far as it is complete (RFC 9112 §7.1); extensions ignored.
std::string dechunk(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) break;
    size_t n = 0;
    std::string_view size_str = in.substr(0, eol);
    if (size_t semi = size_str.find(';'); semi != std::string_view::npos) {
      size_str = size_str.substr(0, semi);
    }
    auto [end, ec] = std::from_chars(size_str.data(), size_str.data() + size_str.size(), n, 16);
    if (ec != std::errc() || n == 0) break;
    in.remove_prefix(eol + 2);
    out.append(in.substr(0, std::min(n, in.size())));
    if (in.size() < n + 2) break;
    in.remove_prefix(n + 2);
  }
  return out;
}

class Probe : public std::enable_shared_from_this<Probe> {
 public:
  Probe(asio::io_context& io, ProbeSpec spec, std::function<void(ProbeResult)> done)
      : spec_(std::move(spec)), done_(std::move(done)), socket_(io), resolver_(io), timer_(io) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(spec_.timeout_ms));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec) return;
      self->finish(false, "timed out after " + std::to_string(self->spec_.timeout_ms) + " ms");
    });
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(spec_.host, ec);
    if (!ec) {
      socket_.async_connect(tcp::endpoint(addr, spec_.port),
                            [self](const boost::system::error_code& e) { self->on_connect(e); });
      return;
    }
    resolver_.async_resolve(
        spec_.host, std::to_string(spec_.port),
        [self](const boost::system::error_code& e, tcp::resolver::results_type results) {
          if (self->finished_) return;
          if (e) return self->finish(false, "resolve " + self->spec_.host + ": " + e.message());
          asio::async_connect(self->socket_, results,
                              [self](const boost::system::error_code& e2, const tcp::endpoint&) {
                                self->on_connect(e2);
                              });
        });
  }

 private:
  std::string where() const { return spec_.host + ":" + std::to_string(spec_.port); }

  void on_connect(const boost::system::error_code& ec) {
    if (finished_) return;
    if (ec) return finish(false, "connect " + where() + ": " + ec.message());
    if (spec_.kind == ProbeSpec::Kind::kTcp) return finish(true, "connected to " + where());
    request_ = "GET " + spec_.path + " HTTP/1.1\r\nHost: " + where() +
               "\r\nUser-Agent: vigil-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(request_),
                      [self](const boost::system::error_code& e, size_t) {
                        if (self->finished_) return;
                        if (e) return self->finish(false, "send request: " + e.message());
                        self->read_more();
                      });
  }

  void read_more() {
    auto self = shared_from_this();
    socket_.async_read_some(
        asio::buffer(chunk_), [self](const boost::system::error_code& e, size_t n) {
          if (self->finished_) return;
          self->response_.append(self->chunk_.data(), n);
          const bool full = self->response_.size() >= kMaxHeaderBytes + kMaxProbeBodyBytes;
          if (e || full) return self->evaluate(e);
          self->read_more();
        });
  }

  // Judges the response read so far (the server closed, or the size cap was reached).
  void evaluate(const boost::system::error_code& ec) {
    size_t head_end = response_.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      return finish(false, "no complete HTTP response from " + where() +
                               (ec && ec != asio::error::eof ? ": " + ec.message() : ""));
    }
    std::string_view head(response_.data(), head_end);
    // Status line: HTTP/1.x SSS reason
    int status = 0;
    if (head.substr(0, 5) == "HTTP/" && head.size() >= 12) {
      std::string_view code = head.substr(9, 3);
      std::from_chars(code.data(), code.data() + code.size(), status);
    }
    if (status < 100 || status > 599) return finish(false, "malformed HTTP status line");
    const bool status_ok =
        spec_.expect_status == 0 ? (status >= 200 && status < 300) : status == spec_.expect_status;
    const std::string want =
        spec_.expect_status == 0 ? std::string("2xx") : std::to_string(spec_.expect_status);
    if (!status_ok) {
      return finish(false, "HTTP " + std::to_string(status) + " (want " + want + ")");
    }
    if (!spec_.expect_body.empty()) {
      size_t eol = head.find("\r\n");
      std::string_view headers = eol == std::string_view::npos ? "" : head.substr(eol + 2);
      std::string_view raw = std::string_view(response_).substr(head_end + 4);
      std::string body =
          header_value(headers, "transfer-encoding").find("chunked") != std::string::npos
              ? dechunk(raw)
              : std::string(raw);
      if (body.size() > kMaxProbeBodyBytes) body.resize(kMaxProbeBodyBytes);
      if (body.find(spec_.expect_body) == std::string::npos) {
        return finish(false, "HTTP " + std::to_string(status) + " but the body lacks \"" +
                                 spec_.expect_body + "\"");
      }
    }
    finish(true, "HTTP " + std::to_string(status));
  }

  void finish(bool ok, std::string detail) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    resolver_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    auto done = std::move(done_);
    done(ProbeResult{ok, std::move(detail)});
  }

  ProbeSpec spec_;
  std::function<void(ProbeResult)> done_;
  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::string request_;
  std::string response_;
  std::array<char, 4096> chunk_{};
  bool finished_ = false;
};

}  // namespace

Result<ProbeSpec> parse_tcp_probe(std::string_view host_port) {
  ProbeSpec s;
  s.kind = ProbeSpec::Kind::kTcp;
  RETURN_IF_ERROR(split_host_port(host_port, "tcp check", 0, &s.host, &s.port));
  return s;
}

Result<ProbeSpec> parse_http_probe(std::string_view url) {
  if (url.substr(0, 8) == "https://") {
    return err(Errc::kInvalidArgument,
               "http check: https:// is not supported yet; use http:// or a tcp check");
  }
  if (url.substr(0, 7) != "http://") {
    return err(Errc::kInvalidArgument,
               "http check: want http://HOST[:PORT][/PATH] (got '" + std::string(url) + "')");
  }
  std::string_view rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ProbeSpec s;
  s.kind = ProbeSpec::Kind::kHttp;
  RETURN_IF_ERROR(split_host_port(authority, "http check", 80, &s.host, &s.port));
  s.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  for (char c : s.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return err(Errc::kInvalidArgument,
                 "http check: the path must not contain spaces or "
                 "control characters (percent-encode them)");
    }
  }
  return s;
}

void run_probe(asio::io_context& io, const ProbeSpec& spec, std::function<void(ProbeResult)> done) {
  std::make_shared<Probe>(io, spec, std::move(done))->start();
}

}  // namespace vigil::health
