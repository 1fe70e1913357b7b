// Tier 0 for what faultlined sends the kernel's qdiscs: the TCA_OPTIONS bytes of our HTB root
// and classes, pfifo, netem and TBF read back field by field as the kernel's UAPI structs lay
// them out (linux/pkt_sched.h), fq_codel's default check, netem's delay tables, and the
// extended-ack text the netlink layer pulls out of an NLMSG_ERROR. No root, no socket.
#include <gtest/gtest.h>

#include <linux/netlink.h>
#include <linux/pkt_sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "core/netem_dist.h"
#include "core/tc_options.h"
#include "kernel/rtnl.h"

namespace fl {
namespace {

using namespace std::chrono_literals;
// Owning copies: the encoders' results are temporaries in most calls below.
using Attrs = std::map<uint16_t, std::vector<uint8_t>>;

Attrs attrs_of(std::span<const uint8_t> bytes) {
  Attrs out;
  for (auto& [t, v] : core::parse_tc_attrs(bytes)) out[t].assign(v.begin(), v.end());
  return out;
}

template <typename T>
T as(const Attrs& a, uint16_t type) {
  T v{};
  auto it = a.find(type);
  EXPECT_NE(it, a.end()) << "attribute " << type << " missing";
  if (it == a.end()) return v;
  EXPECT_EQ(it->second.size(), sizeof(T)) << "attribute " << type << " has the wrong length";
  std::memcpy(&v, it->second.data(), std::min(sizeof(T), it->second.size()));
  return v;
}

template <typename T>
uint32_t u32_at(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

// ---------------------------------------------------------------- HTB

TEST(TcOptions, HtbRootNamesDefaultClassOne) {
  auto a = attrs_of(core::htb_root_options());
  ASSERT_EQ(a.size(), 1u);
  auto g = as<tc_htb_glob>(a, TCA_HTB_INIT);
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.rate2quantum, 10u);
  EXPECT_EQ(g.defcls, 1u);
  EXPECT_EQ(g.debug, 0u);
}

TEST(TcOptions, HtbClassRateBufferAndQuantum) {
  // 10 mbit = 1.25 MB/s; a 12500-byte bucket takes 10 ms = 156250 ticks of 64 ns.
  auto a = attrs_of(core::htb_class_options(10'000'000, 12'500, 125'000));
  auto o = as<tc_htb_opt>(a, TCA_HTB_PARMS);
  EXPECT_EQ(o.rate.rate, 1'250'000u);
  EXPECT_EQ(o.ceil.rate, 1'250'000u);
  EXPECT_EQ(o.rate.linklayer, TC_LINKLAYER_ETHERNET);
  EXPECT_EQ(o.buffer, 156'250u);
  EXPECT_EQ(o.cbuffer, 156'250u);
  EXPECT_EQ(o.quantum, 125'000u);
  EXPECT_EQ(a.count(TCA_HTB_RATE64), 0u) << "32-bit rates need no 64-bit attributes";
}

TEST(TcOptions, HtbClassAbove32BitBytesPerSecondUsesRate64) {
  // The unshaped class: 400 Gbit/s = 50e9 bytes/s, past what tc_ratespec.rate holds.
  auto a = attrs_of(core::unshaped_class_options());
  auto o = as<tc_htb_opt>(a, TCA_HTB_PARMS);
  EXPECT_EQ(o.rate.rate, UINT32_MAX);
  EXPECT_EQ(as<uint64_t>(a, TCA_HTB_RATE64), 50'000'000'000ull);
  EXPECT_EQ(as<uint64_t>(a, TCA_HTB_CEIL64), 50'000'000'000ull);
  // 1 ms of that rate as burst: 50e6 bytes at 50e9 B/s = 1 ms = 15625 ticks.
  EXPECT_EQ(o.buffer, 15'625u);
}

TEST(TcOptions, ShapedClassDerivesBurstAndQuantumFromRateAndMtu) {
  core::ShapeProfile p;
  p.rate_bps = 10'000'000;  // 10 ms at the rate (12500 B) beats two frames (3028 B)
  auto o = as<tc_htb_opt>(attrs_of(core::shape_class_options(p, 1500)), TCA_HTB_PARMS);
  EXPECT_EQ(o.buffer, core::xmit_ticks(12'500, 1'250'000));
  EXPECT_EQ(o.quantum, 125'000u);
  p.rate_bps = 100'000;  // slow: two full frames, and a quantum of at least one frame
  o = as<tc_htb_opt>(attrs_of(core::shape_class_options(p, 1500)), TCA_HTB_PARMS);
  EXPECT_EQ(o.buffer, core::xmit_ticks(2 * 1514, 12'500));
  EXPECT_EQ(o.quantum, 1514u);
  p.burst_bytes = 64'000;  // given: used as is
  o = as<tc_htb_opt>(attrs_of(core::shape_class_options(p, 1500)), TCA_HTB_PARMS);
  EXPECT_EQ(o.buffer, core::xmit_ticks(64'000, 12'500));
  p = {};  // no rate: the unshaped class
  EXPECT_EQ(core::shape_class_options(p, 1500), core::unshaped_class_options());
}

// ---------------------------------------------------------------- fifo, tbf

TEST(TcOptions, FifoIsABareLimit) {
  auto b = core::fifo_options(1000);
  ASSERT_EQ(b.size(), sizeof(tc_fifo_qopt));
  EXPECT_EQ(u32_at<uint32_t>(b, offsetof(tc_fifo_qopt, limit)), 1000u);
}

TEST(TcOptions, TbfParms) {
  auto q = as<tc_tbf_qopt>(attrs_of(core::tbf_options(125'000, 10'000, 10'000)), TCA_TBF_PARMS);
  EXPECT_EQ(q.rate.rate, 125'000u);
  EXPECT_EQ(q.buffer, 1'250'000u);  // 80 ms in 64 ns ticks
  EXPECT_EQ(q.limit, 10'000u);
}

// ---------------------------------------------------------------- netem

TEST(TcOptions, NetemQoptThenAttributesNotANest) {
  core::ShapeProfile p;
  p.delay = 100ms;
  p.jitter = 10ms;
  p.duplicate_percent = 50;
  auto b = core::netem_options(p);
  ASSERT_GE(b.size(), sizeof(tc_netem_qopt));
  tc_netem_qopt q;
  std::memcpy(&q, b.data(), sizeof q);
  EXPECT_EQ(q.latency, 100'000'000u / 64);
  EXPECT_EQ(q.jitter, 10'000'000u / 64);
  EXPECT_EQ(q.limit, core::kNetemLimit);
  EXPECT_EQ(q.loss, 0u) << "loss is the BPF program's, never netem's";
  EXPECT_EQ(q.gap, 0u);
  EXPECT_EQ(q.duplicate, 2147483648u);  // 50% of 2^32-1, rounded
  auto a = attrs_of(std::span(b).subspan(NLA_ALIGN(sizeof(tc_netem_qopt))));
  EXPECT_EQ(as<int64_t>(a, TCA_NETEM_LATENCY64), 100'000'000);
  EXPECT_EQ(as<int64_t>(a, TCA_NETEM_JITTER64), 10'000'000);
  for (uint16_t t : {TCA_NETEM_REORDER, TCA_NETEM_CORRUPT, TCA_NETEM_CORR, TCA_NETEM_DELAY_DIST})
    EXPECT_EQ(a.count(t), 0u) << "attribute " << t << " sent for a profile without it";
}

TEST(TcOptions, NetemReorderWithoutGapIsGapOne) {
  core::ShapeProfile p;
  p.delay = 10ms;
  p.reorder_percent = 25;
  auto b = core::netem_options(p);
  tc_netem_qopt q;
  std::memcpy(&q, b.data(), sizeof q);
  EXPECT_EQ(q.gap, 1u);
  auto a = attrs_of(std::span(b).subspan(sizeof q));
  EXPECT_EQ(as<tc_netem_reorder>(a, TCA_NETEM_REORDER).probability, core::probability(25));
  p.reorder_gap = 5;
  b = core::netem_options(p);
  std::memcpy(&q, b.data(), sizeof q);
  EXPECT_EQ(q.gap, 5u);
}

TEST(TcOptions, NetemCorruptCorrelationAndDistributionTable) {
  core::ShapeProfile p;
  p.delay = 50ms;
  p.jitter = 5ms;
  p.corrupt_percent = 1;
  p.delay_correlation = 30;
  p.distribution = core::Distribution::normal;
  auto b = core::netem_options(p);
  auto a = attrs_of(std::span(b).subspan(sizeof(tc_netem_qopt)));
  EXPECT_EQ(as<tc_netem_corrupt>(a, TCA_NETEM_CORRUPT).probability, core::probability(1));
  EXPECT_EQ(as<tc_netem_corr>(a, TCA_NETEM_CORR).delay_corr, core::probability(30));
  ASSERT_EQ(a.count(TCA_NETEM_DELAY_DIST), 1u);
  auto dist = a.at(TCA_NETEM_DELAY_DIST);
  ASSERT_EQ(dist.size(), core::kDistSize * sizeof(int16_t));
  auto want = core::distribution_table(core::Distribution::normal);
  EXPECT_EQ(std::memcmp(dist.data(), want.data(), dist.size()), 0);
}

TEST(TcOptions, ProbabilityAndTicksSaturate) {
  EXPECT_EQ(core::probability(0), 0u);
  EXPECT_EQ(core::probability(-1), 0u);
  EXPECT_EQ(core::probability(100), UINT32_MAX);
  EXPECT_EQ(core::probability(150), UINT32_MAX);
  EXPECT_EQ(core::ticks_of(1us), 15u);  // 1000 ns / 64, truncated
  EXPECT_EQ(core::ticks_of(std::chrono::microseconds(INT64_C(1) << 40)), UINT32_MAX);
  EXPECT_EQ(core::xmit_ticks(1, 0), 0u);
  EXPECT_EQ(core::xmit_ticks(1, 1'000'000'000), 1u) << "rounded up, never 0 for a byte";
}

// ---------------------------------------------------------------- fq_codel

std::vector<uint8_t> fq_codel(std::initializer_list<std::pair<uint16_t, uint32_t>> kv) {
  core::TcAttrs a;
  for (auto [t, v] : kv) a.put(t, v);
  return a.take();
}

TEST(TcOptions, FqCodelDefaultsAreReplaceable) {
  // As 6.x dumps a default fq_codel on a 1500-byte device (times in codel's 1024 ns units).
  auto def = fq_codel({{TCA_FQ_CODEL_TARGET, 4999}, {TCA_FQ_CODEL_LIMIT, 10240}, {TCA_FQ_CODEL_INTERVAL, 99999},
                       {TCA_FQ_CODEL_ECN, 1}, {TCA_FQ_CODEL_FLOWS, 1024}, {TCA_FQ_CODEL_QUANTUM, 1514},
                       {TCA_FQ_CODEL_DROP_BATCH_SIZE, 64}, {TCA_FQ_CODEL_MEMORY_LIMIT, 32u << 20}});
  EXPECT_EQ(core::fq_codel_non_default(def, 1500), "");
  EXPECT_EQ(core::fq_codel_non_default(def, 9000), "quantum 1514") << "the quantum follows the MTU";
  EXPECT_EQ(core::fq_codel_non_default(fq_codel({{TCA_FQ_CODEL_TARGET, 20000}}), 1500), "target(us) 20000");
  EXPECT_EQ(core::fq_codel_non_default(fq_codel({{TCA_FQ_CODEL_CE_THRESHOLD, 1000}}), 1500), "ce_threshold set");
  // What follows the last attribute we can read is ignored, as libnl's nla_parse did: an
  // attribute of length 0 (a newer kernel's, or padding) ...
  auto more = def;
  more.resize(more.size() + 8, 0);
  EXPECT_EQ(core::fq_codel_non_default(more, 1500), "");
  // ... and one that runs past the end: only the attributes before it count.
  auto cut = fq_codel({{TCA_FQ_CODEL_TARGET, 20000}});
  cut.resize(cut.size() - 2);
  EXPECT_EQ(core::fq_codel_non_default(cut, 1500), "");
  EXPECT_TRUE(core::parse_tc_attrs(cut).empty());
}

// ---------------------------------------------------------------- netem distribution tables

struct Moments {
  double mean, sd;
};
Moments moments(const std::vector<int16_t>& t) {
  double mean = std::accumulate(t.begin(), t.end(), 0.0) / static_cast<double>(t.size());
  double var = 0;
  for (int16_t v : t) var += (v - mean) * (v - mean);
  return {mean, std::sqrt(var / static_cast<double>(t.size()))};
}

TEST(ShapingDistribution, TablesAreStandardizedAtNetemScale) {
  EXPECT_TRUE(core::distribution_table(core::Distribution::uniform).empty());
  for (auto [d, tol] : {std::pair{core::Distribution::normal, 0.02}, std::pair{core::Distribution::pareto, 0.05},
                        std::pair{core::Distribution::paretonormal, 0.05}}) {
    auto t = core::distribution_table(d);
    SCOPED_TRACE(core::distribution_name(d));
    EXPECT_EQ(t.size(), 4096u);
    auto m = moments(t);
    EXPECT_LT(std::abs(m.mean), 0.01 * NETEM_DIST_SCALE) << m.mean;
    EXPECT_NEAR(m.sd, NETEM_DIST_SCALE, tol * NETEM_DIST_SCALE);
    EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
    EXPECT_EQ(t, core::distribution_table(d)) << "deterministic";
  }
  // Shapes: normal is symmetric, Pareto is skewed right (its median sits below its mean).
  auto n = core::distribution_table(core::Distribution::normal);
  EXPECT_NEAR(n[0], -n.back(), 2);
  EXPECT_NEAR(n[2048], 0, 10);
  auto p = core::distribution_table(core::Distribution::pareto);
  EXPECT_LT(p[2048], -1000);
  EXPECT_EQ(p.back(), 32767) << "the long tail reaches the int16 limit";
  auto pn = core::distribution_table(core::Distribution::paretonormal);
  EXPECT_LT(pn[2048], 0);
  EXPECT_GT(pn[2048], p[2048]);
}

// ---------------------------------------------------------------- extended ack

// An NLMSG_ERROR as the kernel builds it: header, nlmsgerr, the request (unless capped), then
// the TLVs.
std::vector<uint8_t> error_reply(int err, const std::string& text, bool capped, size_t request_payload) {
  std::vector<uint8_t> req(NLMSG_LENGTH(request_payload), 0xab);
  nlmsghdr rh{static_cast<uint32_t>(req.size()), 36 /* RTM_NEWQDISC */, 0, 7, 0};
  std::memcpy(req.data(), &rh, sizeof rh);
  core::TcAttrs tlvs;
  tlvs.put(NLMSGERR_ATTR_MSG, text.c_str(), text.size() + 1);
  auto t = tlvs.take();
  std::vector<uint8_t> out(NLMSG_HDRLEN);
  nlmsgerr e{};
  e.error = -err;
  e.msg = rh;
  out.resize(NLMSG_HDRLEN + sizeof e);
  std::memcpy(out.data() + NLMSG_HDRLEN, &e, sizeof e);
  if (!capped) out.insert(out.end(), req.begin() + NLMSG_HDRLEN, req.end());
  out.resize(NLMSG_ALIGN(out.size()), 0);
  out.insert(out.end(), t.begin(), t.end());
  nlmsghdr h{static_cast<uint32_t>(out.size()), NLMSG_ERROR,
             static_cast<uint16_t>(NLM_F_ACK_TLVS | (capped ? NLM_F_CAPPED : 0)), 7, 0};
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

TEST(RtnlExtAck, TextFromCappedAndFullAcks) {
  for (bool capped : {true, false}) {
    SCOPED_TRACE(capped ? "capped" : "request echoed");
    auto m = error_reply(ENOENT, "Specified qdisc kind is unknown.", capped, 40);
    EXPECT_EQ(kernel::ext_ack_text(reinterpret_cast<const nlmsghdr*>(m.data())), "Specified qdisc kind is unknown");
  }
  auto e = kernel::rtnl_error(ENOENT, "Specified qdisc kind is unknown");
  EXPECT_EQ(e.sys_errno, ENOENT);
  EXPECT_EQ(e.code, Errc::kernel_error);
  EXPECT_EQ(e.message, std::string(std::strerror(ENOENT)) + " (kernel: Specified qdisc kind is unknown)");
  EXPECT_EQ(kernel::rtnl_error(ENODEV, "").code, Errc::target_unavailable);
  EXPECT_EQ(kernel::rtnl_error(EPERM, "").code, Errc::permission_denied);
}

TEST(RtnlExtAck, NoTextWithoutTlvsOrWhenTheyRunPastTheEnd) {
  auto m = error_reply(EINVAL, "Exclusivity flag on, cannot modify", true, 8);
  auto* h = reinterpret_cast<nlmsghdr*>(m.data());
  h->nlmsg_flags &= ~NLM_F_ACK_TLVS;
  EXPECT_EQ(kernel::ext_ack_text(h), "");
  h->nlmsg_flags |= NLM_F_ACK_TLVS;
  h->nlmsg_len -= 8;  // the attribute's declared length now passes the message's end
  EXPECT_EQ(kernel::ext_ack_text(h), "");
}

}  // namespace
}  // namespace fl
