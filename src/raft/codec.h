// Versioned little-endian binary codec for the Raft value types (wire and WAL payloads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "raft/types.h"

namespace vigil::raft {

// Format version written as the first byte of every standalone encoding
// (encode_message, encode_conf_change). A decoder rejects any other version, so a format
// change bumps this and teaches the decoder both.
inline constexpr uint8_t kCodecVersion = 1;
// Messages are written in version 2 (hold_sent and hold_granted after lease_tick);
// decode_message still reads version 1 (both 0).
inline constexpr uint8_t kMessageVersion = 2;

// Limits a decoder enforces before it allocates anything (STYLE.md principle 5).
inline constexpr uint32_t kMaxEntriesPerMessage = 1u << 20;
inline constexpr uint32_t kMaxConfNodes = 1u << 16;

// Decoders are pure and total: on any input they return a value or an error, never crash,
// never allocate more than the input could describe, and reject unknown enum values,
// non-canonical flags and trailing bytes. Errors are Errc::kInvalidArgument with a
// message naming the field and byte offset, e.g.
//   "message: entries[3].data: length 4294967295 exceeds remaining 12 bytes at offset 57".
// Callers that read stored data (the WAL) re-label them as kCorruption.
//
// Encodings are canonical: decode(x) succeeding implies encode(decode(x)) == x.

// --- Building blocks over a ByteWriter/ByteReader, without a version byte (the enclosing
// --- format carries one). Offsets in errors are ByteReader::position() values.

void encode_entry(ByteWriter& w, const Entry& e);
Result<Entry> decode_entry(ByteReader& r);

void encode_hard_state(ByteWriter& w, const HardState& hs);
Result<HardState> decode_hard_state(ByteReader& r);

// ConfState voters and learners must each be strictly ascending, free of NodeId 0 and
// disjoint from each other (the invariant types.h documents); the decoder checks this.
void encode_conf_state(ByteWriter& w, const ConfState& cs);
Result<ConfState> decode_conf_state(ByteReader& r);

void encode_snapshot_meta(ByteWriter& w, const SnapshotMeta& meta);
Result<SnapshotMeta> decode_snapshot_meta(ByteReader& r);

void encode_conf_change(ByteWriter& w, const ConfChange& cc);
Result<ConfChange> decode_conf_change(ByteReader& r);

// --- Standalone encodings: version byte, then the value, nothing after it.

// ConfChange as carried in the data of a kConfChange entry.
std::string encode_conf_change(const ConfChange& cc);
Result<ConfChange> decode_conf_change(std::string_view in);

// A whole Message including its entries and optional snapshot (with data). A snapshot
// whose data pointer is null encodes differently from one with empty data, so the round
// trip is exact.
std::string encode_message(const Message& m);
Result<Message> decode_message(std::string_view in);

// Deep equality (Snapshot compares data by value; Message has no operator==).
bool snapshot_equal(const Snapshot& a, const Snapshot& b);
bool message_equal(const Message& a, const Message& b);

}  // namespace vigil::raft
