// Fuzz target for what src/exec parses from agents and from configuration: OCF exit
// reasons (agent stderr), fence "Status:" lines (agent stdout), agent names, fence stdin
// and the bounded output tail.
//
// Input layout: byte 0 picks the tail capacity, the rest is the text. Besides "never
// crash", it checks each parser's contract: an exit reason is at most kMaxExitReasonBytes
// with no control characters; a parsed agent name re-parses to the same name and holds no
// '/'; fence stdin has one "key=value" line per parameter after the action line; the tail
// is the suffix of everything appended, within its capacity.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "exec/agent.h"

namespace {

using namespace vigil::exec;

void require(bool cond) {
  if (!cond) std::abort();
}

void check_exit_reason(std::string_view text) {
  std::string r = parse_exit_reason(text);
  require(r.size() <= kMaxExitReasonBytes);
  for (char c : r) require(static_cast<unsigned char>(c) >= 0x20);
  (void)parse_fence_power_status(text);
}

void check_agent_name(std::string_view text) {
  auto name = parse_agent_name(text);
  if (!name) return;
  require(name->provider.find('/') == std::string::npos);
  require(name->type.find('/') == std::string::npos);
  require(name->provider != ".." && name->type != "..");
  if (name->agent_class == AgentClass::kExtension) return;
  auto again = parse_agent_name(name->to_string());
  require(again.has_value());
  require(again->agent_class == name->agent_class && again->provider == name->provider &&
          again->type == name->type);
}

// Splits the text into parameters at '\x01' (pairs) and '\x02' (key from value).
void check_fence_stdin(std::string_view text) {
  std::map<std::string, std::string> params;
  size_t pos = 0;
  while (pos <= text.size() && params.size() < 64) {
    size_t end = text.find('\x01', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view pair = text.substr(pos, end - pos);
    size_t sep = pair.find('\x02');
    params[std::string(pair.substr(0, sep))] =
        sep == std::string_view::npos ? "" : std::string(pair.substr(sep + 1));
    pos = end + 1;
  }
  auto in = build_fence_stdin(FenceAction::kStatus, params);
  if (!in) return;
  size_t lines = 0;
  size_t start = 0;
  while (start < in->size()) {
    size_t eol = in->find('\n', start);
    require(eol != std::string::npos);  // every line ends with '\n'
    require(in->find('=', start) < eol);
    ++lines;
    start = eol + 1;
  }
  require(lines == params.size() + 1);
}

void check_tail(size_t cap, std::string_view text) {
  OutputTail tail(cap);
  std::string all;
  size_t pos = 0;
  size_t step = 1;
  while (pos < text.size()) {
    std::string_view chunk = text.substr(pos, step);
    tail.append(chunk);
    all.append(chunk);
    pos += chunk.size();
    step = step * 2 + 1;
  }
  std::string s = tail.str();
  require(s.size() == std::min(cap, all.size()));
  require(all.compare(all.size() - s.size(), s.size(), s) == 0);
  require(tail.total_bytes() == all.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t cap = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  check_exit_reason(text);
  check_agent_name(text);
  check_fence_stdin(text);
  check_tail(cap, text);
  return 0;
}
