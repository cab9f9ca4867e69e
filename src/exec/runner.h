// AgentRunner: runs the actions of resource agents and fence agents for one node, on the
// agent's single Asio event-loop thread, never blocking it (DESIGN.md "Resource agents").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "exec/agent.h"
#include "exec/stop_recipe.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::exec {

// A command supervised by Vigil itself (agent "process").
struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is the executable: absolute, or found in PATH
  std::map<std::string, std::string> env;  // the whole environment (plus PATH if absent)
  std::string cwd = "/";
  std::string user;  // "" = the agent's own user; otherwise needs root
  // Where stdout and stderr go (appended); "" = /dev/null.
  std::string output_path;
  // Killed (SIGKILL) by the kernel when the agent exits, instead of running on to be adopted
  // by the next agent: for exclusive resources, which must not outlive the hold of a node
  // whose agent is gone.
  bool die_with_agent = false;
};

// What to run an action on. `params` become OCF_RESKEY_<name> (ocf), are ignored by lsb
// and systemd; `meta` become OCF_RESKEY_CRM_meta_<name> (ocf: clone, notify_*, ...).
struct ResourceSpec {
  std::string id;  // the resource name: [A-Za-z0-9_.:@+-]{1,128}
  AgentName agent;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> meta;
  ProcessSpec process;  // agent "process" only
  // Agent "vip" only: a VIP guard removes the address if this agent dies or its hold ends
  // (net/vip_guard.h; exclusive VIPs).
  bool guard_vip = false;
};

struct ActionRequest {
  ResourceSpec resource;
  Action action = Action::kMonitor;
  int timeout_ms = 20000;  // 1 .. kMaxTimeoutMs
  int interval_ms = 0;     // a recurring monitor's interval (passed to OCF agents)
  int check_level = -1;    // OCF_CHECK_LEVEL; -1: unset
};
inline constexpr int kMaxTimeoutMs = 24 * 3600 * 1000;

struct ActionResult {
  std::string resource_id;
  Action action = Action::kMonitor;
  int exit_code = -1;  // the agent's raw exit code; -1 if it did not exit normally or never ran
  OcfCode ocf = OcfCode::kErrGeneric;
  Outcome outcome = Outcome::kSoftError;
  bool timed_out = false;
  int64_t duration_ms = 0;  // from the start of the action (not the time queued)
  int64_t queued_ms = 0;    // time spent waiting for the resource or for a child slot
  std::string stdout_tail;  // the last Options::output_tail_bytes of each stream
  std::string stderr_tail;
  // For people: why it failed ("not installed: ..."), the agent's ocf-exit-reason, or "".
  std::string message;
  std::string to_string() const;  // "web start: OCF_SUCCESS (success) in 12 ms"
};

struct FenceRequest {
  std::string device_id;  // names the serialization queue, like a resource id
  std::string agent;      // "fence_ipmilan" (a file under Options::fence_dir)
  FenceAction action = FenceAction::kStatus;
  std::map<std::string, std::string> params;  // ipaddr=, plug=, nodename=, ... (not action)
  int timeout_ms = 60000;
};

struct FenceResult {
  std::string device_id;
  FenceAction action = FenceAction::kStatus;
  int exit_code = -1;
  FenceOutcome outcome = FenceOutcome::kFailed;
  std::optional<bool> power_on;  // from a "Status: ON|OFF" line, when printed
  bool timed_out = false;
  int64_t duration_ms = 0;
  int64_t queued_ms = 0;
  std::string stdout_tail;
  std::string stderr_tail;
  std::string message;
};

// A supervised process ended without being asked to (agent "process").
struct ProcessExit {
  std::string resource_id;
  int pid = 0;
  ExitStatus status;  // known only for our own children (not for adopted processes)
  std::chrono::steady_clock::time_point detected_at;
};

// The extension point for agent classes implemented elsewhere (the built-in `vip`, by
// src/net): register_class("vip", driver). The runner serializes, queues and bounds their
// actions like any other, and enforces the timeout as a watchdog: a driver that does not
// call `done` within timeout + kill grace is counted as failed with timed_out, and a late
// call is ignored.
class ClassDriver {
 public:
  virtual ~ClassDriver() = default;
  // Starts `req` on the loop thread; calls `done` once, on the loop thread, never inline.
  virtual void run(const ActionRequest& req, std::function<void(ActionResult)> done) = 0;
};

// Writes `crm_attribute` and `crm_master` into `dir` (created, 0755): shell scripts that
// record the promotion score an OCF agent sets (`-v N`, `-D`; `-G` prints it) in
// $VIGIL_PROMOTION_FILE, the way Pacemaker's would store it in its CIB. Other uses of
// crm_attribute (node attributes) are accepted and ignored, with a note on stderr.
Status write_promotion_shims(const std::string& dir);
// The score last set for a resource: nullopt when none (never set, or deleted with -D).
std::optional<int64_t> read_promotion_score(const std::string& promotion_dir,
                                            const std::string& resource_id);

// Runs the actions of the resources of one node.
//
// Owner: the daemon (one per node). Thread: the io_context's thread only: every method
// and every callback runs there. Limits: one action at a time per resource (and per fence
// device), others wait in order; at most `max_children` actions in flight in all, the rest
// wait in a FIFO queue of at most `max_queued`; output tails capped. A completion callback
// is called exactly once, on the loop thread, never inline from run()/fence() — unless the
// runner is destroyed first: then in-flight agent children are SIGKILLed (their process
// groups) and no callback is called. Supervised processes (agent "process") are left
// running by the destructor: they are meant to outlive an agent restart, and the probe of
// the next runner finds them.
//
// The daemon must not ignore SIGCHLD nor reap children it does not own (waitpid(-1)):
// exit statuses are collected per child through its pidfd.
class AgentRunner {
 public:
  struct Options {
    std::string ocf_root = "/usr/lib/ocf";  // agents in <ocf_root>/resource.d/
    std::string lsb_dir = "/etc/init.d";
    std::string fence_dir = "/usr/sbin";
    std::string systemctl = "/usr/bin/systemctl";
    // sd_booted(3): systemd is PID 1 when this directory exists.
    std::string systemd_runtime_dir = "/run/systemd/system";
    // Pid files of supervised processes: <data_dir>/process/<resource>.pid.
    std::string data_dir = "/var/lib/vigil";
    std::string node_name;  // OCF_RESKEY_CRM_meta_on_node
    // OCF agents' promotion scores (crm_attribute -p / crm_master): when set, agents get
    // HA_SBIN_DIR=<sbin_dir> holding Vigil's shims (write_promotion_shims()) and
    // VIGIL_PROMOTION_FILE=<promotion_dir>/<resource>; read it with read_promotion_score().
    std::string sbin_dir;
    std::string promotion_dir;
    std::string rsc_tmp_dir;  // HA_RSCTMP for OCF agents; "": the agents' default
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int max_children = 16;  // actions in flight at once, all resources together
    int max_queued = 1024;  // actions waiting (beyond that: refused at once)
    int max_queued_per_resource = 32;
    int kill_grace_ms = 2000;         // SIGTERM → SIGKILL after a timeout (and process stop)
    size_t output_tail_bytes = 4096;  // of stdout and of stderr, each
    Env* env = nullptr;               // for pid files; nullptr: posix_env()
  };

  AgentRunner(boost::asio::io_context& io, Options options);
  ~AgentRunner();
  AgentRunner(const AgentRunner&) = delete;
  AgentRunner& operator=(const AgentRunner&) = delete;

  // Queues one action. Invalid requests complete with an error result (OCF_ERR_CONFIGURED
  // for a bad resource, OCF_ERR_INSTALLED for a missing agent, OCF_ERR_GENERIC with a
  // message when a queue is full), through the callback like any result.
  void run(ActionRequest req, std::function<void(ActionResult)> done);

  // Runs a fence agent (FenceAgentAPI.md: key=value lines on stdin).
  void fence(FenceRequest req, std::function<void(FenceResult)> done);

  // Called when a supervised process dies on its own (not after a stop): at once, from the
  // pidfd becoming readable, not at the next monitor.
  void set_exit_handler(std::function<void(const ProcessExit&)> handler);

  void register_class(const std::string& class_name, std::shared_ptr<ClassDriver> driver);

  // SIGKILLs the process group of the agent action now running for `resource_id` (an OCF,
  // LSB or systemd agent; not a supervised process, not a class driver), which then completes
  // through its callback as failed with the message "cancelled: ...". False when none runs.
  // Used when a node loses its hold while starting an exclusive resource.
  bool cancel(const std::string& resource_id);

  // What this runner would exec to stop `resource` (an OCF, LSB or systemd agent), for the
  // guard process to run if this agent dies or its hold ends (net/vip_guard.h). Errors:
  // kInvalidArgument for another agent class or a bad resource, kNotFound when the agent
  // is not installed.
  Result<StopRecipe> stop_recipe(const ResourceSpec& resource, int timeout_ms) const;

  // Observability (and tests).
  int in_flight() const;
  size_t queued() const;
  // The pid of a supervised process this runner tracks as running, or -1.
  int process_pid_for_test(const std::string& resource_id) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::exec
