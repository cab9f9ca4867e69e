// vigil-etcd-elect: an election candidate against etcd's v3 JSON gateway, the counterpart of
// `vigil elect --ttl S NAME` for store_bench.sh (docs/BENCHMARKS.md): grants a lease of S
// seconds (etcd may raise it to its minimum: the granted TTL is printed), keeps it alive every
// TTL/3 from a thread, campaigns (POST /v3/election/campaign blocks until elected), prints
// "leadership of 'NAME' held: token REV" and holds until killed.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "api/http_client.h"
#include "bench/bench_util.h"

namespace {

using json = nlohmann::json;
using vigil::bench::base64;

// etcd's gateway writes int64 fields as JSON strings.
int64_t as_int(const json& j, const char* field) {
  if (!j.contains(field)) return 0;
  const json& v = j[field];
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return v.is_number() ? v.get<int64_t>() : 0;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "vigil-etcd-elect: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: vigil-etcd-elect HOST:PORT TTL_S NAME\n");
    return 2;
  }
  const std::string endpoint = argv[1], name = argv[3];
  const int ttl = std::atoi(argv[2]);
  vigil::api::HttpClient client(endpoint);
  auto r = client.request("POST", "/v3/lease/grant", json{{"TTL", ttl}}.dump(), 5000);
  if (!r || r->status != 200) return fail("lease grant failed");
  auto grant = json::parse(r->body, nullptr, false);
  if (grant.is_discarded()) return fail("lease grant: bad answer " + r->body);
  const int64_t id = as_int(grant, "ID"), granted = as_int(grant, "TTL");
  if (id == 0 || granted <= 0) return fail("lease grant: " + r->body);
  std::printf("lease %lld ttl %lld s\n", static_cast<long long>(id),
              static_cast<long long>(granted));
  std::fflush(stdout);

  std::atomic<bool> stop{false};
  std::thread keepalive([&] {
    vigil::api::HttpClient c(endpoint);
    const std::string body = json{{"ID", std::to_string(id)}}.dump();
    const auto period = std::chrono::milliseconds(granted * 1000 / 3);
    while (!stop) {
      auto next = std::chrono::steady_clock::now() + period;
      // A bidirectional stream in gRPC: one request message, one answer line, then the end.
      (void)c.request("POST", "/v3/lease/keepalive", body, 1000);
      std::this_thread::sleep_until(next);
    }
  });

  json campaign{{"name", base64(name)}, {"lease", std::to_string(id)}, {"value", base64("b")}};
  vigil::api::HttpClient cc(endpoint);
  r = cc.request("POST", "/v3/election/campaign", campaign.dump(), 3600 * 1000);
  if (!r || r->status != 200) {
    stop = true;
    keepalive.join();
    return fail("campaign failed: " + (r ? r->body : r.error().message()));
  }
  auto j = json::parse(r->body, nullptr, false);
  int64_t rev = j.is_discarded() || !j.contains("leader") ? 0 : as_int(j["leader"], "rev");
  std::printf("leadership of '%s' held: token %lld\n", name.c_str(), static_cast<long long>(rev));
  std::fflush(stdout);
  keepalive.join();  // until killed
  return 0;
}
