// HttpServer implementation over Boost.Beast: the only translation unit with Beast's server.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "api/http_server.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace vigil::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using RequestParser = http::request_parser<http::string_body>;

namespace {

// The one parser configuration of the server, shared with parse_http_request().
void configure(RequestParser& parser, const HttpServerOptions& o) {
  parser.body_limit(o.max_body_bytes);
  parser.header_limit(static_cast<uint32_t>(o.max_header_bytes));
}

HttpRequest to_request(http::request<http::string_body>&& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.body = std::move(msg.body());
  for (const auto& f : msg) {
    req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  return req;
}

// The answer to a request the parser rejected.
HttpResponse parse_error_response(beast::error_code ec, const HttpServerOptions& o) {
  if (ec == http::error::body_limit) {
    return error_response(413, "too_large",
                          "request body exceeds " + std::to_string(o.max_body_bytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return error_response(
        431, "too_large",
        "request header exceeds " + std::to_string(o.max_header_bytes) + " bytes");
  }
  return error_response(400, "bad_request", "malformed HTTP request: " + ec.message());
}

// "" when `path` can be opened for reading, else why not.
std::string unreadable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  return "";
}

// The TLS server context: TLS 1.2 or later, the certificate chain and its key, checked.
Result<std::unique_ptr<ssl::context>> make_server_tls(const std::string& cert,
                                                      const std::string& key) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  for (const auto& [what, path] : {std::pair{"certificate", &cert}, std::pair{"key", &key}}) {
    if (path->empty()) {
      return err(Errc::kInvalidArgument, std::string("API TLS: the ") + what + " file is not set");
    }
    if (std::string why = unreadable(*path); !why.empty()) {
      return err(Errc::kInvalidArgument,
                 std::string("API TLS ") + what + " " + *path + ": cannot read: " + why);
    }
  }
  // The key first: loading a certificate that does not match it then drops the key, and
  // the check below reports the mismatch by name (OpenSSL's own error is less clear).
  beast::error_code ec;
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    return err(Errc::kInvalidArgument,
               "API TLS key " + key + ": not a PEM private key (" + ec.message() + ")");
  }
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) {
    return err(Errc::kInvalidArgument, "API TLS certificate " + cert +
                                           ": not a PEM certificate chain (" + ec.message() + ")");
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return err(Errc::kInvalidArgument,
               "API TLS key " + key + " does not belong to the certificate " + cert);
  }
  return ctx;
}

// Something the server may have to close at stop(): a connection in any state.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual void close() = 0;
};

}  // namespace

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  nlohmann::json j;
  j["error"]["code"] = code;
  j["error"]["message"] = message;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Result<HttpRequest> parse_http_request(std::string_view bytes, const HttpServerOptions& options) {
  RequestParser parser;
  configure(parser, options);
  parser.eager(true);
  beast::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) break;
    }
    if (ec) break;
    bytes.remove_prefix(used);
    if (used == 0) break;
  }
  if (ec) {
    HttpResponse r = parse_error_response(ec, options);
    return err(r.status == 400 ? Errc::kInvalidArgument : Errc::kResourceExhausted,
               "HTTP " + std::to_string(r.status) + ": " + ec.message());
  }
  if (!parser.is_done()) {
    return err(Errc::kUnavailable, "incomplete HTTP request");
  }
  return to_request(parser.release());
}

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
      : io_(io), acceptor_(io), options_(std::move(options)), handler_(std::move(handler)) {}

  template <class Stream>
  class Session;
  class Detector;

  Status listen(const std::string& host_port) {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      ASSIGN_OR_RETURN(tls_, make_server_tls(options_.tls_cert_file, options_.tls_key_file));
    }
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
  void forget(const std::shared_ptr<Connection>& c) { sessions_.erase(c); }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  HttpServerOptions options_;
  Handler handler_;
  std::unique_ptr<ssl::context> tls_;  // null: plain HTTP
  std::set<std::shared_ptr<Connection>> sessions_;
  bool stopped_ = false;
};

// One connection after the TLS decision: Stream is beast::tcp_stream (plain HTTP) or
// beast::ssl_stream<beast::tcp_stream> (HTTPS, handshake first). Requests are read one at
// a time; the response is written before the next request is read.
template <class Stream>
class HttpServer::Impl::Session : public Connection {
 public:
  Session(std::weak_ptr<Impl> server, Stream stream, beast::flat_buffer buffer)
      : server_(std::move(server)), stream_(std::move(stream)), buffer_(std::move(buffer)) {}

  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  void start() {
    if constexpr (kTls) {
      auto srv = server_.lock();
      if (!srv) return;
      lowest().expires_after(std::chrono::milliseconds(srv->options_.idle_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                              [self = self()](beast::error_code ec, size_t used) {
                                if (ec) return self->finish();  // not our client: just close
                                self->buffer_.consume(used);
                                self->read();
                              });
    } else {
      read();
    }
  }

  // Answers `r` and closes, reading what the client still sends for a while (see
  // HttpServerOptions::drain_timeout_ms).
  void refuse(HttpResponse r) {
    keep_alive_ = false;
    drain_ = true;
    write(std::move(r));
  }

  void close() override {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  void read() {
    auto srv = server_.lock();
    if (!srv) return;
    parser_.emplace();
    configure(*parser_, srv->options_);
    lowest().expires_after(std::chrono::milliseconds(srv->options_.idle_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = self()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    auto srv = server_.lock();
    if (!srv) return;
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == ssl::error::stream_truncated) {
      return finish();
    }
    if (ec) {
      return refuse(parse_error_response(ec, srv->options_));
    }
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    HttpRequest req = to_request(std::move(msg));
    lowest().expires_never();
    if (srv->options_.authorize) {
      if (auto denied = srv->options_.authorize(req)) {
        return write(std::move(*denied));
      }
    }
    auto weak = std::weak_ptr<Session>(self());
    auto answered = std::make_shared<bool>(false);
    req.start_stream =
        [weak, answered](int status, std::string content_type) -> std::shared_ptr<ResponseStream> {
      auto out = std::make_shared<Stream_>(weak);
      if (*answered) {
        out->closed_ = true;
        return out;
      }
      *answered = true;
      if (auto s = weak.lock()) {
        s->begin_stream(status, std::move(content_type), out);
      } else {
        out->closed_ = true;
      }
      return out;
    };
    srv->handler_(req, [weak, answered](HttpResponse r) {
      if (*answered) return;
      *answered = true;
      if (auto s = weak.lock()) s->write(std::move(r));
    });
  }

  // The ResponseStream handed to a handler: forwards to the session while it lives.
  class Stream_ final : public ResponseStream {
   public:
    explicit Stream_(std::weak_ptr<Session> session) : session_(std::move(session)) {}
    bool write(std::string chunk) override {
      if (closed_) return false;
      auto s = session_.lock();
      if (!s) {
        closed_ = true;
        return false;
      }
      return s->stream_write(std::move(chunk));
    }
    void end() override {
      if (closed_) return;
      if (auto s = session_.lock()) s->stream_end();
      closed_ = true;
    }
    bool closed() const override { return closed_ || session_.expired(); }
    bool closed_ = false;

   private:
    std::weak_ptr<Session> session_;
  };

  void begin_stream(int status, std::string content_type, std::shared_ptr<Stream_> handle) {
    stream_handle_ = handle;
    keep_alive_ = false;  // a streamed answer ends its connection
    auto res = std::make_shared<http::response<http::empty_body>>();
    res->version(11);
    res->result(static_cast<http::status>(status));
    res->set(http::field::server, "vigil");
    res->set(http::field::content_type, content_type);
    res->set(http::field::cache_control, "no-store");
    res->chunked(true);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    streaming_ = true;
    writing_ = true;
    lowest().expires_after(std::chrono::seconds(30));
    http::async_write_header(stream_, *sr, [self = self(), res, sr](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->stream_failed();
      self->stream_pump();
    });
  }

  bool stream_write(std::string chunk) {
    if (!streaming_ || stream_done_) return false;
    if (chunk.empty()) return true;  // an empty chunk would end the response
    backlog_bytes_ += chunk.size();
    if (backlog_bytes_ > ResponseStream::kMaxStreamBacklogBytes) {
      stream_failed();  // a reader this slow reconnects and resumes instead
      return false;
    }
    backlog_.push_back(std::move(chunk));
    stream_pump();
    return true;
  }

  void stream_end() {
    if (!streaming_ || stream_done_) return;
    ending_ = true;
    stream_pump();
  }

  void stream_pump() {
    if (writing_ || stream_done_) return;
    if (backlog_.empty()) {
      if (!ending_) return;
      stream_done_ = true;
      writing_ = true;
      asio::async_write(stream_, http::make_chunk_last(),
                        [self = self()](beast::error_code, size_t) { self->finish(); });
      return;
    }
    auto data = std::make_shared<std::string>(std::move(backlog_.front()));
    backlog_.pop_front();
    backlog_bytes_ -= data->size();
    writing_ = true;
    lowest().expires_after(std::chrono::seconds(30));  // a client that stops reading
    asio::async_write(stream_, http::make_chunk(asio::buffer(*data)),
                      [self = self(), data](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->stream_failed();
                        self->stream_pump();
                      });
  }

  void stream_failed() {
    stream_done_ = true;
    if (auto h = stream_handle_.lock()) h->closed_ = true;
    finish();
  }

  void write(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "vigil");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (auto srv = server_.lock()) {
      // A client that does not read its answers does not hold the connection forever.
      lowest().expires_after(std::chrono::milliseconds(srv->options_.idle_timeout_ms));
    }
    http::async_write(stream_, *res, [self = self(), res](beast::error_code ec, size_t) {
      if (!ec && self->drain_) return self->drain();
      if (ec || !self->keep_alive_) return self->finish();
      self->read();
    });
  }

  void drain() {
    auto srv = server_.lock();
    if (!srv) return;
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(std::chrono::milliseconds(srv->options_.drain_timeout_ms));
    drain_left_ = srv->options_.max_drain_bytes;
    drain_some();
  }

  void drain_some() {
    scratch_.resize(16 << 10);
    lowest().async_read_some(asio::buffer(scratch_),
                             [self = self()](beast::error_code ec, size_t n) {
                               if (ec || n >= self->drain_left_) return self->finish();
                               self->drain_left_ -= n;
                               self->drain_some();
                             });
  }

  void finish() {
    close();
    if (auto srv = server_.lock()) srv->forget(shared_from_this());
  }

  std::weak_ptr<Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  // Streamed answer state.
  std::weak_ptr<Stream_> stream_handle_;
  std::deque<std::string> backlog_;
  size_t backlog_bytes_ = 0;
  bool streaming_ = false;
  bool writing_ = false;
  bool ending_ = false;
  bool stream_done_ = false;
  bool keep_alive_ = true;
  bool drain_ = false;
  uint64_t drain_left_ = 0;
  std::string scratch_;
};

// A new connection to a TLS port: waits for the first bytes, then hands the socket to an
// HTTPS session, or answers a client speaking plain HTTP with a 400 it can read.
class HttpServer::Impl::Detector : public Connection {
 public:
  Detector(std::weak_ptr<Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {}

  void start(int timeout_ms) {
    stream_.expires_after(std::chrono::milliseconds(timeout_ms));
    beast::async_detect_ssl(
        stream_, buffer_, [self = shared_from_this(), this](beast::error_code ec, bool is_tls) {
          auto srv = server_.lock();
          if (!srv || srv->stopped_) return;
          srv->forget(self);
          if (ec) {
            close();
            return;
          }
          if (is_tls) {
            using Tls = beast::ssl_stream<beast::tcp_stream>;
            auto s = std::make_shared<Session<Tls>>(server_, Tls(std::move(stream_), *srv->tls_),
                                                    std::move(buffer_));
            srv->sessions_.insert(s);
            s->start();
            return;
          }
          auto s = std::make_shared<Session<beast::tcp_stream>>(server_, std::move(stream_),
                                                                std::move(buffer_));
          srv->sessions_.insert(s);
          s->refuse(error_response(
              400, "tls_required",
              "this port speaks HTTPS only: use https:// (vigil CLI: --api https://HOST:PORT)"));
        });
  }

  void close() override {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  std::weak_ptr<Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
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
        if (self->tls_) {
          auto d = std::make_shared<Detector>(self, std::move(s));
          self->sessions_.insert(d);
          d->start(self->options_.idle_timeout_ms);
        } else {
          auto session = std::make_shared<Session<beast::tcp_stream>>(
              self, beast::tcp_stream(std::move(s)), beast::flat_buffer());
          self->sessions_.insert(session);
          session->start();
        }
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
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() { impl_->stop(); }
Status HttpServer::listen(const std::string& host_port) { return impl_->listen(host_port); }
bool HttpServer::tls() const { return impl_->tls_ != nullptr; }
uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}
void HttpServer::stop() { impl_->stop(); }

}  // namespace vigil::api
