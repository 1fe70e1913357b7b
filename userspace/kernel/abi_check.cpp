// Compile-time checks that the C++ view of bpf/abi.h is the BPF program's view. The BPF target
// lays structs out like x86-64, but a field added without thought (or a bool) would silently
// shift everything after it; these make that a build error instead.
#include <cstddef>

#include "abi.h"

#define FL_OFF(type, field, off) static_assert(offsetof(type, field) == (off), #type "." #field)

static_assert(sizeof(fl_slot) == 128, "fl_slot is two cache lines");
FL_OFF(fl_slot, expires_ns, 0);
FL_OFF(fl_slot, src_req, 8);
FL_OFF(fl_slot, part, 40);
FL_OFF(fl_slot, kind, 48);
FL_OFF(fl_slot, flags, 51);
FL_OFF(fl_slot, gen, 52);
FL_OFF(fl_slot, sport_lo, 56);
FL_OFF(fl_slot, dport_hi, 62);
FL_OFF(fl_slot, exempt_mask, 64);  // first field of the second cache line
FL_OFF(fl_slot, if_mask, 72);
FL_OFF(fl_slot, prob, 80);
FL_OFF(fl_slot, corr, 88);
FL_OFF(fl_slot, seed, 96);
FL_OFF(fl_slot, prio, 104);
FL_OFF(fl_slot, shape_seq, 108);
FL_OFF(fl_counters, shaped, 24);

static_assert(sizeof(fl_ctl) == 16);
FL_OFF(fl_ctl, lease_expires_ns, 0);
FL_OFF(fl_ctl, nslots, 8);
FL_OFF(fl_ctl, flags, 12);

static_assert(sizeof(fl_counters) == 32);
static_assert(sizeof(fl_rng) == 16);
static_assert(sizeof(fl_lpm4_key) == 8);
static_assert(sizeof(fl_lpm6_key) == 20);
FL_OFF(fl_lpm6_key, addr, 4);

static_assert(FL_MAX_SLOTS >= 2 * FL_MAX_ACTIVE_FAULTS, "room for quarantined slots");
static_assert(FL_SET_BITS == 64 && FL_EXEMPT_BITS == 64, "masks are __u64");
