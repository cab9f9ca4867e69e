// PeerTransport over Boost.Asio: TCP + TLS 1.3, Hello handshake, bounded queues, backoff.
// clang-format off
#include <utility>  // first: Boost 1.74's asio headers miss it under g++ 12
// clang-format on
#include "net/transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <optional>
#include <set>
#include <vector>

#include "base/rng.h"
#include "net/certs.h"

namespace vigil::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr milliseconds kAcceptRetryDelay{100};

std::string endpoint_str(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One TCP (+ TLS) connection, dialed or accepted. Owned by shared_ptr: every pending
// asynchronous operation holds one, so the socket and buffers outlive the operation even
// after the transport dropped the connection.
struct Conn {
  enum class Dir { kOutbound, kInbound };

  // Frames are limited to a Hello's size until the handshake completes (see ready).
  Conn(asio::io_context& io, tcp::socket s, Dir d)
      : socket(std::move(s)), timer(io), dir(d), decoder(kMaxHelloFrameBytes) {}

  template <class Handler>
  void read_some(Handler&& handler) {
    auto buf = asio::buffer(read_buf.data(), read_buf.size());
    if (tls) {
      tls->async_read_some(buf, std::forward<Handler>(handler));
    } else {
      socket.async_read_some(buf, std::forward<Handler>(handler));
    }
  }
  template <class Handler>
  void write_all(Handler&& handler) {
    if (tls) {
      asio::async_write(*tls, asio::buffer(write_buf), std::forward<Handler>(handler));
    } else {
      asio::async_write(socket, asio::buffer(write_buf), std::forward<Handler>(handler));
    }
  }

  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;  // null when TLS is disabled for tests
  asio::steady_timer timer;                        // handshake deadline
  Dir dir;
  FrameDecoder decoder;
  std::vector<char> read_buf = std::vector<char>(kReadChunkBytes);
  std::string write_buf;       // one batch being written
  size_t inflight_frames = 0;  // kRaft frames in write_buf
  size_t inflight_bytes = 0;   // their payload bytes
  bool writing = false;
  bool ready = false;  // handshake complete (Hellos exchanged and checked)
  bool closed = false;
  bool pending_counted = false;  // inbound, counted in Impl::pending_inbound
  NodeId peer;                   // outbound: dialed peer; inbound: set by the Hello
  std::string cert_name;         // node name in the TLS peer certificate
  std::string remote;            // address for logs
};
using ConnPtr = std::shared_ptr<Conn>;

// Per-peer state: the outbound queue and connection, the accepted inbound connection.
struct Peer {
  Peer(asio::io_context& io, NodeId i, PeerInfo pi) : id(i), info(std::move(pi)), retry_timer(io) {}

  NodeId id;
  PeerInfo info;
  HostPort addr;  // parsed from info.address by validation
  std::deque<std::string> queue;
  size_t queued_bytes = 0;  // payloads + headers
  ConnPtr out;
  ConnPtr in;
  asio::steady_timer retry_timer;
  uint64_t retry_gen = 0;  // identifies the live retry; stale timer handlers compare it
  milliseconds backoff{0};
  uint32_t failures = 0;  // consecutive failed outbound attempts
  bool flush_posted = false;
  PeerStats stats;  // counters only; the rest is computed in peer_stats()
};

std::string describe(const Peer& p) {
  return fmt::format("node {} ({}) at {}", p.id.value(), p.info.name, p.info.address);
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view address) {
  HostPort hp;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return err(Errc::kInvalidArgument,
                 fmt::format("address '{}': want [ipv6-address]:port", address));
    }
    hp.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      return err(Errc::kInvalidArgument,
                 fmt::format("address '{}' has no port (want host:port)", address));
    }
    hp.host = std::string(address.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return err(Errc::kInvalidArgument,
                 fmt::format("address '{}': put an IPv6 address in brackets, "
                             "e.g. [::1]:7001",
                             address));
    }
    port = address.substr(colon + 1);
  }
  if (hp.host.empty()) {
    return err(Errc::kInvalidArgument, fmt::format("address '{}' has an empty host", address));
  }
  if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) > 65535) {
    return err(Errc::kInvalidArgument,
               fmt::format("address '{}': port '{}' is not a number in 0..65535", address, port));
  }
  hp.port = static_cast<uint16_t>(std::stoul(std::string(port)));
  return hp;
}

struct PeerTransport::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, TransportOptions options)
      : io(io_context),
        opts(std::move(options)),
        acceptor(io_context),
        resolver(io_context),
        accept_retry_timer(io_context),
        rng(opts.jitter_seed != 0
                ? opts.jitter_seed
                : opts.self_id.value() * 0x9e3779b97f4a7c15ULL ^
                      static_cast<uint64_t>(
                          std::chrono::steady_clock::now().time_since_epoch().count())) {
    for (const auto& [id, info] : opts.peers) {
      if (id == opts.self_id) continue;
      peers.emplace(id, std::make_unique<Peer>(io, id, info));
    }
  }

  // ---- setup ------------------------------------------------------------------------

  Status check_peer_info(NodeId id, const PeerInfo& info, HostPort* addr) const {
    const auto where = fmt::format("peer {}", id.value());
    if (id == kNoNode) return Status(Errc::kInvalidArgument, "peer id 0 is not allowed");
    RETURN_IF_ERROR(valid_node_name(info.name).with_context(where));
    auto hp = parse_host_port(info.address);
    if (!hp) return hp.error().with_context(where);
    if (hp->port == 0) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("{}: address '{}' has port 0", where, info.address));
    }
    if (info.name == opts.self_name) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("{}: name '{}' is this node's own name", where, info.name));
    }
    for (const auto& [other_id, other] : peers) {
      if (other_id != id && other->info.name == info.name) {
        return Status(Errc::kInvalidArgument, fmt::format("{}: name '{}' is also used by peer {}",
                                                          where, info.name, other_id.value()));
      }
    }
    *addr = *hp;
    return Status();
  }

  Status validate() {
    if (opts.self_id == kNoNode) return Status(Errc::kInvalidArgument, "self_id must not be 0");
    RETURN_IF_ERROR(valid_node_name(opts.self_name).with_context("self_name"));
    if (opts.cluster_name.empty() || opts.cluster_name.size() > kMaxClusterNameBytes) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("cluster_name must be 1..{} bytes", kMaxClusterNameBytes));
    }
    for (const auto& [id, info] : opts.peers) {
      if (id == opts.self_id && info.name != opts.self_name) {
        return Status(Errc::kInvalidArgument,
                      fmt::format("peer {} is this node's id but is named '{}', not '{}'",
                                  id.value(), info.name, opts.self_name));
      }
    }
    for (auto& [id, p] : peers) RETURN_IF_ERROR(check_peer_info(id, p->info, &p->addr));
    if (opts.reconnect_backoff_min.count() <= 0 ||
        opts.reconnect_backoff_max < opts.reconnect_backoff_min) {
      return Status(
          Errc::kInvalidArgument,
          fmt::format("reconnect backoff must satisfy 0 < min ({} ms) <= max ({} ms)",
                      opts.reconnect_backoff_min.count(), opts.reconnect_backoff_max.count()));
    }
    if (opts.queue_limit_bytes == 0 || opts.queue_limit_frames == 0 || opts.max_frame_bytes == 0 ||
        opts.max_batch_bytes == 0 || opts.max_pending_inbound == 0 ||
        opts.handshake_timeout.count() <= 0) {
      return Status(Errc::kInvalidArgument,
                    "queue_limit_bytes, queue_limit_frames, max_frame_bytes, max_batch_bytes, "
                    "max_pending_inbound and handshake_timeout must all be positive");
    }
    if (!opts.insecure_no_tls_for_test &&
        (opts.ca_file.empty() || opts.cert_file.empty() || opts.key_file.empty())) {
      return Status(Errc::kInvalidArgument,
                    "ca_file, cert_file and key_file are required (TLS cannot be turned off "
                    "outside tests)");
    }
    return Status();
  }

  Status setup_tls() {
    RETURN_IF_ERROR(cert_verify_files(opts.ca_file, opts.cert_file, opts.key_file));
    auto name = cert_file_node_name(opts.cert_file);
    if (!name) return name.error();
    if (*name != opts.self_name) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("{} is the certificate of node '{}' but self_name is '{}'",
                                opts.cert_file, *name, opts.self_name));
    }
    ssl_ctx.emplace(ssl::context::tls);
    SSL_CTX* h = ssl_ctx->native_handle();
    SSL_CTX_set_min_proto_version(h, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_OFF);  // every connection re-verifies
    SSL_CTX_set_num_tickets(h, 0);
    error_code ec;
    auto fail = [&](std::string_view what, const std::string& file) {
      return Status(Errc::kInvalidArgument, fmt::format("{} {}: {}", what, file, ec.message()));
    };
    if (ssl_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
        ec) {
      return fail("TLS options for", opts.cert_file);
    }
    if (ssl_ctx->load_verify_file(opts.ca_file, ec); ec) return fail("load CA", opts.ca_file);
    if (ssl_ctx->use_certificate_chain_file(opts.cert_file, ec); ec) {
      return fail("load certificate", opts.cert_file);
    }
    if (ssl_ctx->use_private_key_file(opts.key_file, ssl::context::pem, ec); ec) {
      return fail("load key", opts.key_file);
    }
    // Servers require a client certificate: both directions are authenticated.
    if (ssl_ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec); ec) {
      return fail("TLS verify mode for", opts.cert_file);
    }
    SSL_CTX_set_verify_depth(h, 2);
    return Status();
  }

  Status listen() {
    auto hp = parse_host_port(opts.listen_address);
    if (!hp) return hp.error().with_context("listen_address");
    error_code ec;
    const auto addr = asio::ip::make_address(hp->host, ec);
    if (ec) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("listen_address '{}': '{}' is not an IP address",
                                opts.listen_address, hp->host));
    }
    const tcp::endpoint ep(addr, hp->port);
    auto fail = [&] {
      error_code ignored;
      acceptor.close(ignored);
      return Status(Errc::kIoError,
                    fmt::format("listen {}: {}", opts.listen_address, ec.message()));
    };
    if (acceptor.open(ep.protocol(), ec); ec) return fail();
    if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail();
    if (acceptor.bind(ep, ec); ec) return fail();
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail();
    port = acceptor.local_endpoint(ec).port();
    if (ec) return fail();
    return Status();
  }

  Status start() {
    if (started || stopped) return Status(Errc::kAborted, "transport already started or stopped");
    RETURN_IF_ERROR(validate());
    if (!opts.insecure_no_tls_for_test) RETURN_IF_ERROR(setup_tls());
    RETURN_IF_ERROR(listen());
    started = true;
    spdlog::info("net: node {} ({}) listening on {} (port {}){}", opts.self_id.value(),
                 opts.self_name, opts.listen_address, port,
                 ssl_ctx ? "" : " WITHOUT TLS (test mode)");
    do_accept();
    for (auto& [id, p] : peers) {
      p->backoff = opts.reconnect_backoff_min;
      dial(*p);
    }
    return Status();
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    error_code ec;
    acceptor.close(ec);
    resolver.cancel();
    accept_retry_timer.cancel();
    for (auto& [id, p] : peers) {
      p->retry_timer.cancel();
      if (p->out) close_conn(p->out);
      if (p->in) close_conn(p->in);
    }
    for (const ConnPtr& c : std::vector<ConnPtr>(inbound.begin(), inbound.end())) close_conn(c);
    on_message = nullptr;
  }

  // ---- helpers ----------------------------------------------------------------------

  Peer* find(NodeId id) {
    auto it = peers.find(id);
    return it == peers.end() ? nullptr : it->second.get();
  }
  bool stale(const ConnPtr& c) const { return stopped || c->closed; }

  milliseconds jittered(milliseconds base) {
    const double u = static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53;
    auto d =
        milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) * (0.75 + 0.5 * u)));
    return std::clamp(d, opts.reconnect_backoff_min, opts.reconnect_backoff_max);
  }

  std::string self_hello_frame() const {
    Hello h;
    h.node_id = opts.self_id;
    h.cluster_name = opts.cluster_name;
    return encode_frame(FrameType::kHello, encode_hello(h));
  }

  // Node name in the verified TLS peer certificate.
  static Result<std::string> peer_cert_name(Conn& c) {
    X509* cert = SSL_get1_peer_certificate(c.tls->native_handle());
    if (cert == nullptr) return err(Errc::kPermissionDenied, "no peer certificate");
    auto name = cert_node_name(cert);
    X509_free(cert);
    return name;
  }

  static std::string tls_error(Conn& c, const error_code& ec) {
    std::string msg = ec.message();
    const long v = SSL_get_verify_result(c.tls->native_handle());
    if (v != X509_V_OK) msg += fmt::format(" ({})", X509_verify_cert_error_string(v));
    return msg;
  }

  // Closes the socket and unlinks the connection from its peer; never redials.
  void close_conn(const ConnPtr& c) {
    if (c->closed) return;
    c->closed = true;
    error_code ec;
    c->timer.cancel();
    c->socket.shutdown(tcp::socket::shutdown_both, ec);
    c->socket.close(ec);
    if (c->pending_counted) {
      --pending_inbound;
      c->pending_counted = false;
    }
    if (c->writing) stats.frames_lost += c->inflight_frames;
    Peer* p = c->peer == kNoNode ? nullptr : find(c->peer);
    if (c->dir == Conn::Dir::kInbound) {
      inbound.erase(c);
      if (p && p->in == c) p->in.reset();
    } else if (p && p->out == c) {
      p->out.reset();
    }
  }

  void arm_handshake_timer(const ConnPtr& c) {
    c->timer.expires_after(opts.handshake_timeout);
    c->timer.async_wait([self = shared_from_this(), c](const error_code& ec) {
      if (ec || self->stale(c) || c->ready) return;
      self->conn_failed(c, fmt::format("handshake not finished within {} ms",
                                       self->opts.handshake_timeout.count()));
    });
  }

  // A connection failed or was refused: log, close, and for outbound schedule a redial.
  // `warn` raises the log level for an authenticated connection (protocol errors).
  void conn_failed(const ConnPtr& c, const std::string& reason, bool warn = false) {
    if (c->closed) return;
    const auto level = warn ? spdlog::level::warn : spdlog::level::info;
    if (c->dir == Conn::Dir::kInbound) {
      if (c->ready) {
        Peer* p = find(c->peer);
        spdlog::log(level, "net: closing inbound connection from {}: {}",
                    p ? describe(*p) : c->remote, reason);
        close_conn(c);
      } else {
        reject(c, reason);
      }
      return;
    }
    const bool was_ready = c->ready;
    close_conn(c);
    Peer* p = find(c->peer);
    if (!p) return;  // removed meanwhile
    if (was_ready) {
      spdlog::log(level, "net: connection to {} lost: {}; reconnecting", describe(*p), reason);
      p->backoff = opts.reconnect_backoff_min;
      p->failures = 0;
    } else {
      ++stats.connect_failures;
      ++p->failures;
      if (p->failures == 1) {
        spdlog::warn("net: cannot connect to {}: {}; retrying with backoff", describe(*p), reason);
      } else {
        spdlog::debug("net: connect to {} failed again ({} in a row): {}", describe(*p),
                      p->failures, reason);
      }
    }
    schedule_dial(*p, was_ready);
  }

  void reject(const ConnPtr& c, const std::string& reason) {
    spdlog::warn("net: rejected inbound connection from {}: {}", c->remote, reason);
    ++stats.rejected_connections;
    close_conn(c);
  }

  // A malformed or unexpected frame: closes only this connection (a dialed one redials).
  void protocol_error(const ConnPtr& c, const std::string& reason) {
    ++stats.protocol_errors;
    conn_failed(c, reason, /*warn=*/true);
  }

  // ---- outbound ---------------------------------------------------------------------

  void schedule_dial(Peer& p, bool after_established) {
    const milliseconds delay = jittered(p.backoff);
    if (!after_established) p.backoff = std::min(p.backoff * 2, opts.reconnect_backoff_max);
    const uint64_t gen = ++next_gen;
    p.retry_gen = gen;
    p.retry_timer.expires_after(delay);
    p.retry_timer.async_wait([self = shared_from_this(), id = p.id, gen](const error_code&) {
      if (self->stopped) return;
      Peer* p = self->find(id);
      if (!p || p->retry_gen != gen || p->out) return;
      self->dial(*p);
    });
  }

  void dial(Peer& p) {
    auto c = std::make_shared<Conn>(io, tcp::socket(io), Conn::Dir::kOutbound);
    c->peer = p.id;
    c->remote = p.info.address;
    p.out = c;
    ++p.retry_gen;  // any pending retry is now stale
    arm_handshake_timer(c);
    error_code ec;
    const auto addr = asio::ip::make_address(p.addr.host, ec);
    if (!ec) {  // an IP literal: no resolver (Asio resolves on a private thread)
      connect(c, {tcp::endpoint(addr, p.addr.port)});
      return;
    }
    resolver.async_resolve(
        p.addr.host, std::to_string(p.addr.port),
        [self = shared_from_this(), c](const error_code& ec, tcp::resolver::results_type rs) {
          if (self->stale(c)) return;
          if (ec) {
            self->conn_failed(c, fmt::format("resolve {}: {}", c->remote, ec.message()));
            return;
          }
          std::vector<tcp::endpoint> eps;
          for (const auto& r : rs) eps.push_back(r.endpoint());
          self->connect(c, std::move(eps));
        });
  }

  void connect(const ConnPtr& c, std::vector<tcp::endpoint> eps) {
    auto shared_eps = std::make_shared<std::vector<tcp::endpoint>>(std::move(eps));
    asio::async_connect(
        c->socket, *shared_eps,
        [self = shared_from_this(), c, shared_eps](const error_code& ec, const tcp::endpoint&) {
          if (self->stale(c)) return;
          if (ec) {
            self->conn_failed(c, fmt::format("connect to {}: {}", c->remote, ec.message()));
            return;
          }
          error_code ignored;
          c->socket.set_option(tcp::no_delay(true), ignored);
          c->socket.set_option(asio::socket_base::keep_alive(true), ignored);
          if (!self->ssl_ctx) {
            self->send_hello(c);
            self->read_loop(c);
            return;
          }
          c->tls = std::make_unique<ssl::stream<tcp::socket&>>(c->socket, *self->ssl_ctx);
          c->tls->async_handshake(ssl::stream_base::client, [self, c](const error_code& ec) {
            if (self->stale(c)) return;
            if (ec) {
              self->conn_failed(c, "TLS handshake: " + tls_error(*c, ec));
              return;
            }
            Peer* p = self->find(c->peer);
            if (!p) return self->close_conn(c);
            auto name = peer_cert_name(*c);
            if (!name) return self->conn_failed(c, "peer certificate: " + name.error().message());
            if (*name != p->info.name) {
              return self->conn_failed(
                  c, fmt::format("peer certificate names '{}', not '{}'", *name, p->info.name));
            }
            c->cert_name = *name;
            self->send_hello(c);
            self->read_loop(c);
          });
        });
  }

  void send_hello(const ConnPtr& c) {
    c->write_buf = self_hello_frame();
    c->inflight_frames = 0;
    c->inflight_bytes = 0;
    start_write(c);
  }

  void check_hello_reply(const ConnPtr& c, const Frame& f) {
    Peer* p = find(c->peer);
    if (!p) return close_conn(c);
    if (f.type != FrameType::kHello) {
      return protocol_error(
          c, fmt::format("peer answered with a {} frame, not hello", frame_type_name(f.type)));
    }
    auto h = decode_hello(f.payload);
    if (!h) return protocol_error(c, h.error().message());
    if (h->protocol_version != kProtocolVersion || h->cluster_name != opts.cluster_name ||
        h->node_id != p->id) {
      return conn_failed(c, fmt::format("peer answered as node {} of cluster '{}' (protocol "
                                        "{}); expected node {} of cluster '{}' (protocol {})",
                                        h->node_id.value(), h->cluster_name, h->protocol_version,
                                        p->id.value(), opts.cluster_name, kProtocolVersion));
    }
    c->ready = true;
    c->decoder.set_max_payload_bytes(opts.max_frame_bytes);
    c->timer.cancel();
    p->failures = 0;
    p->backoff = opts.reconnect_backoff_min;
    ++stats.connects;
    ++p->stats.connects;
    spdlog::info("net: connected to {}", describe(*p));
    write_queued(*p);
  }

  void request_flush(Peer& p) {
    if (p.flush_posted) return;
    p.flush_posted = true;
    asio::post(io, [self = shared_from_this(), id = p.id] {
      Peer* p = self->find(id);
      if (!p) return;
      p->flush_posted = false;
      if (!self->stopped) self->write_queued(*p);
    });
  }

  // Moves up to max_batch_bytes of queued frames (at least one) into one write.
  void write_queued(Peer& p) {
    const ConnPtr& c = p.out;
    if (!c || !c->ready || c->writing || p.queue.empty()) return;
    if (c->write_buf.capacity() > 4 * opts.max_batch_bytes) std::string().swap(c->write_buf);
    c->write_buf.clear();
    size_t frames = 0;
    size_t bytes = 0;
    while (!p.queue.empty()) {
      const std::string& payload = p.queue.front();
      const size_t size = kFrameHeaderSize + payload.size();
      if (frames > 0 && c->write_buf.size() + size > opts.max_batch_bytes) break;
      append_frame(FrameType::kRaft, payload, &c->write_buf);
      bytes += payload.size();
      p.queued_bytes -= size;
      p.queue.pop_front();
      ++frames;
    }
    c->inflight_frames = frames;
    c->inflight_bytes = bytes;
    start_write(c);
  }

  void start_write(const ConnPtr& c) {
    c->writing = true;
    c->write_all([self = shared_from_this(), c](const error_code& ec, size_t) {
      if (self->stale(c)) return;
      c->writing = false;
      if (ec) {
        self->stats.frames_lost += c->inflight_frames;
        c->inflight_frames = 0;
        self->conn_failed(c, "write: " + ec.message());
        return;
      }
      self->stats.frames_sent += c->inflight_frames;
      self->stats.bytes_sent += c->inflight_bytes;
      Peer* p = self->find(c->peer);
      if (p) p->stats.frames_sent += c->inflight_frames;
      c->inflight_frames = 0;
      c->inflight_bytes = 0;
      if (p && c->dir == Conn::Dir::kOutbound) self->write_queued(*p);
    });
  }

  // ---- inbound ----------------------------------------------------------------------

  void do_accept() {
    acceptor.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket sock) {
      if (self->stopped) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        spdlog::warn("net: accept on {} failed: {}; retrying in {} ms", self->opts.listen_address,
                     ec.message(), kAcceptRetryDelay.count());
        self->accept_retry_timer.expires_after(kAcceptRetryDelay);
        self->accept_retry_timer.async_wait([self](const error_code& ec) {
          if (!ec && !self->stopped) self->do_accept();
        });
        return;
      }
      self->on_accept(std::move(sock));
      self->do_accept();
    });
  }

  void on_accept(tcp::socket sock) {
    error_code ec;
    const auto ep = sock.remote_endpoint(ec);
    const std::string remote = ec ? std::string("unknown address") : endpoint_str(ep);
    if (pending_inbound >= opts.max_pending_inbound) {
      spdlog::warn(
          "net: rejected inbound connection from {}: {} connections already in "
          "handshake",
          remote, pending_inbound);
      ++stats.rejected_connections;
      sock.close(ec);
      return;
    }
    sock.set_option(tcp::no_delay(true), ec);
    sock.set_option(asio::socket_base::keep_alive(true), ec);
    auto c = std::make_shared<Conn>(io, std::move(sock), Conn::Dir::kInbound);
    c->remote = remote;
    c->pending_counted = true;
    ++pending_inbound;
    inbound.insert(c);
    arm_handshake_timer(c);
    if (!ssl_ctx) {
      read_loop(c);
      return;
    }
    c->tls = std::make_unique<ssl::stream<tcp::socket&>>(c->socket, *ssl_ctx);
    c->tls->async_handshake(
        ssl::stream_base::server, [self = shared_from_this(), c](const error_code& ec) {
          if (self->stale(c)) return;
          if (ec) return self->reject(c, "TLS handshake: " + tls_error(*c, ec));
          auto name = peer_cert_name(*c);
          if (!name) {
            return self->reject(c, "peer certificate: " + name.error().message());
          }
          c->cert_name = *name;
          self->read_loop(c);
        });
  }

  void check_hello(const ConnPtr& c, const Frame& f) {
    if (f.type != FrameType::kHello) {
      ++stats.protocol_errors;
      return reject(c, fmt::format("first frame is {}, not hello", frame_type_name(f.type)));
    }
    auto h = decode_hello(f.payload);
    if (!h) {
      ++stats.protocol_errors;
      return reject(c, h.error().message());
    }
    if (h->protocol_version != kProtocolVersion) {
      return reject(c, fmt::format("hello: protocol version {} (this node speaks {})",
                                   h->protocol_version, kProtocolVersion));
    }
    if (h->cluster_name != opts.cluster_name) {
      return reject(c, fmt::format("hello: cluster '{}' (this node is in cluster '{}')",
                                   h->cluster_name, opts.cluster_name));
    }
    Peer* p = find(h->node_id);
    if (!p) {
      return reject(c,
                    fmt::format("hello: node id {} is not a configured peer{}", h->node_id.value(),
                                h->node_id == opts.self_id ? " (it is this node's id)" : ""));
    }
    if (ssl_ctx && c->cert_name != p->info.name) {
      return reject(c, fmt::format("hello claims node {} ('{}') but the certificate names '{}'",
                                   p->id.value(), p->info.name, c->cert_name));
    }
    c->ready = true;
    c->decoder.set_max_payload_bytes(opts.max_frame_bytes);
    c->peer = p->id;
    c->timer.cancel();
    c->pending_counted = false;
    --pending_inbound;
    if (p->in) {
      spdlog::info("net: new connection from {} replaces the older one", describe(*p));
      close_conn(p->in);
    }
    p->in = c;
    ++stats.accepts;
    spdlog::info("net: accepted connection from {} ({})", describe(*p), c->remote);
    c->write_buf = self_hello_frame();
    start_write(c);
  }

  void read_loop(const ConnPtr& c) {
    c->read_some([self = shared_from_this(), c](const error_code& ec, size_t n) {
      if (self->stale(c)) return;
      if (ec) {
        const bool eof = ec == asio::error::eof || ec == ssl::error::stream_truncated;
        self->conn_failed(c, eof ? std::string("closed by the other side") : ec.message());
        return;
      }
      c->decoder.feed(std::string_view(c->read_buf.data(), n));
      while (true) {
        auto f = c->decoder.next();
        if (!f) return self->protocol_error(c, "malformed frame: " + f.error().message());
        if (!*f) break;
        self->on_frame(c, std::move(**f));
        if (self->stale(c)) return;
      }
      self->read_loop(c);
    });
  }

  void on_frame(const ConnPtr& c, Frame f) {
    if (c->dir == Conn::Dir::kOutbound) {
      if (!c->ready) return check_hello_reply(c, f);
      if (f.type == FrameType::kPing || f.type == FrameType::kPong) return;
      return protocol_error(
          c, fmt::format("unexpected {} frame on a dialed connection", frame_type_name(f.type)));
    }
    if (!c->ready) return check_hello(c, f);
    switch (f.type) {
      case FrameType::kRaft: {
        ++stats.frames_received;
        stats.bytes_received += f.payload.size();
        if (Peer* p = find(c->peer)) ++p->stats.frames_received;
        if (on_message) {
          MessageHandler handler = on_message;  // the handler may replace itself
          handler(c->peer, std::move(f.payload));
        }
        return;
      }
      case FrameType::kPing:
      case FrameType::kPong:
        return;
      case FrameType::kHello:
        return protocol_error(c, "unexpected second hello");
    }
  }

  // ---- API --------------------------------------------------------------------------

  Status send(NodeId to, std::string payload) {
    if (stopped) return Status(Errc::kAborted, "transport is stopped");
    Peer* p = find(to);
    if (!p) {
      return Status(Errc::kNotFound, fmt::format("send to node {}: not a peer", to.value()));
    }
    const size_t size = kFrameHeaderSize + payload.size();
    if (payload.size() > opts.max_frame_bytes || size > opts.queue_limit_bytes) {
      ++stats.frames_dropped;
      ++p->stats.frames_dropped;
      return Status(
          Errc::kInvalidArgument,
          fmt::format("send to {}: payload of {} bytes exceeds max_frame_bytes {} or "
                      "queue_limit_bytes {}",
                      describe(*p), payload.size(), opts.max_frame_bytes, opts.queue_limit_bytes));
    }
    while (!p->queue.empty() && (p->queue.size() >= opts.queue_limit_frames ||
                                 p->queued_bytes + size > opts.queue_limit_bytes)) {
      ++stats.frames_dropped;
      ++p->stats.frames_dropped;
      if (opts.queue_full_policy == QueueFullPolicy::kDropNewest) {
        return Status(Errc::kResourceExhausted,
                      fmt::format("send to {}: queue full ({} frames, {} bytes); frame dropped",
                                  describe(*p), p->queue.size(), p->queued_bytes));
      }
      p->queued_bytes -= kFrameHeaderSize + p->queue.front().size();
      p->queue.pop_front();
    }
    p->queued_bytes += size;
    p->queue.push_back(std::move(payload));
    if (started) request_flush(*p);
    return Status();
  }

  Status add_peer(NodeId id, PeerInfo info) {
    if (stopped) return Status(Errc::kAborted, "transport is stopped");
    if (id == opts.self_id || find(id)) {
      return Status(Errc::kAlreadyExists, fmt::format("add peer {}: already known", id.value()));
    }
    HostPort addr;
    RETURN_IF_ERROR(check_peer_info(id, info, &addr));
    auto p = std::make_unique<Peer>(io, id, std::move(info));
    p->addr = addr;
    p->backoff = opts.reconnect_backoff_min;
    Peer& ref = *p;
    peers.emplace(id, std::move(p));
    if (started) dial(ref);
    return Status();
  }

  Status remove_peer(NodeId id) {
    Peer* p = find(id);
    if (!p) return Status(Errc::kNotFound, fmt::format("remove peer {}: not a peer", id.value()));
    p->retry_timer.cancel();
    if (p->out) close_conn(p->out);
    if (p->in) close_conn(p->in);
    peers.erase(id);
    return Status();
  }

  asio::io_context& io;
  TransportOptions opts;
  std::optional<ssl::context> ssl_ctx;  // empty when TLS is disabled for tests
  tcp::acceptor acceptor;
  tcp::resolver resolver;
  asio::steady_timer accept_retry_timer;
  std::map<NodeId, std::unique_ptr<Peer>> peers;
  std::set<ConnPtr> inbound;  // accepted connections, in handshake or authenticated
  size_t pending_inbound = 0;
  MessageHandler on_message;
  TransportStats stats;
  SplitMix64 rng;
  bool started = false;
  bool stopped = false;
  uint16_t port = 0;
  uint64_t next_gen = 0;
};

PeerTransport::PeerTransport(boost::asio::io_context& io, TransportOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

PeerTransport::~PeerTransport() { impl_->stop(); }

Status PeerTransport::start() { return impl_->start(); }
void PeerTransport::stop() { impl_->stop(); }
uint16_t PeerTransport::listen_port() const { return impl_->port; }
Status PeerTransport::send(NodeId to, std::string payload) {
  return impl_->send(to, std::move(payload));
}
void PeerTransport::set_on_message(MessageHandler handler) {
  impl_->on_message = std::move(handler);
}
Status PeerTransport::add_peer(NodeId id, PeerInfo info) {
  return impl_->add_peer(id, std::move(info));
}
Status PeerTransport::remove_peer(NodeId id) { return impl_->remove_peer(id); }
TransportStats PeerTransport::stats() const { return impl_->stats; }

Result<PeerStats> PeerTransport::peer_stats(NodeId id) const {
  const Peer* p = impl_->find(id);
  if (!p) return err(Errc::kNotFound, fmt::format("node {}: not a peer", id.value()));
  PeerStats s = p->stats;
  s.outbound_connected = p->out && p->out->ready;
  s.inbound_connected = p->in && p->in->ready;
  s.queued_frames = p->queue.size();
  s.queued_bytes = p->queued_bytes;
  return s;
}

}  // namespace vigil::net
