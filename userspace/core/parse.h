// Parsers for everything a user types. Each returns a precise invalid_argument error that quotes
// the input and says what was expected; none touches the system.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/normalize.h"
#include "core/result.h"

namespace fl::core {

// "10.0.0.1" (= /32), "10.0.0.0/8", "fd00::1" (= /128), "fd00::/64". Host bits set is an error
// that names the network ("10.0.0.1/8 has host bits set; the network is 10.0.0.0/8").
Result<Cidr> parse_cidr(std::string_view s);
// Comma-separated, at least one, no empty items; duplicates removed, order kept.
Result<std::vector<Cidr>> parse_cidr_list(std::string_view s);

// "500ms", "30s", "10m", "2h", "7d", also combined "1h30m", "1d12h" and "1.5s"; no bare
// numbers. format_duration writes days too: 168h is "7d".
Result<std::chrono::milliseconds> parse_duration(std::string_view s);
std::string format_duration(std::chrono::milliseconds d);  // "1h30m", "500ms", "20s"

// Delays and jitter: parse_duration's grammar plus "us", to the microsecond: "100ms", "0.5ms",
// "250us", "1ms500us", "0ms". Lifetimes keep parse_duration, where a microsecond means a typo.
Result<std::chrono::microseconds> parse_duration_us(std::string_view s);
std::string format_duration_us(std::chrono::microseconds d);  // "1s500ms", "250us", "0us"

// A rate, in bits per second, with tc's units (lower case only):
//   bit, kbit, mbit, gbit, tbit            bits per second, decimal (x1000)
//   kibit, mibit, gibit, tibit             bits per second, binary (x1024)
//   bps, kbps, mbps, gbps, tbps            BYTES per second, decimal, as in tc: "10mbps" is 80mbit
//   kibps, mibps, gibps, tibps             bytes per second, binary
// "512kbit", "10mbit", "1.5gbit". A bare number is refused (tc would read it as bytes per
// second), and so is a value that is not a whole number of bits per second.
Result<uint64_t> parse_rate(std::string_view s);
std::string format_rate(uint64_t bps);  // "10mbit", "1500kbit", "12345bit"

// A size in bytes with tc's units, which are all binary: b (or none) bytes, k/kb/kib 1024,
// m/mb/mib 1024^2, g/gb/gib 1024^3. "1500", "1500b", "32kb", "64k", "1.5mb". Lower case only;
// a value that is not a whole number of bytes, or above 4 GiB - 1, is refused.
Result<uint32_t> parse_size(std::string_view s);

Result<Distribution> parse_distribution(std::string_view s);  // uniform|normal|pareto|paretonormal

// "30", "30%", "0.5", "12.25%": [0, 100].
Result<double> parse_percent(std::string_view s);

// "80" or "1000-2000" (lo <= hi, 0..65535).
Result<PortRange> parse_port_range(std::string_view s);

Result<Proto> parse_proto(std::string_view s);          // tcp|udp|icmp|all
Result<Direction> parse_direction(std::string_view s);  // ingress|egress|both
// partition|loss|isolate|delay|rate|corrupt|duplicate|reorder|shape|matrix
Result<FaultKind> parse_kind(std::string_view s);
Result<uint64_t> parse_u64(std::string_view s);         // decimal, or 0x hex

// "CIDR", "CIDR/PROTO", "CIDR/PROTO:PORT" (PROTO tcp|udp|icmp|all; PORT needs tcp or udp).
// A bare address is /32 or /128: "169.254.169.254", "10.0.0.0/8/tcp:22", "fd00::/64/udp:53".
Result<Exemption> parse_exemption(std::string_view s);

// "host", "netns:NAME", "netns-path:/abs/path", "pid:1234";
// "pod-uid:UID" (RFC 4122, lower case, with dashes), "container:ID" (lower case hex, 12..64
// digits: the id or a prefix as crictl and docker print them), "pod:NAMESPACE/NAME" (DNS-1123
// label / subdomain); "lab:NODE" and "lab:LAB/NODE" (a-z, 0-9, '-'; LAB up to 40 characters,
// default "fl-lab", NODE up to 15), which become netns:LAB-NODE, the namespace the lab made.
Result<Target> parse_target(std::string_view s);
// Where faultline-lab keeps its labs' state files (LAB.json), read by faultctl for lab:NODE
// sides. Not under /run/faultline: systemd removes faultlined's RuntimeDirectory when the
// daemon stops, and the lab has nothing to do with the daemon. On tmpfs all the same, like
// /run/netns, so state and namespaces both end at a reboot and never outlive each other.
inline constexpr const char* kLabStateDir = "/run/faultline-lab";
inline constexpr size_t kMinContainerIdPrefix = 12;

// "[NAME=]CIDR[,CIDR...]"; a side without a name is called "s<index+1>".
Result<Side> parse_side(std::string_view s, size_t index);

// The user's input in double quotes for an error message: '"', '\\', control characters and
// non-ASCII bytes escaped (\", \\, \xNN), so the message is printable ASCII and always valid
// UTF-8 for JSON. Input over 128 bytes is cut, with "..." after the closing quote.
std::string quote(std::string_view s);

// A fault or side name: 1..63 chars of [A-Za-z0-9_.-], not starting with '-' and not all digits
// (an all-digit string is a fault id).
Status check_name(std::string_view s, std::string_view what);

}  // namespace fl::core
