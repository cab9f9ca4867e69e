// Resource-agent vocabulary of the executor: agent names, actions, OCF exit codes and the
// pure translations (exit status → OCF code → outcome, parameters → environment, fence
// stdin). No I/O here: runner.cc and child.cc do the effects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace vigil::exec {

// The agent class of a resource: the part of "ocf:heartbeat:nginx" before the first ':'.
enum class AgentClass : uint8_t {
  kOcf = 0,        // ocf:PROVIDER:TYPE, OCF RA API 1.1
  kLsb = 1,        // lsb:NAME, an LSB init script
  kSystemd = 2,    // systemd:UNIT, through systemctl
  kProcess = 3,    // process, a command supervised by Vigil itself (pidfd)
  kFence = 4,      // fence:AGENT, a fence-agents script (only through AgentRunner::fence)
  kExtension = 5,  // any other class registered with AgentRunner::register_class (vip)
};

// A parsed agent name. `provider` is set for OCF only; `type` is the OCF type, the LSB
// script name, the systemd unit, the fence agent or empty (process); `class_name` is the
// text before the first ':' (for extensions: "vip").
struct AgentName {
  AgentClass agent_class = AgentClass::kProcess;
  std::string class_name;
  std::string provider;
  std::string type;
  std::string to_string() const;
};

// Parses "ocf:heartbeat:Dummy", "lsb:foo", "systemd:nginx.service", "process",
// "fence:fence_ipmilan" or "vip" / "vip:anything" (kExtension: any other class name made
// of [a-z0-9_-]). Names may not contain '/' or be "." or "..": they become file names.
// Errors are kInvalidArgument with a message that says what is wrong.
Result<AgentName> parse_agent_name(std::string_view name);

// The actions of a resource (OCF 1.1 §"Resource Agent Actions"). kProbe is the monitor
// run once at start-up (and after a restart of the agent) to find what already runs: the
// agent sees "monitor" with interval 0.
enum class Action : uint8_t {
  kStart = 0,
  kStop,
  kMonitor,
  kProbe,
  kPromote,
  kDemote,
  kMetaData,
  kValidateAll,
  kReload,
};
// "start", "stop", "monitor", "probe", "promote", "demote", "meta-data", "validate-all",
// "reload".
std::string_view action_name(Action a);
Result<Action> parse_action(std::string_view name);
// The argument an OCF agent gets (probe → "monitor").
std::string_view ocf_action_arg(Action a);

// OCF 1.1 §"Exit Status Codes", with the names OCF 1.1 gives them.
enum class OcfCode : int {
  kSuccess = 0,             // OCF_SUCCESS
  kErrGeneric = 1,          // OCF_ERR_GENERIC
  kErrArgs = 2,             // OCF_ERR_ARGS
  kErrUnimplemented = 3,    // OCF_ERR_UNIMPLEMENTED
  kErrPerm = 4,             // OCF_ERR_PERM
  kErrInstalled = 5,        // OCF_ERR_INSTALLED ("not installed")
  kErrConfigured = 6,       // OCF_ERR_CONFIGURED ("not configured")
  kNotRunning = 7,          // OCF_NOT_RUNNING
  kRunningPromoted = 8,     // OCF_RUNNING_PROMOTED
  kFailedPromoted = 9,      // OCF_FAILED_PROMOTED
  kDegraded = 190,          // OCF_DEGRADED (monitor: active, but failure more likely)
  kDegradedPromoted = 191,  // OCF_DEGRADED_PROMOTED
};
// "OCF_SUCCESS", "OCF_ERR_GENERIC", ... ; "OCF_<n>" for anything else.
std::string ocf_code_name(OcfCode c);

// What a result means to the coordinator, following the recovery hints of OCF 1.1 §"Exit
// Status Codes": 1 (and a timeout) is a soft failure worth a retry or a restart; 2, 3, 4
// and 5 concern this host (try another node); 6 concerns the configuration (retrying
// elsewhere does not help). Whether a code is expected depends on the action and is for
// the caller to judge (a probe that finds kNotRunning is fine; a start that returns it is
// not).
enum class Outcome : uint8_t {
  kSuccess = 0,  // 0, 190
  kNotRunning,   // 7: cleanly stopped
  kPromoted,     // 8, 191: active in the promoted role
  kSoftError,    // 1, 9, timeouts, killed by a signal, codes OCF does not define
  kHardError,    // 2, 3, 4, 5: this host cannot run it
  kFatalError,   // 6: the configuration is wrong wherever it runs
};
std::string_view outcome_name(Outcome o);
Outcome outcome_of(OcfCode c);

// How a child process ended (from waitpid), or that its status is unknown (a process
// adopted after a restart of the agent is not our child: we see it die but not why).
struct ExitStatus {
  bool known = false;
  bool exited = false;  // exited normally with `code`; otherwise killed by `signal`
  int code = 0;
  int signal = 0;
  // "exit code 3", "killed by signal 9 (SIGKILL)", "exit status unknown".
  std::string describe() const;
};
ExitStatus exit_status_from_wait(int wait_status);

// Maps an OCF agent's exit status to an OCF code; `note` gets why when the status is not
// an OCF code (a signal, an undefined code). Unknown statuses are kErrGeneric.
OcfCode ocf_code_from_exit(const ExitStatus& st, std::string* note);

// LSB init scripts (LSB 5.0 Core §"Init Script Actions"): non-status actions use the same
// codes 0-7 as OCF; `status` has its own: 0 running, 1 dead with a pid file, 2 dead with a
// lock file, 3 not running, 4 unknown. 1 and 2 are not a clean stop, so they map to
// OCF_ERR_GENERIC (OCF 1.1 §"Exit Status Codes" 7: "if in doubt, return 1"), 3 to
// OCF_NOT_RUNNING, the rest to OCF_ERR_GENERIC.
OcfCode ocf_code_from_lsb_status(const ExitStatus& st, std::string* note);

// The environment of an OCF agent (OCF 1.1 §"Parameter Passing"). Pacemaker's CRM_meta
// variables that Debian's agents read are set the way Pacemaker sets them, so that they
// run unmodified: OCF_RESKEY_CRM_meta_timeout and _interval in ms, _on_node, _name, plus
// every `meta` entry (clone, notify_*, ...) as OCF_RESKEY_CRM_meta_<key>.
struct OcfEnvInput {
  std::string ocf_root;  // /usr/lib/ocf
  std::string resource_id;
  std::string provider;
  std::string type;
  std::map<std::string, std::string> params;  // → OCF_RESKEY_<name>
  std::map<std::string, std::string> meta;    // → OCF_RESKEY_CRM_meta_<name>
  Action action = Action::kMonitor;
  int timeout_ms = 0;
  int interval_ms = 0;   // monitor interval (0 for probes and one-shot actions)
  int check_level = -1;  // OCF_CHECK_LEVEL (OCF 1.1 §"Check Levels"); -1: not set
  std::string node_name;
  std::string path;  // PATH for the agent
  // Where ocf-shellfuncs finds crm_attribute / crm_master (HA_SBIN_DIR): Vigil's shims,
  // which write a promotion score to `promotion_file` (VIGIL_PROMOTION_FILE). "": not set.
  std::string sbin_dir;
  std::string promotion_file;
  std::string rsc_tmp_dir;  // HA_RSCTMP (the agents' state and pid files); "": theirs
};
// The Pacemaker feature set announced to agents (OCF_RESKEY_crm_feature_set): 3.10 and
// later make ocf_promotion_score call `crm_attribute -p` rather than crm_master.
inline constexpr std::string_view kCrmFeatureSet = "3.16.2";
// Returns the whole environment ("K=V", sorted), or kInvalidArgument when a parameter name
// is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*) or a value holds a NUL byte.
Result<std::vector<std::string>> build_ocf_env(const OcfEnvInput& in);

// Fence-agent actions (fence-agents doc/FenceAgentAPI.md "Agent Operations").
enum class FenceAction : uint8_t { kOff = 0, kOn, kReboot, kStatus, kMonitor, kList };
std::string_view fence_action_name(FenceAction a);
Result<FenceAction> parse_fence_action(std::string_view name);

// The stdin of a fence agent: "action=X\n" then "key=value\n" per parameter, sorted
// (FenceAgentAPI.md "What is given to fencing agents"). kInvalidArgument when a key is
// empty or holds '=', whitespace or a newline, or a value holds a newline or NUL, or the
// parameters name `action` themselves.
Result<std::string> build_fence_stdin(FenceAction action,
                                      const std::map<std::string, std::string>& params);

// What a fence agent's exit status means (FenceAgentAPI.md "Agent Operations"):
// off/on/reboot/list: 0 success, anything else failure. status: 0 on, 2 off, else failed.
// monitor: 0 working, 2 device off (single-port), else failed.
enum class FenceOutcome : uint8_t { kSuccess = 0, kPowerOff, kFailed };
std::string_view fence_outcome_name(FenceOutcome o);
FenceOutcome fence_outcome_of(FenceAction a, const ExitStatus& st);

// Parses a fence agent's "Status: ON" / "Status: OFF" line (fencing.py prints it for
// status); nullopt if there is none. The last such line wins.
std::optional<bool> parse_fence_power_status(std::string_view stdout_text);

// The reason an OCF agent gave for its exit: the text after the last "ocf-exit-reason:"
// at the start of a line of stderr (resource-agents' ocf_exit_reason), trimmed and capped
// at kMaxExitReasonBytes; "" if none.
inline constexpr size_t kMaxExitReasonBytes = 512;
std::string parse_exit_reason(std::string_view stderr_text);

// Keeps the last `cap` bytes of a stream (agent stdout/stderr). Bounded: memory stays
// under 2 × cap whatever the child writes.
class OutputTail {
 public:
  explicit OutputTail(size_t cap) : cap_(cap) {}
  void append(std::string_view data);
  // The last min(total, cap) bytes.
  std::string str() const;
  uint64_t total_bytes() const { return total_; }
  bool truncated() const { return total_ > cap_; }

 private:
  size_t cap_;
  uint64_t total_ = 0;
  std::string buf_;
};

// True for names that are safe as one path component and as a resource id in file names:
// [A-Za-z0-9_.:@+-]{1,128}, not "." or "..".
bool is_safe_name(std::string_view s);

}  // namespace vigil::exec
