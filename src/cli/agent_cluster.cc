// AgentCluster implementation: fork/exec of the vigil binary, HTTP to its API.
#include "cli/agent_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "api/request.h"

namespace vigil::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int find_free_port_range(int nodes) {
  // Below the ephemeral range (ip_local_port_range), so that no outgoing connection of this
  // machine can take a port an agent must bind again after a restart. Spread over the range
  // by pid so that parallel test binaries rarely collide.
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  const int lo = 10000, hi = ephemeral_low - kApiPortOffset - nodes;  // the last base
  if (hi <= lo) return 0;
  const int span = hi - lo;
  const int start = (static_cast<int>(::getpid()) * 37) % span;
  for (int attempt = 0; attempt < 400; ++attempt) {
    int base = lo + (start + attempt * 211) % span;
    bool ok = true;
    for (int i = 0; i < nodes && ok; ++i) {
      ok = port_free(base + i) && port_free(base + kApiPortOffset + i);
    }
    if (ok) return base;
  }
  return 0;
}

AgentCluster::AgentCluster(AgentClusterOptions options, CliHooks hooks)
    : options_(std::move(options)), hooks_(std::move(hooks)) {}

AgentCluster::~AgentCluster() {
  for (auto& [n, pid] : pids_) {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
}

Status AgentCluster::init() {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return err(Errc::kIoError, "create " + options_.dir + ": " + ec.message());
  LocalClusterOptions lo;
  lo.nodes = options_.nodes;
  lo.dir = options_.dir;
  lo.insecure = options_.insecure;
  lo.base_port = options_.base_port ? options_.base_port : find_free_port_range(options_.nodes);
  if (lo.base_port == 0) return err(Errc::kUnavailable, "no free port range on 127.0.0.1");
  ASSIGN_OR_RETURN(nodes_, plan_local_cluster(lo, hooks_));
  if (!options_.insecure) {
    if (!hooks_.cert_init || !hooks_.cert_issue) {
      return err(Errc::kInvalidArgument, "TLS wanted but this build cannot make certificates");
    }
    std::string certs = options_.dir + "/certs";
    RETURN_IF_ERROR(hooks_.cert_init(certs, lo.cluster));
    for (const auto& n : nodes_) RETURN_IF_ERROR(hooks_.cert_issue(certs, n.config.node));
    RETURN_IF_ERROR(write_local_tokens(nodes_));
    for (const auto& t : nodes_.front().config.api.tokens) {
      auto token = daemon::read_api_token_file(t.token_file);
      if (!token) return token.error().with_context(t.token_file);
      tokens_[t.role] = *token;
    }
  }
  for (auto& n : nodes_) {
    auto& c = n.config;
    if (options_.snapshot_entries) c.snapshot_entries = options_.snapshot_entries;
    if (options_.tick_ms) c.timers.tick_ms = options_.tick_ms;
    if (options_.heartbeat_ms) c.timers.heartbeat_ms = options_.heartbeat_ms;
    if (options_.election_timeout_ms) c.timers.election_timeout_ms = options_.election_timeout_ms;
    c.fsync = options_.fsync;
    std::ofstream f(n.config_path);
    f << daemon::render_agent_config(c);
    if (!f) return err(Errc::kIoError, "write " + n.config_path);
  }
  return Status();
}

Status AgentCluster::start(int node) {
  if (node < 1 || node > options_.nodes) return err(Errc::kInvalidArgument, "no such node");
  if (running(node)) return err(Errc::kAlreadyExists, "node already running");
  const auto& n = nodes_[static_cast<size_t>(node - 1)];
  int log_fd = ::open(n.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return err(Errc::kIoError, "open " + n.log_path + ": " + std::strerror(errno));
  std::string a0 = options_.vigil_binary, a1 = "agent", a2 = "--config", a3 = n.config_path;
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return err(Errc::kIoError, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // The agent must not inherit the caller's sockets and files (a test's listener would
    // stay open in it).
    ::close_range(3, ~0U, 0);
    ::execv(a0.c_str(), argv);
    ::_exit(127);
  }
  ::close(log_fd);
  pids_[node] = pid;
  return Status();
}

Status AgentCluster::start_all() {
  for (int i = 1; i <= options_.nodes; ++i) RETURN_IF_ERROR(start(i));
  return Status();
}

void AgentCluster::kill(int node, int sig) {
  auto it = pids_.find(node);
  if (it == pids_.end()) return;
  ::kill(it->second, sig);
  int st;
  ::waitpid(it->second, &st, 0);
  pids_.erase(it);
}

bool AgentCluster::running(int node) const {
  auto it = pids_.find(node);
  if (it == pids_.end()) return false;
  int st;
  return ::waitpid(it->second, &st, WNOHANG) == 0;
}

pid_t AgentCluster::pid(int node) const {
  auto it = pids_.find(node);
  return it == pids_.end() ? -1 : it->second;
}

std::string AgentCluster::api(int node) const {
  return nodes_[static_cast<size_t>(node - 1)].config.listen.api.to_string();
}
api::HttpClientOptions AgentCluster::client_options(int node, daemon::ApiRole role) const {
  api::HttpClientOptions o;
  const auto& c = nodes_[static_cast<size_t>(node - 1)].config;
  if (c.api.tls()) {
    o.tls = true;
    o.ca_file = c.tls.ca_file;
    o.server_name = c.node;
  }
  if (auto it = tokens_.find(role); it != tokens_.end()) o.bearer_token = it->second;
  return o;
}

std::string AgentCluster::token_file(daemon::ApiRole role) const {
  if (options_.insecure || nodes_.empty()) return "";
  return local_token_path(fs::path(nodes_.front().config_path).parent_path().string(), role);
}

std::string AgentCluster::log_path(int node) const {
  return nodes_[static_cast<size_t>(node - 1)].log_path;
}
std::string AgentCluster::data_dir(int node) const {
  return nodes_[static_cast<size_t>(node - 1)].config.data_dir;
}

Result<json> AgentCluster::status(int node) const {
  api::HttpClient c(api(node), client_options(node));
  ASSIGN_OR_RETURN(auto r, c.request("GET", "/v1/status", "", 500));
  if (r.status != 200) return err(Errc::kUnavailable, "status " + std::to_string(r.status));
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return err(Errc::kCorruption, "status: bad JSON");
  return j;
}

Result<int> AgentCluster::wait_for_leader(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int leader = 0;
    bool agreed = true;
    std::vector<int> up;
    for (int i = 1; i <= options_.nodes; ++i) {
      if (running(i)) up.push_back(i);
    }
    for (int i : up) {
      auto s = status(i);
      if (!s) {
        agreed = false;
        break;
      }
      if ((*s)["role"] == "leader") leader = i;
    }
    if (agreed && leader != 0) {
      std::string name = "n" + std::to_string(leader);
      for (int i : up) {
        auto s = status(i);
        if (!s || (*s)["leader"] != name) agreed = false;
      }
      if (agreed) return leader;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return err(Errc::kTimeout, "no leader agreed by all running nodes");
}

Result<uint64_t> AgentCluster::put(int node, const std::string& key, const std::string& value,
                                   int timeout_ms) const {
  api::HttpClient c(api(node), client_options(node));
  ASSIGN_OR_RETURN(auto r, c.request("PUT", "/v1/kv/" + api::url_encode(key), value, timeout_ms,
                                     "application/octet-stream"));
  if (r.status != 200) {
    return err(Errc::kUnavailable, "PUT " + key + ": " + std::to_string(r.status) + " " + r.body);
  }
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return err(Errc::kCorruption, "PUT: bad JSON");
  return j["revision"].get<uint64_t>();
}

Result<std::optional<std::string>> AgentCluster::get(int node, const std::string& key,
                                                     bool serializable) const {
  api::HttpClient c(api(node), client_options(node));
  std::string target = "/v1/kv/" + api::url_encode(key);
  if (serializable) target += "?serializable=true";
  ASSIGN_OR_RETURN(auto r, c.request("GET", target, "", 5000));
  if (r.status == 404) return std::optional<std::string>();
  if (r.status != 200) {
    return err(Errc::kUnavailable, "GET " + key + ": " + std::to_string(r.status) + " " + r.body);
  }
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return err(Errc::kCorruption, "GET: bad JSON");
  return std::optional<std::string>(j["value"].get<std::string>());
}

std::string AgentCluster::log_tail(int node, int lines) const {
  std::ifstream f(log_path(node));
  std::vector<std::string> all;
  std::string line;
  while (std::getline(f, line)) all.push_back(line);
  std::ostringstream out;
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  for (size_t i = from; i < all.size(); ++i) out << all[i] << "\n";
  return out.str();
}

}  // namespace vigil::cli
