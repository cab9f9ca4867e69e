// Fuzz target: the API's request parsing must never crash on arbitrary bytes: the Beast
// parser configured as the server configures it (api::parse_http_request), then what the
// server and the agent do with a parsed request (bearer token check, target parsing).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/auth.h"
#include "api/http_server.h"
#include "api/request.h"

namespace {

const vigil::api::Authorizer& authorizer() {
  static const vigil::api::Authorizer a(
      {{"ops", vigil::api::Role::kAdmin, std::string(32, 'a')},
       {"dash", vigil::api::Role::kReadOnly, "r0-" + std::string(40, 'r')}});
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  vigil::api::HttpServerOptions small;  // limits a fuzzer can reach
  small.max_body_bytes = 64;
  small.max_header_bytes = 256;
  for (const auto& options : {vigil::api::HttpServerOptions{}, small}) {
    auto req = vigil::api::parse_http_request(bytes, options);
    if (!req) continue;
    if (req->body.size() > options.max_body_bytes) std::abort();  // the limit held
    auto denied = authorizer().check(*req);
    if (denied && denied->status != 401 && denied->status != 403) std::abort();
    (void)authorizer().caller(*req);
    (void)vigil::api::required_role(req->method, req->target);
    const auto target = vigil::api::split_target(req->target);
    (void)vigil::api::query_flag(target.query, "serializable");
    auto key = vigil::api::parse_kv_target(req->target, 4096);
    if (key && (key->empty() || key->size() > 4096)) std::abort();
    for (const auto& [name, value] : req->headers) (void)vigil::api::bearer_token(value);
  }
  // The pure parts on raw bytes too.
  (void)vigil::api::bearer_token(bytes);
  (void)vigil::api::url_decode(bytes);
  return 0;
}
