// vigil-rm-bench: the resource manager's figures of issue #4 on three real agents on
// loopback (default timers, fsync on): a supervised process killed → running again; a node
// killed → its exclusive process running elsewhere; cold start of three agents → every
// resource running; RSS of an agent idle with everything running. docs/BENCHMARKS.md.
//
//   vigil-rm-bench [--runs N] [--dir DIR]       (root not needed; loopback only)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Bench {
  std::string dir;
  std::unique_ptr<AgentCluster> c;
  int processes = 10;

  void start_cluster() {
    c.reset();
    fs::remove_all(dir + "/cluster");
    vigil::cli::AgentClusterOptions o;
    o.dir = dir + "/cluster";
    o.vigil_binary = VIGIL_BINARY;
    o.insecure = true;
    c = std::make_unique<AgentCluster>(o, vigil::cli::CliHooks{});
    if (!c->init().ok()) die("init");
  }

  [[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vigil-rm-bench: %s failed\n", what.c_str());
    cleanup();
    std::exit(1);
  }

  void cleanup() {
    c.reset();
    (void)std::system(("pkill -9 -f '" + dir + "/rm-sleep' >/dev/null 2>&1").c_str());
  }

  std::pair<int, json> call(int node, const std::string& method, const std::string& target,
                            const std::string& body = "", int timeout_ms = 2000) {
    vigil::api::HttpClient h(c->api(node));
    auto r = h.request(method, target, body, timeout_ms);
    if (!r) return {0, json()};
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

  // SIGKILL of the node running `solo` (its agent and the process) → solo running on
  // another node (by a survivor's view, and its process alive).
  double node_failover() {
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
    auto t0 = Clock::now();
    c->kill(victim, SIGKILL);
    ::kill(p, SIGKILL);
    double took = -1;
    while (ms_since(t0) < 20000) {
      auto r = running(observer);
      auto on = r["solo"];
      on.erase("n" + std::to_string(victim));
      if (on.size() == 1) {
        int n = std::stoi(on.begin()->substr(1));
        pid_t q = pid_of(n, "solo");
        if (alive(q)) {
          took = ms_since(t0);
          break;
        }
      }
      std::this_thread::sleep_for(2ms);
    }
    if (took < 0) die("node failover");
    // The victim back, and settled, for the next run.
    if (!c->start(victim).ok()) die("restart victim");
    for (auto t1 = Clock::now(); ms_since(t1) < 20000; std::this_thread::sleep_for(50ms)) {
      auto [code, s] = call(observer, "GET", "/v1/cluster/status?serializable=true");
      bool online = code == 200;
      if (online) {
        for (const auto& nd : s["nodes"]) online &= nd.value("state", "") == "online";
      }
      if (online && all_running(observer)) break;
    }
    return took;
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

}  // namespace

int main(int argc, char** argv) {
  int runs = 10;
  std::string dir = "/tmp/vigil-rm-bench-" + std::to_string(::getpid());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: vigil-rm-bench [--runs N] [--dir DIR]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  fs::copy_file("/bin/sleep", dir + "/rm-sleep", fs::copy_options::overwrite_existing);
  fs::permissions(dir + "/rm-sleep", fs::perms::owner_all);
  Bench b;
  b.dir = dir;

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

  std::vector<double> restart, failover;
  for (int i = 0; i < runs; ++i) {
    restart.push_back(b.process_restart());
    std::this_thread::sleep_for(200ms);
  }
  for (int i = 0; i < runs; ++i) failover.push_back(b.node_failover());
  b.cleanup();
  fs::remove_all(dir);

  std::printf(
      "vigil-rm-bench: 3 agents on loopback, default timers, fsync on; %d process "
      "resources + 1 exclusive process + 1 ocf:heartbeat:Dummy\n",
      b.processes);
  print("cold start → every resource running", cold, 3000);
  print("process killed → running again", restart, 100);
  print("node killed → exclusive process elsewhere", failover, 1000);
  std::printf("%-44s n1 %.1f MiB, n2 %.1f MiB, n3 %.1f MiB  target < 30 MiB: %s\n",
              "RSS idle, everything running", rss[0] / 1024.0, rss[1] / 1024.0, rss[2] / 1024.0,
              *std::max_element(rss.begin(), rss.end()) < 30 * 1024 ? "met" : "NOT met");
  return 0;
}
