// The `vigil` command line: argument handling, exit codes, and local-cluster's plan.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/local_cluster.h"

namespace vigil::cli {
namespace {

constexpr std::string_view kConfig = R"(node: n1
id: 1
cluster: demo
data_dir: /var/lib/vigil/n1
listen: {peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
peers:
  - {name: n1, id: 1, peer: 127.0.0.1:7001, api: 127.0.0.1:8001}
  - {name: n2, id: 2, peer: 127.0.0.1:7002, api: 127.0.0.1:8002}
  - {name: n3, id: 3, peer: 127.0.0.1:7003, api: 127.0.0.1:8003}
tls: {insecure: true}
)";

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome run(std::vector<std::string> args, const CliHooks& hooks = {}) {
  args.insert(args.begin(), "vigil");
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int code = run_cli(static_cast<int>(args.size()), argv.data(), hooks);
  std::fflush(nullptr);
  Outcome o{code, ::testing::internal::GetCapturedStdout(),
            ::testing::internal::GetCapturedStderr()};
  return o;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("vigil_cli_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, std::string_view text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(CliTest, CheckConfigOk) {
  const std::string path = write("n1.yaml", kConfig);
  Outcome o = run({"agent", "--config", path, "--check-config"});
  EXPECT_EQ(o.code, kExitOk);
  EXPECT_EQ(o.out, "config OK\n");
  EXPECT_EQ(o.err, path +
                       ": warning: tls.insecure: peer and API traffic is neither encrypted nor "
                       "authenticated; use this for loopback trials only\n");
}

TEST_F(CliTest, CheckConfigReportsEveryErrorAndExits2) {
  std::string text(kConfig);
  text.replace(text.find("id: 1\n"), 6, "id: 0\n");
  text += "fsync: maybe\n";
  const std::string path = write("bad.yaml", text);
  Outcome o = run({"agent", "--config", path, "--check-config"});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, path + ":2: id: must be between 1 and 18446744073709551615 (got 0)\n" + path +
                       ":11: fsync: must be true or false (got \"maybe\")\n"
                       "vigil agent: " +
                       path + " is not valid (2 errors; see docs/CONFIG.md)\n");
}

TEST_F(CliTest, MissingConfigFile) {
  const std::string path = (dir_ / "none.yaml").string();
  Outcome o = run({"agent", "--config", path});
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.err, "vigil agent: cannot read " + path + ": No such file or directory\n");
}

TEST_F(CliTest, AgentWithoutARunningAgentInThisBuild) {
  const std::string path = write("n1.yaml", kConfig);
  Outcome o = run({"agent", "--config", path});
  EXPECT_EQ(o.code, kExitFailure);
  EXPECT_NE(o.err.find("this build has no running agent yet"), std::string::npos) << o.err;
}

TEST_F(CliTest, AgentRunsTheHookWithTheConfig) {
  const std::string path = write("n1.yaml", kConfig);
  CliHooks hooks;
  std::string seen;
  hooks.run_agent = [&](const daemon::AgentConfig& c) {
    seen = c.node + "/" + c.cluster;
    return 7;
  };
  EXPECT_EQ(run({"agent", "--config", path}, hooks).code, 7);
  EXPECT_EQ(seen, "n1/demo");
}

TEST_F(CliTest, CheckConfigVerifiesCertificates) {
  std::string text(kConfig);
  text.replace(text.find("tls: {insecure: true}"), 21,
               "tls: {ca: " + write("ca.crt", "x") + ", cert: " + write("n1.crt", "x") +
                   ", key: " + write("n1.key", "x") + "}");
  const std::string path = write("n1.yaml", text);
  CliHooks hooks;
  hooks.cert_verify = [](const std::string&, const std::string& cert, const std::string&) {
    return Status(Errc::kInvalidArgument, cert + " was not issued by the CA");
  };
  Outcome o = run({"agent", "--config", path, "--check-config"}, hooks);
  EXPECT_EQ(o.code, kExitUsage);
  EXPECT_EQ(o.err, path + ": tls: " + (dir_ / "n1.crt").string() +
                       " was not issued by the CA\nvigil agent: " + path +
                       " is not valid (see docs/CONFIG.md)\n");
  hooks.cert_verify = [](const std::string&, const std::string&, const std::string&) {
    return Status();
  };
  EXPECT_EQ(run({"agent", "--config", path, "--check-config"}, hooks).out, "config OK\n");
}

TEST(Cli, UsageErrorsExit2) {
  EXPECT_EQ(run({}).code, kExitUsage);
  EXPECT_EQ(run({"agent"}).code, kExitUsage);
  EXPECT_EQ(run({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(run({"local-cluster", "--nodes", "x", "--dir", "/tmp/x"}).code, kExitUsage);
  EXPECT_EQ(run({"cert"}).code, kExitUsage);
  Outcome help = run({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_NE(help.out.find("local-cluster"), std::string::npos) << help.out;
}

TEST(Cli, CertCommands) {
  Outcome none = run({"cert", "init", "--dir", "/tmp/x", "--cluster", "demo"});
  EXPECT_EQ(none.code, kExitFailure);
  EXPECT_NE(none.err.find("no certificate support yet"), std::string::npos) << none.err;

  CliHooks hooks;
  std::vector<std::string> calls;
  hooks.cert_init = [&](const std::string& dir, const std::string& cluster) {
    calls.push_back("init " + dir + " " + cluster);
    return Status();
  };
  hooks.cert_issue = [&](const std::string& dir, const std::string& node) {
    calls.push_back("issue " + dir + " " + node);
    return node == "bad" ? Status(Errc::kIoError, "disk full") : Status();
  };
  EXPECT_EQ(run({"cert", "init", "--dir", "/c", "--cluster", "demo"}, hooks).code, kExitOk);
  EXPECT_EQ(run({"cert", "issue", "--dir", "/c", "n1", "n2"}, hooks).code, kExitOk);
  Outcome bad = run({"cert", "issue", "--dir", "/c", "bad"}, hooks);
  EXPECT_EQ(bad.code, kExitFailure);
  EXPECT_EQ(bad.err, "vigil cert issue: bad: I/O error: disk full\n");
  Outcome bad_name = run({"cert", "issue", "--dir", "/c", "N_1"}, hooks);
  EXPECT_EQ(bad_name.code, kExitUsage);
  EXPECT_EQ(calls, (std::vector<std::string>{"init /c demo", "issue /c n1", "issue /c n2",
                                             "issue /c bad"}));
}

TEST(LocalClusterPlan, ThreeNodes) {
  LocalClusterOptions o;
  o.nodes = 3;
  o.dir = "/tmp/vigil-demo/";
  o.base_port = 7001;
  auto plan = plan_local_cluster(o, {});
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  ASSERT_EQ(plan->size(), 3u);
  const LocalNode& n2 = (*plan)[1];
  EXPECT_EQ(n2.config.node, "n2");
  EXPECT_EQ(n2.config.id, NodeId(2));
  EXPECT_EQ(n2.config.cluster, "local");
  EXPECT_EQ(n2.config.data_dir, "/tmp/vigil-demo/n2");
  EXPECT_EQ(n2.config.listen.peer.to_string(), "127.0.0.1:7002");
  EXPECT_EQ(n2.config.listen.api.to_string(), "127.0.0.1:7102");
  EXPECT_EQ(n2.config_path, "/tmp/vigil-demo/n2.yaml");
  EXPECT_EQ(n2.log_path, "/tmp/vigil-demo/n2.log");
  EXPECT_EQ(n2.config.tls.ca_file, "/tmp/vigil-demo/certs/ca.crt");
  EXPECT_EQ(n2.config.tls.cert_file, "/tmp/vigil-demo/certs/n2.crt");
  EXPECT_EQ(n2.config.tls.key_file, "/tmp/vigil-demo/certs/n2.key");
  EXPECT_EQ(n2.config.peers.size(), 3u);
  // Every planned config is valid and survives a render.
  for (const auto& n : *plan) {
    auto back = daemon::parse_agent_config(daemon::render_agent_config(n.config), "x.yaml");
    ASSERT_TRUE(back.has_value()) << back.error().message();
    EXPECT_EQ(*back, n.config);
  }
}

TEST(LocalClusterPlan, InsecureAndRelativeDir) {
  LocalClusterOptions o;
  o.nodes = 1;
  o.dir = "rel/dir";
  o.insecure = true;
  auto plan = plan_local_cluster(o, {});
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_TRUE((*plan)[0].config.tls.insecure);
  EXPECT_EQ((*plan)[0].config.data_dir,
            (std::filesystem::current_path() / "rel/dir/n1").lexically_normal().string());
}

TEST(LocalClusterPlan, BadOptionsSayWhatToDo) {
  auto msg = [](LocalClusterOptions o) {
    auto r = plan_local_cluster(o, {});
    return r ? std::string("OK") : r.error().message();
  };
  LocalClusterOptions o;
  o.dir = "/tmp/x";
  o.nodes = 0;
  EXPECT_EQ(msg(o), "--nodes must be between 1 and 9 (got 0); 3 is usual");
  o.nodes = 3;
  o.base_port = 65500;
  EXPECT_EQ(msg(o),
            "--base-port must leave room for 3 peer ports and API ports 100 above them, within "
            "1024..65535 (got 65500)");
  o.base_port = 80;
  EXPECT_EQ(msg(o),
            "--base-port must leave room for 3 peer ports and API ports 100 above them, within "
            "1024..65535 (got 80)");
  o.base_port = 7001;
  o.cluster = "My Cluster";
  EXPECT_EQ(msg(o),
            "--cluster must be 1 to 63 characters of a-z, 0-9 and '-' (got \"My Cluster\")");
  o.cluster = "local";
  o.dir = "";
  EXPECT_EQ(msg(o), "--dir must name a directory, like /tmp/vigil-demo");
}

TEST(LocalCluster, WithoutCertificateSupportAsksForInsecure) {
  Outcome o = run({"local-cluster", "--nodes", "3", "--dir", "/nonexistent/never-created"});
  EXPECT_EQ(o.code, kExitFailure);
  EXPECT_EQ(o.err,
            "vigil local-cluster: this build cannot make certificates yet (src/net/certs.h is "
            "not linked); add --insecure for a loopback trial without TLS\n");
  EXPECT_FALSE(std::filesystem::exists("/nonexistent/never-created"));
}

}  // namespace
}  // namespace vigil::cli
