#include "core/plan.h"

#include <algorithm>
#include <cmath>

namespace fl::core {

namespace {

std::vector<Cidr> canonical(std::vector<Cidr> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

uint8_t proto_class(Proto p) {
  switch (p) {
    case Proto::tcp: return FL_PROTO_TCP;
    case Proto::udp: return FL_PROTO_UDP;
    case Proto::icmp: return FL_PROTO_ICMP;
    case Proto::all: return FL_PROTO_ALL;
  }
  return FL_PROTO_ALL;
}

SetNeeds set_needs(const FaultSpec& spec) {
  SetNeeds n;
  for (const auto& s : spec.sides) n.sides.push_back(canonical(s.cidrs));
  n.src = canonical(spec.match.src);
  n.dst = canonical(spec.match.dst);
  return n;
}

Status assign_set_bits(const SetNeeds& needs,
                       const std::function<Result<uint64_t>(const std::vector<Cidr>&)>& bit_for, SlotBits* bits) {
  for (const auto& side : needs.sides) {
    auto b = bit_for(side);
    if (!b.ok()) return b.take_error();
    bits->sides.push_back(*b);
  }
  for (auto [list, out] : {std::pair{&needs.src, &bits->src}, std::pair{&needs.dst, &bits->dst}}) {
    if (list->empty()) continue;
    auto b = bit_for(*list);
    if (!b.ok()) return b.take_error();
    *out = *b;
  }
  return {};
}

uint64_t percent_to_prob(double percent) {
  if (!(percent > 0)) return 0;
  if (percent >= 100) return FL_PROB_ONE;
  return static_cast<uint64_t>(std::llround(percent / 100.0 * static_cast<double>(FL_PROB_ONE)));
}

uint8_t slot_kind(FaultKind k) {
  if (is_shaping(k)) return FL_KIND_SHAPE;
  if (k == FaultKind::partition) return FL_KIND_PARTITION;
  if (k == FaultKind::loss) return FL_KIND_LOSS;
  if (k == FaultKind::isolate) return FL_KIND_ISOLATE;
  return FL_KIND_NONE;
}

fl_slot plan_slot(const FaultSpec& spec, const SlotBits& bits) {
  fl_slot s{};
  s.kind = slot_kind(spec.kind);
  s.proto = proto_class(spec.match.proto);
  s.dir = static_cast<uint8_t>(spec.match.direction);
  s.src_req = bits.src;
  s.dst_req = bits.dst;
  s.exempt_mask = bits.exempt;

  uint64_t all_sides = 0;
  for (uint64_t b : bits.sides) all_sides |= b;

  switch (spec.kind) {
    case FaultKind::partition:
      s.prob = FL_PROB_ONE;
      s.part = all_sides;
      if (spec.one_way && !bits.sides.empty()) {
        s.src_any = bits.sides[0];
        // Sides equal to the first share its bit; they are not "the others".
        s.dst_any = all_sides & ~bits.sides[0];
      } else {
        s.src_any = all_sides;
        s.dst_any = all_sides;
      }
      break;
    case FaultKind::isolate:
      s.prob = FL_PROB_ONE;
      s.part = all_sides;
      s.flags |= FL_F_ISOLATE;
      break;
    case FaultKind::loss:
      s.prob = percent_to_prob(spec.loss_percent);
      s.corr = percent_to_prob(spec.correlation_percent);
      s.seed = spec.seed.value_or(0);
      break;
    case FaultKind::delay:
    case FaultKind::rate:
    case FaultKind::corrupt:
    case FaultKind::duplicate:
    case FaultKind::reorder:
    case FaultKind::shape:
    case FaultKind::matrix:
      // Addresses come from --src/--dst (matrix pairs set theirs in plan_slots); what the slot
      // does comes from its profile.
      break;
  }

  if (!spec.match.sport.any() || !spec.match.dport.any()) {
    s.flags |= FL_F_PORTS;
    s.sport_lo = spec.match.sport.lo;
    s.sport_hi = spec.match.sport.hi;
    s.dport_lo = spec.match.dport.lo;
    s.dport_hi = spec.match.dport.hi;
  }
  if (spec.match.new_only) s.flags |= FL_F_NEW_ONLY;
  if (bits.ifaces) {
    s.flags |= FL_F_IFACES;
    s.if_mask = bits.ifaces;
  }
  return s;
}

namespace {

void apply_profile(fl_slot& s, const ShapeProfile& p) {
  s.kind = FL_KIND_SHAPE;
  s.prob = percent_to_prob(p.loss_percent);
  s.corr = percent_to_prob(p.loss_correlation);
  if (p.needs_class()) s.flags |= FL_F_SHAPE;
}

}  // namespace

std::vector<PlannedSlot> plan_slots(const FaultSpec& spec, const SlotBits& bits) {
  fl_slot base = plan_slot(spec, bits);
  std::vector<PlannedSlot> out;
  if (!is_shaping(spec.kind)) {
    out.push_back({base, nullptr});
    return out;
  }
  if (spec.kind != FaultKind::matrix) {
    apply_profile(base, spec.shape);
    out.push_back({base, &spec.shape});
    return out;
  }
  for (const auto& pair : spec.pairs) {
    fl_slot s = base;
    // Source in the pair's first side, destination in its second. A side listed twice shares
    // its bit with the first one (equal CIDR sets share a bit), which is what we want.
    s.src_any = 0;
    s.dst_any = 0;
    s.src_req = pair.from < bits.sides.size() ? bits.sides[pair.from] : 0;
    s.dst_req = pair.to < bits.sides.size() ? bits.sides[pair.to] : 0;
    apply_profile(s, pair.profile);
    out.push_back({s, &pair.profile});
  }
  return out;
}

std::vector<Exemption> exemptions_for(const FaultSpec& spec, const std::vector<Exemption>& daemon_wide) {
  std::vector<Exemption> out = daemon_wide;
  if (spec.default_exempt) {
    auto d = default_exemptions();
    out.insert(out.end(), d.begin(), d.end());
  }
  out.insert(out.end(), spec.exempt.begin(), spec.exempt.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool slot_unscoped(const fl_slot& s) {
  return !(s.src_req | s.src_any | s.dst_req | s.dst_any) && !(s.flags & FL_F_ISOLATE);
}

uint32_t exempt_port_key(const Exemption& e) { return FL_EXEMPT_PORT_KEY(proto_class(e.proto), e.port); }

}  // namespace fl::core
