// Fuzz target for the store's request codec and snapshot format: decoding never crashes;
// whatever decodes re-encodes to the same bytes (canonical) and applies without crashing;
// whatever restores as a snapshot serializes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "store/keys.h"
#include "store/mvcc.h"
#include "store/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  using namespace vigil::store;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto r = decode_request(in)) {
    const std::string again = encode_request(*r);
    CHECK(again == in);
    auto r2 = decode_request(again);
    CHECK(r2.has_value() && *r2 == *r);
    // Apply to a small store with a lease and a few keys: errors are fine, crashes are not,
    // and two replicas stay identical.
    MvccStore a;
    MvccStore b;
    for (MvccStore* s : {&a, &b}) {
      (void)s->apply(LogIndex(1), Request{NodeId(1), 1, LeaseGrant{LeaseId(1), 5}});
      (void)s->apply(LogIndex(2), Request{NodeId(1), 2, Put{"a", "1", LeaseId(1)}});
      (void)s->apply(LogIndex(3), Request{NodeId(1), 3, Put{"b", "2"}});
    }
    Response ra = a.apply(LogIndex(4), *r);
    Response rb = b.apply(LogIndex(4), *r);
    CHECK(ra.events == rb.events);
    CHECK(a.serialize() == b.serialize());
  }

  MvccStore s;
  if (s.restore(in).ok() && !in.empty()) CHECK(s.serialize() == in);
  // The same bytes as a snapshot body behind a valid header, so mutations get past the
  // checksum and reach the structural checks of restore().
  std::string framed;
  ByteWriter w(&framed);
  w.u32(0x564d5631);  // "VMV1", MvccStore's snapshot magic
  w.u32(crc32c(in));
  w.raw(in);
  MvccStore t;
  if (t.restore(framed).ok()) {
    CHECK(t.serialize() == framed);
    // A restored store must stay usable: reads, history, compaction, a write.
    (void)t.range("", kRangeAll, 0);
    (void)t.history("", kRangeAll, t.compact_revision() + 1, 0, true);
    (void)t.apply(t.applied() + 1, Request{NodeId(1), 1, Put{"a", "x"}});
    if (t.revision() > t.compact_revision()) CHECK(t.compact(t.revision()).ok());
    CHECK(t.retained_versions_for_test() == t.key_count());
  }
  return 0;
}
