// An Engine on the fake kernel (fake_kernel_util.h) with a clock the test moves by hand.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "daemon/engine.h"
#include "unit/fake_kernel_util.h"

namespace fl::test {

// A spec as a client sends it, validated as the dispatcher does.
core::FaultSpec engine_spec(const nlohmann::json& j);

struct EngineRig {
  // Namespaces a (eth0, eth1) and b (eth0), tcx, every shaping feature there.
  EngineRig();
  ~EngineRig();
  FakeKernel k;
  uint64_t now_ns = 1'000'000'000'000ull;     // what the engine's monotonic clock reads
  int64_t wall_ms = 1'700'000'000'000;       // what its wall clock reads (reports only)
  std::unique_ptr<daemon::Engine> engine;
};

}  // namespace fl::test
