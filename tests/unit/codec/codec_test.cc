// Tests for the Raft binary codec: round trips, truncations, bad enums, hostile lengths.
#include "raft/codec.h"

#include <gtest/gtest.h>

namespace vigil::raft {
namespace {

Entry make_entry(uint64_t term, uint64_t index, EntryType type, std::string data) {
  Entry e;
  e.term = Term(term);
  e.index = LogIndex(index);
  e.type = type;
  e.data = std::move(data);
  return e;
}

ConfState make_conf() {
  ConfState cs;
  cs.voters = {NodeId(1), NodeId(2), NodeId(5)};
  cs.learners = {NodeId(3), NodeId(9)};
  return cs;
}

Message full_message() {
  Message m;
  m.type = MsgType::kSnapshot;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = Term(7);
  m.log_term = Term(6);
  m.index = LogIndex(100);
  m.entries = {make_entry(6, 101, EntryType::kNormal, "hello"),
               make_entry(7, 102, EntryType::kConfChange,
                          encode_conf_change(
                              ConfChange{ConfChangeType::kAddLearner, NodeId(4), "10.0.0.4:7000"})),
               make_entry(7, 103, EntryType::kNormal, "")};
  m.commit = LogIndex(99);
  m.reject = true;
  m.reject_hint = LogIndex(42);
  Snapshot snap;
  snap.meta.index = LogIndex(90);
  snap.meta.term = Term(5);
  snap.meta.conf = make_conf();
  snap.data = std::make_shared<const std::string>(std::string("state\0machine", 13));
  m.snapshot = snap;
  m.context = "ctx";
  m.lease_tick = 0xdeadbeefcafeULL;
  m.hold_sent = 0x1122334455ULL;
  m.hold_granted = 0x1122330000ULL;
  return m;
}

std::vector<Message> sample_messages() {
  std::vector<Message> out;
  out.push_back(Message{});
  out.push_back(full_message());
  Message no_data = full_message();
  no_data.snapshot->data = nullptr;
  out.push_back(no_data);
  Message empty_data = full_message();
  empty_data.snapshot->data = std::make_shared<const std::string>();
  out.push_back(empty_data);
  for (int t = 0; t < static_cast<int>(MsgType::kCount); ++t) {
    Message m;
    m.type = static_cast<MsgType>(t);
    m.term = Term(~0ULL);
    m.index = LogIndex(~0ULL);
    out.push_back(m);
  }
  return out;
}

TEST(CodecTest, MessageRoundTripsExactly) {
  for (const Message& m : sample_messages()) {
    const std::string bytes = encode_message(m);
    auto back = decode_message(bytes);
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    EXPECT_TRUE(message_equal(m, *back));
    EXPECT_EQ(encode_message(*back), bytes);  // canonical
  }
}

TEST(CodecTest, NullAndEmptySnapshotDataStayDistinct) {
  Message a = full_message();
  a.snapshot->data = nullptr;
  Message b = full_message();
  b.snapshot->data = std::make_shared<const std::string>();
  EXPECT_NE(encode_message(a), encode_message(b));
  EXPECT_FALSE(message_equal(a, b));
}

TEST(CodecTest, EveryTruncationOfEveryMessageFails) {
  for (const Message& m : sample_messages()) {
    const std::string bytes = encode_message(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto r = decode_message(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(r.has_value()) << "prefix " << n << " of " << bytes.size();
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
      EXPECT_NE(r.error().message().find("at offset"), std::string::npos) << r.error().message();
    }
  }
}

TEST(CodecTest, TrailingBytesRejected) {
  std::string bytes = encode_message(full_message());
  bytes.push_back('x');
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("1 trailing bytes"), std::string::npos);
}

TEST(CodecTest, UnknownVersionRejected) {
  std::string bytes = encode_message(Message{});
  bytes[0] = 3;
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "message: version: unsupported version 3 (expected 1 or 2) at offset 0");
}

// A version-1 message (from a node built before holds were carried) has no hold fields: it
// decodes with both 0, and everything else intact.
TEST(CodecTest, VersionOneMessageStillDecodes) {
  for (const Message& m : sample_messages()) {
    std::string v2 = encode_message(m);
    ASSERT_EQ(v2[0], 2);
    const size_t hold_at = 2 + 8 * 8;  // after lease_tick
    std::string v1 = v2.substr(0, hold_at) + v2.substr(hold_at + 16);
    v1[0] = 1;
    auto back = decode_message(v1);
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    Message want = m;
    want.hold_sent = 0;
    want.hold_granted = 0;
    EXPECT_TRUE(message_equal(want, *back));
  }
}

TEST(CodecTest, BadMessageTypeRejected) {
  std::string bytes = encode_message(Message{});
  bytes[1] = static_cast<char>(MsgType::kCount);
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "message: type: unknown message type 14 at offset 1");
}

// Offsets of the message layout (see codec.cc): version, type, 10 × u64, flags, count.
constexpr size_t kFlagsOffset = 2 + 10 * 8;
constexpr size_t kEntriesOffset = kFlagsOffset + 1 + 4;

TEST(CodecTest, BadFlagsRejected) {
  for (uint8_t flags : {uint8_t{0x08}, uint8_t{0x80}, uint8_t{0x04}}) {
    std::string bytes = encode_message(Message{});
    bytes[kFlagsOffset] = static_cast<char>(flags);
    auto r = decode_message(bytes);
    ASSERT_FALSE(r.has_value()) << int(flags);
    EXPECT_NE(r.error().message().find("message: flags: invalid flags"), std::string::npos);
  }
}

TEST(CodecTest, BadEntryTypeNamesTheEntry) {
  Message m;
  m.entries = {make_entry(1, 1, EntryType::kNormal, "a"),
               make_entry(1, 2, EntryType::kNormal, "b")};
  std::string bytes = encode_message(m);
  const size_t second_type = kEntriesOffset + (8 + 8 + 1 + 4 + 1) + 16;
  bytes[second_type] = 2;
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "message: entries[1].type: unknown entry type 2 at offset " +
                                     std::to_string(second_type));
}

TEST(CodecTest, HostileDataLengthNamesFieldAndOffset) {
  Message m;
  m.entries = {make_entry(1, 1, EntryType::kNormal, ""), make_entry(1, 2, EntryType::kNormal, "")};
  std::string bytes = encode_message(m);
  const size_t len_at = kEntriesOffset + 21 + 17;
  for (int i = 0; i < 4; ++i) bytes[len_at + i] = '\xff';
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "message: entries[1].data: length 4294967295 exceeds remaining " +
                                     std::to_string(bytes.size() - len_at - 4) +
                                     " bytes at offset " + std::to_string(len_at));
}

TEST(CodecTest, HostileEntryCountDoesNotAllocate) {
  std::string bytes = encode_message(Message{});
  for (int i = 0; i < 4; ++i) bytes[kFlagsOffset + 1 + i] = '\xff';
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("message: entries: count 4294967295 exceeds limit"),
            std::string::npos);
  // Within the limit but more than the bytes could hold.
  bytes[kFlagsOffset + 1] = 0;
  bytes[kFlagsOffset + 2] = 1;
  bytes[kFlagsOffset + 3] = 0;
  bytes[kFlagsOffset + 4] = 0;
  r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("count 256 needs at least"), std::string::npos);
}

TEST(CodecTest, HostileSnapshotDataLength) {
  Message m = full_message();
  std::string bytes = encode_message(m);
  const size_t len_at = bytes.size() - m.snapshot->data->size() - 8;
  bytes[len_at + 7] = '\x7f';
  auto r = decode_message(bytes);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("message: snapshot.data: length"), std::string::npos)
      << r.error().message();
}

TEST(CodecTest, EntryHardStateSnapshotMetaRoundTrip) {
  std::string out;
  ByteWriter w(&out);
  const Entry e = make_entry(3, 4, EntryType::kConfChange, "xyz");
  const HardState hs{Term(9), NodeId(2), LogIndex(77)};
  const SnapshotMeta meta{LogIndex(5), Term(2), make_conf()};
  const ConfChange cc{ConfChangeType::kRemoveNode, NodeId(3), "bye"};
  encode_entry(w, e);
  encode_hard_state(w, hs);
  encode_snapshot_meta(w, meta);
  encode_conf_change(w, cc);
  ByteReader r(out);
  EXPECT_EQ(decode_entry(r).value(), e);
  EXPECT_EQ(decode_hard_state(r).value(), hs);
  EXPECT_EQ(decode_snapshot_meta(r).value(), meta);
  EXPECT_EQ(decode_conf_change(r).value(), cc);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(CodecTest, ConfChangeRoundTripAndTruncations) {
  for (int t = 0; t < 3; ++t) {
    const ConfChange cc{static_cast<ConfChangeType>(t), NodeId(7), "addr"};
    const std::string bytes = encode_conf_change(cc);
    auto back = decode_conf_change(std::string_view(bytes));
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    EXPECT_EQ(*back, cc);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode_conf_change(std::string_view(bytes).substr(0, n)).has_value());
    }
  }
  std::string bad = encode_conf_change(ConfChange{});
  bad[1] = 3;
  auto r = decode_conf_change(std::string_view(bad));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "conf_change: type: unknown conf change type 3 at offset 1");
}

TEST(CodecTest, StandaloneTruncationsFail) {
  std::string out;
  ByteWriter w(&out);
  encode_snapshot_meta(w, SnapshotMeta{LogIndex(5), Term(2), make_conf()});
  for (size_t n = 0; n < out.size(); ++n) {
    ByteReader r(std::string_view(out).substr(0, n));
    EXPECT_FALSE(decode_snapshot_meta(r).has_value()) << n;
  }
  std::string e;
  ByteWriter we(&e);
  encode_entry(we, make_entry(1, 2, EntryType::kNormal, "data"));
  for (size_t n = 0; n < e.size(); ++n) {
    ByteReader r(std::string_view(e).substr(0, n));
    EXPECT_FALSE(decode_entry(r).has_value()) << n;
  }
  std::string h;
  ByteWriter wh(&h);
  encode_hard_state(wh, HardState{Term(1), NodeId(1), LogIndex(1)});
  for (size_t n = 0; n < h.size(); ++n) {
    ByteReader r(std::string_view(h).substr(0, n));
    EXPECT_FALSE(decode_hard_state(r).has_value()) << n;
  }
}

TEST(CodecTest, ConfStateInvariantsChecked) {
  auto decode = [](const ConfState& cs) {
    std::string out;
    ByteWriter w(&out);
    encode_conf_state(w, cs);
    ByteReader r(out);
    return decode_conf_state(r);
  };
  EXPECT_TRUE(decode(make_conf()).has_value());
  ConfState unsorted;
  unsorted.voters = {NodeId(2), NodeId(1)};
  auto r = decode(unsorted);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "conf_state: voters[1]: node ids not strictly ascending at offset 12");
  ConfState zero;
  zero.learners = {NodeId(0)};
  EXPECT_FALSE(decode(zero).has_value());
  ConfState overlap;
  overlap.voters = {NodeId(1), NodeId(2)};
  overlap.learners = {NodeId(2)};
  r = decode(overlap);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("node 2 is also a voter"), std::string::npos);
}

TEST(CodecTest, EveryFlippedByteEitherFailsOrRoundTrips) {
  const std::string bytes = encode_message(full_message());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string mutated = bytes;
      mutated[i] = static_cast<char>(mutated[i] ^ x);
      auto r = decode_message(mutated);
      if (r.has_value()) {
        EXPECT_EQ(encode_message(*r), mutated) << i;
      }
    }
  }
}

}  // namespace
}  // namespace vigil::raft
