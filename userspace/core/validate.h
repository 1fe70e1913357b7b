// Validation of a whole FaultSpec, before anything touches the kernel.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/flow_match.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::core {

// Checks every rule that does not need the system, and fills defaults (targets = {host}, side
// names). Errors are invalid_argument and name the field: "sides: partition needs at least 2
// sides (got 1)". Rules:
//  - partition: 2..kMaxSidesPerFault sides, each with >= 1 CIDR; loss_percent/correlation unset.
//  - partition: no /0 in a side (every address of that family would be in it, and a node in
//    two sides is cut from neither: nothing of that family would be cut).
//  - isolate: exactly one side (the isolated nodes), no /0 in it; one_way not allowed.
//  - loss: no sides; 0 < loss_percent <= 100; 0 <= correlation < 100.
//  - one_way only with partition; seed and correlation only with loss.
//  - side names unique within the fault; fault name via check_name when non-empty.
//  - total CIDRs (sides + src + dst) <= kMaxCidrsPerFault.
//  - sport/dport not "any" needs proto tcp, udp or all (all with a port: TCP and UDP, since only
//    they have ports); new_only needs proto tcp or all (becomes tcp).
//  - exemptions <= kMaxExemptionsPerFault; port needs tcp/udp.
//  - targets <= kMaxTargetsPerFault, no duplicates; devs unique, each a valid interface name
//    (1..15 chars, no '/', no whitespace, not "." or "..").
//  - kMinDuration <= duration <= kMaxDuration.
//  - reset: partition and isolate only, not with new_only, proto tcp or all.
// Shaping (docs/FAULTS.md, "Shaping parameters", says why for each):
//  - delay, rate, corrupt, duplicate, reorder, shape: no sides, no pairs; `shape` is the
//    profile and sets only what the kind is about: delay (delay > 0; jitter, delay_correlation,
//    distribution), rate (rate_bps > 0; burst_bytes), corrupt / duplicate (that percent > 0),
//    reorder (reorder_percent > 0 and delay > 0; reorder_gap), shape (anything, not empty).
//  - matrix: 2..kMaxMatrixSides sides, no match.src/dst (the sides are the addresses), an
//    empty `shape`, 1..n(n-1) pairs of valid, distinct side indexes, no ordered pair twice,
//    every pair's profile non-empty.
//  - every profile passes check_profile.
//  - loss_percent, correlation_percent and seed are for loss only (a shaping fault's loss is
//    shape.loss_percent); shape, pairs and replace_root are for shaping kinds only.
Status validate(FaultSpec& spec);

// A standalone reset, before anything touches the kernel; fills proto (tcp) and the default
// target (host). Errors name the field, as validate()'s do. Rules:
//  - match.proto tcp or all; match.direction both; no new_only (a reset has neither).
//  - at least one of match.src, match.dst, match.sport, match.dport, or else all: true (and all
//    with none of them): a forgotten selector must not reset a whole node.
//  - CIDRs canonical, at most kMaxCidrsPerFault; ports as for a fault; exemptions and targets
//    as for a fault.
Status validate_reset(ResetSpec& spec);

// The rules every shaping profile follows, whatever the kind; `field` prefixes the messages
// ("shape", "pairs[2].profile"):
//  - 0 <= delay <= kMaxDelay; 0 <= jitter <= delay, and jitter needs delay;
//  - delay_correlation in [0, 100), needs jitter; a distribution other than uniform needs jitter;
//  - rate_bps 0 or in [kMinRateBps, kMaxRateBps]; burst_bytes 0 or in [1500, 64 MiB], needs rate;
//  - loss, corrupt, duplicate and reorder percents in [0, 100]; loss_correlation in [0, 100),
//    needs loss; reorder needs delay; reorder_gap needs reorder.
// It does not require an effect: an empty profile passes (the callers decide).
Status check_profile(const ShapeProfile& p, std::string_view field);

inline constexpr uint32_t kMinBurstBytes = 1500;            // one full-size Ethernet frame
inline constexpr uint32_t kMaxBurstBytes = 64 * 1024 * 1024;

}  // namespace fl::core
