// Tests of the MVCC store's request codec and validation.
#include "store/request.h"

#include <gtest/gtest.h>

#include "store/keys.h"

namespace vigil::store {
namespace {

Request full_txn() {
  Txn t;
  t.compares = {
      Compare{"a", "", Compare::Target::kValue, Compare::Op::kEqual, "v", 0, kNoLease},
      Compare{"b", "c", Compare::Target::kVersion, Compare::Op::kGreater, "", 3, kNoLease},
      Compare{"c", "", Compare::Target::kCreate, Compare::Op::kLess, "", 9, kNoLease},
      Compare{"d", "", Compare::Target::kMod, Compare::Op::kNotEqual, "", 2, kNoLease},
      Compare{"e", "", Compare::Target::kLease, Compare::Op::kEqual, "", 0, LeaseId(7)},
  };
  t.success = {Put{"x", "1", LeaseId(7), true, false}, DeleteRange{"y", "z", true},
               RangeOp{"a", std::string(kRangeAll), 4, 10, true, false}};
  t.failure = {RangeOp{"q", "", 0, 0, false, true}};
  return Request{NodeId(2), 99, t};
}

std::vector<Request> samples() {
  return {
      Request{NodeId(1), 1, Put{"k", std::string("v\0w", 3), LeaseId(5), true, false}},
      Request{NodeId(1), 2, Put{"k", "", kNoLease, false, true}},
      Request{NodeId(3), 3, DeleteRange{"a", "b", true}},
      full_txn(),
      Request{NodeId(1), 4, LeaseGrant{kNoLease, 10}},
      Request{NodeId(1), 5, LeaseRevoke{LeaseId(12)}},
      Request{NodeId(1), 6, Compact{17}},
      Request{NodeId(2), 7, LeaseKeepAlive{LeaseId(12)}},
      Request{NodeId(2), 8, LeaseExpire{LeaseId(12), LogIndex(40)}},
  };
}

TEST(StoreRequest, RoundTripIsCanonical) {
  for (const Request& r : samples()) {
    const std::string enc = encode_request(r);
    auto d = decode_request(enc);
    ASSERT_TRUE(d.has_value()) << d.error().to_string();
    EXPECT_EQ(*d, r);
    EXPECT_EQ(encode_request(*d), enc);
  }
}

TEST(StoreRequest, EveryTruncationFailsWithOffset) {
  for (const Request& r : samples()) {
    const std::string enc = encode_request(r);
    for (size_t n = 0; n < enc.size(); ++n) {
      auto d = decode_request(enc.substr(0, n));
      ASSERT_FALSE(d.has_value()) << n;
      EXPECT_EQ(d.error().code(), Errc::kCorruption);
      EXPECT_NE(d.error().message().find("at offset"), std::string::npos);
    }
  }
}

TEST(StoreRequest, TrailingBytesRejected) {
  std::string enc = encode_request(samples()[0]) + "x";
  auto d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("trailing"), std::string::npos);
}

TEST(StoreRequest, ErrorsNameTheField) {
  // Unknown type.
  std::string enc = encode_request(samples()[0]);
  enc[1] = 42;
  auto d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("type: unknown type 42 at offset 1"), std::string::npos);
  // Unknown version.
  enc = encode_request(samples()[0]);
  enc[0] = 9;
  d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("version"), std::string::npos);
  // Unknown compare target in the first compare: after header (18) and the count (4), key
  // "a" (4 + 1) and range_end "" (4) comes the target at offset 31.
  enc = encode_request(full_txn());
  enc[31] = 9;
  d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().message(), "request: txn.compares[0].target: unknown target 9 at offset 31")
      << d.error().message();
}

TEST(StoreRequest, NonCanonicalFlagsRejected) {
  std::string enc = encode_request(samples()[0]);
  enc.back() = static_cast<char>(0x80);  // put flags are the last byte
  auto d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("put.flags: unknown flag bits"), std::string::npos);
}

TEST(StoreRequest, OversizeKeyAndCountsRejected) {
  Request big{NodeId(1), 1, Put{std::string(kMaxKeyBytes + 1, 'k'), "v", kNoLease}};
  auto d = decode_request(encode_request(big));
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("put.key: length 4097 exceeds limit"), std::string::npos);

  Txn t;
  for (size_t i = 0; i <= kMaxTxnOps; ++i) t.success.push_back(DeleteRange{"k", "", false});
  d = decode_request(encode_request(Request{NodeId(1), 1, t}));
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("txn.success: count 129 exceeds limit"), std::string::npos);

  // A count larger than the bytes left is rejected before anything is allocated.
  std::string enc = encode_request(Request{NodeId(1), 1, Txn{}});
  enc[18] = static_cast<char>(100);  // compares count
  d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("does not fit"), std::string::npos);
}

TEST(StoreRequest, SignedFieldsBounded) {
  std::string enc = encode_request(Request{NodeId(1), 1, Compact{5}});
  enc[enc.size() - 1] = static_cast<char>(0x80);  // revision >= 2^63
  auto d = decode_request(enc);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("compact.revision"), std::string::npos);
}

TEST(StoreRequest, Validation) {
  EXPECT_TRUE(validate_request(samples()[0]).ok());
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, Put{"", "v"}}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, DeleteRange{"b", "a"}}).code(),
            Errc::kInvalidArgument);
  EXPECT_TRUE(
      validate_request(Request{NodeId(1), 1, DeleteRange{"", std::string(kRangeAll)}}).ok());
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, LeaseGrant{kNoLease, 0}}).code(),
            Errc::kInvalidArgument);
  EXPECT_TRUE(validate_request(Request{NodeId(1), 1, LeaseGrant{kNoLease, 1}}).ok());
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, LeaseRevoke{kNoLease}}).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, Put{"k", std::string(kMaxValueBytes + 1, 'v')}})
                .code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(
      validate_request(Request{NodeId(1), 1, DeleteRange{std::string(kMaxKeyBytes + 1, 'k'), ""}})
          .code(),
      Errc::kInvalidArgument);
  Put both{"k", "v", LeaseId(3), false, true};
  EXPECT_EQ(validate_request(Request{NodeId(1), 1, both}).code(), Errc::kInvalidArgument);

  Txn dup;
  dup.success = {Put{"k", "1"}, Put{"k", "2"}};
  Status s = validate_request(Request{NodeId(1), 1, dup});
  EXPECT_NE(s.message().find("put more than once"), std::string::npos) << s.to_string();
  Txn overlap;
  overlap.failure = {DeleteRange{"a", "z"}, Put{"k", "2"}};
  s = validate_request(Request{NodeId(1), 1, overlap});
  EXPECT_NE(s.message().find("both put and deleted"), std::string::npos) << s.to_string();
}

TEST(StoreKeys, PrefixEnd) {
  EXPECT_EQ(prefix_end("abc"), "abd");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), std::string(kRangeAll));
  EXPECT_EQ(prefix_end(""), std::string(kRangeAll));
  EXPECT_TRUE(in_range("abz", "ab", prefix_end("ab")));
  EXPECT_FALSE(in_range("ac", "ab", prefix_end("ab")));
  EXPECT_TRUE(in_range("zzz", "b", kRangeAll));
  EXPECT_FALSE(in_range("a", "b", kRangeAll));
  EXPECT_TRUE(in_range("k", "k", ""));
  EXPECT_FALSE(in_range("kk", "k", ""));
}

}  // namespace
}  // namespace vigil::store
