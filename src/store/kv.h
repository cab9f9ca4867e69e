// The replicated key-value state machine (pure): commands, their codec, apply, snapshots.
// This is the first slice of the store of DESIGN.md; revisions, leases, watches and
// transactions come with the store issue.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"
#include "store/limits.h"

namespace vigil::store {

enum class Op : uint8_t { kPut = 1, kDelete = 2 };

// One client write, as carried in a Raft entry. (origin, request) identify the request so
// the node that proposed it can answer its client when the entry is applied, wherever
// Raft forwarded it.
struct Command {
  Op op = Op::kPut;
  NodeId origin;
  uint64_t request = 0;
  std::string key;
  std::string value;
  bool operator==(const Command&) const = default;
};

std::string encode_command(const Command& c);
// Errors: kCorruption naming the field and offset.
Result<Command> decode_command(std::string_view data);

// The outcome of applying one command.
struct ApplyResult {
  LogIndex index;        // the Raft index the command was applied at (its revision)
  bool existed = false;  // for deletes: whether the key was there
};

// Owned by the node's event loop. Deterministic: the same entries give byte-identical
// snapshots on every replica.
class KvMap {
 public:
  ApplyResult apply(LogIndex index, const Command& c);
  // Marks an index as applied without a command (no-op and membership entries).
  void apply_noop(LogIndex index) { applied_ = index; }
  std::optional<std::string> get(const std::string& key) const;
  size_t size() const { return map_.size(); }
  LogIndex applied() const { return applied_; }
  const std::map<std::string, std::string>& items() const { return map_; }

  std::string serialize() const;
  // Replaces the whole state. Errors: kCorruption naming the offset; state unchanged then.
  Status restore(std::string_view data);

 private:
  std::map<std::string, std::string> map_;
  LogIndex applied_;
};

}  // namespace vigil::store
