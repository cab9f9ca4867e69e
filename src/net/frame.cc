// Peer frame encoding and the incremental, bounds-checked frame decoder.
#include "net/frame.h"

#include <limits>
#include <utility>

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "fmt/format.h"

namespace vigil::net {

namespace {

bool known_type(uint8_t t) {
  return t >= static_cast<uint8_t>(FrameType::kHello) &&
         t <= static_cast<uint8_t>(FrameType::kPong);
}

// Compacting moves the unread tail to the front; do it only when that is cheap relative
// to what was consumed.
constexpr size_t kCompactThreshold = 64 * 1024;

}  // namespace

std::string frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kRaft:
      return "raft";
    case FrameType::kPing:
      return "ping";
    case FrameType::kPong:
      return "pong";
  }
  return fmt::format("unknown({})", static_cast<unsigned>(type));
}

void append_frame(FrameType type, std::string_view payload, std::string* out) {
  CHECK(payload.size() <= std::numeric_limits<uint32_t>::max());
  out->reserve(out->size() + kFrameHeaderSize + payload.size());
  ByteWriter w(out);
  w.u32(kFrameMagic);
  w.u8(kProtocolVersion);
  w.u8(static_cast<uint8_t>(type));
  w.u8(0);  // flags
  w.u8(0);  // reserved
  w.u32(static_cast<uint32_t>(payload.size()));
  w.u32(crc32c(payload));
  w.raw(payload);
}

std::string encode_frame(FrameType type, std::string_view payload) {
  std::string out;
  append_frame(type, payload, &out);
  return out;
}

std::string encode_hello(const Hello& hello) {
  std::string out;
  ByteWriter w(&out);
  w.u32(hello.protocol_version);
  w.u64(hello.node_id.value());
  w.bytes(hello.cluster_name);
  return out;
}

Result<Hello> decode_hello(std::string_view payload) {
  ByteReader r(payload);
  Hello h;
  h.protocol_version = r.u32();
  h.node_id = NodeId(r.u64());
  const uint32_t name_len = r.u32();
  if (!r.ok()) {
    return err(Errc::kInvalidArgument,
               fmt::format("hello: truncated header ({} bytes)", payload.size()));
  }
  if (name_len > kMaxClusterNameBytes) {
    return err(Errc::kInvalidArgument, fmt::format("hello: cluster name length {} exceeds limit {}",
                                                   name_len, kMaxClusterNameBytes));
  }
  h.cluster_name = std::string(r.raw(name_len));
  if (!r.ok()) {
    return err(Errc::kInvalidArgument,
               fmt::format("hello: cluster name length {} but only {} bytes follow", name_len,
                           payload.size() - 16));
  }
  if (r.remaining() != 0) {
    return err(Errc::kInvalidArgument,
               fmt::format("hello: {} trailing bytes after the cluster name", r.remaining()));
  }
  if (h.node_id == kNoNode) {
    return err(Errc::kInvalidArgument, "hello: node id is 0 (none)");
  }
  return h;
}

FrameDecoder::FrameDecoder(uint32_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}

void FrameDecoder::feed(std::string_view bytes) {
  if (failed()) return;
  buf_.append(bytes);
}

Status FrameDecoder::fail(Status status) {
  error_ = std::move(status);
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  header_.reset();
  return error_;
}

Status FrameDecoder::check_magic_prefix() const {
  const size_t avail = std::min(buffered_bytes(), size_t{4});
  for (size_t i = 0; i < avail; ++i) {
    const auto want = static_cast<uint8_t>(kFrameMagic >> (8 * i));
    const auto got = static_cast<uint8_t>(buf_[pos_ + i]);
    if (got != want) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("frame at stream offset {}: bad magic byte {} = 0x{:02x} "
                                "(want 0x{:08x}, \"VGIL\"): not a Vigil peer stream",
                                consumed_, i, got, kFrameMagic));
    }
  }
  return Status();
}

Result<FrameDecoder::Header> FrameDecoder::parse_header() const {
  ByteReader r(std::string_view(buf_).substr(pos_, kFrameHeaderSize));
  const uint32_t magic = r.u32();
  const uint8_t version = r.u8();
  const uint8_t type = r.u8();
  const uint8_t flags = r.u8();
  const uint8_t reserved = r.u8();
  Header h;
  h.flags = flags;
  h.payload_len = r.u32();
  h.payload_crc = r.u32();
  DCHECK(r.ok());
  const auto where = fmt::format("frame at stream offset {}", consumed_);
  if (magic != kFrameMagic) {  // already checked byte by byte; kept for clarity
    return err(Errc::kInvalidArgument,
               fmt::format("{}: bad magic 0x{:08x} (want 0x{:08x})", where, magic, kFrameMagic));
  }
  if (version != kProtocolVersion) {
    return err(Errc::kInvalidArgument,
               fmt::format("{}: unsupported protocol version {} (this node speaks {})", where,
                           version, kProtocolVersion));
  }
  if (!known_type(type)) {
    return err(Errc::kInvalidArgument, fmt::format("{}: unknown frame type {}", where, type));
  }
  h.type = static_cast<FrameType>(type);
  if (flags != 0) {
    return err(Errc::kInvalidArgument,
               fmt::format("{}: unknown flags 0x{:02x} (none defined in version {})", where, flags,
                           kProtocolVersion));
  }
  if (reserved != 0) {
    return err(Errc::kInvalidArgument,
               fmt::format("{}: reserved byte is 0x{:02x} (want 0)", where, reserved));
  }
  if (h.payload_len > max_payload_bytes_) {
    return err(Errc::kResourceExhausted,
               fmt::format("{}: {} frame payload length {} exceeds limit {}", where,
                           frame_type_name(h.type), h.payload_len, max_payload_bytes_));
  }
  return h;
}

void FrameDecoder::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ >= kCompactThreshold && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

Result<std::optional<Frame>> FrameDecoder::next() {
  if (failed()) return std::unexpected(error_);
  if (!header_) {
    if (Status s = check_magic_prefix(); !s.ok()) return std::unexpected(fail(std::move(s)));
    if (buffered_bytes() < kFrameHeaderSize) return std::nullopt;
    auto h = parse_header();
    if (!h) return std::unexpected(fail(h.error()));
    header_ = *h;
    // The length is known good now: make room for the whole frame at once.
    const size_t frame_size = kFrameHeaderSize + header_->payload_len;
    if (buffered_bytes() < frame_size) {
      buf_.erase(0, pos_);
      pos_ = 0;
      buf_.reserve(frame_size);
    }
  }
  const size_t frame_size = kFrameHeaderSize + header_->payload_len;
  if (buffered_bytes() < frame_size) return std::nullopt;

  std::string_view payload =
      std::string_view(buf_).substr(pos_ + kFrameHeaderSize, header_->payload_len);
  const uint32_t crc = crc32c(payload);
  if (crc != header_->payload_crc) {
    return std::unexpected(fail(
        Status(Errc::kInvalidArgument,
               fmt::format("frame at stream offset {}: {} payload crc32c 0x{:08x} does not match "
                           "header crc 0x{:08x} (payload length {})",
                           consumed_, frame_type_name(header_->type), crc, header_->payload_crc,
                           header_->payload_len))));
  }
  Frame f;
  f.type = header_->type;
  f.flags = header_->flags;
  f.payload = std::string(payload);
  pos_ += frame_size;
  consumed_ += frame_size;
  header_.reset();
  compact();
  return f;
}

}  // namespace vigil::net
