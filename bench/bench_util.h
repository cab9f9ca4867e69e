// Helpers shared by the benchmark tools: base64 for etcd's JSON gateway, and HTTP client
// options (TLS, token) from the vigil CLI's environment variables.
#pragma once

#include <string>
#include <string_view>

#include "api/http_client.h"
#include "base/status.h"

namespace vigil::bench {

// RFC 4648 base64 with padding (etcd's gateway encodes keys and values this way).
std::string base64(std::string_view in);
// Decodes base64 up to the first character outside the alphabet (the padding).
std::string unbase64(std::string_view in);

// $name, or "" when unset.
std::string env(const char* name);

// Options for a client of `api_url` ("[https://]HOST:PORT"): TLS from the scheme, the CA
// from $VIGIL_CACERT, the server name from `server_name` or else $VIGIL_SERVER_NAME, and the
// bearer token in $VIGIL_TOKEN_FILE (read as `vigil` reads it). Errors name what is wrong.
Result<api::HttpClientOptions> client_options_from_env(std::string_view api_url,
                                                       std::string server_name = "");

}  // namespace vigil::bench
