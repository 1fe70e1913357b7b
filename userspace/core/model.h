// The fault model: what a user asks for, already parsed and validated. Pure data, no syscalls.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fl::core {

// A canonical CIDR: host bits are zero, IPv4 stored in the first 4 bytes of addr.
struct Cidr {
  uint8_t family = 4;  // 4 or 6
  uint8_t prefix = 0;  // 0..32 or 0..128
  std::array<uint8_t, 16> addr{};

  bool contains(const Cidr& inner) const;  // same family, prefix <= inner.prefix, bits match
  std::string str() const;                 // "10.0.0.0/8", "fd00::/64"; /32 and /128 kept
  auto operator<=>(const Cidr&) const = default;
};

enum class Proto : uint8_t { all = 0, tcp, udp, icmp };  // icmp means ICMP and ICMPv6
enum class Direction : uint8_t { ingress = 1, egress = 2, both = 3 };
// delay..shape are the shaping kinds: one ShapeProfile, one HTB class per fault. They differ in
// the verb the user typed (and so what `list` shows); matrix has one profile per ordered pair
// of sides.
enum class FaultKind : uint8_t {
  partition = 1,
  loss = 2,
  isolate = 3,
  delay = 4,
  rate = 5,
  corrupt = 6,
  duplicate = 7,
  reorder = 8,
  shape = 9,
  matrix = 10,
};
bool is_shaping(FaultKind k);  // delay, rate, corrupt, duplicate, reorder, shape, matrix

// netem's delay distributions. uniform: delay +- jitter evenly; the others use a table.
enum class Distribution : uint8_t { uniform = 0, normal, pareto, paretonormal };
const char* distribution_name(Distribution d);

const char* proto_name(Proto p);
const char* direction_name(Direction d);
const char* kind_name(FaultKind k);

struct PortRange {
  uint16_t lo = 0, hi = 65535;
  bool any() const { return lo == 0 && hi == 65535; }
  std::string str() const;  // "80", "1000-2000", "any"
  auto operator<=>(const PortRange&) const = default;
};

// An allowlist entry: traffic with either endpoint in cidr (and matching proto/port on either
// side, when given) is never touched by a fault. port != 0 requires proto tcp or udp.
struct Exemption {
  Cidr cidr;
  Proto proto = Proto::all;
  uint16_t port = 0;  // 0: any port
  std::string str() const;  // "0.0.0.0/0/tcp:22", "169.254.169.254/32"
  auto operator<=>(const Exemption&) const = default;
};

// The exemptions every fault carries unless it says --no-default-exempt:
// tcp and udp 22 and 53 from/to anywhere (v4 and v6), and 169.254.169.254.
std::vector<Exemption> default_exemptions();

// What one shaping class does to the packets put in it. Loss is decided by the BPF program
// (before the packet reaches the qdisc, so it works without netem); delay, jitter, corrupt,
// duplicate and reorder need netem; rate is an HTB class rate and works everywhere.
struct ShapeProfile {
  std::chrono::microseconds delay{0};
  std::chrono::microseconds jitter{0};
  double delay_correlation = 0;  // percent [0, 100]
  Distribution distribution = Distribution::uniform;
  uint64_t rate_bps = 0;      // bits per second; 0: not rate limited
  uint32_t burst_bytes = 0;   // 0: derived from the rate
  double loss_percent = 0;    // [0, 100]
  double loss_correlation = 0;
  double corrupt_percent = 0;
  double duplicate_percent = 0;
  double reorder_percent = 0;  // needs delay: reordered packets skip it
  uint32_t reorder_gap = 0;
  bool needs_netem() const {
    return delay.count() > 0 || jitter.count() > 0 || corrupt_percent > 0 || duplicate_percent > 0 ||
           reorder_percent > 0;
  }
  bool needs_class() const { return needs_netem() || rate_bps > 0; }
  bool empty() const { return !needs_class() && loss_percent == 0; }
  std::string str() const;  // "delay 100ms jitter 10ms rate 10mbit loss 1%"
  auto operator<=>(const ShapeProfile&) const = default;
};

// One cell of a latency matrix: traffic from sides[from] to sides[to].
struct MatrixPair {
  size_t from = 0, to = 0;
  ShapeProfile profile;
  auto operator<=>(const MatrixPair&) const = default;
};

// Where a fault applies: a network namespace, named in one of these ways. The Kubernetes kinds
// are found on the node from the kubelet's cgroup layout (kernel/pod_target.h), never through
// the API server. lab:[LAB/]NODE is parsed straight into netns_name "LAB-NODE".
struct Target {
  enum class Kind : uint8_t { host, netns_name, netns_path, pid, pod_uid, container, pod };
  Kind kind = Kind::host;
  // empty for host; pod_uid: the UID; container: 12..64 lowercase hex digits (a prefix of the
  // id); pod: "NAMESPACE/NAME".
  std::string value;
  // "host", "netns:NAME", "netns-path:PATH", "pid:PID", "pod-uid:UID", "container:ID",
  // "pod:NAMESPACE/NAME"
  std::string str() const;
  bool kubernetes() const { return kind == Kind::pod_uid || kind == Kind::container || kind == Kind::pod; }
  auto operator<=>(const Target&) const = default;
};

struct Side {
  std::string name;  // user's name or "s1", "s2"...
  std::vector<Cidr> cidrs;
};

struct Match {
  std::vector<Cidr> src, dst;  // empty: any address
  Proto proto = Proto::all;
  PortRange sport, dport;
  Direction direction = Direction::both;
  bool new_only = false;  // TCP SYN without ACK only
};

// Limits shared by validation, the wire protocol and the kernel ABI.
inline constexpr size_t kMaxSidesPerFault = 16;
inline constexpr size_t kMaxCidrsPerFault = 65536;
inline constexpr size_t kMaxExemptionsPerFault = 16;
inline constexpr size_t kMaxTargetsPerFault = 16;
inline constexpr size_t kMaxMatrixSides = 8;  // 56 ordered pairs, one slot and class each
inline constexpr uint64_t kMinRateBps = 8000;          // 1 kB/s
inline constexpr uint64_t kMaxRateBps = 400'000'000'000ull;  // 400gbit
inline constexpr auto kMaxDelay = std::chrono::seconds(60);
inline constexpr size_t kMaxNameLen = 63;
inline constexpr auto kMinDuration = std::chrono::milliseconds(100);
inline constexpr auto kMaxDuration = std::chrono::hours(24 * 7);
inline constexpr auto kDefaultDuration = std::chrono::minutes(5);

struct FaultSpec {
  FaultKind kind = FaultKind::partition;
  std::string name;  // optional; unique among active faults when set

  // partition: >= 2 sides; isolate: exactly one side (the isolated nodes).
  std::vector<Side> sides;
  bool one_way = false;  // partition: drop only sides[0] -> others
  // partition, isolate: once the fault is on, destroy the established TCP connections it cuts
  // (SOCK_DESTROY) so both ends see a reset at once, as when a node dies.
  bool reset = false;

  // loss
  double loss_percent = 0;         // (0, 100]
  double correlation_percent = 0;  // [0, 100): lag-1 correlation of drop decisions
  std::optional<uint64_t> seed;    // reproducible decisions per CPU

  // delay, rate, corrupt, duplicate, reorder, shape: what the one class does.
  ShapeProfile shape;
  // matrix: one profile per ordered pair of sides (pairs not listed are left alone).
  std::vector<MatrixPair> pairs;
  // Shaping: replace a root qdisc that faultline would otherwise refuse to touch (its kind and
  // parameters are restored when the last shaping fault on the interface ends).
  bool replace_root = false;

  // A request that names no direction gets egress for shaping kinds (like netem on an
  // interface: each host delays what it sends, so a matrix applied on every node counts each
  // pair once) and both for the others. The protocol decoder applies that default.
  Match match;
  std::vector<Exemption> exempt;  // in addition to daemon and default exemptions
  bool default_exempt = true;

  std::vector<Target> targets;    // empty after validation never happens: default {host}
  std::vector<std::string> devs;  // empty: every non-loopback interface of each target
  std::chrono::milliseconds duration = kDefaultDuration;
};

}  // namespace fl::core
