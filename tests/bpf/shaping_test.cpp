// Tier 1 for shaping: what the data path does with shaping slots, through BPF_PROG_TEST_RUN.
// Egress sets skb->priority to the slot's HTB class (read back from the returned context);
// ingress redirects to the interface's ifb; drops win over shaping; between two shaping slots
// the later applied wins; a matrix picks the class of the packet's ordered pair of sides; a
// class id of ours that no slot gave is cleared on egress.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "bpf/datapath_util.h"
#include "bpf/packet_util.h"
#include "kernel/shaping.h"

namespace fl::test {
namespace {

using core::Direction;
using FB = FaultBuilder;
using Frame = std::vector<uint8_t>;

core::ShapeProfile delay_ms(int ms) {
  core::ShapeProfile p;
  p.delay = std::chrono::milliseconds(ms);
  return p;
}

core::ShapeProfile rate_mbit(uint64_t mbit) {
  core::ShapeProfile p;
  p.rate_bps = mbit * 1'000'000;
  return p;
}

uint32_t class_of(uint32_t slot) { return kernel::class_id(kernel::slot_minor(slot)); }

Frame udp(const std::string& src, const std::string& dst, uint16_t dport = 5000) {
  return Packet().ipv4(src, dst).udp(40000, dport).payload(32).build();
}

Frame udp6(const std::string& src, const std::string& dst) {
  return Packet().ipv6(src, dst).udp(40000, 5000).payload(32).build();
}

class Shaping : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = bpf_skip_reason()) GTEST_SKIP() << *why;
    auto e = BpfEnv::create();
    ASSERT_TRUE(e.ok()) << e.error().message;
    env_ = std::move(*e);
    auto st = env_->dp().stats();
    ASSERT_TRUE(st.ok());
    stats0_ = *st;
  }

  uint32_t install(const Fault& f) {
    auto idx = env_->install(f);
    EXPECT_TRUE(idx.ok()) << idx.error().message;
    return idx.ok() ? *idx : UINT32_MAX;
  }

  // Runs one frame; returns the verdict, and the priority the packet left with in *prio.
  int run(bool egress, const Frame& f, uint32_t* prio, uint32_t prio_in = 0) {
    __sk_buff in{}, out{};
    in.priority = prio_in;
    int fd = egress ? env_->dp().egress_fd() : env_->dp().ingress_fd();
    auto r = env_->run(fd, f, &in, &out);
    EXPECT_TRUE(r.ok()) << r.error().message;
    *prio = out.priority;
    return r.ok() ? *r : -100;
  }

  kernel::Counters counters(uint32_t idx) {
    auto c = env_->dp().counters(idx);
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : kernel::Counters{};
  }

  uint64_t stat(fl_stat s) {
    auto st = env_->dp().stats();
    EXPECT_TRUE(st.ok());
    return st.ok() ? (*st)[s] - stats0_[s] : 0;
  }

  std::unique_ptr<BpfEnv> env_;
  std::array<uint64_t, FL_STAT_MAX> stats0_{};
};

TEST_F(Shaping, EgressPutsMatchingPacketsInTheSlotsClass) {
  uint32_t a = install(FB::shape(delay_ms(100), core::FaultKind::delay).dst({"10.200.0.2"}));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);  // the next program still runs
  EXPECT_EQ(prio, class_of(a));
  EXPECT_EQ(prio >> 16, FL_HTB_MAJOR);
  auto c = counters(a);
  EXPECT_EQ(c.matched, 1u);
  EXPECT_EQ(c.shaped, 1u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(stat(FL_STAT_SHAPED), 1u);

  // Other traffic keeps whatever priority it had (here a process's SO_PRIORITY 6).
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.3"), &prio, 6), kNext);
  EXPECT_EQ(prio, 6u);
  EXPECT_EQ(counters(a).shaped, 1u);
}

TEST_F(Shaping, IPv6IsShapedLikeIPv4) {
  uint32_t a = install(FB::shape(rate_mbit(10), core::FaultKind::rate).dst({"fd00:200::2"}));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp6("fd00:200::1", "fd00:200::2"), &prio), kNext);
  EXPECT_EQ(prio, class_of(a));
}

TEST_F(Shaping, EgressClearsAClassOfOursThatNoSlotGave) {
  // No fault at all: the program still clears it (a forwarded packet shaped on ingress).
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio, kernel::class_id(9)), kNext);
  EXPECT_EQ(prio, 0u);
  // With a fault that does not match it, too; an unrelated major is left alone.
  install(FB::shape(delay_ms(5)).dst({"10.200.0.9"}));
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio, kernel::class_id(3)), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio, 0x00010010), kNext);
  EXPECT_EQ(prio, 0x00010010u);
  // Ingress too: a veth carries skb->priority across namespaces, and on the legacy path a class
  // id of ours on ingress is what makes the mirred filter send a packet to the ifb.
  EXPECT_EQ(run(false, udp("10.200.0.1", "10.200.0.2"), &prio, kernel::class_id(3)), kNext);
  EXPECT_EQ(prio, 0u);
}

TEST_F(Shaping, OnTheLegacyPathIngressOnlyClassifiesAndTheFilterRedirects) {
  uint32_t a = install(FB::shape(delay_ms(100)).direction(Direction::ingress).src({"10.200.0.2"}));
  ASSERT_TRUE(env_->dp().set_ifb(1, 4242 | FL_IFB_BY_TC).ok());
  uint32_t prio = 0;
  EXPECT_EQ(run(false, udp("10.200.0.2", "10.200.0.1"), &prio), kNext);
  EXPECT_EQ(prio, class_of(a));
  EXPECT_EQ(counters(a).shaped, 1u);
  // The filter's program matches exactly the packets that carry a class of ours.
  __sk_buff in{}, out{};
  in.priority = class_of(a);
  auto r = env_->run(env_->dp().ifb_match_fd(), udp("10.200.0.2", "10.200.0.1"), &in, &out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, -1);
  in.priority = 6;
  r = env_->run(env_->dp().ifb_match_fd(), udp("10.200.0.2", "10.200.0.1"), &in, &out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
}

TEST_F(Shaping, IngressRedirectsToTheInterfacesIfb) {
  uint32_t a = install(FB::shape(delay_ms(100)).direction(Direction::ingress).src({"10.200.0.2"}));
  uint32_t prio = 0;
  // No ifb for this interface (BPF_PROG_TEST_RUN runs the skb on loopback, ifindex 1): left alone.
  EXPECT_EQ(run(false, udp("10.200.0.2", "10.200.0.1"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(stat(FL_STAT_NO_IFB), 1u);
  EXPECT_EQ(counters(a).shaped, 0u);

  ASSERT_TRUE(env_->dp().set_ifb(1, 4242).ok());
  EXPECT_EQ(run(false, udp("10.200.0.2", "10.200.0.1"), &prio), kRedirect);
  EXPECT_EQ(prio, class_of(a));
  EXPECT_EQ(counters(a).shaped, 1u);
  EXPECT_EQ(stat(FL_STAT_REDIRECTED), 1u);
  // An ingress-only fault does nothing on egress.
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  ASSERT_TRUE(env_->dp().delete_ifb(1).ok());
  EXPECT_EQ(run(false, udp("10.200.0.2", "10.200.0.1"), &prio), kNext);
}

TEST_F(Shaping, DropWinsOverShaping) {
  uint32_t s = install(FB::shape(delay_ms(100)).dst({"10.200.0.2"}));
  uint32_t p = install(FB::partition({{"10.200.0.1"}, {"10.200.0.2"}}));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kEgressDrop);
  EXPECT_EQ(counters(p).dropped, 1u);
  EXPECT_EQ(counters(s).matched, 1u);
  EXPECT_EQ(counters(s).shaped, 0u);
  EXPECT_EQ(stat(FL_STAT_SHAPED), 0u);
}

TEST_F(Shaping, LossInAProfileIsDecidedHereBeforeTheQdisc) {
  core::ShapeProfile lossy = delay_ms(50);
  lossy.loss_percent = 100;
  uint32_t s = install(FB::shape(lossy).dst({"10.200.0.2"}));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kEgressDrop);
  auto c = counters(s);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.shaped, 0u);

  // Loss alone needs no class: the slot drops and never classifies.
  core::ShapeProfile loss_only;
  loss_only.loss_percent = 100;
  uint32_t l = install(FB::shape(loss_only).dst({"10.200.0.3"}));
  EXPECT_FALSE(env_->dp().slot(l).flags & FL_F_SHAPE);
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.3"), &prio), kEgressDrop);
}

TEST_F(Shaping, TheMostRecentlyAppliedShapingFaultWins) {
  // The later fault sits at a LOWER slot index: order of application decides, not scan order.
  uint32_t older = install(FB::shape(delay_ms(100)).dst({"10.200.0.0/24"}).at_slot(5));
  uint32_t newer = install(FB::shape(rate_mbit(1)).dst({"10.200.0.2"}).at_slot(0));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);
  EXPECT_EQ(prio, class_of(newer));
  EXPECT_EQ(counters(older).matched, 1u);
  EXPECT_EQ(counters(older).shaped, 0u);
  EXPECT_EQ(counters(newer).shaped, 1u);
  // Where only the older one matches, it still shapes.
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.3"), &prio), kNext);
  EXPECT_EQ(prio, class_of(older));
}

TEST_F(Shaping, MatrixPicksTheClassOfThePacketsOrderedPair) {
  // Three sides; pairs 1->2, 2->1 and 1->3 shaped, 3->1 not listed.
  std::vector<core::MatrixPair> pairs = {{0, 1, delay_ms(10)}, {1, 0, delay_ms(20)}, {0, 2, delay_ms(30)}};
  uint32_t first = install(FB::matrix({{"10.200.1.0/24"}, {"10.200.2.0/24"}, {"10.200.3.0/24"}}, pairs));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.1.5", "10.200.2.5"), &prio), kNext);
  EXPECT_EQ(prio, class_of(first));
  EXPECT_EQ(run(true, udp("10.200.2.5", "10.200.1.5"), &prio), kNext);
  EXPECT_EQ(prio, class_of(first + 1));
  EXPECT_EQ(run(true, udp("10.200.1.5", "10.200.3.5"), &prio), kNext);
  EXPECT_EQ(prio, class_of(first + 2));
  EXPECT_EQ(run(true, udp("10.200.3.5", "10.200.1.5"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(run(true, udp("10.200.1.5", "10.200.1.6"), &prio), kNext);  // within a side
  EXPECT_EQ(prio, 0u);
  for (uint32_t i = 0; i < 3; i++) EXPECT_EQ(counters(first + i).shaped, 1u) << "pair " << i;
}

TEST_F(Shaping, ExemptTrafficIsNotShaped) {
  uint32_t s = install(FB::shape(delay_ms(100)).dst({"10.200.0.2"}));
  uint32_t prio = 0;
  // ssh is in the default exemptions.
  EXPECT_EQ(run(true, Packet().ipv4("10.200.0.1", "10.200.0.2").tcp(40000, 22).build(), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  auto c = counters(s);
  EXPECT_EQ(c.exempted, 1u);
  EXPECT_EQ(c.shaped, 0u);
}

TEST_F(Shaping, AnExpiredShapingSlotStopsClassifyingAtOnce) {
  // In the past by more than a tick: the program reads the coarse clock.
  install(FB::shape(delay_ms(100)).dst({"10.200.0.2"}).expires_in(-20 * 1000 * 1000));
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(stat(FL_STAT_SHAPED), 0u);
}

TEST_F(Shaping, WhenTheLeaseRunsOutNothingIsClassifiedOrRedirected) {
  install(FB::shape(delay_ms(100)).direction(Direction::both).dst({"10.200.0.2"}));
  ASSERT_TRUE(env_->dp().set_ifb(1, 4242).ok());
  env_->dp().set_lease(1);  // long past: the daemon stopped renewing
  uint32_t prio = 0;
  EXPECT_EQ(run(true, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(run(false, udp("10.200.0.1", "10.200.0.2"), &prio), kNext);
  EXPECT_EQ(prio, 0u);
  EXPECT_EQ(stat(FL_STAT_LEASE_OFF), 2u);
  EXPECT_EQ(stat(FL_STAT_SHAPED) + stat(FL_STAT_REDIRECTED), 0u);
}

}  // namespace
}  // namespace fl::test
