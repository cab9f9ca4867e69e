// End-to-end tests of the service registry on three real agents: TCP checks against
// listeners the test opens and closes, TTL leases, deregistration, a watcher, checks that
// survive their agent restarting, and the CLI's exit codes.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/http_client.h"
#include "e2e_cluster.h"

namespace vigil::cli {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr int kIntervalMs = 200;
constexpr int kFall = 2;
constexpr int kRise = 2;

// A TCP listener the checks connect to; close() makes them fail, open() again on the same
// port makes them pass (the kernel completes connects from the backlog: no accept needed).
class Listener {
 public:
  Listener() { open(0); }
  void open(uint16_t port) {
    acceptor_ = std::make_unique<tcp::acceptor>(io_);
    acceptor_->open(tcp::v4());
    // Agents the test (re)starts must not inherit the socket: they would keep it listening.
    ::fcntl(acceptor_->native_handle(), F_SETFD, FD_CLOEXEC);
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
  }
  void reopen() { open(port_); }
  void close() { acceptor_.reset(); }
  uint16_t port() const { return port_; }

 private:
  asio::io_context io_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
};

struct Fixture : E2eCluster {
  explicit Fixture(const std::string& name) : E2eCluster("registry-" + name) {}
  // The ids of the healthy instances of `service`, as node `node` answers.
  std::set<std::string> healthy(int node, const std::string& service) {
    auto [s, j] = call(node, "GET", "/v1/svc/" + service + "?healthy=true");
    std::set<std::string> ids;
    if (s != 200) return ids;
    for (const auto& i : j["instances"]) ids.insert(i.value("id", ""));
    return ids;
  }
  // Polls until `pred` holds; returns the time it took, or nullopt on timeout.
  template <class Pred>
  std::optional<std::chrono::milliseconds> wait(Pred pred, std::chrono::milliseconds limit) {
    auto start = SteadyClock::now();
    while (SteadyClock::now() - start < limit) {
      if (pred()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
      }
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }
  std::string tcp_registration(const std::string& id, uint16_t port) {
    return json{{"id", id},
                {"address", "127.0.0.1"},
                {"port", port},
                {"meta", {{"zone", "a"}}},
                {"check", {{"tcp", "127.0.0.1:" + std::to_string(port)}}},
                {"interval_ms", kIntervalMs},
                {"timeout_ms", 150},
                {"rise", kRise},
                {"fall", kFall}}
        .dump();
  }
};

// Collects the events of a watch on the health prefix of a service, on its own thread.
class Watcher {
 public:
  Watcher(const std::string& api, const std::string& service)
      : thread_([this, api, service] {
          api::HttpClient h(api);
          std::string partial;
          (void)h.stream(
              "/v1/watch?prefix=/vigil/svc-health/" + service + "/",
              [&](std::string_view data) {
                partial.append(data);
                size_t nl;
                while ((nl = partial.find('\n')) != std::string::npos) {
                  auto j = json::parse(partial.substr(0, nl), nullptr, false);
                  partial.erase(0, nl + 1);
                  if (j.is_discarded() || !j.contains("events")) continue;
                  std::lock_guard lock(mu_);
                  for (const auto& e : j["events"]) {
                    const auto& kv = e["kv"];
                    auto v = json::parse(kv.value("value", ""), nullptr, false);
                    seen_.push_back(kv.value("key", "") + "=" +
                                    (v.is_object() ? v.value("state", "") : "deleted"));
                  }
                }
                return !stop_.load();
              },
              60000);
        }) {}
  ~Watcher() {
    stop_ = true;
    thread_.join();
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> seen_;
  std::thread thread_;
};

TEST(E2eRegistry, ChecksTtlLeasesDeregistrationAndWatch) {
  Fixture f("main");
  ASSERT_TRUE(f.c->init().ok());
  ASSERT_TRUE(f.c->start_all().ok());
  ASSERT_TRUE(f.c->wait_for_leader(15s).has_value());
  Listener la, lb;
  Watcher watcher(f.c->api(3), "web");

  auto [s1, r1] = f.call(1, "POST", "/v1/svc/web", f.tcp_registration("a", la.port()));
  ASSERT_EQ(s1, 200) << r1.dump();
  EXPECT_EQ(r1["node"], "n1");
  auto [s2, r2] = f.call(2, "POST", "/v1/svc/web", f.tcp_registration("b", lb.port()));
  ASSERT_EQ(s2, 200) << r2.dump();
  // Bad input is refused with the field named.
  auto [sb, rb] = f.call(1, "POST", "/v1/svc/web", R"({"id":"x","address":"h","port":0})");
  EXPECT_EQ(sb, 400);
  EXPECT_NE(rb["error"]["message"].get<std::string>().find("port"), std::string::npos);

  using Ids = std::set<std::string>;
  ASSERT_TRUE(f.wait(
      [&] {
        return f.healthy(3, "web") == Ids{"a", "b"};
      },
      10s))
      << f.call(3, "GET", "/v1/svc/web").second.dump();
  auto [sl, all] = f.call(2, "GET", "/v1/svc/web");
  ASSERT_EQ(sl, 200);
  ASSERT_EQ(all["instances"].size(), 2u);
  EXPECT_EQ(all["instances"][0]["meta"]["zone"], "a");
  EXPECT_EQ(all["instances"][0]["node"], "n1");
  EXPECT_EQ(all["instances"][1]["node"], "n2");

  // A failing check leaves the healthy list within interval × fall (+ commit margin).
  la.close();
  auto left = f.wait([&] { return f.healthy(2, "web") == Ids{"b"}; }, 10s);
  ASSERT_TRUE(left.has_value());
  EXPECT_LT(left->count(), kIntervalMs * (kFall + 1) + 1500);
  auto [su, unhealthy] = f.call(1, "GET", "/v1/svc/web");
  EXPECT_EQ(unhealthy["instances"][0]["health"], "unhealthy");
  EXPECT_NE(unhealthy["instances"][0]["health_detail"].get<std::string>().find("connect"),
            std::string::npos);
  // And returns after rise successes.
  la.reopen();
  auto back = f.wait([&] { return f.healthy(2, "web") == Ids{"a", "b"}; }, 10s);
  ASSERT_TRUE(back.has_value());
  EXPECT_LT(back->count(), kIntervalMs * (kRise + 1) + 1500);

  // The checking node restarts: its checks come back from the store.
  f.c->kill(1);
  ASSERT_TRUE(f.c->start(1).ok());
  ASSERT_TRUE(f.c->wait_for_leader(15s).has_value());
  la.close();
  ASSERT_TRUE(f.wait([&] { return f.healthy(3, "web") == Ids{"b"}; }, 15s)) << f.c->log_tail(1);
  la.reopen();
  ASSERT_TRUE(f.wait([&] { return f.healthy(3, "web") == Ids{"a", "b"}; }, 15s));

  // A TTL instance (no check: healthy) lives while kept alive, and goes when that stops.
  auto [st, rt] =
      f.call(3, "POST", "/v1/svc/web", R"({"id":"c","address":"10.0.0.3","port":80,"ttl":2})");
  ASSERT_EQ(st, 200) << rt.dump();
  const int64_t lease = rt["lease"].get<int64_t>();
  ASSERT_GT(lease, 0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(f.healthy(1, "web"), (Ids{"a", "b", "c"}));
    EXPECT_EQ(f.call(2, "POST", "/v1/lease/" + std::to_string(lease) + "/keepalive").first, 200);
    std::this_thread::sleep_for(600ms);
  }
  auto gone = f.wait([&] { return f.healthy(1, "web") == Ids{"a", "b"}; }, 10s);
  ASSERT_TRUE(gone.has_value());

  // Services with counts.
  auto [sv, svcs] = f.call(1, "GET", "/v1/svc");
  ASSERT_EQ(sv, 200);
  ASSERT_EQ(svcs["services"].size(), 1u) << svcs.dump();
  EXPECT_EQ(svcs["services"][0]["name"], "web");
  EXPECT_EQ(svcs["services"][0]["instances"], 2);
  EXPECT_EQ(svcs["services"][0]["healthy"], 2);

  // Deregistration removes the instance and its health; twice is "not found".
  auto [sd, rd] = f.call(1, "DELETE", "/v1/svc/web/b");
  ASSERT_EQ(sd, 200) << rd.dump();
  EXPECT_EQ(f.healthy(1, "web"), Ids{"a"});
  EXPECT_EQ(f.call(2, "DELETE", "/v1/svc/web/b").first, 404);
  auto [sh, hk] = f.call(1, "GET", "/v1/kv/vigil/svc-health/web/b");
  (void)hk;
  EXPECT_NE(sh, 200);

  // The watcher saw a go down and come back, and b's health deleted.
  ASSERT_TRUE(f.wait(
      [&] {
        auto s = watcher.seen();
        return std::find(s.begin(), s.end(), "/vigil/svc-health/web/b=deleted") != s.end();
      },
      5s));
  auto seen = watcher.seen();
  auto down = std::find(seen.begin(), seen.end(), "/vigil/svc-health/web/a=unhealthy");
  ASSERT_NE(down, seen.end());
  EXPECT_NE(std::find(down, seen.end(), "/vigil/svc-health/web/a=healthy"), seen.end());

  // The CLI: exit 0 with instances, 3 without, 3 for an unknown instance.
  const std::string api = " --api " + f.c->api(1);
  const std::string vigil = std::string(VIGIL_BINARY) + " svc ";
  auto run = [](const std::string& cmd) {
    int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(run(vigil + "list web --healthy --json" + api), 0);
  EXPECT_EQ(run(vigil + "list nosuch" + api), 3);
  EXPECT_EQ(run(vigil + "deregister web nosuch" + api), 3);
  EXPECT_EQ(run(vigil + "register web --id d --address 127.0.0.1 --port 9" + api), 0);
  EXPECT_EQ(run(vigil + "deregister web d" + api), 0);
  EXPECT_EQ(run(vigil + "register web --id e --address x --port 9 --check-http ftp://x" + api), 2);
}

}  // namespace
}  // namespace vigil::cli
