// MvccStore: the replicated multi-version key-value state machine (revisions, leases, txn,
// compaction, history for watches, snapshots). Pure: no I/O, no clock, no threads.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "store/request.h"

namespace vigil::store {

// A key as of some revision (etcd's mvccpb.KeyValue).
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the revision that created the key (since its last delete)
  int64_t mod_revision = 0;     // the revision of the last change
  int64_t version = 0;          // changes since creation: 1 after the create, 0 once deleted
  LeaseId lease;
  bool operator==(const KeyValue&) const = default;
};

// One change of one key.
struct Event {
  enum class Type : uint8_t { kPut = 0, kDelete = 1 };
  Type type = Type::kPut;
  // kPut: the key as written. kDelete: key and mod_revision (the deleting revision) only.
  KeyValue kv;
  // The key just before this change, if it existed (filled by the store; WatchHub strips it
  // for watchers that did not ask).
  std::optional<KeyValue> prev_kv;
  bool operator==(const Event&) const = default;
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // key order; empty with count_only
  int64_t count = 0;          // keys in the range, regardless of limit
  bool more = false;          // the limit cut the result
  int64_t revision = 0;       // the revision read (for a read in a txn: the txn's revision)
  bool operator==(const RangeResult&) const = default;
};
struct PutResult {
  std::optional<KeyValue> prev_kv;  // with Put::prev_kv, if the key existed
  bool operator==(const PutResult&) const = default;
};
struct DeleteResult {
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;  // with DeleteRange::prev_kv, key order
  bool operator==(const DeleteResult&) const = default;
};
using OpResult = std::variant<RangeResult, PutResult, DeleteResult>;
struct TxnResult {
  bool succeeded = false;           // whether every compare held (success branch ran)
  std::vector<OpResult> responses;  // one per op of the branch that ran
  bool operator==(const TxnResult&) const = default;
};
struct LeaseGrantResult {
  LeaseId id;
  int64_t ttl_s = 0;
  bool operator==(const LeaseGrantResult&) const = default;
};
struct LeaseRevokeResult {
  int64_t deleted = 0;  // keys deleted with the lease
  bool operator==(const LeaseRevokeResult&) const = default;
};
struct CompactResult {
  int64_t compact_revision = 0;
  bool operator==(const CompactResult&) const = default;
};
using ResultBody = std::variant<std::monostate, PutResult, DeleteResult, TxnResult,
                                LeaseGrantResult, LeaseRevokeResult, CompactResult>;

// What apply() returns for one request. A failed request changes nothing but the applied
// index; its status says why (the same on every replica).
struct Response {
  NodeId origin;  // copied from the request, to find the waiting client
  uint64_t request_id = 0;
  LogIndex index;             // the Raft index applied
  Status status;              // kInvalidArgument, kNotFound (lease), kAlreadyExists, kOutOfRange...
  int64_t revision = 0;       // the store's revision after the request (the write's, if it wrote)
  ResultBody result;          // monostate on error
  std::vector<Event> events;  // the changes of this revision in key order, for WatchHub
};

// A lease as the store knows it (the deadline is the leader's LeaseTracker's business).
struct LeaseInfo {
  LeaseId id;
  int64_t ttl_s = 0;              // the granted TTL
  std::vector<std::string> keys;  // attached keys, sorted (empty from leases())
  bool operator==(const LeaseInfo&) const = default;
};

// Changes read back from the retained history (watch replay).
struct History {
  std::vector<Event> events;  // ascending revision, key order within a revision
  int64_t next_revision = 0;  // where the next read should start
};

// The replicated store of DESIGN.md "The store", with etcd's mvcc semantics: every write
// request gets the next revision (shared by all changes of a txn; at most one change per key
// per revision); version restarts at 1 when a deleted key is created again, with the new
// revision as create_revision. History is kept from compact_revision() on: a read at any
// revision in [compact_revision(), revision()] sees exactly the state at that revision.
//
// Owned by the node's event loop; single-threaded; deterministic: replicas that applied the
// same entries have equal serialize() bytes. Cores never throw: errors come back in
// Response::status or as Result errors.
class MvccStore {
 public:
  MvccStore() = default;
  // Not copyable (changes_ points into keys_); move keeps those pointers valid. A copy for
  // a test is serialize() + restore().
  MvccStore(const MvccStore&) = delete;
  MvccStore& operator=(const MvccStore&) = delete;
  MvccStore(MvccStore&&) = default;
  MvccStore& operator=(MvccStore&&) = default;

  // Applies one committed request at Raft index `index` (> applied(); an older index is
  // answered with kAborted and changes nothing, so a replay after a snapshot is harmless).
  Response apply(LogIndex index, const Request& r);
  // Marks an index applied without a request (Raft no-op and membership entries).
  void apply_noop(LogIndex index);
  LogIndex applied() const { return applied_; }

  // Reads [key, range_end) at `revision` (0 = current). limit 0 = no limit.
  // Errors: kOutOfRange when the revision is compacted (< compact_revision()) or in the
  // future (> revision()); kInvalidArgument for a bad range, negative revision or limit.
  Result<RangeResult> range(std::string_view key, std::string_view range_end, int64_t revision = 0,
                            int64_t limit = 0, bool keys_only = false,
                            bool count_only = false) const;
  Result<RangeResult> range(const RangeOp& op) const;

  // Drops history below `revision`: every change superseded at or before it, and tombstones
  // at or before it. apply(Compact) calls this; calling it outside the log makes this
  // replica differ from the others (tests only). Errors: kOutOfRange if revision <=
  // compact_revision() or > revision().
  Status compact(int64_t revision);

  int64_t revision() const { return revision_; }
  int64_t compact_revision() const { return compact_revision_; }

  // The granted TTL and attached keys of a lease. Errors: kNotFound.
  Result<LeaseInfo> lease_ttl(LeaseId id) const;
  // Every lease (without keys), by id: what a LeaseTracker is reset from.
  std::vector<LeaseInfo> leases() const;

  // Changes to [key, range_end) from revision `from` (>= 1) on, whole revisions, stopping
  // after the revision that reaches max_events. Errors: kOutOfRange if from <=
  // compact_revision() (the history is gone: the watcher must resync).
  Result<History> history(std::string_view key, std::string_view range_end, int64_t from,
                          size_t max_events, bool prev_kv) const;

  // The whole state with a CRC-32C (format in README.md); equal bytes on replicas at the
  // same index. Watchers are not part of it. Written into `buffer`'s memory (cleared
  // first; grown if too small): a caller can size it and fault its pages in beforehand.
  // Without one, the result is sized exactly (serialized_size()) before it is written.
  std::string serialize(std::string buffer = {}) const;
  // The exact size serialize() returns now; O(keys + versions), no copying.
  size_t serialized_size() const;
  // Replaces the whole state; "" is the empty store. Errors: kCorruption naming the offset
  // or the broken rule; the state is unchanged then.
  Status restore(std::string_view data);

  // Keys that exist at the current revision.
  size_t key_count() const { return live_keys_; }
  // Versions retained (live, superseded and tombstones): what compaction bounds.
  size_t retained_versions_for_test() const;

 private:
  // One version of a key. A tombstone marks a delete (create, version 0, no lease, no value).
  struct Rec {
    int64_t mod = 0;
    int64_t create = 0;
    int64_t version = 0;
    LeaseId lease;
    bool tombstone = false;
    std::string value;
  };
  using Recs = std::vector<Rec>;  // ascending mod
  struct Lease {
    int64_t ttl_s = 0;
    LogIndex refreshed;  // index of the grant or the last keep-alive (see LeaseExpire)
    std::set<std::string, std::less<>> keys;
  };
  // The changes of one write request, at revision `rev`.
  struct Write {
    int64_t rev = 0;
    std::vector<Event> events;
  };

  static const Rec* visible(const Recs& recs, int64_t rev);
  static KeyValue to_kv(std::string_view key, const Rec& r);
  Status check_read_revision(int64_t revision) const;
  template <class F>
  void for_each_key(std::string_view key, std::string_view range_end, F&& f) const;
  RangeResult read(const RangeOp& op, int64_t at) const;
  bool holds(const Compare& c) const;

  Status check_put(const Put& p) const;
  Status check_ops(const std::vector<TxnOp>& ops) const;
  PutResult do_put(Write& w, const Put& p);
  bool do_delete_key(Write& w, const std::string& key, KeyValue* prev);
  DeleteResult do_delete(Write& w, const DeleteRange& d);
  void finish(Write& w, Response* resp);

  Response apply_txn(Write& w, const Txn& t, Response resp);
  Response apply_grant(const LeaseGrant& g, Response resp);
  Response apply_revoke(Write& w, const LeaseRevoke& v, Response resp);

  std::map<std::string, Recs, std::less<>> keys_;
  // Keys changed at each retained revision (> compact_revision_), sorted. The views point
  // into keys_'s node keys, which outlive them: a key leaves keys_ only when compaction
  // drops all its versions, and its revisions leave changes_ first.
  // One entry per changed key per revision, in (revision, key) order: 24 bytes a change,
  // where a map of vectors cost ~100. Appended at the back, compacted from the front.
  struct Change {
    int64_t rev = 0;
    std::string_view key;
  };
  std::deque<Change> changes_;
  // The first change at or after `rev`.
  std::deque<Change>::const_iterator changes_from(int64_t rev) const;
  std::map<LeaseId, Lease> leases_;
  int64_t revision_ = 0;
  int64_t compact_revision_ = 0;
  LeaseId next_lease_id_{1};
  LogIndex applied_;
  size_t live_keys_ = 0;
};

}  // namespace vigil::store
