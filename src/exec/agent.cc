// Pure translations of the executor: names, codes, environments, fence stdin, parsers.
#include "exec/agent.h"

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace vigil::exec {
namespace {

bool is_env_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool is_class_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls f(line) for every line of `text` (without the '\n').
template <class F>
void for_each_line(std::string_view text, F&& f) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    f(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
}

constexpr std::string_view kActionNames[] = {"start",     "stop",         "monitor",
                                             "probe",     "promote",      "demote",
                                             "meta-data", "validate-all", "reload"};

constexpr std::string_view kFenceActionNames[] = {"off",    "on",      "reboot",
                                                  "status", "monitor", "list"};

}  // namespace

std::string AgentName::to_string() const {
  switch (agent_class) {
    case AgentClass::kOcf:
      return "ocf:" + provider + ":" + type;
    case AgentClass::kProcess:
      return "process";
    default:
      return type.empty() ? class_name : class_name + ":" + type;
  }
}

bool is_safe_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '@' || c == '+' || c == '-';
  });
}

Result<AgentName> parse_agent_name(std::string_view name) {
  auto bad = [&](std::string why) {
    return err(Errc::kInvalidArgument, "agent '" + std::string(name) + "': " + why);
  };
  AgentName out;
  size_t colon = name.find(':');
  out.class_name = std::string(name.substr(0, colon));
  std::string_view rest = colon == std::string_view::npos ? "" : name.substr(colon + 1);
  // Path components must be plain names: they are joined to directories.
  auto component = [&](std::string_view s, std::string_view what) -> Status {
    if (s.empty()) return bad("missing " + std::string(what));
    if (s == "." || s == ".." || s.find('/') != std::string_view::npos ||
        s.find('\0') != std::string_view::npos) {
      return bad(std::string(what) + " '" + std::string(s) + "' is not a plain file name");
    }
    return Status();
  };
  if (out.class_name == "ocf") {
    out.agent_class = AgentClass::kOcf;
    size_t c2 = rest.find(':');
    if (c2 == std::string_view::npos) return bad("want ocf:PROVIDER:TYPE");
    out.provider = std::string(rest.substr(0, c2));
    out.type = std::string(rest.substr(c2 + 1));
    RETURN_IF_ERROR(component(out.provider, "provider"));
    RETURN_IF_ERROR(component(out.type, "type"));
    if (out.type.find(':') != std::string::npos) return bad("want ocf:PROVIDER:TYPE");
    return out;
  }
  if (out.class_name == "lsb" || out.class_name == "systemd" || out.class_name == "fence") {
    out.agent_class = out.class_name == "lsb"       ? AgentClass::kLsb
                      : out.class_name == "systemd" ? AgentClass::kSystemd
                                                    : AgentClass::kFence;
    out.type = std::string(rest);
    RETURN_IF_ERROR(component(out.type, out.class_name == "systemd" ? "unit" : "name"));
    return out;
  }
  if (out.class_name == "process") {
    if (colon != std::string_view::npos) return bad("'process' takes no ':' suffix");
    out.agent_class = AgentClass::kProcess;
    return out;
  }
  if (!is_class_name(out.class_name)) {
    return bad("unknown agent class '" + out.class_name +
               "' (want ocf:, lsb:, systemd:, fence:, process or a registered class)");
  }
  out.agent_class = AgentClass::kExtension;
  out.type = std::string(rest);
  if (colon != std::string_view::npos) RETURN_IF_ERROR(component(out.type, "type"));
  return out;
}

std::string_view action_name(Action a) { return kActionNames[static_cast<size_t>(a)]; }

Result<Action> parse_action(std::string_view name) {
  for (size_t i = 0; i < std::size(kActionNames); ++i) {
    if (kActionNames[i] == name) return static_cast<Action>(i);
  }
  return err(Errc::kInvalidArgument, "unknown action '" + std::string(name) + "'");
}

std::string_view ocf_action_arg(Action a) {
  return a == Action::kProbe ? "monitor" : action_name(a);
}

std::string ocf_code_name(OcfCode c) {
  switch (c) {
    case OcfCode::kSuccess:
      return "OCF_SUCCESS";
    case OcfCode::kErrGeneric:
      return "OCF_ERR_GENERIC";
    case OcfCode::kErrArgs:
      return "OCF_ERR_ARGS";
    case OcfCode::kErrUnimplemented:
      return "OCF_ERR_UNIMPLEMENTED";
    case OcfCode::kErrPerm:
      return "OCF_ERR_PERM";
    case OcfCode::kErrInstalled:
      return "OCF_ERR_INSTALLED";
    case OcfCode::kErrConfigured:
      return "OCF_ERR_CONFIGURED";
    case OcfCode::kNotRunning:
      return "OCF_NOT_RUNNING";
    case OcfCode::kRunningPromoted:
      return "OCF_RUNNING_PROMOTED";
    case OcfCode::kFailedPromoted:
      return "OCF_FAILED_PROMOTED";
    case OcfCode::kDegraded:
      return "OCF_DEGRADED";
    case OcfCode::kDegradedPromoted:
      return "OCF_DEGRADED_PROMOTED";
  }
  return "OCF_" + std::to_string(static_cast<int>(c));
}

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kNotRunning:
      return "not-running";
    case Outcome::kPromoted:
      return "promoted";
    case Outcome::kSoftError:
      return "soft-error";
    case Outcome::kHardError:
      return "hard-error";
    case Outcome::kFatalError:
      return "fatal-error";
  }
  return "?";
}

Outcome outcome_of(OcfCode c) {
  switch (c) {
    case OcfCode::kSuccess:
    case OcfCode::kDegraded:
      return Outcome::kSuccess;
    case OcfCode::kNotRunning:
      return Outcome::kNotRunning;
    case OcfCode::kRunningPromoted:
    case OcfCode::kDegradedPromoted:
      return Outcome::kPromoted;
    case OcfCode::kErrArgs:
    case OcfCode::kErrUnimplemented:
    case OcfCode::kErrPerm:
    case OcfCode::kErrInstalled:
      return Outcome::kHardError;
    case OcfCode::kErrConfigured:
      return Outcome::kFatalError;
    case OcfCode::kErrGeneric:
    case OcfCode::kFailedPromoted:
      return Outcome::kSoftError;
  }
  return Outcome::kSoftError;
}

std::string ExitStatus::describe() const {
  if (!known) return "exit status unknown";
  if (exited) return "exit code " + std::to_string(code);
  const char* abbrev = sigabbrev_np(signal);
  return "killed by signal " + std::to_string(signal) +
         (abbrev ? " (SIG" + std::string(abbrev) + ")" : "");
}

ExitStatus exit_status_from_wait(int wait_status) {
  ExitStatus st;
  st.known = true;
  if (WIFEXITED(wait_status)) {
    st.exited = true;
    st.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    st.signal = WTERMSIG(wait_status);
  } else {
    st.known = false;
  }
  return st;
}

OcfCode ocf_code_from_exit(const ExitStatus& st, std::string* note) {
  if (!st.known || !st.exited) {
    *note = st.describe();
    return OcfCode::kErrGeneric;
  }
  if ((st.code >= 0 && st.code <= 9) || st.code == 190 || st.code == 191) {
    return static_cast<OcfCode>(st.code);
  }
  *note = "exit code " + std::to_string(st.code) + " is not an OCF 1.1 code";
  return OcfCode::kErrGeneric;
}

OcfCode ocf_code_from_lsb_status(const ExitStatus& st, std::string* note) {
  if (!st.known || !st.exited) {
    *note = st.describe();
    return OcfCode::kErrGeneric;
  }
  switch (st.code) {
    case 0:
      return OcfCode::kSuccess;
    case 1:
      *note = "LSB status 1: program is dead and a pid file exists";
      return OcfCode::kErrGeneric;
    case 2:
      *note = "LSB status 2: program is dead and a lock file exists";
      return OcfCode::kErrGeneric;
    case 3:
      return OcfCode::kNotRunning;
    case 4:
      *note = "LSB status 4: program or service status is unknown";
      return OcfCode::kErrGeneric;
    default:
      *note = "LSB status " + std::to_string(st.code) + " is not defined";
      return OcfCode::kErrGeneric;
  }
}

Result<std::vector<std::string>> build_ocf_env(const OcfEnvInput& in) {
  std::map<std::string, std::string> env;
  auto check_value = [](const std::string& k, const std::string& v) -> Status {
    if (v.find('\0') != std::string::npos) {
      return err(Errc::kInvalidArgument, "parameter '" + k + "': value holds a NUL byte");
    }
    return Status();
  };
  for (const auto& [k, v] : in.params) {
    if (!is_env_name(k)) {
      return err(Errc::kInvalidArgument,
                 "parameter name '" + k + "': want a shell variable name [A-Za-z_][A-Za-z0-9_]*");
    }
    RETURN_IF_ERROR(check_value(k, v));
    env["OCF_RESKEY_" + k] = v;
  }
  for (const auto& [k, v] : in.meta) {
    if (!is_env_name(k)) {
      return err(Errc::kInvalidArgument,
                 "meta attribute '" + k + "': want a shell variable name [A-Za-z_][A-Za-z0-9_]*");
    }
    RETURN_IF_ERROR(check_value(k, v));
    env["OCF_RESKEY_CRM_meta_" + k] = v;
  }
  // OCF 1.1 §"Global OCF Attributes".
  env["OCF_ROOT"] = in.ocf_root;
  env["OCF_RA_VERSION_MAJOR"] = "1";
  env["OCF_RA_VERSION_MINOR"] = "1";
  env["OCF_RESOURCE_INSTANCE"] = in.resource_id;
  env["OCF_RESOURCE_TYPE"] = in.type;
  env["OCF_RESOURCE_PROVIDER"] = in.provider;
  if (in.check_level >= 0) env["OCF_CHECK_LEVEL"] = std::to_string(in.check_level);
  // Pacemaker's conventions, read by resource-agents (timeout in ms, e.g. nginx, Filesystem).
  env["OCF_RESKEY_CRM_meta_timeout"] = std::to_string(in.timeout_ms);
  env["OCF_RESKEY_CRM_meta_interval"] = std::to_string(in.interval_ms);
  env["OCF_RESKEY_CRM_meta_name"] = std::string(ocf_action_arg(in.action));
  if (!in.node_name.empty()) env["OCF_RESKEY_CRM_meta_on_node"] = in.node_name;
  env["OCF_RESKEY_crm_feature_set"] = std::string(kCrmFeatureSet);
  if (!in.sbin_dir.empty()) env["HA_SBIN_DIR"] = in.sbin_dir;
  if (!in.promotion_file.empty()) env["VIGIL_PROMOTION_FILE"] = in.promotion_file;
  if (!in.rsc_tmp_dir.empty()) env["HA_RSCTMP"] = in.rsc_tmp_dir;
  env["PATH"] = in.path;
  env["LC_ALL"] = "C";
  env["HOME"] = "/";
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::string_view fence_action_name(FenceAction a) {
  return kFenceActionNames[static_cast<size_t>(a)];
}

Result<FenceAction> parse_fence_action(std::string_view name) {
  for (size_t i = 0; i < std::size(kFenceActionNames); ++i) {
    if (kFenceActionNames[i] == name) return static_cast<FenceAction>(i);
  }
  return err(Errc::kInvalidArgument, "unknown fence action '" + std::string(name) +
                                         "' (want off, on, reboot, status, monitor or list)");
}

Result<std::string> build_fence_stdin(FenceAction action,
                                      const std::map<std::string, std::string>& params) {
  std::string out = "action=" + std::string(fence_action_name(action)) + "\n";
  for (const auto& [k, v] : params) {
    if (k.empty() || k.find_first_of("= \t\r\n\v\f") != std::string::npos ||
        k.find('\0') != std::string::npos) {
      return err(Errc::kInvalidArgument,
                 "fence parameter '" + k + "': a name may not be empty or hold '=' or spaces");
    }
    if (k == "action" || k == "option") {
      return err(Errc::kInvalidArgument,
                 "fence parameter '" + k + "': the action is chosen per request, not set");
    }
    if (v.find_first_of("\r\n") != std::string::npos || v.find('\0') != std::string::npos) {
      return err(Errc::kInvalidArgument,
                 "fence parameter '" + k + "': a value may not hold a newline or NUL");
    }
    out += k + "=" + v + "\n";
  }
  return out;
}

std::string_view fence_outcome_name(FenceOutcome o) {
  switch (o) {
    case FenceOutcome::kSuccess:
      return "success";
    case FenceOutcome::kPowerOff:
      return "power-off";
    case FenceOutcome::kFailed:
      return "failed";
  }
  return "?";
}

FenceOutcome fence_outcome_of(FenceAction a, const ExitStatus& st) {
  if (!st.known || !st.exited) return FenceOutcome::kFailed;
  if (st.code == 0) return FenceOutcome::kSuccess;
  if (st.code == 2 && (a == FenceAction::kStatus || a == FenceAction::kMonitor)) {
    return FenceOutcome::kPowerOff;
  }
  return FenceOutcome::kFailed;
}

std::optional<bool> parse_fence_power_status(std::string_view stdout_text) {
  std::optional<bool> out;
  for_each_line(stdout_text, [&](std::string_view line) {
    line = trim(line);
    constexpr std::string_view kPrefix = "Status:";
    if (line.substr(0, kPrefix.size()) != kPrefix) return;
    std::string_view v = trim(line.substr(kPrefix.size()));
    if (v == "ON") out = true;
    if (v == "OFF") out = false;
  });
  return out;
}

std::string parse_exit_reason(std::string_view stderr_text) {
  std::string_view reason;
  constexpr std::string_view kPrefix = "ocf-exit-reason:";
  for_each_line(stderr_text, [&](std::string_view line) {
    if (line.substr(0, kPrefix.size()) == kPrefix) reason = trim(line.substr(kPrefix.size()));
  });
  std::string out(reason.substr(0, kMaxExitReasonBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

void OutputTail::append(std::string_view data) {
  total_ += data.size();
  if (cap_ == 0) return;
  if (data.size() >= cap_) {
    buf_.assign(data.substr(data.size() - cap_));
    return;
  }
  buf_.append(data);
  if (buf_.size() > 2 * cap_) buf_.erase(0, buf_.size() - cap_);
}

std::string OutputTail::str() const {
  if (buf_.size() <= cap_) return buf_;
  return buf_.substr(buf_.size() - cap_);
}

}  // namespace vigil::exec
