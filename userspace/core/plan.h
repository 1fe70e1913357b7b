// Planning: how a validated FaultSpec becomes one data-path slot plus the node sets and
// exemption rules it needs. Pure; bit allocation and map writes happen in the daemon.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "abi.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::core {

// The node sets a fault needs, each canonical (sorted, no duplicates) so equal sets of
// different faults can share one bit.
struct SetNeeds {
  std::vector<std::vector<Cidr>> sides;  // in side order
  std::vector<Cidr> src, dst;            // empty: no selector
};
SetNeeds set_needs(const FaultSpec& spec);

struct SlotBits {
  std::vector<uint64_t> sides;  // one bit per side, in side order
  uint64_t src = 0, dst = 0;    // 0: no selector
  uint64_t exempt = 0;          // exemption rules that protect this fault
  uint64_t ifaces = 0;          // 0: every interface the program is attached to
};

// Gives each node set of `needs` its bit through `bit_for` (which allocates a new bit or shares
// an existing one): sides in order, then src and dst. Stops at the first error.
Status assign_set_bits(const SetNeeds& needs,
                       const std::function<Result<uint64_t>(const std::vector<Cidr>&)>& bit_for, SlotBits* bits);

// What fl_slot.kind says for a fault of this kind. The program decides by the flags and masks
// alone and never reads kind; it is there for whoever reads the map (bpftool map dump, the
// tests), so it carries abi.h's values, not FaultKind's.
uint8_t slot_kind(FaultKind k);

// The slot for spec, inactive (expires_ns 0) and with gen 0: the daemon sets both.
fl_slot plan_slot(const FaultSpec& spec, const SlotBits& bits);

// The slots of a fault: one for every kind but matrix, one per ordered pair for a matrix, each
// with the profile its shaping class needs (nullptr for partition, loss, isolate). For shaping
// slots the daemon still fills prio (the class, known once the slot index is) and shape_seq.
struct PlannedSlot {
  fl_slot slot;
  const ShapeProfile* profile = nullptr;  // points into the spec
};
std::vector<PlannedSlot> plan_slots(const FaultSpec& spec, const SlotBits& bits);

// percent in [0, 100] -> fixed point with FL_PROB_ONE = 100 %.
uint64_t percent_to_prob(double percent);

// Exemptions protecting a fault: daemon-wide ones, the defaults unless the fault opted out,
// then its own; duplicates removed.
std::vector<Exemption> exemptions_for(const FaultSpec& spec, const std::vector<Exemption>& daemon_wide);

// Key in fl_exempt_ports for a rule (see FL_EXEMPT_PORT_KEY in abi.h).
uint32_t exempt_port_key(const Exemption& e);

uint8_t proto_class(Proto p);

// True when the slot has no address condition, so it can match a packet whose addresses are in
// no node set (FL_CTL_UNSCOPED must be on while such a slot is active). An isolate needs one
// endpoint in its set, so it never is.
bool slot_unscoped(const fl_slot& s);

}  // namespace fl::core
