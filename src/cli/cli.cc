// The `vigil` command line (CLI11): agent, cert, local-cluster, demo, status, kv.
#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/agent_cmd.h"
#include "cli/client_cmds.h"
#include "cli/cluster_cmds.h"
#include "cli/demo.h"
#include "cli/local_cluster.h"
#include "cli/svc_cmds.h"
#include "cli/vip_demo.h"
#include "daemon/config.h"

namespace vigil::cli {
namespace {

bool check_names(const char* what, const std::vector<std::string>& names) {
  bool ok = true;
  for (const auto& n : names) {
    if (!daemon::is_valid_name(n)) {
      std::fprintf(stderr,
                   "vigil cert: %s \"%s\" must be 1 to 63 characters of a-z, 0-9 and '-', "
                   "starting and ending with a letter or digit\n",
                   what, n.c_str());
      ok = false;
    }
  }
  return ok;
}

// "30s", "10m", "2h", "90" (seconds) → seconds.
Result<int64_t> parse_duration_s(const std::string& s) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    return err(Errc::kInvalidArgument, "want a duration like 30s, 10m or 2h (got \"" + s + "\")");
  }
  std::string unit = s.substr(used);
  int64_t mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (mult == 0 || v <= 0) {
    return err(Errc::kInvalidArgument, "want a duration like 30s, 10m or 2h (got \"" + s + "\")");
  }
  return v * mult;
}

int no_certs() {
  std::fprintf(stderr,
               "vigil cert: this build has no certificate support yet (src/net/certs.h is not "
               "linked); for a loopback trial use: vigil local-cluster --insecure\n");
  return kExitFailure;
}

int cmd_cert_init(const std::string& dir, const std::string& cluster, const CliHooks& hooks) {
  if (!check_names("cluster name", {cluster})) {
    return kExitUsage;
  }
  if (!hooks.cert_init) {
    return no_certs();
  }
  if (Status s = hooks.cert_init(dir, cluster); !s.ok()) {
    std::fprintf(stderr, "vigil cert init: %s\n", s.to_string().c_str());
    return kExitFailure;
  }
  std::printf("cluster CA for \"%s\" written to %s\n", cluster.c_str(), dir.c_str());
  return kExitOk;
}

int cmd_cert_issue(const std::string& dir, const std::vector<std::string>& nodes,
                   const CliHooks& hooks) {
  if (!check_names("node name", nodes)) {
    return kExitUsage;
  }
  if (!hooks.cert_issue) {
    return no_certs();
  }
  for (const auto& node : nodes) {
    if (Status s = hooks.cert_issue(dir, node); !s.ok()) {
      std::fprintf(stderr, "vigil cert issue: %s: %s\n", node.c_str(), s.to_string().c_str());
      return kExitFailure;
    }
    std::printf("certificate for %s written to %s\n", node.c_str(), dir.c_str());
  }
  return kExitOk;
}

}  // namespace

daemon::TlsConfig default_cert_paths(const std::string& dir, const std::string& node) {
  daemon::TlsConfig tls;
  tls.ca_file = dir + "/ca.crt";
  tls.cert_file = dir + "/" + node + ".crt";
  tls.key_file = dir + "/" + node + ".key";
  return tls;
}

int run_cli(int argc, char** argv, const CliHooks& hooks) {
  CLI::App app{"Vigil keeps services available: one agent per node, Raft underneath.", "vigil"};
  app.require_subcommand(1);
  app.footer("Docs: README.md (tour), docs/CONFIG.md (agent config).");

  auto* agent = app.add_subcommand("agent", "Run this node's agent in the foreground");
  std::string config_path;
  bool check_only = false;
  agent->add_option("--config", config_path, "Agent config file (YAML, see docs/CONFIG.md)")
      ->required();
  agent->add_flag("--check-config", check_only,
                  "Only validate the config: print \"config OK\" or every error, and exit");

  auto* cert = app.add_subcommand("cert", "Make the TLS certificates of a cluster");
  cert->require_subcommand(1);
  auto* cert_init = cert->add_subcommand("init", "Create the cluster CA in a directory");
  std::string cert_dir, cluster;
  cert_init->add_option("--dir", cert_dir, "Directory for the CA files")->required();
  cert_init->add_option("--cluster", cluster, "Cluster name (as in the agent configs)")->required();
  auto* cert_issue = cert->add_subcommand("issue", "Issue node certificates from the CA");
  std::vector<std::string> cert_nodes;
  cert_issue->add_option("--dir", cert_dir, "Directory holding the CA")->required();
  cert_issue->add_option("nodes", cert_nodes, "Node names (as in the agent configs)")->required();

  auto* local = app.add_subcommand(
      "local-cluster", "Run N agents on 127.0.0.1 in the foreground, for trials and demos");
  LocalClusterOptions lc;
  local->add_option("--nodes", lc.nodes, "Number of nodes (voters)")->capture_default_str();
  local->add_option("--dir", lc.dir, "Directory for configs, data, certificates and logs")
      ->required();
  local
      ->add_option("--base-port", lc.base_port,
                   "First peer port; API ports start " + std::to_string(kApiPortOffset) + " above")
      ->capture_default_str();
  local->add_option("--cluster", lc.cluster, "Cluster name")->capture_default_str();
  local->add_flag("--insecure", lc.insecure, "No TLS: plain TCP on loopback");

  ClientTarget to = default_client_target();
  bool as_json = false;
  // The options every client command takes: where the agent is and how to prove who we are.
  auto client_options = [&](CLI::App* c) {
    c->add_option("--api", to.api,
                  "Agent API: [https://]HOST:PORT (default $VIGIL_API or 127.0.0.1:7101)");
    c->add_option("--token-file", to.token_file,
                  "File holding a bearer token for the API (default $VIGIL_TOKEN_FILE)");
    c->add_option("--cacert", to.cacert,
                  "CA certificate to verify an https:// agent, e.g. DIR/certs/ca.crt "
                  "(default $VIGIL_CACERT, else the system's CAs)");
    c->add_option("--server-name", to.server_name,
                  "Name the agent's certificate must carry: its node name, like n1 "
                  "(default $VIGIL_SERVER_NAME, else the host of --api)");
    c->add_flag("--tls-skip-host-check", to.skip_host_check,
                "Accept any certificate the CA signed, whatever node it names");
    c->add_flag("--json", as_json, "Print the API's JSON answer");
  };
  auto* status = app.add_subcommand(
      "status", "Show the cluster: nodes, quorum, leader, where every resource runs, failures");
  client_options(status);
  bool status_raft = false;
  int status_watch_s = 0;
  status->add_flag("--raft", status_raft, "Show this node's Raft view instead (term, log)");
  status->add_option("--watch", status_watch_s, "Refresh every N seconds until Ctrl-C")
      ->expected(0, 1)
      ->default_str("2");

  // vigil apply / explain / resource (docs/CONFIG.md "Cluster definition").
  auto* apply = app.add_subcommand(
      "apply", "Validate and apply a cluster definition (declarative: unlisted is removed)");
  client_options(apply);
  std::string apply_file;
  bool apply_dry = false;
  apply->add_option("-f,--file", apply_file, "The cluster definition (YAML)")->required();
  apply->add_flag("--dry-run", apply_dry, "Print the changes and the plan; change nothing");
  auto* explain = app.add_subcommand(
      "explain", "Why RESOURCE runs where it runs, or nowhere: scores per node and their terms");
  client_options(explain);
  std::string explain_res;
  explain->add_option("resource", explain_res, "Resource, group or clone")->required();
  auto* resource = app.add_subcommand(
      "resource", "Move, ban, clear, clean up, restart, enable or disable a resource");
  resource->require_subcommand(1);
  ResourceOpOptions rop;
  std::string lifetime;
  for (const char* verb : {"move", "ban", "clear", "cleanup", "restart", "enable", "disable"}) {
    const std::map<std::string, std::string> help = {
        {"move", "Move NAME to NODE now (waits for the result)"},
        {"ban", "Keep NAME off NODE"},
        {"clear", "Remove the moves and bans of NAME"},
        {"cleanup", "Forget NAME's failures (on NODE, or everywhere)"},
        {"restart", "Stop and start NAME where it runs (a group: each member)"},
        {"enable", "Let NAME run again after disable"},
        {"disable", "Stop NAME everywhere (target role stopped) until enable"}};
    auto* c = resource->add_subcommand(verb, help.at(verb));
    client_options(c);
    c->add_option("name", rop.resource, "Resource, group or clone")->required();
    if (std::string(verb) != "move" && std::string(verb) != "ban" &&
        std::string(verb) != "cleanup") {
      continue;
    }
    auto* node = c->add_option("node", rop.node, "Node");
    if (std::string(verb) == "move" || std::string(verb) == "ban") {
      node->required();
      c->add_option("--lifetime", lifetime, "The constraint ends by itself: 30s, 10m, 2h");
    }
    if (std::string(verb) == "move") {
      c->add_option("--wait", rop.wait_ms, "How long to wait for the result (ms)")
          ->capture_default_str();
    }
  }
  auto* node_cmd = app.add_subcommand("node", "Put a node in standby or maintenance, or back");
  node_cmd->require_subcommand(1);
  std::string node_name;
  for (const char* verb : {"standby", "unstandby", "maintenance", "unmaintenance"}) {
    const std::map<std::string, std::string> help = {
        {"standby", "NODE runs nothing: its resources move elsewhere"},
        {"unstandby", "NODE may run resources again"},
        {"maintenance", "Leave what runs on NODE alone: nothing started, stopped or monitored"},
        {"unmaintenance", "End maintenance: NODE's resources are managed again"}};
    auto* c = node_cmd->add_subcommand(verb, help.at(verb));
    client_options(c);
    c->add_option("name", node_name, "Node")->required();
  }
  auto* events = app.add_subcommand(
      "events", "What happened: nodes lost, resources started, failed, moved, with timings");
  client_options(events);
  int events_limit = 50;
  bool events_follow = false;
  events->add_option("-n,--limit", events_limit, "How many of the newest to show")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  events->add_flag("-f,--follow", events_follow, "Then print new events as they happen");
  auto* kv = app.add_subcommand("kv", "Read and write keys in the replicated store");
  kv->require_subcommand(1);
  std::string kv_key, kv_value;
  bool serializable = false;
  auto* kv_put = kv->add_subcommand("put", "Set KEY to VALUE (acknowledged once committed)");
  auto* kv_get = kv->add_subcommand("get", "Print KEY's value (exit 3 if it does not exist)");
  auto* kv_del = kv->add_subcommand("del", "Delete KEY");
  auto* kv_watch = kv->add_subcommand("watch", "Print changes to KEY as they commit (Ctrl-C ends)");
  bool watch_prefix = false;
  int64_t watch_rev = 0;
  kv_watch->add_flag("--prefix", watch_prefix, "Watch every key starting with KEY");
  kv_watch->add_option("--rev", watch_rev, "Replay history from this revision first");
  auto* kv_txn = kv->add_subcommand(
      "txn", "Run a transaction from JSON (stdin or --file; exit 4 if its compares failed)");
  std::string txn_file;
  kv_txn->add_option("--file,-f", txn_file, "JSON file (default: stdin)");
  client_options(kv_txn);
  auto* lease = app.add_subcommand("lease", "Grant, renew, inspect and revoke leases");
  lease->require_subcommand(1);
  int64_t lease_arg = 0;
  bool lease_once = false;
  auto* lease_grant = lease->add_subcommand("grant", "Grant a lease of TTL seconds");
  auto* lease_ttl = lease->add_subcommand("ttl", "Show a lease: TTL, time left, keys");
  auto* lease_revoke = lease->add_subcommand("revoke", "Revoke a lease (its keys are deleted)");
  auto* lease_keep = lease->add_subcommand("keepalive", "Renew a lease every TTL/3 until Ctrl-C");
  lease_keep->add_flag("--once", lease_once, "Renew once and exit");
  lease_grant->add_option("ttl", lease_arg, "TTL in seconds")->required();
  for (auto* c : {lease_ttl, lease_revoke, lease_keep}) {
    c->add_option("id", lease_arg, "Lease id")->required();
  }
  for (auto* c : {lease_grant, lease_ttl, lease_revoke, lease_keep}) client_options(c);
  for (auto* c : {kv_put, kv_get, kv_del, kv_watch}) {
    client_options(c);
    c->add_option("key", kv_key, "Key")->required();
  }
  kv_put->add_option("value", kv_value, "Value")->required();
  kv_get->add_flag("--serializable", serializable,
                   "Answer from this node's state without a quorum round (may be stale)");

  HoldOptions hold;
  auto* elect = app.add_subcommand(
      "elect",
      "Campaign for leadership of NAME, then run CMD while leader (vigil elect web -- cmd)");
  auto* lockc = app.add_subcommand(
      "lock", "Take the lock NAME (FIFO), run CMD while held, release it (vigil lock db -- cmd)");
  for (auto* c : {elect, lockc}) {
    client_options(c);
    c->add_option("--ttl", hold.ttl_s, "Lease TTL in seconds: how fast a crash frees it")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    c->add_option("name", hold.name, "Election or lock name")->required();
    c->add_option("command", hold.command, "Command to run while held (after --)");
  }
  elect->add_option("--value", hold.value, "Value others see for the leader (e.g. address)");

  // vigil svc register|list|deregister|watch (docs/API.md "Service registry").
  auto* svc = app.add_subcommand("svc", "Register, list and watch service instances");
  svc->require_subcommand(1);
  SvcRegisterOptions sro;
  bool svc_healthy = false;
  auto* svc_reg = svc->add_subcommand(
      "register",
      "Register an instance; with --ttl keep its lease alive until Ctrl-C, then deregister");
  auto* svc_list = svc->add_subcommand("list", "List instances (exit 3 if none)");
  auto* svc_dereg = svc->add_subcommand("deregister", "Remove an instance (exit 3 if unknown)");
  auto* svc_watch =
      svc->add_subcommand("watch", "Print the healthy instances whenever they change (Ctrl-C)");
  for (auto* c : {svc_reg, svc_list, svc_dereg, svc_watch}) {
    client_options(c);
    c->add_option("service", sro.service, "Service name")->required();
  }
  svc_dereg->add_option("id", sro.id, "Instance id")->required();
  svc_reg->add_option("--id", sro.id, "Instance id (unique in the service)")->required();
  svc_reg->add_option("--address", sro.address, "Address clients connect to")->required();
  svc_reg->add_option("--port", sro.port, "Port clients connect to")
      ->required()
      ->check(CLI::Range(1, 65535));
  svc_reg->add_option("--meta", sro.meta, "Metadata KEY=VALUE (repeatable)");
  svc_reg->add_option("--ttl", sro.ttl_s, "Lease TTL in seconds; stay in the foreground");
  svc_reg->add_option("--lease", sro.lease, "Attach to an existing lease and return at once");
  svc_reg->add_option("--check-tcp", sro.check_tcp, "Health check: TCP connect to HOST:PORT");
  svc_reg->add_option("--check-http", sro.check_http,
                      "Health check: GET http://HOST[:PORT]/PATH wants 2xx");
  svc_reg->add_option("--interval-ms", sro.interval_ms, "Check interval (agent default 10000)");
  svc_reg->add_option("--timeout-ms", sro.timeout_ms, "Check timeout (agent default 2000)");
  svc_reg->add_option("--rise", sro.rise, "Successes to become healthy (agent default 2)");
  svc_reg->add_option("--fall", sro.fall, "Failures to become unhealthy (agent default 3)");
  svc_list->add_flag("--healthy", svc_healthy, "Only healthy instances");

  auto* demo = app.add_subcommand(
      "demo",
      "Show failover: a virtual IP in front of nginx on 3 machines in network namespaces "
      "(root), a fault, the outage a client saw; --store: a leader crash on loopback");
  DemoOptions dopt;
  VipDemoOptions vopt;
  bool store_demo = false;
  std::string fault = "node";
  demo->add_flag("--store", store_demo,
                 "The loopback demo instead (no root): 3 agents on 127.0.0.1, the leader killed, "
                 "no acknowledged write lost");
  demo->add_option("--fault", fault, "What to break: node, service, partition or leader")
      ->check(CLI::IsMember({"node", "service", "partition", "leader"}))
      ->capture_default_str();
  demo->add_option("--dir", dopt.dir, "--store: working directory (default /tmp/vigil-demo)");
  demo->add_option("--nodes", dopt.nodes, "--store: number of agents")->capture_default_str();
  demo->add_option("--writes", dopt.writes, "--store: writes before the crash")
      ->capture_default_str();
  bool keep = false;
  demo->add_flag("--keep", keep, "Keep configs, data and logs afterwards");
  bool script = false;
  demo->add_flag("--script", script,
                 "Non-interactive: no countdowns, print the figures, exit 0 only if failover "
                 "met the target (and, --store, nothing was lost)");
  int target_ms = 0;
  demo->add_option("--target-ms", target_ms,
                   "Failover target in ms (default: a follower holder's machine 600, the "
                   "leader's 1000, service 300, partition 1500; --store 1000)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (agent->parsed()) {
    // The `vigil` binary hands the node to `vigil-agent` (daemon/main.cc): the running node
    // does not carry the command line's code.
    if (hooks.exec_agent) return hooks.exec_agent(config_path, check_only);
    return agent_command(config_path, check_only, hooks);
  }
  if (cert_init->parsed()) {
    return cmd_cert_init(cert_dir, cluster, hooks);
  }
  if (cert_issue->parsed()) {
    return cmd_cert_issue(cert_dir, cert_nodes, hooks);
  }
  if (local->parsed()) {
    return run_local_cluster(lc, hooks);
  }
  if (status->parsed()) {
    if (status_raft) return cmd_status(to, as_json);
    int watch_ms = status->count("--watch") ? std::max(1, status_watch_s) * 1000 : 0;
    return cmd_cluster_status(to, as_json, watch_ms);
  }
  if (apply->parsed()) return cmd_apply(to, apply_file, apply_dry, as_json);
  if (explain->parsed()) return cmd_explain(to, explain_res, as_json);
  for (auto* c : resource->get_subcommands()) {
    if (!c->parsed()) continue;
    rop.op = c->get_name();
    if (!lifetime.empty()) {
      auto s = parse_duration_s(lifetime);
      if (!s) {
        std::fprintf(stderr, "vigil resource %s: --lifetime: %s\n", rop.op.c_str(),
                     s.error().message().c_str());
        return kExitUsage;
      }
      rop.lifetime_s = *s;
    }
    return cmd_resource(to, rop, as_json);
  }
  for (auto* c : node_cmd->get_subcommands()) {
    if (c->parsed()) return cmd_node(to, c->get_name(), node_name, as_json);
  }
  if (events->parsed()) return cmd_events(to, events_limit, events_follow, as_json);
  if (kv_put->parsed()) {
    return cmd_kv_put(to, kv_key, kv_value, as_json);
  }
  if (kv_get->parsed()) {
    return cmd_kv_get(to, kv_key, serializable, as_json);
  }
  if (kv_txn->parsed()) {
    return cmd_kv_txn(to, txn_file, as_json);
  }
  for (auto* c : {lease_grant, lease_ttl, lease_revoke, lease_keep}) {
    if (c->parsed()) return cmd_lease(to, c->get_name(), lease_arg, lease_once, as_json);
  }
  if (kv_watch->parsed()) {
    return cmd_kv_watch(to, kv_key, watch_prefix, watch_rev, as_json);
  }
  if (kv_del->parsed()) {
    return cmd_kv_del(to, kv_key, as_json);
  }
  if (elect->parsed() || lockc->parsed()) {
    if (lockc->parsed() && hold.command.empty()) {
      std::fprintf(stderr,
                   "vigil lock: give the command to run while the lock is held: "
                   "vigil lock NAME -- CMD ARGS...\n");
      return kExitUsage;
    }
    return cmd_hold(to, hold, lockc->parsed());
  }
  if (svc_reg->parsed()) {
    return cmd_svc_register(to, sro, as_json);
  }
  if (svc_list->parsed()) {
    return cmd_svc_list(to, sro.service, svc_healthy, as_json);
  }
  if (svc_dereg->parsed()) {
    return cmd_svc_deregister(to, sro.service, sro.id, as_json);
  }
  if (svc_watch->parsed()) {
    return cmd_svc_watch(to, sro.service, as_json);
  }
  if (demo->parsed()) {
    if (store_demo) {
      // The loopback demo is non-interactive: --script only documents its exit codes.
      dopt.keep = keep;
      if (target_ms > 0) dopt.failover_target_ms = target_ms;
      return run_demo(dopt, hooks);
    }
    vopt.script = script;
    vopt.keep = keep;
    vopt.target_ms = target_ms;
    vopt.fault = fault == "service"     ? DemoFault::kService
                 : fault == "partition" ? DemoFault::kPartition
                 : fault == "leader"    ? DemoFault::kLeader
                                        : DemoFault::kNode;
    return run_vip_demo(vopt);
  }
  std::fprintf(stderr, "vigil: no command given; try vigil --help\n");
  return kExitUsage;
}

}  // namespace vigil::cli
