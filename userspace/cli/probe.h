// One probe sample (tcp connect, http get, exec, a Prometheus query) and the statistic over the
// last samples. The statistic is a pure function, unit-tested; sampling talks to the network.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/experiment.h"

namespace fl::cli {

struct ProbeSample {
  int64_t t_ms = 0;  // when the sample started, from the experiment's t=0
  bool ok = false;
  double value = 0;  // latency in ms (tcp, http), the number (exec, prometheus)
  std::string error;
};

// The probe's statistic over its last `window` samples (all of `samples` if fewer). Failed
// samples count as the timeout for latency percentiles (a connect that never completes is at
// least that slow) and are left out of `value` (the mean of the ok values) and of exec and
// prometheus percentiles; nullopt when nothing is left to compute it from.
std::optional<double> probe_statistic(const Probe& p, const std::vector<ProbeSample>& samples);

// One sample, taken now, blocking at most about p.timeout. t_ms is left to the caller.
ProbeSample take_sample(const Probe& p);

}  // namespace fl::cli
