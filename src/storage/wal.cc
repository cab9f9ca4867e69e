// Wal implementation: recovery, group commit with segment rolls, snapshots, release.
#include "storage/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "storage/wal_format.h"

namespace vigil::storage {
namespace {

constexpr std::string_view kSegmentSuffix = ".wal";
constexpr std::string_view kSnapshotPrefix = "snap-";
constexpr std::string_view kSnapshotSuffix = ".snap";
constexpr std::string_view kTempSuffix = ".tmp";

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// Exactly 16 lowercase hex digits, as hex16() writes them.
bool parse_hex16(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// "<seq>-<first index>.wal"
std::string segment_name(uint64_t seq, LogIndex first) {
  return hex16(seq) + "-" + hex16(first.v) + std::string(kSegmentSuffix);
}
bool parse_segment_name(std::string_view name, uint64_t* seq, uint64_t* first) {
  return name.size() == 16 + 1 + 16 + kSegmentSuffix.size() && name[16] == '-' &&
         name.ends_with(kSegmentSuffix) && parse_hex16(name.substr(0, 16), seq) &&
         parse_hex16(name.substr(17, 16), first);
}

// "snap-<index>-<term>.snap": the index first so names sort by age.
std::string snapshot_name(const raft::SnapshotMeta& meta) {
  return std::string(kSnapshotPrefix) + hex16(meta.index.v) + "-" + hex16(meta.term.v) +
         std::string(kSnapshotSuffix);
}
bool parse_snapshot_name(std::string_view name, uint64_t* index, uint64_t* term) {
  const size_t p = kSnapshotPrefix.size();
  return name.size() == p + 16 + 1 + 16 + kSnapshotSuffix.size() &&
         name.starts_with(kSnapshotPrefix) && name.ends_with(kSnapshotSuffix) &&
         name[p + 16] == '-' && parse_hex16(name.substr(p, 16), index) &&
         parse_hex16(name.substr(p + 17, 16), term);
}

ErrorValue corrupt(const std::string& file, const std::string& what) {
  return err(Errc::kCorruption, file + ": " + what);
}

}  // namespace

Wal::Wal(Env& env, Options options) : env_(env), options_(std::move(options)) {}

Wal::~Wal() {
  if (active_) (void)active_->close();
}

std::string Wal::path(const std::string& name) const { return options_.dir + "/" + name; }

Status Wal::fail(Status s) {
  if (!s.ok() && failed_.ok()) failed_ = s;
  return s;
}

std::vector<std::string> Wal::segment_names() const {
  std::vector<std::string> out;
  for (const Segment& s : segments_) out.push_back(s.name);
  return out;
}

Result<std::unique_ptr<Wal>> Wal::open(Env& env, const Options& options, Recovered* out) {
  if (options.dir.empty()) return err(Errc::kInvalidArgument, "wal: options.dir is empty");
  if (options.segment_bytes == 0) {
    return err(Errc::kInvalidArgument, "wal: options.segment_bytes must be > 0");
  }
  std::unique_ptr<Wal> wal(new Wal(env, options));
  *out = Recovered{};
  RETURN_IF_ERROR(wal->recover(out));
  return wal;
}

Status Wal::remove_temp_files(const std::vector<std::string>& names) {
  bool removed = false;
  for (const std::string& name : names) {
    if (!std::string_view(name).ends_with(kTempSuffix)) continue;
    // A crash between writing and renaming a snapshot: the rename never happened, so the
    // file was never relied on.
    RETURN_IF_ERROR(env_.remove(path(name)));
    removed = true;
  }
  if (removed) RETURN_IF_ERROR(env_.sync_dir(options_.dir));
  return Status();
}

Status Wal::load_snapshot(const std::vector<std::string>& names, raft::Snapshot* snap) {
  // Newest by index; older files are leftovers save_snapshot() had not removed yet.
  std::string newest;
  uint64_t newest_index = 0;
  uint64_t newest_term = 0;
  for (const std::string& name : names) {
    uint64_t index = 0;
    uint64_t term = 0;
    if (!parse_snapshot_name(name, &index, &term)) continue;
    if (newest.empty() || index > newest_index) {
      newest = name;
      newest_index = index;
      newest_term = term;
    }
  }
  if (newest.empty()) return Status();
  // The newest file was fsynced before its rename was: damage is corruption, and falling
  // back to an older file could lose entries already released from the log.
  ASSIGN_OR_RETURN(std::string bytes, env_.read_file(path(newest)));
  auto decoded = decode_snapshot_file(bytes);
  if (!decoded) return corrupt(path(newest), decoded.error().message());
  if (decoded->meta.index.v != newest_index || decoded->meta.term.v != newest_term) {
    return corrupt(path(newest), "content is snapshot " + decoded->meta.index.str() + "/" +
                                     decoded->meta.term.str() + ", not what its name says");
  }
  *snap = std::move(*decoded);
  return Status();
}

Status Wal::recover(Recovered* out) {
  const std::string& dir = options_.dir;
  RETURN_IF_ERROR(env_.create_dir(dir));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.list_dir(dir));
  RETURN_IF_ERROR(remove_temp_files(names));
  RETURN_IF_ERROR(load_snapshot(names, &out->snapshot));
  const raft::SnapshotMeta& snap = out->snapshot.meta;

  struct Found {
    uint64_t seq;
    std::string name;
  };
  std::vector<Found> found;
  for (const std::string& name : names) {
    if (!std::string_view(name).ends_with(kSegmentSuffix)) continue;
    uint64_t seq = 0;
    uint64_t first = 0;
    if (!parse_segment_name(name, &seq, &first)) {
      return corrupt(path(name), "not a valid segment name");
    }
    found.push_back(Found{seq, name});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < found.size(); ++i) {
    if (found[i].seq != found[i - 1].seq + 1) {
      return corrupt(path(found[i].name),
                     "segment " + std::to_string(found[i - 1].seq + 1) + " is missing before it");
    }
  }

  // Replay every record in order. Entries follow "last write wins from that index on".
  std::vector<raft::Entry>& entries = out->entries;
  LogIndex marker_index;
  bool last_is_empty = false;
  for (size_t i = 0; i < found.size(); ++i) {
    const std::string file = path(found[i].name);
    const bool last = i + 1 == found.size();
    ASSIGN_OR_RETURN(std::string bytes, env_.read_file(file));
    auto decoded = decode_wal_records(bytes);
    if (!decoded) return corrupt(file, decoded.error().message());
    if (!decoded->tail_error.empty()) {
      if (!last) return corrupt(file, decoded->tail_error + " (not the last segment)");
      const uint64_t dropped = bytes.size() - decoded->valid_bytes;
      if (dropped > 0) {
        out->torn_tail_note = file + ": truncated torn tail of " + std::to_string(dropped) +
                              " bytes at offset " + std::to_string(decoded->valid_bytes) + " (" +
                              decoded->tail_error + ")";
        RETURN_IF_ERROR(env_.truncate(file, decoded->valid_bytes));
      }
      last_is_empty = decoded->valid_bytes == 0;
    }
    Segment seg{found[i].seq, found[i].name, LogIndex(0)};
    for (DecodedRecord& rec : decoded->records) {
      const std::string where = "offset " + std::to_string(rec.offset);
      if (auto* e = std::get_if<raft::Entry>(&rec.record)) {
        if (e->index.v == 0) return corrupt(file, where + ": entry with index 0");
        if (!entries.empty()) {
          const LogIndex front = entries.front().index;
          const LogIndex back = entries.back().index;
          if (e->index > back + 1) {
            return corrupt(file, where + ": entry " + e->index.str() + " after entry " +
                                     back.str() + " leaves a gap");
          }
          // An overwrite: drop the conflicting suffix first (Raft §5.3).
          if (e->index < front) {
            entries.clear();
          } else if (e->index <= back) {
            entries.resize(e->index - front);
          }
        }
        seg.max_index = std::max(seg.max_index, e->index);
        entries.push_back(std::move(*e));
      } else if (auto* hs = std::get_if<raft::HardState>(&rec.record)) {
        out->hard_state = *hs;
      } else {
        const auto& m = std::get<raft::SnapshotMeta>(rec.record);
        marker_index = std::max(marker_index, m.index);
        // As Raft's restore: the log survives a snapshot only if it holds the snapshot's
        // last entry with the same term; entries beyond a newer snapshot are stale.
        if (!entries.empty() && entries.front().index <= m.index) {
          const bool holds = entries.back().index >= m.index &&
                             entries[m.index - entries.front().index].term == m.term;
          if (!holds) entries.clear();
        }
      }
    }
    segments_.push_back(std::move(seg));
  }

  if (marker_index > snap.index) {
    return err(Errc::kCorruption, "wal " + dir + ": the log marks a snapshot at index " +
                                      marker_index.str() + " but the newest snapshot file is at " +
                                      snap.index.str());
  }
  // Trim to what follows the snapshot, with the same rule as for markers.
  if (!entries.empty() && entries.front().index <= snap.index) {
    const LogIndex front = entries.front().index;
    if (entries.back().index >= snap.index && entries[snap.index - front].term == snap.term) {
      entries.erase(entries.begin(), entries.begin() + static_cast<long>(snap.index - front + 1));
    } else {
      entries.clear();
    }
  }
  if (!entries.empty() && entries.front().index != snap.index + 1) {
    return err(Errc::kCorruption, "wal " + dir + ": log starts at index " +
                                      entries.front().index.str() + " but the snapshot ends at " +
                                      snap.index.str());
  }
  const LogIndex last = entries.empty() ? snap.index : entries.back().index;
  if (out->hard_state.commit > last) {
    return err(Errc::kCorruption, "wal " + dir + ": hard state commit " +
                                      out->hard_state.commit.str() + " is beyond the last index " +
                                      last.str() + " (acknowledged entries are missing)");
  }

  last_index_ = last;
  written_last_index_ = last;
  snapshot_index_ = snap.index;
  written_hard_state_ = out->hard_state;
  if (!out->snapshot.empty()) written_snapshot_ = snap;

  if (segments_.empty()) {
    RETURN_IF_ERROR(start_segment(1, last + 1));
  } else {
    ASSIGN_OR_RETURN(active_, env_.open_appendable(path(segments_.back().name)));
    active_has_records_ = !last_is_empty;
    if (last_is_empty) {
      // The last segment lost even its header: write a fresh preamble into it.
      std::string pre = encode_segment_header();
      if (written_snapshot_) append_record(&pre, *written_snapshot_);
      if (!written_hard_state_.empty()) append_record(&pre, written_hard_state_);
      RETURN_IF_ERROR(active_->append(pre));
    } else {
      return Status();
    }
  }
  RETURN_IF_ERROR(active_->sync());
  return env_.sync_dir(dir);
}

Status Wal::start_segment(uint64_t seq, LogIndex first_index) {
  const std::string name = segment_name(seq, first_index);
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env_.new_writable_file(path(name)));
  std::string pre = encode_segment_header();
  if (written_snapshot_) append_record(&pre, *written_snapshot_);
  if (!written_hard_state_.empty()) append_record(&pre, written_hard_state_);
  RETURN_IF_ERROR(file->append(pre));
  segments_.push_back(Segment{seq, name, LogIndex(0)});
  active_ = std::move(file);
  active_has_records_ = false;
  return Status();
}

Status Wal::append(const std::vector<raft::Entry>& entries,
                   const std::optional<raft::HardState>& hs) {
  if (!failed_.ok()) return failed_;
  if (!entries.empty()) {
    const LogIndex first = entries.front().index;
    if (first.v == 0 || first <= snapshot_index_ || first > last_index_ + 1) {
      return err(Errc::kInvalidArgument, "wal append: first index " + first.str() + " outside (" +
                                             snapshot_index_.str() + ", " +
                                             (last_index_ + 1).str() + "]");
    }
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].index != entries[i - 1].index + 1) {
        return err(Errc::kInvalidArgument, "wal append: entry " + entries[i].index.str() +
                                               " does not follow " + entries[i - 1].index.str());
      }
    }
  }
  for (const raft::Entry& e : entries) {
    append_record(&pending_, e);
    pending_records_.push_back(PendingRecord{pending_.size(), e.index, std::nullopt, std::nullopt});
  }
  if (!entries.empty()) last_index_ = entries.back().index;
  if (hs) {
    append_record(&pending_, *hs);
    pending_records_.push_back(PendingRecord{pending_.size(), LogIndex(0), *hs, std::nullopt});
  }
  return Status();
}

Status Wal::write_pending() {
  size_t chunk_begin = 0;  // first byte of pending_ not yet handed to the file
  size_t begin = 0;        // first byte of the record being placed
  bool rolled = false;
  const std::string_view all(pending_);
  for (const PendingRecord& rec : pending_records_) {
    const uint64_t segment_size = active_->size() + (begin - chunk_begin);
    if (active_has_records_ && segment_size + (rec.end - begin) > options_.segment_bytes) {
      // The old segment must be complete and durable before a newer one exists: only the
      // last segment may ever have a torn tail.
      RETURN_IF_ERROR(active_->append(all.substr(chunk_begin, begin - chunk_begin)));
      RETURN_IF_ERROR(active_->sync());
      RETURN_IF_ERROR(active_->close());
      RETURN_IF_ERROR(start_segment(segments_.back().seq + 1, written_last_index_ + 1));
      rolled = true;
      chunk_begin = begin;
    }
    if (rec.entry_index.v != 0) {
      segments_.back().max_index = std::max(segments_.back().max_index, rec.entry_index);
      written_last_index_ = rec.entry_index;
    }
    if (rec.hard_state) written_hard_state_ = *rec.hard_state;
    if (rec.snapshot) {
      written_snapshot_ = *rec.snapshot;
      written_last_index_ = std::max(written_last_index_, rec.snapshot->index);
    }
    active_has_records_ = true;
    begin = rec.end;
  }
  RETURN_IF_ERROR(active_->append(all.substr(chunk_begin)));
  // fsync: false trades durability on power loss for latency (still survives a crash of
  // the process: the data is in the page cache).
  if (options_.fsync) RETURN_IF_ERROR(active_->sync());
  if (rolled) RETURN_IF_ERROR(env_.sync_dir(options_.dir));
  return Status();
}

Status Wal::sync() {
  if (!failed_.ok()) return failed_;
  if (pending_records_.empty()) return Status();
  RETURN_IF_ERROR(fail(write_pending()));
  pending_.clear();
  pending_records_.clear();
  return Status();
}

Status Wal::save_snapshot(const raft::Snapshot& snapshot) {
  if (!failed_.ok()) return failed_;
  if (snapshot.empty()) return err(Errc::kInvalidArgument, "wal: cannot save an empty snapshot");
  if (snapshot.meta.index < snapshot_index_) {
    return err(Errc::kOutOfRange, "wal: snapshot at " + snapshot.meta.index.str() +
                                      " is older than the saved one at " + snapshot_index_.str());
  }
  // A failure here leaves the WAL untouched: not sticky.
  RETURN_IF_ERROR(write_snapshot_file(snapshot));
  return adopt_snapshot(snapshot.meta);
}

Status Wal::write_snapshot_file(const raft::Snapshot& snapshot) const {
  const raft::SnapshotMeta& meta = snapshot.meta;
  if (snapshot.empty()) return err(Errc::kInvalidArgument, "wal: cannot save an empty snapshot");
  const std::string name = snapshot_name(meta);
  const std::string tmp = path(name + std::string(kTempSuffix));
  const std::string_view data = snapshot.data ? std::string_view(*snapshot.data) : "";
  const std::string prefix = encode_snapshot_file_prefix(meta, data.size());
  const std::string suffix = encode_snapshot_file_suffix(snapshot_file_crc(prefix, data));
  // The temp file is cleaned up now on failure, or at the next open().
  auto write_tmp = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env_.new_writable_file(tmp));
    RETURN_IF_ERROR(file->append(prefix));
    // In chunks with writeback started between them: a snapshot of tens of MB written at
    // once would queue ahead of the WAL's fdatasyncs (seen as 10-20 ms syncs, and a put
    // p99 twice as long, while three local replicas wrote theirs).
    constexpr size_t kChunk = 1 << 20;
    for (size_t at = 0; at < data.size(); at += kChunk) {
      RETURN_IF_ERROR(file->append(data.substr(at, kChunk)));
      RETURN_IF_ERROR(file->write_behind());
    }
    RETURN_IF_ERROR(file->append(suffix));
    RETURN_IF_ERROR(file->sync());
    return file->close();
  };
  if (Status s = write_tmp(); !s.ok()) {
    (void)env_.remove(tmp);
    return s;
  }
  RETURN_IF_ERROR(env_.rename(tmp, path(name)));
  return env_.sync_dir(options_.dir);
}

Status Wal::adopt_snapshot(const raft::SnapshotMeta& meta) {
  if (!failed_.ok()) return failed_;
  const std::string name = snapshot_name(meta);
  if (meta.index < snapshot_index_) {
    // Overtaken (a newer snapshot was installed meanwhile): the file is not needed.
    (void)env_.remove(path(name));
    return err(Errc::kOutOfRange, "wal: snapshot at " + meta.index.str() +
                                      " is older than the saved one at " + snapshot_index_.str());
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.list_dir(options_.dir));
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    return err(Errc::kNotFound, "wal: no snapshot file " + path(name) + " to adopt");
  }

  append_record(&pending_, meta);
  pending_records_.push_back(PendingRecord{pending_.size(), LogIndex(0), std::nullopt, meta});
  snapshot_index_ = meta.index;
  last_index_ = std::max(last_index_, meta.index);
  RETURN_IF_ERROR(sync());

  // Older snapshots are now unreachable. A removal a crash undoes is harmless: open()
  // always picks the newest file.
  for (const std::string& other : names) {
    uint64_t index = 0;
    uint64_t term = 0;
    if (other != name && parse_snapshot_name(other, &index, &term) && index <= meta.index.v) {
      RETURN_IF_ERROR(env_.remove(path(other)));
    }
  }
  return Status();
}

Result<std::shared_ptr<const std::string>> Wal::read_snapshot_data(
    const raft::SnapshotMeta& meta) const {
  const std::string file = path(snapshot_name(meta));
  ASSIGN_OR_RETURN(std::string bytes, env_.read_file(file));
  auto decoded = decode_snapshot_file(bytes);
  if (!decoded) return corrupt(file, decoded.error().message());
  if (decoded->meta.index != meta.index || decoded->meta.term != meta.term) {
    return corrupt(file, "content is snapshot " + decoded->meta.index.str() + "/" +
                             decoded->meta.term.str() + ", not what its name says");
  }
  return decoded->data ? decoded->data : std::make_shared<const std::string>();
}

Status Wal::release_to(LogIndex index) {
  if (!failed_.ok()) return failed_;
  if (index > snapshot_index_) {
    return err(Errc::kOutOfRange, "wal release_to " + index.str() +
                                      " is beyond the latest snapshot at " + snapshot_index_.str());
  }
  size_t n = 0;
  while (n + 1 < segments_.size() && segments_[n].max_index <= index) ++n;
  if (n == 0) return Status();
  // Oldest first, so a crash part-way leaves a contiguous run of segments.
  for (size_t i = 0; i < n; ++i) {
    if (Status s = env_.remove(path(segments_[i].name)); !s.ok()) {
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(i));
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(n));
  return env_.sync_dir(options_.dir);
}

}  // namespace vigil::storage
