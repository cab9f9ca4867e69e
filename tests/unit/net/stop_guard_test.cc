// Tests of the guard's stops (net::run_stop_recipes): real recipes run as real processes —
// one that works, one that hangs past its timeout, one that fails, one unreadable and one
// corrupt — all run at once, and only the files of the stops that worked are removed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "exec/stop_recipe.h"
#include "net/vip_guard.h"
#include "test_util.h"

namespace vigil::net {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string write_recipe(const TempDir& dir, const std::string& id, const std::string& script,
                         int timeout_ms) {
  exec::StopRecipe r;
  r.resource_id = id;
  r.path = "/bin/sh";
  r.argv = {"sh", "-c", script};
  r.env = {"PATH=/usr/bin:/bin", "MARK=" + dir.file(id + ".mark")};
  r.timeout_ms = timeout_ms;
  auto text = exec::format_stop_recipe(r);
  EXPECT_TRUE(text.has_value());
  const std::string path = dir.file(id + ".stop");
  std::ofstream(path) << text.value_or("");
  return path;
}

TEST(StopGuard, RunsEveryRecipeAtOnceAndKeepsTheFilesOfFailures) {
  TempDir dir;
  std::ofstream(dir.file("ok.mark")) << "running";
  std::vector<std::string> paths = {
      write_recipe(dir, "ok", "rm \"$MARK\"", 5000),
      write_recipe(dir, "hangs", "touch \"$MARK\"; sleep 30", 300),
      write_recipe(dir, "fails", "echo cannot stop >&2; exit 1", 5000),
      dir.file("missing.stop"),
  };
  std::ofstream(dir.file("corrupt.stop")) << "vigil-stop-recipe 1\nresource x\n";
  paths.push_back(dir.file("corrupt.stop"));

  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_stop_recipes(paths, "test"), 4);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_FALSE(fs::exists(dir.file("ok.mark")));    // the stop ran
  EXPECT_FALSE(fs::exists(dir.file("ok.stop")));    // and its recipe is used up
  EXPECT_TRUE(fs::exists(dir.file("hangs.mark")));  // it ran, then was killed
  EXPECT_TRUE(fs::exists(dir.file("hangs.stop")));  // failures keep their recipe
  EXPECT_TRUE(fs::exists(dir.file("fails.stop")));
  EXPECT_TRUE(fs::exists(dir.file("corrupt.stop")));
  // The hanging stop is killed at its timeout (plus the kill grace), not waited for.
  EXPECT_LT(ms, 10000);
  EXPECT_EQ(run_stop_recipes({}, "nothing"), 0);
}

}  // namespace
}  // namespace vigil::net
