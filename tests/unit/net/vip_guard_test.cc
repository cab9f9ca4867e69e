// Tests of the VIP guard's pure part: the line protocol (parse_guard_command,
// format_guard_command, GuardAddress::to_string) and what the guard knows (GuardState).
#include "net/vip_guard.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::net {
namespace {

using Kind = GuardCommand::Kind;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

IpAddress ip(const std::string& s) {
  auto r = parse_ip_address(s);
  EXPECT_TRUE(r.has_value()) << s;
  return r.value_or(IpAddress{});
}
GuardAddress addr(int ifindex, const std::string& address, int prefix_len) {
  return GuardAddress{ifindex, ip(address), prefix_len};
}
GuardCommand add(const GuardAddress& a) { return GuardCommand{Kind::kAdd, a, 0}; }
GuardCommand del(const GuardAddress& a) { return GuardCommand{Kind::kDel, a, 0}; }
GuardCommand hold(int64_t until_ms) { return GuardCommand{Kind::kHold, {}, until_ms}; }

std::string kind_name(Kind k) {
  switch (k) {
    case Kind::kAdd:
      return "add";
    case Kind::kDel:
      return "del";
    case Kind::kHold:
      return "hold";
    case Kind::kStopAdd:
      return "stop-add";
    case Kind::kStopDel:
      return "stop-del";
  }
  return "?";
}
// The fields that a command of its kind carries are equal.
void expect_same(const GuardCommand& got, const GuardCommand& want) {
  ASSERT_EQ(kind_name(got.kind), kind_name(want.kind));
  if (want.kind == Kind::kHold) {
    EXPECT_EQ(got.hold_until, want.hold_until);
  } else if (want.kind == Kind::kStopAdd || want.kind == Kind::kStopDel) {
    EXPECT_EQ(got.path, want.path);
  } else {
    EXPECT_EQ(got.addr.ifindex, want.addr.ifindex);
    EXPECT_EQ(got.addr.ip.v6, want.addr.ip.v6);
    EXPECT_EQ(got.addr.ip.to_string(), want.addr.ip.to_string());
    EXPECT_TRUE(got.addr.ip == want.addr.ip);
    EXPECT_EQ(got.addr.prefix_len, want.addr.prefix_len);
    EXPECT_TRUE(got.addr == want.addr);
  }
}
// Shows a line with its control characters escaped.
std::string show(std::string_view line) {
  std::string out;
  for (char c : line) {
    if (c == '\0') {
      out += "\\0";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    } else {
      out += c;
    }
  }
  return "\"" + out + "\"";
}

// The line is rejected with kInvalidArgument and a message; returns the message.
std::string rejected(std::string_view line) {
  auto r = parse_guard_command(line);
  EXPECT_FALSE(r.has_value()) << show(line) << " was accepted as " << kind_name(r->kind);
  if (r) return "";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument)
      << show(line) << ": " << r.error().to_string();
  EXPECT_FALSE(r.error().message().empty()) << show(line);
  return r.error().message();
}
// The line is rejected and the message names `token` (the offending part of the line).
void expect_rejected_naming(std::string_view line, const std::string& token) {
  std::string msg = rejected(line);
  EXPECT_NE(msg.find(token), std::string::npos)
      << show(line) << ": the message '" << msg << "' does not name " << show(token);
}

// --- GuardAddress::to_string ---

TEST(VipGuardAddress, ToString) {
  EXPECT_EQ(addr(3, "198.18.0.100", 24).to_string(), "3 198.18.0.100/24");
  EXPECT_EQ(addr(7, "2001:2::100", 64).to_string(), "7 2001:2::100/64");
  EXPECT_EQ(addr(1, "198.18.0.1", 0).to_string(), "1 198.18.0.1/0");
  EXPECT_EQ(addr(2147483647, "2001:2:0:5::1", 128).to_string(), "2147483647 2001:2:0:5::1/128");
}

TEST(VipGuardAddress, OrderIsIfindexThenFamilyThenBytesThenPrefix) {
  EXPECT_LT(addr(2, "198.18.0.200", 32), addr(3, "198.18.0.1", 24));
  EXPECT_LT(addr(2, "198.18.0.200", 32), addr(2, "2001:2::1", 64));  // IPv4 first
  EXPECT_LT(addr(2, "198.18.0.1", 32), addr(2, "198.18.0.2", 24));
  EXPECT_LT(addr(2, "198.18.0.1", 24), addr(2, "198.18.0.1", 32));
  EXPECT_EQ(addr(2, "198.18.0.1", 24), addr(2, "198.18.0.1", 24));
}

// --- format_guard_command ---

TEST(VipGuardFormat, ExactLines) {
  EXPECT_EQ(format_guard_command(add(addr(3, "198.18.0.100", 24))), "add 3 198.18.0.100/24\n");
  EXPECT_EQ(format_guard_command(del(addr(7, "2001:2::100", 64))), "del 7 2001:2::100/64\n");
  EXPECT_EQ(format_guard_command(hold(12345)), "hold 12345\n");
  EXPECT_EQ(format_guard_command(hold(0)), "hold 0\n");
  EXPECT_EQ(format_guard_command(hold(kInt64Max)), "hold 9223372036854775807\n");
  EXPECT_EQ(format_guard_command(add(addr(1, "198.18.0.1", 0))), "add 1 198.18.0.1/0\n");
  EXPECT_EQ(format_guard_command(del(addr(2, "2001:2:0:5::1", 128))), "del 2 2001:2:0:5::1/128\n");
}

// --- parse_guard_command ---

TEST(VipGuardParse, ExactLines) {
  auto a = parse_guard_command("add 3 198.18.0.100/24");
  ASSERT_TRUE(a.has_value()) << a.error().to_string();
  expect_same(*a, add(addr(3, "198.18.0.100", 24)));

  auto d = parse_guard_command("del 7 2001:2::100/64");
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  expect_same(*d, del(addr(7, "2001:2::100", 64)));

  auto h = parse_guard_command("hold 12345");
  ASSERT_TRUE(h.has_value()) << h.error().to_string();
  expect_same(*h, hold(12345));
}

TEST(VipGuardParse, IPv6InAnyLiteralFormFormatsCanonically) {
  auto d = parse_guard_command("del 7 2001:0002:0000:0000:0000:0000:0000:0100/64");
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  expect_same(*d, del(addr(7, "2001:2::100", 64)));
  EXPECT_EQ(format_guard_command(*d), "del 7 2001:2::100/64\n");
}

TEST(VipGuardParse, RoundTripsEveryKind) {
  std::vector<GuardCommand> commands;
  for (const GuardAddress& a : {
           addr(3, "198.18.0.100", 24),
           addr(1, "198.18.0.1", 0),
           addr(1, "198.18.0.1", 32),
           addr(2147483647, "255.255.255.254", 31),
           addr(7, "2001:2::100", 64),
           addr(7, "2001:2::100", 0),
           addr(7, "2001:2::100", 128),
           addr(9, "fe80::1", 64),
           addr(4, "::ffff:198.18.0.1", 96),
           addr(5, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 127),
       }) {
    commands.push_back(add(a));
    commands.push_back(del(a));
  }
  for (int64_t h : {int64_t{0}, int64_t{1}, int64_t{12345}, kInt64Max}) {
    commands.push_back(hold(h));
  }
  for (const GuardCommand& c : commands) {
    std::string line = format_guard_command(c);
    SCOPED_TRACE(show(line));
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    EXPECT_LE(line.size() - 1, kMaxGuardLineBytes);
    auto back = parse_guard_command(std::string_view(line).substr(0, line.size() - 1));
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    expect_same(*back, c);
    EXPECT_EQ(format_guard_command(*back), line);
  }
}

TEST(VipGuardParse, RejectsEmptyAndUnknownCommands) {
  rejected("");
  expect_rejected_naming("ad 3 198.18.0.100/24", "'ad'");
  expect_rejected_naming("remove 3 198.18.0.100/24", "remove");
  expect_rejected_naming("ADD 3 198.18.0.100/24", "ADD");
  expect_rejected_naming("holdx 5", "holdx");
}

TEST(VipGuardParse, RejectsMissingFields) {
  rejected("add");
  rejected("add 3");
  rejected("del");
  rejected("del 7");
  rejected("hold");
  rejected("add ");
  rejected("hold ");
}

TEST(VipGuardParse, RejectsExtraFields) {
  rejected("add 3 198.18.0.100/24 5");
  rejected("del 7 2001:2::100/64 extra");
  rejected("hold 12345 6789");
  rejected("add 3 198.18.0.100 24");
}

TEST(VipGuardParse, RejectsBadIfindex) {
  expect_rejected_naming("add 0 198.18.0.100/24", "0");
  expect_rejected_naming("del 0 2001:2::100/64", "0");
  expect_rejected_naming("add -3 198.18.0.100/24", "-3");
  expect_rejected_naming("add eth0 198.18.0.100/24", "eth0");
  expect_rejected_naming("add 3x 198.18.0.100/24", "3x");
  expect_rejected_naming("add 0x3 198.18.0.100/24", "0x3");
  expect_rejected_naming("add 2147483648 198.18.0.100/24", "2147483648");
  expect_rejected_naming("del 99999999999999999999999 2001:2::100/64", "99999999999999999999999");
}

TEST(VipGuardParse, RejectsBadPrefix) {
  rejected("add 3 198.18.0.100");   // no prefix
  rejected("del 7 2001:2::100");    // no prefix
  rejected("add 3 198.18.0.100/");  // empty prefix
  expect_rejected_naming("add 3 198.18.0.100/33", "33");
  expect_rejected_naming("add 3 198.18.0.100/128", "128");
  expect_rejected_naming("del 7 2001:2::100/129", "129");
  expect_rejected_naming("add 3 198.18.0.100/-1", "-1");
  expect_rejected_naming("del 7 2001:2::100/-64", "-64");
  expect_rejected_naming("add 3 198.18.0.100/x24", "x24");
  expect_rejected_naming("add 3 198.18.0.100/24x", "24x");
  expect_rejected_naming("add 3 198.18.0.100/255.255.255.0", "255.255.255.0");
  expect_rejected_naming("add 3 198.18.0.100/99999999999999999999", "99999999999999999999");
}

TEST(VipGuardParse, RejectsBadAddress) {
  expect_rejected_naming("add 3 198.18.0.300/24", "198.18.0.300");
  expect_rejected_naming("add 3 web/24", "web");
  expect_rejected_naming("del 7 2001:2:::100/64", "2001:2:::100");
  expect_rejected_naming("del 7 fe80::1%eth0/64", "fe80::1%eth0");
  rejected("add 3 /24");
}

TEST(VipGuardParse, RejectsBadHold) {
  expect_rejected_naming("hold -1", "-1");
  expect_rejected_naming("hold -9223372036854775808", "-9223372036854775808");
  expect_rejected_naming("hold soon", "soon");
  expect_rejected_naming("hold 12x", "12x");
  expect_rejected_naming("hold 1.5", "1.5");
  expect_rejected_naming("hold 9223372036854775808", "9223372036854775808");
  expect_rejected_naming("hold 99999999999999999999999", "99999999999999999999999");
}

TEST(VipGuardParse, RejectsBlanksAroundFields) {
  rejected("hold 12345 ");
  rejected("hold 12345\t");
  rejected("add 3 198.18.0.100/24 ");
  rejected("add 3 198.18.0.100/24\t");
  rejected("del 7 2001:2::100/64  ");
  rejected("hold 12345\r");
}

TEST(VipGuardParse, RejectsOverlongLines) {
  // One byte over the limit, with a value that would be fine if leading zeros are read: the
  // length alone rejects it, and the message says so.
  std::string zeros = "hold " + std::string(kMaxGuardLineBytes - 5, '0') + "1";
  ASSERT_EQ(zeros.size(), kMaxGuardLineBytes + 1);
  std::string msg = rejected(zeros);
  EXPECT_TRUE(msg.find(std::to_string(kMaxGuardLineBytes)) != std::string::npos)
      << "the message '" << msg << "' does not say the line is too long";
  rejected("hold 1" + std::string(kMaxGuardLineBytes, ' '));
  rejected("hold " + std::string(kMaxGuardLineBytes - 4, '1'));
  rejected("add 3 198.18.0.100/24" + std::string(kMaxGuardLineBytes, 'x'));
  rejected(std::string(4096, 'a'));
  rejected(std::string(kMaxGuardLineBytes + 1, 'a'));
}

// --- stop recipes' paths ---

GuardCommand stop_add(const std::string& p) { return GuardCommand{Kind::kStopAdd, {}, 0, p}; }
GuardCommand stop_del(const std::string& p) { return GuardCommand{Kind::kStopDel, {}, 0, p}; }

TEST(VipGuardParse, StopAddAndDelRoundTrip) {
  const std::string p = "/var/lib/vigil/guard/web.stop";
  EXPECT_EQ(format_guard_command(stop_add(p)), "stop-add " + p + "\n");
  EXPECT_EQ(format_guard_command(stop_del(p)), "stop-del " + p + "\n");
  for (const GuardCommand& c : {stop_add(p), stop_del(p), stop_add("/" + std::string(4095, 'x'))}) {
    std::string line = format_guard_command(c);
    auto back = parse_guard_command(std::string_view(line).substr(0, line.size() - 1));
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    expect_same(*back, c);
  }
}

TEST(VipGuardParse, RejectsBadStopPaths) {
  expect_rejected_naming("stop-add relative/web.stop", "relative/web.stop");
  expect_rejected_naming("stop-add /a b", "takes 1 field");
  expect_rejected_naming("stop-del", "takes 1 field");
  expect_rejected_naming("stop-add /" + std::string(4096, 'x'), "4096");
  expect_rejected_naming("stop-mod /x", "stop-add");  // the list of commands
}

TEST(VipGuardState, StopsAloneHaveADeadlineAndAreTakenSorted) {
  GuardState s;
  EXPECT_FALSE(s.deadline().has_value());
  s.apply(hold(500));
  s.apply(stop_add("/g/b.stop"));
  s.apply(stop_add("/g/a.stop"));
  s.apply(stop_add("/g/a.stop"));
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(500));
  EXPECT_FALSE(s.expired(499));
  EXPECT_TRUE(s.expired(500));
  s.apply(stop_del("/g/b.stop"));
  s.apply(stop_del("/g/unknown.stop"));
  s.apply(add(addr(3, "198.18.0.100", 24)));
  EXPECT_EQ(s.take_stops(), (std::vector<std::string>{"/g/a.stop"}));
  EXPECT_TRUE(s.stops().empty());
  EXPECT_EQ(s.addresses().size(), 1u);  // addresses are taken on their own
  s.take_all();
  EXPECT_FALSE(s.deadline().has_value());
}

TEST(VipGuardParse, RejectsEmbeddedNul) {
  using namespace std::string_literals;
  rejected("hold 12\0"s + "345");
  rejected("hold 12345\0"s);
  rejected("add 3 198.18.0.100\0/24"s);
  rejected("add 3 198.18.0.100/24\0"s);
  rejected("\0"s);
  rejected("add\0 3 198.18.0.100/24"s);
}

TEST(VipGuardParse, AControlByteIsNamedAsItIs) {
  // The message may name the byte or not; when it gives a "0x" value, that is its hex value.
  struct Case {
    char byte;
    const char* hex;
  };
  for (Case c : {Case{'\r', "0d"}, Case{'\x1b', "1b"}, Case{'\x7f', "7f"}, Case{'\xff', "ff"}}) {
    std::string line = std::string("hold 5") + c.byte;
    std::string msg = rejected(line);
    if (msg.find("0x") == std::string::npos) continue;
    std::string lower;
    for (char ch : msg) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string h = c.hex;
    bool named = lower.find("0x" + h) != std::string::npos ||
                 (h[0] == '0' && lower.find("0x" + h.substr(1)) != std::string::npos);
    EXPECT_TRUE(named) << show(line) << ": the message '" << msg << "' does not give 0x" << h;
  }
}

// --- GuardState ---

TEST(VipGuardState, KnowingNoAddressNeverExpires) {
  GuardState s;
  EXPECT_TRUE(s.addresses().empty());
  EXPECT_EQ(s.deadline(), std::nullopt);
  for (int64_t now : {kInt64Min, int64_t{-1}, int64_t{0}, int64_t{1000}, kInt64Max}) {
    EXPECT_FALSE(s.expired(now)) << now;
  }
  s.apply(hold(1000));
  EXPECT_EQ(s.hold_until(), 1000);
  EXPECT_EQ(s.deadline(), std::nullopt);
  for (int64_t now : {int64_t{0}, int64_t{999}, int64_t{1000}, kInt64Max}) {
    EXPECT_FALSE(s.expired(now)) << now;
  }
  s.apply(hold(0));
  EXPECT_EQ(s.deadline(), std::nullopt);
  EXPECT_FALSE(s.expired(0));
  EXPECT_FALSE(s.expired(kInt64Max));
}

TEST(VipGuardState, AddWithoutHoldExpiresAtOnce) {
  GuardState s;
  s.apply(add(addr(3, "198.18.0.100", 24)));
  EXPECT_EQ(s.addresses().size(), 1u);
  EXPECT_EQ(s.hold_until(), 0);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(0));
  EXPECT_TRUE(s.expired(0));
  EXPECT_TRUE(s.expired(1));
  EXPECT_TRUE(s.expired(kInt64Max));
}

TEST(VipGuardState, HoldThenAddExpiresWhenTheHoldEnds) {
  GuardState s;
  s.apply(hold(1000));
  s.apply(add(addr(3, "198.18.0.100", 24)));
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(1000));
  EXPECT_FALSE(s.expired(0));
  EXPECT_FALSE(s.expired(999));
  EXPECT_TRUE(s.expired(1000));
  EXPECT_TRUE(s.expired(1001));
  EXPECT_TRUE(s.expired(kInt64Max));
}

TEST(VipGuardState, AddThenHoldAlsoHolds) {
  GuardState s;
  s.apply(add(addr(7, "2001:2::100", 64)));
  EXPECT_TRUE(s.expired(0));
  s.apply(hold(5000));
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(5000));
  EXPECT_FALSE(s.expired(4999));
  EXPECT_TRUE(s.expired(5000));
}

TEST(VipGuardState, LaterHoldExtends) {
  GuardState s;
  s.apply(hold(1000));
  s.apply(add(addr(3, "198.18.0.100", 24)));
  s.apply(hold(2000));
  EXPECT_EQ(s.hold_until(), 2000);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(2000));
  EXPECT_FALSE(s.expired(1000));
  EXPECT_FALSE(s.expired(1999));
  EXPECT_TRUE(s.expired(2000));
  s.apply(hold(kInt64Max));
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(kInt64Max));
  EXPECT_FALSE(s.expired(kInt64Max - 1));
  EXPECT_TRUE(s.expired(kInt64Max));
}

TEST(VipGuardState, LaterHoldReplacesEvenWhenShorterOrNone) {
  // "the agent's hold ends at UNTIL_MS": the last hold told is the one that counts.
  GuardState s;
  s.apply(add(addr(3, "198.18.0.100", 24)));
  s.apply(hold(2000));
  s.apply(hold(1500));
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(1500));
  EXPECT_FALSE(s.expired(1499));
  EXPECT_TRUE(s.expired(1500));
  s.apply(hold(0));  // it holds nothing: at once
  EXPECT_EQ(s.hold_until(), 0);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(0));
  EXPECT_TRUE(s.expired(0));
  EXPECT_TRUE(s.expired(1000));
}

TEST(VipGuardState, DelRemoves) {
  GuardState s;
  GuardAddress a = addr(3, "198.18.0.100", 24);
  GuardAddress b = addr(7, "2001:2::100", 64);
  s.apply(hold(1000));
  s.apply(add(a));
  s.apply(add(b));
  EXPECT_EQ(s.addresses().size(), 2u);
  s.apply(del(a));
  ASSERT_EQ(s.addresses().size(), 1u);
  EXPECT_EQ(*s.addresses().begin(), b);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(1000));
  EXPECT_TRUE(s.expired(1000));
  s.apply(del(b));
  EXPECT_TRUE(s.addresses().empty());
  EXPECT_EQ(s.deadline(), std::nullopt);
  EXPECT_FALSE(s.expired(1000));
  EXPECT_FALSE(s.expired(kInt64Max));
}

TEST(VipGuardState, DelOfAnUnknownAddressIsHarmless) {
  GuardState s;
  s.apply(del(addr(3, "198.18.0.100", 24)));  // knows none
  EXPECT_TRUE(s.addresses().empty());
  EXPECT_EQ(s.deadline(), std::nullopt);
  EXPECT_FALSE(s.expired(0));

  GuardAddress a = addr(3, "198.18.0.100", 24);
  s.apply(hold(1000));
  s.apply(add(a));
  s.apply(del(addr(4, "198.18.0.100", 24)));  // other interface
  s.apply(del(addr(3, "198.18.0.101", 24)));  // other address
  s.apply(del(addr(3, "2001:2::100", 64)));   // other family
  ASSERT_EQ(s.addresses().size(), 1u);
  EXPECT_EQ(*s.addresses().begin(), a);
  EXPECT_EQ(s.hold_until(), 1000);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(1000));
  EXPECT_FALSE(s.expired(999));
  EXPECT_TRUE(s.expired(1000));
}

TEST(VipGuardState, AddingTwiceKeepsOne) {
  GuardState s;
  GuardAddress a = addr(3, "198.18.0.100", 24);
  s.apply(add(a));
  s.apply(add(a));
  s.apply(add(addr(3, "198.18.0.100", 24)));
  ASSERT_EQ(s.addresses().size(), 1u);
  s.apply(del(a));  // one del removes it
  EXPECT_TRUE(s.addresses().empty());
  EXPECT_EQ(s.deadline(), std::nullopt);
}

TEST(VipGuardState, TakeAllReturnsEveryAddressSortedAndLeavesNone) {
  GuardState s;
  std::vector<GuardAddress> told = {
      addr(5, "198.18.0.1", 24),   addr(2, "2001:2::100", 64),  addr(2, "198.18.0.200", 32),
      addr(2, "198.18.0.100", 24), addr(2, "198.18.0.100", 16), addr(9, "2001:2::1", 128),
  };
  s.apply(hold(1000));
  for (const GuardAddress& a : told) s.apply(add(a));
  s.apply(add(told[1]));  // twice
  EXPECT_TRUE(s.expired(1000));

  std::vector<GuardAddress> taken = s.take_all();
  std::vector<GuardAddress> want = {
      addr(2, "198.18.0.100", 16), addr(2, "198.18.0.100", 24), addr(2, "198.18.0.200", 32),
      addr(2, "2001:2::100", 64),  addr(5, "198.18.0.1", 24),   addr(9, "2001:2::1", 128),
  };
  ASSERT_EQ(taken.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(taken[i], want[i]) << i << ": " << taken[i].to_string();
  }
  EXPECT_TRUE(s.addresses().empty());
  EXPECT_EQ(s.deadline(), std::nullopt);
  EXPECT_FALSE(s.expired(1000));
  EXPECT_FALSE(s.expired(kInt64Max));
  EXPECT_TRUE(s.take_all().empty());

  // The state goes on: a later add is known again.
  s.apply(hold(3000));
  s.apply(add(told[0]));
  ASSERT_EQ(s.addresses().size(), 1u);
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(3000));
  EXPECT_FALSE(s.expired(2999));
  EXPECT_TRUE(s.expired(3000));
}

TEST(VipGuardState, ParsedLinesDriveTheState) {
  GuardState s;
  for (std::string_view line : {"hold 1000", "add 3 198.18.0.100/24", "add 7 2001:2::100/64",
                                "del 3 198.18.0.100/24", "hold 2000"}) {
    auto c = parse_guard_command(line);
    ASSERT_TRUE(c.has_value()) << line << ": " << c.error().to_string();
    s.apply(*c);
  }
  ASSERT_EQ(s.addresses().size(), 1u);
  EXPECT_EQ(s.addresses().begin()->to_string(), "7 2001:2::100/64");
  EXPECT_EQ(s.deadline(), std::optional<int64_t>(2000));
  EXPECT_FALSE(s.expired(1999));
  EXPECT_TRUE(s.expired(2000));
}

}  // namespace
}  // namespace vigil::net
