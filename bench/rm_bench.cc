// vigil-rm-bench: the resource manager's figures of issue #4 on three real agents on
// loopback (default timers, fsync on): a supervised process killed → running again; a node
// killed → its exclusive process running elsewhere (then, while the victim comes back, the
// recovered copy is watched for restarts and gaps); cold start of three agents → every
// resource running; RSS of an agent idle with everything running. docs/BENCHMARKS.md.
//
//   vigil-rm-bench [--runs N] [--dir DIR] [--keep]   (root not needed; loopback only)
//
// The agents' ports are picked below the kernel's ephemeral range (ip_local_port_range): a
// client socket in TIME_WAIT on a restarted agent's port would make its bind fail. The
// supervised command is a copy of /bin/sleep at DIR/rm-sleep, so that every process the
// bench caused can be killed by that path: at the end, on a failure, and on SIGINT, SIGTERM
// or SIGHUP (the agents themselves die with the bench: PR_SET_PDEATHSIG).
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "cli/agent_cluster.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;
using vigil::cli::AgentCluster;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// HH:MM:SS.mmm (UTC), as the agents' logs print it.
std::string wall_clock() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What the signal thread needs to clean up: the agents' pids and the sleep copy's path.
std::atomic<pid_t> g_agent_pid[4];
std::string g_sleep_path;             // set once before the signal thread starts
std::atomic<bool> g_stopping{false};  // the signal thread is cleaning up: failures are its doing

void kill_sleeps(const std::string& path) {
  (void)std::system(("pkill -9 -f '" + path + "' >/dev/null 2>&1").c_str());
}

// SIGINT, SIGTERM, SIGHUP: the agents first (or they would restart what is killed next),
// then every copy of the sleep, then exit. The signals are blocked in every other thread.
void signal_thread(sigset_t set) {
  int sig = 0;
  if (::sigwait(&set, &sig) != 0) return;
  g_stopping = true;
  for (auto& p : g_agent_pid) {
    pid_t pid = p.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  std::this_thread::sleep_for(50ms);
  kill_sleeps(g_sleep_path);
  std::fprintf(stderr, "vigil-rm-bench: signal %d: agents and processes killed\n", sig);
  std::_Exit(128 + sig);
}

struct Bench {
  std::string dir;
  std::unique_ptr<AgentCluster> c;
  // One kept-alive connection per node: a fresh one per poll (every 2 ms) left thousands of
  // sockets in TIME_WAIT.
  std::map<int, std::unique_ptr<vigil::api::HttpClient>> clients;
  int processes = 10;
  int base_port = 0;

  void start_cluster() {
    clients.clear();
    c.reset();
    fs::remove_all(dir + "/cluster");
    vigil::cli::AgentClusterOptions o;
    o.dir = dir + "/cluster";
    o.vigil_binary = VIGIL_BINARY;
    o.insecure = true;
    o.base_port = base_port;
    c = std::make_unique<AgentCluster>(o, vigil::cli::CliHooks{});
    if (!c->init().ok()) die("init");
  }

  // After every start or kill of an agent: what the signal thread would kill.
  void note_pids() {
    for (int n = 1; n <= 3; ++n) g_agent_pid[n] = c ? c->pid(n) : -1;
  }

  [[noreturn]] void die(const std::string& what) {
    while (g_stopping) std::this_thread::sleep_for(1s);  // the signal thread exits
    std::fprintf(stderr, "vigil-rm-bench: %s failed\n", what.c_str());
    if (c) {
      for (int n = 1; n <= 3; ++n) {
        std::fprintf(stderr, "--- %s, last lines:\n%s\n", c->log_path(n).c_str(),
                     c->log_tail(n, 15).c_str());
      }
      std::fprintf(stderr, "vigil-rm-bench: logs kept in %s/cluster\n", dir.c_str());
    }
    cleanup();
    std::exit(1);
  }

  void cleanup() {
    clients.clear();
    c.reset();
    note_pids();
    kill_sleeps(dir + "/rm-sleep");
  }

  std::pair<int, json> call(int node, const std::string& method, const std::string& target,
                            const std::string& body = "", int timeout_ms = 2000) {
    auto& h = clients[node];
    if (!h) h = std::make_unique<vigil::api::HttpClient>(c->api(node));
    auto r = h->request(method, target, body, timeout_ms);
    if (!r) {
      h.reset();  // a fresh connection next time
      return {0, json()};
    }
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  std::string definition() const {
    std::string d = "resources:\n";
    for (int i = 0; i < processes; ++i) {
      d += "  - id: p" + std::to_string(i) + "\n    agent: process\n    params: {command: \"" +
           dir + "/rm-sleep " + std::to_string(100000 + i) + "\"}\n    meta: {stickiness: 100}\n";
    }
    d += "  - id: solo\n    agent: process\n    params: {command: \"" + dir +
         "/rm-sleep 200000\"}\n    meta: {exclusive: true, stickiness: 100}\n";
    d += "  - id: dummy\n    agent: ocf:heartbeat:Dummy\n    params: {state: \"" + dir +
         "/dummy.state\"}\n    meta: {stickiness: 100, requires: nothing}\n"
         "    operations:\n      - {name: monitor, interval: 1s, timeout: 10s}\n";
    return d;
  }

  // Resource id → nodes it runs on, by `from`'s status (serializable: this node's view).
  std::map<std::string, std::set<std::string>> running(int from) {
    std::map<std::string, std::set<std::string>> out;
    auto [code, s] = call(from, "GET", "/v1/cluster/status?serializable=true");
    if (code != 200 || !s.is_object()) return out;
    for (const auto& r : s["resources"]) {
      auto& on = out[r["id"].get<std::string>()];
      for (const auto& n : r["nodes"]) {
        if (n.value("running", false)) on.insert(n["node"].get<std::string>());
      }
    }
    return out;
  }

  bool all_running(int from) {
    auto r = running(from);
    if (r.size() != size_t(processes) + 2) return false;
    for (const auto& [id, on] : r) {
      if (on.size() != 1) return false;
    }
    return true;
  }

  pid_t pid_of(int node, const std::string& id) {
    std::string t = read_file(c->data_dir(node) + "/process/" + id + ".pid");
    return static_cast<pid_t>(std::atol(t.c_str()));
  }

  static bool alive(pid_t p) {
    if (p <= 1 || ::kill(p, 0) != 0) return false;
    std::string st = read_file("/proc/" + std::to_string(p) + "/stat");
    size_t paren = st.rfind(')');
    return paren == std::string::npos || paren + 2 >= st.size() || st[paren + 2] != 'Z';
  }

  // Cold start: agents launched → definition applied as soon as an API answers → every
  // resource running (as the applying node sees it).
  double cold_start() {
    start_cluster();
    fs::remove(dir + "/dummy.state");
    auto t0 = Clock::now();
    if (!c->start_all().ok()) die("start");
    note_pids();
    std::string def = definition();
    while (true) {
      auto [code, j] = call(1, "PUT", "/v1/cluster", def, 1000);
      if (code == 200) break;
      if (ms_since(t0) > 30000) die("apply (" + std::to_string(code) + ": " + j.dump() + ")");
      std::this_thread::sleep_for(5ms);
    }
    while (!all_running(1)) {
      if (ms_since(t0) > 30000) die("cold start");
      std::this_thread::sleep_for(5ms);
    }
    return ms_since(t0);
  }

  int node_of(const std::string& id, int from) {
    auto r = running(from);
    if (r[id].size() != 1) return 0;
    return std::stoi(r[id].begin()->substr(1));
  }

  double process_restart() {
    int n = 0;
    for (auto t0 = Clock::now(); n == 0 && ms_since(t0) < 10000; std::this_thread::sleep_for(5ms))
      n = node_of("p0", 1);
    if (n == 0) die("p0 placed");
    pid_t p = 0;
    for (auto t0 = Clock::now(); !alive(p) && ms_since(t0) < 10000;
         std::this_thread::sleep_for(2ms))
      p = pid_of(n, "p0");
    auto t0 = Clock::now();
    ::kill(p, SIGKILL);
    while (ms_since(t0) < 10000) {
      pid_t q = pid_of(n, "p0");
      if (q > 1 && q != p && alive(q)) return ms_since(t0);
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    die("process restart");
  }

  // The live `solo` processes, by their pid files on every node.
  std::set<pid_t> solo_pids(std::string* where = nullptr) {
    std::set<pid_t> out;
    for (int n = 1; n <= 3; ++n) {
      pid_t q = pid_of(n, "solo");
      if (!alive(q)) continue;
      out.insert(q);
      if (where) *where += " n" + std::to_string(n) + ":" + std::to_string(q);
    }
    return out;
  }

  struct Failover {
    double ms = 0;             // kill → solo running elsewhere
    bool leader = false;       // the victim was the leader
    int restarts_after = 0;    // recovered copy stopped and started again before settling
    double down_after_ms = 0;  // time without a live solo after the recovery
    int both_alive = 0;        // polls that saw two live solo processes (must be 0)
  };

  // SIGKILL of the node running `solo` (its agent and the process) → solo running on
  // another node (by a survivor's view, and its process alive). Then the victim restarts
  // and the cluster settles, while solo's process is watched for restarts and gaps.
  Failover node_failover() {
    Failover f;
    int victim = 0;
    for (auto t0 = Clock::now(); victim == 0 && ms_since(t0) < 10000;
         std::this_thread::sleep_for(5ms))
      victim = node_of("solo", 1);
    if (victim == 0) {
      auto [code, st] = call(1, "GET", "/v1/cluster/status?serializable=true");
      die("solo placed (status " + std::to_string(code) + ": " + st.dump() + ")");
    }
    int observer = victim == 1 ? 2 : 1;
    pid_t p = 0;
    for (auto t0 = Clock::now(); !alive(p) && ms_since(t0) < 10000;
         std::this_thread::sleep_for(2ms))
      p = pid_of(victim, "solo");
    auto leader = c->wait_for_leader(5s);
    f.leader = leader.has_value() && *leader == victim;
    clients.erase(victim);
    auto t0 = Clock::now();
    c->kill(victim, SIGKILL);
    ::kill(p, SIGKILL);
    note_pids();
    double took = -1;
    pid_t recovered = 0;
    while (ms_since(t0) < 20000) {
      auto r = running(observer);
      auto on = r["solo"];
      on.erase("n" + std::to_string(victim));
      if (on.size() == 1) {
        int n = std::stoi(on.begin()->substr(1));
        pid_t q = pid_of(n, "solo");
        if (alive(q)) {
          took = ms_since(t0);
          recovered = q;
          break;
        }
      }
      std::this_thread::sleep_for(2ms);
    }
    if (took < 0) die("node failover");
    f.ms = took;
    // The victim back, and settled, for the next run; then 500 ms more of watching.
    if (!c->start(victim).ok()) die("restart of the victim n" + std::to_string(victim));
    note_pids();
    json last;
    pid_t current = recovered;
    auto down_since = Clock::time_point::min();
    auto settled_at = Clock::time_point::min();
    auto t1 = Clock::now();
    for (int i = 0; ms_since(t1) < 20000; ++i, std::this_thread::sleep_for(5ms)) {
      if (!c->running(victim)) die("restart of the victim n" + std::to_string(victim));
      std::string where;
      auto live = solo_pids(&where);
      if (live.size() > 1 && f.both_alive++ == 0) {
        std::fprintf(stderr, "vigil-rm-bench: %s: two live solo processes (node:pid):%s\n",
                     wall_clock().c_str(), where.c_str());
      }
      if (live.empty() && down_since == Clock::time_point::min()) down_since = Clock::now();
      if (!live.empty()) {
        if (down_since != Clock::time_point::min()) {
          f.down_after_ms += ms_since(down_since);
          down_since = Clock::time_point::min();
        }
        if (!live.contains(current)) {
          ++f.restarts_after;
          current = *live.begin();
        }
      }
      if (settled_at != Clock::time_point::min()) {
        if (ms_since(settled_at) >= 500 && down_since == Clock::time_point::min()) return f;
        continue;
      }
      if (i % 10 != 0) continue;
      auto [code, s] = call(observer, "GET", "/v1/cluster/status?serializable=true");
      last = s;
      bool online = code == 200;
      if (online) {
        for (const auto& nd : s["nodes"]) online &= nd.value("state", "") == "online";
      }
      if (online && all_running(observer)) settled_at = Clock::now();
    }
    die("settling after the restart of n" + std::to_string(victim) + " (status " + last.dump() +
        ")");
  }

  static long rss_kib(pid_t pid) {
    std::string s = read_file("/proc/" + std::to_string(pid) + "/status");
    size_t at = s.find("VmRSS:");
    return at == std::string::npos ? -1 : std::atol(s.c_str() + at + 6);
  }
};

struct Stats {
  double median, min, max;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

void print(const char* what, const std::vector<double>& v, double target) {
  Stats s = stats(v);
  std::printf("%-44s median %8.1f ms  min %8.1f  max %8.1f  (n=%zu)  target < %.0f ms: %s\n", what,
              s.median, s.min, s.max, v.size(), target, s.median < target ? "met" : "NOT met");
}

void print_runs(const char* what, const std::vector<double>& v,
                const std::vector<bool>* mark = nullptr) {
  std::printf("  %s per run (ms):", what);
  for (size_t i = 0; i < v.size(); ++i) {
    std::printf(" %.1f%s", v[i], mark && (*mark)[i] ? "L" : "");
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 10;
  bool keep = false;
  std::string dir = "/tmp/vigil-rm-bench-" + std::to_string(::getpid());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: vigil-rm-bench [--runs N] [--dir DIR] [--keep]\n");
      return 2;
    }
  }
  dir = fs::absolute(dir).lexically_normal().string();
  g_sleep_path = dir + "/rm-sleep";
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every later thread
  std::thread(signal_thread, set).detach();

  fs::create_directories(dir);
  fs::copy_file("/bin/sleep", dir + "/rm-sleep", fs::copy_options::overwrite_existing);
  fs::permissions(dir + "/rm-sleep", fs::perms::owner_all);
  Bench b;
  b.dir = dir;
  b.base_port = vigil::cli::find_free_port_range(3);
  if (b.base_port == 0) {
    std::fprintf(stderr, "vigil-rm-bench: no free ports below the ephemeral range\n");
  }

  std::vector<double> cold;
  const int cold_runs = std::min(runs, 5);
  for (int i = 0; i < cold_runs; ++i) {
    cold.push_back(b.cold_start());
    b.cleanup();
  }
  (void)b.cold_start();
  std::this_thread::sleep_for(2s);  // idle: everything running, monitors only
  std::vector<long> rss;
  for (int n = 1; n <= 3; ++n) rss.push_back(Bench::rss_kib(b.c->pid(n)));

  std::vector<double> restart, failover, failover_leader, failover_follower;
  std::vector<bool> leader_killed;
  int restarts_after = 0, both_alive = 0;
  double down_after_ms = 0;
  for (int i = 0; i < runs; ++i) {
    restart.push_back(b.process_restart());
    std::this_thread::sleep_for(200ms);
  }
  for (int i = 0; i < runs; ++i) {
    Bench::Failover f = b.node_failover();
    failover.push_back(f.ms);
    (f.leader ? failover_leader : failover_follower).push_back(f.ms);
    leader_killed.push_back(f.leader);
    restarts_after += f.restarts_after;
    down_after_ms += f.down_after_ms;
    both_alive += f.both_alive;
  }
  std::this_thread::sleep_for(2s);  // idle again, after 10 restarts and failovers
  std::vector<long> rss_end;
  for (int n = 1; n <= 3; ++n) rss_end.push_back(Bench::rss_kib(b.c->pid(n)));
  b.cleanup();
  if (!keep) fs::remove_all(dir);

  std::printf(
      "vigil-rm-bench: 3 agents on loopback, default timers, fsync on; %d process "
      "resources + 1 exclusive process + 1 ocf:heartbeat:Dummy\n",
      b.processes);
  print("cold start → every resource running", cold, 3000);
  print("process killed → running again", restart, 100);
  print("node killed → exclusive process elsewhere", failover, 1000);
  if (!failover_leader.empty())
    print("  of which the victim was the leader", failover_leader, 1000);
  if (!failover_follower.empty())
    print("  of which the victim was a follower", failover_follower, 1000);
  std::printf(
      "  after recovery, while the victim came back: solo restarted %d times, %.0f ms "
      "without a live solo in all; polls with two live solo processes: %d\n",
      restarts_after, down_after_ms, both_alive);
  std::printf("%-44s n1 %.1f MiB, n2 %.1f MiB, n3 %.1f MiB  target < 30 MiB: %s\n",
              "RSS idle, everything running", rss[0] / 1024.0, rss[1] / 1024.0, rss[2] / 1024.0,
              *std::max_element(rss.begin(), rss.end()) < 30 * 1024 ? "met" : "NOT met");
  std::printf("%-44s n1 %.1f MiB, n2 %.1f MiB, n3 %.1f MiB\n",
              "RSS idle at the end (2 s after the last run)", rss_end[0] / 1024.0,
              rss_end[1] / 1024.0, rss_end[2] / 1024.0);
  print_runs("cold start", cold);
  print_runs("process restart", restart);
  print_runs("node failover (L: the victim was the leader)", failover, &leader_killed);
  std::printf("  agent ports: %s\n",
              b.base_port ? ("peers " + std::to_string(b.base_port) + "+, APIs " +
                             std::to_string(b.base_port + vigil::cli::kApiPortOffset) + "+")
                                .c_str()
                          : "picked by AgentCluster");
  return 0;
}
