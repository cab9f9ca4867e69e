// Fuzz target for the vip class's parsers: received ARP and NDP frames, and parameters.
//
// Every input goes through parse_arp_frame() and parse_nd_frame() as a frame, and through
// parse_vip_params() as "key=value" lines (then resolve_vip() on a fixed inventory).
// Besides "never crash", it checks what an accepted input promises: an ARP frame has a
// known opcode and its announcement re-encodes identically; an ND frame has a valid
// checksum, a known type and a non-multicast target; parameters are in their ranges and a
// resolved prefix fits the family.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "net/vip.h"

namespace {

using namespace vigil::net;

void require(bool cond) {
  if (!cond) std::abort();
}

const MacAddress kOurs = {0x02, 0x00, 0x00, 0x00, 0x05, 0x01};

void check_arp(std::string_view in) {
  auto a = parse_arp_frame(in);
  if (!a) return;
  require(in.size() >= kArpFrameBytes);
  require(a->op == 1 || a->op == 2);
  require(!a->spa.v6 && !a->tpa.v6);
  Claim c = arp_claim(*a, a->spa, kOurs);
  require(c == Claim::kNone || a->sha != kOurs);
  // A gratuitous request as we build it re-encodes to the same bytes.
  if (a->op == 1 && a->spa == a->tpa && a->tha == MacAddress{} && a->eth_src == a->sha &&
      a->eth_dst == MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
    require(build_gratuitous_arp(a->sha, a->spa) == in.substr(0, kArpFrameBytes));
  }
}

void check_nd(std::string_view in) {
  auto nd = parse_nd_frame(in);
  if (!nd) return;
  require(nd->type == 135 || nd->type == 136);
  require(nd->src.v6 && nd->dst.v6 && nd->target.v6);
  require(nd->target.bytes[0] != 0xff);
  size_t payload = (static_cast<uint8_t>(in[18]) << 8) | static_cast<uint8_t>(in[19]);
  require(14 + 40 + payload <= in.size());
  require(icmpv6_checksum(nd->src, nd->dst, in.substr(54, payload)) == 0);
  (void)nd_claim(*nd, nd->target, kOurs);
}

NetInventory inventory() {
  NetInventory inv;
  inv.links.push_back({1, "lo", true, false, {}});
  inv.links.push_back({2, "eth0", true, true, kOurs});
  IpAddress a = *parse_ip_address("198.18.5.1");
  IpAddress b = *parse_ip_address("2001:2:0:5::1");
  inv.addrs.push_back({2, a, 24, 0x80, "eth0"});
  inv.addrs.push_back({2, b, 64, 0x80, ""});
  return inv;
}

void check_params(std::string_view in) {
  std::map<std::string, std::string> params;
  size_t pos = 0;
  while (pos < in.size() && params.size() < 16) {
    size_t end = in.find('\n', pos);
    if (end == std::string_view::npos) end = in.size();
    std::string_view line = in.substr(pos, end - pos);
    size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      params[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
    pos = end + 1;
  }
  auto p = parse_vip_params(params);
  if (!p) {
    require(p.error().message().rfind("params.", 0) == 0);
    return;
  }
  require(p->arp_count >= 0 && p->arp_count <= 100);
  require(p->arp_interval_ms >= 10 && p->arp_interval_ms <= 10000);
  require(p->probe_ms >= 0 && p->probe_ms <= 10000);
  require(p->arp_refresh_ms == 0 || p->arp_refresh_ms >= 100);
  require(!p->prefix_len || (*p->prefix_len >= 1 && *p->prefix_len <= p->ip.max_prefix()));
  require(p->label.empty() || !p->ip.v6);
  static const NetInventory inv = inventory();
  auto t = resolve_vip(*p, inv);
  if (t) require(t->prefix_len >= 0 && t->prefix_len <= p->ip.max_prefix());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_arp(in);
  check_nd(in);
  check_params(in);
  return 0;
}
