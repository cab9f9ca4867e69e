// AgentRunner: queues, per-resource serialization, and the agent classes (ocf, lsb,
// systemd, process, fence, registered extensions) on one Asio loop.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "exec/runner.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "exec/child.h"

namespace vigil::exec {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

ActionResult make_result(const ActionRequest& req, OcfCode code, std::string message) {
  ActionResult r;
  r.resource_id = req.resource.id;
  r.action = req.action;
  r.ocf = code;
  r.outcome = outcome_of(code);
  r.message = std::move(message);
  return r;
}

// The last non-empty line of `text`, for messages.
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n \t");
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, std::min<size_t>(end + 1 - start, kMaxExitReasonBytes));
}

std::vector<std::string> base_env(const std::string& path) {
  return {"HOME=/", "LC_ALL=C", "PATH=" + path};
}

using Done = std::function<void(ActionResult)>;

}  // namespace

std::string ActionResult::to_string() const {
  std::string s = resource_id + " " + std::string(action_name(action)) + ": " + ocf_code_name(ocf) +
                  " (" + std::string(outcome_name(outcome)) + ")";
  if (timed_out) s += " timed out";
  s += " in " + std::to_string(duration_ms) + " ms";
  if (!message.empty()) s += ": " + message;
  return s;
}

struct AgentRunner::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_in, Options o)
      : io(io_in), opt(std::move(o)), env(opt.env ? *opt.env : posix_env()) {}

  // --- queues -------------------------------------------------------------------------

  struct Job {
    Clock::time_point enqueued;
    // Starts the job; `release` must be called once when it is over.
    std::function<void(std::function<void()> release)> start;
  };
  struct KeyQueue {
    bool busy = false;
    bool in_ready = false;
    std::deque<Job> waiting;
  };

  // Queues a job under `key`; false when a limit is hit (the caller reports it).
  bool submit(const std::string& key, Job job) {
    if (queued_total >= static_cast<size_t>(opt.max_queued)) return false;
    KeyQueue& kq = keys[key];
    if (kq.waiting.size() >= static_cast<size_t>(opt.max_queued_per_resource)) return false;
    kq.waiting.push_back(std::move(job));
    ++queued_total;
    mark_ready(key);
    pump();
    return true;
  }

  void mark_ready(const std::string& key) {
    auto it = keys.find(key);
    if (it == keys.end()) return;
    KeyQueue& kq = it->second;
    if (kq.busy || kq.in_ready) return;
    if (kq.waiting.empty()) {
      keys.erase(it);
      return;
    }
    kq.in_ready = true;
    ready.push_back(key);
  }

  void pump() {
    while (!shut_down && in_flight < opt.max_children && !ready.empty()) {
      std::string key = std::move(ready.front());
      ready.pop_front();
      KeyQueue& kq = keys[key];
      kq.in_ready = false;
      Job job = std::move(kq.waiting.front());
      kq.waiting.pop_front();
      --queued_total;
      kq.busy = true;
      ++in_flight;
      std::weak_ptr<Impl> w = weak_from_this();
      job.start([w, key] {
        auto self = w.lock();
        if (!self || self->shut_down) return;
        --self->in_flight;
        self->keys[key].busy = false;
        self->mark_ready(key);
        self->pump();
      });
    }
  }

  void run(ActionRequest req, Done done) {
    auto shared_req = std::make_shared<ActionRequest>(std::move(req));
    auto user_done = std::make_shared<Done>(std::move(done));
    Job job;
    job.enqueued = Clock::now();
    std::weak_ptr<Impl> w = weak_from_this();
    job.start = [w, shared_req, user_done, enq = job.enqueued](std::function<void()> release) {
      auto self = w.lock();
      if (!self) return;
      Clock::time_point started = Clock::now();
      auto called = std::make_shared<bool>(false);
      self->dispatch(*shared_req, [w, user_done, release, enq, started, called](ActionResult r) {
        auto s = w.lock();
        if (!s || s->shut_down || *called) return;
        *called = true;
        r.duration_ms = ms_since(started);
        r.queued_ms = std::chrono::duration_cast<std::chrono::milliseconds>(started - enq).count();
        asio::post(s->io, [w, user_done, release, r = std::move(r)]() mutable {
          auto s2 = w.lock();
          if (!s2 || s2->shut_down) return;
          (*user_done)(std::move(r));
          release();
        });
      });
    };
    std::string key = "resource/" + shared_req->resource.id;
    if (!submit(key, std::move(job))) {
      ActionResult r = make_result(*shared_req, OcfCode::kErrGeneric,
                                   "refused: the action queue is full (max_queued " +
                                       std::to_string(opt.max_queued) + ", per resource " +
                                       std::to_string(opt.max_queued_per_resource) + ")");
      asio::post(io, [w, user_done, r = std::move(r)]() mutable {
        auto s = w.lock();
        if (s && !s->shut_down) (*user_done)(std::move(r));
      });
    }
  }

  // --- dispatch -----------------------------------------------------------------------

  void dispatch(const ActionRequest& req, Done done) {
    if (!is_safe_name(req.resource.id)) {
      return done(
          make_result(req, OcfCode::kErrConfigured,
                      "resource id '" + req.resource.id + "': want 1 to 128 of [A-Za-z0-9_.:@+-]"));
    }
    if (req.timeout_ms <= 0 || req.timeout_ms > kMaxTimeoutMs) {
      return done(make_result(req, OcfCode::kErrConfigured,
                              "timeout " + std::to_string(req.timeout_ms) + " ms: want 1 to " +
                                  std::to_string(kMaxTimeoutMs)));
    }
    switch (req.resource.agent.agent_class) {
      case AgentClass::kOcf:
        return run_ocf(req, std::move(done));
      case AgentClass::kLsb:
        return run_lsb(req, std::move(done));
      case AgentClass::kSystemd:
        return run_systemd(req, std::move(done));
      case AgentClass::kProcess:
        return run_process(req, std::move(done));
      case AgentClass::kExtension:
        return run_extension(req, std::move(done));
      case AgentClass::kFence:
        return done(make_result(req, OcfCode::kErrConfigured,
                                "fence agents are not resources: use AgentRunner::fence"));
    }
  }

  RunLimits limits(int timeout_ms) const {
    RunLimits l;
    l.timeout_ms = timeout_ms;
    l.kill_grace_ms = opt.kill_grace_ms;
    l.tail_bytes = opt.output_tail_bytes;
    return l;
  }

  // Runs `spec` as a child and maps its exit through `map` (OCF code from exit status).
  void run_agent_child(const ActionRequest& req, SpawnSpec spec,
                       std::function<OcfCode(const ChildRunResult&, std::string*)> map, Done done) {
    std::weak_ptr<Impl> w = weak_from_this();
    auto holder = std::make_shared<std::shared_ptr<ChildRun>>();
    std::string path = spec.path;
    auto run = run_child(
        io, spec, limits(req.timeout_ms),
        [w, holder, req_copy = req, map, done, path](Result<ChildRunResult> res) {
          bool cancelled = false;
          if (auto s = w.lock()) {
            s->children.erase(*holder);
            auto c = s->by_resource.find(req_copy.resource.id);
            if (c != s->by_resource.end() && c->second.run == *holder) {
              cancelled = c->second.cancelled;
              s->by_resource.erase(c);
            }
          }
          if (!res) {
            const Status& st = res.error();
            OcfCode c = st.code() == Errc::kNotFound || st.code() == Errc::kPermissionDenied
                            ? OcfCode::kErrInstalled
                            : OcfCode::kErrGeneric;
            return done(make_result(req_copy, c, "cannot run agent: " + st.message()));
          }
          ActionResult r;
          r.resource_id = req_copy.resource.id;
          r.action = req_copy.action;
          r.stdout_tail = res->stdout_tail;
          r.stderr_tail = res->stderr_tail;
          r.exit_code = res->status.known && res->status.exited ? res->status.code : -1;
          if (cancelled) {
            r.ocf = OcfCode::kErrGeneric;
            r.message = "cancelled: process group killed (" + res->status.describe() + ")";
          } else if (res->timed_out) {
            r.timed_out = true;
            r.ocf = OcfCode::kErrGeneric;
            r.message = "timed out after " + std::to_string(req_copy.timeout_ms) +
                        " ms: process group killed (" + res->status.describe() + ")";
          } else {
            std::string note;
            r.ocf = map(*res, &note);
            std::string reason = parse_exit_reason(res->stderr_tail);
            r.message = !reason.empty() ? reason : note;
          }
          r.outcome = outcome_of(r.ocf);
          done(std::move(r));
        });
    *holder = run;
    children.insert(run);
    by_resource[req.resource.id] = Running{run, false};
  }

  bool cancel(const std::string& resource_id) {
    auto it = by_resource.find(resource_id);
    if (it == by_resource.end() || it->second.cancelled) return false;
    it->second.cancelled = true;
    kill_group(it->second.run->pid(), SIGKILL);
    return true;
  }

  // What an OCF, LSB or systemd action execs, or why it cannot run (`refusal`: the code
  // and message of the result that refuses it). Shared by the runs below and by
  // stop_recipe(), so the guard's stop is exactly the stop this runner would run.
  struct Refusal {
    OcfCode code = OcfCode::kErrGeneric;
    std::string message;
  };
  std::optional<SpawnSpec> ocf_spawn(const ActionRequest& req, Refusal* refusal) const {
    const AgentName& a = req.resource.agent;
    std::string path = opt.ocf_root + "/resource.d/" + a.provider + "/" + a.type;
    if (!file_exists(path)) {
      *refusal = {OcfCode::kErrInstalled,
                  "not installed: agent " + a.to_string() + " (" + path + ") does not exist"};
      return std::nullopt;
    }
    OcfEnvInput in;
    in.ocf_root = opt.ocf_root;
    in.resource_id = req.resource.id;
    in.provider = a.provider;
    in.type = a.type;
    in.params = req.resource.params;
    in.meta = req.resource.meta;
    in.action = req.action;
    in.timeout_ms = req.timeout_ms;
    in.interval_ms = req.action == Action::kMonitor ? req.interval_ms : 0;
    in.check_level = req.check_level;
    in.node_name = opt.node_name;
    in.path = opt.path;
    in.sbin_dir = opt.sbin_dir;
    if (!opt.promotion_dir.empty()) in.promotion_file = opt.promotion_dir + "/" + req.resource.id;
    in.rsc_tmp_dir = opt.rsc_tmp_dir;
    auto env_or = build_ocf_env(in);
    if (!env_or) {
      *refusal = {OcfCode::kErrConfigured, env_or.error().message()};
      return std::nullopt;
    }
    SpawnSpec spec;
    spec.path = path;
    spec.argv = {path, std::string(ocf_action_arg(req.action))};
    spec.env = std::move(*env_or);
    return spec;
  }

  std::optional<SpawnSpec> lsb_spawn(const ActionRequest& req, Refusal* refusal) const {
    std::string path = opt.lsb_dir + "/" + req.resource.agent.type;
    std::string arg;
    switch (req.action) {
      case Action::kStart:
        arg = "start";
        break;
      case Action::kStop:
        arg = "stop";
        break;
      case Action::kMonitor:
      case Action::kProbe:
        arg = "status";
        break;
      case Action::kReload:
        arg = "reload";
        break;
      default:
        *refusal = {OcfCode::kErrUnimplemented,
                    "LSB init scripts have no " + std::string(action_name(req.action)) + " action"};
        return std::nullopt;
    }
    if (!file_exists(path)) {
      *refusal = {OcfCode::kErrInstalled, "not installed: init script " + path + " does not exist"};
      return std::nullopt;
    }
    SpawnSpec spec;
    spec.path = path;
    spec.argv = {path, arg};
    spec.env = base_env(opt.path);
    return spec;
  }

  std::optional<SpawnSpec> systemd_spawn(const ActionRequest& req, Refusal* refusal) const {
    const std::string& unit = req.resource.agent.type;
    if (!file_exists(opt.systemd_runtime_dir)) {
      *refusal = {OcfCode::kErrInstalled, "systemd is not running on this host (no " +
                                              opt.systemd_runtime_dir +
                                              "): cannot run systemd:" + unit};
      return std::nullopt;
    }
    if (!file_exists(opt.systemctl)) {
      *refusal = {OcfCode::kErrInstalled, "not installed: " + opt.systemctl + " does not exist"};
      return std::nullopt;
    }
    std::string verb;
    switch (req.action) {
      case Action::kStart:
        verb = "start";
        break;
      case Action::kStop:
        verb = "stop";
        break;
      case Action::kMonitor:
      case Action::kProbe:
        verb = "is-active";
        break;
      case Action::kReload:
        verb = "reload";
        break;
      default:
        *refusal = {OcfCode::kErrUnimplemented,
                    "systemd units have no " + std::string(action_name(req.action)) + " action"};
        return std::nullopt;
    }
    SpawnSpec spec;
    spec.path = opt.systemctl;
    spec.argv = {opt.systemctl, "--no-ask-password", verb, "--", unit};
    spec.env = base_env(opt.path);
    return spec;
  }

  void run_ocf(const ActionRequest& req, Done done) {
    Refusal no;
    auto spec = ocf_spawn(req, &no);
    if (!spec) return done(make_result(req, no.code, no.message));
    run_agent_child(
        req, std::move(*spec),
        [](const ChildRunResult& r, std::string* note) {
          return ocf_code_from_exit(r.status, note);
        },
        std::move(done));
  }

  void run_lsb(const ActionRequest& req, Done done) {
    Refusal no;
    auto spec = lsb_spawn(req, &no);
    if (!spec) return done(make_result(req, no.code, no.message));
    bool status = spec->argv[1] == "status";
    run_agent_child(
        req, std::move(*spec),
        [status](const ChildRunResult& r, std::string* note) {
          if (status) return ocf_code_from_lsb_status(r.status, note);
          // LSB 5.0 §"Init Script Actions": 0-7 mean what OCF's 0-7 mean.
          OcfCode c = ocf_code_from_exit(r.status, note);
          if (static_cast<int>(c) > 7) {
            *note = "LSB " + r.status.describe() + " is not an init script action code";
            return OcfCode::kErrGeneric;
          }
          return c;
        },
        std::move(done));
  }

  void run_systemd(const ActionRequest& req, Done done) {
    Refusal no;
    auto spec = systemd_spawn(req, &no);
    if (!spec) return done(make_result(req, no.code, no.message));
    bool is_active = spec->argv[2] == "is-active";
    run_agent_child(
        req, std::move(*spec),
        [is_active](const ChildRunResult& r, std::string* note) {
          if (!r.status.known || !r.status.exited) {
            *note = r.status.describe();
            return OcfCode::kErrGeneric;
          }
          std::string state = last_line(r.stdout_tail);
          if (is_active) {
            // systemctl is-active prints the state; exit 0 only for active (and reloading).
            if (r.status.code == 0) return OcfCode::kSuccess;
            if (state == "inactive" || state == "unknown") return OcfCode::kNotRunning;
            *note = "unit is " + (state.empty() ? "in an unknown state" : state);
            return OcfCode::kErrGeneric;
          }
          if (r.status.code == 0) return OcfCode::kSuccess;
          *note = "systemctl " + r.status.describe() + ": " + last_line(r.stderr_tail);
          // systemctl follows LSB: 5 is "not installed" (no such unit).
          return r.status.code == 5 ? OcfCode::kErrInstalled : OcfCode::kErrGeneric;
        },
        std::move(done));
  }

  void run_extension(const ActionRequest& req, Done done) {
    const std::string& cls = req.resource.agent.class_name;
    auto it = drivers.find(cls);
    if (it == drivers.end()) {
      return done(
          make_result(req, OcfCode::kErrInstalled,
                      "not installed: no driver is registered for agent class '" + cls + "'"));
    }
    // Watchdog: the driver owns its timeout; this one only bounds a driver that hangs.
    auto timer = std::make_shared<asio::steady_timer>(io);
    auto finished = std::make_shared<bool>(false);
    timer->expires_after(std::chrono::milliseconds(req.timeout_ms + opt.kill_grace_ms));
    timer->async_wait([timer, finished, done, req](const boost::system::error_code& ec) {
      if (ec || *finished) return;
      *finished = true;
      ActionResult r = make_result(req, OcfCode::kErrGeneric,
                                   "timed out: the " + req.resource.agent.class_name +
                                       " driver did not answer within " +
                                       std::to_string(req.timeout_ms) + " ms");
      r.timed_out = true;
      done(std::move(r));
    });
    it->second->run(req, [timer, finished, done](ActionResult r) {
      if (*finished) return;
      *finished = true;
      timer->cancel();
      done(std::move(r));
    });
  }

  // --- fence --------------------------------------------------------------------------

  void fence(FenceRequest req, std::function<void(FenceResult)> done) {
    auto shared_req = std::make_shared<FenceRequest>(std::move(req));
    auto user_done = std::make_shared<std::function<void(FenceResult)>>(std::move(done));
    std::weak_ptr<Impl> w = weak_from_this();
    auto finish = [w, user_done](FenceResult r, std::function<void()> release) {
      auto s = w.lock();
      if (!s || s->shut_down) return;
      asio::post(s->io, [w, user_done, release, r = std::move(r)]() mutable {
        auto s2 = w.lock();
        if (!s2 || s2->shut_down) return;
        (*user_done)(std::move(r));
        if (release) release();
      });
    };
    Job job;
    job.enqueued = Clock::now();
    job.start = [w, shared_req, finish, enq = job.enqueued](std::function<void()> release) {
      auto self = w.lock();
      if (!self) return;
      self->start_fence(*shared_req, enq,
                        [finish, release](FenceResult r) { finish(std::move(r), release); });
    };
    if (!submit("fence/" + shared_req->device_id, std::move(job))) {
      FenceResult r;
      r.device_id = shared_req->device_id;
      r.action = shared_req->action;
      r.message = "refused: the action queue is full";
      finish(std::move(r), nullptr);
    }
  }

  void start_fence(const FenceRequest& req, Clock::time_point enq,
                   std::function<void(FenceResult)> done) {
    Clock::time_point started = Clock::now();
    FenceResult base;
    base.device_id = req.device_id;
    base.action = req.action;
    base.queued_ms = std::chrono::duration_cast<std::chrono::milliseconds>(started - enq).count();
    auto fail = [&](std::string msg) {
      FenceResult r = base;
      r.message = std::move(msg);
      done(std::move(r));
    };
    if (!is_safe_name(req.device_id)) return fail("fence device id '" + req.device_id + "'");
    if (!is_safe_name(req.agent) || req.agent.rfind("fence_", 0) != 0) {
      return fail("fence agent '" + req.agent + "': want fence_NAME");
    }
    if (req.timeout_ms <= 0 || req.timeout_ms > kMaxTimeoutMs) {
      return fail("timeout " + std::to_string(req.timeout_ms) + " ms out of range");
    }
    std::string path = opt.fence_dir + "/" + req.agent;
    if (!file_exists(path)) return fail("not installed: fence agent " + path + " does not exist");
    auto input = build_fence_stdin(req.action, req.params);
    if (!input) return fail(input.error().message());
    SpawnSpec spec;
    spec.path = path;
    spec.argv = {path};
    spec.env = base_env(opt.path);
    spec.stdin_data = std::move(*input);
    std::weak_ptr<Impl> w = weak_from_this();
    auto holder = std::make_shared<std::shared_ptr<ChildRun>>();
    FenceAction action = req.action;
    int timeout_ms = req.timeout_ms;
    auto run =
        run_child(io, spec, limits(req.timeout_ms),
                  [w, holder, base, action, timeout_ms, started, done](Result<ChildRunResult> res) {
                    if (auto s = w.lock()) s->children.erase(*holder);
                    FenceResult r = base;
                    r.duration_ms = ms_since(started);
                    if (!res) {
                      r.message = "cannot run fence agent: " + res.error().message();
                      return done(std::move(r));
                    }
                    r.stdout_tail = res->stdout_tail;
                    r.stderr_tail = res->stderr_tail;
                    if (res->status.known && res->status.exited) {
                      r.exit_code = res->status.code;
                    }
                    r.power_on = parse_fence_power_status(res->stdout_tail);
                    if (res->timed_out) {
                      // FenceAgentAPI.md: "Timeout is a failure, not success".
                      r.timed_out = true;
                      r.outcome = FenceOutcome::kFailed;
                      r.message = "timed out after " + std::to_string(timeout_ms) +
                                  " ms: process group killed";
                    } else {
                      r.outcome = fence_outcome_of(action, res->status);
                      if (r.outcome == FenceOutcome::kFailed) {
                        r.message = res->status.describe() + ": " + last_line(res->stderr_tail);
                      }
                    }
                    done(std::move(r));
                  });
    *holder = run;
    children.insert(run);
  }

  // --- supervised processes -----------------------------------------------------------

  struct StopState {
    explicit StopState(asio::io_context& io) : kill_timer(io), give_up_timer(io) {}
    asio::steady_timer kill_timer;
    asio::steady_timer give_up_timer;
    bool killed = false;
    Done done;
    ActionRequest req;
  };
  struct Supervised {
    pid_t pid = -1;
    uint64_t start_time = 0;
    bool own_child = false;
    std::unique_ptr<PidWatch> watch;
    std::shared_ptr<StopState> stopping;
  };

  std::string pid_dir() const { return opt.data_dir + "/process"; }
  std::string pid_path(const std::string& id) const { return pid_dir() + "/" + id + ".pid"; }

  Status write_pid_file(const std::string& id, pid_t pid, uint64_t start_time) {
    RETURN_IF_ERROR(env.create_dir(pid_dir()));
    std::string tmp = pid_path(id) + ".tmp";
    ASSIGN_OR_RETURN(auto f, env.new_writable_file(tmp));
    RETURN_IF_ERROR(f->append(std::to_string(pid) + " " + std::to_string(start_time) + "\n"));
    RETURN_IF_ERROR(f->sync());
    RETURN_IF_ERROR(f->close());
    RETURN_IF_ERROR(env.rename(tmp, pid_path(id)));
    return env.sync_dir(pid_dir());
  }

  void remove_pid_file(const std::string& id) {
    if (env.exists(pid_path(id))) (void)env.remove(pid_path(id));
  }

  // Starts watching `pid` (whose pidfd is `pidfd`) as resource `id`.
  void track(const std::string& id, pid_t pid, int pidfd, uint64_t start_time, bool own) {
    Supervised s;
    s.pid = pid;
    s.start_time = start_time;
    s.own_child = own;
    s.watch = std::make_unique<PidWatch>(io, pidfd);
    std::weak_ptr<Impl> w = weak_from_this();
    s.watch->wait([w, id, pid] {
      if (auto self = w.lock(); self && !self->shut_down) self->on_process_exit(id, pid);
    });
    procs[id] = std::move(s);
  }

  // Finds an instance started before (by this runner or one before it, in another process
  // perhaps) through its pid file; the start time guards against a reused pid. Tracks it
  // and returns true if it runs; removes a stale pid file.
  bool adopt(const std::string& id) {
    auto text = env.read_file(pid_path(id));
    if (!text) return false;
    pid_t pid = 0;
    uint64_t start_time = 0;
    const char* p = text->data();
    const char* end = p + text->size();
    auto r1 = std::from_chars(p, end, pid);
    bool ok = r1.ec == std::errc() && r1.ptr < end && *r1.ptr == ' ' && pid > 1;
    if (ok) {
      auto r2 = std::from_chars(r1.ptr + 1, end, start_time);
      ok = r2.ec == std::errc();
    }
    if (!ok) {
      remove_pid_file(id);
      return false;
    }
    int pidfd = pidfd_open(pid);
    if (pidfd < 0) {
      remove_pid_file(id);
      return false;
    }
    // Checked after pidfd_open, so the pidfd is known to name the recorded process.
    auto now_start = proc_start_time(pid);
    if (!now_start || *now_start != start_time) {
      ::close(pidfd);
      remove_pid_file(id);
      return false;
    }
    int status = 0;
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    bool own = w == 0;  // our child, still running; -1/ECHILD: not ours
    if (w == pid) {     // our child, already dead (a zombie): reaped now
      ::close(pidfd);
      remove_pid_file(id);
      return false;
    }
    track(id, pid, pidfd, start_time, own);
    if (procs[id].watch->exited()) {  // a dead process that is not our child
      procs.erase(id);
      remove_pid_file(id);
      return false;
    }
    return true;
  }

  ExitStatus reap(const Supervised& s) {
    ExitStatus st;
    if (!s.own_child) return st;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(s.pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == s.pid) st = exit_status_from_wait(status);
    return st;
  }

  void on_process_exit(const std::string& id, pid_t pid) {
    auto it = procs.find(id);
    if (it == procs.end() || it->second.pid != pid) return;
    Supervised s = std::move(it->second);
    procs.erase(it);
    ExitStatus st = reap(s);
    // What the leader left behind in its group goes too, before anyone restarts it.
    kill_group(pid, SIGKILL);
    remove_pid_file(id);
    if (s.stopping) {
      StopState& stop = *s.stopping;
      stop.kill_timer.cancel();
      stop.give_up_timer.cancel();
      std::string msg = "stopped (pid " + std::to_string(pid) + ", " + st.describe() +
                        (stop.killed ? ", SIGKILLed after the stop timeout)" : ")");
      ActionResult r = make_result(stop.req, OcfCode::kSuccess, std::move(msg));
      r.exit_code = st.known && st.exited ? st.code : -1;
      return stop.done(std::move(r));
    }
    if (exit_handler) {
      ProcessExit e;
      e.resource_id = id;
      e.pid = pid;
      e.status = st;
      e.detected_at = Clock::now();
      exit_handler(e);
    }
  }

  // argv[0] as given if it holds a '/', else the first executable match in PATH.
  std::string resolve(const ProcessSpec& p) const {
    const std::string& name = p.argv[0];
    if (name.find('/') != std::string::npos) return name;
    auto it = p.env.find("PATH");
    std::string path = it != p.env.end() ? it->second : opt.path;
    size_t pos = 0;
    while (pos <= path.size()) {
      size_t colon = path.find(':', pos);
      if (colon == std::string::npos) colon = path.size();
      std::string dir = path.substr(pos, colon - pos);
      std::string cand = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
      pos = colon + 1;
    }
    return "";
  }

  bool running(const std::string& id) {
    auto it = procs.find(id);
    if (it != procs.end()) return !it->second.watch->exited();
    return adopt(id);
  }

  void run_process(const ActionRequest& req, Done done) {
    const std::string& id = req.resource.id;
    const ProcessSpec& p = req.resource.process;
    switch (req.action) {
      case Action::kMonitor:
      case Action::kProbe: {
        if (running(id)) {
          return done(make_result(req, OcfCode::kSuccess,
                                  "running (pid " + std::to_string(procs[id].pid) + ")"));
        }
        return done(make_result(req, OcfCode::kNotRunning, "not running"));
      }
      case Action::kValidateAll: {
        if (p.argv.empty()) return done(make_result(req, OcfCode::kErrConfigured, "empty argv"));
        if (resolve(p).empty()) {
          return done(make_result(req, OcfCode::kErrInstalled,
                                  "not installed: " + p.argv[0] + " not found"));
        }
        return done(make_result(req, OcfCode::kSuccess, ""));
      }
      case Action::kStart:
        return start_process(req, std::move(done));
      case Action::kStop:
        return stop_process(req, std::move(done));
      default:
        return done(make_result(
            req, OcfCode::kErrUnimplemented,
            "supervised processes have no " + std::string(action_name(req.action)) + " action"));
    }
  }

  void start_process(const ActionRequest& req, Done done) {
    const std::string& id = req.resource.id;
    const ProcessSpec& p = req.resource.process;
    if (running(id)) {
      return done(make_result(req, OcfCode::kSuccess,
                              "already running (pid " + std::to_string(procs[id].pid) + ")"));
    }
    if (p.argv.empty()) return done(make_result(req, OcfCode::kErrConfigured, "empty argv"));
    SpawnSpec spec;
    spec.path = resolve(p);
    if (spec.path.empty()) {
      return done(make_result(req, OcfCode::kErrInstalled,
                              "not installed: " + p.argv[0] + " not found in PATH"));
    }
    spec.argv = p.argv;
    for (const auto& [k, v] : p.env) spec.env.push_back(k + "=" + v);
    if (!p.env.contains("PATH")) spec.env.push_back("PATH=" + opt.path);
    spec.cwd = p.cwd;
    spec.capture_output = false;
    spec.output_path = p.output_path;
    spec.die_with_parent = p.die_with_agent;
    if (!p.user.empty()) {
      auto creds = lookup_user(p.user);
      if (!creds) return done(make_result(req, OcfCode::kErrConfigured, creds.error().message()));
      spec.credentials = *creds;
    }
    auto spawned = spawn(spec);
    if (!spawned) {
      Errc c = spawned.error().code();
      OcfCode code = c == Errc::kNotFound           ? OcfCode::kErrInstalled
                     : c == Errc::kPermissionDenied ? OcfCode::kErrPerm
                                                    : OcfCode::kErrGeneric;
      return done(make_result(req, code, "cannot start: " + spawned.error().message()));
    }
    auto start_time = proc_start_time(spawned->pid);
    Status st = start_time ? write_pid_file(id, spawned->pid, *start_time) : start_time.error();
    if (!st.ok()) {
      // Without a pid file a restart of the agent could start it twice: refuse.
      ::kill(-spawned->pid, SIGKILL);
      ::waitpid(spawned->pid, nullptr, 0);
      ::close(spawned->pidfd);
      return done(
          make_result(req, OcfCode::kErrGeneric, "cannot record the pid file: " + st.to_string()));
    }
    track(id, spawned->pid, spawned->pidfd, *start_time, /*own=*/true);
    done(make_result(req, OcfCode::kSuccess, "started (pid " + std::to_string(spawned->pid) + ")"));
  }

  void stop_process(const ActionRequest& req, Done done) {
    const std::string& id = req.resource.id;
    if (!running(id)) {
      remove_pid_file(id);
      return done(make_result(req, OcfCode::kSuccess, "not running"));
    }
    Supervised& s = procs[id];
    if (s.stopping) {  // cannot happen: actions of a resource are serialized
      return done(make_result(req, OcfCode::kErrGeneric, "a stop is already in progress"));
    }
    auto stop = std::make_shared<StopState>(io);
    stop->done = std::move(done);
    stop->req = req;
    s.stopping = stop;
    pidfd_send_signal(s.watch->pidfd(), SIGTERM);
    kill_group(s.pid, SIGTERM);
    pid_t pid = s.pid;
    int pidfd = s.watch->pidfd();
    std::weak_ptr<StopState> ws = stop;
    stop->kill_timer.expires_after(std::chrono::milliseconds(req.timeout_ms));
    stop->kill_timer.async_wait([ws, pid, pidfd](const boost::system::error_code& ec) {
      auto st = ws.lock();
      if (ec || !st) return;
      st->killed = true;
      pidfd_send_signal(pidfd, SIGKILL);
      kill_group(pid, SIGKILL);
    });
    std::weak_ptr<Impl> w = weak_from_this();
    stop->give_up_timer.expires_after(
        std::chrono::milliseconds(req.timeout_ms + opt.kill_grace_ms));
    stop->give_up_timer.async_wait([w, ws, id](const boost::system::error_code& ec) {
      auto st = ws.lock();
      auto self = w.lock();
      if (ec || !st || !self) return;
      // Still alive after SIGKILL (uninterruptible sleep): the stop failed.
      auto it = self->procs.find(id);
      if (it != self->procs.end()) it->second.stopping.reset();
      ActionResult r = make_result(
          st->req, OcfCode::kErrGeneric,
          "did not exit within " + std::to_string(self->opt.kill_grace_ms) + " ms of SIGKILL");
      r.timed_out = true;
      st->done(std::move(r));
    });
  }

  void shutdown() {
    shut_down = true;
    for (const auto& c : children) c->abandon();
    children.clear();
    for (auto& [id, s] : procs) {
      if (s.stopping) {
        s.stopping->kill_timer.cancel();
        s.stopping->give_up_timer.cancel();
      }
    }
    procs.clear();  // closes the pidfds; the processes keep running
    keys.clear();
    ready.clear();
  }

  asio::io_context& io;
  Options opt;
  Env& env;
  bool shut_down = false;
  std::map<std::string, KeyQueue> keys;
  std::deque<std::string> ready;
  int in_flight = 0;
  size_t queued_total = 0;
  std::set<std::shared_ptr<ChildRun>> children;
  struct Running {
    std::shared_ptr<ChildRun> run;
    bool cancelled = false;
  };
  std::map<std::string, Running> by_resource;  // the agent child running for a resource
  std::map<std::string, Supervised> procs;
  std::map<std::string, std::shared_ptr<ClassDriver>> drivers;
  std::function<void(const ProcessExit&)> exit_handler;
};

AgentRunner::AgentRunner(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

AgentRunner::~AgentRunner() { impl_->shutdown(); }

void AgentRunner::run(ActionRequest req, std::function<void(ActionResult)> done) {
  impl_->run(std::move(req), std::move(done));
}

void AgentRunner::fence(FenceRequest req, std::function<void(FenceResult)> done) {
  impl_->fence(std::move(req), std::move(done));
}

void AgentRunner::set_exit_handler(std::function<void(const ProcessExit&)> handler) {
  impl_->exit_handler = std::move(handler);
}

void AgentRunner::register_class(const std::string& class_name,
                                 std::shared_ptr<ClassDriver> driver) {
  impl_->drivers[class_name] = std::move(driver);
}

bool AgentRunner::cancel(const std::string& resource_id) { return impl_->cancel(resource_id); }

Result<StopRecipe> AgentRunner::stop_recipe(const ResourceSpec& resource, int timeout_ms) const {
  if (timeout_ms < 1 || timeout_ms > kMaxTimeoutMs) {
    return err(Errc::kInvalidArgument, "stop timeout " + std::to_string(timeout_ms) + " ms");
  }
  ActionRequest req;
  req.resource = resource;
  req.action = Action::kStop;
  req.timeout_ms = timeout_ms;
  Impl::Refusal no;
  std::optional<SpawnSpec> spec;
  switch (resource.agent.agent_class) {
    case AgentClass::kOcf:
      spec = impl_->ocf_spawn(req, &no);
      break;
    case AgentClass::kLsb:
      spec = impl_->lsb_spawn(req, &no);
      break;
    case AgentClass::kSystemd:
      spec = impl_->systemd_spawn(req, &no);
      break;
    default:
      return err(Errc::kInvalidArgument, "resource " + resource.id + ": agent " +
                                             resource.agent.to_string() +
                                             " has no stop a guard can run");
  }
  if (!spec) {
    return err(no.code == OcfCode::kErrInstalled ? Errc::kNotFound : Errc::kInvalidArgument,
               "resource " + resource.id + ": " + no.message);
  }
  StopRecipe r;
  r.resource_id = resource.id;
  r.path = spec->path;
  r.argv = std::move(spec->argv);
  r.env = std::move(spec->env);
  r.cwd = spec->cwd;
  r.timeout_ms = timeout_ms;
  return r;
}

int AgentRunner::in_flight() const { return impl_->in_flight; }
size_t AgentRunner::queued() const { return impl_->queued_total; }

int AgentRunner::process_pid_for_test(const std::string& resource_id) const {
  auto it = impl_->procs.find(resource_id);
  return it == impl_->procs.end() ? -1 : it->second.pid;
}

// --- promotion-score shims ------------------------------------------------------------

namespace {

constexpr const char kPromotionShim[] = R"SH(#!/bin/sh
# Written by Vigil (src/exec/runner.cc): stands in for Pacemaker's crm_attribute and
# crm_master for OCF agents, keeping the promotion score an agent sets in the file
# $VIGIL_PROMOTION_FILE (one integer, or INFINITY / -INFINITY).
all="$*"
promo=0
[ "${0##*/}" = crm_master ] && promo=1
op=
val=
quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--promotion) promo=1; case "$2" in ""|-*) ;; *) shift ;; esac ;;
    --promotion=*) promo=1 ;;
    -v|--update|--attr-value) op=set; val="$2"; shift ;;
    --update=*|--attr-value=*) op=set; val="${1#*=}" ;;
    -D|--delete) op=del ;;
    -G|--query) op=get ;;
    -q|--quiet|-Q) quiet=1 ;;
    -l|--lifetime|-N|--node|-n|--name|-t|--type|-r|--resource|-i|--id) shift ;;
  esac
  shift
done
f="$VIGIL_PROMOTION_FILE"
if [ "$promo" != 1 ] || [ -z "$f" ]; then
  echo "vigil: ${0##*/} $all: ignored (Vigil keeps promotion scores only)" >&2
  exit 0
fi
case "$op" in
  set)
    case "$val" in
      INFINITY|+INFINITY|-INFINITY) ;;
      ''|*[!0-9-]*|?*-*) echo "vigil: ${0##*/}: bad score '$val'" >&2; exit 1 ;;
    esac
    printf '%s\n' "$val" > "$f.tmp" && mv -f "$f.tmp" "$f" ;;
  del) rm -f "$f" ;;
  get)
    [ -f "$f" ] || exit 105
    if [ "$quiet" = 1 ]; then cat "$f"; else
      printf 'scope=status name=master-%s value=%s\n' "$OCF_RESOURCE_INSTANCE" "$(cat "$f")"
    fi ;;
esac
)SH";

// The scheduler's INFINITY (cluster::kInfinity; src/exec does not depend on src/cluster).
constexpr int64_t kScoreInfinity = 1000000;

}  // namespace

Status write_promotion_shims(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return err(Errc::kIoError, "create " + dir + ": " + ec.message());
  for (const char* name : {"crm_attribute", "crm_master"}) {
    std::string path = dir + "/" + name;
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << kPromotionShim;
      if (!out.flush()) return err(Errc::kIoError, "write " + tmp);
    }
    if (::chmod(tmp.c_str(), 0755) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      return err(Errc::kIoError, "install " + path + ": " + std::strerror(errno));
    }
  }
  return Status();
}

std::optional<int64_t> read_promotion_score(const std::string& promotion_dir,
                                            const std::string& resource_id) {
  if (promotion_dir.empty()) return std::nullopt;
  std::ifstream in(promotion_dir + "/" + resource_id);
  std::string v;
  if (!in || !std::getline(in, v)) return std::nullopt;
  if (v == "INFINITY" || v == "+INFINITY") return kScoreInfinity;
  if (v == "-INFINITY") return -kScoreInfinity;
  int64_t n = 0;
  auto [p, e] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (e != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return std::clamp(n, -kScoreInfinity, kScoreInfinity);
}

}  // namespace vigil::exec
