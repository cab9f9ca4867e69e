// Tests of the vip resource class: parameters, interface choice and ARP/NDP frames (pure),
// then the driver in a network namespace joined by a veth pair to a second one (root).
// clang-format off
#include <utility>  // first: Boost 1.74's asio headers miss it under g++ 12
// clang-format on
#include "net/vip.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vigil::net {
namespace {

using exec::Action;
using exec::ActionResult;
using exec::OcfCode;
using Params = std::map<std::string, std::string>;

IpAddress ip(const std::string& s) {
  auto r = parse_ip_address(s);
  EXPECT_TRUE(r.has_value()) << s;
  return r.value_or(IpAddress{});
}
std::string param_error(const Params& p) {
  auto r = parse_vip_params(p);
  return r ? "OK" : r.error().message();
}
std::string hex(const std::string& s) {
  std::string out;
  char b[4];
  for (unsigned char c : s) {
    std::snprintf(b, sizeof b, "%02x", c);
    out += b;
  }
  return out;
}

const MacAddress kMac = {0x02, 0x00, 0x00, 0x00, 0x05, 0x01};
const MacAddress kOther = {0x02, 0x00, 0x00, 0x00, 0x05, 0x02};

// --- parameters ---

TEST(VipParams, Defaults) {
  auto p = parse_vip_params({{"ip", "198.18.0.100"}});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->ip.to_string(), "198.18.0.100");
  EXPECT_FALSE(p->ip.v6);
  EXPECT_FALSE(p->prefix_len.has_value());
  EXPECT_EQ(p->nic, "");
  EXPECT_EQ(p->label, "");
  EXPECT_EQ(p->arp_count, 3);
  EXPECT_EQ(p->arp_interval_ms, 200);
  EXPECT_EQ(p->arp_refresh_ms, 0);
  EXPECT_EQ(p->probe_ms, 50);
  EXPECT_FALSE(p->takeover);
}

TEST(VipParams, Everything) {
  auto p = parse_vip_params({{"ip", "198.18.0.100"},
                             {"cidr_netmask", "24"},
                             {"nic", "eth0"},
                             {"label", "eth0:web"},
                             {"arp_count", "5"},
                             {"arp_interval_ms", "100"},
                             {"arp_refresh_ms", "60000"},
                             {"probe_ms", "0"},
                             {"takeover", "true"}});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->prefix_len, 24);
  EXPECT_EQ(p->nic, "eth0");
  EXPECT_EQ(p->label, "eth0:web");
  EXPECT_EQ(p->arp_count, 5);
  EXPECT_EQ(p->arp_interval_ms, 100);
  EXPECT_EQ(p->arp_refresh_ms, 60000);
  EXPECT_EQ(p->probe_ms, 0);
  EXPECT_TRUE(p->takeover);

  auto v6 = parse_vip_params({{"ip", "2001:2:0:5::100"}, {"cidr_netmask", "128"}});
  ASSERT_TRUE(v6.has_value()) << v6.error().message();
  EXPECT_TRUE(v6->ip.v6);
  EXPECT_EQ(v6->ip.to_string(), "2001:2:0:5::100");
  EXPECT_EQ(v6->prefix_len, 128);
}

TEST(VipParams, ErrorsNameTheParameter) {
  EXPECT_EQ(param_error({}), "params.ip: required (the virtual IP: 198.18.0.100)");
  EXPECT_EQ(param_error({{"ip", "198.18.0.100/24"}}),
            "params.ip: '198.18.0.100/24' has a prefix: give the address alone and the "
            "prefix as cidr_netmask: 24");
  EXPECT_EQ(param_error({{"ip", "web"}}), "params.ip: 'web' is not an IPv4 or IPv6 address");
  EXPECT_EQ(param_error({{"ip", " 198.18.0.1"}}),
            "params.ip: ' 198.18.0.1' is not an IPv4 or IPv6 address");
  EXPECT_EQ(param_error({{"ip", "fe80::1%eth0"}}),
            "params.ip: 'fe80::1%eth0' is not an IPv4 or IPv6 address");
  EXPECT_EQ(param_error({{"ip", "0.0.0.0"}}), "params.ip: '0.0.0.0' is unspecified");
  EXPECT_EQ(param_error({{"ip", "224.0.0.18"}}), "params.ip: '224.0.0.18' is a multicast address");
  EXPECT_EQ(param_error({{"ip", "ff02::1"}}), "params.ip: 'ff02::1' is a multicast address");
  EXPECT_EQ(param_error({{"ip", "255.255.255.255"}}),
            "params.ip: '255.255.255.255' is the broadcast address");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"interface", "eth0"}}),
            "params.interface: unknown parameter of a vip resource (did you mean 'nic'?) "
            "(known: ip, cidr_netmask, nic, label, arp_count, arp_interval_ms, arp_refresh_ms, "
            "probe_ms, takeover)");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"cidr_netmask", "33"}}),
            "params.cidr_netmask: 33 is out of range 1..32");
  EXPECT_EQ(param_error({{"ip", "2001:2::1"}, {"cidr_netmask", "129"}}),
            "params.cidr_netmask: 129 is out of range 1..128");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"cidr_netmask", "255.255.255.0"}}),
            "params.cidr_netmask: '255.255.255.0' is not a whole number 1..32");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"cidr_netmask", "-1"}}),
            "params.cidr_netmask: '-1' is not a whole number 1..32");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"nic", "eth0/1"}}),
            "params.nic: 'eth0/1' is not an interface name (1-15 characters, no '/', ':' or "
            "blanks)");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"nic", "a-very-long-name0"}}),
            "params.nic: 'a-very-long-name0' is not an interface name (1-15 characters, no "
            "'/', ':' or blanks)");
  EXPECT_EQ(param_error({{"ip", "2001:2::1"}, {"label", "eth0:x"}}),
            "params.label: only for IPv4 addresses");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"label", "eth0:0123456789ab"}}),
            "params.label: 'eth0:0123456789ab' must be 1-15 characters");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"label", "web"}}),
            "params.label: 'web' must start with the interface name and ':' (eth0:web)");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"nic", "eth1"}, {"label", "eth0:web"}}),
            "params.label: 'eth0:web' must start with 'eth1:' (the kernel's rule)");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"arp_count", "101"}}),
            "params.arp_count: 101 is out of range 0..100");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"arp_interval_ms", "5"}}),
            "params.arp_interval_ms: 5 is out of range 10..10000");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"arp_refresh_ms", "50"}}),
            "params.arp_refresh_ms: '50' must be 0 (off) or 100..86400000");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"probe_ms", "99999999999"}}),
            "params.probe_ms: '99999999999' is not a whole number 0..10000");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"takeover", "yes"}}),
            "params.takeover: 'yes' must be true or false");
  EXPECT_EQ(param_error({{"ip", "198.18.0.1"}, {"arp_count", "0"}, {"arp_refresh_ms", "0"}}), "OK");
}

// --- interface choice ---

NetInventory inventory() {
  NetInventory inv;
  inv.links.push_back({1, "lo", true, false, {}});
  inv.links.push_back({2, "eth0", true, true, kMac});
  inv.links.push_back({3, "eth1", true, true, kOther});
  inv.links.push_back({4, "eth2", false, true, kOther});
  inv.addrs.push_back({1, ip("127.0.0.1"), 8, 0x80, "lo"});
  inv.addrs.push_back({3, ip("198.18.0.1"), 16, 0x80, "eth1"});
  inv.addrs.push_back({2, ip("198.18.5.1"), 24, 0x80, "eth0"});
  inv.addrs.push_back({2, ip("2001:2:0:5::1"), 64, 0x80, ""});
  return inv;
}

Result<VipTarget> resolve(const Params& params, const NetInventory& inv = inventory()) {
  auto p = parse_vip_params(params);
  EXPECT_TRUE(p.has_value()) << p.error().message();
  if (!p) return std::unexpected(p.error());
  return resolve_vip(*p, inv);
}

TEST(VipResolve, DefaultNicAndPrefixFromTheSubnet) {
  auto t = resolve({{"ip", "198.18.5.100"}});
  ASSERT_TRUE(t.has_value()) << t.error().message();
  EXPECT_EQ(t->link.name, "eth0");  // /24 on eth0 beats /16 on eth1
  EXPECT_EQ(t->prefix_len, 24);
  EXPECT_FALSE(t->present.has_value());

  t = resolve({{"ip", "198.18.9.9"}});
  ASSERT_TRUE(t.has_value()) << t.error().message();
  EXPECT_EQ(t->link.name, "eth1");
  EXPECT_EQ(t->prefix_len, 16);

  t = resolve({{"ip", "2001:2:0:5::100"}});
  ASSERT_TRUE(t.has_value()) << t.error().message();
  EXPECT_EQ(t->link.name, "eth0");
  EXPECT_EQ(t->prefix_len, 64);

  t = resolve({{"ip", "198.18.5.100"}, {"cidr_netmask", "32"}});
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->prefix_len, 32);
}

TEST(VipResolve, NicGiven) {
  auto t = resolve({{"ip", "203.0.113.7"}, {"nic", "eth1"}});
  ASSERT_TRUE(t.has_value()) << t.error().message();
  EXPECT_EQ(t->link.name, "eth1");
  EXPECT_EQ(t->prefix_len, 32);  // no address of eth1 holds it
  t = resolve({{"ip", "2001:db8::7"}, {"nic", "eth1"}});
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->prefix_len, 128);
  t = resolve({{"ip", "198.18.5.100"}, {"nic", "eth1"}});  // eth1's /16 holds it
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->prefix_len, 16);
}

TEST(VipResolve, Errors) {
  auto t = resolve({{"ip", "203.0.113.7"}});
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), Errc::kNotFound);
  EXPECT_EQ(t.error().message(),
            "params.ip: no interface here has an address in the subnet of 203.0.113.7 (set "
            "nic and cidr_netmask)");
  t = resolve({{"ip", "198.18.5.100"}, {"nic", "nope0"}});
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), Errc::kNotFound);
  EXPECT_EQ(t.error().message(), "params.nic: no interface 'nope0' here");
  t = resolve({{"ip", "198.18.5.100"}, {"label", "eth1:web"}});
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().message(),
            "params.label: 'eth1:web' must start with 'eth0:' (the kernel's rule)");
}

TEST(VipResolve, PresentAndTheVipItselfOnlyAsLastResort) {
  NetInventory inv = inventory();
  inv.addrs.push_back({3, ip("198.18.5.100"), 32, 0x80, "eth1"});
  // On eth1 as /32, but eth0 holds the subnet: eth0 is chosen, where it is not present.
  auto t = resolve({{"ip", "198.18.5.100"}}, inv);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->link.name, "eth0");
  EXPECT_FALSE(t->present.has_value());
  // With nic: present there.
  t = resolve({{"ip", "198.18.5.100"}, {"nic", "eth1"}}, inv);
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(t->present.has_value());
  EXPECT_EQ(t->present->prefix_len, 32);
  // A /32 VIP nowhere else: found by its own address.
  inv.addrs.push_back({4, ip("203.0.113.7"), 32, 0x80, "eth2"});
  t = resolve({{"ip", "203.0.113.7"}}, inv);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->link.name, "eth2");
  EXPECT_EQ(t->prefix_len, 32);
  EXPECT_TRUE(t->present.has_value());
}

TEST(VipAddress, SameSubnet) {
  EXPECT_TRUE(same_subnet(ip("198.18.5.1"), ip("198.18.5.200"), 24));
  EXPECT_FALSE(same_subnet(ip("198.18.5.1"), ip("198.18.6.1"), 24));
  EXPECT_TRUE(same_subnet(ip("198.18.5.1"), ip("198.19.0.1"), 15));
  EXPECT_FALSE(same_subnet(ip("198.18.5.1"), ip("198.20.0.1"), 15));
  EXPECT_TRUE(same_subnet(ip("198.18.5.1"), ip("1.2.3.4"), 0));
  EXPECT_FALSE(same_subnet(ip("198.18.5.1"), ip("198.18.5.2"), 32));
  EXPECT_FALSE(same_subnet(ip("198.18.5.1"), ip("198.18.5.1"), 33));
  EXPECT_TRUE(same_subnet(ip("2001:2:0:5::1"), ip("2001:2:0:5:ffff::"), 64));
  EXPECT_FALSE(same_subnet(ip("2001:2:0:5::1"), ip("2001:2:0:6::1"), 64));
  EXPECT_FALSE(same_subnet(ip("198.18.5.1"), ip("::ffff:198.18.5.1"), 24));
  EXPECT_EQ(mac_to_string(kMac), "02:00:00:00:05:01");
}

// --- ARP ---

TEST(VipArp, GratuitousRequestBytes) {
  std::string f = build_gratuitous_arp(kMac, ip("198.18.0.100"));
  ASSERT_EQ(f.size(), kArpFrameBytes);
  EXPECT_EQ(hex(f),
            "ffffffffffff"  // Ethernet destination: broadcast
            "020000000501"  // source
            "0806"          // ARP
            "0001"
            "0800"  // Ethernet, IPv4
            "06"
            "04"            // address lengths
            "0001"          // request
            "020000000501"  // sender MAC
            "c6120064"      // sender IP 198.18.0.100
            "000000000000"  // target MAC zero (RFC 5227 §3)
            "c6120064");    // target IP = sender IP
}

TEST(VipArp, GratuitousReplyAndProbeBytes) {
  std::string f = build_gratuitous_arp(kMac, ip("198.18.0.100"), ArpOp::kReply);
  EXPECT_EQ(hex(f),
            "ffffffffffff0200000005010806000108000604"
            "0002"
            "020000000501c6120064"
            "020000000501c6120064");
  f = build_arp_probe(kMac, ip("198.18.0.100"));
  EXPECT_EQ(hex(f),
            "ffffffffffff0200000005010806000108000604"
            "0001"
            "02000000050100000000"
            "000000000000c6120064");
}

TEST(VipArp, ParseAndClaims) {
  const IpAddress vip = ip("198.18.0.100");
  auto a = parse_arp_frame(build_gratuitous_arp(kOther, vip) + std::string(18, '\0'));
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(a->op, 1);
  EXPECT_EQ(a->sha, kOther);
  EXPECT_EQ(a->eth_src, kOther);
  EXPECT_EQ(a->eth_dst, (MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(a->spa, vip);
  EXPECT_EQ(a->tpa, vip);
  EXPECT_EQ(arp_claim(*a, vip, kMac), Claim::kOwner);
  EXPECT_EQ(arp_claim(*a, vip, kOther), Claim::kNone);  // our own
  EXPECT_EQ(arp_claim(*a, ip("198.18.0.101"), kMac), Claim::kNone);

  auto probe = parse_arp_frame(build_arp_probe(kOther, vip));
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(arp_claim(*probe, vip, kMac), Claim::kProbe);
  EXPECT_EQ(arp_claim(*probe, vip, kOther), Claim::kNone);

  // A client asking who has the VIP is no claim.
  std::string ask = build_arp_probe(kOther, vip);
  ask[31] = 7;  // sender IP 0.0.0.7
  auto asked = parse_arp_frame(ask);
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(arp_claim(*asked, vip, kMac), Claim::kNone);

  // A reply from the owner (what Linux answers to our probe).
  auto reply = parse_arp_frame(build_gratuitous_arp(kOther, vip, ArpOp::kReply));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(arp_claim(*reply, vip, kMac), Claim::kOwner);
}

TEST(VipArp, RejectsMalformed) {
  std::string good = build_gratuitous_arp(kMac, ip("198.18.0.100"));
  auto error_of = [](const std::string& f) {
    auto r = parse_arp_frame(f);
    return r ? "OK" : r.error().message();
  };
  EXPECT_EQ(error_of(""), "ARP frame of 0 bytes (at least 42)");
  EXPECT_EQ(error_of(good.substr(0, 41)), "ARP frame of 41 bytes (at least 42)");
  std::string bad = good;
  bad[12] = static_cast<char>(0x86);
  bad[13] = static_cast<char>(0xdd);
  EXPECT_EQ(error_of(bad), "not ARP: ethertype 0x86dd");
  bad = good;
  bad[19] = 16;
  EXPECT_EQ(error_of(bad), "ARP not for IPv4 over Ethernet");
  bad = good;
  bad[21] = 3;
  EXPECT_EQ(error_of(bad), "ARP opcode 3");
  EXPECT_EQ(error_of(std::string(70000, '\0')), "frame over 64 KiB");
  EXPECT_EQ(error_of(good), "OK");
}

// --- NDP ---

// A dumb checksum to compare with: RFC 1071 over a pseudo-header built byte by byte.
uint16_t reference_checksum(const std::string& ip6_and_icmp) {
  std::string pseudo = ip6_and_icmp.substr(8, 32);  // source and destination
  size_t len = ip6_and_icmp.size() - 40;
  pseudo += std::string{0, 0, static_cast<char>(len >> 8), static_cast<char>(len & 0xff)};
  pseudo += std::string{0, 0, 0, 58};
  std::string icmp = ip6_and_icmp.substr(40);
  icmp[2] = icmp[3] = 0;
  pseudo += icmp;
  if (pseudo.size() % 2) pseudo.push_back(0);
  uint32_t sum = 0;
  for (size_t i = 0; i < pseudo.size(); i += 2) {
    sum += (static_cast<uint8_t>(pseudo[i]) << 8) | static_cast<uint8_t>(pseudo[i + 1]);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

TEST(VipNd, UnsolicitedNaBytes) {
  std::string f = build_unsolicited_na(kMac, ip("2001:2:0:5::100"));
  ASSERT_EQ(f.size(), kUnsolicitedNaFrameBytes);
  EXPECT_EQ(hex(f.substr(0, 14)),
            "333300000001"
            "020000000501"
            "86dd");
  EXPECT_EQ(hex(f.substr(14, 8)),
            "60000000"
            "0020"
            "3a"
            "ff");  // 32 bytes, ICMPv6, hop 255
  EXPECT_EQ(hex(f.substr(22, 16)), "20010002000000050000000000000100");  // from the VIP
  EXPECT_EQ(hex(f.substr(38, 16)), "ff020000000000000000000000000001");  // to all nodes
  std::string icmp = f.substr(54);
  EXPECT_EQ(hex(icmp.substr(0, 2)), "8800");      // NA, code 0
  EXPECT_EQ(hex(icmp.substr(4, 4)), "20000000");  // override only
  EXPECT_EQ(hex(icmp.substr(8, 16)), "20010002000000050000000000000100");
  EXPECT_EQ(hex(icmp.substr(24)),
            "0201"
            "020000000501");  // target link-layer address
  uint16_t sum =
      static_cast<uint16_t>((static_cast<uint8_t>(icmp[2]) << 8) | static_cast<uint8_t>(icmp[3]));
  EXPECT_EQ(sum, reference_checksum(f.substr(14)));
  EXPECT_EQ(icmpv6_checksum(ip("2001:2:0:5::100"), ip("ff02::1"), icmp), 0);
}

TEST(VipNd, DadNsBytes) {
  std::string f = build_dad_ns(kMac, ip("2001:2:0:5::100"));
  ASSERT_EQ(f.size(), kDadNsFrameBytes);
  EXPECT_EQ(hex(f.substr(0, 14)),
            "3333ff000100"
            "020000000501"
            "86dd");
  EXPECT_EQ(hex(f.substr(14, 8)),
            "60000000"
            "0018"
            "3a"
            "ff");
  EXPECT_EQ(hex(f.substr(22, 16)), std::string(32, '0'));                // from ::
  EXPECT_EQ(hex(f.substr(38, 16)), "ff0200000000000000000001ff000100");  // solicited-node
  std::string icmp = f.substr(54);
  EXPECT_EQ(hex(icmp.substr(0, 2)), "8700");
  EXPECT_EQ(hex(icmp.substr(4)),
            "00000000"
            "20010002000000050000000000000100");  // no option
  uint16_t sum =
      static_cast<uint16_t>((static_cast<uint8_t>(icmp[2]) << 8) | static_cast<uint8_t>(icmp[3]));
  EXPECT_EQ(sum, reference_checksum(f.substr(14)));
  EXPECT_EQ(solicited_node(ip("2001:2:0:5::abcd:1234")).to_string(), "ff02::1:ffcd:1234");
}

TEST(VipNd, ParseAndClaims) {
  const IpAddress vip = ip("2001:2:0:5::100");
  auto na = parse_nd_frame(build_unsolicited_na(kOther, vip) + std::string(4, '\0'));
  ASSERT_TRUE(na.has_value()) << na.error().message();
  EXPECT_EQ(na->type, 136);
  EXPECT_TRUE(na->override_flag);
  EXPECT_FALSE(na->solicited);
  EXPECT_FALSE(na->router);
  EXPECT_EQ(na->target, vip);
  EXPECT_EQ(na->src, vip);
  EXPECT_EQ(na->dst.to_string(), "ff02::1");
  ASSERT_TRUE(na->link_addr.has_value());
  EXPECT_EQ(*na->link_addr, kOther);
  EXPECT_EQ(nd_claim(*na, vip, kMac), Claim::kOwner);
  EXPECT_EQ(nd_claim(*na, vip, kOther), Claim::kNone);
  EXPECT_EQ(nd_claim(*na, ip("2001:2:0:5::101"), kMac), Claim::kNone);
  EXPECT_EQ(nd_claim(*na, ip("198.18.0.1"), kMac), Claim::kNone);

  auto ns = parse_nd_frame(build_dad_ns(kOther, vip));
  ASSERT_TRUE(ns.has_value()) << ns.error().message();
  EXPECT_EQ(ns->type, 135);
  EXPECT_FALSE(ns->link_addr.has_value());
  EXPECT_EQ(nd_claim(*ns, vip, kMac), Claim::kProbe);
}

TEST(VipNd, RejectsMalformed) {
  const std::string good = build_unsolicited_na(kMac, ip("2001:2:0:5::100"));
  auto error_of = [](const std::string& f) {
    auto r = parse_nd_frame(f);
    return r ? "OK" : r.error().message();
  };
  EXPECT_EQ(error_of(good), "OK");
  EXPECT_EQ(error_of(good.substr(0, 77)), "ND frame of 77 bytes (at least 78)");
  std::string bad = good;
  bad[12] = 8;
  bad[13] = 0;
  EXPECT_EQ(error_of(bad), "not IPv6: ethertype 0x0800");
  bad = good;
  bad[14] = 0x40;
  EXPECT_EQ(error_of(bad), "IP version is not 6");
  EXPECT_EQ(error_of(good.substr(0, 80)), "IPv6 payload length 32 beyond the frame");
  bad = good;
  bad[20] = 17;
  EXPECT_EQ(error_of(bad), "not ICMPv6 (next header 17)");
  bad = good;
  bad[21] = 64;
  EXPECT_EQ(error_of(bad), "hop limit 64 (RFC 4861 requires 255)");
  bad = good;
  bad[54] = static_cast<char>(128);  // echo request
  EXPECT_EQ(error_of(bad), "ICMPv6 type 128");
  bad = good;
  bad[55] = 1;
  EXPECT_EQ(error_of(bad), "ICMPv6 code is not 0");
  bad = good;
  bad[57] ^= 1;
  EXPECT_EQ(error_of(bad), "ICMPv6 checksum mismatch");
  // An option of length 0 (RFC 4861 §4.6: "MUST silently discard"), checksum fixed up.
  auto with_icmp = [&](std::string icmp) {
    IpAddress src = ip("2001:2:0:5::100"), dst = ip("ff02::1");
    icmp[2] = icmp[3] = 0;
    uint16_t s = icmpv6_checksum(src, dst, icmp);
    icmp[2] = static_cast<char>(s >> 8);
    icmp[3] = static_cast<char>(s & 0xff);
    std::string f = good.substr(0, 54) + icmp;
    f[18] = static_cast<char>(icmp.size() >> 8);
    f[19] = static_cast<char>(icmp.size() & 0xff);
    return f;
  };
  std::string icmp = good.substr(54);
  std::string zero = icmp;
  zero[25] = 0;
  EXPECT_EQ(error_of(with_icmp(zero)), "ND option of length 0");
  std::string past = icmp;
  past[25] = 2;
  EXPECT_EQ(error_of(with_icmp(past)), "ND option past the end");
  EXPECT_EQ(error_of(with_icmp(icmp + "\x01")), "truncated ND option");
  EXPECT_EQ(error_of(with_icmp(icmp.substr(0, 20))), "ND frame of 74 bytes (at least 78)");
  std::string solicited = icmp;
  solicited[4] = 0x60;
  EXPECT_EQ(error_of(with_icmp(solicited)), "solicited NA to a multicast address");
  std::string mcast = icmp;
  mcast[8] = static_cast<char>(0xff);
  EXPECT_EQ(error_of(with_icmp(mcast)), "multicast target");
  EXPECT_EQ(error_of(with_icmp(icmp)), "OK");
}

// --- the driver, for real, in two network namespaces (root) ---

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
std::string sh_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

// Runs `f` on a new thread that has joined network namespace `ns` and returns its result;
// sockets it creates stay in that namespace.
template <class F>
auto in_netns(const std::string& ns, F f) -> decltype(f()) {
  std::packaged_task<decltype(f())()> task([ns, &f] {
    int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) std::abort();
    ::close(fd);
    return f();
  });
  auto fut = task.get_future();
  std::thread(std::move(task)).join();
  return fut.get();
}

// A VipDriver on its own io_context, on a thread inside a network namespace.
class NetnsDriver {
 public:
  explicit NetnsDriver(const std::string& ns) : guard_(io_.get_executor()) {
    std::promise<void> ready;
    thread_ = std::thread([this, ns, &ready] {
      int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) std::abort();
      ::close(fd);
      driver_ = std::make_unique<VipDriver>(io_);
      ready.set_value();
      io_.run();
    });
    ready.get_future().wait();
  }
  ~NetnsDriver() {
    boost::asio::post(io_, [this] {
      driver_.reset();
      guard_.reset();
    });
    thread_.join();
  }

  template <class F>
  auto call(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return fut.get();
  }

  // Starts an action and returns its result (the callback must come, and not inline).
  std::future<ActionResult> start_action(Action a, const Params& params, std::string id) {
    auto promise = std::make_shared<std::promise<ActionResult>>();
    auto fut = promise->get_future();
    boost::asio::post(io_, [this, a, params, id, promise] {
      exec::ActionRequest req;
      req.resource.id = id;
      req.resource.params = params;
      req.resource.guard_vip = guard_vip;
      req.action = a;
      req.timeout_ms = 10000;
      // Shared: the callback runs after this handler has returned.
      auto returned = std::make_shared<bool>(false);
      driver_->run(req, [promise, returned](ActionResult r) {
        if (!*returned) r.message = "CALLED INLINE: " + r.message;
        promise->set_value(std::move(r));
      });
      *returned = true;
    });
    return fut;
  }
  ActionResult act(Action a, const Params& params, std::string id = "vip1") {
    auto fut = start_action(a, params, id);
    if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within 10 s";
      return ActionResult{};
    }
    return fut.get();
  }
  VipCounters counters(const std::string& id = "vip1") {
    return call([this, id] { return driver_->counters(id); });
  }
  // The VIP guard (net/vip_guard.h): `exe __vip-guard`.
  void enable_guard(const std::string& exe) {
    call([this, exe] { driver_->enable_guard(exe); });
  }
  // The hold ends `ms` from now (0: no hold).
  void hold_for(int64_t ms) {
    call([this, ms] {
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count();
      driver_->set_hold(ms == 0 ? 0 : now + ms);
    });
  }
  pid_t guard_pid() {
    return call([this] { return driver_->guard_pid(); });
  }
  bool guard_vip = false;  // starts ask for a guard (ResourceSpec::guard_vip)

  Status remove_now(const Params& params, std::string id = "vip1") {
    return call([this, params, id] {
      exec::ResourceSpec spec;
      spec.id = id;
      spec.params = params;
      return driver_->remove_now(spec);
    });
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::unique_ptr<VipDriver> driver_;
  std::thread thread_;
};

// Every frame arriving on (or leaving) eth0 of a namespace, read with a deadline.
class Capture {
 public:
  explicit Capture(const std::string& ns) {
    fd_ = in_netns(ns, [] {
      int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003));  // ETH_P_ALL
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(0x0003);
      sll.sll_ifindex = static_cast<int>(::if_nametoindex("eth0"));
      if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
        ::close(fd);
        fd = -1;
      }
      return fd;
    });
  }
  ~Capture() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  // Frames received until `want` match `pred` or `ms` pass; returns how many matched.
  template <class Pred>
  int count(Pred pred, int want, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    int n = 0;
    while (n < want) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[2048];
      ssize_t len = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (len > 0 && pred(std::string(buf, static_cast<size_t>(len)))) ++n;
    }
    return n;
  }

 private:
  int fd_ = -1;
};

const MacAddress kMacA = {0x02, 0x00, 0x00, 0x00, 0x05, 0x0a};
const MacAddress kMacB = {0x02, 0x00, 0x00, 0x00, 0x05, 0x0b};

auto is_garp(const std::string& vip) {
  return [v = ip(vip)](const std::string& f) {
    auto a = parse_arp_frame(f);
    return a && a->op == 1 && a->spa == v && a->tpa == v && a->sha == kMacA;
  };
}
auto is_arp_probe(const std::string& vip) {
  return [v = ip(vip)](const std::string& f) {
    auto a = parse_arp_frame(f);
    return a && a->op == 1 && a->spa == IpAddress{} && a->tpa == v && a->sha == kMacA;
  };
}
auto is_unsolicited_na(const std::string& vip) {
  return [v = ip(vip)](const std::string& f) {
    auto nd = parse_nd_frame(f);
    return nd && nd->type == 136 && nd->target == v && nd->src == v && nd->override_flag &&
           nd->link_addr == kMacA;
  };
}
auto is_dad_ns(const std::string& vip) {
  return [v = ip(vip)](const std::string& f) {
    auto nd = parse_nd_frame(f);
    return nd && nd->type == 135 && nd->target == v && nd->eth_src == kMacA;
  };
}

class VipNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, veth, raw sockets)";
    if (sh("ip -V") != 0) GTEST_SKIP() << "needs iproute2's ip (scripts/setup.sh installs it)";
    remove_leftovers();
    a_ = "vipt-a-" + std::to_string(::getpid());
    b_ = "vipt-b-" + std::to_string(::getpid());
    sh("ip netns del " + a_);
    sh("ip netns del " + b_);
    for (const std::string& cmd : {
             "ip netns add " + a_,
             "ip netns add " + b_,
             "ip -n " + a_ + " link add eth0 address 02:00:00:00:05:0a type veth peer name eth0" +
                 " address 02:00:00:00:05:0b netns " + b_,
             "ip -n " + a_ + " addr add 198.18.5.1/24 dev eth0",
             "ip -n " + b_ + " addr add 198.18.5.2/24 dev eth0",
             "ip -n " + a_ + " addr add 2001:2:0:5::1/64 dev eth0 nodad",
             "ip -n " + b_ + " addr add 2001:2:0:5::2/64 dev eth0 nodad",
             "ip -n " + a_ + " link set eth0 up",
             "ip -n " + b_ + " link set eth0 up",
         }) {
      ASSERT_EQ(sh(cmd), 0) << cmd << ": " << sh_out(cmd);
    }
    driver_ = std::make_unique<NetnsDriver>(a_);
  }

  void TearDown() override {
    driver_.reset();
    if (!a_.empty()) sh("ip netns del " + a_);
    if (!b_.empty()) sh("ip netns del " + b_);
  }

  // Namespaces of earlier runs that crashed (their pid is gone); others' are left alone.
  static void remove_leftovers() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      std::string name = e.path().filename().string();
      if (name.rfind("vipt-", 0) != 0) continue;
      size_t dash = name.rfind('-');
      int pid = std::atoi(name.c_str() + dash + 1);
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) sh("ip netns del " + name);
    }
  }

  std::string addrs(const std::string& ns) { return sh_out("ip -n " + ns + " -o addr show"); }
  bool has(const std::string& ns, const std::string& text) {
    return addrs(ns).find(text) != std::string::npos;
  }
  // Polls every 5 ms, up to `limit`, until `text` is no longer among ns's addresses.
  bool gone_within(const std::string& ns, const std::string& text,
                   std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (has(ns, text) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return !has(ns, text);
  }

  std::string a_, b_;
  std::unique_ptr<NetnsDriver> driver_;
};

TEST_F(VipNetns, Ipv4StartAnnouncesMonitorStop) {
  Capture cap(b_);
  ASSERT_TRUE(cap.ok());
  Params p = {{"ip", "198.18.5.100"}, {"nic", "eth0"},           {"cidr_netmask", "24"},
              {"arp_count", "3"},     {"arp_interval_ms", "50"}, {"probe_ms", "100"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "added 198.18.5.100/24 on eth0, 3 gratuitous ARPs");
  EXPECT_GE(r.duration_ms, 90);  // the probe waited
  EXPECT_TRUE(has(a_, "inet 198.18.5.100/24 brd 198.18.5.255 scope global secondary eth0"))
      << addrs(a_);
  // B saw the probes (RFC 5227: sender 0.0.0.0), then exactly arp_count announcements.
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 3, 2000), 3);
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 200), 0);
  EXPECT_EQ(driver_->counters().announcements_sent, 3u);
  EXPECT_EQ(driver_->counters().conflicts_detected, 0u);

  r = driver_->act(Action::kMonitor, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "198.18.5.100/24 on eth0");
  r = driver_->act(Action::kStop, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "removed 198.18.5.100/24 from eth0");
  EXPECT_FALSE(has(a_, "198.18.5.100")) << addrs(a_);
  EXPECT_TRUE(has(a_, "inet 198.18.5.1/24")) << addrs(a_);
  r = driver_->act(Action::kMonitor, p);
  EXPECT_EQ(r.ocf, OcfCode::kNotRunning) << r.message;
  EXPECT_EQ(r.message, "198.18.5.100 is not on eth0");
  r = driver_->act(Action::kProbe, p);
  EXPECT_EQ(r.ocf, OcfCode::kNotRunning) << r.message;
  r = driver_->act(Action::kStop, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "198.18.5.100 is not on eth0");
}

TEST_F(VipNetns, Ipv4ProbeSeenAndStartAgainAnnouncesOnly) {
  Capture cap(b_);
  Params p = {{"ip", "198.18.5.100"}, {"arp_count", "1"}, {"probe_ms", "40"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "added 198.18.5.100/24 on eth0, 1 gratuitous ARP");
  EXPECT_EQ(cap.count(is_arp_probe("198.18.5.100"), 2, 1000), 2);  // at once and halfway
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 1000), 1);
  r = driver_->act(Action::kStart, p);  // already there: announced again, not probed
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "198.18.5.100/24 already on eth0, 1 gratuitous ARP");
  EXPECT_LT(r.duration_ms, 40);
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 1000), 1);
  EXPECT_EQ(driver_->counters().announcements_sent, 2u);
}

TEST_F(VipNetns, DefaultNicAndPrefixFromTheSubnetWithLabel) {
  Params p = {{"ip", "198.18.5.101"}, {"probe_ms", "0"}, {"label", "eth0:web"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "added 198.18.5.101/24 on eth0, 3 gratuitous ARPs");
  EXPECT_TRUE(has(a_, "inet 198.18.5.101/24 brd 198.18.5.255 scope global secondary eth0:web"))
      << addrs(a_);
  r = driver_->act(Action::kMonitor, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  r = driver_->act(Action::kStop, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_FALSE(has(a_, "198.18.5.101")) << addrs(a_);
}

TEST_F(VipNetns, ConflictRefusedWithoutTakeoverTakenWithIt) {
  ASSERT_EQ(sh("ip -n " + b_ + " addr add 198.18.5.100/24 dev eth0"), 0);
  Params p = {{"ip", "198.18.5.100"}, {"nic", "eth0"}, {"probe_ms", "200"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric) << r.message;
  EXPECT_EQ(r.message,
            "198.18.5.100 is already answered by 02:00:00:00:05:0b on eth0 (set takeover: true "
            "to take it)");
  EXPECT_LT(r.duration_ms, 200);  // the answer ends the probe
  EXPECT_FALSE(has(a_, "198.18.5.100")) << addrs(a_);
  EXPECT_EQ(driver_->counters().conflicts_detected, 1u);
  EXPECT_EQ(driver_->counters().announcements_sent, 0u);

  p["takeover"] = "true";
  r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message,
            "added 198.18.5.100/24 on eth0, 3 gratuitous ARPs (taken over from "
            "02:00:00:00:05:0b)");
  EXPECT_TRUE(has(a_, "inet 198.18.5.100/24")) << addrs(a_);
  EXPECT_EQ(driver_->counters().conflicts_detected, 2u);
}

TEST_F(VipNetns, Ipv6StartAnnouncesMonitorStop) {
  Capture cap(b_);
  Params p = {{"ip", "2001:2:0:5::100"}, {"arp_interval_ms", "50"}, {"probe_ms", "100"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "added 2001:2:0:5::100/64 on eth0, 3 unsolicited neighbour advertisements");
  EXPECT_GE(cap.count(is_dad_ns("2001:2:0:5::100"), 1, 1000), 1);
  EXPECT_EQ(cap.count(is_unsolicited_na("2001:2:0:5::100"), 3, 2000), 3);
  EXPECT_EQ(cap.count(is_unsolicited_na("2001:2:0:5::100"), 1, 200), 0);
  // Added without the kernel's DAD: usable at once, not tentative.
  std::string a = addrs(a_);
  size_t at = a.find("inet6 2001:2:0:5::100/64 scope global nodad");
  ASSERT_NE(at, std::string::npos) << a;
  std::string line = a.substr(at, a.find('\n', at) - at);
  EXPECT_EQ(line.find("tentative"), std::string::npos) << line;
  EXPECT_EQ(driver_->counters().announcements_sent, 3u);
  r = driver_->act(Action::kMonitor, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "2001:2:0:5::100/64 on eth0");
  r = driver_->act(Action::kStop, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "removed 2001:2:0:5::100/64 from eth0");
  EXPECT_FALSE(has(a_, "2001:2:0:5::100")) << addrs(a_);
  r = driver_->act(Action::kMonitor, p);
  EXPECT_EQ(r.ocf, OcfCode::kNotRunning) << r.message;
  EXPECT_EQ(r.message, "2001:2:0:5::100 is not on any interface");
}

TEST_F(VipNetns, Ipv6ConflictRefused) {
  ASSERT_EQ(sh("ip -n " + b_ + " addr add 2001:2:0:5::100/64 dev eth0 nodad"), 0);
  Params p = {{"ip", "2001:2:0:5::100"}, {"nic", "eth0"}, {"probe_ms", "300"}};
  ActionResult r = driver_->act(Action::kStart, p);
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric) << r.message;
  EXPECT_EQ(r.message,
            "2001:2:0:5::100 is already answered by 02:00:00:00:05:0b on eth0 (set takeover: "
            "true to take it)");
  EXPECT_FALSE(has(a_, "2001:2:0:5::100")) << addrs(a_);
  EXPECT_EQ(driver_->counters().conflicts_detected, 1u);
}

TEST_F(VipNetns, BadNicAndNoSubnet) {
  ActionResult r = driver_->act(Action::kStart, {{"ip", "198.18.5.100"}, {"nic", "nope0"}});
  EXPECT_EQ(r.ocf, OcfCode::kErrInstalled) << r.message;
  EXPECT_EQ(r.message, "params.nic: no interface 'nope0' here");
  r = driver_->act(Action::kMonitor, {{"ip", "198.18.5.100"}, {"nic", "nope0"}});
  EXPECT_EQ(r.ocf, OcfCode::kNotRunning) << r.message;
  r = driver_->act(Action::kStart, {{"ip", "198.18.9.9"}});
  EXPECT_EQ(r.ocf, OcfCode::kErrInstalled) << r.message;
  EXPECT_EQ(r.message,
            "params.ip: no interface here has an address in the subnet of 198.18.9.9 (set nic "
            "and cidr_netmask)");
  r = driver_->act(Action::kStart, {{"ip", "198.18.5.100/24"}});
  EXPECT_EQ(r.ocf, OcfCode::kErrConfigured) << r.message;
  r = driver_->act(Action::kValidateAll, {{"ip", "198.18.5.100"}});
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "198.18.5.100/24 would go on eth0");
  r = driver_->act(Action::kMetaData, {});
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_NE(r.stdout_tail.find("<parameter name=\"takeover\">"), std::string::npos);
  r = driver_->act(Action::kPromote, {{"ip", "198.18.5.100"}});
  EXPECT_EQ(r.ocf, OcfCode::kErrUnimplemented) << r.message;
  ASSERT_EQ(sh("ip -n " + a_ + " link set eth0 down"), 0);
  r = driver_->act(Action::kStart, {{"ip", "198.18.5.100"}, {"nic", "eth0"}});
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric) << r.message;
  EXPECT_EQ(r.message, "cannot add 198.18.5.100: eth0 is down");
}

TEST_F(VipNetns, RemoveNowIsSynchronousAndCancelsAStartInFlight) {
  Params p = {{"ip", "198.18.5.100"}, {"probe_ms", "0"}, {"arp_count", "0"}};
  ActionResult r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  ASSERT_TRUE(has(a_, "198.18.5.100"));
  EXPECT_TRUE(driver_->remove_now(p).ok());
  EXPECT_FALSE(has(a_, "198.18.5.100")) << addrs(a_);
  EXPECT_TRUE(driver_->remove_now(p).ok());  // absent: fine

  // A start waiting in its probe fails and adds nothing.
  p["probe_ms"] = "2000";
  auto fut = driver_->start_action(Action::kStart, p, "vip1");
  EXPECT_TRUE(driver_->remove_now(p).ok());
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  r = fut.get();
  EXPECT_EQ(r.ocf, OcfCode::kErrGeneric) << r.message;
  EXPECT_EQ(r.message,
            "start of 198.18.5.100 cancelled before the address was added (removed by a stop "
            "or a lost hold)");
  EXPECT_FALSE(has(a_, "198.18.5.100")) << addrs(a_);
}

// The VIP guard, a real `vigil-agent __vip-guard` process: it removes a guarded address when the
// hold ends without renewal (the driver itself does nothing here, as a hung agent would
// not), a guard that dies is started again and told everything, and when its agent goes
// (the driver destroyed, as when the process dies) it removes what it guarded and exits.
TEST_F(VipNetns, GuardRemovesTheAddressWhenTheHoldEndsOrItsAgentGoes) {
  Params p = {{"ip", "198.18.5.100"}, {"probe_ms", "0"}, {"arp_count", "0"}};
  driver_->guard_vip = true;
  driver_->enable_guard(VIGIL_AGENT_BINARY);
  driver_->hold_for(500);
  ActionResult r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  const pid_t first = driver_->guard_pid();
  ASSERT_GT(first, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  driver_->hold_for(500);  // renewed: still there 150 ms after the first hold would end
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(has(a_, "198.18.5.100")) << addrs(a_);
  // Not renewed: gone within a little more than the hold.
  EXPECT_TRUE(gone_within(a_, "198.18.5.100", std::chrono::seconds(1))) << addrs(a_);

  // The guard is killed: another one starts (after 1 s) and is told of the address.
  driver_->hold_for(60000);
  r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  pid_t second = -1;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    second = driver_->guard_pid();
    if (second > 0 && second != first) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(second, 0);
  ASSERT_NE(second, first);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(has(a_, "198.18.5.100")) << addrs(a_);
  driver_->hold_for(0);  // no hold: the new guard removes what it was told of
  EXPECT_TRUE(gone_within(a_, "198.18.5.100", std::chrono::seconds(1))) << addrs(a_);

  // Its agent goes: the guard removes the address and exits.
  driver_->hold_for(60000);
  r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  ASSERT_EQ(driver_->guard_pid(), second);
  driver_.reset();
  until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((has(a_, "198.18.5.100") || ::kill(second, 0) == 0) &&
         std::chrono::steady_clock::now() < until) {
    ::waitpid(second, nullptr, WNOHANG);  // this process spawned it: reap it here
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(has(a_, "198.18.5.100")) << addrs(a_);
  EXPECT_NE(::kill(second, 0), 0) << "the guard outlived its agent";
}

TEST_F(VipNetns, RefreshWhileRunningStopsWithStop) {
  Capture cap(b_);
  Params p = {
      {"ip", "198.18.5.100"}, {"probe_ms", "0"}, {"arp_count", "1"}, {"arp_refresh_ms", "100"}};
  ActionResult r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(r.message, "added 198.18.5.100/24 on eth0, 1 gratuitous ARP, again every 100 ms");
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 3, 1500), 3);
  r = driver_->act(Action::kStop, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  cap.count([](const std::string&) { return false; }, 1, 20);  // drain what was in flight
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 250), 0);
}

TEST_F(VipNetns, ClaimWhileRunningIsCountedAndAnnouncedAgain) {
  Capture cap(b_);
  Params p = {
      {"ip", "198.18.5.100"}, {"probe_ms", "0"}, {"arp_count", "1"}, {"arp_refresh_ms", "60000"}};
  ActionResult r = driver_->act(Action::kStart, p);
  ASSERT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 1000), 1);
  // B claims the VIP with a gratuitous ARP of its own.
  int fd = in_netns(b_, [] { return ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); });
  ASSERT_GE(fd, 0);
  int ifindex = in_netns(b_, [] { return static_cast<int>(::if_nametoindex("eth0")); });
  auto claim = [&] {
    std::string f = build_gratuitous_arp(kMacB, ip("198.18.5.100"));
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xff, 6);
    return ::sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  };
  ASSERT_EQ(claim(), static_cast<ssize_t>(kArpFrameBytes));
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 1000), 1);  // at once, not in 60 s
  EXPECT_EQ(driver_->counters().conflicts_detected, 1u);
  ASSERT_EQ(claim(), static_cast<ssize_t>(kArpFrameBytes));  // again: counted, not answered
  EXPECT_EQ(cap.count(is_garp("198.18.5.100"), 1, 200), 0);
  EXPECT_EQ(driver_->counters().conflicts_detected, 2u);
  EXPECT_EQ(driver_->counters().announcements_sent, 2u);
  ::close(fd);
  r = driver_->act(Action::kStop, p);
  EXPECT_EQ(r.ocf, OcfCode::kSuccess) << r.message;
}

}  // namespace
}  // namespace vigil::net
