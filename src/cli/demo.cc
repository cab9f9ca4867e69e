// `vigil demo` over loopback: three real agents, a leader crash, and the evidence.
#include "cli/demo.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "cli/agent_cluster.h"

namespace vigil::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::atomic<bool> g_interrupted{false};

void on_signal(int) { g_interrupted = true; }

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Prints without buffering surprises: the demo is watched live.
template <class... A>
void say(const char* fmt, A... a) {
  std::printf(fmt, a...);
  std::fflush(stdout);
}

std::string node_name(int i) { return "n" + std::to_string(i); }

}  // namespace

int run_demo(const DemoOptions& o, const CliHooks& hooks) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const std::string dir = o.dir.empty() ? "/tmp/vigil-demo" : o.dir;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    // Left by an earlier run that crashed: its agents died with it (they are started with
    // PR_SET_PDEATHSIG), so only files remain.
    say("Removing %s left by an earlier run\n", dir.c_str());
    fs::remove_all(dir, ec);
    if (ec) {
      say("vigil demo: cannot remove %s: %s\n", dir.c_str(), ec.message().c_str());
      return 1;
    }
  }

  AgentClusterOptions co;
  co.nodes = o.nodes;
  co.dir = dir;
  co.vigil_binary = "/proc/self/exe";
  co.insecure = !(hooks.cert_init && hooks.cert_issue);
  int rc = 1;
  {
    AgentCluster c(co, hooks);
    auto fail = [&](const std::string& what) {
      say("\nvigil demo: %s\n", what.c_str());
      if (g_interrupted) say("vigil demo: interrupted; cleaning up\n");
      return 1;
    };
    say("Vigil demo: %d agents on 127.0.0.1 (%s, fsync on), files in %s\n", o.nodes,
        co.insecure ? "plain TCP" : "mutual TLS", dir.c_str());
    Status s = c.init();
    if (!s.ok()) return fail("cannot set up: " + s.to_string());
    auto t_start = Clock::now();
    s = c.start_all();
    if (!s.ok()) return fail("cannot start agents: " + s.to_string());
    say("  started");
    for (int i = 1; i <= o.nodes; ++i) say(" %s (api %s)", node_name(i).c_str(), c.api(i).c_str());
    say("\n");
    auto leader = c.wait_for_leader(15s);
    if (!leader) return fail("no leader elected within 15 s; see " + c.log_path(1));
    auto st = c.status(*leader);
    say("  leader %s elected (term %llu) %lld ms after start\n", node_name(*leader).c_str(),
        st ? static_cast<unsigned long long>((*st)["term"].get<uint64_t>()) : 0ULL,
        ms_since(t_start));

    // Writes through every node: followers forward to the leader.
    std::map<std::string, std::string> acked;
    std::vector<double> lat;
    say("  writing %d keys through all nodes ", o.writes);
    for (int i = 0; i < o.writes && !g_interrupted; ++i) {
      std::string k = "demo/key" + std::to_string(i);
      std::string v = "value-" + std::to_string(i);
      auto t0 = Clock::now();
      auto r = c.put(1 + i % o.nodes, k, v);
      if (r) {
        lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        acked[k] = v;
      }
      if (i % (std::max(1, o.writes / 20)) == 0) say(".");
    }
    if (g_interrupted) return fail("interrupted");
    std::sort(lat.begin(), lat.end());
    say(" %zu acknowledged (median %.1f ms each, fsync'd on a quorum)\n", acked.size(),
        lat.empty() ? 0.0 : lat[lat.size() / 2]);

    // The crash.
    const int old = *leader;
    say("  kill -9 the leader %s\n", node_name(old).c_str());
    auto t_kill = Clock::now();
    c.kill(old, SIGKILL);
    // A client that keeps writing to the surviving nodes: when is it served again?
    long long first_write_ms = -1;
    for (int attempt = 0; first_write_ms < 0 && !g_interrupted && ms_since(t_kill) < 15000;
         ++attempt) {
      int via = 1 + attempt % o.nodes;
      if (via == old) continue;
      auto r = c.put(via, "demo/after-failover", "ok", 300);
      if (r) first_write_ms = ms_since(t_kill);
    }
    if (first_write_ms < 0) return fail("no write succeeded within 15 s of the crash");
    auto next = c.wait_for_leader(10s);
    if (!next) return fail("the surviving nodes did not agree on a leader");
    auto nst = c.status(*next);
    say("  new leader %s (term %llu); the first write after the crash was acknowledged "
        "%lld ms after the kill\n",
        node_name(*next).c_str(),
        nst ? static_cast<unsigned long long>((*nst)["term"].get<uint64_t>()) : 0ULL,
        first_write_ms);

    // The evidence: every acknowledged write, read back linearizably.
    size_t present = 0;
    std::vector<std::string> lost;
    for (const auto& [k, v] : acked) {
      auto g = c.get(*next, k);
      if (g && g->has_value() && **g == v) {
        ++present;
      } else {
        lost.push_back(k);
      }
    }
    say("  read back every acknowledged write from %s (linearizable): %zu/%zu present\n",
        node_name(*next).c_str(), present, acked.size());
    for (const auto& k : lost) say("    LOST: %s\n", k.c_str());

    // The old leader returns from its data dir and catches up.
    auto t_restart = Clock::now();
    s = c.start(old);
    if (!s.ok()) return fail("cannot restart " + node_name(old) + ": " + s.to_string());
    uint64_t target = nst ? (*nst)["commit"].get<uint64_t>() : 0;
    bool caught_up = false;
    while (!caught_up && !g_interrupted && ms_since(t_restart) < 15000) {
      auto os = c.status(old);
      if (os && (*os)["applied"].get<uint64_t>() >= target) caught_up = true;
      if (!caught_up) std::this_thread::sleep_for(20ms);
    }
    if (caught_up) {
      say("  %s restarted from its data dir and caught up to index %llu in %lld ms\n",
          node_name(old).c_str(), static_cast<unsigned long long>(target), ms_since(t_restart));
    } else {
      say("  %s did not catch up within 15 s (see %s)\n", node_name(old).c_str(),
          c.log_path(old).c_str());
    }

    const bool ok = lost.empty() && caught_up && first_write_ms <= o.failover_target_ms;
    say("\nResult: %s acknowledged write lost; write outage after the leader crash %lld ms "
        "(target < %d ms)%s\n",
        lost.empty() ? "no" : "SOME", first_write_ms, o.failover_target_ms,
        ok ? "" : "  -- TARGET MISSED");
    rc = ok ? 0 : 1;
  }  // AgentCluster's destructor stops every agent
  if (!o.keep) {
    fs::remove_all(dir, ec);
    say("Cleaned up: agents stopped, %s removed\n", dir.c_str());
  } else {
    say("Agents stopped; files kept in %s\n", dir.c_str());
  }
  return rc;
}

}  // namespace vigil::cli
