// vigil-watch-latency: watch latency of Vigil or etcd (docs/BENCHMARKS.md). A watcher streams
// one key from node B (Vigil: GET /v1/watch; etcd: its JSON gateway's POST /v3/watch); puts
// go to node A one at a time, the next only after the watcher saw the previous one. One
// sample = the clock read just before the PUT is sent to the moment the watcher has the
// event's bytes (value = the put's sequence number). Prints the median and p99.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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
using vigil::bench::env;
using vigil::bench::unbase64;

void usage() {
  std::fprintf(stderr,
               "usage: vigil-watch-latency --target vigil|etcd --put-endpoint A "
               "--watch-endpoint B\n"
               "                           [--put-server-name N] [--watch-server-name N]\n"
               "                           [--count N] [--json]\n"
               "Puts N values (default 1000) one at a time through A while watching the key\n"
               "on B; prints the median and p99 of put-sent to event-received. HTTPS: the\n"
               "VIGIL_CACERT, VIGIL_SERVER_NAME and VIGIL_TOKEN_FILE variables.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "vigil", put_ep, watch_ep;
  std::string put_name = env("VIGIL_SERVER_NAME"), watch_name = put_name;
  int count = 1000;
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
    else if (a == "--put-endpoint")
      put_ep = next();
    else if (a == "--watch-endpoint")
      watch_ep = next();
    else if (a == "--put-server-name")
      put_name = next();
    else if (a == "--watch-server-name")
      watch_name = next();
    else if (a == "--count")
      count = std::atoi(next().c_str());
    else if (a == "--json")
      as_json = true;
    else {
      usage();
      return 2;
    }
  }
  if (put_ep.empty() || watch_ep.empty() || count < 1 || (target != "vigil" && target != "etcd")) {
    usage();
    return 2;
  }
  auto put_opts = vigil::bench::client_options_from_env(put_ep, put_name);
  auto watch_opts = vigil::bench::client_options_from_env(watch_ep, watch_name);
  if (!put_opts || !watch_opts) {
    std::fprintf(stderr, "vigil-watch-latency: %s\n",
                 (put_opts ? watch_opts.error() : put_opts.error()).message().c_str());
    return 2;
  }
  const auto put_url = vigil::api::parse_api_url(put_ep);  // valid: checked just above
  const auto watch_url = vigil::api::parse_api_url(watch_ep);

  const std::string key = "bench/watch/" + std::to_string(::time(nullptr));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Clock::time_point> received(static_cast<size_t>(count));
  std::vector<bool> seen(static_cast<size_t>(count), false);
  bool created = false, watch_done = false;
  std::string watch_error;
  std::atomic<bool> stop{false};

  // Each complete line of the stream: the values of its events (Vigil: raw; etcd: base64).
  auto on_line = [&](const std::string& line, Clock::time_point now) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return;
    if (target == "etcd" && j.contains("result")) j = j["result"];
    std::lock_guard<std::mutex> lock(mu);
    if (j.value("created", false)) created = true;
    if (!j.contains("events") || !j["events"].is_array()) return;
    for (const auto& e : j["events"]) {
      if (!e.contains("kv")) continue;
      std::string v = e["kv"].value("value", "");
      if (target == "etcd") v = unbase64(v);
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || n < 0 || n >= count) continue;
      if (!seen[static_cast<size_t>(n)]) {
        seen[static_cast<size_t>(n)] = true;
        received[static_cast<size_t>(n)] = now;
      }
    }
    cv.notify_all();
  };

  std::thread watcher([&] {
    vigil::api::HttpClient client(watch_url->host_port, *watch_opts);
    std::string buf;
    auto on_data = [&](std::string_view data) {
      auto now = Clock::now();
      buf.append(data);
      size_t pos;
      while ((pos = buf.find('\n')) != std::string::npos) {
        on_line(buf.substr(0, pos), now);
        buf.erase(0, pos + 1);
      }
      return !stop.load();
    };
    const int timeout_ms = 600000;
    vigil::Result<vigil::api::HttpResponse> r;
    if (target == "vigil") {
      r = client.stream("/v1/watch?key=" + key + "&progress_ms=0", on_data, timeout_ms);
    } else {
      json body{{"create_request", {{"key", base64(key)}}}};
      r = client.stream("POST", "/v3/watch", body.dump(), on_data, timeout_ms);
    }
    std::lock_guard<std::mutex> lock(mu);
    watch_done = true;
    if (!r)
      watch_error = r.error().message();
    else if (r->status != 200)
      watch_error = "HTTP " + std::to_string(r->status) + " " + r->body;
    cv.notify_all();
  });

  auto finish = [&](int rc) {
    stop = true;
    // The watcher notices `stop` with the next bytes: one more put wakes it.
    vigil::api::HttpClient c(put_url->host_port, *put_opts);
    if (target == "vigil") {
      (void)c.request("PUT", "/v1/kv/" + key, "end", 5000, "application/octet-stream");
    } else {
      json body{{"key", base64(key)}, {"value", base64("end")}};
      (void)c.request("POST", "/v3/kv/put", body.dump(), 5000);
    }
    watcher.join();
    return rc;
  };

  {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return created || watch_done; }) ||
        !created) {
      std::fprintf(stderr, "vigil-watch-latency: watch not created: %s\n", watch_error.c_str());
      lock.unlock();
      return finish(1);
    }
  }
  vigil::api::HttpClient putter(put_url->host_port, *put_opts);
  std::vector<double> lat_ms;
  int lost = 0;
  for (int i = 0; i < count; ++i) {
    std::string value = std::to_string(i);
    auto t0 = Clock::now();
    vigil::Result<vigil::api::HttpResponse> r;
    if (target == "vigil") {
      r = putter.request("PUT", "/v1/kv/" + key, value, 10000, "application/octet-stream");
    } else {
      json body{{"key", base64(key)}, {"value", base64(value)}};
      r = putter.request("POST", "/v3/kv/put", body.dump(), 10000);
    }
    if (!r || r->status != 200) {
      std::fprintf(stderr, "vigil-watch-latency: put %d failed\n", i);
      return finish(1);
    }
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5),
                     [&] { return seen[static_cast<size_t>(i)] || watch_done; }) ||
        !seen[static_cast<size_t>(i)]) {
      ++lost;
      if (watch_done) {
        std::fprintf(stderr, "vigil-watch-latency: watch ended: %s\n", watch_error.c_str());
        lock.unlock();
        return finish(1);
      }
      continue;
    }
    lat_ms.push_back(
        std::chrono::duration<double, std::milli>(received[static_cast<size_t>(i)] - t0).count());
  }
  int rc = finish(lat_ms.empty() ? 1 : 0);
  std::sort(lat_ms.begin(), lat_ms.end());
  auto pct = [&](double p) {
    if (lat_ms.empty()) return 0.0;
    size_t idx =
        std::min(lat_ms.size() - 1, static_cast<size_t>(p * static_cast<double>(lat_ms.size())));
    return lat_ms[idx];
  };
  if (as_json) {
    json j{{"target", target},    {"samples", lat_ms.size()},
           {"lost", lost},        {"median_ms", pct(0.50)},
           {"p99_ms", pct(0.99)}, {"max_ms", lat_ms.empty() ? 0.0 : lat_ms.back()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%-5s watch latency: samples=%zu lost=%d median=%.2f ms p99=%.2f ms\n",
                target.c_str(), lat_ms.size(), lost, pct(0.50), pct(0.99));
  }
  return rc;
}
