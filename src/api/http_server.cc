// HttpServer implementation over Boost.Beast: the only translation unit with Beast's server.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <set>

namespace vigil::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        })) {
      return v;
    }
  }
  return "";
}

Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view hp) {
  std::string host;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') {
      return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': want [ipv6]:port");
    }
    host = std::string(hp.substr(1, close - 1));
    port = hp.substr(close + 2);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) {
      return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': want host:port");
    }
    host = std::string(hp.substr(0, colon));
    port = hp.substr(colon + 1);
  }
  if (host.empty()) {
    return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': empty host");
  }
  if (port.empty() || port.size() > 5) {
    return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': bad port");
  }
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': bad port");
    }
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) {
    return err(Errc::kInvalidArgument, "address '" + std::string(hp) + "': port above 65535");
  }
  return std::make_pair(host, static_cast<uint16_t>(p));
}

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, HttpServerOptions options, Handler handler)
      : io_(io), acceptor_(io), options_(options), handler_(std::move(handler)) {}

  class Session;

  Status listen(const std::string& host_port) {
    ASSIGN_OR_RETURN(auto hp, split_host_port(host_port));
    beast::error_code ec;
    auto addr = asio::ip::make_address(hp.first, ec);
    if (ec) return err(Errc::kInvalidArgument, "listen " + host_port + ": " + ec.message());
    tcp::endpoint ep(addr, hp.second);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return err(Errc::kIoError, "listen " + host_port + ": " + ec.message());
    accept();
    return Status();
  }

  void accept();
  void stop();

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  HttpServerOptions options_;
  Handler handler_;
  std::set<std::shared_ptr<Session>> sessions_;
  bool stopped_ = false;
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::weak_ptr<Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {}

  void start() { read(); }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    auto srv = server_.lock();
    if (!srv) return;
    parser_.emplace();
    parser_->body_limit(srv->options_.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(srv->options_.max_header_bytes));
    stream_.expires_after(std::chrono::milliseconds(srv->options_.idle_timeout_ms));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    auto srv = server_.lock();
    if (!srv) return;
    if (ec == http::error::body_limit) {
      HttpResponse r;
      r.status = 413;
      r.body = R"({"error":{"code":"too_large","message":"request body exceeds )" +
               std::to_string(srv->options_.max_body_bytes) + R"( bytes"}})";
      keep_alive_ = false;
      write(std::move(r));
      return;
    }
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && ec != asio::error::eof &&
          ec != asio::error::connection_reset) {
        HttpResponse r;
        r.status = 400;
        r.body = R"({"error":{"code":"bad_request","message":"malformed HTTP request: )" +
                 ec.message() + R"("}})";
        keep_alive_ = false;
        write(std::move(r));
        return;
      }
      finish();
      return;
    }
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.body = std::move(msg.body());
    for (const auto& f : msg) {
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    stream_.expires_never();
    auto weak = weak_from_this();
    auto answered = std::make_shared<bool>(false);
    srv->handler_(req, [weak, answered](HttpResponse r) {
      if (*answered) return;
      *answered = true;
      if (auto self = weak.lock()) self->write(std::move(r));
    });
  }

  void write(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "vigil");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !self->keep_alive_) {
                          self->finish();
                          return;
                        }
                        self->read();
                      });
  }

  void finish() {
    close();
    if (auto srv = server_.lock()) srv->sessions_.erase(shared_from_this());
  }

  std::weak_ptr<Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
};

void HttpServer::Impl::accept() {
  acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket s) {
    if (self->stopped_) return;
    if (!ec) {
      if (self->sessions_.size() >= self->options_.max_connections) {
        beast::error_code ignored;
        s.close(ignored);
      } else {
        s.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(self, std::move(s));
        self->sessions_.insert(session);
        session->start();
      }
    }
    self->accept();
  });
}

void HttpServer::Impl::stop() {
  stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (auto& s : sessions) s->close();
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io, options, std::move(handler))) {}
HttpServer::~HttpServer() { impl_->stop(); }
Status HttpServer::listen(const std::string& host_port) { return impl_->listen(host_port); }
uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}
void HttpServer::stop() { impl_->stop(); }

}  // namespace vigil::api
