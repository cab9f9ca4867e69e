// Tests of the key-value state machine and its command codec.
#include "store/kv.h"

#include <gtest/gtest.h>

namespace vigil::store {
namespace {

TEST(KvCommand, RoundTrip) {
  Command c{Op::kPut, NodeId(3), 42, "k", std::string("v\0x", 3)};
  auto d = decode_command(encode_command(c));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, c);
}

TEST(KvCommand, EveryTruncationFails) {
  std::string enc = encode_command(Command{Op::kDelete, NodeId(1), 7, "key", ""});
  for (size_t n = 0; n < enc.size(); ++n) {
    auto d = decode_command(enc.substr(0, n));
    ASSERT_FALSE(d.has_value()) << n;
    EXPECT_EQ(d.error().code(), Errc::kCorruption);
  }
}

TEST(KvCommand, UnknownOpNamed) {
  std::string enc = encode_command(Command{Op::kPut, NodeId(1), 7, "key", "v"});
  enc[1] = 9;
  auto d = decode_command(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("unknown op 9"), std::string::npos);
}

TEST(KvMap, ApplySnapshotRestore) {
  KvMap kv;
  kv.apply(LogIndex(5), Command{Op::kPut, NodeId(1), 1, "a", "1"});
  kv.apply(LogIndex(6), Command{Op::kPut, NodeId(1), 2, "b", "2"});
  EXPECT_TRUE(kv.apply(LogIndex(7), Command{Op::kDelete, NodeId(1), 3, "a", ""}).existed);
  std::string snap = kv.serialize();
  KvMap other;
  ASSERT_TRUE(other.restore(snap).ok());
  EXPECT_EQ(other.items(), kv.items());
  EXPECT_EQ(other.applied(), LogIndex(7));
  EXPECT_EQ(other.serialize(), snap);  // byte-identical replicas
}

TEST(KvMap, CorruptSnapshotLeavesStateUnchanged) {
  KvMap kv;
  kv.apply(LogIndex(1), Command{Op::kPut, NodeId(1), 1, "a", "1"});
  std::string snap = kv.serialize();
  snap[snap.size() - 1] ^= 1;
  KvMap other;
  other.apply(LogIndex(1), Command{Op::kPut, NodeId(1), 1, "keep", "me"});
  EXPECT_EQ(other.restore(snap).code(), Errc::kCorruption);
  EXPECT_EQ(other.get("keep"), "me");
}

}  // namespace
}  // namespace vigil::store
