// On-disk formats of WAL segments and snapshot files: pure encoders and decoders (no I/O),
// shared by Wal and the fuzz targets. The layout is documented in storage/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "raft/types.h"

namespace vigil::storage {

inline constexpr std::string_view kSegmentMagic = "VIGILWAL";   // 8 bytes
inline constexpr std::string_view kSnapshotMagic = "VIGILSNP";  // 8 bytes
inline constexpr uint32_t kWalFormatVersion = 1;
inline constexpr uint32_t kSnapshotFormatVersion = 1;
// Segment header: magic, u32 version, u32 crc32c of the 12 bytes before it.
inline constexpr size_t kSegmentHeaderBytes = 16;
// Record header: u32 payload length, u8 type, u32 crc32c over type and payload.
inline constexpr size_t kRecordHeaderBytes = 9;

enum class RecordType : uint8_t {
  kEntry = 1,      // payload: raft Entry
  kHardState = 2,  // payload: raft HardState
  kSnapshot = 3,   // payload: SnapshotMeta of a snapshot file made durable before it
};

// One decoded record. SnapshotMeta is the snapshot marker.
using WalRecord = std::variant<raft::Entry, raft::HardState, raft::SnapshotMeta>;

struct DecodedRecord {
  uint64_t offset = 0;  // of the record header within the segment
  WalRecord record;
};

struct DecodedSegment {
  std::vector<DecodedRecord> records;
  // Bytes from the start of the segment through the last good record (or the header);
  // 0 when even the header is missing or damaged.
  uint64_t valid_bytes = 0;
  // Empty when the whole input decoded. Otherwise what stopped decoding at valid_bytes
  // (a partial or damaged record, or header, with nothing valid after it): a torn tail if
  // this is the last segment, corruption anywhere else. The caller decides.
  std::string tail_error;
};

// The segment header every segment starts with.
std::string encode_segment_header();
// Appends one framed record to `out`.
void append_record(std::string* out, const WalRecord& record);

// Decodes a whole segment. Fails with kCorruption ("offset N: ...") when the damage cannot
// be a torn tail: a damaged record followed by any valid record, a record whose CRC is
// good but whose payload is malformed, or a bad header followed by valid records. Other
// damage stops decoding and is reported in tail_error. Total on any input.
Result<DecodedSegment> decode_wal_records(std::string_view segment_bytes);

// Snapshot file: magic, u32 version, SnapshotMeta, u64 data length, data, u32 crc32c of
// everything before it. The prefix/suffix split lets the writer stream the data without
// copying it into one buffer.
std::string encode_snapshot_file_prefix(const raft::SnapshotMeta& meta, uint64_t data_size);
uint32_t snapshot_file_crc(std::string_view prefix, std::string_view data);
std::string encode_snapshot_file_suffix(uint32_t crc);
// Decodes and verifies a snapshot file (kCorruption with an offset on any defect).
Result<raft::Snapshot> decode_snapshot_file(std::string_view file);

}  // namespace vigil::storage
