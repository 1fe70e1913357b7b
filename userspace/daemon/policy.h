// What the operator of a node allows clients to ask for, beyond what the protocol allows. Group
// membership is control over the node's network (docs/SAFETY.md); these options narrow it.
// Checked after validation and before the engine or the kernel sees the request.
#pragma once

#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/flow_match.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::daemon {

struct Policy {
  // faultlined --require-default-exempt: no fault or reset may set default_exempt false, so SSH,
  // DNS and the metadata address always pass.
  bool require_default_exempt = false;
  // faultlined --max-duration: no fault may last longer (the protocol's own cap is 7 days).
  std::optional<std::chrono::milliseconds> max_duration;

  Status check(const core::FaultSpec& spec) const;
  Status check(const core::ResetSpec& spec) const;
  // For status: {"require_default_exempt": bool, "max_duration_ms": N or null}.
  nlohmann::json to_json() const;
};

}  // namespace fl::daemon
