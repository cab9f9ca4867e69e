// ForkedJob: one job in a forked child, its result read back on the event loop.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "daemon/forked_job.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstring>

namespace vigil::daemon {

namespace asio = boost::asio;

namespace {

constexpr size_t kMaxResultBytes = 4096;

// In the child: write all of `s` to fd, ignoring errors (the parent sees a short result).
void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

// The parent's end of the result pipe, kept alive by the pending read.
struct ForkedJob::Reader {
  explicit Reader(asio::io_context& io, int fd) : pipe(io, fd) {}
  asio::posix::stream_descriptor pipe;
  std::array<char, 1024> buf{};
  std::string result;
  bool cancelled = false;
};

ForkedJob::ForkedJob(asio::io_context& io) : io_(io) {}

ForkedJob::~ForkedJob() { cancel(); }

Status ForkedJob::start(Job job, Done done) {
  if (running()) return err(Errc::kAborted, "forked job: one is already running");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return err(Errc::kIoError, std::string("forked job: pipe: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return err(Errc::kIoError, std::string("forked job: fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    // The child. Signals the parent handles through the loop would be swallowed here.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGPIPE, SIG_IGN);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(2);  // the parent died before prctl took effect
    (void)::setpriority(PRIO_PROCESS, 0, 10);
    // Hold nothing of the parent's: its sockets, the pipes of agents it runs (whose EOF
    // it may wait for), locks. The job opens what it needs.
    const unsigned keep = static_cast<unsigned>(fds[1]);
    if (keep > 3) (void)::close_range(3, keep - 1, 0);
    (void)::close_range(keep + 1, ~0U, 0);
    Result<std::string> r = job();
    std::string out = r ? "0" + *r : "1" + r.error().to_string();
    if (out.size() > kMaxResultBytes) out.resize(kMaxResultBytes);
    write_all(fds[1], out);
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_ = pid;
  done_ = std::move(done);
  reader_ = std::make_shared<Reader>(io_, fds[0]);
  struct ReadLoop {
    ForkedJob* self;
    std::shared_ptr<Reader> r;
    void operator()(const boost::system::error_code& ec, size_t n) {
      if (r->cancelled) return;
      if (!ec) {
        r->result.append(r->buf.data(), std::min(n, kMaxResultBytes - r->result.size()));
        r->pipe.async_read_some(asio::buffer(r->buf), std::move(*this));
        return;
      }
      self->finish();  // EOF (the child exited or closed the pipe) or a read error
    }
  };
  reader_->pipe.async_read_some(asio::buffer(reader_->buf), ReadLoop{this, reader_});
  return Status();
}

void ForkedJob::finish() {
  int status = 0;
  pid_t w;
  do {
    w = ::waitpid(pid_, &status, 0);
  } while (w < 0 && errno == EINTR);
  const std::string result = std::move(reader_->result);
  reader_.reset();
  pid_ = -1;
  Done done = std::move(done_);
  done_ = nullptr;

  Result<std::string> r = std::string();
  if (w < 0) {
    r = std::unexpected(
        Status(Errc::kInternal, std::string("forked job: waitpid: ") + std::strerror(errno)));
  } else if (WIFSIGNALED(status)) {
    r = std::unexpected(Status(Errc::kAborted, "forked job: the child was killed by signal " +
                                                   std::to_string(WTERMSIG(status))));
  } else if (WEXITSTATUS(status) != 0 || result.empty()) {
    r = std::unexpected(Status(Errc::kInternal, "forked job: the child exited with status " +
                                                    std::to_string(WEXITSTATUS(status)) +
                                                    " and no result"));
  } else if (result[0] == '0') {
    r = result.substr(1);
  } else {
    r = std::unexpected(Status(Errc::kInternal, result.substr(1)));
  }
  if (done) done(std::move(r));
}

void ForkedJob::cancel() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (reader_) {
    reader_->cancelled = true;
    boost::system::error_code ignored;
    reader_->pipe.close(ignored);
    reader_.reset();
  }
  done_ = nullptr;
}

}  // namespace vigil::daemon
