// Fuzz target for the peer frame decoder: arbitrary bytes, fed in arbitrary chunk sizes.
//
// Input layout: byte 0 picks the payload limit (small limits reach the oversize path),
// byte 1 seeds the chunk sizes, the rest is the stream. Besides "never crash", it checks
// that every decoded frame respects the limit and re-encodes to an identical frame, that
// decoded Hellos round-trip, and that errors are sticky.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/frame.h"

namespace {

using vigil::net::FrameDecoder;

void require(bool cond) {
  if (!cond) std::abort();
}

uint64_t next(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  return z ^ (z >> 27);
}

// Drains complete frames; returns false once the decoder has failed.
bool drain(FrameDecoder& d, uint32_t limit) {
  while (true) {
    auto f = d.next();
    if (!f) {
      require(!f.error().ok() && !f.error().message().empty());
      auto again = d.next();
      require(!again && again.error().message() == f.error().message());
      return false;
    }
    if (!*f) return true;
    const vigil::net::Frame& frame = **f;
    require(frame.payload.size() <= limit);
    FrameDecoder copy(limit);
    copy.feed(vigil::net::encode_frame(frame.type, frame.payload));
    auto re = copy.next();
    require(re && *re && **re == frame);
    if (frame.type == vigil::net::FrameType::kHello) {
      if (auto h = vigil::net::decode_hello(frame.payload)) {
        auto h2 = vigil::net::decode_hello(vigil::net::encode_hello(*h));
        require(h2 && *h2 == *h);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static constexpr uint32_t kLimits[] = {0, 1, 16, 255, 4096, vigil::net::kDefaultMaxPayloadBytes};
  const uint32_t limit = size > 0 ? kLimits[data[0] % 6] : vigil::net::kDefaultMaxPayloadBytes;
  uint64_t seed = size > 1 ? data[1] : 0;
  const size_t skip = size < 2 ? size : 2;
  std::string_view in(reinterpret_cast<const char*>(data) + skip, size - skip);

  FrameDecoder d(limit);
  size_t pos = 0;
  bool ok = true;
  while (pos < in.size()) {
    const uint64_t r = next(seed);
    const size_t chunk = (r & 7) == 0 ? in.size() - pos : 1 + (r >> 8) % 37;
    d.feed(in.substr(pos, chunk));
    pos += std::min(chunk, in.size() - pos);
    if (ok) ok = drain(d, limit);
    require(d.buffered_bytes() <= in.size());
  }
  if (ok) drain(d, limit);
  // Decoding Hello payloads directly too: they are parsed from untrusted peers.
  (void)vigil::net::decode_hello(in);
  return 0;
}
