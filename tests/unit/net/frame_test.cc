// Tests of the peer frame codec: round trips, chunked input, and every decoder error.
#include "net/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/crc32c.h"

namespace vigil::net {
namespace {

// A header with chosen fields, for error paths the encoder never produces.
std::string raw_header(uint32_t magic, uint8_t version, uint8_t type, uint8_t flags,
                       uint8_t reserved, uint32_t len, uint32_t crc) {
  std::string out;
  ByteWriter w(&out);
  w.u32(magic);
  w.u8(version);
  w.u8(type);
  w.u8(flags);
  w.u8(reserved);
  w.u32(len);
  w.u32(crc);
  return out;
}

std::vector<Frame> decode_all(FrameDecoder& d) {
  std::vector<Frame> out;
  while (true) {
    auto f = d.next();
    EXPECT_TRUE(f.has_value()) << f.error().to_string();
    if (!f || !*f) return out;
    out.push_back(std::move(**f));
  }
}

Status decode_error(const std::string& bytes, uint32_t max = kDefaultMaxPayloadBytes) {
  FrameDecoder d(max);
  d.feed(bytes);
  while (true) {
    auto f = d.next();
    if (!f) return f.error();
    if (!*f) return Status();
  }
}

TEST(FrameTest, HeaderLayoutIsStable) {
  const std::string f = encode_frame(FrameType::kRaft, "abc");
  ASSERT_EQ(f.size(), kFrameHeaderSize + 3);
  EXPECT_EQ(f.substr(0, 4), "VGIL");
  EXPECT_EQ(f[4], 1);  // version
  EXPECT_EQ(f[5], 2);  // type raft
  EXPECT_EQ(f[6], 0);
  EXPECT_EQ(f[7], 0);
  ByteReader r(std::string_view(f).substr(8));
  EXPECT_EQ(r.u32(), 3u);
  EXPECT_EQ(r.u32(), crc32c("abc"));
  EXPECT_EQ(f.substr(16), "abc");
}

TEST(FrameTest, RoundTripEveryTypeInOneFeed) {
  std::string wire;
  const std::vector<Frame> frames = {
      {FrameType::kHello, 0, encode_hello({kProtocolVersion, NodeId(7), "prod"})},
      {FrameType::kRaft, 0, ""},
      {FrameType::kRaft, 0, std::string(100000, 'x')},
      {FrameType::kPing, 0, "p"},
      {FrameType::kPong, 0, std::string("\0\xff", 2)},
  };
  for (const auto& f : frames) append_frame(f.type, f.payload, &wire);
  FrameDecoder d;
  d.feed(wire);
  EXPECT_EQ(decode_all(d), frames);
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_EQ(d.consumed_bytes(), wire.size());
}

TEST(FrameTest, ByteByByteAndOddChunks) {
  std::string wire;
  std::vector<Frame> frames;
  for (int i = 0; i < 50; ++i) {
    frames.push_back(
        {FrameType::kRaft, 0, std::string(static_cast<size_t>(i * 37), char('a' + i % 26))});
    append_frame(FrameType::kRaft, frames.back().payload, &wire);
  }
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{15}, size_t{16}, size_t{17}, size_t{1000}}) {
    FrameDecoder d;
    std::vector<Frame> got;
    for (size_t pos = 0; pos < wire.size(); pos += chunk) {
      d.feed(std::string_view(wire).substr(pos, chunk));
      for (auto& f : decode_all(d)) got.push_back(std::move(f));
    }
    EXPECT_EQ(got, frames) << "chunk " << chunk;
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
}

TEST(FrameTest, NeedsMoreBytesIsNotAnError) {
  const std::string wire = encode_frame(FrameType::kRaft, "hello world");
  FrameDecoder d;
  d.feed(wire.substr(0, 10));
  auto f = d.next();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->has_value());
  d.feed(wire.substr(10, 10));
  f = d.next();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->has_value());
  d.feed(wire.substr(20));
  f = d.next();
  ASSERT_TRUE(f.has_value() && f->has_value());
  EXPECT_EQ((*f)->payload, "hello world");
}

TEST(FrameTest, BadMagicDetectedFromFirstByte) {
  FrameDecoder d;
  d.feed("G");
  auto f = d.next();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(f.error().message().find("bad magic byte 0 = 0x47"), std::string::npos)
      << f.error().message();
  EXPECT_NE(f.error().message().find("stream offset 0"), std::string::npos);
}

TEST(FrameTest, HttpRequestIsRejected) {
  Status s = decode_error("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("not a Vigil peer stream"), std::string::npos) << s.message();
}

TEST(FrameTest, BadMagicAfterAGoodFrameReportsItsOffset) {
  std::string wire = encode_frame(FrameType::kRaft, "abc");
  wire += "VGIX";
  Status s = decode_error(wire);
  EXPECT_NE(s.message().find("stream offset 19: bad magic byte 3 = 0x58"), std::string::npos)
      << s.message();
}

TEST(FrameTest, UnsupportedVersion) {
  Status s = decode_error(raw_header(kFrameMagic, 2, 2, 0, 0, 0, 0));
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("unsupported protocol version 2 (this node speaks 1)"),
            std::string::npos)
      << s.message();
}

TEST(FrameTest, UnknownType) {
  for (uint8_t t : {uint8_t{0}, uint8_t{5}, uint8_t{255}}) {
    Status s = decode_error(raw_header(kFrameMagic, 1, t, 0, 0, 0, 0));
    EXPECT_EQ(s.code(), Errc::kInvalidArgument);
    EXPECT_NE(s.message().find("unknown frame type " + std::to_string(t)), std::string::npos)
        << s.message();
  }
}

TEST(FrameTest, UnknownFlags) {
  Status s = decode_error(raw_header(kFrameMagic, 1, 2, 0x80, 0, 0, 0));
  EXPECT_NE(s.message().find("unknown flags 0x80"), std::string::npos) << s.message();
}

TEST(FrameTest, NonZeroReservedByte) {
  Status s = decode_error(raw_header(kFrameMagic, 1, 2, 0, 1, 0, 0));
  EXPECT_NE(s.message().find("reserved byte is 0x01"), std::string::npos) << s.message();
}

TEST(FrameTest, OversizeRejectedFromHeaderAloneWithoutAllocating) {
  FrameDecoder d(1024);
  d.feed(raw_header(kFrameMagic, 1, 2, 0, 0, 0xFFFFFFFF, 0));
  auto f = d.next();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), Errc::kResourceExhausted);
  EXPECT_NE(f.error().message().find("raft frame payload length 4294967295 exceeds limit 1024"),
            std::string::npos)
      << f.error().message();
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, LimitIsInclusive) {
  FrameDecoder d(10);
  d.feed(encode_frame(FrameType::kRaft, std::string(10, 'a')));
  auto f = d.next();
  ASSERT_TRUE(f.has_value() && f->has_value());
  d.feed(encode_frame(FrameType::kRaft, std::string(11, 'a')));
  EXPECT_EQ(d.next().error().code(), Errc::kResourceExhausted);
}

TEST(FrameTest, CrcMismatch) {
  std::string wire = encode_frame(FrameType::kRaft, "payload");
  wire.back() ^= 1;
  Status s = decode_error(wire);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("raft payload crc32c"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("does not match header crc"), std::string::npos);
}

TEST(FrameTest, ErrorsAreSticky) {
  FrameDecoder d;
  d.feed("XXXX");
  auto first = d.next();
  ASSERT_FALSE(first.has_value());
  EXPECT_TRUE(d.failed());
  d.feed(encode_frame(FrameType::kRaft, "ok"));
  auto again = d.next();
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message(), first.error().message());
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, TypeNames) {
  EXPECT_EQ(frame_type_name(FrameType::kHello), "hello");
  EXPECT_EQ(frame_type_name(FrameType::kRaft), "raft");
  EXPECT_EQ(frame_type_name(static_cast<FrameType>(9)), "unknown(9)");
}

TEST(HelloTest, RoundTrip) {
  Hello h{kProtocolVersion, NodeId(42), "cluster-a"};
  auto d = decode_hello(encode_hello(h));
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  EXPECT_EQ(*d, h);
}

TEST(HelloTest, Errors) {
  const std::string good = encode_hello({kProtocolVersion, NodeId(1), "c"});
  auto truncated = decode_hello(good.substr(0, 10));
  ASSERT_FALSE(truncated.has_value());
  EXPECT_NE(truncated.error().message().find("truncated"), std::string::npos);

  auto short_name = decode_hello(good.substr(0, good.size() - 1));
  ASSERT_FALSE(short_name.has_value());
  EXPECT_NE(short_name.error().message().find("cluster name length 1 but only 0 bytes"),
            std::string::npos)
      << short_name.error().message();

  auto trailing = decode_hello(good + "zz");
  ASSERT_FALSE(trailing.has_value());
  EXPECT_NE(trailing.error().message().find("2 trailing bytes"), std::string::npos);

  auto zero = decode_hello(encode_hello({kProtocolVersion, NodeId(0), "c"}));
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.error().message().find("node id is 0"), std::string::npos);

  auto long_name = decode_hello(encode_hello({kProtocolVersion, NodeId(1), std::string(256, 'c')}));
  ASSERT_FALSE(long_name.has_value());
  EXPECT_NE(long_name.error().message().find("cluster name length 256 exceeds limit 255"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil::net
