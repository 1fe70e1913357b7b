// The TCA_OPTIONS payloads of our qdiscs and classes (HTB root and classes, pfifo, netem, TBF),
// encoded as the kernel's UAPI structs and attributes in plain bytes, and the check that an
// fq_codel's dumped options are its defaults. Pure: no socket, no syscall; kernel/qdisc_tree.cpp
// sends the bytes, and tests/unit/tc_options_test.cpp reads them back field by field.
//
// Why bytes and not a netlink library's setters: restoring a saved qdisc has to send back
// exactly what the kernel dumped, whatever the kind, so one raw path carries every kind; and
// libnl 3.7 lacks netem's 64-bit latency and jitter.
#pragma once

#include <linux/pkt_sched.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "abi.h"
#include "core/model.h"

namespace fl::core {

inline constexpr uint16_t kHtbMajor = FL_HTB_MAJOR;
inline constexpr uint16_t kDefaultMinor = 1;  // HTB's default class: unshaped traffic
// "Unshaped" still passes through an HTB class: a rate far above any NIC's keeps it idle.
inline constexpr uint64_t kUnshapedRateBps = 400'000'000'000ull;
// netem's queue limit in packets (its default is 1000, which drops at ~120 Mbit/s with 100 ms).
inline constexpr uint32_t kNetemLimit = 10000;
inline constexpr uint64_t kPschedTickNs = 64;  // PSCHED_SHIFT 6: qdisc times are in 64 ns ticks

// Netlink attributes as bytes (4-byte aligned, headers included): a TCA_OPTIONS payload.
class TcAttrs {
 public:
  void raw(const void* p, size_t n);  // bytes with no header, padded to 4
  void put(uint16_t type, const void* p, size_t n);
  template <typename T>
  void put(uint16_t type, const T& v) {
    put(type, &v, sizeof v);
  }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

// Attributes of a payload by type (the last of a type wins). Like libnl's nla_parse, it stops
// at the first attribute shorter than its header or running past the end and ignores the rest:
// a kernel newer than us may append what we cannot read, and that must not make a default
// qdisc look configured.
std::map<uint16_t, std::span<const uint8_t>> parse_tc_attrs(std::span<const uint8_t> bytes);

// psched_mtu() for Ethernet devices: MTU plus the 14-byte header, what a full frame costs HTB.
constexpr uint32_t frame_bytes(uint32_t mtu) { return mtu + 14; }
// Time to send `bytes` at bytes_per_s, in psched ticks, as HTB and TBF take their buffers.
uint32_t xmit_ticks(uint64_t bytes, uint64_t bytes_per_s);
// A duration in psched ticks, saturating at UINT32_MAX.
uint32_t ticks_of(std::chrono::microseconds d);
// Ethernet link layer, no rate table (the kernel computes times from the rate); rates of 2^32
// bytes/s and more saturate here and go in the 64-bit attributes.
tc_ratespec ratespec(uint64_t bytes_per_s);
// A percentage as netem's probability (0..UINT32_MAX).
uint32_t probability(double percent);

// Burst of a shaped class when the profile gives none: the larger of two full frames and 10 ms
// at the rate.
uint32_t derived_burst(uint64_t rate_bps, uint32_t mtu);
// HTB's root: default class kDefaultMinor.
std::vector<uint8_t> htb_root_options();
// rate = ceil = rate_bps (bits/s), buffer = cbuffer = the time burst_bytes take at that rate.
std::vector<uint8_t> htb_class_options(uint64_t rate_bps, uint32_t burst_bytes, uint32_t quantum);
// kUnshapedRateBps with 1 ms worth of it as burst, so its bucket can never run dry.
std::vector<uint8_t> unshaped_class_options();
// The options of a shaped (or unshaped, rate_bps 0) class for p on a device with this MTU.
std::vector<uint8_t> shape_class_options(const ShapeProfile& p, uint32_t mtu);
std::vector<uint8_t> fifo_options(uint32_t limit);  // pfifo / bfifo
// tc_netem_qopt followed by attributes (not a nest); loss stays 0 (the BPF program drops).
std::vector<uint8_t> netem_options(const ShapeProfile& p);
// tc_tbf_qopt in TCA_TBF_PARMS: rate bytes/s, a bucket of burst bytes, a queue of limit bytes.
std::vector<uint8_t> tbf_options(uint64_t bytes_per_s, uint32_t burst_bytes, uint32_t limit_bytes);

// Empty if fq_codel's dumped options are its defaults on a device with this MTU (replacing it
// loses nothing); else the first parameter that differs, e.g. "target(us) 20000".
std::string fq_codel_non_default(std::span<const uint8_t> opts, uint32_t mtu);

}  // namespace fl::core
