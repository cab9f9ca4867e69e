// The built-in `vip` resource class: a virtual IP added to a local interface by rtnetlink
// and announced with gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "exec/runner.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::net {

// --- Addresses (pure) ---------------------------------------------------------------------

using MacAddress = std::array<uint8_t, 6>;
// "02:00:5e:10:00:01" (lower case).
std::string mac_to_string(const MacAddress& mac);

// An IPv4 or IPv6 address; IPv4 uses the first 4 bytes, the rest stay zero.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  size_t size() const { return v6 ? 16 : 4; }
  int max_prefix() const { return v6 ? 128 : 32; }
  std::string to_string() const;  // inet_ntop form: "198.18.0.100", "2001:2::100"
  bool operator==(const IpAddress&) const = default;
};

// A literal IPv4 (dotted quad) or IPv6 address, without prefix, zone or blanks.
Result<IpAddress> parse_ip_address(std::string_view text);
// True when `a` and `b` share their first `prefix_len` bits (same family only).
bool same_subnet(const IpAddress& a, const IpAddress& b, int prefix_len);

// --- Parameters (pure) --------------------------------------------------------------------

// The params of a `vip` resource (docs/CONFIG.md "vip"). Every error is kInvalidArgument
// and names the parameter: "params.ip: '10.0.0.1/24' has a prefix: ...".
struct VipParams {
  IpAddress ip;                   // ip (required)
  std::optional<int> prefix_len;  // cidr_netmask; unset: from the interface (resolve_vip)
  std::string nic;                // nic; "": the interface holding the subnet
  std::string label;              // label (IPv4 only): "<nic>:<suffix>", ≤ 15 characters
  int arp_count = 3;              // announcements after a start (0..100)
  int arp_interval_ms = 200;      // between them (10..10000); the first goes at once
  int arp_refresh_ms = 0;         // re-announce while running (0 = off, else 100..86400000)
  int probe_ms = 50;              // ARP probe / DAD wait before adding (0 = off, ..10000)
  bool takeover = false;          // add it even if another host answers for it
};
Result<VipParams> parse_vip_params(const std::map<std::string, std::string>& params);

// --- Choosing the interface (pure) --------------------------------------------------------

// What rtnetlink says about one interface and one address (read_net_inventory()).
struct LinkInfo {
  int index = 0;
  std::string name;
  bool up = false;        // IFF_UP
  bool ethernet = false;  // ARPHRD_ETHER with a 6-byte address: ARP and NDP are sent
  MacAddress mac{};
};
struct AddrInfo {
  int ifindex = 0;
  IpAddress ip;
  int prefix_len = 0;
  uint32_t flags = 0;  // IFA_F_* (IFA_F_DADFAILED 0x08, IFA_F_TENTATIVE 0x40, ...)
  std::string label;
  bool dad_failed() const { return (flags & 0x08) != 0; }
};
struct NetInventory {
  std::vector<LinkInfo> links;
  std::vector<AddrInfo> addrs;
  const LinkInfo* link_by_name(std::string_view name) const;
  const LinkInfo* link_by_index(int index) const;
};

// Where a VIP goes: the interface, the prefix, and the address if already there.
struct VipTarget {
  LinkInfo link;
  int prefix_len = 32;
  std::optional<AddrInfo> present;  // the VIP on `link` now (possibly DAD-failed)
};
// nic unset: the interface with an address in the VIP's subnet (the longest prefix wins;
// the VIP's own address counts only if nothing else matches) — none is an error naming the
// ip. cidr_netmask unset: the prefix of that address on the interface, else 32 / 128.
// The label must start with "<nic>:" (the kernel's rule). Errors are kNotFound (nothing
// matches on this host) or kInvalidArgument (the label), each naming the parameter.
Result<VipTarget> resolve_vip(const VipParams& params, const NetInventory& inv);

// --- Packets (pure) -----------------------------------------------------------------------
// Whole Ethernet frames as sent on (and read from) an AF_PACKET SOCK_RAW socket, without
// padding or FCS. Parsers accept any frame size up to 64 KiB, reject short or malformed
// frames with kInvalidArgument, and ignore trailing bytes (Ethernet padding).

inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr size_t kArpFrameBytes = 42;            // 14 Ethernet + 28 ARP
inline constexpr size_t kDadNsFrameBytes = 78;          // 14 + 40 IPv6 + 24 NS
inline constexpr size_t kUnsolicitedNaFrameBytes = 86;  // 14 + 40 + 24 NA + 8 TLLA option

enum class ArpOp : uint16_t { kRequest = 1, kReply = 2 };

// Gratuitous ARP (RFC 5227 §3 "ARP Announcement"): broadcast, sender = target = vip, target
// hardware address zero for a request; the reply variant (for old switches that learn only
// from replies) sets the target hardware address to `mac` too.
std::string build_gratuitous_arp(const MacAddress& mac, const IpAddress& vip,
                                 ArpOp op = ArpOp::kRequest);
// ARP probe (RFC 5227 §2.1.1): broadcast request, sender IP 0.0.0.0, target IP vip.
std::string build_arp_probe(const MacAddress& mac, const IpAddress& vip);

struct ArpFrame {
  MacAddress eth_dst{}, eth_src{};
  uint16_t op = 0;  // 1 request, 2 reply (others are rejected)
  MacAddress sha{}, tha{};
  IpAddress spa, tpa;  // IPv4
};
// Ethernet + ARP for IPv4 over Ethernet (htype 1, ptype 0x0800, hlen 6, plen 4).
Result<ArpFrame> parse_arp_frame(std::string_view frame);

// Whether a received ARP or ND packet shows another host using `vip` (by a MAC not ours).
enum class Claim : uint8_t {
  kNone = 0,
  kOwner,  // it answers for vip (ARP sender IP = vip; NA for target vip)
  kProbe,  // it probes for vip itself (ARP probe or DAD NS for vip: RFC 5227 §2.1.1,
           // RFC 4862 §5.4.3)
};
Claim arp_claim(const ArpFrame& arp, const IpAddress& vip, const MacAddress& ours);

// The solicited-node multicast address of `ip` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX.
IpAddress solicited_node(const IpAddress& ip);
// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header (RFC 8200 §8.1) and `icmp`
// (with its checksum field zero, or as received: a valid message then sums to 0).
uint16_t icmpv6_checksum(const IpAddress& src, const IpAddress& dst, std::string_view icmp);

// Unsolicited neighbour advertisement (RFC 4861 §7.2.6): from vip to ff02::1
// (33:33:00:00:00:01), hop limit 255, override set, router and solicited clear, a target
// link-layer address option with `mac`; checksum computed here.
std::string build_unsolicited_na(const MacAddress& mac, const IpAddress& vip);
// DAD neighbour solicitation (RFC 4862 §5.4.2): from :: to the solicited-node address of
// vip, hop limit 255, no source link-layer option.
std::string build_dad_ns(const MacAddress& mac, const IpAddress& vip);

struct NdFrame {
  MacAddress eth_dst{}, eth_src{};
  IpAddress src, dst;                                             // IPv6 header
  uint8_t type = 0;                                               // 135 NS, 136 NA
  bool router = false, solicited = false, override_flag = false;  // NA only
  IpAddress target;
  std::optional<MacAddress> link_addr;  // source (NS) or target (NA) link-layer option
};
// Ethernet + IPv6 (no extension headers) + ICMPv6 NS or NA, validated as RFC 4861 §7.1.1
// and §7.1.2 ask: hop limit 255, code 0, the checksum, length, options of non-zero length.
Result<NdFrame> parse_nd_frame(std::string_view frame);
Claim nd_claim(const NdFrame& nd, const IpAddress& vip, const MacAddress& ours);

// --- rtnetlink (I/O, synchronous, fast) ---------------------------------------------------

// Links and addresses of this network namespace (libnl-route-3). Errors: kIoError with
// libnl's text of the errno.
Result<NetInventory> read_net_inventory();

// --- The driver ---------------------------------------------------------------------------

struct VipCounters {
  uint64_t announcements_sent = 0;  // gratuitous ARPs / unsolicited NAs, since this process
  uint64_t conflicts_detected = 0;  // another MAC answering or probing for the VIP
};

// The `vip` ClassDriver, registered with AgentRunner::register_class("vip", driver).
//
// Owner: the daemon (shared with the runner). Thread: the io_context's thread only: run(),
// remove_now() and counters() are called there and every callback runs there; `done` is
// posted, never called inline. Netlink requests are synchronous (a few hundred µs); probes
// and announcements wait on Asio timers and sockets, never blocking the loop.
//
// Actions: start (probe, add, announce), stop (remove; absent is success), monitor and probe
// (present and not DAD-failed → OCF_SUCCESS, else OCF_NOT_RUNNING), validate-all,
// meta-data. Others: OCF_ERR_UNIMPLEMENTED. A start reports success once the address is
// added and the first announcement sent; the rest follow every arp_interval_ms (and every
// arp_refresh_ms while it runs) until a stop. Destroying the driver cancels all of that
// and leaves the addresses in place, except guarded ones (enable_guard): the guard
// removes those.
class VipDriver : public exec::ClassDriver {
 public:
  explicit VipDriver(boost::asio::io_context& io);
  ~VipDriver() override;
  VipDriver(const VipDriver&) = delete;
  VipDriver& operator=(const VipDriver&) = delete;

  void run(const exec::ActionRequest& req, std::function<void(exec::ActionResult)> done) override;

  // The hold-lost path: removes the address now (synchronous netlink), cancels its
  // announcements, and makes a start in flight fail before it adds anything. OK if absent.
  Status remove_now(const exec::ResourceSpec& spec);

  VipCounters counters(const std::string& resource_id) const;

  // Guards the addresses of resources with ResourceSpec::guard_vip: a VIP guard process
  // (`exe __vip-guard`, net/vip_guard.h), started with the first such start, removes them
  // if this process dies or the hold given to set_hold() ends. Without it, none is guarded.
  void enable_guard(std::string exe);
  // When this node's hold ends (CLOCK_MONOTONIC ms, what steady_clock reads; 0: none).
  void set_hold(int64_t until_ms);
  pid_t guard_pid() const;  // -1 when no guard runs

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::net
