// Connection resets: SOCK_DESTROY of the TCP connections a selector or a fault cuts, in target
// namespaces. Both ends see the reset at once (see kernel/sockdiag.h for exactly what each sees).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "core/flow_match.h"
#include "core/model.h"
#include "core/result.h"
#include "kernel/netns.h"
#include "kernel/sockdiag.h"

namespace fl::daemon {

// The standalone reset op. spec must have passed core::validate_reset. Every target is opened
// before any connection is destroyed, so a target that does not exist is refused with nothing
// changed. Result: {"matched": N, "destroyed": N, "gone": N, "per_target": [{"target": "netns:a",
// "matched": N, "destroyed": N, "gone": N}, ...]}. An error in a later target keeps what earlier
// ones destroyed and says so.
Result<nlohmann::json> reset_connections(const core::ResetSpec& spec,
                                         const std::vector<core::Exemption>& daemon_exempt,
                                         const kernel::Netns& host);

// For a partition or isolate with reset: destroys, in the calling thread's namespace, the TCP
// connections the fault cuts (core::connection_matches). The engine calls it inside its
// NetnsGuard for each target. The RST each destroy sends leaves through that namespace's
// egress hook: if the fault already acts on egress there, it drops the RST and the peer hangs
// instead of seeing a reset. So call it while the fault acts on ingress only (new connections
// from outside are cut, resets still leave), then widen the fault (see docs/FAULTS.md, "Node
// failure: silent vs reset").
Result<kernel::DestroyResult> reset_cut_connections(const core::FaultSpec& spec,
                                                    const std::vector<core::Exemption>& daemon_exempt);

// DestroyResult as {"matched", "destroyed", "gone"}.
nlohmann::json destroy_result_json(const kernel::DestroyResult& r);

}  // namespace fl::daemon
