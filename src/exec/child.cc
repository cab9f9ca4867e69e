// Spawning and watching child processes: fork/exec, pidfd, bounded output, timeouts.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "exec/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

namespace vigil::exec {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::string errno_text(int e) { return std::string(std::strerror(e)); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Writes all of `buf` in the child (async-signal-safe).
void child_write_errno(int fd, int e) {
  ssize_t n = ::write(fd, &e, sizeof e);
  (void)n;
}

}  // namespace

Result<Credentials> lookup_user(const std::string& user) {
  if (user.empty()) return err(Errc::kInvalidArgument, "user: empty name");
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0) return err(Errc::kIoError, "getpwnam_r " + user + ": " + errno_text(rc));
  if (found == nullptr) return err(Errc::kNotFound, "user '" + user + "' does not exist");
  Credentials c;
  c.uid = pw.pw_uid;
  c.gid = pw.pw_gid;
  int n = 64;
  c.groups.resize(static_cast<size_t>(n));
  if (::getgrouplist(user.c_str(), pw.pw_gid, c.groups.data(), &n) < 0) {
    c.groups.resize(static_cast<size_t>(n));
    ::getgrouplist(user.c_str(), pw.pw_gid, c.groups.data(), &n);
  }
  c.groups.resize(static_cast<size_t>(n));
  return c;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

Result<uint64_t> proc_start_time(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line))
    return err(Errc::kNotFound, "no process " + std::to_string(pid));
  // The command name (field 2) is in parentheses and may hold anything: skip to the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return err(Errc::kCorruption, path + ": no ')'");
  // Fields after ')' start with field 3 (state); start time is field 22.
  size_t pos = close + 1;
  for (int field = 3; field < 22; ++field) {
    pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) return err(Errc::kCorruption, path + ": too few fields");
  }
  return std::stoull(line.substr(pos + 1));
}

void kill_group(pid_t pgid, int sig) {
  if (pgid > 1) ::kill(-pgid, sig);
}

Result<Spawned> spawn(const SpawnSpec& spec) {
  if (spec.argv.empty()) return err(Errc::kInvalidArgument, "spawn: empty argv");
  if (spec.stdin_data.size() > kMaxStdinBytes) {
    return err(Errc::kResourceExhausted, "spawn: stdin data over the limit");
  }
  struct stat st {};
  if (::stat(spec.path.c_str(), &st) != 0) {
    int e = errno;
    return err(e == ENOENT ? Errc::kNotFound : Errc::kIoError, spec.path + ": " + errno_text(e));
  }
  if (!S_ISREG(st.st_mode)) return err(Errc::kPermissionDenied, spec.path + ": not a file");
  if (::access(spec.path.c_str(), X_OK) != 0) {
    return err(Errc::kPermissionDenied, spec.path + ": not executable");
  }

  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls (the parent may have threads).
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int in_fd = -1, in_parent = -1, out[2] = {-1, -1}, errp[2] = {-1, -1}, report[2] = {-1, -1};
  auto cleanup = [&] {
    close_fd(in_fd);
    close_fd(in_parent);
    close_fd(out[0]);
    close_fd(out[1]);
    close_fd(errp[0]);
    close_fd(errp[1]);
    close_fd(report[0]);
    close_fd(report[1]);
  };
  auto fail = [&](const std::string& what) {
    int e = errno;
    cleanup();
    return err(Errc::kIoError, what + ": " + errno_text(e));
  };
  if (spec.stdin_fd >= 0) {
    if (!spec.stdin_data.empty()) return err(Errc::kInvalidArgument, "spawn: two stdins");
    in_fd = ::fcntl(spec.stdin_fd, F_DUPFD_CLOEXEC, 0);
    if (in_fd < 0) return fail("dup stdin");
  } else if (spec.stdin_data.empty()) {
    in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) return fail("open /dev/null");
  } else {
    // A socket, not a pipe: send(MSG_NOSIGNAL) cannot raise SIGPIPE in the daemon.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail("socketpair");
    in_parent = sv[0];
    in_fd = sv[1];
  }
  if (spec.capture_output) {
    if (::pipe2(out, O_CLOEXEC) != 0) return fail("pipe2");
    if (::pipe2(errp, O_CLOEXEC) != 0) return fail("pipe2");
  } else if (spec.output_path == "-") {
    out[1] = ::fcntl(2, F_DUPFD_CLOEXEC, 0);
    if (out[1] < 0) return fail("dup stderr");
    errp[1] = ::fcntl(2, F_DUPFD_CLOEXEC, 0);
    if (errp[1] < 0) return fail("dup stderr");
  } else {
    const char* target = spec.output_path.empty() ? "/dev/null" : spec.output_path.c_str();
    int flags = spec.output_path.empty() ? O_WRONLY : O_WRONLY | O_CREAT | O_APPEND;
    out[1] = ::open(target, flags | O_CLOEXEC, 0640);
    if (out[1] < 0) return fail(std::string("open ") + target);
    errp[1] = ::dup(out[1]);
    if (errp[1] < 0) return fail("dup");
  }
  if (::pipe2(report, O_CLOEXEC) != 0) return fail("pipe2");

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    // The child. Async-signal-safe calls only, then exec or _exit(127).
    ::setsid();
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(errp[1], 2) < 0) {
      child_write_errno(report[1], errno);
      ::_exit(127);
    }
    // dup2 onto itself (the daemon started with 0, 1 or 2 closed) keeps FD_CLOEXEC: clear it.
    for (int fd = 0; fd <= 2; ++fd) ::fcntl(fd, F_SETFD, 0);
    // No descriptor of the daemon survives the exec (the report pipe stays usable until
    // then: it is closed by the exec, which tells the parent the exec worked).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 65536; ++fd) {
        if (fd != report[1]) ::close(fd);
      }
    }
    if (::chdir(spec.cwd.empty() ? "/" : spec.cwd.c_str()) != 0) {
      child_write_errno(report[1], errno);
      ::_exit(127);
    }
    if (spec.credentials) {
      const Credentials& c = *spec.credentials;
      if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setgid(c.gid) != 0 ||
          ::setuid(c.uid) != 0) {
        child_write_errno(report[1], errno);
        ::_exit(127);
      }
    }
    if (spec.die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        child_write_errno(report[1], errno);
        ::_exit(127);
      }
      if (::getppid() != parent) ::_exit(127);  // the parent died before the prctl
    }
    ::execve(spec.path.c_str(), argv.data(), envp.data());
    child_write_errno(report[1], errno);
    ::_exit(127);
  }

  close_fd(report[1]);
  close_fd(in_fd);
  close_fd(out[1]);
  close_fd(errp[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close_fd(report[0]);
  if (n > 0) {
    // The exec failed: reap the child (it has exited or is about to).
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    cleanup();
    return err(child_errno == ENOENT   ? Errc::kNotFound
               : child_errno == EACCES ? Errc::kPermissionDenied
                                       : Errc::kIoError,
               "exec " + spec.path + ": " + errno_text(child_errno));
  }

  Spawned s;
  s.pid = pid;
  s.pidfd = pidfd_open(pid);  // race-free: an unreaped child's pid cannot be reused
  if (s.pidfd < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    cleanup();
    return err(Errc::kIoError, "pidfd_open: " + errno_text(e) + " (Linux 5.3 or newer needed)");
  }
  ::fcntl(s.pidfd, F_SETFD, FD_CLOEXEC);
  if (in_parent >= 0) {
    // Small enough for the socket buffer: one non-blocking send, then EOF for the child.
    ssize_t sent = ::send(in_parent, spec.stdin_data.data(), spec.stdin_data.size(),
                          MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent;  // a child that exits without reading its stdin is its own business
    ::shutdown(in_parent, SHUT_WR);
    close_fd(in_parent);
  }
  if (spec.capture_output) {
    ::fcntl(out[0], F_SETFL, ::fcntl(out[0], F_GETFL) | O_NONBLOCK);
    ::fcntl(errp[0], F_SETFL, ::fcntl(errp[0], F_GETFL) | O_NONBLOCK);
    s.stdout_fd = out[0];
    s.stderr_fd = errp[0];
    out[0] = errp[0] = -1;
  }
  return s;
}

// ---------------------------------------------------------------------------------------

namespace {

class ChildRunImpl final : public ChildRun, public std::enable_shared_from_this<ChildRunImpl> {
 public:
  ChildRunImpl(asio::io_context& io, const RunLimits& limits,
               std::function<void(Result<ChildRunResult>)> done)
      : io_(io),
        limits_(limits),
        done_(std::move(done)),
        pidfd_(io),
        out_(io),
        err_(io),
        timer_(io),
        out_tail_(limits.tail_bytes),
        err_tail_(limits.tail_bytes),
        start_(Clock::now()) {}

  ~ChildRunImpl() override { abandon(); }

  void start(const SpawnSpec& spec) {
    auto spawned = spawn(spec);
    if (!spawned) {
      auto self = shared_from_this();
      asio::post(io_, [self, e = spawned.error()] { self->finish(std::unexpected(e)); });
      return;
    }
    pid_ = spawned->pid;
    pidfd_.assign(spawned->pidfd);
    if (spawned->stdout_fd >= 0) out_.assign(spawned->stdout_fd);
    if (spawned->stderr_fd >= 0) err_.assign(spawned->stderr_fd);
    read_more(out_, out_buf_, out_tail_);
    read_more(err_, err_buf_, err_tail_);
    auto self = shared_from_this();
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self](const boost::system::error_code& ec) {
                        if (!ec) self->on_exit();
                      });
    timer_.expires_after(std::chrono::milliseconds(limits_.timeout_ms));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->on_timeout();
    });
  }

  void abandon() override {
    if (pid_ > 0 && !reaped_) {
      kill_group(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    done_ = nullptr;
    close_all();
  }

  pid_t pid() const override { return pid_; }

 private:
  void read_more(asio::posix::stream_descriptor& d, std::array<char, 4096>& buf, OutputTail& tail) {
    if (!d.is_open()) return;
    auto self = shared_from_this();
    d.async_read_some(asio::buffer(buf),
                      [self, &d, &buf, &tail](const boost::system::error_code& ec, size_t n) {
                        if (ec) return;  // EOF or cancelled
                        tail.append(std::string_view(buf.data(), n));
                        self->read_more(d, buf, tail);
                      });
  }

  // Reads what the pipe holds now, without waiting (non-blocking descriptor).
  static void drain(asio::posix::stream_descriptor& d, OutputTail& tail) {
    if (!d.is_open()) return;
    std::array<char, 4096> buf;
    for (int i = 0; i < 1024; ++i) {  // bounded: a writer that never stops cannot hold us
      ssize_t n = ::read(d.native_handle(), buf.data(), buf.size());
      if (n <= 0) break;
      tail.append(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
  }

  void on_timeout() {
    if (reaped_) return;
    timed_out_ = true;
    kill_group(pid_, SIGTERM);
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(limits_.kill_grace_ms));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->reaped_) kill_group(self->pid_, SIGKILL);
    });
  }

  void on_exit() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    ChildRunResult res;
    if (r == pid_) {
      res.status = exit_status_from_wait(status);
    }  // else: reaped by someone else (SIGCHLD ignored?): status unknown
    reaped_ = true;
    // After a timeout nothing of the agent may survive: SIGKILL what is left of its group.
    // The group id cannot be reused while any member lives.
    if (timed_out_) kill_group(pid_, SIGKILL);
    timer_.cancel();
    drain(out_, out_tail_);
    drain(err_, err_tail_);
    res.timed_out = timed_out_;
    res.stdout_tail = out_tail_.str();
    res.stderr_tail = err_tail_.str();
    res.stdout_bytes = out_tail_.total_bytes();
    res.stderr_bytes = err_tail_.total_bytes();
    finish(std::move(res));
  }

  void finish(Result<ChildRunResult> res) {
    if (res) {
      res->duration_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
    }
    close_all();
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(res));
  }

  void close_all() {
    boost::system::error_code ec;
    timer_.cancel();
    if (pidfd_.is_open()) pidfd_.close(ec);
    if (out_.is_open()) out_.close(ec);
    if (err_.is_open()) err_.close(ec);
  }

  asio::io_context& io_;
  RunLimits limits_;
  std::function<void(Result<ChildRunResult>)> done_;
  asio::posix::stream_descriptor pidfd_;
  asio::posix::stream_descriptor out_;
  asio::posix::stream_descriptor err_;
  asio::steady_timer timer_;
  std::array<char, 4096> out_buf_{};
  std::array<char, 4096> err_buf_{};
  OutputTail out_tail_;
  OutputTail err_tail_;
  Clock::time_point start_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool timed_out_ = false;
};

}  // namespace

std::shared_ptr<ChildRun> run_child(asio::io_context& io, const SpawnSpec& spec,
                                    const RunLimits& limits,
                                    std::function<void(Result<ChildRunResult>)> done) {
  auto run = std::make_shared<ChildRunImpl>(io, limits, std::move(done));
  run->start(spec);
  return run;
}

struct PidWatch::Impl {
  Impl(asio::io_context& io, int fd) : desc(io, fd) {}
  asio::posix::stream_descriptor desc;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

PidWatch::PidWatch(asio::io_context& io, int pidfd) : impl_(std::make_unique<Impl>(io, pidfd)) {}

PidWatch::~PidWatch() {
  *impl_->alive = false;
  boost::system::error_code ec;
  impl_->desc.close(ec);
}

void PidWatch::wait(std::function<void()> on_exit) {
  std::weak_ptr<bool> alive = impl_->alive;
  impl_->desc.async_wait(
      asio::posix::stream_descriptor::wait_read,
      [alive, on_exit = std::move(on_exit)](const boost::system::error_code& ec) {
        auto a = alive.lock();
        if (!ec && a && *a) on_exit();
      });
}

bool PidWatch::exited() const {
  struct pollfd p {};
  p.fd = impl_->desc.native_handle();
  p.events = POLLIN;
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

int PidWatch::pidfd() const { return impl_->desc.native_handle(); }

}  // namespace vigil::exec
