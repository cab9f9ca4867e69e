// Coordination recipes on the store (pure): a queue of keys under a prefix ordered by
// create_revision, which is what elections and locks are (etcd's concurrency recipes).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/mvcc.h"
#include "store/request.h"

namespace vigil::store {

// Where elections and locks keep their keys. Under /vigil/: only the server writes them.
inline constexpr std::string_view kElectionPrefix = "/vigil/election/";
inline constexpr std::string_view kLockPrefix = "/vigil/lock/";

// The queue prefix of election or lock `name` ("/vigil/election/NAME/").
std::string queue_prefix(std::string_view base, std::string_view name);
// A candidate's key in the queue: the prefix and its lease id in hex (one per lease).
std::string queue_key(std::string_view prefix, LeaseId lease);

// Whether `name` is a valid election or lock name: 1..128 bytes, no '/', printable ASCII.
Status check_queue_name(std::string_view name);

struct QueueView {
  std::optional<KeyValue> holder;  // the key with the lowest create_revision
  size_t waiting = 0;              // keys in the queue, holder included
};

// The queue as of the store's current revision.
Result<QueueView> queue_view(const MvccStore& store, std::string_view prefix);

// The transaction that joins the queue: create `key` with `value` under `lease` if it does
// not exist; otherwise read it (joining again with the same lease is idempotent).
Txn join_queue_txn(const std::string& key, const std::string& value, LeaseId lease);

}  // namespace vigil::store
