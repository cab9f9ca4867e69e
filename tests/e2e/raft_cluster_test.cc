// End-to-end tests of the consensus core with three real `vigil agent` processes on
// loopback: leader crash, restart from the data dir, catch-up by snapshot.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/agent_cluster.h"
#include "net/certs.h"

namespace vigil::cli {
namespace {

using namespace std::chrono_literals;

std::string fresh_dir(const std::string& name) {
  std::string d = "/tmp/vigil-e2e-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  return d;
}

CliHooks cert_hooks() {
  CliHooks h;
  h.cert_init = [](const std::string& d, const std::string& c) { return net::cert_init(d, c); };
  h.cert_issue = [](const std::string& d, const std::string& n) { return net::cert_issue(d, n); };
  return h;
}

// Removes a test's directory when the test passed; a failed test keeps configs, data and
// logs for inspection (the failure message names the directory).
struct KeepOnFailure {
  std::string dir;
  ~KeepOnFailure() {
    if (!::testing::Test::HasFailure()) {
      std::filesystem::remove_all(dir);
    } else {
      std::printf("kept %s for inspection\n", dir.c_str());
    }
  }
};

AgentClusterOptions options(const std::string& name) {
  AgentClusterOptions o;
  o.dir = fresh_dir(name);
  o.vigil_binary = VIGIL_BINARY;
  return o;
}

// Waits until node `n` has applied at least `index`.
bool wait_applied(const AgentCluster& c, int n, uint64_t index, std::chrono::milliseconds t) {
  auto deadline = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = c.status(n);
    if (s && (*s)["applied"].get<uint64_t>() >= index) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(E2eRaft, KillNineOfTheLeaderLosesNoAcknowledgedWrite) {
  auto o = options("kill-leader");
  o.insecure = false;  // mutual TLS between the agents, as in production
  KeepOnFailure keep{o.dir};
  AgentCluster c(o, cert_hooks());
  ASSERT_TRUE(c.init().ok());
  ASSERT_TRUE(c.start_all().ok());
  auto leader = c.wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value()) << c.log_tail(1);
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 60; ++i) {
    int via = 1 + i % 3;  // followers forward to the leader
    std::string k = "key" + std::to_string(i);
    auto r = c.put(via, k, "value" + std::to_string(i));
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    acked[k] = "value" + std::to_string(i);
  }
  c.kill(*leader, SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  auto next = c.wait_for_leader(10s);
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(*next, *leader);
  auto failover = std::chrono::steady_clock::now() - t0;
  std::printf("failover to a new agreed leader: %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(failover).count()));
  for (const auto& [k, v] : acked) {
    auto got = c.get(*next, k);
    ASSERT_TRUE(got.has_value()) << got.error().to_string();
    ASSERT_TRUE(got->has_value()) << k << " lost";
    EXPECT_EQ(**got, v);
  }
  // Writes continue with two of three voters.
  ASSERT_TRUE(c.put(*next, "after", "failover").has_value());
  // The old leader comes back from its data dir and catches up.
  ASSERT_TRUE(c.start(*leader).ok());
  auto s = c.status(*next);
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(wait_applied(c, *leader, (*s)["commit"].get<uint64_t>(), 10s)) << c.log_tail(*leader);
  auto got = c.get(*leader, "after", /*serializable=*/true);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value_or(""), "failover");
}

TEST(E2eRaft, RestartedFollowerCatchesUpFromItsDataDir) {
  auto o = options("restart");
  KeepOnFailure keep{o.dir};
  AgentCluster c(o, cert_hooks());
  ASSERT_TRUE(c.init().ok());
  ASSERT_TRUE(c.start_all().ok());
  auto leader = c.wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value());
  int f = *leader % 3 + 1;
  ASSERT_TRUE(c.put(*leader, "before", "1").has_value());
  c.kill(f, SIGKILL);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.put(*leader, "k" + std::to_string(i), std::to_string(i)).has_value());
  }
  ASSERT_TRUE(c.start(f).ok());
  auto s = c.status(*leader);
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(wait_applied(c, f, (*s)["commit"].get<uint64_t>(), 10s)) << c.log_tail(f);
  for (int i = 0; i < 50; ++i) {
    auto got = c.get(f, "k" + std::to_string(i), true);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value_or("<missing>"), std::to_string(i));
  }
  EXPECT_EQ(c.get(f, "before", true)->value_or(""), "1");
}

TEST(E2eRaft, FarBehindFollowerIsBroughtUpBySnapshot) {
  auto o = options("snapshot");
  o.snapshot_entries = 40;  // compact often so the lagging node cannot catch up by log
  KeepOnFailure keep{o.dir};
  AgentCluster c(o, cert_hooks());
  ASSERT_TRUE(c.init().ok());
  ASSERT_TRUE(c.start_all().ok());
  auto leader = c.wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value());
  int f = *leader % 3 + 1;
  c.kill(f, SIGKILL);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(c.put(*leader, "s" + std::to_string(i), std::to_string(i * i)).has_value());
  }
  auto ls = c.status(*leader);
  ASSERT_TRUE(ls.has_value());
  ASSERT_GT((*ls)["first_index"].get<uint64_t>(), 40u) << "the leader did not compact";
  ASSERT_TRUE(c.start(f).ok());
  ASSERT_TRUE(wait_applied(c, f, (*ls)["commit"].get<uint64_t>(), 15s)) << c.log_tail(f);
  auto fs = c.status(f);
  ASSERT_TRUE(fs.has_value());
  EXPECT_GT((*fs)["snapshot_index"].get<uint64_t>(), 0u);
  EXPECT_NE(c.log_tail(f, 200).find("installed snapshot"), std::string::npos);
  for (int i = 0; i < 200; i += 7) {
    auto got = c.get(f, "s" + std::to_string(i), true);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value_or("<missing>"), std::to_string(i * i));
  }
}

TEST(E2eRaft, MinorityCannotWriteAndReadsTimeOutCleanly) {
  auto o = options("minority");
  KeepOnFailure keep{o.dir};
  AgentCluster c(o, cert_hooks());
  ASSERT_TRUE(c.init().ok());
  ASSERT_TRUE(c.start_all().ok());
  auto leader = c.wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value());
  int a = *leader % 3 + 1;
  int b = a % 3 + 1;
  if (b == *leader) b = b % 3 + 1;
  c.kill(a, SIGKILL);
  c.kill(b, SIGKILL);
  auto r = c.put(*leader, "x", "y", 8000);
  EXPECT_FALSE(r.has_value()) << "a lone node acknowledged a write";
}

}  // namespace
}  // namespace vigil::cli
