// Tier 1: every verdict path of bpf/faultline.bpf.c through BPF_PROG_TEST_RUN on the running
// kernel. Each case loads a fresh data path, installs its faults the way faultlined does
// (validate, SetMap bits with closure, exemption rules, plan_slot, write + activate), runs one
// frame through fl_egress or fl_ingress, and checks the verdict, every fault's counter deltas
// and every fl_stats delta.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "bpf/datapath_util.h"
#include "bpf/packet_util.h"

namespace fl::test {
namespace {

constexpr int64_t kTickSlack = 20 * 1000 * 1000;  // 20 ms, two ticks at HZ=100


using core::Direction;
using core::Proto;
using FB = FaultBuilder;
using Frame = std::vector<uint8_t>;

enum class Dir { egress, ingress };

struct Cnt {
  uint64_t matched = 0, dropped = 0, exempted = 0;
  bool operator==(const Cnt&) const = default;
};
void PrintTo(const Cnt& c, std::ostream* os) {
  *os << "{matched " << c.matched << ", dropped " << c.dropped << ", exempted " << c.exempted << "}";
}
constexpr Cnt kNone{0, 0, 0};
constexpr Cnt kDropped{1, 1, 0};
constexpr Cnt kExempted{1, 0, 1};
constexpr Cnt kMatchedOnly{1, 0, 0};

struct Case {
  std::string name;
  std::vector<Fault> faults;
  Frame frame;
  Dir dir = Dir::egress;
  int verdict = kNext;
  std::vector<Cnt> counters;  // one per fault, in install order

  // Expected fl_stats deltas on top of SEEN = 1 and DROPPED = (verdict is this hook's drop).
  std::vector<std::pair<fl_stat, uint64_t>> extra_stats = {};
  std::optional<int64_t> lease_in = {};  // lease = now + this (may be negative)
  bool lease_zero = false;
  std::optional<uint32_t> nslots = {};

  Case stat(fl_stat s, uint64_t n = 1) && {
    extra_stats.emplace_back(s, n);
    return std::move(*this);
  }
  Case lease(int64_t in_ns) && {
    lease_in = in_ns;
    return std::move(*this);
  }
  Case zero_lease() && {
    lease_zero = true;
    return std::move(*this);
  }
  Case scan_bound(uint32_t n) && {
    nslots = n;
    return std::move(*this);
  }
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// ---- addresses: three sides, a bridge in a and b, and nodes outside every side ----

const std::string A4 = "10.0.1.1", A4b = "10.0.1.2", B4 = "10.0.2.1", C4 = "10.0.3.1", BR4 = "10.0.9.1",
                  OUT4 = "192.168.7.7", OUT4b = "192.168.7.8", META = "169.254.169.254";
const std::string A6 = "fd00:a::1", A6b = "fd00:a::2", B6 = "fd00:b::1", C6 = "fd00:c::1", BR6 = "fd00:9::1",
                  OUT6 = "2001:db8::7", OUT6b = "2001:db8::8";

const std::vector<std::string> SA = {"10.0.1.0/24", "fd00:a::/64"};
const std::vector<std::string> SB = {"10.0.2.0/24", "fd00:b::/64"};
const std::vector<std::string> SC = {"10.0.3.0/24", "fd00:c::/64"};
const std::vector<std::string> SA_BR = {"10.0.1.0/24", "fd00:a::/64", "10.0.9.1/32", "fd00:9::1/128"};
const std::vector<std::string> SB_BR = {"10.0.2.0/24", "fd00:b::/64", "10.0.9.1/32", "fd00:9::1/128"};

FB part2() { return FB::partition({SA, SB}); }
FB part3() { return FB::partition({SA, SB, SC}); }
FB bridged() { return FB::partition({SA_BR, SB_BR}); }
FB oneway2() { return FB::one_way({SA, SB}); }
FB oneway3() { return FB::one_way({SA, SB, SC}); }
FB isolate_a() { return FB::isolate(SA); }
FB loss100() { return FB::loss(100); }

// ---- frames ----

bool is_v6(const std::string& a) { return a.find(':') != std::string::npos; }

Packet ip(const std::string& s, const std::string& d) {
  Packet p;
  return is_v6(s) ? p.ipv6(s, d) : p.ipv4(s, d);
}
Frame tcp(const std::string& s, const std::string& d, uint16_t sp, uint16_t dp, uint8_t flags = kAck) {
  return ip(s, d).tcp(sp, dp, flags).payload(32).build();
}
Frame udp(const std::string& s, const std::string& d, uint16_t sp, uint16_t dp) {
  return ip(s, d).udp(sp, dp).payload(32).build();
}
Frame echo(const std::string& s, const std::string& d) {
  return is_v6(s) ? ip(s, d).icmp6(128).payload(16).build() : ip(s, d).icmp(8).payload(16).build();
}
Frame icmp6_type(const std::string& s, const std::string& d, uint8_t type) {
  return ip(s, d).icmp6(type).payload(16).build();
}
// A later fragment: no L4 header in it, only the protocol number in the IP header.
Frame later_frag(const std::string& s, const std::string& d, uint8_t ipproto) {
  if (is_v6(s)) return Packet().ipv6(s, d).frag6(100, false).raw(ipproto, 64).build();
  Ipv4Opts o;
  o.frag_offset = 185;  // 1480 bytes in
  return Packet().ipv4(s, d, o).raw(ipproto, 64).build();
}
Frame first_frag_tcp(const std::string& s, const std::string& d, uint16_t dp) {
  if (is_v6(s)) return Packet().ipv6(s, d).frag6(0, true).tcp(40000, dp).payload(64).build();
  Ipv4Opts o;
  o.more_fragments = true;
  return Packet().ipv4(s, d, o).tcp(40000, dp).payload(64).build();
}
Frame cut(Packet p, Layer at, size_t extra) {
  size_t off = p.offset_of(at);
  return p.truncate(off + extra).build();
}

// ---- the table ----

std::vector<Case> partition_cases() {
  return {
      {"Egress_DropsPartitionedIPv4", {part2()}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsPartitionedIPv6", {part2()}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Ingress_DropsPartitionedIPv4", {part2()}, tcp(B4, A4, 80, 40000), Dir::ingress, kIngressDrop, {kDropped}},
      {"Ingress_DropsPartitionedIPv6", {part2()}, tcp(B6, A6, 80, 40000), Dir::ingress, kIngressDrop, {kDropped}},
      {"Egress_DropsPartitionedUdpIPv4", {part2()}, udp(A4, B4, 5000, 6000), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsPartitionedIcmpIPv6", {part2()}, echo(A6, B6), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsPartitionedUnparsedProtoIPv4", {part2()}, ip(A4, B4).raw(47, 24).build(), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_PassesSameSideIPv4", {part2()}, tcp(A4, A4b, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_PassesSameSideIPv6", {part2()}, tcp(A6, A6b, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_PassesPeerOutsideSidesIPv4", {part2()}, tcp(A4, OUT4, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Ingress_PassesPeerOutsideSidesIPv6", {part2()}, tcp(OUT6, B6, 80, 40000), Dir::ingress, kNext, {kNone}},
      // Three sides: every pair of different sides is cut.
      {"Egress_DropsThreeWayPartitionBToCIPv4", {part3()}, tcp(B4, C4, 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsThreeWayPartitionCToAIPv6", {part3()}, tcp(C6, A6, 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_PassesThreeWaySameSideIPv4", {part3()}, tcp(C4, "10.0.3.9", 40000, 80), Dir::egress, kNext, {kNone}},
      // A bridge (in sides a and b) reaches both; a and b stay cut from each other.
      {"Egress_PassesBridgeToSideAIPv4", {bridged()}, tcp(BR4, A4, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Ingress_PassesSideBToBridgeIPv4", {bridged()}, tcp(B4, BR4, 80, 40000), Dir::ingress, kNext, {kNone}},
      {"Egress_PassesBridgeToSideBIPv6", {bridged()}, tcp(BR6, B6, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_DropsAcrossBridgedPartitionIPv4", {bridged()}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_DropsAcrossBridgedPartitionIPv6", {bridged()}, tcp(B6, A6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      // One way: only sides[0] -> the others, seen on either hook.
      {"Egress_OneWayDropsFirstSideToOtherIPv4", {oneway2()}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_OneWayPassesReverseIPv4", {oneway2()}, tcp(B4, A4, 80, 40000), Dir::egress, kNext, {kNone}},
      {"Ingress_OneWayDropsFirstSideToOtherIPv4", {oneway2()}, tcp(A4, B4, 40000, 80), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Ingress_OneWayPassesReverseIPv4", {oneway2()}, tcp(B4, A4, 80, 40000), Dir::ingress, kNext, {kNone}},
      {"Egress_OneWayDropsFirstSideToOtherIPv6", {oneway2()}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_OneWayPassesReverseIPv6", {oneway2()}, tcp(B6, A6, 80, 40000), Dir::egress, kNext, {kNone}},
      {"Ingress_OneWayDropsFirstSideToOtherIPv6", {oneway2()}, tcp(A6, B6, 40000, 80), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Ingress_OneWayPassesReverseIPv6", {oneway2()}, tcp(B6, A6, 80, 40000), Dir::ingress, kNext, {kNone}},
      {"Egress_OneWayThreeSidesDropsAToCIPv4", {oneway3()}, tcp(A4, C4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_OneWayThreeSidesPassesBToCIPv4", {oneway3()}, tcp(B4, C4, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_OneWayThreeSidesPassesCToAIPv6", {oneway3()}, tcp(C6, A6, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_OneWayPassesToBridgeIPv6", {FB::one_way({SA_BR, SB_BR})}, tcp(A6, BR6, 40000, 80), Dir::egress,
       kNext, {kNone}},
      // Isolate: exactly one endpoint in the set.
      {"Egress_IsolateDropsIsolatedToOutsideIPv4", {isolate_a()}, tcp(A4, OUT4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Ingress_IsolateDropsOutsideToIsolatedIPv4", {isolate_a()}, tcp(OUT4, A4, 80, 40000), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Egress_IsolateDropsIsolatedToOtherSideIPv6", {isolate_a()}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Ingress_IsolateDropsOutsideToIsolatedIPv6", {isolate_a()}, tcp(OUT6, A6, 80, 40000), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Egress_IsolatePassesWithinIsolatedSetIPv4", {isolate_a()}, tcp(A4, A4b, 40000, 80), Dir::egress, kNext,
       {kNone}},
      {"Egress_IsolatePassesWithinIsolatedSetIPv6", {isolate_a()}, tcp(A6, A6b, 40000, 80), Dir::egress, kNext,
       {kNone}},
      {"Egress_IsolatePassesBetweenOthersIPv4", {isolate_a()}, tcp(B4, OUT4, 40000, 80), Dir::egress, kNext,
       {kNone}},
  };
}

std::vector<Case> loss_and_selector_cases() {
  FB tcp_only = loss100();
  tcp_only.proto(Proto::tcp);
  FB udp_only = loss100();
  udp_only.proto(Proto::udp);
  FB icmp_only = loss100();
  icmp_only.proto(Proto::icmp);
  FB dport80 = loss100();
  dport80.proto(Proto::tcp).dport(80);
  FB dport80_any = loss100();
  dport80_any.dport(80);  // no protocol: TCP and UDP, the only ones with ports
  FB sport_range = loss100();
  sport_range.proto(Proto::udp).sport(1000, 2000);
  FB both_ports = loss100();
  both_ports.proto(Proto::udp).sport(1000, 2000).dport(5000, 5001);
  FB src_a = loss100();
  src_a.src(SA);
  FB dst_b = loss100();
  dst_b.dst(SB);
  FB src_a_dst_b = loss100();
  src_a_dst_b.src(SA).dst(SB);
  FB egress_only = part2();
  egress_only.direction(Direction::egress);
  FB ingress_only = part2();
  ingress_only.direction(Direction::ingress);
  FB new_only = loss100();
  new_only.new_only();  // proto all: validate() makes it tcp
  FB new_only_part = part2();
  new_only_part.new_only();
  FB loss0 = FB::loss(0);
  loss0.unvalidated();  // validate() refuses 0 %; the data path must still never drop

  return {
      {"Egress_Loss100DropsIPv4", {loss100()}, udp(A4, OUT4, 5000, 6000), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_Loss100DropsIPv6", {loss100()}, udp(A6, OUT6, 5000, 6000), Dir::egress, kEgressDrop, {kDropped}},
      {"Ingress_Loss100DropsIPv4", {loss100()}, tcp(OUT4, A4, 80, 40000), Dir::ingress, kIngressDrop, {kDropped}},
      {"Egress_Loss0PassesButCountsMatchIPv4", {loss0}, udp(A4, OUT4, 5000, 6000), Dir::egress, kNext,
       {kMatchedOnly}},
      {"Egress_Loss0PassesButCountsMatchIPv6", {loss0}, udp(A6, OUT6, 5000, 6000), Dir::egress, kNext,
       {kMatchedOnly}},
      // Address selectors.
      {"Egress_SrcSelectorDropsFromSetIPv4", {src_a}, tcp(A4, OUT4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_SrcSelectorPassesOtherSourceIPv4", {src_a}, tcp(OUT4, A4, 80, 40000), Dir::egress, kNext, {kNone}},
      {"Egress_SrcSelectorDropsFromSetIPv6", {src_a}, tcp(A6, OUT6, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_SrcSelectorPassesOtherSourceIPv6", {src_a}, tcp(OUT6, A6, 80, 40000), Dir::egress, kNext, {kNone}},
      {"Egress_DstSelectorDropsToSetIPv4", {dst_b}, tcp(OUT4, B4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DstSelectorPassesOtherDestIPv4", {dst_b}, tcp(OUT4, A4, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_DstSelectorDropsToSetIPv6", {dst_b}, tcp(OUT6, B6, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DstSelectorPassesOtherDestIPv6", {dst_b}, tcp(B6, OUT6, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_SrcAndDstSelectorsDropMatchingPairIPv6", {src_a_dst_b}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_SrcAndDstSelectorsPassReversedPairIPv6", {src_a_dst_b}, tcp(B6, A6, 40000, 80), Dir::egress, kNext,
       {kNone}},
      {"Egress_SrcAndDstSelectorsPassHalfMatchIPv4", {src_a_dst_b}, tcp(A4, C4, 40000, 80), Dir::egress, kNext,
       {kNone}},
      // Protocol.
      {"Egress_ProtoTcpDropsTcpIPv4", {tcp_only}, tcp(A4, OUT4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ProtoTcpPassesUdpIPv4", {tcp_only}, udp(A4, OUT4, 5000, 6000), Dir::egress, kNext, {kNone}},
      {"Egress_ProtoTcpPassesUnparsedProtoIPv6", {tcp_only}, ip(A6, OUT6).raw(47, 24).build(), Dir::egress, kNext,
       {kNone}},
      {"Egress_ProtoUdpDropsUdpIPv6", {udp_only}, udp(A6, OUT6, 5000, 6000), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ProtoUdpPassesTcpIPv6", {udp_only}, tcp(A6, OUT6, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_ProtoIcmpDropsEchoIPv4", {icmp_only}, echo(A4, OUT4), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ProtoIcmpDropsEchoIPv6", {icmp_only}, echo(A6, OUT6), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ProtoIcmpPassesTcpIPv4", {icmp_only}, tcp(A4, OUT4, 40000, 80), Dir::egress, kNext, {kNone}},
      // Ports: inclusive ranges, both ranges must hold.
      {"Egress_DportDropsMatchingIPv4", {dport80}, tcp(A4, OUT4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DportPassesOtherIPv4", {dport80}, tcp(A4, OUT4, 40000, 81), Dir::egress, kNext, {kNone}},
      {"Egress_DportDropsMatchingIPv6", {dport80}, tcp(A6, OUT6, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DportPassesSportEqualToDportIPv6", {dport80}, tcp(A6, OUT6, 80, 40000), Dir::egress, kNext,
       {kNone}},
      {"Egress_DportWithoutProtoDropsTcpIPv4", {dport80_any}, tcp(A4, OUT4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_DportWithoutProtoDropsUdpIPv6", {dport80_any}, udp(A6, OUT6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_DportWithoutProtoPassesOtherPortIPv4", {dport80_any}, udp(A4, OUT4, 40000, 81), Dir::egress, kNext,
       {kNone}},
      {"Egress_DportWithoutProtoPassesIcmpIPv4", {dport80_any}, echo(A4, OUT4), Dir::egress, kNext, {kNone}},
      {"Egress_SportRangeDropsLowEdgeIPv4", {sport_range}, udp(A4, OUT4, 1000, 6000), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_SportRangeDropsHighEdgeIPv6", {sport_range}, udp(A6, OUT6, 2000, 6000), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_SportRangePassesAboveIPv4", {sport_range}, udp(A4, OUT4, 2001, 6000), Dir::egress, kNext, {kNone}},
      {"Egress_SportRangePassesBelowIPv6", {sport_range}, udp(A6, OUT6, 999, 6000), Dir::egress, kNext, {kNone}},
      {"Egress_BothPortRangesDropIPv4", {both_ports}, udp(A4, OUT4, 1500, 5001), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_BothPortRangesPassDportOutsideIPv4", {both_ports}, udp(A4, OUT4, 1500, 5002), Dir::egress, kNext,
       {kNone}},
      // Direction.
      {"Egress_DirectionEgressDropsOnEgressIPv4", {egress_only}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Ingress_DirectionEgressPassesOnIngressIPv4", {egress_only}, tcp(A4, B4, 40000, 80), Dir::ingress, kNext,
       {kNone}},
      {"Ingress_DirectionIngressDropsOnIngressIPv6", {ingress_only}, tcp(B6, A6, 80, 40000), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Egress_DirectionIngressPassesOnEgressIPv6", {ingress_only}, tcp(B6, A6, 80, 40000), Dir::egress, kNext,
       {kNone}},
      // New connections only: SYN without ACK.
      {"Egress_NewOnlyDropsSynIPv4", {new_only}, tcp(A4, OUT4, 40000, 80, kSyn), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_NewOnlyPassesSynAckIPv4", {new_only}, tcp(OUT4, A4, 80, 40000, kSyn | kAck), Dir::egress, kNext,
       {kNone}},
      {"Egress_NewOnlyPassesEstablishedAckIPv4", {new_only}, tcp(A4, OUT4, 40000, 80, kAck | kPsh), Dir::egress,
       kNext, {kNone}},
      {"Egress_NewOnlyPassesUdpIPv4", {new_only}, udp(A4, OUT4, 5000, 6000), Dir::egress, kNext, {kNone}},
      {"Egress_NewOnlyDropsSynIPv6", {new_only}, tcp(A6, OUT6, 40000, 80, kSyn), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_NewOnlyPassesSynAckIPv6", {new_only}, tcp(OUT6, A6, 80, 40000, kSyn | kAck), Dir::egress, kNext,
       {kNone}},
      {"Egress_NewOnlyPassesEstablishedAckIPv6", {new_only}, tcp(A6, OUT6, 40000, 80), Dir::egress, kNext,
       {kNone}},
      {"Egress_NewOnlyPartitionDropsSynIPv4", {new_only_part}, tcp(A4, B4, 40000, 80, kSyn), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_NewOnlyPartitionPassesEstablishedIPv4", {new_only_part}, tcp(A4, B4, 40000, 80), Dir::egress, kNext,
       {kNone}},
  };
}

std::vector<Case> parsing_cases() {
  FB dport80 = loss100();
  dport80.proto(Proto::tcp).dport(80);
  FB udp_only = loss100();
  udp_only.proto(Proto::udp);
  FB tcp_only = loss100();
  tcp_only.proto(Proto::tcp);
  FB new_only = loss100();
  new_only.new_only();

  Ipv4Opts with_opts;
  with_opts.options = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert, NOPs, EOL
  Ipv4Opts ihl4;
  ihl4.ihl = 4;
  Ipv4Opts ihl15;  // claims 60 bytes of header, carries 20
  ihl15.ihl = 15;
  Ipv4Opts df;
  df.dont_fragment = true;

  return {
      // VLAN: 802.1Q, 802.1ad + 802.1Q; a third tag is more than we parse.
      {"Egress_DropsPartitionedSingleVlanIPv4", {part2()}, Packet().vlan(100).ipv4(A4, B4).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsPartitionedSingleVlanIPv6", {part2()}, Packet().vlan(100).ipv6(A6, B6).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DropsPartitionedQinQIPv4", {part2()},
       Packet().vlan(300, kEth8021AD).vlan(100).ipv4(A4, B4).udp(5000, 6000).build(), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Ingress_DropsPartitionedQinQIPv6", {part2()},
       Packet().vlan(300, kEth8021AD).vlan(100).ipv6(B6, A6).udp(6000, 5000).build(), Dir::ingress, kIngressDrop,
       {kDropped}},
      {"Egress_DropsPartitionedSingle8021adTagIPv4", {part2()},
       Packet().vlan(300, kEth8021AD).ipv4(A4, B4).tcp(40000, 80).build(), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ExemptsSshBehindQinQIPv4", {part2()},
       Packet().vlan(300, kEth8021AD).vlan(100).ipv4(A4, B4).tcp(40000, 22).build(), Dir::egress, kNext,
       {kExempted}},
      Case{"Egress_PassesThreeVlanTagsAsNotIp", {part2()},
       Packet().vlan(1, kEth8021AD).vlan(2).vlan(3).ipv4(A4, B4).tcp(40000, 80).build(), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_NOT_IP),
      // IPv4 header variants.
      {"Egress_OptionsReachPortsIPv4", {dport80}, Packet().ipv4(A4, OUT4, with_opts).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ExemptsSshBehindOptionsIPv4", {part2()}, Packet().ipv4(A4, B4, with_opts).tcp(22, 40000).build(),
       Dir::egress, kNext, {kExempted}},
      {"Egress_DontFragmentIsNotAFragmentIPv4", {dport80}, Packet().ipv4(A4, OUT4, df).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      Case{"Egress_BadIhlPassesAsTruncatedIPv4", {part2()}, Packet().ipv4(A4, B4, ihl4).tcp(40000, 80).build(),
       Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_IhlPastEndPassesAsTruncatedIPv4", {part2()}, Packet().ipv4(A4, B4, ihl15).tcp(40000, 80).build(),
       Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      // IPv4 fragments: the first carries ports; later ones match on addresses and protocol.
      {"Egress_FirstFragmentMatchesPortsIPv4", {dport80}, first_frag_tcp(A4, OUT4, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      Case{"Egress_LaterFragmentSkipsPortFaultIPv4", {dport80}, later_frag(A4, OUT4, 6), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentSkipsNewOnlyIPv4", {new_only}, later_frag(A4, OUT4, 6), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentDropsPartitionedIPv4", {part2()}, later_frag(A4, B4, 17), Dir::egress, kEgressDrop,
       {kDropped}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentMatchesProtoIPv4", {udp_only}, later_frag(A4, OUT4, 17), Dir::egress, kEgressDrop,
       {kDropped}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentProtoMismatchPassesIPv4", {tcp_only}, later_frag(A4, OUT4, 17), Dir::egress, kNext,
       {kNone}}
          .stat(FL_STAT_FRAGMENT),
      // IPv6 fragment header.
      {"Egress_FirstFragmentMatchesPortsIPv6", {dport80}, first_frag_tcp(A6, OUT6, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      Case{"Egress_LaterFragmentSkipsPortFaultIPv6", {dport80}, later_frag(A6, OUT6, 6), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentDropsPartitionedIPv6", {part2()}, later_frag(A6, B6, 6), Dir::egress, kEgressDrop,
       {kDropped}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentMatchesProtoIPv6", {udp_only}, later_frag(A6, OUT6, 17), Dir::egress, kEgressDrop,
       {kDropped}}
          .stat(FL_STAT_FRAGMENT),
      Case{"Egress_LaterFragmentProtoMismatchPassesIPv6", {tcp_only}, later_frag(A6, OUT6, 17), Dir::egress, kNext,
       {kNone}}
          .stat(FL_STAT_FRAGMENT),
      // IPv6 extension headers are skipped to L4.
      {"Egress_ExtensionChainReachesPortsIPv6", {dport80},
       Packet().ipv6(A6, OUT6).ext6(kHopByHop, 16).ext6(kRouting, 24).ext6(kDestOpts, 8).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ExemptsSshBehindExtensionChainIPv6", {part2()},
       Packet().ipv6(A6, B6).ext6(kHopByHop, 8).ext6(kRouting, 24).ext6(kDestOpts, 16).tcp(40000, 22).build(),
       Dir::egress, kNext, {kExempted}},
      {"Egress_FragmentHeaderInsideChainReachesPortsIPv6", {dport80},
       Packet().ipv6(A6, OUT6).ext6(kHopByHop, 8).frag6(0, true).ext6(kDestOpts, 8).tcp(40000, 80).build(),
       Dir::egress, kEgressDrop, {kDropped}},
      Case{"Egress_ExtensionChainPastParseLimitPassesIPv6", {part2()},
       Packet().ipv6(A6, B6).ext6(kDestOpts, 464).tcp(40000, 80).build(), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      // An AH's length is (len+2)*4 bytes, every other extension header's (len+1)*8: the parser
      // must pick the formula by the type of the header it skips, not by the next one's. These
      // three cases read ports at the right offset only when it does.
      Case{"Egress_AuthHeaderReachesPortsIPv6", {dport80},
           Packet().ipv6(A6, OUT6).ext6(kAuth, 24).tcp(40000, 80).payload(32).build(), Dir::egress, kEgressDrop,
           {kDropped}},
      Case{"Egress_ExemptsSshBehindAuthHeaderIPv6", {part2()},
           Packet().ipv6(A6, B6).ext6(kAuth, 24).tcp(40000, 22).payload(32).build(), Dir::egress, kNext,
           {kExempted}},
      Case{"Egress_HopByHopBeforeAuthHeaderReachesPortsIPv6", {dport80},
           Packet().ipv6(A6, OUT6).ext6(kHopByHop, 16).ext6(kAuth, 24).tcp(40000, 80).payload(32).build(),
           Dir::egress, kEgressDrop, {kDropped}},
      // Truncated headers pass (a fault that would drop the full frame is active in each case).
      Case{"Egress_TruncatedVlanTagPasses", {part2()}, cut(Packet().vlan(100).ipv4(A4, B4).tcp(40000, 80),
                                                            Layer::vlan, 2),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedSecondVlanTagPasses", {part2()},
           cut(Packet().vlan(300, kEth8021AD).vlan(100).ipv6(A6, B6).tcp(40000, 80), Layer::vlan, 6), Dir::egress,
           kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      // A frame cut inside the IP header sits behind a VLAN tag: 6.18's BPF_PROG_TEST_RUN refuses
      // (EINVAL) an untagged ETH_P_IP/ETH_P_IPV6 frame too short for its IP header before the
      // program runs, but does not look behind a tag, so this is how the program's check is
      // reached on every kernel.
      Case{"Egress_VlanFrameEndingBeforeIpHeaderPassesIPv4", {part2()},
           cut(Packet().vlan(100).ipv4(A4, B4).tcp(40000, 80), Layer::ipv4, 0), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedHeaderPassesIPv4", {part2()},
           cut(Packet().vlan(100).ipv4(A4, B4).tcp(40000, 80), Layer::ipv4, 19), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedHeaderPassesIPv6", {part2()},
           cut(Packet().vlan(100).ipv6(A6, B6).tcp(40000, 80), Layer::ipv6, 39), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedHeaderBehindQinQPassesIPv6", {part2()},
           cut(Packet().vlan(300, kEth8021AD).vlan(100).ipv6(A6, B6).tcp(40000, 80), Layer::ipv6, 20), Dir::egress,
           kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedTcpPassesIPv4", {part2()}, cut(Packet().ipv4(A4, B4).tcp(40000, 80), Layer::tcp, 19),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedTcpPassesIPv6", {part2()}, cut(Packet().ipv6(A6, B6).tcp(40000, 80), Layer::tcp, 12),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedUdpPassesIPv4", {part2()}, cut(Packet().ipv4(A4, B4).udp(5000, 6000), Layer::udp, 7),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedUdpPassesIPv6", {part2()}, cut(Packet().ipv6(A6, B6).udp(5000, 6000), Layer::udp, 4),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedIcmpPassesIPv4", {part2()}, cut(Packet().ipv4(A4, B4).icmp(8), Layer::icmp, 3),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedIcmpPassesIPv6", {part2()}, cut(Packet().ipv6(A6, B6).icmp6(128), Layer::icmp6, 3),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedExtensionHeaderPassesIPv6", {part2()},
           cut(Packet().ipv6(A6, B6).ext6(kHopByHop, 8).tcp(40000, 80), Layer::ext6, 1), Dir::egress, kNext,
           {kNone}}
          .stat(FL_STAT_TRUNCATED),
      Case{"Egress_TruncatedFragmentHeaderPassesIPv6", {part2()},
           cut(Packet().ipv6(A6, B6).frag6(100, false).raw(6, 32), Layer::ext6, 7), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_TRUNCATED),
      // Not IP.
      Case{"Egress_ArpPassesAsNotIp", {part2()}, Packet().arp_request(A4, B4).build(), Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_NOT_IP),
      Case{"Ingress_ArpPassesAsNotIp", {loss100()}, Packet().arp_request(B4, A4).build(), Dir::ingress, kNext,
           {kNone}}
          .stat(FL_STAT_NOT_IP),
      Case{"Egress_UnknownEthertypePassesAsNotIp", {loss100()}, Packet().payload(64).build(), Dir::egress, kNext,
           {kNone}}
          .stat(FL_STAT_NOT_IP),
      Case{"Egress_ArpInsideVlanPassesAsNotIp", {loss100()}, Packet().vlan(100).arp_request(A4, B4).build(),
           Dir::egress, kNext, {kNone}}
          .stat(FL_STAT_NOT_IP),
  };
}

std::vector<Case> nd_cases() {
  FB icmp_part = part2();
  icmp_part.proto(Proto::icmp);
  FB icmp_loss = loss100();
  icmp_loss.proto(Proto::icmp);
  return {
      // ICMPv6 133..137 (RS, RA, NS, NA, redirect) pass unless the fault selects icmp.
      {"Egress_RouterSolicitationPassesPartitionIPv6", {part2()}, icmp6_type(A6, B6, 133), Dir::egress, kNext,
       {kNone}},
      {"Ingress_RouterAdvertisementPassesPartitionIPv6", {part2()}, icmp6_type(B6, A6, 134), Dir::ingress, kNext,
       {kNone}},
      {"Egress_NeighbourSolicitationPassesPartitionIPv6", {part2()}, icmp6_type(A6, B6, 135), Dir::egress, kNext,
       {kNone}},
      {"Ingress_NeighbourAdvertisementPassesLossIPv6", {loss100()}, icmp6_type(B6, A6, 136), Dir::ingress, kNext,
       {kNone}},
      {"Egress_RedirectPassesPartitionIPv6", {part2()}, icmp6_type(A6, B6, 137), Dir::egress, kNext, {kNone}},
      {"Egress_MldDoneBelowNdRangeDroppedIPv6", {part2()}, icmp6_type(A6, B6, 132),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_RouterRenumberingAboveNdRangeDroppedIPv6", {part2()}, icmp6_type(A6, B6, 138), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_NeighbourSolicitationDroppedByIcmpPartitionIPv6", {icmp_part}, icmp6_type(A6, B6, 135), Dir::egress,
       kEgressDrop, {kDropped}},
      {"Ingress_NeighbourAdvertisementDroppedByIcmpLossIPv6", {icmp_loss}, icmp6_type(B6, A6, 136), Dir::ingress,
       kIngressDrop, {kDropped}},
      // ND is an ICMPv6 notion: ICMPv4 type 135 is just ICMP.
      {"Egress_IcmpType135IsNotNdIPv4", {part2()}, ip(A4, B4).icmp(135).build(), Dir::egress, kEgressDrop, {kDropped}},
  };
}

std::vector<Case> exemption_cases() {
  FB no_default = part2();
  no_default.no_default_exempt();
  FB loss_no_default = loss100();
  loss_no_default.no_default_exempt();
  FB exempt_b_half = part2();
  exempt_b_half.exempt("10.0.2.0/25").exempt("fd00:b::/80");
  FB exempt_8080 = part2();
  exempt_8080.exempt("0.0.0.0/0/tcp:8080");
  FB exempt_icmp6 = part2();
  exempt_icmp6.exempt("::/0/icmp");
  FB mixed_rules = part2();
  mixed_rules.exempt("10.0.2.0/24/udp:7000").exempt("10.0.3.0/24/tcp:8080");
  FB exempt_b = part2();
  exempt_b.exempt("10.0.2.0/24");

  return {
      // Defaults: tcp/udp 22 and 53 from anywhere, as source or destination port.
      {"Egress_ExemptsSshDportIPv4", {part2()}, tcp(A4, B4, 40000, 22), Dir::egress, kNext, {kExempted}},
      {"Egress_ExemptsSshSportIPv4", {part2()}, tcp(A4, B4, 22, 40000), Dir::egress, kNext, {kExempted}},
      {"Egress_ExemptsSshDportIPv6", {part2()}, tcp(A6, B6, 40000, 22), Dir::egress, kNext, {kExempted}},
      {"Ingress_ExemptsSshSportIPv6", {part2()}, tcp(B6, A6, 22, 40000), Dir::ingress, kNext, {kExempted}},
      {"Egress_ExemptsUdp22IPv4", {part2()}, udp(A4, B4, 40000, 22), Dir::egress, kNext, {kExempted}},
      {"Egress_ExemptsDnsUdpDportIPv4", {part2()}, udp(A4, B4, 40000, 53), Dir::egress, kNext, {kExempted}},
      {"Ingress_ExemptsDnsUdpSportIPv4", {loss100()}, udp(OUT4, A4, 53, 40000), Dir::ingress, kNext, {kExempted}},
      {"Egress_ExemptsDnsUdpDportIPv6", {part2()}, udp(A6, B6, 40000, 53), Dir::egress, kNext, {kExempted}},
      {"Egress_ExemptsDnsTcpDportIPv4", {loss100()}, tcp(A4, OUT4, 40000, 53), Dir::egress, kNext, {kExempted}},
      {"Egress_ExemptsDnsTcpSportIPv6", {part2()}, tcp(A6, B6, 53, 40000), Dir::egress, kNext, {kExempted}},
      {"Egress_DoesNotExemptTcp23IPv4", {part2()}, tcp(A4, B4, 40000, 23), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_DoesNotExemptIcmpIPv6", {part2()}, echo(A6, B6), Dir::egress, kEgressDrop, {kDropped}},
      // The metadata service, any protocol, as destination or source.
      {"Egress_ExemptsMetadataServiceIPv4", {loss100()}, tcp(A4, META, 40000, 80), Dir::egress, kNext,
       {kExempted}},
      {"Ingress_ExemptsMetadataServiceReplyIPv4", {loss100()}, tcp(META, A4, 80, 40000), Dir::ingress, kNext,
       {kExempted}},
      {"Egress_ExemptsMetadataServiceIcmpIPv4", {loss100()}, echo(A4, META), Dir::egress, kNext, {kExempted}},
      {"Egress_DoesNotExemptMetadataNeighbourIPv4", {loss100()}, tcp(A4, "169.254.169.253", 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}},
      // default_exempt = false.
      {"Egress_NoDefaultExemptDropsSshIPv4", {no_default}, tcp(A4, B4, 40000, 22),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_NoDefaultExemptDropsSshIPv6", {no_default}, tcp(A6, B6, 22, 40000),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_NoDefaultExemptDropsDnsIPv4", {no_default}, udp(A4, B4, 40000, 53),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_NoDefaultExemptDropsMetadataIPv4", {loss_no_default}, tcp(A4, META, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      // Custom exemptions: CIDR holding either endpoint; proto; proto:port on either port.
      {"Egress_CustomExemptCidrProtectsDstIPv4", {exempt_b_half}, tcp(A4, B4, 40000, 80), Dir::egress, kNext,
       {kExempted}},
      {"Ingress_CustomExemptCidrProtectsSrcIPv4", {exempt_b_half}, tcp(B4, A4, 80, 40000), Dir::ingress, kNext,
       {kExempted}},
      {"Egress_CustomExemptCidrOutsidePrefixDropsIPv4", {exempt_b_half}, tcp(A4, "10.0.2.200", 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_CustomExemptCidrProtectsIPv6", {exempt_b_half}, tcp(A6, B6, 40000, 80), Dir::egress, kNext,
       {kExempted}},
      {"Egress_CustomExemptCidrOutsidePrefixDropsIPv6", {exempt_b_half}, tcp(A6, "fd00:b::1:0:0:1", 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_CustomExemptTcpPortProtectsDportIPv4", {exempt_8080}, tcp(A4, B4, 40000, 8080), Dir::egress, kNext,
       {kExempted}},
      {"Ingress_CustomExemptTcpPortProtectsSportIPv4", {exempt_8080}, tcp(B4, A4, 8080, 40000), Dir::ingress, kNext,
       {kExempted}},
      {"Egress_CustomExemptTcpPortDropsUdpSamePortIPv4", {exempt_8080}, udp(A4, B4, 40000, 8080), Dir::egress,
       kEgressDrop, {kDropped}},
      {"Egress_CustomExemptTcpPortDropsOtherPortIPv4", {exempt_8080}, tcp(A4, B4, 40000, 8081),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_CustomExemptTcpPortV4RuleDropsIPv6", {exempt_8080}, tcp(A6, B6, 40000, 8080), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_CustomExemptIcmpProtectsEchoIPv6", {exempt_icmp6}, echo(A6, B6), Dir::egress, kNext, {kExempted}},
      {"Egress_CustomExemptIcmpDropsTcpIPv6", {exempt_icmp6}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      // One rule's CIDR and another rule's port never combine into an exemption.
      {"Egress_ExemptionRulesDoNotMixCidrAndPortIPv4", {mixed_rules}, tcp(A4, B4, 40000, 8080),
       Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ExemptionRuleNeedsItsOwnPortIPv4", {mixed_rules}, udp(A4, B4, 40000, 7000), Dir::egress, kNext,
       {kExempted}},
      // An exemption protects only the faults that carry it; each fault counts itself.
      {"Egress_ExemptionProtectsOnlyItsOwnFaultIPv4", {exempt_b, loss100()}, tcp(A4, B4, 40000, 80), Dir::egress,
       kEgressDrop, {kExempted, kDropped}},
      {"Egress_DefaultExemptBesideNoDefaultFaultIPv6", {part2(), no_default}, tcp(A6, B6, 40000, 22), Dir::egress,
       kEgressDrop, {kExempted, kDropped}},
      {"Egress_ExemptedByEveryStackedFaultPassesIPv4", {part2(), loss100()}, tcp(A4, B4, 40000, 22), Dir::egress,
       kNext, {kExempted, kExempted}},
  };
}

std::vector<Case> lifetime_and_stacking_cases() {
  // The program reads the coarse monotonic clock, up to one tick behind CLOCK_MONOTONIC: "past"
  // must be more than a tick ago (HZ >= 100 everywhere we run).
  FB expired = part2();
  expired.expires_in(-kTickSlack);
  FB expired_loss = loss100();
  expired_loss.expires_in(-kTickSlack);
  FB inactive = part2();
  inactive.inactive();
  FB at1 = part2();
  at1.at_slot(1);
  FB at1_no_bump = part2();
  at1_no_bump.at_slot(1, false);
  FB at0_no_bump = part2();
  at0_no_bump.at_slot(0, false);
  FB loss0 = FB::loss(0);
  loss0.unvalidated();
  FB lo_only = part2();
  lo_only.on_ifindex(1);  // BPF_PROG_TEST_RUN runs the skb on the namespace's loopback
  FB other_if = part2();
  other_if.on_ifindex(999999);

  return {
      {"Egress_ExpiredSlotPassesIPv4", {expired}, tcp(A4, B4, 40000, 80), Dir::egress, kNext, {kNone}},
      {"Ingress_ExpiredSlotPassesIPv6", {expired_loss}, tcp(B6, A6, 80, 40000), Dir::ingress, kNext, {kNone}},
      {"Egress_InactiveSlotPassesIPv4", {inactive}, tcp(A4, B4, 40000, 80), Dir::egress, kNext, {kNone}},
      Case{"Egress_ExpiredLeasePassesIPv4", {part2()}, tcp(A4, B4, 40000, 80), Dir::egress, kNext, {kNone}}
          .lease(-kTickSlack)
          .stat(FL_STAT_LEASE_OFF),
      Case{"Ingress_ExpiredLeasePassesIPv6", {loss100()}, tcp(B6, A6, 80, 40000), Dir::ingress, kNext, {kNone}}
          .lease(-kTickSlack)
          .stat(FL_STAT_LEASE_OFF),
      Case{"Egress_ZeroLeasePassesIPv4", {part2()}, tcp(A4, B4, 40000, 80), Dir::egress, kNext, {kNone}}
          .zero_lease()
          .stat(FL_STAT_LEASE_OFF),
      Case{"Egress_ExpiredLeaseDoesNotParseArp", {part2()}, Packet().arp_request(A4, B4).build(), Dir::egress,
           kNext, {kNone}}
          .lease(-kTickSlack)
          .stat(FL_STAT_LEASE_OFF),
      // The scan covers slots [0, nslots).
      {"Egress_LastSlotInsideNslotsIsScannedIPv4", {at1}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      Case{"Egress_SlotBeyondNslotsIgnoredIPv4", {at1_no_bump}, tcp(A4, B4, 40000, 80), Dir::egress, kNext, {kNone}}
          .scan_bound(1),
      Case{"Egress_ZeroNslotsPassesIPv6", {at0_no_bump}, tcp(A6, B6, 40000, 80), Dir::egress, kNext, {kNone}}
          .scan_bound(0),
      Case{"Egress_NslotsAbovePoolSizeStillScansIPv4", {at1}, tcp(A4, B4, 40000, 80),
       Dir::egress, kEgressDrop, {kDropped}}
          .scan_bound(FL_MAX_SLOTS + 1000),
      // Stacking: drop wins whatever the order; every matching fault counts itself.
      {"Egress_StackedFaultsBothCountTheDropIPv4", {part2(), loss100()}, tcp(A4, B4, 40000, 80),
       Dir::egress, kEgressDrop, {kDropped, kDropped}},
      {"Egress_StackedDropWinsOverLaterPassIPv6", {part2(), loss0}, tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped, kMatchedOnly}},
      {"Egress_StackedDropWinsOverEarlierPassIPv4", {loss0, part2()}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop,
       {kMatchedOnly, kDropped}},
      {"Egress_StackedPassingFaultsPassIPv4", {loss0, loss0}, tcp(A4, B4, 40000, 80), Dir::egress, kNext,
       {kMatchedOnly, kMatchedOnly}},
      {"Egress_StackedNonMatchingFaultNotCountedIPv6", {part2(), FB::partition({SC, {"2001:db8::/64"}})},
       tcp(A6, B6, 40000, 80), Dir::egress, kEgressDrop, {kDropped, kNone}},
      {"Egress_ExpiredFaultBesideActiveOneIPv4", {expired, loss0}, tcp(A4, B4, 40000, 80), Dir::egress, kNext,
       {kNone, kMatchedOnly}},
      // CIDR closure: the LPM entry of a nested prefix carries the covering prefix's bits.
      {"Egress_ClosureMakesNestedPrefixABridgeIPv4",
       {FB::partition({{"10.0.0.0/8"}, {"10.1.0.0/16"}, {"172.16.0.0/12"}})}, tcp("10.1.2.3", "10.2.0.1", 40000, 80),
       Dir::egress, kNext, {kNone}},
      {"Egress_ClosureNestedPrefixStillCutFromOthersIPv4",
       {FB::partition({{"10.0.0.0/8"}, {"10.1.0.0/16"}, {"172.16.0.0/12"}})},
       tcp("10.1.2.3", "172.16.0.1", 40000, 80), Dir::egress, kEgressDrop, {kDropped}},
      {"Egress_ClosureMakesNestedPrefixABridgeIPv6", {FB::partition({{"fd00::/16"}, {"fd00:1::/32"}})},
       tcp("fd00:1::5", "fd00:2::1", 40000, 80), Dir::egress, kNext, {kNone}},
      {"Egress_ClosureAcrossFaultsIPv4",
       {FB::partition({{"10.0.0.0/8"}, {"192.168.0.0/16"}}), FB::partition({{"10.1.0.0/16"}, {"172.16.0.0/12"}})},
       tcp("10.1.2.3", "192.168.1.1", 40000, 80), Dir::egress, kEgressDrop, {kDropped, kNone}},
      {"Egress_ClosureAcrossFaultsIPv6",
       {FB::partition({{"fd00::/16"}, {"2001:db8::/32"}}), FB::partition({{"fd00:1::/32"}, {"fd01::/16"}})},
       tcp("fd00:1::5", "2001:db8::1", 40000, 80), Dir::egress, kEgressDrop, {kDropped, kNone}},
      // Interface selection (--dev).
      {"Egress_IfaceSelectorDropsOnItsInterfaceIPv4", {lo_only}, tcp(A4, B4, 40000, 80), Dir::egress, kEgressDrop,
       {kDropped}},
      {"Egress_IfaceSelectorPassesOtherInterfaceIPv4", {other_if}, tcp(A4, B4, 40000, 80), Dir::egress, kNext,
       {kNone}},
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (auto part : {partition_cases(), loss_and_selector_cases(), parsing_cases(), nd_cases(), exemption_cases(),
                    lifetime_and_stacking_cases()})
    for (auto& c : part) out.push_back(std::move(c));
  return out;
}

// A drop's verdict depends on the hook; no case in this table shapes, so a redirect on egress is
// a drop.
bool is_drop(const Case& c) {
  return c.verdict == (c.dir == Dir::egress ? kEgressDrop : kIngressDrop);
}

// Fix up the stats that depend on the path: a parse failure or not-IP never reaches the scan.
std::array<uint64_t, FL_STAT_MAX> expected_stats(const Case& c) {
  std::array<uint64_t, FL_STAT_MAX> e{};
  e[FL_STAT_SEEN] = 1;
  e[FL_STAT_DROPPED] = is_drop(c) ? 1 : 0;
  for (auto [s, n] : c.extra_stats) e[s] += n;
  return e;
}

const char* stat_name(int s) {
  switch (s) {
    case FL_STAT_SEEN: return "seen";
    case FL_STAT_NOT_IP: return "not_ip";
    case FL_STAT_TRUNCATED: return "truncated";
    case FL_STAT_FRAGMENT: return "fragment";
    case FL_STAT_LEASE_OFF: return "lease_off";
    case FL_STAT_DROPPED: return "dropped";
  }
  return "?";
}

class Verdict : public ::testing::TestWithParam<Case> {};

TEST_P(Verdict, Run) {
  if (auto why = bpf_skip_reason()) GTEST_SKIP() << *why;
  const Case& c = GetParam();

  auto env = BpfEnv::create();
  ASSERT_TRUE(env.ok()) << env.error().message;
  kernel::Datapath& dp = (*env)->dp();
  std::vector<uint32_t> slots;
  for (const auto& f : c.faults) {
    auto idx = (*env)->install(f);
    ASSERT_TRUE(idx.ok()) << idx.error().message;
    slots.push_back(*idx);
  }
  if (c.nslots) dp.set_nslots(*c.nslots);
  if (c.lease_zero) dp.set_lease(0);
  if (c.lease_in) dp.set_lease(static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns()) + *c.lease_in));

  std::vector<kernel::Counters> before;
  for (uint32_t s : slots) {
    auto k = dp.counters(s);
    ASSERT_TRUE(k.ok()) << k.error().message;
    before.push_back(*k);
  }
  auto stats_before = dp.stats();
  ASSERT_TRUE(stats_before.ok()) << stats_before.error().message;

  int fd = c.dir == Dir::egress ? dp.egress_fd() : dp.ingress_fd();
  auto v = (*env)->run(fd, c.frame);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, c.verdict) << (!is_drop(c)              ? "expected next (-1)"
                                : c.dir == Dir::egress ? "expected an egress drop: redirect to no interface (7)"
                                                       : "expected an ingress drop (2)");

  ASSERT_EQ(c.counters.size(), slots.size()) << "table: one counter expectation per fault";
  for (size_t i = 0; i < slots.size(); i++) {
    auto k = dp.counters(slots[i]);
    ASSERT_TRUE(k.ok()) << k.error().message;
    Cnt got{k->matched - before[i].matched, k->dropped - before[i].dropped, k->exempted - before[i].exempted};
    EXPECT_EQ(got, c.counters[i]) << "fault #" << i << " (slot " << slots[i] << ")";
  }
  auto stats_after = dp.stats();
  ASSERT_TRUE(stats_after.ok()) << stats_after.error().message;
  auto want = expected_stats(c);
  for (int s = 0; s < FL_STAT_MAX; s++)
    EXPECT_EQ((*stats_after)[s] - (*stats_before)[s], want[s]) << "fl_stats[" << stat_name(s) << "]";
}

INSTANTIATE_TEST_SUITE_P(Table, Verdict, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace fl::test
