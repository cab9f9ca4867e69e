// Bearer tokens (the role policy, header parsing, 401/403 answers) and pure request parsing.
#include "api/auth.h"

#include <gtest/gtest.h>

#include "api/request.h"

namespace vigil::api {
namespace {

const std::string kAdmin(40, 'a');
const std::string kWriter(32, 'w');
const std::string kReader = "r-" + std::string(40, 'r') + "==";

HttpRequest request(std::string method, std::string target, std::string authorization = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  if (!authorization.empty()) r.headers.emplace_back("authorization", authorization);
  return r;
}

Authorizer three_roles() {
  return Authorizer({{"ops", Role::kAdmin, kAdmin},
                     {"app", Role::kReadWrite, kWriter},
                     {"dash", Role::kReadOnly, kReader}});
}

TEST(RequiredRole, MethodAndPath) {
  EXPECT_EQ(required_role("GET", "/v1/status"), Role::kReadOnly);
  EXPECT_EQ(required_role("GET", "/v1/kv/a?serializable=true"), Role::kReadOnly);
  EXPECT_EQ(required_role("HEAD", "/v1/kv/a"), Role::kReadOnly);
  EXPECT_EQ(required_role("PUT", "/v1/kv/a"), Role::kReadWrite);
  EXPECT_EQ(required_role("POST", "/v1/kv/a"), Role::kReadWrite);
  EXPECT_EQ(required_role("DELETE", "/v1/kv/a"), Role::kReadWrite);
  EXPECT_EQ(required_role("BREW", "/v1/kv/a"), Role::kReadWrite);
  EXPECT_EQ(required_role("GET", "/v1/admin/members"), Role::kAdmin);
  EXPECT_EQ(required_role("POST", "/v1/admin?x"), Role::kAdmin);
  EXPECT_EQ(required_role("GET", "/v1/administrator"), Role::kReadOnly);
  EXPECT_EQ(required_role("POST", "/v1/compact?revision=5"), Role::kAdmin);
  EXPECT_EQ(required_role("POST", "/v1/txn"), Role::kReadWrite);
  EXPECT_EQ(required_role("GET", "/v1/leases"), Role::kReadOnly);
  // The cluster manager: reading is for everyone, changing it is the operator's.
  EXPECT_EQ(required_role("GET", "/v1/cluster/status"), Role::kReadOnly);
  EXPECT_EQ(required_role("GET", "/v1/cluster/explain/web"), Role::kReadOnly);
  EXPECT_EQ(required_role("PUT", "/v1/cluster?dry_run=true"), Role::kAdmin);
  EXPECT_EQ(required_role("POST", "/v1/resources/web/move"), Role::kAdmin);
  EXPECT_EQ(required_role("POST", "/v1/nodes/n1/standby"), Role::kAdmin);
  EXPECT_EQ(required_role("POST", "/v1/clusters"), Role::kReadWrite);
}

TEST(BearerToken, Forms) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc== "), "abc==");
  EXPECT_EQ(bearer_token("BEARER a+/~._-9"), "a+/~._-9");
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearerabc"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer a b"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer =abc"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer ab=c"), std::nullopt);
}

TEST(Authorizer, OpenWithoutTokens) {
  Authorizer open({});
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.check(request("PUT", "/v1/kv/a")), std::nullopt);
  EXPECT_EQ(open.check(request("GET", "/v1/admin/x", "Bearer nonsense")), std::nullopt);
}

TEST(Authorizer, NoTokenIs401WithAChallenge) {
  auto r = three_roles().check(request("GET", "/v1/status"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->body,
            R"({"error":{"code":"unauthorized","message":"this API needs a bearer token: send )"
            R"(the header \"Authorization: Bearer TOKEN\" (vigil CLI: --token-file or )"
            R"x(VIGIL_TOKEN_FILE)"}})x");
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r->headers[0].second, R"(Bearer realm="vigil")");
}

TEST(Authorizer, WrongOrMalformedTokenIs401) {
  const Authorizer a = three_roles();
  for (const std::string& h :
       {"Bearer " + std::string(40, 'b'), "Bearer " + kAdmin + "x", "Bearer " + kAdmin.substr(1)}) {
    auto r = a.check(request("GET", "/v1/status", h));
    ASSERT_TRUE(r.has_value()) << h;
    EXPECT_EQ(r->status, 401);
    EXPECT_NE(r->body.find("not one this node knows"), std::string::npos) << r->body;
    EXPECT_EQ(r->headers.at(0).second, R"(Bearer realm="vigil", error="invalid_token")");
  }
  auto r = a.check(request("GET", "/v1/status", "Basic " + kAdmin));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->headers.at(0).second, R"(Bearer realm="vigil", error="invalid_request")");
  EXPECT_EQ(a.caller(request("GET", "/", "Bearer " + kWriter)), "app");
  EXPECT_EQ(a.caller(request("GET", "/", "Bearer nope")), "");
}

TEST(Authorizer, RolesAllowWhatTheyInclude) {
  const Authorizer a = three_roles();
  const std::string ro = "Bearer " + kReader, rw = "Bearer " + kWriter, admin = "Bearer " + kAdmin;
  EXPECT_EQ(a.check(request("GET", "/v1/status", ro)), std::nullopt);
  EXPECT_EQ(a.check(request("GET", "/v1/kv/a", ro)), std::nullopt);
  EXPECT_EQ(a.check(request("PUT", "/v1/kv/a", rw)), std::nullopt);
  EXPECT_EQ(a.check(request("DELETE", "/v1/kv/a", admin)), std::nullopt);
  EXPECT_EQ(a.check(request("POST", "/v1/admin/x", admin)), std::nullopt);

  auto r = a.check(request("PUT", "/v1/kv/a?x=1", ro));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, R"({"error":{"code":"forbidden","message":"token \"dash\" has role )"
                     R"(read-only; PUT /v1/kv/a needs read-write"}})");
  EXPECT_EQ(r->headers.at(0).second, R"(Bearer realm="vigil", error="insufficient_scope")");
  auto r2 = a.check(request("GET", "/v1/admin/members", rw));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 403);
  EXPECT_NE(r2->body.find("needs admin"), std::string::npos);
  // A long hostile target is cut in the message.
  auto r3 = a.check(request("PUT", "/" + std::string(5000, 'x'), ro));
  ASSERT_TRUE(r3.has_value());
  EXPECT_LT(r3->body.size(), 400u);
}

TEST(Request, SplitAndDecode) {
  EXPECT_EQ(split_target("/v1/kv/a?x=1").path, "/v1/kv/a");
  EXPECT_EQ(split_target("/v1/kv/a?x=1").query, "x=1");
  EXPECT_EQ(split_target("/v1/kv/a").query, "");
  EXPECT_EQ(url_decode("a%2Fb%20c+d"), "a/b c+d");
  EXPECT_EQ(url_decode("%"), std::nullopt);
  EXPECT_EQ(url_decode("a%4"), std::nullopt);
  EXPECT_EQ(url_decode("%zz"), std::nullopt);
  EXPECT_EQ(url_decode("%00"), std::string(1, '\0'));
  EXPECT_TRUE(query_flag("serializable=true", "serializable"));
  EXPECT_TRUE(query_flag("a=1&serializable=true", "serializable"));
  EXPECT_FALSE(query_flag("xserializable=true", "serializable"));
  EXPECT_FALSE(query_flag("serializable=truex&y", "serializable"));
  EXPECT_FALSE(query_flag("", "serializable"));
}

TEST(Request, KvTarget) {
  EXPECT_EQ(parse_kv_target("/v1/kv/config/color?serializable=true", 100), "config/color");
  EXPECT_EQ(parse_kv_target("/v1/kv/a%2fb", 10), "a/b");
  EXPECT_EQ(parse_kv_target("/v1/status", 10).error().code(), Errc::kNotFound);
  EXPECT_EQ(parse_kv_target("/v1/kv/", 10).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(parse_kv_target("/v1/kv/%g0", 10).error().code(), Errc::kInvalidArgument);
  auto big = parse_kv_target("/v1/kv/" + std::string(11, 'k'), 10);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), Errc::kResourceExhausted);
  EXPECT_EQ(big.error().message(), "key longer than 10 bytes");
}

TEST(ParseHttpRequest, AsTheServerDoes) {
  HttpServerOptions o;
  o.max_body_bytes = 8;
  auto r = parse_http_request(
      "PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 3\r\n\r\nabc",
      o);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->method, "PUT");
  EXPECT_EQ(r->target, "/v1/kv/a");
  EXPECT_EQ(r->body, "abc");
  EXPECT_EQ(r->header("AUTHORIZATION"), "Bearer t");
  auto big = parse_http_request("PUT /a HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789", o);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), Errc::kResourceExhausted);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost x\r\n\r\n", o).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: x\r\n", o).error().code(),
            Errc::kUnavailable);
  o.max_header_bytes = 64;
  auto header =
      parse_http_request("GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'h') + "\r\n\r\n", o);
  ASSERT_FALSE(header.has_value());
  EXPECT_EQ(header.error().code(), Errc::kResourceExhausted);
}

}  // namespace
}  // namespace vigil::api
