// ClusterService: definition, coordinator and executor of the resource manager.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "daemon/cluster_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "api/request.h"
#include "api/store_json.h"
#include "exec/runner.h"
#include "net/vip.h"
#include "net/vip_guard.h"
#include "sched/io/case_yaml.h"
#include "sched/plan.h"
#include "sched/render.h"
#include "store/keys.h"

namespace vigil::daemon {
namespace {

namespace asio = boost::asio;
using api::error_response;
using api::json;
using cluster::ClusterSnapshot;
using cluster::NodeState;
using cluster::Role;
using sched::Assignment;
using sched::NodeResource;
using sched::Reported;

constexpr int64_t kRepublishMs = 500;
constexpr int64_t kReplanMs = 100;
constexpr int64_t kEditRepeatMs = 1000;
// A proposed assignment edit not seen committed after this long was lost (PendingEdits).
constexpr int64_t kPendingEditMs = 3000;
constexpr int kDefaultStartTimeoutMs = 20000;
constexpr int kDefaultStopTimeoutMs = 20000;
constexpr int kDefaultMonitorTimeoutMs = 20000;
constexpr size_t kMaxMessageBytes = 512;
constexpr int64_t kFenceRetryMs = 5000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The clock holds are reckoned on (CLOCK_MONOTONIC: what the agent's stamps use).
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<store::KeyValue> scan(const store::MvccStore& s, std::string_view prefix) {
  std::string p(prefix);
  auto r = s.range(p, store::prefix_end(p));
  if (!r) return {};
  return std::move(r->kvs);
}

// "NODE/RES" after `prefix` → (node, resource); false when malformed.
bool split_node_resource(std::string_view key, std::string_view prefix, NodeResource* out) {
  std::string_view rest = key.substr(prefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= rest.size()) return false;
  out->first = std::string(rest.substr(0, slash));
  out->second = std::string(rest.substr(slash + 1));
  return true;
}

std::string role_str(Role r) { return std::string(cluster::role_name(r)); }
Role role_of(const json& j, std::string_view key) {
  if (!j.contains(key) || !j[key].is_string()) return Role::kStarted;
  auto r = cluster::parse_role(j[key].get<std::string>());
  return r ? *r : Role::kStarted;
}

// An assignment's clone copies on its node (1 unless "copies" says more), at most
// kMaxCopies: a record that asks for more is not believed past that.
constexpr int64_t kMaxCopies = 1024;
int64_t copies_of(const json& j) {
  if (!j.is_object() || !j.contains("copies") || !j["copies"].is_number_integer()) return 1;
  return std::clamp<int64_t>(j["copies"].get<int64_t>(), 1, kMaxCopies);
}

// The part of a resource the executor needs, as the assignment carries it: the node runs
// what it was assigned even after the definition changed or dropped the resource.
// `restart` is the generation of the last restart request (0: none): a running copy whose
// generation differs restarts.
json spec_json(const cluster::Resource& r, int64_t restart = 0) {
  json ops = json::array();
  for (const auto& o : r.operations) {
    ops.push_back({{"name", o.name}, {"interval_ms", o.interval_ms}, {"timeout_ms", o.timeout_ms}});
  }
  json j{{"agent", r.agent}, {"params", r.params}, {"ops", ops}, {"exclusive", r.meta.exclusive}};
  if (restart != 0) j["restart"] = restart;
  return j;
}

// Whether a running copy of `from` must restart to become `to` (cluster::needs_restart on
// the spec as assignments carry it, plus restart requests).
bool spec_needs_restart(const json& from, const json& to) {
  auto get = [](const json& j, const char* k) { return j.contains(k) ? j[k] : json(); };
  return get(from, "agent") != get(to, "agent") || get(from, "params") != get(to, "params") ||
         get(from, "restart") != get(to, "restart");
}

// What one action of a spec needs: the timeout, and for monitor its interval.
struct OpTimes {
  int start_timeout_ms = kDefaultStartTimeoutMs;
  int stop_timeout_ms = kDefaultStopTimeoutMs;
  int monitor_timeout_ms = kDefaultMonitorTimeoutMs;
  int monitor_interval_ms = 0;
  int promote_timeout_ms = kDefaultStartTimeoutMs;
  int demote_timeout_ms = kDefaultStopTimeoutMs;
};

// Splits a command line on blanks (no quoting: documented in CONFIG.md).
std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

struct ParsedSpec {
  exec::ResourceSpec spec;
  OpTimes times;
  bool exclusive = false;
};

Result<ParsedSpec> parse_spec(const std::string& id, const json& j) {
  if (!j.is_object() || !j.contains("agent") || !j["agent"].is_string()) {
    return err(Errc::kInvalidArgument, "resource " + id + ": assignment without an agent");
  }
  ParsedSpec p;
  p.spec.id = id;
  auto agent = exec::parse_agent_name(j["agent"].get<std::string>());
  if (!agent) return ErrorValue{agent.error()};
  p.spec.agent = *agent;
  if (j.contains("params") && j["params"].is_object()) {
    for (const auto& [k, v] : j["params"].items()) {
      if (v.is_string()) p.spec.params[k] = v.get<std::string>();
    }
  }
  if (p.spec.agent.agent_class == exec::AgentClass::kProcess) {
    p.spec.process.argv = split_words(p.spec.params["command"]);
    if (p.spec.process.argv.empty()) {
      return err(Errc::kInvalidArgument, "resource " + id + ": process needs params.command");
    }
    if (auto it = p.spec.params.find("output"); it != p.spec.params.end()) {
      p.spec.process.output_path = it->second;
    }
    if (auto it = p.spec.params.find("cwd"); it != p.spec.params.end()) {
      p.spec.process.cwd = it->second;
    }
    p.spec.params.clear();
  }
  p.exclusive = j.value("exclusive", false);
  // An exclusive process dies with its agent: with the agent gone its node cannot hold the
  // hold, and the copy would run on while the leader recovers it elsewhere.
  p.spec.process.die_with_agent = p.exclusive;
  // An exclusive VIP goes with its agent too, and with its hold if the agent hangs.
  p.spec.guard_vip = p.exclusive;
  if (j.contains("ops") && j["ops"].is_array()) {
    for (const auto& o : j["ops"]) {
      std::string name = o.value("name", "");
      int timeout = static_cast<int>(o.value("timeout_ms", int64_t{20000}));
      if (timeout <= 0 || timeout > exec::kMaxTimeoutMs) timeout = 20000;
      if (name == "start") p.times.start_timeout_ms = timeout;
      if (name == "stop") p.times.stop_timeout_ms = timeout;
      if (name == "promote") p.times.promote_timeout_ms = timeout;
      if (name == "demote") p.times.demote_timeout_ms = timeout;
      if (name == "monitor" && p.times.monitor_interval_ms == 0) {
        p.times.monitor_timeout_ms = timeout;
        p.times.monitor_interval_ms = static_cast<int>(o.value("interval_ms", int64_t{0}));
      }
    }
  }
  return p;
}

std::string truncate(std::string s) {
  if (s.size() > kMaxMessageBytes) s.resize(kMaxMessageBytes);
  return s;
}

// A definition with every agent class's own parameter rules applied: a vip whose params the
// driver would refuse is refused by `vigil apply`, with its line, before anything changes.
Result<ClusterSnapshot> parse_definition(std::string_view text, std::string_view file) {
  return sched::parse_cluster_yaml(text, file, [](const cluster::Resource& r) -> Status {
    if (r.agent != "vip") return Status();
    auto p = net::parse_vip_params(r.params);
    return p ? Status() : p.error();
  });
}

bool is_member(const std::vector<std::string>& members, const std::string& n) {
  return std::find(members.begin(), members.end(), n) != members.end();
}

}  // namespace

class ClusterService::Impl {
 public:
  Impl(asio::io_context& io, StoreService& store, ClusterHost& host, ClusterServiceOptions o)
      : io_(io), store_(store), host_(host), opt_(std::move(o)), runner_(io, runner_options()) {
    runner_.set_exit_handler([this](const exec::ProcessExit& e) { on_process_exit(e); });
    // OCF agents set promotion scores with crm_attribute -p / crm_master: Vigil's shims.
    const exec::AgentRunner::Options ro = runner_options();
    std::error_code ec;
    std::filesystem::create_directories(ro.promotion_dir, ec);
    if (!ro.rsc_tmp_dir.empty()) std::filesystem::create_directories(ro.rsc_tmp_dir, ec);
    if (Status s = exec::write_promotion_shims(ro.sbin_dir); !s.ok()) {
      spdlog::warn("{}: promotion scores of OCF agents will not be seen: {}", opt_.node,
                   s.to_string());
    }
    runner_.register_class("vip", vip_driver_);
    vip_driver_->enable_guard("/proc/self/exe");
    remove_old_stop_recipes();
  }

  ~Impl() {
    alive_ = std::make_shared<bool>(false);
    deadline_timer_.cancel();
    for (auto& [id, l] : local_) {
      if (l.monitor) l.monitor->cancel();
    }
  }

  // ------------------------------------------------------------------------ HTTP
  bool handle(const api::HttpRequest& req, const api::Responder& respond, int64_t now_ms) {
    api::Target t = api::split_target(req.target);
    std::string_view path = t.path;
    const bool serializable = api::query_flag(t.query, "serializable");
    if (path == "/v1/cluster") {
      if (req.method == "GET") {
        store_.read(serializable, respond, now_ms, [this] {
          auto r = store_.store().range(std::string(kDefinitionKey), "");
          json j{{"definition", nullptr}, {"revision", 0}};
          if (r && !r->kvs.empty()) {
            j["definition"] = r->kvs[0].value;
            j["revision"] = r->kvs[0].mod_revision;
          }
          return api::json_response(j);
        });
      } else if (req.method == "PUT" || req.method == "POST") {
        apply_definition(req, api::query_flag(t.query, "dry_run"), respond, now_ms);
      } else {
        respond(error_response(405, "method_not_allowed", "use GET or PUT on /v1/cluster"));
      }
      return true;
    }
    if (path == "/v1/cluster/status") {
      if (req.method != "GET") {
        respond(error_response(405, "method_not_allowed", "use GET on /v1/cluster/status"));
        return true;
      }
      store_.read(serializable, respond, now_ms, [this] { return status_response(); });
      return true;
    }
    constexpr std::string_view kExplain = "/v1/cluster/explain/";
    if (path.substr(0, kExplain.size()) == kExplain) {
      std::string id(path.substr(kExplain.size()));
      store_.read(serializable, respond, now_ms, [this, id] { return explain_response(id); });
      return true;
    }
    if (path == "/v1/cluster/events") {
      if (req.method != "GET") {
        respond(error_response(405, "method_not_allowed", "use GET on /v1/cluster/events"));
        return true;
      }
      int64_t limit = 100;
      if (auto l = api::query_param(t.query, "limit")) {
        limit = std::atoll(l->c_str());
        if (limit <= 0 || limit > 100000) {
          respond(error_response(400, "invalid_argument",
                                 "limit: want a number from 1 to 100000 (got \"" + *l + "\")"));
          return true;
        }
      }
      store_.read(serializable, respond, now_ms, [this, limit] { return events_response(limit); });
      return true;
    }
    constexpr std::string_view kNodes = "/v1/nodes/";
    if (path.substr(0, kNodes.size()) == kNodes) {
      std::string_view rest = path.substr(kNodes.size());
      size_t slash = rest.find('/');
      if (slash == std::string_view::npos || req.method != "POST") {
        respond(
            error_response(404, "not_found",
                           "use POST /v1/nodes/NAME/standby|unstandby|maintenance|unmaintenance"));
        return true;
      }
      node_op(std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1)), respond,
              now_ms);
      return true;
    }
    constexpr std::string_view kRes = "/v1/resources/";
    if (path.substr(0, kRes.size()) == kRes) {
      std::string_view rest = path.substr(kRes.size());
      size_t slash = rest.find('/');
      if (slash == std::string_view::npos || req.method != "POST") {
        respond(error_response(
            404, "not_found",
            "use POST /v1/resources/NAME/move|ban|clear|cleanup|restart|enable|disable"));
        return true;
      }
      resource_op(req, std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1)),
                  respond, now_ms);
      return true;
    }
    return false;
  }

  void after_apply(int64_t now_ms) {
    now_ms_ = now_ms;
    reconcile();
    if (host_.is_leader()) coordinate(false);
  }

  // The agent stops (SIGTERM): this node gives up its hold, as if it had lost it (VIPs
  // first, then every other exclusive resource), and `done` runs once nothing exclusive
  // runs here or is busy, or after the longest stop timeout. What is not exclusive (clone
  // copies) runs on; supervised processes die with the agent.
  void shutdown(std::function<void()> done) {
    if (shutting_down_) return;
    shutting_down_ = true;
    shutdown_done_ = std::move(done);
    int64_t longest = 0;
    for (const auto& [id, l] : local_) {
      if (l.spec.exclusive) longest = std::max<int64_t>(longest, l.spec.times.stop_timeout_ms);
    }
    shutdown_started_ = std::chrono::steady_clock::now();
    shutdown_limit_ms_ = longest + 2000;
    spdlog::info("{}: stopping: giving up the hold, exclusive resources stop first", opt_.node);
    reconcile();
  }

  void tick(int64_t now_ms) {
    now_ms_ = now_ms;
    bool hold = hold_valid();
    if (hold != hold_was_valid_) {
      spdlog::info("{}: hold {}", opt_.node, hold ? "valid" : "lost");
      hold_was_valid_ = hold;
      // A guard that ran its stops (this process hung) forgot them: what still runs is
      // written and told again.
      if (hold) {
        for (const auto& [id, path] : std::map<std::string, std::string>(stop_guarded_)) {
          if (auto it = local_.find(id); it != local_.end()) guard_stop(it->second);
        }
      }
    }
    reconcile();
    if (host_.is_leader()) coordinate(true);
    publish_all();
  }

  bool runs_exclusive(const std::string& node) const {
    for (const auto& kv : scan(store_.store(), std::string(kAssignPrefix) + node + "/")) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object() || role_of(j, "role") == Role::kStopped) continue;
      if (j.contains("spec") && j["spec"].is_object() && j["spec"].value("exclusive", false)) {
        return true;
      }
    }
    return false;
  }

  // The VIP guard removes this node's exclusive VIPs if their hold ends without this process
  // removing them itself (killed, hung): at the hold's end plus half the guard time, which
  // is still before the leader's reckoning lets another node add them (DESIGN.md "Holds").
  // A renewal by less than a step waits for a larger one (the leader's lease moves with every
  // acknowledgement): the guard's deadline lags by less than the step, well inside the slack.
  void hold_changed() {
    const int64_t until = hold_valid() ? host_.hold_until_ms() + opt_.hold_guard_ms / 2 : 0;
    const int64_t step = std::min<int64_t>(10, opt_.hold_guard_ms / 4);
    if (until != 0 && sent_hold_ != 0 && until >= sent_hold_ && until < sent_hold_ + step) return;
    sent_hold_ = until;
    vip_driver_->set_hold(until);
  }

  // The stop guard's deadline. While this process runs, the guard waits, hold or not: a node
  // without its hold stops its exclusive resources itself, and two stops of one resource at
  // once could make both fail. The guard acts when this process dies (end of file) or stops
  // ticking: at its hold's end like the VIP guard, or a few ticks after its last tick when
  // it holds nothing. Sent in steps of 10 ms (the guard's deadline lags by less).
  void stop_guard_tick() {
    if (!stop_guard_) return;
    const int64_t alive = now_ms_ + std::max<int64_t>(opt_.hold_guard_ms / 2, 3 * opt_.tick_ms);
    const int64_t until = std::max(sent_hold_, alive);
    if (until >= stop_guard_sent_ && until < stop_guard_sent_ + 10) return;
    stop_guard_sent_ = until;
    stop_guard_->hold(until);
  }

 private:
  // ------------------------------------------------------------ the definition
  struct Definition {
    int64_t revision = -1;
    std::optional<ClusterSnapshot> snap;
    std::string error;
  };

  const Definition& definition() {
    auto r = store_.store().range(std::string(kDefinitionKey), "");
    int64_t rev = (r && !r->kvs.empty()) ? r->kvs[0].mod_revision : 0;
    if (rev != def_.revision) {
      def_ = Definition{};
      def_.revision = rev;
      if (rev != 0) {
        // Not the agent-parameter rules here: a definition applied by an older version stays
        // in force (the bad resource fails to start, with the driver's message).
        auto s = sched::parse_cluster_yaml(r->kvs[0].value, "cluster definition");
        if (s) {
          def_.snap = std::move(*s);
        } else {
          def_.error = s.error().message();
          spdlog::error("{}: stored cluster definition unreadable: {}", opt_.node, def_.error);
        }
      }
    }
    return def_;
  }

  void apply_definition(const api::HttpRequest& req, bool dry_run, const api::Responder& respond,
                        int64_t now_ms) {
    std::string file = "cluster.yaml";
    api::Target t = api::split_target(req.target);
    if (auto f = api::query_param(t.query, "file"); f && !f->empty()) file = *f;
    auto parsed = parse_definition(req.body, file);
    if (!parsed) {
      respond(error_response(400, "invalid_definition", parsed.error().message()));
      return;
    }
    for (const auto& n : parsed->nodes) {
      if (!is_member(opt_.members, n.name)) {
        respond(error_response(400, "invalid_definition",
                               file + ": nodes." + n.name +
                                   ": not a member of this cluster (members: " + members_list() +
                                   ")"));
        return;
      }
    }
    // The diff is against the definition as applied here (for the answer only); the write
    // itself replaces whatever is stored.
    const Definition& old = definition();
    json changes = json::array();
    ClusterSnapshot empty;
    for (const auto& line : cluster::diff_definitions(old.snap ? *old.snap : empty, *parsed)) {
      changes.push_back(line);
    }
    ClusterSnapshot s = snapshot_of(*parsed, stored_node_states());
    auto p = sched::plan(s);
    json j{{"changes", changes}, {"dry_run", dry_run}};
    j["summary"] = p ? sched::render_summary(s, *p, sched::apply_plan(s, *p))
                     : "cannot plan: " + p.error().message();
    if (dry_run) {
      respond(api::json_response(j));
      return;
    }
    spdlog::info("{}: applying the cluster definition from {} ({} changes)", opt_.node, file,
                 changes.size());
    store_.propose(store::Put{std::string(kDefinitionKey), req.body}, respond, now_ms,
                   [j](const store::Response& r) mutable {
                     if (!r.status.ok()) {
                       return error_response(500, "internal", r.status.message());
                     }
                     j["revision"] = r.revision;
                     return api::json_response(j);
                   });
  }

  // ------------------------------------------------------------ snapshots
  std::map<std::string, std::string> stored_node_states() const {
    std::map<std::string, std::string> out;
    for (const auto& kv : scan(store_.store(), kNodePrefix)) {
      json j = json::parse(kv.value, nullptr, false);
      if (j.is_object() && j.contains("state") && j["state"].is_string()) {
        out[kv.key.substr(kNodePrefix.size())] = j["state"].get<std::string>();
      }
    }
    return out;
  }

  struct NodeFlags {
    bool standby = false;
    bool maintenance = false;
  };
  std::map<std::string, NodeFlags> node_flags() const {
    std::map<std::string, NodeFlags> out;
    for (const auto& kv : scan(store_.store(), kNodeFlagPrefix)) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      out[kv.key.substr(kNodeFlagPrefix.size())] =
          NodeFlags{j.value("standby", false), j.value("maintenance", false)};
    }
    return out;
  }

  // Resource id → the generation of its last restart request (its own, its group's or its
  // clone's, the newest).
  std::map<std::string, int64_t> restart_generations(const ClusterSnapshot& def) const {
    std::map<std::string, int64_t> out;
    for (const auto& kv : scan(store_.store(), kRestartPrefix)) {
      std::string id = kv.key.substr(kRestartPrefix.size());
      std::vector<std::string> targets{id};
      for (const auto& g : def.groups) {
        if (g.id == id) targets = g.members;
      }
      for (const auto& c : def.clones) {
        if (c.id == id) targets = {c.resource};
      }
      for (const auto& t : targets) out[t] = std::max(out[t], kv.mod_revision);
    }
    return out;
  }

  // The primitives of the definition's clones: their copies 1.. report as RESOURCE:i.
  // The definition as last read (definition()).
  std::set<std::string> clone_primitives() const {
    std::set<std::string> out;
    if (def_.snap) {
      for (const auto& c : def_.snap->clones) out.insert(c.resource);
    }
    return out;
  }

  // The assignments and the reports, a clone's copies on one node folded into one report
  // (sched::fold_clone_instances).
  void read_records(std::map<NodeResource, Assignment>* assigned,
                    std::map<NodeResource, Reported>* reported,
                    std::map<NodeResource, json>* assign_values = nullptr) const {
    for (const auto& kv : scan(store_.store(), kAssignPrefix)) {
      NodeResource key;
      if (!split_node_resource(kv.key, kAssignPrefix, &key)) continue;
      json j = json::parse(kv.value, nullptr, false);
      (*assigned)[key] = Assignment{role_of(j, "role"), kv.mod_revision, copies_of(j)};
      if (assign_values) (*assign_values)[key] = std::move(j);
    }
    for (const auto& kv : scan(store_.store(), kStatusPrefix)) {
      NodeResource key;
      if (!split_node_resource(kv.key, kStatusPrefix, &key)) continue;
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      Reported r;
      r.state.running = j.value("running", false);
      r.state.role = role_of(j, "role");
      r.state.failed = j.value("failed", false);
      r.state.fail_count = j.value("fail_count", int64_t{0});
      r.state.last_failure_ms = j.value("last_failure_ms", int64_t{0});
      if (j.contains("promotion_score") && j["promotion_score"].is_number_integer()) {
        r.state.promotion_score = j["promotion_score"].get<int64_t>();
      }
      r.token = j.value("token", int64_t{0});
      (*reported)[key] = r;
    }
    sched::fold_clone_instances(*reported, *assigned, clone_primitives());
  }

  // The definition with runtime facts: node states, CLI constraints, assignments and
  // reports. `states` maps node → state name (the leader's view).
  ClusterSnapshot snapshot_of(const ClusterSnapshot& def,
                              const std::map<std::string, std::string>& states,
                              const sched::PendingEdits* pending = nullptr) const {
    ClusterSnapshot s = def;
    s.now_ms = wall_ms();
    s.has_quorum = true;
    std::set<std::string> listed;
    for (const auto& n : s.nodes) listed.insert(n.name);
    for (const auto& m : opt_.members) {
      if (!listed.contains(m)) s.nodes.push_back(cluster::Node{.name = m});
    }
    std::sort(s.nodes.begin(), s.nodes.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (auto& n : s.nodes) {
      auto it = states.find(n.name);
      if (it == states.end()) continue;
      auto st = cluster::parse_node_state(it->second);
      // Flags of the definition (standby, maintenance) apply while the node is online.
      if (st && !(*st == NodeState::kOnline && n.state != NodeState::kOnline)) n.state = *st;
    }
    // Operator flags (vigil node standby|maintenance) apply while the node is online, over
    // the definition's; maintenance wins over standby.
    for (const auto& [name, f] : node_flags()) {
      for (auto& n : s.nodes) {
        if (n.name != name || (n.state != NodeState::kOnline && n.state != NodeState::kStandby &&
                               n.state != NodeState::kMaintenance)) {
          continue;
        }
        if (f.maintenance) {
          n.state = NodeState::kMaintenance;
        } else if (f.standby) {
          n.state = NodeState::kStandby;
        }
      }
    }
    // A leader that is stopping (shutdown()) plans its own node as standby: it keeps handling
    // the rest of the cluster, and what it ran starts elsewhere once its stop is reported.
    if (shutting_down_) {
      for (auto& n : s.nodes) {
        if (n.name == opt_.node && n.state == NodeState::kOnline) n.state = NodeState::kStandby;
      }
    }
    // vigil resource disable: target role stopped, on a resource, a group or a clone.
    for (const auto& kv : scan(store_.store(), kRoleOverridePrefix)) {
      std::string id = kv.key.substr(kRoleOverridePrefix.size());
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object() || j.value("target_role", "") != "stopped") continue;
      std::string target = id;
      for (auto& g : s.groups) {
        if (g.id == id) g.target_role = cluster::TargetRole::kStopped;
      }
      for (const auto& c : s.clones) {
        if (c.id == id) target = c.resource;
      }
      for (auto& r : s.resources) {
        if (r.id == target) r.meta.target_role = cluster::TargetRole::kStopped;
      }
    }
    for (const auto& kv : scan(store_.store(), kCliConstraintPrefix)) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      if (int64_t exp = j.value("expires_ms", int64_t{0}); exp != 0 && exp <= s.now_ms) continue;
      cluster::LocationConstraint c;
      c.id = kv.key.substr(kCliConstraintPrefix.size());
      c.resource = j.value("resource", "");
      // A move or ban of something the definition no longer has is inert (not an error
      // that would stop all planning); `vigil resource clear` still removes it.
      bool known = false;
      for (const auto& r : s.resources) known |= r.id == c.resource;
      for (const auto& g : s.groups) known |= g.id == c.resource;
      for (const auto& cl : s.clones) known |= cl.id == c.resource;
      if (!known) continue;
      c.node = j.value("node", "");
      c.score = j.value("score", int64_t{0});
      s.locations.push_back(std::move(c));
    }
    std::map<NodeResource, Assignment> assigned;
    std::map<NodeResource, Reported> reported;
    read_records(&assigned, &reported);
    if (pending) assigned = pending->overlay(assigned);
    sched::merge_status(s, assigned, reported);
    return s;
  }

  api::HttpResponse status_response() {
    const Definition& d = definition();
    json j;
    j["node"] = opt_.node;
    j["definition_revision"] = d.revision;
    if (!d.error.empty()) j["definition_error"] = d.error;
    ClusterSnapshot def = d.snap ? *d.snap : ClusterSnapshot{};
    ClusterSnapshot s = snapshot_of(def, stored_node_states());
    json nodes = json::array();
    for (const auto& n : s.nodes) {
      nodes.push_back({{"name", n.name}, {"state", cluster::node_state_name(n.state)}});
    }
    j["nodes"] = nodes;
    // "running" is what the node reported; an assignment it has not answered yet shows as
    // "pending" (start, stop, promote, demote). The plan below counts it as possibly running.
    std::map<NodeResource, Assignment> assigned;
    std::map<NodeResource, Reported> reported;
    read_records(&assigned, &reported);
    json res = json::array();
    for (const auto& r : s.resources) {
      json on = json::array();
      auto it = s.status.find(r.id);
      if (it != s.status.end()) {
        for (const auto& [node, st] : it->second) {
          auto rep = reported.find({node, r.id});
          const bool running = rep != reported.end() && rep->second.state.running;
          const Role role = running ? rep->second.state.role : Role::kStarted;
          std::string pending;
          if (auto a = assigned.find({node, r.id});
              a != assigned.end() &&
              (rep == reported.end() || rep->second.token < a->second.token)) {
            if (a->second.role == Role::kStopped) {
              pending = "stop";
            } else if (!running) {
              pending = "start";
            } else if (a->second.role == Role::kPromoted && role != Role::kPromoted) {
              pending = "promote";
            } else if (a->second.role != Role::kPromoted && role == Role::kPromoted) {
              pending = "demote";
            } else if (a->second.copies != rep->second.state.copies) {
              pending = a->second.copies > rep->second.state.copies ? "start" : "stop";
            }
          }
          if (!running && pending.empty() && !st.failed && st.fail_count == 0) continue;
          json e{{"node", node},
                 {"running", running},
                 {"role", role_str(role)},
                 {"failed", st.failed},
                 {"fail_count", st.fail_count}};
          if (running && rep->second.state.copies > 1) e["copies"] = rep->second.state.copies;
          if (!pending.empty()) e["pending"] = pending;
          on.push_back(std::move(e));
        }
      }
      res.push_back({{"id", r.id}, {"agent", r.agent}, {"nodes", on}});
    }
    j["resources"] = res;
    auto p = sched::plan(s);
    if (p) {
      j["warnings"] = p->warnings;
      json pending = json::array();
      for (const auto& a : p->actions) pending.push_back(a.label());
      j["pending"] = pending;
    } else {
      j["warnings"] = json::array({"cannot plan: " + p.error().message()});
    }
    return api::json_response(j);
  }

  api::HttpResponse explain_response(const std::string& id) {
    const Definition& d = definition();
    if (!d.snap) return error_response(404, "not_found", "no cluster definition applied");
    ClusterSnapshot s = snapshot_of(*d.snap, stored_node_states());
    auto p = sched::plan(s);
    if (!p) return error_response(500, "internal", p.error().message());
    for (const auto& e : p->explanation) {
      bool match = e.unit == id;
      for (const auto& r : s.groups) {
        if (r.id == e.unit && std::find(r.members.begin(), r.members.end(), id) != r.members.end())
          match = true;
      }
      for (const auto& c : s.clones) {
        if (c.id == e.unit && c.resource == id) match = true;
      }
      if (!match) continue;
      json scores = json::array();
      for (const auto& ns : e.scores) {
        json terms = json::array();
        for (const auto& t : ns.terms) terms.push_back({{"what", t.what}, {"value", t.value}});
        scores.push_back({{"node", ns.node}, {"score", ns.total}, {"terms", terms}});
      }
      Plan one;
      one.explanation.push_back(e);
      // A group is placed where its members are (together); `members` lets the CLI wait
      // for every one of them after a move.
      json members = json::array({id});
      for (const auto& g : s.groups) {
        if (g.id == id) members = g.members;
      }
      json placed = json::array();
      if (auto it = p->placement.find(members.front().get<std::string>());
          it != p->placement.end()) {
        for (const auto& pl : it->second) placed.push_back(pl.node);
      }
      return api::json_response(json{{"resource", id},
                                     {"unit", e.unit},
                                     {"kind", e.kind},
                                     {"members", members},
                                     {"placed_on", placed},
                                     {"scores", scores},
                                     {"notes", e.notes},
                                     {"text", sched::render_scores(one)}});
    }
    return error_response(404, "not_found", "no resource " + id + " in the cluster definition");
  }
  using Plan = sched::Plan;

  // ------------------------------------------------------------ move, ban, clear
  void resource_op(const api::HttpRequest& req, const std::string& id, const std::string& op,
                   const api::Responder& respond, int64_t now_ms) {
    json body = json::object();
    if (!req.body.empty()) {
      auto b = api::parse_json_body(req.body);
      if (!b || !b->is_object()) {
        respond(error_response(400, "invalid_argument",
                               b ? "want a JSON object" : b.error().message()));
        return;
      }
      body = *b;
    }
    std::string node = body.value("node", "");
    if ((op == "move" || op == "ban") && !is_member(opt_.members, node)) {
      respond(error_response(400, "invalid_argument",
                             "node: want one of " + members_list() + " (got \"" + node + "\")"));
      return;
    }
    const Definition& d = definition();
    bool known = false;
    if (d.snap) {
      for (const auto& r : d.snap->resources) known |= r.id == id;
      for (const auto& g : d.snap->groups) known |= g.id == id;
      for (const auto& c : d.snap->clones) known |= c.id == id;
    }
    if (!known && op != "clear") {  // clear also removes what a removed resource left
      respond(error_response(404, "not_found", "no resource " + id + " in the cluster definition"));
      return;
    }
    auto render = [id, op, node](const store::Response& r) {
      if (!r.status.ok()) return error_response(500, "internal", r.status.message());
      return api::json_response(
          json{{"resource", id}, {"op", op}, {"node", node}, {"revision", r.revision}});
    };
    std::string prefix(kCliConstraintPrefix);
    if (op == "move" || op == "ban") {
      int64_t lifetime_s = body.value("lifetime_s", int64_t{0});
      json c{{"resource", id},
             {"node", node},
             {"score", op == "move" ? cluster::kInfinity : -cluster::kInfinity}};
      if (lifetime_s > 0) c["expires_ms"] = wall_ms() + lifetime_s * 1000;
      std::string cid = op == "move" ? "cli-move-" + id : "cli-ban-" + id + "-" + node;
      store_.propose(store::Put{prefix + cid, c.dump()}, respond, now_ms, render);
    } else if (op == "clear") {
      store::Txn txn;
      txn.success.push_back(store::DeleteRange{prefix + "cli-move-" + id, ""});
      std::string ban = prefix + "cli-ban-" + id + "-";
      txn.success.push_back(store::DeleteRange{ban, store::prefix_end(ban)});
      store_.propose(std::move(txn), respond, now_ms, render);
    } else if (op == "cleanup") {
      // Clears fail counts and failed flags in the reports; each executor adopts them.
      store::Txn txn;
      for (const auto& kv : scan(store_.store(), kStatusPrefix)) {
        NodeResource key;
        if (!split_node_resource(kv.key, kStatusPrefix, &key)) continue;
        // A clone's copies 1.. (RESOURCE:i) are cleaned up with it.
        auto inst = sched::split_clone_instance(key.second, {id});
        if (key.second != id && !(inst && inst->first == id)) continue;
        if (!node.empty() && key.first != node) continue;
        json j = json::parse(kv.value, nullptr, false);
        if (!j.is_object()) continue;
        j["fail_count"] = 0;
        j["failed"] = false;
        j["cleanup"] = true;
        txn.success.push_back(store::Put{kv.key, j.dump()});
      }
      store_.propose(std::move(txn), respond, now_ms, render);
    } else if (op == "disable") {
      store_.propose(store::Put{std::string(kRoleOverridePrefix) + id,
                                json{{"target_role", "stopped"}}.dump()},
                     respond, now_ms, render);
    } else if (op == "enable") {
      store_.propose(store::DeleteRange{std::string(kRoleOverridePrefix) + id, ""}, respond, now_ms,
                     render);
    } else if (op == "restart") {
      // The request's revision becomes the restart generation in every assignment of the
      // resource (or of its group's members): each node that runs it stops and starts it.
      store_.propose(
          store::Put{std::string(kRestartPrefix) + id, json{{"at_ms", wall_ms()}}.dump()}, respond,
          now_ms, render);
    } else {
      respond(error_response(404, "not_found",
                             "unknown operation " + op +
                                 " (want move, ban, clear, cleanup, restart, enable or disable)"));
    }
  }

  // vigil node standby|unstandby|maintenance|unmaintenance NAME
  void node_op(const std::string& node, const std::string& op, const api::Responder& respond,
               int64_t now_ms) {
    if (!is_member(opt_.members, node)) {
      respond(
          error_response(404, "not_found",
                         "no node " + node + " in this cluster (members: " + members_list() + ")"));
      return;
    }
    NodeFlags f = node_flags()[node];
    if (op == "standby") {
      f.standby = true;
    } else if (op == "unstandby") {
      f.standby = false;
    } else if (op == "maintenance") {
      f.maintenance = true;
    } else if (op == "unmaintenance") {
      f.maintenance = false;
    } else {
      respond(error_response(
          404, "not_found",
          "unknown operation " + op + " (want standby, unstandby, maintenance or unmaintenance)"));
      return;
    }
    auto render = [node, op, f](const store::Response& r) {
      if (!r.status.ok()) return error_response(500, "internal", r.status.message());
      return api::json_response(json{{"node", node},
                                     {"op", op},
                                     {"standby", f.standby},
                                     {"maintenance", f.maintenance},
                                     {"revision", r.revision}});
    };
    std::string key = std::string(kNodeFlagPrefix) + node;
    if (!f.standby && !f.maintenance) {
      store_.propose(store::DeleteRange{key, ""}, respond, now_ms, render);
    } else {
      store_.propose(
          store::Put{key, json{{"standby", f.standby}, {"maintenance", f.maintenance}}.dump()},
          respond, now_ms, render);
    }
  }

  // ------------------------------------------------------------ events
  // Kept in the store (any node reads them, `vigil events --follow` watches the prefix);
  // best effort: an event lost with a leader change is not retried.
  void record_event(const std::string& type, const std::string& resource,
                    const std::string& message, int64_t duration_ms = -1,
                    const std::string& about_node = "") {
    int64_t now = wall_ms();
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%016lld", static_cast<long long>(now));
    std::string key =
        std::string(kEventPrefix) + stamp + "-" + opt_.node + "-" + std::to_string(++event_seq_);
    json e{{"at_ms", now},
           {"type", type},
           {"node", about_node.empty() ? opt_.node : about_node},
           {"reporter", opt_.node}};
    if (!resource.empty()) e["resource"] = resource;
    if (!message.empty()) e["message"] = truncate(message);
    if (duration_ms >= 0) e["duration_ms"] = duration_ms;
    (void)store_.propose_background(store::Put{key, e.dump()});
  }

  api::HttpResponse events_response(int64_t limit) const {
    auto kvs = scan(store_.store(), kEventPrefix);
    size_t from = kvs.size() > size_t(limit) ? kvs.size() - size_t(limit) : 0;
    json events = json::array();
    for (size_t i = from; i < kvs.size(); ++i) {
      json e = json::parse(kvs[i].value, nullptr, false);
      if (!e.is_object()) continue;
      e["revision"] = kvs[i].mod_revision;
      events.push_back(std::move(e));
    }
    return api::json_response(json{{"events", events}, {"revision", store_.revision()}});
  }

  // The leader keeps the newest event_retention events.
  void prune_events(int64_t now) {
    if (now - events_pruned_ms_ < 5000) return;
    events_pruned_ms_ = now;
    auto kvs = scan(store_.store(), kEventPrefix);
    if (kvs.size() <= opt_.event_retention) return;
    const std::string& keep = kvs[kvs.size() - opt_.event_retention].key;
    (void)store_.propose_background(store::DeleteRange{std::string(kEventPrefix), keep});
  }

  std::string members_list() const {
    std::string out;
    for (const auto& m : opt_.members) out += (out.empty() ? "" : ", ") + m;
    return out;
  }

  // ------------------------------------------------------------ the coordinator
  // The next moment a node's state or hold changes by the clock alone: a member heard
  // last at T goes silent at T + hold_ms, a silent node's hold ends at hold_expires_ms. The
  // coordinator plans again right then instead of at the next replan tick (up to kReplanMs
  // later): that delay was part of every failover.
  void arm_deadline(const ClusterSnapshot& s, int64_t now) {
    int64_t next = INT64_MAX;
    for (const auto& n : s.nodes) {
      if (n.name == opt_.node) continue;
      if (n.state == cluster::NodeState::kOnline) {
        if (auto heard = host_.last_heard_ms(n.name))
          next = std::min(next, *heard + opt_.hold_ms + 1);
      } else if (n.hold_expires_ms && *n.hold_expires_ms > now) {
        next = std::min(next, *n.hold_expires_ms);
      }
    }
    if (next == INT64_MAX || next <= now || next - now > kReplanMs) return;
    if (next == deadline_ms_) return;
    deadline_ms_ = next;
    deadline_timer_.expires_after(std::chrono::milliseconds(next - now));
    deadline_timer_.async_wait(
        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
          if (ec || alive.expired() || !*alive.lock()) return;
          deadline_ms_ = -1;
          if (!host_.is_leader()) return;
          coordinate(true, /*deadline=*/true);
        });
  }

  void coordinate(bool from_tick, bool deadline = false) {
    const int64_t rev = store_.revision();
    const int64_t now = wall_ms();
    // What last_heard_ms and leader_since_ms count in, and in-flight edits and replans age
    // in: a wall-clock step must change none of them.
    const int64_t hold_now = steady_ms();
    if (rev == planned_revision_ && !deadline &&
        (!from_tick || hold_now - planned_ms_ < kReplanMs)) {
      return;
    }
    // A leader without its lease cannot be sure it still leads: it changes nothing (its
    // nodes stop what is exclusive by themselves when their holds end).
    const bool quorum = host_.has_quorum();
    if (quorum != had_quorum_) {
      spdlog::info("{}: coordinator {}", opt_.node,
                   quorum ? "active (leader with a valid lease)" : "paused (no valid lease)");
      had_quorum_ = quorum;
      pending_.clear();
    }
    if (!quorum) return;
    if (host_.leader_since_ms() != pending_leader_since_) {
      pending_leader_since_ = host_.leader_since_ms();
      pending_.clear();     // proposals of an earlier term were committed or lost: the store says
      hold_clock_.clear();  // a new leader reckons holds from its own start
    }
    // A new leader has not heard from everyone yet: for up to one hold it waits for every
    // member (and its executor) before it plans, so that a cold start or a leader change
    // does not mark live nodes offline and pile everything on the nodes it heard first. It
    // costs nothing on failover: what a silent node held waits for its hold to expire anyway.
    // The previous leader's hold is only the guard (sched::HoldClock), and so is the wait for
    // it: a live one answers this leader's first heartbeat within that.
    const std::string previous = host_.previous_leader();
    std::vector<std::string> others;
    for (const auto& m : opt_.members) {
      if (m != opt_.node) others.push_back(m);
    }
    if (sched::new_leader_waits(
            others, hold_now, host_.leader_since_ms(), opt_.hold_ms, opt_.hold_guard_ms, previous,
            [this](const std::string& m) { return host_.last_heard_ms(m); },
            [this](const std::string& m) { return executor_ready(m); })) {
      return;
    }
    planned_revision_ = rev;
    planned_ms_ = hold_now;
    const Definition& d = definition();
    // What this coordinator proposed a moment ago and is not committed yet counts as done:
    // planning on committed state alone would start an exclusive resource twice. Node states
    // count it too: a node with a start proposed to it is not "offline".
    {
      std::map<NodeResource, Assignment> committed;
      std::map<NodeResource, Reported> unused;
      read_records(&committed, &unused);
      pending_.settle(committed, hold_now, kPendingEditMs);
    }
    std::map<std::string, std::string> states = node_states(hold_now);
    publish_node_states(states);
    drop_expired_constraints(now);
    if (!d.snap) return;
    ClusterSnapshot s = snapshot_of(*d.snap, states, &pending_);
    // Holds: what a silent node holds counts as stopped only once its hold has expired
    // by the leader's reckoning (DESIGN.md "Holds").
    // Once expired, a hold stays expired until the node is online again: a node that comes
    // back is heard before its executor has probed, and its stale reports must not count as
    // running under a revived hold (the copy recovered elsewhere would be stopped for them).
    hold_clock_.apply(
        s, hold_now, host_.leader_since_ms(),
        [this](const std::string& n) { return host_.last_heard_ms(n); }, previous, &pending_);
    arm_deadline(s, hold_now);
    // Holds are reckoned on the steady clock (a wall-clock step must not shorten one); the
    // plan compares them with the snapshot's wall-clock now, so they are shifted to it.
    for (auto& n : s.nodes) {
      if (n.hold_expires_ms) *n.hold_expires_ms += s.now_ms - hold_now;
    }
    // What the definition wants each assignment to carry (with the restart generation).
    std::map<std::string, const cluster::Resource*> by_id;
    for (const auto& r : d.snap->resources) by_id[r.id] = &r;
    const std::map<std::string, int64_t> gens = restart_generations(*d.snap);
    auto spec_of = [&](const cluster::Resource& r) {
      auto g = gens.find(r.id);
      return spec_json(r, g == gens.end() ? 0 : g->second);
    };
    // A running copy whose assignment carries a spec it must restart for (a restart request,
    // a new agent or params) is restarted by the plan: stopped after what is ordered after
    // it, started before it, in place. Its stop order keeps the old spec, so it stays marked
    // until it is stopped, and what follows it waits.
    std::map<NodeResource, json> values;
    {
      std::map<NodeResource, Assignment> unused_a;
      std::map<NodeResource, Reported> unused_r;
      read_records(&unused_a, &unused_r, &values);
    }
    std::map<std::string, NodeState> node_state;
    for (const auto& n : s.nodes) node_state[n.name] = n.state;
    auto must_restart = [&](const NodeResource& key, const json& v) {
      auto r = by_id.find(key.second);
      if (r == by_id.end() || !v.is_object() || !v.contains("spec")) return false;
      if (node_state[key.first] == NodeState::kMaintenance) return false;
      auto st = s.status.find(key.second);
      if (st == s.status.end()) return false;
      auto here = st->second.find(key.first);
      return here != st->second.end() && here->second.running &&
             spec_needs_restart(v["spec"], spec_of(*r->second));
    };
    for (const auto& [key, v] : values) {
      if (must_restart(key, v)) s.status[key.second][key.first].restart = true;
    }
    auto p = sched::plan(s);
    if (!p) {
      spdlog::error("{}: cannot plan: {}", opt_.node, p.error().message());
      return;
    }
    std::string warn;
    for (const auto& w : p->warnings) warn += w + "; ";
    if (warn != last_warnings_) {
      if (!warn.empty()) spdlog::warn("{}: scheduler: {}", opt_.node, warn);
      last_warnings_ = warn;
    }
    fence_nodes(*d.snap, *p, now);
    std::map<NodeResource, Assignment> assigned;
    std::map<NodeResource, Reported> reported;
    read_records(&assigned, &reported);
    assigned = pending_.overlay(assigned);
    std::set<NodeResource> edited;
    for (const auto& e : sched::next_edits(s, *p, assigned, reported)) {
      edited.insert({e.node, e.resource});
      std::string key = std::string(kAssignPrefix) + e.node + "/" + e.resource;
      std::string fp =
          (e.remove ? "-" : "+") + role_str(e.role) + "x" + std::to_string(e.copies) + "@" +
          std::to_string(assigned.count({e.node, e.resource}) ? assigned[{e.node, e.resource}].token
                                                              : 0);
      auto& last = sent_edits_[key];
      if (last.first == fp && now - last.second < kEditRepeatMs) continue;
      last = {fp, now};
      spdlog::info("{}: coordinator: {}", opt_.node, e.why);
      Status st;
      if (e.remove) {
        st = store_.propose_background(store::DeleteRange{key, ""});
      } else {
        auto r = by_id.find(e.resource);
        if (r == by_id.end()) continue;
        json spec = spec_of(*r->second);
        // A stop order stops what runs: with the spec it runs with.
        auto cur = values.find({e.node, e.resource});
        if (e.role == Role::kStopped && cur != values.end() && cur->second.is_object() &&
            cur->second.contains("spec")) {
          spec = cur->second["spec"];
        }
        json v{{"role", role_str(e.role)}, {"spec", spec}};
        if (e.copies > 1 && e.role != Role::kStopped) v["copies"] = e.copies;
        st = store_.propose_background(store::Put{key, v.dump()});
      }
      if (!st.ok()) {
        spdlog::warn("{}: coordinator: {}: {}", opt_.node, e.why, st.to_string());
      } else {
        pending_.proposed(e, rev, hold_now);
        record_event("decision", e.resource, e.why, -1, e.node);
        if (e.role == Role::kStopped && e.why.find("(restart") != std::string::npos) {
          record_event("restarting", e.resource, e.why, -1, e.node);
        }
      }
    }
    // A definition change that needs no restart (operations, meta) reaches what already
    // runs: the assignment is rewritten with the new spec. What must restart for it is the
    // plan's (above); a copy that does not run yet just gets the new spec. Not on a node in
    // maintenance: nothing there is touched.
    for (const auto& [key, v] : values) {
      if (edited.contains(key) || node_state[key.first] == NodeState::kMaintenance) continue;
      if (must_restart(key, v)) continue;
      // Not while an edit of it is being committed (the rewrite would carry the old role),
      // nor for a stop order.
      if (pending_.contains(key) || role_of(v, "role") == Role::kStopped) continue;
      auto r = by_id.find(key.second);
      if (r == by_id.end() || !v.is_object()) continue;
      json want = spec_of(*r->second);
      if (v.contains("spec") && v["spec"] == want) continue;
      std::string k = std::string(kAssignPrefix) + key.first + "/" + key.second;
      std::string fp = "spec " + want.dump();
      auto& last = sent_edits_[k];
      if (last.first == fp && now - last.second < kEditRepeatMs) continue;
      last = {fp, now};
      bool restart = !v.contains("spec") || spec_needs_restart(v["spec"], want);
      std::string why = "update " + key.second + " on " + key.first +
                        (restart ? " (restart: definition or restart request)"
                                 : " (operations or meta changed: no restart)");
      spdlog::info("{}: coordinator: {}", opt_.node, why);
      json nv{{"role", v.value("role", "started")}, {"spec", want}};
      if (copies_of(v) > 1) nv["copies"] = copies_of(v);
      if (store_.propose_background(store::Put{k, nv.dump()}).ok()) {
        record_event("decision", key.second, why, -1, key.first);
      }
    }
    prune_events(now);
  }

  // Moves and bans with a lifetime end by themselves: planning ignores them once expired
  // (snapshot_of), and the leader deletes them.
  void drop_expired_constraints(int64_t now) {
    for (const auto& kv : scan(store_.store(), kCliConstraintPrefix)) {
      json j = json::parse(kv.value, nullptr, false);
      int64_t exp = j.is_object() ? j.value("expires_ms", int64_t{0}) : 0;
      if (exp == 0 || exp > now) continue;
      auto& last = sent_edits_[kv.key];
      if (last.first == "expired" && now - last.second < kEditRepeatMs) continue;
      last = {"expired", now};
      spdlog::info("{}: constraint {} expired", opt_.node,
                   kv.key.substr(kCliConstraintPrefix.size()));
      (void)store_.propose_background(store::DeleteRange{kv.key, ""});
    }
  }

  // ------------------------------------------------------------ fencing
  // The plan fences unclean nodes that a device can fence (and only with quorum). Levels
  // are tried in order (1 first); within a level every device must succeed; a level that
  // fails hands over to the next. Success makes the node "fenced": what ran there counts as
  // stopped and is recovered. All levels failed: retried after kFenceRetryMs.
  struct FenceState {
    bool running = false;
    int64_t retry_at_ms = 0;
  };
  using FenceLevels = std::vector<std::vector<cluster::FenceDevice>>;

  void fence_nodes(const ClusterSnapshot& def, const Plan& p, int64_t now) {
    for (const auto& a : p.actions) {
      if (a.kind != sched::ActionKind::kFence || !a.after.empty()) continue;
      FenceState& f = fencing_[a.node];
      if (f.running || now < f.retry_at_ms) continue;
      std::map<int, std::vector<cluster::FenceDevice>> by_level;
      for (const auto& d : def.fence_devices) {
        if (std::find(d.nodes.begin(), d.nodes.end(), a.node) != d.nodes.end()) {
          by_level[d.level].push_back(d);
        }
      }
      if (by_level.empty()) continue;
      auto levels = std::make_shared<FenceLevels>();
      for (auto& [lvl, devs] : by_level) levels->push_back(std::move(devs));
      f.running = true;
      spdlog::warn("{}: fencing node {} ({})", opt_.node, a.node, a.reason);
      record_event("fencing", "", a.reason, -1, a.node);
      fence_step(a.node, levels, 0, 0, wall_ms(), "");
    }
  }

  void fence_step(const std::string& node, std::shared_ptr<FenceLevels> levels, size_t li,
                  size_t di, int64_t t0, std::string errors) {
    if (li >= levels->size()) {
      spdlog::error("{}: fencing {} failed on every level: {}", opt_.node, node, errors);
      record_event("fence failed", "", errors, wall_ms() - t0, node);
      fencing_[node] = FenceState{false, wall_ms() + kFenceRetryMs};
      return;
    }
    const cluster::FenceDevice& dev = (*levels)[li][di];
    exec::FenceRequest req;
    req.device_id = dev.id;
    req.agent = dev.agent;
    req.params = dev.params;
    req.action = exec::FenceAction::kOff;
    if (auto it = req.params.find("action"); it != req.params.end()) {
      if (auto a = exec::parse_fence_action(it->second)) req.action = *a;
      req.params.erase(it);
    }
    if (auto it = req.params.find("timeout_ms"); it != req.params.end()) {
      req.timeout_ms = std::clamp(std::atoi(it->second.c_str()), 1000, exec::kMaxTimeoutMs);
      req.params.erase(it);
    }
    // The victim, as fence agents name it: plug (port) unless the device sets it.
    if (!req.params.contains("plug") && !req.params.contains("port")) req.params["plug"] = node;
    req.params["nodename"] = node;
    std::string dev_id = dev.id;
    std::weak_ptr<bool> alive = alive_;
    runner_.fence(std::move(req), [this, alive, node, levels, li, di, t0, errors,
                                   dev_id](exec::FenceResult r) mutable {
      if (alive.expired() || !*alive.lock()) return;
      const bool ok =
          r.outcome == exec::FenceOutcome::kSuccess || r.outcome == exec::FenceOutcome::kPowerOff;
      spdlog::info("{}: fence device {} on {}: {} (exit {}, {} ms) {}", opt_.node, dev_id, node,
                   ok ? "success" : "failed", r.exit_code, r.duration_ms, r.message);
      if (!ok) {
        errors += (errors.empty() ? "" : "; ") + std::string("level ") +
                  std::to_string((*levels)[li][di].level) + " " + dev_id + ": " +
                  (r.message.empty() ? "exit " + std::to_string(r.exit_code) : r.message);
        fence_step(node, levels, li + 1, 0, t0, errors);
        return;
      }
      if (di + 1 < (*levels)[li].size()) {
        fence_step(node, levels, li, di + 1, t0, errors);
        return;
      }
      std::string by;
      for (const auto& d : (*levels)[li]) by += (by.empty() ? "" : ", ") + d.id;
      const int64_t took = wall_ms() - t0;
      spdlog::warn("{}: node {} fenced by {} in {} ms", opt_.node, node, by, took);
      // Not again until the "fenced" record has had time to commit.
      fencing_[node] = FenceState{false, wall_ms() + kFenceRetryMs};
      // Only a leader that still holds its lease records it (a deposed one's write would
      // fail anyway: proposals need leadership).
      if (host_.has_quorum()) {
        std::string key = std::string(kNodePrefix) + node;
        (void)store_.propose_background(
            store::Put{key, json{{"state", "fenced"}, {"by", by}, {"at_ms", wall_ms()}}.dump()});
        sent_edits_[key] = {"fenced", wall_ms()};
        announced_states_[node] = "fenced";
        record_event("fenced", "", "by " + by + (errors.empty() ? "" : " (after: " + errors + ")"),
                     took, node);
      }
    });
  }

  // The leader's view of every member: online while heard from within the hold; then
  // unclean if something may run there (reported, or assigned and not answered), else
  // offline.
  std::map<std::string, std::string> node_states(int64_t now) {
    std::map<std::string, std::string> out;
    std::map<NodeResource, Assignment> assigned;
    std::map<NodeResource, Reported> reported;
    read_records(&assigned, &reported);
    assigned = pending_.overlay(assigned);
    std::map<std::string, std::string> stored = stored_node_states();
    for (const auto& m : opt_.members) {
      sched::MemberView v;
      v.self = m == opt_.node;
      v.last_heard_ms = host_.last_heard_ms(m);
      v.executor_ready = !v.self && executor_ready(m);
      v.stored_fenced = stored[m] == "fenced";
      v.reports_running = sched::may_run_on(m, assigned, reported);
      out[m] = std::string(cluster::node_state_name(sched::member_state(v, now, opt_.hold_ms)));
    }
    return out;
  }

  // A node that was not online counts as online again only once its executor has said,
  // after that, that it probed and reported what it may run: until then its old reports
  // may be stale (it may have restarted and found nothing running).
  bool executor_ready(const std::string& node) const {
    auto e = store_.store().range(std::string(kExecPrefix) + node, "");
    if (!e || e->kvs.empty()) return false;
    json j = json::parse(e->kvs[0].value, nullptr, false);
    if (!j.is_object() || !j.value("ready", false)) return false;
    auto n = store_.store().range(std::string(kNodePrefix) + node, "");
    if (!n || n->kvs.empty()) return true;
    json st = json::parse(n->kvs[0].value, nullptr, false);
    if (st.is_object() && st.value("state", "") == "online") return true;
    return e->kvs[0].mod_revision > n->kvs[0].mod_revision;
  }

  // Tells the leader this executor's state: not ready at start-up, ready once every resource
  // it found is probed and its report is in the store. Ready again whenever the leader has
  // marked this node not online (a new leader that had not heard from it yet, a partition
  // that healed) and its reports are current: the leader counts a node online again only
  // after a readiness record newer than the state it marked.
  void publish_readiness() {
    if (!synced_) return;  // the reports it must probe may not be applied yet
    bool current = true;
    for (const auto& [id, l] : local_) {
      auto r = store_.store().range(std::string(kStatusPrefix) + opt_.node + "/" + id, "");
      if (!l.probed || !r || r->kvs.empty() || r->kvs[0].value != report_of(l).dump()) {
        current = false;
      }
    }
    if (!ready_once_) ready_once_ = current;
    const bool ready = ready_once_ && current;
    std::string key = std::string(kExecPrefix) + opt_.node;
    auto cur = store_.store().range(key, "");
    int64_t marked = 0;  // the revision of this node's record while it says not online
    if (auto n = store_.store().range(std::string(kNodePrefix) + opt_.node, "");
        n && !n->kvs.empty()) {
      json st = json::parse(n->kvs[0].value, nullptr, false);
      if (!st.is_object() || st.value("state", "") != "online") marked = n->kvs[0].mod_revision;
    }
    const bool stale = cur && !cur->kvs.empty() && marked > cur->kvs[0].mod_revision;
    json record{{"boot", boot_ms_}, {"ready", ready_once_}};
    if (ready && stale) record["after"] = marked;
    if (cur && !cur->kvs.empty()) {
      json c = json::parse(cur->kvs[0].value, nullptr, false);
      bool same = c.is_object() && c.value("boot", int64_t{0}) == boot_ms_ &&
                  c.value("ready", false) == ready_once_;
      if (same && !(ready && stale)) return;
    }
    std::string want = record.dump();
    if (!ready_once_ && readiness_sent_ == want) return;
    int64_t now = wall_ms();
    if (readiness_sent_ == want && now - readiness_sent_ms_ < kRepublishMs) return;
    readiness_sent_ = want;
    readiness_sent_ms_ = now;
    (void)store_.propose_background(store::Put{key, want});
  }

  void publish_node_states(const std::map<std::string, std::string>& states) {
    auto stored = stored_node_states();
    for (const auto& [n, st] : states) {
      auto it = stored.find(n);
      if (it != stored.end() && it->second == st) continue;
      std::string key = std::string(kNodePrefix) + n;
      auto& last = sent_edits_[key];
      if (last.first == st && wall_ms() - last.second < kEditRepeatMs) continue;
      last = {st, wall_ms()};
      spdlog::info("{}: node {} is {}", opt_.node, n, st);
      if (store_.propose_background(store::Put{key, json{{"state", st}}.dump()}).ok() &&
          announced_states_[n] != st) {
        announced_states_[n] = st;
        record_event("node " + st, "", "the leader's view of " + n, -1, n);
      }
    }
  }

  // ------------------------------------------------------------ the executor
  struct Local {
    std::string id;
    std::string spec_text;  // the spec JSON it runs with
    ParsedSpec spec;
    bool probed = false;
    bool busy = false;
    exec::Action busy_action = exec::Action::kMonitor;  // what runs while busy
    bool cancelling = false;                 // the running start was cancelled (hold lost)
    std::optional<int64_t> promotion_score;  // set by an OCF agent (crm_attribute -p)
    bool running = false;
    Role role = Role::kStarted;
    bool failed = false;
    int64_t fail_count = 0;
    int64_t last_failure_ms = 0;
    int64_t token = 0;           // the assignment token last answered
    int64_t blocked_token = -1;  // failed (or hold lost) under this token: wait for a new one
    std::string last_op, message;
    int last_rc = 0;
    int64_t duration_ms = 0;
    std::unique_ptr<asio::steady_timer> monitor;
    uint64_t monitor_gen = 0;
    int64_t publish_attempt_ms = 0;
    // A new spec that needs a restart while the old one runs: applied after the stop.
    std::optional<ParsedSpec> pending;
    std::string pending_text;
    std::string last_why;  // why the running action was started, for events
  };

  // An exclusive OCF, LSB or systemd resource is stopped by a guard process if this agent
  // dies, or hangs past its hold (net/vip_guard.h): its daemon would otherwise run on while
  // the leader starts it on another node. The guard runs the stop this runner would run,
  // from a recipe file under <data_dir>/guard/ (exec/stop_recipe.h). Exclusive VIPs have
  // the VIP driver's guard; exclusive processes die with the agent (PR_SET_PDEATHSIG).
  static bool wants_stop_guard(const Local& l) {
    const exec::AgentClass c = l.spec.spec.agent.agent_class;
    return l.spec.exclusive && (c == exec::AgentClass::kOcf || c == exec::AgentClass::kLsb ||
                                c == exec::AgentClass::kSystemd);
  }
  std::string stop_guard_dir() const { return opt_.data_dir + "/guard"; }

  // Writes a new recipe for `l` (its own file: a guard may be deleting the last one) and
  // tells the guard, which forgets the previous one.
  void guard_stop(const Local& l) {
    if (!wants_stop_guard(l)) return unguard_stop(l.id);
    auto unguarded = [&](const std::string& why) {
      unguard_stop(l.id);
      if (!stop_guard_errors_.insert(l.id).second) return;
      spdlog::error("{}: {}: no stop guard (it would run on if this agent died): {}", opt_.node,
                    l.id, why);
    };
    auto recipe = runner_.stop_recipe(l.spec.spec, l.spec.times.stop_timeout_ms);
    if (!recipe) return unguarded(recipe.error().message());
    auto text = exec::format_stop_recipe(*recipe);
    if (!text) return unguarded(text.error().message());
    const std::string path =
        stop_guard_dir() + "/" + l.id + "." + std::to_string(++stop_guard_seq_) + ".stop";
    if (auto c = net::parse_guard_command("stop-add " + path); !c) {
      return unguarded("the path " + path + " cannot be told to the guard: " + c.error().message());
    }
    // Written whole then renamed: the guard never reads half a recipe. 0600: the parameters
    // may hold secrets. Not synced: it is read while this machine is up (after a crash of
    // the machine the daemon is gone too).
    const std::string tmp = path + ".tmp";
    ::mkdir(stop_guard_dir().c_str(), 0700);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return unguarded("cannot create " + tmp + ": " + std::strerror(errno));
    const bool written =
        ::write(fd, text->data(), text->size()) == static_cast<ssize_t>(text->size());
    const int write_errno = errno;
    ::close(fd);
    if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
      const int e = written ? errno : write_errno;
      ::unlink(tmp.c_str());
      return unguarded("cannot write " + path + ": " + std::strerror(e));
    }
    if (!stop_guard_) {
      stop_guard_ = std::make_unique<net::GuardClient>(io_, "/proc/self/exe");
      stop_guard_sent_ = 0;
      stop_guard_tick();  // its deadline before its first recipe
      if (Status st = stop_guard_->start(); !st.ok()) {
        spdlog::error("{}: stop guard: {} (tried again every second)", opt_.node, st.message());
      }
    }
    unguard_stop(l.id);
    stop_guard_->add_stop(path);
    stop_guarded_[l.id] = path;
    stop_guard_errors_.erase(l.id);
  }

  void unguard_stop(const std::string& id) {
    auto it = stop_guarded_.find(id);
    if (it == stop_guarded_.end()) return;
    stop_guard_->del_stop(it->second);
    ::unlink(it->second.c_str());
    stop_guarded_.erase(it);
  }

  // Recipes left by an agent before this one: its guard has run them or exited.
  void remove_old_stop_recipes() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(stop_guard_dir(), ec)) {
      std::filesystem::remove(e.path(), ec);
    }
  }

  // Removes the address of every exclusive vip resource (VipDriver::remove_now); false if
  // one failed (logged).
  bool drop_vips() {
    bool ok = true;
    for (auto& [id, l] : local_) {
      if (!l.spec.exclusive || l.spec.spec.agent.class_name != "vip") continue;
      if (Status s = vip_driver_->remove_now(l.spec.spec); !s.ok()) {
        spdlog::error("{}: hold lost: removing vip {}: {}", opt_.node, id, s.message());
        ok = false;
      }
    }
    return ok;
  }

  exec::AgentRunner::Options runner_options() const {
    exec::AgentRunner::Options o;
    o.ocf_root = opt_.ocf_root;
    o.fence_dir = opt_.fence_dir;
    o.data_dir = opt_.data_dir;
    o.node_name = opt_.node;
    o.sbin_dir = opt_.data_dir + "/bin";
    o.promotion_dir = opt_.data_dir + "/promotion";
    // Tests run several nodes on one host: each gets its own HA_RSCTMP under VIGIL_RSCTMP.
    if (const char* t = std::getenv("VIGIL_RSCTMP"); t && *t) {
      o.rsc_tmp_dir = std::string(t) + "/" + opt_.node;
    }
    return o;
  }

  void reconcile() {
    hold_changed();  // the VIP driver knows the hold before anything below starts a VIP
    stop_guard_tick();
    std::map<std::string, std::pair<Assignment, json>> mine;
    std::string prefix = std::string(kAssignPrefix) + opt_.node + "/";
    for (const auto& kv : scan(store_.store(), prefix)) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      const std::string id = kv.key.substr(prefix.size());
      const Assignment a{role_of(j, "role"), kv.mod_revision, copies_of(j)};
      mine[id] = {a, j};
      // Copies 1.. of a clone run as instances RESOURCE:i, each assigned alike. A stop
      // order is every copy's here: each stops and answers it.
      for (int64_t i = 1; a.role != Role::kStopped && i < a.copies; ++i) {
        mine[sched::clone_instance_id(id, i)] = {a, j};
      }
      if (a.role == Role::kStopped) {
        const std::set<std::string> base{id};
        for (const auto& [lid, l] : local_) {
          if (sched::split_clone_instance(lid, base)) mine[lid] = {a, j};
        }
      }
    }
    bool hold = hold_valid();
    if (host_.hold_generation() != seen_hold_generation_) {
      seen_hold_generation_ = host_.hold_generation();
      if (hold) spdlog::info("{}: no longer leader: the lease's hold ends here", opt_.node);
      hold = false;  // stepped down: what ran under the lease stops (ClusterHost)
    }
    if (!hold) {
      synced_ = false;
      ++sync_gen_;
    } else if (!synced_ && !sync_pending_) {
      start_sync();
    }
    if (!started_ && synced_) {
      // At start-up, once this node has applied what was committed: what it reported before
      // (it may still run) is probed too.
      started_ = true;
      std::string sp = std::string(kStatusPrefix) + opt_.node + "/";
      for (const auto& kv : scan(store_.store(), sp)) {
        json j = json::parse(kv.value, nullptr, false);
        if (!j.is_object() || !j.contains("spec")) continue;
        std::string id = kv.key.substr(sp.size());
        adopt(id, j["spec"]);
        Local& l = local_[id];
        l.fail_count = j.value("fail_count", int64_t{0});
        l.last_failure_ms = j.value("last_failure_ms", int64_t{0});
        l.token = j.value("token", int64_t{0});
      }
    }
    for (const auto& [id, a] : mine) {
      if (a.second.contains("spec")) adopt(id, a.second["spec"]);
    }
    adopt_cleanups();
    // In maintenance nothing here is started, stopped or recovered (monitors pause too).
    const bool maintenance = in_maintenance();
    if (maintenance != was_maintenance_) {
      spdlog::info("{}: maintenance {}", opt_.node, maintenance ? "on" : "off");
      was_maintenance_ = maintenance;
      for (auto& [id, l] : local_) {
        if (!maintenance && l.running && !l.busy) schedule_monitor(l);
      }
    }
    const bool act = hold && synced_ && !maintenance;
    // Hold lost: VIPs go first, at once and synchronously, before the stops below (which
    // then find them gone). Once per loss, again while a removal fails.
    if (hold) {
      vips_dropped_ = false;
    } else if (!vips_dropped_) {
      vips_dropped_ = drop_vips();
    }
    if (!hold) {
      // A start of an exclusive resource under way when the hold ends is cancelled (its
      // agent killed) so that the stop below comes at once, not when the start is done.
      for (auto& [id, l] : local_) {
        if (l.busy && l.busy_action == exec::Action::kStart && l.spec.exclusive && !l.cancelling &&
            runner_.cancel(id)) {
          l.cancelling = true;
          spdlog::warn("{}: start of {} cancelled: hold lost", opt_.node, id);
        }
      }
    }
    for (auto& [id, l] : local_) {
      if (!l.probed || l.busy) continue;
      auto it = mine.find(id);
      if (l.pending && act) {
        if (l.running) {
          record_event("restarting", l.id, "the definition changed or a restart was requested");
          run(l, exec::Action::kStop, "restart");
          continue;
        }
        l.spec = std::move(*l.pending);
        l.spec_text = std::move(l.pending_text);
        l.pending.reset();
        l.pending_text.clear();
      }
      std::optional<Assignment> assigned;
      if (it != mine.end()) assigned = it->second.first;
      sched::ExecDecision d =
          sched::executor_step(sched::LocalView{l.running, l.role, l.spec.exclusive, l.token,
                                                l.blocked_token, synced_at_},
                               assigned, hold, act);
      l.token = d.token;
      l.blocked_token = d.blocked_token;
      switch (d.step) {
        case sched::ExecStep::kNone:
          break;
        case sched::ExecStep::kStart:
          run(l, exec::Action::kStart, d.why);
          break;
        case sched::ExecStep::kStop:
          run(l, exec::Action::kStop, d.why);
          break;
        case sched::ExecStep::kPromote:
          run(l, exec::Action::kPromote, d.why);
          break;
        case sched::ExecStep::kDemote:
          run(l, exec::Action::kDemote, d.why);
          break;
      }
    }
    // Forget what is stopped, unassigned and no longer defined (its report goes too).
    const Definition& d = definition();
    for (auto it = local_.begin(); it != local_.end();) {
      Local& l = it->second;
      bool defined = false;
      if (d.snap) {
        for (const auto& r : d.snap->resources) defined |= r.id == l.id;
      }
      if (!l.busy && l.probed && !l.running && !mine.contains(l.id) && !defined) {
        if (l.monitor) l.monitor->cancel();
        (void)store_.propose_background(
            store::DeleteRange{std::string(kStatusPrefix) + opt_.node + "/" + l.id, ""});
        it = local_.erase(it);
      } else {
        ++it;
      }
    }
    publish_all();
    if (shutting_down_) check_shutdown();
  }

  void check_shutdown() {
    if (!shutdown_done_) return;
    std::vector<std::string> left;
    for (const auto& [id, l] : local_) {
      if (l.spec.exclusive && (l.running || l.busy)) left.push_back(id);
    }
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - shutdown_started_)
                            .count();
    if (!left.empty() && waited < shutdown_limit_ms_) return;
    if (!left.empty()) {
      std::string names;
      for (const auto& n : left) names += (names.empty() ? "" : ", ") + n;
      spdlog::error("{}: stopping anyway after {} ms: still running or busy: {}", opt_.node, waited,
                    names);
    } else {
      spdlog::info("{}: exclusive resources stopped in {} ms", opt_.node, waited);
    }
    // Posted: the caller stops the event loop, which must not happen inside reconcile().
    asio::post(io_, std::move(shutdown_done_));
    shutdown_done_ = nullptr;
  }

  // The host's hold, given up while the agent stops (shutdown()).
  bool hold_valid() const { return host_.hold_valid() && !shutting_down_; }

  // Is this node in maintenance (by the operator's flag or the definition)?
  bool in_maintenance() {
    if (node_flags()[opt_.node].maintenance) return true;
    const Definition& d = definition();
    if (!d.snap) return false;
    for (const auto& n : d.snap->nodes) {
      if (n.name == opt_.node) return n.state == NodeState::kMaintenance;
    }
    return false;
  }

  // Before it acts on assignments after start-up or after its hold was lost, the executor
  // makes sure it has applied everything committed before now (a ReadIndex round): a node
  // that comes back must not act on an assignment the leader has already withdrawn.
  void start_sync() {
    sync_pending_ = true;
    uint64_t gen = sync_gen_;
    std::weak_ptr<bool> alive = alive_;
    store_.read(
        false,
        [this, gen, alive](api::HttpResponse r) {
          if (alive.expired() || !*alive.lock()) return;
          sync_pending_ = false;
          if (r.status == 200 && gen == sync_gen_) {
            synced_ = true;
            synced_at_ = store_.revision();  // what was assigned before is not started

            asio::post(io_, [this, alive] {
              if (!alive.expired() && *alive.lock()) reconcile();
            });
          }
        },
        now_ms_, [] { return api::HttpResponse{}; });
  }

  // Takes the spec of an assignment (or a past report): a new resource is probed first.
  void adopt(const std::string& id, const json& spec) {
    std::string text = spec.dump();
    auto it = local_.find(id);
    if (it != local_.end() && it->second.spec_text == text) {
      it->second.pending.reset();  // changed back before the restart happened
      it->second.pending_text.clear();
      return;
    }
    if (it != local_.end() && it->second.pending_text == text) return;
    auto parsed = parse_spec(id, spec);
    if (!parsed) {
      spdlog::error("{}: resource {}: {}", opt_.node, id, parsed.error().message());
      return;
    }
    if (it != local_.end()) {
      Local& l = it->second;
      json old = json::parse(l.spec_text, nullptr, false);
      if ((l.running || l.busy) && spec_needs_restart(old, spec)) {
        // Agent, params or restart generation changed: stop with the old spec, start with
        // the new one (reconcile).
        l.pending = std::move(*parsed);
        l.pending_text = text;
        return;
      }
      // Operations or meta only: applies from the next action, monitors re-armed.
      l.spec = std::move(*parsed);
      l.spec_text = text;
      if (l.running && !l.busy) schedule_monitor(l);
      if (l.running) guard_stop(l);  // a new stop timeout, or no longer exclusive
      return;
    }
    Local& l = local_[id];
    l.id = id;
    l.spec = std::move(*parsed);
    l.spec_text = text;
    l.monitor = std::make_unique<asio::steady_timer>(io_);
    run(l, exec::Action::kProbe, "start-up probe");
  }

  // cleanup requests: a report rewritten with "cleanup": true resets the local counters.
  void adopt_cleanups() {
    std::string sp = std::string(kStatusPrefix) + opt_.node + "/";
    for (const auto& kv : scan(store_.store(), sp)) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object() || !j.value("cleanup", false)) continue;
      auto it = local_.find(kv.key.substr(sp.size()));
      if (it == local_.end()) continue;
      it->second.fail_count = 0;
      it->second.failed = false;
      it->second.blocked_token = -1;
      it->second.publish_attempt_ms = 0;
    }
  }

  int timeout_of(const Local& l, exec::Action a) const {
    switch (a) {
      case exec::Action::kStart:
        return l.spec.times.start_timeout_ms;
      case exec::Action::kStop:
        return l.spec.times.stop_timeout_ms;
      case exec::Action::kPromote:
        return l.spec.times.promote_timeout_ms;
      case exec::Action::kDemote:
        return l.spec.times.demote_timeout_ms;
      default:
        return l.spec.times.monitor_timeout_ms;
    }
  }

  void run(Local& l, exec::Action action, const std::string& why) {
    l.busy = true;
    l.busy_action = action;
    l.last_why = why;
    exec::ActionRequest req;
    req.resource = l.spec.spec;
    req.action = action;
    req.timeout_ms = timeout_of(l, action);
    if (action == exec::Action::kMonitor) req.interval_ms = l.spec.times.monitor_interval_ms;
    // The guard knows how to stop it before it starts: this process may die mid-start.
    if (action == exec::Action::kStart) guard_stop(l);
    spdlog::info("{}: {} {} ({})", opt_.node, exec::action_name(action), l.id, why);
    std::string id = l.id;
    std::weak_ptr<bool> alive = alive_;
    runner_.run(std::move(req), [this, id, alive](exec::ActionResult r) {
      if (alive.expired() || !*alive.lock()) return;
      on_result(id, r);
    });
  }

  void on_result(const std::string& id, const exec::ActionResult& r) {
    auto it = local_.find(id);
    if (it == local_.end()) return;
    Local& l = it->second;
    l.busy = false;
    const bool cancelled = l.cancelling;
    l.cancelling = false;
    l.last_op = std::string(exec::action_name(r.action));
    if (l.spec.spec.agent.agent_class == exec::AgentClass::kOcf) {
      l.promotion_score = exec::read_promotion_score(opt_.data_dir + "/promotion", id);
    }
    l.last_rc = r.exit_code;
    l.duration_ms = r.duration_ms;
    l.message = truncate(r.message);
    const auto o = r.outcome;
    const bool ok = o == exec::Outcome::kSuccess || o == exec::Outcome::kPromoted;
    spdlog::info("{}: {}", opt_.node, r.to_string());
    event_of(l, r, ok);
    switch (r.action) {
      case exec::Action::kProbe:
        l.probed = true;
        l.running = ok;
        l.role = o == exec::Outcome::kPromoted ? Role::kPromoted : Role::kStarted;
        if (!ok && o != exec::Outcome::kNotRunning) fail(l, false);
        break;
      case exec::Action::kStart:
        if (ok) {
          l.running = true;
          l.failed = false;
          l.role = Role::kStarted;
        } else if (cancelled) {
          // Cancelled when the hold was lost: not a failure of the resource. It may have
          // started part of the way: counted running, so the hold-lost stop follows.
          l.running = true;
          l.role = Role::kStarted;
        } else {
          fail(l, true);
        }
        break;
      case exec::Action::kPromote:
        if (ok) {
          l.role = Role::kPromoted;
        } else {
          fail(l, false);
        }
        break;
      case exec::Action::kDemote:
        if (ok) {
          l.role = Role::kStarted;
        } else {
          fail(l, false);
        }
        break;
      case exec::Action::kStop:
        if (ok || o == exec::Outcome::kNotRunning) {
          l.running = false;
          l.role = Role::kStarted;
        } else {
          // A stop that fails leaves the resource in an unknown state: it counts as
          // running and failed (the node needs fencing before it moves).
          l.failed = true;
          l.running = true;
        }
        break;
      case exec::Action::kMonitor:
        if (!ok) {
          fail(l, false);
        } else if (o == exec::Outcome::kPromoted) {
          l.role = Role::kPromoted;
        }
        break;
      default:
        break;
    }
    if (l.running && !l.busy) schedule_monitor(l);
    if (l.running) {
      if (!stop_guarded_.contains(l.id) && !stop_guard_errors_.contains(l.id)) {
        guard_stop(l);  // e.g. found running by the probe
      }
    } else if (!l.busy) {
      unguard_stop(l.id);
    }
    publish(l);
    // The state changed: act on the assignments again (post: not from inside a callback
    // chain that may still hold references into local_).
    asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired() || !*alive.lock()) return;
      reconcile();
    });
  }

  // The event an action's result makes (routine monitors and probes that find nothing
  // make none).
  void event_of(const Local& l, const exec::ActionResult& r, bool ok) {
    const int64_t d = r.duration_ms;
    const std::string why = l.last_why;
    switch (r.action) {
      case exec::Action::kStart:
        record_event(ok ? "started" : "start failed", l.id, ok ? why : r.message, d);
        break;
      case exec::Action::kStop:
        record_event(ok || r.outcome == exec::Outcome::kNotRunning ? "stopped" : "stop failed",
                     l.id, ok ? why : r.message, d);
        break;
      case exec::Action::kPromote:
        record_event(ok ? "promoted" : "promote failed", l.id, ok ? why : r.message, d);
        break;
      case exec::Action::kDemote:
        record_event(ok ? "demoted" : "demote failed", l.id, ok ? why : r.message, d);
        break;
      case exec::Action::kMonitor:
        if (!ok) record_event("failed", l.id, "monitor: " + r.message, d);
        break;
      case exec::Action::kProbe:
        if (ok) record_event("found running", l.id, "probe at adoption", d);
        break;
      default:
        break;
    }
  }

  // A failure of a running (or starting) resource: counted, then stopped to clean up; the
  // node acts on the resource again only when the coordinator rewrites its assignment.
  void fail(Local& l, bool start_failed) {
    l.failed = true;
    l.fail_count =
        start_failed ? cluster::kInfinity : std::min(l.fail_count + 1, cluster::kInfinity);
    l.last_failure_ms = wall_ms();
    l.blocked_token = l.token;
    l.running = true;  // until the cleanup stop says otherwise
    run(l, exec::Action::kStop, std::string(start_failed ? "start" : "monitor") + " failed");
  }

  void schedule_monitor(Local& l) {
    if (l.spec.times.monitor_interval_ms <= 0 || in_maintenance() ||
        l.spec.spec.agent.agent_class == exec::AgentClass::kProcess) {
      return;  // supervised processes are watched by pidfd
    }
    uint64_t gen = ++l.monitor_gen;
    l.monitor->expires_after(std::chrono::milliseconds(l.spec.times.monitor_interval_ms));
    std::string id = l.id;
    l.monitor->async_wait([this, id, gen](const boost::system::error_code& ec) {
      if (ec) return;
      auto it = local_.find(id);
      if (it == local_.end() || it->second.monitor_gen != gen) return;
      Local& m = it->second;
      if (!m.running || m.busy || in_maintenance()) return;
      run(m, exec::Action::kMonitor, "recurring");
    });
  }

  void on_process_exit(const exec::ProcessExit& e) {
    auto it = local_.find(e.resource_id);
    if (it == local_.end()) return;
    Local& l = it->second;
    spdlog::warn("{}: process {} (pid {}) exited on its own", opt_.node, l.id, e.pid);
    if (l.busy || !l.running) return;
    record_event("failed", l.id, "process " + std::to_string(e.pid) + " exited on its own");
    if (in_maintenance()) {
      // Not recovered in maintenance: reported as stopped.
      l.running = false;
      publish(l);
      return;
    }
    fail(l, false);
  }

  json report_of(const Local& l) const {
    json j{{"running", l.running}, {"role", role_str(l.role)},
           {"failed", l.failed},   {"fail_count", l.fail_count},
           {"token", l.token},     {"op", l.last_op},
           {"rc", l.last_rc},      {"duration_ms", l.duration_ms}};
    if (l.last_failure_ms) j["last_failure_ms"] = l.last_failure_ms;
    if (l.running && l.promotion_score) j["promotion_score"] = *l.promotion_score;
    if (!l.message.empty()) j["message"] = l.message;
    j["spec"] = json::parse(l.spec_text, nullptr, false);
    return j;
  }

  void publish(Local& l) {
    if (!l.probed || l.busy) return;
    std::string key = std::string(kStatusPrefix) + opt_.node + "/" + l.id;
    std::string want = report_of(l).dump();
    auto r = store_.store().range(key, "");
    if (r && !r->kvs.empty() && r->kvs[0].value == want) return;
    int64_t now = wall_ms();
    if (now - l.publish_attempt_ms < kRepublishMs && l.publish_attempt_ms != 0 &&
        last_published_[key] == want) {
      return;
    }
    l.publish_attempt_ms = now;
    last_published_[key] = want;
    (void)store_.propose_background(store::Put{key, want});
  }

  void publish_all() {
    for (auto& [id, l] : local_) publish(l);
    publish_readiness();
  }

  asio::io_context& io_;
  StoreService& store_;
  ClusterHost& host_;
  ClusterServiceOptions opt_;
  exec::AgentRunner runner_;
  std::shared_ptr<net::VipDriver> vip_driver_ = std::make_shared<net::VipDriver>(io_);
  bool vips_dropped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Definition def_;
  std::map<std::string, Local> local_;
  std::map<std::string, std::string> last_published_;
  std::map<std::string, std::pair<std::string, int64_t>> sent_edits_;
  bool started_ = false;
  bool shutting_down_ = false;  // shutdown(): the hold is given up
  std::function<void()> shutdown_done_;
  std::chrono::steady_clock::time_point shutdown_started_;
  int64_t shutdown_limit_ms_ = 0;
  const int64_t boot_ms_ = wall_ms();
  std::string readiness_sent_;
  bool ready_once_ = false;
  int64_t readiness_sent_ms_ = 0;
  bool synced_ = false;
  uint64_t seen_hold_generation_ = 0;
  asio::steady_timer deadline_timer_{io_};  // arm_deadline()
  int64_t deadline_ms_ = -1;
  int64_t synced_at_ = 0;  // the store revision when this node last (re)synced
  bool sync_pending_ = false;
  uint64_t sync_gen_ = 0;
  bool hold_was_valid_ = false;
  bool had_quorum_ = false;
  sched::PendingEdits pending_;  // the coordinator's proposals not committed yet
  int64_t pending_leader_since_ = -1;
  sched::HoldClock hold_clock_{opt_.hold_ms, opt_.clock_drift,
                               opt_.hold_guard_ms};  // holds as the leader sees them
  int64_t planned_revision_ = -1;
  int64_t planned_ms_ = 0;
  int64_t sent_hold_ = 0;  // the last hold end given to the VIP driver (hold_changed)
  // The guard of exclusive OCF, LSB and systemd resources (guard_stop()); started with the
  // first. Declared after runner_ and vip_driver_: it goes first, and its guard then stops
  // what it still knows of.
  std::unique_ptr<net::GuardClient> stop_guard_;
  std::map<std::string, std::string> stop_guarded_;  // resource → its recipe the guard knows
  std::set<std::string> stop_guard_errors_;          // logged once until guarded again
  uint64_t stop_guard_seq_ = 0;                      // recipes' file names: one per start
  int64_t stop_guard_sent_ = 0;                      // the deadline it was told last
  int64_t now_ms_ = 0;
  std::string last_warnings_;
  uint64_t event_seq_ = 0;
  std::map<std::string, FenceState> fencing_;
  bool was_maintenance_ = false;
  int64_t events_pruned_ms_ = 0;
  std::map<std::string, std::string> announced_states_;  // node → state, for events
};

ClusterService::ClusterService(asio::io_context& io, StoreService& store, ClusterHost& host,
                               ClusterServiceOptions options)
    : impl_(std::make_unique<Impl>(io, store, host, std::move(options))) {}
ClusterService::~ClusterService() = default;

bool ClusterService::handle(const api::HttpRequest& req, const api::Responder& respond,
                            int64_t now_ms) {
  return impl_->handle(req, respond, now_ms);
}
void ClusterService::after_apply(int64_t now_ms) { impl_->after_apply(now_ms); }
void ClusterService::tick(int64_t now_ms) { impl_->tick(now_ms); }
void ClusterService::hold_changed() { impl_->hold_changed(); }
bool ClusterService::runs_exclusive(const std::string& node) const {
  return impl_->runs_exclusive(node);
}
void ClusterService::shutdown(std::function<void()> done) { impl_->shutdown(std::move(done)); }

}  // namespace vigil::daemon
