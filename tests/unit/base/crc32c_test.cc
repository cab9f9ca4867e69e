// CRC-32C: the published check value, and the fast path against the table on random input.
#include "base/crc32c.h"

#include <gtest/gtest.h>

#include "base/rng.h"

namespace vigil {
namespace {

TEST(Crc32c, CheckValue) {
  // The standard check value of CRC-32C (the CRC of the ASCII digits "123456789").
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32c, ExtendEqualsOneShot) {
  std::string s = "the quick brown fox jumps over the lazy dog";
  uint32_t c = crc32c_extend(0, s.data(), 10);
  c = crc32c_extend(c, s.data() + 10, s.size() - 10);
  EXPECT_EQ(c, crc32c(s));
}

TEST(Crc32c, FastPathMatchesTableOnRandomInput) {
  SplitMix64 rng(7);
  for (int round = 0; round < 500; ++round) {
    std::string s(rng.uniform(0, 300), '\0');
    for (auto& ch : s) ch = static_cast<char>(rng.next_u64());
    const size_t off = s.empty() ? 0 : rng.uniform(0, s.size() - 1);  // unaligned starts
    const uint32_t seed = static_cast<uint32_t>(rng.next_u64());
    EXPECT_EQ(crc32c_extend(seed, s.data() + off, s.size() - off),
              crc32c_extend_portable_for_test(seed, s.data() + off, s.size() - off));
  }
}

}  // namespace
}  // namespace vigil
