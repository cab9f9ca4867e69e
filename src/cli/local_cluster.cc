// `vigil local-cluster`: writes N agent configs on loopback and supervises N agent processes.
#include "cli/local_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "base/env.h"

namespace vigil::cli {
namespace {

namespace fs = std::filesystem;

constexpr size_t kLogTailBytes = 2048;
constexpr size_t kLogTailLines = 5;

void say(const char* fmt, const std::string& a) { std::fprintf(stderr, fmt, a.c_str()); }

std::string node_name(int i) { return "n" + std::to_string(i); }

// Writes `text` to `path` through a temporary file and a rename (over the project's Env).
Status write_file(const std::string& path, const std::string& text) {
  Env& env = posix_env();
  const std::string tmp = path + ".tmp";
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, env.new_writable_file(tmp));
  RETURN_IF_ERROR(f->append(text));
  RETURN_IF_ERROR(f->close());
  return env.rename(tmp, path);
}

// Creates `path` with `text`, mode 0600, failing if it exists (O_EXCL): never overwrites.
Status write_secret_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return err(Errc::kIoError, "cannot create " + path + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return err(Errc::kIoError, "cannot write " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return err(Errc::kIoError, "cannot write " + path + ": " + std::strerror(errno));
  }
  return Status();
}

// 32 bytes from the kernel's CSPRNG as 64 hex digits.
Result<std::string> random_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return err(Errc::kIoError, std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// "" if 127.0.0.1:port can be bound now, else why not.
std::string port_problem(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return std::strerror(errno);
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string problem;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    problem = std::strerror(errno);
  }
  ::close(fd);
  return problem;
}

// The last few lines of a log file, indented, for a report about a dead child.
std::string log_tail(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return "";
  }
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) == 0) {
    const off_t size = st.st_size;
    const off_t from = size > static_cast<off_t>(kLogTailBytes) ? size - kLogTailBytes : 0;
    text.resize(kLogTailBytes);
    const ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      nl = text.size();
    }
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string out;
  const size_t first = lines.size() > kLogTailLines ? lines.size() - kLogTailLines : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    out += "    | " + lines[i] + "\n";
  }
  return out;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) {
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "stopped (status " + std::to_string(status) + ")";
}

struct Child {
  const LocalNode* node;
  pid_t pid = -1;
  bool alive = false;
};

// Starts `vigil agent --config PATH` with stdout and stderr appended to the node's log.
Result<pid_t> spawn_agent(const LocalNode& node, const sigset_t& child_mask) {
  const int log_fd = ::open(node.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return err(Errc::kIoError, "cannot open " + node.log_path + ": " + std::strerror(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string exe = "/proc/self/exe";
  std::string a0 = "vigil", a1 = "agent", a2 = "--config", a3 = node.config_path;
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  const pid_t parent = ::getpid();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return err(Errc::kIoError, std::string("fork failed: ") + std::strerror(e));
  }
  if (pid == 0) {
    // Child: own process group (a terminal's Ctrl-C reaches only the supervisor, which
    // stops the nodes in order), and SIGTERM if the supervisor dies without doing so.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
      ::_exit(1);
    }
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
    }
    ::dprintf(STDERR_FILENO, "=== vigil local-cluster: starting %s (pid %d) ===\n",
              node.config.node.c_str(), static_cast<int>(::getpid()));
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    ::execv(exe.c_str(), argv);
    ::dprintf(STDERR_FILENO, "vigil local-cluster: cannot run %s: %s\n", exe.c_str(),
              std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

// Reaps every child that has exited; reports the unexpected deaths.
void reap(std::vector<Child>& children, bool stopping) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    for (auto& c : children) {
      if (c.pid != pid || !c.alive) {
        continue;
      }
      c.alive = false;
      if (stopping) {
        std::printf("  %s stopped (%s)\n", c.node->config.node.c_str(),
                    describe_exit(status).c_str());
      } else {
        std::fprintf(stderr, "vigil local-cluster: node %s (pid %d) %s; its log is %s\n%s",
                     c.node->config.node.c_str(), static_cast<int>(pid),
                     describe_exit(status).c_str(), c.node->log_path.c_str(),
                     log_tail(c.node->log_path).c_str());
      }
    }
  }
}

size_t count_alive(const std::vector<Child>& children) {
  size_t n = 0;
  for (const auto& c : children) {
    n += c.alive ? 1 : 0;
  }
  return n;
}

// SIGTERM to every live child, SIGKILL to those still alive after kStopGraceMs (or at a
// second Ctrl-C). Signals are blocked; SIGCHLD is taken with sigtimedwait.
void stop_all(std::vector<Child>& children) {
  for (const auto& c : children) {
    if (c.alive) {
      ::kill(c.pid, SIGTERM);
    }
  }
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGCHLD);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStopGraceMs);
  bool force = false;
  reap(children, true);
  while (count_alive(children) > 0 && !force) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) {
      break;
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    const int sig = ::sigtimedwait(&wait_set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      force = true;
    }
    reap(children, true);
  }
  for (auto& c : children) {
    if (c.alive) {
      std::printf("  %s did not stop within %d ms: SIGKILL\n", c.node->config.node.c_str(),
                  kStopGraceMs);
      ::kill(c.pid, SIGKILL);
      int status = 0;
      while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
      c.alive = false;
    }
  }
}

// Refuses to mix runs: a directory left by a run with other nodes or ports would start
// agents on Raft state that does not match their config.
Status check_earlier_run(const std::vector<LocalNode>& nodes, const std::string& dir) {
  const std::string first = nodes.front().config_path;
  if (!fs::exists(first)) {
    return Status();
  }
  auto old = daemon::load_agent_config(first);
  const bool same =
      old && old->peers == nodes.front().config.peers &&
      old->cluster == nodes.front().config.cluster &&
      !fs::exists(dir + "/" + node_name(static_cast<int>(nodes.size()) + 1) + ".yaml");
  if (!same) {
    return err(Errc::kAlreadyExists,
               dir +
                   " holds a cluster from an earlier run with other settings; remove it "
                   "(rm -rf " +
                   dir + ") or choose another --dir");
  }
  return Status();
}

}  // namespace

std::string local_token_path(const std::string& dir, daemon::ApiRole role) {
  return dir + "/" + std::string(daemon::api_role_name(role)) + ".token";
}

Status write_local_tokens(const std::vector<LocalNode>& nodes) {
  if (nodes.empty()) {
    return Status();
  }
  for (const auto& t : nodes.front().config.api.tokens) {
    if (fs::exists(t.token_file)) {
      continue;
    }
    ASSIGN_OR_RETURN(auto token, random_token());
    RETURN_IF_ERROR(write_secret_file(t.token_file, token + "\n"));
  }
  return Status();
}

Result<std::vector<LocalNode>> plan_local_cluster(const LocalClusterOptions& o,
                                                  const CliHooks& hooks) {
  if (o.nodes < 1 || o.nodes > static_cast<int>(daemon::kMaxVoters)) {
    return err(Errc::kInvalidArgument, "--nodes must be between 1 and " +
                                           std::to_string(daemon::kMaxVoters) + " (got " +
                                           std::to_string(o.nodes) + "); 3 is usual");
  }
  const int last_port = o.base_port + kApiPortOffset + o.nodes - 1;
  if (o.base_port < 1024 || last_port > 65535) {
    return err(Errc::kInvalidArgument,
               "--base-port must leave room for " + std::to_string(o.nodes) +
                   " peer ports and API ports " + std::to_string(kApiPortOffset) +
                   " above them, within 1024..65535 (got " + std::to_string(o.base_port) + ")");
  }
  if (o.dir.empty()) {
    return err(Errc::kInvalidArgument, "--dir must name a directory, like /tmp/vigil-demo");
  }
  if (!daemon::is_valid_name(o.cluster)) {
    return err(
        Errc::kInvalidArgument,
        "--cluster must be 1 to 63 characters of a-z, 0-9 and '-' (got \"" + o.cluster + "\")");
  }
  std::error_code ec;
  std::string dir = fs::absolute(o.dir, ec).lexically_normal().string();
  if (ec) {
    return err(Errc::kInvalidArgument, "bad --dir " + o.dir + ": " + ec.message());
  }
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  std::vector<daemon::PeerConfig> peers;
  for (int i = 1; i <= o.nodes; ++i) {
    daemon::PeerConfig p;
    p.name = node_name(i);
    p.id = NodeId(static_cast<uint64_t>(i));
    p.peer = {"127.0.0.1", static_cast<uint16_t>(o.base_port + i - 1)};
    p.api = {"127.0.0.1", static_cast<uint16_t>(o.base_port + kApiPortOffset + i - 1)};
    peers.push_back(p);
  }
  const auto cert_paths = hooks.cert_paths ? hooks.cert_paths : default_cert_paths;
  std::vector<LocalNode> nodes;
  for (const auto& p : peers) {
    LocalNode n;
    daemon::AgentConfig& c = n.config;
    c.node = p.name;
    c.id = p.id;
    c.cluster = o.cluster;
    c.data_dir = dir + "/" + p.name;
    c.listen = {p.peer, p.api};
    c.peers = peers;
    if (o.insecure) {
      c.tls.insecure = true;
    } else {
      c.tls = cert_paths(dir + "/certs", p.name);
      c.api.cert_file = c.tls.cert_file;
      c.api.key_file = c.tls.key_file;
      for (daemon::ApiRole role : kLocalTokenRoles) {
        c.api.tokens.push_back(daemon::ApiTokenConfig{std::string(daemon::api_role_name(role)),
                                                      role, local_token_path(dir, role)});
      }
    }
    n.config_path = dir + "/" + p.name + ".yaml";
    n.log_path = dir + "/" + p.name + ".log";
    nodes.push_back(std::move(n));
  }
  return nodes;
}

int run_local_cluster(const LocalClusterOptions& o, const CliHooks& hooks) {
  auto fail = [](const std::string& msg) {
    say("vigil local-cluster: %s\n", msg);
    return 1;
  };
  auto planned = plan_local_cluster(o, hooks);
  if (!planned) {
    say("vigil local-cluster: %s\n", planned.error().message());
    return 2;
  }
  const std::vector<LocalNode>& nodes = *planned;
  const std::string dir = fs::path(nodes.front().config.data_dir).parent_path().string();
  if (!o.insecure && (!hooks.cert_init || !hooks.cert_issue)) {
    return fail(
        "this build cannot make certificates yet (src/net/certs.h is not linked); add "
        "--insecure for a loopback trial without TLS");
  }
  if (Status s = check_earlier_run(nodes, dir); !s.ok()) {
    return fail(s.message());
  }

  // Directories, certificates, configs.
  std::error_code ec;
  for (const auto& n : nodes) {
    fs::create_directories(n.config.data_dir, ec);
    if (ec) {
      return fail("cannot create " + n.config.data_dir + ": " + ec.message() +
                  "; choose a --dir you can write to");
    }
    fs::permissions(n.config.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  if (!o.insecure) {
    const std::string certs = dir + "/certs";
    fs::create_directories(certs, ec);
    if (ec) {
      return fail("cannot create " + certs + ": " + ec.message());
    }
    if (!fs::exists(nodes.front().config.tls.ca_file)) {
      if (Status s = hooks.cert_init(certs, o.cluster); !s.ok()) {
        return fail("cannot create the cluster CA in " + certs + ": " + s.to_string());
      }
    }
    for (const auto& n : nodes) {
      if (!fs::exists(n.config.tls.cert_file) || !fs::exists(n.config.tls.key_file)) {
        if (Status s = hooks.cert_issue(certs, n.config.node); !s.ok()) {
          return fail("cannot issue a certificate for " + n.config.node + ": " + s.to_string());
        }
      }
    }
  }
  if (Status s = write_local_tokens(nodes); !s.ok()) {
    return fail(s.message());
  }
  for (const auto& n : nodes) {
    if (Status s = write_file(n.config_path, daemon::render_agent_config(n.config)); !s.ok()) {
      return fail(s.message());
    }
    // What the agent will read must load: catches a certificate layout mismatch here.
    if (auto back = daemon::load_agent_config(n.config_path); !back) {
      return fail("the config written for " + n.config.node + " does not load:\n" +
                  back.error().message());
    }
  }
  for (const auto& n : nodes) {
    for (const auto& hp : {n.config.listen.peer, n.config.listen.api}) {
      if (std::string why = port_problem(hp.port); !why.empty()) {
        return fail(hp.to_string() + " cannot be used (" + why +
                    "): is another local-cluster or agent running? Stop it, or pass "
                    "--base-port with another port");
      }
    }
  }

  // Signals are blocked from here on and taken synchronously; children get the old mask.
  sigset_t blocked, old_mask;
  sigemptyset(&blocked);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) {
    sigaddset(&blocked, sig);
  }
  ::sigprocmask(SIG_BLOCK, &blocked, &old_mask);
  std::vector<Child> children;
  for (const auto& n : nodes) {
    auto pid = spawn_agent(n, old_mask);
    if (!pid) {
      say("vigil local-cluster: %s\n", pid.error().message());
      stop_all(children);
      ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
      return 1;
    }
    children.push_back(Child{&n, *pid, true});
  }

  std::printf("vigil local-cluster: %d node%s of cluster \"%s\" in %s\n", o.nodes,
              o.nodes == 1 ? "" : "s", o.cluster.c_str(), dir.c_str());
  if (o.insecure) {
    std::printf(
        "  WARNING: --insecure: nodes talk plain TCP without authentication "
        "(loopback trials only)\n");
  } else {
    std::printf("  TLS: CA and node certificates in %s/certs (peers and the HTTPS API)\n",
                dir.c_str());
    std::printf("  API tokens (bearer, one per role): %s/{admin,read-write,read-only}.token\n",
                dir.c_str());
  }
  std::printf("\n  %-5s %-21s %-21s %-7s %s\n", "node", "peer", "api", "pid", "log");
  for (const auto& c : children) {
    const auto& cfg = c.node->config;
    std::printf("  %-5s %-21s %-21s %-7d %s\n", cfg.node.c_str(),
                cfg.listen.peer.to_string().c_str(), cfg.listen.api.to_string().c_str(),
                static_cast<int>(c.pid), c.node->log_path.c_str());
  }
  if (!o.insecure) {
    const auto& n1 = nodes.front().config;
    const std::string ca = n1.tls.ca_file;
    const std::string admin = local_token_path(dir, daemon::ApiRole::kAdmin);
    const std::string url =
        "https://" + n1.node + ":" + std::to_string(n1.listen.api.port) + "/v1/status";
    // The certificates name the nodes (n1, ...), not 127.0.0.1: --connect-to sends
    // https://nK:PORT to 127.0.0.1 and curl checks the name nK.
    std::printf(
        "\n  call the API (any node; the certificate names the node):\n"
        "    curl --cacert %s --connect-to ::127.0.0.1: \\\n"
        "         -H \"Authorization: Bearer $(cat %s)\" %s\n"
        "    vigil status --api https://%s --server-name %s --cacert %s --token-file %s\n",
        ca.c_str(), admin.c_str(), url.c_str(), n1.listen.api.to_string().c_str(), n1.node.c_str(),
        ca.c_str(), admin.c_str());
  }
  std::printf("\n  configs: %s/nK.yaml; stop with Ctrl-C (or kill %d)\n", dir.c_str(),
              static_cast<int>(::getpid()));
  std::fflush(stdout);

  int code = 0;
  for (;;) {
    siginfo_t info{};
    const int sig = ::sigwaitinfo(&blocked, &info);
    if (sig < 0) {
      if (errno == EINTR) {
        continue;
      }
      say("vigil local-cluster: sigwaitinfo: %s\n", std::strerror(errno));
      code = 1;
      break;
    }
    if (sig == SIGCHLD) {
      reap(children, false);
      if (count_alive(children) == 0) {
        say("vigil local-cluster: %s\n",
            "every node has stopped; see the logs above, fix the cause and run again");
        code = 1;
        break;
      }
      continue;
    }
    std::printf("\nvigil local-cluster: %s: stopping %zu node(s)\n", strsignal(sig),
                count_alive(children));
    std::fflush(stdout);
    break;
  }
  stop_all(children);
  std::fflush(stdout);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return code;
}

}  // namespace vigil::cli
