// Benchmark helpers: base64 and client options from the environment.
#include "bench/bench_util.h"

#include <cstdlib>

#include "api/request.h"
#include "daemon/config.h"

namespace vigil::bench {

std::string base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char ch : in) {
    acc = (acc << 8) | ch;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  while (out.size() % 4) out += '=';
  return out;
}

std::string unbase64(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '+') {
      v = 62;
    } else if (ch == '/') {
      v = 63;
    } else {
      break;  // padding ends the data
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<api::HttpClientOptions> client_options_from_env(std::string_view api_url,
                                                       std::string server_name) {
  ASSIGN_OR_RETURN(auto url, api::parse_api_url(api_url));
  api::HttpClientOptions o;
  o.tls = url.tls;
  o.ca_file = env("VIGIL_CACERT");
  o.server_name = server_name.empty() ? env("VIGIL_SERVER_NAME") : std::move(server_name);
  if (std::string path = env("VIGIL_TOKEN_FILE"); !path.empty()) {
    ASSIGN_OR_RETURN(o.bearer_token, daemon::read_api_token_file(path));
  }
  return o;
}

}  // namespace vigil::bench
