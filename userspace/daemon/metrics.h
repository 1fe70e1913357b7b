// What `faultlined --metrics` serves: the Prometheus text exposition format (version 0.0.4),
// rendered from plain data so it can be tested without a kernel (docs/METRICS.md lists every
// metric).
//
// Written here rather than with prometheus-cpp (Debian's prometheus-cpp-dev 1.0.1): its data
// model is a registry of live counters that the code increments, while nearly everything we
// export is a snapshot read at scrape time (per-fault counters from the kernel, whose series
// come and go with the faults), so we would rebuild its families on every scrape only to call
// its TextSerializer; that serializer escapes \ " and newline but passes invalid UTF-8 through,
// which makes Prometheus reject the whole scrape, so we would still post-process the names. The
// format is small and documented, and a real Prometheus scrapes it in the integration tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace fl::daemon {

struct Event;

namespace metrics {

// A label value or HELP text as the format needs it: invalid UTF-8 replaced by U+FFFD (the
// format is UTF-8 and Prometheus refuses a scrape with anything else), then \ and newline
// escaped, and " too in label values.
std::string escape_label_value(std::string_view s);
std::string escape_help(std::string_view s);
// Shortest text that reads back as the same double; +Inf, -Inf, NaN as the format spells them.
std::string format_double(double v);

// Cumulative buckets, as Prometheus histograms are.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // per bucket, not cumulative
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // bounds_.size() + 1 (the last: above every bound)
  uint64_t count_ = 0;
  double sum_ = 0;
};

// 1 ms to 10 s: an apply is a map update in the fast case, a data path load (verifier) and
// qdisc trees on many targets in the slow one.
std::vector<double> apply_latency_buckets();

// What the metrics count from the event bus since the daemon started.
struct EventCounts {
  EventCounts() : apply_seconds(apply_latency_buckets()) {}
  void on(const Event& e);

  std::map<std::string, uint64_t> applied;                             // by kind
  std::map<std::pair<std::string, std::string>, uint64_t> ended;       // (kind, how it ended)
  std::map<std::pair<std::string, std::string>, uint64_t> refused;     // (op, error code)
  uint64_t lease_late = 0;
  Histogram apply_seconds;
};

// Everything one scrape shows: gathered where the engine lives (the kernel worker), rendered
// on the loop, where the event counts live.
struct Snapshot {
  nlohmann::json faults = nlohmann::json::array();  // Engine::list(): active faults, with per_target
  const EventCounts* events = nullptr;
  double lease_seconds = 0;            // configured
  double lease_remaining_seconds = 0;  // until the kernel turns every fault off
  // The data path's program-wide counters (bpf/abi.h fl_stat), by the metric's middle part
  // (faultline_datapath_<name>_packets_total) and help text.
  struct Stat {
    std::string name, help;
    uint64_t value = 0;
  };
  std::vector<Stat> datapath;
  std::vector<std::pair<std::string, std::string>> features;  // name -> yes|no|unknown
  std::string kernel_release;
  std::string attach_mode;
  size_t faults_active = 0;
  size_t clients = 0;  // on the control socket
};

std::string render(const Snapshot& s);

// For the HTTP reply.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace metrics
}  // namespace fl::daemon
