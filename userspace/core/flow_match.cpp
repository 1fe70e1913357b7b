#include "core/flow_match.h"

#include <algorithm>

#include "core/plan.h"

namespace fl::core {

namespace {

bool in_any(const std::vector<Cidr>& set, const Cidr& host) {
  return std::any_of(set.begin(), set.end(), [&](const Cidr& c) { return c.contains(host); });
}

bool in_side(const FaultSpec& spec, size_t i, const Cidr& host) {
  return i < spec.sides.size() && in_any(spec.sides[i].cidrs, host);
}

// The addresses part of slot_matches for one packet. Sides with equal CIDR sets share a bit in
// the data path; testing membership side by side gives the same answers, since equal sets hold
// the same addresses.
bool addresses_match(const FaultSpec& spec, const Cidr& src, const Cidr& dst) {
  const size_t n = spec.sides.size();
  switch (spec.kind) {
    case FaultKind::partition: {
      bool src_any = false, dst_any = false;
      for (size_t i = 0; i < n; ++i) {
        const bool s = in_side(spec, i, src), d = in_side(spec, i, dst);
        if (s && d) return false;  // a side holds both: the same side, or a bridge
        if (spec.one_way) {
          src_any = src_any || (i == 0 && s);
          dst_any = dst_any || (i != 0 && d);
        } else {
          src_any = src_any || s;
          dst_any = dst_any || d;
        }
      }
      if (!src_any || !dst_any) return false;
      break;
    }
    case FaultKind::isolate: {
      bool cut = false;
      for (size_t i = 0; i < n && !cut; ++i) cut = in_side(spec, i, src) != in_side(spec, i, dst);
      if (!cut) return false;
      break;
    }
    case FaultKind::matrix: {
      const bool any_pair = std::any_of(spec.pairs.begin(), spec.pairs.end(), [&](const MatrixPair& p) {
        return in_side(spec, p.from, src) && in_side(spec, p.to, dst);
      });
      if (!any_pair) return false;
      break;
    }
    default: break;
  }
  if (!spec.match.src.empty() && !in_any(spec.match.src, src)) return false;
  if (!spec.match.dst.empty() && !in_any(spec.match.dst, dst)) return false;
  return true;
}

bool in_range(const PortRange& r, uint16_t p) { return p >= r.lo && p <= r.hi; }

bool packet_matches(const FaultSpec& spec, const Cidr& src, uint16_t sport, const Cidr& dst, uint16_t dport) {
  if (!addresses_match(spec, src, dst)) return false;
  const Match& m = spec.match;
  // The data path tests ports only when a range is set (FL_F_PORTS), and then needs both.
  if (!m.sport.any() || !m.dport.any()) return in_range(m.sport, sport) && in_range(m.dport, dport);
  return true;
}

// packet_exemptions: the rule's CIDR holds an endpoint and its protocol/port key is one the
// packet looks up. A rule "all" with a port is never looked up there, so it spares nothing here
// either (validation refuses it anyway).
bool exempted(const Exemption& e, const Flow& f) {
  if (!e.cidr.contains(f.local) && !e.cidr.contains(f.remote)) return false;
  if (e.proto == Proto::all) return e.port == 0;
  if (e.proto != f.proto) return false;
  return e.port == 0 || e.port == f.lport || e.port == f.rport;
}

}  // namespace

bool connection_matches(const FaultSpec& spec, const std::vector<Exemption>& daemon_exempt, const Flow& f) {
  const Match& m = spec.match;
  if (m.new_only) return false;
  if (m.proto != Proto::all && m.proto != f.proto) return false;
  if (!packet_matches(spec, f.local, f.lport, f.remote, f.rport) &&
      !packet_matches(spec, f.remote, f.rport, f.local, f.lport)) {
    return false;
  }
  for (const Exemption& e : exemptions_for(spec, daemon_exempt)) {
    if (exempted(e, f)) return false;
  }
  return true;
}

FaultSpec reset_as_fault(const ResetSpec& r) {
  FaultSpec f;
  f.kind = FaultKind::loss;
  f.loss_percent = 100;
  f.match = r.match;
  f.match.direction = Direction::both;
  f.exempt = r.exempt;
  f.default_exempt = r.default_exempt;
  f.targets = r.targets;
  return f;
}

}  // namespace fl::core
