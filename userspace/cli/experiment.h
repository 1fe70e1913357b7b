// An experiment file (`faultctl run FILE`): a hypothesis, the probes that measure the steady
// state, the faults of the method in faultctl's own vocabulary, abort rules, a blast radius and
// a recovery bound. Pure: the caller reads the file; every error names its line and field, and
// nothing is contacted before the whole file is valid. The format is in docs/EXPERIMENTS.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::cli {

enum class ProbeKind { tcp, http, exec, prometheus };
enum class Statistic { success_rate, p50, p95, p99, value };

const char* probe_kind_name(ProbeKind k);
const char* statistic_name(Statistic s);

struct Range {
  std::optional<double> min, max;  // inclusive; absent: unbounded on that side
  bool contains(double v) const { return (!min || v >= *min) && (!max || v <= *max); }
};

// An http:// URL with a numeric IPv4 host (or [IPv6]); the probes send no DNS query.
struct HttpUrl {
  std::string host;  // without brackets
  bool v6 = false;
  uint16_t port = 80;
  std::string path;  // "/..." including any query
};
Result<HttpUrl> parse_http_url(std::string_view url);

struct Probe {
  std::string name;
  ProbeKind kind = ProbeKind::tcp;
  std::chrono::milliseconds timeout{1000};
  // tcp: host:port ([v6]:port); value = connect latency in ms.
  std::string host;
  uint16_t port = 0;
  bool v6 = false;
  // http: GET url; value = latency in ms; ok = status 2xx, or `status` when stated.
  std::string url;
  HttpUrl http;
  std::optional<int> status;
  // exec: argv (no shell); value = the number printed on stdout, else the exit status.
  std::vector<std::string> argv;
  // prometheus: server base url and an instant query; value = the first sample's value.
  std::string server, query;
  HttpUrl server_url;

  std::chrono::milliseconds interval{1000};
  Statistic statistic = Statistic::success_rate;
  size_t window = 5;
  Range range;
  // Accepted while the method runs (from the first fault's start to the end of the method)
  // instead of `range`; the steady state and the recovery keep `range`. `during_after`: how long
  // the statistic may take to move from one range to the other after the first fault's start (a
  // point in that time is accepted in either range).
  std::optional<Range> during;
  std::chrono::milliseconds during_after{0};

  // What it measures, for people: "10.200.0.2:7000", "GET http://...", the query.
  std::string target() const;
  // "ratio" for success_rate, "ms" for latency statistics of tcp and http, "" otherwise.
  std::string unit() const;
};

struct ExperimentFault {
  std::string name;
  std::string cli;       // the words as written in the file
  core::FaultSpec spec;  // parsed by faultctl's own parser, validated; name and duration set
  std::chrono::milliseconds start{0};
  std::chrono::milliseconds duration{0};
};

// An abort rule: the probe's statistic out of range for `samples` consecutive samples, or
// continuously for `for_time`.
struct AbortRule {
  std::string probe;
  size_t samples = 0;                     // 0: not this kind
  std::chrono::milliseconds for_time{0};  // 0: not this kind
  std::string describe() const;           // "3 samples out of range", "out of range for 2s"
};

struct Experiment {
  std::string name, hypothesis, file;
  std::chrono::milliseconds steady_state{0};
  std::vector<Probe> probes;
  std::vector<ExperimentFault> faults;
  // How long the method (inject + observe) lasts from its start; at least the end of the last
  // fault.
  std::chrono::milliseconds method_duration{0};
  std::vector<AbortRule> aborts;
  size_t max_targets = 1;
  std::chrono::milliseconds recovery_within{0};
};

// Errors are invalid_argument and start with "SOURCE:LINE: PATH: " (as matrix files do).
// read_file serves lab:NODE addresses and @FILE in the faults' cli, as on the command line.
Result<Experiment> parse_experiment(std::string_view text, std::string_view source, const ReadFile& read_file = {});

// The plan `faultctl run --dry-run` prints: phases with their times, each fault's daemon
// request, each probe.
std::string format_plan(const Experiment& e);

}  // namespace fl::cli
