// End-to-end tests of the store API on three real agents: revisions, ranges, transactions,
// leases that expire through the leader and survive a leader crash, compaction.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/http_client.h"
#include "e2e_cluster.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Directories /tmp/vigil-e2e-store-NAME-PID.
struct Fixture : E2eCluster {
  explicit Fixture(const std::string& name) : E2eCluster("store-" + name) {}
};

TEST(E2eStore, RevisionsRangesAndTransactionsAgreeOnEveryNode) {
  Fixture f("txn");
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  ASSERT_TRUE(f.c->wait_for_leader(15s).has_value());
  auto [s1, p1] = f.call(1, "PUT", "/v1/kv/app/a", "1");
  ASSERT_EQ(s1, 200) << p1.dump();
  auto [s2, p2] = f.call(2, "PUT", "/v1/kv/app/b", "2");
  ASSERT_EQ(s2, 200);
  // Greater, not one more: the agents' cluster manager writes its own keys meanwhile.
  EXPECT_GT(p2["revision"].get<int64_t>(), p1["revision"].get<int64_t>());
  // A compare-and-swap that fails, then one that succeeds.
  const std::string cas_fail =
      R"({"compare":[{"key":"app/a","target":"value","op":"=","value":"9"}],
    "success":[{"put":{"key":"app/a","value":"changed"}}],"failure":[{"get":{"key":"app/a"}}]})";
  auto [s3, t3] = f.call(3, "POST", "/v1/txn", cas_fail);
  ASSERT_EQ(s3, 200) << t3.dump();
  EXPECT_FALSE(t3["succeeded"].get<bool>());
  EXPECT_EQ(t3["responses"][0]["get"]["kvs"][0]["value"], "1");
  const std::string cas_ok = R"({"compare":[{"key":"app/a","target":"version","op":"=","number":1}],
    "success":[{"put":{"key":"app/a","value":"changed"}},{"delete":{"key":"app/b"}}]})";
  auto [s4, t4] = f.call(3, "POST", "/v1/txn", cas_ok);
  ASSERT_EQ(s4, 200);
  EXPECT_TRUE(t4["succeeded"].get<bool>());
  const int64_t rev = t4["revision"].get<int64_t>();
  // Every node answers the same linearizable range, and history is readable.
  for (int n = 1; n <= 3; ++n) {
    auto [s, r] = f.call(n, "GET", "/v1/kv?prefix=app/");
    ASSERT_EQ(s, 200);
    ASSERT_EQ(r["count"].get<int>(), 1) << r.dump();
    EXPECT_EQ(r["kvs"][0]["value"], "changed");
    EXPECT_EQ(r["kvs"][0]["version"].get<int>(), 2);
    EXPECT_GE(r["revision"].get<int64_t>(), rev);
    auto [sh, old] = f.call(n, "GET", "/v1/kv/app/b?revision=" + std::to_string(rev - 1));
    ASSERT_EQ(sh, 200);
    EXPECT_EQ(old["value"], "2");
  }
  // Compaction makes old revisions unreadable, with a clear error.
  auto [sc, cr] = f.call(1, "POST", "/v1/compact", R"({"revision":)" + std::to_string(rev) + "}");
  ASSERT_EQ(sc, 200) << cr.dump();
  auto [sg, gone] = f.call(2, "GET", "/v1/kv/app/b?revision=" + std::to_string(rev - 1));
  EXPECT_EQ(sg, 410);
  EXPECT_EQ(gone["error"]["code"], "compacted");
  // Bad input names the problem; reserved keys are refused.
  auto [sb, bad] = f.call(1, "POST", "/v1/txn", R"({"compare":[{"key":"k","op":"="}]})");
  EXPECT_EQ(sb, 400);
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("compare[0]"), std::string::npos);
  auto [sr, res] = f.call(1, "PUT", "/v1/kv//vigil/nodes/n1", "x");
  EXPECT_EQ(sr, 403);
}

TEST(E2eStore, LeaseExpiresThroughTheLeaderAndSurvivesALeaderCrash) {
  Fixture f("lease");
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  auto leader = f.c->wait_for_leader(15s);
  ASSERT_TRUE(leader.has_value());
  int follower = *leader % 3 + 1;
  // A 3 s lease kept alive through a follower survives the leader's crash: the new leader
  // gives it a full TTL instead of expiring it.
  auto [sg, grant] = f.call(follower, "POST", "/v1/lease", R"({"ttl":3})");
  ASSERT_EQ(sg, 200) << grant.dump();
  const std::string id = std::to_string(grant["id"].get<int64_t>());
  ASSERT_EQ(f.call(follower, "PUT", "/v1/kv/svc/web-1?lease=" + id, "up").first, 200);
  f.c->kill(*leader, SIGKILL);
  auto next = f.c->wait_for_leader(10s);
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(f.call(*next, "POST", "/v1/lease/" + id + "/keepalive").first, 200);
  auto [sk, key] = f.call(*next, "GET", "/v1/kv/svc/web-1");
  EXPECT_EQ(sk, 200) << "the key of a live lease vanished after the leader crash";
  auto [sl, info] = f.call(*next, "GET", "/v1/lease/" + id);
  ASSERT_EQ(sl, 200);
  EXPECT_EQ(info["remaining_from"], "leader");
  EXPECT_GT(info["remaining_ms"].get<int64_t>(), 1000);
  // Without keep-alives it expires: the key disappears on every running node.
  auto t0 = std::chrono::steady_clock::now();
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() - t0 < 10s) {
    gone = f.call(*next, "GET", "/v1/kv/svc/web-1").first == 404;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, 2s) << "expired long before its TTL";
  for (int n = 1; n <= 3; ++n) {
    if (!f.c->running(n)) continue;
    EXPECT_EQ(f.call(n, "GET", "/v1/lease/" + id).first, 404);
  }
}

// Collects the events of a /v1/watch stream until `want` events or the timeout.
std::vector<json> watch_events(const std::string& api, const std::string& target, size_t want,
                               int timeout_ms) {
  api::HttpClient h(api);
  std::vector<json> events;
  std::string partial;
  (void)h.stream(
      target,
      [&](std::string_view data) {
        partial.append(data);
        size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
          auto j = json::parse(partial.substr(0, nl), nullptr, false);
          partial.erase(0, nl + 1);
          if (!j.is_discarded() && j.contains("events")) {
            for (const auto& e : j["events"]) events.push_back(e);
          }
        }
        return events.size() < want;
      },
      timeout_ms);
  return events;
}

TEST(E2eStore, WatchersOnEveryNodeSeeEveryEventInOrderAndResumeWithoutGaps) {
  Fixture f("watch");
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  ASSERT_TRUE(f.c->wait_for_leader(15s).has_value());
  constexpr int kWrites = 40;
  // Live watchers from "now" on two nodes, while writes go through a third.
  std::vector<json> live2, live3;
  std::thread w2([&] { live2 = watch_events(f.c->api(2), "/v1/watch?prefix=w/", kWrites, 15000); });
  std::thread w3([&] { live3 = watch_events(f.c->api(3), "/v1/watch?prefix=w/", kWrites, 15000); });
  std::this_thread::sleep_for(500ms);  // both watches are registered
  int64_t first_rev = 0;
  for (int i = 0; i < kWrites; ++i) {
    auto [s, r] = f.call(1, "PUT", "/v1/kv/w/" + std::to_string(i % 7), std::to_string(i));
    ASSERT_EQ(s, 200);
    if (i == 0) first_rev = r["revision"].get<int64_t>();
  }
  w2.join();
  w3.join();
  for (const auto* got : {&live2, &live3}) {
    ASSERT_EQ(got->size(), static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) {
      EXPECT_EQ((*got)[i]["kv"]["mod_revision"].get<int64_t>(), first_rev + i);
      EXPECT_EQ((*got)[i]["kv"]["value"], std::to_string(i));
    }
  }
  // Replay from the first revision on node 2, stop half way, resume on node 3: every event
  // exactly once, in order.
  auto part1 =
      watch_events(f.c->api(2), "/v1/watch?prefix=w/&start_revision=" + std::to_string(first_rev),
                   kWrites / 2, 10000);
  ASSERT_GE(part1.size(), static_cast<size_t>(kWrites / 2));
  const int64_t resume = part1.back()["kv"]["mod_revision"].get<int64_t>() + 1;
  auto part2 =
      watch_events(f.c->api(3), "/v1/watch?prefix=w/&start_revision=" + std::to_string(resume),
                   kWrites - part1.size(), 10000);
  ASSERT_EQ(part1.size() + part2.size(), static_cast<size_t>(kWrites));
  for (size_t i = 0; i < part2.size(); ++i) {
    EXPECT_EQ(part2[i]["kv"]["mod_revision"].get<int64_t>(), resume + static_cast<int64_t>(i));
  }
}

}  // namespace
}  // namespace vigil::cli
