// WAL segment and snapshot file codecs, including the torn-tail vs corruption decision.
#include "storage/wal_format.h"

#include <type_traits>

#include "base/bytes.h"
#include "base/crc32c.h"
#include "raft/codec.h"

namespace vigil::storage {
namespace {

ErrorValue corruption(uint64_t offset, const std::string& what) {
  return err(Errc::kCorruption, "offset " + std::to_string(offset) + ": " + what);
}

uint32_t load_u32(std::string_view in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<uint8_t>(in[at + i])) << (8 * i);
  return v;
}

uint32_t record_crc(uint8_t type, std::string_view payload) {
  const char t = static_cast<char>(type);
  return crc32c_extend(crc32c_extend(0, &t, 1), payload.data(), payload.size());
}

bool known_type(uint8_t type) {
  return type >= static_cast<uint8_t>(RecordType::kEntry) &&
         type <= static_cast<uint8_t>(RecordType::kSnapshot);
}

// Why the record at `at` is not a complete record with a matching CRC, or "" if it is.
std::string frame_problem(std::string_view in, size_t at) {
  const size_t left = in.size() - at;
  if (left < kRecordHeaderBytes) {
    return "partial record header (" + std::to_string(left) + " of " +
           std::to_string(kRecordHeaderBytes) + " bytes)";
  }
  const uint32_t len = load_u32(in, at);
  const auto type = static_cast<uint8_t>(in[at + 4]);
  if (!known_type(type)) return "unknown record type " + std::to_string(type);
  if (len > left - kRecordHeaderBytes) {
    return "record length " + std::to_string(len) + " exceeds remaining " +
           std::to_string(left - kRecordHeaderBytes) + " bytes";
  }
  const uint32_t want = load_u32(in, at + 5);
  const uint32_t got = record_crc(type, in.substr(at + kRecordHeaderBytes, len));
  if (want != got) return "record crc mismatch";
  return "";
}

// Whether any complete, CRC-valid record starts anywhere in [from, end). A torn write
// leaves only a prefix of what was being written, so a valid record after damage proves
// the damage is not a torn tail. This may flag a torn record whose own payload embeds a
// valid record; that fails closed (open() refuses) rather than dropping data.
bool valid_record_after(std::string_view in, size_t from) {
  for (size_t at = from; at + kRecordHeaderBytes <= in.size(); ++at) {
    // Cheap filters first: most garbage offsets fail the type or length test.
    if (!known_type(static_cast<uint8_t>(in[at + 4]))) continue;
    if (load_u32(in, at) > in.size() - at - kRecordHeaderBytes) continue;
    if (frame_problem(in, at).empty()) return true;
  }
  return false;
}

std::string header_problem(std::string_view in) {
  if (in.size() < kSegmentHeaderBytes) {
    return "partial segment header (" + std::to_string(in.size()) + " of " +
           std::to_string(kSegmentHeaderBytes) + " bytes)";
  }
  if (in.substr(0, kSegmentMagic.size()) != kSegmentMagic) return "bad segment magic";
  if (load_u32(in, 12) != crc32c(in.substr(0, 12))) return "segment header crc mismatch";
  const uint32_t version = load_u32(in, 8);
  if (version != kWalFormatVersion) {
    return "unsupported segment version " + std::to_string(version);
  }
  return "";
}

Result<WalRecord> decode_payload(RecordType type, std::string_view payload) {
  ByteReader r(payload);
  WalRecord out;
  switch (type) {
    case RecordType::kEntry: {
      ASSIGN_OR_RETURN(out, raft::decode_entry(r));
      break;
    }
    case RecordType::kHardState: {
      ASSIGN_OR_RETURN(out, raft::decode_hard_state(r));
      break;
    }
    case RecordType::kSnapshot: {
      ASSIGN_OR_RETURN(out, raft::decode_snapshot_meta(r));
      break;
    }
  }
  if (r.remaining() != 0) {
    return err(Errc::kInvalidArgument,
               std::to_string(r.remaining()) + " trailing bytes in record payload");
  }
  return out;
}

}  // namespace

std::string encode_segment_header() {
  std::string out;
  ByteWriter w(&out);
  w.raw(kSegmentMagic);
  w.u32(kWalFormatVersion);
  w.u32(crc32c(out));
  return out;
}

void append_record(std::string* out, const WalRecord& record) {
  const size_t start = out->size();
  out->append(kRecordHeaderBytes, '\0');  // patched below once the payload is known
  ByteWriter w(out);
  RecordType type = RecordType::kEntry;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, raft::Entry>) {
          type = RecordType::kEntry;
          raft::encode_entry(w, v);
        } else if constexpr (std::is_same_v<T, raft::HardState>) {
          type = RecordType::kHardState;
          raft::encode_hard_state(w, v);
        } else {
          type = RecordType::kSnapshot;
          raft::encode_snapshot_meta(w, v);
        }
      },
      record);
  const std::string_view payload = std::string_view(*out).substr(start + kRecordHeaderBytes);
  const auto len = static_cast<uint32_t>(payload.size());
  const uint32_t crc = record_crc(static_cast<uint8_t>(type), payload);
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>(len >> (8 * i));
  (*out)[start + 4] = static_cast<char>(type);
  for (int i = 0; i < 4; ++i) (*out)[start + 5 + i] = static_cast<char>(crc >> (8 * i));
}

Result<DecodedSegment> decode_wal_records(std::string_view in) {
  DecodedSegment out;
  if (std::string problem = header_problem(in); !problem.empty()) {
    if (valid_record_after(in, 0)) return corruption(0, problem + ", followed by valid records");
    out.tail_error = "offset 0: " + problem;
    return out;
  }
  size_t at = kSegmentHeaderBytes;
  out.valid_bytes = at;
  while (at < in.size()) {
    if (std::string problem = frame_problem(in, at); !problem.empty()) {
      if (valid_record_after(in, at + 1)) {
        return corruption(at, problem + ", followed by valid records");
      }
      out.tail_error = "offset " + std::to_string(at) + ": " + problem;
      return out;
    }
    const uint32_t len = load_u32(in, at);
    const auto type = static_cast<RecordType>(in[at + 4]);
    auto record = decode_payload(type, in.substr(at + kRecordHeaderBytes, len));
    if (!record) {
      // The CRC matched, so these bytes are what was written: a bug or a foreign format,
      // never a torn write.
      return corruption(at, "malformed record with valid crc: " + record.error().message());
    }
    out.records.push_back(DecodedRecord{at, std::move(*record)});
    at += kRecordHeaderBytes + len;
    out.valid_bytes = at;
  }
  return out;
}

std::string encode_snapshot_file_prefix(const raft::SnapshotMeta& meta, uint64_t data_size) {
  std::string out;
  ByteWriter w(&out);
  w.raw(kSnapshotMagic);
  w.u32(kSnapshotFormatVersion);
  raft::encode_snapshot_meta(w, meta);
  w.u64(data_size);
  return out;
}

uint32_t snapshot_file_crc(std::string_view prefix, std::string_view data) {
  return crc32c_extend(crc32c(prefix), data.data(), data.size());
}

std::string encode_snapshot_file_suffix(uint32_t crc) {
  std::string out;
  ByteWriter w(&out);
  w.u32(crc);
  return out;
}

Result<raft::Snapshot> decode_snapshot_file(std::string_view in) {
  constexpr size_t kMinBytes = 8 + 4 + 4;  // magic, version, crc
  if (in.size() < kMinBytes) {
    return corruption(0, "snapshot file of " + std::to_string(in.size()) + " bytes is too short");
  }
  const size_t body = in.size() - 4;
  const uint32_t want = load_u32(in, body);
  if (want != crc32c(in.substr(0, body))) return corruption(body, "snapshot crc mismatch");
  if (in.substr(0, 8) != kSnapshotMagic) return corruption(0, "bad snapshot magic");
  ByteReader r(in.substr(0, body));
  r.raw(8);
  const uint32_t version = r.u32();
  if (version != kSnapshotFormatVersion) {
    return corruption(8, "unsupported snapshot version " + std::to_string(version));
  }
  raft::Snapshot snap;
  auto meta = raft::decode_snapshot_meta(r);
  if (!meta) return corruption(r.position(), meta.error().message());
  snap.meta = std::move(*meta);
  const size_t len_at = r.position();
  const uint64_t len = r.u64();
  if (!r.ok() || len != r.remaining()) {
    return corruption(len_at, "snapshot data length " + std::to_string(len) + " but " +
                                  std::to_string(r.remaining()) + " bytes remain");
  }
  snap.data = std::make_shared<const std::string>(r.raw(static_cast<size_t>(len)));
  return snap;
}

}  // namespace vigil::storage
