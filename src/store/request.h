// Replicated requests of the MVCC store (what a Raft entry carries) and their binary codec.
//
// Semantics follow etcd's mvcc API: one revision per write request, ranges as [key,
// range_end) with "" = the single key and "\0" = every key >= key, transactions as compares
// then/else ops. The codec is versioned and canonical (decode then encode gives the same
// bytes), bounded (key, value, count limits of store/limits.h), and its errors name the
// field and the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "store/limits.h"

namespace vigil::store {

struct LeaseIdTag {};
// A lease. 0 means "no lease". Ids are at most INT64_MAX (JSON clients read them as numbers).
using LeaseId = StrongId<LeaseIdTag>;
inline constexpr LeaseId kNoLease{0};

// Writes `value` at `key`. With `ignore_lease` the key keeps its current lease (and must
// exist); otherwise it is attached to `lease` (kNoLease detaches it).
struct Put {
  std::string key;
  std::string value;
  LeaseId lease;
  bool prev_kv = false;  // return the previous key-value in the response
  bool ignore_lease = false;
  bool operator==(const Put&) const = default;
};

// Deletes [key, range_end) ("" = only key, "\0" = every key >= key).
struct DeleteRange {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
  bool operator==(const DeleteRange&) const = default;
};

// A read inside a transaction, at `revision` (0 = the transaction's own view).
struct RangeOp {
  std::string key;
  std::string range_end;
  int64_t revision = 0;
  int64_t limit = 0;  // 0 = no limit
  bool keys_only = false;
  bool count_only = false;
  bool operator==(const RangeOp&) const = default;
};

// One compare of a transaction. Every key of [key, range_end) must satisfy
// `<key's target> <op> <operand>`; a missing key has version, create and mod revision 0 and
// no lease, and fails every value compare (etcd's rule).
struct Compare {
  enum class Target : uint8_t { kValue = 0, kVersion = 1, kCreate = 2, kMod = 3, kLease = 4 };
  enum class Op : uint8_t { kEqual = 0, kNotEqual = 1, kLess = 2, kGreater = 3 };
  std::string key;
  std::string range_end;
  Target target = Target::kVersion;
  Op op = Op::kEqual;
  std::string value;   // operand for kValue (only this one is encoded for kValue)
  int64_t number = 0;  // operand for kVersion, kCreate, kMod
  LeaseId lease;       // operand for kLease
  bool operator==(const Compare&) const = default;
};

using TxnOp = std::variant<RangeOp, Put, DeleteRange>;

// If every compare holds, `success` runs, otherwise `failure`. All writes of the branch share
// one revision. In a branch, a key is put at most once and never both put and deleted.
struct Txn {
  std::vector<Compare> compares;
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
  bool operator==(const Txn&) const = default;
};

// Grants a lease. id kNoLease: the store picks the next free id (deterministic).
struct LeaseGrant {
  LeaseId id;
  int64_t ttl_s = 0;
  bool operator==(const LeaseGrant&) const = default;
};

// Revokes a lease and deletes its keys, under one revision. Clients send it to revoke; the
// leader proposes it for every lease its LeaseTracker reports expired.
struct LeaseRevoke {
  LeaseId id;
  bool operator==(const LeaseRevoke&) const = default;
};

// The leader's expiry of a lease, decided when this node had applied `decided_at`. Applied
// like LeaseRevoke unless a keep-alive (or the grant) of the lease was applied after
// `decided_at`: then it changes nothing and fails with kAborted, so a keep-alive that was
// acknowledged before the expiry reached the log always keeps the lease.
struct LeaseExpire {
  LeaseId id;
  LogIndex decided_at;
  bool operator==(const LeaseExpire&) const = default;
};

// Refreshes a lease: the leader restarts its TTL when this is applied. It goes through the
// log so a keep-alive sent to any node reaches the leader and is ordered with revokes.
struct LeaseKeepAlive {
  LeaseId id;
  bool operator==(const LeaseKeepAlive&) const = default;
};

// Drops history below `revision` (see MvccStore::compact).
struct Compact {
  int64_t revision = 0;
  bool operator==(const Compact&) const = default;
};

using RequestBody = std::variant<Put, DeleteRange, Txn, LeaseGrant, LeaseRevoke, Compact,
                                 LeaseKeepAlive, LeaseExpire>;

// One replicated request. (origin, request_id) let the node that proposed it match the
// applied entry to its waiting client, wherever Raft forwarded it.
struct Request {
  NodeId origin;
  uint64_t request_id = 0;
  RequestBody body;
  bool operator==(const Request&) const = default;
};

// Layout (little-endian, strings u32-length-prefixed, bools one byte 0/1):
//   u8 version (1), u8 type (1 put, 2 delete, 3 txn, 4 lease grant, 5 lease revoke,
//   6 compact, 7 lease keep-alive, 8 lease expire), u64 origin, u64 request_id, then the body as in
//   request.cc.
std::string encode_request(const Request& r);
// Errors: kCorruption "request: <field>: <what> at offset N" for truncation, unknown
// version/type/enum, non-canonical bools, oversize strings or counts, trailing bytes.
Result<Request> decode_request(std::string_view data);

// Checks what the codec does not: non-empty keys, range_end after key, ttl bounds, lease
// ids, transaction key conflicts. MvccStore::apply runs it too (a replica never trusts the
// proposer); the API can call it first to reject a bad request without a Raft round.
Status validate_request(const Request& r);

// Checks a range as requests state it (see keys.h): a non-empty key when range_end is "",
// otherwise range_end after key or "\0". `what` prefixes the message.
Status validate_range(std::string_view what, std::string_view key, std::string_view range_end);

std::string_view compare_target_name(Compare::Target t);
std::string_view compare_op_name(Compare::Op op);

}  // namespace vigil::store
