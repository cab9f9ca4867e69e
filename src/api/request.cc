// Request target parsing: no I/O, no allocation beyond the decoded key.
#include "api/request.h"

#include <cctype>

namespace vigil::api {

Target split_target(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::string url_encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

std::optional<std::string> url_decode(std::string_view in) {
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = hex(in[i + 1]);
    const int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The value of `name` in an '&'-separated query, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      if (eq == std::string_view::npos) return std::string();
      return url_decode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool query_flag(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.size() == name.size() + 5 && param.starts_with(name) &&
        param.substr(name.size()) == "=true") {
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

Result<std::string> parse_kv_target(std::string_view target, size_t max_key_bytes) {
  const std::string_view path = split_target(target).path;
  if (!path.starts_with(kKvPrefix)) {
    return err(Errc::kNotFound, "not a /v1/kv/ path");
  }
  auto key = url_decode(path.substr(kKvPrefix.size()));
  if (!key || key->empty()) {
    return err(Errc::kInvalidArgument, "the key in the path is empty or badly percent-encoded");
  }
  if (key->size() > max_key_bytes) {
    return err(Errc::kResourceExhausted,
               "key longer than " + std::to_string(max_key_bytes) + " bytes");
  }
  return std::move(*key);
}

}  // namespace vigil::api
