// Bearer-token authorization of API requests (RFC 6750): roles, which role a request needs,
// and a constant-time token check.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_server.h"

namespace vigil::api {

// What a token may do; each role includes the ones before it.
enum class Role { kReadOnly, kReadWrite, kAdmin };
std::string_view role_name(Role role);  // "read-only", "read-write", "admin"

// The policy, in one place: the role a request needs, from its method and target.
//   paths under /v1/admin/      admin (endpoints that change the cluster itself)
//   /v1/compact                 admin (drops history other clients may need)
//   GET, HEAD, OPTIONS          read-only
//   anything else               read-write (PUT, POST, DELETE, PATCH; an unknown method
//                               gets past here and the handler answers 405)
// POST /v1/txn is read-write even when its ops only read. A new endpoint that reads with
// POST (a range or a watch) must get a line here.
Role required_role(std::string_view method, std::string_view target);

// One caller allowed on the API.
struct Credential {
  std::string name;  // for messages and logs, never secret
  Role role = Role::kReadOnly;
  std::string token;  // the secret
};

// Checks the Authorization header of each request against the configured tokens. A plain
// value built once at start (immutable afterwards, so any thread may call check()). The
// tokens are kept only as SHA-256 digests, and a presented token is compared with every one
// of them with CRYPTO_memcmp, so neither the answer's timing nor a memory dump gives a
// token away.
class Authorizer {
 public:
  // No credentials: every request is allowed (the API is open).
  explicit Authorizer(const std::vector<Credential>& credentials);

  bool open() const { return entries_.empty(); }

  // nullopt when `req` may proceed; otherwise the response to send:
  //   401 "unauthorized" + WWW-Authenticate: Bearer ...  no, malformed or unknown token
  //   403 "forbidden" + WWW-Authenticate: Bearer error="insufficient_scope"  role too weak
  std::optional<HttpResponse> check(const HttpRequest& req) const;

  // The name of the caller a request's token belongs to ("" if none matches), for logs.
  std::string caller(const HttpRequest& req) const;

 private:
  struct Entry {
    std::string name;
    Role role;
    std::array<unsigned char, 32> digest;
  };
  // The index of the entry `token` matches, or -1; takes the same time whichever matches.
  int match(std::string_view token) const;

  std::vector<Entry> entries_;
};

// The token of an "Authorization: Bearer TOKEN" header value (scheme case-insensitive,
// RFC 7235 §2.1; TOKEN is RFC 6750's b64token). nullopt when the value is not of that form.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace vigil::api
