// Request codec and validation. Body layouts (after the header of request.h):
//   Put          bytes key, bytes value, u64 lease, u8 flags (1 prev_kv, 2 ignore_lease)
//   DeleteRange  bytes key, bytes range_end, u8 flags (1 prev_kv)
//   Txn          u32 n, n × Compare, u32 n, n × TxnOp (success), u32 n, n × TxnOp (failure)
//     Compare    bytes key, bytes range_end, u8 target, u8 op, then bytes value (kValue),
//                u64 lease (kLease) or u64 number (others)
//     TxnOp      u8 kind (1 range, 2 put, 3 delete), then RangeOp, Put or DeleteRange
//     RangeOp    bytes key, bytes range_end, u64 revision, u64 limit,
//                u8 flags (1 keys_only, 2 count_only)
//   LeaseGrant   u64 id, u64 ttl_s
//   LeaseRevoke  u64 id
//   LeaseKeepAlive u64 id
//   LeaseExpire  u64 id, u64 decided_at
//   Compact      u64 revision
// Signed fields travel as u64 and must be <= INT64_MAX.
#include "store/request.h"

#include <limits>
#include <utility>

#include "base/bytes.h"
#include "store/keys.h"

namespace vigil::store {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint64_t kMaxSigned = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

enum class Type : uint8_t {
  kPut = 1,
  kDelete = 2,
  kTxn = 3,
  kLeaseGrant = 4,
  kLeaseRevoke = 5,
  kCompact = 6,
  kLeaseKeepAlive = 7,
  kLeaseExpire = 8
};
enum class OpKind : uint8_t { kRange = 1, kPut = 2, kDelete = 3 };

constexpr uint8_t kPutPrevKv = 1;
constexpr uint8_t kPutIgnoreLease = 2;
constexpr uint8_t kDeletePrevKv = 1;
constexpr uint8_t kRangeKeysOnly = 1;
constexpr uint8_t kRangeCountOnly = 2;

// ---- encoding ----

uint8_t flag(bool b, uint8_t bit) { return b ? bit : 0; }

void put_body(ByteWriter& w, const Put& p) {
  w.bytes(p.key);
  w.bytes(p.value);
  w.u64(p.lease.value());
  w.u8(flag(p.prev_kv, kPutPrevKv) | flag(p.ignore_lease, kPutIgnoreLease));
}

void delete_body(ByteWriter& w, const DeleteRange& d) {
  w.bytes(d.key);
  w.bytes(d.range_end);
  w.u8(flag(d.prev_kv, kDeletePrevKv));
}

void range_body(ByteWriter& w, const RangeOp& r) {
  w.bytes(r.key);
  w.bytes(r.range_end);
  w.u64(static_cast<uint64_t>(r.revision));
  w.u64(static_cast<uint64_t>(r.limit));
  w.u8(flag(r.keys_only, kRangeKeysOnly) | flag(r.count_only, kRangeCountOnly));
}

void compare_body(ByteWriter& w, const Compare& c) {
  w.bytes(c.key);
  w.bytes(c.range_end);
  w.u8(static_cast<uint8_t>(c.target));
  w.u8(static_cast<uint8_t>(c.op));
  switch (c.target) {
    case Compare::Target::kValue:
      w.bytes(c.value);
      break;
    case Compare::Target::kLease:
      w.u64(c.lease.value());
      break;
    default:
      w.u64(static_cast<uint64_t>(c.number));
      break;
  }
}

void ops_body(ByteWriter& w, const std::vector<TxnOp>& ops) {
  w.u32(static_cast<uint32_t>(ops.size()));
  for (const TxnOp& op : ops) {
    if (const auto* r = std::get_if<RangeOp>(&op)) {
      w.u8(static_cast<uint8_t>(OpKind::kRange));
      range_body(w, *r);
    } else if (const auto* p = std::get_if<Put>(&op)) {
      w.u8(static_cast<uint8_t>(OpKind::kPut));
      put_body(w, *p);
    } else {
      w.u8(static_cast<uint8_t>(OpKind::kDelete));
      delete_body(w, std::get<DeleteRange>(op));
    }
  }
}

// ---- decoding ----

// Reads fields by name; the first failure is kept (with the field path and offset) and
// every later read returns zero, so a decoder checks `failed()` at the points it branches.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : r_(in) {}

  bool failed() const { return !status_.ok(); }
  const Status& status() const { return status_; }
  size_t position() const { return r_.position(); }
  size_t remaining() const { return r_.remaining(); }
  // Sets the path printed before field names ("txn.success[2].put"); "" for the top.
  void set_context(std::string ctx) { ctx_ = std::move(ctx); }
  const std::string& context() const { return ctx_; }

  void fail(std::string_view field, const std::string& what, size_t offset) {
    if (failed()) return;
    std::string where = ctx_.empty() ? std::string(field) : ctx_ + "." + std::string(field);
    status_ = Status(Errc::kCorruption,
                     "request: " + where + ": " + what + " at offset " + std::to_string(offset));
  }

  uint8_t u8(std::string_view field) {
    if (!need(field, 1)) return 0;
    return r_.u8();
  }
  uint32_t u32(std::string_view field) {
    if (!need(field, 4)) return 0;
    return r_.u32();
  }
  uint64_t u64(std::string_view field) {
    if (!need(field, 8)) return 0;
    return r_.u64();
  }
  int64_t i64(std::string_view field) {
    const size_t at = position();
    uint64_t v = u64(field);
    if (v > kMaxSigned) {
      fail(field, "value " + std::to_string(v) + " exceeds INT64_MAX", at);
      return 0;
    }
    return static_cast<int64_t>(v);
  }
  std::string bytes(std::string_view field, size_t max) {
    const size_t at = position();
    uint32_t n = u32(field);
    if (failed()) return {};
    if (n > max) {
      fail(field, "length " + std::to_string(n) + " exceeds limit " + std::to_string(max), at);
      return {};
    }
    if (!need(field, n)) return {};
    return std::string(r_.raw(n));
  }
  // A flags byte whose bits must all be known (so the encoding stays canonical).
  uint8_t flags(std::string_view field, uint8_t known) {
    const size_t at = position();
    uint8_t f = u8(field);
    if ((f & ~known) != 0) fail(field, "unknown flag bits " + std::to_string(f & ~known), at);
    return f;
  }
  // A count of items each at least `min_bytes` long, at most `max`.
  uint32_t count(std::string_view field, uint32_t max, size_t min_bytes) {
    const size_t at = position();
    uint32_t n = u32(field);
    if (failed()) return 0;
    if (n > max) {
      fail(field, "count " + std::to_string(n) + " exceeds limit " + std::to_string(max), at);
      return 0;
    }
    if (static_cast<uint64_t>(n) * min_bytes > remaining()) {
      fail(field, "count " + std::to_string(n) + " does not fit in the remaining bytes", at);
      return 0;
    }
    return n;
  }

 private:
  bool need(std::string_view field, size_t n) {
    if (failed()) return false;
    if (r_.remaining() < n) {
      fail(field,
           "truncated: needs " + std::to_string(n) + " bytes, " + std::to_string(r_.remaining()) +
               " remain",
           r_.position());
      return false;
    }
    return true;
  }

  ByteReader r_;
  Status status_;
  std::string ctx_;
};

// Smallest encodings, for bounding counts against the remaining input.
constexpr size_t kMinCompareBytes = 4 + 4 + 1 + 1 + 4;
constexpr size_t kMinOpBytes = 1 + 4 + 4 + 1;

Put decode_put(Decoder& d) {
  Put p;
  p.key = d.bytes("key", kMaxKeyBytes);
  p.value = d.bytes("value", kMaxValueBytes);
  const size_t at = d.position();
  uint64_t lease = d.u64("lease");
  if (lease > kMaxSigned) d.fail("lease", "id exceeds INT64_MAX", at);
  p.lease = LeaseId(lease);
  uint8_t f = d.flags("flags", kPutPrevKv | kPutIgnoreLease);
  p.prev_kv = (f & kPutPrevKv) != 0;
  p.ignore_lease = (f & kPutIgnoreLease) != 0;
  return p;
}

DeleteRange decode_delete(Decoder& d) {
  DeleteRange r;
  r.key = d.bytes("key", kMaxKeyBytes);
  r.range_end = d.bytes("range_end", kMaxKeyBytes);
  r.prev_kv = (d.flags("flags", kDeletePrevKv) & kDeletePrevKv) != 0;
  return r;
}

RangeOp decode_range(Decoder& d) {
  RangeOp r;
  r.key = d.bytes("key", kMaxKeyBytes);
  r.range_end = d.bytes("range_end", kMaxKeyBytes);
  r.revision = d.i64("revision");
  r.limit = d.i64("limit");
  uint8_t f = d.flags("flags", kRangeKeysOnly | kRangeCountOnly);
  r.keys_only = (f & kRangeKeysOnly) != 0;
  r.count_only = (f & kRangeCountOnly) != 0;
  return r;
}

Compare decode_compare(Decoder& d) {
  Compare c;
  c.key = d.bytes("key", kMaxKeyBytes);
  c.range_end = d.bytes("range_end", kMaxKeyBytes);
  size_t at = d.position();
  uint8_t target = d.u8("target");
  if (!d.failed() && target > static_cast<uint8_t>(Compare::Target::kLease)) {
    d.fail("target", "unknown target " + std::to_string(target), at);
  }
  c.target = static_cast<Compare::Target>(target);
  at = d.position();
  uint8_t op = d.u8("op");
  if (!d.failed() && op > static_cast<uint8_t>(Compare::Op::kGreater)) {
    d.fail("op", "unknown op " + std::to_string(op), at);
  }
  c.op = static_cast<Compare::Op>(op);
  if (d.failed()) return c;
  switch (c.target) {
    case Compare::Target::kValue:
      c.value = d.bytes("value", kMaxValueBytes);
      break;
    case Compare::Target::kLease: {
      at = d.position();
      uint64_t lease = d.u64("lease");
      if (lease > kMaxSigned) d.fail("lease", "id exceeds INT64_MAX", at);
      c.lease = LeaseId(lease);
      break;
    }
    default:
      c.number = d.i64("number");
      break;
  }
  return c;
}

std::vector<TxnOp> decode_ops(Decoder& d, const std::string& branch) {
  std::vector<TxnOp> ops;
  d.set_context("txn");
  uint32_t n = d.count(branch, kMaxTxnOps, kMinOpBytes);
  ops.reserve(n);
  for (uint32_t i = 0; i < n && !d.failed(); ++i) {
    d.set_context("txn." + branch + "[" + std::to_string(i) + "]");
    const size_t at = d.position();
    uint8_t kind = d.u8("kind");
    if (d.failed()) break;
    switch (static_cast<OpKind>(kind)) {
      case OpKind::kRange:
        ops.emplace_back(decode_range(d));
        break;
      case OpKind::kPut:
        ops.emplace_back(decode_put(d));
        break;
      case OpKind::kDelete:
        ops.emplace_back(decode_delete(d));
        break;
      default:
        d.fail("kind", "unknown op kind " + std::to_string(kind), at);
        break;
    }
  }
  return ops;
}

Txn decode_txn(Decoder& d) {
  Txn t;
  d.set_context("txn");
  uint32_t n = d.count("compares", kMaxTxnCompares, kMinCompareBytes);
  t.compares.reserve(n);
  for (uint32_t i = 0; i < n && !d.failed(); ++i) {
    d.set_context("txn.compares[" + std::to_string(i) + "]");
    t.compares.push_back(decode_compare(d));
  }
  if (!d.failed()) t.success = decode_ops(d, "success");
  if (!d.failed()) t.failure = decode_ops(d, "failure");
  return t;
}

LeaseId decode_lease_id(Decoder& d) {
  const size_t at = d.position();
  uint64_t id = d.u64("id");
  if (id > kMaxSigned) d.fail("id", "lease id exceeds INT64_MAX", at);
  return LeaseId(id);
}

// ---- validation ----

Status check_size(std::string_view what, std::string_view field, size_t size, size_t max) {
  if (size <= max) return Status();
  return err(Errc::kInvalidArgument, std::string(what) + ": " + std::string(field) + " of " +
                                         std::to_string(size) + " bytes exceeds " +
                                         std::to_string(max));
}

Status check_key(std::string_view what, std::string_view key) {
  if (key.empty()) return err(Errc::kInvalidArgument, std::string(what) + ": key is empty");
  return check_size(what, "key", key.size(), kMaxKeyBytes);
}

Status check_range(std::string_view what, std::string_view key, std::string_view end) {
  if (end.empty()) return check_key(what, key);
  RETURN_IF_ERROR(check_size(what, "key", key.size(), kMaxKeyBytes));
  RETURN_IF_ERROR(check_size(what, "range_end", end.size(), kMaxKeyBytes));
  if (end == kRangeAll) return Status();  // every key >= key ("" = every key)
  if (end <= key) {
    return err(Errc::kInvalidArgument,
               std::string(what) + ": range_end must sort after key (or be \"\\0\" for all)");
  }
  return Status();
}

Status check_put(std::string_view what, const Put& p) {
  RETURN_IF_ERROR(check_key(what, p.key));
  RETURN_IF_ERROR(check_size(what, "value", p.value.size(), kMaxValueBytes));
  if (p.ignore_lease && p.lease != kNoLease) {
    return err(Errc::kInvalidArgument, std::string(what) + ": ignore_lease with a lease id");
  }
  return Status();
}

Status check_branch(const std::vector<TxnOp>& ops, std::string_view name) {
  std::vector<const Put*> puts;
  std::vector<const DeleteRange*> deletes;
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string what = "txn." + std::string(name) + "[" + std::to_string(i) + "]";
    if (const auto* r = std::get_if<RangeOp>(&ops[i])) {
      RETURN_IF_ERROR(check_range(what, r->key, r->range_end));
    } else if (const auto* p = std::get_if<Put>(&ops[i])) {
      RETURN_IF_ERROR(check_put(what, *p));
      puts.push_back(p);
    } else {
      const auto& d = std::get<DeleteRange>(ops[i]);
      RETURN_IF_ERROR(check_range(what, d.key, d.range_end));
      deletes.push_back(&d);
    }
  }
  // etcd's rule: one revision holds at most one change per key, so a key is put once and
  // never both put and deleted in a branch.
  for (size_t i = 0; i < puts.size(); ++i) {
    for (size_t j = i + 1; j < puts.size(); ++j) {
      if (puts[i]->key == puts[j]->key) {
        return err(Errc::kInvalidArgument, "txn." + std::string(name) + ": key \"" + puts[i]->key +
                                               "\" is put more than once");
      }
    }
    for (const DeleteRange* d : deletes) {
      if (in_range(puts[i]->key, d->key, d->range_end)) {
        return err(Errc::kInvalidArgument, "txn." + std::string(name) + ": key \"" + puts[i]->key +
                                               "\" is both put and deleted");
      }
    }
  }
  return Status();
}

}  // namespace

Status validate_range(std::string_view what, std::string_view key, std::string_view range_end) {
  return check_range(what, key, range_end);
}

std::string_view compare_target_name(Compare::Target t) {
  switch (t) {
    case Compare::Target::kValue:
      return "value";
    case Compare::Target::kVersion:
      return "version";
    case Compare::Target::kCreate:
      return "create_revision";
    case Compare::Target::kMod:
      return "mod_revision";
    case Compare::Target::kLease:
      return "lease";
  }
  return "unknown";
}

std::string_view compare_op_name(Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return "=";
    case Compare::Op::kNotEqual:
      return "!=";
    case Compare::Op::kLess:
      return "<";
    case Compare::Op::kGreater:
      return ">";
  }
  return "?";
}

std::string encode_request(const Request& r) {
  std::string out;
  ByteWriter w(&out);
  w.u8(kVersion);
  Type type = std::visit(
      [](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Put>) return Type::kPut;
        if constexpr (std::is_same_v<T, DeleteRange>) return Type::kDelete;
        if constexpr (std::is_same_v<T, Txn>) return Type::kTxn;
        if constexpr (std::is_same_v<T, LeaseGrant>) return Type::kLeaseGrant;
        if constexpr (std::is_same_v<T, LeaseRevoke>) return Type::kLeaseRevoke;
        if constexpr (std::is_same_v<T, Compact>) return Type::kCompact;
        if constexpr (std::is_same_v<T, LeaseKeepAlive>) return Type::kLeaseKeepAlive;
        if constexpr (std::is_same_v<T, LeaseExpire>) return Type::kLeaseExpire;
      },
      r.body);
  w.u8(static_cast<uint8_t>(type));
  w.u64(r.origin.value());
  w.u64(r.request_id);
  if (const auto* p = std::get_if<Put>(&r.body)) {
    put_body(w, *p);
  } else if (const auto* d = std::get_if<DeleteRange>(&r.body)) {
    delete_body(w, *d);
  } else if (const auto* t = std::get_if<Txn>(&r.body)) {
    w.u32(static_cast<uint32_t>(t->compares.size()));
    for (const Compare& c : t->compares) compare_body(w, c);
    ops_body(w, t->success);
    ops_body(w, t->failure);
  } else if (const auto* g = std::get_if<LeaseGrant>(&r.body)) {
    w.u64(g->id.value());
    w.u64(static_cast<uint64_t>(g->ttl_s));
  } else if (const auto* v = std::get_if<LeaseRevoke>(&r.body)) {
    w.u64(v->id.value());
  } else if (const auto* k = std::get_if<LeaseKeepAlive>(&r.body)) {
    w.u64(k->id.value());
  } else if (const auto* x = std::get_if<LeaseExpire>(&r.body)) {
    w.u64(x->id.value());
    w.u64(x->decided_at.value());
  } else {
    w.u64(static_cast<uint64_t>(std::get<Compact>(r.body).revision));
  }
  return out;
}

Result<Request> decode_request(std::string_view data) {
  Decoder d(data);
  Request r;
  uint8_t version = d.u8("version");
  if (!d.failed() && version != kVersion) {
    d.fail("version", "unknown version " + std::to_string(version), 0);
  }
  uint8_t type = d.u8("type");
  r.origin = NodeId(d.u64("origin"));
  r.request_id = d.u64("request_id");
  if (d.failed()) return ErrorValue{d.status()};
  switch (static_cast<Type>(type)) {
    case Type::kPut:
      d.set_context("put");
      r.body = decode_put(d);
      break;
    case Type::kDelete:
      d.set_context("delete");
      r.body = decode_delete(d);
      break;
    case Type::kTxn:
      r.body = decode_txn(d);
      break;
    case Type::kLeaseGrant: {
      d.set_context("lease_grant");
      LeaseGrant g;
      g.id = decode_lease_id(d);
      g.ttl_s = d.i64("ttl_s");
      r.body = g;
      break;
    }
    case Type::kLeaseRevoke:
      d.set_context("lease_revoke");
      r.body = LeaseRevoke{decode_lease_id(d)};
      break;
    case Type::kLeaseKeepAlive:
      d.set_context("lease_keepalive");
      r.body = LeaseKeepAlive{decode_lease_id(d)};
      break;
    case Type::kLeaseExpire: {
      d.set_context("lease_expire");
      LeaseExpire x;
      x.id = decode_lease_id(d);
      x.decided_at = LogIndex(d.u64("decided_at"));
      r.body = x;
      break;
    }
    case Type::kCompact:
      d.set_context("compact");
      r.body = Compact{d.i64("revision")};
      break;
    default:
      d.fail("type", "unknown type " + std::to_string(type), 1);
      break;
  }
  if (d.failed()) return ErrorValue{d.status()};
  if (d.remaining() != 0) {
    return err(Errc::kCorruption, "request: " + std::to_string(d.remaining()) +
                                      " trailing bytes at offset " + std::to_string(d.position()));
  }
  return r;
}

Status validate_request(const Request& r) {
  if (const auto* p = std::get_if<Put>(&r.body)) return check_put("put", *p);
  if (const auto* d = std::get_if<DeleteRange>(&r.body)) {
    return check_range("delete", d->key, d->range_end);
  }
  if (const auto* t = std::get_if<Txn>(&r.body)) {
    if (t->compares.size() > kMaxTxnCompares || t->success.size() > kMaxTxnOps ||
        t->failure.size() > kMaxTxnOps) {
      return err(Errc::kInvalidArgument,
                 "txn: more than " + std::to_string(kMaxTxnOps) + " compares or ops in a branch");
    }
    for (size_t i = 0; i < t->compares.size(); ++i) {
      const Compare& c = t->compares[i];
      const std::string what = "txn.compares[" + std::to_string(i) + "]";
      RETURN_IF_ERROR(check_range(what, c.key, c.range_end));
      RETURN_IF_ERROR(check_size(what, "value", c.value.size(), kMaxValueBytes));
    }
    RETURN_IF_ERROR(check_branch(t->success, "success"));
    return check_branch(t->failure, "failure");
  }
  if (const auto* g = std::get_if<LeaseGrant>(&r.body)) {
    if (g->ttl_s < kMinLeaseTtlS || g->ttl_s > kMaxLeaseTtlS) {
      return err(Errc::kInvalidArgument, "lease_grant: ttl_s " + std::to_string(g->ttl_s) +
                                             " outside [" + std::to_string(kMinLeaseTtlS) + ", " +
                                             std::to_string(kMaxLeaseTtlS) + "]");
    }
    if (g->id.value() > kMaxSigned) {
      return err(Errc::kInvalidArgument, "lease_grant: id exceeds INT64_MAX");
    }
    return Status();
  }
  if (const auto* v = std::get_if<LeaseRevoke>(&r.body)) {
    if (v->id == kNoLease) return err(Errc::kInvalidArgument, "lease_revoke: id is 0");
    return Status();
  }
  if (const auto* k = std::get_if<LeaseKeepAlive>(&r.body)) {
    if (k->id == kNoLease) return err(Errc::kInvalidArgument, "lease_keepalive: id is 0");
    return Status();
  }
  if (const auto* x = std::get_if<LeaseExpire>(&r.body)) {
    if (x->id == kNoLease) return err(Errc::kInvalidArgument, "lease_expire: id is 0");
    return Status();
  }
  if (std::get<Compact>(r.body).revision < 0) {
    return err(Errc::kInvalidArgument, "compact: negative revision");
  }
  return Status();
}

}  // namespace vigil::store
