// The HTML report of an experiment: escaping, precise errors for a bad report, and the SVG
// geometry checked against the report's own numbers (time scale, range band, series points).
#include "cli/report_html.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "report_svg.h"

namespace fl::cli {
namespace {

using json = nlohmann::json;
using test::chart;
using test::elements;
using test::load_report;
using test::points;

std::string render_ok(const json& r) {
  auto h = render_report_html(r);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  return h.ok() ? *h : "";
}

double num(const test::Attrs& a, const std::string& key) {
  auto it = a.find(key);
  EXPECT_NE(it, a.end()) << "no attribute " << key;
  return it == a.end() ? NAN : std::stod(it->second);
}

struct Plot {
  double x, y, w, h;
};

Plot plot_of(const std::string& svg) {
  auto p = elements(svg, "plot-area");
  EXPECT_EQ(p.size(), 1u);
  if (p.empty()) return {NAN, NAN, NAN, NAN};
  return {num(p[0], "x"), num(p[0], "y"), num(p[0], "width"), num(p[0], "height")};
}

TEST(ReportHtml, EscapesEveryStringFromTheReport) {
  json r = load_report("report-held.json");
  r["experiment"]["name"] = "<img src=x onerror=alert(1)>";
  r["experiment"]["hypothesis"] = "a & b";
  r["reason"] = "</p><b>bold</b>";
  r["probes"][0]["name"] = "<script>alert(\"x\")</script>'";
  r["probes"][0]["target"] = "\"><svg onload=alert(2)>";
  r["faults"][0]["name"] = "sp\"lit<";
  r["faults"][0]["counters"]["<key>"] = "<value>";
  r["phases"][0]["note"] = std::string("bad utf8 \xff\xfe and a bell \x07");
  const std::string h = render_ok(r);

  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_EQ(h.find("<b>bold"), std::string::npos);
  EXPECT_EQ(h.find("<key>"), std::string::npos);
  EXPECT_EQ(h.find("onload=alert(2)>"), std::string::npos) << "attribute context escaped too";
  EXPECT_NE(h.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;"), std::string::npos);
  EXPECT_NE(h.find("a &amp; b"), std::string::npos);
  EXPECT_EQ(h.find("\xff"), std::string::npos);
  EXPECT_EQ(h.find('\x07'), std::string::npos);
  // The names reach attributes intact, but as entities, so the quote cannot close them.
  auto charts = elements(h, "chart");
  ASSERT_EQ(charts.size(), 2u);
  EXPECT_EQ(charts[0]["data-probe"], "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;");
  auto windows = elements(h, "fault-window");
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[0]["data-fault"], "sp&quot;lit&lt;");
}

TEST(ReportHtml, EscapeFunction) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("caf\xc3\xa9 \xe2\x89\xa4 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x89\xa4 \xf0\x9f\x98\x80");
  EXPECT_EQ(html_escape("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong '/' refused";
  EXPECT_EQ(html_escape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate refused";
  EXPECT_EQ(html_escape("\xe2\x89"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "truncated sequence";
  EXPECT_EQ(html_escape("a\tb\nc\rd"), "a\tb\nc\xEF\xBF\xBD" "d");
}

TEST(ReportHtml, SelfContainedWithoutScript) {
  for (const char* name : {"report-held.json", "report-aborted.json"}) {
    const std::string h = render_ok(load_report(name));
    ASSERT_FALSE(h.empty());
    EXPECT_EQ(h.find("<script"), std::string::npos) << name;
    for (const char* ref : {"src=", "href=", "@import", "url(", "<link", "<iframe", "<object"})
      EXPECT_EQ(h.find(ref), std::string::npos) << name << " references " << ref;
    // The only URL is the SVG namespace name, which is never fetched.
    std::string rest = h;
    for (auto p = rest.find("http"); p != std::string::npos; p = rest.find("http", p + 1))
      EXPECT_EQ(rest.compare(p, 26, "http://www.w3.org/2000/svg"), 0) << name << ": " << rest.substr(p, 40);
  }
}

TEST(ReportHtml, MissingOrIllTypedFieldIsNamed) {
  struct Case {
    const char* pointer;  // JSON pointer into report-held.json
    json replacement;     // discarded: remove the member
    bool remove;
    const char* message;
  };
  const Case cases[] = {
      {"/experiment/name", nullptr, true, "report field experiment.name: missing"},
      {"/experiment/hypothesis", 3, false, "report field experiment.hypothesis: expected a string"},
      {"/experiment", nullptr, true, "report field experiment: missing"},
      {"/verdict", "maybe", false, "report field verdict: expected held, refuted, aborted or not_started"},
      {"/reason", nullptr, true, "report field reason: missing"},
      {"/format", 2, false, "report field format: unsupported version"},
      {"/started_unix_ms", "yesterday", false, "report field started_unix_ms: expected a number"},
      {"/phases/2/ok", "yes", false, "report field phases[2].ok: expected true or false"},
      {"/probes", json::object(), false, "report field probes: expected an array"},
      {"/probes/1/series/3/t_ms", nullptr, true, "report field probes[1].series[3].t_ms: missing"},
      {"/probes/0/series/0/value", "12", false, "report field probes[0].series[0].value: expected a number or null"},
      {"/probes/0/range/max", nullptr, true, "report field probes[0].range.max: missing"},
      {"/probes/0/range", 5, false, "report field probes[0].range: expected an object"},
      {"/probes/1/samples", nullptr, true, "report field probes[1].samples: missing"},
      {"/faults/0/start_ms", "soon", false, "report field faults[0].start_ms: expected a number or null"},
      {"/faults/0/counters", json::array(), false, "report field faults[0].counters: expected an object"},
      {"/abort", nullptr, true, "report field abort: missing"},
  };
  for (const auto& c : cases) {
    json r = load_report("report-held.json");
    json::json_pointer ptr(c.pointer);
    if (c.remove)
      r[ptr.parent_pointer()].erase(ptr.back());
    else
      r[ptr] = c.replacement;
    auto h = render_report_html(r);
    ASSERT_FALSE(h.ok()) << c.pointer;
    EXPECT_EQ(h.error().code, Errc::invalid_request) << c.pointer;
    EXPECT_EQ(h.error().message.rfind(c.message, 0), 0u) << c.pointer << " -> " << h.error().message;
  }
  auto h = render_report_html(json::array());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().message, "report field (top level): expected an object");
}

// Time: 0..t_end (ended - started = 30 s) across the plot's width, in every chart alike.
TEST(ReportHtml, FaultWindowFollowsTheTimeScale) {
  const json r = load_report("report-held.json");
  const std::string h = render_ok(r);
  const double t_end = r["ended_unix_ms"].get<double>() - r["started_unix_ms"].get<double>();
  ASSERT_EQ(t_end, 30000);
  for (const char* id : {"chart-0", "chart-1"}) {
    const std::string svg = chart(h, id);
    ASSERT_FALSE(svg.empty()) << id;
    const Plot p = plot_of(svg);
    auto w = elements(svg, "fault-window");
    ASSERT_EQ(w.size(), 1u) << id;
    EXPECT_EQ(w[0]["data-fault"], "split");
    EXPECT_NEAR(num(w[0], "x"), p.x + p.w * 5003 / t_end, 0.01) << id;
    EXPECT_NEAR(num(w[0], "width"), p.w * (15004 - 5003) / t_end, 0.02) << id;
    EXPECT_NEAR(num(w[0], "y"), p.y, 0.01);
    EXPECT_NEAR(num(w[0], "height"), p.h, 0.01);
    EXPECT_TRUE(elements(svg, "abort-line").empty()) << "no abort, no line";
  }
}

TEST(ReportHtml, RangeBandAndSeriesShareTheValueScale) {
  const json r = load_report("report-held.json");
  const std::string h = render_ok(r);
  const double t_end = 30000;

  // delivery-p50: range 10..40 ms, and its series touches both bounds.
  const std::string svg = chart(h, "chart-0");
  const Plot p = plot_of(svg);
  auto band = elements(svg, "range-band");
  ASSERT_EQ(band.size(), 1u);
  const double top = num(band[0], "y"), bottom = top + num(band[0], "height");
  auto lines = elements(svg, "series");
  ASSERT_EQ(lines.size(), 1u);
  const auto pts = points(lines[0]["points"]);
  const auto& series = r["probes"][0]["series"];
  ASSERT_EQ(pts.size(), series.size()) << "one point per series entry";
  bool saw_min = false, saw_max = false;
  for (size_t i = 0; i < pts.size(); ++i) {
    const double t = series[i]["t_ms"].get<double>(), v = series[i]["value"].get<double>();
    EXPECT_NEAR(pts[i].x, p.x + p.w * t / t_end, 0.01) << i;
    EXPECT_GE(pts[i].y, p.y) << i;
    EXPECT_LE(pts[i].y, p.y + p.h) << i;
    if (v == 10) {
      saw_min = true;
      EXPECT_NEAR(pts[i].y, bottom, 0.02) << "min on the band's lower edge";
    }
    if (v == 40) {
      saw_max = true;
      EXPECT_NEAR(pts[i].y, top, 0.02) << "max on the band's upper edge";
    }
    if (v > 10 && v < 40) {
      EXPECT_TRUE(pts[i].y > top && pts[i].y < bottom) << i;
    }
  }
  EXPECT_TRUE(saw_min && saw_max);
  // The band against the declared value domain, independently of the points.
  auto c = elements(svg, "chart");
  const double lo = num(c[0], "data-v-lo"), hi = num(c[0], "data-v-hi");
  EXPECT_NEAR(top, p.y + p.h * (hi - 40) / (hi - lo), 0.01);
  EXPECT_NEAR(bottom, p.y + p.h * (hi - 10) / (hi - lo), 0.01);
  EXPECT_TRUE(elements(svg, "out-of-range").empty());

  // connect-b: max 50 ms, no min: the band reaches the plot's bottom edge.
  const std::string svg1 = chart(h, "chart-1");
  auto band1 = elements(svg1, "range-band");
  ASSERT_EQ(band1.size(), 1u);
  auto c1 = elements(svg1, "chart");
  const double lo1 = num(c1[0], "data-v-lo"), hi1 = num(c1[0], "data-v-hi");
  EXPECT_NEAR(num(band1[0], "y"), p.y + p.h * (hi1 - 50) / (hi1 - lo1), 0.01);
  EXPECT_NEAR(num(band1[0], "y") + num(band1[0], "height"), p.y + p.h, 0.01);
  EXPECT_NE(h.find("30 raw samples</span> (1 failed)"), std::string::npos);
  EXPECT_NE(h.find("id=\"verdict\" class=\"verdict-held\" data-verdict=\"held\">Hypothesis held<"), std::string::npos);
}

// A `during` range: its band covers the method's window (from the first fault's start to the
// method's end), the normal band the rest, overlapping over the settling time; still one chart.
TEST(ReportHtml, DuringBandCoversTheMethodWindow) {
  json r = load_report("report-held.json");
  r["probes"][0]["during"] = {{"min", nullptr}, {"max", 5}, {"after_ms", 1000}, {"from_ms", 5003}, {"to_ms", 15004}};
  const std::string h = render_ok(r);
  const double t_end = 30000;
  const std::string svg = chart(h, "chart-0");
  const Plot p = plot_of(svg);
  auto c = elements(svg, "chart");
  ASSERT_EQ(c.size(), 1u);
  const double lo = num(c[0], "data-v-lo"), hi = num(c[0], "data-v-hi");
  EXPECT_LT(lo, 5) << "the during bound is inside the value domain";
  auto y = [&](double v) { return p.y + p.h * (hi - v) / (hi - lo); };
  auto x = [&](double t) { return p.x + p.w * t / t_end; };

  auto during = elements(svg, "during-band");
  ASSERT_EQ(during.size(), 1u);
  EXPECT_NEAR(num(during[0], "x"), x(5003), 0.01);
  EXPECT_NEAR(num(during[0], "width"), x(15004) - x(5003), 0.02);
  EXPECT_NEAR(num(during[0], "y"), y(5), 0.01) << "max 5 is the top";
  EXPECT_NEAR(num(during[0], "y") + num(during[0], "height"), p.y + p.h, 0.01) << "no min: down to the bottom";

  auto bands = elements(svg, "range-band");
  ASSERT_EQ(bands.size(), 2u) << "before the method (and its settling time), and after it";
  EXPECT_NEAR(num(bands[0], "x"), p.x, 0.01);
  EXPECT_NEAR(num(bands[0], "width"), x(6003) - p.x, 0.02) << "until 1 s after the fault's start";
  EXPECT_NEAR(num(bands[1], "x"), x(15004), 0.01);
  EXPECT_NEAR(num(bands[1], "x") + num(bands[1], "width"), p.x + p.w, 0.02);
  for (const auto& b : bands) {
    EXPECT_NEAR(num(b, "y"), y(40), 0.01);
    EXPECT_NEAR(num(b, "y") + num(b, "height"), y(10), 0.01);
  }
  EXPECT_NE(h.find("(while the method runs: p50 \u2264 5 ms)"), std::string::npos);

  // The other probe has none: one band over the whole run.
  const std::string svg1 = chart(h, "chart-1");
  EXPECT_TRUE(elements(svg1, "during-band").empty());
  ASSERT_EQ(elements(svg1, "range-band").size(), 1u);
  EXPECT_NEAR(num(elements(svg1, "range-band")[0], "width"), p.w, 0.01);

  // No fault applied (from_ms null): nothing to draw it over, the normal band everywhere.
  r["probes"][0]["during"]["from_ms"] = nullptr;
  r["probes"][0]["during"]["to_ms"] = nullptr;
  const std::string svg2 = chart(render_ok(r), "chart-0");
  EXPECT_TRUE(elements(svg2, "during-band").empty());
  EXPECT_EQ(elements(svg2, "range-band").size(), 1u);

  r["probes"][0]["during"] = "soon";
  auto bad = render_report_html(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "report field probes[0].during: expected an object or null");
}

TEST(ReportHtml, AbortedReport) {
  const json r = load_report("report-aborted.json");
  const std::string h = render_ok(r);
  const double t_end = 12000;
  EXPECT_NE(h.find("data-verdict=\"aborted\">Experiment aborted<"), std::string::npos);
  EXPECT_NE(h.find(r["reason"].get<std::string>()), std::string::npos);
  EXPECT_NE(h.find("by probe <b>others-p99</b>: 3 samples out of range"), std::string::npos);

  const std::string svg = chart(h, "chart-0");
  const Plot p = plot_of(svg);
  auto abort = elements(svg, "abort-line");
  ASSERT_EQ(abort.size(), 1u);
  EXPECT_NEAR(num(abort[0], "x1"), p.x + p.w * 8000 / t_end, 0.01);
  // "later" never started: only "crawl" has a window, cut short by the abort.
  auto w = elements(svg, "fault-window");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0]["data-fault"], "crawl");
  EXPECT_NEAR(num(w[0], "width"), p.w * (8004 - 4002) / t_end, 0.02);

  // A null value splits the line; every numeric entry is a point, every miss a marker.
  auto lines = elements(svg, "series");
  ASSERT_EQ(lines.size(), 2u);
  size_t numeric = 0, out = 0;
  for (const auto& e : r["probes"][0]["series"]) numeric += e["value"].is_number(), out += !e["in_range"].get<bool>();
  EXPECT_EQ(points(lines[0]["points"]).size() + points(lines[1]["points"]).size(), numeric);
  // The lone value after the gap would be an invisible line of one point: it gets a dot.
  ASSERT_EQ(points(lines[1]["points"]).size(), 1u);
  auto dots = elements(svg, "series-dot");
  ASSERT_EQ(dots.size(), 1u);
  EXPECT_EQ(test::Attrs({{"x", dots[0]["cx"]}, {"y", dots[0]["cy"]}}),
            test::Attrs({{"x", lines[1]["points"].substr(0, lines[1]["points"].find(','))},
                         {"y", lines[1]["points"].substr(lines[1]["points"].find(',') + 1)}}));
  // Markers: above the max for a value out of range, on the plot's floor for no value.
  auto marks = elements(svg, "out-of-range");
  EXPECT_EQ(marks.size(), out);
  size_t above = 0, floor = 0;
  for (const auto& m : marks) {
    above += num(m, "cy") < num(elements(svg, "range-band")[0], "y");
    floor += std::fabs(num(m, "cy") - (p.y + p.h)) < 0.01;
  }
  EXPECT_EQ(above, 4u);
  EXPECT_EQ(floor, 1u);

  // server-rss: no samples, no range.
  const std::string svg1 = chart(h, "chart-1");
  EXPECT_TRUE(elements(svg1, "series").empty());
  EXPECT_NE(svg1.find("no samples"), std::string::npos);
  auto band = elements(svg1, "range-band");
  ASSERT_EQ(band.size(), 1u);
  EXPECT_NEAR(num(band[0], "height"), p.h, 0.01) << "unbounded both ways: the whole plot";
  EXPECT_NE(h.find("0 raw samples</span>"), std::string::npos);
  EXPECT_NE(h.find("24 raw samples</span> (2 failed)"), std::string::npos);

  // Counters flattened to key/value rows.
  EXPECT_NE(h.find("<tr><td>shaping.delayed</td><td class=\"num\">298</td></tr>"), std::string::npos);
  EXPECT_NE(h.find("<tr><td>shaping.queue[1]</td><td class=\"num\">5</td></tr>"), std::string::npos);
  EXPECT_NE(h.find("data-fault=\"later\"><tr><td>none reported</td></tr>"), std::string::npos);
}

// Degenerate series: nothing divides by zero, nothing leaves the plot, no NaN or inf emitted.
TEST(ReportHtml, DegenerateSeries) {
  struct Case {
    const char* name;
    json series;
    json range;
  };
  const Case cases[] = {
      {"single", json::array({{{"t_ms", 0}, {"value", 5}, {"in_range", true}}}), {{"min", nullptr}, {"max", nullptr}}},
      {"all-equal",
       json::array({{{"t_ms", 0}, {"value", 0}, {"in_range", true}}, {{"t_ms", 10}, {"value", 0}, {"in_range", true}}}),
       {{"min", 0}, {"max", 0}}},
      {"huge",
       json::array({{{"t_ms", 0}, {"value", 1e308}, {"in_range", false}},
                    {{"t_ms", 1e15}, {"value", -1.7e308}, {"in_range", true}}}),
       {{"min", -1e308}, {"max", 1e307}}},
      {"tiny", json::array({{{"t_ms", 1}, {"value", 1e-300}, {"in_range", true}}, {{"t_ms", 2}, {"value", 2e-300}, {"in_range", true}}}),
       {{"min", nullptr}, {"max", nullptr}}},
  };
  for (const auto& c : cases) {
    json r = load_report("report-held.json");
    r["probes"].erase(1);
    r["probes"][0]["series"] = c.series;
    r["probes"][0]["range"] = c.range;
    r["started_unix_ms"] = 0;
    r["ended_unix_ms"] = 0;  // no wall-clock span: the data decide the time axis
    const std::string h = render_ok(r);
    ASSERT_FALSE(h.empty()) << c.name;
    const std::string svg = chart(h, "chart-0");
    const Plot p = plot_of(svg);
    auto lines = elements(svg, "series");
    ASSERT_EQ(lines.size(), 1u) << c.name;
    const auto pts = points(lines[0]["points"]);
    ASSERT_EQ(pts.size(), c.series.size()) << c.name;
    EXPECT_EQ(elements(svg, "series-dot").size(), pts.size() == 1 ? 1u : 0u) << c.name;
    for (const auto& pt : pts) {
      EXPECT_TRUE(std::isfinite(pt.x) && std::isfinite(pt.y)) << c.name;
      EXPECT_GE(pt.x, p.x) << c.name;
      EXPECT_LE(pt.x, p.x + p.w) << c.name;
      EXPECT_GE(pt.y, p.y) << c.name;
      EXPECT_LE(pt.y, p.y + p.h) << c.name;
    }
    if (pts.size() == 2 && c.series[0]["value"] != c.series[1]["value"]) {
      EXPECT_GT(std::fabs(pts[0].y - pts[1].y), 1) << c.name << ": different values, different heights";
    }
    for (const char* bad : {"nan", "inf", "NaN"}) {
      // Inside the chart only: the page's prose may say "info".
      EXPECT_EQ(svg.find(std::string("\"") + bad), std::string::npos) << c.name;
      EXPECT_EQ(svg.find(std::string(",") + bad), std::string::npos) << c.name;
      EXPECT_EQ(svg.find(std::string("-") + bad), std::string::npos) << c.name;
    }
  }
}

}  // namespace
}  // namespace fl::cli
