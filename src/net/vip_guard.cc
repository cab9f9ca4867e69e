#include "net/vip_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first

#include "exec/child.h"
#include "exec/stop_recipe.h"

namespace vigil::net {

namespace asio = boost::asio;

// --- the protocol ---

namespace {

ErrorValue bad(const std::string& what) { return err(Errc::kInvalidArgument, what); }

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// A decimal integer in [lo, hi]: digits only (no sign, no blanks), the whole token.
template <typename T>
Result<T> parse_decimal(std::string_view name, std::string_view tok, T lo, T hi) {
  T v{};
  bool digits = !tok.empty() && tok.find_first_not_of("0123456789") == std::string_view::npos;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (!digits || ec != std::errc() || p != tok.data() + tok.size() || v < lo || v > hi) {
    return bad(std::string(name) + " " + quoted(tok) + " is not an integer in " +
               std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

Result<GuardAddress> parse_address(std::string_view ifindex, std::string_view cidr) {
  GuardAddress a;
  ASSIGN_OR_RETURN(a.ifindex, parse_decimal<int>("ifindex", ifindex, 1, INT_MAX));
  size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) {
    return bad("address " + quoted(cidr) + " has no /prefix");
  }
  auto ip = parse_ip_address(cidr.substr(0, slash));
  if (!ip) return bad("address " + quoted(cidr) + ": " + ip.error().message());
  a.ip = *ip;
  ASSIGN_OR_RETURN(a.prefix_len,
                   parse_decimal<int>("prefix", cidr.substr(slash + 1), 0, a.ip.max_prefix()));
  return a;
}

}  // namespace

std::string GuardAddress::to_string() const {
  return std::to_string(ifindex) + " " + ip.to_string() + "/" + std::to_string(prefix_len);
}

Result<GuardCommand> parse_guard_command(std::string_view line) {
  if (line.size() > kMaxGuardLineBytes) {
    return bad("a line of " + std::to_string(line.size()) + " bytes (at most " +
               std::to_string(kMaxGuardLineBytes) + ")");
  }
  for (char c : line) {
    if (c != ' ' && (c < 0x21 || c > 0x7e)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(c));
      return bad(std::string("a byte ") + hex +
                 " that is not printable ASCII (fields are separated by one space)");
    }
  }
  std::vector<std::string_view> tok;
  size_t pos = 0;
  while (true) {
    size_t sp = line.find(' ', pos);
    tok.push_back(line.substr(pos, sp == std::string_view::npos ? sp : sp - pos));
    if (tok.back().empty()) {
      return bad(line.empty() ? "an empty line"
                              : "an empty field (fields are separated by one "
                                "space, with none at either end)");
    }
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  GuardCommand c;
  const std::string_view cmd = tok[0];
  auto want = [&](size_t n, const char* form) -> Status {
    if (tok.size() == n) return Status();
    return bad(quoted(cmd) + " takes " + std::to_string(n - 1) + " field" + (n == 2 ? "" : "s") +
               " (" + form + "), not " + std::to_string(tok.size() - 1));
  };
  if (cmd == "add" || cmd == "del") {
    RETURN_IF_ERROR(want(3, "IFINDEX ADDRESS/PREFIX"));
    c.kind = cmd == "add" ? GuardCommand::Kind::kAdd : GuardCommand::Kind::kDel;
    ASSIGN_OR_RETURN(c.addr, parse_address(tok[1], tok[2]));
    return c;
  }
  if (cmd == "stop-add" || cmd == "stop-del") {
    RETURN_IF_ERROR(want(2, "PATH"));
    c.kind = cmd == "stop-add" ? GuardCommand::Kind::kStopAdd : GuardCommand::Kind::kStopDel;
    if (tok[1][0] != '/' || tok[1].size() > kMaxGuardPathBytes) {
      return bad("path " + quoted(tok[1].substr(0, 64)) + " is not absolute or is over " +
                 std::to_string(kMaxGuardPathBytes) + " bytes");
    }
    c.path = std::string(tok[1]);
    return c;
  }
  if (cmd == "hold") {
    RETURN_IF_ERROR(want(2, "UNTIL_MS"));
    c.kind = GuardCommand::Kind::kHold;
    ASSIGN_OR_RETURN(c.hold_until, parse_decimal<int64_t>("hold", tok[1], 0, INT64_MAX));
    return c;
  }
  return bad("unknown command " + quoted(cmd.substr(0, 64)) +
             " (add, del, hold, stop-add, stop-del)");
}

std::string format_guard_command(const GuardCommand& c) {
  switch (c.kind) {
    case GuardCommand::Kind::kAdd:
      return "add " + c.addr.to_string() + "\n";
    case GuardCommand::Kind::kDel:
      return "del " + c.addr.to_string() + "\n";
    case GuardCommand::Kind::kStopAdd:
      return "stop-add " + c.path + "\n";
    case GuardCommand::Kind::kStopDel:
      return "stop-del " + c.path + "\n";
    case GuardCommand::Kind::kHold:
      break;
  }
  return "hold " + std::to_string(c.hold_until) + "\n";
}

void GuardState::apply(const GuardCommand& c) {
  switch (c.kind) {
    case GuardCommand::Kind::kAdd:
      addrs_.insert(c.addr);
      break;
    case GuardCommand::Kind::kDel:
      addrs_.erase(c.addr);
      break;
    case GuardCommand::Kind::kHold:
      hold_until_ = c.hold_until;
      break;
    case GuardCommand::Kind::kStopAdd:
      stops_.insert(c.path);
      break;
    case GuardCommand::Kind::kStopDel:
      stops_.erase(c.path);
      break;
  }
}

std::optional<int64_t> GuardState::deadline() const {
  if (addrs_.empty() && stops_.empty()) return std::nullopt;
  return hold_until_;
}

bool GuardState::expired(int64_t now_ms) const {
  return (!addrs_.empty() || !stops_.empty()) && now_ms >= hold_until_;
}

std::vector<std::string> GuardState::take_stops() {
  std::vector<std::string> out(stops_.begin(), stops_.end());
  stops_.clear();
  return out;
}

std::vector<GuardAddress> GuardState::take_all() {
  std::vector<GuardAddress> out(addrs_.begin(), addrs_.end());
  addrs_.clear();
  return out;
}

// --- the guard process ---

namespace {

int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // what std::chrono::steady_clock reads
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void say(const char* level, const std::string& msg) {
  std::fprintf(stderr, "vip-guard[%d] %s: %s\n", static_cast<int>(::getpid()), level, msg.c_str());
  std::fflush(stderr);
}

// Removes every address it knows of; what could not be removed stays known (and is tried
// again). Logs after the removals: a blocked stderr must not delay them. True when none is
// left.
bool remove_all(GuardState& st, const std::string& why) {
  std::vector<std::pair<GuardAddress, Status>> done;
  for (const GuardAddress& a : st.take_all()) done.emplace_back(a, remove_address(a));
  bool ok = true;
  for (const auto& [a, s] : done) {
    if (s.ok()) continue;
    st.apply({GuardCommand::Kind::kAdd, a, 0});
    ok = false;
  }
  for (const auto& [a, s] : done) {
    if (s.ok()) {
      say("warning", why + ": removed " + a.ip.to_string() + "/" + std::to_string(a.prefix_len) +
                         " (ifindex " + std::to_string(a.ifindex) + ")");
    } else {
      say("error", why + ": " + s.message() + " (trying again)");
    }
  }
  return ok;
}

constexpr int kRetryMs = 100;         // between attempts at a removal that failed
constexpr int kMaxRetriesAtEof = 50;  // after the agent exited: then the guard gives up

}  // namespace

int run_vip_guard(int fd) {
  // A stopping agent removes its own addresses; the guard stays to cover it until it exits.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  GuardState st;
  std::string buf;
  bool skipping = false;  // inside an over-long line: dropped up to its '\n'
  uint64_t line_no = 0;
  bool retrying = false;  // a removal failed: tried again every kRetryMs
  while (true) {
    int timeout = -1;
    if (auto d = st.deadline()) {
      timeout = static_cast<int>(std::clamp<int64_t>(*d - monotonic_ms(), 0, 60000));
      if (retrying) timeout = std::min(timeout, kRetryMs);
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      say("error", std::string("poll: ") + std::strerror(errno));
      remove_all(st, "cannot read from the agent");
      return 1;
    }
    bool eof = false;
    // Everything the agent wrote is read before the deadline is looked at: a renewal written
    // before the hold ended counts.
    while (true) {
      char chunk[4096];
      ssize_t r = ::read(fd, chunk, sizeof chunk);
      if (r > 0) {
        buf.append(chunk, static_cast<size_t>(r));
        continue;
      }
      if (r == 0) eof = true;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN) {
        say("error", std::string("read: ") + std::strerror(errno));
        eof = true;
      }
      break;
    }
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      ++line_no;
      if (skipping) {
        skipping = false;
        continue;
      }
      auto c = parse_guard_command(std::string_view(buf).substr(start, nl - start));
      if (!c) {
        say("error",
            "line " + std::to_string(line_no) + " from the agent ignored: " + c.error().message());
        continue;
      }
      st.apply(*c);
    }
    buf.erase(0, start);
    if (buf.size() > kMaxGuardLineBytes) {
      say("error", "line " + std::to_string(line_no + 1) + " from the agent ignored: over " +
                       std::to_string(kMaxGuardLineBytes) + " bytes");
      buf.clear();
      skipping = true;
    }
    if (eof) {
      // Addresses first (instant), then the stops (they take their time).
      int rc = 0;
      for (int i = 0; !remove_all(st, "the agent exited"); ++i) {
        if (i == kMaxRetriesAtEof) {
          say("error", "giving up: the addresses above stay on their interfaces");
          rc = 1;
          break;
        }
        ::usleep(kRetryMs * 1000);
      }
      if (run_stop_recipes(st.take_stops(), "the agent exited") > 0) rc = 1;
      return rc;
    }
    const int64_t now = monotonic_ms();
    if (st.expired(now)) {
      std::string why = st.hold_until() == 0
                            ? "the agent holds no hold"
                            : "the agent's hold ended " + std::to_string(now - st.hold_until()) +
                                  " ms ago without renewal";
      retrying = !remove_all(st, why);
      run_stop_recipes(st.take_stops(), why);
    } else {
      retrying = false;
    }
  }
}

int run_stop_recipes(const std::vector<std::string>& paths, const std::string& why) {
  if (paths.empty()) return 0;
  asio::io_context io;
  int failed = 0;
  std::vector<std::shared_ptr<exec::ChildRun>> runs;
  for (const std::string& path : paths) {
    std::ifstream f(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) {
      say("error", why + ": cannot read the stop recipe " + path + ": " + std::strerror(errno));
      ++failed;
      continue;
    }
    auto recipe = exec::parse_stop_recipe(text);
    if (!recipe) {
      say("error", why + ": " + path + ": " + recipe.error().message());
      ++failed;
      continue;
    }
    exec::SpawnSpec spec;
    spec.path = recipe->path;
    spec.argv = recipe->argv;
    spec.env = recipe->env;
    spec.cwd = recipe->cwd;
    exec::RunLimits limits;
    limits.timeout_ms = recipe->timeout_ms;
    say("warning", why + ": stopping " + recipe->resource_id + " (" + recipe->path + ")");
    runs.push_back(exec::run_child(
        io, spec, limits,
        [&failed, why, path, id = recipe->resource_id](Result<exec::ChildRunResult> r) {
          if (!r) {
            say("error", why + ": " + id + " stop not run: " + r.error().message());
            ++failed;
            return;
          }
          const bool ok =
              !r->timed_out && r->status.known && r->status.exited && r->status.code == 0;
          std::string tail = r->stderr_tail;
          while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
          if (size_t nl = tail.rfind('\n'); nl != std::string::npos) tail = tail.substr(nl + 1);
          if (ok) {
            say("warning",
                why + ": " + id + " stopped in " + std::to_string(r->duration_ms) + " ms");
            std::error_code ec;
            std::filesystem::remove(path, ec);
          } else {
            say("error", why + ": " + id + " stop failed (" +
                             (r->timed_out ? std::string("timed out") : r->status.describe()) +
                             (tail.empty() ? "" : ": " + tail) + ")");
            ++failed;
          }
        }));
  }
  io.run();
  return failed;
}

// --- the agent's side ---

namespace {
constexpr size_t kMaxPendingBytes = 64 << 10;
}  // namespace

struct GuardClient::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_, std::string exe_) : io(io_), exe(std::move(exe_)), respawn(io_) {}

  asio::io_context& io;
  std::string exe;
  std::unique_ptr<asio::posix::stream_descriptor> sock;  // our end of the guard's stdin
  std::unique_ptr<exec::PidWatch> watch;
  pid_t pid = -1;
  std::string pending;
  bool write_waiting = false;
  asio::steady_timer respawn;
  bool respawn_scheduled = false;
  bool closed = false;
  // What the guard must know; told again to a new guard.
  std::set<GuardAddress> addrs;
  std::set<std::string> stops;
  int64_t hold = 0;

  Status start() {
    if (pid > 0 || closed) return Status();
    int sv[2];
    // A socket, not a pipe: send(MSG_NOSIGNAL) cannot raise SIGPIPE in the agent.
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return err(Errc::kIoError, std::string("vip guard: socketpair: ") + std::strerror(errno));
    }
    exec::SpawnSpec s;
    s.path = exe;
    s.argv = {"vigil", "__vip-guard"};
    s.stdin_fd = sv[1];
    s.capture_output = false;
    s.output_path = "-";
    auto sp = exec::spawn(s);
    ::close(sv[1]);
    if (!sp) {
      ::close(sv[0]);
      schedule_respawn();  // tried again every second
      return err(sp.error().code(), "vip guard: " + sp.error().message());
    }
    ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    sock = std::make_unique<asio::posix::stream_descriptor>(io, sv[0]);
    pid = sp->pid;
    watch = std::make_unique<exec::PidWatch>(io, sp->pidfd);
    std::weak_ptr<Impl> w = weak_from_this();
    watch->wait([w] {
      if (auto self = w.lock()) self->on_exit();
    });
    spdlog::info("vip guard started (pid {})", pid);
    pending.clear();
    write_waiting = false;
    // What it must know, the hold first: an address it learns of before any hold would
    // count as held by nothing.
    pending += format_guard_command({GuardCommand::Kind::kHold, {}, hold});
    for (const auto& a : addrs) pending += format_guard_command({GuardCommand::Kind::kAdd, a, 0});
    for (const auto& p : stops) {
      pending += format_guard_command({GuardCommand::Kind::kStopAdd, {}, 0, p});
    }
    flush();
    return Status();
  }

  void on_exit() {
    int status = 0;
    ::waitpid(pid, &status, WNOHANG);
    spdlog::error("vip guard (pid {}) exited ({}): starting another in 1 s", pid,
                  WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                      : "status " + std::to_string(WEXITSTATUS(status)));
    drop();
    schedule_respawn();
  }

  void drop() {
    watch.reset();
    if (sock) {
      boost::system::error_code ec;
      sock->close(ec);
      sock.reset();
    }
    pid = -1;
    pending.clear();
    write_waiting = false;
  }

  void schedule_respawn() {
    if (respawn_scheduled || closed) return;
    respawn_scheduled = true;
    respawn.expires_after(std::chrono::seconds(1));
    std::weak_ptr<Impl> w = weak_from_this();
    respawn.async_wait([w](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self) return;
      self->respawn_scheduled = false;
      if (Status s = self->start(); !s.ok()) spdlog::error("{}", s.message());
    });
  }

  void send(const GuardCommand& c) {
    if (!sock) return;  // told in full when it starts
    pending += format_guard_command(c);
    if (pending.size() > kMaxPendingBytes) {
      // It has not read 64 KiB: stuck. A new one is told everything.
      spdlog::error("vip guard (pid {}) reads nothing: killing it", pid);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);  // the pid watch goes with drop(): reaped here
      drop();
      schedule_respawn();
      return;
    }
    flush();
  }

  void flush() {
    while (sock && !pending.empty() && !write_waiting) {
      ssize_t n = ::send(sock->native_handle(), pending.data(), pending.size(),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        pending.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        write_waiting = true;
        std::weak_ptr<Impl> w = weak_from_this();
        sock->async_wait(asio::posix::stream_descriptor::wait_write,
                         [w](const boost::system::error_code& ec) {
                           auto self = w.lock();
                           if (!self || ec) return;
                           self->write_waiting = false;
                           self->flush();
                         });
        return;
      }
      // EPIPE and the like: it died; the pid watch starts another.
      pending.clear();
      return;
    }
  }

  void close() {
    closed = true;
    respawn.cancel();
    // The guard reads end of file: it removes what it knows of (nothing, after a clean stop)
    // and exits. It is not waited for: it outlives us by design.
    watch.reset();
    if (sock) {
      boost::system::error_code ec;
      sock->close(ec);
      sock.reset();
    }
  }
};

GuardClient::GuardClient(asio::io_context& io, std::string exe)
    : impl_(std::make_shared<Impl>(io, std::move(exe))) {}
GuardClient::~GuardClient() { impl_->close(); }

Status GuardClient::start() { return impl_->start(); }

// Sent every time, even when known: the guard forgets what it removed when a hold ended.
void GuardClient::add(const GuardAddress& a) {
  impl_->addrs.insert(a);
  impl_->send({GuardCommand::Kind::kAdd, a, 0});
}

void GuardClient::del(const GuardAddress& a) {
  if (impl_->addrs.erase(a) == 0) return;
  impl_->send({GuardCommand::Kind::kDel, a, 0});
}

void GuardClient::add_stop(const std::string& path) {
  impl_->stops.insert(path);
  impl_->send({GuardCommand::Kind::kStopAdd, {}, 0, path});
}

void GuardClient::del_stop(const std::string& path) {
  if (impl_->stops.erase(path) == 0) return;
  impl_->send({GuardCommand::Kind::kStopDel, {}, 0, path});
}

void GuardClient::hold(int64_t until_ms) {
  if (until_ms == impl_->hold) return;
  impl_->hold = until_ms;
  impl_->send({GuardCommand::Kind::kHold, {}, until_ms});
}

pid_t GuardClient::pid() const { return impl_->pid; }

}  // namespace vigil::net
