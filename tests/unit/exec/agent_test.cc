// Tests of the pure part of src/exec: agent names, code mappings, environments, fence
// stdin, output parsers and the bounded output tail.
#include "exec/agent.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>

namespace vigil::exec {
namespace {

TEST(AgentName, ParsesEveryClass) {
  auto ocf = parse_agent_name("ocf:heartbeat:Dummy");
  ASSERT_TRUE(ocf) << ocf.error().to_string();
  EXPECT_EQ(ocf->agent_class, AgentClass::kOcf);
  EXPECT_EQ(ocf->provider, "heartbeat");
  EXPECT_EQ(ocf->type, "Dummy");
  EXPECT_EQ(ocf->to_string(), "ocf:heartbeat:Dummy");

  auto lsb = parse_agent_name("lsb:foo");
  ASSERT_TRUE(lsb);
  EXPECT_EQ(lsb->agent_class, AgentClass::kLsb);
  EXPECT_EQ(lsb->type, "foo");

  auto sd = parse_agent_name("systemd:nginx.service");
  ASSERT_TRUE(sd);
  EXPECT_EQ(sd->agent_class, AgentClass::kSystemd);
  EXPECT_EQ(sd->type, "nginx.service");

  auto proc = parse_agent_name("process");
  ASSERT_TRUE(proc);
  EXPECT_EQ(proc->agent_class, AgentClass::kProcess);
  EXPECT_EQ(proc->to_string(), "process");

  auto fence = parse_agent_name("fence:fence_ipmilan");
  ASSERT_TRUE(fence);
  EXPECT_EQ(fence->agent_class, AgentClass::kFence);

  auto vip = parse_agent_name("vip");
  ASSERT_TRUE(vip);
  EXPECT_EQ(vip->agent_class, AgentClass::kExtension);
  EXPECT_EQ(vip->class_name, "vip");
}

TEST(AgentName, RejectsNamesThatEscapeTheirDirectory) {
  for (const char* bad : {"ocf:heartbeat", "ocf::Dummy", "ocf:heartbeat:", "ocf:../x:Dummy",
                          "ocf:heartbeat:../../bin/sh", "lsb:", "lsb:a/b", "lsb:..", "process:x",
                          "Bad Class:x", "", "ocf:a:b:c"}) {
    auto r = parse_agent_name(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    }
  }
}

TEST(Action, NamesRoundTripAndProbeIsMonitor) {
  for (int i = 0; i <= static_cast<int>(Action::kReload); ++i) {
    auto a = static_cast<Action>(i);
    auto back = parse_action(action_name(a));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, a);
  }
  EXPECT_EQ(ocf_action_arg(Action::kProbe), "monitor");
  EXPECT_EQ(ocf_action_arg(Action::kMetaData), "meta-data");
  EXPECT_FALSE(parse_action("restart"));
}

ExitStatus exited(int code) {
  ExitStatus st;
  st.known = true;
  st.exited = true;
  st.code = code;
  return st;
}

TEST(OcfCodes, EveryOcf11CodeMapsToItsOutcome) {
  std::string note;
  struct Case {
    int code;
    OcfCode ocf;
    Outcome outcome;
    const char* name;
  };
  for (const Case& c :
       {Case{0, OcfCode::kSuccess, Outcome::kSuccess, "OCF_SUCCESS"},
        Case{1, OcfCode::kErrGeneric, Outcome::kSoftError, "OCF_ERR_GENERIC"},
        Case{2, OcfCode::kErrArgs, Outcome::kHardError, "OCF_ERR_ARGS"},
        Case{3, OcfCode::kErrUnimplemented, Outcome::kHardError, "OCF_ERR_UNIMPLEMENTED"},
        Case{4, OcfCode::kErrPerm, Outcome::kHardError, "OCF_ERR_PERM"},
        Case{5, OcfCode::kErrInstalled, Outcome::kHardError, "OCF_ERR_INSTALLED"},
        Case{6, OcfCode::kErrConfigured, Outcome::kFatalError, "OCF_ERR_CONFIGURED"},
        Case{7, OcfCode::kNotRunning, Outcome::kNotRunning, "OCF_NOT_RUNNING"},
        Case{8, OcfCode::kRunningPromoted, Outcome::kPromoted, "OCF_RUNNING_PROMOTED"},
        Case{9, OcfCode::kFailedPromoted, Outcome::kSoftError, "OCF_FAILED_PROMOTED"},
        Case{190, OcfCode::kDegraded, Outcome::kSuccess, "OCF_DEGRADED"},
        Case{191, OcfCode::kDegradedPromoted, Outcome::kPromoted, "OCF_DEGRADED_PROMOTED"}}) {
    OcfCode got = ocf_code_from_exit(exited(c.code), &note);
    EXPECT_EQ(got, c.ocf) << c.code;
    EXPECT_EQ(outcome_of(got), c.outcome) << c.code;
    EXPECT_EQ(ocf_code_name(got), c.name);
  }
}

TEST(OcfCodes, SignalsAndUndefinedCodesAreGenericErrorsWithANote) {
  std::string note;
  EXPECT_EQ(ocf_code_from_exit(exited(42), &note), OcfCode::kErrGeneric);
  EXPECT_NE(note.find("42"), std::string::npos);
  ExitStatus killed = exit_status_from_wait(SIGKILL);  // WIFSIGNALED encoding
  ASSERT_TRUE(killed.known);
  EXPECT_FALSE(killed.exited);
  EXPECT_EQ(killed.signal, SIGKILL);
  EXPECT_EQ(ocf_code_from_exit(killed, &note), OcfCode::kErrGeneric);
  EXPECT_EQ(note, "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(ocf_code_from_exit(ExitStatus{}, &note), OcfCode::kErrGeneric);
  EXPECT_EQ(note, "exit status unknown");
}

TEST(LsbStatus, MapsToOcf) {
  std::string note;
  EXPECT_EQ(ocf_code_from_lsb_status(exited(0), &note), OcfCode::kSuccess);
  EXPECT_EQ(ocf_code_from_lsb_status(exited(1), &note), OcfCode::kErrGeneric);
  EXPECT_NE(note.find("pid file"), std::string::npos);
  EXPECT_EQ(ocf_code_from_lsb_status(exited(2), &note), OcfCode::kErrGeneric);
  EXPECT_EQ(ocf_code_from_lsb_status(exited(3), &note), OcfCode::kNotRunning);
  EXPECT_EQ(ocf_code_from_lsb_status(exited(4), &note), OcfCode::kErrGeneric);
  EXPECT_EQ(ocf_code_from_lsb_status(exited(150), &note), OcfCode::kErrGeneric);
}

bool has(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}

TEST(OcfEnv, HoldsTheOcfAndCrmMetaVariables) {
  OcfEnvInput in;
  in.ocf_root = "/usr/lib/ocf";
  in.resource_id = "web";
  in.provider = "heartbeat";
  in.type = "nginx";
  in.params = {{"configfile", "/etc/nginx/nginx.conf"}, {"port", "8080"}};
  in.meta = {{"clone", "0"}};
  in.action = Action::kProbe;
  in.timeout_ms = 20000;
  in.check_level = 10;
  in.node_name = "n1";
  in.path = "/usr/bin:/bin";
  auto env = build_ocf_env(in);
  ASSERT_TRUE(env) << env.error().to_string();
  for (const char* kv :
       {"OCF_ROOT=/usr/lib/ocf", "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=1",
        "OCF_RESOURCE_INSTANCE=web", "OCF_RESOURCE_TYPE=nginx", "OCF_RESOURCE_PROVIDER=heartbeat",
        "OCF_RESKEY_configfile=/etc/nginx/nginx.conf", "OCF_RESKEY_port=8080",
        "OCF_RESKEY_CRM_meta_timeout=20000", "OCF_RESKEY_CRM_meta_interval=0",
        "OCF_RESKEY_CRM_meta_name=monitor", "OCF_RESKEY_CRM_meta_on_node=n1",
        "OCF_RESKEY_CRM_meta_clone=0", "OCF_CHECK_LEVEL=10", "PATH=/usr/bin:/bin"}) {
    EXPECT_TRUE(has(*env, kv)) << kv;
  }
  EXPECT_TRUE(std::is_sorted(env->begin(), env->end()));
  // Nothing of the caller's environment.
  for (const auto& kv : *env) EXPECT_NE(kv.rfind("LD_", 0), 0u) << kv;
}

TEST(OcfEnv, PromotionShimsAndResourceTmpWhenGiven) {
  OcfEnvInput in;
  in.resource_id = "db";
  auto env = build_ocf_env(in);
  ASSERT_TRUE(env);
  EXPECT_TRUE(has(*env, "OCF_RESKEY_crm_feature_set=3.16.2"));
  for (const auto& kv : *env) {
    EXPECT_NE(kv.rfind("HA_SBIN_DIR=", 0), 0u) << kv;  // not set: the agents' default
    EXPECT_NE(kv.rfind("HA_RSCTMP=", 0), 0u) << kv;
  }
  in.sbin_dir = "/var/lib/vigil/bin";
  in.promotion_file = "/var/lib/vigil/promotion/db";
  in.rsc_tmp_dir = "/run/resource-agents/n1";
  env = build_ocf_env(in);
  ASSERT_TRUE(env);
  EXPECT_TRUE(has(*env, "HA_SBIN_DIR=/var/lib/vigil/bin"));
  EXPECT_TRUE(has(*env, "VIGIL_PROMOTION_FILE=/var/lib/vigil/promotion/db"));
  EXPECT_TRUE(has(*env, "HA_RSCTMP=/run/resource-agents/n1"));
}

TEST(OcfEnv, RefusesParameterNamesThatAreNotShellVariables) {
  OcfEnvInput in;
  in.params = {{"bad-name", "x"}};
  auto env = build_ocf_env(in);
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().message().find("bad-name"), std::string::npos);
  in.params = {{"1x", "x"}};
  EXPECT_FALSE(build_ocf_env(in));
  in.params = {{"ok", std::string("a\0b", 3)}};
  EXPECT_FALSE(build_ocf_env(in));
}

TEST(FenceStdin, IsKeyValueLinesWithTheActionFirst) {
  auto in = build_fence_stdin(FenceAction::kReboot, {{"plug", "3"}, {"ipaddr", "10.0.0.9"}});
  ASSERT_TRUE(in) << in.error().to_string();
  EXPECT_EQ(*in, "action=reboot\nipaddr=10.0.0.9\nplug=3\n");
  EXPECT_FALSE(build_fence_stdin(FenceAction::kOff, {{"plug", "3\naction=on"}}));
  EXPECT_FALSE(build_fence_stdin(FenceAction::kOff, {{"a b", "1"}}));
  EXPECT_FALSE(build_fence_stdin(FenceAction::kOff, {{"k=v", "1"}}));
  EXPECT_FALSE(build_fence_stdin(FenceAction::kOff, {{"action", "on"}}));
  EXPECT_FALSE(build_fence_stdin(FenceAction::kOff, {{"", "1"}}));
}

TEST(FenceOutcome, FollowsTheFenceAgentApi) {
  EXPECT_EQ(fence_outcome_of(FenceAction::kOff, exited(0)), FenceOutcome::kSuccess);
  EXPECT_EQ(fence_outcome_of(FenceAction::kOff, exited(1)), FenceOutcome::kFailed);
  EXPECT_EQ(fence_outcome_of(FenceAction::kOff, exited(2)), FenceOutcome::kFailed);
  EXPECT_EQ(fence_outcome_of(FenceAction::kStatus, exited(2)), FenceOutcome::kPowerOff);
  EXPECT_EQ(fence_outcome_of(FenceAction::kMonitor, exited(2)), FenceOutcome::kPowerOff);
  EXPECT_EQ(fence_outcome_of(FenceAction::kStatus, exited(1)), FenceOutcome::kFailed);
  EXPECT_EQ(fence_outcome_of(FenceAction::kReboot, ExitStatus{}), FenceOutcome::kFailed);
  for (auto a : {FenceAction::kOff, FenceAction::kOn, FenceAction::kReboot, FenceAction::kStatus,
                 FenceAction::kMonitor, FenceAction::kList}) {
    auto back = parse_fence_action(fence_action_name(a));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, a);
  }
}

TEST(Parsers, FencePowerStatusAndExitReason) {
  EXPECT_EQ(parse_fence_power_status("Status: ON\n"), std::optional<bool>(true));
  EXPECT_EQ(parse_fence_power_status("x\n  Status: OFF\r\n"), std::optional<bool>(false));
  EXPECT_EQ(parse_fence_power_status("Status: MAYBE\n"), std::nullopt);
  EXPECT_EQ(parse_fence_power_status(""), std::nullopt);
  EXPECT_EQ(parse_exit_reason("INFO: x\nocf-exit-reason:No process state file found\n"),
            "No process state file found");
  EXPECT_EQ(parse_exit_reason("ocf-exit-reason:first\nocf-exit-reason: second \n"), "second");
  EXPECT_EQ(parse_exit_reason("no reason here"), "");
  EXPECT_EQ(parse_exit_reason("ocf-exit-reason:" + std::string(5000, 'x')).size(),
            kMaxExitReasonBytes);
}

TEST(OutputTail, KeepsTheLastBytesAndStaysBounded) {
  OutputTail t(8);
  t.append("abc");
  EXPECT_EQ(t.str(), "abc");
  EXPECT_FALSE(t.truncated());
  for (int i = 0; i < 1000; ++i) t.append("0123456789");
  EXPECT_EQ(t.str(), "23456789");
  EXPECT_TRUE(t.truncated());
  EXPECT_EQ(t.total_bytes(), 3u + 10000u);
  t.append(std::string(100, 'z') + "END");
  EXPECT_EQ(t.str(), "zzzzzEND");
}

TEST(SafeName, AllowsResourceIdsOnly) {
  EXPECT_TRUE(is_safe_name("web-1"));
  EXPECT_TRUE(is_safe_name("db:primary@n1"));
  EXPECT_FALSE(is_safe_name(""));
  EXPECT_FALSE(is_safe_name(".."));
  EXPECT_FALSE(is_safe_name("a/b"));
  EXPECT_FALSE(is_safe_name("a b"));
  EXPECT_FALSE(is_safe_name(std::string(129, 'a')));
}

}  // namespace
}  // namespace vigil::exec
