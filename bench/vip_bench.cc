// vigil-vip-bench: a virtual IP in front of real nginx servers, as a client sees it, for
// Vigil and for Debian's keepalived in the same network-namespace lab (src/cli/netns_lab.h):
// hosts on a bridge, a client opening a fresh TCP connection to the VIP every 5 ms (Prober),
// the VIP's holders sampled every 20 ms (HolderSampler). docs/BENCHMARKS.md "Virtual IP
// failover (issue #5)".
//
//   vigil-vip-bench [--runs N] [--fast-runs N] [--ka-runs N] [--only LIST] [--scenarios LIST]
//                   [--dir DIR] [--keep]
//
// LIST for --only: any of vigil, vigil-fast, ka2-1, ka2-0.1, ka3-1, ka3-0.1 (comma
// separated; default all). --scenarios: any of 1,2,3,4,5,6 (default all).
//
// Vigil: three hosts, one agent each, the group web = [www: nginx as a supervised process,
// vip: 198.18.0.100/24 on eth0], both exclusive (the definition of e2e_vip_failover_test),
// plus a location preference (score 50, below the stickiness of 100) that puts the group
// on the host the scenario needs: a follower for 1 and 2, the leader for 4, alternately a
// follower and the leader for 3. Two timer profiles: the defaults, and "fast" (docs/CONFIG.md
// "Fast profile"), which also gives the vip a 30 ms ARP probe instead of 50 ms.
// keepalived: the same hosts run nginx (spawned by the bench) and keepalived, VRRP on eth0,
// host 1 MASTER with priority 200, the others BACKUP with 150 and 100; advert_int 1 s
// (VRRPv2, keepalived's default) or 0.1 s (VRRPv3); a vrrp_script that checks nginx with
// curl every second (keepalived's smallest interval), fall 1, rise 1.
//
// Scenarios: 1 the holder's machine dies (NetnsLab::kill_host); 2 nginx on the holder is
// SIGKILLed; 3 the holder is isolated for 10 s with its link up (nftables), then healed;
// 4 the holder is the leader and its machine dies (Vigil only: keepalived has no leader);
// 5 the leader's machine dies while a follower holds the VIP (Vigil only); 6 the holder's
// daemon alone is SIGKILLed, its machine up (Vigil: the agent; keepalived: its processes).
// Every run gets a fresh lab (namespaces, agents or keepalived, nginx): no state carries
// over (fail counts, ARP caches, VRRP states). The outage is Prober::stats().outage_ms: from
// the last good answer before the longest run of failed probes to the first good one after.
//
// Needs root, `ip`, `nft`, /usr/sbin/nginx (and /usr/sbin/keepalived for its lines); without
// root or the lab it prints why and exits 0 ("skipped"). Only 198.18.0.0/24 is used, inside
// the lab's namespaces. Every process the bench starts lives in a host's PID namespace and
// dies with the bench (PR_SET_PDEATHSIG); namespaces a killed run left behind are removed by
// the next run (NetnsLab::remove_leftovers).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/netns_lab.h"
#include "cli/vip_demo.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using vigil::Status;
using vigil::cli::HolderSampler;
using vigil::cli::lab_nginx_conf;
using vigil::cli::lab_web_definition;
using vigil::cli::NetnsLab;
using vigil::cli::NetnsLabOptions;
using vigil::cli::Prober;
using vigil::cli::ProbeStats;
using vigil::cli::write_text;

constexpr const char* kVip = vigil::cli::kLabVip;
constexpr const char* kNginx = "/usr/sbin/nginx";
constexpr const char* kKeepalived = "/usr/sbin/keepalived";
constexpr const char* kCurl = "/usr/bin/curl";
constexpr auto kPartition = 10s;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// --- Configurations -----------------------------------------------------------------------

struct Config {
  std::string key;   // for --only
  std::string name;  // column header
  bool vigil = true;
  // Vigil: timers (0: the agent's defaults), the guard, the vip's ARP probe (-1: default).
  uint32_t tick_ms = 0, heartbeat_ms = 0, election_timeout_ms = 0, hold_ms = 0;
  int hold_guard_ms = -1;
  int probe_ms = -1;
  // keepalived
  int hosts = 3;
  double advert_s = 1;
  int runs = 10;
};

std::vector<Config> all_configs() {
  std::vector<Config> v;
  Config d;
  d.key = "vigil";
  d.name = "Vigil defaults";
  v.push_back(d);
  Config f;
  f.key = "vigil-fast";
  f.name = "Vigil fast";
  f.tick_ms = 10;
  f.heartbeat_ms = 10;
  f.election_timeout_ms = 100;
  f.hold_ms = 150;
  f.hold_guard_ms = 40;
  f.probe_ms = 30;
  v.push_back(f);
  for (int hosts : {2, 3}) {
    for (double adv : {1.0, 0.1}) {
      Config k;
      k.vigil = false;
      k.hosts = hosts;
      k.advert_s = adv;
      k.key = "ka" + std::to_string(hosts) + (adv == 1.0 ? "-1" : "-0.1");
      k.name = "keepalived " + std::to_string(hosts) + "n " + (adv == 1.0 ? "1 s" : "0.1 s");
      v.push_back(k);
    }
  }
  return v;
}

// The demo's and e2e_vip_failover_test's group web (cli/vip_demo.h), plus a location
// preference for `prefer` (score 50, below the stickiness).
std::string vigil_definition(const Config& c, int prefer) {
  std::string probe = c.probe_ms >= 0 ? ", probe_ms: " + std::to_string(c.probe_ms) : "";
  return lab_web_definition(
      "constraints:\n"
      "  location:\n"
      "    - {id: web-bench, resource: web, node: n" +
          std::to_string(prefer) + ", score: 50}\n",
      probe);
}

int ka_priority(int host) { return 250 - 50 * host; }  // 200, 150, 100

// keepalived's own syntax (keepalived.conf(5)); written for this bench.
std::string keepalived_conf(const Config& c, int host) {
  std::ostringstream o;
  char adv[16];
  std::snprintf(adv, sizeof adv, "%g", c.advert_s);
  o << "global_defs {\n"
    << "  router_id lab-n" << host << "\n"
    << "  script_user root\n"
    << (c.advert_s < 1 ? "  vrrp_version 3\n" : "  vrrp_version 2\n") << "}\n"
    << "vrrp_script chk_nginx {\n"
    << "  script \"" << kCurl << " -fs -o /dev/null -m 1 http://127.0.0.1/\"\n"
    << "  interval 1\n"
    << "  timeout 1\n"
    << "  fall 1\n"
    << "  rise 1\n"
    << "}\n"
    << "vrrp_instance web {\n"
    << "  state " << (host == 1 ? "MASTER" : "BACKUP") << "\n"
    << "  interface eth0\n"
    << "  virtual_router_id 51\n"
    << "  priority " << ka_priority(host) << "\n"
    << "  advert_int " << adv << "\n"
    << "  virtual_ipaddress {\n"
    << "    " << kVip << "/24 dev eth0\n"
    << "  }\n"
    << "  track_script {\n"
    << "    chk_nginx\n"
    << "  }\n"
    << "}\n";
  return o.str();
}

// --- One run ------------------------------------------------------------------------------

struct Run {
  bool ok = false;
  std::string why;       // when not ok
  double outage_ms = 0;  // scenarios 1, 2, 4; 3: the client's outage during the partition
  bool recovered = true;
  std::string after_host;  // who answered after the outage
  // Scenario 3.
  double double_ms = 0;  // the longest time two or more hosts held the VIP at once
  size_t max_holders = 0;
  double dropped_ms = -1;  // isolation → the isolated host no longer holds it (-1: never)
  bool isolated_leader = false;
  std::string holders_timeline;
  size_t baseline_failed = 0;  // failed probes in the second before the fault
  double setup_ms = 0;
};

class Bench {
 public:
  Bench(std::string dir, bool keep) : dir_(std::move(dir)), keep_(keep) {}

  Run run(const Config& c, int scenario, int index) {
    Run r;
    auto t_setup = Clock::now();
    NetnsLabOptions o;
    o.hosts = c.vigil ? 3 : c.hosts;
    o.dir = dir_ + "/" + c.key + "-s" + std::to_string(scenario) + "-" + std::to_string(index);
    o.vigil_binary = VIGIL_BINARY;
    o.tick_ms = c.tick_ms;
    o.heartbeat_ms = c.heartbeat_ms;
    o.election_timeout_ms = c.election_timeout_ms;
    o.hold_ms = c.hold_ms;
    o.hold_guard_ms = c.hold_guard_ms;
    lab_ = std::make_unique<NetnsLab>(o);
    auto fail = [&](const std::string& why) {
      r.ok = false;
      r.why = why;
      lab_->set_keep_dir(true);
      std::fprintf(stderr, "vigil-vip-bench: %s scenario %d run %d: %s (files kept in %s)\n",
                   c.name.c_str(), scenario, index + 1, why.c_str(), lab_->dir().c_str());
      if (c.vigil) {
        for (int h = 1; h <= lab_->hosts(); ++h) {
          std::fprintf(stderr, "--- n%d.log (tail)\n%s", h, lab_->log_tail(h, 12).c_str());
        }
      }
      finish();
      return r;
    };
    Status s = lab_->setup();
    if (!s.ok()) return fail("lab setup: " + s.to_string());
    for (int h = 1; h <= lab_->hosts(); ++h) {
      write_text(lab_->run_dir(h) + "/nginx.conf", lab_nginx_conf(lab_->host_name(h)));
    }
    int target = 0;  // the host that holds the VIP when the fault comes
    int leader = 0;
    if (c.vigil) {
      if (!(s = lab_->write_agent_configs()).ok()) return fail("configs: " + s.to_string());
      for (int h = 1; h <= 3; ++h) {
        if (!(s = lab_->start_agent(h)).ok()) return fail("agent: " + s.to_string());
      }
      leader = lab_->wait_for_leader(15s);
      if (leader == 0) return fail("no leader within 15 s");
      const int follower = leader % 3 + 1;
      target = scenario == 4 ? leader : scenario == 3 && index % 2 == 1 ? leader : follower;
      write_text(lab_->dir() + "/cluster.yaml", vigil_definition(c, target));
      auto [rc, out] = lab_->vigil(leader, "apply -f " + lab_->dir() + "/cluster.yaml");
      if (rc != 0) return fail("apply: " + out);
    } else {
      for (int h = 1; h <= c.hosts; ++h) {
        const std::string kd = lab_->dir() + "/n" + std::to_string(h) + "-keepalived";
        fs::create_directories(kd);
        write_text(kd + "/keepalived.conf", keepalived_conf(c, h));
        auto np = lab_->spawn(h, {kNginx, "-c", "/run/nginx.conf", "-e", "/run/nginx-error.log"},
                              lab_->run_dir(h) + "/nginx.out");
        if (!np) return fail("nginx: " + np.error().to_string());
      }
      // nginx first, so that the track scripts start out good.
      std::this_thread::sleep_for(100ms);
      for (int h = 1; h <= c.hosts; ++h) {
        const std::string kd = lab_->dir() + "/n" + std::to_string(h) + "-keepalived";
        auto kp = lab_->spawn(
            h,
            {kKeepalived, "-n", "-l", "-D", "-G", "-P", "-f", kd + "/keepalived.conf", "-p",
             kd + "/keepalived.pid", "-r", kd + "/vrrp.pid", "-c", kd + "/checkers.pid"},
            kd + "/keepalived.log");
        if (!kp) return fail("keepalived: " + kp.error().to_string());
      }
      target = 1;  // the MASTER with the highest priority
    }
    prober_ = std::make_unique<Prober>(*lab_, kVip);
    prober_->start();
    const std::string target_name = "n" + std::to_string(target);
    if (!prober_->wait_good(20, 30s, target_name)) {
      return fail("the VIP never answered from " + target_name + ": " +
                  prober_->stats().to_string() + " holders " + holders_string());
    }
    if (lab_->vip_holders(kVip) != std::vector<int>{target}) {
      return fail("holders " + holders_string() + ", expected " + target_name);
    }
    r.setup_ms = ms_since(t_setup);
    // A quiet second first: a failed probe here is a spurious failover (the fast profile's
    // risk), counted and shown.
    int64_t base = prober_->now_us();
    std::this_thread::sleep_for(1s);
    r.baseline_failed = prober_->stats(base).outage_failed;
    if (c.vigil && scenario == 3) r.isolated_leader = lab_->wait_for_leader(2s) == target;
    if (lab_->vip_holders(kVip) != std::vector<int>{target}) {
      return fail("before the fault the holders were " + holders_string() + ", not " + target_name);
    }

    int64_t t = prober_->now_us();
    if (scenario == 1 || scenario == 4) {
      lab_->kill_host(target);
      ProbeStats st = wait_failover(t, target_name, 20s);
      r.outage_ms = st.outage_ms;
      r.recovered = st.recovered;
      r.after_host = st.after_host;
      if (!st.recovered || st.after_host == target_name) {
        return fail("no failover: " + st.to_string());
      }
    } else if (scenario == 5) {
      // The leader dies; a follower holds the VIP and keeps it: what the client sees is the
      // gap between the end of the holder's hold and the next leader's first grant.
      lab_->kill_host(leader);
      if (lab_->wait_for_leader(15s) == 0) return fail("no new leader within 15 s");
      if (!prober_->wait_good(20, 10s, target_name))
        return fail("the holder did not serve again: " + prober_->stats(t).to_string());
      ProbeStats st = prober_->stats(t);
      r.outage_ms = st.outage_failed ? st.outage_ms : 0;
      r.recovered = st.recovered || st.outage_failed == 0;
      r.after_host = target_name;
    } else if (scenario == 2) {
      auto pids = lab_->host_pids(target, "nginx");
      if (pids.size() != 1)
        return fail("nginx processes on the holder: " + std::to_string(pids.size()));
      ::kill(pids[0], SIGKILL);
      // keepalived moves the VIP; Vigil restarts nginx in place.
      ProbeStats st;
      if (c.vigil) {
        auto until = Clock::now() + 10s;
        while (Clock::now() < until && prober_->stats(t).outage_failed == 0) {
          std::this_thread::sleep_for(2ms);
        }
        if (!prober_->wait_good(20, 15s))
          return fail("no recovery: " + prober_->stats(t).to_string());
        st = prober_->stats(t);
      } else {
        st = wait_failover(t, target_name, 20s);
        if (st.after_host == target_name) return fail("no failover: " + st.to_string());
      }
      r.outage_ms = st.outage_ms;
      r.recovered = st.recovered;
      r.after_host = st.after_host;
      if (!st.recovered) return fail("no recovery: " + st.to_string());
    } else if (scenario == 3) {
      const int64_t t_iso_sampler = start_sampler();
      t = prober_->now_us();
      auto t_iso = Clock::now();
      if (!(s = lab_->isolate(target)).ok()) return fail("isolate: " + s.to_string());
      r.dropped_ms = watch_drop(target, t_iso, kPartition);
      ProbeStats during = prober_->stats(t);
      r.outage_ms = during.outage_ms;
      r.recovered = during.recovered;
      r.after_host = during.after_host;
      if (!(s = lab_->heal(target)).ok()) return fail("heal: " + s.to_string());
      std::this_thread::sleep_for(3s);
      sampler_->stop();
      take_holders(t_iso_sampler, &r);
      if (!during.recovered)
        return fail("the client was not served again during the partition: " + during.to_string());
    } else if (scenario == 6) {
      // The holder's daemon alone is SIGKILLed (a crash, the OOM killer), its machine and
      // nginx run on. Vigil: the agent; its VIP guard removes the VIP and another host takes
      // it. keepalived: every keepalived process of the host; the VIP stays on its interface
      // and a backup takes it too.
      const int64_t t_kill_sampler = start_sampler();
      t = prober_->now_us();
      auto t_kill = Clock::now();
      if (c.vigil) {
        lab_->stop_agent(target, SIGKILL);
      } else {
        for (pid_t p : lab_->host_pids(target, "keepalived")) ::kill(p, SIGKILL);
      }
      r.dropped_ms = watch_drop(target, t_kill, 5s);
      ProbeStats st = prober_->stats(t);
      r.outage_ms = st.outage_failed ? st.outage_ms : 0;
      r.recovered = st.recovered || st.outage_failed == 0;
      r.after_host = st.after_host.empty() ? target_name : st.after_host;
      sampler_->stop();
      take_holders(t_kill_sampler, &r);
      if (!r.recovered) return fail("the client was not served again: " + st.to_string());
    }
    r.ok = true;
    finish();
    return r;
  }

 private:
  // Samples the holders every 20 ms (sampler_), 200 ms before the fault; the sampler's time
  // of the fault.
  int64_t start_sampler() {
    sampler_ = std::make_unique<HolderSampler>(*lab_, kVip, 20ms);
    sampler_->start();
    std::this_thread::sleep_for(200ms);
    return sampler_->now_us();
  }

  // Watches `target` (every 2 ms) until `length` after `since`: ms from `since` to the
  // first moment it no longer held the VIP, -1 if it kept it.
  double watch_drop(int target, Clock::time_point since, std::chrono::milliseconds length) {
    double dropped = -1;
    while (Clock::now() - since < length) {
      auto hs = lab_->vip_holders(kVip);
      if (dropped < 0 && std::find(hs.begin(), hs.end(), target) == hs.end()) {
        dropped = ms_since(since);
      }
      std::this_thread::sleep_for(2ms);
    }
    return dropped;
  }

  // From the sampler, since `from_us`: the most holders at once, the timeline, and the
  // longest run of samples with two or more holders (from its first sample to the first
  // sample after it with fewer, or the last sample).
  void take_holders(int64_t from_us, Run* r) const {
    r->max_holders = sampler_->max_holders();
    r->holders_timeline = sampler_->timeline();
    int64_t since = -1;
    for (const auto& sm : sampler_->samples()) {
      if (sm.t_us < from_us) continue;
      if (sm.holders.size() >= 2) {
        if (since < 0) since = sm.t_us;
        r->double_ms = std::max(r->double_ms, (sm.t_us - since) / 1000.0);
      } else if (since >= 0) {
        r->double_ms = std::max(r->double_ms, (sm.t_us - since) / 1000.0);
        since = -1;
      }
    }
  }

  void finish() {
    sampler_.reset();
    prober_.reset();
    lab_.reset();
  }

  std::string holders_string() const {
    std::string out;
    for (int h : lab_->vip_holders(kVip)) out += (out.empty() ? "n" : " n") + std::to_string(h);
    return out.empty() ? "none" : out;
  }

  // Until 20 consecutive good answers came from a host other than `dead`; the client's view
  // since from_us.
  ProbeStats wait_failover(int64_t from_us, const std::string& dead, std::chrono::seconds limit) {
    (void)prober_->wait_good_elsewhere(20, limit, dead);
    return prober_->stats(from_us);
  }

  std::string dir_;
  bool keep_;
  std::unique_ptr<NetnsLab> lab_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<HolderSampler> sampler_;
};

// --- Figures ------------------------------------------------------------------------------

struct Summary {
  double median = 0, min = 0, max = 0;
  size_t n = 0;
};
std::optional<Summary> summarize(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  Summary s;
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  s.n = n;
  return s;
}

std::string fmt_ms(double ms) {
  char b[32];
  if (ms >= 1000) {
    std::snprintf(b, sizeof b, "%.2f s", ms / 1000);
  } else {
    std::snprintf(b, sizeof b, "%.0f ms", ms);
  }
  return b;
}

std::string cell(const std::optional<Summary>& s, int failed) {
  std::string out;
  if (s) {
    out = fmt_ms(s->median) + " (" + fmt_ms(s->min) + "–" + fmt_ms(s->max) +
          ", n=" + std::to_string(s->n) + ")";
  }
  if (failed) out += std::string(out.empty() ? "" : " ") + std::to_string(failed) + " failed";
  return out.empty() ? "—" : out;
}

struct Results {
  std::map<std::pair<std::string, int>, std::vector<Run>> runs;  // (config key, scenario)
};

std::vector<double> pick(const std::vector<Run>& rs, double Run::*field, bool only_ok = true) {
  std::vector<double> v;
  for (const auto& r : rs) {
    if (!only_ok || r.ok) v.push_back(r.*field);
  }
  return v;
}

int failed(const std::vector<Run>& rs) {
  return static_cast<int>(std::count_if(rs.begin(), rs.end(), [](const Run& r) { return !r.ok; }));
}

std::set<int> parse_ints(const std::string& s) {
  std::set<int> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.insert(std::atoi(x.c_str()));
  return out;
}

std::set<std::string> parse_words(const std::string& s) {
  std::set<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.insert(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 10, fast_runs = -1, ka_runs = -1;
  bool keep = false;
  std::string only, scen = "1,2,3,4,5";
  std::string dir = "/tmp/vigil-vip-bench-" + std::to_string(::getpid());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--runs") {
      runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--fast-runs") {
      fast_runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--ka-runs") {
      ka_runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--only") {
      only = next();
    } else if (a == "--scenarios") {
      scen = next();
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(
          stderr,
          "usage: vigil-vip-bench [--runs N] [--fast-runs N] [--ka-runs N] "
          "[--only vigil,vigil-fast,ka2-1,ka2-0.1,ka3-1,ka3-0.1] [--scenarios 1,2,3,4,5,6] "
          "[--dir DIR] [--keep]\n");
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::printf("vigil-vip-bench: skipped: needs root (network namespaces, nftables)\n");
    return 0;
  }
  std::string why = NetnsLab::unavailable_reason();
  if (!why.empty()) {
    std::printf("vigil-vip-bench: skipped: the network-namespace lab %s\n", why.c_str());
    return 0;
  }
  if (::access(kNginx, X_OK) != 0) {
    std::printf("vigil-vip-bench: skipped: %s is missing (scripts/setup.sh installs nginx)\n",
                kNginx);
    return 0;
  }
  const bool have_ka = ::access(kKeepalived, X_OK) == 0 && ::access(kCurl, X_OK) == 0;
  if (!have_ka) {
    std::printf(
        "vigil-vip-bench: %s or %s missing (scripts/setup.sh installs them): "
        "keepalived lines skipped\n",
        kKeepalived, kCurl);
  }
  dir = fs::absolute(dir).lexically_normal().string();
  fs::create_directories(dir);
  const std::set<int> scenarios = parse_ints(scen);
  const std::set<std::string> chosen = parse_words(only);

  std::vector<Config> configs;
  for (Config c : all_configs()) {
    if (!chosen.empty() && !chosen.contains(c.key)) continue;
    if (!c.vigil && !have_ka) continue;
    c.runs = c.key == "vigil-fast" && fast_runs > 0 ? fast_runs
             : !c.vigil && ka_runs > 0              ? ka_runs
                                                    : runs;
    configs.push_back(c);
  }
  const std::string started = utc_now();
  Bench bench(dir, keep);
  Results res;
  auto t_all = Clock::now();
  for (const Config& c : configs) {
    for (int sc : {1, 2, 4, 5, 6, 3}) {
      if (!scenarios.contains(sc) || ((sc == 4 || sc == 5) && !c.vigil)) continue;
      auto& rs = res.runs[{c.key, sc}];
      for (int i = 0; i < c.runs; ++i) {
        Run r = bench.run(c, sc, i);
        if (r.ok) {
          if (sc == 3) {
            std::fprintf(stderr,
                         "  %-22s s3 run %2d: double holders %s (max %zu), isolated %s %s, "
                         "client outage %s%s\n",
                         c.name.c_str(), i + 1, fmt_ms(r.double_ms).c_str(), r.max_holders,
                         c.vigil ? (r.isolated_leader ? "leader" : "follower") : "master",
                         r.dropped_ms < 0 ? "kept the VIP"
                                          : ("dropped it after " + fmt_ms(r.dropped_ms)).c_str(),
                         fmt_ms(r.outage_ms).c_str(),
                         r.baseline_failed ? " [failed probes before the fault]" : "");
          } else if (sc == 6) {
            std::fprintf(stderr,
                         "  %-22s s6 run %2d: outage %s, the VIP %s, double holders %s, "
                         "then %s\n",
                         c.name.c_str(), i + 1, fmt_ms(r.outage_ms).c_str(),
                         r.dropped_ms < 0 ? "stayed on the host"
                                          : ("left after " + fmt_ms(r.dropped_ms)).c_str(),
                         fmt_ms(r.double_ms).c_str(), r.after_host.c_str());
          } else {
            std::fprintf(stderr, "  %-22s s%d run %2d: outage %s, then %s (setup %s)%s\n",
                         c.name.c_str(), sc, i + 1, fmt_ms(r.outage_ms).c_str(),
                         r.after_host.c_str(), fmt_ms(r.setup_ms).c_str(),
                         r.baseline_failed ? " [failed probes before the fault]" : "");
          }
        }
        rs.push_back(r);
      }
    }
  }
  const double total_s = ms_since(t_all) / 1000;
  if (!keep) {
    std::error_code ec;
    fs::remove(dir, ec);  // only when empty: nothing failed
  }

  // --- The table ----------------------------------------------------------------------------
  auto has = [&](const std::string& key) {
    return std::any_of(configs.begin(), configs.end(),
                       [&](const Config& c) { return c.key == key; });
  };
  auto runs_of = [&](const std::string& key, int sc) -> const std::vector<Run>* {
    auto it = res.runs.find({key, sc});
    return it == res.runs.end() ? nullptr : &it->second;
  };
  auto median_of = [&](const std::string& key, int sc, double Run::*f) -> std::optional<double> {
    auto* rs = runs_of(key, sc);
    if (!rs) return std::nullopt;
    auto s = summarize(pick(*rs, f));
    if (!s) return std::nullopt;
    return s->median;
  };
  struct Row {
    std::string what;
    int scenario;
    double Run::*field;
    std::string target;
    std::optional<double> def_target, fast_target;  // median must be below
    bool zero_max = false;                          // the max must be 0 (double holders)
  };
  const std::vector<Row> rows = {
      {"1 holder's machine dies: client outage", 1, &Run::outage_ms,
       "defaults < 600 ms, fast < 250 ms", 600, 250},
      {"2 nginx SIGKILLed on the holder: client outage", 2, &Run::outage_ms, "defaults < 300 ms",
       300, std::nullopt},
      {"4 leader = holder, machine dies: client outage", 4, &Run::outage_ms,
       "defaults < 1.0 s, fast < 500 ms", 1000, 500},
      {"5 leader dies, a follower holds the VIP: client outage", 5, &Run::outage_ms, "", {}, {}},
      {"6 holder's daemon SIGKILLed, machine up: client outage", 6, &Run::outage_ms, "", {}, {}},
      {"6 holder's daemon SIGKILLed: the VIP left the host after", 6, &Run::dropped_ms, "", {}, {}},
      {"6 holder's daemon SIGKILLed: longest time 2 hosts held the VIP", 6, &Run::double_ms,
       "0 in every run", 0, 0, true},
      {"3 holder isolated 10 s: longest time 2 hosts held the VIP", 3, &Run::double_ms,
       "0 in every run", 0, 0, true},
      {"3 holder isolated 10 s: isolated host dropped the VIP after",
       3,
       &Run::dropped_ms,
       "",
       {},
       {}},
      {"3 holder isolated 10 s: client outage", 3, &Run::outage_ms, "", {}, {}},
  };
  std::printf("\nvigil-vip-bench, %s; %.0f s in all; a fresh lab per run\n", started.c_str(),
              total_s);
  std::printf("cells: median (min–max, n=runs)\n\n");
  std::printf("| scenario: figure |");
  for (const Config& c : configs) std::printf(" %s |", c.name.c_str());
  std::printf(" target (Vigil) | met |\n|---|");
  for (size_t i = 0; i < configs.size(); ++i) std::printf("---:|");
  std::printf("---|---|\n");
  for (const Row& row : rows) {
    if (!scenarios.contains(row.scenario)) continue;
    std::printf("| %s |", row.what.c_str());
    for (const Config& c : configs) {
      auto* rs = runs_of(c.key, row.scenario);
      if (!rs) {
        std::printf(" %s |",
                    (row.scenario == 4 || row.scenario == 5) && !c.vigil ? "n/a (no leader)" : "—");
        continue;
      }
      if (row.field == &Run::dropped_ms) {
        std::vector<double> dropped;
        int kept = 0;
        for (const auto& r : *rs) {
          if (!r.ok) continue;
          if (r.dropped_ms < 0) {
            ++kept;
          } else {
            dropped.push_back(r.dropped_ms);
          }
        }
        std::string txt = dropped.empty() ? "" : cell(summarize(dropped), 0);
        if (kept)
          txt += std::string(txt.empty() ? "" : "; ") + "kept it " +
                 (row.scenario == 6 ? "5" : "10") + " s in " + std::to_string(kept) + " runs";
        std::printf(" %s |", txt.empty() ? "—" : txt.c_str());
        continue;
      }
      std::printf(" %s |", cell(summarize(pick(*rs, row.field)), failed(*rs)).c_str());
    }
    std::string met;
    for (const auto& [key, target] : {std::pair{std::string("vigil"), row.def_target},
                                      std::pair{std::string("vigil-fast"), row.fast_target}}) {
      if (!target || !has(key)) continue;
      std::string verdict;
      if (row.zero_max) {
        auto* rs = runs_of(key, row.scenario);
        if (!rs) continue;
        double worst = 0;
        for (const auto& r : *rs) worst = std::max(worst, r.ok ? r.double_ms : 1e9);
        verdict = worst == 0 ? "met" : "NOT met";
      } else {
        auto m = median_of(key, row.scenario, row.field);
        auto* rs = runs_of(key, row.scenario);
        if (!m) continue;
        verdict = *m < *target && failed(*rs) == 0 ? "met" : "NOT met";
      }
      met +=
          std::string(met.empty() ? "" : ", ") + (key == "vigil" ? "defaults " : "fast ") + verdict;
    }
    std::printf(" %s | %s |\n", row.target.c_str(), met.empty() ? "" : met.c_str());
  }
  // Spurious failovers: probes failing in the quiet second before a fault.
  std::printf("\nfailed probes in the quiet second before the fault (spurious failovers):");
  for (const Config& c : configs) {
    size_t n = 0, total = 0;
    for (int sc : {1, 2, 3, 4, 5, 6}) {
      if (auto* rs = runs_of(c.key, sc)) {
        for (const auto& r : *rs) {
          total += r.ok;
          n += r.ok && r.baseline_failed > 0;
        }
      }
    }
    std::printf(" %s %zu of %zu runs;", c.name.c_str(), n, total);
  }
  std::printf("\n");
  for (const Config& c : configs) {
    if (!c.vigil) continue;
    if (auto* rs = runs_of(c.key, 3)) {
      std::printf("%s, scenario 3 per run (L: the isolated holder was the leader):",
                  c.name.c_str());
      for (const auto& r : *rs) {
        if (r.ok) std::printf(" %s%s", fmt_ms(r.dropped_ms).c_str(), r.isolated_leader ? "L" : "");
      }
      std::printf("\n");
    }
  }
  int bad = 0;
  for (const auto& [k, rs] : res.runs) bad += failed(rs);
  if (bad)
    std::printf("%d runs failed (see stderr; their files are kept under %s)\n", bad, dir.c_str());
  return 0;
}
