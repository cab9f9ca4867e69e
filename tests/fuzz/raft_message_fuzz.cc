// Fuzz target for the Raft codec: decoding never crashes, and whatever decodes re-encodes
// to the same bytes and decodes to an equal value (the encoding is canonical). A message of
// the older version 1 re-encodes as the current version instead.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "raft/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::raft;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto m = decode_message(in)) {
    const std::string again = encode_message(*m);
    CHECK(in[0] != kMessageVersion || again == in);
    auto m2 = decode_message(again);
    CHECK(m2.has_value());
    CHECK(message_equal(*m, *m2));
  }
  // The same bytes as a ConfChange (entry payloads travel inside messages).
  if (auto cc = decode_conf_change(in)) {
    const std::string again = encode_conf_change(*cc);
    CHECK(again == in);
    auto cc2 = decode_conf_change(std::string_view(again));
    CHECK(cc2.has_value() && *cc2 == *cc);
  }
  return 0;
}
