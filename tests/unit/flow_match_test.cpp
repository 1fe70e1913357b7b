// Tier 0: core::connection_matches, which connections a fault cuts. Each case is written as the
// data path would see the connection's packets in each direction (bpf/faultline.bpf.c).
#include "core/flow_match.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/model.h"
#include "core/parse.h"

namespace fl::core {
namespace {

Cidr C(std::string_view s) {
  auto r = parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : Cidr{};
}

std::vector<Cidr> Cs(std::string_view s) {
  auto r = parse_cidr_list(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : std::vector<Cidr>{};
}

Flow F(std::string_view local, uint16_t lport, std::string_view remote, uint16_t rport, Proto p = Proto::tcp) {
  return Flow{C(local), C(remote), lport, rport, p};
}

// The same connection seen from its other end.
Flow Mirror(const Flow& f) { return Flow{f.remote, f.local, f.rport, f.lport, f.proto}; }

bool M(const FaultSpec& s, const Flow& f, const std::vector<Exemption>& daemon = {}) {
  return connection_matches(s, daemon, f);
}

FaultSpec Partition(std::string_view a, std::string_view b, bool one_way = false) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.sides = {Side{"a", Cs(a)}, Side{"b", Cs(b)}};
  s.one_way = one_way;
  s.reset = true;
  return s;
}

FaultSpec Isolate(std::string_view cidrs) {
  FaultSpec s;
  s.kind = FaultKind::isolate;
  s.sides = {Side{"", Cs(cidrs)}};
  s.reset = true;
  return s;
}

FaultSpec Loss() {
  FaultSpec s;
  s.kind = FaultKind::loss;
  s.loss_percent = 100;
  return s;
}

// ---------------------------------------------------------------- partition

TEST(FlowMatch, PartitionCutsConnectionsAcrossSidesFromEitherEnd) {
  FaultSpec s = Partition("10.0.1.0/24,fd00:1::/64", "10.0.2.0/24,fd00:2::/64");
  const Flow across = F("10.0.1.5", 40000, "10.0.2.9", 80);
  EXPECT_TRUE(M(s, across));
  EXPECT_TRUE(M(s, Mirror(across)));
  EXPECT_TRUE(M(s, F("fd00:1::5", 40000, "fd00:2::9", 80)));
  EXPECT_FALSE(M(s, F("10.0.1.5", 40000, "10.0.1.6", 80))) << "within a side";
  EXPECT_FALSE(M(s, F("10.0.2.5", 40000, "10.0.2.6", 80))) << "within a side";
  EXPECT_FALSE(M(s, F("10.0.1.5", 40000, "10.0.3.9", 80))) << "one end in no side";
  EXPECT_FALSE(M(s, F("10.0.3.5", 40000, "10.0.2.9", 80))) << "one end in no side";
  EXPECT_FALSE(M(s, F("10.0.3.5", 40000, "10.0.4.9", 80))) << "neither end in a side";
}

TEST(FlowMatch, PartitionSidesNeverMatchTheOtherFamily) {
  FaultSpec s = Partition("10.0.1.0/24", "10.0.2.0/24");
  EXPECT_FALSE(M(s, F("fd00:1::5", 40000, "fd00:2::9", 80)));
  FaultSpec any = Partition("0.0.0.0/1", "128.0.0.0/1");
  EXPECT_TRUE(M(any, F("10.0.0.1", 1, "200.0.0.1", 2)));
  EXPECT_FALSE(M(any, F("::1", 1, "fd00::1", 2)));
}

TEST(FlowMatch, BridgeKeepsItsConnectionsToBothSides) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.sides = {Side{"x", Cs("10.0.1.0/24,10.0.9.5")}, Side{"y", Cs("10.0.2.0/24,10.0.9.5")},
             Side{"z", Cs("10.0.3.0/24")}};
  EXPECT_FALSE(M(s, F("10.0.9.5", 1000, "10.0.1.7", 80)));
  EXPECT_FALSE(M(s, F("10.0.9.5", 1000, "10.0.2.7", 80)));
  EXPECT_TRUE(M(s, F("10.0.9.5", 1000, "10.0.3.7", 80))) << "the bridge is not in z";
  EXPECT_TRUE(M(s, F("10.0.1.7", 1000, "10.0.2.7", 80)));
  EXPECT_TRUE(M(s, F("10.0.3.7", 1000, "10.0.2.7", 80)));
}

TEST(FlowMatch, OneWayPartitionCutsConnectionsWithOneEndInTheFirstSide) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.one_way = true;
  s.sides = {Side{"a", Cs("10.0.1.0/24")}, Side{"b", Cs("10.0.2.0/24")}, Side{"c", Cs("10.0.3.0/24")}};
  // a -> b is dropped. A connection opened from b to a carries a -> b packets too (its replies).
  EXPECT_TRUE(M(s, F("10.0.1.5", 40000, "10.0.2.9", 80)));
  EXPECT_TRUE(M(s, F("10.0.2.9", 40000, "10.0.1.5", 80)));
  EXPECT_TRUE(M(s, F("10.0.3.9", 40000, "10.0.1.5", 80)));
  EXPECT_FALSE(M(s, F("10.0.2.9", 40000, "10.0.3.5", 80))) << "b <-> c: neither end in the first side";
  EXPECT_FALSE(M(s, F("10.0.1.9", 40000, "10.0.1.5", 80))) << "within the first side";
  EXPECT_FALSE(M(s, F("10.0.1.9", 40000, "10.0.4.5", 80))) << "the other end in no side";
}

// ---------------------------------------------------------------- isolate

TEST(FlowMatch, IsolateCutsConnectionsBetweenInsideAndOutside) {
  FaultSpec s = Isolate("10.0.0.7,fd00::7");
  const Flow f = F("10.0.0.7", 8080, "10.0.0.2", 51000);
  EXPECT_TRUE(M(s, f));
  EXPECT_TRUE(M(s, Mirror(f)));
  EXPECT_TRUE(M(s, F("fd00::7", 8080, "fd00::2", 51000)));
  EXPECT_TRUE(M(s, F("10.0.0.7", 8080, "192.0.2.1", 51000))) << "outside means anywhere else";
  EXPECT_FALSE(M(s, F("10.0.0.2", 8080, "10.0.0.3", 51000))) << "both outside";
}

TEST(FlowMatch, IsolateOfAPrefixKeepsConnectionsInsideIt) {
  FaultSpec s = Isolate("10.0.1.0/24");
  EXPECT_FALSE(M(s, F("10.0.1.7", 8080, "10.0.1.8", 51000)));
  EXPECT_TRUE(M(s, F("10.0.1.7", 8080, "10.0.2.8", 51000)));
}

// ---------------------------------------------------------------- selectors

TEST(FlowMatch, PortsAreTestedPerPacketOrientation) {
  FaultSpec s = Isolate("10.0.0.7");
  s.match.proto = Proto::tcp;
  s.match.dport = PortRange{80, 80};
  EXPECT_TRUE(M(s, F("10.0.0.2", 40000, "10.0.0.7", 80))) << "client end: its packets go to port 80";
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000))) << "server end: the client's packets go to 80";
  EXPECT_FALSE(M(s, F("10.0.0.7", 81, "10.0.0.2", 40000)));

  s.match.sport = PortRange{40000, 40010};
  EXPECT_TRUE(M(s, F("10.0.0.2", 40005, "10.0.0.7", 80)));
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40005)));
  // Both ports must fit one packet: 80 -> 40005 would need sport 80.
  EXPECT_FALSE(M(s, F("10.0.0.2", 80, "10.0.0.7", 80)));
  EXPECT_FALSE(M(s, F("10.0.0.2", 40005, "10.0.0.7", 40005)));
}

TEST(FlowMatch, SourceAndDestinationMustFitOnePacket) {
  FaultSpec s = Loss();
  s.match.dst = Cs("10.0.0.7");
  EXPECT_TRUE(M(s, F("10.0.0.2", 40000, "10.0.0.7", 80)));
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000))) << "the reply direction carries the dst";
  EXPECT_FALSE(M(s, F("10.0.0.2", 40000, "10.0.0.3", 80)));

  // X -> X never happens on a connection between X and Y, although X is both a src and a dst.
  s.match.src = Cs("10.0.0.2");
  s.match.dst = Cs("10.0.0.2");
  EXPECT_FALSE(M(s, F("10.0.0.2", 40000, "10.0.0.7", 80)));
  s.match.dst = Cs("10.0.0.7");
  EXPECT_TRUE(M(s, F("10.0.0.2", 40000, "10.0.0.7", 80)));
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000)));
}

TEST(FlowMatch, AddressesAndPortsMustFitTheSameOrientation) {
  FaultSpec s = Loss();
  s.match.proto = Proto::tcp;
  s.match.dst = Cs("10.0.0.7");
  s.match.dport = PortRange{80, 80};
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 5000)));
  // Packets to 10.0.0.7 go to port 5000 here; the ones to port 80 go to 10.0.0.2.
  EXPECT_FALSE(M(s, F("10.0.0.7", 5000, "10.0.0.2", 80)));
}

TEST(FlowMatch, SelectorsNarrowPartitionsAndIsolates) {
  FaultSpec s = Partition("10.0.1.0/24", "10.0.2.0/24");
  s.match.src = Cs("10.0.1.5");
  EXPECT_TRUE(M(s, F("10.0.2.9", 80, "10.0.1.5", 40000)));
  EXPECT_FALSE(M(s, F("10.0.2.9", 80, "10.0.1.6", 40000)));
}

TEST(FlowMatch, ProtocolMustAllowTheFlow) {
  FaultSpec s = Isolate("10.0.0.7");
  const Flow tcp = F("10.0.0.7", 80, "10.0.0.2", 40000);
  for (Proto p : {Proto::all, Proto::tcp}) {
    s.match.proto = p;
    EXPECT_TRUE(M(s, tcp)) << proto_name(p);
  }
  for (Proto p : {Proto::udp, Proto::icmp}) {
    s.match.proto = p;
    EXPECT_FALSE(M(s, tcp)) << proto_name(p);
  }
  s.match.proto = Proto::udp;
  EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000, Proto::udp)));
}

// A port without a protocol (proto all) is TCP and UDP, as the data path matches it: a reset
// of such a fault destroys the TCP connections on that port and no others, and exemptions still
// spare theirs.
TEST(FlowMatch, PortWithoutProtocolCutsTcpOnThatPort) {
  FaultSpec s = Partition("10.0.1.0/24", "10.0.2.0/24");
  s.match.dport = {5432, 5432};
  EXPECT_TRUE(M(s, F("10.0.1.5", 40000, "10.0.2.7", 5432)));
  EXPECT_TRUE(M(s, Mirror(F("10.0.1.5", 40000, "10.0.2.7", 5432))));
  EXPECT_FALSE(M(s, F("10.0.1.5", 40000, "10.0.2.7", 5433)));
  s.exempt = {Exemption{C("10.0.2.7/32"), Proto::tcp, 5432}};
  EXPECT_FALSE(M(s, F("10.0.1.5", 40000, "10.0.2.7", 5432)));
}

TEST(FlowMatch, DirectionIsIgnored) {
  for (Direction d : {Direction::ingress, Direction::egress, Direction::both}) {
    FaultSpec s = Isolate("10.0.0.7");
    s.match.direction = d;
    EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000))) << direction_name(d);
    s.match.src = Cs("10.0.0.2");
    EXPECT_TRUE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000))) << direction_name(d);
  }
}

TEST(FlowMatch, NewOnlyNeverCutsAConnection) {
  FaultSpec s = Isolate("10.0.0.7");
  s.match.new_only = true;
  EXPECT_FALSE(M(s, F("10.0.0.7", 80, "10.0.0.2", 40000)));
}

TEST(FlowMatch, NoSelectorMatchesEverything) {
  EXPECT_TRUE(M(Loss(), F("10.0.0.7", 80, "10.0.0.2", 40000)));
  EXPECT_TRUE(M(Loss(), F("fd00::7", 80, "fd00::2", 40000)));
}

TEST(FlowMatch, MatrixNeedsAPairSpanningTheEnds) {
  FaultSpec s;
  s.kind = FaultKind::matrix;
  s.sides = {Side{"eu", Cs("10.0.1.0/24")}, Side{"us", Cs("10.0.2.0/24")}, Side{"ap", Cs("10.0.3.0/24")}};
  s.pairs = {MatrixPair{0, 1, {}}};
  EXPECT_TRUE(M(s, F("10.0.1.5", 1, "10.0.2.5", 2)));
  EXPECT_TRUE(M(s, F("10.0.2.5", 2, "10.0.1.5", 1)));
  EXPECT_FALSE(M(s, F("10.0.1.5", 1, "10.0.3.5", 2)));
}

// ---------------------------------------------------------------- exemptions

TEST(FlowMatch, DefaultExemptionsSpareSshDnsAndMetadata) {
  FaultSpec s = Isolate("10.0.0.7,fd00::7,169.254.169.254");
  EXPECT_FALSE(M(s, F("10.0.0.7", 22, "10.0.0.2", 40000))) << "sshd on the isolated node";
  EXPECT_FALSE(M(s, F("10.0.0.7", 40000, "10.0.0.2", 22))) << "ssh from the isolated node";
  EXPECT_FALSE(M(s, F("fd00::7", 22, "fd00::2", 40000)));
  EXPECT_FALSE(M(s, F("10.0.0.7", 40000, "10.0.0.53", 53)));
  EXPECT_FALSE(M(s, F("10.0.0.2", 40000, "169.254.169.254", 80)));
  EXPECT_TRUE(M(s, F("10.0.0.7", 2222, "10.0.0.2", 40000)));
  s.default_exempt = false;
  EXPECT_TRUE(M(s, F("10.0.0.7", 22, "10.0.0.2", 40000)));
  EXPECT_TRUE(M(s, F("10.0.0.2", 40000, "169.254.169.254", 80)));
}

TEST(FlowMatch, DaemonExemptionsHoldEvenWithoutTheDefaults) {
  FaultSpec s = Isolate("10.0.0.7");
  s.default_exempt = false;
  const std::vector<Exemption> daemon = {Exemption{C("10.9.0.0/16"), Proto::tcp, 6443},
                                         Exemption{C("10.8.0.1"), Proto::all, 0}};
  EXPECT_FALSE(M(s, F("10.0.0.7", 40000, "10.9.1.1", 6443), daemon));
  EXPECT_FALSE(M(s, F("10.9.1.1", 6443, "10.0.0.7", 40000), daemon)) << "either endpoint, either port";
  EXPECT_TRUE(M(s, F("10.0.0.7", 40000, "10.9.1.1", 6444), daemon)) << "another port";
  EXPECT_TRUE(M(s, F("10.0.0.7", 40000, "10.10.1.1", 6443), daemon)) << "another address";
  EXPECT_FALSE(M(s, F("10.0.0.7", 40000, "10.8.0.1", 1234), daemon)) << "a whole address";
}

TEST(FlowMatch, TheFaultsOwnExemptionsFollowTheDataPathsRules) {
  FaultSpec s = Isolate("10.0.0.7,fd00::7");
  s.default_exempt = false;
  s.exempt = {Exemption{C("0.0.0.0/0"), Proto::udp, 5000}};
  EXPECT_TRUE(M(s, F("10.0.0.7", 5000, "10.0.0.2", 40000))) << "a UDP rule spares no TCP connection";
  s.exempt = {Exemption{C("0.0.0.0/0"), Proto::tcp, 0}};
  EXPECT_FALSE(M(s, F("10.0.0.7", 5000, "10.0.0.2", 40000))) << "tcp, any port";
  EXPECT_TRUE(M(s, F("fd00::7", 5000, "fd00::2", 40000))) << "an IPv4 rule spares no IPv6 connection";
  // proto all with a port is invalid; the data path never looks such a rule up.
  s.exempt = {Exemption{C("0.0.0.0/0"), Proto::all, 5000}};
  EXPECT_TRUE(M(s, F("10.0.0.7", 5000, "10.0.0.2", 40000)));
}

// ---------------------------------------------------------------- standalone reset

TEST(FlowMatch, ResetAsFaultIsALossOfEverythingItSelects) {
  ResetSpec r;
  r.match.dst = Cs("10.0.0.7");
  r.match.dport = PortRange{5432, 5432};
  r.targets = {Target{}};
  FaultSpec f = reset_as_fault(r);
  EXPECT_EQ(f.kind, FaultKind::loss);
  EXPECT_EQ(f.loss_percent, 100);
  EXPECT_EQ(f.match.direction, Direction::both);
  EXPECT_EQ(f.targets, r.targets);
  EXPECT_TRUE(M(f, F("10.0.0.7", 5432, "10.0.0.2", 40000)));
  EXPECT_TRUE(M(f, F("10.0.0.2", 40000, "10.0.0.7", 5432)));
  EXPECT_FALSE(M(f, F("10.0.0.7", 5433, "10.0.0.2", 40000)));

  ResetSpec all;
  all.all = true;
  FaultSpec everything = reset_as_fault(all);
  EXPECT_TRUE(M(everything, F("10.0.0.7", 5432, "10.0.0.2", 40000)));
  EXPECT_FALSE(M(everything, F("10.0.0.7", 22, "10.0.0.2", 40000))) << "SSH survives reset --all";
  all.default_exempt = false;
  EXPECT_TRUE(M(reset_as_fault(all), F("10.0.0.7", 22, "10.0.0.2", 40000)));
  all.exempt = {Exemption{C("10.0.0.2"), Proto::all, 0}};
  EXPECT_FALSE(M(reset_as_fault(all), F("10.0.0.7", 22, "10.0.0.2", 40000)));
}

}  // namespace
}  // namespace fl::core
