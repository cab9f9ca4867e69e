// ForkedJob: runs one job in a forked child (a copy-on-write image of this process) and
// reports its result on the event loop, so O(state) work such as writing a snapshot of the
// whole store never stalls the loop (the technique of Redis's BGSAVE).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::daemon {

// Owned by the Agent, used on its event-loop thread only. At most one job at a time.
//
// The child sees the process as it was at fork(): the job may read any state (the store)
// but must not touch the loop, sockets or logging, and must not allocate through locks
// another thread could hold — the agent has one thread, which is what makes fork() safe
// here (STYLE.md "one event-loop thread"). The child runs at a lower CPU priority, dies
// with its parent (PR_SET_PDEATHSIG) and ends with _exit(), running no destructors.
class ForkedJob {
 public:
  // The job's result: a short payload (e.g. a size) or an error; at most 4 KiB reach the
  // parent.
  using Job = std::function<Result<std::string>()>;
  using Done = std::function<void(Result<std::string>)>;

  explicit ForkedJob(boost::asio::io_context& io);
  ~ForkedJob();  // kills and reaps a running child
  ForkedJob(const ForkedJob&) = delete;
  ForkedJob& operator=(const ForkedJob&) = delete;

  // Forks and runs `job` in the child; `done` runs later on the loop with the job's result,
  // or an error if the child failed or was killed. Errors now: kAborted if a job is
  // running, kIoError if pipe() or fork() failed (nothing runs then).
  Status start(Job job, Done done);
  bool running() const { return pid_ > 0; }
  // Kills a running child with SIGKILL and reaps it; `done` is not called.
  void cancel();

 private:
  struct Reader;
  void finish();

  boost::asio::io_context& io_;
  pid_t pid_ = -1;
  std::shared_ptr<Reader> reader_;
  Done done_;
};

}  // namespace vigil::daemon
