// Fuzz target for the WAL segment decoder (and the snapshot file decoder): never crashes;
// the valid prefix it reports re-encodes byte for byte and decodes cleanly again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "storage/wal_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::storage;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto seg = decode_wal_records(in)) {
    CHECK(seg->valid_bytes <= in.size());
    CHECK(seg->tail_error.empty() == (seg->valid_bytes == in.size() && !in.empty()));
    if (seg->valid_bytes > 0) {
      std::string again = encode_segment_header();
      for (const DecodedRecord& r : seg->records) {
        CHECK(r.offset == again.size());
        append_record(&again, r.record);
      }
      CHECK(again == in.substr(0, seg->valid_bytes));
      auto clean = decode_wal_records(again);
      CHECK(clean.has_value() && clean->tail_error.empty());
      CHECK(clean->records.size() == seg->records.size());
    } else {
      CHECK(seg->records.empty());
    }
  }
  if (auto snap = decode_snapshot_file(in)) {
    const std::string prefix = encode_snapshot_file_prefix(snap->meta, snap->data->size());
    const std::string again =
        prefix + *snap->data + encode_snapshot_file_suffix(snapshot_file_crc(prefix, *snap->data));
    CHECK(again == in);
  }
  return 0;
}
