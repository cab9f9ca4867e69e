// Tests of the stop recipe format (exec/stop_recipe.h): exact text, the round trip, and an
// error naming the line and the field for each way a file can be wrong.
#include "exec/stop_recipe.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil::exec {
namespace {

StopRecipe sample() {
  StopRecipe r;
  r.resource_id = "web";
  r.path = "/usr/lib/ocf/resource.d/heartbeat/nginx";
  r.argv = {r.path, "stop"};
  r.env = {"OCF_RESKEY_port=8080", "OCF_ROOT=/usr/lib/ocf", "EMPTY="};
  r.cwd = "/";
  r.timeout_ms = 20000;
  return r;
}

std::string error_of(std::string_view text) {
  auto r = parse_stop_recipe(text);
  EXPECT_FALSE(r.has_value()) << text;
  if (r) return "";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  return r.error().message();
}

TEST(StopRecipe, ExactText) {
  auto text = format_stop_recipe(sample());
  ASSERT_TRUE(text.has_value()) << text.error().to_string();
  EXPECT_EQ(*text,
            "vigil-stop-recipe 1\n"
            "resource web\n"
            "path /usr/lib/ocf/resource.d/heartbeat/nginx\n"
            "cwd /\n"
            "timeout_ms 20000\n"
            "arg /usr/lib/ocf/resource.d/heartbeat/nginx\n"
            "arg stop\n"
            "env OCF_RESKEY_port=8080\n"
            "env OCF_ROOT=/usr/lib/ocf\n"
            "env EMPTY=\n");
}

TEST(StopRecipe, RoundTripKeepsSpacesAndEmptyArgs) {
  StopRecipe r = sample();
  r.argv = {"/bin/sh", "-c", "rm -f '/tmp/a b'  ", ""};
  r.env.push_back("SPACED=a  b ");
  auto text = format_stop_recipe(r);
  ASSERT_TRUE(text.has_value()) << text.error().to_string();
  auto back = parse_stop_recipe(*text);
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(*back, r);
}

TEST(StopRecipe, FormatRefusesWhatCouldNotBeReadBack) {
  StopRecipe r = sample();
  r.env.push_back("MULTI=a\nb");
  auto t = format_stop_recipe(r);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message().find("env"), std::string::npos) << t.error().message();
  r = sample();
  r.argv.push_back(std::string("a\0b", 3));
  EXPECT_FALSE(format_stop_recipe(r).has_value());
  r = sample();
  r.path = "nginx";
  EXPECT_NE(format_stop_recipe(r).error().message().find("not absolute"), std::string::npos);
  r = sample();
  r.timeout_ms = 0;
  EXPECT_NE(format_stop_recipe(r).error().message().find("timeout_ms"), std::string::npos);
  r = sample();
  r.argv.clear();
  EXPECT_NE(format_stop_recipe(r).error().message().find("no arg"), std::string::npos);
  r = sample();
  r.env = {"NOEQUALS"};
  EXPECT_NE(format_stop_recipe(r).error().message().find("NOEQUALS"), std::string::npos);
}

TEST(StopRecipe, ParseErrorsNameTheLine) {
  const std::string ok = *format_stop_recipe(sample());
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("hello\n").find("line 1: not a stop recipe"), std::string::npos);
  EXPECT_NE(error_of(ok.substr(0, ok.size() - 1)).find("no newline at the end"), std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\nresource a\nresource b\n")
                .find("line 3: resource "
                      "given twice"),
            std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\ncolour red\n").find("line 2: unknown field 'colour'"),
            std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\nresource\n").find("line 2:"), std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\ntimeout_ms -5\n").find("line 2: timeout_ms '-5'"),
            std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\ntimeout_ms 99999999999\n").find("line 2"),
            std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\nenv =x\n").find("line 2: env"), std::string::npos);
  EXPECT_NE(error_of("vigil-stop-recipe 1\nresource a\n").find("line 3: no path"),
            std::string::npos);
  std::string nul = ok;
  nul[25] = '\0';
  EXPECT_NE(error_of(nul).find("NUL"), std::string::npos);
  std::string rel = ok;
  rel.replace(rel.find("path /"), 6, "path ");
  EXPECT_NE(error_of(rel).find("not absolute"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMaxStopRecipeBytes + 1, 'x')).find("at most"), std::string::npos);
}

}  // namespace
}  // namespace vigil::exec
