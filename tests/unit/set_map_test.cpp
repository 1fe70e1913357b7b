// SetMap (the LPM closure), IndexPool (quarantine) and slot planning, without a kernel.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "core/index_pool.h"
#include "core/parse.h"
#include "core/plan.h"
#include "core/set_map.h"

namespace fl::core {
namespace {

Cidr C(const char* s) {
  auto r = parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return *r;
}

// What the data path must see: OR of the bits of every listed CIDR that contains addr.
uint64_t brute(const std::vector<std::pair<std::vector<Cidr>, uint64_t>>& sets, const Cidr& addr) {
  uint64_t m = 0;
  for (auto& [cidrs, bit] : sets)
    for (auto& c : cidrs)
      if (c.contains(addr)) m |= bit;
  return m;
}

// Applies changes to a model of the kernel map and checks it holds exactly the SetMap's entries.
struct KernelModel {
  std::map<Cidr, uint64_t> entries;
  void apply(const std::vector<SetMap::Change>& ch) {
    for (auto& c : ch) {
      if (c.erase)
        entries.erase(c.cidr);
      else
        entries[c.cidr] = c.mask;
    }
  }
  uint64_t lpm(const Cidr& addr) const {
    const Cidr* best = nullptr;
    for (auto& [c, m] : entries)
      if (c.contains(addr) && (!best || c.prefix > best->prefix)) best = &c;
    return best ? entries.at(*best) : 0;
  }
};

TEST(SetMap, NestedPrefixesCarryEachOthersBits) {
  SetMap m;
  KernelModel k;
  k.apply(m.add({C("10.0.0.0/8")}, 1));
  k.apply(m.add({C("10.1.0.0/16")}, 2));
  k.apply(m.add({C("10.1.2.3")}, 4));
  EXPECT_EQ(k.lpm(C("10.1.2.3")), 7u);
  EXPECT_EQ(k.lpm(C("10.1.9.9")), 3u);
  EXPECT_EQ(k.lpm(C("10.9.9.9")), 1u);
  EXPECT_EQ(k.lpm(C("11.0.0.1")), 0u);
  // Removing the /8 takes its bit out of the entries inside it.
  k.apply(m.remove({C("10.0.0.0/8")}, 1));
  EXPECT_EQ(k.lpm(C("10.1.2.3")), 6u);
  EXPECT_EQ(k.lpm(C("10.9.9.9")), 0u);
  EXPECT_EQ(k.entries.size(), 2u);
}

TEST(SetMap, AddingACoveringPrefixLaterUpdatesHostsInside) {
  SetMap m;
  KernelModel k;
  k.apply(m.add({C("fd00::1"), C("fd00::2")}, 1));
  k.apply(m.add({C("fd00::/64")}, 2));
  EXPECT_EQ(k.lpm(C("fd00::1")), 3u);
  EXPECT_EQ(k.lpm(C("fd00::9")), 2u);
  EXPECT_EQ(k.lpm(C("fd01::1")), 0u);
}

TEST(SetMap, SameCidrInTwoSetsIsOneEntryAndSurvivesOneRemoval) {
  SetMap m;
  KernelModel k;
  k.apply(m.add({C("10.0.0.1")}, 1));
  k.apply(m.add({C("10.0.0.1"), C("10.0.0.2")}, 2));
  EXPECT_EQ(m.size(), 2u);
  k.apply(m.remove({C("10.0.0.1")}, 1));
  EXPECT_EQ(k.lpm(C("10.0.0.1")), 2u);
  k.apply(m.remove({C("10.0.0.1"), C("10.0.0.2")}, 2));
  EXPECT_TRUE(k.entries.empty());
  EXPECT_EQ(m.size(), 0u);
}

// Random sets of nested v4 prefixes, added and removed in random order: the kernel model must
// always answer like the brute-force definition, and end empty.
TEST(SetMap, RandomisedAgainstBruteForce) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 20; round++) {
    SetMap m;
    KernelModel k;
    std::vector<std::pair<std::vector<Cidr>, uint64_t>> live;
    auto rand_cidr = [&] {
      Cidr c;
      c.family = 4;
      c.prefix = static_cast<uint8_t>(std::uniform_int_distribution<int>(20, 32)(rng));
      uint32_t a = 0x0A000000u | (rng() & 0x00000FFFu);  // 10.0.0.0/20: lots of overlap
      a &= c.prefix == 0 ? 0 : ~0u << (32 - c.prefix);
      c.addr[0] = a >> 24;
      c.addr[1] = a >> 16;
      c.addr[2] = a >> 8;
      c.addr[3] = a;
      return c;
    };
    for (int step = 0; step < 40; step++) {
      if (live.size() < 8 && (live.empty() || rng() % 3)) {
        std::set<Cidr> s;
        for (int i = 0; i < 1 + static_cast<int>(rng() % 5); i++) s.insert(rand_cidr());
        uint64_t used = 0;
        for (auto& l : live) used |= l.second;
        uint64_t bit = 1;
        while (used & bit) bit <<= 1;
        std::vector<Cidr> v(s.begin(), s.end());
        k.apply(m.add(v, bit));
        live.push_back({v, bit});
      } else {
        size_t i = rng() % live.size();
        k.apply(m.remove(live[i].first, live[i].second));
        live.erase(live.begin() + static_cast<long>(i));
      }
      for (int probe = 0; probe < 64; probe++) {
        Cidr a = rand_cidr();
        a.prefix = 32;
        ASSERT_EQ(k.lpm(a), brute(live, a)) << "round " << round << " step " << step << " " << a.str();
        ASSERT_EQ(m.lookup(a), brute(live, a));
      }
    }
    while (!live.empty()) {
      k.apply(m.remove(live.back().first, live.back().second));
      live.pop_back();
    }
    EXPECT_TRUE(k.entries.empty());
  }
}

TEST(IndexPool, ReleasedIdsWaitForTheirGracePeriod) {
  IndexPool p(3);
  EXPECT_EQ(p.acquire(0), 0u);
  EXPECT_EQ(p.acquire(0), 1u);
  p.release(0, /*stamp=*/5);
  EXPECT_EQ(p.acquire(4), 2u);         // 0 still in quarantine at completed=4
  EXPECT_FALSE(p.acquire(4).has_value());
  EXPECT_TRUE(p.waiting(4));
  EXPECT_EQ(p.acquire(5), 0u);         // released once completed reaches its stamp
  EXPECT_EQ(p.high_water(), 3u);
  p.release(2, 6);
  p.release(1, 6);
  EXPECT_EQ(p.high_water(), 1u);
  EXPECT_EQ(p.in_use(), 1u);
}

FaultSpec partition(bool one_way) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.sides = {{"a", {C("10.0.0.1")}}, {"b", {C("10.0.0.2")}}, {"c", {C("10.0.0.3")}}};
  s.one_way = one_way;
  return s;
}

TEST(Plan, PartitionUsesEverySideBothWays) {
  SlotBits b;
  b.sides = {1, 2, 4};
  fl_slot s = plan_slot(partition(false), b);
  EXPECT_EQ(s.part, 7u);
  EXPECT_EQ(s.src_any, 7u);
  EXPECT_EQ(s.dst_any, 7u);
  EXPECT_EQ(s.prob, FL_PROB_ONE);
  EXPECT_EQ(s.expires_ns, 0u) << "planned slots are inactive";
  EXPECT_FALSE(slot_unscoped(s));
}

TEST(Plan, OneWayGoesFromFirstSideToTheOthers) {
  SlotBits b;
  b.sides = {1, 2, 4};
  fl_slot s = plan_slot(partition(true), b);
  EXPECT_EQ(s.src_any, 1u);
  EXPECT_EQ(s.dst_any, 6u);
  EXPECT_EQ(s.part, 7u);
}

TEST(Plan, LossWithoutSelectorsIsUnscopedAndIsolateIsNot) {
  FaultSpec l;
  l.kind = FaultKind::loss;
  l.loss_percent = 30;
  l.correlation_percent = 25;
  l.seed = 9;
  fl_slot s = plan_slot(l, SlotBits{});
  EXPECT_TRUE(slot_unscoped(s));
  EXPECT_NEAR(static_cast<double>(s.prob) / FL_PROB_ONE, 0.30, 1e-9);
  EXPECT_NEAR(static_cast<double>(s.corr) / FL_PROB_ONE, 0.25, 1e-9);
  EXPECT_EQ(s.seed, 9u);
  SlotBits with_dst;
  with_dst.dst = 8;
  EXPECT_FALSE(slot_unscoped(plan_slot(l, with_dst)));

  FaultSpec iso;
  iso.kind = FaultKind::isolate;
  iso.sides = {{"x", {C("10.0.0.1")}}};
  SlotBits b;
  b.sides = {16};
  fl_slot si = plan_slot(iso, b);
  EXPECT_TRUE(si.flags & FL_F_ISOLATE);
  EXPECT_EQ(si.part, 16u);
  EXPECT_FALSE(slot_unscoped(si));
}

// fl_slot.kind carries abi.h's enum fl_kind, whatever FaultKind's numbers are: every shaping
// kind is FL_KIND_SHAPE (delay is 4 in both today, rate 5 is not a fl_kind at all).
TEST(Plan, SlotKindIsTheAbisKind) {
  EXPECT_EQ(slot_kind(FaultKind::partition), FL_KIND_PARTITION);
  EXPECT_EQ(slot_kind(FaultKind::loss), FL_KIND_LOSS);
  EXPECT_EQ(slot_kind(FaultKind::isolate), FL_KIND_ISOLATE);
  for (FaultKind k : {FaultKind::delay, FaultKind::rate, FaultKind::corrupt, FaultKind::duplicate,
                      FaultKind::reorder, FaultKind::shape, FaultKind::matrix})
    EXPECT_EQ(slot_kind(k), FL_KIND_SHAPE) << kind_name(k);
  FaultSpec r;
  r.kind = FaultKind::rate;
  EXPECT_EQ(plan_slot(r, SlotBits{}).kind, FL_KIND_SHAPE);
  EXPECT_EQ(plan_slot(partition(false), SlotBits{}).kind, FL_KIND_PARTITION);
}

TEST(Plan, SelectorsBecomeFlags) {
  FaultSpec l;
  l.kind = FaultKind::loss;
  l.loss_percent = 100;
  l.match.proto = Proto::tcp;
  l.match.dport = {80, 90};
  l.match.new_only = true;
  l.match.direction = Direction::ingress;
  SlotBits b;
  b.ifaces = 2;
  fl_slot s = plan_slot(l, b);
  EXPECT_EQ(s.proto, FL_PROTO_TCP);
  EXPECT_EQ(s.dir, FL_DIR_INGRESS);
  EXPECT_EQ(s.flags & (FL_F_PORTS | FL_F_NEW_ONLY | FL_F_IFACES), FL_F_PORTS | FL_F_NEW_ONLY | FL_F_IFACES);
  EXPECT_EQ(s.dport_lo, 80);
  EXPECT_EQ(s.dport_hi, 90);
  EXPECT_EQ(s.sport_lo, 0);
  EXPECT_EQ(s.sport_hi, 65535);
  EXPECT_EQ(s.prob, FL_PROB_ONE);
}

TEST(Plan, ExemptionsCombineDaemonDefaultAndOwnWithoutDuplicates) {
  FaultSpec f;
  f.exempt = {*parse_exemption("10.9.0.0/16/tcp:443"), *parse_exemption("169.254.169.254")};
  auto all = exemptions_for(f, {*parse_exemption("10.9.0.0/16/tcp:443")});
  EXPECT_EQ(all.size(), default_exemptions().size() + 1);
  f.default_exempt = false;
  EXPECT_EQ(exemptions_for(f, {}).size(), 2u);
  EXPECT_EQ(exempt_port_key(*parse_exemption("0.0.0.0/0/udp:53")), FL_EXEMPT_PORT_KEY(FL_PROTO_UDP, 53));
  EXPECT_EQ(exempt_port_key(*parse_exemption("10.0.0.0/8")), FL_EXEMPT_PORT_KEY(FL_PROTO_ALL, 0));
}

}  // namespace
}  // namespace fl::core
