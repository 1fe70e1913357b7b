// netem's delay distribution tables (normal, pareto, paretonormal), computed here rather than
// read from iproute2's files. Pure; sent as TCA_NETEM_DELAY_DIST by core/tc_options.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/model.h"

namespace fl::core {

inline constexpr size_t kDistSize = 4096;  // entries per table, as iproute2's

// The table for d (empty for uniform, which needs none): kDistSize int16 entries, mean 0 and
// standard deviation NETEM_DIST_SCALE (8192), sorted. Deterministic.
std::vector<int16_t> distribution_table(Distribution d);

}  // namespace fl::core
