// The agent's config file (YAML): its typed form, a fail-closed loader and a renderer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/status.h"

namespace vigil::daemon {

// Limits the loader enforces (STYLE.md principle 5).
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr size_t kMaxVoters = 9;
inline constexpr size_t kMaxConfigErrors = 50;
inline constexpr uint64_t kMaxSnapshotEntries = 100'000'000;
inline constexpr size_t kMaxApiTokens = 64;
inline constexpr size_t kMinApiTokenChars = 32;  // 32 characters of 64 kinds: 192 bits
inline constexpr size_t kMaxApiTokenChars = 1024;

// A TCP endpoint as written in the file: "127.0.0.1:7001", "[::1]:7001" or "host.example:7001".
struct HostPort {
  std::string host;  // IPv4 literal, IPv6 literal (without brackets) or DNS name
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 host.
  std::string to_string() const;
  // 0.0.0.0 or :: (listen on every address); never valid as a peer's address.
  bool is_wildcard() const;
  // 127.0.0.0/8, ::1 or "localhost".
  bool is_loopback() const;
  bool operator==(const HostPort&) const = default;
};

// Node and cluster names: 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a
// letter or digit (a DNS label, since names end up in certificates).
bool is_valid_name(std::string_view name);

// Parses "host:port". Errors (kInvalidArgument) say what is wrong, without a location.
Result<HostPort> parse_host_port(std::string_view text);

// One voter of the cluster, as every node's config lists it.
struct PeerConfig {
  std::string name;
  NodeId id;
  HostPort peer;  // Raft traffic (mutual TLS)
  HostPort api;   // client API (HTTP/JSON)
  bool operator==(const PeerConfig&) const = default;
};

struct ListenConfig {
  HostPort peer;
  HostPort api;
  bool operator==(const ListenConfig&) const = default;
};

// Either insecure (plain TCP, loopback only) or all three PEM files.
struct TlsConfig {
  bool insecure = false;
  std::string ca_file;    // absolute path: the cluster CA certificate
  std::string cert_file;  // absolute path: this node's certificate
  std::string key_file;   // absolute path: this node's private key
  bool operator==(const TlsConfig&) const = default;
};

// What a bearer token may do on the API; each role includes the ones before it.
enum class ApiRole { kReadOnly, kReadWrite, kAdmin };
// "read-only", "read-write", "admin": the spelling of the config file.
std::string_view api_role_name(ApiRole role);

// One bearer token of the API. The secret itself lives in `token_file` (never in the
// config, which is shown in logs and copied around); read_api_tokens() reads it.
struct ApiTokenConfig {
  std::string name;  // for logs: who called; unique within the file
  ApiRole role = ApiRole::kReadOnly;
  std::string token_file;  // absolute path: one token, >= kMinApiTokenChars, 0600
  bool operator==(const ApiTokenConfig&) const = default;
};

// The client API's transport security and authentication (docs/CONFIG.md "api").
struct ApiConfig {
  // PEM files of the API's HTTPS certificate and key; both empty: plain HTTP, which the
  // loader allows only when listen.api is on loopback.
  std::string cert_file;
  std::string key_file;
  // Empty: no authentication (anyone who reaches listen.api may read and write).
  std::vector<ApiTokenConfig> tokens;

  bool tls() const { return !cert_file.empty(); }
  bool operator==(const ApiConfig&) const = default;
};

// Timing, in milliseconds. The Raft core counts ticks, so every duration except the drift is
// a whole number of ticks; the *_ticks() helpers convert.
struct TimerConfig {
  uint32_t tick_ms = 10;
  uint32_t heartbeat_ms = 20;
  // Raft randomizes the actual timeout in [election_timeout_ms, 2 × election_timeout_ms).
  uint32_t election_timeout_ms = 300;
  // H of DESIGN.md "Holds": how long a granted hold lasts.
  uint32_t hold_ms = 480;
  // The largest relative clock-rate error assumed between any two nodes (0.01 = 1 %).
  double clock_drift = 0.01;
  // A node counts its own hold as ended this long before H (DESIGN.md "Holds"): the time
  // its exclusive resources have to stop before the leader may start them elsewhere.
  // Default hold_ms / 4.
  uint32_t hold_guard_ms = 120;

  // hold_guard_ms's default for these hold_ms and heartbeat_ms: hold / 4, leaving at least
  // two heartbeats of the hold.
  uint32_t default_hold_guard_ms() const {
    uint32_t g = hold_ms / 4;
    return hold_ms >= 2 * heartbeat_ms ? std::min(g, hold_ms - 2 * heartbeat_ms) : g;
  }
  int heartbeat_ticks() const { return static_cast<int>(heartbeat_ms / tick_ms); }
  int election_ticks() const { return static_cast<int>(election_timeout_ms / tick_ms); }
  int hold_ticks() const { return static_cast<int>(hold_ms / tick_ms); }
  bool operator==(const TimerConfig&) const = default;
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
std::string_view log_level_name(LogLevel level);

// A validated agent config: every invariant listed in docs/CONFIG.md holds for a value
// returned by parse_agent_config() or load_agent_config(). A plain value type.
struct AgentConfig {
  std::string node;      // this node's name; equals one peers[i].name
  NodeId id;             // this node's id; equals that peers[i].id
  std::string cluster;   // cluster name; peers must agree (checked at handshake)
  std::string data_dir;  // absolute path: WAL, snapshots
  ListenConfig listen;
  std::vector<PeerConfig> peers;  // every voter, this node included, in file order
  TlsConfig tls;
  ApiConfig api;
  TimerConfig timers;
  bool fsync = true;
  // Applied entries between two snapshots (then the WAL before the snapshot is dropped).
  uint64_t snapshot_entries = 10000;
  LogLevel log_level = LogLevel::kInfo;
  // Cluster events kept in the store (vigil events); the leader deletes older ones.
  uint64_t event_retention = 1000;

  // This node's entry in peers (always present in a validated config).
  const PeerConfig& self() const;
  bool operator==(const AgentConfig&) const = default;
};

// Parses and validates config text. Never touches the file system; `filename` is used only
// in messages. On failure the Status (kInvalidArgument) holds every error found, one per
// line, each as "FILE:LINE: KEY.PATH: what is wrong (got X)", sorted by line.
Result<AgentConfig> parse_agent_config(std::string_view text, std::string_view filename);

// Reads `path` (at most kMaxConfigBytes), parses it as above, and also checks that the TLS
// files are readable. Errors: kNotFound / kIoError when the file cannot be read,
// kInvalidArgument for everything parse_agent_config() reports.
Result<AgentConfig> load_agent_config(const std::string& path);

// A token read from its file, for the API's authorizer.
struct ApiTokenSecret {
  std::string name;
  ApiRole role = ApiRole::kReadOnly;
  std::string token;
};

// Reads one token file: one line (a final newline is allowed) holding one token of
// kMinApiTokenChars to kMaxApiTokenChars characters that may appear in an HTTP
// Authorization header (A-Z a-z 0-9 - . _ ~ + / =). Errors (kNotFound, kIoError,
// kInvalidArgument) say what is wrong without the path; the caller adds it. Never puts
// the file's content in a message.
Result<std::string> read_api_token_file(const std::string& path);

// Reads every api.tokens[] file of a validated config (at agent start). Errors name the key
// path and the file. `warnings` (may be null) gets one line per token file that the group
// or others may read.
Result<std::vector<ApiTokenSecret>> read_api_tokens(const AgentConfig& config,
                                                    std::vector<std::string>* warnings);

// Renders a config as YAML that parse_agent_config() reads back to an equal value.
std::string render_agent_config(const AgentConfig& config);

// Things that are valid but deserve a loud line in the log (insecure TLS, fsync off, an
// even or single-voter cluster, an API open to anyone off loopback). One sentence each,
// prefixed with the key path. Pure: token file permissions are read_api_tokens()'s.
std::vector<std::string> config_warnings(const AgentConfig& config);

}  // namespace vigil::daemon
