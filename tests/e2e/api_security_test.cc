// End-to-end test of the API's transport security and bearer tokens with three real
// `vigil agent` processes laid out like `vigil local-cluster` (HTTPS with the node
// certificates, one token file per role): 401 without a token, 403 for a role too weak,
// plain HTTP refused on the HTTPS port, 413 for a body over the limit, and the CLI's flags.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "api/http_client.h"
#include "cli/agent_cluster.h"
#include "net/certs.h"

namespace vigil::cli {
namespace {

using namespace std::chrono_literals;
using daemon::ApiRole;

CliHooks cert_hooks() {
  CliHooks h;
  h.cert_init = [](const std::string& d, const std::string& c) { return net::cert_init(d, c); };
  h.cert_issue = [](const std::string& d, const std::string& n) { return net::cert_issue(d, n); };
  return h;
}

// One cluster for every test of this file: starting agents is the slow part.
class ApiSecurity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    AgentClusterOptions o;
    o.dir = "/tmp/vigil-e2e-api-" + std::to_string(::getpid());
    std::filesystem::remove_all(o.dir);
    o.vigil_binary = VIGIL_BINARY;
    o.insecure = false;
    o.fsync = false;  // this test is about the API, not durability
    cluster_ = new AgentCluster(o, cert_hooks());
    ASSERT_TRUE(cluster_->init().ok());
    ASSERT_TRUE(cluster_->start_all().ok());
    auto leader = cluster_->wait_for_leader(15s);
    ASSERT_TRUE(leader.has_value()) << cluster_->log_tail(1);
  }
  static void TearDownTestSuite() {
    const std::string dir =
        std::filesystem::path(cluster_->token_file(ApiRole::kAdmin)).parent_path().string();
    delete cluster_;
    cluster_ = nullptr;
    if (!failed_) {
      std::filesystem::remove_all(dir);
    } else {
      std::printf("kept %s for inspection\n", dir.c_str());
    }
  }
  void TearDown() override { failed_ = failed_ || HasFailure(); }

  // A client of node 2 (a follower or the leader: either answers) with `role`'s token.
  static api::HttpClient client(ApiRole role) {
    return api::HttpClient(cluster_->api(2), cluster_->client_options(2, role));
  }
  static api::HttpClient client_without_token() {
    api::HttpClientOptions o = cluster_->client_options(2);
    o.bearer_token.clear();
    return api::HttpClient(cluster_->api(2), o);
  }

  // Runs the vigil CLI; returns its exit code and what it printed (stdout and stderr).
  static std::pair<int, std::string> vigil(const std::string& args) {
    const std::string cmd = std::string(VIGIL_BINARY) + " " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return {-1, "popen failed"};
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }

  static inline AgentCluster* cluster_ = nullptr;
  static inline bool failed_ = false;
};

TEST_F(ApiSecurity, NoTokenOrAWrongOneIs401) {
  auto r = client_without_token().request("GET", "/v1/status");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find(R"("code":"unauthorized")"), std::string::npos) << r->body;
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].second, R"(Bearer realm="vigil")");

  api::HttpClientOptions o = cluster_->client_options(2);
  o.bearer_token = std::string(64, '0');
  auto wrong = api::HttpClient(cluster_->api(2), o).request("PUT", "/v1/kv/x", "v");
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->status, 401);
}

TEST_F(ApiSecurity, ReadOnlyReadsAndCannotWrite) {
  ASSERT_TRUE(cluster_->put(1, "e2e/ro", "seen").has_value());
  auto c = client(ApiRole::kReadOnly);
  auto status = c.request("GET", "/v1/status");
  ASSERT_TRUE(status.has_value()) << status.error().to_string();
  EXPECT_EQ(status->status, 200);
  auto get = c.request("GET", "/v1/kv/e2e/ro");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 200) << get->body;
  EXPECT_NE(get->body.find(R"("value":"seen")"), std::string::npos);
  for (const char* method : {"PUT", "DELETE"}) {
    auto w = c.request(method, "/v1/kv/e2e/ro", "changed");
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->status, 403) << method;
    EXPECT_EQ(w->body, std::string(R"({"error":{"code":"forbidden","message":"token )") +
                           R"(\"read-only\" has role read-only; )" + method +
                           R"( /v1/kv/e2e/ro needs read-write"}})");
  }
  auto after = c.request("GET", "/v1/kv/e2e/ro");
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(after->body.find(R"("value":"seen")"), std::string::npos);
}

TEST_F(ApiSecurity, ReadWriteWrites) {
  auto c = client(ApiRole::kReadWrite);
  auto put = c.request("PUT", "/v1/kv/e2e/rw", "written");
  ASSERT_TRUE(put.has_value()) << put.error().to_string();
  EXPECT_EQ(put->status, 200) << put->body;
  auto got = cluster_->get(3, "e2e/rw");
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  EXPECT_EQ(*got, std::optional<std::string>("written"));
  auto del = c.request("DELETE", "/v1/kv/e2e/rw");
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->status, 200) << del->body;
}

TEST_F(ApiSecurity, PlainHttpToTheHttpsPortFailsCleanly) {
  auto r = api::HttpClient(cluster_->api(1)).request("GET", "/v1/status");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find(R"("code":"tls_required")"), std::string::npos) << r->body;
  // The node still serves HTTPS afterwards.
  EXPECT_TRUE(cluster_->status(1).has_value());
}

TEST_F(ApiSecurity, TheCertificateNamesTheNode) {
  api::HttpClientOptions o = cluster_->client_options(2);
  o.server_name = "n1";  // but this is n2's port
  auto r = api::HttpClient(cluster_->api(2), o).request("GET", "/v1/status");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(R"(certificate is for "n2", not "n1")"), std::string::npos)
      << r.error().message();
}

TEST_F(ApiSecurity, OversizedBodyIs413) {
  auto c = client(ApiRole::kReadWrite);
  auto r = c.request("PUT", "/v1/kv/e2e/big", std::string((1 << 20) + 1, 'b'), 10000);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body,
            R"({"error":{"code":"too_large","message":"request body exceeds 1048576 bytes"}})");
  auto after = c.request("PUT", "/v1/kv/e2e/small", "fits");
  ASSERT_TRUE(after.has_value()) << after.error().to_string();
  EXPECT_EQ(after->status, 200);
}

TEST_F(ApiSecurity, TheCliTakesTokenAndCa) {
  const std::string ca = cluster_->client_options(1).ca_file;
  const std::string api = "--api https://" + cluster_->api(1) + " --server-name n1 --cacert " + ca;
  auto [rc, out] = vigil("kv put " + api + " --token-file " +
                         cluster_->token_file(ApiRole::kReadWrite) + " e2e/cli from-the-cli");
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = vigil("kv get " + api + " --token-file " +
                            cluster_->token_file(ApiRole::kReadOnly) + " e2e/cli");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "from-the-cli\n");
  std::tie(rc, out) = vigil("kv put " + api + " --token-file " +
                            cluster_->token_file(ApiRole::kReadOnly) + " e2e/cli nope");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("403 forbidden"), std::string::npos) << out;
  std::tie(rc, out) = vigil("status " + api);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("pass --token-file"), std::string::npos) << out;
  std::tie(rc, out) = vigil("status --api https://" + cluster_->api(1) + " --cacert " + ca +
                            " --token-file " + cluster_->token_file(ApiRole::kAdmin));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("pass --server-name"), std::string::npos) << out;
  std::tie(rc, out) = vigil("status --api " + cluster_->api(1));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("speaks HTTPS: use --api https://"), std::string::npos) << out;
}

}  // namespace
}  // namespace vigil::cli
