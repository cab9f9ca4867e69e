// Raft codec implementation. Layout (all integers little-endian, strings u32-length-prefixed):
//   Entry        u64 term, u64 index, u8 type, bytes data
//   HardState    u64 term, u64 vote, u64 commit
//   ConfState    u32 n, n × u64 voter, u32 m, m × u64 learner
//   SnapshotMeta u64 index, u64 term, ConfState
//   ConfChange   u8 type, u64 node, bytes context
//   Message      u8 version, u8 type, u64 from, to, term, log_term, index, commit,
//                reject_hint, lease_tick, [hold_sent, hold_granted: version 2], u8 flags (bit0
//                reject, bit1 snapshot, bit2 snapshot data present), u32 n, n × Entry, bytes
//                context, [SnapshotMeta, [u64 length, data]]
#include "raft/codec.h"

#include <utility>

namespace vigil::raft {
namespace {

constexpr uint8_t kFlagReject = 1u << 0;
constexpr uint8_t kFlagSnapshot = 1u << 1;
constexpr uint8_t kFlagSnapshotData = 1u << 2;
constexpr uint8_t kKnownFlags = kFlagReject | kFlagSnapshot | kFlagSnapshotData;

// Smallest possible encoded Entry: term + index + type + empty data length.
constexpr size_t kMinEntryBytes = 8 + 8 + 1 + 4;

// A field path kept on the stack while decoding and turned into text only on error, so a
// successful decode allocates nothing for diagnostics.
struct Path {
  const Path* parent = nullptr;
  std::string_view name;
  int64_t index = -1;  // >= 0 renders as name[index]

  Path child(std::string_view n, int64_t i = -1) const { return Path{this, n, i}; }
  Path item(int64_t i) const { return Path{parent, name, i}; }

  std::string str() const {
    std::string out;
    append_to(out);
    return out;
  }

 private:
  void append_to(std::string& out) const {
    if (parent != nullptr) {
      parent->append_to(out);
      out += parent->parent == nullptr ? ": " : ".";
    }
    out += name;
    if (index >= 0) {
      out += '[';
      out += std::to_string(index);
      out += ']';
    }
  }
};

ErrorValue fail(const Path& p, const std::string& what, size_t offset) {
  return err(Errc::kInvalidArgument,
             p.str() + ": " + what + " at offset " + std::to_string(offset));
}

ErrorValue short_input(const Path& p, const ByteReader& r, size_t need) {
  return fail(p,
              "needs " + std::to_string(need) + " bytes but only " + std::to_string(r.remaining()) +
                  " remain",
              r.position());
}

Result<uint8_t> get_u8(ByteReader& r, const Path& p) {
  if (r.remaining() < 1) return short_input(p, r, 1);
  return r.u8();
}
Result<uint32_t> get_u32(ByteReader& r, const Path& p) {
  if (r.remaining() < 4) return short_input(p, r, 4);
  return r.u32();
}
Result<uint64_t> get_u64(ByteReader& r, const Path& p) {
  if (r.remaining() < 8) return short_input(p, r, 8);
  return r.u64();
}

// A u32-length-prefixed string, its length checked against what is left.
Result<std::string_view> get_bytes(ByteReader& r, const Path& p) {
  const size_t at = r.position();
  ASSIGN_OR_RETURN(uint32_t n, get_u32(r, p));
  if (n > r.remaining()) {
    return fail(p,
                "length " + std::to_string(n) + " exceeds remaining " +
                    std::to_string(r.remaining()) + " bytes",
                at);
  }
  return r.raw(n);
}

// A u32 element count, bounded by `max` and by how many `min_bytes`-sized elements the
// remaining input could hold, so a hostile count never drives a large reserve().
Result<uint32_t> get_count(ByteReader& r, const Path& p, uint32_t max, size_t min_bytes) {
  const size_t at = r.position();
  ASSIGN_OR_RETURN(uint32_t n, get_u32(r, p));
  if (n > max) {
    return fail(p, "count " + std::to_string(n) + " exceeds limit " + std::to_string(max), at);
  }
  if (static_cast<uint64_t>(n) * min_bytes > r.remaining()) {
    return fail(p,
                "count " + std::to_string(n) + " needs at least " +
                    std::to_string(static_cast<uint64_t>(n) * min_bytes) + " bytes but only " +
                    std::to_string(r.remaining()) + " remain",
                at);
  }
  return n;
}

Result<Entry> decode_entry_at(ByteReader& r, const Path& p) {
  Entry e;
  ASSIGN_OR_RETURN(uint64_t term, get_u64(r, p.child("term")));
  ASSIGN_OR_RETURN(uint64_t index, get_u64(r, p.child("index")));
  const size_t type_at = r.position();
  ASSIGN_OR_RETURN(uint8_t type, get_u8(r, p.child("type")));
  if (type > static_cast<uint8_t>(EntryType::kConfChange)) {
    return fail(p.child("type"), "unknown entry type " + std::to_string(type), type_at);
  }
  ASSIGN_OR_RETURN(std::string_view data, get_bytes(r, p.child("data")));
  e.term = Term(term);
  e.index = LogIndex(index);
  e.type = static_cast<EntryType>(type);
  e.data.assign(data);
  return e;
}

Result<HardState> decode_hard_state_at(ByteReader& r, const Path& p) {
  HardState hs;
  ASSIGN_OR_RETURN(uint64_t term, get_u64(r, p.child("term")));
  ASSIGN_OR_RETURN(uint64_t vote, get_u64(r, p.child("vote")));
  ASSIGN_OR_RETURN(uint64_t commit, get_u64(r, p.child("commit")));
  hs.term = Term(term);
  hs.vote = NodeId(vote);
  hs.commit = LogIndex(commit);
  return hs;
}

Result<std::vector<NodeId>> decode_node_list(ByteReader& r, const Path& p) {
  ASSIGN_OR_RETURN(uint32_t n, get_count(r, p, kMaxConfNodes, 8));
  std::vector<NodeId> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const size_t at = r.position();
    ASSIGN_OR_RETURN(uint64_t id, get_u64(r, p.item(i)));
    if (id == 0) return fail(p.item(i), "node id 0 is reserved for none", at);
    if (!out.empty() && id <= out.back().v) {
      return fail(p.item(i), "node ids not strictly ascending", at);
    }
    out.emplace_back(id);
  }
  return out;
}

Result<ConfState> decode_conf_state_at(ByteReader& r, const Path& p) {
  ConfState cs;
  ASSIGN_OR_RETURN(cs.voters, decode_node_list(r, p.child("voters")));
  const size_t learners_at = r.position();
  ASSIGN_OR_RETURN(cs.learners, decode_node_list(r, p.child("learners")));
  // Both lists are sorted: a merge walk finds an overlap in linear time.
  size_t i = 0;
  size_t j = 0;
  while (i < cs.voters.size() && j < cs.learners.size()) {
    if (cs.voters[i] == cs.learners[j]) {
      return fail(p.child("learners"), "node " + cs.learners[j].str() + " is also a voter",
                  learners_at);
    }
    if (cs.voters[i] < cs.learners[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return cs;
}

Result<SnapshotMeta> decode_snapshot_meta_at(ByteReader& r, const Path& p) {
  SnapshotMeta meta;
  ASSIGN_OR_RETURN(uint64_t index, get_u64(r, p.child("index")));
  ASSIGN_OR_RETURN(uint64_t term, get_u64(r, p.child("term")));
  ASSIGN_OR_RETURN(meta.conf, decode_conf_state_at(r, p.child("conf")));
  meta.index = LogIndex(index);
  meta.term = Term(term);
  return meta;
}

Result<ConfChange> decode_conf_change_at(ByteReader& r, const Path& p) {
  ConfChange cc;
  const size_t type_at = r.position();
  ASSIGN_OR_RETURN(uint8_t type, get_u8(r, p.child("type")));
  if (type > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) {
    return fail(p.child("type"), "unknown conf change type " + std::to_string(type), type_at);
  }
  ASSIGN_OR_RETURN(uint64_t node, get_u64(r, p.child("node")));
  ASSIGN_OR_RETURN(std::string_view context, get_bytes(r, p.child("context")));
  cc.type = static_cast<ConfChangeType>(type);
  cc.node = NodeId(node);
  cc.context.assign(context);
  return cc;
}

Status check_version(ByteReader& r, const Path& p) {
  ASSIGN_OR_RETURN(uint8_t version, get_u8(r, p.child("version")));
  if (version != kCodecVersion) {
    return fail(p.child("version"),
                "unsupported version " + std::to_string(version) + " (expected " +
                    std::to_string(kCodecVersion) + ")",
                0);
  }
  return Status();
}

Status check_end(const ByteReader& r, const Path& p) {
  if (r.remaining() != 0) {
    return fail(p, std::to_string(r.remaining()) + " trailing bytes", r.position());
  }
  return Status();
}

}  // namespace

void encode_entry(ByteWriter& w, const Entry& e) {
  w.u64(e.term.v);
  w.u64(e.index.v);
  w.u8(static_cast<uint8_t>(e.type));
  w.bytes(e.data);
}
Result<Entry> decode_entry(ByteReader& r) { return decode_entry_at(r, Path{nullptr, "entry"}); }

void encode_hard_state(ByteWriter& w, const HardState& hs) {
  w.u64(hs.term.v);
  w.u64(hs.vote.v);
  w.u64(hs.commit.v);
}
Result<HardState> decode_hard_state(ByteReader& r) {
  return decode_hard_state_at(r, Path{nullptr, "hard_state"});
}

void encode_conf_state(ByteWriter& w, const ConfState& cs) {
  w.u32(static_cast<uint32_t>(cs.voters.size()));
  for (NodeId id : cs.voters) w.u64(id.v);
  w.u32(static_cast<uint32_t>(cs.learners.size()));
  for (NodeId id : cs.learners) w.u64(id.v);
}
Result<ConfState> decode_conf_state(ByteReader& r) {
  return decode_conf_state_at(r, Path{nullptr, "conf_state"});
}

void encode_snapshot_meta(ByteWriter& w, const SnapshotMeta& meta) {
  w.u64(meta.index.v);
  w.u64(meta.term.v);
  encode_conf_state(w, meta.conf);
}
Result<SnapshotMeta> decode_snapshot_meta(ByteReader& r) {
  return decode_snapshot_meta_at(r, Path{nullptr, "snapshot_meta"});
}

void encode_conf_change(ByteWriter& w, const ConfChange& cc) {
  w.u8(static_cast<uint8_t>(cc.type));
  w.u64(cc.node.v);
  w.bytes(cc.context);
}
Result<ConfChange> decode_conf_change(ByteReader& r) {
  return decode_conf_change_at(r, Path{nullptr, "conf_change"});
}

std::string encode_conf_change(const ConfChange& cc) {
  std::string out;
  ByteWriter w(&out);
  w.u8(kCodecVersion);
  encode_conf_change(w, cc);
  return out;
}

Result<ConfChange> decode_conf_change(std::string_view in) {
  const Path root{nullptr, "conf_change"};
  ByteReader r(in);
  RETURN_IF_ERROR(check_version(r, root));
  ASSIGN_OR_RETURN(ConfChange cc, decode_conf_change_at(r, root));
  RETURN_IF_ERROR(check_end(r, root));
  return cc;
}

std::string encode_message(const Message& m) {
  std::string out;
  size_t reserve = 96 + m.context.size();
  for (const Entry& e : m.entries) reserve += kMinEntryBytes + e.data.size();
  out.reserve(reserve);
  ByteWriter w(&out);
  w.u8(kMessageVersion);
  w.u8(static_cast<uint8_t>(m.type));
  w.u64(m.from.v);
  w.u64(m.to.v);
  w.u64(m.term.v);
  w.u64(m.log_term.v);
  w.u64(m.index.v);
  w.u64(m.commit.v);
  w.u64(m.reject_hint.v);
  w.u64(m.lease_tick);
  w.u64(m.hold_sent);
  w.u64(m.hold_granted);
  uint8_t flags = 0;
  if (m.reject) flags |= kFlagReject;
  if (m.snapshot) {
    flags |= kFlagSnapshot;
    if (m.snapshot->data) flags |= kFlagSnapshotData;
  }
  w.u8(flags);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const Entry& e : m.entries) encode_entry(w, e);
  w.bytes(m.context);
  if (m.snapshot) {
    encode_snapshot_meta(w, m.snapshot->meta);
    if (m.snapshot->data) {
      // u64 length: a snapshot may outgrow the u32 of ordinary strings.
      w.u64(m.snapshot->data->size());
      w.raw(*m.snapshot->data);
    }
  }
  return out;
}

Result<Message> decode_message(std::string_view in) {
  const Path root{nullptr, "message"};
  ByteReader r(in);
  // Version 1 (before holds were carried) is still read: its hold fields are 0.
  ASSIGN_OR_RETURN(uint8_t version, get_u8(r, root.child("version")));
  if (version != kCodecVersion && version != kMessageVersion) {
    return fail(root.child("version"),
                "unsupported version " + std::to_string(version) + " (expected " +
                    std::to_string(kCodecVersion) + " or " + std::to_string(kMessageVersion) + ")",
                0);
  }
  Message m;
  const size_t type_at = r.position();
  ASSIGN_OR_RETURN(uint8_t type, get_u8(r, root.child("type")));
  if (type >= static_cast<uint8_t>(MsgType::kCount)) {
    return fail(root.child("type"), "unknown message type " + std::to_string(type), type_at);
  }
  m.type = static_cast<MsgType>(type);
  ASSIGN_OR_RETURN(uint64_t from, get_u64(r, root.child("from")));
  ASSIGN_OR_RETURN(uint64_t to, get_u64(r, root.child("to")));
  ASSIGN_OR_RETURN(uint64_t term, get_u64(r, root.child("term")));
  ASSIGN_OR_RETURN(uint64_t log_term, get_u64(r, root.child("log_term")));
  ASSIGN_OR_RETURN(uint64_t index, get_u64(r, root.child("index")));
  ASSIGN_OR_RETURN(uint64_t commit, get_u64(r, root.child("commit")));
  ASSIGN_OR_RETURN(uint64_t reject_hint, get_u64(r, root.child("reject_hint")));
  ASSIGN_OR_RETURN(m.lease_tick, get_u64(r, root.child("lease_tick")));
  if (version >= kMessageVersion) {
    ASSIGN_OR_RETURN(m.hold_sent, get_u64(r, root.child("hold_sent")));
    ASSIGN_OR_RETURN(m.hold_granted, get_u64(r, root.child("hold_granted")));
  }
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = Term(term);
  m.log_term = Term(log_term);
  m.index = LogIndex(index);
  m.commit = LogIndex(commit);
  m.reject_hint = LogIndex(reject_hint);

  const size_t flags_at = r.position();
  ASSIGN_OR_RETURN(uint8_t flags, get_u8(r, root.child("flags")));
  // Unknown bits and "data without snapshot" are rejected so the encoding stays canonical.
  if ((flags & ~kKnownFlags) != 0 ||
      ((flags & kFlagSnapshotData) != 0 && (flags & kFlagSnapshot) == 0)) {
    return fail(root.child("flags"), "invalid flags " + std::to_string(flags), flags_at);
  }
  m.reject = (flags & kFlagReject) != 0;

  const Path entries_path = root.child("entries");
  ASSIGN_OR_RETURN(uint32_t n, get_count(r, entries_path, kMaxEntriesPerMessage, kMinEntryBytes));
  m.entries.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(Entry e, decode_entry_at(r, entries_path.item(i)));
    m.entries.push_back(std::move(e));
  }
  ASSIGN_OR_RETURN(std::string_view context, get_bytes(r, root.child("context")));
  m.context.assign(context);

  if ((flags & kFlagSnapshot) != 0) {
    const Path snap_path = root.child("snapshot");
    Snapshot snap;
    ASSIGN_OR_RETURN(snap.meta, decode_snapshot_meta_at(r, snap_path.child("meta")));
    if ((flags & kFlagSnapshotData) != 0) {
      const Path data_path = snap_path.child("data");
      const size_t at = r.position();
      ASSIGN_OR_RETURN(uint64_t len, get_u64(r, data_path));
      if (len > r.remaining()) {
        return fail(data_path,
                    "length " + std::to_string(len) + " exceeds remaining " +
                        std::to_string(r.remaining()) + " bytes",
                    at);
      }
      snap.data = std::make_shared<const std::string>(r.raw(static_cast<size_t>(len)));
    }
    m.snapshot = std::move(snap);
  }
  RETURN_IF_ERROR(check_end(r, root));
  return m;
}

bool snapshot_equal(const Snapshot& a, const Snapshot& b) {
  if (!(a.meta == b.meta)) return false;
  if ((a.data == nullptr) != (b.data == nullptr)) return false;
  return a.data == nullptr || *a.data == *b.data;
}

bool message_equal(const Message& a, const Message& b) {
  if (a.type != b.type || a.from != b.from || a.to != b.to || a.term != b.term ||
      a.log_term != b.log_term || a.index != b.index || a.entries != b.entries ||
      a.commit != b.commit || a.reject != b.reject || a.reject_hint != b.reject_hint ||
      a.context != b.context || a.lease_tick != b.lease_tick || a.hold_sent != b.hold_sent ||
      a.hold_granted != b.hold_granted) {
    return false;
  }
  if (a.snapshot.has_value() != b.snapshot.has_value()) return false;
  return !a.snapshot || snapshot_equal(*a.snapshot, *b.snapshot);
}

}  // namespace vigil::raft
