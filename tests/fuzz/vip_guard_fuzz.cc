// Fuzz target for the VIP guard's protocol: the agent's lines and what the guard makes of them.
//
// The input is split on '\n' and every line goes through parse_guard_command(). Besides
// "never crash", it checks what an accepted line promises: an ifindex > 0, a prefix that fits
// the family, a hold that is not negative, a line within kMaxGuardLineBytes, and a formatted
// line that parses back to the same command. The accepted commands drive one GuardState,
// whose deadline() and expired() must agree with its addresses after each, and take_all()
// must hand back every address, sorted, and leave none; take_stops() likewise for the stop
// recipes' paths.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/vip_guard.h"

namespace {

using namespace vigil::net;

void require(bool cond) {
  if (!cond) std::abort();
}

bool same(const GuardCommand& a, const GuardCommand& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == GuardCommand::Kind::kHold) return a.hold_until == b.hold_until;
  if (a.kind == GuardCommand::Kind::kStopAdd || a.kind == GuardCommand::Kind::kStopDel) {
    return a.path == b.path;
  }
  return a.addr == b.addr;
}

void check_command(std::string_view line, const GuardCommand& c) {
  require(line.size() <= kMaxGuardLineBytes);
  require(line.find('\0') == std::string_view::npos);
  switch (c.kind) {
    case GuardCommand::Kind::kAdd:
    case GuardCommand::Kind::kDel:
      require(c.addr.ifindex > 0);
      require(c.addr.prefix_len >= 0 && c.addr.prefix_len <= c.addr.ip.max_prefix());
      if (!c.addr.ip.v6) {
        for (size_t i = 4; i < c.addr.ip.bytes.size(); ++i) require(c.addr.ip.bytes[i] == 0);
      }
      break;
    case GuardCommand::Kind::kHold:
      require(c.hold_until >= 0);
      break;
    case GuardCommand::Kind::kStopAdd:
    case GuardCommand::Kind::kStopDel:
      require(!c.path.empty() && c.path[0] == '/' && c.path.size() <= kMaxGuardPathBytes);
      require(c.path.find(' ') == std::string::npos);
      break;
    default:
      require(false);
  }
  std::string out = format_guard_command(c);
  require(!out.empty() && out.back() == '\n');
  std::string_view text = std::string_view(out).substr(0, out.size() - 1);
  require(text.find('\n') == std::string_view::npos);
  auto back = parse_guard_command(text);
  require(back.has_value());
  require(same(*back, c));
  require(format_guard_command(*back) == out);
}

void check_state(const GuardState& s) {
  std::optional<int64_t> d = s.deadline();
  require(d.has_value() == (!s.addresses().empty() || !s.stops().empty()));
  if (!d) {
    require(!s.expired(0));
    require(!s.expired(std::numeric_limits<int64_t>::max()));
    return;
  }
  require(*d == s.hold_until());
  require(*d >= 0);
  require(s.expired(*d));
  require(s.expired(std::numeric_limits<int64_t>::max()));
  if (*d > 0) require(!s.expired(*d - 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  GuardState state;
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t end = in.find('\n', pos);
    if (end == std::string_view::npos) end = in.size();
    std::string_view line = in.substr(pos, end - pos);
    auto c = parse_guard_command(line);
    if (c) {
      check_command(line, *c);
      const bool is_stop =
          c->kind == GuardCommand::Kind::kStopAdd || c->kind == GuardCommand::Kind::kStopDel;
      size_t before = state.addresses().size();
      size_t stops_before = state.stops().size();
      bool known =
          c->kind != GuardCommand::Kind::kHold && !is_stop && state.addresses().count(c->addr) != 0;
      bool stop_known = is_stop && state.stops().count(c->path) != 0;
      state.apply(*c);
      switch (c->kind) {
        case GuardCommand::Kind::kAdd:
          require(state.addresses().count(c->addr) == 1);
          require(state.addresses().size() == before + (known ? 0 : 1));
          break;
        case GuardCommand::Kind::kDel:
          require(state.addresses().count(c->addr) == 0);
          require(state.addresses().size() == before - (known ? 1 : 0));
          break;
        case GuardCommand::Kind::kHold:
          require(state.hold_until() == c->hold_until);
          require(state.addresses().size() == before);
          break;
        case GuardCommand::Kind::kStopAdd:
          require(state.stops().count(c->path) == 1);
          require(state.stops().size() == stops_before + (stop_known ? 0 : 1));
          require(state.addresses().size() == before);
          break;
        case GuardCommand::Kind::kStopDel:
          require(state.stops().count(c->path) == 0);
          require(state.stops().size() == stops_before - (stop_known ? 1 : 0));
          require(state.addresses().size() == before);
          break;
      }
    } else {
      require(c.error().code() == vigil::Errc::kInvalidArgument);
      require(!c.error().message().empty());
    }
    check_state(state);
    pos = end + 1;
  }
  std::vector<GuardAddress> want(state.addresses().begin(), state.addresses().end());
  std::vector<GuardAddress> taken = state.take_all();
  require(taken == want);  // std::set order is operator<=>
  for (size_t i = 1; i < taken.size(); ++i) require(taken[i - 1] < taken[i]);
  require(state.addresses().empty());
  std::vector<std::string> stops(state.stops().begin(), state.stops().end());
  require(state.take_stops() == stops);
  require(state.stops().empty());
  check_state(state);
  return 0;
}
