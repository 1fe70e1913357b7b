// Umbrella for shaping in the kernel, kept so callers can include one header:
//   kernel/qdisc_tree.h     our HTB tree, the saved root qdisc, its replaceability and restore
//   kernel/ifb.h            ifb devices and the legacy mirred redirect into them
//   kernel/shaping_probe.h  which qdiscs and ifb the kernel has
//   core/tc_options.h       the option bytes (pure), core/netem_dist.h the delay tables (pure)
// All of it talks to the kernel through kernel/rtnl.h.
#pragma once

#include "core/netem_dist.h"
#include "core/tc_options.h"
#include "kernel/ifb.h"
#include "kernel/qdisc_tree.h"
#include "kernel/shaping_probe.h"

namespace fl::kernel {

// netem's delay distribution table for d (not uniform); lives in core, named here as before.
using core::distribution_table;

}  // namespace fl::kernel
