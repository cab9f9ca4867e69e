// StopRecipe: how to stop one resource without the agent that started it — the command,
// environment and timeout of its stop action, written to a file that the guard process
// (net/vip_guard.h) runs when the agent dies or its hold ends. Pure: text in, text out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace vigil::exec {

struct StopRecipe {
  std::string resource_id;
  std::string path;               // the executable, absolute
  std::vector<std::string> argv;  // argv[0] included; at least one
  std::vector<std::string> env;   // the whole environment, "K=V"
  std::string cwd = "/";
  int timeout_ms = 20000;  // 1 .. kMaxTimeoutMs: then its process group is killed
  bool operator==(const StopRecipe&) const = default;
};

inline constexpr size_t kMaxStopRecipeBytes = 1 << 20;

// The file's text: "vigil-stop-recipe 1", then one "FIELD VALUE" line per field, in order
// resource, path, cwd, timeout_ms, then "arg VALUE" and "env K=V" lines. Values are the rest
// of the line. Errors: kInvalidArgument naming the field when a value holds a newline or a
// NUL byte (it could not be read back), or the recipe breaks a rule parse checks.
Result<std::string> format_stop_recipe(const StopRecipe& r);
// Reads a recipe back. Errors: kInvalidArgument "stop recipe line N: ..." (unknown field,
// a field twice, a missing field, a path that is not absolute, a bad timeout, an env entry
// without '=', over kMaxStopRecipeBytes).
Result<StopRecipe> parse_stop_recipe(std::string_view text);

}  // namespace vigil::exec
