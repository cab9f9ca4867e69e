// Fuzz target for the stop recipe files the guard reads (exec/stop_recipe.h). Besides "never
// crash": an error is kInvalidArgument naming a line; an accepted recipe keeps the rules
// (an absolute path and cwd, a timeout in range, at least one arg, env entries K=V) and
// formats to text that parses back to the same recipe.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exec/runner.h"
#include "exec/stop_recipe.h"

namespace {
void require(bool cond) {
  if (!cond) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::exec;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = parse_stop_recipe(in);
  if (!r) {
    require(r.error().code() == vigil::Errc::kInvalidArgument);
    require(r.error().message().starts_with("stop recipe line "));
    return 0;
  }
  require(!r->resource_id.empty());
  require(!r->path.empty() && r->path[0] == '/');
  require(!r->cwd.empty() && r->cwd[0] == '/');
  require(r->timeout_ms >= 1 && r->timeout_ms <= kMaxTimeoutMs);
  require(!r->argv.empty());
  for (const std::string& e : r->env) require(e.find('=') != std::string::npos && e[0] != '=');
  auto text = format_stop_recipe(*r);
  require(text.has_value());
  auto back = parse_stop_recipe(*text);
  require(back.has_value() && *back == *r);
  return 0;
}
