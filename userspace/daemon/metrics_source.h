// Gathers one scrape's data from the engine (the rendering, in metrics.h, is pure).
#pragma once

#include <cstddef>

#include "daemon/engine.h"
#include "daemon/metrics.h"

namespace fl::daemon::metrics {

// On the loop thread: reads every active fault's counters from the kernel, like `faultctl stats`.
Snapshot snapshot(Engine& engine, const EventCounts& events, size_t clients);

}  // namespace fl::daemon::metrics
