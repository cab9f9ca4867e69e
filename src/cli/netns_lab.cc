// NetnsLab implementation: `ip` and `nft` for the plumbing, fork + setns + unshare for the
// hosts' PID and mount namespaces, raw rtnetlink for vip_holders(), poll() for the prober.
#include "cli/netns_lab.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/http_client.h"
#include "cli/local_cluster.h"
#include "daemon/config.h"

namespace vigil::cli {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kPeerPort = 7001;
constexpr int kApiPort = 8001;

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Everything an exec after fork() needs, built before the fork (only async-signal-safe
// calls between fork and exec: this process has threads).
struct Argv {
  explicit Argv(const std::vector<std::string>& a) : strings(a) {
    for (auto& s : strings) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  std::vector<std::string> strings;
  std::vector<char*> ptrs;
};

bool pid_alive_raw(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

void sleep_ms_raw(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

bool read_full(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The address family of a lab address by its form ("2001:2::100" or "198.18.0.100").
int family_of(const std::string& ip) {
  return ip.find(':') == std::string::npos ? AF_INET : AF_INET6;
}

}  // namespace

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

// --- Static helpers ---------------------------------------------------------------------

std::pair<int, std::string> NetnsLab::run(const std::vector<std::string>& argv) {
  Argv a(argv);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {-1, "pipe failed"};
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    if (devnull >= 0) ::close(devnull);
    return {-1, "fork failed"};
  }
  if (pid == 0) {
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    ::close_range(3, ~0U, 0);
    ::execvp(a.ptrs[0], a.ptrs.data());
    ::_exit(127);
  }
  ::close(p[1]);
  if (devnull >= 0) ::close(devnull);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

Status NetnsLab::sh(const std::vector<std::string>& argv) {
  auto [rc, out] = run(argv);
  if (rc == 0) return Status();
  std::string cmd;
  for (const auto& s : argv) cmd += (cmd.empty() ? "" : " ") + s;
  return err(Errc::kIoError, cmd + ": exit " + std::to_string(rc) + ": " + out);
}

std::string NetnsLab::unavailable_reason() {
  if (::geteuid() != 0) return "needs root (network namespaces, veth, nftables)";
  for (const char* tool : {"ip", "nft"}) {
    bool found = false;
    for (const char* d : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
      found = found || ::access((std::string(d) + tool).c_str(), X_OK) == 0;
    }
    if (!found) return std::string("`") + tool + "` is missing (apt-get install iproute2 nftables)";
  }
  if (::access("/proc/self/ns/net", R_OK) != 0 || ::access("/proc/self/ns/pid", R_OK) != 0) {
    return "this kernel has no network or PID namespaces";
  }
  return "";
}

bool NetnsLab::process_alive(pid_t pid) {
  if (!pid_alive_raw(pid)) return false;
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

int NetnsLab::remove_leftovers() {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string name = e.path().filename().string();
    // vl<digits>-<rest>
    if (name.size() < 4 || name.compare(0, 2, "vl") != 0) continue;
    size_t dash = name.find('-');
    if (dash == std::string::npos || dash == 2) continue;
    std::string digits = name.substr(2, dash - 2);
    if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    pid_t owner = static_cast<pid_t>(std::atol(digits.c_str()));
    if (owner == ::getpid() || pid_alive_raw(owner)) continue;
    auto [rc, pids] = run({"ip", "netns", "pids", name});
    std::istringstream in(pids);
    pid_t p;
    while (in >> p) {
      if (p > 1) ::kill(p, SIGKILL);
    }
    for (int i = 0; i < 100 && rc == 0; ++i) {
      auto [rc2, left] = run({"ip", "netns", "pids", name});
      if (rc2 != 0 || left.find_first_not_of(" \n") == std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
    if (run({"ip", "netns", "del", name}).first == 0) ++removed;
  }
  return removed;
}

void NetnsLab::in_netns(const std::string& ns, const std::function<void()>& fn) {
  int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  std::thread t([&] {
    if (fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0) fn();
  });
  t.join();
  if (fd >= 0) ::close(fd);
}

// --- The lab ----------------------------------------------------------------------------

NetnsLab::NetnsLab(NetnsLabOptions options) : options_(std::move(options)) {
  id_ = "vl" + std::to_string(::getpid());
  dir_ = options_.dir.empty() ? "/tmp/vigil-lab-" + std::to_string(::getpid()) : options_.dir;
  hosts_.resize(static_cast<size_t>(options_.hosts) + 1);
  remove_leftovers();
}

NetnsLab::~NetnsLab() {
  // Every init at once, then the waits: a PID namespace with its mount namespace takes
  // 1.5-2 s to die here (the mount tree's teardown), so one by one would add up.
  for (int h = 1; h <= options_.hosts; ++h) {
    if (hosts_[h].init > 0) ::kill(hosts_[h].init, SIGKILL);
  }
  for (int h = 1; h <= options_.hosts; ++h) {
    if (hosts_[h].init > 0) kill_host(h);
    if (hosts_[h].nl_fd >= 0) ::close(hosts_[h].nl_fd);
  }
  for (auto it = created_ns_.rbegin(); it != created_ns_.rend(); ++it) {
    auto [rc, pids] = run({"ip", "netns", "pids", *it});
    std::istringstream in(pids);
    pid_t p;
    while (in >> p) {
      if (p > 1) ::kill(p, SIGKILL);
    }
    run({"ip", "netns", "del", *it});
  }
  if (!options_.keep_dir) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string NetnsLab::host_ns(int host) const { return id_ + "-n" + std::to_string(host); }
std::string NetnsLab::host_name(int host) const { return "n" + std::to_string(host); }
std::string NetnsLab::client_ns() const { return id_ + "-cl"; }
std::string NetnsLab::switch_ns() const { return id_ + "-sw"; }
std::string NetnsLab::host_ip(int host) { return "198.18.0." + std::to_string(host); }
std::string NetnsLab::host_ip6(int host) { return "2001:2::" + std::to_string(host); }
std::string NetnsLab::run_dir(int host) const { return dir_ + "/" + host_name(host) + "-run"; }

Status NetnsLab::setup() {
  if (options_.hosts < 1 || options_.hosts > 99) {
    return err(Errc::kInvalidArgument, "hosts must be 1..99");
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);  // fresh: certificates, data and logs of this run only
  fs::create_directories(dir_, ec);
  if (ec) return err(Errc::kIoError, "create " + dir_ + ": " + ec.message());
  const std::string sw = switch_ns();
  auto add_ns = [&](const std::string& ns) -> Status {
    RETURN_IF_ERROR(sh({"ip", "netns", "add", ns}));
    created_ns_.push_back(ns);
    return sh({"ip", "-n", ns, "link", "set", "lo", "up"});
  };
  RETURN_IF_ERROR(add_ns(sw));
  RETURN_IF_ERROR(sh({"ip", "-n", sw, "link", "add", "br0", "type", "bridge"}));
  RETURN_IF_ERROR(sh({"ip", "-n", sw, "link", "set", "br0", "up"}));
  auto plug = [&](const std::string& ns, const std::string& port, const std::string& addr,
                  const std::string& addr6) -> Status {
    RETURN_IF_ERROR(add_ns(ns));
    RETURN_IF_ERROR(sh({"ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                        "netns", ns}));
    RETURN_IF_ERROR(sh({"ip", "-n", sw, "link", "set", port, "master", "br0"}));
    RETURN_IF_ERROR(sh({"ip", "-n", sw, "link", "set", port, "up"}));
    RETURN_IF_ERROR(add_addresses(ns, addr, addr6));
    return sh({"ip", "-n", ns, "link", "set", "eth0", "up"});
  };
  RETURN_IF_ERROR(plug(client_ns(), "pc", kClientIp, kClientIp6));
  for (int h = 1; h <= options_.hosts; ++h) {
    RETURN_IF_ERROR(plug(host_ns(h), "p" + std::to_string(h), host_ip(h), host_ip6(h)));
    fs::create_directories(run_dir(h), ec);
    // A netlink socket that lives in the host's namespace, for vip_holders().
    int fd = -1;
    in_netns(host_ns(h),
             [&] { fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); });
    if (fd < 0) return err(Errc::kIoError, "netlink socket in " + host_ns(h));
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    hosts_[h].nl_fd = fd;
    RETURN_IF_ERROR(start_init(h));
  }
  return Status();
}

// The host's init: a child that joins the host's network namespace and unshares PID, mount
// and UTS namespaces; its own child is pid 1 there: it makes the mounts private, mounts a
// /proc of the new PID namespace and DIR/<host>-run on /run, sets the host name, and reaps
// orphans forever. The middle process waits for it; each dies with its parent.
Status NetnsLab::start_init(int host) {
  const std::string ns_path = "/run/netns/" + host_ns(host);
  const std::string run = run_dir(host);
  const std::string hostname = host_name(host);
  int netfd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (netfd < 0) return err(Errc::kIoError, "open " + ns_path + ": " + std::strerror(errno));
  int p[2], q[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ::close(netfd);
    return err(Errc::kIoError, "pipe");
  }
  if (::pipe2(q, O_CLOEXEC) != 0) {
    ::close(netfd);
    ::close(p[0]);
    ::close(p[1]);
    return err(Errc::kIoError, "pipe");
  }
  pid_t mid = ::fork();
  if (mid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(p[0]);
    if (::setns(netfd, CLONE_NEWNET) != 0) ::_exit(120);
    if (::unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS) != 0) ::_exit(121);
    pid_t init = ::fork();
    if (init == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      pid_t ok = 1;
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ok = 0;
      if (ok && ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        ok = 0;
      }
      if (ok && ::mount(run.c_str(), "/run", nullptr, MS_BIND, nullptr) != 0) ok = 0;
      if (ok) ::sethostname(hostname.data(), hostname.size());
      (void)!::write(q[1], &ok, sizeof ok);
      if (!ok) ::_exit(122);
      for (int fd = 0; fd < 1024; ++fd) ::close(fd);
      for (;;) {
        int st;
        if (::waitpid(-1, &st, 0) < 0) sleep_ms_raw(50);
      }
    }
    // Our init's pid as the lab sees it (this process is still in the lab's PID namespace),
    // then whether it could set itself up.
    ::close(q[1]);
    pid_t ok = 0;
    if (init < 0 || !read_full(q[0], &ok, sizeof ok)) ok = 0;
    (void)!::write(p[1], &init, sizeof init);
    (void)!::write(p[1], &ok, sizeof ok);
    ::close(p[1]);
    int st;
    while (init > 0 && ::waitpid(init, &st, 0) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(q[0]);
  ::close(q[1]);
  ::close(netfd);
  ::close(p[1]);
  if (mid < 0) {
    ::close(p[0]);
    return err(Errc::kIoError, "fork");
  }
  pid_t init = -1, ok = 0;
  bool got = read_full(p[0], &init, sizeof init) && read_full(p[0], &ok, sizeof ok);
  ::close(p[0]);
  if (!got || init <= 0 || ok != 1) {
    ::kill(mid, SIGKILL);
    int st;
    ::waitpid(mid, &st, 0);
    return err(Errc::kIoError, "cannot start the init of " + host_ns(host));
  }
  hosts_[host].init = init;
  hosts_[host].up = true;
  hosts_[host].agent = -1;
  hosts_[host].mid = mid;
  return Status();
}

Result<pid_t> NetnsLab::spawn(int host, const std::vector<std::string>& argv,
                              const std::string& log_path) {
  if (host < 1 || host > options_.hosts || !hosts_[host].up) {
    return err(Errc::kUnavailable, host_name(host) + " is down");
  }
  const std::string proc = "/proc/" + std::to_string(hosts_[host].init) + "/ns/";
  int netfd = ::open(("/run/netns/" + host_ns(host)).c_str(), O_RDONLY | O_CLOEXEC);
  int pidfd = ::open((proc + "pid").c_str(), O_RDONLY | O_CLOEXEC);
  int mntfd = ::open((proc + "mnt").c_str(), O_RDONLY | O_CLOEXEC);
  int utsfd = ::open((proc + "uts").c_str(), O_RDONLY | O_CLOEXEC);
  int logfd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int p[2] = {-1, -1};
  bool ok = netfd >= 0 && pidfd >= 0 && mntfd >= 0 && utsfd >= 0 && logfd >= 0 && devnull >= 0 &&
            ::pipe2(p, O_CLOEXEC) == 0;
  auto close_all = [&] {
    for (int fd : {netfd, pidfd, mntfd, utsfd, logfd, devnull, p[0], p[1]}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (!ok) {
    close_all();
    return err(Errc::kIoError, "spawn on " + host_name(host) + ": " + std::strerror(errno));
  }
  Argv a(argv);
  pid_t mid = ::fork();
  if (mid == 0) {
    if (::setns(netfd, CLONE_NEWNET) != 0 || ::setns(pidfd, CLONE_NEWPID) != 0 ||
        ::setns(mntfd, CLONE_NEWNS) != 0 || ::setns(utsfd, CLONE_NEWUTS) != 0) {
      ::_exit(120);
    }
    if (::chdir("/") != 0) ::_exit(121);
    pid_t child = ::fork();
    if (child == 0) {
      ::setsid();
      ::dup2(devnull, 0);
      ::dup2(logfd, 1);
      ::dup2(logfd, 2);
      ::close_range(3, ~0U, 0);
      ::execv(a.ptrs[0], a.ptrs.data());
      ::_exit(127);
    }
    (void)!::write(p[1], &child, sizeof child);
    ::_exit(0);  // the child is the host init's now
  }
  ::close(p[1]);
  p[1] = -1;
  pid_t child = -1;
  bool got = mid > 0 && read_full(p[0], &child, sizeof child);
  int st;
  if (mid > 0) ::waitpid(mid, &st, 0);
  close_all();
  if (!got || child <= 0) {
    return err(Errc::kIoError, "spawn on " + host_name(host) + " failed (exit " +
                                   std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) + ")");
  }
  return child;
}

void NetnsLab::kill_host(int host) {
  Host& h = hosts_[host];
  // The link first: a dead machine sends nothing, and its kernel would otherwise answer
  // for its addresses (RSTs, ARP with the VIP as sender) while its processes die.
  run({"ip", "-n", switch_ns(), "link", "set", "p" + std::to_string(host), "down"});
  if (h.init > 0) ::kill(h.init, SIGKILL);
  if (h.mid > 0) {
    // It returns once init is reaped, which is after every process of its PID namespace.
    int st;
    while (::waitpid(h.mid, &st, 0) < 0 && errno == EINTR) {
    }
    h.mid = -1;
  }
  // Every process of the PID namespace dies with its init; wait until none is left in
  // the network namespace.
  for (int i = 0; i < 500; ++i) {
    auto [rc, pids] = run({"ip", "netns", "pids", host_ns(host)});
    if (rc != 0 || pids.find_first_not_of(" \n") == std::string::npos) break;
    if (i % 50 == 49) {
      std::istringstream in(pids);
      pid_t p;
      while (in >> p) ::kill(p, SIGKILL);
    }
    std::this_thread::sleep_for(2ms);
  }
  h.init = -1;
  h.agent = -1;
  h.up = false;
  run({"ip", "-n", host_ns(host), "addr", "flush", "dev", "eth0"});
}

Status NetnsLab::add_addresses(const std::string& ns, const std::string& ip4,
                               const std::string& ip6) {
  RETURN_IF_ERROR(sh({"ip", "-n", ns, "addr", "add", ip4 + "/24", "dev", "eth0"}));
  return sh({"ip", "-n", ns, "addr", "add", ip6 + "/64", "dev", "eth0", "nodad"});
}

Status NetnsLab::revive_host(int host) {
  if (hosts_[host].up) return Status();
  (void)run({"ip", "-n", host_ns(host), "addr", "flush", "dev", "eth0"});
  RETURN_IF_ERROR(add_addresses(host_ns(host), host_ip(host), host_ip6(host)));
  RETURN_IF_ERROR(sh({"ip", "-n", switch_ns(), "link", "set", "p" + std::to_string(host), "up"}));
  return start_init(host);
}

bool NetnsLab::host_up(int host) const { return hosts_[host].up; }

std::vector<pid_t> NetnsLab::host_pids(int host, const std::string& comm) const {
  std::vector<pid_t> out;
  pid_t init = hosts_[host].init;
  if (init <= 0) return out;
  std::error_code ec;
  std::string want = fs::read_symlink("/proc/" + std::to_string(init) + "/ns/pid", ec).string();
  if (ec) return out;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str()));
    if (pid == init) continue;
    std::error_code ec2;
    if (fs::read_symlink(e.path() / "ns/pid", ec2).string() != want || ec2) continue;
    if (!comm.empty()) {
      std::string c = read_text(e.path().string() + "/comm");
      while (!c.empty() && c.back() == '\n') c.pop_back();
      if (c != comm) continue;
    }
    out.push_back(pid);
  }
  return out;
}

namespace {
// The switch namespace has one table per port, so that hosts are cut and healed apart.
std::string cut_table(const std::string& dev) { return "vigil_lab_" + dev; }

std::string isolate_rules(const std::string& dev) {
  return "table netdev " + cut_table(dev) +
         " {\n"
         "  chain in {\n"
         "    type filter hook ingress device \"" +
         dev +
         "\" priority 0; policy drop;\n"
         "  }\n"
         "}\n";
}
}  // namespace

Status NetnsLab::isolate(int host, Cut cut) {
  const std::string file = dir_ + "/isolate-" + host_name(host);
  const std::string port = "p" + std::to_string(host);
  Host& h = hosts_[host];
  // What the host sends enters the switch at its port; what it receives enters at its eth0.
  if (cut != Cut::kInbound && !h.cut_out) {
    if (!write_text(file + "-sw.nft", isolate_rules(port)))
      return err(Errc::kIoError, "write " + file + "-sw.nft");
    RETURN_IF_ERROR(sh({"ip", "netns", "exec", switch_ns(), "nft", "-f", file + "-sw.nft"}));
    h.cut_out = true;
  }
  if (cut != Cut::kOutbound && !h.cut_in) {
    if (!write_text(file + "-host.nft", isolate_rules("eth0")))
      return err(Errc::kIoError, "write " + file + "-host.nft");
    RETURN_IF_ERROR(sh({"ip", "netns", "exec", host_ns(host), "nft", "-f", file + "-host.nft"}));
    h.cut_in = true;
  }
  return Status();
}

Status NetnsLab::heal(int host) {
  Host& h = hosts_[host];
  Status a, b;
  if (h.cut_out) {
    a = sh({"ip", "netns", "exec", switch_ns(), "nft", "delete", "table", "netdev",
            cut_table("p" + std::to_string(host))});
    if (a.ok()) h.cut_out = false;
  }
  if (h.cut_in) {
    b = sh({"ip", "netns", "exec", host_ns(host), "nft", "delete", "table", "netdev",
            cut_table("eth0")});
    if (b.ok()) h.cut_in = false;
  }
  return a.ok() ? b : a;
}

std::vector<int> NetnsLab::vip_holders(const std::string& ip) const {
  std::vector<int> out;
  unsigned char want[16] = {};
  const int family = family_of(ip);
  const size_t want_len = family == AF_INET ? 4 : 16;
  if (::inet_pton(family, ip.c_str(), want) != 1) return out;
  std::lock_guard<std::mutex> lock(nl_mu_);
  for (int h = 1; h <= options_.hosts; ++h) {
    int fd = hosts_[h].nl_fd;
    if (fd < 0) continue;
    struct {
      nlmsghdr nh;
      ifaddrmsg ifa;
    } req{};
    req.nh.nlmsg_len = sizeof req;
    req.nh.nlmsg_type = RTM_GETADDR;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = ++nl_seq_;
    req.ifa.ifa_family = static_cast<unsigned char>(family);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) <
        0) {
      continue;
    }
    bool found = false, done = false;
    alignas(nlmsghdr) char buf[16384];
    while (!done) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      int len = static_cast<int>(n);
      for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, len);
           nh = NLMSG_NEXT(nh, len)) {
        if (nh->nlmsg_seq != nl_seq_) continue;  // a late answer to an earlier dump
        if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        if (nh->nlmsg_type != RTM_NEWADDR) continue;
        auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(nh));
        int alen = static_cast<int>(IFA_PAYLOAD(nh));
        for (auto* rta = IFA_RTA(ifa); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
          if ((rta->rta_type == IFA_LOCAL || rta->rta_type == IFA_ADDRESS) &&
              RTA_PAYLOAD(rta) == want_len && std::memcmp(RTA_DATA(rta), want, want_len) == 0) {
            found = true;
          }
        }
      }
    }
    if (found) out.push_back(h);
  }
  return out;
}

// --- Agents -----------------------------------------------------------------------------

std::string NetnsLab::config_path(int host) const { return dir_ + "/" + host_name(host) + ".yaml"; }
std::string NetnsLab::log_path(int host) const { return dir_ + "/" + host_name(host) + ".log"; }
std::string NetnsLab::data_dir(int host) const { return dir_ + "/" + host_name(host); }
std::string NetnsLab::ca_file() const { return dir_ + "/certs/ca.crt"; }
std::string NetnsLab::admin_token_file() const {
  return local_token_path(dir_, daemon::ApiRole::kAdmin);
}

Status NetnsLab::write_agent_configs() {
  LocalClusterOptions lo;
  lo.nodes = options_.hosts;
  lo.dir = dir_;
  lo.insecure = false;
  lo.cluster = options_.cluster;
  lo.base_port = kPeerPort;
  ASSIGN_OR_RETURN(auto nodes, plan_local_cluster(lo, CliHooks{}));
  std::vector<daemon::PeerConfig> peers = nodes.front().config.peers;
  for (size_t i = 0; i < peers.size(); ++i) {
    const std::string ip = host_ip(static_cast<int>(i) + 1);
    peers[i].peer = {ip, static_cast<uint16_t>(kPeerPort)};
    peers[i].api = {ip, static_cast<uint16_t>(kApiPort)};
  }
  const std::string certs = dir_ + "/certs";
  std::error_code ec;
  fs::create_directories(certs, ec);
  RETURN_IF_ERROR(
      sh({options_.vigil_binary, "cert", "init", "--dir", certs, "--cluster", options_.cluster}));
  std::vector<std::string> issue = {options_.vigil_binary, "cert", "issue", "--dir", certs};
  for (const auto& n : nodes) issue.push_back(n.config.node);
  RETURN_IF_ERROR(sh(issue));
  RETURN_IF_ERROR(write_local_tokens(nodes));
  auto token = daemon::read_api_token_file(admin_token_file());
  if (!token) return token.error().with_context(admin_token_file());
  tokens_["admin"] = *token;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& c = nodes[i].config;
    c.peers = peers;
    c.listen = {peers[i].peer, peers[i].api};
    if (options_.tick_ms) c.timers.tick_ms = options_.tick_ms;
    if (options_.heartbeat_ms) c.timers.heartbeat_ms = options_.heartbeat_ms;
    if (options_.election_timeout_ms) c.timers.election_timeout_ms = options_.election_timeout_ms;
    if (options_.hold_ms) c.timers.hold_ms = options_.hold_ms;
    c.timers.hold_guard_ms = options_.hold_guard_ms >= 0
                                 ? static_cast<uint32_t>(options_.hold_guard_ms)
                                 : c.timers.default_hold_guard_ms();
    c.fsync = options_.fsync;
    if (!write_text(nodes[i].config_path, daemon::render_agent_config(c))) {
      return err(Errc::kIoError, "write " + nodes[i].config_path);
    }
  }
  return Status();
}

Status NetnsLab::start_agent(int host, const std::vector<std::string>& env) {
  if (hosts_[host].agent > 0 && process_alive(hosts_[host].agent)) {
    return err(Errc::kAlreadyExists, host_name(host) + ": agent already running");
  }
  std::vector<std::string> argv;
  if (!env.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  for (std::string a :
       {options_.vigil_binary, std::string("agent"), std::string("--config"), config_path(host)}) {
    argv.push_back(std::move(a));
  }
  ASSIGN_OR_RETURN(pid_t pid, spawn(host, argv, log_path(host)));
  hosts_[host].agent = pid;
  return Status();
}

void NetnsLab::stop_agent(int host, int sig) {
  pid_t pid = hosts_[host].agent;
  if (pid <= 0) return;
  ::kill(pid, sig);
  auto until = Clock::now() + 10s;
  while (process_alive(pid) && Clock::now() < until) std::this_thread::sleep_for(5ms);
  if (process_alive(pid)) ::kill(pid, SIGKILL);
  while (process_alive(pid)) std::this_thread::sleep_for(5ms);
  hosts_[host].agent = -1;
}

pid_t NetnsLab::agent_pid(int host) const { return hosts_[host].agent; }

std::pair<int, std::string> NetnsLab::api(int host, const std::string& method,
                                          const std::string& target, const std::string& body,
                                          int timeout_ms) const {
  api::HttpClientOptions o;
  o.tls = true;
  o.ca_file = ca_file();
  o.server_name = host_name(host);
  if (auto it = tokens_.find("admin"); it != tokens_.end()) o.bearer_token = it->second;
  std::pair<int, std::string> out{0, "not run"};
  in_client([&] {
    api::HttpClient c(host_ip(host) + ":" + std::to_string(kApiPort), o);
    auto r = c.request(method, target, body, timeout_ms);
    if (!r) {
      out = {0, r.error().to_string()};
    } else {
      out = {r->status, r->body};
    }
  });
  return out;
}

std::pair<int, std::string> NetnsLab::vigil(int host, const std::string& args) const {
  std::vector<std::string> argv = {"ip", "netns", "exec", client_ns(), options_.vigil_binary};
  std::istringstream in(args);
  std::string word;
  while (in >> word) argv.push_back(word);
  for (const std::string& s :
       {std::string("--api"), "https://" + host_ip(host) + ":" + std::to_string(kApiPort),
        std::string("--server-name"), host_name(host), std::string("--cacert"), ca_file(),
        std::string("--token-file"), admin_token_file()}) {
    argv.push_back(s);
  }
  return run(argv);
}

int NetnsLab::wait_for_leader(std::chrono::milliseconds timeout) const {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    std::map<int, std::pair<std::string, std::string>> seen;  // host → (role, leader)
    bool all = true;
    for (int h = 1; h <= options_.hosts; ++h) {
      if (!hosts_[h].up || hosts_[h].agent <= 0) continue;
      auto [code, body] = api(h, "GET", "/v1/status", "", 500);
      if (code != 200) {
        all = false;
        break;
      }
      // Tiny extraction without a JSON dependency in this file's interface.
      auto field = [&](const std::string& key) {
        size_t k = body.find("\"" + key + "\"");
        if (k == std::string::npos) return std::string();
        size_t q1 = body.find('"', body.find(':', k) + 1);
        size_t q2 = q1 == std::string::npos ? q1 : body.find('"', q1 + 1);
        return q2 == std::string::npos ? std::string() : body.substr(q1 + 1, q2 - q1 - 1);
      };
      seen[h] = {field("role"), field("leader")};
    }
    if (all && !seen.empty()) {
      int leader = 0;
      for (auto& [h, rl] : seen) {
        if (rl.first == "leader") leader = h;
      }
      bool agreed = leader != 0;
      for (auto& [h, rl] : seen) agreed = agreed && rl.second == host_name(leader);
      if (agreed) return leader;
    }
    std::this_thread::sleep_for(20ms);
  }
  return 0;
}

std::string NetnsLab::log_tail(int host, int lines) const {
  std::ifstream f(log_path(host));
  std::vector<std::string> all;
  std::string line;
  while (std::getline(f, line)) all.push_back(line);
  std::ostringstream out;
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  for (size_t i = from; i < all.size(); ++i) out << all[i] << "\n";
  return out.str();
}

// --- Prober -----------------------------------------------------------------------------

const char* probe_outcome_name(ProbeOutcome o) {
  switch (o) {
    case ProbeOutcome::kOk:
      return "ok";
    case ProbeOutcome::kRefused:
      return "refused";
    case ProbeOutcome::kTimeout:
      return "timeout";
    case ProbeOutcome::kError:
      return "error";
  }
  return "?";
}

Prober::Prober(const NetnsLab& lab, std::string ip, int port, std::chrono::milliseconds interval,
               std::chrono::milliseconds timeout)
    : ns_(lab.client_ns()),
      ip_(std::move(ip)),
      port_(port),
      interval_(interval),
      timeout_(timeout) {}

Prober::~Prober() { stop(); }

void Prober::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  t0_ = Clock::now();
  int fd = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
  thread_ = std::thread([this, fd] {
    bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) ::close(fd);
    if (ok) loop();
  });
}

void Prober::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

int64_t Prober::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0_).count();
}

void Prober::loop() {
  struct InFlight {
    int fd;
    int64_t start_us;
    bool connected = false;
    std::string in;
  };
  const int family = family_of(ip_);
  sockaddr_storage to{};
  socklen_t to_len = 0;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, ip_.c_str(), &a->sin_addr);
    to_len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET6, ip_.c_str(), &a->sin6_addr);
    to_len = sizeof(sockaddr_in6);
  }
  const std::string host_header = family == AF_INET ? ip_ : "[" + ip_ + "]";
  const std::string request = "GET / HTTP/1.0\r\nHost: " + host_header + "\r\n\r\n";
  const int64_t interval_us = interval_.count() * 1000, timeout_us = timeout_.count() * 1000;
  std::vector<InFlight> flight;
  int64_t next_us = now_us();
  auto finish = [&](InFlight& f, ProbeOutcome o) {
    ProbeRecord r;
    r.start_us = f.start_us;
    r.latency_us = now_us() - f.start_us;
    r.outcome = o;
    if (o == ProbeOutcome::kOk) {
      size_t sp = f.in.find(' ');
      size_t body = f.in.find("\r\n\r\n");
      bool is200 = sp != std::string::npos && f.in.compare(sp + 1, 3, "200") == 0;
      if (!is200 || body == std::string::npos) {
        r.outcome = ProbeOutcome::kError;
      } else {
        r.host = f.in.substr(body + 4);
        while (!r.host.empty() &&
               (r.host.back() == '\n' || r.host.back() == '\r' || r.host.back() == ' ')) {
          r.host.pop_back();
        }
      }
    }
    if (o != ProbeOutcome::kOk) {
      linger l{1, 0};  // reset, leave nothing behind
      ::setsockopt(f.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(f.fd);
    f.fd = -1;
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(r));
  };
  while (!stop_ || !flight.empty()) {
    int64_t now = now_us();
    if (!stop_ && now >= next_us) {
      next_us += interval_us;
      if (next_us < now) next_us = now + interval_us;  // never a burst after a stall
      InFlight f{::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), now};
      if (f.fd < 0) {
        std::lock_guard<std::mutex> lock(mu_);
        records_.push_back({now, 0, ProbeOutcome::kError, ""});
      } else {
        int rc = ::connect(f.fd, reinterpret_cast<sockaddr*>(&to), to_len);
        if (rc == 0 || errno == EINPROGRESS) {
          flight.push_back(std::move(f));
        } else {
          finish(f, errno == ECONNREFUSED ? ProbeOutcome::kRefused : ProbeOutcome::kError);
        }
      }
    }
    // Timeouts.
    now = now_us();
    for (auto& f : flight) {
      if (now - f.start_us >= timeout_us) finish(f, ProbeOutcome::kTimeout);
    }
    std::erase_if(flight, [](const InFlight& f) { return f.fd < 0; });
    int64_t wait_us = stop_ ? timeout_us : std::max<int64_t>(0, next_us - now_us());
    for (auto& f : flight) wait_us = std::min(wait_us, f.start_us + timeout_us - now_us());
    std::vector<pollfd> pfd;
    for (auto& f : flight) {
      pfd.push_back({f.fd, static_cast<short>(f.connected ? POLLIN : POLLOUT), 0});
    }
    int ms = static_cast<int>(std::max<int64_t>(0, (wait_us + 999) / 1000));
    int n = ::poll(pfd.data(), pfd.size(), ms);
    if (n <= 0) continue;
    for (size_t i = 0; i < pfd.size(); ++i) {
      InFlight& f = flight[i];
      if (pfd[i].revents == 0) continue;
      if (!f.connected) {
        int e = 0;
        socklen_t len = sizeof e;
        ::getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &e, &len);
        if (e != 0) {
          finish(f, e == ECONNREFUSED ? ProbeOutcome::kRefused : ProbeOutcome::kError);
          continue;
        }
        f.connected = true;
        if (::send(f.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
          finish(f, ProbeOutcome::kError);
        }
        continue;
      }
      char buf[2048];
      ssize_t r = ::recv(f.fd, buf, sizeof buf, 0);
      if (r > 0) {
        f.in.append(buf, static_cast<size_t>(r));
      } else if (r == 0) {
        finish(f, ProbeOutcome::kOk);
      } else if (errno != EAGAIN && errno != EINTR) {
        finish(f, errno == ECONNREFUSED ? ProbeOutcome::kRefused : ProbeOutcome::kError);
      }
    }
    std::erase_if(flight, [](const InFlight& f) { return f.fd < 0; });
  }
}

std::vector<ProbeRecord> Prober::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto out = records_;
  std::sort(out.begin(), out.end(),
            [](const ProbeRecord& a, const ProbeRecord& b) { return a.start_us < b.start_us; });
  return out;
}

ProbeStats Prober::stats(int64_t from_us, int64_t to_us) const {
  auto all = records();
  std::vector<ProbeRecord> sel;
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& r = all[i];
    if (r.start_us >= from_us && (to_us <= 0 || r.start_us < to_us)) {
      // The probe before the window too, so that an outage starting at from_us counts from
      // the last good answer before it.
      if (sel.empty() && i > 0) sel.push_back(all[i - 1]);
      sel.push_back(r);
    }
  }
  return summarize(sel);
}

ProbeStats Prober::summarize(const std::vector<ProbeRecord>& rs) {
  ProbeStats s;
  s.total = rs.size();
  std::string run_key;
  size_t run_len = 0;
  auto flush_run = [&] {
    if (run_len == 0) return;
    s.timeline += (s.timeline.empty() ? "" : " ") + run_key + "x" + std::to_string(run_len);
  };
  size_t best_len = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto& r = rs[i];
    switch (r.outcome) {
      case ProbeOutcome::kOk:
        ++s.ok;
        ++s.by_host[r.host];
        break;
      case ProbeOutcome::kRefused:
        ++s.refused;
        break;
      case ProbeOutcome::kTimeout:
        ++s.timeout;
        break;
      case ProbeOutcome::kError:
        ++s.error;
        break;
    }
    std::string key = r.outcome == ProbeOutcome::kOk ? r.host : probe_outcome_name(r.outcome);
    if (key != run_key) {
      flush_run();
      run_key = key;
      run_len = 0;
    }
    ++run_len;
    // A failed run starting here?
    if (r.outcome != ProbeOutcome::kOk && (i == 0 || rs[i - 1].outcome == ProbeOutcome::kOk)) {
      size_t j = i;
      while (j < rs.size() && rs[j].outcome != ProbeOutcome::kOk) ++j;
      size_t len = j - i;
      if (len > best_len) {
        best_len = len;
        s.outage_failed = len;
        s.outage_from_us = i > 0 ? rs[i - 1].end_us() : rs[i].start_us;
        s.before_host = i > 0 ? rs[i - 1].host : "";
        s.recovered = j < rs.size();
        s.outage_to_us = s.recovered ? rs[j].end_us() : rs[j - 1].end_us();
        s.after_host = s.recovered ? rs[j].host : "";
        s.outage_ms = static_cast<double>(s.outage_to_us - s.outage_from_us) / 1000.0;
      }
    }
  }
  flush_run();
  return s;
}

std::string ProbeStats::to_string() const {
  std::ostringstream o;
  o << "probes " << total << " (ok " << ok << ", refused " << refused << ", timeout " << timeout
    << ", error " << error << ")";
  o << "; by host:";
  for (auto& [h, n] : by_host) o << " " << h << "=" << n;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", outage_ms);
  o << "; outage " << buf << " ms (" << outage_failed << " failed probes, "
    << (before_host.empty() ? "-" : before_host) << " -> "
    << (after_host.empty() ? "-" : after_host) << (recovered ? "" : ", NOT recovered") << ")";
  o << "; timeline: " << timeline;
  return o.str();
}

bool Prober::wait_good(int n, std::chrono::milliseconds timeout, const std::string& host) const {
  return wait_good_if(n, timeout, [&](const std::string& h) { return host.empty() || h == host; });
}

bool Prober::wait_good_elsewhere(int n, std::chrono::milliseconds timeout,
                                 const std::string& dead) const {
  return wait_good_if(n, timeout, [&](const std::string& h) { return h != dead; });
}

bool Prober::wait_good_if(int n, std::chrono::milliseconds timeout,
                          const std::function<bool(const std::string&)>& host_ok) const {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      int good = 0;
      for (auto it = records_.rbegin(); it != records_.rend() && good < n; ++it) {
        if (it->outcome != ProbeOutcome::kOk || !host_ok(it->host)) break;
        ++good;
      }
      if (good >= n) return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// --- HolderSampler ----------------------------------------------------------------------

HolderSampler::HolderSampler(const NetnsLab& lab, std::string ip,
                             std::chrono::milliseconds interval)
    : lab_(lab), ip_(std::move(ip)), interval_(interval) {}

HolderSampler::~HolderSampler() { stop(); }

void HolderSampler::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  t0_ = Clock::now();
  thread_ = std::thread([this] {
    auto next = Clock::now();
    while (!stop_) {
      Sample s;
      s.t_us = now_us();
      s.holders = lab_.vip_holders(ip_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        samples_.push_back(std::move(s));
      }
      next += interval_;
      std::this_thread::sleep_until(next);
    }
  });
}

void HolderSampler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

int64_t HolderSampler::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0_).count();
}

std::vector<HolderSampler::Sample> HolderSampler::samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

size_t HolderSampler::max_holders() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t m = 0;
  for (auto& s : samples_) m = std::max(m, s.holders.size());
  return m;
}

std::string HolderSampler::timeline() const {
  auto all = samples();
  std::string out, key;
  size_t len = 0;
  auto flush = [&] {
    if (len) out += (out.empty() ? "" : " ") + key + "x" + std::to_string(len);
  };
  for (auto& s : all) {
    std::string k;
    for (int h : s.holders) k += (k.empty() ? "n" : "+n") + std::to_string(h);
    if (k.empty()) k = "-";
    if (k != key) {
      flush();
      key = k;
      len = 0;
    }
    ++len;
  }
  flush();
  return out;
}

}  // namespace vigil::cli
