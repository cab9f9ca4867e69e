// Tests of AgentRunner with real agents: Debian's ocf:heartbeat:Dummy and nginx, test
// agents of our own (tests/unit/exec/ocf), an LSB script written here, fence_dummy, and
// supervised processes. Results are awaited by running the io_context until the callback
// arrives, bounded by a generous deadline; nothing sleeps.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "exec/runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "exec/child.h"

namespace vigil::exec {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kDeadlineMs = 60000;
constexpr const char* kTestOcfRoot = VIGIL_EXEC_TEST_DIR "/ocf";

// Runs `io` until `done()` is true or the deadline passes; returns whether it became true.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, int deadline_ms = kDeadlineMs) {
  bool expired = false;
  asio::steady_timer deadline(io);
  deadline.expires_after(std::chrono::milliseconds(deadline_ms));
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) expired = true;
  });
  io.restart();
  while (!done() && !expired) io.run_one();
  deadline.cancel();
  io.poll();  // let the cancelled deadline handler run while `expired` still exists
  return done();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vigil-exec-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A pid is gone once its pidfd is readable (or it no longer exists), awaited with poll().
bool process_gone(pid_t pid, int deadline_ms = 10000) {
  int fd = pidfd_open(pid);
  if (fd < 0) return errno == ESRCH;
  struct pollfd p {};
  p.fd = fd;
  p.events = POLLIN;
  int n = ::poll(&p, 1, deadline_ms);
  ::close(fd);
  return n == 1;
}

// Creates a FIFO at `path` and returns its read end (non-blocking open: no writer yet).
int make_fifo(const std::string& path) {
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
  return ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

// Waits (poll, bounded) for a child process to write a line into the FIFO; "" on timeout.
// Event-driven: the child says it is ready, no sleeping and re-checking.
std::string read_fifo_line(int fd, int deadline_ms = 20000) {
  std::string out;
  auto until = Clock::now() + std::chrono::milliseconds(deadline_ms);
  while (out.find('\n') == std::string::npos && Clock::now() < until) {
    struct pollfd p {};
    p.fd = fd;
    p.events = POLLIN;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) break;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    if (n == 0 && out.find('\n') == std::string::npos) break;  // writer gone without a line
  }
  return out;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A blocking HTTP GET / on 127.0.0.1:port; "" if nothing answers.
std::string http_get(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

class RunnerTest : public ::testing::Test {
 protected:
  AgentRunner::Options options(const std::string& ocf_root = "/usr/lib/ocf") {
    AgentRunner::Options o;
    o.ocf_root = ocf_root;
    o.data_dir = dir_.path();
    o.node_name = "n1";
    o.kill_grace_ms = 300;
    return o;
  }

  ActionResult act(AgentRunner& r, const ResourceSpec& res, Action a, int timeout_ms = 20000) {
    ActionRequest req;
    req.resource = res;
    req.action = a;
    req.timeout_ms = timeout_ms;
    std::optional<ActionResult> out;
    r.run(req, [&](ActionResult res_) { out = std::move(res_); });
    EXPECT_FALSE(out.has_value()) << "the callback must not run inline";
    EXPECT_TRUE(run_until(io_, [&] { return out.has_value(); })) << "no result in time";
    if (!out) return ActionResult{};
    std::printf("  %s\n", out->to_string().c_str());
    return *out;
  }

  static ResourceSpec resource(const std::string& id, const std::string& agent) {
    ResourceSpec r;
    r.id = id;
    auto name = parse_agent_name(agent);
    EXPECT_TRUE(name) << agent;
    if (name) r.agent = *name;
    return r;
  }

  asio::io_context io_;
  TempDir dir_;
};

bool have(const char* path) { return ::access(path, X_OK) == 0; }

#define REQUIRE_FILE(path, package)                                                         \
  if (!have(path)) {                                                                        \
    GTEST_SKIP() << path << " is missing: install Debian's " package " (scripts/setup.sh)"; \
  }

TEST_F(RunnerTest, DummyStartMonitorStopMonitor) {
  REQUIRE_FILE("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents");
  AgentRunner runner(io_, options());
  ResourceSpec dummy = resource("dummy1", "ocf:heartbeat:Dummy");
  dummy.params["state"] = dir_ / "dummy1.state";

  ActionResult probe = act(runner, dummy, Action::kProbe);
  EXPECT_EQ(probe.ocf, OcfCode::kNotRunning);
  EXPECT_EQ(probe.outcome, Outcome::kNotRunning);

  ActionResult start = act(runner, dummy, Action::kStart);
  EXPECT_EQ(start.ocf, OcfCode::kSuccess) << start.stderr_tail;
  EXPECT_EQ(start.exit_code, 0);
  EXPECT_FALSE(start.timed_out);
  EXPECT_TRUE(fs::exists(dir_ / "dummy1.state"));

  EXPECT_EQ(act(runner, dummy, Action::kMonitor).ocf, OcfCode::kSuccess);
  EXPECT_EQ(act(runner, dummy, Action::kStart).ocf, OcfCode::kSuccess);  // idempotent
  EXPECT_EQ(act(runner, dummy, Action::kStop).ocf, OcfCode::kSuccess);
  EXPECT_FALSE(fs::exists(dir_ / "dummy1.state"));
  ActionResult mon = act(runner, dummy, Action::kMonitor);
  EXPECT_EQ(mon.ocf, OcfCode::kNotRunning);
  EXPECT_EQ(mon.exit_code, 7);

  ActionResult meta = act(runner, dummy, Action::kMetaData);
  EXPECT_EQ(meta.ocf, OcfCode::kSuccess);
  EXPECT_NE(meta.stdout_tail.find("</resource-agent>"), std::string::npos);
  EXPECT_EQ(act(runner, dummy, Action::kValidateAll).ocf, OcfCode::kSuccess);
}

// The stop recipe is the stop this runner would run: executed on its own (as the guard
// does, with no runner), it stops what the runner started.
TEST_F(RunnerTest, DummyStopRecipeStopsWithoutTheRunner) {
  REQUIRE_FILE("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents");
  AgentRunner runner(io_, options());
  ResourceSpec dummy = resource("dummy-guarded", "ocf:heartbeat:Dummy");
  dummy.params["state"] = dir_ / "guarded.state";
  ASSERT_EQ(act(runner, dummy, Action::kStart).ocf, OcfCode::kSuccess);
  ASSERT_TRUE(fs::exists(dir_ / "guarded.state"));

  auto recipe = runner.stop_recipe(dummy, 5000);
  ASSERT_TRUE(recipe.has_value()) << recipe.error().to_string();
  EXPECT_EQ(recipe->resource_id, "dummy-guarded");
  EXPECT_EQ(recipe->path, "/usr/lib/ocf/resource.d/heartbeat/Dummy");
  EXPECT_EQ(recipe->argv.back(), "stop");
  EXPECT_EQ(recipe->timeout_ms, 5000);
  auto text = format_stop_recipe(*recipe);
  ASSERT_TRUE(text.has_value()) << text.error().to_string();
  auto back = parse_stop_recipe(*text);
  ASSERT_TRUE(back.has_value()) << back.error().to_string();

  SpawnSpec spec;
  spec.path = back->path;
  spec.argv = back->argv;
  spec.env = back->env;
  spec.cwd = back->cwd;
  std::optional<Result<ChildRunResult>> out;
  auto run = run_child(io_, spec, RunLimits{}, [&](Result<ChildRunResult> r) { out = r; });
  ASSERT_TRUE(run_until(io_, [&] { return out.has_value(); }));
  ASSERT_TRUE(out->has_value()) << out->error().to_string();
  EXPECT_EQ((*out)->status.code, 0) << (*out)->stderr_tail;
  EXPECT_FALSE(fs::exists(dir_ / "guarded.state"));
  EXPECT_EQ(act(runner, dummy, Action::kMonitor).ocf, OcfCode::kNotRunning);
}

TEST_F(RunnerTest, StopRecipeRefusesWhatItCannotStop) {
  AgentRunner runner(io_, options());
  auto proc = runner.stop_recipe(resource("p", "process"), 1000);
  ASSERT_FALSE(proc.has_value());
  EXPECT_EQ(proc.error().code(), Errc::kInvalidArgument);
  auto missing = runner.stop_recipe(resource("m", "ocf:heartbeat:NoSuchAgent"), 1000);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_NE(missing.error().message().find("NoSuchAgent"), std::string::npos);
  EXPECT_FALSE(runner.stop_recipe(resource("d", "ocf:heartbeat:Dummy"), 0).has_value());
}

TEST_F(RunnerTest, DummyReportsItsExitReason) {
  REQUIRE_FILE("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents");
  AgentRunner runner(io_, options());
  ResourceSpec dummy = resource("dummy2", "ocf:heartbeat:Dummy");
  dummy.params["state"] = "/nonexistent-dir/x/dummy.state";
  ActionResult r = act(runner, dummy, Action::kValidateAll);
  EXPECT_NE(r.ocf, OcfCode::kSuccess);
  EXPECT_NE(r.message.find("not writable"), std::string::npos) << r.message;
}

TEST_F(RunnerTest, NginxStartMonitorStop) {
  REQUIRE_FILE("/usr/lib/ocf/resource.d/heartbeat/nginx", "resource-agents");
  REQUIRE_FILE("/usr/sbin/nginx", "nginx");
  if (::geteuid() != 0) GTEST_SKIP() << "nginx as an OCF resource needs root";
  uint16_t port = free_port();
  std::string d = dir_.path();
  fs::create_directories(d + "/tmp");
  std::string conf =
      "worker_processes 1;\n"
      "pid " +
      d +
      "/nginx.pid;\n"
      "error_log " +
      d +
      "/error.log;\n"
      "events { worker_connections 64; }\n"
      "http {\n"
      "  access_log off;\n"
      "  client_body_temp_path " +
      d +
      "/tmp/body;\n"
      "  proxy_temp_path " +
      d +
      "/tmp/proxy;\n"
      "  fastcgi_temp_path " +
      d +
      "/tmp/fastcgi;\n"
      "  uwsgi_temp_path " +
      d +
      "/tmp/uwsgi;\n"
      "  scgi_temp_path " +
      d +
      "/tmp/scgi;\n"
      "  server {\n"
      "    listen 127.0.0.1:" +
      std::to_string(port) +
      ";\n"
      "    location / { return 200 \"vigil-nginx-ok\\n\"; }\n"
      "  }\n"
      "}\n";
  write_file(d + "/nginx.conf", conf);

  AgentRunner runner(io_, options());
  ResourceSpec web = resource("web", "ocf:heartbeat:nginx");
  web.params["configfile"] = d + "/nginx.conf";
  web.params["httpd"] = "/usr/sbin/nginx";

  EXPECT_EQ(act(runner, web, Action::kProbe).ocf, OcfCode::kNotRunning);
  ActionResult start = act(runner, web, Action::kStart, 60000);
  ASSERT_EQ(start.ocf, OcfCode::kSuccess) << start.message << "\n" << start.stderr_tail;
  EXPECT_NE(http_get(port).find("vigil-nginx-ok"), std::string::npos);
  EXPECT_EQ(act(runner, web, Action::kMonitor).ocf, OcfCode::kSuccess);
  ActionResult stop = act(runner, web, Action::kStop, 60000);
  EXPECT_EQ(stop.ocf, OcfCode::kSuccess) << stop.message << "\n" << stop.stderr_tail;
  EXPECT_EQ(act(runner, web, Action::kMonitor).ocf, OcfCode::kNotRunning);
  EXPECT_EQ(http_get(port), "");
}

TEST_F(RunnerTest, HungAgentIsKilledWithItsWholeProcessGroup) {
  AgentRunner runner(io_, options(kTestOcfRoot));
  ResourceSpec hang = resource("hang1", "ocf:vigil-test:Hang");
  std::string child_pid_file = dir_ / "grandchild.pid";
  hang.params["child_pid_file"] = child_pid_file;
  auto t0 = Clock::now();
  ActionResult r = act(runner, hang, Action::kStart, 1000);
  auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric);
  EXPECT_EQ(r.outcome, Outcome::kSoftError);
  EXPECT_NE(r.message.find("timed out after 1000 ms"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("SIGKILL"), std::string::npos) << r.message;  // it ignored TERM
  EXPECT_GE(elapsed_ms, 1000 + 300);  // timeout, then the grace before SIGKILL
  EXPECT_NE(r.stdout_tail.find("hanging in start"), std::string::npos);
  pid_t grandchild = std::atoi(read_file(child_pid_file).c_str());
  ASSERT_GT(grandchild, 1);
  EXPECT_TRUE(process_gone(grandchild)) << "the agent's grandchild survived";
  std::printf("  hung agent: result after %lld ms (timeout 1000 ms, grace 300 ms)\n",
              static_cast<long long>(elapsed_ms));
}

TEST_F(RunnerTest, DestroyingTheRunnerKillsAgentsInFlight) {
  std::string fifo = dir_ / "pids";
  int fd = make_fifo(fifo);
  ASSERT_GE(fd, 0);
  bool called = false;
  {
    std::optional<AgentRunner> runner;
    runner.emplace(io_, options(kTestOcfRoot));
    ActionRequest req;
    req.resource = resource("hang2", "ocf:vigil-test:Hang");
    req.resource.params["child_pid_file"] = fifo;
    req.action = Action::kStart;
    req.timeout_ms = 600000;
    runner->run(req, [&](ActionResult) { called = true; });
    std::string line = read_fifo_line(fd);
    ::close(fd);
    pid_t grandchild = 0, agent = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%d %d", &grandchild, &agent), 2) << line;
    ASSERT_EQ(::kill(agent, 0), 0);
    // The runner goes away (daemon shutdown) while the agent hangs.
    runner.reset();
    EXPECT_TRUE(process_gone(grandchild));
    EXPECT_NE(::kill(agent, 0), 0) << "the agent was not killed and reaped";
  }
  io_.restart();
  io_.poll();
  EXPECT_FALSE(called);
}

// A node that loses its hold cancels the start of an exclusive resource: the agent's whole
// process group dies at once and the start completes as cancelled, not timed out.
TEST_F(RunnerTest, CancelKillsTheRunningStartAtOnce) {
  AgentRunner runner(io_, options(kTestOcfRoot));
  EXPECT_FALSE(runner.cancel("hang3"));  // nothing runs for it
  std::string fifo = dir_ / "pids3";
  int fd = make_fifo(fifo);
  ASSERT_GE(fd, 0);
  ActionRequest req;
  req.resource = resource("hang3", "ocf:vigil-test:Hang");
  req.resource.params["child_pid_file"] = fifo;
  req.action = Action::kStart;
  req.timeout_ms = 600000;
  std::optional<ActionResult> out;
  runner.run(req, [&](ActionResult r) { out = std::move(r); });
  std::string line = read_fifo_line(fd);
  ::close(fd);
  pid_t grandchild = 0, agent = 0;
  ASSERT_EQ(std::sscanf(line.c_str(), "%d %d", &grandchild, &agent), 2) << line;
  auto t0 = Clock::now();
  EXPECT_TRUE(runner.cancel("hang3"));
  EXPECT_FALSE(runner.cancel("hang3"));  // once
  ASSERT_TRUE(run_until(io_, [&] { return out.has_value(); }));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(ms, 2000);  // not the 600 s timeout, nor the kill grace
  EXPECT_FALSE(out->timed_out);
  EXPECT_EQ(out->ocf, OcfCode::kErrGeneric);
  EXPECT_NE(out->message.find("cancelled"), std::string::npos) << out->message;
  EXPECT_TRUE(process_gone(grandchild));
  EXPECT_TRUE(process_gone(agent));
}

// die_with_parent: the kernel kills the child when the process that spawned it exits (an
// exclusive supervised process must not outlive its agent). Without it the child lives on.
TEST_F(RunnerTest, DieWithParentKillsTheChildWhenItsSpawnerExits) {
  for (bool die : {true, false}) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t middle = ::fork();
    ASSERT_GE(middle, 0);
    if (middle == 0) {
      SpawnSpec spec;
      spec.path = "/bin/sleep";
      spec.argv = {"sleep", "100000"};
      spec.capture_output = false;
      spec.die_with_parent = die;
      auto s = spawn(spec);
      pid_t pid = s ? s->pid : -1;
      (void)!::write(fds[1], &pid, sizeof pid);
      ::_exit(0);
    }
    ::close(fds[1]);
    pid_t child = -1;
    ASSERT_EQ(::read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
    ::close(fds[0]);
    ASSERT_GT(child, 1);
    int st = 0;
    ::waitpid(middle, &st, 0);
    if (die) {
      EXPECT_TRUE(process_gone(child, 5000)) << "the child outlived its parent";
    } else {
      EXPECT_FALSE(process_gone(child, 200)) << "the child died without die_with_parent";
      ::kill(child, SIGKILL);
      EXPECT_TRUE(process_gone(child, 5000));
    }
  }
}

// The crm_attribute / crm_master shims, run as ocf-shellfuncs runs them.
TEST_F(RunnerTest, PromotionShimsRecordWhatAgentsSet) {
  std::string bin = dir_ / "bin";
  std::string promo = dir_ / "promotion";
  ASSERT_TRUE(write_promotion_shims(bin).ok());
  fs::create_directories(promo);
  auto run = [&](const std::string& args) {
    std::string cmd = "OCF_RESOURCE_INSTANCE=db VIGIL_PROMOTION_FILE=" + promo + "/db " + bin +
                      "/" + args + " 2>/dev/null";
    return std::system(cmd.c_str());
  };
  EXPECT_FALSE(read_promotion_score(promo, "db").has_value());
  EXPECT_EQ(run("crm_attribute -p -v 5"), 0);  // ocf_promotion_score -v 5 (feature set 3.10+)
  EXPECT_EQ(read_promotion_score(promo, "db"), 5);
  EXPECT_EQ(run("crm_master -l reboot -v 10"), 0);  // older agents
  EXPECT_EQ(read_promotion_score(promo, "db"), 10);
  EXPECT_EQ(run("crm_attribute --promotion=db --update=-3"), 0);
  EXPECT_EQ(read_promotion_score(promo, "db"), -3);
  EXPECT_EQ(run("crm_master -l reboot -v INFINITY"), 0);
  EXPECT_EQ(read_promotion_score(promo, "db"), 1000000);
  EXPECT_NE(run("crm_attribute -p -v x7"), 0);  // not a score: refused, the last one kept
  EXPECT_EQ(read_promotion_score(promo, "db"), 1000000);
  EXPECT_EQ(run("crm_attribute -p -D"), 0);
  EXPECT_FALSE(read_promotion_score(promo, "db").has_value());
  EXPECT_NE(run("crm_master -G -q"), 0);                      // nothing to query
  EXPECT_EQ(run("crm_attribute -N n1 -n color -v blue"), 0);  // a node attribute: ignored
  EXPECT_FALSE(read_promotion_score(promo, "db").has_value());
}

TEST_F(RunnerTest, MissingAgentIsNotInstalled) {
  AgentRunner runner(io_, options());
  ActionResult r = act(runner, resource("ghost", "ocf:heartbeat:NoSuchAgent"), Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrInstalled);
  EXPECT_EQ(r.outcome, Outcome::kHardError);
  EXPECT_NE(r.message.find("not installed"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("/usr/lib/ocf/resource.d/heartbeat/NoSuchAgent"), std::string::npos);

  ActionResult lsb = act(runner, resource("ghost2", "lsb:no-such-script"), Action::kStart);
  EXPECT_EQ(lsb.ocf, OcfCode::kErrInstalled);
  ActionResult ext = act(runner, resource("vip1", "vip"), Action::kStart);
  EXPECT_EQ(ext.ocf, OcfCode::kErrInstalled);
  EXPECT_NE(ext.message.find("no driver"), std::string::npos) << ext.message;
}

TEST_F(RunnerTest, BadRequestsFailClosed) {
  AgentRunner runner(io_, options(kTestOcfRoot));
  ResourceSpec bad_id = resource("a/b", "ocf:vigil-test:Recorder");
  EXPECT_EQ(act(runner, bad_id, Action::kStart).ocf, OcfCode::kErrConfigured);
  ResourceSpec bad_param = resource("rec", "ocf:vigil-test:Recorder");
  bad_param.params["not-a-name"] = "1";
  ActionResult r = act(runner, bad_param, Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrConfigured);
  EXPECT_NE(r.message.find("not-a-name"), std::string::npos);
  EXPECT_EQ(act(runner, resource("rec", "ocf:vigil-test:Recorder"), Action::kStart, 0).ocf,
            OcfCode::kErrConfigured);
}

TEST_F(RunnerTest, AgentsGetACleanEnvironmentNoInheritedFdsAndDevNullStdin) {
  // A descriptor without O_CLOEXEC, as a careless library would leave one.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 3);
  ::setenv("VIGIL_EXEC_LEAK_CANARY", "1", 1);
  AgentRunner runner(io_, options(kTestOcfRoot));
  ActionResult fds = act(runner, resource("fd", "ocf:vigil-test:Fdcheck"), Action::kMonitor);
  ::close(leaky);
  ASSERT_EQ(fds.ocf, OcfCode::kSuccess);
  // 0-2 and the directory `ls` itself opened (3); nothing else.
  EXPECT_EQ(fds.stdout_tail.substr(0, fds.stdout_tail.find('\n')), "0 1 2 3 ");
  EXPECT_NE(fds.stdout_tail.find("/dev/null"), std::string::npos);

  ResourceSpec rec = resource("envcheck", "ocf:vigil-test:Recorder");
  rec.params["log"] = dir_ / "log";
  rec.params["env_file"] = dir_ / "env";
  ActionRequest req;
  req.resource = rec;
  req.action = Action::kMonitor;
  req.timeout_ms = 15000;
  req.interval_ms = 10000;
  std::optional<ActionResult> out;
  runner.run(req, [&](ActionResult r) { out = r; });
  ASSERT_TRUE(run_until(io_, [&] { return out.has_value(); }));
  std::string env = read_file(dir_ / "env");
  for (const char* kv :
       {"OCF_ROOT=", "OCF_RA_VERSION_MAJOR=1\n", "OCF_RA_VERSION_MINOR=1\n",
        "OCF_RESOURCE_INSTANCE=envcheck\n", "OCF_RESOURCE_TYPE=Recorder\n",
        "OCF_RESOURCE_PROVIDER=vigil-test\n", "OCF_RESKEY_CRM_meta_timeout=15000\n",
        "OCF_RESKEY_CRM_meta_interval=10000\n", "OCF_RESKEY_CRM_meta_on_node=n1\n"}) {
    EXPECT_NE(env.find(kv), std::string::npos) << kv << " missing in:\n" << env;
  }
  EXPECT_EQ(env.find("VIGIL_EXEC_LEAK_CANARY"), std::string::npos) << env;
  ::unsetenv("VIGIL_EXEC_LEAK_CANARY");
}

TEST_F(RunnerTest, OutputIsCappedToTheTail) {
  AgentRunner::Options o = options(kTestOcfRoot);
  o.output_tail_bytes = 1024;
  AgentRunner runner(io_, o);
  ActionResult r = act(runner, resource("chatty", "ocf:vigil-test:Chatty"), Action::kMonitor);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess);
  EXPECT_EQ(r.stdout_tail.size(), 1024u);
  EXPECT_EQ(r.stderr_tail.size(), 1024u);
  EXPECT_EQ(r.stdout_tail.substr(r.stdout_tail.size() - 11), "STDOUT-END\n");
  EXPECT_EQ(r.stderr_tail.substr(r.stderr_tail.size() - 11), "STDERR-END\n");
}

TEST_F(RunnerTest, ActionsOfOneResourceAreSerializedAndOthersCapped) {
  AgentRunner::Options o = options(kTestOcfRoot);
  o.max_children = 2;
  AgentRunner runner(io_, o);
  std::string log = dir_ / "log";
  int done = 0;
  int max_in_flight = 0;
  std::vector<ActionResult> results;
  auto submit = [&](const std::string& id, Action a) {
    ResourceSpec rec = resource(id, "ocf:vigil-test:Recorder");
    rec.params["log"] = log;
    ActionRequest req;
    req.resource = rec;
    req.action = a;
    req.timeout_ms = 20000;
    runner.run(req, [&](ActionResult r) {
      max_in_flight = std::max(max_in_flight, runner.in_flight());
      results.push_back(std::move(r));
      ++done;
    });
    max_in_flight = std::max(max_in_flight, runner.in_flight());
  };
  for (Action a : {Action::kStart, Action::kMonitor, Action::kStop}) submit("same", a);
  for (int i = 0; i < 5; ++i) submit("other" + std::to_string(i), Action::kMonitor);
  EXPECT_EQ(runner.in_flight(), 2);
  EXPECT_EQ(runner.queued(), 6u);
  ASSERT_TRUE(run_until(io_, [&] { return done == 8; }));
  EXPECT_LE(max_in_flight, 2);
  EXPECT_EQ(runner.in_flight(), 0);
  EXPECT_EQ(runner.queued(), 0u);
  // The actions of "same" never overlap and keep their order.
  std::istringstream lines(read_file(log));
  std::string line;
  std::vector<std::string> same;
  while (std::getline(lines, line)) {
    if (line.rfind("same ", 0) == 0) same.push_back(line);
  }
  EXPECT_EQ(same,
            (std::vector<std::string>{"same start begin", "same start end", "same monitor begin",
                                      "same monitor end", "same stop begin", "same stop end"}));
  for (const auto& r : results) EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.to_string();
}

TEST_F(RunnerTest, FullQueueIsRefusedWithAResult) {
  AgentRunner::Options o = options(kTestOcfRoot);
  o.max_children = 1;
  o.max_queued_per_resource = 2;
  AgentRunner runner(io_, o);
  std::vector<ActionResult> results;
  for (int i = 0; i < 4; ++i) {
    ResourceSpec rec = resource("q", "ocf:vigil-test:Recorder");
    rec.params["log"] = dir_ / "log";
    ActionRequest req;
    req.resource = rec;
    req.action = Action::kMonitor;
    runner.run(req, [&](ActionResult r) { results.push_back(std::move(r)); });
  }
  ASSERT_TRUE(run_until(io_, [&] { return results.size() == 4; }));
  int refused = 0;
  for (const auto& r : results) {
    if (r.message.find("queue is full") != std::string::npos) ++refused;
  }
  EXPECT_EQ(refused, 1);  // one runs, two wait, the fourth is refused
}

TEST_F(RunnerTest, ExitCodesAndReasonsOfAgentsAreMapped) {
  AgentRunner runner(io_, options(kTestOcfRoot));
  ResourceSpec rec = resource("codes", "ocf:vigil-test:Recorder");
  rec.params["log"] = dir_ / "log";
  rec.params["rc"] = "8";
  EXPECT_EQ(act(runner, rec, Action::kMonitor).outcome, Outcome::kPromoted);
  rec.params["rc"] = "6";
  rec.params["reason"] = "configfile is missing";
  ActionResult r = act(runner, rec, Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrConfigured);
  EXPECT_EQ(r.outcome, Outcome::kFatalError);
  EXPECT_EQ(r.message, "configfile is missing");
  rec.params.erase("reason");
  rec.params["rc"] = "77";
  r = act(runner, rec, Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric);
  EXPECT_EQ(r.exit_code, 77);
}

// --- LSB -------------------------------------------------------------------------------

TEST_F(RunnerTest, LsbInitScriptWithStatusMapping) {
  std::string init_dir = dir_ / "init.d";
  fs::create_directories(init_dir);
  std::string state = dir_ / "lsb.state";
  write_file(init_dir + "/vigil-test",
             "#!/bin/sh\n"
             "# LSB test service: its state is a file.\n"
             "case \"$1\" in\n"
             "  start) touch " +
                 state +
                 "; exit 0 ;;\n"
                 "  stop) rm -f " +
                 state +
                 "; exit 0 ;;\n"
                 "  status) [ -f " +
                 state + " ] && exit 0; [ -f " + state +
                 ".stale ] && exit 1; exit 3 ;;\n"
                 "  reload) exit 3 ;;\n"
                 "  *) exit 2 ;;\n"
                 "esac\n",
             0755);
  AgentRunner::Options o = options();
  o.lsb_dir = init_dir;
  AgentRunner runner(io_, o);
  ResourceSpec svc = resource("svc", "lsb:vigil-test");
  EXPECT_EQ(act(runner, svc, Action::kProbe).ocf, OcfCode::kNotRunning);
  EXPECT_EQ(act(runner, svc, Action::kStart).ocf, OcfCode::kSuccess);
  EXPECT_EQ(act(runner, svc, Action::kMonitor).ocf, OcfCode::kSuccess);
  EXPECT_EQ(act(runner, svc, Action::kStop).ocf, OcfCode::kSuccess);
  EXPECT_EQ(act(runner, svc, Action::kMonitor).ocf, OcfCode::kNotRunning);
  write_file(state + ".stale", "");
  ActionResult dead = act(runner, svc, Action::kMonitor);
  EXPECT_EQ(dead.ocf, OcfCode::kErrGeneric);  // LSB 1: dead, pid file left: not clean
  EXPECT_NE(dead.message.find("pid file"), std::string::npos);
  EXPECT_EQ(act(runner, svc, Action::kReload).ocf, OcfCode::kErrUnimplemented);
  EXPECT_EQ(act(runner, svc, Action::kPromote).ocf, OcfCode::kErrUnimplemented);
}

// --- systemd ---------------------------------------------------------------------------

TEST_F(RunnerTest, SystemdFailsClearlyWhereSystemdDoesNotRun) {
  AgentRunner::Options o = options();
  o.systemd_runtime_dir = dir_ / "no-systemd-here";
  AgentRunner runner(io_, o);
  ActionResult r = act(runner, resource("sd", "systemd:nginx.service"), Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrInstalled);
  EXPECT_EQ(r.outcome, Outcome::kHardError);
  EXPECT_NE(r.message.find("systemd is not running on this host"), std::string::npos) << r.message;
}

TEST_F(RunnerTest, SystemdUnitOnThisHost) {
  if (!fs::exists("/run/systemd/system")) {
    GTEST_SKIP() << "systemd is not PID 1 on this host (no /run/systemd/system): "
                    "systemd:UNIT resources cannot run here";
  }
  AgentRunner runner(io_, options());
  ActionResult r =
      act(runner, resource("sd", "systemd:vigil-no-such-unit.service"), Action::kProbe);
  EXPECT_EQ(r.ocf, OcfCode::kNotRunning) << r.message;
}

// --- fence -----------------------------------------------------------------------------

TEST_F(RunnerTest, FenceDummyThroughStdin) {
  REQUIRE_FILE("/usr/sbin/fence_dummy", "fence-agents");
  AgentRunner runner(io_, options());
  std::string status_file = dir_ / "fence.status";
  auto fence = [&](FenceAction a, std::map<std::string, std::string> extra = {}) {
    FenceRequest req;
    req.device_id = "dummy-pdu";
    req.agent = "fence_dummy";
    req.action = a;
    req.params = {{"type", "file"}, {"status_file", status_file}, {"plug", "n2"}};
    for (auto& [k, v] : extra) req.params[k] = v;
    req.timeout_ms = 30000;
    std::optional<FenceResult> out;
    runner.fence(req, [&](FenceResult r) { out = std::move(r); });
    EXPECT_TRUE(run_until(io_, [&] { return out.has_value(); }));
    if (out) {
      std::printf("  fence %s: %s exit %d in %lld ms %s\n",
                  std::string(fence_action_name(a)).c_str(),
                  std::string(fence_outcome_name(out->outcome)).c_str(), out->exit_code,
                  static_cast<long long>(out->duration_ms), out->message.c_str());
    }
    return out.value_or(FenceResult{});
  };
  FenceResult st = fence(FenceAction::kStatus);
  EXPECT_EQ(st.outcome, FenceOutcome::kPowerOff);
  EXPECT_EQ(st.exit_code, 2);
  EXPECT_EQ(st.power_on, std::optional<bool>(false));
  EXPECT_EQ(fence(FenceAction::kOn).outcome, FenceOutcome::kSuccess);
  st = fence(FenceAction::kStatus);
  EXPECT_EQ(st.outcome, FenceOutcome::kSuccess);
  EXPECT_EQ(st.power_on, std::optional<bool>(true));
  EXPECT_EQ(fence(FenceAction::kOff).outcome, FenceOutcome::kSuccess);
  EXPECT_EQ(fence(FenceAction::kStatus).power_on, std::optional<bool>(false));
  FenceResult bad = fence(FenceAction::kOff, {{"plug", "n2\naction=on"}});
  EXPECT_EQ(bad.outcome, FenceOutcome::kFailed);
  EXPECT_NE(bad.message.find("newline"), std::string::npos);
  FenceRequest missing;
  missing.device_id = "x";
  missing.agent = "fence_no_such_agent";
  std::optional<FenceResult> out;
  runner.fence(missing, [&](FenceResult r) { out = r; });
  ASSERT_TRUE(run_until(io_, [&] { return out.has_value(); }));
  EXPECT_EQ(out->outcome, FenceOutcome::kFailed);
  EXPECT_NE(out->message.find("not installed"), std::string::npos);
}

// --- supervised processes --------------------------------------------------------------

ResourceSpec sleeper(const std::string& id) {
  ResourceSpec r;
  r.id = id;
  r.agent = *parse_agent_name("process");
  r.process.argv = {"sleep", "100000"};
  return r;
}

TEST_F(RunnerTest, ProcessDeathIsReportedAtOnce) {
  AgentRunner runner(io_, options());
  std::optional<ProcessExit> exit;
  runner.set_exit_handler([&](const ProcessExit& e) { exit = e; });
  ResourceSpec p = sleeper("sleeper");
  ActionResult start = act(runner, p, Action::kStart);
  ASSERT_EQ(start.ocf, OcfCode::kSuccess) << start.message;
  EXPECT_EQ(act(runner, p, Action::kMonitor).ocf, OcfCode::kSuccess);
  pid_t pid = runner.process_pid_for_test("sleeper");
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(fs::exists(dir_ / "process/sleeper.pid"));

  auto killed_at = Clock::now();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(run_until(io_, [&] { return exit.has_value(); }));
  auto latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(exit->detected_at - killed_at).count();
  std::printf("  death-detection latency of a SIGKILLed supervised process: %.3f ms\n",
              static_cast<double>(latency_us) / 1000.0);
  RecordProperty("death_detection_latency_us", std::to_string(latency_us));
  EXPECT_LT(latency_us, 1000 * 1000);  // generous; typically well under 1 ms
  EXPECT_EQ(exit->resource_id, "sleeper");
  EXPECT_EQ(exit->pid, pid);
  EXPECT_TRUE(exit->status.known);
  EXPECT_EQ(exit->status.signal, SIGKILL);
  EXPECT_FALSE(fs::exists(dir_ / "process/sleeper.pid"));
  EXPECT_EQ(act(runner, p, Action::kMonitor).ocf, OcfCode::kNotRunning);
}

TEST_F(RunnerTest, ProcessStopIsNotAnUnexpectedExit) {
  AgentRunner runner(io_, options());
  int exits = 0;
  runner.set_exit_handler([&](const ProcessExit&) { ++exits; });
  ResourceSpec p = sleeper("stoppable");
  ASSERT_EQ(act(runner, p, Action::kStart).ocf, OcfCode::kSuccess);
  pid_t pid = runner.process_pid_for_test("stoppable");
  EXPECT_EQ(act(runner, p, Action::kStart).ocf, OcfCode::kSuccess);  // idempotent
  EXPECT_EQ(runner.process_pid_for_test("stoppable"), pid);          // not started twice
  ActionResult stop = act(runner, p, Action::kStop);
  EXPECT_EQ(stop.ocf, OcfCode::kSuccess);
  EXPECT_NE(stop.message.find("SIGTERM"), std::string::npos) << stop.message;
  EXPECT_TRUE(process_gone(pid));
  EXPECT_EQ(act(runner, p, Action::kStop).ocf, OcfCode::kSuccess);  // idempotent
  EXPECT_EQ(act(runner, p, Action::kMonitor).ocf, OcfCode::kNotRunning);
  EXPECT_EQ(exits, 0);
}

TEST_F(RunnerTest, ProcessThatIgnoresSigtermIsKilledAfterTheStopTimeout) {
  AgentRunner runner(io_, options());
  ResourceSpec p;
  p.id = "stubborn";
  p.agent = *parse_agent_name("process");
  std::string fifo = dir_ / "ready";
  int fd = make_fifo(fifo);
  p.process.argv = {"/bin/sh", "-c",
                    "trap '' TERM; echo ready > " + fifo + "; while :; do sleep 1; done"};
  ASSERT_EQ(act(runner, p, Action::kStart).ocf, OcfCode::kSuccess);
  pid_t pid = runner.process_pid_for_test("stubborn");
  // Stop only once the shell ignores SIGTERM, or it would die of the first signal.
  EXPECT_EQ(read_fifo_line(fd), "ready\n");
  ::close(fd);
  ActionResult stop = act(runner, p, Action::kStop, 300);
  EXPECT_EQ(stop.ocf, OcfCode::kSuccess) << stop.message;
  EXPECT_NE(stop.message.find("SIGKILLed after the stop timeout"), std::string::npos)
      << stop.message;
  EXPECT_GE(stop.duration_ms, 300);
  EXPECT_TRUE(process_gone(pid));
}

TEST_F(RunnerTest, ProbeFindsARunningProcessAfterTheRunnerIsRecreated) {
  pid_t pid = -1;
  {
    AgentRunner first(io_, options());
    ASSERT_EQ(act(first, sleeper("survivor"), Action::kStart).ocf, OcfCode::kSuccess);
    pid = first.process_pid_for_test("survivor");
  }  // an agent restart: the supervised process keeps running
  ASSERT_EQ(::kill(pid, 0), 0) << "the runner's destructor must not stop processes";
  AgentRunner second(io_, options());
  EXPECT_EQ(second.process_pid_for_test("survivor"), -1);
  ActionResult probe = act(second, sleeper("survivor"), Action::kProbe);
  EXPECT_EQ(probe.ocf, OcfCode::kSuccess) << probe.message;
  EXPECT_EQ(second.process_pid_for_test("survivor"), pid);
  // start finds it too: nothing is started twice.
  EXPECT_EQ(act(second, sleeper("survivor"), Action::kStart).ocf, OcfCode::kSuccess);
  EXPECT_EQ(second.process_pid_for_test("survivor"), pid);
  // And the adopted process is watched: its death is reported at once.
  std::optional<ProcessExit> exit;
  second.set_exit_handler([&](const ProcessExit& e) { exit = e; });
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(run_until(io_, [&] { return exit.has_value(); }));
  EXPECT_EQ(exit->pid, pid);
}

TEST_F(RunnerTest, ProbeIgnoresAPidFileOfAReusedPid) {
  // A pid file naming a live process (this test) with another start time: pid reuse.
  fs::create_directories(dir_ / "process");
  write_file(dir_ / "process/reused.pid", std::to_string(::getpid()) + " 12345\n");
  AgentRunner runner(io_, options());
  EXPECT_EQ(act(runner, sleeper("reused"), Action::kProbe).ocf, OcfCode::kNotRunning);
  EXPECT_FALSE(fs::exists(dir_ / "process/reused.pid"));
  write_file(dir_ / "process/garbage.pid", "not a pid\n");
  EXPECT_EQ(act(runner, sleeper("garbage"), Action::kProbe).ocf, OcfCode::kNotRunning);
}

TEST_F(RunnerTest, ProcessWithAMissingCommandIsNotInstalled) {
  AgentRunner runner(io_, options());
  ResourceSpec p = sleeper("nocmd");
  p.process.argv = {"vigil-no-such-command"};
  ActionResult r = act(runner, p, Action::kStart);
  EXPECT_EQ(r.ocf, OcfCode::kErrInstalled);
  EXPECT_NE(r.message.find("vigil-no-such-command"), std::string::npos);
  EXPECT_EQ(act(runner, p, Action::kValidateAll).ocf, OcfCode::kErrInstalled);
}

TEST_F(RunnerTest, ProcessRunsAsAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "running a process as another user needs root";
  AgentRunner runner(io_, options());
  ResourceSpec p = sleeper("as-nobody");
  p.process.argv = {"/bin/sh", "-c", "id -u > " + (dir_ / "uid") + "; exec sleep 100000"};
  p.process.user = "nobody";
  ::chmod(dir_.path().c_str(), 0777);
  ASSERT_EQ(act(runner, p, Action::kStart).ocf, OcfCode::kSuccess);
  pid_t pid = runner.process_pid_for_test("as-nobody");
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pid)).c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);
  EXPECT_EQ(act(runner, p, Action::kStop).ocf, OcfCode::kSuccess);
}

// --- extension classes -----------------------------------------------------------------

class FakeVip final : public ClassDriver {
 public:
  explicit FakeVip(asio::io_context& io) : io_(io) {}
  void run(const ActionRequest& req, std::function<void(ActionResult)> done) override {
    ++calls;
    if (hang) return;  // never answers: the runner's watchdog must
    ActionResult r;
    r.resource_id = req.resource.id;
    r.action = req.action;
    r.ocf = OcfCode::kSuccess;
    r.outcome = Outcome::kSuccess;
    asio::post(io_, [done, r] { done(r); });
  }
  asio::io_context& io_;
  int calls = 0;
  bool hang = false;
};

TEST_F(RunnerTest, RegisteredClassesRunWithAWatchdog) {
  AgentRunner runner(io_, options());
  auto vip = std::make_shared<FakeVip>(io_);
  runner.register_class("vip", vip);
  ResourceSpec r = resource("vip1", "vip");
  EXPECT_EQ(act(runner, r, Action::kStart).ocf, OcfCode::kSuccess);
  vip->hang = true;
  ActionResult hung = act(runner, r, Action::kMonitor, 100);
  EXPECT_TRUE(hung.timed_out);
  EXPECT_EQ(hung.ocf, OcfCode::kErrGeneric);
  EXPECT_EQ(vip->calls, 2);
}

}  // namespace
}  // namespace vigil::exec
