#include "core/tc_options.h"

#include <linux/netlink.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "core/netem_dist.h"

namespace fl::core {

void TcAttrs::raw(const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  buf_.insert(buf_.end(), b, b + n);
  buf_.resize(NLA_ALIGN(buf_.size()), 0);
}

void TcAttrs::put(uint16_t type, const void* p, size_t n) {
  nlattr h{static_cast<uint16_t>(NLA_HDRLEN + n), type};
  raw(&h, sizeof h);
  if (n) raw(p, n);
}

std::map<uint16_t, std::span<const uint8_t>> parse_tc_attrs(std::span<const uint8_t> bytes) {
  std::map<uint16_t, std::span<const uint8_t>> out;
  size_t off = 0;
  while (off + NLA_HDRLEN <= bytes.size()) {
    nlattr h;
    std::memcpy(&h, bytes.data() + off, sizeof h);
    if (h.nla_len < NLA_HDRLEN || off + h.nla_len > bytes.size()) break;
    out[h.nla_type & NLA_TYPE_MASK] = bytes.subspan(off + NLA_HDRLEN, h.nla_len - NLA_HDRLEN);
    off += NLA_ALIGN(h.nla_len);
  }
  return out;
}

uint32_t xmit_ticks(uint64_t bytes, uint64_t bytes_per_s) {
  if (bytes_per_s == 0) return 0;
  long double ns = static_cast<long double>(bytes) * 1e9L / static_cast<long double>(bytes_per_s);
  long double ticks = std::ceil(ns / kPschedTickNs);
  return ticks >= 4294967295.0L ? UINT32_MAX : static_cast<uint32_t>(ticks);
}

uint32_t ticks_of(std::chrono::microseconds d) {
  uint64_t t = static_cast<uint64_t>(d.count()) * 1000 / kPschedTickNs;
  return t > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(t);
}

tc_ratespec ratespec(uint64_t bytes_per_s) {
  tc_ratespec r{};
  r.linklayer = TC_LINKLAYER_ETHERNET;
  r.rate = bytes_per_s >= (uint64_t{1} << 32) ? UINT32_MAX : static_cast<uint32_t>(bytes_per_s);
  return r;
}

uint32_t probability(double percent) {
  if (percent <= 0) return 0;
  if (percent >= 100) return UINT32_MAX;
  return static_cast<uint32_t>(std::llround(percent / 100.0 * 4294967295.0));
}

// Two frames keep a slow class from stalling on every packet; 10 ms is the classic tc default
// (rate/HZ with HZ=100) and lets the bucket absorb timer slack, so a TCP flow lands within a
// few percent of the rate (its goodput sits about 4.5% under it, which is the TCP/IP/Ethernet
// header share of a 1514-byte frame, not shaping error). Larger bursts buy no accuracy and send
// longer line-rate bursts past the "link".
uint32_t derived_burst(uint64_t rate_bps, uint32_t mtu) {
  uint64_t ten_ms = rate_bps / 8 / 100;
  return static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(2ull * frame_bytes(mtu), ten_ms), UINT32_MAX));
}

std::vector<uint8_t> htb_root_options() {
  tc_htb_glob g{};
  g.version = 3;
  g.rate2quantum = 10;
  g.defcls = kDefaultMinor;
  TcAttrs a;
  a.put(TCA_HTB_INIT, g);
  return a.take();
}

std::vector<uint8_t> htb_class_options(uint64_t rate_bps, uint32_t burst_bytes, uint32_t quantum) {
  uint64_t bps = rate_bps / 8;
  tc_htb_opt o{};
  o.rate = o.ceil = ratespec(bps);
  o.buffer = o.cbuffer = xmit_ticks(burst_bytes, bps);
  o.quantum = quantum;  // explicit, so HTB does not derive one and warn that it is small or big
  TcAttrs a;
  a.put(TCA_HTB_PARMS, o);
  if (bps >= (uint64_t{1} << 32)) {
    a.put(TCA_HTB_RATE64, bps);
    a.put(TCA_HTB_CEIL64, bps);
  }
  return a.take();
}

std::vector<uint8_t> unshaped_class_options() {
  return htb_class_options(kUnshapedRateBps, static_cast<uint32_t>(kUnshapedRateBps / 8 / 1000), 200'000);
}

std::vector<uint8_t> shape_class_options(const ShapeProfile& p, uint32_t mtu) {
  if (!p.rate_bps) return unshaped_class_options();
  uint64_t rate = p.rate_bps;
  uint32_t burst = p.burst_bytes ? p.burst_bytes : derived_burst(rate, mtu);
  // A tenth of the rate per round, within a frame and 200 kB: HTB's own rate2quantum would
  // warn for most rates.
  uint32_t quantum = static_cast<uint32_t>(std::clamp<uint64_t>(rate / 8 / 10, frame_bytes(mtu), 200'000));
  return htb_class_options(rate, burst, quantum);
}

std::vector<uint8_t> fifo_options(uint32_t limit) {
  tc_fifo_qopt f{};
  f.limit = limit;
  std::vector<uint8_t> v(sizeof f);
  std::memcpy(v.data(), &f, sizeof f);
  return v;
}

// Reordering, as sch_netem does it: with gap 0 it never reorders. With gap N it delays N-1
// packets normally, then sends the next one at once (to the head of the queue) with the reorder
// probability, else delays it too and tries again on the next. "reorder P%" without a gap is
// therefore gap 1: every packet skips the delay with probability P (what tc does too). The
// reordered packets are the ones sent early, so reordering needs a delay to be visible.
std::vector<uint8_t> netem_options(const ShapeProfile& p) {
  tc_netem_qopt q{};
  q.latency = ticks_of(p.delay);  // the 64-bit attributes below win on kernels that know them
  q.jitter = ticks_of(p.jitter);
  q.limit = kNetemLimit;
  q.duplicate = probability(p.duplicate_percent);
  if (p.reorder_percent > 0) q.gap = std::max<uint32_t>(1, p.reorder_gap);
  TcAttrs a;
  a.raw(&q, sizeof q);
  a.put(TCA_NETEM_LATENCY64, static_cast<int64_t>(p.delay.count()) * 1000);
  a.put(TCA_NETEM_JITTER64, static_cast<int64_t>(p.jitter.count()) * 1000);
  if (p.delay_correlation > 0) {
    tc_netem_corr c{};
    c.delay_corr = probability(p.delay_correlation);
    a.put(TCA_NETEM_CORR, c);
  }
  if (p.reorder_percent > 0) {
    tc_netem_reorder r{};
    r.probability = probability(p.reorder_percent);
    a.put(TCA_NETEM_REORDER, r);
  }
  if (p.corrupt_percent > 0) {
    tc_netem_corrupt c{};
    c.probability = probability(p.corrupt_percent);
    a.put(TCA_NETEM_CORRUPT, c);
  }
  if (p.distribution != Distribution::uniform) {
    auto table = distribution_table(p.distribution);
    a.put(TCA_NETEM_DELAY_DIST, table.data(), table.size() * sizeof(int16_t));
  }
  return a.take();
}

std::vector<uint8_t> tbf_options(uint64_t bytes_per_s, uint32_t burst_bytes, uint32_t limit_bytes) {
  tc_tbf_qopt q{};
  q.rate = ratespec(bytes_per_s);
  q.buffer = xmit_ticks(burst_bytes, bytes_per_s);
  q.limit = limit_bytes;
  TcAttrs a;
  a.put(TCA_TBF_PARMS, q);
  return a.take();
}

// fq_codel as the kernel attaches it (default_qdisc=fq_codel), or as `tc qdisc add ... fq_codel`
// without parameters makes it: nothing to lose by replacing it. Attributes not checked here
// (and ones newer kernels add) are ignored as long as those we know are at their defaults.
std::string fq_codel_non_default(std::span<const uint8_t> opts, uint32_t mtu) {
  auto tb = parse_tc_attrs(opts);
  auto u32_is = [&](uint16_t type, const char* name, std::initializer_list<uint64_t> ok) -> std::string {
    auto it = tb.find(type);
    if (it == tb.end()) return "";
    if (it->second.size() < 4) return std::string(name) + " unreadable";
    uint32_t v;
    std::memcpy(&v, it->second.data(), sizeof v);
    for (uint64_t o : ok)
      if (v == o) return "";
    return std::string(name) + " " + std::to_string(v);
  };
  // codel keeps times in 1024 ns units, so 5 ms and 100 ms dump as 4999 and 99999 us.
  for (auto s : {u32_is(TCA_FQ_CODEL_LIMIT, "limit", {10240}),
                 u32_is(TCA_FQ_CODEL_FLOWS, "flows", {1024}),
                 u32_is(TCA_FQ_CODEL_TARGET, "target(us)", {4999, 5000}),
                 u32_is(TCA_FQ_CODEL_INTERVAL, "interval(us)", {99999, 100000}),
                 u32_is(TCA_FQ_CODEL_ECN, "ecn", {1}),
                 u32_is(TCA_FQ_CODEL_QUANTUM, "quantum", {mtu, frame_bytes(mtu)}),
                 u32_is(TCA_FQ_CODEL_MEMORY_LIMIT, "memory_limit", {32u << 20}),
                 u32_is(TCA_FQ_CODEL_DROP_BATCH_SIZE, "drop_batch", {64})})
    if (!s.empty()) return s;
  if (tb.count(TCA_FQ_CODEL_CE_THRESHOLD)) return "ce_threshold set";
  return "";
}

}  // namespace fl::core
