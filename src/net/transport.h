// PeerTransport: authenticated, bounded, batching message transport between cluster nodes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"
#include "net/frame.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::net {

// "host:port" split. IPv6 hosts are bracketed: "[::1]:7001".
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// Errors (kInvalidArgument): no ':', empty host, port not a number in 0..65535.
Result<HostPort> parse_host_port(std::string_view address);

// A peer as configured: the node name its certificate must carry and where it listens.
struct PeerInfo {
  std::string name;     // e.g. "n2"; must equal the CN/SAN of the peer's certificate
  std::string address;  // "host:port" of the peer's listen address; host may be a DNS name
};

// What send() does when a peer's queue is full. Raft tolerates loss either way.
enum class QueueFullPolicy {
  // Default. Drop the oldest queued frames to make room: after an outage the peer gets
  // the newest messages (current term, latest commit index), which Raft acts on first.
  kDropOldest,
  // Drop the new frame and return kResourceExhausted: keeps the queued order intact.
  kDropNewest,
};

struct TransportOptions {
  NodeId self_id;              // required, not 0
  std::string self_name;       // required; must be the name in cert_file
  std::string cluster_name;    // required; a Hello with another cluster name is refused
  std::string listen_address;  // required IP literal and port, e.g. "0.0.0.0:7001";
                               // port 0 binds a free port (listen_port() tells which)
  // The other voters/learners. An entry for self_id (with self_name) is allowed and
  // ignored, so the daemon can pass the whole member list. Names must be unique.
  std::map<NodeId, PeerInfo> peers;

  // PEM files from cert_init/cert_issue (certs.h). Required unless the test-only switch
  // below is set. The transport speaks TLS 1.3 only, with mutual authentication.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Plain TCP, no authentication beyond the Hello. For unit tests only: anyone who can
  // reach the port can then inject Raft messages.
  bool insecure_no_tls_for_test = false;

  // Per-peer outbound queue bounds (frames waiting to be written; each frame counts its
  // payload plus the 16-byte header). A larger queue survives longer outages at the cost
  // of memory and of staler messages on reconnect.
  size_t queue_limit_bytes = size_t{128} << 20;  // default 128 MiB
  size_t queue_limit_frames = 8192;              // default 8192
  QueueFullPolicy queue_full_policy = QueueFullPolicy::kDropOldest;

  // Largest payload accepted by send() and by the decoder of inbound connections.
  uint32_t max_frame_bytes = kDefaultMaxPayloadBytes;  // default 64 MiB
  // Queued frames are coalesced into one write of up to this many bytes (at least one
  // frame per write). Larger batches mean fewer syscalls and TLS records, more latency
  // for the frame behind a big one.
  size_t max_batch_bytes = size_t{1} << 20;  // default 1 MiB

  // Reconnect backoff: doubles per consecutive failure from min to max, each delay
  // jittered by ±25% (kept within [min, max]) so restarted nodes do not dial in lockstep.
  // After an established connection drops, the next attempt waits about min.
  std::chrono::milliseconds reconnect_backoff_min{50};    // default 50 ms
  std::chrono::milliseconds reconnect_backoff_max{2000};  // default 2 s
  // Connect + TLS handshake + Hello exchange must finish within this, in both directions;
  // otherwise the connection is closed (an idle stranger cannot hold a slot).
  std::chrono::milliseconds handshake_timeout{5000};  // default 5 s
  // Inbound connections still in their handshake; further ones are refused at once.
  size_t max_pending_inbound = 64;  // default 64
  // Seed of the backoff jitter; 0 derives one from self_id and the clock.
  uint64_t jitter_seed = 0;
};

// Counters since construction; all monotonic.
struct TransportStats {
  uint64_t frames_sent = 0;           // kRaft frames fully written
  uint64_t bytes_sent = 0;            // their payload bytes
  uint64_t frames_received = 0;       // kRaft frames delivered to the message handler
  uint64_t bytes_received = 0;        // their payload bytes
  uint64_t frames_dropped = 0;        // refused or evicted by send() (queue full, oversize)
  uint64_t frames_lost = 0;           // dequeued into a write that failed
  uint64_t connects = 0;              // outbound connections that completed the handshake
  uint64_t connect_failures = 0;      // outbound attempts or connections that failed
  uint64_t accepts = 0;               // inbound connections that completed the handshake
  uint64_t rejected_connections = 0;  // inbound refused: TLS, Hello, identity, limits
  uint64_t protocol_errors = 0;       // connections closed for a malformed or unexpected frame
};

struct PeerStats {
  bool outbound_connected = false;  // our dialed connection finished its handshake
  bool inbound_connected = false;   // the peer's dialed connection is authenticated here
  size_t queued_frames = 0;
  size_t queued_bytes = 0;
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t frames_dropped = 0;
  uint64_t connects = 0;
};

// Moves opaque payloads (encoded Raft messages) between the nodes of one cluster.
//
// Connection model: each node dials one outbound connection to every peer and sends its
// traffic to that peer on it; it receives on the connections its peers dialed. The dialer
// speaks first: TLS handshake, then a kHello frame {protocol version, node id, cluster};
// the acceptor checks that the certificate chains to the cluster CA, that the Hello's
// node id is a configured peer and its cluster name ours, and that the certificate names
// exactly the node configured for that id — then answers with its own Hello, which the
// dialer checks the same way (it also checked the acceptor's certificate names the peer
// it meant to reach). Anything else closes that connection with a warning naming the
// reason. A newer authenticated connection from a node replaces the older one (restart).
//
// Threading: the caller owns the io_context and runs it on one thread; every method must
// be called on that thread, and every callback runs on it. The io_context must outlive
// the transport. Destroying the transport stops it; handlers still queued in the
// io_context then complete as no-ops.
//
// Delivery is best-effort, in order per connection, with no retries: a frame queued for a
// peer may be dropped (queue full) or lost (the connection fails). Raft tolerates both.
class PeerTransport {
 public:
  using MessageHandler = std::function<void(NodeId from, std::string payload)>;

  PeerTransport(boost::asio::io_context& io, TransportOptions options);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Validates the options, loads the TLS files, binds and listens, and starts dialing
  // every peer. Call once. Errors: kInvalidArgument (options or TLS files, naming the
  // field or file), kIoError ("listen 127.0.0.1:7001: Address already in use"),
  // kAborted (called twice or after stop()).
  Status start();

  // Closes every connection and the listener, cancels timers. Queued frames are kept (see
  // peer_stats) but never sent. Idempotent; a stopped transport cannot start again.
  void stop();

  // The bound port after a successful start(); 0 before.
  uint16_t listen_port() const;

  // Queues `payload` for `to` and returns at once; it never blocks and never calls the
  // message handler. Frames queued in one turn of the io_context go out in one write.
  // May be called before start() (frames wait). Errors: kNotFound (not a peer),
  // kInvalidArgument (payload above max_frame_bytes or the queue byte limit),
  // kResourceExhausted (queue full under kDropNewest), kAborted (stopped).
  // Under kDropOldest, evicting older frames still returns OK; both count as drops.
  Status send(NodeId to, std::string payload);

  // Called once per received kRaft frame, with the authenticated sender. May call send()
  // and stop(). Replaces any previous handler.
  void set_on_message(MessageHandler handler);

  // Membership changes. add_peer dials the new peer at once if started; remove_peer
  // closes its connections and discards its queue. Errors: kAlreadyExists, kNotFound,
  // kInvalidArgument (bad info).
  Status add_peer(NodeId id, PeerInfo info);
  Status remove_peer(NodeId id);

  TransportStats stats() const;
  // Errors: kNotFound.
  Result<PeerStats> peer_stats(NodeId id) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::net
