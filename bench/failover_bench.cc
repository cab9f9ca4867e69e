// vigil-failover-bench: leader failover time (kill -9 of the leader to the next acknowledged
// write) of a 3-voter Vigil cluster and of a 3-member etcd cluster on loopback; `--serve`
// only starts a cluster and waits, for run_raft_bench.sh (docs/BENCHMARKS.md).
//
// What one run measures, precisely:
//   T0 = the moment waitpid() confirms that the old leader is dead (SIGKILL was sent just
//        before; the gap is printed as kill_ms).
//   T1 = the earliest moment the benchmark receives a success response (HTTP 200: the write
//        is committed and applied) to a PUT whose request was started (clock read before
//        connect/send) at or after T0.
//   failover = T1 - T0.
// The prober starts a fresh PUT every --interval-ms (default 10 ms) from a pool of worker
// threads, round robin over the surviving nodes, each with a --timeout-ms deadline (default
// 300 ms), so a PUT stuck on a node that still forwards to the dead leader does not delay the
// next attempt: the resolution is the interval plus one request's latency.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "bench/bench_util.h"
#include "cli/agent_cluster.h"
#include "net/certs.h"

namespace vigil::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using vigil::bench::base64;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// One HTTP request the prober sends.
struct PutRequest {
  std::string method, target, body, content_type;
};

// What the benchmark needs from a cluster under test; node numbers are 1-based.
class BenchCluster {
 public:
  virtual ~BenchCluster() = default;
  virtual std::string name() const = 0;
  virtual Status start_all() = 0;
  virtual Status start(int node) = 0;
  virtual void kill9(int node) = 0;
  virtual int size() const = 0;
  virtual std::string api(int node) const = 0;
  // How to reach api(node): TLS and a token when the cluster's API has them.
  virtual api::HttpClientOptions client_options(int /*node*/) const { return {}; }
  // A leader named by every running node; kTimeout otherwise.
  virtual Result<int> wait_for_leader(milliseconds timeout) = 0;
  // Waits until `node` has applied everything the leader had committed when called.
  virtual Status wait_caught_up(int node, int leader, milliseconds timeout) = 0;
  virtual PutRequest put_request(const std::string& key, const std::string& value) const = 0;
  // True when a response means "committed".
  virtual bool acknowledged(const api::HttpResponse& r) const = 0;
  virtual std::string log_tail(int node) const = 0;
};

// ------------------------------------------------------------------ Vigil
cli::CliHooks cert_hooks() {
  cli::CliHooks h;
  h.cert_init = [](const std::string& d, const std::string& c) { return net::cert_init(d, c); };
  h.cert_issue = [](const std::string& d, const std::string& n) { return net::cert_issue(d, n); };
  return h;
}

class VigilBenchCluster final : public BenchCluster {
 public:
  VigilBenchCluster(const std::string& dir, const std::string& binary, bool insecure,
                    uint64_t snapshot_entries)
      : cluster_(make_options(dir, binary, insecure, snapshot_entries), cert_hooks()) {}
  Status init() { return cluster_.init(); }
  std::string name() const override { return "vigil"; }
  Status start_all() override { return cluster_.start_all(); }
  Status start(int node) override { return cluster_.start(node); }
  void kill9(int node) override { cluster_.kill(node, SIGKILL); }
  int size() const override { return cluster_.size(); }
  std::string api(int node) const override { return cluster_.api(node); }
  api::HttpClientOptions client_options(int node) const override {
    return cluster_.client_options(node);
  }
  Result<int> wait_for_leader(milliseconds timeout) override {
    return cluster_.wait_for_leader(timeout);
  }
  Status wait_caught_up(int node, int leader, milliseconds timeout) override {
    auto ls = cluster_.status(leader);
    if (!ls) return ls.error();
    uint64_t commit = (*ls)["commit"].get<uint64_t>();
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto s = cluster_.status(node);
      if (s && (*s)["applied"].get<uint64_t>() >= commit) return Status();
      std::this_thread::sleep_for(milliseconds(20));
    }
    return err(Errc::kTimeout,
               "node " + std::to_string(node) + " did not reach index " + std::to_string(commit));
  }
  PutRequest put_request(const std::string& key, const std::string& value) const override {
    return {"PUT", "/v1/kv/" + key, value, "application/octet-stream"};
  }
  bool acknowledged(const api::HttpResponse& r) const override { return r.status == 200; }
  std::string log_tail(int node) const override { return cluster_.log_tail(node); }

 private:
  static cli::AgentClusterOptions make_options(const std::string& dir, const std::string& bin,
                                               bool insecure, uint64_t snapshot_entries) {
    cli::AgentClusterOptions o;
    o.nodes = 3;
    o.dir = dir;
    o.vigil_binary = bin;
    o.insecure = insecure;                  // default false: mutual TLS between the agents
    o.snapshot_entries = snapshot_entries;  // 0: the agent's default
    o.fsync = true;                         // timers: the agent's defaults
    return o;
  }
  cli::AgentCluster cluster_;
};

// ------------------------------------------------------------------ etcd
class EtcdBenchCluster final : public BenchCluster {
 public:
  // `tls`: peers with mutual TLS and an HTTPS client API, as Vigil's agents run by default
  // (certificates from a throwaway CA made with the openssl command).
  EtcdBenchCluster(std::string dir, std::string binary, bool tls)
      : dir_(std::move(dir)), binary_(binary), tls_(tls) {}
  ~EtcdBenchCluster() override {
    for (auto& [n, pid] : pids_) {
      ::kill(pid, SIGKILL);
      int st;
      ::waitpid(pid, &st, 0);
    }
  }

  Status init() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return err(Errc::kIoError, "create " + dir_ + ": " + ec.message());
    base_port_ = cli::find_free_port_range(3);
    if (base_port_ == 0) return err(Errc::kUnavailable, "no free port range on 127.0.0.1");
    token_ = "vigil-bench-" + std::to_string(::getpid());
    if (tls_) RETURN_IF_ERROR(make_certs());
    return Status();
  }
  std::string name() const override { return "etcd"; }
  api::HttpClientOptions client_options(int /*node*/) const override {
    api::HttpClientOptions o;
    if (!tls_) return o;
    o.tls = true;
    o.ca_file = tls_dir() + "/ca.pem";
    o.server_name = "localhost";
    return o;
  }
  int size() const override { return 3; }
  std::string api(int node) const override {
    return "127.0.0.1:" + std::to_string(client_port(node));
  }
  Status start_all() override {
    for (int i = 1; i <= 3; ++i) RETURN_IF_ERROR(start(i));
    return Status();
  }

  Status start(int node) override {
    if (pids_.count(node)) return err(Errc::kAlreadyExists, "node already running");
    std::string cluster;
    for (int i = 1; i <= 3; ++i) {
      if (i > 1) cluster += ",";
      cluster += member(i) + "=" + peer_url(i);
    }
    // etcd's defaults everywhere else: heartbeat 100 ms, election 1000 ms, fsync always.
    std::vector<std::string> args = {
        binary_,
        "--name",
        member(node),
        "--data-dir",
        data_dir(node),
        "--listen-peer-urls",
        peer_url(node),
        "--initial-advertise-peer-urls",
        peer_url(node),
        "--listen-client-urls",
        scheme() + api(node),
        "--advertise-client-urls",
        scheme() + api(node),
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        token_,
        "--logger",
        "zap",
        "--log-level",
        "info",
    };
    if (tls_) {
      const std::string t = tls_dir() + "/", m = member(node);
      const std::vector<std::string> tls_args = {"--peer-cert-file",
                                                 t + m + ".pem",
                                                 "--peer-key-file",
                                                 t + m + ".key",
                                                 "--peer-trusted-ca-file",
                                                 t + "ca.pem",
                                                 "--peer-client-cert-auth",
                                                 "--cert-file",
                                                 t + m + ".pem",
                                                 "--key-file",
                                                 t + m + ".key"};
      args.insert(args.end(), tls_args.begin(), tls_args.end());
    }
    std::string log = log_path(node);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return err(Errc::kIoError, "open " + log + ": " + std::strerror(errno));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(log_fd);
      return err(Errc::kIoError, std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::setpgid(0, 0);  // Ctrl-C reaches the benchmark, which then takes etcd down with it
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    pids_[node] = pid;
    return Status();
  }

  void kill9(int node) override {
    auto it = pids_.find(node);
    if (it == pids_.end()) return;
    ::kill(it->second, SIGKILL);
    int st;
    ::waitpid(it->second, &st, 0);
    pids_.erase(it);
  }

  Result<int> wait_for_leader(milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      std::map<int, json> st;
      bool all = true;
      for (auto& [n, pid] : pids_) {
        auto s = status(n);
        if (!s) {
          all = false;
          break;
        }
        st[n] = *s;
      }
      if (all && !st.empty()) {
        std::string leader_id = st.begin()->second.value("leader", "0");
        int leader = 0;
        for (auto& [n, s] : st) {
          if (s.value("leader", "0") != leader_id) leader_id = "0";
          if (s["header"].value("member_id", "") == leader_id) leader = n;
        }
        if (leader_id != "0" && leader != 0) return leader;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return err(Errc::kTimeout, "no etcd leader agreed by all running members");
  }

  Status wait_caught_up(int node, int leader, milliseconds timeout) override {
    auto ls = status(leader);
    if (!ls) return ls.error();
    uint64_t index = std::stoull(ls->value("raftIndex", "0"));
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto s = status(node);
      if (s && std::stoull(s->value("raftAppliedIndex", "0")) >= index) return Status();
      std::this_thread::sleep_for(milliseconds(20));
    }
    return err(Errc::kTimeout, "etcd member " + std::to_string(node) + " did not reach index " +
                                   std::to_string(index));
  }

  PutRequest put_request(const std::string& key, const std::string& value) const override {
    json body{{"key", base64(key)}, {"value", base64(value)}};
    return {"POST", "/v3/kv/put", body.dump(), "application/json"};
  }
  bool acknowledged(const api::HttpResponse& r) const override {
    return r.status == 200 && r.body.find("\"header\"") != std::string::npos &&
           r.body.find("\"error\"") == std::string::npos;
  }
  std::string log_tail(int node) const override {
    std::ifstream f(log_path(node));
    std::vector<std::string> all;
    std::string line;
    while (std::getline(f, line)) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > 20 ? all.size() - 20 : 0; i < all.size(); ++i) {
      out += all[i] + "\n";
    }
    return out;
  }

 private:
  Result<json> status(int node) const {
    api::HttpClient c(api(node), client_options(node));
    ASSIGN_OR_RETURN(auto r, c.request("POST", "/v3/maintenance/status", "{}", 500));
    if (r.status != 200) return err(Errc::kUnavailable, "status " + std::to_string(r.status));
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("header")) {
      return err(Errc::kCorruption, "etcd status: unexpected body");
    }
    return j;
  }
  static std::string member(int node) { return "e" + std::to_string(node); }
  int peer_port(int node) const { return base_port_ + node - 1; }
  int client_port(int node) const { return base_port_ + 100 + node - 1; }
  std::string scheme() const { return tls_ ? "https://" : "http://"; }
  std::string peer_url(int node) const {
    return scheme() + "127.0.0.1:" + std::to_string(peer_port(node));
  }
  std::string tls_dir() const { return dir_ + "/tls"; }
  // A CA and one certificate per member for 127.0.0.1 and localhost, for serving and as a
  // client (P-256 keys, as `vigil cert` makes).
  Status make_certs() const {
    const std::string script =
        "set -e; mkdir -p '" + tls_dir() + "'; cd '" + tls_dir() +
        "'; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=bench-etcd-ca; "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,"
        "clientAuth\\n' > ext; for m in e1 e2 e3; do openssl req -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout $m.key -out $m.csr -subj /CN=$m; "
        "openssl x509 -req -in $m.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $m.pem "
        "-days 2 -extfile ext; done";
    const std::string file = dir_ + "/certs.sh";
    {
      std::ofstream f(file);
      f << script << "\n";
      if (!f) return err(Errc::kIoError, "cannot write " + file);
    }
    const std::string cmd = "sh '" + file + "' >'" + dir_ + "/certs.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      return err(Errc::kIoError, "making etcd's certificates (the openssl command) failed: see " +
                                     dir_ + "/certs.log");
    }
    return Status();
  }
  std::string data_dir(int node) const { return dir_ + "/" + member(node) + ".etcd"; }
  std::string log_path(int node) const { return dir_ + "/" + member(node) + ".log"; }

  std::string dir_, binary_, token_;
  bool tls_ = false;
  int base_port_ = 0;
  std::map<int, pid_t> pids_;
};

// ------------------------------------------------------------------ prober
struct Attempt {
  int node = 0;
  Clock::time_point sent, done;
  bool ok = false;
};

// Starts a PUT every `interval` on a pool of threads, round robin over the target nodes.
class Prober {
 public:
  Prober(const BenchCluster& cluster, milliseconds interval, int timeout_ms, int workers)
      : cluster_(cluster), interval_(interval), timeout_ms_(timeout_ms) {
    origin_ = Clock::now();
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  ~Prober() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

  void set_targets(std::vector<int> nodes) {
    std::lock_guard<std::mutex> lock(mu_);
    targets_ = std::move(nodes);
  }
  // The earliest acknowledgement of a PUT started at or after `t0`; `earlier` (optional)
  // counts the PUTs started at or after `t0` but before the acknowledged one: each failed,
  // timed out, or was acknowledged later.
  std::optional<Attempt> first_ack_after(Clock::time_point t0, int* earlier) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<Attempt> best;
    for (const auto& a : attempts_) {
      if (a.sent >= t0 && a.ok && (!best || a.done < best->done)) best = a;
    }
    if (earlier) {
      *earlier = 0;
      for (const auto& a : attempts_) {
        if (a.sent >= t0 && best && a.sent < best->sent) ++*earlier;
      }
    }
    return best;
  }
  // True when a PUT started after `since` has been acknowledged.
  bool acked_since(Clock::time_point since) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = attempts_.rbegin(); it != attempts_.rend(); ++it) {
      if (it->ok && it->sent >= since) return true;
    }
    return false;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.clear();
  }

 private:
  void work() {
    std::map<int, std::unique_ptr<api::HttpClient>> clients;
    const std::string value(64, 'f');
    while (!stop_) {
      uint64_t slot = next_slot_.fetch_add(1);
      std::this_thread::sleep_until(origin_ + interval_ * static_cast<int64_t>(slot));
      if (stop_) break;
      int node = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (targets_.empty()) continue;
        node = targets_[slot % targets_.size()];
      }
      auto& c = clients[node];
      if (!c) {
        c = std::make_unique<api::HttpClient>(cluster_.api(node), cluster_.client_options(node));
      }
      PutRequest req = cluster_.put_request("failover/" + std::to_string(slot % 1000), value);
      Attempt a;
      a.node = node;
      a.sent = Clock::now();
      auto r = c->request(req.method, req.target, req.body, timeout_ms_, req.content_type);
      a.done = Clock::now();
      a.ok = r && cluster_.acknowledged(*r);
      std::lock_guard<std::mutex> lock(mu_);
      attempts_.push_back(a);
    }
  }

  const BenchCluster& cluster_;
  const milliseconds interval_;
  const int timeout_ms_;
  Clock::time_point origin_;
  std::atomic<uint64_t> next_slot_{0};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<int> targets_;
  std::vector<Attempt> attempts_;
  std::vector<std::thread> threads_;
};

// ------------------------------------------------------------------ driver
struct Options {
  std::string target = "both";
  int runs = 10;
  bool as_json = false;
  int interval_ms = 10;
  int timeout_ms = 300;
  std::string dir;
  bool keep = false;
  std::string vigil_binary = VIGIL_BINARY;
  std::string etcd_binary = "etcd";
  std::string serve;       // "vigil" or "etcd": start a cluster and wait
  std::string ready_file;  // --serve: where to write the leader's API address
  // For experiments only (docs/BENCHMARKS.md "Findings"): plain TCP between the agents,
  // and the agent's snapshot interval.
  bool vigil_insecure = false;
  uint64_t vigil_snapshot_entries = 0;
  // etcd with mutual TLS between members and an HTTPS client API (Vigil's default setup;
  // without it etcd runs plain HTTP, as its defaults).
  bool etcd_tls = false;
};

struct RunResult {
  int run = 0;
  int old_leader = 0, new_leader = 0, acked_by = 0;
  double kill_ms = 0;        // SIGKILL sent → death confirmed (T0)
  double failover_ms = 0;    // T0 → T1
  double ack_sent_ms = 0;    // T0 → start of the acknowledged PUT
  int earlier_attempts = 0;  // PUTs started in [T0, start of the acknowledged one)
};

struct Summary {
  std::string target;
  std::vector<RunResult> runs;
  double median = 0, min = 0, max = 0;
};

std::unique_ptr<BenchCluster> make_cluster(const std::string& target, const std::string& dir,
                                           const Options& o, Status* st) {
  if (target == "vigil") {
    auto c = std::make_unique<VigilBenchCluster>(dir, o.vigil_binary, o.vigil_insecure,
                                                 o.vigil_snapshot_entries);
    *st = c->init();
    return c;
  }
  auto c = std::make_unique<EtcdBenchCluster>(dir, o.etcd_binary, o.etcd_tls);
  *st = c->init();
  return c;
}

// Prints the tail of a node's log and passes the error on.
ErrorValue fail(const BenchCluster& c, int node, const Status& s) {
  std::fprintf(stderr, "%s node %d log tail:\n%s", c.name().c_str(), node,
               c.log_tail(node).c_str());
  return ErrorValue{s};
}

Result<Summary> run_target(const std::string& target, const Options& o) {
  std::string dir = o.dir + "/" + target;
  fs::remove_all(dir);
  Status st;
  auto c = make_cluster(target, dir, o, &st);
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(c->start_all());
  auto leader = c->wait_for_leader(milliseconds(20000));
  if (!leader) return fail(*c, 1, leader.error());
  Summary sum;
  sum.target = target;
  // Enough workers that one PUT starts every interval even while each waits its timeout.
  int workers = o.timeout_ms / std::max(1, o.interval_ms) + 8;
  auto prober = std::make_unique<Prober>(*c, milliseconds(o.interval_ms), o.timeout_ms, workers);
  std::vector<int> all;
  for (int i = 1; i <= c->size(); ++i) all.push_back(i);
  prober->set_targets(all);
  for (int run = 1; run <= o.runs; ++run) {
    // Steady state: a stable leader and writes being acknowledged through every node.
    auto l1 = c->wait_for_leader(milliseconds(20000));
    if (!l1) return fail(*c, 1, l1.error());
    std::this_thread::sleep_for(milliseconds(500));
    auto l2 = c->wait_for_leader(milliseconds(20000));
    if (!l2) return fail(*c, 1, l2.error());
    if (*l1 != *l2) {
      --run;  // leadership moved on its own: settle again
      continue;
    }
    auto since = Clock::now();
    while (!prober->acked_since(since)) {
      if (Clock::now() - since > milliseconds(10000)) {
        return fail(*c, *l2, err(Errc::kTimeout, "no write acknowledged before the kill"));
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    prober->clear();
    int old = *l2;
    std::vector<int> survivors;
    for (int i : all) {
      if (i != old) survivors.push_back(i);
    }
    prober->set_targets(survivors);
    RunResult rr;
    rr.run = run;
    rr.old_leader = old;
    auto t_signal = Clock::now();
    c->kill9(old);
    auto t0 = Clock::now();
    rr.kill_ms = ms_between(t_signal, t0);
    std::optional<Attempt> ack;
    while (!(ack = prober->first_ack_after(t0, nullptr))) {
      if (Clock::now() - t0 > milliseconds(30000)) {
        return fail(*c, survivors[0],
                    err(Errc::kTimeout,
                        "no write acknowledged 30 s after "
                        "the leader was killed"));
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    // Attempts started before this ack's completion may still finish earlier: let every
    // attempt started before T1 end (at most one timeout), then take the earliest.
    std::this_thread::sleep_for(milliseconds(o.timeout_ms + 50));
    ack = prober->first_ack_after(t0, &rr.earlier_attempts);
    rr.failover_ms = ms_between(t0, ack->done);
    rr.ack_sent_ms = ms_between(t0, ack->sent);
    rr.acked_by = ack->node;
    auto nl = c->wait_for_leader(milliseconds(20000));
    if (!nl) return fail(*c, survivors[0], nl.error());
    rr.new_leader = *nl;
    if (!o.as_json) {
      std::printf(
          "%-5s run %2d: killed leader %d, failover %7.1f ms (acknowledged PUT sent "
          "at +%.1f ms via node %d after %d unacknowledged PUTs; new leader %d)\n",
          target.c_str(), run, old, rr.failover_ms, rr.ack_sent_ms, rr.acked_by,
          rr.earlier_attempts, rr.new_leader);
      std::fflush(stdout);
    }
    sum.runs.push_back(rr);
    // Bring the old leader back and let it catch up before the next run.
    RETURN_IF_ERROR(c->start(old));
    Status cu = c->wait_caught_up(old, *nl, milliseconds(30000));
    if (!cu.ok()) return fail(*c, old, cu);
    prober->set_targets(all);
  }
  std::vector<double> v;
  for (const auto& r : sum.runs) v.push_back(r.failover_ms);
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  sum.min = v.front();
  sum.max = v.back();
  sum.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  prober.reset();  // its threads use the cluster
  c.reset();
  if (!o.keep) fs::remove_all(dir);
  return sum;
}

json to_json(const Summary& s) {
  json runs = json::array();
  for (const auto& r : s.runs) {
    runs.push_back({{"run", r.run},
                    {"old_leader", r.old_leader},
                    {"new_leader", r.new_leader},
                    {"acked_by", r.acked_by},
                    {"kill_ms", r.kill_ms},
                    {"failover_ms", r.failover_ms},
                    {"ack_sent_ms", r.ack_sent_ms},
                    {"earlier_attempts", r.earlier_attempts}});
  }
  return json{{"target", s.target},
              {"runs", runs},
              {"median_ms", s.median},
              {"min_ms", s.min},
              {"max_ms", s.max}};
}

int serve(const Options& o) {
  std::string dir = o.dir + "/" + o.serve;
  fs::remove_all(dir);
  Status st;
  auto c = make_cluster(o.serve, dir, o, &st);
  if (st.ok()) st = c->start_all();
  if (!st.ok()) {
    std::fprintf(stderr, "vigil-failover-bench: %s\n", st.to_string().c_str());
    return 1;
  }
  // Block the stop signals before waiting so none is lost; children are already started
  // (they must not inherit a blocked mask).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto leader = c->wait_for_leader(milliseconds(20000));
  if (!leader) {
    (void)fail(*c, 1, leader.error());
    std::fprintf(stderr, "vigil-failover-bench: %s\n", leader.error().to_string().c_str());
    return 1;
  }
  std::string endpoint = c->api(*leader);
  std::printf("%s cluster up: leader node %d, API %s\n", o.serve.c_str(), *leader,
              endpoint.c_str());
  std::fflush(stdout);
  if (!o.ready_file.empty()) {
    // An HTTPS API: the URL says so, and READY.env holds what a client needs (the
    // variables of the vigil CLI, which vigil-kv-load reads too). Written first: the
    // ready file's appearance means both are there.
    const api::HttpClientOptions co = c->client_options(*leader);
    if (co.tls) {
      std::ofstream env(o.ready_file + ".env");
      env << "VIGIL_CACERT=" << co.ca_file << " VIGIL_SERVER_NAME=" << co.server_name;
      if (o.serve == "vigil") env << " VIGIL_TOKEN_FILE=" << dir << "/admin.token";
      env << "\n";
    }
    // READY.nodes: one line per node, "NODE API_URL SERVER_NAME" (for tools that need more
    // than the leader, e.g. vigil-watch-latency); SERVER_NAME is "-" without TLS.
    {
      std::ofstream nodes(o.ready_file + ".nodes");
      for (int n = 1; n <= c->size(); ++n) {
        const api::HttpClientOptions no = c->client_options(n);
        nodes << n << " " << (no.tls ? "https://" : "") << c->api(n) << " "
              << (no.tls && !no.server_name.empty() ? no.server_name : "-") << "\n";
      }
    }
    std::string tmp = o.ready_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << (co.tls ? "https://" : "") << endpoint << "\n";
    }
    fs::rename(tmp, o.ready_file);
  }
  int sig = 0;
  sigwait(&set, &sig);
  c.reset();  // SIGKILL to every member
  if (!o.keep) fs::remove_all(dir);
  return 0;
}

void usage() {
  std::fprintf(stderr,
               "usage: vigil-failover-bench [--target vigil|etcd|both] [--runs N] [--json]\n"
               "         [--interval-ms MS] [--timeout-ms MS] [--dir DIR] [--keep]\n"
               "         [--vigil PATH] [--etcd PATH]\n"
               "         [--vigil-insecure] [--vigil-snapshot-entries N]\n"
               "         [--etcd-tls]  (etcd with peer mTLS and HTTPS, as Vigil runs)\n"
               "       vigil-failover-bench --serve vigil|etcd [--dir DIR] [--ready-file F]\n"
               "Kills the leader of a 3-node cluster on loopback N times and measures the time\n"
               "from its death to the first acknowledged PUT sent after it. --serve starts a\n"
               "cluster, writes the leader's API address to F and waits for SIGTERM/SIGINT.\n");
}

}  // namespace
}  // namespace vigil::bench

int main(int argc, char** argv) {
  using namespace vigil::bench;
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target")
      o.target = next();
    else if (a == "--runs")
      o.runs = std::atoi(next().c_str());
    else if (a == "--json")
      o.as_json = true;
    else if (a == "--interval-ms")
      o.interval_ms = std::atoi(next().c_str());
    else if (a == "--timeout-ms")
      o.timeout_ms = std::atoi(next().c_str());
    else if (a == "--dir")
      o.dir = next();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--vigil")
      o.vigil_binary = next();
    else if (a == "--etcd")
      o.etcd_binary = next();
    else if (a == "--serve")
      o.serve = next();
    else if (a == "--ready-file")
      o.ready_file = next();
    else if (a == "--vigil-insecure")
      o.vigil_insecure = true;
    else if (a == "--etcd-tls")
      o.etcd_tls = true;
    else if (a == "--vigil-snapshot-entries")
      o.vigil_snapshot_entries = std::stoull(next());
    else {
      usage();
      return 2;
    }
  }
  bool bad_target = o.target != "vigil" && o.target != "etcd" && o.target != "both";
  bool bad_serve = !o.serve.empty() && o.serve != "vigil" && o.serve != "etcd";
  if (bad_target || bad_serve || o.runs < 1 || o.interval_ms < 1 || o.timeout_ms < 10) {
    usage();
    return 2;
  }
  if (o.dir.empty()) o.dir = "/tmp/vigil-failover-bench-" + std::to_string(::getpid());
  o.dir = std::filesystem::absolute(o.dir).string();
  if (!o.serve.empty()) return serve(o);
  std::vector<std::string> targets;
  if (o.target == "both")
    targets = {"vigil", "etcd"};
  else
    targets = {o.target};
  json out = json::object();
  for (const auto& t : targets) {
    auto s = run_target(t, o);
    if (!s) {
      std::fprintf(stderr, "vigil-failover-bench: %s: %s\n", t.c_str(),
                   s.error().to_string().c_str());
      return 1;
    }
    if (o.as_json) {
      out[t] = to_json(*s);
    } else {
      std::printf("%-5s failover over %zu runs: median %.1f ms, min %.1f ms, max %.1f ms\n",
                  t.c_str(), s->runs.size(), s->median, s->min, s->max);
      std::fflush(stdout);
    }
  }
  if (o.as_json) std::printf("%s\n", out.dump().c_str());
  if (!o.keep) std::filesystem::remove_all(o.dir);
  return 0;
}
