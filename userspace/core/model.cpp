#include "core/model.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdio>

namespace fl::core {

namespace {

size_t max_prefix(uint8_t family) { return family == 4 ? 32 : 128; }

// glibc's inet_ntop prints any address in ::/96 whose seventh group is non-zero in the
// deprecated IPv4-compatible form ("::2:3" comes out as "::0.2.0.3"). RFC 5952 section 5 keeps
// dotted notation for IPv4-mapped addresses only, so that one case is formatted here. The other
// RFC 5952 rules (lower case, no leading zeros, longest zero run compressed, first on a tie, a
// single zero group never compressed) are what inet_ntop already does.
std::string ipv6_str(const std::array<uint8_t, 16>& a) {
  bool first96_zero = true;
  for (size_t i = 0; i < 12; ++i) first96_zero = first96_zero && a[i] == 0;
  const unsigned g6 = (a[12] << 8) | a[13];
  const unsigned g7 = (a[14] << 8) | a[15];
  if (first96_zero && g6 != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "::%x:%x", g6, g7);
    return buf;
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, a.data(), buf, sizeof buf) == nullptr) return "?";  // cannot happen
  return buf;
}

}  // namespace

bool Cidr::contains(const Cidr& inner) const {
  if (family != inner.family || (family != 4 && family != 6)) return false;
  if (prefix > inner.prefix || prefix > max_prefix(family)) return false;
  const size_t full = prefix / 8;
  for (size_t i = 0; i < full; ++i) {
    if (addr[i] != inner.addr[i]) return false;
  }
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (inner.addr[full] & mask);
}

std::string Cidr::str() const {
  std::string out;
  if (family == 4) {
    char buf[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, addr.data(), buf, sizeof buf) == nullptr) return "?";
    out = buf;
  } else if (family == 6) {
    out = ipv6_str(addr);
  } else {
    // Only a Cidr built by hand can get here; say so rather than print a plausible address.
    return "<invalid family " + std::to_string(family) + ">/" + std::to_string(prefix);
  }
  return out + "/" + std::to_string(prefix);
}

const char* proto_name(Proto p) {
  switch (p) {
    case Proto::all: return "all";
    case Proto::tcp: return "tcp";
    case Proto::udp: return "udp";
    case Proto::icmp: return "icmp";
  }
  return "unknown";
}

const char* direction_name(Direction d) {
  switch (d) {
    case Direction::ingress: return "ingress";
    case Direction::egress: return "egress";
    case Direction::both: return "both";
  }
  return "unknown";
}

const char* kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::partition: return "partition";
    case FaultKind::loss: return "loss";
    case FaultKind::isolate: return "isolate";
    case FaultKind::delay: return "delay";
    case FaultKind::rate: return "rate";
    case FaultKind::corrupt: return "corrupt";
    case FaultKind::duplicate: return "duplicate";
    case FaultKind::reorder: return "reorder";
    case FaultKind::shape: return "shape";
    case FaultKind::matrix: return "matrix";
  }
  return "unknown";
}

bool is_shaping(FaultKind k) {
  return k >= FaultKind::delay && k <= FaultKind::matrix;
}

const char* distribution_name(Distribution d) {
  switch (d) {
    case Distribution::uniform: return "uniform";
    case Distribution::normal: return "normal";
    case Distribution::pareto: return "pareto";
    case Distribution::paretonormal: return "paretonormal";
  }
  return "unknown";
}

namespace {

std::string fmt_us(std::chrono::microseconds d) {
  auto us = d.count();
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

std::string fmt_pct(double p) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g%%", p);
  return buf;
}

std::string fmt_rate(uint64_t bps) {
  if (bps % 1'000'000'000 == 0) return std::to_string(bps / 1'000'000'000) + "gbit";
  if (bps % 1'000'000 == 0) return std::to_string(bps / 1'000'000) + "mbit";
  if (bps % 1000 == 0) return std::to_string(bps / 1000) + "kbit";
  return std::to_string(bps) + "bit";
}

}  // namespace

std::string ShapeProfile::str() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : " ") + s; };
  if (delay.count()) add("delay " + fmt_us(delay));
  if (jitter.count()) add("jitter " + fmt_us(jitter));
  if (delay_correlation > 0) add("delay-correlation " + fmt_pct(delay_correlation));
  if (jitter.count() && distribution != Distribution::uniform)
    add(std::string("distribution ") + distribution_name(distribution));
  if (rate_bps) add("rate " + fmt_rate(rate_bps));
  if (burst_bytes) add("burst " + std::to_string(burst_bytes) + "b");
  if (loss_percent > 0) add("loss " + fmt_pct(loss_percent));
  if (loss_correlation > 0) add("loss-correlation " + fmt_pct(loss_correlation));
  if (corrupt_percent > 0) add("corrupt " + fmt_pct(corrupt_percent));
  if (duplicate_percent > 0) add("duplicate " + fmt_pct(duplicate_percent));
  if (reorder_percent > 0) add("reorder " + fmt_pct(reorder_percent));
  if (reorder_gap) add("gap " + std::to_string(reorder_gap));
  return out.empty() ? "none" : out;
}

std::string PortRange::str() const {
  if (any()) return "any";
  if (lo == hi) return std::to_string(lo);
  return std::to_string(lo) + "-" + std::to_string(hi);
}

std::string Exemption::str() const {
  std::string out = cidr.str();
  // A port with proto all is invalid; print it anyway so the error that rejects it shows the
  // value as given instead of silently dropping the port.
  if (proto != Proto::all || port != 0) out += std::string("/") + proto_name(proto);
  if (port != 0) out += ":" + std::to_string(port);
  return out;
}

std::vector<Exemption> default_exemptions() {
  // SSH and DNS must survive any fault, or the operator loses the node and name resolution
  // breaks for everything else on it; the link-local metadata service carries cloud credentials
  // and instance identity.
  std::vector<Exemption> out;
  const Cidr v4_any{4, 0, {}};
  const Cidr v6_any{6, 0, {}};
  for (const Cidr& any : {v4_any, v6_any}) {
    for (uint16_t port : {22, 53}) {
      out.push_back(Exemption{any, Proto::tcp, port});
      out.push_back(Exemption{any, Proto::udp, port});
    }
  }
  Cidr metadata{4, 32, {}};
  metadata.addr[0] = 169;
  metadata.addr[1] = 254;
  metadata.addr[2] = 169;
  metadata.addr[3] = 254;
  out.push_back(Exemption{metadata, Proto::all, 0});
  return out;
}

std::string Target::str() const {
  switch (kind) {
    case Kind::host: return "host";
    case Kind::netns_name: return "netns:" + value;
    case Kind::netns_path: return "netns-path:" + value;
    case Kind::pid: return "pid:" + value;
    case Kind::pod_uid: return "pod-uid:" + value;
    case Kind::container: return "container:" + value;
    case Kind::pod: return "pod:" + value;
  }
  return "unknown:" + value;
}

}  // namespace fl::core
