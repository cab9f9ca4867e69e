// KvMap and the command codec.
#include "store/kv.h"

#include "base/bytes.h"
#include "base/crc32c.h"

namespace vigil::store {

namespace {
constexpr uint8_t kCommandVersion = 1;
constexpr uint32_t kSnapshotMagic = 0x564b5631;  // "VKV1"
}  // namespace

std::string encode_command(const Command& c) {
  std::string out;
  ByteWriter w(&out);
  w.u8(kCommandVersion);
  w.u8(static_cast<uint8_t>(c.op));
  w.u64(c.origin.value());
  w.u64(c.request);
  w.bytes(c.key);
  w.bytes(c.value);
  return out;
}

Result<Command> decode_command(std::string_view data) {
  ByteReader r(data);
  Command c;
  uint8_t version = r.u8();
  if (r.ok() && version != kCommandVersion) {
    return err(Errc::kCorruption, "command: unknown version " + std::to_string(version));
  }
  uint8_t op = r.u8();
  if (r.ok() && op != static_cast<uint8_t>(Op::kPut) && op != static_cast<uint8_t>(Op::kDelete)) {
    return err(Errc::kCorruption, "command: unknown op " + std::to_string(op) + " at offset 1");
  }
  c.op = static_cast<Op>(op);
  c.origin = NodeId(r.u64());
  c.request = r.u64();
  c.key = std::string(r.bytes());
  if (r.ok() && c.key.size() > kMaxKeyBytes) {
    return err(Errc::kCorruption, "command: key longer than " + std::to_string(kMaxKeyBytes));
  }
  c.value = std::string(r.bytes());
  if (!r.ok()) {
    return err(Errc::kCorruption, "command: truncated at offset " + std::to_string(r.position()) +
                                      " of " + std::to_string(data.size()));
  }
  if (r.remaining() != 0) {
    return err(Errc::kCorruption, "command: " + std::to_string(r.remaining()) +
                                      " trailing bytes at offset " + std::to_string(r.position()));
  }
  return c;
}

ApplyResult KvMap::apply(LogIndex index, const Command& c) {
  ApplyResult res;
  res.index = index;
  applied_ = index;
  if (c.op == Op::kPut) {
    map_[c.key] = c.value;
  } else {
    res.existed = map_.erase(c.key) > 0;
  }
  return res;
}

std::optional<std::string> KvMap::get(const std::string& key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::string KvMap::serialize() const {
  std::string body;
  ByteWriter w(&body);
  w.u64(applied_.value());
  w.u64(map_.size());
  for (const auto& [k, v] : map_) {
    w.bytes(k);
    w.bytes(v);
  }
  std::string out;
  ByteWriter h(&out);
  h.u32(kSnapshotMagic);
  h.u32(crc32c(body));
  h.raw(body);
  return out;
}

Status KvMap::restore(std::string_view data) {
  if (data.empty()) {  // the empty snapshot of a brand-new cluster
    map_.clear();
    applied_ = LogIndex(0);
    return Status();
  }
  ByteReader r(data);
  uint32_t magic = r.u32();
  uint32_t crc = r.u32();
  if (!r.ok() || magic != kSnapshotMagic) {
    return err(Errc::kCorruption, "kv snapshot: bad magic at offset 0");
  }
  std::string_view body = data.substr(8);
  if (crc32c(body) != crc) return err(Errc::kCorruption, "kv snapshot: checksum mismatch");
  ByteReader b(body);
  LogIndex applied(b.u64());
  uint64_t n = b.u64();
  std::map<std::string, std::string> m;
  for (uint64_t i = 0; i < n && b.ok(); ++i) {
    std::string k(b.bytes());
    std::string v(b.bytes());
    m.emplace(std::move(k), std::move(v));
  }
  if (!b.ok() || b.remaining() != 0) {
    return err(Errc::kCorruption,
               "kv snapshot: malformed at offset " + std::to_string(8 + b.position()));
  }
  map_ = std::move(m);
  applied_ = applied;
  return Status();
}

}  // namespace vigil::store
