// Validation of a whole FaultSpec, before anything touches the kernel.
#pragma once

#include "core/model.h"
#include "core/result.h"

namespace fl::core {

// Checks every rule that does not need the system, and fills defaults (targets = {host}, side
// names). Errors are invalid_argument and name the field: "sides: partition needs at least 2
// sides (got 1)". Rules:
//  - partition: 2..kMaxSidesPerFault sides, each with >= 1 CIDR; loss_percent/correlation unset.
//  - isolate: exactly one side (the isolated nodes); one_way not allowed.
//  - loss: no sides; 0 < loss_percent <= 100; 0 <= correlation < 100.
//  - one_way only with partition; seed and correlation only with loss.
//  - side names unique within the fault; fault name via check_name when non-empty.
//  - total CIDRs (sides + src + dst) <= kMaxCidrsPerFault.
//  - sport/dport not "any" needs proto tcp or udp; new_only needs proto tcp or all (becomes tcp).
//  - exemptions <= kMaxExemptionsPerFault; port needs tcp/udp.
//  - targets <= kMaxTargetsPerFault, no duplicates; devs unique, each a valid interface name
//    (1..15 chars, no '/', no whitespace, not "." or "..").
//  - kMinDuration <= duration <= kMaxDuration.
Status validate(FaultSpec& spec);

}  // namespace fl::core
