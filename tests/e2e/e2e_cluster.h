// A loopback cluster of real agents for end-to-end tests: a fresh directory (kept when the
// test fails, for its logs), plain HTTP on 127.0.0.1, and a one-call JSON client.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "api/http_client.h"
#include "cli/agent_cluster.h"

namespace vigil::cli {

struct E2eCluster {
  // `name` makes the directory /tmp/vigil-e2e-NAME-PID.
  explicit E2eCluster(const std::string& name) {
    o.dir = "/tmp/vigil-e2e-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(o.dir);
    o.vigil_binary = VIGIL_BINARY;
    o.insecure = true;
    c = std::make_unique<AgentCluster>(o, CliHooks{});
  }
  ~E2eCluster() {
    c.reset();  // agents stop before their files go
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(o.dir);
  }
  // One request to node `node`; the status and the body parsed as JSON (0 and null when the
  // request itself failed).
  std::pair<int, nlohmann::json> call(int node, const std::string& method,
                                      const std::string& target, const std::string& body = "") {
    api::HttpClient h(c->api(node));
    auto r = h.request(method, target, body, 8000);
    if (!r) return {0, nlohmann::json()};
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }
  AgentClusterOptions o;
  std::unique_ptr<AgentCluster> c;
};

}  // namespace vigil::cli
