// Builds the API server's options: TLS files from api.tls, the authorizer from api.tokens.
#include "daemon/api_setup.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "api/auth.h"

namespace vigil::daemon {
namespace {

api::Role to_api_role(ApiRole role) {
  switch (role) {
    case ApiRole::kReadOnly:
      return api::Role::kReadOnly;
    case ApiRole::kReadWrite:
      return api::Role::kReadWrite;
    case ApiRole::kAdmin:
      return api::Role::kAdmin;
  }
  return api::Role::kReadOnly;  // unreachable: the enum is closed
}

}  // namespace

Result<api::HttpServerOptions> api_server_options(const AgentConfig& config) {
  api::HttpServerOptions o;
  o.tls_cert_file = config.api.cert_file;
  o.tls_key_file = config.api.key_file;
  std::vector<std::string> warnings;
  ASSIGN_OR_RETURN(auto tokens, read_api_tokens(config, &warnings));
  for (const auto& w : warnings) spdlog::warn("{}: config: {}", config.node, w);
  std::vector<api::Credential> credentials;
  for (auto& t : tokens) {
    credentials.push_back(api::Credential{t.name, to_api_role(t.role), std::move(t.token)});
  }
  auto authorizer = std::make_shared<const api::Authorizer>(credentials);
  if (!authorizer->open()) {
    o.authorize = [authorizer, node = config.node](const api::HttpRequest& req) {
      auto denied = authorizer->check(req);
      if (denied) {
        spdlog::debug("{}: API {} {}: {} ({})", node, req.method, req.target.substr(0, 200),
                      denied->status, authorizer->caller(req));
      }
      return denied;
    };
  }
  spdlog::info("{}: API on {}: {}, {}", config.node, config.listen.api.to_string(),
               config.api.tls() ? "HTTPS" : "plain HTTP",
               authorizer->open() ? "open (no api.tokens: no authentication)"
                                  : std::to_string(credentials.size()) + " bearer token(s)");
  return o;
}

}  // namespace vigil::daemon
