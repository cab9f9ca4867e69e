#include "exec/stop_recipe.h"

#include <charconv>

#include "exec/runner.h"

namespace vigil::exec {

namespace {

constexpr std::string_view kHeader = "vigil-stop-recipe 1";

ErrorValue bad_line(size_t line, const std::string& what) {
  return err(Errc::kInvalidArgument, "stop recipe line " + std::to_string(line) + ": " + what);
}

Status check_value(std::string_view field, std::string_view v) {
  if (v.find('\n') != std::string_view::npos || v.find('\0') != std::string_view::npos) {
    return err(Errc::kInvalidArgument,
               "stop recipe: " + std::string(field) + " holds a newline or a NUL byte");
  }
  return Status();
}

// The rules both directions share, on a whole recipe.
Status check_recipe(const StopRecipe& r) {
  if (r.resource_id.empty()) return err(Errc::kInvalidArgument, "stop recipe: no resource");
  if (r.path.empty() || r.path[0] != '/') {
    return err(Errc::kInvalidArgument, "stop recipe: path '" + r.path + "' is not absolute");
  }
  if (r.cwd.empty() || r.cwd[0] != '/') {
    return err(Errc::kInvalidArgument, "stop recipe: cwd '" + r.cwd + "' is not absolute");
  }
  if (r.timeout_ms < 1 || r.timeout_ms > kMaxTimeoutMs) {
    return err(Errc::kInvalidArgument, "stop recipe: timeout_ms " + std::to_string(r.timeout_ms) +
                                           " is not in 1.." + std::to_string(kMaxTimeoutMs));
  }
  if (r.argv.empty()) return err(Errc::kInvalidArgument, "stop recipe: no arg");
  for (const std::string& e : r.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') {
      return err(Errc::kInvalidArgument, "stop recipe: env entry '" + e + "' is not K=V");
    }
  }
  return Status();
}

}  // namespace

Result<std::string> format_stop_recipe(const StopRecipe& r) {
  RETURN_IF_ERROR(check_recipe(r));
  std::string out(kHeader);
  out += '\n';
  auto field = [&](std::string_view name, std::string_view v) -> Status {
    RETURN_IF_ERROR(check_value(name, v));
    out.append(name).append(" ").append(v).append("\n");
    return Status();
  };
  RETURN_IF_ERROR(field("resource", r.resource_id));
  RETURN_IF_ERROR(field("path", r.path));
  RETURN_IF_ERROR(field("cwd", r.cwd));
  RETURN_IF_ERROR(field("timeout_ms", std::to_string(r.timeout_ms)));
  for (const std::string& a : r.argv) RETURN_IF_ERROR(field("arg", a));
  for (const std::string& e : r.env) RETURN_IF_ERROR(field("env", e));
  if (out.size() > kMaxStopRecipeBytes) {
    return err(Errc::kInvalidArgument, "stop recipe: " + std::to_string(out.size()) +
                                           " bytes (at most " +
                                           std::to_string(kMaxStopRecipeBytes) + ")");
  }
  return out;
}

Result<StopRecipe> parse_stop_recipe(std::string_view text) {
  if (text.size() > kMaxStopRecipeBytes) {
    return bad_line(1, "the file is " + std::to_string(text.size()) + " bytes (at most " +
                           std::to_string(kMaxStopRecipeBytes) + ")");
  }
  StopRecipe r;
  r.cwd.clear();
  bool have_resource = false, have_path = false, have_cwd = false, have_timeout = false;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      return bad_line(line_no + 1, "no newline at the end (a truncated file)");
    }
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find('\0') != std::string_view::npos) return bad_line(line_no, "a NUL byte");
    if (line_no == 1) {
      if (line != kHeader) {
        return bad_line(
            1, "not a stop recipe (the first line must be '" + std::string(kHeader) + "')");
      }
      continue;
    }
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
      return bad_line(line_no, "'" + std::string(line.substr(0, 40)) + "' is not 'FIELD VALUE'");
    }
    const std::string_view name = line.substr(0, sp);
    const std::string value(line.substr(sp + 1));
    auto once = [&](bool* seen) -> Status {
      if (*seen) return bad_line(line_no, std::string(name) + " given twice");
      *seen = true;
      return Status();
    };
    if (name == "resource") {
      RETURN_IF_ERROR(once(&have_resource));
      r.resource_id = value;
    } else if (name == "path") {
      RETURN_IF_ERROR(once(&have_path));
      r.path = value;
    } else if (name == "cwd") {
      RETURN_IF_ERROR(once(&have_cwd));
      r.cwd = value;
    } else if (name == "timeout_ms") {
      RETURN_IF_ERROR(once(&have_timeout));
      int v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < 1 ||
          v > kMaxTimeoutMs) {
        return bad_line(line_no, "timeout_ms '" + value + "' is not an integer in 1.." +
                                     std::to_string(kMaxTimeoutMs));
      }
      r.timeout_ms = v;
    } else if (name == "arg") {
      r.argv.push_back(value);
    } else if (name == "env") {
      if (value.find('=') == std::string::npos || value[0] == '=') {
        return bad_line(line_no, "env '" + value.substr(0, 40) + "' is not K=V");
      }
      r.env.push_back(value);
    } else {
      return bad_line(line_no, "unknown field '" + std::string(name.substr(0, 40)) +
                                   "' (resource, path, cwd, timeout_ms, arg, env)");
    }
  }
  if (line_no == 0) return bad_line(1, "an empty file");
  const size_t end = line_no + 1;
  if (!have_resource) return bad_line(end, "no resource field");
  if (!have_path) return bad_line(end, "no path field");
  if (!have_cwd) return bad_line(end, "no cwd field");
  if (!have_timeout) return bad_line(end, "no timeout_ms field");
  if (r.argv.empty()) return bad_line(end, "no arg field");
  if (Status s = check_recipe(r); !s.ok()) return bad_line(end, s.message());
  return r;
}

}  // namespace vigil::exec
