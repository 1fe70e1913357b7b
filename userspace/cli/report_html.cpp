// Over 600 lines on purpose: one self-contained page (markup, inline SVG plots, styles) written
// from report.json; the plot geometry and the markup that places it belong together.
#include "cli/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace fl::cli {

using json = nlohmann::json;

namespace {

// ---- reading the report: every access names its path, so an error says which field ----

Error field_error(const std::string& path, const char* what) {
  return make_error(Errc::invalid_request, "report field " + path + ": " + what);
}

std::string join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

Result<const json*> member(const json& obj, const std::string& path, const char* key) {
  const std::string p = join(path, key);
  if (!obj.is_object()) return field_error(path.empty() ? "(top level)" : path, "expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) return field_error(p, "missing");
  return &*it;
}

Result<std::string> get_string(const json& obj, const std::string& path, const char* key) {
  auto m = member(obj, path, key);
  if (!m) return m.take_error();
  if (!(*m)->is_string()) return field_error(join(path, key), "expected a string");
  return (*m)->get<std::string>();
}

// A string that may be absent or null: "" then.
Result<std::string> get_opt_string(const json& obj, const std::string& path, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return std::string();
  return get_string(obj, path, key);
}

Result<double> get_number(const json& obj, const std::string& path, const char* key) {
  auto m = member(obj, path, key);
  if (!m) return m.take_error();
  if (!(*m)->is_number()) return field_error(join(path, key), "expected a number");
  return (*m)->get<double>();
}

// A number or null (an unbounded range side, a fault that never ended).
Result<std::optional<double>> get_opt_number(const json& obj, const std::string& path, const char* key) {
  auto m = member(obj, path, key);
  if (!m) return m.take_error();
  if ((*m)->is_null()) return std::optional<double>();
  if (!(*m)->is_number()) return field_error(join(path, key), "expected a number or null");
  return std::optional<double>((*m)->get<double>());
}

Result<bool> get_bool(const json& obj, const std::string& path, const char* key) {
  auto m = member(obj, path, key);
  if (!m) return m.take_error();
  if (!(*m)->is_boolean()) return field_error(join(path, key), "expected true or false");
  return (*m)->get<bool>();
}

Result<const json*> get_array(const json& obj, const std::string& path, const char* key) {
  auto m = member(obj, path, key);
  if (!m) return m.take_error();
  if (!(*m)->is_array()) return field_error(join(path, key), "expected an array");
  return *m;
}

std::string idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// ---- the model the page is drawn from ----

struct Phase {
  std::string name, note;
  double start_ms = 0;
  std::optional<double> end_ms;
  bool ok = false;
};

struct Point {
  double t_ms = 0;
  std::optional<double> value;  // null: the statistic had no value (no sample in the window)
  bool in_range = true;
};

struct Probe {
  std::string name, kind, target, statistic, unit;
  std::optional<double> min, max;
  // The range accepted while the method ran, and when it applied (from_ms: the first fault's
  // start; to_ms: the end of the method; from_ms + after_ms: the end of the settling time).
  struct During {
    std::optional<double> min, max, from_ms, to_ms;
    double after_ms = 0;
  };
  std::optional<During> during;
  double interval_ms = 0;
  int64_t window = 0;
  size_t samples = 0, failed_samples = 0;
  std::vector<Point> series;
};

struct Fault {
  std::string name, kind, cli, ended_by;
  std::vector<std::string> targets;
  std::optional<double> start_ms, end_ms;
  const json* counters = nullptr;
};

struct Abort {
  double t_ms = 0;
  std::string probe, rule;
};

struct Report {
  std::string name, hypothesis, file, verdict, reason;
  double started_unix_ms = 0;
  std::optional<double> ended_unix_ms;
  std::vector<Phase> phases;
  std::vector<Probe> probes;
  std::vector<Fault> faults;
  std::optional<Abort> abort;
};

#define FL_GET(var, expr)             \
  auto var##_r_ = (expr);             \
  if (!var##_r_) return var##_r_.take_error(); \
  auto var = std::move(*var##_r_)

Result<Probe> read_probe(const json& j, const std::string& p) {
  Probe pr;
  FL_GET(name, get_string(j, p, "name"));
  FL_GET(kind, get_string(j, p, "kind"));
  FL_GET(target, get_opt_string(j, p, "target"));
  FL_GET(statistic, get_string(j, p, "statistic"));
  FL_GET(unit, get_opt_string(j, p, "unit"));
  FL_GET(range, member(j, p, "range"));
  FL_GET(min, get_opt_number(*range, p + ".range", "min"));
  FL_GET(max, get_opt_number(*range, p + ".range", "max"));
  pr.name = name, pr.kind = kind, pr.target = target, pr.statistic = statistic, pr.unit = unit;
  pr.min = min, pr.max = max;
  // Optional: reports written before `during` existed have no such member.
  if (j.contains("during") && !j["during"].is_null()) {
    const std::string dp = p + ".during";
    if (!j["during"].is_object()) return field_error(dp, "expected an object or null");
    const json& d = j["during"];
    FL_GET(dmin, get_opt_number(d, dp, "min"));
    FL_GET(dmax, get_opt_number(d, dp, "max"));
    Probe::During du{dmin, dmax, std::nullopt, std::nullopt, 0};
    if (d.contains("from_ms")) {
      FL_GET(from, get_opt_number(d, dp, "from_ms"));
      du.from_ms = from;
    }
    if (d.contains("to_ms")) {
      FL_GET(to, get_opt_number(d, dp, "to_ms"));
      du.to_ms = to;
    }
    if (d.contains("after_ms")) {
      FL_GET(after, get_number(d, dp, "after_ms"));
      du.after_ms = after;
    }
    pr.during = du;
  }
  if (j.contains("interval_ms") && j["interval_ms"].is_number()) pr.interval_ms = j["interval_ms"].get<double>();
  if (j.contains("window") && j["window"].is_number_integer()) pr.window = j["window"].get<int64_t>();
  FL_GET(samples, get_array(j, p, "samples"));
  pr.samples = samples->size();
  for (const auto& s : *samples)
    if (s.is_object() && s.contains("ok") && s["ok"].is_boolean() && !s["ok"].get<bool>()) ++pr.failed_samples;
  FL_GET(series, get_array(j, p, "series"));
  for (size_t i = 0; i < series->size(); ++i) {
    const std::string sp = idx(p + ".series", i);
    const json& e = (*series)[i];
    FL_GET(t, get_number(e, sp, "t_ms"));
    FL_GET(v, get_opt_number(e, sp, "value"));
    FL_GET(in, get_bool(e, sp, "in_range"));
    // JSON cannot carry inf or NaN, but a parser may turn 1e999 into inf: no value then.
    if (v && !std::isfinite(*v)) v.reset();
    if (!std::isfinite(t)) return field_error(sp + ".t_ms", "not a finite number");
    pr.series.push_back(Point{t, v, in});
  }
  return pr;
}

Result<Fault> read_fault(const json& j, const std::string& p) {
  Fault f;
  FL_GET(name, get_string(j, p, "name"));
  FL_GET(kind, get_string(j, p, "kind"));
  FL_GET(cli, get_opt_string(j, p, "cli"));
  FL_GET(start, get_opt_number(j, p, "start_ms"));
  FL_GET(end, get_opt_number(j, p, "end_ms"));
  FL_GET(ended_by, get_opt_string(j, p, "ended_by"));
  f.name = name, f.kind = kind, f.cli = cli, f.start_ms = start, f.end_ms = end, f.ended_by = ended_by;
  if (j.contains("targets") && j["targets"].is_array())
    for (const auto& t : j["targets"])
      if (t.is_string()) f.targets.push_back(t.get<std::string>());
  if (j.contains("counters") && !j["counters"].is_null()) {
    if (!j["counters"].is_object()) return field_error(p + ".counters", "expected an object");
    f.counters = &j["counters"];
  }
  return f;
}

Result<Report> read_report(const json& j) {
  Report r;
  FL_GET(format, get_number(j, "", "format"));
  if (format != 1) return field_error("format", "unsupported version (this renderer reads 1)");
  FL_GET(exp, member(j, "", "experiment"));
  FL_GET(name, get_string(*exp, "experiment", "name"));
  FL_GET(hyp, get_string(*exp, "experiment", "hypothesis"));
  FL_GET(file, get_opt_string(*exp, "experiment", "file"));
  FL_GET(started, get_number(j, "", "started_unix_ms"));
  FL_GET(ended, get_opt_number(j, "", "ended_unix_ms"));
  FL_GET(verdict, get_string(j, "", "verdict"));
  if (verdict != "held" && verdict != "refuted" && verdict != "aborted" && verdict != "not_started")
    return field_error("verdict", "expected held, refuted, aborted or not_started");
  FL_GET(reason, get_string(j, "", "reason"));
  r.name = name, r.hypothesis = hyp, r.file = file, r.started_unix_ms = started, r.ended_unix_ms = ended;
  r.verdict = verdict, r.reason = reason;

  FL_GET(phases, get_array(j, "", "phases"));
  for (size_t i = 0; i < phases->size(); ++i) {
    const std::string p = idx("phases", i);
    const json& e = (*phases)[i];
    FL_GET(pn, get_string(e, p, "name"));
    FL_GET(ps, get_number(e, p, "start_ms"));
    FL_GET(pe, get_opt_number(e, p, "end_ms"));
    FL_GET(ok, get_bool(e, p, "ok"));
    FL_GET(note, get_opt_string(e, p, "note"));
    r.phases.push_back(Phase{pn, note, ps, pe, ok});
  }
  FL_GET(probes, get_array(j, "", "probes"));
  for (size_t i = 0; i < probes->size(); ++i) {
    FL_GET(pr, read_probe((*probes)[i], idx("probes", i)));
    r.probes.push_back(std::move(pr));
  }
  FL_GET(faults, get_array(j, "", "faults"));
  for (size_t i = 0; i < faults->size(); ++i) {
    FL_GET(f, read_fault((*faults)[i], idx("faults", i)));
    r.faults.push_back(std::move(f));
  }
  FL_GET(abort, member(j, "", "abort"));
  if (!abort->is_null()) {
    FL_GET(at, get_number(*abort, "abort", "t_ms"));
    FL_GET(ap, get_opt_string(*abort, "abort", "probe"));
    FL_GET(ar, get_opt_string(*abort, "abort", "rule"));
    r.abort = Abort{at, ap, ar};
  }
  return r;
}

#undef FL_GET

// ---- drawing ----

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// A value for people: up to 4 significant digits, exponent form only when needed.
std::string human_number(double v) {
  char b[64];
  if (v == 0) return "0";
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// Raw JSON numbers for data- attributes: exact enough to recompute the geometry.
std::string raw(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::string seconds_label(double ms, double step_ms) {
  char b[64];
  if (step_ms >= 1000)
    std::snprintf(b, sizeof b, "%.0f s", ms / 1000);
  else if (step_ms >= 100)
    std::snprintf(b, sizeof b, "%.1f s", ms / 1000);
  else
    std::snprintf(b, sizeof b, "%.0f ms", ms);
  return b;
}

// A 1-2-5 step giving about `want` ticks over span (> 0, finite).
long double nice_step(long double span, int want) {
  long double raw_step = span / want;
  long double mag = std::pow(10.0L, std::floor(std::log10(raw_step)));
  for (long double m : {1.0L, 2.0L, 5.0L, 10.0L})
    if (m * mag >= raw_step) return m * mag;
  return 10 * mag;
}

// Chart geometry, SVG user units; the same for every chart so time lines up across them.
constexpr double kWidth = 900, kHeight = 210;
constexpr double kPlotX = 80, kPlotY = 12, kPlotW = 790, kPlotH = 150;

struct Scale {
  double t_end = 1;               // ms at the plot's right edge
  long double v_lo = 0, v_hi = 1;  // values at the plot's bottom and top edges

  double x(double t) const {
    double f = std::clamp(t / t_end, 0.0, 1.0);
    return kPlotX + f * kPlotW;
  }
  // long double: the span of two huge doubles (1e308 - -1e308) overflows a double.
  double y(double v) const {
    long double f = (static_cast<long double>(v) - v_lo) / (v_hi - v_lo);
    f = std::clamp(f, -0.05L, 1.05L);
    return kPlotY + static_cast<double>((1 - f) * kPlotH);
  }
};

// The value domain: every value and every finite bound visible, with a margin; all-equal
// values (or none) get a span of their own so nothing divides by zero.
void fit_values(Scale& s, const Probe& p) {
  bool any = false;
  long double lo = 0, hi = 0;
  auto take = [&](double v) {
    if (!any) lo = hi = v, any = true;
    lo = std::min<long double>(lo, v), hi = std::max<long double>(hi, v);
  };
  for (const auto& pt : p.series)
    if (pt.value) take(*pt.value);
  if (p.min) take(*p.min);
  if (p.max) take(*p.max);
  if (p.during && p.during->min) take(*p.during->min);
  if (p.during && p.during->max) take(*p.during->max);
  if (!any) lo = 0, hi = 1;
  long double span = hi - lo;
  if (span <= 0) {
    long double pad = std::max(std::fabs(lo) * 0.1L, 1.0L);
    lo -= pad, hi += pad;
  } else {
    lo -= span * 0.08L, hi += span * 0.08L;
  }
  // The domain is published as doubles (data-v-lo, data-v-hi): keep it representable.
  lo = std::max<long double>(lo, -std::numeric_limits<double>::max());
  hi = std::min<long double>(hi, std::numeric_limits<double>::max());
  s.v_lo = lo, s.v_hi = hi;
}

double end_of_experiment(const Report& r) {
  double t = 0;
  if (r.ended_unix_ms && *r.ended_unix_ms > r.started_unix_ms) t = *r.ended_unix_ms - r.started_unix_ms;
  // Nothing drawn falls off the right edge, whatever the wall clock said.
  for (const auto& ph : r.phases) t = std::max({t, ph.start_ms, ph.end_ms.value_or(0)});
  for (const auto& p : r.probes)
    for (const auto& pt : p.series) t = std::max(t, pt.t_ms);
  for (const auto& f : r.faults) t = std::max({t, f.start_ms.value_or(0), f.end_ms.value_or(0)});
  if (r.abort) t = std::max(t, r.abort->t_ms);
  return t > 0 && std::isfinite(t) ? t : 1;
}

std::string unit_suffix(const std::string& unit) { return unit.empty() || unit == "ratio" ? "" : " " + unit; }

std::string range_text(const Probe& p, const std::optional<double>& min, const std::optional<double>& max) {
  const std::string u = unit_suffix(p.unit);
  if (min && max) return human_number(*min) + u + " \u2264 " + p.statistic + " \u2264 " + human_number(*max) + u;
  if (min) return p.statistic + " \u2265 " + human_number(*min) + u;
  if (max) return p.statistic + " \u2264 " + human_number(*max) + u;
  return "any value";
}
std::string range_text(const Probe& p) { return range_text(p, p.min, p.max); }

// A range as a band over [t0, t1): an unbounded side reaches the plot's edge.
void draw_band(std::string& o, const Scale& s, const char* cls, const std::string& title, double t0, double t1,
               const std::optional<double>& min, const std::optional<double>& max) {
  const double x0 = s.x(t0), x1 = s.x(t1);
  if (x1 <= x0) return;
  const double top = max ? s.y(*max) : kPlotY;
  const double bottom = min ? s.y(*min) : kPlotY + kPlotH;
  o += "<rect class=\"" + std::string(cls) + "\" data-t0-ms=\"" + raw(t0) + "\" data-t1-ms=\"" + raw(t1) +
       "\" x=\"" + num(x0) + "\" y=\"" + num(top) + "\" width=\"" + num(x1 - x0) + "\" height=\"" +
       num(std::max(0.0, bottom - top)) + "\"><title>" + html_escape(title) + "</title></rect>\n";
  if (max)
    o += "<line class=\"range-edge\" x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(top) + "\" y2=\"" +
         num(top) + "\"/>\n";
  if (min)
    o += "<line class=\"range-edge\" x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(bottom) +
         "\" y2=\"" + num(bottom) + "\"/>\n";
}

void draw_chart(std::string& o, const Report& r, const Probe& p, size_t index, double t_end) {
  Scale s;
  s.t_end = t_end;
  fit_values(s, p);
  const std::string e_name = html_escape(p.name);
  o += "<svg class=\"chart\" id=\"chart-" + std::to_string(index) + "\" data-probe=\"" + e_name +
       "\" data-t-end-ms=\"" + raw(t_end) + "\" data-v-lo=\"" + raw(static_cast<double>(s.v_lo)) +
       "\" data-v-hi=\"" + raw(static_cast<double>(s.v_hi)) + "\" width=\"" + num(kWidth) + "\" height=\"" +
       num(kHeight) + "\" viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) +
       "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"" + e_name + " over time\">\n";
  o += "<rect class=\"plot-area\" x=\"" + num(kPlotX) + "\" y=\"" + num(kPlotY) + "\" width=\"" + num(kPlotW) +
       "\" height=\"" + num(kPlotH) + "\"/>\n";

  // Accepted range: a band between the bounds. With a `during` range that applied, the method's
  // window gets that band instead (both overlap over the settling time).
  {
    const std::string accepted = "accepted: " + range_text(p);
    if (p.during && p.during->from_ms && p.during->to_ms && *p.during->to_ms > *p.during->from_ms) {
      const double from = *p.during->from_ms, to = *p.during->to_ms;
      const double settled = std::min(to, from + p.during->after_ms);
      draw_band(o, s, "range-band", accepted, 0, settled, p.min, p.max);
      draw_band(o, s, "range-band", accepted, to, t_end, p.min, p.max);
      draw_band(o, s, "during-band", "accepted while the method ran: " + range_text(p, p.during->min, p.during->max),
                from, to, p.during->min, p.during->max);
    } else {
      draw_band(o, s, "range-band", accepted, 0, t_end, p.min, p.max);
    }
  }

  // Fault windows, under the series so the line stays visible.
  for (const auto& f : r.faults) {
    if (!f.start_ms || !f.end_ms) continue;  // never started or never ended: no window to show
    double x0 = s.x(*f.start_ms), x1 = s.x(*f.end_ms);
    const std::string fn = html_escape(f.name);
    o += "<g class=\"fault\"><rect class=\"fault-window\" data-fault=\"" + fn + "\" data-start-ms=\"" +
         raw(*f.start_ms) + "\" data-end-ms=\"" + raw(*f.end_ms) + "\" x=\"" + num(x0) + "\" y=\"" + num(kPlotY) +
         "\" width=\"" + num(std::max(0.0, x1 - x0)) + "\" height=\"" + num(kPlotH) + "\"><title>" + fn + " (" +
         html_escape(f.kind) + ")</title></rect>";
    o += "<text class=\"fault-label\" x=\"" + num(x0 + 3) + "\" y=\"" + num(kPlotY + 12) + "\">" + fn +
         "</text></g>\n";
  }

  // Time axis: 0..t_end in seconds, the same ticks on every chart.
  {
    long double step = nice_step(t_end, 8);
    o += "<g class=\"x-axis\">";
    int n = 0;
    for (long double t = 0; t <= t_end * 1.000001L && n < 40; t += step, ++n) {
      double x = s.x(static_cast<double>(t));
      o += "<line class=\"grid\" x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(kPlotY) + "\" y2=\"" +
           num(kPlotY + kPlotH + 4) + "\"/><text class=\"tick-label\" x=\"" + num(x) + "\" y=\"" +
           num(kPlotY + kPlotH + 17) + "\" text-anchor=\"middle\">" +
           seconds_label(static_cast<double>(t), static_cast<double>(step)) + "</text>";
    }
    o += "<text class=\"axis-title\" x=\"" + num(kPlotX + kPlotW) + "\" y=\"" + num(kPlotY + kPlotH + 34) +
         "\" text-anchor=\"end\">time since the first probe sample</text></g>\n";
  }
  // Value axis.
  {
    long double step = nice_step(s.v_hi - s.v_lo, 4);
    long double first = std::ceil(s.v_lo / step) * step;
    o += "<g class=\"y-axis\">";
    int n = 0;
    for (long double v = first; v <= s.v_hi && n < 20; v += step, ++n) {
      double y = s.y(static_cast<double>(v));
      o += "<line class=\"grid\" x1=\"" + num(kPlotX - 4) + "\" x2=\"" + num(kPlotX + kPlotW) + "\" y1=\"" + num(y) +
           "\" y2=\"" + num(y) + "\"/><text class=\"tick-label\" x=\"" + num(kPlotX - 7) + "\" y=\"" + num(y + 4) +
           "\" text-anchor=\"end\">" + html_escape(human_number(static_cast<double>(v)) + unit_suffix(p.unit)) +
           "</text>";
    }
    o += "<text class=\"axis-title\" x=\"12\" y=\"" + num(kPlotY + kPlotH / 2) + "\" transform=\"rotate(-90 12 " +
         num(kPlotY + kPlotH / 2) + ")\" text-anchor=\"middle\">" +
         html_escape(p.statistic + (p.unit.empty() ? "" : " (" + p.unit + ")")) + "</text></g>\n";
  }

  // The series: one polyline per run of entries with a value.
  std::string pts;
  size_t in_run = 0;
  double last_x = 0, last_y = 0;
  auto flush = [&] {
    if (in_run > 0) o += "<polyline class=\"series\" points=\"" + pts + "\"/>\n";
    // A line through one point has no length and shows nothing: a lone value gets a dot.
    if (in_run == 1)
      o += "<circle class=\"series-dot\" cx=\"" + num(last_x) + "\" cy=\"" + num(last_y) + "\" r=\"2.5\"/>\n";
    pts.clear(), in_run = 0;
  };
  for (const auto& pt : p.series) {
    if (!pt.value) {
      flush();
      continue;
    }
    if (in_run++ > 0) pts += ' ';
    last_x = s.x(pt.t_ms), last_y = s.y(*pt.value);
    pts += num(last_x) + "," + num(last_y);
  }
  flush();
  for (const auto& pt : p.series) {
    if (pt.in_range) continue;
    double y = pt.value ? s.y(*pt.value) : kPlotY + kPlotH;
    o += "<circle class=\"out-of-range\" data-t-ms=\"" + raw(pt.t_ms) + "\" cx=\"" + num(s.x(pt.t_ms)) +
         "\" cy=\"" + num(y) + "\" r=\"3.5\"><title>" + seconds_label(pt.t_ms, 1) + ": " +
         (pt.value ? html_escape(human_number(*pt.value) + unit_suffix(p.unit)) : std::string("no value")) +
         " out of range</title></circle>\n";
  }
  if (p.series.empty())
    o += "<text class=\"empty\" x=\"" + num(kPlotX + kPlotW / 2) + "\" y=\"" + num(kPlotY + kPlotH / 2) +
         "\" text-anchor=\"middle\">no samples</text>\n";

  if (r.abort) {
    double x = s.x(r.abort->t_ms);
    o += "<line class=\"abort-line\" data-t-ms=\"" + raw(r.abort->t_ms) + "\" x1=\"" + num(x) + "\" x2=\"" + num(x) +
         "\" y1=\"" + num(kPlotY) + "\" y2=\"" + num(kPlotY + kPlotH) + "\"><title>abort: " +
         html_escape(r.abort->rule) + "</title></line>";
    o += "<text class=\"abort-label\" x=\"" + num(x - 3) + "\" y=\"" + num(kPlotY + kPlotH - 5) +
         "\" text-anchor=\"end\">abort</text>\n";
  }
  o += "</svg>\n";
}

// Counters as key/value rows: nested objects become "a.b", arrays "a[0]".
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (out.size() > 10000) return;
  if (prefix.empty() && (j.is_object() || j.is_array()) && j.empty()) return;
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (j.is_array() && !j.empty()) {
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], prefix + "[" + std::to_string(i) + "]", out);
  } else {
    out.emplace_back(prefix, j.is_string() ? j.get<std::string>()
                                           : j.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

std::string utc(double unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  if (!std::isfinite(unix_ms) || gmtime_r(&secs, &tm) == nullptr) return "-";
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return b;
}

std::string ms_text(std::optional<double> ms) {
  if (!ms) return "-";
  return seconds_label(*ms, 1);
}

const char* verdict_headline(const std::string& v) {
  if (v == "held") return "Hypothesis held";
  if (v == "refuted") return "Hypothesis refuted";
  if (v == "aborted") return "Experiment aborted";
  return "Experiment not started";
}

constexpr const char* kStyle = R"(
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px;color:#1d2430;background:#fff;max-width:960px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:26px 0 8px}h3{font-size:15px;margin:18px 0 4px}
.meta{color:#5a6372;font-size:13px}
.hypothesis{font-size:15px;border-left:4px solid #8a94a6;padding:6px 12px;background:#f4f6f9}
#verdict{font-size:24px;font-weight:bold;padding:12px 16px;border-radius:6px;margin:16px 0 4px}
.verdict-held{background:#dff3e4;color:#135c2a;border:2px solid #2e9c50}
.verdict-refuted{background:#fbe3e3;color:#7a1616;border:2px solid #c33}
.verdict-aborted{background:#fff0d6;color:#7a4a00;border:2px solid #e59400}
.verdict-not_started{background:#eceef2;color:#3b4350;border:2px solid #8a94a6}
#reason{font-size:15px;margin:6px 0 12px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d5dae2;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b01c1c;font-weight:bold}.good{color:#1c7a3a}
svg.chart{display:block;margin:4px 0 10px;font-size:11px}
.plot-area{fill:#fbfcfd;stroke:#9aa3b2;stroke-width:1}
.range-band{fill:#2e9c50;fill-opacity:.13}
.during-band{fill:#2f6fd0;fill-opacity:.15}
.range-edge{stroke:#2e9c50;stroke-dasharray:5 3;stroke-width:1}
.fault-window{fill:#d0342c;fill-opacity:.16;stroke:#d0342c;stroke-opacity:.5}
.fault-label{fill:#9d1d17;font-weight:bold}
.grid{stroke:#e1e5eb;stroke-width:1}.tick-label{fill:#4b5563}.axis-title{fill:#4b5563}
.series{fill:none;stroke:#1f5fbf;stroke-width:2;stroke-linejoin:round}.series-dot{fill:#1f5fbf}
.out-of-range{fill:#d0342c;stroke:#fff;stroke-width:1}
.abort-line{stroke:#e59400;stroke-width:2.5;stroke-dasharray:6 3}.abort-label{fill:#a56a00;font-weight:bold}
.empty{fill:#8a94a6;font-size:14px}
)";

}  // namespace

std::string html_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 16);
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = b[i];
    if (c < 0x80) {
      switch (c) {
        case '&': o += "&amp;"; break;
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '"': o += "&quot;"; break;
        case '\'': o += "&#39;"; break;
        default:
          if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            o += "\xEF\xBF\xBD";
          else
            o += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF) passes through.
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool good = len > 0 && i + len <= n;
    for (size_t k = 1; good && k < len; ++k) good = (b[i + k] & 0xC0) == 0x80;
    if (good && len == 3) good = !(c == 0xE0 && b[i + 1] < 0xA0) && !(c == 0xED && b[i + 1] >= 0xA0);
    if (good && len == 4) good = !(c == 0xF0 && b[i + 1] < 0x90) && !(c == 0xF4 && b[i + 1] >= 0x90);
    if (good) {
      o.append(s.substr(i, len));
      i += len;
    } else {
      o += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return o;
}

Result<std::string> render_report_html(const json& report) {
  auto parsed = read_report(report);
  if (!parsed) return parsed.take_error();
  const Report& r = *parsed;
  const double t_end = end_of_experiment(r);

  std::string o;
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(r.name) +
       " \u2014 " + verdict_headline(r.verdict) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  o += "<h1 id=\"title\">" + html_escape(r.name) + "</h1>\n<p class=\"meta\">";
  if (!r.file.empty()) o += "<code>" + html_escape(r.file) + "</code> \u00b7 ";
  o += "started " + utc(r.started_unix_ms);
  if (r.ended_unix_ms) o += ", ended " + utc(*r.ended_unix_ms);
  o += ", " + html_escape(seconds_label(t_end, 1000)) + " shown</p>\n";
  o += "<p class=\"hypothesis\" id=\"hypothesis\"><b>Hypothesis:</b> " + html_escape(r.hypothesis) + "</p>\n";
  o += "<div id=\"verdict\" class=\"verdict-" + r.verdict + "\" data-verdict=\"" + r.verdict + "\">" +
       verdict_headline(r.verdict) + "</div>\n<p id=\"reason\">" + html_escape(r.reason) + "</p>\n";
  if (r.abort)
    o += "<p id=\"abort\">Aborted at " + html_escape(seconds_label(r.abort->t_ms, 1)) + " by probe <b>" +
         html_escape(r.abort->probe) + "</b>: " + html_escape(r.abort->rule) + ".</p>\n";

  o += "<h2>Phases</h2>\n<table id=\"phases\"><tr><th>phase</th><th>start</th><th>end</th><th>result</th><th>note</th></tr>\n";
  for (const auto& ph : r.phases)
    o += "<tr><td>" + html_escape(ph.name) + "</td><td class=\"num\">" + ms_text(ph.start_ms) +
         "</td><td class=\"num\">" + ms_text(ph.end_ms) + "</td><td class=\"" + (ph.ok ? "good\">ok" : "bad\">failed") +
         "</td><td>" + html_escape(ph.note) + "</td></tr>\n";
  o += "</table>\n";

  o += "<h2>Probes</h2>\n";
  if (r.probes.empty()) o += "<p>No probes.</p>\n";
  for (size_t i = 0; i < r.probes.size(); ++i) {
    const Probe& p = r.probes[i];
    size_t out = 0;
    for (const auto& pt : p.series) out += pt.in_range ? 0 : 1;
    o += "<section class=\"probe\" id=\"probe-" + std::to_string(i) + "\">\n<h3>" + html_escape(p.name) + "</h3>\n";
    o += "<p class=\"meta\">" + html_escape(p.kind) + (p.target.empty() ? "" : " \u00b7 " + html_escape(p.target)) +
         " \u00b7 accepted: " + html_escape(range_text(p)) +
         (p.during ? " (while the method runs: " + html_escape(range_text(p, p.during->min, p.during->max)) + ")"
                   : std::string()) +
         " \u00b7 <span class=\"sample-count\">" +
         std::to_string(p.samples) + " raw samples</span>";
    if (p.failed_samples > 0) o += " (" + std::to_string(p.failed_samples) + " failed)";
    if (p.window > 0) o += " \u00b7 statistic over the last " + std::to_string(p.window) + " samples";
    if (p.interval_ms > 0) o += " every " + html_escape(seconds_label(p.interval_ms, 1));
    o += " \u00b7 " + std::to_string(p.series.size()) + " points, <span class=\"" +
         std::string(out > 0 ? "bad" : "good") + "\">" + std::to_string(out) + " out of range</span></p>\n";
    draw_chart(o, r, p, i, t_end);
    o += "</section>\n";
  }

  o += "<h2>Faults</h2>\n";
  if (r.faults.empty()) o += "<p>No faults.</p>\n";
  o += "<table id=\"faults\"><tr><th>fault</th><th>kind</th><th>targets</th><th>window</th><th>ended by</th><th>command</th></tr>\n";
  for (const auto& f : r.faults) {
    std::string targets;
    for (const auto& t : f.targets) targets += (targets.empty() ? "" : ", ") + html_escape(t);
    o += "<tr><td>" + html_escape(f.name) + "</td><td>" + html_escape(f.kind) + "</td><td>" + targets +
         "</td><td class=\"num\">" +
         (f.start_ms ? ms_text(f.start_ms) + " \u2013 " + ms_text(f.end_ms) : std::string("never started")) + "</td><td>" +
         html_escape(f.ended_by) + "</td><td><code>" + html_escape(f.cli) + "</code></td></tr>\n";
  }
  o += "</table>\n";
  for (const auto& f : r.faults) {
    o += "<h3>Counters of " + html_escape(f.name) + "</h3>\n<table class=\"counters\" data-fault=\"" +
         html_escape(f.name) + "\">";
    std::vector<std::pair<std::string, std::string>> rows;
    if (f.counters) flatten(*f.counters, "", rows);
    if (rows.empty()) o += "<tr><td>none reported</td></tr>";
    for (const auto& [k, v] : rows)
      o += "<tr><td>" + html_escape(k) + "</td><td class=\"num\">" + html_escape(v) + "</td></tr>";
    o += "</table>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

}  // namespace fl::cli
