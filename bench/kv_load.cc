// vigil-kv-load: closed-loop put or get load over HTTP against Vigil or etcd's JSON gateway,
// for throughput and latency figures (docs/BENCHMARKS.md). Each client is a thread with one
// keep-alive connection and at most one request in flight. Gets are linearizable on both
// (Vigil: GET /v1/kv/KEY, ReadIndex; etcd: POST /v3/kv/range, serializable=false) and read
// keys written before the clock starts.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "bench/bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using vigil::bench::base64;

void usage() {
  std::fprintf(stderr,
               "usage: vigil-kv-load --target vigil|etcd --endpoint HOST:PORT --clients N\n"
               "                     [--op put|get] [--seconds S] [--value-bytes B] [--json]\n"
               "                     [--keys K] [--latency-log FILE]\n"
               "Closed-loop puts (or linearizable gets) from N clients for S seconds;\n"
               "prints ops/s and latency. Puts cycle over keys bench/0 .. bench/K-1 shared\n"
               "out among the clients (default: 1000 keys of its own per client), so runs\n"
               "of different speeds and client counts end with the same keys. --latency-log writes "
               "one line per request:\n"
               "start (ms since the first request), latency (ms), client.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "vigil", endpoint, op = "put", latency_log;
  int clients = 1, value_bytes = 64;
  int64_t keys = 0;
  double seconds = 5;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target")
      target = next();
    else if (a == "--endpoint")
      endpoint = next();
    else if (a == "--op")
      op = next();
    else if (a == "--clients")
      clients = std::atoi(next().c_str());
    else if (a == "--seconds")
      seconds = std::atof(next().c_str());
    else if (a == "--value-bytes")
      value_bytes = std::atoi(next().c_str());
    else if (a == "--json")
      as_json = true;
    else if (a == "--keys")
      keys = std::atoll(next().c_str());
    else if (a == "--latency-log")
      latency_log = next();
    else {
      usage();
      return 2;
    }
  }
  if (endpoint.empty() || clients < 1 || keys < 0 || (target != "vigil" && target != "etcd") ||
      (op != "put" && op != "get")) {
    usage();
    return 2;
  }
  // https://HOST:PORT: TLS and a token from the vigil CLI's variables (VIGIL_CACERT,
  // VIGIL_SERVER_NAME, VIGIL_TOKEN_FILE), as `vigil-failover-bench --serve` writes them.
  auto options = vigil::bench::client_options_from_env(endpoint);
  if (!options) {
    std::fprintf(stderr, "vigil-kv-load: %s\n", options.error().message().c_str());
    return 2;
  }
  const vigil::api::HttpClientOptions client_options = *options;
  const auto url = vigil::api::parse_api_url(endpoint);  // valid: checked just above
  const std::string value(static_cast<size_t>(value_bytes), 'x');
  auto put = [&](vigil::api::HttpClient& client, const std::string& key) {
    if (target == "vigil") {
      return client.request("PUT", "/v1/kv/" + key, value, 10000, "application/octet-stream");
    }
    json body{{"key", base64(key)}, {"value", base64(value)}};
    return client.request("POST", "/v3/kv/put", body.dump(), 10000);
  };
  auto get = [&](vigil::api::HttpClient& client, const std::string& key) {
    if (target == "vigil") return client.request("GET", "/v1/kv/" + key, "", 10000);
    json body{{"key", base64(key)}};  // serializable=false: linearizable
    return client.request("POST", "/v3/kv/range", body.dump(), 10000);
  };
  constexpr int kGetKeys = 100;  // gets read bench/get/0..99, written first
  if (op == "get") {
    vigil::api::HttpClient client(url->host_port, client_options);
    for (int k = 0; k < kGetKeys; ++k) {
      auto r = put(client, "bench/get/" + std::to_string(k));
      if (!r || r->status != 200) {
        std::fprintf(
            stderr, "vigil-kv-load: cannot write the keys to read: %s\n",
            r ? ("HTTP " + std::to_string(r->status)).c_str() : r.error().message().c_str());
        return 1;
      }
    }
  }
  const uint64_t per_client =
      keys > 0 ? static_cast<uint64_t>(std::max<int64_t>(1, keys / clients)) : 1000;
  // Client c writes keys c, c + N, c + 2N, ... of its share (N clients); with --keys every
  // step of any client count cycles over the same bench/0 .. bench/K-1.
  auto put_key = [&](int c, uint64_t n) {
    if (keys == 0) return "bench/" + std::to_string(c) + "/" + std::to_string(n % 1000);
    return "bench/" + std::to_string(n % per_client * static_cast<uint64_t>(clients) +
                                     static_cast<uint64_t>(c));
  };
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  struct Sample {
    double start_ms, latency_ms;
    int client;
  };
  std::vector<Sample> samples;  // only with --latency-log
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      vigil::api::HttpClient client(url->host_port, client_options);
      std::vector<double> mine;
      std::vector<Sample> my_samples;
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::string key =
            op == "get" ? "bench/get/" + std::to_string((c + n++) % kGetKeys) : put_key(c, n++);
        auto t0 = Clock::now();
        auto r = op == "get" ? get(client, key) : put(client, key);
        auto t1 = Clock::now();
        if (!r || r->status != 200) {
          errors.fetch_add(1);
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        if (!latency_log.empty()) {
          my_samples.push_back(
              {std::chrono::duration<double, std::milli>(t0 - start).count(), mine.back(), c});
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      samples.insert(samples.end(), my_samples.begin(), my_samples.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  if (!latency_log.empty()) {
    std::sort(samples.begin(), samples.end(),
              [](const Sample& a, const Sample& b) { return a.start_ms < b.start_ms; });
    FILE* f = std::fopen(latency_log.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "vigil-kv-load: cannot write %s\n", latency_log.c_str());
      return 1;
    }
    for (const auto& x : samples)
      std::fprintf(f, "%.3f %.3f %d\n", x.start_ms, x.latency_ms, x.client);
    std::fclose(f);
  }
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    size_t idx = std::min(latencies_ms.size() - 1,
                          static_cast<size_t>(p * static_cast<double>(latencies_ms.size())));
    return latencies_ms[idx];
  };
  double ops = static_cast<double>(latencies_ms.size()) / elapsed;
  if (as_json) {
    json j{{"target", target},    {"op", op},
           {"clients", clients},  {"ops", latencies_ms.size()},
           {"ops_per_s", ops},    {"p50_ms", pct(0.50)},
           {"p99_ms", pct(0.99)}, {"errors", errors.load()},
           {"seconds", elapsed}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "%-5s %s clients=%-3d ops=%-7zu ops/s=%-9.0f p50=%.2f ms p99=%.2f ms "
        "errors=%llu\n",
        target.c_str(), op.c_str(), clients, latencies_ms.size(), ops, pct(0.50), pct(0.99),
        static_cast<unsigned long long>(errors.load()));
  }
  return latencies_ms.empty() ? 1 : 0;
}
