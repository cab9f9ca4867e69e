// The agent's API server settings from its config: HTTPS files and the bearer-token check.
#pragma once

#include "api/http_server.h"
#include "base/status.h"
#include "daemon/config.h"

namespace vigil::daemon {

// HttpServerOptions for the agent's API: api.tls's files (the server loads and checks them
// in listen()) and, when api.tokens is not empty, an authorizer over the tokens read from
// their files (api/auth.h: 401 without a known token, 403 when its role is too weak).
// Logs what it set up and read_api_tokens()'s warnings. Errors: a token file that cannot
// be used, named with its key path (kNotFound, kIoError, kInvalidArgument).
Result<api::HttpServerOptions> api_server_options(const AgentConfig& config);

}  // namespace vigil::daemon
