// Gathers one scrape's data from the engine (the rendering, in metrics.h, is pure).
#pragma once

#include <cstddef>

#include "daemon/engine.h"
#include "daemon/metrics.h"

namespace fl::daemon::metrics {

// Where the engine lives (the kernel worker): reads every active fault's counters from the kernel,
// like `faultctl stats`. events is only pointed to; render() reads it, on the loop.
Snapshot snapshot(Engine& engine, const EventCounts& events, size_t clients);

}  // namespace fl::daemon::metrics
