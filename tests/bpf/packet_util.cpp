#include "bpf/packet_util.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace fl::test {

namespace {

void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  put16(b, off, static_cast<uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<uint16_t>(v));
}

uint16_t ip_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

std::vector<uint8_t> addr_bytes(const std::string& addr) {
  std::vector<uint8_t> out(16);
  if (inet_pton(AF_INET, addr.c_str(), out.data()) == 1) {
    out.resize(4);
    return out;
  }
  if (inet_pton(AF_INET6, addr.c_str(), out.data()) == 1) return out;
  throw std::invalid_argument("not an IP address: " + addr);
}

Packet::Packet() {
  std::vector<uint8_t> eth(14, 0);
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::copy(dst, dst + 6, eth.begin());
  std::copy(src, src + 6, eth.begin() + 6);
  push(Layer::eth, std::move(eth));
}

Packet& Packet::push(Layer k, std::vector<uint8_t> bytes) {
  parts_.push_back(Part{k, std::move(bytes), 0, std::nullopt});
  return *this;
}

Packet& Packet::ethertype(uint16_t type) {
  parts_.front().type_override = type;
  return *this;
}

Packet& Packet::vlan(uint16_t vid, uint16_t tpid) {
  std::vector<uint8_t> b(4, 0);
  put16(b, 0, vid & 0x0fff);  // PCP 0, DEI 0; the encapsulated type is linked in build()
  push(Layer::vlan, std::move(b));
  parts_.back().type_override = tpid;  // the TPID that announces this tag
  return *this;
}

Packet& Packet::arp_request(const std::string& sender_ip, const std::string& target_ip) {
  std::vector<uint8_t> b(28, 0);
  put16(b, 0, 1);          // hardware: Ethernet
  put16(b, 2, kEthIPv4);   // protocol: IPv4
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, 1);  // request
  b[8] = 0x02;
  b[13] = 0x01;  // sender MAC 02:00:00:00:00:01
  auto s = addr_bytes(sender_ip), t = addr_bytes(target_ip);
  if (s.size() != 4 || t.size() != 4) throw std::invalid_argument("ARP needs IPv4 addresses");
  std::copy(s.begin(), s.end(), b.begin() + 14);
  std::copy(t.begin(), t.end(), b.begin() + 24);
  return push(Layer::arp, std::move(b));
}

Packet& Packet::ipv4(const std::string& src, const std::string& dst, const Ipv4Opts& o) {
  auto s = addr_bytes(src), d = addr_bytes(dst);
  if (s.size() != 4 || d.size() != 4) throw std::invalid_argument("ipv4() needs IPv4 addresses");
  std::vector<uint8_t> opts = o.options;
  while (opts.size() % 4) opts.push_back(0);
  if (opts.size() > 40) throw std::invalid_argument("IPv4 options longer than 40 bytes");
  std::vector<uint8_t> b(20 + opts.size(), 0);
  uint8_t ihl = o.ihl.value_or(static_cast<uint8_t>(b.size() / 4));
  b[0] = static_cast<uint8_t>(0x40 | (ihl & 0x0f));
  put16(b, 4, 0x4242);  // identification
  uint16_t frag = o.frag_offset & 0x1fff;
  if (o.more_fragments) frag |= 0x2000;
  if (o.dont_fragment) frag |= 0x4000;
  put16(b, 6, frag);
  b[8] = o.ttl;
  std::copy(s.begin(), s.end(), b.begin() + 12);
  std::copy(d.begin(), d.end(), b.begin() + 16);
  std::copy(opts.begin(), opts.end(), b.begin() + 20);
  push(Layer::ipv4, std::move(b));
  if (o.protocol) parts_.back().type_override = *o.protocol;
  return *this;
}

Packet& Packet::ipv6(const std::string& src, const std::string& dst) {
  auto s = addr_bytes(src), d = addr_bytes(dst);
  if (s.size() != 16 || d.size() != 16) throw std::invalid_argument("ipv6() needs IPv6 addresses");
  std::vector<uint8_t> b(40, 0);
  b[0] = 0x60;
  b[7] = 64;  // hop limit
  std::copy(s.begin(), s.end(), b.begin() + 8);
  std::copy(d.begin(), d.end(), b.begin() + 24);
  return push(Layer::ipv6, std::move(b));
}

Packet& Packet::ext6(uint8_t type, size_t bytes) {
  std::vector<uint8_t> b(bytes, 0);
  if (type == kAuth) {
    if (bytes < 12 || bytes % 4 || bytes / 4 - 2 > 255) throw std::invalid_argument("bad AH size");
    b[1] = static_cast<uint8_t>(bytes / 4 - 2);  // RFC 4302: 32-bit words minus 2
    put32(b, 4, 0x100);                           // SPI
    put32(b, 8, 1);                               // sequence number
  } else if (type == kHopByHop || type == kRouting || type == kDestOpts) {
    if (bytes < 8 || bytes % 8 || bytes / 8 - 1 > 255) throw std::invalid_argument("bad extension size");
    b[1] = static_cast<uint8_t>(bytes / 8 - 1);  // RFC 8200: 8-octet units minus 1
    if (type == kRouting) {
      b[2] = 4;  // routing type: segment routing, segments left 0 (nothing for us to follow)
    } else {
      // Options area: one PadN option covering what remains after the two fixed bytes.
      b[2] = 1;
      b[3] = static_cast<uint8_t>(bytes - 4);
    }
  } else {
    throw std::invalid_argument("ext6: use frag6() for fragment headers");
  }
  push(Layer::ext6, std::move(b));
  parts_.back().ext_type = type;
  return *this;
}

Packet& Packet::frag6(uint16_t offset, bool more, uint32_t id) {
  std::vector<uint8_t> b(8, 0);
  put16(b, 2, static_cast<uint16_t>((offset << 3) | (more ? 1 : 0)));
  put32(b, 4, id);
  push(Layer::ext6, std::move(b));
  parts_.back().ext_type = kFragment;
  return *this;
}

Packet& Packet::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
  std::vector<uint8_t> b(20, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put32(b, 4, 1000);                // sequence
  put32(b, 8, flags & kAck ? 1 : 0);  // acknowledgment
  b[12] = 5 << 4;                   // data offset: 5 words
  b[13] = flags;
  put16(b, 14, 65535);  // window
  return push(Layer::tcp, std::move(b));
}

Packet& Packet::udp(uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(8, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  return push(Layer::udp, std::move(b));
}

Packet& Packet::icmp(uint8_t type, uint8_t code) {
  std::vector<uint8_t> b(8, 0);
  b[0] = type;
  b[1] = code;
  return push(Layer::icmp, std::move(b));
}

Packet& Packet::icmp6(uint8_t type, uint8_t code) {
  std::vector<uint8_t> b(8, 0);
  b[0] = type;
  b[1] = code;
  return push(Layer::icmp6, std::move(b));
}

Packet& Packet::raw(uint8_t ipproto, size_t bytes) {
  push(Layer::raw, std::vector<uint8_t>(bytes, 0x5A));
  parts_.back().type_override = ipproto;
  return *this;
}

Packet& Packet::payload(size_t bytes, uint8_t fill) { return push(Layer::payload, std::vector<uint8_t>(bytes, fill)); }

Packet& Packet::truncate(size_t len) {
  truncate_ = len;
  return *this;
}

size_t Packet::offset_of(Layer k) const {
  size_t off = 0;
  for (const auto& p : parts_) {
    if (p.kind == k) return off;
    off += p.bytes.size();
  }
  throw std::invalid_argument("offset_of: no such layer in this packet");
}

std::vector<uint8_t> Packet::build() const {
  // The type a layer announces to the one before it: an ethertype for L2, an IP protocol number
  // for L3 and the IPv6 chain. A missing next layer is IPv6 "no next header" (59).
  auto ethertype_of = [](const Part& p) -> uint16_t {
    switch (p.kind) {
      case Layer::vlan: return *p.type_override;
      case Layer::ipv4: return kEthIPv4;
      case Layer::ipv6: return kEthIPv6;
      case Layer::arp: return kEthArp;
      default: return 0x88B5;  // IEEE local experimental: "something that is not IP"
    }
  };
  auto ipproto_of = [](const Part& p) -> uint8_t {
    switch (p.kind) {
      case Layer::tcp: return 6;
      case Layer::udp: return 17;
      case Layer::icmp: return 1;
      case Layer::icmp6: return 58;
      case Layer::ext6: return p.ext_type;
      case Layer::raw: return static_cast<uint8_t>(*p.type_override);
      case Layer::ipv4: return 4;
      case Layer::ipv6: return 41;
      default: return 59;
    }
  };

  std::vector<size_t> start(parts_.size());
  std::vector<uint8_t> out;
  for (size_t i = 0; i < parts_.size(); i++) {
    start[i] = out.size();
    out.insert(out.end(), parts_[i].bytes.begin(), parts_[i].bytes.end());
  }
  for (size_t i = 0; i < parts_.size(); i++) {
    const Part& p = parts_[i];
    const Part* next = i + 1 < parts_.size() ? &parts_[i + 1] : nullptr;
    const size_t off = start[i];
    const size_t rest = out.size() - off;  // this header and everything after it
    switch (p.kind) {
      case Layer::eth:
        put16(out, off + 12, p.type_override ? *p.type_override : next ? ethertype_of(*next) : 0x88B5);
        break;
      case Layer::vlan:
        put16(out, off + 2, next ? ethertype_of(*next) : 0x88B5);
        break;
      case Layer::ipv4: {
        out[off + 9] = p.type_override ? static_cast<uint8_t>(*p.type_override) : next ? ipproto_of(*next) : 59;
        put16(out, off + 2, static_cast<uint16_t>(rest));
        // The checksum covers the header as laid out (a bad IHL still gets the 20 fixed bytes).
        size_t hlen = p.bytes.size();
        put16(out, off + 10, ip_checksum(&out[off], hlen));
        break;
      }
      case Layer::ipv6:
        out[off + 6] = next ? ipproto_of(*next) : 59;
        put16(out, off + 4, static_cast<uint16_t>(rest - 40));
        break;
      case Layer::ext6:
        out[off] = next ? ipproto_of(*next) : 59;
        break;
      case Layer::udp:
        put16(out, off + 4, static_cast<uint16_t>(rest));
        break;
      default:
        break;
    }
  }
  if (truncate_ && *truncate_ < out.size()) out.resize(*truncate_);
  return out;
}

}  // namespace fl::test
