// A small frame builder for BPF_PROG_TEST_RUN: Ethernet, up to any number of VLAN tags, ARP,
// IPv4 (options, flags, fragment offset, any IHL), IPv6 with a chain of extension headers, TCP,
// UDP, ICMP and ICMPv6, then optional truncation. Layers are pushed outermost first; build()
// links them: each header's "next protocol" field names the layer after it, length fields
// count the whole untruncated frame (a truncated frame looks like a cut capture, not a short
// packet), and the IPv4 header checksum is filled in. The data path never verifies L4
// checksums, so they stay zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fl::test {

inline constexpr uint16_t kEthIPv4 = 0x0800;
inline constexpr uint16_t kEthIPv6 = 0x86DD;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint16_t kEth8021Q = 0x8100;
inline constexpr uint16_t kEth8021AD = 0x88A8;

// TCP flag bits (byte 13 of the header).
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

// IPv6 extension header numbers.
inline constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kAuth = 51, kDestOpts = 60;

enum class Layer { eth, vlan, arp, ipv4, ipv6, ext6, tcp, udp, icmp, icmp6, raw, payload };

struct Ipv4Opts {
  std::vector<uint8_t> options;  // padded with zeros (EOL) to a multiple of 4
  std::optional<uint8_t> ihl;    // header length in 32-bit words as written; default 5 + options
  uint16_t frag_offset = 0;      // in 8-byte units
  bool more_fragments = false;
  bool dont_fragment = false;
  std::optional<uint8_t> protocol;  // default: from the next layer
  uint8_t ttl = 64;
};

class Packet {
 public:
  Packet();  // starts with an Ethernet header (02:00:00:00:00:01 -> 02:00:00:00:00:02)

  Packet& vlan(uint16_t vid, uint16_t tpid = kEth8021Q);
  Packet& arp_request(const std::string& sender_ip, const std::string& target_ip);
  Packet& ipv4(const std::string& src, const std::string& dst, const Ipv4Opts& o = {});
  Packet& ipv6(const std::string& src, const std::string& dst);
  // An IPv6 extension header of `type` (kHopByHop, kRouting, kDestOpts, kAuth) whose total size
  // is `bytes` (a multiple of 8 for the first three, of 4 and >= 12 for AH). Its length field is
  // encoded as RFC 8200 (8-octet units minus 1) or RFC 4302 (4-octet units minus 2) says.
  Packet& ext6(uint8_t type, size_t bytes = 8);
  // IPv6 fragment header: offset in 8-byte units.
  Packet& frag6(uint16_t offset, bool more, uint32_t id = 0x1234);
  Packet& tcp(uint16_t sport, uint16_t dport, uint8_t flags = kAck);
  Packet& udp(uint16_t sport, uint16_t dport);
  Packet& icmp(uint8_t type, uint8_t code = 0);   // ICMP for IPv4, 8 bytes (echo layout)
  Packet& icmp6(uint8_t type, uint8_t code = 0);  // ICMPv6, 8 bytes
  Packet& raw(uint8_t ipproto, size_t bytes);     // an L4 the data path does not parse
  Packet& payload(size_t bytes, uint8_t fill = 0xAB);
  // Overrides the ethertype of the Ethernet header (otherwise taken from the next layer).
  Packet& ethertype(uint16_t type);
  // Keeps only the first `len` bytes of the built frame.
  Packet& truncate(size_t len);

  // Offset of the first layer of this kind in the built frame; throws if absent.
  size_t offset_of(Layer k) const;
  std::vector<uint8_t> build() const;

 private:
  struct Part {
    Layer kind;
    std::vector<uint8_t> bytes;
    uint8_t ext_type = 0;              // ext6: header type
    std::optional<uint16_t> type_override;  // eth: ethertype; ipv4: protocol; raw: ip proto
  };
  Packet& push(Layer k, std::vector<uint8_t> bytes);
  std::vector<Part> parts_;
  std::optional<size_t> truncate_;
};

// Dotted or colon address -> network-order bytes (4 or 16); throws on bad input.
std::vector<uint8_t> addr_bytes(const std::string& addr);

}  // namespace fl::test
