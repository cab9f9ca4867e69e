// The simulated replicated state machine: a small KV map with client sessions (dedup).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sim/linearizability.h"

namespace vigil::sim {

// A client command as it travels in a Raft entry. (client, seq) identifies it: a client
// that retries sends the same pair again, and the state machine applies it at most once
// (Raft dissertation §6.3, client sessions).
struct KvCommand {
  KvOpKind kind = KvOpKind::kGet;
  uint64_t client = 0;
  uint64_t seq = 0;
  std::string key;
  std::string value;                    // put / cas new value
  std::optional<std::string> expected;  // cas (nullopt = absent)
  bool operator==(const KvCommand&) const = default;
};

std::string encode_command(const KvCommand& cmd);
// nullopt for data that is not a command (e.g. a leader's empty no-op entry).
std::optional<KvCommand> decode_command(std::string_view data);

struct KvOutput {
  std::optional<std::string> read_value;  // get
  bool cas_ok = false;                    // cas
  bool operator==(const KvOutput&) const = default;
};

// FNV-1a over bytes, and a 64-bit mixer to combine hashes; stable across runs and builds.
uint64_t hash_bytes(std::string_view s);
uint64_t hash_mix(uint64_t h, uint64_t v);

// One replica's state machine. Owned by one simulated node; rebuilt from a snapshot on
// restart. Deterministic: std::map only, so equal histories give byte-equal snapshots.
class KvStateMachine {
 public:
  enum class Applied {
    kFresh,      // executed now
    kDuplicate,  // (client, seq) already executed: the cached output is returned
    kStale,      // an older seq of a client that moved on: ignored, no output
  };
  struct ApplyResult {
    Applied applied = Applied::kFresh;
    KvOutput output;
  };

  ApplyResult apply(const KvCommand& cmd);
  std::optional<std::string> get(const std::string& key) const;

  // Serializes the state plus `log_digest` (the simulator's hash of the log prefix the
  // state reflects, so a snapshot receiver can keep checking log matching).
  std::string serialize(uint64_t log_digest) const;
  // Replaces this state; false if `data` is malformed.
  bool deserialize(std::string_view data, uint64_t* log_digest);
  uint64_t state_hash() const;

 private:
  struct Session {
    uint64_t seq = 0;
    KvOutput output;
  };
  std::map<std::string, std::string> data_;
  std::map<uint64_t, Session> sessions_;
};

}  // namespace vigil::sim
