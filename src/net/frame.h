// Peer frames: the length-prefixed, versioned, checksummed wire unit of the peer transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"

namespace vigil::net {

// Wire layout of one frame; every integer is little-endian (base/bytes.h):
//
//   offset  size  field
//        0     4  magic          kFrameMagic, the bytes "VGIL"
//        4     1  version        kProtocolVersion
//        5     1  type           FrameType
//        6     1  flags          no flag is defined in version 1: must be 0
//        7     1  reserved       must be 0
//        8     4  payload_len    bytes of payload that follow; <= the decoder's limit
//       12     4  payload_crc    crc32c of the payload (base/crc32c.h)
//       16     …  payload
//
// The header carries no checksum of its own: the transport runs over TLS, which already
// authenticates every byte; the payload crc catches bugs in our own buffering, and the
// strict field checks below reject a stream that is not ours (or is out of sync) early.
inline constexpr uint32_t kFrameMagic = 0x4C494756;  // "VGIL" read as little-endian u32
inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderSize = 16;
// Default limit on one frame's payload. A Raft snapshot chunk is the largest message.
inline constexpr uint32_t kDefaultMaxPayloadBytes = 64u << 20;  // 64 MiB
// A Hello's cluster name is at most this long (the config validates names the same way).
inline constexpr size_t kMaxClusterNameBytes = 255;
// Payload limit of frames before the Hello exchange completed: a Hello is at most 271 bytes.
inline constexpr uint32_t kMaxHelloFrameBytes = 4096;

enum class FrameType : uint8_t {
  kHello = 1,  // handshake, first frame in each direction: payload is an encoded Hello
  kRaft = 2,   // payload: opaque bytes (an encoded Raft message; the codec lives in raft)
  kPing = 3,   // reserved for keepalive; payload ignored
  kPong = 4,   // reserved for keepalive; payload ignored
};

// "hello", "raft", "ping", "pong" or "unknown(N)".
std::string frame_type_name(FrameType type);

struct Frame {
  FrameType type = FrameType::kRaft;
  uint8_t flags = 0;
  std::string payload;

  bool operator==(const Frame&) const = default;
};

// The first frame a dialer sends, and the acceptor's answer (see transport.h).
struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  NodeId node_id;
  std::string cluster_name;

  bool operator==(const Hello&) const = default;
};

// Appends one encoded frame (header + payload) to `out`. The payload must fit in a u32
// (CHECKed); callers enforce the smaller configured limit before they queue a frame.
void append_frame(FrameType type, std::string_view payload, std::string* out);
// Same, as a new string.
std::string encode_frame(FrameType type, std::string_view payload);

// Hello payload: u32 protocol_version, u64 node_id, u32 length + cluster name bytes.
std::string encode_hello(const Hello& hello);
// Errors (kInvalidArgument): truncated or trailing bytes, node id 0, a cluster name
// longer than kMaxClusterNameBytes.
Result<Hello> decode_hello(std::string_view payload);

// Incremental decoder for one byte stream (one connection). Not thread-safe; one owner.
//
//   decoder.feed(bytes_from_socket);
//   while (true) {
//     auto f = decoder.next();
//     if (!f) { close the connection: f.error() says which field was bad; }
//     if (!*f) break;            // need more bytes
//     handle(std::move(**f));
//   }
//
// The header is checked as soon as its 16 bytes have arrived (a bad magic as soon as its
// first byte has), so an oversized length is refused before anything is allocated for its
// payload. Errors are sticky: after the first one, next() keeps returning it and feed()
// ignores its input. Buffered memory stays below one maximal frame plus what was fed
// since the last next() that returned nullopt.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_payload_bytes = kDefaultMaxPayloadBytes);

  void feed(std::string_view bytes);

  // Changes the limit for frames whose header has not been parsed yet. The transport
  // starts each connection at kMaxHelloFrameBytes and raises it after the handshake, so
  // an unauthenticated peer cannot make it reserve a large buffer.
  void set_max_payload_bytes(uint32_t max_payload_bytes) { max_payload_bytes_ = max_payload_bytes; }

  // A complete frame, nullopt when more bytes are needed, or an error:
  //   kInvalidArgument    bad magic, version, type, flags, reserved byte, or payload crc
  //   kResourceExhausted  payload length above the limit
  // Messages name the field, the value seen, the value expected and the stream offset.
  Result<std::optional<Frame>> next();

  // Bytes fed but not yet returned in a frame.
  size_t buffered_bytes() const { return buf_.size() - pos_; }
  // Bytes consumed as complete frames since construction.
  uint64_t consumed_bytes() const { return consumed_; }
  bool failed() const { return !error_.ok(); }

 private:
  struct Header {
    FrameType type;
    uint8_t flags;
    uint32_t payload_len;
    uint32_t payload_crc;
  };
  Status fail(Status status);
  Status check_magic_prefix() const;
  Result<Header> parse_header() const;
  void compact();

  uint32_t max_payload_bytes_;
  std::string buf_;
  size_t pos_ = 0;                // start of the unconsumed bytes in buf_
  uint64_t consumed_ = 0;         // stream offset of buf_[pos_]
  std::optional<Header> header_;  // parsed and checked header of the frame at pos_
  Status error_;
};

}  // namespace vigil::net
