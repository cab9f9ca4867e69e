// Agent config: parsing, every kind of validation error with its exact message, rendering.
#include "daemon/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace vigil::daemon {
namespace {

// The example of docs/CONFIG.md, loopback and insecure so that it needs no files.
constexpr std::string_view kValid = R"(node: n1                 # this node's name
id: 1
cluster: demo
data_dir: /var/lib/vigil/n1
listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
peers:
  - {name: n1, id: 1, peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
  - {name: n2, id: 2, peer: 127.0.0.1:7002, api: 127.0.0.1:8002}
  - {name: n3, id: 3, peer: 127.0.0.1:7003, api: 127.0.0.1:8003}
tls: {insecure: true}
timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, hold_ms: 400, clock_drift: 0.01}
fsync: true
log_level: info
)";

// kValid with the first occurrence of `from` replaced by `to` (which must exist).
std::string with(std::string_view from, std::string_view to, std::string text = {}) {
  if (text.empty()) {
    text = std::string(kValid);
  }
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// kValid with TLS files instead of insecure (parse_agent_config does not open them).
std::string with_tls_files() {
  return with("tls: {insecure: true}", "tls: {ca: /c/ca.crt, cert: /c/n1.crt, key: /c/n1.key}");
}

// The error message for `text`, or "OK".
std::string errors(std::string_view text) {
  auto r = parse_agent_config(text, "n1.yaml");
  if (r) {
    return "OK";
  }
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  return r.error().message();
}

TEST(AgentConfig, ParsesTheDocumentedExample) {
  auto r = parse_agent_config(kValid, "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const AgentConfig& c = *r;
  EXPECT_EQ(c.node, "n1");
  EXPECT_EQ(c.id, NodeId(1));
  EXPECT_EQ(c.cluster, "demo");
  EXPECT_EQ(c.data_dir, "/var/lib/vigil/n1");
  EXPECT_EQ(c.listen.peer, (HostPort{"127.0.0.1", 7001}));
  EXPECT_EQ(c.listen.api, (HostPort{"127.0.0.1", 8001}));
  ASSERT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers[2].name, "n3");
  EXPECT_EQ(c.peers[2].id, NodeId(3));
  EXPECT_EQ(c.peers[2].api.to_string(), "127.0.0.1:8003");
  EXPECT_EQ(c.self().name, "n1");
  EXPECT_TRUE(c.tls.insecure);
  EXPECT_EQ(c.timers.election_ticks(), 6);
  EXPECT_EQ(c.timers.heartbeat_ticks(), 1);
  EXPECT_EQ(c.timers.hold_ticks(), 8);
  EXPECT_DOUBLE_EQ(c.timers.clock_drift, 0.01);
  EXPECT_TRUE(c.fsync);
  EXPECT_EQ(c.snapshot_entries, 10000u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
}

TEST(AgentConfig, HoldGuardDefaultsToAQuarterOfTheHoldAndMustLeaveTwoHeartbeats) {
  auto r = parse_agent_config(with("hold_ms: 400,", "hold_ms: 800,"), "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->timers.hold_guard_ms, 200u);
  r = parse_agent_config(with("hold_ms: 400,", "hold_ms: 400, hold_guard_ms: 0,"), "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->timers.hold_guard_ms, 0u);
  EXPECT_EQ(errors(with("hold_ms: 400,", "hold_ms: 400, hold_guard_ms: 350,")),
            "n1.yaml:11: timers.hold_guard_ms: must leave at least 2 × heartbeat_ms of the hold "
            "(got 350, hold_ms 400, heartbeat_ms 50)");
}

TEST(AgentConfig, OptionalKeysTakeTheirDefaults) {
  std::string text = with(
      "timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, "
      "hold_ms: 400, clock_drift: 0.01}\nfsync: true\nlog_level: info\n",
      "");
  auto r = parse_agent_config(text, "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->timers, TimerConfig{});
  EXPECT_TRUE(r->fsync);
  EXPECT_EQ(r->log_level, LogLevel::kInfo);
}

TEST(AgentConfig, TlsFilesAndIpv6AndBlockStyle) {
  const std::string text = R"(node: a-1
id: 18446744073709551615
cluster: prod
data_dir: /data/vigil
listen:
  peer: "[::]:7001"
  api: 0.0.0.0:8001
peers:
  - name: a-1
    id: 18446744073709551615
    peer: "[fd00::1]:7001"
    api: db1.example.com:8001
tls:
  ca: /etc/vigil/ca.crt
  cert: /etc/vigil/a-1.crt
  key: /etc/vigil/a-1.key
api:
  tls: {cert: /etc/vigil/a-1.crt, key: /etc/vigil/a-1.key}
snapshot_entries: 500
log_level: debug
)";
  auto r = parse_agent_config(text, "a.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->id, NodeId(UINT64_MAX));
  EXPECT_TRUE(r->listen.peer.is_wildcard());
  EXPECT_EQ(r->peers[0].peer.host, "fd00::1");
  EXPECT_EQ(r->peers[0].peer.to_string(), "[fd00::1]:7001");
  EXPECT_EQ(r->tls.key_file, "/etc/vigil/a-1.key");
  EXPECT_FALSE(r->tls.insecure);
  EXPECT_EQ(r->snapshot_entries, 500u);
  EXPECT_EQ(r->log_level, LogLevel::kDebug);
}

TEST(AgentConfig, RenderReadsBackEqual) {
  auto r = parse_agent_config(kValid, "n1.yaml");
  ASSERT_TRUE(r.has_value());
  AgentConfig c = *r;
  const std::string text = render_agent_config(c);
  auto back = parse_agent_config(text, "rendered.yaml");
  ASSERT_TRUE(back.has_value()) << back.error().message() << "\n" << text;
  EXPECT_EQ(*back, c);

  // Strings that YAML would misread unquoted, IPv6, TLS files, non-default timers.
  c.cluster = "null";
  c.data_dir = "/tmp/a dir: with # odd \"chars\"";
  c.tls = TlsConfig{false, "/c/ca.crt", "/c/n1 x.crt", "/c/n1.key"};
  c.listen.peer = HostPort{"::", 7001};
  c.peers[0].peer = HostPort{"::1", 7001};
  c.timers = TimerConfig{10, 20, 90, 50, 0.125, 10};
  c.fsync = false;
  c.snapshot_entries = 7;
  c.log_level = LogLevel::kTrace;
  const std::string text2 = render_agent_config(c);
  auto back2 = parse_agent_config(text2, "rendered.yaml");
  ASSERT_TRUE(back2.has_value()) << back2.error().message() << "\n" << text2;
  EXPECT_EQ(*back2, c);
}

TEST(AgentConfig, RenderLooksLikeTheDocs) {
  auto r = parse_agent_config(kValid, "n1.yaml");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(render_agent_config(*r),
            "# Vigil agent config for node n1 (fields: docs/CONFIG.md)\n"
            "node: n1\n"
            "id: 1\n"
            "cluster: demo\n"
            "data_dir: /var/lib/vigil/n1\n"
            "listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}\n"
            "peers:\n"
            "  - {name: n1, id: 1, peer: 127.0.0.1:7001, api: 127.0.0.1:8001}\n"
            "  - {name: n2, id: 2, peer: 127.0.0.1:7002, api: 127.0.0.1:8002}\n"
            "  - {name: n3, id: 3, peer: 127.0.0.1:7003, api: 127.0.0.1:8003}\n"
            "tls: {insecure: true}\n"
            "timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, hold_ms: 400, "
            "hold_guard_ms: 100, clock_drift: 0.01}\n"
            "fsync: true\n"
            "snapshot_entries: 10000\n"
            "log_level: info\n"
            "event_retention: 1000\n");
}

TEST(AgentConfig, EventRetention) {
  auto r = parse_agent_config(with("log_level: info", "log_level: info\nevent_retention: 50000"),
                              "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->event_retention, 50000u);
  EXPECT_NE(errors(with("log_level: info", "log_level: info\nevent_retention: 5"))
                .find("event_retention"),
            std::string::npos);
}

// ---- Errors: the file as a whole ----

TEST(AgentConfigErrors, SyntaxError) {
  EXPECT_EQ(errors("node: n1\nlisten: {peer: 1\nid: 2\n"),
            "n1.yaml:3: YAML syntax error: end of map flow not found");
}

TEST(AgentConfigErrors, EmptyFile) {
  EXPECT_EQ(errors(""), "n1.yaml:1: the file has no settings; see docs/CONFIG.md for the fields");
  EXPECT_EQ(errors("# only a comment\n"),
            "n1.yaml:1: the file has no settings; see docs/CONFIG.md for the fields");
}

TEST(AgentConfigErrors, NotAMap) {
  EXPECT_EQ(errors("- node\n- n1\n"),
            "n1.yaml:1: the file must be a map of settings, like \"node: n1\" (got a list); "
            "see docs/CONFIG.md");
}

TEST(AgentConfigErrors, TwoDocuments) {
  EXPECT_EQ(errors(std::string(kValid) + "---\nnode: n2\n"),
            "n1.yaml:14: more than one YAML document (a second '---'); put one config per "
            "file");
}

TEST(AgentConfigErrors, TooLarge) {
  EXPECT_EQ(errors(std::string(kMaxConfigBytes + 1, ' ')),
            "n1.yaml: file is larger than 1048576 bytes");
}

// ---- Errors: keys ----

TEST(AgentConfigErrors, UnknownKeys) {
  EXPECT_EQ(errors(with("fsync: true", "fsync: true\nfsnyc: false")),
            "n1.yaml:13: fsnyc: unknown key (known keys: node, id, cluster, data_dir, listen, "
            "peers, tls, api, timers, fsync, snapshot_entries, log_level, event_retention)");
  EXPECT_EQ(errors(with("tick_ms: 50,", "tick: 50,")),
            "n1.yaml:11: timers.tick: unknown key (known keys: tick_ms, heartbeat_ms, "
            "election_timeout_ms, hold_ms, hold_guard_ms, clock_drift)");
  EXPECT_EQ(errors(with("{name: n2,", "{name: n2, role: voter,")),
            "n1.yaml:8: peers[1].role: unknown key (known keys: name, id, peer, api)");
  EXPECT_EQ(errors(with("fsync: true", "fsync: true\n\"a b\": 1")),
            "n1.yaml:13: \"a b\": unknown key (known keys: node, id, cluster, data_dir, listen, "
            "peers, tls, api, timers, fsync, snapshot_entries, log_level, event_retention)");
}

TEST(AgentConfigErrors, NonScalarKey) {
  EXPECT_EQ(errors(with("fsync: true", "fsync: true\n[a]: 1")),
            "n1.yaml:13: keys must be plain words (got a list)");
}

TEST(AgentConfigErrors, DuplicateKeys) {
  EXPECT_EQ(errors(with("cluster: demo", "cluster: demo\ncluster: other")),
            "n1.yaml:4: cluster: duplicate key (first at line 3)");
  EXPECT_EQ(errors(with("{tick_ms: 50,", "{tick_ms: 50, tick_ms: 25,")),
            "n1.yaml:11: timers.tick_ms: duplicate key (first at line 11)");
}

TEST(AgentConfigErrors, MissingRequiredKeys) {
  EXPECT_EQ(errors(with("tls: {insecure: true}\n", "")), "n1.yaml:1: tls: required key is missing");
  EXPECT_EQ(errors(with("id: 1\n", "")), "n1.yaml:1: id: required key is missing");
  EXPECT_EQ(errors(with(", api: 127.0.0.1:8001}\npeers", "}\npeers")),
            "n1.yaml:5: listen.api: required key is missing");
  EXPECT_EQ(errors(with("{name: n2, id: 2, ", "{name: n2, ")),
            "n1.yaml:8: peers[1].id: required key is missing");
}

TEST(AgentConfigErrors, AllMissing) {
  EXPECT_EQ(errors("log_level: info\n"),
            "n1.yaml:1: node: required key is missing\n"
            "n1.yaml:1: id: required key is missing\n"
            "n1.yaml:1: cluster: required key is missing\n"
            "n1.yaml:1: data_dir: required key is missing\n"
            "n1.yaml:1: listen: required key is missing\n"
            "n1.yaml:1: peers: required key is missing\n"
            "n1.yaml:1: tls: required key is missing");
}

// ---- Errors: types and values ----

TEST(AgentConfigErrors, WrongTypes) {
  EXPECT_EQ(errors(with("id: 1", "id: \"1\"")),
            "n1.yaml:2: id: must be a whole number (got quoted string \"1\")");
  EXPECT_EQ(errors(with("id: 1", "id: [1]")), "n1.yaml:2: id: must be a whole number (got a list)");
  EXPECT_EQ(errors(with("id: 1", "id: 1.5")),
            "n1.yaml:2: id: must be a whole number (got \"1.5\")");
  EXPECT_EQ(errors(with("id: 1", "id:")), "n1.yaml:2: id: must be a whole number (got nothing)");
  EXPECT_EQ(errors(with("node: n1 ", "node: {a: 1}")),
            "n1.yaml:1: node: must be a string (got a map)");
  EXPECT_EQ(errors(with("fsync: true", "fsync: yes")),
            "n1.yaml:12: fsync: must be true or false (got \"yes\")");
  EXPECT_EQ(errors(with("fsync: true", "fsync: \"true\"")),
            "n1.yaml:12: fsync: must be true or false (got quoted string \"true\")");
  EXPECT_EQ(errors(with("listen: {", "listen: [")),
            "n1.yaml:5: YAML syntax error: illegal flow end");
  EXPECT_EQ(errors(with("listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}", "listen: 7001")),
            "n1.yaml:5: listen: must be a map (got \"7001\")");
  EXPECT_EQ(errors(with("clock_drift: 0.01", "clock_drift: 1%")),
            "n1.yaml:11: timers.clock_drift: must be a number (got \"1%\")");
  EXPECT_EQ(errors(with("log_level: info", "log_level: verbose")),
            "n1.yaml:13: log_level: must be one of trace, debug, info, warn, error (got "
            "\"verbose\")");
}

TEST(AgentConfigErrors, Ranges) {
  EXPECT_EQ(errors(with("id: 1", "id: 0")),
            "n1.yaml:2: id: must be between 1 and 18446744073709551615 (got 0)");
  EXPECT_EQ(errors(with("id: 1", "id: 18446744073709551616")),
            "n1.yaml:2: id: must be between 1 and 18446744073709551615 (got "
            "18446744073709551616)");
  EXPECT_EQ(errors(with("tick_ms: 50", "tick_ms: 0")),
            "n1.yaml:11: timers.tick_ms: must be between 1 and 1000 (got 0)");
  EXPECT_EQ(errors(with("clock_drift: 0.01", "clock_drift: 0.7")),
            "n1.yaml:11: timers.clock_drift: must be between 0 and 0.5 (got 0.7)");
  EXPECT_EQ(errors(with("fsync: true", "fsync: true\nsnapshot_entries: 0")),
            "n1.yaml:13: snapshot_entries: must be between 1 and 100000000 (got 0)");
}

TEST(AgentConfigErrors, Names) {
  const std::string rule =
      "must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or "
      "digit";
  EXPECT_EQ(errors(with("cluster: demo", "cluster: Demo")),
            "n1.yaml:3: cluster: " + rule + " (got \"Demo\")");
  EXPECT_EQ(errors(with("cluster: demo", "cluster: -x")),
            "n1.yaml:3: cluster: " + rule + " (got \"-x\")");
  EXPECT_EQ(errors(with("cluster: demo", "cluster: " + std::string(64, 'a'))),
            "n1.yaml:3: cluster: " + rule + " (got \"" + std::string(40, 'a') + "...\")");
  EXPECT_EQ(errors(with("{name: n3,", "{name: \"n\\x01\",")),
            "n1.yaml:9: peers[2].name: " + rule + " (got \"n\\x01\")");
}

TEST(AgentConfigErrors, CaIsNotANodeName) {
  EXPECT_EQ(errors(with("{name: n3,", "{name: ca,")),
            "n1.yaml:9: peers[2].name: \"ca\" is reserved for the cluster CA's files; pick "
            "another name");
}

TEST(AgentConfigErrors, Paths) {
  EXPECT_EQ(errors(with("data_dir: /var/lib/vigil/n1", "data_dir: vigil/n1")),
            "n1.yaml:4: data_dir: must be an absolute path (got \"vigil/n1\")");
  EXPECT_EQ(errors(with("tls: {insecure: true}", "tls: {ca: ca.crt, cert: /a, key: /b}")),
            "n1.yaml:10: tls.ca: must be an absolute path (got \"ca.crt\")");
  EXPECT_EQ(errors(with("data_dir: /var/lib/vigil/n1", "data_dir: \"/var/\\tlib\"")),
            "n1.yaml:4: data_dir: must hold only printable UTF-8 characters (got "
            "\"/var/\\x09lib\")");
  EXPECT_EQ(errors(with("data_dir: /var/lib/vigil/n1", "data_dir: /var/\xc3")),
            "n1.yaml:4: data_dir: must hold only printable UTF-8 characters (got "
            "\"/var/\\xc3\")");
  EXPECT_EQ(errors(with("data_dir: /var/lib/vigil/n1", "data_dir: /var/caf\xc3\xa9")), "OK");
}

TEST(AgentConfigErrors, HostPort) {
  auto peer = [](std::string_view v) {
    return errors(with("{name: n3, id: 3, peer: 127.0.0.1:7003",
                       "{name: n3, id: 3, peer: " + std::string(v)));
  };
  EXPECT_EQ(peer("127.0.0.1"),
            "n1.yaml:9: peers[2].peer: missing :port; expected host:port, like 127.0.0.1:7001 "
            "or [::1]:7001 (got \"127.0.0.1\")");
  EXPECT_EQ(peer("127.0.0.1:0"),
            "n1.yaml:9: peers[2].peer: port must be a number from 1 to 65535 (got "
            "\"127.0.0.1:0\")");
  EXPECT_EQ(peer("127.0.0.1:65536"),
            "n1.yaml:9: peers[2].peer: port must be a number from 1 to 65535 (got "
            "\"127.0.0.1:65536\")");
  EXPECT_EQ(peer("127.0.0.1:x"),
            "n1.yaml:9: peers[2].peer: port must be a number from 1 to 65535 (got "
            "\"127.0.0.1:x\")");
  EXPECT_EQ(peer("127.0.0.256:7003"),
            "n1.yaml:9: peers[2].peer: bad IPv4 address (got \"127.0.0.256:7003\")");
  EXPECT_EQ(peer("\"::1:7003\""),
            "n1.yaml:9: peers[2].peer: an IPv6 address needs brackets, like [::1]:7001 (got "
            "\"::1:7003\")");
  EXPECT_EQ(peer("\"[::g]:7003\""),
            "n1.yaml:9: peers[2].peer: bad IPv6 address (got \"[::g]:7003\")");
  EXPECT_EQ(peer("bad_host:7003"),
            "n1.yaml:9: peers[2].peer: bad host name (got \"bad_host:7003\")");
  EXPECT_EQ(peer(":7003"),
            "n1.yaml:9: peers[2].peer: missing host; expected host:port, like 127.0.0.1:7001 "
            "or [::1]:7001 (got \":7003\")");
  EXPECT_EQ(peer("0.0.0.0:7003"),
            "n1.yaml:9: peers[2].peer: must be an address other nodes can dial, not the "
            "wildcard (got \"0.0.0.0:7003\")");
}

TEST(ParseHostPort, Forms) {
  EXPECT_EQ(*parse_host_port("localhost:1"), (HostPort{"localhost", 1}));
  EXPECT_EQ(*parse_host_port("[::1]:65535"), (HostPort{"::1", 65535}));
  EXPECT_TRUE(parse_host_port("[::1]:65535")->is_loopback());
  EXPECT_TRUE(parse_host_port("127.9.9.9:5")->is_loopback());
  EXPECT_FALSE(parse_host_port("128.0.0.1:5")->is_loopback());
  EXPECT_TRUE(parse_host_port("[::]:5")->is_wildcard());
  EXPECT_FALSE(parse_host_port("[::1]:5")->is_wildcard());
  EXPECT_FALSE(parse_host_port("[::1]").has_value());
  EXPECT_FALSE(parse_host_port("[::1:5").has_value());
  EXPECT_FALSE(parse_host_port("a..b:5").has_value());
  EXPECT_FALSE(parse_host_port("a:+5").has_value());
  EXPECT_FALSE(parse_host_port("").has_value());
}

// ---- Errors: the cluster as a whole ----

TEST(AgentConfigErrors, DuplicatePeers) {
  EXPECT_EQ(errors(with("{name: n3, id: 3,", "{name: n2, id: 2,")),
            "n1.yaml:9: peers[2].name: duplicate name \"n2\" (also peers[1], line 8)\n"
            "n1.yaml:9: peers[2].id: duplicate id 2 (also peers[1], line 8)");
  EXPECT_EQ(errors(with("peer: 127.0.0.1:7003, api: 127.0.0.1:8003",
                        "peer: 127.0.0.1:8002, api: 127.0.0.1:7001")),
            "n1.yaml:9: peers[2].peer: address 127.0.0.1:8002 is already used by peers[1].api "
            "(line 8)\n"
            "n1.yaml:9: peers[2].api: address 127.0.0.1:7001 is already used by peers[0].peer "
            "(line 7)");
}

TEST(AgentConfigErrors, ThisNodeMustBeListed) {
  EXPECT_EQ(errors(with("node: n1 ", "node: n4 ")),
            "n1.yaml:6: peers: this node \"n4\" is not listed; list every voter, this node "
            "included (names: n1, n2, n3)");
  EXPECT_EQ(errors(with("id: 1\n", "id: 7\n")),
            "n1.yaml:7: peers[0].id: this node's entry must have the top-level id 7 (got 1)");
}

TEST(AgentConfigErrors, ListenMustMatchThisNode) {
  EXPECT_EQ(errors(with("listen: {peer: 127.0.0.1:7001", "listen: {peer: 127.0.0.1:7009")),
            "n1.yaml:5: listen.peer: must be this node's peer address from peers, "
            "127.0.0.1:7001, or the wildcard host with that port (got 127.0.0.1:7009)");
  EXPECT_EQ(errors(with("api: 127.0.0.1:8001}\npeers", "api: 127.0.0.2:8001}\npeers")),
            "n1.yaml:5: listen.api: must be this node's api address from peers, "
            "127.0.0.1:8001, or the wildcard host with that port (got 127.0.0.2:8001)");
  EXPECT_EQ(errors(with("listen: {peer: 127.0.0.1:7001", "listen: {peer: 0.0.0.0:7001",
                        with_tls_files())),
            "OK");
}

TEST(AgentConfigErrors, ListenPeerAndApiDiffer) {
  const std::string text =
      with("api: 127.0.0.1:8001}\npeers", "api: 0.0.0.0:7001}\npeers", with_tls_files());
  EXPECT_EQ(errors(text),
            "n1.yaml:5: listen.api: must differ from listen.peer (got 0.0.0.0:7001)\n"
            "n1.yaml:5: listen.api: must be this node's api address from peers, "
            "127.0.0.1:8001, or the wildcard host with that port (got 0.0.0.0:7001)");
}

TEST(AgentConfigErrors, PeersShape) {
  EXPECT_EQ(errors(with("peers:", "peers: n1, n2\nxpeers:")),
            "n1.yaml:6: peers: must be a list of {name, id, peer, api}, one per voter (got "
            "\"n1, n2\")\n"
            "n1.yaml:7: xpeers: unknown key (known keys: node, id, cluster, data_dir, listen, "
            "peers, tls, api, timers, fsync, snapshot_entries, log_level, event_retention)");
  std::string many = "peers:\n";
  for (int i = 1; i <= 10; ++i) {
    many += "  - {name: n" + std::to_string(i) + ", id: " + std::to_string(i) +
            ", peer: 127.0.0.1:" + std::to_string(7000 + i) +
            ", api: 127.0.0.1:" + std::to_string(8000 + i) + "}\n";
  }
  std::string text = std::string(kValid.substr(0, kValid.find("peers:"))) + many +
                     std::string(kValid.substr(kValid.find("tls:")));
  EXPECT_EQ(errors(text), "n1.yaml:6: peers: at most 9 voters (got 10); 3 or 5 is usual");
  EXPECT_TRUE(errors(with("peers:", "peers: []\nxpeers:"))
                  .starts_with("n1.yaml:6: peers: must list every voter, this node included "
                               "(got none)\nn1.yaml:7: xpeers: unknown key"));
}

TEST(AgentConfigErrors, Tls) {
  EXPECT_EQ(errors(with("tls: {insecure: true}", "tls: {insecure: false, ca: /ca}")),
            "n1.yaml:10: tls.cert: required key is missing (or set tls: {insecure: true} for "
            "loopback trials)\n"
            "n1.yaml:10: tls.key: required key is missing (or set tls: {insecure: true} for "
            "loopback trials)");
  EXPECT_EQ(errors(with("tls: {insecure: true}", "tls: {insecure: true, key: /k}")),
            "n1.yaml:10: tls.insecure: cannot be combined with ca, cert or key; keep one or the "
            "other");
  EXPECT_EQ(errors(with("peer: 127.0.0.1:7002", "peer: 10.0.0.2:7002")),
            "n1.yaml:10: tls.insecure: allowed only when every address is on loopback; "
            "peers[1].peer is 10.0.0.2:7002");
  EXPECT_EQ(errors(with("tls: {insecure: true}", "tls: {}")),
            "n1.yaml:10: tls.ca: required key is missing (or set tls: {insecure: true} for "
            "loopback trials)\n"
            "n1.yaml:10: tls.cert: required key is missing (or set tls: {insecure: true} for "
            "loopback trials)\n"
            "n1.yaml:10: tls.key: required key is missing (or set tls: {insecure: true} for "
            "loopback trials)");
}

TEST(AgentConfigErrors, Timers) {
  // The example of the brief: tick 10 makes 60 a multiple, but it is under 2 heartbeats.
  EXPECT_EQ(errors(with("tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300",
                        "tick_ms: 10, heartbeat_ms: 50, election_timeout_ms: 60")),
            "n1.yaml:11: timers.election_timeout_ms: must be at least 2 × heartbeat_ms (got 60, "
            "heartbeat 50)");
  EXPECT_EQ(errors(with("election_timeout_ms: 300", "election_timeout_ms: 310")),
            "n1.yaml:11: timers.election_timeout_ms: must be a multiple of tick_ms (got 310, "
            "tick 50)");
  EXPECT_EQ(errors(with("heartbeat_ms: 50", "heartbeat_ms: 75")),
            "n1.yaml:11: timers.heartbeat_ms: must be a multiple of tick_ms (got 75, tick 50)");
  EXPECT_EQ(errors(with("hold_ms: 400", "hold_ms: 50")),
            "n1.yaml:11: timers.hold_ms: must be at least 2 × heartbeat_ms (got 50, heartbeat "
            "50)");
  EXPECT_EQ(errors(with("timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, "
                        "hold_ms: 400, clock_drift: 0.01}",
                        "timers: {tick_ms: 40, heartbeat_ms: 40}")),
            "n1.yaml:11: timers.election_timeout_ms: the default 300 does not fit tick_ms and "
            "heartbeat_ms; set it explicitly");
  EXPECT_EQ(errors(with("timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, "
                        "hold_ms: 400, clock_drift: 0.01}",
                        "timers: {tick_ms: 35, heartbeat_ms: 35, election_timeout_ms: 350}")),
            "n1.yaml:11: timers.hold_ms: the default 480 does not fit tick_ms and heartbeat_ms; "
            "set it explicitly");
  EXPECT_EQ(errors(with("timers: {tick_ms: 50, heartbeat_ms: 50, election_timeout_ms: 300, "
                        "hold_ms: 400, clock_drift: 0.01}",
                        "timers: {tick_ms: 100, heartbeat_ms: 100, election_timeout_ms: 1000, "
                        "hold_ms: 1000}")),
            "OK");
}

TEST(AgentConfigErrors, EveryErrorIsCollectedAndSortedByLine) {
  const std::string text = R"(node: N1
id: 0
cluster: demo
data_dir: rel
listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
peers:
  - {name: n1, id: 1, peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
tls: {insecure: true}
timers: {tick_ms: 10, heartbeat_ms: 50, election_timeout_ms: 60}
log_level: loud
)";
  EXPECT_EQ(errors(text),
            "n1.yaml:1: node: must be 1 to 63 characters of a-z, 0-9 and '-', starting and "
            "ending with a letter or digit (got \"N1\")\n"
            "n1.yaml:2: id: must be between 1 and 18446744073709551615 (got 0)\n"
            "n1.yaml:4: data_dir: must be an absolute path (got \"rel\")\n"
            "n1.yaml:9: timers.election_timeout_ms: must be at least 2 × heartbeat_ms (got 60, "
            "heartbeat 50)\n"
            "n1.yaml:10: log_level: must be one of trace, debug, info, warn, error (got "
            "\"loud\")");
}

TEST(AgentConfigErrors, CappedAtALimit) {
  std::string text = std::string(kValid);
  for (int i = 0; i < 60; ++i) {
    text += "x" + std::to_string(i) + ": 1\n";
  }
  const std::string msg = errors(text);
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 50);
  EXPECT_TRUE(msg.ends_with("\nn1.yaml: ... and 10 more errors")) << msg;
}

TEST(AgentConfigErrors, HostileInputDoesNotCrash) {
  EXPECT_NE(errors(std::string(5000, '[')), "OK");
  EXPECT_NE(errors("a: &x [*x]\n"), "OK");
  EXPECT_NE(errors(std::string("node: \0n1\n", 10)), "OK");
  EXPECT_NE(errors("peers: &p [*p, *p]\n"), "OK");
}

// ---- The api section ----

// kValid with an api section after tls (line 11 on).
std::string with_api(std::string_view api) {
  return with("tls: {insecure: true}\n", "tls: {insecure: true}\n" + std::string(api));
}

TEST(AgentConfigApi, ParsesTlsAndTokens) {
  auto r = parse_agent_config(with_api("api:\n"
                                       "  tls: {cert: /c/n1.crt, key: /c/n1.key}\n"
                                       "  tokens:\n"
                                       "    - {name: ops, role: admin, token_file: /t/ops}\n"
                                       "    - {name: app, role: read-write, token_file: /t/app}\n"
                                       "    - {name: dash, role: read-only, token_file: /t/d}\n"),
                              "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_TRUE(r->api.tls());
  EXPECT_EQ(r->api.cert_file, "/c/n1.crt");
  EXPECT_EQ(r->api.key_file, "/c/n1.key");
  EXPECT_EQ(r->api.tokens, (std::vector<ApiTokenConfig>{{"ops", ApiRole::kAdmin, "/t/ops"},
                                                        {"app", ApiRole::kReadWrite, "/t/app"},
                                                        {"dash", ApiRole::kReadOnly, "/t/d"}}));
  const std::string text = render_agent_config(*r);
  EXPECT_NE(text.find("api:\n"
                      "  tls: {cert: /c/n1.crt, key: /c/n1.key}\n"
                      "  tokens:\n"
                      "    - {name: ops, role: admin, token_file: /t/ops}\n"),
            std::string::npos)
      << text;
  auto back = parse_agent_config(text, "rendered.yaml");
  ASSERT_TRUE(back.has_value()) << back.error().message() << "\n" << text;
  EXPECT_EQ(*back, *r);
}

TEST(AgentConfigApi, AbsentOrEmptyMeansPlainAndOpen) {
  for (const char* api : {"", "api: {}\n", "api: {tokens: []}\n"}) {
    auto r = parse_agent_config(with_api(api), "n1.yaml");
    ASSERT_TRUE(r.has_value()) << api << r.error().message();
    EXPECT_EQ(r->api, ApiConfig{}) << api;
  }
  // Tokens without TLS are fine on loopback; only tokens round-trip.
  auto r = parse_agent_config(
      with_api("api: {tokens: [{name: a, role: read-only, token_file: /t/a}]}\n"), "n1.yaml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_FALSE(r->api.tls());
  auto back = parse_agent_config(render_agent_config(*r), "rendered.yaml");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, *r);
}

TEST(AgentConfigApiErrors, PlainHttpOnlyOnLoopback) {
  const std::string wildcard =
      with("listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}",
           "listen: {peer: 127.0.0.1:7001, api: 0.0.0.0:8001}", with_tls_files());
  EXPECT_EQ(errors(wildcard),
            "n1.yaml:5: api.tls: required because listen.api 0.0.0.0:8001 is not on loopback "
            "(plain HTTP is allowed on loopback only): set api: {tls: {cert: PATH, key: PATH}}; "
            "the node's certificate and key will do");
  EXPECT_EQ(errors(with("tls: {ca: /c/ca.crt, cert: /c/n1.crt, key: /c/n1.key}\n",
                        "tls: {ca: /c/ca.crt, cert: /c/n1.crt, key: /c/n1.key}\n"
                        "api: {tokens: [{name: a, role: admin, token_file: /t/a}]}\n",
                        wildcard)),
            "n1.yaml:11: api.tls: required because listen.api 0.0.0.0:8001 is not on loopback "
            "(plain HTTP is allowed on loopback only): set api: {tls: {cert: PATH, key: PATH}}; "
            "the node's certificate and key will do");
  EXPECT_EQ(errors(with("tls: {ca: /c/ca.crt, cert: /c/n1.crt, key: /c/n1.key}\n",
                        "tls: {ca: /c/ca.crt, cert: /c/n1.crt, key: /c/n1.key}\n"
                        "api: {tls: {cert: /c/n1.crt, key: /c/n1.key}}\n",
                        wildcard)),
            "OK");
}

TEST(AgentConfigApiErrors, Tls) {
  EXPECT_EQ(errors(with_api("api: {tls: {cert: /c/n1.crt}}\n")),
            "n1.yaml:11: api.tls.key: required key is missing");
  EXPECT_EQ(errors(with_api("api: {tls: {cert: c.crt, key: /k, ca: /ca}}\n")),
            "n1.yaml:11: api.tls.ca: unknown key (known keys: cert, key)\n"
            "n1.yaml:11: api.tls.cert: must be an absolute path (got \"c.crt\")");
  EXPECT_EQ(errors(with_api("api: {tls: true}\n")),
            "n1.yaml:11: api.tls: must be a map (got \"true\")");
  EXPECT_EQ(errors(with_api("api: [tls]\n")), "n1.yaml:11: api: must be a map (got a list)");
  EXPECT_EQ(errors(with_api("api: {tsl: {}}\n")),
            "n1.yaml:11: api.tsl: unknown key (known keys: tls, tokens)");
}

TEST(AgentConfigApiErrors, Tokens) {
  EXPECT_EQ(errors(with_api("api: {tokens: /t/a}\n")),
            "n1.yaml:11: api.tokens: must be a list of {name, role, token_file} (got \"/t/a\")");
  std::string many = "api:\n  tokens:\n";
  for (int i = 0; i <= 64; ++i) {
    many += "    - {name: t" + std::to_string(i) + ", role: admin, token_file: /t/" +
            std::to_string(i) + "}\n";
  }
  EXPECT_EQ(errors(with_api(many)), "n1.yaml:12: api.tokens: at most 64 tokens (got 65)");
  EXPECT_EQ(errors(with_api("api:\n  tokens:\n    - ops\n")),
            "n1.yaml:13: api.tokens[0]: must be a map (got \"ops\")");
  EXPECT_EQ(errors(with_api("api:\n  tokens:\n    - {name: ops, role: root, token: x}\n")),
            "n1.yaml:13: api.tokens[0].token: unknown key (known keys: name, role, token_file)\n"
            "n1.yaml:13: api.tokens[0].role: must be one of read-only, read-write, admin (got "
            "\"root\")\n"
            "n1.yaml:13: api.tokens[0].token_file: required key is missing");
  EXPECT_EQ(errors(with_api("api:\n  tokens:\n    - {role: admin, token_file: t}\n")),
            "n1.yaml:13: api.tokens[0].name: required key is missing\n"
            "n1.yaml:13: api.tokens[0].token_file: must be an absolute path (got \"t\")");
  EXPECT_EQ(errors(with_api("api:\n  tokens:\n    - {name: Ops, role: [admin], "
                            "token_file: /t/a}\n")),
            "n1.yaml:13: api.tokens[0].name: must be 1 to 63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit (got \"Ops\")\n"
            "n1.yaml:13: api.tokens[0].role: must be a string (got a list)");
  EXPECT_EQ(errors(with_api("api:\n  tokens:\n"
                            "    - {name: ops, role: admin, token_file: /t/a}\n"
                            "    - {name: ops, role: read-only, token_file: /t/a}\n")),
            "n1.yaml:14: api.tokens[1].name: duplicate name \"ops\" (also api.tokens[0], line "
            "13)\n"
            "n1.yaml:14: api.tokens[1].token_file: the same file as api.tokens[0] (line 13): "
            "one token per caller, so that roles and logs tell them apart");
}

TEST(AgentConfigApiWarnings, OpenApiOffLoopback) {
  auto c = parse_agent_config(with("api: 127.0.0.1:8001}", "api: 0.0.0.0:8001}",
                                   with_tls_files() + "api: {tls: {cert: /c, key: /k}}\n"),
                              "n1.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(config_warnings(*c),
            (std::vector<std::string>{
                "api.tokens: none configured: anyone who reaches 0.0.0.0:8001 can read and write "
                "every key; add tokens (docs/CONFIG.md \"api\")"}));
  c->api.tokens.push_back({"a", ApiRole::kAdmin, "/t/a"});
  EXPECT_TRUE(config_warnings(*c).empty());
  c->tls.insecure = true;  // with API TLS, only the peer traffic is plain
  EXPECT_EQ(config_warnings(*c),
            (std::vector<std::string>{"tls.insecure: peer traffic is neither encrypted nor "
                                      "authenticated; use this for loopback trials only"}));
}

// ---- load_agent_config: the file system ----

class LoadAgentConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil_config_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(LoadAgentConfig, MissingFile) {
  auto r = load_agent_config((dir_ / "none.yaml").string());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_EQ(r.error().message(),
            "cannot read " + (dir_ / "none.yaml").string() + ": No such file or directory");
}

TEST_F(LoadAgentConfig, ChecksTlsFiles) {
  const std::string ca = write("ca.crt", "x");
  const std::string cert = write("n1.crt", "x");
  const std::string key = (dir_ / "n1.key").string();
  const std::string path = write(
      "n1.yaml",
      with("tls: {insecure: true}", "tls: {ca: " + ca + ", cert: " + cert + ", key: " + key + "}"));
  auto r = load_agent_config(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            path + ":10: tls.key: cannot read " + key + ": No such file or directory");
  write("n1.key", "x");
  auto ok = load_agent_config(path);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->tls.key_file, key);
  // parse_agent_config never looks at files.
  EXPECT_TRUE(
      parse_agent_config(with("tls: {insecure: true}", "tls: {ca: /no/a, cert: /no/b, key: /no/c}"),
                         "x.yaml")
          .has_value());
}

TEST_F(LoadAgentConfig, DirectoryIsNotAFile) {
  const std::string path =
      write("n1.yaml", with("tls: {insecure: true}", "tls: {ca: /, cert: /, key: /}"));
  auto r = load_agent_config(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), path + ":10: tls.ca: cannot read /: not a regular file\n" + path +
                                     ":10: tls.cert: cannot read /: not a regular file\n" + path +
                                     ":10: tls.key: cannot read /: not a regular file");
}

TEST_F(LoadAgentConfig, ChecksApiFiles) {
  const std::string good = write("ops.token", std::string(32, 'a') + "\n");
  const std::string cert = write("api.crt", "x");
  struct Case {
    std::string content;
    std::string why;
  };
  const Case cases[] = {
      {"",
       "the file is empty; write one token of at least 32 characters into it (openssl "
       "rand -hex 32 makes one)"},
      {"short\n",
       "the token has 5 characters; at least 32 are needed (openssl rand -hex 32 "
       "makes one)"},
      {std::string(32, 'a') + "\n" + std::string(32, 'b') + "\n",
       "must hold one token on one line (got several lines)"},
      {std::string(40, 'a') + " b",
       "character 41 is not allowed in a token (allowed: A-Z a-z "
       "0-9 - . _ ~ + / =)"},
      {std::string(2000, 'a'), "must hold one token of at most 1024 characters"},
  };
  for (const auto& c : cases) {
    const std::string bad = write("bad.token", c.content);
    const std::string path =
        write("n1.yaml",
              with_api("api:\n  tls: {cert: " + cert + ", key: " + (dir_ / "api.key").string() +
                       "}\n  tokens:\n    - {name: ops, role: admin, token_file: " + good +
                       "}\n    - {name: app, role: read-write, token_file: " + bad + "}\n"));
    auto r = load_agent_config(path);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message(),
              path + ":12: api.tls.key: cannot read " + (dir_ / "api.key").string() +
                  ": No such file or directory\n" + path +
                  ":15: api.tokens[1].token_file: cannot use " + bad + ": " + c.why);
  }
  const std::string path = write(
      "n1.yaml", with_api("api: {tokens: [{name: x, role: admin, token_file: " + dir_.string() +
                          "}, {name: y, role: admin, token_file: /no/such}]}\n"));
  auto r = load_agent_config(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), path + ":11: api.tokens[0].token_file: cannot use " +
                                     dir_.string() + ": not a regular file\n" + path +
                                     ":11: api.tokens[1].token_file: cannot use /no/such: No "
                                     "such file or directory");
}

TEST_F(LoadAgentConfig, ReadsTokensAndWarnsAboutLooseModes) {
  const std::string tight = write("tight.token", std::string(64, 'f') + "\r\n");
  const std::string loose = write("loose.token", std::string(32, 'Z'));
  std::filesystem::permissions(
      tight, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::permissions(loose, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::group_read |
                                          std::filesystem::perms::others_read);
  const std::string path =
      write("n1.yaml", with_api("api: {tokens: [{name: a, role: admin, token_file: " + tight +
                                "}, {name: b, role: read-only, token_file: " + loose + "}]}\n"));
  auto c = load_agent_config(path);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  std::vector<std::string> warnings;
  auto tokens = read_api_tokens(*c, &warnings);
  ASSERT_TRUE(tokens.has_value()) << tokens.error().message();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].name, "a");
  EXPECT_EQ((*tokens)[0].role, ApiRole::kAdmin);
  EXPECT_EQ((*tokens)[0].token, std::string(64, 'f'));
  EXPECT_EQ((*tokens)[1].token, std::string(32, 'Z'));
  EXPECT_EQ(
      warnings,
      (std::vector<std::string>{"api.tokens[1].token_file: " + loose +
                                " may be read by group or others (mode 0444); chmod 600 it"}));
  std::filesystem::remove(loose);
  auto gone = read_api_tokens(*c, nullptr);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), Errc::kNotFound);
  EXPECT_EQ(gone.error().message(),
            "api.tokens[1].token_file: cannot use " + loose + ": No such file or directory");
}

TEST(AgentConfigWarnings, SayWhatIsRisky) {
  auto c = parse_agent_config(with("fsync: true", "fsync: false"), "n1.yaml");
  ASSERT_TRUE(c.has_value());
  c->peers.pop_back();
  EXPECT_EQ(config_warnings(*c),
            (std::vector<std::string>{
                "tls.insecure: peer and API traffic is neither encrypted nor authenticated; use "
                "this for loopback trials only",
                "fsync: false: a power loss can lose writes the cluster acknowledged, which "
                "breaks Raft's guarantees",
                "peers: 2 voters tolerate no more failures than 1; use an odd number (3 or 5)"}));
}

}  // namespace
}  // namespace vigil::daemon
