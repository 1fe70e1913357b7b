// Running an experiment: probes sampling concurrently, the phases (steady_state, inject,
// observe, heal, recovery), abort rules, and the JSON report of docs/EXPERIMENTS.md. The
// statistics are pure functions, unit-tested; the rest talks to faultlined and the network.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
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

struct RunOptions {
  std::string socket;
  std::string report_dir;
  // Set (to the signal number) by the caller's SIGINT/SIGTERM handler; the runner heals and
  // ends with verdict aborted.
  const std::atomic<int>* signal = nullptr;
};

struct RunOutcome {
  std::string verdict;  // held, refuted, aborted, not_started
  std::string reason;
  nlohmann::json report;
  std::string report_path;  // empty if it could not be written
  std::string report_error;
};

// Runs the whole experiment, writes DIR/report.json and returns the verdict. Progress lines go
// to `log`.
RunOutcome run_experiment(const Experiment& e, const RunOptions& o, std::ostream& log);

}  // namespace fl::cli
