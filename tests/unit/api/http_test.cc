// HttpServer and HttpClient over real sockets on 127.0.0.1: HTTPS with the cluster PKI, the
// server-name check, plain HTTP on a TLS port, the authorization hook, 413 seen by clients.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api/auth.h"
#include "api/http_client.h"
#include "api/http_server.h"
#include "net/certs.h"

namespace vigil::api {
namespace {

namespace fs = std::filesystem;

// A cluster CA with node certificates n1 and n2, made once for the whole binary.
class Pki {
 public:
  static const Pki& get() {
    static Pki pki;
    return pki;
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

 private:
  Pki() : dir_(fs::temp_directory_path() / ("vigil_api_test_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    EXPECT_TRUE(net::cert_init(dir_, "test").ok());
    EXPECT_TRUE(net::cert_issue(dir_, "n1").ok());
    EXPECT_TRUE(net::cert_issue(dir_, "n2").ok());
  }
  ~Pki() { fs::remove_all(dir_); }
  std::string dir_;
};

// An HttpServer on its own loop thread, answering every request with its method and body.
class Server {
 public:
  explicit Server(HttpServerOptions o, bool tls = true) {
    if (tls) {
      o.tls_cert_file = Pki::get().file("n1.crt");
      o.tls_key_file = Pki::get().file("n1.key");
    }
    server_ = std::make_unique<HttpServer>(io_, std::move(o),
                                           [](const HttpRequest& req, Responder respond) {
                                             HttpResponse r;
                                             r.body = req.method + " " + req.body;
                                             respond(std::move(r));
                                           });
    status_ = server_->listen("127.0.0.1:0");
    if (status_.ok()) thread_ = std::thread([this] { io_.run(); });
  }
  ~Server() {
    boost::asio::post(io_, [this] { server_->stop(); });
    if (thread_.joinable()) thread_.join();
  }
  const Status& status() const { return status_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  Status status_;
  std::thread thread_;
};

HttpClientOptions tls_to(std::string name) {
  HttpClientOptions o;
  o.tls = true;
  o.ca_file = Pki::get().file("ca.crt");
  o.server_name = std::move(name);
  return o;
}

TEST(HttpServerTls, HttpsWithTheClusterCaAndTheNodeName) {
  Server s({});
  ASSERT_TRUE(s.status().ok()) << s.status().to_string();
  HttpClient c(s.address(), tls_to("n1"));
  for (int i = 0; i < 3; ++i) {  // keep-alive: one handshake, several requests
    auto r = c.request("PUT", "/x", "hello");
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "PUT hello");
  }
}

TEST(HttpServerTls, TheServerNameIsChecked) {
  Server s({});
  ASSERT_TRUE(s.status().ok());
  auto r = HttpClient(s.address(), tls_to("n2")).request("GET", "/");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
  EXPECT_NE(r.error().message().find("the server's certificate is for \"n1\", not \"n2\""),
            std::string::npos)
      << r.error().message();
  // Without a name the host is expected, and the node certificate does not carry 127.0.0.1.
  auto by_ip = HttpClient(s.address(), tls_to("")).request("GET", "/");
  ASSERT_FALSE(by_ip.has_value());
  EXPECT_NE(by_ip.error().message().find("not \"127.0.0.1\""), std::string::npos);
  HttpClientOptions skip = tls_to("");
  skip.skip_host_check = true;
  auto ok = HttpClient(s.address(), skip).request("GET", "/");
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServerTls, AnotherCaIsNotTrusted) {
  Server s({});
  ASSERT_TRUE(s.status().ok());
  HttpClientOptions o = tls_to("n1");
  o.ca_file = Pki::get().file("n2.crt");  // a certificate, but not the one that signed n1
  auto r = HttpClient(s.address(), o).request("GET", "/");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("is not trusted"), std::string::npos) << r.error().message();
  o.ca_file = Pki::get().file("no-such-ca.crt");
  auto missing = HttpClient(s.address(), o).request("GET", "/");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Errc::kInvalidArgument);
}

TEST(HttpServerTls, PlainHttpToATlsPortGetsA400ItCanRead) {
  Server s({});
  ASSERT_TRUE(s.status().ok());
  auto r = HttpClient(s.address()).request("GET", "/v1/status");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find(R"("code":"tls_required")"), std::string::npos) << r->body;
}

TEST(HttpServerTls, HttpsToAPlainPortFailsCleanly) {
  Server s({}, /*tls=*/false);
  ASSERT_TRUE(s.status().ok());
  auto r = HttpClient(s.address(), tls_to("n1")).request("GET", "/", "", 2000);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
  EXPECT_NE(r.error().message().find("TLS handshake"), std::string::npos);
}

TEST(HttpServerTls, BadFilesAreNamedAtListen) {
  HttpServerOptions o;
  o.tls_cert_file = Pki::get().file("missing.crt");
  o.tls_key_file = Pki::get().file("n1.key");
  boost::asio::io_context io;
  HttpServer missing(io, o, [](const HttpRequest&, Responder) {});
  Status s = missing.listen("127.0.0.1:0");
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "API TLS certificate " + o.tls_cert_file + ": cannot read: No such file or directory");
  o.tls_cert_file = Pki::get().file("n1.crt");
  o.tls_key_file = Pki::get().file("n2.key");
  HttpServer mismatch(io, o, [](const HttpRequest&, Responder) {});
  s = mismatch.listen("127.0.0.1:0");
  EXPECT_EQ(s.message(), "API TLS key " + o.tls_key_file + " does not belong to the certificate " +
                             o.tls_cert_file);
  o.tls_key_file = Pki::get().file("ca.crt");
  HttpServer not_key(io, o, [](const HttpRequest&, Responder) {});
  s = not_key.listen("127.0.0.1:0");
  EXPECT_TRUE(s.message().starts_with("API TLS key " + o.tls_key_file + ": not a PEM private key"))
      << s.message();
}

TEST(HttpServerAuth, TheHookAnswersBeforeTheHandler) {
  const std::string token(32, 't');
  auto authorizer =
      std::make_shared<Authorizer>(std::vector<Credential>{{"reader", Role::kReadOnly, token}});
  HttpServerOptions o;
  o.authorize = [authorizer](const HttpRequest& req) { return authorizer->check(req); };
  Server s(o);
  ASSERT_TRUE(s.status().ok());
  auto none = HttpClient(s.address(), tls_to("n1")).request("GET", "/v1/status");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 401);
  ASSERT_EQ(none->headers.size(), 1u);
  EXPECT_EQ(none->headers[0].second, R"(Bearer realm="vigil")");
  HttpClientOptions with = tls_to("n1");
  with.bearer_token = token;
  HttpClient c(s.address(), with);
  auto get = c.request("GET", "/v1/status");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 200);
  auto put = c.request("PUT", "/v1/kv/a", "x");  // same connection after a refusal
  ASSERT_TRUE(put.has_value());
  EXPECT_EQ(put->status, 403);
  EXPECT_EQ(c.request("GET", "/v1/kv/a")->status, 200);
}

TEST(HttpServerLimits, ClientsSeeThe413OfABodyTooLarge) {
  for (bool tls : {false, true}) {
    HttpServerOptions o;
    o.max_body_bytes = 1000;
    Server s(o, tls);
    ASSERT_TRUE(s.status().ok());
    HttpClient c(s.address(), tls ? tls_to("n1") : HttpClientOptions{});
    auto r = c.request("PUT", "/v1/kv/big", std::string(4 << 20, 'b'));
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->body,
              R"({"error":{"code":"too_large","message":"request body exceeds 1000 bytes"}})");
    auto next = c.request("PUT", "/v1/kv/small", "ok");  // reconnects
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->status, 200);
  }
}

TEST(ParseApiUrl, Forms) {
  EXPECT_TRUE(parse_api_url("https://127.0.0.1:7101")->tls);
  EXPECT_EQ(parse_api_url("https://127.0.0.1:7101/")->host_port, "127.0.0.1:7101");
  EXPECT_FALSE(parse_api_url("http://[::1]:7101")->tls);
  EXPECT_FALSE(parse_api_url("127.0.0.1:7101")->tls);
  EXPECT_FALSE(parse_api_url("ftp://127.0.0.1:7101").has_value());
  EXPECT_FALSE(parse_api_url("https://127.0.0.1:7101/v1").has_value());
  EXPECT_FALSE(parse_api_url("https://127.0.0.1").has_value());
}

}  // namespace
}  // namespace vigil::api
