// BackgroundJob: runs one blocking job (writing and syncing a file) on a worker thread and
// reports its result on the event loop, so the loop never waits on the disk for it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::daemon {

// Owned by the Agent, used on its event-loop thread only. At most one job at a time.
//
// The job runs on another thread while the loop goes on: it must touch only what it owns
// (an immutable buffer it captured) and what is safe to use from two threads (a const
// Wal::write_snapshot_file, which changes nothing but files). `done` runs on the loop.
//
// Why a thread and not a forked child (the BGSAVE technique this replaced): after fork()
// every page the loop writes is copied on its first write while the child lives, and on a
// VM those faults cost ~40 us each; a snapshot of a 32k-key store stalled the leader's loop
// for 100-160 ms and set the put p99 (docs/BENCHMARKS.md, runs of 2026-12-07 and -08).
// Serializing the store in the loop takes a few tens of milliseconds at most, into a
// buffer a worker faulted in beforehand; the slow part, the write and its fsync, runs here.
class BackgroundJob {
 public:
  // The job's result: a short payload (e.g. a size) or an error.
  using Job = std::function<Result<std::string>()>;
  using Done = std::function<void(Result<std::string>)>;

  explicit BackgroundJob(boost::asio::io_context& io);
  ~BackgroundJob();  // waits for a running job; its `done` is not called
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;

  // Starts `job` on a worker thread; `done` runs later on the loop with its result.
  // Errors now: kAborted if a job is running, kInternal if no thread could start.
  Status start(Job job, Done done);
  bool running() const { return running_; }
  // Waits for a running job to end (a file write cannot be interrupted safely: on a disk
  // that hangs, so does this, as the WAL's own fsync would); its `done` is not called.
  void cancel();

 private:
  struct Token;  // shared with posted completions: reset by cancel() so they do nothing

  boost::asio::io_context& io_;
  std::thread thread_;
  bool running_ = false;
  std::shared_ptr<Token> token_;
};

}  // namespace vigil::daemon
