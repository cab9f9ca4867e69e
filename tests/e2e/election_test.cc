// End-to-end tests of leader election and locks with `vigil elect` / `vigil lock` processes
// against three real agents: one holder at a time, fencing tokens that only grow, failover
// when the holder dies, and the command stopped when the lease is lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/agent_cluster.h"

namespace vigil::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A `vigil` client process with stdout+stderr to `log`, in its own process group.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE* f = fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

int64_t token_in(const std::string& log) {
  auto pos = log.find("token ");
  return pos == std::string::npos ? 0 : std::stoll(log.substr(pos + 6));
}

struct Fixture {
  Fixture() {
    o.dir = "/tmp/vigil-e2e-elect-" + std::to_string(::getpid());
    std::filesystem::remove_all(o.dir);
    o.vigil_binary = VIGIL_BINARY;
    o.insecure = true;
    c = std::make_unique<AgentCluster>(o, CliHooks{});
  }
  ~Fixture() {
    for (pid_t p : pids) {
      kill(-p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    c.reset();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(o.dir);
  }
  std::vector<std::string> cmd(const std::string& verb, int node, const std::string& name,
                               const std::string& shell) {
    return {VIGIL_BINARY, verb, "--api",   c->api(node), "--ttl", "1",
            name,         "--", "/bin/sh", "-c",         shell};
  }
  AgentClusterOptions o;
  std::unique_ptr<AgentCluster> c;
  std::vector<pid_t> pids;
};

TEST(E2eElection, OneHolderTokensGrowAndTheNextTakesOverWhenTheHolderDies) {
  Fixture f;
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  ASSERT_TRUE(f.c->wait_for_leader(15s).has_value());
  const std::string log1 = f.o.dir + "/c1.log", log2 = f.o.dir + "/c2.log";
  const std::string out2 = f.o.dir + "/c2.token";
  pid_t c1 = spawn(f.cmd("elect", 1, "web", "sleep 600"), log1);
  f.pids.push_back(c1);
  ASSERT_TRUE(wait_for([&] { return token_in(read_file(log1)) > 0; }, 10s)) << read_file(log1);
  const int64_t t1 = token_in(read_file(log1));
  pid_t c2 =
      spawn(f.cmd("elect", 2, "web", "echo $VIGIL_FENCING_TOKEN > " + out2 + "; sleep 600"), log2);
  f.pids.push_back(c2);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(token_in(read_file(log2)), 0) << "two holders at once: " << read_file(log2);
  // The holder dies without resigning: its lease (TTL 1 s) ends and the other is elected.
  auto t0 = Clock::now();
  kill(-c1, SIGKILL);
  waitpid(c1, nullptr, 0);
  ASSERT_TRUE(wait_for([&] { return token_in(read_file(log2)) > 0; }, 10s)) << read_file(log2);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  std::printf("election failover after SIGKILL of the holder (TTL 1 s): %lld ms\n",
              static_cast<long long>(took));
  const int64_t t2 = token_in(read_file(log2));
  EXPECT_GT(t2, t1) << "fencing tokens must grow";
  ASSERT_TRUE(wait_for([&] { return !read_file(out2).empty(); }, 5s));
  EXPECT_EQ(std::stoll(read_file(out2)), t2) << "the command sees the token it holds";
}

TEST(E2eElection, CommandIsStoppedWhenTheLeaseIsLost) {
  Fixture f;
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  auto leader = f.c->wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value());
  int via = *leader % 3 + 1;  // talk to a follower, then kill it: keep-alives stop
  const std::string log = f.o.dir + "/lock.log", marker = f.o.dir + "/running";
  pid_t p = spawn(f.cmd("lock", via, "db", "touch " + marker + "; sleep 600"), log);
  f.pids.push_back(p);
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(marker); }, 10s)) << read_file(log);
  f.c->kill(via, SIGKILL);
  int status = 0;
  ASSERT_TRUE(wait_for([&] { return waitpid(p, &status, WNOHANG) == p; }, 10s))
      << "vigil lock kept running after its lease could not be renewed: " << read_file(log);
  f.pids.clear();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(read_file(log).find("lost"), std::string::npos) << read_file(log);
}

}  // namespace
}  // namespace vigil::cli
