// Wal: the segmented write-ahead log and snapshot files that make Raft state durable.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/ids.h"
#include "base/status.h"
#include "raft/types.h"

namespace vigil::storage {

// Persists what a raft::Ready asks to persist: entries, hard state and snapshots, in one
// directory. Owned by the shell that drives Raft; single-threaded except that
// write_snapshot_file() may run on another thread alongside the owner's calls (it reads
// only options, and then needs an Env that is safe from two threads: posix_env() is, a
// MemEnv is not); uses Env for every file operation so the simulator can crash it. Usage per Ready:
//
//   if (rd.snapshot) RETURN_IF_ERROR(wal.save_snapshot(*rd.snapshot));
//   RETURN_IF_ERROR(wal.append(rd.entries, rd.hard_state));
//   if (rd.must_sync) RETURN_IF_ERROR(wal.sync());   // group commit: one fdatasync
//   ... then send rd.messages.
//
// After the application compacts Raft with a snapshot it has saved, release_to() frees old
// segments. Any I/O error makes the Wal fail every later call with that error (after a
// failed fdatasync the durable state is unknown; the process should restart and recover).
// Destroying a Wal drops appends not yet synced: they were never acknowledged.
class Wal {
 public:
  struct Options {
    // Directory holding segments and snapshot files; created (with parents) if missing.
    std::string dir;
    // A segment is rolled before a record would take it past this size (a single record
    // larger than this still gets its own segment). Bigger segments mean fewer files and
    // coarser release_to(); default 64 MiB.
    uint64_t segment_bytes = 64 << 20;
    // fdatasync on every sync(). Off: writes reach the page cache only, so a power loss
    // can lose acknowledged entries (a process crash cannot). Default on.
    bool fsync = true;
  };

  struct Recovered {
    raft::HardState hard_state;
    raft::Snapshot snapshot;  // empty (index 0) when none was saved
    // Contiguous, starting at snapshot.meta.index + 1.
    std::vector<raft::Entry> entries;
    // Non-empty when recovery cut a torn tail off the last segment: what was dropped and
    // where. Only unsynced (never acknowledged) data can be torn.
    std::string torn_tail_note;
  };

  // Opens (or creates) the WAL in options.dir and recovers its content into *out.
  // Removes leftover snapshot temp files and truncates a torn tail of the last segment.
  // Errors: kCorruption (names file and byte offset) for damage that is not a torn tail,
  // a snapshot file failing its checksum, a missing segment or snapshot, or a gap in the
  // log; kIoError from the Env; kInvalidArgument for bad options.
  static Result<std::unique_ptr<Wal>> open(Env& env, const Options& options, Recovered* out);

  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Buffers entries (then the hard state, if given) in memory; nothing is durable until
  // sync(). Entries must be contiguous, start at index >= 1 and at most last_index() + 1.
  // Starting at or below last_index() overwrites that suffix (a new leader replaced
  // conflicting entries, Raft §5.3); recovery applies the same rule.
  // Errors: kInvalidArgument for a gap or non-contiguous batch; the sticky I/O error.
  Status append(const std::vector<raft::Entry>& entries, const std::optional<raft::HardState>& hs);

  // Writes everything buffered and makes it durable with one fdatasync of the current
  // segment (plus one per segment rolled over and one directory fsync when a roll
  // happened). A no-op when nothing is buffered.
  Status sync();

  // Durably writes a snapshot file (temp file, fdatasync, rename, directory fsync), then
  // durably appends a marker record (this also syncs anything buffered), then removes
  // older snapshot files. Errors: kInvalidArgument for an empty snapshot, kOutOfRange for
  // one older than the latest saved, the Env's errors.
  Status save_snapshot(const raft::Snapshot& snapshot);

  // save_snapshot() in two halves, so that the file can be written elsewhere (the agent
  // writes it from a worker thread while its loop goes on):
  // write_snapshot_file() durably writes the file (temp, fdatasync, rename, directory
  // fsync) and changes nothing in this object; recovery already picks it up as the newest
  // snapshot. adopt_snapshot() then makes it the WAL's snapshot: the marker record (synced)
  // and removal of older files. adopt errors: kOutOfRange if a newer snapshot was saved
  // meanwhile (the file is removed), kNotFound if the file is missing.
  Status write_snapshot_file(const raft::Snapshot& snapshot) const;
  Status adopt_snapshot(const raft::SnapshotMeta& meta);

  // The data of the saved snapshot file for `meta` (what a leader sends a follower that
  // fell behind). Errors: the Env's, kCorruption naming the file.
  Result<std::shared_ptr<const std::string>> read_snapshot_data(
      const raft::SnapshotMeta& meta) const;

  // Removes whole segments, oldest first, whose entries all have index <= `index`. The
  // active segment is kept. Errors: kOutOfRange if `index` is beyond the latest saved
  // snapshot (those entries would be lost).
  Status release_to(LogIndex index);

  // Index of the last entry appended (synced or not), or the snapshot index if larger.
  LogIndex last_index() const { return last_index_; }
  LogIndex snapshot_index() const { return snapshot_index_; }
  // File names of the live segments, oldest first.
  std::vector<std::string> segment_names() const;

 private:
  struct Segment {
    uint64_t seq = 0;
    std::string name;
    LogIndex max_index;  // largest entry index in the segment, 0 when none
  };
  // A record buffered in pending_, ending at `end`, and what it changes.
  struct PendingRecord {
    size_t end = 0;
    LogIndex entry_index;  // 0 unless an entry
    std::optional<raft::HardState> hard_state;
    std::optional<raft::SnapshotMeta> snapshot;
  };

  Wal(Env& env, Options options);
  std::string path(const std::string& name) const;
  Status recover(Recovered* out);
  Status remove_temp_files(const std::vector<std::string>& names);
  Status load_snapshot(const std::vector<std::string>& names, raft::Snapshot* snap);
  // Creates segment seq with the preamble (header, current snapshot marker and hard
  // state) written but not synced.
  Status start_segment(uint64_t seq, LogIndex first_index);
  Status write_pending();
  Status fail(Status s);

  Env& env_;
  Options options_;
  std::vector<Segment> segments_;  // oldest first; back() is the active one
  std::unique_ptr<WritableFile> active_;
  bool active_has_records_ = false;  // beyond the preamble: allowed to roll
  std::string pending_;
  std::vector<PendingRecord> pending_records_;
  LogIndex last_index_;
  LogIndex snapshot_index_;
  // State as of the records written so far, repeated at the start of every new segment
  // so that releasing old segments never loses the latest hard state or snapshot marker.
  raft::HardState written_hard_state_;
  std::optional<raft::SnapshotMeta> written_snapshot_;
  LogIndex written_last_index_;
  Status failed_;  // sticky
};

}  // namespace vigil::storage
