// Pure parsing of request targets: path and query, percent-decoding, the key of /v1/kv/KEY.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vigil::api {

// "/v1/kv/a?x=1" → {"/v1/kv/a", "x=1"}. The query is "" when there is no '?'.
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target);

// Percent-encodes for a path or query (RFC 3986 §2.1): unreserved characters and '/' stay.
std::string url_encode(std::string_view in);

// Percent-decodes (RFC 3986 §2.1); '+' stays '+'. nullopt on a malformed escape.
std::optional<std::string> url_decode(std::string_view in);

// The value of `name` in an '&'-separated query, percent-decoded; nullopt when absent (or
// badly escaped).
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// Whether the query holds `name=true` as one of its '&'-separated parameters.
bool query_flag(std::string_view query, std::string_view name);

inline constexpr std::string_view kKvPrefix = "/v1/kv/";

// The decoded key of a "/v1/kv/KEY[?query]" target. Errors: kNotFound (not under /v1/kv/),
// kInvalidArgument (empty key or a bad escape: HTTP 400 "bad_key"), kResourceExhausted
// (decoded key longer than max_key_bytes: HTTP 413 "too_large"). Messages say which.
Result<std::string> parse_kv_target(std::string_view target, size_t max_key_bytes);

}  // namespace vigil::api
