// Tests for Env: the shared contract on PosixEnv and MemEnv, and MemEnv's crash model.
#include "base/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

namespace vigil {
namespace {

// Runs each contract test on both implementations, each in a fresh directory.
class EnvContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      char tmpl[] = "/tmp/vigil_env_test.XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      root_ = tmpl;
      env_ = &posix_env();
    } else {
      root_ = "/mem/root";
      env_ = &mem_;
      ASSERT_TRUE(mem_.create_dir(root_).ok());
    }
  }
  void TearDown() override {
    if (GetParam()) std::filesystem::remove_all(root_);
  }
  std::string p(const std::string& name) const { return root_ + "/" + name; }

  Env& env() { return *env_; }

  MemEnv mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvContractTest, AppendReadSizeExists) {
  EXPECT_FALSE(env().exists(p("f")));
  auto f = env().open_appendable(p("f"));
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  ASSERT_TRUE((*f)->append("hello ").ok());
  ASSERT_TRUE((*f)->append("world").ok());
  EXPECT_EQ((*f)->size(), 11u);
  ASSERT_TRUE((*f)->sync().ok());
  ASSERT_TRUE((*f)->close().ok());
  EXPECT_FALSE((*f)->append("x").ok());  // closed
  EXPECT_TRUE(env().exists(p("f")));
  EXPECT_EQ(env().read_file(p("f")).value(), "hello world");
  EXPECT_EQ(env().read_range(p("f"), 6, 100).value(), "world");
  EXPECT_EQ(env().read_range(p("f"), 6, 2).value(), "wo");
  EXPECT_EQ(env().read_range(p("f"), 50, 2).value(), "");
  EXPECT_EQ(env().file_size(p("f")).value(), 11u);

  // Reopening appends at the end and reports the existing size.
  auto g = env().open_appendable(p("f"));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ((*g)->size(), 11u);
  ASSERT_TRUE((*g)->append("!").ok());
  EXPECT_EQ(env().read_file(p("f")).value(), "hello world!");

  // new_writable_file truncates.
  auto h = env().new_writable_file(p("f"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ((*h)->size(), 0u);
  EXPECT_EQ(env().read_file(p("f")).value(), "");
}

// write_behind() between chunks changes nothing a reader sees, on a new file or one
// reopened for appending; a closed file says so.
TEST_P(EnvContractTest, WriteBehindBetweenChunks) {
  auto f = env().new_writable_file(p("big"));
  ASSERT_TRUE(f.has_value());
  std::string want;
  for (int i = 0; i < 5; ++i) {
    const std::string chunk(100000 + i, static_cast<char>('a' + i));
    ASSERT_TRUE((*f)->append(chunk).ok());
    want += chunk;
    ASSERT_TRUE((*f)->write_behind().ok());
    ASSERT_TRUE((*f)->write_behind().ok());  // nothing new: still fine
  }
  ASSERT_TRUE((*f)->sync().ok());
  ASSERT_TRUE((*f)->close().ok());
  EXPECT_EQ(env().read_file(p("big")).value(), want);
  auto g = env().open_appendable(p("big"));
  ASSERT_TRUE(g.has_value());
  ASSERT_TRUE((*g)->append("tail").ok());
  ASSERT_TRUE((*g)->write_behind().ok());
  ASSERT_TRUE((*g)->close().ok());
  EXPECT_EQ(env().read_file(p("big")).value(), want + "tail");
  if (GetParam()) {
    EXPECT_FALSE((*g)->write_behind().ok());  // PosixEnv: closed
  }
}

TEST_P(EnvContractTest, ListRenameRemoveTruncate) {
  ASSERT_TRUE(env().create_dir(p("sub/deeper")).ok());
  ASSERT_TRUE(env().create_dir(p("sub/deeper")).ok());  // idempotent
  for (const char* name : {"b", "a", "c"}) {
    auto f = env().open_appendable(p(name));
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE((*f)->append(name).ok());
  }
  EXPECT_EQ(env().list_dir(root_).value(), (std::vector<std::string>{"a", "b", "c", "sub"}));
  ASSERT_TRUE(env().rename(p("a"), p("b")).ok());
  EXPECT_EQ(env().read_file(p("b")).value(), "a");
  EXPECT_FALSE(env().exists(p("a")));
  ASSERT_TRUE(env().remove(p("c")).ok());
  EXPECT_EQ(env().list_dir(root_).value(), (std::vector<std::string>{"b", "sub"}));
  ASSERT_TRUE(env().sync_dir(root_).ok());

  auto f = env().open_appendable(p("t"));
  ASSERT_TRUE((*f)->append("0123456789").ok());
  ASSERT_TRUE(env().truncate(p("t"), 4).ok());
  EXPECT_EQ(env().read_file(p("t")).value(), "0123");
}

TEST_P(EnvContractTest, ErrorsNamePathAndCode) {
  auto r = env().read_file(p("missing"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_NE(r.error().message().find(p("missing")), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("No such file or directory"), std::string::npos);
  EXPECT_FALSE(env().remove(p("missing")).ok());
  EXPECT_FALSE(env().rename(p("missing"), p("x")).ok());
  EXPECT_FALSE(env().list_dir(p("nodir")).has_value());
  EXPECT_FALSE(env().open_appendable(p("nodir/f")).has_value());
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvContractTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Posix" : "Mem"; });

TEST(PosixEnvTest, PermissionDeniedCarriesStrerror) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  char tmpl[] = "/tmp/vigil_env_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::permissions(
      dir, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  auto f = posix_env().open_appendable(dir + "/x");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), Errc::kIoError);
  EXPECT_EQ(f.error().message(), "open " + dir + "/x: Permission denied");
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
}

class MemEnvCrashTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.create_dir("/d").ok()); }
  std::unique_ptr<WritableFile> open(const std::string& path) {
    auto f = env_.open_appendable(path);
    EXPECT_TRUE(f.has_value());
    return std::move(*f);
  }
  MemEnv env_;
  SplitMix64 rng_{1};
};

TEST_F(MemEnvCrashTest, UnsyncedDataIsLostSyncedDataKept) {
  auto f = open("/d/f");
  ASSERT_TRUE(env_.sync_dir("/d").ok());
  ASSERT_TRUE(f->append("durable").ok());
  ASSERT_TRUE(f->sync().ok());
  ASSERT_TRUE(f->append("volatile").ok());
  EXPECT_EQ(env_.synced_size_for_test("/d/f").value(), 7u);
  env_.crash_for_test(rng_, /*tear=*/false);
  EXPECT_EQ(env_.read_file("/d/f").value(), "durable");
  // The old handle belongs to the dead process.
  EXPECT_EQ(f->append("x").code(), Errc::kIoError);
  EXPECT_EQ(f->sync().code(), Errc::kIoError);
}

TEST_F(MemEnvCrashTest, TornWriteKeepsAPrefixOfUnsyncedBytes) {
  bool saw_partial = false;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.create_dir("/d").ok());
    auto f = env.open_appendable("/d/f");
    ASSERT_TRUE(env.sync_dir("/d").ok());
    ASSERT_TRUE((*f)->append("AAAA").ok());
    ASSERT_TRUE((*f)->sync().ok());
    ASSERT_TRUE((*f)->append("BBBBBBBB").ok());
    SplitMix64 rng(seed);
    env.crash_for_test(rng, /*tear=*/true);
    const std::string got = env.read_file("/d/f").value();
    ASSERT_GE(got.size(), 4u);
    ASSERT_LE(got.size(), 12u);
    EXPECT_EQ(got, std::string("AAAABBBBBBBB").substr(0, got.size()));
    saw_partial |= got.size() > 4 && got.size() < 12;
  }
  EXPECT_TRUE(saw_partial);
}

TEST_F(MemEnvCrashTest, CreateWithoutDirSyncIsLost) {
  auto f = open("/d/new");
  ASSERT_TRUE(f->append("data").ok());
  ASSERT_TRUE(f->sync().ok());  // the data is durable, but the name is not
  env_.crash_for_test(rng_, false);
  EXPECT_FALSE(env_.exists("/d/new"));
}

TEST_F(MemEnvCrashTest, RenameWithoutDirSyncIsUndone) {
  auto a = open("/d/a");
  ASSERT_TRUE(a->append("old").ok());
  ASSERT_TRUE(a->sync().ok());
  ASSERT_TRUE(env_.sync_dir("/d").ok());
  auto tmp = open("/d/a.tmp");
  ASSERT_TRUE(tmp->append("new").ok());
  ASSERT_TRUE(tmp->sync().ok());
  ASSERT_TRUE(env_.rename("/d/a.tmp", "/d/a").ok());
  EXPECT_EQ(env_.read_file("/d/a").value(), "new");
  env_.crash_for_test(rng_, false);
  EXPECT_EQ(env_.read_file("/d/a").value(), "old");
  EXPECT_FALSE(env_.exists("/d/a.tmp"));  // never dir-synced either
}

TEST_F(MemEnvCrashTest, RenameWithDirSyncSurvives) {
  auto tmp = open("/d/a.tmp");
  ASSERT_TRUE(tmp->append("new").ok());
  ASSERT_TRUE(tmp->sync().ok());
  ASSERT_TRUE(env_.rename("/d/a.tmp", "/d/a").ok());
  ASSERT_TRUE(env_.sync_dir("/d").ok());
  env_.crash_for_test(rng_, true);
  EXPECT_EQ(env_.read_file("/d/a").value(), "new");
  EXPECT_EQ(env_.list_dir("/d").value(), std::vector<std::string>{"a"});
}

TEST_F(MemEnvCrashTest, RemoveWithoutDirSyncComesBack) {
  auto a = open("/d/a");
  ASSERT_TRUE(a->append("x").ok());
  ASSERT_TRUE(a->sync().ok());
  ASSERT_TRUE(env_.sync_dir("/d").ok());
  ASSERT_TRUE(env_.remove("/d/a").ok());
  env_.crash_for_test(rng_, false);
  EXPECT_EQ(env_.read_file("/d/a").value(), "x");
}

TEST_F(MemEnvCrashTest, TruncateIsDurable) {
  auto a = open("/d/a");
  ASSERT_TRUE(env_.sync_dir("/d").ok());
  ASSERT_TRUE(a->append("0123456789").ok());
  ASSERT_TRUE(a->sync().ok());
  ASSERT_TRUE(env_.truncate("/d/a", 3).ok());
  env_.crash_for_test(rng_, true);
  EXPECT_EQ(env_.read_file("/d/a").value(), "012");
}

TEST_F(MemEnvCrashTest, InjectedWriteFailures) {
  auto a = open("/d/a");
  env_.set_fail_writes_for_test(true);
  EXPECT_EQ(a->append("x").code(), Errc::kIoError);
  EXPECT_EQ(a->sync().code(), Errc::kIoError);
  EXPECT_FALSE(env_.open_appendable("/d/b").has_value());
  env_.set_fail_writes_for_test(false);
  EXPECT_TRUE(a->append("x").ok());
}

TEST_F(MemEnvCrashTest, CountsFileSyncs) {
  auto a = open("/d/a");
  const uint64_t before = env_.file_syncs_for_test();
  ASSERT_TRUE(a->sync().ok());
  ASSERT_TRUE(a->sync().ok());
  EXPECT_EQ(env_.file_syncs_for_test(), before + 2);
}

}  // namespace
}  // namespace vigil
