// Tier 0: core::validate, one passing spec per kind, the defaults it fills, and one case per
// rule that must be refused with a message naming the field.
#include "core/validate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/parse.h"

namespace fl::core {
namespace {

using std::chrono::milliseconds;
using namespace std::string_literals;

Cidr C(std::string_view s) {
  auto r = parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Cidr{};
}

// 10.a.b.c/32 for i, distinct for i < 2^24.
Cidr Host(size_t i) {
  Cidr c{4, 32, {}};
  c.addr[0] = 10;
  c.addr[1] = static_cast<uint8_t>(i >> 16);
  c.addr[2] = static_cast<uint8_t>(i >> 8);
  c.addr[3] = static_cast<uint8_t>(i);
  return c;
}

FaultSpec Partition() {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.sides = {Side{"a", {C("10.0.0.0/24")}}, Side{"b", {C("10.0.1.0/24"), C("fd00::/64")}}};
  return s;
}

FaultSpec Isolate() {
  FaultSpec s;
  s.kind = FaultKind::isolate;
  s.sides = {Side{"", {C("10.0.0.5")}}};
  return s;
}

FaultSpec Loss() {
  FaultSpec s;
  s.kind = FaultKind::loss;
  s.loss_percent = 30;
  return s;
}

void ExpectValid(FaultSpec& s) {
  const Status st = validate(s);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

// ---------------------------------------------------------------------------------------------
// Specs that pass, and what validate fills in.

TEST(Validate, PartitionPassesAndGetsHostTarget) {
  FaultSpec s = Partition();
  s.name = "split-brain.1";
  ExpectValid(s);
  ASSERT_EQ(s.targets.size(), 1u);
  EXPECT_EQ(s.targets[0], Target{});
  EXPECT_EQ(s.sides[0].name, "a");  // user names are kept
  EXPECT_EQ(s.sides[1].name, "b");
  EXPECT_EQ(s.match.proto, Proto::all);
}

TEST(Validate, UnnamedSidesGetPositionalNames) {
  FaultSpec s = Partition();
  s.sides[0].name.clear();
  s.sides[1].name.clear();
  s.sides.push_back(Side{"", {C("10.0.2.0/24")}});
  ExpectValid(s);
  EXPECT_EQ(s.sides[0].name, "s1");
  EXPECT_EQ(s.sides[1].name, "s2");
  EXPECT_EQ(s.sides[2].name, "s3");
}

TEST(Validate, IsolateWithOneSide) {
  FaultSpec s = Isolate();
  ExpectValid(s);
  EXPECT_EQ(s.sides[0].name, "s1");
}

TEST(Validate, LossWithAllItsOptions) {
  for (double loss : {0.0001, 30.0, 100.0}) {
    FaultSpec s = Loss();
    s.loss_percent = loss;
    s.correlation_percent = 99.99;
    s.seed = 42;
    s.match.src = {C("10.0.0.0/8")};
    s.match.dst = {C("fd00::/8")};
    s.match.proto = Proto::udp;
    s.match.dport = {53, 53};
    s.match.direction = Direction::egress;
    ExpectValid(s);
  }
}

TEST(Validate, OneWayPartition) {
  FaultSpec s = Partition();
  s.one_way = true;
  ExpectValid(s);
}

TEST(Validate, MaximumSides) {
  FaultSpec s = Partition();
  s.sides.clear();
  for (size_t i = 0; i < kMaxSidesPerFault; ++i) s.sides.push_back(Side{"", {Host(i)}});
  ExpectValid(s);
  EXPECT_EQ(s.sides.back().name, "s16");
}

TEST(Validate, NewOnlyImpliesTcp) {
  FaultSpec s = Partition();
  s.match.new_only = true;
  s.match.dport = {80, 80};  // a port is fine too, since the protocol becomes tcp
  ExpectValid(s);
  EXPECT_EQ(s.match.proto, Proto::tcp);

  FaultSpec t = Partition();
  t.match.new_only = true;
  t.match.proto = Proto::tcp;
  ExpectValid(t);
  EXPECT_EQ(t.match.proto, Proto::tcp);
}

TEST(Validate, PortsWithTcpUdpOrAll) {
  // all with a port is TCP and UDP: only they carry ports, so only they can match.
  for (Proto p : {Proto::tcp, Proto::udp, Proto::all}) {
    FaultSpec s = Partition();
    s.match.proto = p;
    s.match.sport = {1000, 2000};
    s.match.dport = {0, 0};
    ExpectValid(s);
  }
}

TEST(Validate, DportWithoutProtoStaysAllAndKeepsReset) {
  FaultSpec s = Partition();
  s.match.dport = {5432, 5432};
  s.reset = true;  // a reset destroys the TCP part of what the fault cuts
  ExpectValid(s);
  EXPECT_EQ(s.match.proto, Proto::all);
}

TEST(Validate, LimitsAreInclusive) {
  FaultSpec s = Partition();
  s.exempt.assign(kMaxExemptionsPerFault, Exemption{C("10.0.0.0/8"), Proto::tcp, 22});
  for (size_t i = 0; i < kMaxTargetsPerFault; ++i) {
    s.targets.push_back(Target{Target::Kind::pid, std::to_string(i + 1)});
  }
  s.devs = {"eth0", "veth-abc.1", "abcdefghijklmno", "eth0@if7"};
  s.duration = kMinDuration;
  ExpectValid(s);
  EXPECT_EQ(s.targets.size(), kMaxTargetsPerFault);  // given targets are kept, host not added
  EXPECT_EQ(s.targets[0].str(), "pid:1");

  s.duration = kMaxDuration;
  ExpectValid(s);
}

TEST(Validate, MaximumCidrsAcrossSidesAndMatch) {
  FaultSpec s = Partition();
  s.sides[0].cidrs.clear();
  s.sides[1].cidrs.clear();
  for (size_t i = 0; i < kMaxCidrsPerFault; ++i) {
    auto& into = i < kMaxCidrsPerFault / 2 ? s.sides[0].cidrs : s.sides[1].cidrs;
    into.push_back(Host(i));
  }
  // Move one into each of src and dst so all three places are counted.
  s.match.src.push_back(s.sides[1].cidrs.back());
  s.sides[1].cidrs.pop_back();
  s.match.dst.push_back(s.sides[1].cidrs.back());
  s.sides[1].cidrs.pop_back();
  ExpectValid(s);

  s.match.dst.push_back(Host(kMaxCidrsPerFault));
  const Status st = validate(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "sides, match.src, match.dst: 65537 CIDRs in total; the limit is 65536");
}

TEST(Validate, RefusedSpecIsLeftUntouched) {
  FaultSpec s = Partition();
  s.sides[0].name.clear();
  s.match.new_only = true;
  s.duration = milliseconds(1);
  ASSERT_FALSE(validate(s).ok());
  EXPECT_EQ(s.sides[0].name, "");
  EXPECT_EQ(s.match.proto, Proto::all);
  EXPECT_TRUE(s.targets.empty());
}

// ---------------------------------------------------------------------------------------------
// One refusal per rule.

struct Bad {
  const char* name;
  std::function<FaultSpec()> make;
  std::string want;
};

FaultSpec With(FaultSpec s, const std::function<void(FaultSpec&)>& f) {
  f(s);
  return s;
}

std::vector<Bad> BadSpecs() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {
      // kind and name
      {"unknown kind",
       [] { return With(Partition(), [](auto& s) { s.kind = static_cast<FaultKind>(99); }); },
       "kind: unknown fault kind value 99"},
      {"name starts with dash", [] { return With(Partition(), [](auto& s) { s.name = "-x"; }); },
       "name: invalid fault name \"-x\": must not start with '-'"},
      {"name all digits", [] { return With(Partition(), [](auto& s) { s.name = "42"; }); },
       "name: invalid fault name \"42\": must not be all digits"},
      {"name too long",
       [] { return With(Partition(), [](auto& s) { s.name = std::string(64, 'n'); }); },
       "name: invalid fault name"},

      // partition
      {"partition one side", [] { return With(Partition(), [](auto& s) { s.sides.pop_back(); }); },
       "sides: partition needs at least 2 sides (got 1)"},
      {"partition no sides", [] { return With(Partition(), [](auto& s) { s.sides.clear(); }); },
       "sides: partition needs at least 2 sides (got 0)"},
      {"partition too many sides",
       [] {
         return With(Partition(), [](auto& s) {
           s.sides.clear();
           for (size_t i = 0; i <= kMaxSidesPerFault; ++i) s.sides.push_back(Side{"", {Host(i)}});
         });
       },
       "sides: partition allows at most 16 sides (got 17)"},
      {"side without cidrs",
       [] { return With(Partition(), [](auto& s) { s.sides[1].cidrs.clear(); }); },
       "sides[1].cidrs: side \"b\" has no CIDRs"},
      {"partition with loss_percent",
       [] { return With(Partition(), [](auto& s) { s.loss_percent = 10; }); },
       "loss_percent: only for loss faults, not partition"},
      {"partition with NaN loss_percent",
       [nan] { return With(Partition(), [nan](auto& s) { s.loss_percent = nan; }); },
       "loss_percent: only for loss faults, not partition"},
      {"partition with correlation",
       [] { return With(Partition(), [](auto& s) { s.correlation_percent = 5; }); },
       "correlation_percent: only for loss faults, not partition"},
      {"partition with seed", [] { return With(Partition(), [](auto& s) { s.seed = 0; }); },
       "seed: only for loss faults, not partition"},

      // isolate
      {"isolate two sides",
       [] { return With(Isolate(), [](auto& s) {
              s.sides.push_back(Side{"", {Host(9)}});
            }); },
       "sides: isolate needs exactly 1 side, the nodes to cut off (got 2)"},
      {"isolate no sides", [] { return With(Isolate(), [](auto& s) { s.sides.clear(); }); },
       "sides: isolate needs exactly 1 side, the nodes to cut off (got 0)"},
      {"isolate side without cidrs",
       [] { return With(Isolate(), [](auto& s) { s.sides[0].cidrs.clear(); }); },
       "sides[0].cidrs: side \"s1\" has no CIDRs"},
      {"isolate one_way", [] { return With(Isolate(), [](auto& s) { s.one_way = true; }); },
       "one_way: only for partition faults, not isolate"},
      {"isolate loss_percent", [] { return With(Isolate(), [](auto& s) { s.loss_percent = 1; }); },
       "loss_percent: only for loss faults, not isolate"},
      {"isolate seed", [] { return With(Isolate(), [](auto& s) { s.seed = 1; }); },
       "seed: only for loss faults, not isolate"},

      // loss
      {"loss with sides", [] { return With(Loss(), [](auto& s) { s.sides = Partition().sides; }); },
       "sides: loss takes no sides (got 2); choose traffic with match.src and match.dst"},
      {"loss zero", [] { return With(Loss(), [](auto& s) { s.loss_percent = 0; }); },
       "loss_percent: must be above 0 and at most 100 (got 0)"},
      {"loss above 100", [] { return With(Loss(), [](auto& s) { s.loss_percent = 100.5; }); },
       "loss_percent: must be above 0 and at most 100 (got 100.5)"},
      {"loss negative", [] { return With(Loss(), [](auto& s) { s.loss_percent = -1; }); },
       "loss_percent: must be above 0 and at most 100 (got -1)"},
      {"loss NaN", [nan] { return With(Loss(), [nan](auto& s) { s.loss_percent = nan; }); },
       "loss_percent: must be above 0 and at most 100 (got nan)"},
      {"loss infinite",
       [] {
         return With(Loss(),
                     [](auto& s) { s.loss_percent = std::numeric_limits<double>::infinity(); });
       },
       "loss_percent: must be above 0 and at most 100 (got inf)"},
      {"correlation 100", [] { return With(Loss(), [](auto& s) { s.correlation_percent = 100; }); },
       "correlation_percent: must be at least 0 and below 100 (got 100)"},
      {"correlation negative",
       [] { return With(Loss(), [](auto& s) { s.correlation_percent = -0.5; }); },
       "correlation_percent: must be at least 0 and below 100 (got -0.5)"},
      {"correlation NaN",
       [nan] { return With(Loss(), [nan](auto& s) { s.correlation_percent = nan; }); },
       "correlation_percent: must be at least 0 and below 100 (got nan)"},
      {"loss one_way", [] { return With(Loss(), [](auto& s) { s.one_way = true; }); },
       "one_way: only for partition faults, not loss"},

      // side names
      {"duplicate side names",
       [] { return With(Partition(), [](auto& s) { s.sides[1].name = "a"; }); },
       "sides: duplicate side name \"a\" (sides[0] and sides[1])"},
      {"default name collides with a given one",
       [] {
         return With(Partition(), [](auto& s) {
           s.sides[0].name = "s2";
           s.sides[1].name.clear();
         });
       },
       "sides: duplicate side name \"s2\" (sides[0] and sides[1])"},
      {"bad side name", [] { return With(Partition(), [](auto& s) { s.sides[1].name = "a b"; }); },
       "sides[1].name: invalid side name \"a b\": character \" \" at position 2"},

      // CIDR values built without the parser
      {"side cidr with host bits",
       [] {
         return With(Partition(), [](auto& s) {
           Cidr c = C("10.0.0.0/24");
           c.addr[3] = 1;
           s.sides[0].cidrs.push_back(c);
         });
       },
       "sides[0].cidrs[1]: 10.0.0.1/24 has host bits set; the network is 10.0.0.0/24"},
      {"side cidr bad family",
       [] { return With(Partition(), [](auto& s) { s.sides[0].cidrs[0].family = 5; }); },
       "sides[0].cidrs[0]: address family 5 is not 4 or 6"},
      {"side cidr prefix too long",
       [] { return With(Partition(), [](auto& s) { s.sides[0].cidrs[0].prefix = 33; }); },
       "sides[0].cidrs[0]: prefix length 33 is above 32 for IPv4"},
      {"side cidr IPv6 prefix too long",
       [] { return With(Partition(), [](auto& s) { s.sides[1].cidrs[1].prefix = 129; }); },
       "sides[1].cidrs[1]: prefix length 129 is above 128 for IPv6"},
      {"IPv4 cidr with bytes past the fourth",
       [] { return With(Partition(), [](auto& s) { s.sides[0].cidrs[0].addr[4] = 1; }); },
       "sides[0].cidrs[0]: IPv4 address has bytes set past the fourth"},

      // match
      {"match proto unknown",
       [] { return With(Partition(), [](auto& s) { s.match.proto = static_cast<Proto>(7); }); },
       "match.proto: unknown protocol value 7"},
      {"match direction unknown",
       [] {
         return With(Partition(), [](auto& s) { s.match.direction = static_cast<Direction>(0); });
       },
       "match.direction: unknown direction value 0"},
      {"new_only with udp",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.new_only = true;
           s.match.proto = Proto::udp;
         });
       },
       "match.new_only: needs proto tcp (proto is udp)"},
      {"new_only with icmp",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.new_only = true;
           s.match.proto = Proto::icmp;
         });
       },
       "match.new_only: needs proto tcp (proto is icmp)"},
      {"dport with icmp",
       [] { return With(Partition(), [](auto& s) {
              s.match.proto = Proto::icmp;
              s.match.dport = {80, 80};
            }); },
       "match.dport: port 80 needs proto tcp, udp or all (proto is icmp), since only TCP and UDP have ports"},
      {"sport with icmp",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.proto = Proto::icmp;
           s.match.sport = {1000, 2000};
         });
       },
       "match.sport: port 1000-2000 needs proto tcp, udp or all (proto is icmp), since only TCP and UDP have ports"},
      {"sport reversed",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.proto = Proto::tcp;
           s.match.sport = {90, 80};
         });
       },
       "match.sport: start 90 is above end 80"},
      {"dport reversed",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.proto = Proto::udp;
           s.match.dport = {2, 1};
         });
       },
       "match.dport: start 2 is above end 1"},
      {"match src not canonical",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.src = {C("11.0.0.0/8")};
           s.match.src[0].prefix = 7;
         });
       },
       "match.src[0]: 11.0.0.0/7 has host bits set; the network is 10.0.0.0/7"},
      {"match dst not canonical",
       [] {
         return With(Partition(), [](auto& s) {
           s.match.dst = {C("fd00::/64"), C("fd01::1")};
           s.match.dst[1].prefix = 16;
         });
       },
       "match.dst[1]: fd01::1/16 has host bits set; the network is fd01::/16"},

      // exemptions
      {"too many exemptions",
       [] {
         return With(Partition(), [](auto& s) {
           s.exempt.assign(kMaxExemptionsPerFault + 1, Exemption{C("10.0.0.0/8")});
         });
       },
       "exempt: at most 16 exemptions (got 17)"},
      {"exemption port with proto all",
       [] {
         return With(Partition(), [](auto& s) {
           s.exempt = {Exemption{C("10.0.0.0/8"), Proto::all, 22}};
         });
       },
       "exempt[0]: \"10.0.0.0/8/all:22\": port 22 needs proto tcp or udp (proto is all)"},
      {"exemption port with icmp",
       [] {
         return With(Partition(), [](auto& s) {
           s.exempt = {Exemption{C("10.0.0.0/8"), Proto::tcp, 22},
                       Exemption{C("fd00::/8"), Proto::icmp, 7}};
         });
       },
       "exempt[1]: \"fd00::/8/icmp:7\": port 7 needs proto tcp or udp (proto is icmp)"},
      {"exemption cidr not canonical",
       [] {
         return With(Partition(), [](auto& s) {
           s.exempt = {Exemption{C("10.0.0.1"), Proto::tcp, 22}};
           s.exempt[0].cidr.prefix = 8;
         });
       },
       "exempt[0]: 10.0.0.1/8 has host bits set; the network is 10.0.0.0/8"},
      {"exemption proto unknown",
       [] {
         return With(Partition(), [](auto& s) {
           s.exempt = {Exemption{C("10.0.0.0/8"), static_cast<Proto>(9), 0}};
         });
       },
       "exempt[0]: unknown protocol value 9"},

      // targets
      {"too many targets",
       [] {
         return With(Partition(), [](auto& s) {
           for (size_t i = 0; i <= kMaxTargetsPerFault; ++i) {
             s.targets.push_back(Target{Target::Kind::pid, std::to_string(i + 1)});
           }
         });
       },
       "targets: at most 16 targets (got 17)"},
      {"duplicate targets",
       [] {
         return With(Partition(), [](auto& s) {
           s.targets = {Target{Target::Kind::netns_name, "a"}, Target{},
                        Target{Target::Kind::netns_name, "a"}};
         });
       },
       "targets: duplicate target \"netns:a\" (targets[0] and targets[2])"},
      {"duplicate host targets",
       [] { return With(Partition(), [](auto& s) {
              s.targets = {Target{}, Target{}};
            }); },
       "targets: duplicate target \"host\" (targets[0] and targets[1])"},
      {"host target with a value",
       [] {
         return With(Partition(), [](auto& s) { s.targets = {Target{Target::Kind::host, "x"}}; });
       },
       "targets[0]: host takes no value (got \"x\")"},
      {"netns name with a slash",
       [] {
         return With(Partition(), [](auto& s) {
           s.targets = {Target{Target::Kind::netns_name, "a/b"}};
         });
       },
       "targets[0]: invalid target \"netns:a/b\": namespace name must not contain '/'"},
      {"netns path relative",
       [] {
         return With(Partition(), [](auto& s) {
           s.targets = {Target{}, Target{Target::Kind::netns_path, "x"}};
         });
       },
       "targets[1]: invalid target \"netns-path:x\": path must be absolute"},
      {"pid not a number",
       [] {
         return With(Partition(), [](auto& s) { s.targets = {Target{Target::Kind::pid, "abc"}}; });
       },
       "targets[0]: invalid target \"pid:abc\": process id must be a positive integer"},
      {"pid not canonical",
       [] {
         return With(Partition(), [](auto& s) { s.targets = {Target{Target::Kind::pid, "0042"}}; });
       },
       "targets[0]: \"pid:0042\" is not in canonical form; use \"pid:42\""},
      {"target kind unknown",
       [] {
         return With(Partition(), [](auto& s) {
           s.targets = {Target{static_cast<Target::Kind>(9), "x"}};
         });
       },
       "targets[0]: unknown target kind value 9"},

      // devs
      {"dev empty", [] { return With(Partition(), [](auto& s) { s.devs = {""}; }); },
       "devs[0]: invalid interface name \"\": empty"},
      {"dev too long",
       [] { return With(Partition(), [](auto& s) {
              s.devs = {"eth0", "abcdefghijklmnop"};
            }); },
       "devs[1]: invalid interface name \"abcdefghijklmnop\": longer than 15 characters (got 16)"},
      {"dev dot", [] { return With(Partition(), [](auto& s) { s.devs = {"."}; }); },
       "devs[0]: invalid interface name \".\": cannot be \".\" or \"..\""},
      {"dev dotdot", [] { return With(Partition(), [](auto& s) { s.devs = {".."}; }); },
       "devs[0]: invalid interface name \"..\": cannot be"},
      {"dev slash", [] { return With(Partition(), [](auto& s) { s.devs = {"a/b"}; }); },
       "devs[0]: invalid interface name \"a/b\": contains '/'"},
      {"dev colon", [] { return With(Partition(), [](auto& s) { s.devs = {"eth0:1"}; }); },
       "devs[0]: invalid interface name \"eth0:1\": contains ':'"},
      {"dev space", [] { return With(Partition(), [](auto& s) { s.devs = {"eth 0"}; }); },
       "devs[0]: invalid interface name \"eth 0\": contains whitespace"},
      {"dev tab", [] { return With(Partition(), [](auto& s) { s.devs = {"eth0\t"}; }); },
       "devs[0]: invalid interface name \"eth0\\x09\": contains whitespace"},
      {"dev NUL", [] { return With(Partition(), [](auto& s) { s.devs = {"eth\0"s}; }); },
       "devs[0]: invalid interface name \"eth\\x00\": contains a NUL byte"},
      {"dev duplicate",
       [] { return With(Partition(), [](auto& s) {
              s.devs = {"eth0", "eth1", "eth0"};
            }); },
       "devs: duplicate interface \"eth0\""},

      // duration
      {"duration zero",
       [] { return With(Partition(), [](auto& s) { s.duration = milliseconds(0); }); },
       "duration: 0ms is below the minimum 100ms"},
      {"duration just short",
       [] { return With(Partition(), [](auto& s) { s.duration = milliseconds(99); }); },
       "duration: 99ms is below the minimum 100ms"},
      {"duration negative",
       [] { return With(Partition(), [](auto& s) { s.duration = milliseconds(-1500); }); },
       "duration: -1s500ms is below the minimum 100ms"},
      {"duration just long",
       [] {
         return With(Partition(), [](auto& s) { s.duration = kMaxDuration + milliseconds(1); });
       },
       "duration: 7d1ms is above the maximum 7d"},
  };
}

TEST(Validate, RefusesEveryBrokenRule) {
  for (const Bad& b : BadSpecs()) {
    SCOPED_TRACE(b.name);
    FaultSpec s = b.make();
    const Status st = validate(s);
    ASSERT_FALSE(st.ok()) << "wanted: " << b.want;
    EXPECT_EQ(st.error().code, Errc::invalid_argument);
    // Messages start with the field, so the prefix is checked, not just a substring.
    EXPECT_EQ(st.error().message.substr(0, b.want.size()), b.want) << st.error().message;
  }
}

// Each base spec in the table is valid on its own, so every refusal above is caused by the
// one change the case makes.
TEST(Validate, BaseSpecsAreValid) {
  for (auto make : {Partition, Isolate, Loss}) {
    FaultSpec s = make();
    ExpectValid(s);
  }
}

}  // namespace
}  // namespace fl::core

namespace fl::core {
namespace {

TEST(ValidateSides, IdenticalSidesAreRefusedEvenWrittenDifferently) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.one_way = true;
  s.sides = {{"a", {*parse_cidr("10.9.0.1"), *parse_cidr("10.9.0.2")}},
             {"b", {*parse_cidr("10.9.0.2"), *parse_cidr("10.9.0.1/32")}}};
  auto st = validate(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::invalid_argument);
  EXPECT_NE(st.error().message.find("same CIDRs as sides[0]"), std::string::npos) << st.error().message;
}

// Issue 13 §2: the data path drops a partitioned packet only when its ends share no side, so a
// side holding 0.0.0.0/0 (or ::/0), which every address of the family is then in, made an accepted
// partition that cut nothing of that family. A bridge (a node in two sides, or a narrower side
// within a wider one, as faultctl --hosts narrows for a bridge host) is still fine.
TEST(ValidateSides, ASlashZeroInAPartitionSideIsRefused) {
  struct Case {
    std::vector<std::string> a, b;
    std::string field;
  };
  const std::vector<Case> refused = {
      {{"0.0.0.0/0"}, {"10.200.0.2"}, "sides[0].cidrs[0]"},
      {{"10.200.0.2"}, {"fd00::1", "0.0.0.0/0", "::/0"}, "sides[1].cidrs[1]"},
      {{"::/0"}, {"fd00::/64"}, "sides[0].cidrs[0]"},
      {{"0.0.0.0/0"}, {"fd00::/64"}, "sides[0].cidrs[0]"},
  };
  for (const auto& c : refused) {
    FaultSpec s;
    s.kind = FaultKind::partition;
    for (const auto& [name, list] : {std::pair{"a", &c.a}, std::pair{"b", &c.b}}) {
      Side side{name, {}};
      for (const auto& x : *list) side.cidrs.push_back(C(x));
      s.sides.push_back(side);
    }
    auto st = validate(s);
    ASSERT_FALSE(st.ok()) << c.field;
    EXPECT_EQ(st.error().code, Errc::invalid_argument);
    EXPECT_EQ(st.error().message.rfind(c.field + ": ", 0), 0u) << st.error().message;
    EXPECT_NE(st.error().message.find("would cut nothing"), std::string::npos) << st.error().message;
  }
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> passing = {
      {{"10.0.0.1", "10.0.0.3"}, {"10.0.0.2", "10.0.0.3"}},
      {{"10.0.1.0/24"}, {"10.0.1.11", "10.0.2.0/24"}},
      {{"0.0.0.0/1"}, {"128.0.0.0/1"}},
  };
  for (const auto& [a, b] : passing) {
    FaultSpec s;
    s.kind = FaultKind::partition;
    s.sides = {{"a", {}}, {"b", {}}};
    for (const auto& x : a) s.sides[0].cidrs.push_back(C(x));
    for (const auto& x : b) s.sides[1].cidrs.push_back(C(x));
    ExpectValid(s);
  }
}

TEST(ValidateSides, IsolatingASlashZeroIsRefused) {
  for (const char* all : {"0.0.0.0/0", "::/0"}) {
    FaultSpec s = Isolate();
    s.sides[0].cidrs.push_back(C(all));
    auto st = validate(s);
    ASSERT_FALSE(st.ok()) << all;
    EXPECT_EQ(st.error().message.rfind("sides[0].cidrs[1]: ", 0), 0u) << st.error().message;
    EXPECT_NE(st.error().message.find("cuts nothing"), std::string::npos) << st.error().message;
  }
}


}  // namespace
}  // namespace fl::core

// ---------------------------------------------------------------------------------------------
// reset: true on a fault, and the standalone reset.

namespace fl::core {
namespace {

void ExpectRefused(const Status& st, const std::string& starts, const std::string& has) {
  ASSERT_FALSE(st.ok()) << "expected a refusal starting " << starts;
  EXPECT_EQ(st.error().code, Errc::invalid_argument);
  EXPECT_EQ(st.error().message.rfind(starts, 0), 0u) << st.error().message;
  EXPECT_NE(st.error().message.find(has), std::string::npos) << st.error().message;
}

TEST(ValidateReset, PartitionAndIsolateTakeReset) {
  for (FaultKind k : {FaultKind::partition, FaultKind::isolate}) {
    FaultSpec s;
    s.kind = k;
    s.sides = {Side{"a", {*parse_cidr("10.0.0.0/24")}}};
    if (k == FaultKind::partition) s.sides.push_back(Side{"b", {*parse_cidr("10.0.1.0/24")}});
    s.reset = true;
    EXPECT_TRUE(validate(s).ok()) << kind_name(k);
    s.match.proto = Proto::tcp;
    EXPECT_TRUE(validate(s).ok()) << kind_name(k) << " with proto tcp";
  }
}

TEST(ValidateReset, RefusedWithInterfaces) {
  FaultSpec s;
  s.kind = FaultKind::isolate;
  s.sides = {Side{"a", {*parse_cidr("10.0.0.7/32")}}};
  s.reset = true;
  s.devs = {"eth1"};
  auto st = validate(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("not with devs"), std::string::npos) << st.error().message;
}

TEST(ValidateReset, OtherKindsRefuseReset) {
  FaultSpec loss;
  loss.kind = FaultKind::loss;
  loss.loss_percent = 100;
  loss.reset = true;
  ExpectRefused(validate(loss), "reset: ", "only for partition and isolate faults, not loss");
  FaultSpec delay;
  delay.kind = FaultKind::delay;
  delay.shape.delay = std::chrono::milliseconds(10);
  delay.reset = true;
  ExpectRefused(validate(delay), "reset: ", "not delay");
}

TEST(ValidateReset, ResetRefusesNewOnlyAndNonTcpProtocols) {
  FaultSpec s;
  s.kind = FaultKind::isolate;
  s.sides = {Side{"", {*parse_cidr("10.0.0.5")}}};
  s.reset = true;
  s.match.new_only = true;
  FaultSpec before = s;
  ExpectRefused(validate(s), "reset: ", "new_only");
  EXPECT_EQ(s.match.proto, before.match.proto) << "a refused spec must come back unchanged";
  s.match.new_only = false;
  for (Proto p : {Proto::udp, Proto::icmp}) {
    s.match.proto = p;
    ExpectRefused(validate(s), "reset: ", std::string("cuts only ") + proto_name(p));
  }
}

ResetSpec ResetDst() {
  ResetSpec r;
  r.match.dst = {*parse_cidr("10.0.0.7")};
  return r;
}

TEST(ValidateReset, StandaloneResetFillsTcpAndHost) {
  ResetSpec r = ResetDst();
  ASSERT_TRUE(validate_reset(r).ok());
  EXPECT_EQ(r.match.proto, Proto::tcp);
  ASSERT_EQ(r.targets.size(), 1u);
  EXPECT_EQ(r.targets[0].kind, Target::Kind::host);
}

TEST(ValidateReset, EachSelectorAloneIsEnough) {
  for (int i = 0; i < 4; ++i) {
    ResetSpec r;
    if (i == 0) r.match.src = {*parse_cidr("10.0.0.0/24")};
    if (i == 1) r.match.dst = {*parse_cidr("fd00::7")};
    if (i == 2) r.match.sport = PortRange{5000, 5000};
    if (i == 3) r.match.dport = PortRange{80, 90};
    auto st = validate_reset(r);
    EXPECT_TRUE(st.ok()) << i << ": " << st.error().message;
  }
}

TEST(ValidateReset, NoSelectorNeedsAll) {
  ResetSpec r;
  ExpectRefused(validate_reset(r), "match: ", "all: true");
  r.match.proto = Proto::tcp;  // a protocol is not a selector
  ExpectRefused(validate_reset(r), "match: ", "needs a selector");
  r.all = true;
  EXPECT_TRUE(validate_reset(r).ok());
}

TEST(ValidateReset, AllTakesNoSelector) {
  ResetSpec r = ResetDst();
  r.all = true;
  ExpectRefused(validate_reset(r), "all: ", "got match.dst");
  r.match.dst.clear();
  r.match.dport = PortRange{22, 22};
  ExpectRefused(validate_reset(r), "all: ", "got match.dport");
}

TEST(ValidateReset, RefusesWhatAResetCannotMean) {
  ResetSpec r = ResetDst();
  r.match.proto = Proto::udp;
  ExpectRefused(validate_reset(r), "match.proto: ", "tcp or all (got udp)");
  r = ResetDst();
  r.match.direction = Direction::egress;
  ExpectRefused(validate_reset(r), "match.direction: ", "both ways");
  r = ResetDst();
  r.match.new_only = true;
  ExpectRefused(validate_reset(r), "match.new_only: ", "established");
  r = ResetDst();
  r.match.dport = PortRange{90, 80};
  ExpectRefused(validate_reset(r), "match.dport: ", "above end");
  r = ResetDst();
  r.match.dst = {Cidr{4, 24, {10, 0, 0, 7}}};
  ExpectRefused(validate_reset(r), "match.dst[0]: ", "host bits");
}

TEST(ValidateReset, ExemptionsAndTargetsFollowTheFaultRules) {
  ResetSpec r = ResetDst();
  r.exempt = {Exemption{*parse_cidr("10.0.0.0/8"), Proto::all, 22}};
  ExpectRefused(validate_reset(r), "exempt[0]: ", "needs proto tcp or udp");
  r = ResetDst();
  r.exempt.assign(kMaxExemptionsPerFault + 1, Exemption{*parse_cidr("10.0.0.0/8"), Proto::tcp, 22});
  ExpectRefused(validate_reset(r), "exempt: ", "at most");
  r = ResetDst();
  r.targets = {*parse_target("netns:a"), *parse_target("netns:a")};
  ExpectRefused(validate_reset(r), "targets: ", "duplicate target");
  r = ResetDst();
  r.targets = {Target{Target::Kind::host, "x"}};
  ExpectRefused(validate_reset(r), "targets[0]: ", "host takes no value");
  r = ResetDst();
  r.targets = {Target{static_cast<Target::Kind>(200), "x"}};
  ExpectRefused(validate_reset(r), "targets[0]: ", "unknown target kind value 200");
}

}  // namespace
}  // namespace fl::core
