// Size limits of replicated store requests, shared by the legacy KvMap and the MVCC store.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil::store {

inline constexpr size_t kMaxKeyBytes = 4096;
inline constexpr size_t kMaxValueBytes = 1 << 20;
// Compares and ops per branch of one transaction (etcd's default --max-txn-ops is 128).
inline constexpr size_t kMaxTxnCompares = 128;
inline constexpr size_t kMaxTxnOps = 128;
// Lease TTLs in seconds: at least 1 s (the issue), at most one year.
inline constexpr int64_t kMinLeaseTtlS = 1;
inline constexpr int64_t kMaxLeaseTtlS = 365LL * 24 * 3600;
// Leases alive at once; a grant beyond it fails with kResourceExhausted.
inline constexpr size_t kMaxLeases = 1 << 20;

}  // namespace vigil::store
