// The experiment report (the JSON that `faultctl run` writes, "format": 1) as one
// self-contained HTML page: verdict and reason, hypothesis, phases, one SVG chart per probe on a
// time axis shared by all charts (the statistic's series, its accepted range as a band, points
// out of range marked, fault windows shaded, the abort instant as a vertical line), the faults
// with their counters and the raw sample count per probe.
//
// Self-contained means a file that can be mailed or attached to a ticket: CSS and SVG inline,
// no script, no external resource. Every string from the report is HTML-escaped (names are
// user input).
//
// Stable hooks for tests and for anyone post-processing the page, in SVG user units:
//   svg.chart[data-probe][data-t-end-ms][data-v-lo][data-v-hi]  one per probe, same t_end in all
//   rect.plot-area          the plotting rectangle; time 0..t_end maps onto its width
//   rect.range-band[data-t0-ms][data-t1-ms]   the accepted range over [t0, t1) (an unbounded
//                           side reaches the plot's edge); one over the whole run, or, with a
//                           probe's `during` range, one before the method's window and one after
//   rect.during-band[data-t0-ms][data-t1-ms]  the `during` range over the method's window
//   polyline.series         one point per numeric series entry ("x,y" pairs); a null value
//                           splits the line, so a series may have several polylines
//   circle.out-of-range     one per series entry with in_range false
//   rect.fault-window[data-fault][data-start-ms][data-end-ms]   one per ended fault
//   line.abort-line[data-t-ms]   present when the report has an abort
//   #verdict[data-verdict]  the verdict banner
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace fl::cli {

// The page, or Errc::invalid_request naming the first missing or ill-typed field by its path
// in the report ("probes[1].series[4].t_ms: expected a number").
Result<std::string> render_report_html(const nlohmann::json& report);

// s with & < > " ' replaced by entities, invalid UTF-8 and control characters other than tab
// and newline replaced by U+FFFD: safe as element text and inside quoted attributes.
std::string html_escape(std::string_view s);

}  // namespace fl::cli
