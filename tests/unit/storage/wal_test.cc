// Tests for Wal over MemEnv (crashes, tears, corruption) and PosixEnv (a real directory).
#include "storage/wal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <ostream>

#include "raft/codec.h"
#include "storage/wal_format.h"

namespace vigil::raft {
// Readable failure output for entry vectors.
void PrintTo(const Entry& e, std::ostream* os) {
  *os << "{" << e.index.v << "@t" << e.term.v << " " << e.data.size() << "B}";
}
void PrintTo(const HardState& h, std::ostream* os) {
  *os << "{term " << h.term.v << " vote " << h.vote.v << " commit " << h.commit.v << "}";
}
}  // namespace vigil::raft

namespace vigil::storage {
namespace {

using raft::Entry;
using raft::HardState;

Entry entry(uint64_t term, uint64_t index, std::string data = "") {
  Entry e;
  e.term = Term(term);
  e.index = LogIndex(index);
  e.data = data.empty() ? "entry-" + std::to_string(index) + "-t" + std::to_string(term) : data;
  return e;
}

std::vector<Entry> entries(uint64_t term, uint64_t lo, uint64_t hi) {
  std::vector<Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(entry(term, i));
  return out;
}

HardState hs(uint64_t term, uint64_t vote, uint64_t commit) {
  return HardState{Term(term), NodeId(vote), LogIndex(commit)};
}

raft::Snapshot snapshot(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot s;
  s.meta.index = LogIndex(index);
  s.meta.term = Term(term);
  s.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  s.data = std::make_shared<const std::string>(std::move(data));
  return s;
}

class WalTest : public ::testing::Test {
 protected:
  Wal::Options options(uint64_t segment_bytes = 64 << 20) {
    Wal::Options o;
    o.dir = dir_;
    o.segment_bytes = segment_bytes;
    return o;
  }
  std::unique_ptr<Wal> open_ok(Env& env, const Wal::Options& o, Wal::Recovered* rec) {
    auto w = Wal::open(env, o, rec);
    EXPECT_TRUE(w.has_value()) << w.error().to_string();
    return w.has_value() ? std::move(*w) : nullptr;
  }
  std::unique_ptr<Wal> open_ok(Wal::Recovered* rec, uint64_t segment_bytes = 64 << 20) {
    return open_ok(env_, options(segment_bytes), rec);
  }
  std::string seg(const Wal& wal, size_t i) const { return dir_ + "/" + wal.segment_names()[i]; }

  MemEnv env_;
  std::string dir_ = "/data/wal";
};

TEST_F(WalTest, NewDirectoryRecoversNothing) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal);
  EXPECT_TRUE(rec.hard_state.empty());
  EXPECT_TRUE(rec.snapshot.empty());
  EXPECT_TRUE(rec.entries.empty());
  EXPECT_TRUE(rec.torn_tail_note.empty());
  EXPECT_EQ(wal->segment_names(),
            std::vector<std::string>{"0000000000000001-0000000000000001.wal"});
  // The segment and its directory entry are durable from the start.
  SplitMix64 rng(1);
  env_.crash_for_test(rng, false);
  EXPECT_TRUE(env_.exists(seg(*wal, 0)));
}

TEST_F(WalTest, RoundTripAndRestart) {
  {
    Wal::Recovered rec;
    auto wal = open_ok(&rec);
    ASSERT_TRUE(wal->append(entries(1, 1, 3), hs(1, 1, 0)).ok());
    ASSERT_TRUE(wal->append(entries(1, 4, 5), hs(1, 1, 3)).ok());
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_EQ(wal->last_index(), LogIndex(5));
  }
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  EXPECT_EQ(rec.entries, entries(1, 1, 5));
  EXPECT_EQ(rec.hard_state, hs(1, 1, 3));
  EXPECT_TRUE(rec.torn_tail_note.empty());
  // Appending continues in the same segment after a restart.
  ASSERT_TRUE(wal->append(entries(2, 6, 6), hs(2, 2, 5)).ok());
  ASSERT_TRUE(wal->sync().ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.entries.size(), 6u);
  EXPECT_EQ(rec.entries.back(), entry(2, 6));
  EXPECT_EQ(rec.hard_state, hs(2, 2, 5));
  EXPECT_EQ(wal->segment_names().size(), 1u);
}

TEST_F(WalTest, GroupCommitIsOneFdatasync) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  const uint64_t before = env_.file_syncs_for_test();
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(wal->append({entry(1, i)}, hs(1, 1, i - 1)).ok());
  EXPECT_EQ(env_.file_syncs_for_test(), before);  // append is buffered
  ASSERT_TRUE(wal->sync().ok());
  EXPECT_EQ(env_.file_syncs_for_test(), before + 1);
  ASSERT_TRUE(wal->sync().ok());  // nothing new: no fdatasync
  EXPECT_EQ(env_.file_syncs_for_test(), before + 1);
}

TEST_F(WalTest, ConflictingSuffixIsOverwritten) {
  {
    Wal::Recovered rec;
    auto wal = open_ok(&rec);
    ASSERT_TRUE(wal->append(entries(1, 1, 5), std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
    // A new leader replaced 3..5 with 3..4 of term 2.
    ASSERT_TRUE(wal->append(entries(2, 3, 4), hs(2, 0, 2)).ok());
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_EQ(wal->last_index(), LogIndex(4));
  }
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  std::vector<Entry> want = entries(1, 1, 2);
  for (const Entry& e : entries(2, 3, 4)) want.push_back(e);
  EXPECT_EQ(rec.entries, want);
  // And again after the restart, overwriting from index 2.
  ASSERT_TRUE(wal->append(entries(3, 2, 2), std::nullopt).ok());
  ASSERT_TRUE(wal->sync().ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.entries, (std::vector<Entry>{entry(1, 1), entry(3, 2)}));
}

TEST_F(WalTest, AppendRejectsGapsAndNonContiguousBatches) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  EXPECT_EQ(wal->append({entry(1, 2)}, std::nullopt).code(), Errc::kInvalidArgument);
  EXPECT_EQ(wal->append({entry(1, 0)}, std::nullopt).code(), Errc::kInvalidArgument);
  EXPECT_EQ(wal->append({entry(1, 1), entry(1, 3)}, std::nullopt).code(), Errc::kInvalidArgument);
  EXPECT_TRUE(wal->append({entry(1, 1), entry(1, 2)}, std::nullopt).ok());
}

TEST_F(WalTest, SegmentsRollAndReleaseKeepsStateAndTail) {
  const uint64_t kSegmentBytes = 300;
  {
    Wal::Recovered rec;
    auto wal = open_ok(&rec, kSegmentBytes);
    for (uint64_t i = 1; i <= 60; i += 3) {
      ASSERT_TRUE(wal->append(entries(1, i, i + 2), hs(1, 1, i)).ok());
      ASSERT_TRUE(wal->sync().ok());
    }
    const auto names = wal->segment_names();
    ASSERT_GT(names.size(), 4u);
    for (size_t i = 0; i < names.size(); ++i) {
      char want[17];
      std::snprintf(want, sizeof want, "%016zx", i + 1);
      EXPECT_EQ(names[i].substr(0, 16), want);
      if (i + 1 < names.size()) {
        EXPECT_LE(env_.file_size(seg(*wal, i)).value(), kSegmentBytes + 64);
      }
    }
  }
  Wal::Recovered rec;
  auto wal = open_ok(&rec, kSegmentBytes);
  EXPECT_EQ(rec.entries, entries(1, 1, 60));
  EXPECT_EQ(rec.hard_state, hs(1, 1, 58));
  const size_t before = wal->segment_names().size();

  EXPECT_EQ(wal->release_to(LogIndex(30)).code(), Errc::kOutOfRange);  // no snapshot yet
  ASSERT_TRUE(wal->save_snapshot(snapshot(30, 1, "state@30")).ok());
  ASSERT_TRUE(wal->release_to(LogIndex(30)).ok());
  const size_t after = wal->segment_names().size();
  EXPECT_LT(after, before);
  EXPECT_GT(after, 1u);
  // Every remaining segment but the first holds only entries > 30, so the first kept
  // segment is the one holding index 31.
  wal.reset();
  wal = open_ok(&rec, kSegmentBytes);
  EXPECT_EQ(rec.snapshot.meta.index, LogIndex(30));
  EXPECT_EQ(*rec.snapshot.data, "state@30");
  EXPECT_EQ(rec.entries, entries(1, 31, 60));
  EXPECT_EQ(rec.hard_state, hs(1, 1, 58));  // survived although older segments are gone

  // Releasing everything up to the snapshot never removes the active segment.
  ASSERT_TRUE(wal->save_snapshot(snapshot(60, 1, "state@60")).ok());
  ASSERT_TRUE(wal->release_to(LogIndex(60)).ok());
  EXPECT_EQ(wal->segment_names().size(), 1u);
  wal.reset();
  wal = open_ok(&rec, kSegmentBytes);
  EXPECT_EQ(rec.snapshot.meta.index, LogIndex(60));
  EXPECT_TRUE(rec.entries.empty());
  EXPECT_EQ(rec.hard_state, hs(1, 1, 58));
  ASSERT_TRUE(wal->append(entries(2, 61, 61), std::nullopt).ok());
  ASSERT_TRUE(wal->sync().ok());
}

TEST_F(WalTest, SnapshotSaveLoadAndOldFilesRemoved) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 20), hs(1, 1, 20)).ok());
  ASSERT_TRUE(wal->sync().ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot(10, 1, "ten")).ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot(15, 1, std::string(1000, 'x'))).ok());
  EXPECT_EQ(wal->save_snapshot(snapshot(12, 1, "old")).code(), Errc::kOutOfRange);
  EXPECT_EQ(wal->save_snapshot(raft::Snapshot{}).code(), Errc::kInvalidArgument);
  std::vector<std::string> snaps;
  const std::vector<std::string> names = env_.list_dir(dir_).value();
  for (const std::string& n : names) {
    if (n.starts_with("snap-")) snaps.push_back(n);
  }
  EXPECT_EQ(snaps, std::vector<std::string>{"snap-000000000000000f-0000000000000001.snap"});
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.snapshot.meta, snapshot(15, 1, "").meta);
  EXPECT_EQ(*rec.snapshot.data, std::string(1000, 'x'));
  EXPECT_EQ(rec.entries, entries(1, 16, 20));
}

// The agent writes snapshot files from a worker thread (write_snapshot_file) and adopts
// them on its loop afterwards; a crash in between must recover from the written file.
TEST_F(WalTest, SnapshotWrittenThenAdoptedOrOvertaken) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 30), hs(1, 1, 30)).ok());
  ASSERT_TRUE(wal->sync().ok());
  ASSERT_TRUE(wal->write_snapshot_file(snapshot(10, 1, "ten")).ok());
  EXPECT_EQ(wal->snapshot_index(), LogIndex(0));  // written, not adopted yet
  EXPECT_EQ(*wal->read_snapshot_data(snapshot(10, 1, "").meta).value(), "ten");
  ASSERT_TRUE(wal->adopt_snapshot(snapshot(10, 1, "").meta).ok());
  EXPECT_EQ(wal->snapshot_index(), LogIndex(10));
  EXPECT_EQ(wal->adopt_snapshot(snapshot(11, 1, "").meta).code(), Errc::kNotFound);

  // Overtaken: a newer snapshot was saved while the older file was being written.
  ASSERT_TRUE(wal->write_snapshot_file(snapshot(15, 1, "fifteen")).ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot(20, 1, "twenty")).ok());
  EXPECT_EQ(wal->adopt_snapshot(snapshot(15, 1, "").meta).code(), Errc::kOutOfRange);
  std::vector<std::string> snaps;
  const std::vector<std::string> names = env_.list_dir(dir_).value();
  for (const std::string& n : names) {
    if (n.starts_with("snap-")) snaps.push_back(n);
  }
  EXPECT_EQ(snaps, std::vector<std::string>{"snap-0000000000000014-0000000000000001.snap"});
  EXPECT_FALSE(wal->read_snapshot_data(snapshot(15, 1, "").meta).has_value());

  // Written but never adopted (the agent died first): recovery uses it, the log after it.
  ASSERT_TRUE(wal->write_snapshot_file(snapshot(25, 1, "twenty-five")).ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.snapshot.meta, snapshot(25, 1, "").meta);
  EXPECT_EQ(*rec.snapshot.data, "twenty-five");
  EXPECT_EQ(rec.entries, entries(1, 26, 30));
}

TEST_F(WalTest, SnapshotAheadOfTheLogStartsAFreshLog) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 5), hs(1, 1, 5)).ok());
  ASSERT_TRUE(wal->sync().ok());
  // A leader sent a snapshot at 10; the follower continues from 11.
  ASSERT_TRUE(wal->save_snapshot(snapshot(10, 2, "s")).ok());
  ASSERT_TRUE(wal->append(entries(2, 11, 12), hs(2, 2, 10)).ok());
  ASSERT_TRUE(wal->sync().ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.snapshot.meta.index, LogIndex(10));
  EXPECT_EQ(rec.entries, entries(2, 11, 12));
}

TEST_F(WalTest, SnapshotConflictingWithTheLogDropsStaleEntries) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 8), hs(1, 1, 2)).ok());
  ASSERT_TRUE(wal->sync().ok());
  // Entry 5 has term 1 here, but the snapshot says term 2: 6..8 are stale.
  ASSERT_TRUE(wal->save_snapshot(snapshot(5, 2, "s")).ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_TRUE(rec.entries.empty());
  ASSERT_TRUE(wal->append(entries(2, 6, 6), hs(2, 2, 5)).ok());
  ASSERT_TRUE(wal->sync().ok());
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_EQ(rec.entries, entries(2, 6, 6));
}

// Builds a WAL whose last record (entry 4) is the only thing in the last sync.
struct TornSetup {
  std::string file;
  uint64_t good = 0;  // size before the last record
  uint64_t full = 0;
};

TornSetup write_for_torn(Env& env, const Wal::Options& o) {
  TornSetup t;
  Wal::Recovered rec;
  auto wal = Wal::open(env, o, &rec);
  EXPECT_TRUE(wal.has_value());
  EXPECT_TRUE((*wal)->append(entries(1, 1, 3), hs(1, 1, 3)).ok());
  EXPECT_TRUE((*wal)->sync().ok());
  t.file = o.dir + "/" + (*wal)->segment_names().back();
  t.good = env.file_size(t.file).value();
  EXPECT_TRUE((*wal)->append({entry(1, 4, "the-last-record")}, std::nullopt).ok());
  EXPECT_TRUE((*wal)->sync().ok());
  t.full = env.file_size(t.file).value();
  return t;
}

TEST_F(WalTest, TornTailTruncatedAtEveryCutOfTheLastRecord) {
  uint64_t cuts = 0;
  for (uint64_t n = 0;; ++n) {
    MemEnv env;
    const TornSetup t = write_for_torn(env, options());
    if (t.good + n >= t.full) break;
    ++cuts;
    ASSERT_TRUE(env.truncate(t.file, t.good + n).ok());
    Wal::Recovered rec;
    auto wal = open_ok(env, options(), &rec);
    ASSERT_TRUE(wal);
    EXPECT_EQ(rec.entries, entries(1, 1, 3)) << n;
    EXPECT_EQ(rec.hard_state, hs(1, 1, 3));
    if (n == 0) {
      EXPECT_TRUE(rec.torn_tail_note.empty());
    } else {
      EXPECT_NE(rec.torn_tail_note.find(t.file + ": truncated torn tail of " + std::to_string(n) +
                                        " bytes at offset " + std::to_string(t.good)),
                std::string::npos)
          << rec.torn_tail_note;
    }
    // The file was cut back to the last good record, durably.
    EXPECT_EQ(env.file_size(t.file).value(), t.good);
    EXPECT_EQ(env.synced_size_for_test(t.file).value(), t.good);
    // The log continues cleanly from there.
    ASSERT_TRUE(wal->append({entry(2, 4)}, std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
    wal.reset();
    wal = open_ok(env, options(), &rec);
    EXPECT_TRUE(rec.torn_tail_note.empty());
    EXPECT_EQ(rec.entries.back(), entry(2, 4));
  }
  EXPECT_GT(cuts, 20u);
}

TEST_F(WalTest, GarbageTailAfterLastRecordIsTorn) {
  const TornSetup t = write_for_torn(env_, options());
  const std::string last = env_.read_range(t.file, t.good, t.full - t.good).value();
  ASSERT_TRUE(env_.truncate(t.file, t.good).ok());
  // The last record half-written, then zeros where the rest never landed.
  auto f = env_.open_appendable(t.file);
  ASSERT_TRUE((*f)->append(last.substr(0, last.size() / 2) + std::string(100, '\0')).ok());
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  EXPECT_EQ(rec.entries, entries(1, 1, 3));
  EXPECT_FALSE(rec.torn_tail_note.empty());
}

TEST_F(WalTest, CorruptionInTheMiddleIsReportedWithFileAndOffset) {
  const TornSetup t = write_for_torn(env_, options());
  // Flip a byte inside the payload of the first entry (right after the preamble).
  const std::string bytes = env_.read_file(t.file).value();
  auto decoded = decode_wal_records(bytes);
  ASSERT_TRUE(decoded.has_value());
  const uint64_t at = decoded->records[0].offset;
  ASSERT_TRUE(env_.corrupt_for_test(t.file, at + kRecordHeaderBytes + 4, "\x5a").ok());
  Wal::Recovered rec;
  auto wal = Wal::open(env_, options(), &rec);
  ASSERT_FALSE(wal.has_value());
  EXPECT_EQ(wal.error().code(), Errc::kCorruption);
  EXPECT_EQ(wal.error().message(), t.file + ": offset " + std::to_string(at) +
                                       ": record crc mismatch, followed by valid records");
}

TEST_F(WalTest, DamagedTailOfAnOlderSegmentIsCorruption) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec, 200);
  for (uint64_t i = 1; i <= 20; ++i) {
    ASSERT_TRUE(wal->append({entry(1, i)}, std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
  }
  ASSERT_GE(wal->segment_names().size(), 2u);
  const std::string first = seg(*wal, 0);
  wal.reset();
  const uint64_t size = env_.file_size(first).value();
  ASSERT_TRUE(env_.truncate(first, size - 3).ok());
  auto r = Wal::open(env_, options(200), &rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
  EXPECT_NE(r.error().message().find(first + ": offset "), std::string::npos);
  EXPECT_NE(r.error().message().find("(not the last segment)"), std::string::npos)
      << r.error().message();
}

TEST_F(WalTest, MissingMiddleSegmentIsCorruption) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec, 200);
  for (uint64_t i = 1; i <= 30; ++i) {
    ASSERT_TRUE(wal->append({entry(1, i)}, std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
  }
  ASSERT_GE(wal->segment_names().size(), 3u);
  const std::string middle = seg(*wal, 1);
  wal.reset();
  ASSERT_TRUE(env_.remove(middle).ok());
  auto r = Wal::open(env_, options(200), &rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
  EXPECT_NE(r.error().message().find("segment 2 is missing"), std::string::npos);
}

TEST_F(WalTest, CorruptSnapshotFileIsCorruptionUnlessANewerGoodOneExists) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 10), hs(1, 1, 10)).ok());
  ASSERT_TRUE(wal->sync().ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot(5, 1, "five")).ok());
  wal.reset();
  const std::string snap5 = dir_ + "/snap-0000000000000005-0000000000000001.snap";
  ASSERT_TRUE(env_.exists(snap5));
  ASSERT_TRUE(env_.corrupt_for_test(snap5, 20, "\xff").ok());
  auto r = Wal::open(env_, options(), &rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kCorruption);
  EXPECT_NE(r.error().message().find(snap5 + ": offset"), std::string::npos) << r.error().message();

  // A newer good snapshot makes the damaged older one irrelevant.
  const std::string snap8 = dir_ + "/snap-0000000000000008-0000000000000001.snap";
  const raft::Snapshot s8 = snapshot(8, 1, "eight");
  const std::string prefix = encode_snapshot_file_prefix(s8.meta, s8.data->size());
  auto f = env_.new_writable_file(snap8);
  ASSERT_TRUE((*f)->append(prefix + *s8.data +
                           encode_snapshot_file_suffix(snapshot_file_crc(prefix, *s8.data)))
                  .ok());
  auto ok = open_ok(&rec);
  ASSERT_TRUE(ok);
  EXPECT_EQ(rec.snapshot.meta.index, LogIndex(8));
  EXPECT_EQ(rec.entries, entries(1, 9, 10));
}

TEST_F(WalTest, MarkedSnapshotWhoseFileIsGoneIsCorruption) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 10), hs(1, 1, 10)).ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot(5, 1, "five")).ok());
  wal.reset();
  ASSERT_TRUE(env_.remove(dir_ + "/snap-0000000000000005-0000000000000001.snap").ok());
  auto r = Wal::open(env_, options(), &rec);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("marks a snapshot at index 5"), std::string::npos);
}

TEST_F(WalTest, SnapshotTempFileLeftByACrashIsRemoved) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 10), hs(1, 1, 10)).ok());
  ASSERT_TRUE(wal->sync().ok());
  // A crash after the temp file was written and its name made durable, before the rename.
  const std::string tmp = dir_ + "/snap-0000000000000009-0000000000000001.snap.tmp";
  auto f = env_.new_writable_file(tmp);
  ASSERT_TRUE((*f)->append("half a snapshot").ok());
  ASSERT_TRUE((*f)->sync().ok());
  ASSERT_TRUE(env_.sync_dir(dir_).ok());
  SplitMix64 rng(3);
  env_.crash_for_test(rng, true);
  wal.reset();
  wal = open_ok(&rec);
  EXPECT_FALSE(env_.exists(tmp));
  EXPECT_TRUE(rec.snapshot.empty());
  EXPECT_EQ(rec.entries, entries(1, 1, 10));
}

TEST_F(WalTest, IoErrorsAreSticky) {
  Wal::Recovered rec;
  auto wal = open_ok(&rec);
  ASSERT_TRUE(wal->append(entries(1, 1, 2), std::nullopt).ok());
  env_.set_fail_writes_for_test(true);
  EXPECT_EQ(wal->sync().code(), Errc::kIoError);
  env_.set_fail_writes_for_test(false);
  EXPECT_EQ(wal->sync().code(), Errc::kIoError);
  EXPECT_EQ(wal->append(entries(1, 3, 3), std::nullopt).code(), Errc::kIoError);
}

// Replays a stream of operations the way recovery must, to compare with what was recovered.
struct Op {
  std::vector<Entry> batch;
  std::optional<HardState> hard_state;
};
void apply(const Op& op, std::vector<Entry>* log, HardState* state) {
  for (const Entry& e : op.batch) {
    if (!log->empty() && e.index <= log->back().index) log->resize(e.index.v - 1);
    log->push_back(e);
  }
  if (op.hard_state) *state = *op.hard_state;
}

// Entries of a full model log (from index 1) that follow the snapshot.
std::vector<Entry> after(const std::vector<Entry>& log, uint64_t snap_index) {
  return std::vector<Entry>(log.begin() + static_cast<long>(std::min(snap_index, log.size())),
                            log.end());
}

// Random appends, overwrites, syncs, snapshots, releases and crashes (with and without
// torn writes), several restarts per seed: what comes back is always everything synced
// plus, at most, a prefix of what was not, record by record, in order.
TEST_F(WalTest, CrashesLoseOnlyUnsyncedData) {
  int torn_survivals = 0;  // crashes after which some unsynced record came back
  int releases = 0;
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    SplitMix64 rng(seed);
    MemEnv env;
    std::vector<Entry> acked_log;  // the full log from index 1, as acknowledged
    HardState acked_state;
    uint64_t snap_index = 0;
    uint64_t term = 1;
    for (int round = 0; round < 5; ++round) {
      const uint64_t segment_bytes = rng.chance(0.5) ? 256 : 64 << 20;
      Wal::Recovered rec;
      auto wal = open_ok(env, options(segment_bytes), &rec);
      ASSERT_TRUE(wal) << "seed " << seed;
      ASSERT_EQ(rec.snapshot.meta.index.v, snap_index) << "seed " << seed;
      ASSERT_EQ(rec.entries, after(acked_log, snap_index)) << "seed " << seed << " round " << round;
      ASSERT_EQ(rec.hard_state, acked_state) << "seed " << seed;
      std::vector<Op> unsynced;
      std::vector<Entry> log = acked_log;
      const int steps = static_cast<int>(rng.uniform(1, 12));
      for (int s = 0; s < steps; ++s) {
        if (log.size() > snap_index && rng.chance(0.15)) {
          // Snapshot at an entry we have; it syncs everything buffered first.
          const uint64_t at = rng.uniform(snap_index + 1, log.size());
          ASSERT_TRUE(
              wal->save_snapshot(snapshot(at, log[at - 1].term.v, "s" + std::to_string(at))).ok());
          for (const Op& u : unsynced) apply(u, &acked_log, &acked_state);
          unsynced.clear();
          snap_index = at;
          if (rng.chance(0.6)) {
            const size_t before = wal->segment_names().size();
            ASSERT_TRUE(wal->release_to(LogIndex(rng.uniform(0, at))).ok());
            releases += wal->segment_names().size() < before;
          }
          continue;
        }
        Op op;
        uint64_t next = log.size() + 1;
        // Sometimes a new leader overwrites a suffix (never at or below the snapshot).
        if (log.size() > snap_index + 1 && rng.chance(0.2)) {
          next = rng.uniform(snap_index + 1, log.size());
          ++term;
        }
        const uint64_t n = rng.uniform(0, 4);
        for (uint64_t i = 0; i < n; ++i) {
          op.batch.push_back(entry(term, next + i, std::string(rng.uniform(1, 40), 'a' + i)));
        }
        if (rng.chance(0.5)) op.hard_state = hs(term, 1, 0);
        ASSERT_TRUE(wal->append(op.batch, op.hard_state).ok());
        HardState ignored;
        apply(op, &log, &ignored);
        unsynced.push_back(op);
        if (rng.chance(0.4)) {
          ASSERT_TRUE(wal->sync().ok());
          for (const Op& u : unsynced) apply(u, &acked_log, &acked_state);
          unsynced.clear();
        }
      }
      const bool tear = rng.chance(0.5);
      if (rng.chance(0.5)) {
        // The WAL writes what it buffered, then fdatasync fails and the power goes: the
        // written bytes may survive torn.
        env.set_fail_syncs_for_test(true);
        (void)wal->sync();  // fails unless nothing was buffered
        env.set_fail_syncs_for_test(false);
      }
      env.crash_for_test(rng, tear);
      wal.reset();
      auto reopened = open_ok(env, options(segment_bytes), &rec);
      ASSERT_TRUE(reopened) << "seed " << seed << " round " << round;
      // Find how many unsynced records survived: each entry and hard state is a record.
      std::vector<Op> records;
      for (const Op& u : unsynced) {
        for (const Entry& e : u.batch) records.push_back(Op{{e}, std::nullopt});
        if (u.hard_state) records.push_back(Op{{}, u.hard_state});
      }
      std::vector<Entry> want_log = acked_log;
      HardState want_state = acked_state;
      auto same = [&] {
        return rec.entries == after(want_log, snap_index) && rec.hard_state == want_state;
      };
      bool matched = same();
      for (size_t k = 0; k < records.size() && !matched; ++k) {
        apply(records[k], &want_log, &want_state);
        matched = same();
        if (matched && !(want_log == acked_log && want_state == acked_state)) ++torn_survivals;
      }
      ASSERT_TRUE(matched) << "seed " << seed << " round " << round << " tear " << tear;
      EXPECT_EQ(rec.snapshot.meta.index.v, snap_index);
      if (!tear) {
        EXPECT_EQ(rec.entries, after(acked_log, snap_index)) << "seed " << seed;
      }
      // What came back is the new acknowledged baseline.
      acked_log = want_log;
      acked_state = want_state;
    }
  }
  EXPECT_GT(torn_survivals, 5);  // the torn-write path was really exercised
  EXPECT_GT(releases, 5);
}

TEST(WalPosixTest, RoundTripRestartAndTornTailOnARealDirectory) {
  char tmpl[] = "/tmp/vigil_wal_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  Wal::Options o;
  o.dir = root + "/nested/wal";
  o.segment_bytes = 512;
  std::string last_file;
  {
    Wal::Recovered rec;
    auto wal = Wal::open(posix_env(), o, &rec);
    ASSERT_TRUE(wal.has_value()) << wal.error().to_string();
    for (uint64_t i = 1; i <= 40; i += 4) {
      ASSERT_TRUE((*wal)->append(entries(1, i, i + 3), hs(1, 1, i)).ok());
      ASSERT_TRUE((*wal)->sync().ok());
    }
    ASSERT_TRUE((*wal)->save_snapshot(snapshot(20, 1, "twenty")).ok());
    ASSERT_TRUE((*wal)->release_to(LogIndex(20)).ok());
    last_file = o.dir + "/" + (*wal)->segment_names().back();
  }
  // Tear the last record.
  const uint64_t size = posix_env().file_size(last_file).value();
  ASSERT_TRUE(posix_env().truncate(last_file, size - 5).ok());
  Wal::Recovered rec;
  auto wal = Wal::open(posix_env(), o, &rec);
  ASSERT_TRUE(wal.has_value()) << wal.error().to_string();
  EXPECT_EQ(rec.snapshot.meta.index, LogIndex(20));
  EXPECT_EQ(*rec.snapshot.data, "twenty");
  EXPECT_FALSE(rec.torn_tail_note.empty());
  // The torn record was the last one written: the snapshot marker.
  EXPECT_EQ(rec.entries, entries(1, 21, 40));
  EXPECT_EQ(rec.hard_state, hs(1, 1, 37));
  std::filesystem::remove_all(root);
}

TEST(WalPosixTest, UnwritableDirectoryFailsWithPath) {
  Wal::Recovered rec;
  Wal::Options o;
  o.dir = "/dev/null/wal";  // a parent that is not a directory
  auto wal = Wal::open(posix_env(), o, &rec);
  ASSERT_FALSE(wal.has_value());
  EXPECT_EQ(wal.error().code(), Errc::kIoError);
  EXPECT_EQ(wal.error().message(), "mkdir /dev/null: exists and is not a directory")
      << wal.error().message();
}

}  // namespace
}  // namespace vigil::storage
