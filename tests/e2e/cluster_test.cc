// End-to-end tests of the resource manager against three real agents: `vigil apply` with
// validation, resources started by real agents (a supervised process, Debian's
// ocf:heartbeat:Dummy), a killed process restarted, a monitor failure recovered, a re-apply
// that touches nothing, a move, a node killed with its exclusive resource taken over, and a
// resource removed from the definition stopped; and the operator's commands: node standby
// and maintenance, resource restart, disable and enable, a definition change that restarts
// only what it must, and the event log (`vigil events`, `--follow`); fencing of a hung node
// through fence levels (a broken device, then one that powers the host off); Debian's
// ocf:heartbeat:nginx, unmodified, started, monitored, recovered and stopped.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_cluster.h"

namespace vigil::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Alive and not a zombie (a killed process whose parent has not reaped it yet).
bool process_alive(pid_t pid) {
  if (pid <= 1 || ::kill(pid, 0) != 0) return false;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

// Runs the vigil CLI; returns (exit code, stdout+stderr).
std::pair<int, std::string> vigil_cli(const std::string& args) {
  std::string cmd = std::string(VIGIL_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

// Runs a shell command; returns (exit code, stdout).
std::pair<int, std::string> shell(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

class ClusterE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/lib/ocf/resource.d/heartbeat/Dummy")) {
      GTEST_SKIP() << "resource-agents is not installed (scripts/setup.sh installs it)";
    }
    e_ = std::make_unique<E2eCluster>("cluster");
    ASSERT_TRUE(e_->c->init().ok());
    // The agents find the test fence agent (fence/fence_vigil_test) there.
    ::setenv("VIGIL_FENCE_DIR", VIGIL_FENCE_DIR, 1);
    // Three nodes on one host: each its own HA_RSCTMP (Stateful keeps its state there).
    ::setenv("VIGIL_RSCTMP", (e_->o.dir + "/rsctmp").c_str(), 1);
    ASSERT_TRUE(e_->c->start_all().ok());
    auto leader = e_->c->wait_for_leader(10s);
    ASSERT_TRUE(leader.has_value());
    dir_ = e_->o.dir;
    // Our own copy of sleep: its path names this test, so teardown finds every copy.
    fs::copy_file("/bin/sleep", dir_ + "/svc-sleep");
    fs::permissions(dir_ + "/svc-sleep", fs::perms::owner_all);
  }

  void TearDown() override {
    e_.reset();  // agents first (SIGKILL), then what they supervised
    if (!lsb_script_.empty()) fs::remove(lsb_script_);
    if (!dir_.empty()) {
      std::string cmd = "pkill -9 -f '" + dir_ + "/svc-sleep' >/dev/null 2>&1";
      (void)std::system(cmd.c_str());
      // An nginx the nginx test left running: its master and workers.
      if (fs::exists(dir_ + "/nginx.pid")) {
        std::string master = read_file(dir_ + "/nginx.pid");
        master.erase(master.find_last_not_of(" \n") + 1);
        if (!master.empty()) {
          (void)std::system(("kill -STOP " + master + " >/dev/null 2>&1; pkill -9 -P " + master +
                             " >/dev/null 2>&1; kill -9 " + master + " >/dev/null 2>&1")
                                .c_str());
        }
      }
    }
  }

  std::string api(int node) const { return e_->c->api(node); }

  json status(int node = 1) {
    auto [code, j] = e_->call(node, "GET", "/v1/cluster/status?serializable=true");
    return code == 200 ? j : json();
  }

  // Nodes `id` runs on, by the status of node `from`.
  std::set<std::string> running_on(const std::string& id, int from = 1) {
    std::set<std::string> out;
    json s = status(from);
    if (!s.is_object()) return out;
    for (const auto& r : s["resources"]) {
      if (r["id"] != id) continue;
      for (const auto& on : r["nodes"]) {
        if (on.value("running", false)) out.insert(on["node"].get<std::string>());
      }
    }
    return out;
  }

  // Waits until the status of node `from` shows every node online; false on timeout.
  bool wait_all_online(std::chrono::milliseconds limit, int from = 1) {
    auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      json s = status(from);
      bool all = s.is_object() && !s["nodes"].empty();
      if (all) {
        for (const auto& n : s["nodes"]) all &= n.value("state", "") == "online";
      }
      if (all) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Waits until `id` runs on exactly one node (or on `node`); returns it, "" on timeout.
  std::string wait_running(const std::string& id, std::chrono::milliseconds limit,
                           const std::string& node = "", int from = 1) {
    auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      auto on = running_on(id, from);
      if (on.size() == 1 && (node.empty() || *on.begin() == node)) return *on.begin();
      std::this_thread::sleep_for(20ms);
    }
    return "";
  }

  int node_number(const std::string& name) const { return std::stoi(name.substr(1)); }

  pid_t process_pid(const std::string& node, const std::string& id) {
    std::string text = read_file(e_->c->data_dir(node_number(node)) + "/process/" + id + ".pid");
    return static_cast<pid_t>(std::atol(text.c_str()));
  }

  // The pid of `id`'s live process on `node` once there is one (a status that counts an
  // assignment under way as running comes before the process); 0 on timeout.
  pid_t wait_pid(const std::string& node, const std::string& id) {
    auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
      pid_t p = process_pid(node, id);
      if (p > 1 && ::kill(p, 0) == 0) return p;
      std::this_thread::sleep_for(5ms);
    }
    return 0;
  }

  std::string definition(bool with_solo, const std::string& web_arg = "100000",
                         int dummy_monitor_ms = 200) const {
    std::string d =
        "resources:\n"
        "  - id: web\n"
        "    agent: process\n"
        "    params: {command: \"" +
        dir_ + "/svc-sleep " + web_arg +
        "\"}\n"
        "    meta: {stickiness: 100}\n"
        "  - id: dummy\n"
        "    agent: ocf:heartbeat:Dummy\n"
        "    params: {state: \"" +
        dir_ +
        "/dummy.state\"}\n"
        "    meta: {stickiness: 100, requires: nothing}\n"
        "    operations:\n"
        "      - {name: monitor, interval_ms: " +
        std::to_string(dummy_monitor_ms) + ", timeout_ms: 5000}\n";
    if (with_solo) {
      d += "  - id: solo\n"
           "    agent: process\n"
           "    params: {command: \"" +
           dir_ +
           "/svc-sleep 200000\"}\n"
           "    meta: {exclusive: true, stickiness: 100}\n";
    }
    return d;
  }

  std::unique_ptr<E2eCluster> e_;
  std::string dir_;
  std::string lsb_script_;  // an init script the LSB test installed in /etc/init.d
};

TEST_F(ClusterE2e, ApplyRunsRecoversMovesAndRemoves) {
  // A definition with an error is rejected with file, line and path; nothing is applied.
  write_file(dir_ + "/bad.yaml", "resources:\n  - id: web\n    agent: process\n    bogus: 1\n");
  auto [bad_rc, bad_out] = vigil_cli("apply -f " + dir_ + "/bad.yaml --api " + api(1));
  EXPECT_EQ(bad_rc, 2) << bad_out;
  EXPECT_NE(bad_out.find("bad.yaml:4: resources.web.bogus: unknown key"), std::string::npos)
      << bad_out;
  EXPECT_NE(bad_out.find("nothing was applied"), std::string::npos) << bad_out;
  // The vip driver's own rules apply too, with the line of the parameter.
  write_file(dir_ + "/badvip.yaml",
             "resources:\n  - id: addr\n    agent: vip\n    params:\n"
             "      ip: 198.18.0.100/24\n");
  auto [vip_rc, vip_out] = vigil_cli("apply -f " + dir_ + "/badvip.yaml --api " + api(1));
  EXPECT_EQ(vip_rc, 2) << vip_out;
  EXPECT_NE(vip_out.find("badvip.yaml:5: resources.addr.params.ip: '198.18.0.100/24' has a "
                         "prefix"),
            std::string::npos)
      << vip_out;

  // Dry run: the plan, nothing started.
  write_file(dir_ + "/cluster.yaml", definition(true));
  auto [dry_rc, dry_out] =
      vigil_cli("apply -f " + dir_ + "/cluster.yaml --dry-run --api " + api(2));
  EXPECT_EQ(dry_rc, 0) << dry_out;
  EXPECT_NE(dry_out.find("+ resource web"), std::string::npos) << dry_out;
  EXPECT_NE(dry_out.find("Start    web"), std::string::npos) << dry_out;
  EXPECT_NE(dry_out.find("Dry run: nothing was applied."), std::string::npos) << dry_out;
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(running_on("web").empty());

  // Apply through a follower or the leader alike: everything starts.
  auto t0 = Clock::now();
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(2));
  ASSERT_EQ(rc, 0) << out;
  std::string web = wait_running("web", 10s);
  std::string dummy = wait_running("dummy", 10s);
  std::string solo = wait_running("solo", 10s);
  ASSERT_FALSE(web.empty()) << status().dump(2);
  ASSERT_FALSE(dummy.empty()) << status().dump(2);
  ASSERT_FALSE(solo.empty()) << status().dump(2);
  std::printf("  apply → 3 resources running: %lld ms\n",
              static_cast<long long>((Clock::now() - t0) / 1ms));
  pid_t web_pid = wait_pid(web, "web");
  ASSERT_GT(web_pid, 1);
  ASSERT_EQ(::kill(web_pid, 0), 0);

  // vigil status shows it for people.
  auto [st_rc, st_out] = vigil_cli("status --api " + api(3));
  EXPECT_EQ(st_rc, 0) << st_out;
  EXPECT_NE(st_out.find("started on " + web), std::string::npos) << st_out;

  // A supervised process that dies is running again at once, on the same node.
  t0 = Clock::now();
  ASSERT_EQ(::kill(web_pid, SIGKILL), 0);
  pid_t again = 0;
  while (Clock::now() - t0 < 10s) {
    again = process_pid(web, "web");
    if (again > 1 && again != web_pid && ::kill(again, 0) == 0) break;
    std::this_thread::sleep_for(2ms);
  }
  auto restart_ms = (Clock::now() - t0) / 1ms;
  ASSERT_NE(again, web_pid);
  ASSERT_GT(again, 1);
  std::printf("  killed process → running again: %lld ms\n", static_cast<long long>(restart_ms));
  EXPECT_EQ(wait_running("web", 5s), web);
  json s = status();
  for (const auto& r : s["resources"]) {
    if (r["id"] != "web") continue;
    for (const auto& on : r["nodes"]) {
      if (on["node"] == web) {
        EXPECT_EQ(on["fail_count"], 1) << s.dump(2);
      }
    }
  }

  // The OCF monitor notices Dummy is gone (its state file removed) and it is recovered.
  fs::remove(dir_ + "/dummy.state");
  t0 = Clock::now();
  while (!fs::exists(dir_ + "/dummy.state") && Clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/dummy.state")) << status().dump(2);
  std::printf("  Dummy failure (monitor 200 ms) → started again: %lld ms\n",
              static_cast<long long>((Clock::now() - t0) / 1ms));

  // A re-apply of an unchanged definition touches nothing that runs.
  auto [re_rc, re_out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  EXPECT_EQ(re_rc, 0) << re_out;
  EXPECT_NE(re_out.find("(none: what runs is left alone)"), std::string::npos) << re_out;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(process_pid(web, "web"), again);
  EXPECT_EQ(::kill(again, 0), 0);

  // A move is an operation with a result. Every node is online by now: an alive node the
  // leader once marked offline (it had not heard from it yet) announces itself again.
  ASSERT_TRUE(wait_all_online(2s)) << status().dump(2);
  std::string target = web == "n1" ? "n2" : "n1";
  auto [mv_rc, mv_out] = vigil_cli("resource move web " + target + " --api " + api(3));
  EXPECT_EQ(mv_rc, 0) << mv_out;
  EXPECT_NE(mv_out.find("OK: web runs on " + target), std::string::npos) << mv_out;
  EXPECT_NE(::kill(again, 0), 0) << "the old copy still runs";
  auto [ex_rc, ex_out] = vigil_cli("explain web --api " + api(1));
  EXPECT_EQ(ex_rc, 0) << ex_out;
  EXPECT_NE(ex_out.find("location cli-move-web +INFINITY"), std::string::npos) << ex_out;
  auto [cl_rc, cl_out] = vigil_cli("resource clear web --api " + api(1));
  EXPECT_EQ(cl_rc, 0) << cl_out;
  web = target;

  // The node that runs the exclusive resource dies (agent and processes): another node
  // runs it once the dead node's hold has expired, and never two at once.
  solo = wait_running("solo", 5s);
  ASSERT_FALSE(solo.empty());
  int victim = node_number(solo);
  pid_t solo_pid = wait_pid(solo, "solo");
  ASSERT_GT(solo_pid, 1);
  int observer = victim == 1 ? 2 : 1;
  t0 = Clock::now();
  e_->c->kill(victim, SIGKILL);
  // An exclusive process dies with its agent (the kernel kills it: PR_SET_PDEATHSIG), so it
  // cannot run on while another node starts it. Dead or a zombie not yet reaped by PID 1.
  auto dead = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
  };
  while (!dead(solo_pid) && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(dead(solo_pid)) << "solo outlived its agent";
  std::printf("  agent of %s killed → its exclusive process gone: %lld ms\n", solo.c_str(),
              static_cast<long long>((Clock::now() - t0) / 1ms));
  ::kill(solo_pid, SIGKILL);
  std::string now_on;
  while (Clock::now() - t0 < 15s) {
    auto on = running_on("solo", observer);
    on.erase(solo);
    if (on.size() == 1) {
      now_on = *on.begin();
      break;
    }
    ASSERT_LE(on.size(), 1u);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(now_on.empty()) << status(observer).dump(2);
  std::printf("  node %s killed → solo running on %s: %lld ms\n", solo.c_str(), now_on.c_str(),
              static_cast<long long>((Clock::now() - t0) / 1ms));
  ASSERT_GT(wait_pid(now_on, "solo"), 1);

  // The node comes back: what it ran is found stopped, nothing runs twice.
  ASSERT_TRUE(e_->c->start(victim).ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(running_on("solo", observer).size(), 1u) << status(observer).dump(2);

  // Removed from the definition: stopped. A ban of it left behind neither blocks planning
  // nor outlives a clear.
  pid_t last_solo = wait_pid(now_on, "solo");
  ASSERT_GT(last_solo, 1) << status(observer).dump(2);
  auto [ban_rc, ban_out] = vigil_cli("resource ban solo " + solo + " --api " + api(observer));
  ASSERT_EQ(ban_rc, 0) << ban_out;
  write_file(dir_ + "/cluster.yaml", definition(false));
  auto [rm_rc, rm_out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(observer));
  EXPECT_EQ(rm_rc, 0) << rm_out;
  EXPECT_NE(rm_out.find("- resource solo"), std::string::npos) << rm_out;
  t0 = Clock::now();
  while (::kill(last_solo, 0) == 0 && Clock::now() - t0 < 10s) std::this_thread::sleep_for(10ms);
  EXPECT_NE(::kill(last_solo, 0), 0) << "solo still runs after its removal";
  json after = status(observer);
  EXPECT_TRUE(after["warnings"].empty()) << after.dump(2);
  auto [clr_rc, clr_out] = vigil_cli("resource clear solo --api " + api(observer));
  EXPECT_EQ(clr_rc, 0) << clr_out;
  EXPECT_FALSE(wait_running("web", 5s, "", observer).empty()) << status(observer).dump(2);
}

TEST_F(ClusterE2e, OperatorCommandsAndEvents) {
  write_file(dir_ + "/cluster.yaml", definition(false));
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  std::string web = wait_running("web", 10s);
  ASSERT_FALSE(web.empty()) << status().dump(2);
  ASSERT_FALSE(wait_running("dummy", 10s).empty()) << status().dump(2);
  ASSERT_TRUE(wait_all_online(5s)) << status().dump(2);
  pid_t pid = wait_pid(web, "web");
  ASSERT_GT(pid, 1);

  // Follow the events from now on, in the background, while the rest happens.
  std::string follow_out = dir_ + "/events-follow.out";
  std::string follow_cmd = "timeout 60 " + std::string(VIGIL_BINARY) +
                           " events --follow --json -n 1 --api " + api(2) + " > " + follow_out +
                           " 2>&1 &";
  ASSERT_EQ(std::system(follow_cmd.c_str()), 0);
  std::this_thread::sleep_for(300ms);

  // restart: a new process on the same node.
  auto [rs_rc, rs_out] = vigil_cli("resource restart web --api " + api(2));
  ASSERT_EQ(rs_rc, 0) << rs_out;
  pid_t restarted = 0;
  for (auto t0 = Clock::now(); Clock::now() - t0 < 10s; std::this_thread::sleep_for(10ms)) {
    restarted = process_pid(web, "web");
    if (restarted > 1 && restarted != pid && ::kill(restarted, 0) == 0) break;
  }
  ASSERT_NE(restarted, pid) << status().dump(2);
  EXPECT_NE(::kill(pid, 0), 0) << "the old process still runs";
  EXPECT_EQ(wait_running("web", 5s), web);
  pid = wait_pid(web, "web");

  // A definition change of meta or operations only touches nothing that runs; a change of
  // params restarts the resource with them.
  write_file(dir_ + "/cluster.yaml", definition(false, "100000", 300));
  auto [m_rc, m_out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(3));
  ASSERT_EQ(m_rc, 0) << m_out;
  EXPECT_NE(m_out.find("~ resource dummy"), std::string::npos) << m_out;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(process_pid(web, "web"), pid);
  write_file(dir_ + "/cluster.yaml", definition(false, "100001", 300));
  auto [p_rc, p_out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(3));
  ASSERT_EQ(p_rc, 0) << p_out;
  pid_t changed = 0;
  for (auto t0 = Clock::now(); Clock::now() - t0 < 10s; std::this_thread::sleep_for(10ms)) {
    changed = process_pid(web, "web");
    if (changed > 1 && changed != pid && ::kill(changed, 0) == 0) break;
  }
  ASSERT_NE(changed, pid) << status().dump(2);
  EXPECT_NE(read_file("/proc/" + std::to_string(changed) + "/cmdline").find("100001"),
            std::string::npos);
  pid = changed;

  // standby: web leaves the node, and stays away after unstandby (stickiness).
  auto [sb_rc, sb_out] = vigil_cli("node standby " + web + " --api " + api(1));
  ASSERT_EQ(sb_rc, 0) << sb_out;
  std::string moved;
  for (auto t0 = Clock::now(); Clock::now() - t0 < 10s; std::this_thread::sleep_for(20ms)) {
    auto on = running_on("web");
    if (on.size() == 1 && *on.begin() != web) {
      moved = *on.begin();
      break;
    }
  }
  ASSERT_FALSE(moved.empty()) << status().dump(2);
  EXPECT_NE(::kill(pid, 0), 0) << "web still runs on the standby node";
  json st = status();
  for (const auto& n : st["nodes"]) {
    if (n["name"] == web) {
      EXPECT_EQ(n["state"], "standby") << st.dump(2);
    }
  }
  auto [us_rc, us_out] = vigil_cli("node unstandby " + web + " --api " + api(1));
  ASSERT_EQ(us_rc, 0) << us_out;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(wait_running("web", 5s), moved);
  web = moved;
  pid = wait_pid(web, "web");
  ASSERT_GT(pid, 1);

  // maintenance: a process that dies there is not recovered until maintenance ends.
  auto [mt_rc, mt_out] = vigil_cli("node maintenance " + web + " --api " + api(1));
  ASSERT_EQ(mt_rc, 0) << mt_out;
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(700ms);
  pid_t now_pid = process_pid(web, "web");
  EXPECT_FALSE(now_pid > 1 && now_pid != pid && ::kill(now_pid, 0) == 0)
      << "recovered in maintenance";
  auto [um_rc, um_out] = vigil_cli("node unmaintenance " + web + " --api " + api(1));
  ASSERT_EQ(um_rc, 0) << um_out;
  EXPECT_FALSE(wait_running("web", 10s).empty()) << status().dump(2);
  ASSERT_GT(wait_pid(wait_running("web", 1s), "web"), 1);

  // disable stops it everywhere; enable brings it back.
  auto [d_rc, d_out] = vigil_cli("resource disable web --api " + api(3));
  ASSERT_EQ(d_rc, 0) << d_out;
  auto t0 = Clock::now();
  while (!running_on("web").empty() && Clock::now() - t0 < 10s) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(running_on("web").empty()) << status().dump(2);
  auto [e_rc, e_out] = vigil_cli("resource enable web --api " + api(3));
  ASSERT_EQ(e_rc, 0) << e_out;
  EXPECT_FALSE(wait_running("web", 10s).empty()) << status().dump(2);

  // Unknown names are errors with exit codes scripts can trust.
  auto [bad_rc, bad_out] = vigil_cli("node standby n9 --api " + api(1));
  EXPECT_EQ(bad_rc, 3) << bad_out;
  EXPECT_NE(bad_out.find("no node n9"), std::string::npos) << bad_out;
  auto [br_rc, br_out] = vigil_cli("resource restart nosuch --api " + api(1));
  EXPECT_EQ(br_rc, 3) << br_out;

  // The event log: what happened, with timings, from any node.
  auto [ev_rc, ev_out] = vigil_cli("events -n 200 --api " + api(3));
  EXPECT_EQ(ev_rc, 0) << ev_out;
  for (const char* want : {"started", "stopped", "restarting", "failed", "decision"}) {
    EXPECT_NE(ev_out.find(want), std::string::npos) << want << " missing:\n" << ev_out;
  }
  std::this_thread::sleep_for(300ms);
  (void)std::system(("pkill -f 'events --follow --json -n 1 --api " + api(2) + "'").c_str());
  std::string followed = read_file(follow_out);
  EXPECT_NE(followed.find("\"type\":\"restarting\""), std::string::npos) << followed;
  EXPECT_NE(followed.find("\"type\":\"started\""), std::string::npos) << followed;
}

// A node hangs (its agent stopped with SIGSTOP; what it supervises keeps running): a
// resource with `requires: fencing` is not recovered until the node is fenced. Level 1 is
// a broken device, level 2 powers the host off; then the resource runs elsewhere, and the
// old copy was dead before the new one started.
TEST_F(ClusterE2e, HungNodeIsFencedThroughLevelsThenRecovered) {
  std::string hosts = dir_ + "/hosts";
  fs::create_directories(hosts);
  std::string def =
      "nodes: [{name: n1}, {name: n2}, {name: n3}]\n"
      "resources:\n"
      "  - id: db\n"
      "    agent: process\n"
      "    params: {command: \"" +
      dir_ +
      "/svc-sleep 300000\"}\n"
      "    meta: {stickiness: 100, requires: fencing}\n"
      "fence_devices:\n"
      "  - id: broken\n"
      "    agent: fence_vigil_test\n"
      "    params: {hosts_dir: \"" +
      hosts +
      "\", fail: \"1\"}\n"
      "    nodes: [n1, n2, n3]\n"
      "    level: 1\n"
      "  - id: power\n"
      "    agent: fence_vigil_test\n"
      "    params: {hosts_dir: \"" +
      hosts +
      "\"}\n"
      "    nodes: [n1, n2, n3]\n"
      "    level: 2\n";
  write_file(dir_ + "/cluster.yaml", def);
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  std::string db = wait_running("db", 10s);
  ASSERT_FALSE(db.empty()) << status().dump(2);
  ASSERT_TRUE(wait_all_online(5s)) << status().dump(2);
  pid_t old_pid = wait_pid(db, "db");
  ASSERT_GT(old_pid, 1);
  int victim = node_number(db);
  // What the fence agent powers off: the victim's agent and supervised processes.
  fs::create_directories(hosts + "/" + db);
  write_file(hosts + "/" + db + "/agent.pid", std::to_string(e_->c->pid(victim)) + "\n");
  fs::create_directory_symlink(e_->c->data_dir(victim) + "/process", hosts + "/" + db + "/process");

  int observer = victim == 1 ? 2 : 1;
  auto t0 = Clock::now();
  ASSERT_EQ(::kill(e_->c->pid(victim), SIGSTOP), 0);
  std::string now_on;
  bool old_dead_first = false;
  while (Clock::now() - t0 < 20s) {
    auto on = running_on("db", observer);
    on.erase(db);
    if (on.size() == 1) {
      now_on = *on.begin();
      pid_t p = wait_pid(now_on, "db");
      old_dead_first = p > 1 && !process_alive(old_pid);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(now_on.empty()) << status(observer).dump(2) << "\nfence.log:\n"
                               << read_file(hosts + "/fence.log");
  std::printf("  node %s hung → fenced (level 2) → db running on %s: %lld ms\n", db.c_str(),
              now_on.c_str(), static_cast<long long>((Clock::now() - t0) / 1ms));
  EXPECT_TRUE(old_dead_first) << "the hung node's copy still ran when the new one started: "
                              << read_file("/proc/" + std::to_string(old_pid) + "/stat")
                              << "\nfence.log:\n"
                              << read_file(hosts + "/fence.log") << "\nevents:\n"
                              << vigil_cli("events -n 100 --api " + api(observer)).second;
  std::string log = read_file(hosts + "/fence.log");
  // Level 1 tried once and failed, level 2 once: fenced once.
  EXPECT_EQ(log, "off " + db + " (failing device)\noff " + db + "\n");
  json st = status(observer);
  for (const auto& n : st["nodes"]) {
    if (n["name"] == db) {
      EXPECT_EQ(n["state"], "fenced") << st.dump(2);
    }
  }
  auto [ev_rc, ev_out] = vigil_cli("events -n 100 --api " + api(observer));
  EXPECT_NE(ev_out.find("fenced"), std::string::npos) << ev_out;
  EXPECT_NE(ev_out.find("by power (after: level 1 broken"), std::string::npos) << ev_out;

  // The fenced node comes back: online again, db stays where it is (stickiness).
  e_->c->kill(victim, SIGKILL);  // reaps what the fence agent killed
  ASSERT_TRUE(e_->c->start(victim).ok());
  EXPECT_TRUE(wait_all_online(10s, observer)) << status(observer).dump(2);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(running_on("db", observer), std::set<std::string>{now_on}) << status(observer).dump(2);
}

// Debian's nginx resource agent, unmodified, with Debian's nginx: started where placed,
// serving; its master killed → the monitor notices and it is started again; disabled →
// stopped.
TEST_F(ClusterE2e, NginxAgentStartsMonitorsRecovers) {
  if (!fs::exists("/usr/lib/ocf/resource.d/heartbeat/nginx") || !fs::exists("/usr/sbin/nginx")) {
    GTEST_SKIP() << "nginx or its resource agent is missing (scripts/setup.sh installs them)";
  }
  const int port = 10000 + (::getpid() * 13) % 20000;  // below the ephemeral range
  const std::string www = dir_ + "/www";
  fs::create_directories(www);
  write_file(www + "/index.html", "hello from vigil\n");
  write_file(dir_ + "/nginx.conf",
             "worker_processes 1;\n"
             "pid " +
                 dir_ +
                 "/nginx.pid;\n"
                 "error_log " +
                 dir_ +
                 "/nginx-error.log;\n"
                 "events { worker_connections 64; }\n"
                 "http {\n"
                 "  access_log off;\n"
                 "  client_body_temp_path " +
                 dir_ +
                 "/nginx-body;\n"
                 "  proxy_temp_path " +
                 dir_ +
                 "/nginx-proxy;\n"
                 "  fastcgi_temp_path " +
                 dir_ +
                 "/nginx-fastcgi;\n"
                 "  uwsgi_temp_path " +
                 dir_ +
                 "/nginx-uwsgi;\n"
                 "  scgi_temp_path " +
                 dir_ +
                 "/nginx-scgi;\n"
                 "  server { listen 127.0.0.1:" +
                 std::to_string(port) + "; root " + www +
                 "; }\n"
                 "}\n");
  write_file(dir_ + "/cluster.yaml",
             "resources:\n"
             "  - id: web\n"
             "    agent: ocf:heartbeat:nginx\n"
             "    params: {httpd: /usr/sbin/nginx, configfile: \"" +
                 dir_ +
                 "/nginx.conf\"}\n"
                 "    operations:\n"
                 "      - {name: monitor, interval_ms: 300, timeout_ms: 10000}\n");
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  auto serving = [&] {
    return shell("curl -sf --max-time 1 " + url).second == "hello from vigil\n";
  };
  std::string on = wait_running("web", 20s);
  ASSERT_FALSE(on.empty()) << status().dump(2) << read_file(dir_ + "/nginx-error.log");
  bool up = false;
  for (auto t0 = Clock::now(); !up && Clock::now() - t0 < 10s; std::this_thread::sleep_for(50ms)) {
    up = serving();
  }
  ASSERT_TRUE(up) << status().dump(2);

  // The master dies: the monitor notices, and nginx is started again.
  pid_t master = static_cast<pid_t>(std::atol(read_file(dir_ + "/nginx.pid").c_str()));
  ASSERT_GT(master, 1);
  auto t0 = Clock::now();
  // Stopped first, so that it cannot fork new workers when its workers die.
  ASSERT_EQ(::kill(master, SIGSTOP), 0);
  (void)std::system(("pkill -9 -P " + std::to_string(master) + " >/dev/null 2>&1").c_str());
  ASSERT_EQ(::kill(master, SIGKILL), 0);
  pid_t again = 0;
  while (Clock::now() - t0 < 20s) {
    again = static_cast<pid_t>(std::atol(read_file(dir_ + "/nginx.pid").c_str()));
    if (again > 1 && again != master && ::kill(again, 0) == 0 && serving()) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(again, master) << status().dump(2);
  EXPECT_TRUE(serving());
  std::printf("  nginx master killed → serving again: %lld ms\n",
              static_cast<long long>((Clock::now() - t0) / 1ms));

  // Disabled: stopped by the agent's stop action.
  auto [d_rc, d_out] = vigil_cli("resource disable web --api " + api(2));
  ASSERT_EQ(d_rc, 0) << d_out;
  t0 = Clock::now();
  while (::kill(again, 0) == 0 && Clock::now() - t0 < 20s) std::this_thread::sleep_for(20ms);
  EXPECT_NE(::kill(again, 0), 0) << status().dump(2);
  EXPECT_FALSE(serving());
}

// A clone with two copies per node (clone_node_max: 2) of Debian's ocf:heartbeat:Dummy: each
// copy is its own agent instance (worker, worker:1: OCF_RESOURCE_INSTANCE, so each has its
// own state file), the status counts them, and a smaller clone_max stops copies on a node
// without stopping the one it keeps.
TEST_F(ClusterE2e, CloneRunsTwoCopiesPerNode) {
  auto apply = [&](int clone_max) {
    write_file(dir_ + "/cluster.yaml",
               "resources:\n"
               "  - id: worker\n"
               "    agent: ocf:heartbeat:Dummy\n"
               "    operations:\n"
               "      - {name: monitor, interval_ms: 200, timeout_ms: 5000}\n"
               "clones:\n"
               "  - {id: workers, resource: worker, clone_max: " +
                   std::to_string(clone_max) + ", clone_node_max: 2}\n");
    auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
    ASSERT_EQ(rc, 0) << out;
  };
  // node → the Dummy state files there (one per running copy).
  auto state_files = [&] {
    std::map<std::string, std::set<std::string>> out;
    for (const char* n : {"n1", "n2", "n3"}) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir_ + "/rsctmp/" + n, ec)) {
        std::string f = e.path().filename().string();
        if (f.starts_with("Dummy-worker")) out[n].insert(f);
      }
    }
    return out;
  };
  // node → copies by the status (none pending), or {} while something is under way.
  auto copies = [&] {
    std::map<std::string, int> out;
    json s = status();
    if (!s.is_object()) return std::map<std::string, int>{};
    for (const auto& r : s["resources"]) {
      if (r["id"] != "worker") continue;
      for (const auto& on : r["nodes"]) {
        if (on.contains("pending")) return std::map<std::string, int>{};
        if (on.value("running", false)) out[on["node"]] = on.value("copies", 1);
      }
    }
    return out;
  };
  auto wait_copies = [&](int total, int per_node_max) {
    auto until = Clock::now() + 20s;
    while (Clock::now() < until) {
      auto c = copies();
      int sum = 0, most = 0;
      for (const auto& [n, k] : c) {
        sum += k;
        most = std::max(most, k);
      }
      int files = 0;
      for (const auto& [n, f] : state_files()) files += static_cast<int>(f.size());
      if (sum == total && most <= per_node_max && files == total) return c;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "not " << total << " copies: " << status().dump(2);
    return std::map<std::string, int>{};
  };
  apply(4);
  auto c = wait_copies(4, 2);
  ASSERT_EQ(c.size(), 3u);
  std::string two;  // the node with two copies
  for (const auto& [n, k] : c) {
    if (k == 2) two = n;
  }
  ASSERT_FALSE(two.empty());
  EXPECT_EQ(state_files()[two],
            (std::set<std::string>{"Dummy-worker.state", "Dummy-worker:1.state"}));
  auto [rc, human] = vigil_cli("status --api " + api(1));
  EXPECT_NE(human.find(two + " x2"), std::string::npos) << human;
  // Six: two on every node.
  apply(6);
  c = wait_copies(6, 2);
  for (const char* n : {"n1", "n2", "n3"}) EXPECT_EQ(c[n], 2) << n;
  // Copy 1 on n2 fails (its state file removed: the monitor says not running): it alone is
  // started again, copy 0 runs on.
  const std::string n2 = dir_ + "/rsctmp/n2/";
  const auto copy0 = std::filesystem::last_write_time(n2 + "Dummy-worker.state");
  auto t0 = Clock::now();
  fs::remove(n2 + "Dummy-worker:1.state");
  while (!fs::exists(n2 + "Dummy-worker:1.state") && Clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(fs::exists(n2 + "Dummy-worker:1.state")) << status().dump(2);
  std::printf("  clone copy 1 on n2 failed → started again: %lld ms\n",
              static_cast<long long>((Clock::now() - t0) / 1ms));
  EXPECT_EQ(std::filesystem::last_write_time(n2 + "Dummy-worker.state"), copy0)
      << "copy 0 on n2 was restarted";
  c = wait_copies(6, 2);
  EXPECT_EQ(c["n2"], 2);
  // Three: one copy each; copy 0 runs on where the second stopped.
  const auto before = std::filesystem::last_write_time(dir_ + "/rsctmp/n1/Dummy-worker.state");
  apply(3);
  c = wait_copies(3, 1);
  for (const auto& [n, files] : state_files()) {
    EXPECT_EQ(files, std::set<std::string>{"Dummy-worker.state"}) << n;
  }
  EXPECT_EQ(std::filesystem::last_write_time(dir_ + "/rsctmp/n1/Dummy-worker.state"), before)
      << "copy 0 on n1 was restarted";
  // Back to six, then the clone disabled: stop orders stop every copy on every node.
  apply(6);
  wait_copies(6, 2);
  auto [drc, dout] = vigil_cli("resource disable workers --api " + api(1));
  ASSERT_EQ(drc, 0) << dout;
  auto until = Clock::now() + 15s;
  size_t left = 1;
  while (Clock::now() < until) {
    left = 0;
    for (const auto& [n, files] : state_files()) left += files.size();
    if (left == 0 && copies().empty() && status()["pending"].empty()) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(left, 0u) << status().dump(2);
  EXPECT_TRUE(copies().empty()) << status().dump(2);
}

// An LSB init script, installed in /etc/init.d for the test (the executor runs scripts from
// there, as Pacemaker does): started, its status polled as the monitor, the daemon killed
// and started again, stopped on disable.
// A promotable clone of Debian's ocf:heartbeat:Stateful, unmodified: the agent sets its
// promotion score with ocf_promotion_score (crm_attribute -p, Vigil's shim), one copy is
// promoted, and when that node dies another copy is promoted once its hold has expired.
TEST_F(ClusterE2e, StatefulPromotableClonePromotesOneAndFailsOver) {
  if (!fs::exists("/usr/lib/ocf/resource.d/heartbeat/Stateful")) {
    GTEST_SKIP() << "ocf:heartbeat:Stateful is not installed (resource-agents)";
  }
  write_file(dir_ + "/cluster.yaml",
             "resources:\n"
             "  - id: db\n"
             "    agent: ocf:heartbeat:Stateful\n"
             "    meta: {exclusive: true}  # under a hold: recovered once it expired\n"
             "    operations:\n"
             "      - {name: monitor, interval_ms: 200, timeout_ms: 5000}\n"
             "clones:\n"
             "  - {id: db-clone, resource: db, promotable: true, promoted_max: 1}\n");
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  // (running nodes, promoted nodes) by the status of node `from`.
  auto roles = [&](int from) {
    std::set<std::string> running, promoted;
    json s = status(from);
    if (!s.is_object()) return std::pair{running, promoted};
    for (const auto& r : s["resources"]) {
      if (r["id"] != "db") continue;
      for (const auto& on : r["nodes"]) {
        if (!on.value("running", false) || on.contains("pending")) continue;
        running.insert(on["node"].get<std::string>());
        if (on.value("role", "") == "promoted") promoted.insert(on["node"].get<std::string>());
      }
    }
    return std::pair{running, promoted};
  };
  std::string primary;
  auto until = Clock::now() + 20s;
  while (Clock::now() < until) {
    auto [running, promoted] = roles(1);
    ASSERT_LE(promoted.size(), 1u);
    if (running.size() == 3 && promoted.size() == 1) {
      primary = *promoted.begin();
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(primary.empty()) << status().dump(2);
  // The agent's own state file says master on that node only.
  auto state_of = [&](const std::string& node) {
    std::string t = read_file(dir_ + "/rsctmp/" + node + "/Stateful-db.state");
    t.erase(t.find_last_not_of(" \n") + 1);
    return t;
  };
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_EQ(state_of(n), n == primary ? "master" : "slave") << n;
  }
  // The primary's node dies: another copy is promoted, never two at once.
  int victim = node_number(primary);
  int observer = victim == 1 ? 2 : 1;
  auto t0 = Clock::now();
  e_->c->kill(victim, SIGKILL);
  std::string next;
  while (Clock::now() - t0 < 15s) {
    auto [running, promoted] = roles(observer);
    promoted.erase(primary);
    ASSERT_LE(promoted.size(), 1u);
    if (promoted.size() == 1) {
      next = *promoted.begin();
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(next.empty()) << status(observer).dump(2);
  std::printf("  Stateful: %s promoted first; node killed → %s promoted: %lld ms\n",
              primary.c_str(), next.c_str(), static_cast<long long>((Clock::now() - t0) / 1ms));
  EXPECT_EQ(state_of(next), "master");
}

// An exclusive OCF resource outlives no agent: when the agent that runs it is SIGKILLed, its
// stop guard (net/vip_guard.h) runs the agent's own stop (Dummy's state file goes), well
// before the leader starts it on another node, and it never runs on two nodes at once.
TEST_F(ClusterE2e, ExclusiveOcfResourceIsStoppedByTheGuardWhenItsAgentDies) {
  write_file(dir_ + "/cluster.yaml",
             "resources:\n"
             "  - id: single\n"
             "    agent: ocf:heartbeat:Dummy\n"
             "    meta: {exclusive: true}\n"
             "    operations:\n"
             "      - {name: monitor, interval_ms: 200, timeout_ms: 5000}\n");
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  const std::string on = wait_running("single", 20s);
  ASSERT_FALSE(on.empty()) << status().dump(2);
  auto state = [&](const std::string& node) {
    return dir_ + "/rsctmp/" + node + "/Dummy-single.state";
  };
  ASSERT_TRUE(fs::exists(state(on)));
  // The stop recipe the agent of `node` wrote for the guard (one file per start), or "".
  auto recipe_of = [&](const std::string& node) {
    std::error_code ec;
    for (const auto& e :
         fs::directory_iterator(e_->c->data_dir(node_number(node)) + "/guard", ec)) {
      const std::string f = e.path().filename().string();
      if (f.starts_with("single.") && f.ends_with(".stop")) return e.path().string();
    }
    return std::string();
  };
  const int victim = node_number(on);
  const std::string recipe = recipe_of(on);
  ASSERT_FALSE(recipe.empty()) << "no stop recipe for the guard";
  EXPECT_EQ(fs::status(recipe).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  auto t0 = Clock::now();
  e_->c->kill(victim, SIGKILL);
  while (fs::exists(state(on)) && Clock::now() - t0 < 5s) std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(fs::exists(state(on))) << "the guard did not stop it";
  const auto stopped_ms = (Clock::now() - t0) / 1ms;
  while (fs::exists(recipe) && Clock::now() - t0 < 5s) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(fs::exists(recipe)) << "a stop that worked uses its recipe up";
  std::printf("  agent of %s killed -> its exclusive Dummy stopped by the guard: %lld ms\n",
              on.c_str(), static_cast<long long>(stopped_ms));
  // Recovered elsewhere, after the hold: one copy at a time.
  const int observer = victim == 1 ? 2 : 1;
  std::string now_on;
  while (Clock::now() - t0 < 15s) {
    for (const char* n : {"n1", "n2", "n3"}) {
      if (n != on && fs::exists(state(n))) now_on = n;
    }
    if (!now_on.empty()) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_FALSE(now_on.empty()) << status(observer).dump(2);
  const auto moved_ms = (Clock::now() - t0) / 1ms;
  std::printf("  ... running on %s: %lld ms\n", now_on.c_str(), static_cast<long long>(moved_ms));
  EXPECT_LT(stopped_ms, moved_ms);
  EXPECT_FALSE(fs::exists(state(on)));

  // Its new node's agent hangs (SIGSTOP): the guard stops it when that node's hold ends,
  // before the leader may start it on another node (the killed node back first: quorum).
  ASSERT_TRUE(e_->c->start(victim).ok());
  ASSERT_TRUE(wait_all_online(15s, observer)) << status(observer).dump(2);
  std::this_thread::sleep_for(1s);  // settled (it may have moved back)
  std::string hung;
  for (const char* n : {"n1", "n2", "n3"}) {
    if (fs::exists(state(n))) {
      ASSERT_TRUE(hung.empty()) << "running on " << hung << " and " << n;
      hung = n;
    }
  }
  ASSERT_FALSE(hung.empty()) << status(observer).dump(2);
  ASSERT_FALSE(recipe_of(hung).empty());
  const pid_t hung_pid = e_->c->pid(node_number(hung));
  ASSERT_GT(hung_pid, 1);
  t0 = Clock::now();
  ASSERT_EQ(::kill(hung_pid, SIGSTOP), 0);
  std::optional<long long> hung_stopped_ms;
  now_on.clear();
  while (Clock::now() - t0 < 20s && now_on.empty()) {
    if (!hung_stopped_ms && !fs::exists(state(hung))) hung_stopped_ms = (Clock::now() - t0) / 1ms;
    for (const char* n : {"n1", "n2", "n3"}) {
      if (n != hung && fs::exists(state(n))) now_on = n;
    }
    std::this_thread::sleep_for(1ms);
  }
  ::kill(hung_pid, SIGCONT);
  ASSERT_FALSE(now_on.empty()) << "not recovered from the hung node";
  ASSERT_TRUE(hung_stopped_ms.has_value())
      << "it ran on " << hung << " while starting on " << now_on;
  std::printf("  agent of %s hung -> Dummy stopped by the guard at %lld ms, on %s at %lld ms\n",
              hung.c_str(), *hung_stopped_ms, now_on.c_str(),
              static_cast<long long>((Clock::now() - t0) / 1ms));
  // The hung agent wakes up; whatever the placement then, one copy runs.
  std::this_thread::sleep_for(1500ms);
  int copies = 0;
  for (const char* n : {"n1", "n2", "n3"}) {
    if (fs::exists(state(n))) {
      ++copies;
      now_on = n;
    }
  }
  EXPECT_EQ(copies, 1) << status(observer).dump(2);

  // A clean stop of the resource takes its recipe away (the guard has nothing to run).
  const std::string recipe2 = recipe_of(now_on);
  ASSERT_FALSE(recipe2.empty());
  write_file(dir_ + "/cluster.yaml", "resources: []\n");
  auto [rc2, out2] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(observer));
  ASSERT_EQ(rc2, 0) << out2;
  t0 = Clock::now();
  while ((fs::exists(recipe2) || fs::exists(state(now_on))) && Clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(fs::exists(state(now_on)));
  EXPECT_FALSE(fs::exists(recipe2));
}

TEST_F(ClusterE2e, LsbInitScriptStartsMonitorsRecovers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (installs a script in /etc/init.d)";
  const std::string name = "vigil-e2e-" + std::to_string(::getpid());
  const std::string pidfile = dir_ + "/lsb.pid";
  lsb_script_ = "/etc/init.d/" + name;
  write_file(lsb_script_,
             "#!/bin/sh\n"
             "### BEGIN INIT INFO\n"
             "# Provides:          " +
                 name +
                 "\n"
                 "# Required-Start:\n"
                 "# Required-Stop:\n"
                 "# Default-Start:\n"
                 "# Default-Stop:\n"
                 "# Short-Description: a daemon of Vigil's end-to-end tests\n"
                 "### END INIT INFO\n"
                 "PID=" +
                 pidfile +
                 "\n"
                 "alive() { [ -f $PID ] && kill -0 \"$(cat $PID)\" 2>/dev/null; }\n"
                 "case \"$1\" in\n"
                 "  start) alive && exit 0\n"
                 "    setsid " +
                 dir_ +
                 "/svc-sleep 100000 </dev/null >/dev/null 2>&1 &\n"
                 "    echo $! > $PID; exit 0 ;;\n"
                 "  stop) alive && kill \"$(cat $PID)\"; rm -f $PID; exit 0 ;;\n"
                 "  status) alive && exit 0; [ -f $PID ] && exit 1; exit 3 ;;\n"
                 "  restart|force-reload) \"$0\" stop; exec \"$0\" start ;;\n"
                 "  *) echo \"usage: $0 start|stop|status\" >&2; exit 2 ;;\n"
                 "esac\n");
  fs::permissions(lsb_script_, fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  write_file(dir_ + "/cluster.yaml",
             "resources:\n"
             "  - id: legacy\n"
             "    agent: lsb:" +
                 name +
                 "\n"
                 "    operations:\n"
                 "      - {name: monitor, interval_ms: 200, timeout_ms: 5000}\n");
  auto [rc, out] = vigil_cli("apply -f " + dir_ + "/cluster.yaml --api " + api(1));
  ASSERT_EQ(rc, 0) << out;
  auto daemon_pid = [&] { return static_cast<pid_t>(std::atol(read_file(pidfile).c_str())); };
  ASSERT_FALSE(wait_running("legacy", 20s).empty()) << status().dump(2);
  pid_t first = daemon_pid();
  ASSERT_GT(first, 1);
  ASSERT_EQ(::kill(first, 0), 0);

  // The daemon dies: `status` says 1 (dead, pid file left), and it is started again.
  auto t0 = Clock::now();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  pid_t again = first;
  while (Clock::now() - t0 < 20s) {
    again = daemon_pid();
    if (again > 1 && again != first && ::kill(again, 0) == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(again, first) << status().dump(2);
  std::printf("  LSB daemon killed (monitor 200 ms) → started again: %lld ms\n",
              static_cast<long long>((Clock::now() - t0) / 1ms));
  EXPECT_FALSE(wait_running("legacy", 10s).empty()) << status().dump(2);

  // Disabled: the script's stop runs.
  auto [d_rc, d_out] = vigil_cli("resource disable legacy --api " + api(2));
  ASSERT_EQ(d_rc, 0) << d_out;
  t0 = Clock::now();
  while (::kill(again, 0) == 0 && Clock::now() - t0 < 20s) std::this_thread::sleep_for(20ms);
  EXPECT_NE(::kill(again, 0), 0) << status().dump(2);
  EXPECT_FALSE(fs::exists(pidfile));
}

}  // namespace
}  // namespace vigil::cli
