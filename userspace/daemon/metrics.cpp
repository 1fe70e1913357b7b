#include "daemon/metrics.h"

#include <charconv>
#include <cmath>
#include <initializer_list>

#include "daemon/events.h"

namespace fl::daemon::metrics {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
size_t utf8_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if (i + n > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; k++)
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  return n;
}

std::string escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD, one per invalid byte
      i++;
      continue;
    }
    if (n == 1) {
      char c = s[i];
      if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c == '"' && quote) out += "\\\"";
      else out += c;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;

class Writer {
 public:
  void family(const std::string& name, const char* type, std::string_view help) {
    out_ += "# HELP " + name + " " + escape_help(help) + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, Labels labels, const std::string& value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(const std::string& name, Labels labels, uint64_t v) { sample(name, labels, std::to_string(v)); }
  void sample_d(const std::string& name, Labels labels, double v) { sample(name, labels, format_double(v)); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

const std::string kP = "faultline_";

}  // namespace

std::string escape_label_value(std::string_view s) { return escape(s, true); }
std::string escape_help(std::string_view s) { return escape(s, false); }

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) i++;  // le: a value on a bound belongs to it
  counts_[i]++;
  count_++;
  sum_ += v;
}

std::vector<double> apply_latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void EventCounts::on(const Event& e) {
  switch (e.type) {
    case EventType::applied:
      applied[e.kind]++;
      apply_seconds.observe(static_cast<double>(e.duration_ns) / 1e9);
      break;
    // Spelled here, not by event_type_name(): this file must link without the engine's library.
    case EventType::healed:
      ended[{e.kind, "healed"}]++;
      break;
    case EventType::expired:
      ended[{e.kind, "expired"}]++;
      break;
    case EventType::gone:
      ended[{e.kind, "gone"}]++;
      break;
    case EventType::refused:
      refused[{e.kind, e.code}]++;
      break;
    case EventType::lease_late:
      lease_late++;
      break;
  }
}

std::string render(const Snapshot& s) {
  Writer w;

  // Per active fault and target. The id keeps two faults of one name apart.
  struct PerFault {
    const char* key;
    const char* help;
  };
  static const PerFault per_fault[] = {
      {"matched", "Packets an active fault matched, per target (before its probability and exemptions)."},
      {"dropped", "Packets an active fault dropped, per target."},
      {"shaped", "Packets an active fault handed to its shaping class or ifb, per target."},
      {"exempted", "Packets an active fault matched but let through because an exemption covers them, per target."},
  };
  for (const auto& m : per_fault) {
    const std::string name = kP + "fault_" + m.key + "_packets_total";
    w.family(name, "counter", m.help);
    for (const auto& f : s.faults) {
      const std::string id = std::to_string(f.value("id", uint64_t{0}));
      const std::string fname = f.value("name", std::string());
      const std::string kind = f.value("kind", std::string());
      for (const auto& pt : f.value("per_target", nlohmann::json::array())) {
        const std::string target = pt.value("target", std::string());
        uint64_t v = pt.contains("counters") ? pt["counters"].value(m.key, uint64_t{0}) : 0;
        w.sample(name, {{"id", id}, {"name", fname}, {"kind", kind}, {"target", target}}, v);
      }
    }
  }

  w.family(kP + "faults_active", "gauge", "Faults active now.");
  w.sample(kP + "faults_active", {}, s.faults_active);

  if (s.events) {
    const EventCounts& e = *s.events;
    w.family(kP + "faults_applied_total", "counter", "Faults switched on since the daemon started, by kind.");
    for (const auto& [kind, n] : e.applied) w.sample(kP + "faults_applied_total", {{"kind", kind}}, n);
    w.family(kP + "faults_ended_total", "counter",
             "Faults ended since the daemon started, by kind and how: healed (on request or at shutdown), "
             "expired (their time was up) or gone (every target went away).");
    for (const auto& [k, n] : e.ended)
      w.sample(kP + "faults_ended_total", {{"kind", k.first}, {"how", k.second}}, n);
    w.family(kP + "requests_refused_total", "counter",
             "Mutating requests answered with an error since the daemon started, by op and error code.");
    for (const auto& [k, n] : e.refused)
      w.sample(kP + "requests_refused_total", {{"op", k.first}, {"code", k.second}}, n);

    const std::string h = kP + "apply_duration_seconds";
    w.family(h, "histogram", "Time an apply took, from the request to every target switched on.");
    const Histogram& hist = e.apply_seconds;
    uint64_t cum = 0;
    for (size_t i = 0; i < hist.bounds().size(); i++) {
      cum += hist.counts()[i];
      w.sample(h + "_bucket", {{"le", format_double(hist.bounds()[i])}}, cum);
    }
    w.sample(h + "_bucket", {{"le", "+Inf"}}, hist.count());
    w.sample_d(h + "_sum", {}, hist.sum());
    w.sample(h + "_count", {}, hist.count());

    w.family(kP + "lease_late_renewals_total", "counter",
             "Lease renewals that came later than planned (the daemon did not run); past the whole lease every "
             "fault was off meanwhile.");
    w.sample(kP + "lease_late_renewals_total", {}, e.lease_late);
  }

  w.family(kP + "lease_seconds", "gauge",
           "The configured kernel lease: every fault turns off if the daemon stops renewing it for this long.");
  w.sample_d(kP + "lease_seconds", {}, s.lease_seconds);
  w.family(kP + "lease_remaining_seconds", "gauge",
           "Time until the kernel lease runs out unless renewed (renewed every third of the lease).");
  w.sample_d(kP + "lease_remaining_seconds", {}, s.lease_remaining_seconds);

  for (const auto& st : s.datapath) {
    const std::string name = kP + "datapath_" + st.name + "_packets_total";
    w.family(name, "counter", st.help);
    w.sample(name, {}, st.value);
  }

  w.family(kP + "kernel_feature_info", "gauge",
           "Kernel features probed at start: one series per feature, state yes, no or unknown (the probe failed).");
  for (const auto& [feature, state] : s.features)
    w.sample(kP + "kernel_feature_info", {{"feature", feature}, {"state", state}}, uint64_t{1});
  w.family(kP + "daemon_info", "gauge", "The data path's attach mode (tcx or tc) and the kernel release.");
  w.sample(kP + "daemon_info", {{"attach_mode", s.attach_mode}, {"kernel_release", s.kernel_release}},
           uint64_t{1});
  w.family(kP + "clients_connected", "gauge", "Clients connected to the control socket.");
  w.sample(kP + "clients_connected", {}, s.clients);
  return w.take();
}

}  // namespace fl::daemon::metrics
