// The `vip` resource class: parameters, interface choice and ARP/NDP packets (pure), and the
// driver that probes, adds by rtnetlink, announces and removes the address (I/O).
// clang-format off
#include <utility>  // first: Boost 1.74's asio headers miss it under g++ 12
// clang-format on
#include "net/vip.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <netpacket/packet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "net/vip_guard.h"

namespace vigil::net {

namespace asio = boost::asio;
using exec::Action;
using exec::ActionRequest;
using exec::ActionResult;
using exec::OcfCode;

namespace {

constexpr size_t kMaxFrameBytes = 65535;
constexpr size_t kEthHeaderBytes = 14;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr uint8_t kIcmpv6NextHeader = 58;
constexpr uint8_t kNdHopLimit = 255;
constexpr uint8_t kTypeNs = 135;
constexpr uint8_t kTypeNa = 136;
constexpr uint8_t kOptSourceLla = 1;
constexpr uint8_t kOptTargetLla = 2;
constexpr MacAddress kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr size_t kMaxLabelChars = 15;  // IFNAMSIZ - 1

// --- byte helpers ---

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xff));
}
void put_raw(std::string& s, const uint8_t* p, size_t n) {
  s.append(reinterpret_cast<const char*>(p), n);
}
uint8_t byte_at(std::string_view s, size_t off) { return static_cast<uint8_t>(s[off]); }
uint16_t get16(std::string_view s, size_t off) {
  return static_cast<uint16_t>((byte_at(s, off) << 8) | byte_at(s, off + 1));
}
template <size_t N>
std::array<uint8_t, N> get_array(std::string_view s, size_t off) {
  std::array<uint8_t, N> a{};
  std::memcpy(a.data(), s.data() + off, N);
  return a;
}
IpAddress ipv4_at(std::string_view s, size_t off) {
  IpAddress ip;
  std::memcpy(ip.bytes.data(), s.data() + off, 4);
  return ip;
}
IpAddress ipv6_at(std::string_view s, size_t off) {
  IpAddress ip;
  ip.v6 = true;
  std::memcpy(ip.bytes.data(), s.data() + off, 16);
  return ip;
}
bool is_zero(const IpAddress& ip) {
  return std::all_of(ip.bytes.begin(), ip.bytes.begin() + static_cast<long>(ip.size()),
                     [](uint8_t b) { return b == 0; });
}
bool is_multicast(const IpAddress& ip) {
  return ip.v6 ? ip.bytes[0] == 0xff : (ip.bytes[0] & 0xf0) == 0xe0;
}
IpAddress all_nodes() {
  IpAddress ip;
  ip.v6 = true;
  ip.bytes[0] = 0xff;
  ip.bytes[1] = 0x02;
  ip.bytes[15] = 0x01;
  return ip;
}
// RFC 2464 §7: 33:33 and the last four bytes of the IPv6 multicast address.
MacAddress multicast_mac(const IpAddress& group) {
  return {0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]};
}
std::string hex16(uint16_t v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%04x", v);
  return b;
}

void put_eth(std::string& s, const MacAddress& dst, const MacAddress& src, uint16_t type) {
  put_raw(s, dst.data(), 6);
  put_raw(s, src.data(), 6);
  put16(s, type);
}

std::string build_arp(const MacAddress& mac, ArpOp op, const IpAddress& spa, const MacAddress& tha,
                      const IpAddress& tpa) {
  std::string f;
  f.reserve(kArpFrameBytes);
  put_eth(f, kBroadcastMac, mac, kEtherTypeArp);
  put16(f, 1);       // htype: Ethernet
  put16(f, 0x0800);  // ptype: IPv4
  f.push_back(6);
  f.push_back(4);
  put16(f, static_cast<uint16_t>(op));
  put_raw(f, mac.data(), 6);
  put_raw(f, spa.bytes.data(), 4);
  put_raw(f, tha.data(), 6);
  put_raw(f, tpa.bytes.data(), 4);
  return f;
}

// IPv6 header + ICMPv6 body with its checksum filled in.
std::string build_nd(const MacAddress& eth_dst, const MacAddress& eth_src, const IpAddress& src,
                     const IpAddress& dst, std::string icmp) {
  uint16_t sum = icmpv6_checksum(src, dst, icmp);
  icmp[2] = static_cast<char>(sum >> 8);
  icmp[3] = static_cast<char>(sum & 0xff);
  std::string f;
  f.reserve(kEthHeaderBytes + kIpv6HeaderBytes + icmp.size());
  put_eth(f, eth_dst, eth_src, kEtherTypeIpv6);
  f.push_back(0x60);  // version 6, traffic class 0, flow label 0
  f.push_back(0);
  f.push_back(0);
  f.push_back(0);
  put16(f, static_cast<uint16_t>(icmp.size()));
  f.push_back(static_cast<char>(kIcmpv6NextHeader));
  f.push_back(static_cast<char>(kNdHopLimit));
  put_raw(f, src.bytes.data(), 16);
  put_raw(f, dst.bytes.data(), 16);
  f += icmp;
  return f;
}

// --- parameter helpers ---

Status param_error(std::string_view name, const std::string& what) {
  return err(Errc::kInvalidArgument, "params." + std::string(name) + ": " + what);
}

Result<int> parse_int(std::string_view name, const std::string& v, int lo, int hi) {
  std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  if (v.empty() || v.size() > 10 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::unexpected(param_error(name, "'" + v + "' is not a whole number " + range));
  }
  long long n = std::stoll(v);
  if (n < lo || n > hi) {
    return std::unexpected(param_error(name, v + " is out of range " + range));
  }
  return static_cast<int>(n);
}

// Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or blank.
bool valid_ifname(std::string_view n) {
  if (n.empty() || n.size() > kMaxLabelChars || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return c > ' ' && c < 0x7f && c != '/' && c != ':'; });
}

const char* kKnownParams[] = {
    "ip",       "cidr_netmask", "nic", "label", "arp_count", "arp_interval_ms", "arp_refresh_ms",
    "probe_ms", "takeover"};

std::string unknown_param_hint(std::string_view name) {
  static const std::map<std::string_view, std::string_view> kHints = {{"interface", "nic"},
                                                                      {"iface", "nic"},
                                                                      {"dev", "nic"},
                                                                      {"device", "nic"},
                                                                      {"netmask", "cidr_netmask"},
                                                                      {"prefix", "cidr_netmask"},
                                                                      {"cidr", "cidr_netmask"},
                                                                      {"broadcast", ""},
                                                                      {"iflabel", "label"}};
  auto it = kHints.find(name);
  if (it == kHints.end() || it->second.empty()) return "";
  return " (did you mean '" + std::string(it->second) + "'?)";
}

}  // namespace

// --- addresses ---

std::string mac_to_string(const MacAddress& mac) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return b;
}

std::string IpAddress::to_string() const {
  char b[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), b, sizeof b)) return "?";
  return b;
}

Result<IpAddress> parse_ip_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return err(Errc::kInvalidArgument, "'" + std::string(text) + "' is not an IP address");
  }
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) return ip;
  return err(Errc::kInvalidArgument, "'" + s + "' is not an IPv4 or IPv6 address");
}

bool same_subnet(const IpAddress& a, const IpAddress& b, int prefix_len) {
  if (a.v6 != b.v6 || prefix_len < 0 || prefix_len > a.max_prefix()) return false;
  int full = prefix_len / 8;
  for (int i = 0; i < full; ++i) {
    if (a.bytes[i] != b.bytes[i]) return false;
  }
  int rest = prefix_len % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

// --- parameters ---

Result<VipParams> parse_vip_params(const std::map<std::string, std::string>& params) {
  for (const auto& [k, v] : params) {
    if (std::find(std::begin(kKnownParams), std::end(kKnownParams), k) == std::end(kKnownParams)) {
      return std::unexpected(
          param_error(k, "unknown parameter of a vip resource" + unknown_param_hint(k) +
                             " (known: ip, cidr_netmask, nic, label, arp_count, arp_interval_ms, "
                             "arp_refresh_ms, probe_ms, takeover)"));
    }
  }
  VipParams p;
  auto get = [&](const char* k) -> const std::string* {
    auto it = params.find(k);
    return it == params.end() ? nullptr : &it->second;
  };

  const std::string* ip = get("ip");
  if (!ip) return std::unexpected(param_error("ip", "required (the virtual IP: 198.18.0.100)"));
  if (size_t slash = ip->find('/'); slash != std::string::npos) {
    return std::unexpected(
        param_error("ip", "'" + *ip + "' has a prefix: give the address alone and the prefix as " +
                              "cidr_netmask: " + ip->substr(slash + 1)));
  }
  auto addr = parse_ip_address(*ip);
  if (!addr) return std::unexpected(param_error("ip", addr.error().message()));
  p.ip = *addr;
  if (is_zero(p.ip)) return std::unexpected(param_error("ip", "'" + *ip + "' is unspecified"));
  if (is_multicast(p.ip)) {
    return std::unexpected(param_error("ip", "'" + *ip + "' is a multicast address"));
  }
  if (!p.ip.v6 && p.ip.bytes[0] == 255 && p.ip.bytes[1] == 255 && p.ip.bytes[2] == 255 &&
      p.ip.bytes[3] == 255) {
    return std::unexpected(param_error("ip", "'" + *ip + "' is the broadcast address"));
  }

  if (const std::string* v = get("cidr_netmask")) {
    auto n = parse_int("cidr_netmask", *v, 1, p.ip.max_prefix());
    if (!n) return std::unexpected(n.error());
    p.prefix_len = *n;
  }
  if (const std::string* v = get("nic")) {
    if (!valid_ifname(*v)) {
      return std::unexpected(
          param_error("nic", "'" + *v +
                                 "' is not an interface name (1-15 characters, no '/', ':' or "
                                 "blanks)"));
    }
    p.nic = *v;
  }
  if (const std::string* v = get("label")) {
    if (p.ip.v6) return std::unexpected(param_error("label", "only for IPv4 addresses"));
    if (v->empty() || v->size() > kMaxLabelChars) {
      return std::unexpected(param_error("label", "'" + *v + "' must be 1-15 characters"));
    }
    if (!std::all_of(v->begin(), v->end(), [](char c) { return c > ' ' && c < 0x7f; })) {
      return std::unexpected(param_error("label", "'" + *v + "' holds blanks or controls"));
    }
    if (v->find(':') == std::string::npos) {
      return std::unexpected(param_error(
          "label", "'" + *v + "' must start with the interface name and ':' (eth0:web)"));
    }
    if (!p.nic.empty() && v->rfind(p.nic + ":", 0) != 0) {
      return std::unexpected(param_error(
          "label", "'" + *v + "' must start with '" + p.nic + ":' (the kernel's rule)"));
    }
    p.label = *v;
  }
  struct IntParam {
    const char* name;
    int* out;
    int lo, hi;
  };
  for (const IntParam& ip_ : {IntParam{"arp_count", &p.arp_count, 0, 100},
                              IntParam{"arp_interval_ms", &p.arp_interval_ms, 10, 10000},
                              IntParam{"probe_ms", &p.probe_ms, 0, 10000}}) {
    if (const std::string* v = get(ip_.name)) {
      auto n = parse_int(ip_.name, *v, ip_.lo, ip_.hi);
      if (!n) return std::unexpected(n.error());
      *ip_.out = *n;
    }
  }
  if (const std::string* v = get("arp_refresh_ms")) {
    if (*v != "0") {
      auto n = parse_int("arp_refresh_ms", *v, 100, 86400000);
      if (!n) {
        return std::unexpected(
            param_error("arp_refresh_ms", "'" + *v + "' must be 0 (off) or 100..86400000"));
      }
      p.arp_refresh_ms = *n;
    }
  }
  if (const std::string* v = get("takeover")) {
    if (*v == "true") {
      p.takeover = true;
    } else if (*v != "false") {
      return std::unexpected(param_error("takeover", "'" + *v + "' must be true or false"));
    }
  }
  return p;
}

// --- interface choice ---

const LinkInfo* NetInventory::link_by_name(std::string_view name) const {
  for (const auto& l : links) {
    if (l.name == name) return &l;
  }
  return nullptr;
}
const LinkInfo* NetInventory::link_by_index(int index) const {
  for (const auto& l : links) {
    if (l.index == index) return &l;
  }
  return nullptr;
}

Result<VipTarget> resolve_vip(const VipParams& p, const NetInventory& inv) {
  VipTarget t;
  const LinkInfo* link = nullptr;
  if (!p.nic.empty()) {
    link = inv.link_by_name(p.nic);
    if (!link) return err(Errc::kNotFound, "params.nic: no interface '" + p.nic + "' here");
  }
  // The address holding the subnet: on `link` if given, else anywhere; the longest prefix
  // wins, then the lowest interface index; the VIP itself only as a last resort.
  const AddrInfo* best = nullptr;
  bool best_is_vip = true;
  for (const auto& a : inv.addrs) {
    if (a.ip.v6 != p.ip.v6 || (link && a.ifindex != link->index)) continue;
    if (!inv.link_by_index(a.ifindex) || !same_subnet(a.ip, p.ip, a.prefix_len)) continue;
    bool is_vip = a.ip == p.ip;
    bool better = !best || (best_is_vip && !is_vip) ||
                  (best_is_vip == is_vip &&
                   (a.prefix_len > best->prefix_len ||
                    (a.prefix_len == best->prefix_len && a.ifindex < best->ifindex)));
    if (better) {
      best = &a;
      best_is_vip = is_vip;
    }
  }
  if (!link) {
    if (!best) {
      return err(Errc::kNotFound,
                 "params.ip: no interface here has an address in the subnet "
                 "of " +
                     p.ip.to_string() + " (set nic and cidr_netmask)");
    }
    link = inv.link_by_index(best->ifindex);
  }
  t.link = *link;
  t.prefix_len = p.prefix_len ? *p.prefix_len : best ? best->prefix_len : p.ip.max_prefix();
  for (const auto& a : inv.addrs) {
    if (a.ifindex == link->index && a.ip == p.ip) t.present = a;
  }
  if (!p.label.empty() && p.label.rfind(link->name + ":", 0) != 0) {
    return err(Errc::kInvalidArgument, "params.label: '" + p.label + "' must start with '" +
                                           link->name + ":' (the kernel's rule)");
  }
  return t;
}

// --- packets ---

std::string build_gratuitous_arp(const MacAddress& mac, const IpAddress& vip, ArpOp op) {
  MacAddress tha = op == ArpOp::kReply ? mac : MacAddress{};
  return build_arp(mac, op, vip, tha, vip);
}

std::string build_arp_probe(const MacAddress& mac, const IpAddress& vip) {
  return build_arp(mac, ArpOp::kRequest, IpAddress{}, MacAddress{}, vip);
}

Result<ArpFrame> parse_arp_frame(std::string_view f) {
  if (f.size() < kArpFrameBytes) {
    return err(Errc::kInvalidArgument,
               "ARP frame of " + std::to_string(f.size()) + " bytes (at least 42)");
  }
  if (f.size() > kMaxFrameBytes) return err(Errc::kInvalidArgument, "frame over 64 KiB");
  if (uint16_t type = get16(f, 12); type != kEtherTypeArp) {
    return err(Errc::kInvalidArgument, "not ARP: ethertype " + hex16(type));
  }
  if (get16(f, 14) != 1 || get16(f, 16) != 0x0800 || byte_at(f, 18) != 6 || byte_at(f, 19) != 4) {
    return err(Errc::kInvalidArgument, "ARP not for IPv4 over Ethernet");
  }
  ArpFrame a;
  a.op = get16(f, 20);
  if (a.op != 1 && a.op != 2) {
    return err(Errc::kInvalidArgument, "ARP opcode " + std::to_string(a.op));
  }
  a.eth_dst = get_array<6>(f, 0);
  a.eth_src = get_array<6>(f, 6);
  a.sha = get_array<6>(f, 22);
  a.spa = ipv4_at(f, 28);
  a.tha = get_array<6>(f, 32);
  a.tpa = ipv4_at(f, 38);
  return a;
}

Claim arp_claim(const ArpFrame& a, const IpAddress& vip, const MacAddress& ours) {
  if (vip.v6 || a.sha == ours || a.eth_src == ours) return Claim::kNone;
  if (a.spa == vip) return Claim::kOwner;
  if (is_zero(a.spa) && a.op == 1 && a.tpa == vip) return Claim::kProbe;
  return Claim::kNone;
}

IpAddress solicited_node(const IpAddress& ip) {
  IpAddress s;
  s.v6 = true;
  s.bytes[0] = 0xff;
  s.bytes[1] = 0x02;
  s.bytes[11] = 0x01;
  s.bytes[12] = 0xff;
  s.bytes[13] = ip.bytes[13];
  s.bytes[14] = ip.bytes[14];
  s.bytes[15] = ip.bytes[15];
  return s;
}

uint16_t icmpv6_checksum(const IpAddress& src, const IpAddress& dst, std::string_view icmp) {
  uint64_t sum = 0;
  auto add = [&sum](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
    if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  };
  add(src.bytes.data(), 16);
  add(dst.bytes.data(), 16);
  uint64_t len = icmp.size();
  sum += (len >> 16) + (len & 0xffff) + kIcmpv6NextHeader;
  add(reinterpret_cast<const uint8_t*>(icmp.data()), icmp.size());
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

std::string build_unsolicited_na(const MacAddress& mac, const IpAddress& vip) {
  std::string icmp;
  icmp.push_back(static_cast<char>(kTypeNa));
  icmp.push_back(0);                        // code
  put16(icmp, 0);                           // checksum, filled in by build_nd
  icmp.push_back(static_cast<char>(0x20));  // R=0 S=0 O=1
  icmp.append(3, '\0');
  put_raw(icmp, vip.bytes.data(), 16);
  icmp.push_back(static_cast<char>(kOptTargetLla));
  icmp.push_back(1);  // length in units of 8 bytes
  put_raw(icmp, mac.data(), 6);
  IpAddress dst = all_nodes();
  return build_nd(multicast_mac(dst), mac, vip, dst, std::move(icmp));
}

std::string build_dad_ns(const MacAddress& mac, const IpAddress& vip) {
  std::string icmp;
  icmp.push_back(static_cast<char>(kTypeNs));
  icmp.push_back(0);
  put16(icmp, 0);
  icmp.append(4, '\0');  // reserved
  put_raw(icmp, vip.bytes.data(), 16);
  IpAddress unspecified;
  unspecified.v6 = true;
  IpAddress dst = solicited_node(vip);
  return build_nd(multicast_mac(dst), mac, unspecified, dst, std::move(icmp));
}

Result<NdFrame> parse_nd_frame(std::string_view f) {
  constexpr size_t kMin = kEthHeaderBytes + kIpv6HeaderBytes + 24;
  if (f.size() < kMin) {
    return err(Errc::kInvalidArgument,
               "ND frame of " + std::to_string(f.size()) + " bytes (at least 78)");
  }
  if (f.size() > kMaxFrameBytes) return err(Errc::kInvalidArgument, "frame over 64 KiB");
  if (uint16_t type = get16(f, 12); type != kEtherTypeIpv6) {
    return err(Errc::kInvalidArgument, "not IPv6: ethertype " + hex16(type));
  }
  std::string_view ip6 = f.substr(kEthHeaderBytes);
  if ((byte_at(ip6, 0) >> 4) != 6) return err(Errc::kInvalidArgument, "IP version is not 6");
  size_t payload = get16(ip6, 4);
  if (kIpv6HeaderBytes + payload > ip6.size()) {
    return err(Errc::kInvalidArgument,
               "IPv6 payload length " + std::to_string(payload) + " beyond the frame");
  }
  if (byte_at(ip6, 6) != kIcmpv6NextHeader) {
    return err(Errc::kInvalidArgument,
               "not ICMPv6 (next header " + std::to_string(byte_at(ip6, 6)) + ")");
  }
  if (byte_at(ip6, 7) != kNdHopLimit) {
    return err(Errc::kInvalidArgument,
               "hop limit " + std::to_string(byte_at(ip6, 7)) + " (RFC 4861 requires 255)");
  }
  NdFrame nd;
  nd.eth_dst = get_array<6>(f, 0);
  nd.eth_src = get_array<6>(f, 6);
  nd.src = ipv6_at(ip6, 8);
  nd.dst = ipv6_at(ip6, 24);
  std::string_view icmp = ip6.substr(kIpv6HeaderBytes, payload);
  if (icmp.size() < 24) {
    return err(Errc::kInvalidArgument,
               "ICMPv6 ND message of " + std::to_string(icmp.size()) + " bytes (at least 24)");
  }
  nd.type = byte_at(icmp, 0);
  if (nd.type != kTypeNs && nd.type != kTypeNa) {
    return err(Errc::kInvalidArgument, "ICMPv6 type " + std::to_string(nd.type));
  }
  if (byte_at(icmp, 1) != 0) return err(Errc::kInvalidArgument, "ICMPv6 code is not 0");
  if (icmpv6_checksum(nd.src, nd.dst, icmp) != 0) {
    return err(Errc::kInvalidArgument, "ICMPv6 checksum mismatch");
  }
  if (nd.type == kTypeNa) {
    uint8_t flags = byte_at(icmp, 4);
    nd.router = flags & 0x80;
    nd.solicited = flags & 0x40;
    nd.override_flag = flags & 0x20;
  }
  nd.target = ipv6_at(icmp, 8);
  if (is_multicast(nd.target)) return err(Errc::kInvalidArgument, "multicast target");
  if (nd.type == kTypeNa && nd.solicited && is_multicast(nd.dst)) {
    return err(Errc::kInvalidArgument, "solicited NA to a multicast address");
  }
  const uint8_t want_opt = nd.type == kTypeNs ? kOptSourceLla : kOptTargetLla;
  for (size_t off = 24; off < icmp.size();) {
    if (icmp.size() - off < 2) return err(Errc::kInvalidArgument, "truncated ND option");
    size_t len = size_t{byte_at(icmp, off + 1)} * 8;
    if (len == 0) return err(Errc::kInvalidArgument, "ND option of length 0");
    if (len > icmp.size() - off) return err(Errc::kInvalidArgument, "ND option past the end");
    if (byte_at(icmp, off) == want_opt && len == 8) nd.link_addr = get_array<6>(icmp, off + 2);
    off += len;
  }
  if (nd.type == kTypeNs && is_zero(nd.src) && nd.link_addr) {
    return err(Errc::kInvalidArgument, "DAD NS with a source link-layer option");
  }
  return nd;
}

Claim nd_claim(const NdFrame& nd, const IpAddress& vip, const MacAddress& ours) {
  if (!vip.v6 || nd.eth_src == ours || (nd.link_addr && *nd.link_addr == ours)) {
    return Claim::kNone;
  }
  if (nd.target != vip) return Claim::kNone;
  if (nd.type == kTypeNa) return Claim::kOwner;
  if (nd.type == kTypeNs && is_zero(nd.src)) return Claim::kProbe;
  return Claim::kNone;
}

// --- rtnetlink ---

namespace {

struct NlSockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct NlCacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct NlAddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtnlAddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
using NlSock = std::unique_ptr<nl_sock, NlSockFree>;
using NlCache = std::unique_ptr<nl_cache, NlCacheFree>;

Result<NlSock> route_socket() {
  NlSock s(nl_socket_alloc());
  if (!s) return err(Errc::kResourceExhausted, "netlink: cannot allocate a socket");
  if (int e = nl_connect(s.get(), NETLINK_ROUTE); e < 0) {
    return err(Errc::kIoError, std::string("netlink: connect: ") + nl_geterror(e));
  }
  return s;
}

bool to_ip(nl_addr* a, IpAddress* out) {
  if (!a) return false;
  int fam = nl_addr_get_family(a);
  unsigned len = nl_addr_get_len(a);
  if (!((fam == AF_INET && len == 4) || (fam == AF_INET6 && len == 16))) return false;
  *out = IpAddress{};
  out->v6 = fam == AF_INET6;
  std::memcpy(out->bytes.data(), nl_addr_get_binary_addr(a), len);
  return true;
}

// One address object for add/delete: local address with prefix, interface, and label.
std::unique_ptr<rtnl_addr, RtnlAddrPut> make_addr(int ifindex, const IpAddress& ip, int prefix) {
  std::unique_ptr<rtnl_addr, RtnlAddrPut> a(rtnl_addr_alloc());
  if (!a) return a;
  std::unique_ptr<nl_addr, NlAddrPut> local(
      nl_addr_build(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), ip.size()));
  if (!local) return nullptr;
  rtnl_addr_set_ifindex(a.get(), ifindex);
  if (rtnl_addr_set_local(a.get(), local.get()) < 0) return nullptr;  // takes its own ref
  rtnl_addr_set_prefixlen(a.get(), prefix);                           // after set_local
  return a;
}

std::string addr_text(const IpAddress& ip, int prefix) {
  return ip.to_string() + "/" + std::to_string(prefix);
}

Status add_address(const LinkInfo& link, const IpAddress& ip, int prefix,
                   const std::string& label) {
  ASSIGN_OR_RETURN(NlSock s, route_socket());
  std::string what = "netlink: adding " + addr_text(ip, prefix) + " to " + link.name + ": ";
  auto a = make_addr(link.index, ip, prefix);
  if (!a) return err(Errc::kResourceExhausted, what + "out of memory");
  if (!ip.v6) {
    if (prefix < 31) {
      IpAddress brd = ip;
      for (int bit = prefix; bit < 32; ++bit) brd.bytes[bit / 8] |= uint8_t(0x80 >> (bit % 8));
      std::unique_ptr<nl_addr, NlAddrPut> b(nl_addr_build(AF_INET, brd.bytes.data(), 4));
      if (b) rtnl_addr_set_broadcast(a.get(), b.get());
    }
    if (!label.empty()) rtnl_addr_set_label(a.get(), label.c_str());
  } else {
    // Our own DAD ran (probe_ms); the kernel's would keep the address tentative ~1 s.
    rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
  }
  int e = rtnl_addr_add(s.get(), a.get(), NLM_F_EXCL);
  if (e < 0 && e != -NLE_EXIST) return err(Errc::kIoError, what + nl_geterror(e));
  return Status();
}

// Gone already (a race with another remover, or the interface went away): fine.
Status delete_at(int ifindex, const std::string& where, const IpAddress& ip, int prefix) {
  ASSIGN_OR_RETURN(NlSock s, route_socket());
  std::string what = "netlink: removing " + addr_text(ip, prefix) + " from " + where + ": ";
  auto a = make_addr(ifindex, ip, prefix);
  if (!a) return err(Errc::kResourceExhausted, what + "out of memory");
  int e = rtnl_addr_delete(s.get(), a.get(), 0);
  if (e < 0 && e != -NLE_NOADDR && e != -NLE_OBJ_NOTFOUND && e != -NLE_NODEV) {
    return err(Errc::kIoError, what + nl_geterror(e));
  }
  return Status();
}

Status delete_address(const LinkInfo& link, const AddrInfo& addr) {
  return delete_at(link.index, link.name, addr.ip, addr.prefix_len);
}

}  // namespace

Status remove_address(const GuardAddress& g) {
  return delete_at(g.ifindex, "ifindex " + std::to_string(g.ifindex), g.ip, g.prefix_len);
}

Result<NetInventory> read_net_inventory() {
  ASSIGN_OR_RETURN(NlSock s, route_socket());
  NetInventory inv;
  nl_cache* raw = nullptr;
  if (int e = rtnl_link_alloc_cache(s.get(), AF_UNSPEC, &raw); e < 0) {
    return err(Errc::kIoError, std::string("netlink: listing interfaces: ") + nl_geterror(e));
  }
  NlCache links(raw);
  for (nl_object* o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    LinkInfo li;
    li.index = rtnl_link_get_ifindex(l);
    const char* name = rtnl_link_get_name(l);
    li.name = name ? name : "";
    li.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
    nl_addr* mac = rtnl_link_get_addr(l);
    if (rtnl_link_get_arptype(l) == ARPHRD_ETHER && mac && nl_addr_get_len(mac) == 6) {
      li.ethernet = true;
      std::memcpy(li.mac.data(), nl_addr_get_binary_addr(mac), 6);
    }
    inv.links.push_back(std::move(li));
  }
  raw = nullptr;
  if (int e = rtnl_addr_alloc_cache(s.get(), &raw); e < 0) {
    return err(Errc::kIoError, std::string("netlink: listing addresses: ") + nl_geterror(e));
  }
  NlCache addrs(raw);
  for (nl_object* o = nl_cache_get_first(addrs.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    AddrInfo ai;
    if (!to_ip(rtnl_addr_get_local(a), &ai.ip)) continue;
    ai.ifindex = rtnl_addr_get_ifindex(a);
    ai.prefix_len = rtnl_addr_get_prefixlen(a);
    ai.flags = rtnl_addr_get_flags(a);
    const char* label = rtnl_addr_get_label(a);
    ai.label = label ? label : "";
    inv.addrs.push_back(std::move(ai));
  }
  return inv;
}

// --- the driver ---

namespace {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(ActionResult)>;

// A non-blocking AF_PACKET SOCK_RAW socket on `ifindex`; protocol 0 receives nothing (for
// sending only), otherwise it receives that ethertype (RFC 5227 probes, DAD).
Result<int> packet_socket(int ifindex, uint16_t proto, const std::string& ifname) {
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(proto));
  if (fd < 0) {
    return err(Errc::kIoError, "packet socket on " + ifname + ": " + std::strerror(errno));
  }
  if (proto != 0) {
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(proto);
    sll.sll_ifindex = ifindex;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
      int e = errno;
      ::close(fd);
      return err(Errc::kIoError, "binding a packet socket to " + ifname + ": " + strerror(e));
    }
  }
  return fd;
}

Status send_frame(int fd, const LinkInfo& link, const std::string& frame) {
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = link.index;
  to.sll_protocol = htons(get16(frame, 12));
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  ssize_t n =
      ::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  if (n < 0) return err(Errc::kIoError, "sending on " + link.name + ": " + strerror(errno));
  return Status();
}

std::string announcement_frame(const VipParams& p, const LinkInfo& link) {
  return p.ip.v6 ? build_unsolicited_na(link.mac, p.ip) : build_gratuitous_arp(link.mac, p.ip);
}
// "3 gratuitous ARPs", "1 unsolicited neighbour advertisement".
std::string announcements(const VipParams& p, int n) {
  return std::to_string(n) +
         (p.ip.v6 ? " unsolicited neighbour advertisement" : " gratuitous ARP") +
         (n == 1 ? "" : "s");
}

// One probe for the VIP (ARP probe, or DAD NS): sent at once and again halfway, then waits
// for another MAC to answer or probe for it. Owned by shared_ptr: pending handlers hold it.
struct Probe : std::enable_shared_from_this<Probe> {
  struct Outcome {
    bool cancelled = false;
    Claim claim = Claim::kNone;
    MacAddress other{};
    std::string error;  // the socket failed: the probe could not run
  };

  Probe(asio::io_context& io, VipParams p, LinkInfo l, int wait_ms)
      : sock(io),
        deadline(io),
        resend(io),
        params(std::move(p)),
        link(std::move(l)),
        wait_ms(wait_ms) {}

  void start(std::function<void(Outcome)> cb) {
    on_done = std::move(cb);
    auto fd = packet_socket(link.index, params.ip.v6 ? kEtherTypeIpv6 : kEtherTypeArp, link.name);
    if (!fd) return finish(Outcome{.error = fd.error().message()});
    sock.assign(*fd);
    auto self = shared_from_this();
    if (Status s = send_probe(); !s.ok()) return finish(Outcome{.error = s.message()});
    deadline.expires_after(std::chrono::milliseconds(wait_ms));
    deadline.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->finish(Outcome{});
    });
    if (wait_ms >= 20) {
      resend.expires_after(std::chrono::milliseconds(wait_ms / 2));
      resend.async_wait([self](const boost::system::error_code& ec) {
        if (!ec && !self->finished) (void)self->send_probe();
      });
    }
    wait_readable();
  }

  Status send_probe() {
    std::string f =
        params.ip.v6 ? build_dad_ns(link.mac, params.ip) : build_arp_probe(link.mac, params.ip);
    return send_frame(sock.native_handle(), link, f);
  }

  void wait_readable() {
    auto self = shared_from_this();
    sock.async_wait(asio::posix::stream_descriptor::wait_read,
                    [self](const boost::system::error_code& ec) {
                      if (ec || self->finished) return;
                      self->read_all();
                      if (!self->finished) self->wait_readable();
                    });
  }

  void read_all() {
    char buf[2048];
    for (int i = 0; i < 64 && !finished; ++i) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(sock.native_handle(), buf, sizeof buf, MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) return;  // EAGAIN, or an error the deadline will end
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      std::string_view frame(buf, static_cast<size_t>(n));
      if (params.ip.v6) {
        auto nd = parse_nd_frame(frame);
        if (!nd) continue;
        if (Claim c = nd_claim(*nd, params.ip, link.mac); c != Claim::kNone) {
          return finish(Outcome{.claim = c, .other = nd->link_addr.value_or(nd->eth_src)});
        }
      } else {
        auto arp = parse_arp_frame(frame);
        if (!arp) continue;
        if (Claim c = arp_claim(*arp, params.ip, link.mac); c != Claim::kNone) {
          return finish(Outcome{.claim = c, .other = arp->sha});
        }
      }
    }
  }

  void finish(Outcome o) {
    if (finished) return;
    finished = true;
    deadline.cancel();
    resend.cancel();
    boost::system::error_code ignored;
    sock.close(ignored);
    auto cb = std::move(on_done);
    if (cb) cb(o);
  }

  asio::posix::stream_descriptor sock;
  asio::steady_timer deadline, resend;
  VipParams params;
  LinkInfo link;
  int wait_ms;
  bool finished = false;
  std::function<void(Outcome)> on_done;
};

// While an IPv4 VIP runs with arp_refresh_ms set: every ARP from another MAC whose sender
// is the VIP (a host that took it, or a stale neighbour announcing it) calls `on_claim`.
// IPv6 has no watch: an ETH_P_IPV6 socket would copy every IPv6 packet of the interface.
struct ArpWatch : std::enable_shared_from_this<ArpWatch> {
  ArpWatch(asio::io_context& io, IpAddress v, LinkInfo l) : sock(io), vip(v), link(std::move(l)) {}

  Status start(std::function<void(const MacAddress&)> cb) {
    on_claim = std::move(cb);
    ASSIGN_OR_RETURN(int fd, packet_socket(link.index, kEtherTypeArp, link.name));
    sock.assign(fd);
    wait_readable();
    return Status();
  }
  void stop() {
    on_claim = nullptr;
    boost::system::error_code ignored;
    sock.close(ignored);
  }
  void wait_readable() {
    auto self = shared_from_this();
    sock.async_wait(asio::posix::stream_descriptor::wait_read,
                    [self](const boost::system::error_code& ec) {
                      if (ec || !self->on_claim) return;
                      self->read_all();
                      if (self->on_claim) self->wait_readable();
                    });
  }
  void read_all() {
    char buf[256];
    for (int i = 0; i < 64 && on_claim; ++i) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(sock.native_handle(), buf, sizeof buf, MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) return;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      auto arp = parse_arp_frame(std::string_view(buf, static_cast<size_t>(n)));
      if (arp && arp_claim(*arp, vip, link.mac) == Claim::kOwner) on_claim(arp->sha);
    }
  }

  asio::posix::stream_descriptor sock;
  IpAddress vip;
  LinkInfo link;
  std::function<void(const MacAddress&)> on_claim;
};

// The address(es) of the VIP now: on `nic` if set, else on any interface.
std::vector<AddrInfo> find_present(const VipParams& p, const NetInventory& inv) {
  std::vector<AddrInfo> out;
  const LinkInfo* nic = p.nic.empty() ? nullptr : inv.link_by_name(p.nic);
  if (!p.nic.empty() && !nic) return out;
  for (const auto& a : inv.addrs) {
    if (a.ip == p.ip && (!nic || a.ifindex == nic->index)) out.push_back(a);
  }
  return out;
}

std::string where(const VipParams& p) { return p.nic.empty() ? "any interface" : p.nic; }

constexpr const char* kMetaData = R"(<?xml version="1.0"?>
<resource-agent name="vip" version="1.0">
  <version>1.1</version>
  <shortdesc lang="en">Virtual IP address (built into Vigil)</shortdesc>
  <longdesc lang="en">Adds an IPv4 or IPv6 address to an interface by rtnetlink after an
ARP probe or DAD, and announces it with gratuitous ARP or unsolicited neighbour
advertisements.</longdesc>
  <parameters>
    <parameter name="ip" required="1"><content type="string"/></parameter>
    <parameter name="cidr_netmask"><content type="integer"/></parameter>
    <parameter name="nic"><content type="string"/></parameter>
    <parameter name="label"><content type="string"/></parameter>
    <parameter name="arp_count"><content type="integer" default="3"/></parameter>
    <parameter name="arp_interval_ms"><content type="integer" default="200"/></parameter>
    <parameter name="arp_refresh_ms"><content type="integer" default="0"/></parameter>
    <parameter name="probe_ms"><content type="integer" default="50"/></parameter>
    <parameter name="takeover"><content type="boolean" default="false"/></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s"/>
    <action name="validate-all" timeout="20s"/>
    <action name="meta-data" timeout="5s"/>
  </actions>
</resource-agent>
)";

}  // namespace

struct VipDriver::Impl : std::enable_shared_from_this<Impl> {
  explicit Impl(asio::io_context& io_) : io(io_) {}

  // Per resource: counters, and what runs in the background after a start.
  struct Res {
    VipCounters counters;
    uint64_t gen = 0;  // bumped by start, stop and remove_now: stale callbacks see it changed
    std::unique_ptr<asio::steady_timer> timer;  // next announcement (burst or refresh)
    bool announcing = false;
    std::shared_ptr<Probe> probe;     // a start's probe in flight
    std::shared_ptr<ArpWatch> watch;  // while running with arp_refresh_ms (IPv4)
    Clock::time_point last_reannounce{};
    bool guarded = false;  // its last start was guarded (ResourceSpec::guard_vip)
  };

  asio::io_context& io;
  bool shut_down = false;
  std::map<std::string, Res> res;
  std::string guard_exe;               // enable_guard()
  std::unique_ptr<GuardClient> guard;  // started with the first guarded start
  int64_t hold_until = 0;
  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  }

  // The guard, started if needed, for a resource that wants one; nullptr otherwise.
  GuardClient* guard_for(const exec::ResourceSpec& spec) {
    if (!spec.guard_vip || guard_exe.empty()) return nullptr;
    if (!guard) {
      guard = std::make_unique<GuardClient>(io, guard_exe);
      guard->hold(hold_until);
      if (Status s = guard->start(); !s.ok()) {
        spdlog::error("vip {}: no guard: {} (the address stays if this agent dies)", spec.id,
                      s.message());
      }
    }
    return guard.get();
  }

  void complete(const ActionRequest& req, Done done, OcfCode code, std::string message,
                Clock::time_point t0, std::string out = "") {
    ActionResult r;
    r.resource_id = req.resource.id;
    r.action = req.action;
    r.ocf = code;
    r.exit_code = static_cast<int>(code);
    r.outcome = exec::outcome_of(code);
    r.message = std::move(message);
    r.stdout_tail = std::move(out);
    r.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    if (code != OcfCode::kSuccess && code != OcfCode::kNotRunning) {
      spdlog::warn("vip {}: {} failed: {}", r.resource_id, exec::action_name(r.action), r.message);
    } else if (req.action == Action::kStart || req.action == Action::kStop) {
      spdlog::info("vip {}: {}", r.resource_id, r.message);
    }
    std::weak_ptr<Impl> w = weak_from_this();
    asio::post(io, [w, done = std::move(done), r = std::move(r)]() mutable {
      auto s = w.lock();
      if (s && !s->shut_down) done(std::move(r));
    });
  }

  void cancel_background(Res& r) {
    ++r.gen;
    if (r.timer) r.timer->cancel();
    r.announcing = false;
    if (auto w = std::move(r.watch)) w->stop();
    if (auto p = std::move(r.probe)) p->finish(Probe::Outcome{.cancelled = true});
  }

  // Re-announces at once (at most once a second) when another MAC claims the VIP.
  void watch_conflicts(const std::string& id, const VipParams& p, const LinkInfo& link) {
    Res& r = res[id];
    if (p.ip.v6 || p.arp_refresh_ms <= 0 || !link.ethernet || r.watch) return;
    auto watch = std::make_shared<ArpWatch>(io, p.ip, link);
    std::weak_ptr<Impl> w = weak_from_this();
    const uint64_t gen = r.gen;
    Status s = watch->start([w, id, p, link, gen](const MacAddress& other) {
      auto self = w.lock();
      if (!self || self->shut_down) return;
      auto it = self->res.find(id);
      if (it == self->res.end() || it->second.gen != gen) return;
      ++it->second.counters.conflicts_detected;
      Clock::time_point now = Clock::now();
      bool again = now - it->second.last_reannounce >= std::chrono::seconds(1);
      spdlog::warn("vip {}: {} claimed by {} on {}{}", id, p.ip.to_string(), mac_to_string(other),
                   link.name, again ? ": announcing it again" : "");
      if (again) {
        it->second.last_reannounce = now;
        self->send_announcement(id, p, link);
      }
    });
    if (!s.ok()) {
      spdlog::warn("vip {}: no conflict watch: {}", id, s.message());
      return;
    }
    r.watch = std::move(watch);
  }

  void run(const ActionRequest& req, Done done) {
    const Clock::time_point t0 = Clock::now();
    if (req.action == Action::kMetaData) {
      return complete(req, std::move(done), OcfCode::kSuccess, "", t0, kMetaData);
    }
    auto p = parse_vip_params(req.resource.params);
    if (!p) {
      return complete(req, std::move(done), OcfCode::kErrConfigured, p.error().message(), t0);
    }
    switch (req.action) {
      case Action::kStart:
        return start(req, std::move(done), *p, t0);
      case Action::kStop: {
        std::string msg;
        Status s = remove(req.resource.id, *p, &msg);
        return complete(req, std::move(done), s.ok() ? OcfCode::kSuccess : OcfCode::kErrGeneric,
                        s.ok() ? msg : s.message(), t0);
      }
      case Action::kMonitor:
      case Action::kProbe:
        return monitor(req, std::move(done), *p, t0);
      case Action::kValidateAll: {
        auto inv = read_net_inventory();
        if (!inv) {
          return complete(req, std::move(done), OcfCode::kErrGeneric, inv.error().message(), t0);
        }
        auto t = resolve_vip(*p, *inv);
        if (!t) {
          return complete(req, std::move(done),
                          t.error().code() == Errc::kNotFound ? OcfCode::kErrInstalled
                                                              : OcfCode::kErrConfigured,
                          t.error().message(), t0);
        }
        return complete(req, std::move(done), OcfCode::kSuccess,
                        addr_text(p->ip, t->prefix_len) + " would go on " + t->link.name, t0);
      }
      default:
        return complete(
            req, std::move(done), OcfCode::kErrUnimplemented,
            "a vip resource has no " + std::string(exec::action_name(req.action)) + " action", t0);
    }
  }

  void start(const ActionRequest& req, Done done, const VipParams& p, Clock::time_point t0) {
    Res& r = res[req.resource.id];
    cancel_background(r);
    r.guarded = req.resource.guard_vip && !guard_exe.empty();
    const uint64_t gen = r.gen;
    auto inv = read_net_inventory();
    if (!inv) {
      return complete(req, std::move(done), OcfCode::kErrGeneric, inv.error().message(), t0);
    }
    auto t = resolve_vip(p, *inv);
    if (!t) {
      // Missing here (no such nic, no matching subnet) is this host's problem: try another.
      return complete(
          req, std::move(done),
          t.error().code() == Errc::kNotFound ? OcfCode::kErrInstalled : OcfCode::kErrConfigured,
          t.error().message(), t0);
    }
    GuardClient* g = guard_for(req.resource);
    if (g && hold_until <= now_ms()) {
      return complete(req, std::move(done), OcfCode::kErrGeneric,
                      "not starting " + p.ip.to_string() + ": this node's hold has ended", t0);
    }
    if (t->present && !t->present->dad_failed()) {
      if (g) g->add({t->link.index, p.ip, t->present->prefix_len});
      int sent = announce_burst(req.resource.id, p, t->link, gen);
      return complete(req, std::move(done), OcfCode::kSuccess,
                      addr_text(p.ip, t->present->prefix_len) + " already on " + t->link.name +
                          ", " + announce_text(p, t->link, sent),
                      t0);
    }
    if (t->present) {  // DAD failed earlier: remove it, then try again like a new one
      if (Status s = delete_address(t->link, *t->present); !s.ok()) {
        return complete(req, std::move(done), OcfCode::kErrGeneric, s.message(), t0);
      }
    }
    if (!t->link.up) {
      return complete(req, std::move(done), OcfCode::kErrGeneric,
                      "cannot add " + p.ip.to_string() + ": " + t->link.name + " is down", t0);
    }
    // The runner's watchdog ends the action at its timeout: keep the probe well inside it.
    int wait_ms = std::min(p.probe_ms, std::max(0, req.timeout_ms / 2));
    if (wait_ms <= 0 || !t->link.ethernet)
      return add_and_announce(req, std::move(done), p, *t, "", t0);

    auto probe = std::make_shared<Probe>(io, p, t->link, wait_ms);
    r.probe = probe;
    std::weak_ptr<Impl> w = weak_from_this();
    probe->start(
        [w, req, done = std::move(done), p, target = *t, gen, t0](Probe::Outcome o) mutable {
          auto s = w.lock();
          if (!s || s->shut_down) return;
          s->after_probe(req, std::move(done), p, target, gen, o, t0);
        });
  }

  void after_probe(const ActionRequest& req, Done done, const VipParams& p, const VipTarget& t,
                   uint64_t gen, const Probe::Outcome& o, Clock::time_point t0) {
    Res& r = res[req.resource.id];
    r.probe.reset();
    if (o.cancelled || r.gen != gen) {
      return complete(req, std::move(done), OcfCode::kErrGeneric,
                      "start of " + p.ip.to_string() +
                          " cancelled before the address was added (removed by a stop or a "
                          "lost hold)",
                      t0);
    }
    if (!o.error.empty()) {
      return complete(req, std::move(done), OcfCode::kErrGeneric,
                      "cannot probe for " + p.ip.to_string() + ": " + o.error, t0);
    }
    std::string note;
    if (o.claim != Claim::kNone) {
      ++r.counters.conflicts_detected;
      std::string who = mac_to_string(o.other);
      if (!p.takeover) {
        std::string what =
            o.claim == Claim::kOwner ? "is already answered by " : "is being probed for by ";
        return complete(req, std::move(done), OcfCode::kErrGeneric,
                        p.ip.to_string() + " " + what + who + " on " + t.link.name +
                            " (set takeover: true to take it)",
                        t0);
      }
      note = " (taken over from " + who + ")";
      spdlog::warn("vip {}: {} answered by {} on {}: taking it over", req.resource.id,
                   p.ip.to_string(), who, t.link.name);
    }
    add_and_announce(req, std::move(done), p, t, note, t0);
  }

  void add_and_announce(const ActionRequest& req, Done done, const VipParams& p, const VipTarget& t,
                        const std::string& note, Clock::time_point t0) {
    // The guard knows of it before it exists: this process may die right after the add.
    const GuardAddress ga{t.link.index, p.ip, t.prefix_len};
    GuardClient* g = guard_for(req.resource);
    if (g && hold_until <= now_ms()) {  // it ended while the probe waited
      return complete(req, std::move(done), OcfCode::kErrGeneric,
                      "not adding " + p.ip.to_string() + ": this node's hold ended" + note, t0);
    }
    if (g) g->add(ga);
    if (Status s = add_address(t.link, p.ip, t.prefix_len, p.label); !s.ok()) {
      if (g) g->del(ga);
      return complete(req, std::move(done), OcfCode::kErrGeneric, s.message(), t0);
    }
    Res& r = res[req.resource.id];
    int sent = announce_burst(req.resource.id, p, t.link, r.gen);
    complete(req, std::move(done), OcfCode::kSuccess,
             "added " + addr_text(p.ip, t.prefix_len) + " on " + t.link.name + ", " +
                 announce_text(p, t.link, sent) + note,
             t0);
  }

  std::string announce_text(const VipParams& p, const LinkInfo& link, int first_sent) {
    if (!link.ethernet) return "no announcements (" + link.name + " is not Ethernet)";
    std::string s = announcements(p, p.arp_count);
    if (p.arp_count > 0 && first_sent == 0) s += " (the first could not be sent)";
    if (p.arp_refresh_ms > 0) s += ", again every " + std::to_string(p.arp_refresh_ms) + " ms";
    return s;
  }

  // Sends the first announcement now and schedules the rest; returns how many went now.
  int announce_burst(const std::string& id, const VipParams& p, const LinkInfo& link,
                     uint64_t gen) {
    if (!link.ethernet) return 0;
    Res& r = res[id];
    if (!r.timer) r.timer = std::make_unique<asio::steady_timer>(io);
    r.announcing = true;
    if (p.arp_count == 0) {
      watch_conflicts(id, p, link);
      schedule(id, p, link, gen, 0, p.arp_refresh_ms);
      return 0;
    }
    watch_conflicts(id, p, link);
    int sent = send_announcement(id, p, link) ? 1 : 0;
    schedule(id, p, link, gen, p.arp_count - 1, p.arp_interval_ms);
    return sent;
  }

  // `left` announcements of the burst remain; after them, refreshes if configured.
  void schedule(const std::string& id, const VipParams& p, const LinkInfo& link, uint64_t gen,
                int left, int delay_ms) {
    Res& r = res[id];
    if (left <= 0 && p.arp_refresh_ms <= 0) {
      r.announcing = false;
      return;
    }
    if (left <= 0) delay_ms = p.arp_refresh_ms;
    r.timer->expires_after(std::chrono::milliseconds(delay_ms));
    std::weak_ptr<Impl> w = weak_from_this();
    r.timer->async_wait([w, id, p, link, gen, left](const boost::system::error_code& ec) {
      auto s = w.lock();
      if (ec || !s || s->shut_down) return;
      auto it = s->res.find(id);
      if (it == s->res.end() || it->second.gen != gen) return;
      s->send_announcement(id, p, link);
      s->schedule(id, p, link, gen, left - 1, p.arp_interval_ms);
    });
  }

  bool send_announcement(const std::string& id, const VipParams& p, const LinkInfo& link) {
    // Only while it is ours: a timer that fires late (the process was stopped, and the VIP
    // guard removed the address meanwhile) must not point the neighbours back here.
    Res& r = res[id];
    if (r.guarded && hold_until < now_ms()) {
      spdlog::info("vip {}: not announcing {}: the hold ended", id, p.ip.to_string());
      return false;
    }
    if (auto inv = read_net_inventory(); inv) {
      bool here = false;
      for (const auto& a : find_present(p, *inv)) here = here || a.ifindex == link.index;
      if (!here) {
        spdlog::info("vip {}: not announcing {}: it is no longer on {}", id, p.ip.to_string(),
                     link.name);
        return false;
      }
    }
    auto fd = packet_socket(link.index, 0, link.name);
    Status s = fd ? send_frame(*fd, link, announcement_frame(p, link)) : fd.error();
    if (fd) ::close(*fd);
    if (!s.ok()) {
      spdlog::warn("vip {}: announcing {}: {}", id, p.ip.to_string(), s.message());
      return false;
    }
    ++res[id].counters.announcements_sent;
    return true;
  }

  // Removes the VIP (stop, remove_now); `msg` gets what was done.
  Status remove(const std::string& id, const VipParams& p, std::string* msg) {
    cancel_background(res[id]);
    ASSIGN_OR_RETURN(NetInventory inv, read_net_inventory());
    std::vector<AddrInfo> present = find_present(p, inv);
    std::string done_text;
    for (const auto& a : present) {
      const LinkInfo* link = inv.link_by_index(a.ifindex);
      if (!link) continue;
      RETURN_IF_ERROR(delete_address(*link, a));
      if (guard) guard->del({a.ifindex, a.ip, a.prefix_len});
      done_text += (done_text.empty() ? "removed " : ", ") + addr_text(a.ip, a.prefix_len) +
                   " from " + link->name;
    }
    if (msg) *msg = done_text.empty() ? p.ip.to_string() + " is not on " + where(p) : done_text;
    return Status();
  }

  void monitor(const ActionRequest& req, Done done, const VipParams& p, Clock::time_point t0) {
    auto inv = read_net_inventory();
    if (!inv) {
      return complete(req, std::move(done), OcfCode::kErrGeneric, inv.error().message(), t0);
    }
    for (const auto& a : find_present(p, *inv)) {
      const LinkInfo* link = inv->link_by_index(a.ifindex);
      if (!link) continue;
      if (a.dad_failed()) {
        return complete(req, std::move(done), OcfCode::kNotRunning,
                        addr_text(a.ip, a.prefix_len) + " on " + link->name +
                            " failed duplicate address detection",
                        t0);
      }
      // A recurring monitor of a running VIP (not a start-up probe: what runs without a
      // hold is stopped, not guarded).
      if (req.action == Action::kMonitor) {
        if (GuardClient* g = guard_for(req.resource)) g->add({a.ifindex, a.ip, a.prefix_len});
      }
      // Found running without announcements scheduled (adopted after a restart of the
      // agent): the refresh resumes.
      Res& r = res[req.resource.id];
      if (p.arp_refresh_ms > 0 && !r.announcing && link->ethernet && !r.probe) {
        if (!r.timer) r.timer = std::make_unique<asio::steady_timer>(io);
        r.announcing = true;
        watch_conflicts(req.resource.id, p, *link);
        schedule(req.resource.id, p, *link, r.gen, 0, p.arp_refresh_ms);
      }
      return complete(req, std::move(done), OcfCode::kSuccess,
                      addr_text(a.ip, a.prefix_len) + " on " + link->name, t0);
    }
    complete(req, std::move(done), OcfCode::kNotRunning,
             p.ip.to_string() + " is not on " + where(p), t0);
  }

  void shutdown() {
    shut_down = true;
    for (auto& [id, r] : res) cancel_background(r);
    guard.reset();  // it removes what it guards and exits
  }
};

VipDriver::VipDriver(asio::io_context& io) : impl_(std::make_shared<Impl>(io)) {}
VipDriver::~VipDriver() { impl_->shutdown(); }

void VipDriver::run(const ActionRequest& req, std::function<void(ActionResult)> done) {
  impl_->run(req, std::move(done));
}

Status VipDriver::remove_now(const exec::ResourceSpec& spec) {
  ASSIGN_OR_RETURN(VipParams p, parse_vip_params(spec.params));
  std::string msg;
  RETURN_IF_ERROR(impl_->remove(spec.id, p, &msg));
  spdlog::info("vip {}: {} (at once)", spec.id, msg);
  return Status();
}

void VipDriver::enable_guard(std::string exe) { impl_->guard_exe = std::move(exe); }

void VipDriver::set_hold(int64_t until_ms) {
  impl_->hold_until = until_ms;
  if (impl_->guard) impl_->guard->hold(until_ms);
}

pid_t VipDriver::guard_pid() const { return impl_->guard ? impl_->guard->pid() : -1; }

VipCounters VipDriver::counters(const std::string& resource_id) const {
  auto it = impl_->res.find(resource_id);
  return it == impl_->res.end() ? VipCounters{} : it->second.counters;
}

}  // namespace vigil::net
