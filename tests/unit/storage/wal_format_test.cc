// Tests for the pure WAL record and snapshot file codecs, including torn vs corrupt.
#include "storage/wal_format.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"

namespace vigil::storage {
namespace {

raft::Entry entry(uint64_t term, uint64_t index, std::string data) {
  raft::Entry e;
  e.term = Term(term);
  e.index = LogIndex(index);
  e.data = std::move(data);
  return e;
}

// A segment of three records; `ends` receives each record's end offset.
std::string sample_segment(std::vector<size_t>* ends = nullptr) {
  std::string s = encode_segment_header();
  append_record(&s, entry(1, 1, "one"));
  if (ends) ends->push_back(s.size());
  append_record(&s, raft::HardState{Term(1), NodeId(2), LogIndex(1)});
  if (ends) ends->push_back(s.size());
  raft::SnapshotMeta meta;
  meta.index = LogIndex(1);
  meta.term = Term(1);
  meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  append_record(&s, meta);
  if (ends) ends->push_back(s.size());
  return s;
}

TEST(WalFormatTest, RecordsRoundTrip) {
  const std::string s = sample_segment();
  auto d = decode_wal_records(s);
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  EXPECT_TRUE(d->tail_error.empty());
  EXPECT_EQ(d->valid_bytes, s.size());
  ASSERT_EQ(d->records.size(), 3u);
  EXPECT_EQ(std::get<raft::Entry>(d->records[0].record), entry(1, 1, "one"));
  EXPECT_EQ(d->records[0].offset, kSegmentHeaderBytes);
  EXPECT_EQ(std::get<raft::HardState>(d->records[1].record).vote, NodeId(2));
  EXPECT_EQ(std::get<raft::SnapshotMeta>(d->records[2].record).conf.voters.size(), 3u);
}

TEST(WalFormatTest, EveryTruncationIsATornTailAtTheLastGoodRecord) {
  std::vector<size_t> ends;
  const std::string s = sample_segment(&ends);
  for (size_t n = 0; n < s.size(); ++n) {
    auto d = decode_wal_records(std::string_view(s).substr(0, n));
    ASSERT_TRUE(d.has_value()) << n << ": " << d.error().to_string();
    size_t want = n < kSegmentHeaderBytes ? 0 : kSegmentHeaderBytes;
    size_t records = 0;
    for (size_t e : ends) {
      if (e <= n) {
        want = e;
        ++records;
      }
    }
    EXPECT_EQ(d->valid_bytes, want) << n;
    EXPECT_EQ(d->records.size(), records) << n;
    EXPECT_EQ(d->tail_error.empty(), n == want && n >= kSegmentHeaderBytes) << n;
  }
}

TEST(WalFormatTest, DamageFollowedByValidRecordIsCorruption) {
  std::vector<size_t> ends;
  std::string s = sample_segment(&ends);
  s[kSegmentHeaderBytes + kRecordHeaderBytes + 2] ^= 0x40;  // inside the first payload
  auto d = decode_wal_records(s);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), Errc::kCorruption);
  EXPECT_EQ(d.error().message(), "offset 16: record crc mismatch, followed by valid records");
}

TEST(WalFormatTest, DamageInTheLastRecordIsATornTail) {
  std::vector<size_t> ends;
  std::string s = sample_segment(&ends);
  s[ends[1] + kRecordHeaderBytes + 3] ^= 0x01;
  auto d = decode_wal_records(s);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->valid_bytes, ends[1]);
  EXPECT_EQ(d->tail_error, "offset " + std::to_string(ends[1]) + ": record crc mismatch");
}

TEST(WalFormatTest, ZeroFilledTailIsTorn) {
  std::string s = sample_segment();
  const size_t good = s.size();
  s.append(4096, '\0');
  auto d = decode_wal_records(s);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->valid_bytes, good);
  EXPECT_NE(d->tail_error.find("unknown record type 0"), std::string::npos);
}

TEST(WalFormatTest, BadHeaderFollowedByRecordsIsCorruption) {
  std::string s = sample_segment();
  s[0] = 'X';
  auto d = decode_wal_records(s);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().message(), "offset 0: bad segment magic, followed by valid records");
  std::string v = sample_segment();
  v[8] = 9;  // version
  EXPECT_FALSE(decode_wal_records(v).has_value());
}

TEST(WalFormatTest, ValidCrcMalformedPayloadIsCorruption) {
  std::string s = encode_segment_header();
  // An entry record whose payload is 3 bytes: the CRC matches but it cannot decode.
  const std::string payload = "abc";
  const char type = 1;
  const uint32_t crc = crc32c_extend(crc32c_extend(0, &type, 1), payload.data(), payload.size());
  s += std::string("\x03\x00\x00\x00", 4);
  s += type;
  for (int i = 0; i < 4; ++i) s += static_cast<char>(crc >> (8 * i));
  s += payload;
  auto d = decode_wal_records(s);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), Errc::kCorruption);
  EXPECT_NE(d.error().message().find("offset 16: malformed record with valid crc: entry: term"),
            std::string::npos)
      << d.error().message();
}

TEST(WalFormatTest, SnapshotFileRoundTripAndDamage) {
  raft::SnapshotMeta meta;
  meta.index = LogIndex(10);
  meta.term = Term(3);
  meta.conf.voters = {NodeId(1)};
  const std::string data = "application state";
  const std::string prefix = encode_snapshot_file_prefix(meta, data.size());
  const std::string file =
      prefix + data + encode_snapshot_file_suffix(snapshot_file_crc(prefix, data));
  auto snap = decode_snapshot_file(file);
  ASSERT_TRUE(snap.has_value()) << snap.error().to_string();
  EXPECT_EQ(snap->meta, meta);
  EXPECT_EQ(*snap->data, data);
  for (size_t n = 0; n < file.size(); ++n) {
    EXPECT_FALSE(decode_snapshot_file(std::string_view(file).substr(0, n)).has_value()) << n;
    std::string bad = file;
    bad[n] ^= 0x10;
    auto r = decode_snapshot_file(bad);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code(), Errc::kCorruption);
  }
}

}  // namespace
}  // namespace vigil::storage
