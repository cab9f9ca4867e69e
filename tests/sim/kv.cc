// KV state machine, command codec and stable hashing for the simulator.
#include "sim/kv.h"

#include "base/bytes.h"

namespace vigil::sim {
namespace {
constexpr uint8_t kCommandMagic = 0xC5;
}  // namespace

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t hash_mix(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string encode_command(const KvCommand& cmd) {
  std::string out;
  ByteWriter w(&out);
  w.u8(kCommandMagic);
  w.u8(static_cast<uint8_t>(cmd.kind));
  w.u64(cmd.client);
  w.u64(cmd.seq);
  w.bytes(cmd.key);
  w.bytes(cmd.value);
  w.u8(cmd.expected ? 1 : 0);
  w.bytes(cmd.expected ? *cmd.expected : std::string());
  return out;
}

std::optional<KvCommand> decode_command(std::string_view data) {
  ByteReader r(data);
  if (r.u8() != kCommandMagic) return std::nullopt;
  KvCommand cmd;
  const uint8_t kind = r.u8();
  if (kind > static_cast<uint8_t>(KvOpKind::kCasDelete)) return std::nullopt;
  cmd.kind = static_cast<KvOpKind>(kind);
  cmd.client = r.u64();
  cmd.seq = r.u64();
  cmd.key = std::string(r.bytes());
  cmd.value = std::string(r.bytes());
  const bool has_expected = r.u8() != 0;
  std::string expected(r.bytes());
  if (has_expected) cmd.expected = std::move(expected);
  if (!r.ok() || r.remaining() != 0) return std::nullopt;
  return cmd;
}

KvStateMachine::ApplyResult KvStateMachine::apply(const KvCommand& cmd) {
  ApplyResult result;
  Session& session = sessions_[cmd.client];
  if (cmd.seq < session.seq) {
    result.applied = Applied::kStale;
    return result;
  }
  if (cmd.seq == session.seq) {
    result.applied = Applied::kDuplicate;
    result.output = session.output;
    return result;
  }
  KvOutput out;
  switch (cmd.kind) {
    case KvOpKind::kPut:
      data_[cmd.key] = cmd.value;
      break;
    case KvOpKind::kGet:
      out.read_value = get(cmd.key);
      break;
    case KvOpKind::kCas:
      out.cas_ok = get(cmd.key) == cmd.expected;
      if (out.cas_ok) data_[cmd.key] = cmd.value;
      break;
    case KvOpKind::kDelete:
      data_.erase(cmd.key);
      break;
    case KvOpKind::kCasDelete:
      out.cas_ok = get(cmd.key) == cmd.expected;
      if (out.cas_ok) data_.erase(cmd.key);
      break;
  }
  session.seq = cmd.seq;
  session.output = out;
  result.output = out;
  return result;
}

std::optional<std::string> KvStateMachine::get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::serialize(uint64_t log_digest) const {
  std::string out;
  ByteWriter w(&out);
  w.u64(log_digest);
  w.u32(static_cast<uint32_t>(data_.size()));
  for (const auto& [k, v] : data_) {
    w.bytes(k);
    w.bytes(v);
  }
  w.u32(static_cast<uint32_t>(sessions_.size()));
  for (const auto& [client, s] : sessions_) {
    w.u64(client);
    w.u64(s.seq);
    w.u8(s.output.read_value ? 1 : 0);
    w.bytes(s.output.read_value ? *s.output.read_value : std::string());
    w.u8(s.output.cas_ok ? 1 : 0);
  }
  return out;
}

bool KvStateMachine::deserialize(std::string_view data, uint64_t* log_digest) {
  ByteReader r(data);
  std::map<std::string, std::string> kv;
  std::map<uint64_t, Session> sessions;
  *log_digest = r.u64();
  const uint32_t n = r.u32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k(r.bytes());
    kv[k] = std::string(r.bytes());
  }
  const uint32_t m = r.u32();
  for (uint32_t i = 0; i < m && r.ok(); ++i) {
    const uint64_t client = r.u64();
    Session s;
    s.seq = r.u64();
    const bool has_read = r.u8() != 0;
    std::string read(r.bytes());
    if (has_read) s.output.read_value = std::move(read);
    s.output.cas_ok = r.u8() != 0;
    sessions[client] = std::move(s);
  }
  if (!r.ok() || r.remaining() != 0) return false;
  data_ = std::move(kv);
  sessions_ = std::move(sessions);
  return true;
}

uint64_t KvStateMachine::state_hash() const {
  uint64_t h = 1;
  for (const auto& [k, v] : data_) h = hash_mix(hash_mix(h, hash_bytes(k)), hash_bytes(v));
  for (const auto& [client, s] : sessions_) {
    h = hash_mix(hash_mix(h, client), s.seq);
    h = hash_mix(h, s.output.read_value ? hash_bytes(*s.output.read_value) : 7);
    h = hash_mix(h, s.output.cas_ok ? 1 : 2);
  }
  return h;
}

}  // namespace vigil::sim
