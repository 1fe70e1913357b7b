// What a browser shows of the HTML report: headless Chromium lays the page out and a probe
// script (added here, the report itself has none) writes the boxes it measured into
// <pre id="layout">; --dump-dom prints the DOM after the script ran. Asserted: the verdict is
// visible, each fault window is drawn with a width at the horizontal fraction of the plot its
// times give, the abort line sits at its instant, the series lies inside the plot, and the page
// loaded no resource at all.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cli/report_html.h"
#include "report_svg.h"
#include "shell_util.h"

namespace fl::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kProbeScript = R"(<script>
(function () {
  function box(e) { var r = e.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; }
  var out = {resources: performance.getEntriesByType('resource').length, charts: []};
  var v = document.getElementById('verdict');
  out.verdict = {text: v.innerText, box: box(v), visibility: getComputedStyle(v).visibility, display: getComputedStyle(v).display};
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var c = {probe: svg.getAttribute('data-probe'), plot: box(svg.querySelector('.plot-area')), faults: [], series: [], aborts: []};
    var band = svg.querySelector('.range-band');
    c.band = band ? box(band) : null;
    svg.querySelectorAll('.fault-window').forEach(function (w) { c.faults.push({name: w.getAttribute('data-fault'), box: box(w)}); });
    svg.querySelectorAll('.fault-label').forEach(function (l) { c.label = box(l); });
    svg.querySelectorAll('polyline.series').forEach(function (p) {
      c.series.push({box: box(p), points: p.points.numberOfItems, stroke: getComputedStyle(p).stroke});
    });
    c.dots = [];
    svg.querySelectorAll('.series-dot').forEach(function (d) { c.dots.push(box(d)); });
    svg.querySelectorAll('.abort-line').forEach(function (a) { c.aborts.push(box(a)); });
    out.charts.push(c);
  });
  document.getElementById('layout').textContent = JSON.stringify(out);
})();
</script>
)";

std::string chromium() {
  if (const char* e = std::getenv("FL_CHROMIUM")) return e;
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"})
    if (test::have(c)) return c;
  return "";
}

std::string unescape_text(std::string s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      o += s[i];
      continue;
    }
    for (auto [ent, ch] : {std::pair{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&nbsp;", ' '}})
      if (s.compare(i, std::char_traits<char>::length(ent), ent) == 0) {
        o += ch;
        i += std::char_traits<char>::length(ent) - 1;
        goto next;
      }
    o += '&';
  next:;
  }
  return o;
}

class ReportInChromium : public ::testing::Test {
 protected:
  void SetUp() override {
    browser_ = chromium();
    // tools/setup installs it (REQUIRED): a missing browser is a broken setup, not a skip.
    ASSERT_FALSE(browser_.empty()) << "chromium not found; tools/setup installs the Debian package";
    dir_ = fs::temp_directory_path() / ("fl-report-chromium-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The layout the browser measured for this report's page.
  json layout_of(const json& report, const std::string& name) {
    auto html = render_report_html(report);
    EXPECT_TRUE(html.ok());
    if (!html.ok()) return nullptr;
    std::string page = *html;
    auto end = page.rfind("</body>");
    page.insert(end, std::string("<pre id=\"layout\" style=\"display:none\"></pre>\n") + kProbeScript);
    const fs::path file = dir_ / (name + ".html");
    std::ofstream(file) << page;

    // As root Chromium refuses to start without --no-sandbox; its profile and HOME live in the
    // temporary directory so nothing is left in the real home.
    const std::string cmd = "HOME=" + test::quote(dir_.string()) + " timeout 60 " + test::quote(browser_) +
                            " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                            " --user-data-dir=" + test::quote((dir_ / "profile").string()) +
                            " --window-size=1200,3000 --dump-dom " + test::quote("file://" + file.string());
    auto t0 = std::chrono::steady_clock::now();
    auto ran = test::run_shell(cmd);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "chromium --dump-dom " << name << ": " << ms << " ms\n";
    if (std::getenv("FL_KEEP_REPORT_LAYOUT")) std::cout << ran.out << "\n";
    EXPECT_EQ(ran.status, 0) << ran.out.substr(0, 2000);
    const std::string open = "<pre id=\"layout\" style=\"display:none\">";
    auto b = ran.out.find(open);
    auto e = b == std::string::npos ? b : ran.out.find("</pre>", b);
    EXPECT_NE(e, std::string::npos) << "no layout in the dumped DOM: " << ran.out.substr(0, 2000);
    if (e == std::string::npos) return nullptr;
    const std::string text = unescape_text(ran.out.substr(b + open.size(), e - b - open.size()));
    json j = json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "the probe script did not run: '" << text << "'";
    return j.is_discarded() ? json(nullptr) : j;
  }

  std::string browser_;
  fs::path dir_;
};

double f(const json& box, const char* k) { return box.at(k).get<double>(); }

void expect_verdict_shown(const json& l, const std::string& text) {
  const json& v = l.at("verdict");
  EXPECT_EQ(v.at("text"), text);
  EXPECT_EQ(v.at("visibility"), "visible");
  EXPECT_NE(v.at("display"), "none");
  EXPECT_GT(f(v.at("box"), "width"), 200);
  EXPECT_GT(f(v.at("box"), "height"), 20) << "a prominent banner";
  EXPECT_EQ(l.at("resources"), 0) << "the page fetched something";
}

// The fault window's left edge and width as fractions of the plot's width.
void expect_window_at(const json& chart, const std::string& fault, double from, double to, double t_end) {
  const json& plot = chart.at("plot");
  ASSERT_GT(f(plot, "width"), 300);
  bool found = false;
  for (const auto& w : chart.at("faults")) {
    if (w.at("name") != fault) continue;
    found = true;
    const json& b = w.at("box");
    // Within a pixel of where the times put it (the box leaves the stroke out).
    EXPECT_NEAR(f(b, "left"), f(plot, "left") + f(plot, "width") * from / t_end, 1) << fault;
    EXPECT_NEAR(f(b, "width"), f(plot, "width") * (to - from) / t_end, 1) << fault;
    EXPECT_GT(f(b, "width"), 10) << fault;
    EXPECT_NEAR(f(b, "height"), f(plot, "height"), 1.5) << "full height";
  }
  EXPECT_TRUE(found) << fault << " not drawn in " << chart.at("probe");
}

void expect_series_inside_plot(const json& chart, size_t points) {
  const json& plot = chart.at("plot");
  size_t n = 0;
  for (const auto& s : chart.at("series")) {
    const json& b = s.at("box");
    n += s.at("points").get<size_t>();
    EXPECT_GE(f(b, "left"), f(plot, "left") - 2) << chart.at("probe");
    EXPECT_LE(f(b, "left") + f(b, "width"), f(plot, "left") + f(plot, "width") + 2);
    EXPECT_GE(f(b, "top"), f(plot, "top") - 2);
    EXPECT_LE(f(b, "top") + f(b, "height"), f(plot, "top") + f(plot, "height") + 2);
    if (s.at("points") > 1) {
      EXPECT_GT(f(b, "width"), 10) << "the line is drawn across time";
    }
    EXPECT_NE(s.at("stroke"), "none");
  }
  EXPECT_EQ(n, points) << chart.at("probe");
}

TEST_F(ReportInChromium, HeldReport) {
  const json r = test::load_report("report-held.json");
  const json l = layout_of(r, "held");
  ASSERT_TRUE(l.is_object());
  expect_verdict_shown(l, "Hypothesis held");
  ASSERT_EQ(l.at("charts").size(), 2u);
  double left = -1;
  for (size_t i = 0; i < 2; ++i) {
    const json& c = l.at("charts")[i];
    EXPECT_EQ(c.at("probe"), r["probes"][i]["name"]);
    expect_window_at(c, "split", 5003, 15004, 30000);
    expect_series_inside_plot(c, r["probes"][i]["series"].size());
    EXPECT_GT(f(c.at("label"), "width"), 10) << "the fault's name is written";
    EXPECT_GT(f(c.at("band"), "height"), 5);
    EXPECT_TRUE(c.at("aborts").empty());
    // Time is shared: the plots line up.
    if (left >= 0) {
      EXPECT_NEAR(f(c.at("plot"), "left"), left, 0.5);
    }
    left = f(c.at("plot"), "left");
  }
  // delivery-p50's band spans 10..40 of a domain that must hold values from 10 to 40 only,
  // so it fills most of the plot; connect-b's band (max 50 ms, values near 1-4 ms) reaches
  // the bottom.
  const json& c1 = l.at("charts")[1];
  EXPECT_NEAR(f(c1.at("band"), "top") + f(c1.at("band"), "height"), f(c1.at("plot"), "top") + f(c1.at("plot"), "height"), 1);
}

TEST_F(ReportInChromium, AbortedReport) {
  const json r = test::load_report("report-aborted.json");
  const json l = layout_of(r, "aborted");
  ASSERT_TRUE(l.is_object());
  expect_verdict_shown(l, "Experiment aborted");
  ASSERT_EQ(l.at("charts").size(), 2u);
  for (const auto& c : l.at("charts")) {
    expect_window_at(c, "crawl", 4002, 8004, 12000);
    ASSERT_EQ(c.at("faults").size(), 1u) << "a fault that never started has no window";
    ASSERT_EQ(c.at("aborts").size(), 1u);
    const json& a = c.at("aborts")[0];
    const json& plot = c.at("plot");
    EXPECT_NEAR(f(a, "left") + f(a, "width") / 2, f(plot, "left") + f(plot, "width") * 8000 / 12000, 1);
    EXPECT_NEAR(f(a, "height"), f(plot, "height"), 1.5);
  }
  size_t numeric = 0;
  for (const auto& e : r["probes"][0]["series"]) numeric += e["value"].is_number();
  expect_series_inside_plot(l.at("charts")[0], numeric);
  // The lone value after the gap shows as a dot, inside the plot.
  const json& c0 = l.at("charts")[0];
  ASSERT_EQ(c0.at("dots").size(), 1u);
  const json& dot = c0.at("dots")[0];
  EXPECT_GT(f(dot, "width"), 3);
  EXPECT_GT(f(dot, "left"), f(c0.at("plot"), "left"));
  EXPECT_LT(f(dot, "left") + f(dot, "width"), f(c0.at("plot"), "left") + f(c0.at("plot"), "width"));
  EXPECT_TRUE(l.at("charts")[1].at("series").empty());
}

}  // namespace
}  // namespace fl::cli
