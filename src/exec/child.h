// Child processes of the executor: spawn with a clean environment and no inherited file
// descriptors, watch through a pidfd on the Asio loop, kill a whole process group.
// Internal to src/exec (runner.cc and process.cc use it; tests may too).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "exec/agent.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::exec {

// Who a child runs as. Looked up before fork (getpwnam_r), applied in the child.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};
// kNotFound if the user does not exist; kInvalidArgument for an empty name.
Result<Credentials> lookup_user(const std::string& user);

struct SpawnSpec {
  std::string path;               // the executable (absolute); not searched in PATH
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // the whole environment, "K=V": nothing is inherited
  std::string cwd = "/";
  // Bytes for the child's stdin (a socket, closed for writing after them: EOF follows);
  // empty: stdin is /dev/null. At most kMaxStdinBytes.
  std::string stdin_data;
  // A descriptor to become the child's stdin instead (stdin_data must be empty); the caller
  // keeps its own and closes it.
  int stdin_fd = -1;
  // Capture stdout and stderr through pipes (agents); false: both go to `output_path`
  // (appended, created 0640) or /dev/null when that is empty (supervised processes), or
  // the spawner's own stderr when it is "-".
  bool capture_output = true;
  std::string output_path;
  std::optional<Credentials> credentials;
  // SIGKILLed by the kernel when the process that spawned it exits (PR_SET_PDEATHSIG, set
  // after the credentials change, which would clear it). The daemon is single-threaded, so
  // its loop thread is that process.
  bool die_with_parent = false;
};
inline constexpr size_t kMaxStdinBytes = 32 << 10;

// A started child. The caller owns the descriptors (-1 when absent).
struct Spawned {
  pid_t pid = -1;
  int pidfd = -1;
  int stdout_fd = -1;  // non-blocking, O_CLOEXEC
  int stderr_fd = -1;
};

// fork + execve. In the child, before exec: its own session and process group (setsid),
// stdin/stdout/stderr set up, every other descriptor closed at exec (close_range with
// CLOSE_RANGE_CLOEXEC), signal mask and dispositions reset, cwd, credentials. Blocks the
// caller only until the exec succeeded or failed (a CLOEXEC pipe reports exec errors):
// microseconds to a few ms. Errors: kNotFound (no such executable), kPermissionDenied,
// kIoError; their message names the path and the errno.
Result<Spawned> spawn(const SpawnSpec& spec);

// pidfd_open(2) and pidfd_send_signal(2) through syscall(2) (glibc 2.36 lacks wrappers
// on some builds). Return -1 with errno set on failure.
int pidfd_open(pid_t pid);
int pidfd_send_signal(int pidfd, int sig);

// Field 22 of /proc/PID/stat (start time in clock ticks since boot): together with the
// pid it names one process across pid reuse. kNotFound if there is no such process.
Result<uint64_t> proc_start_time(pid_t pid);

// Sends `sig` to every process of group `pgid` (kill(-pgid)); ESRCH is not an error.
void kill_group(pid_t pgid, int sig);

// Limits of one agent run.
struct RunLimits {
  int timeout_ms = 20000;    // then SIGTERM to the process group
  int kill_grace_ms = 2000;  // then SIGKILL to the process group
  size_t tail_bytes = 4096;  // kept of stdout and of stderr each
};

struct ChildRunResult {
  ExitStatus status;
  bool timed_out = false;
  int64_t duration_ms = 0;
  std::string stdout_tail;
  std::string stderr_tail;
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;
};

// One agent invocation on the loop: output captured into bounded tails, the exit seen
// through the pidfd, the timeout enforced (SIGTERM to the group, SIGKILL after the grace;
// after a timeout the group is SIGKILLed as soon as the leader exits, so nothing it started
// survives). Completes when the leader has exited and been reaped; output still in the
// pipes is drained then without waiting for EOF (a daemon the agent started may hold the
// pipe open). Owned by whoever holds the shared_ptr (the callbacks hold one too).
class ChildRun {
 public:
  virtual ~ChildRun() = default;
  // SIGKILLs the process group and reaps the leader without calling `done` (owner gone).
  virtual void abandon() = 0;
  virtual pid_t pid() const = 0;
};
// Spawns and runs; `done` is called exactly once on the loop thread (also for a spawn
// error, through a post, never inline), unless abandon() is called first.
std::shared_ptr<ChildRun> run_child(boost::asio::io_context& io, const SpawnSpec& spec,
                                    const RunLimits& limits,
                                    std::function<void(Result<ChildRunResult>)> done);

// Waits on the loop for a process to exit, through its pidfd. Owns the pidfd. Used by the
// process supervisor for long-lived children and for adopted (non-child) processes.
class PidWatch {
 public:
  PidWatch(boost::asio::io_context& io, int pidfd);
  ~PidWatch();
  PidWatch(const PidWatch&) = delete;
  PidWatch& operator=(const PidWatch&) = delete;
  // Calls `on_exit` once on the loop thread when the process has exited (not if cancelled
  // or destroyed first). One wait at a time.
  void wait(std::function<void()> on_exit);
  // True once the process has exited (poll, no blocking).
  bool exited() const;
  int pidfd() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::exec
