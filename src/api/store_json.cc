// JSON mapping of store requests and results: strict parsing with errors that name the path.
#include "api/store_json.h"

#include "store/keys.h"

namespace vigil::api {
namespace {

Status bad(std::string_view path, const std::string& what) {
  return Status(Errc::kInvalidArgument, std::string(path) + ": " + what);
}

// Reads an optional field of a given JSON type; errors name the path and the type wanted.
Status get_string(const json& j, std::string_view path, const char* field, std::string* out,
                  bool required) {
  auto it = j.find(field);
  if (it == j.end()) {
    return required ? bad(path, std::string("missing \"") + field + "\"") : Status();
  }
  if (!it->is_string()) return bad(std::string(path) + "." + field, "want a string");
  *out = it->get<std::string>();
  return Status();
}

Status get_int(const json& j, std::string_view path, const char* field, int64_t* out) {
  auto it = j.find(field);
  if (it == j.end()) return Status();
  if (!it->is_number_integer()) return bad(std::string(path) + "." + field, "want an integer");
  *out = it->get<int64_t>();
  return Status();
}

Status get_bool(const json& j, std::string_view path, const char* field, bool* out) {
  auto it = j.find(field);
  if (it == j.end()) return Status();
  if (!it->is_boolean()) return bad(std::string(path) + "." + field, "want true or false");
  *out = it->get<bool>();
  return Status();
}

// Rejects fields the caller does not know: a typo must not silently change a request.
Status only_fields(const json& j, std::string_view path,
                   std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) return bad(path, "want an object");
  for (const auto& [k, v] : j.items()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return bad(path, "unknown field \"" + k + "\" (known: " + list + ")");
    }
  }
  return Status();
}

Result<store::TxnOp> parse_op(const json& j, const std::string& path) {
  if (!j.is_object() || j.size() != 1) {
    return ErrorValue{bad(path, "want an object with one of \"get\", \"put\", \"delete\"")};
  }
  // Copies, not references: nlohmann's items() proxies are temporaries.
  const std::string kind = j.begin().key();
  const json& body = j.begin().value();
  const std::string p = path + "." + kind;
  if (kind == "put") {
    RETURN_IF_ERROR(only_fields(body, p, {"key", "value", "lease", "prev_kv", "ignore_lease"}));
    store::Put put;
    RETURN_IF_ERROR(get_string(body, p, "key", &put.key, true));
    RETURN_IF_ERROR(get_string(body, p, "value", &put.value, false));
    int64_t lease = 0;
    RETURN_IF_ERROR(get_int(body, p, "lease", &lease));
    if (lease < 0) return ErrorValue{bad(p + ".lease", "must not be negative")};
    put.lease = store::LeaseId(static_cast<uint64_t>(lease));
    RETURN_IF_ERROR(get_bool(body, p, "prev_kv", &put.prev_kv));
    RETURN_IF_ERROR(get_bool(body, p, "ignore_lease", &put.ignore_lease));
    return store::TxnOp(put);
  }
  if (kind == "delete") {
    RETURN_IF_ERROR(only_fields(body, p, {"key", "range_end", "prefix", "prev_kv"}));
    store::DeleteRange d;
    RETURN_IF_ERROR(parse_range(body, p, &d.key, &d.range_end));
    RETURN_IF_ERROR(get_bool(body, p, "prev_kv", &d.prev_kv));
    return store::TxnOp(d);
  }
  if (kind == "get") {
    RETURN_IF_ERROR(only_fields(
        body, p, {"key", "range_end", "prefix", "revision", "limit", "keys_only", "count_only"}));
    store::RangeOp r;
    RETURN_IF_ERROR(parse_range(body, p, &r.key, &r.range_end));
    RETURN_IF_ERROR(get_int(body, p, "revision", &r.revision));
    RETURN_IF_ERROR(get_int(body, p, "limit", &r.limit));
    RETURN_IF_ERROR(get_bool(body, p, "keys_only", &r.keys_only));
    RETURN_IF_ERROR(get_bool(body, p, "count_only", &r.count_only));
    return store::TxnOp(r);
  }
  return ErrorValue{bad(path, "unknown operation \"" + kind + "\" (want get, put or delete)")};
}

Result<std::vector<store::TxnOp>> parse_ops(const json& j, const char* field) {
  std::vector<store::TxnOp> ops;
  auto it = j.find(field);
  if (it == j.end()) return ops;
  if (!it->is_array()) return ErrorValue{bad(field, "want an array")};
  for (size_t i = 0; i < it->size(); ++i) {
    ASSIGN_OR_RETURN(auto op,
                     parse_op((*it)[i], std::string(field) + "[" + std::to_string(i) + "]"));
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace

Result<json> parse_json_body(std::string_view body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at ...".
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    return err(Errc::kInvalidArgument,
               "invalid JSON at byte " + std::to_string(e.byte) + ": " + what);
  }
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse json_response(const json& j, int status) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(j);
  return r;
}

json kv_json(const store::KeyValue& kv) {
  return json{{"key", kv.key},
              {"value", kv.value},
              {"create_revision", kv.create_revision},
              {"mod_revision", kv.mod_revision},
              {"version", kv.version},
              {"lease", kv.lease.value()}};
}

json range_json(const store::RangeResult& r) {
  json kvs = json::array();
  for (const auto& kv : r.kvs) kvs.push_back(kv_json(kv));
  return json{{"kvs", kvs}, {"count", r.count}, {"more", r.more}, {"revision", r.revision}};
}

json event_json(const store::Event& e) {
  json j{{"type", e.type == store::Event::Type::kPut ? "put" : "delete"}, {"kv", kv_json(e.kv)}};
  if (e.prev_kv) j["prev_kv"] = kv_json(*e.prev_kv);
  return j;
}

Status parse_range(const json& j, std::string_view path, std::string* key, std::string* range_end) {
  if (!j.is_object()) return bad(path, "want an object");
  const bool has_prefix = j.contains("prefix");
  const bool has_key = j.contains("key");
  if (has_prefix && (has_key || j.contains("range_end"))) {
    return bad(path, "give either \"prefix\" or \"key\" (with an optional \"range_end\")");
  }
  if (has_prefix) {
    std::string prefix;
    RETURN_IF_ERROR(get_string(j, path, "prefix", &prefix, true));
    *key = prefix.empty() ? std::string(1, '\0') : prefix;
    *range_end = prefix.empty() ? std::string(store::kRangeAll) : store::prefix_end(prefix);
    return Status();
  }
  RETURN_IF_ERROR(get_string(j, path, "key", key, true));
  RETURN_IF_ERROR(get_string(j, path, "range_end", range_end, false));
  return Status();
}

Result<store::Txn> parse_txn(const json& j) {
  RETURN_IF_ERROR(only_fields(j, "txn", {"compare", "success", "failure"}));
  store::Txn t;
  auto it = j.find("compare");
  if (it != j.end()) {
    if (!it->is_array()) return ErrorValue{bad("compare", "want an array")};
    for (size_t i = 0; i < it->size(); ++i) {
      const json& c = (*it)[i];
      const std::string p = "compare[" + std::to_string(i) + "]";
      RETURN_IF_ERROR(only_fields(
          c, p, {"key", "range_end", "prefix", "target", "op", "value", "number", "lease"}));
      store::Compare cmp;
      RETURN_IF_ERROR(parse_range(c, p, &cmp.key, &cmp.range_end));
      std::string target, op;
      RETURN_IF_ERROR(get_string(c, p, "target", &target, true));
      RETURN_IF_ERROR(get_string(c, p, "op", &op, true));
      using T = store::Compare::Target;
      if (target == "value")
        cmp.target = T::kValue;
      else if (target == "version")
        cmp.target = T::kVersion;
      else if (target == "create")
        cmp.target = T::kCreate;
      else if (target == "mod")
        cmp.target = T::kMod;
      else if (target == "lease")
        cmp.target = T::kLease;
      else {
        return ErrorValue{
            bad(p + ".target",
                "want one of value, version, create, mod, lease (got \"" + target + "\")")};
      }
      using O = store::Compare::Op;
      if (op == "=" || op == "==")
        cmp.op = O::kEqual;
      else if (op == "!=")
        cmp.op = O::kNotEqual;
      else if (op == "<")
        cmp.op = O::kLess;
      else if (op == ">")
        cmp.op = O::kGreater;
      else
        return ErrorValue{bad(p + ".op", "want one of =, !=, <, > (got \"" + op + "\")")};
      if (cmp.target == T::kValue) {
        RETURN_IF_ERROR(get_string(c, p, "value", &cmp.value, true));
      } else if (cmp.target == T::kLease) {
        int64_t lease = 0;
        if (!c.contains("lease")) return ErrorValue{bad(p, "missing \"lease\"")};
        RETURN_IF_ERROR(get_int(c, p, "lease", &lease));
        cmp.lease = store::LeaseId(static_cast<uint64_t>(std::max<int64_t>(0, lease)));
      } else {
        if (!c.contains("number")) return ErrorValue{bad(p, "missing \"number\"")};
        RETURN_IF_ERROR(get_int(c, p, "number", &cmp.number));
      }
      t.compares.push_back(std::move(cmp));
    }
  }
  ASSIGN_OR_RETURN(t.success, parse_ops(j, "success"));
  ASSIGN_OR_RETURN(t.failure, parse_ops(j, "failure"));
  return t;
}

json txn_result_json(const store::TxnResult& r, int64_t revision) {
  json responses = json::array();
  for (const auto& op : r.responses) {
    if (const auto* g = std::get_if<store::RangeResult>(&op)) {
      responses.push_back(json{{"get", range_json(*g)}});
    } else if (const auto* p = std::get_if<store::PutResult>(&op)) {
      json pj = json::object();
      if (p->prev_kv) pj["prev_kv"] = kv_json(*p->prev_kv);
      responses.push_back(json{{"put", pj}});
    } else {
      const auto& d = std::get<store::DeleteResult>(op);
      json dj{{"deleted", d.deleted}};
      if (!d.prev_kvs.empty()) {
        json prev = json::array();
        for (const auto& kv : d.prev_kvs) prev.push_back(kv_json(kv));
        dj["prev_kvs"] = prev;
      }
      responses.push_back(json{{"delete", dj}});
    }
  }
  return json{{"succeeded", r.succeeded}, {"revision", revision}, {"responses", responses}};
}

}  // namespace vigil::api
