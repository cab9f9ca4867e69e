// Env: every filesystem call the WAL needs, behind one interface (LevelDB style), with a
// POSIX implementation and an in-memory one that models crashes for tests and simulation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"
#include "base/status.h"

namespace vigil {

// A file opened for appending. Owned by the caller; used from one thread. Not buffered:
// each append() reaches the OS (or MemEnv's page cache) at once, so callers batch.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends data at the end of the file. Not durable until sync().
  virtual Status append(std::string_view data) = 0;
  // Makes every byte appended so far durable (fdatasync). After a failed sync the file's
  // durable contents are unknown: callers must not retry and assume success.
  virtual Status sync() = 0;
  // Starts writing to disk what was appended since the last call, after waiting for what
  // that call started (sync_file_range): a large file written in chunks with this between
  // them keeps little dirty data, so it never queues ahead of another file's fdatasync
  // (the WAL's). Durability still needs sync(). The default does nothing.
  virtual Status write_behind() { return Status(); }
  // Closes the handle; does not sync. Further calls fail. The destructor closes too.
  virtual Status close() = 0;
  // The file's size as seen through this handle (existing bytes plus appends).
  virtual uint64_t size() const = 0;
};

// Filesystem operations. Paths are plain strings ("/var/lib/vigil/wal/x.wal"); the WAL
// builds them as dir + "/" + name. Errors are Errc::kIoError (kNotFound when the path does
// not exist) with "op path: strerror" messages. Implementations are thread-compatible.
//
// Durability contract (what the WAL relies on, and what MemEnv models):
//  - file data is durable after WritableFile::sync();
//  - a create, rename or remove is durable only after sync_dir() of the directory that
//    holds the name;
//  - truncate() and create_dir() are durable when they return.
class Env {
 public:
  virtual ~Env() = default;

  // Creates the directory and any missing parents; OK if it already exists.
  virtual Status create_dir(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  // Opens for appending, creating an empty file if missing.
  virtual Result<std::unique_ptr<WritableFile>> open_appendable(const std::string& path) = 0;
  // Creates an empty file, or truncates an existing one to zero, and opens it for appending.
  virtual Result<std::unique_ptr<WritableFile>> new_writable_file(const std::string& path) = 0;
  // The whole content of a file.
  virtual Result<std::string> read_file(const std::string& path) = 0;
  // Up to n bytes from offset (fewer at the end of the file).
  virtual Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) = 0;
  // Atomically replaces `to` (if it exists) with `from`.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Removes a file.
  virtual Status remove(const std::string& path) = 0;
  // Shrinks (or zero-extends) a file to `size` bytes and syncs it.
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  // Makes creates, renames and removes of names in this directory durable (fsync on dir).
  virtual Status sync_dir(const std::string& path) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
};

// The real filesystem through POSIX calls. Stateless; one shared instance is fine.
Env& posix_env();

// An in-memory filesystem for unit tests and the simulator. Single-threaded.
//
// Crash model (crash_for_test), deliberately simple but never kinder than POSIX:
//  - Each file keeps how many of its bytes are synced; only appends happen between syncs
//    (truncate syncs), so the synced bytes are always a prefix of the file.
//  - Each directory keeps the name → file map as of its last sync_dir(). A crash reverts
//    every directory to that map: unsynced creates vanish, unsynced removes come back,
//    unsynced renames are undone. Directories themselves are durable once created.
//  - Then every file is cut back to its synced prefix. With `tear`, a file keeps a random
//    prefix of its unsynced bytes instead (a torn write: sectors reach the disk in order,
//    the rest is lost). Real disks may also persist later sectors without earlier ones or
//    zero-fill; this model does not, which the WAL's torn-tail logic also handles.
//  - Handles opened before the crash fail with kIoError afterwards.
class MemEnv final : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  Status create_dir(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> open_appendable(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> new_writable_file(const std::string& path) override;
  Result<std::string> read_file(const std::string& path) override;
  Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Status sync_dir(const std::string& path) override;
  Result<uint64_t> file_size(const std::string& path) override;
  bool exists(const std::string& path) override;

  // Simulates a power loss as documented above.
  void crash_for_test(Rng& rng, bool tear);
  // Overwrites bytes of a file in place, bypassing the durability model (bit rot).
  Status corrupt_for_test(const std::string& path, uint64_t offset, std::string_view bytes);
  // Bytes of the file that would survive a crash (without tearing).
  Result<uint64_t> synced_size_for_test(const std::string& path);
  // Fails every append/sync/create from now on with kIoError (disk gone, EIO).
  void set_fail_writes_for_test(bool fail) { fail_writes_ = fail; }
  // Fails only WritableFile::sync() from now on: appended bytes stay in the "page cache",
  // unsynced, as after an fdatasync EIO (lets a test tear data the WAL did write).
  void set_fail_syncs_for_test(bool fail) { fail_syncs_ = fail; }
  // WritableFile::sync() calls so far (to check group commit).
  uint64_t file_syncs_for_test() const { return file_syncs_; }

 private:
  struct File;  // bytes plus synced length, shared with open handles
  struct Dir {
    std::map<std::string, std::shared_ptr<File>> live;
    std::map<std::string, std::shared_ptr<File>> durable;
  };
  class Handle;

  Result<Dir*> dir_of(const std::string& path, std::string* name);
  Result<std::shared_ptr<File>> find(const std::string& path);

  std::map<std::string, Dir> dirs_;  // by directory path, e.g. "/data/wal"
  uint64_t epoch_ = 0;               // bumped by a crash; older handles are dead
  bool fail_writes_ = false;
  bool fail_syncs_ = false;
  uint64_t file_syncs_ = 0;
};

}  // namespace vigil
