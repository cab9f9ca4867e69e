// Tests of PeerTransport over real sockets on 127.0.0.1: TLS, identity checks, limits.
// clang-format off
#include <utility>  // first: Boost 1.74's asio headers miss it under g++ 12
// clang-format on
#include "net/transport.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/certs.h"
#include "net/frame.h"
#include "test_util.h"

namespace vigil::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
using testing::TempDir;

constexpr milliseconds kDeadline{15000};

// Runs `io` until `pred` holds or the deadline passes; no fixed sleeps.
bool run_until(asio::io_context& io, const std::function<bool()>& pred,
               milliseconds timeout = kDeadline) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(milliseconds(10));
  }
  return true;
}

// Keeps the last log lines so tests can check that a refusal names its reason.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(512)) {
    auto logger = std::make_shared<spdlog::logger>(
        "test",
        spdlog::sinks_init_list{sink_, std::make_shared<spdlog::sinks::stderr_color_sink_mt>()});
    logger->set_level(spdlog::level::info);
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  bool contains(std::string_view text) const {
    for (const auto& line : sink_->last_formatted()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct Node {
  NodeId id;
  std::string name;
  std::unique_ptr<PeerTransport> t;
  std::vector<std::pair<NodeId, std::string>> inbox;

  std::string address() const { return "127.0.0.1:" + std::to_string(t->listen_port()); }
  size_t count_from(NodeId from) const {
    size_t n = 0;
    for (const auto& [f, p] : inbox) n += f == from;
    return n;
  }
};

class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TempDir;
    other_pki_ = new TempDir;
    ASSERT_TRUE(cert_init(pki_->path(), "test").ok());
    ASSERT_TRUE(cert_init(other_pki_->path(), "test").ok());
    for (const char* n : {"n1", "n2", "n3"}) {
      ASSERT_TRUE(cert_issue(pki_->path(), n).ok());
      ASSERT_TRUE(cert_issue(other_pki_->path(), n).ok());
    }
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete other_pki_;
  }

  static TransportOptions options(uint64_t id, const std::string& name,
                                  const TempDir* pki = nullptr) {
    if (pki == nullptr) pki = pki_;
    TransportOptions o;
    o.self_id = NodeId(id);
    o.self_name = name;
    o.cluster_name = "test";
    o.listen_address = "127.0.0.1:0";
    o.ca_file = pki->file("ca.crt");
    o.cert_file = pki->file(name + ".crt");
    o.key_file = pki->file(name + ".key");
    o.jitter_seed = id;
    return o;
  }

  // Creates and starts a node; nullptr (and a test failure) if start() fails.
  Node* start_node(TransportOptions o, asio::io_context* io = nullptr) {
    auto n = std::make_unique<Node>();
    n->id = o.self_id;
    n->name = o.self_name;
    n->t = std::make_unique<PeerTransport>(io ? *io : io_, std::move(o));
    Node* raw = n.get();
    n->t->set_on_message([raw](NodeId from, std::string payload) {
      raw->inbox.emplace_back(from, std::move(payload));
    });
    Status s = n->t->start();
    EXPECT_TRUE(s.ok()) << s.to_string();
    if (!s.ok()) return nullptr;
    nodes_.push_back(std::move(n));
    return raw;
  }

  // Tells every node about every other one.
  static void mesh(const std::vector<Node*>& nodes) {
    for (Node* a : nodes) {
      for (Node* b : nodes) {
        if (a != b) {
          ASSERT_TRUE(a->t->add_peer(b->id, {b->name, b->address()}).ok());
        }
      }
    }
  }

  bool connected(Node* a, Node* b) {
    auto s = a->t->peer_stats(b->id);
    return s && s->outbound_connected;
  }

  static TempDir* pki_;
  static TempDir* other_pki_;
  LogCapture logs_;
  asio::io_context io_;  // declared before nodes_: outlives the transports
  std::vector<std::unique_ptr<Node>> nodes_;
};
TempDir* TransportTest::pki_ = nullptr;
TempDir* TransportTest::other_pki_ = nullptr;

// A plain TCP client driven by the test's io_context.
struct RawClient {
  explicit RawClient(asio::io_context& io) : socket(io) {}
  void connect_and_send(uint16_t port, std::string bytes) {
    data = std::move(bytes);
    socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                         [this](const boost::system::error_code& ec) {
                           if (ec) {
                             closed = true;
                             return;
                           }
                           if (!data.empty()) {
                             asio::async_write(socket, asio::buffer(data),
                                               [](const boost::system::error_code&, size_t) {});
                           }
                           read();
                         });
  }
  void read() {
    socket.async_read_some(asio::buffer(buf), [this](const boost::system::error_code& ec, size_t) {
      if (ec) {
        closed = true;  // EOF or reset: the server closed us
        return;
      }
      read();
    });
  }
  tcp::socket socket;
  std::string data;
  char buf[4096];
  bool closed = false;
};

TEST_F(TransportTest, TwoNodesExchangeOverMutualTls) {
  Node* n1 = start_node(options(1, "n1"));
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  for (const char* m : {"a", "b", "c"}) ASSERT_TRUE(n1->t->send(n2->id, m).ok());
  ASSERT_TRUE(n2->t->send(n1->id, "x").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n2->inbox.size() == 3 && n1->inbox.size() == 1; }));
  EXPECT_EQ(n2->inbox[0], std::make_pair(NodeId(1), std::string("a")));
  EXPECT_EQ(n2->inbox[1].second, "b");
  EXPECT_EQ(n2->inbox[2].second, "c");
  EXPECT_EQ(n1->inbox[0], std::make_pair(NodeId(2), std::string("x")));
  const TransportStats s1 = n1->t->stats();
  EXPECT_EQ(s1.frames_sent, 3u);
  EXPECT_EQ(s1.bytes_sent, 3u);
  EXPECT_EQ(s1.frames_received, 1u);
  EXPECT_EQ(s1.connects, 1u);
  EXPECT_EQ(s1.accepts, 1u);
  EXPECT_EQ(s1.rejected_connections, 0u);
  EXPECT_EQ(n2->t->stats().frames_received, 3u);
  auto ps = n1->t->peer_stats(n2->id);
  ASSERT_TRUE(ps.has_value());
  EXPECT_TRUE(ps->outbound_connected);
  EXPECT_TRUE(ps->inbound_connected);
  EXPECT_EQ(ps->frames_sent, 3u);
  EXPECT_TRUE(logs_.contains("connected to node 2 (n2)"));
}

TEST_F(TransportTest, ThreeNodesAllPairsInOrder) {
  Node* n[3] = {start_node(options(1, "n1")), start_node(options(2, "n2")),
                start_node(options(3, "n3"))};
  ASSERT_TRUE(n[0] && n[1] && n[2]);
  mesh({n[0], n[1], n[2]});
  constexpr int kPerPair = 50;
  for (int i = 0; i < kPerPair; ++i) {
    for (Node* a : n) {
      for (Node* b : n) {
        if (a != b) {
          ASSERT_TRUE(a->t->send(b->id, a->name + "->" + b->name + ":" + std::to_string(i)).ok());
        }
      }
    }
  }
  ASSERT_TRUE(run_until(io_, [&] {
    return n[0]->inbox.size() == 2 * kPerPair && n[1]->inbox.size() == 2 * kPerPair &&
           n[2]->inbox.size() == 2 * kPerPair;
  }));
  for (Node* b : n) {
    std::map<NodeId, int> next;
    for (const auto& [from, payload] : b->inbox) {
      const std::string want =
          "n" + std::to_string(from.value()) + "->" + b->name + ":" + std::to_string(next[from]++);
      EXPECT_EQ(payload, want);
    }
  }
}

TEST_F(TransportTest, LargeMessagesArriveWholeAndInOrder) {
  TransportOptions o1 = options(1, "n1");
  o1.max_batch_bytes = 64 * 1024;
  Node* n1 = start_node(o1);
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  std::vector<std::string> sent;
  for (int i = 0; i < 6; ++i) {
    sent.push_back(
        std::string(static_cast<size_t>(i % 2 ? 3 << 20 : 10), static_cast<char>('a' + i)));
    ASSERT_TRUE(n1->t->send(n2->id, sent.back()).ok());
  }
  ASSERT_TRUE(run_until(io_, [&] { return n2->inbox.size() == sent.size(); }));
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(n2->inbox[i].second, sent[i]) << i;
}

TEST_F(TransportTest, InsecureModeForTests) {
  TransportOptions o1 = options(1, "n1"), o2 = options(2, "n2");
  o1.insecure_no_tls_for_test = o2.insecure_no_tls_for_test = true;
  o1.ca_file = o1.cert_file = o1.key_file = "";
  o2.ca_file = o2.cert_file = o2.key_file = "";
  Node* n1 = start_node(o1);
  Node* n2 = start_node(o2);
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  ASSERT_TRUE(n1->t->send(n2->id, "plain").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n2->inbox.size() == 1; }));
  EXPECT_EQ(n2->inbox[0].second, "plain");
}

TEST_F(TransportTest, CertificateFromAnotherCaIsRefused) {
  Node* n1 = start_node(options(1, "n1"));
  Node* evil = start_node(options(2, "n2", other_pki_));  // right name, wrong CA
  ASSERT_TRUE(n1 && evil);
  mesh({n1, evil});
  ASSERT_TRUE(evil->t->send(n1->id, "forged").ok());
  ASSERT_TRUE(run_until(io_, [&] {
    return n1->t->stats().rejected_connections >= 2 && n1->t->stats().connect_failures >= 2;
  }));
  EXPECT_TRUE(n1->inbox.empty());
  EXPECT_TRUE(evil->inbox.empty());
  EXPECT_EQ(n1->t->stats().accepts, 0u);
  EXPECT_EQ(n1->t->stats().connects, 0u);
  EXPECT_TRUE(logs_.contains("rejected inbound connection from 127.0.0.1:"));
  EXPECT_TRUE(logs_.contains("TLS handshake"));
}

TEST_F(TransportTest, CertificateNamingAnotherNodeThanTheHelloIsRefused) {
  Node* n1 = start_node(options(1, "n1"));
  // A genuine cluster certificate for n3, used to claim node id 2 (configured as n2).
  TransportOptions o = options(2, "n3");
  Node* liar = start_node(o);
  ASSERT_TRUE(n1 && liar);
  ASSERT_TRUE(n1->t->add_peer(NodeId(2), {"n2", liar->address()}).ok());
  ASSERT_TRUE(liar->t->add_peer(NodeId(1), {"n1", n1->address()}).ok());
  ASSERT_TRUE(liar->t->send(n1->id, "forged").ok());
  ASSERT_TRUE(run_until(io_, [&] {
    return n1->t->stats().rejected_connections >= 1 && n1->t->stats().connect_failures >= 1;
  }));
  EXPECT_TRUE(n1->inbox.empty());
  EXPECT_TRUE(logs_.contains("hello claims node 2 ('n2') but the certificate names 'n3'"));
  // Dialing "n2" reached a server whose certificate says n3: refused by the dialer too.
  EXPECT_TRUE(logs_.contains("peer certificate names 'n3', not 'n2'"));
}

TEST_F(TransportTest, UnknownNodeIdIsRefused) {
  Node* n1 = start_node(options(1, "n1"));
  Node* stranger = start_node(options(9, "n3"));
  ASSERT_TRUE(n1 && stranger);
  ASSERT_TRUE(stranger->t->add_peer(n1->id, {"n1", n1->address()}).ok());
  ASSERT_TRUE(stranger->t->send(n1->id, "hi").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n1->t->stats().rejected_connections >= 1; }));
  EXPECT_TRUE(n1->inbox.empty());
  EXPECT_TRUE(logs_.contains("hello: node id 9 is not a configured peer"));
}

TEST_F(TransportTest, OtherClusterNameIsRefused) {
  Node* n1 = start_node(options(1, "n1"));
  TransportOptions o = options(2, "n2");
  o.cluster_name = "staging";
  Node* n2 = start_node(o);
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  ASSERT_TRUE(n2->t->send(n1->id, "hi").ok());
  ASSERT_TRUE(run_until(io_, [&] {
    return n1->t->stats().rejected_connections >= 1 && n2->t->stats().rejected_connections >= 1;
  }));
  EXPECT_TRUE(n1->inbox.empty());
  EXPECT_TRUE(logs_.contains("hello: cluster 'staging' (this node is in cluster 'test')"));
}

TEST_F(TransportTest, GarbageClientIsClosedWhileOtherPeersKeepWorking) {
  Node* n1 = start_node(options(1, "n1"));
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  ASSERT_TRUE(n2->t->send(n1->id, "before").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n1->inbox.size() == 1; }));

  RawClient garbage(io_);
  garbage.connect_and_send(n1->t->listen_port(),
                           "GET / HTTP/1.1\r\nHost: n1\r\n\r\n" + std::string(3000, '\x17'));
  ASSERT_TRUE(run_until(io_, [&] { return garbage.closed; }));
  EXPECT_GE(n1->t->stats().rejected_connections, 1u);

  ASSERT_TRUE(n2->t->send(n1->id, "after").ok());
  ASSERT_TRUE(n1->t->send(n2->id, "also").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n1->inbox.size() == 2 && n2->inbox.size() == 1; }));
  EXPECT_EQ(n1->inbox[1].second, "after");
  EXPECT_EQ(n1->t->stats().connects, 1u);  // the peers' connections were untouched
  EXPECT_EQ(n2->t->stats().connects, 1u);
}

TEST_F(TransportTest, MalformedFrameClosesOnlyThatConnection) {
  // Without TLS a raw client can speak the protocol: a valid Hello, then a corrupt frame.
  TransportOptions o1 = options(1, "n1"), o2 = options(2, "n2"), o3 = options(3, "n3");
  for (auto* o : {&o1, &o2, &o3}) o->insecure_no_tls_for_test = true;
  Node* n1 = start_node(o1);
  Node* n2 = start_node(o2);
  Node* n3 = start_node(o3);
  ASSERT_TRUE(n1 && n2 && n3);
  mesh({n1, n2, n3});
  ASSERT_TRUE(run_until(io_, [&] { return connected(n3, n1) && connected(n2, n1); }));

  std::string bytes =
      encode_frame(FrameType::kHello, encode_hello({kProtocolVersion, NodeId(2), "test"}));
  std::string bad = encode_frame(FrameType::kRaft, "corrupt me");
  bad.back() ^= 0x20;
  RawClient client(io_);
  client.connect_and_send(n1->t->listen_port(), bytes + bad);
  ASSERT_TRUE(run_until(io_, [&] { return client.closed; }));
  EXPECT_EQ(n1->t->stats().protocol_errors, 1u);
  EXPECT_TRUE(logs_.contains("payload crc32c"));
  EXPECT_TRUE(n1->inbox.empty());

  // n3 was never disturbed; n2's connection was replaced by the impostor and comes back.
  ASSERT_TRUE(n3->t->send(n1->id, "from n3").ok());
  ASSERT_TRUE(n2->t->send(n1->id, "from n2").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n1->count_from(NodeId(3)) == 1; }));
  ASSERT_TRUE(run_until(io_, [&] {
    if (n1->count_from(NodeId(2)) == 0 && connected(n2, n1)) (void)n2->t->send(n1->id, "from n2");
    return n1->count_from(NodeId(2)) >= 1;
  }));
}

TEST_F(TransportTest, LargeFrameBeforeHelloIsRefused) {
  TransportOptions o = options(1, "n1");
  o.insecure_no_tls_for_test = true;
  Node* n1 = start_node(o);
  ASSERT_TRUE(n1);
  RawClient client(io_);
  client.connect_and_send(
      n1->t->listen_port(),
      encode_frame(FrameType::kRaft, std::string(kMaxHelloFrameBytes + 1, 'x')));
  ASSERT_TRUE(run_until(io_, [&] { return client.closed; }));
  EXPECT_EQ(n1->t->stats().rejected_connections, 1u);
  EXPECT_TRUE(logs_.contains("raft frame payload length 4097 exceeds limit 4096"));
}

TEST_F(TransportTest, HandshakeTimeoutClosesSilentClient) {
  TransportOptions o = options(1, "n1");
  o.handshake_timeout = milliseconds(100);
  Node* n1 = start_node(o);
  ASSERT_TRUE(n1);
  RawClient silent(io_);
  silent.connect_and_send(n1->t->listen_port(), "");
  ASSERT_TRUE(run_until(io_, [&] { return silent.closed; }));
  EXPECT_EQ(n1->t->stats().rejected_connections, 1u);
  EXPECT_TRUE(logs_.contains("handshake not finished within 100 ms"));
}

TEST_F(TransportTest, PeerRestartReconnectsAndDeliveryResumes) {
  Node* n1 = start_node(options(1, "n1"));
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  ASSERT_TRUE(n1->t->send(n2->id, "one").ok());
  ASSERT_TRUE(run_until(io_, [&] { return n2->inbox.size() == 1; }));
  const uint16_t port = n2->t->listen_port();

  n2->t.reset();  // crash-stop n2
  ASSERT_TRUE(run_until(io_, [&] { return !connected(n1, n2); }));

  TransportOptions o2 = options(2, "n2");
  o2.listen_address = "127.0.0.1:" + std::to_string(port);
  o2.peers[n1->id] = {"n1", n1->address()};
  Node* n2b = start_node(o2);
  ASSERT_TRUE(n2b);
  ASSERT_TRUE(n1->t->send(n2b->id, "two").ok());
  ASSERT_TRUE(n2b->t->send(n1->id, "back").ok());
  ASSERT_TRUE(run_until(io_, [&] { return !n2b->inbox.empty() && !n1->inbox.empty(); }));
  EXPECT_EQ(n2b->inbox.back().second, "two");
  EXPECT_EQ(n1->inbox.back().second, "back");
  EXPECT_EQ(n1->t->stats().connects, 2u);
  EXPECT_GE(n1->t->stats().accepts, 2u);
}

TEST_F(TransportTest, QueueLimitDropsOldestAndDeliversTheNewest) {
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n2);
  TransportOptions o1 = options(1, "n1");
  o1.queue_limit_frames = 10;
  o1.peers[n2->id] = {"n2", n2->address()};
  PeerTransport t1(io_, o1);
  // Not started yet: frames wait in the bounded queue.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(t1.send(n2->id, std::to_string(i)).ok());
  EXPECT_EQ(t1.stats().frames_dropped, 90u);
  auto ps = t1.peer_stats(n2->id);
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(ps->queued_frames, 10u);
  EXPECT_EQ(ps->queued_bytes, 10u * (kFrameHeaderSize + 2));
  EXPECT_EQ(ps->frames_dropped, 90u);
  ASSERT_TRUE(t1.start().ok());
  ASSERT_TRUE(
      n2->t->add_peer(NodeId(1), {"n1", "127.0.0.1:" + std::to_string(t1.listen_port())}).ok());
  ASSERT_TRUE(run_until(io_, [&] { return n2->inbox.size() == 10; }));
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(n2->inbox[static_cast<size_t>(i)].second, std::to_string(90 + i));
}

TEST_F(TransportTest, QueueLimitsByBytesAndDropNewestPolicy) {
  TransportOptions o = options(1, "n1");
  o.peers[NodeId(2)] = {"n2", "127.0.0.1:9"};
  o.queue_limit_bytes = 1000;
  o.queue_full_policy = QueueFullPolicy::kDropNewest;
  o.max_frame_bytes = 500;
  PeerTransport t(io_, o);
  const std::string payload(200, 'p');  // 216 bytes queued each
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(t.send(NodeId(2), payload).ok());
  Status full = t.send(NodeId(2), payload);
  EXPECT_EQ(full.code(), Errc::kResourceExhausted);
  EXPECT_NE(full.message().find("queue full (4 frames, 864 bytes)"), std::string::npos)
      << full.message();
  Status big = t.send(NodeId(2), std::string(501, 'b'));
  EXPECT_EQ(big.code(), Errc::kInvalidArgument);
  EXPECT_EQ(t.stats().frames_dropped, 2u);
  EXPECT_EQ(t.peer_stats(NodeId(2))->queued_frames, 4u);
  EXPECT_EQ(t.send(NodeId(7), "x").code(), Errc::kNotFound);
  t.stop();
  EXPECT_EQ(t.send(NodeId(2), "x").code(), Errc::kAborted);
}

TEST_F(TransportTest, SendNeverBlocksWhenThePeerStopsReading) {
  asio::io_context io2;  // n2's loop; not run while n1 floods it
  TransportOptions o1 = options(1, "n1");
  o1.queue_limit_bytes = 4 << 20;
  Node* n1 = start_node(o1);
  Node* n2 = start_node(options(2, "n2"), &io2);
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  auto both = [&](const std::function<bool()>& pred) {
    return run_until(io_, [&] {
      io2.restart();
      io2.poll();
      return pred();
    });
  };
  ASSERT_TRUE(both([&] { return connected(n1, n2) && connected(n2, n1); }));

  const std::string chunk(64 * 1024, 'z');
  constexpr int kSends = 2000;  // 128 MiB: far more than socket buffers plus the queue
  // n2's loop does not run during this loop, so a send() that waited for the socket would
  // hang here forever. (No wall-clock bound: this machine is shared, timings are noise.)
  for (int i = 0; i < kSends; ++i) {
    ASSERT_TRUE(n1->t->send(n2->id, std::to_string(i) + ":" + chunk).ok());
    io_.restart();
    io_.poll();  // let n1 write what the socket takes, without blocking
  }
  const TransportStats s = n1->t->stats();
  EXPECT_GT(s.frames_dropped, 0u);
  auto ps = n1->t->peer_stats(n2->id);
  ASSERT_TRUE(ps.has_value());
  EXPECT_LE(ps->queued_bytes, size_t{4} << 20);

  // n2 reads again: every frame that was not dropped arrives, the newest last.
  ASSERT_TRUE(both([&] { return n2->inbox.size() + n1->t->stats().frames_dropped == kSends; }));
  EXPECT_TRUE(n2->inbox.back().second.starts_with(std::to_string(kSends - 1) + ":"));
  EXPECT_EQ(n1->t->stats().frames_lost, 0u);
  nodes_.clear();  // n2's transport must go before io2
}

TEST_F(TransportTest, BindErrorNamesTheAddress) {
  Node* n1 = start_node(options(1, "n1"));
  ASSERT_TRUE(n1);
  TransportOptions o = options(2, "n2");
  o.listen_address = n1->address();
  PeerTransport t(io_, o);
  Status s = t.start();
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_EQ(s.message(), "listen " + n1->address() + ": Address already in use");
}

TEST_F(TransportTest, OptionErrorsAreClear) {
  auto start_error = [&](TransportOptions o) {
    PeerTransport t(io_, std::move(o));
    return t.start();
  };
  TransportOptions o = options(1, "n1");
  o.ca_file.clear();
  EXPECT_NE(start_error(o).message().find("ca_file, cert_file and key_file are required"),
            std::string::npos);
  o = options(1, "n1");
  o.cert_file = pki_->file("n2.crt");
  o.key_file = pki_->file("n2.key");
  EXPECT_NE(start_error(o).message().find("is the certificate of node 'n2' but self_name is 'n1'"),
            std::string::npos);
  o = options(1, "n1");
  o.cert_file = other_pki_->file("n1.crt");
  o.key_file = other_pki_->file("n1.key");
  EXPECT_NE(start_error(o).message().find("does not verify against CA"), std::string::npos);
  o = options(1, "n1");
  o.listen_address = "localhost:0";
  EXPECT_NE(start_error(o).message().find("'localhost' is not an IP address"), std::string::npos);
  o = options(1, "n1");
  o.peers[NodeId(2)] = {"n2", "127.0.0.1:0"};
  EXPECT_NE(start_error(o).message().find("peer 2: address '127.0.0.1:0' has port 0"),
            std::string::npos);
  o = options(1, "n1");
  o.peers[NodeId(2)] = {"n2", "127.0.0.1:7001"};
  o.peers[NodeId(3)] = {"n2", "127.0.0.1:7002"};
  EXPECT_NE(start_error(o).message().find("name 'n2' is also used by peer"), std::string::npos);
  o = options(1, "n1");
  o.peers[NodeId(1)] = {"n1", "127.0.0.1:7001"};  // self in the member list: ignored
  EXPECT_TRUE(start_error(o).ok());
  o = options(0, "n1");
  EXPECT_EQ(start_error(o).code(), Errc::kInvalidArgument);
  o = options(1, "n1");
  o.reconnect_backoff_max = milliseconds(10);
  EXPECT_NE(start_error(o).message().find("reconnect backoff"), std::string::npos);
}

TEST_F(TransportTest, AddAndRemovePeer) {
  Node* n1 = start_node(options(1, "n1"));
  Node* n2 = start_node(options(2, "n2"));
  ASSERT_TRUE(n1 && n2);
  mesh({n1, n2});
  EXPECT_EQ(n1->t->add_peer(n2->id, {"n2", n2->address()}).code(), Errc::kAlreadyExists);
  ASSERT_TRUE(run_until(io_, [&] { return connected(n1, n2) && connected(n2, n1); }));
  ASSERT_TRUE(n1->t->remove_peer(n2->id).ok());
  EXPECT_EQ(n1->t->send(n2->id, "x").code(), Errc::kNotFound);
  EXPECT_EQ(n1->t->remove_peer(n2->id).code(), Errc::kNotFound);
  // n2's connection to n1 is gone and further attempts are refused.
  ASSERT_TRUE(run_until(io_, [&] { return n1->t->stats().rejected_connections >= 1; }));
  EXPECT_TRUE(logs_.contains("node id 2 is not a configured peer"));
}

TEST(ParseHostPortTest, Forms) {
  auto a = parse_host_port("127.0.0.1:7001");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7001);
  auto b = parse_host_port("[::1]:0");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  auto c = parse_host_port("node-2.example:65535");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->host, "node-2.example");
  for (const char* bad : {"", "host", ":7001", "h:", "h:65536", "h:-1", "h:7x", "::1:7001",
                          "[::1]7001", "h:1234567"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace vigil::net
