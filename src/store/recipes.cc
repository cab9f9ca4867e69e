// Queue recipes: the holder is the oldest key (lowest create_revision) under a prefix.
#include "store/recipes.h"

#include "store/keys.h"

namespace vigil::store {

std::string queue_prefix(std::string_view base, std::string_view name) {
  std::string p(base);
  p += name;
  p += '/';
  return p;
}

std::string queue_key(std::string_view prefix, LeaseId lease) {
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (int shift = 60; shift >= 0; shift -= 4) hex += kHex[(lease.value() >> shift) & 15];
  return std::string(prefix) + hex;
}

Status check_queue_name(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return err(Errc::kInvalidArgument, "name must be 1 to 128 bytes");
  }
  for (char c : name) {
    if (c == '/' || c < 0x21 || c > 0x7e) {
      return err(Errc::kInvalidArgument,
                 "name '" + std::string(name) + "' may hold printable ASCII but no '/' or space");
    }
  }
  return Status();
}

Result<QueueView> queue_view(const MvccStore& store, std::string_view prefix) {
  ASSIGN_OR_RETURN(RangeResult r, store.range(prefix, prefix_end(prefix)));
  QueueView v;
  v.waiting = r.kvs.size();
  for (auto& kv : r.kvs) {
    if (!v.holder || kv.create_revision < v.holder->create_revision) v.holder = std::move(kv);
  }
  return v;
}

Txn join_queue_txn(const std::string& key, const std::string& value, LeaseId lease) {
  Txn t;
  Compare c;
  c.key = key;
  c.target = Compare::Target::kCreate;
  c.op = Compare::Op::kEqual;
  c.number = 0;
  t.compares.push_back(c);
  t.success.push_back(Put{key, value, lease, false, false});
  RangeOp get;
  get.key = key;
  t.failure.push_back(get);
  return t;
}

}  // namespace vigil::store
