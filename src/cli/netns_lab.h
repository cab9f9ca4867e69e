// NetnsLab: a cluster of "machines" on one Linux box, for end-to-end tests of virtual IPs,
// benchmarks and `vigil demo`. Each host is a network namespace (with its own PID, mount and
// UTS namespace for what runs in it) plugged into a bridge in a switch namespace; a client
// namespace probes the VIP like a real client would. Needs root, `ip` and `nft`.
//
//   vl<pid>-sw   switch: bridge br0, one veth port p<K> per host, pc for the client
//   vl<pid>-n<K> host K: eth0 198.18.0.K/24, lo; `vigil agent` and what it starts
//   vl<pid>-cl   client: eth0 198.18.0.200/24, lo; Prober, API calls, the `vigil` CLI
//
// Faults: kill_host() (every process of the host SIGKILLed, its port down, its addresses
// gone: the machine is off), revive_host() (booted again: a fresh init, the same files),
// isolate()/heal() (nftables netdev ingress drop on both ends of its veth: the link stays
// up, nothing passes). Processes run through spawn(): in the host's network namespace and in
// the host's PID and mount namespace, whose init (pid 1) is a reaper made by the lab; its
// /run is a bind mount of DIR/<host>-run, so pid files and configs under /run never collide
// between hosts and stay on disk for post-mortems.
//
// The agents' API (HTTPS with the lab's CA and bearer tokens: TLS is required off loopback)
// listens on 198.18.0.K:8001 inside each host; the test reaches it from a thread that joined
// the client's network namespace (api()), or with the `vigil` CLI run by `ip netns exec`
// in the client namespace (vigil()).
//
// Not thread-safe except where noted; call spawn()/kill_host()/revive_host() from one
// thread that lives as long as the lab (children get PR_SET_PDEATHSIG from it).
// Boost.Asio stays out of this header (it is a light one to include).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace vigil::cli {

// Writes `text` to `path` (truncating); false on any error. For the lab's users' files
// (nginx configs, cluster definitions) as for its own.
bool write_text(const std::string& path, const std::string& text);

struct NetnsLabOptions {
  int hosts = 3;             // 1..99
  std::string dir;           // "": /tmp/vigil-lab-PID (made afresh by setup(); removed by
                             // the destructor unless keep_dir)
  std::string vigil_binary;  // for agents, `vigil cert` and the CLI
  bool keep_dir = false;     // keep DIR (logs) when the lab goes
  std::string cluster = "lab";
  // Agent timers (0: the agent's defaults; hold_guard_ms -1: its default for the hold and
  // heartbeat used).
  uint32_t tick_ms = 0, heartbeat_ms = 0, election_timeout_ms = 0, hold_ms = 0;
  int hold_guard_ms = -1;
  bool fsync = true;
};

class NetnsLab {
 public:
  // "" when this machine can run a lab; else why not (not root, `ip` or `nft` missing,
  // network namespaces unsupported): for GTEST_SKIP.
  static std::string unavailable_reason();
  // Removes what crashed earlier labs left behind: namespaces vl<PID>-* whose PID is no
  // longer alive, after SIGKILLing every process in them (`ip netns pids`). Returns how
  // many namespaces went. The constructor calls it.
  static int remove_leftovers();

  explicit NetnsLab(NetnsLabOptions options);
  // Kills every process the lab made (each host's PID namespace), deletes every namespace.
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // Namespaces, bridge, veths, addresses, the hosts' inits. Errors name the command.
  Status setup();

  int hosts() const { return options_.hosts; }
  const std::string& id() const { return id_; }  // "vl<pid>"
  const std::string& dir() const { return dir_; }
  void set_keep_dir(bool keep) { options_.keep_dir = keep; }  // e.g. when a test failed
  std::string host_ns(int host) const;                        // "vl<pid>-n<K>"
  std::string host_name(int host) const;                      // "n<K>": the node name as well
  std::string client_ns() const;
  std::string switch_ns() const;
  static std::string host_ip(int host);  // "198.18.0.K"
  static constexpr const char* kClientIp = "198.18.0.200";
  // Every host and the client also have an IPv6 address in the benchmarking prefix
  // 2001:2::/48 (RFC 5180; the IPv6 sibling of 198.18.0.0/15), /64 on eth0, without DAD.
  static std::string host_ip6(int host);  // "2001:2::K"
  static constexpr const char* kClientIp6 = "2001:2::200";
  std::string run_dir(int host) const;  // DIR/n<K>-run: the host's /run

  // --- Processes in hosts -------------------------------------------------------------
  // Starts argv (argv[0] an absolute path) in host's network, PID, mount and UTS
  // namespaces, in its own session, stdout and stderr appended to log_path. Returns its pid
  // (as this process sees it). Errors: kUnavailable when the host is down.
  Result<pid_t> spawn(int host, const std::vector<std::string>& argv, const std::string& log_path);
  // Machine death: SIGKILL to the host's init (the kernel kills its whole PID namespace),
  // its switch port down (first), its addresses flushed. Waits until every process is gone
  // (1.5-2 s on a loaded machine: the teardown of its mount namespace).
  void kill_host(int host);
  // Boots it again: address back, port up, a fresh init (no process runs until spawned).
  Status revive_host(int host);
  bool host_up(int host) const;
  // Pids (as this process sees them) of the host's processes named `comm` ("" = all but
  // its init), found through /proc by their PID namespace.
  std::vector<pid_t> host_pids(int host, const std::string& comm = "") const;
  // Alive and not a zombie.
  static bool process_alive(pid_t pid);

  // --- Partitions ---------------------------------------------------------------------
  // What isolate() drops at the host's veth (nftables netdev ingress; the link stays up):
  // both ways, only what the host sends (it still hears everyone: a one-way partition), or
  // only what it receives.
  enum class Cut { kBoth, kOutbound, kInbound };
  Status isolate(int host, Cut cut = Cut::kBoth);
  Status heal(int host);  // undoes whatever isolate() dropped

  // --- Observation --------------------------------------------------------------------
  // Hosts (1-based) that have `ip` configured on an interface now (rtnetlink dump through a
  // socket opened in each host's namespace; ~50 µs a host). Thread-safe.
  std::vector<int> vip_holders(const std::string& ip) const;
  // Runs fn on a thread that joined `ns`'s network namespace (sockets it opens live there),
  // and waits for it.
  static void in_netns(const std::string& ns, const std::function<void()>& fn);
  void in_client(const std::function<void()>& fn) const { in_netns(client_ns(), fn); }
  // Runs argv (no shell) and returns (exit code, stdout and stderr).
  static std::pair<int, std::string> run(const std::vector<std::string>& argv);

  // --- Agents -------------------------------------------------------------------------
  // Writes the CA and certificates (`vigil cert`), tokens and one config per host: node
  // n<K>, id K, peer 198.18.0.K:7001, API https://198.18.0.K:8001, data DIR/n<K>.
  Status write_agent_configs();
  std::string config_path(int host) const;
  std::string log_path(int host) const;  // DIR/n<K>.log
  std::string data_dir(int host) const;
  std::string ca_file() const;  // DIR/certs/ca.crt
  std::string admin_token_file() const;
  // spawn(`vigil agent --config`); `env` ("K=V"), if any, is added to its environment.
  Status start_agent(int host, const std::vector<std::string>& env = {});
  // Sends sig to the agent and waits (up to 10 s) until it is gone. Other processes of
  // the host are left alone.
  void stop_agent(int host, int sig);
  pid_t agent_pid(int host) const;  // -1 when not started
  // One API request to host's agent, from the client namespace, as admin. (status, body);
  // status 0 when the request failed (body: why).
  std::pair<int, std::string> api(int host, const std::string& method, const std::string& target,
                                  const std::string& body = "", int timeout_ms = 2000) const;
  // `vigil ARGS --api https://198.18.0.K:8001 --server-name n<K> --cacert --token-file`,
  // run in the client namespace. (exit code, output).
  std::pair<int, std::string> vigil(int host, const std::string& args) const;
  // Waits until one up host says it is leader and every other up host names it. 0 on
  // timeout.
  int wait_for_leader(std::chrono::milliseconds timeout) const;
  std::string log_tail(int host, int lines = 30) const;

 private:
  struct Host {
    pid_t init = -1;  // pid 1 of its PID namespace, as we see it
    pid_t mid = -1;   // our child that waits for init
    pid_t agent = -1;
    bool up = false;
    int nl_fd = -1;                        // rtnetlink socket in its namespace
    bool cut_out = false, cut_in = false;  // isolate()'s rules in place
  };
  Status sh(const std::vector<std::string>& argv);  // run(), error unless exit 0
  // ip4/24 and ip6/64 (without DAD) on eth0 in namespace `ns`.
  Status add_addresses(const std::string& ns, const std::string& ip4, const std::string& ip6);
  Status start_init(int host);
  NetnsLabOptions options_;
  std::string id_, dir_;
  std::vector<Host> hosts_;  // [0] unused
  std::vector<std::string> created_ns_;
  std::map<std::string, std::string> tokens_;  // admin token
  mutable std::mutex nl_mu_;
  mutable uint32_t nl_seq_ = 1;
};

// --- The client ---------------------------------------------------------------------------

enum class ProbeOutcome : uint8_t { kOk, kRefused, kTimeout, kError };
const char* probe_outcome_name(ProbeOutcome o);

struct ProbeRecord {
  int64_t start_us = 0;    // since the prober started
  int64_t latency_us = 0;  // until the answer, the refusal or the timeout
  ProbeOutcome outcome = ProbeOutcome::kError;
  std::string host;  // the body of a 200 answer, trimmed (the host name)
  int64_t end_us() const { return start_us + latency_us; }
};

struct ProbeStats {
  size_t total = 0, ok = 0, refused = 0, timeout = 0, error = 0;
  std::map<std::string, size_t> by_host;  // good answers per host
  // The longest run of failed probes: from the last good answer before it to the first
  // good answer after it (end times). 0 when no probe failed. If nothing answered after
  // it, recovered is false and the outage runs to the last probe's end.
  double outage_ms = 0;
  size_t outage_failed = 0;
  int64_t outage_from_us = 0, outage_to_us = 0;
  std::string before_host, after_host;
  bool recovered = true;
  // Runs of equal results: "n1×812 timeout×143 refused×2 n2×640".
  std::string timeline;
  std::string to_string() const;  // one line with all of the above
};

// Opens a fresh TCP connection to ip:port every interval from the client namespace, sends
// "GET / HTTP/1.0", and records what came back; each probe times out after `timeout`
// (non-blocking connects and poll; several may be in flight). Runs on its own thread.
class Prober {
 public:
  Prober(const NetnsLab& lab, std::string ip, int port = 80,
         std::chrono::milliseconds interval = std::chrono::milliseconds(5),
         std::chrono::milliseconds timeout = std::chrono::milliseconds(100));
  ~Prober();  // stops
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  void start();
  void stop();                               // waits for the probes in flight
  int64_t now_us() const;                    // on the probes' clock
  std::vector<ProbeRecord> records() const;  // thread-safe copy
  // Over the probes started at or after from_us (and before to_us, if > 0), plus the one
  // just before from_us (an outage that starts then is counted from its answer).
  ProbeStats stats(int64_t from_us = 0, int64_t to_us = 0) const;
  static ProbeStats summarize(const std::vector<ProbeRecord>& records);
  // Waits until `n` consecutive good answers came (from `host` if not empty); false on
  // timeout.
  bool wait_good(int n, std::chrono::milliseconds timeout, const std::string& host = "") const;
  // Waits until `n` consecutive good answers came from hosts other than `dead` (a failover
  // done); false on timeout.
  bool wait_good_elsewhere(int n, std::chrono::milliseconds timeout, const std::string& dead) const;

 private:
  void loop();
  bool wait_good_if(int n, std::chrono::milliseconds timeout,
                    const std::function<bool(const std::string&)>& host_ok) const;
  std::string ns_, ip_;
  int port_;
  std::chrono::milliseconds interval_, timeout_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<ProbeRecord> records_;
};

// Samples NetnsLab::vip_holders(ip) every `interval` on its own thread.
class HolderSampler {
 public:
  struct Sample {
    int64_t t_us = 0;  // since start
    std::vector<int> holders;
  };
  HolderSampler(const NetnsLab& lab, std::string ip,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));
  ~HolderSampler();
  void start();
  void stop();
  int64_t now_us() const;
  std::vector<Sample> samples() const;
  size_t max_holders() const;  // the most hosts seen holding it at once
  // Runs of equal holder sets: "n1×120 -×25 n2×300".
  std::string timeline() const;

 private:
  const NetnsLab& lab_;
  std::string ip_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Sample> samples_;
};

}  // namespace vigil::cli
