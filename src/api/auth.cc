// Bearer tokens: header parsing, the role policy, constant-time comparison of digests.
#include "api/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace vigil::api {
namespace {

constexpr std::string_view kChallenge = "Bearer realm=\"vigil\"";
constexpr size_t kMaxShownTarget = 200;

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  // EVP_Digest fails only on allocation failure; a zero digest then matches no token.
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    out.fill(0);
  }
  return out;
}

bool b64token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

HttpResponse unauthorized(std::string_view message, std::string_view error) {
  HttpResponse r = error_response(401, "unauthorized", message);
  std::string challenge(kChallenge);
  if (!error.empty()) {
    challenge += ", error=\"" + std::string(error) + "\"";
  }
  r.headers.emplace_back("WWW-Authenticate", std::move(challenge));
  return r;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kReadOnly:
      return "read-only";
    case Role::kReadWrite:
      return "read-write";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Role required_role(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  // Compaction drops history every client may still want (as etcd, admin only).
  if (path.starts_with("/v1/admin/") || path == "/v1/admin" || path == "/v1/compact") {
    return Role::kAdmin;
  }
  if (method == "GET" || method == "HEAD" || method == "OPTIONS") {
    return Role::kReadOnly;
  }
  // What the cluster runs, where, and which nodes take part: the operator's, not an
  // application's (apply, move/ban/restart/disable, standby/maintenance).
  if (path == "/v1/cluster" || path.starts_with("/v1/cluster/") ||
      path.starts_with("/v1/resources/") || path.starts_with("/v1/nodes/")) {
    return Role::kAdmin;
  }
  return Role::kReadWrite;
}

std::optional<std::string_view> bearer_token(std::string_view v) {
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || v[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) {
      return std::nullopt;
    }
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
  size_t n = 0;
  while (n < v.size() && b64token_char(v[n])) ++n;
  if (n == 0) {
    return std::nullopt;
  }
  for (size_t i = n; i < v.size(); ++i) {
    if (v[i] != '=') {
      return std::nullopt;
    }
  }
  return v;
}

Authorizer::Authorizer(const std::vector<Credential>& credentials) {
  for (const auto& c : credentials) {
    entries_.push_back(Entry{c.name, c.role, sha256(c.token)});
  }
}

int Authorizer::match(std::string_view token) const {
  const auto digest = sha256(token);
  int found = -1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    // Every entry is compared, whichever matches: no early exit.
    const int equal = CRYPTO_memcmp(digest.data(), entries_[i].digest.data(), digest.size()) == 0;
    found = equal ? static_cast<int>(i) : found;
  }
  return found;
}

std::string Authorizer::caller(const HttpRequest& req) const {
  const std::string value = req.header("Authorization");  // bearer_token() views into it
  auto token = bearer_token(value);
  const int i = token ? match(*token) : -1;
  return i < 0 ? "" : entries_[static_cast<size_t>(i)].name;
}

std::optional<HttpResponse> Authorizer::check(const HttpRequest& req) const {
  if (open()) {
    return std::nullopt;
  }
  const std::string value = req.header("Authorization");
  if (value.empty()) {
    return unauthorized(
        "this API needs a bearer token: send the header \"Authorization: Bearer TOKEN\" (vigil "
        "CLI: --token-file or VIGIL_TOKEN_FILE)",
        "");
  }
  auto token = bearer_token(value);
  if (!token) {
    return unauthorized("the Authorization header must be \"Bearer TOKEN\"", "invalid_request");
  }
  const int i = match(*token);
  if (i < 0) {
    return unauthorized(
        "the bearer token is not one this node knows (see api.tokens in its config)",
        "invalid_token");
  }
  const Entry& e = entries_[static_cast<size_t>(i)];
  const Role need = required_role(req.method, req.target);
  if (e.role < need) {
    std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    std::string shown(path.substr(0, kMaxShownTarget));
    if (path.size() > kMaxShownTarget) shown += "...";
    HttpResponse r = error_response(
        403, "forbidden",
        "token \"" + e.name + "\" has role " + std::string(role_name(e.role)) + "; " +
            req.method.substr(0, 16) + " " + shown + " needs " + std::string(role_name(need)));
    r.headers.emplace_back("WWW-Authenticate",
                           std::string(kChallenge) + ", error=\"insufficient_scope\"");
    return r;
  }
  return std::nullopt;
}

}  // namespace vigil::api
