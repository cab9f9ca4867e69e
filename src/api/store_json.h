// JSON forms of the store's requests and results for the HTTP API (docs/API.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "base/status.h"
#include "store/mvcc.h"
#include "store/request.h"

namespace vigil::api {

using json = nlohmann::json;

// Parses a request body. Errors (kInvalidArgument) say where: "invalid JSON at byte 17: ...".
Result<json> parse_json_body(std::string_view body);

// Serializes for an HTTP body; invalid UTF-8 in values is replaced, never thrown on.
std::string dump_json(const json& j);

// A 200 (or `status`) answer with `j` as its JSON body.
HttpResponse json_response(const json& j, int status = 200);

// {"key","value","create_revision","mod_revision","version","lease"}
json kv_json(const store::KeyValue& kv);
// {"kvs":[...],"count","more","revision"}
json range_json(const store::RangeResult& r);
// {"type":"put"|"delete","kv":{...},"prev_kv":{...}?}
json event_json(const store::Event& e);

// A range as the API states it: {"key": K} alone is one key; {"prefix": P} every key
// starting with P ("" = all keys); {"key": A, "range_end": B} the keys in [A, B).
// `path` prefixes error messages ("success[2].get").
Status parse_range(const json& j, std::string_view path, std::string* key, std::string* range_end);

// The body of POST /v1/txn: {"compare":[...],"success":[...],"failure":[...]} (see
// docs/API.md). Errors name the JSON path: "compare[1].target: want one of value, version,
// create, mod, lease (got \"size\")".
Result<store::Txn> parse_txn(const json& j);
// {"succeeded","revision","responses":[{"get":{range}}|{"put":{"prev_kv"?}}|{"delete":{...}}]}
json txn_result_json(const store::TxnResult& r, int64_t revision);

}  // namespace vigil::api
