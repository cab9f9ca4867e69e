// Status, Result and the error macros.
#include "base/status.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return err(Errc::kInvalidArgument, "odd: " + std::to_string(x));
  return x / 2;
}

Result<int> quarter(int x) {
  ASSIGN_OR_RETURN(int h, half(x));
  ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

Status check_even(int x) {
  RETURN_IF_ERROR(half(x).has_value() ? Status() : half(x).error());
  return Status();
}

TEST(Status, OkIsCheapAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Errc::kOk);
  EXPECT_EQ(s.to_string(), "OK");
}

TEST(Status, ErrorCarriesCodeMessageAndContext) {
  Status s(Errc::kCorruption, "bad crc at offset 12");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "corruption: bad crc at offset 12");
  EXPECT_EQ(s.with_context("wal 0001.wal").message(), "wal 0001.wal: bad crc at offset 12");
  EXPECT_TRUE(Status().with_context("x").ok());
}

TEST(Status, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "odd: 3");
  EXPECT_TRUE(check_even(4).ok());
  EXPECT_EQ(check_even(5).code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace vigil
