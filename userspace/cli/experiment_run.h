// Running an experiment: probes sampling concurrently, the phases (steady_state, inject,
// observe, heal, recovery), abort rules, and the JSON report of docs/EXPERIMENTS.md. Probes
// themselves are in cli/probe.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/experiment.h"
#include "cli/probe.h"

namespace fl::cli {

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
  std::string html_path;    // DIR/report.html; empty if it could not be written
  std::string report_error;
};

// Runs the whole experiment, writes DIR/report.json and returns the verdict. Progress lines go
// to `log`.
RunOutcome run_experiment(const Experiment& e, const RunOptions& o, std::ostream& log);

}  // namespace fl::cli
