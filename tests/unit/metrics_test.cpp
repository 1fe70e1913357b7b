// The Prometheus text faultlined serves, from known values, and the --metrics address parser.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "daemon/events.h"
#include "daemon/metrics.h"
#include "daemon/metrics_http.h"

namespace fl::daemon {
namespace {

using metrics::escape_help;
using metrics::escape_label_value;
using metrics::format_double;

TEST(MetricsEscape, LabelValueEscapesBackslashQuoteAndNewlineOnly) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd\te\r"), "a\\\"b\\\\c\\nd\te\r");
  EXPECT_EQ(escape_label_value(std::string_view("nul\0x", 5)), std::string("nul\0x", 5));
}

TEST(MetricsEscape, HelpLeavesQuotesAlone) {
  EXPECT_EQ(escape_help("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
}

TEST(MetricsEscape, ValidUtf8IsKept) {
  EXPECT_EQ(escape_label_value("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(escape_label_value("\xEF\xBF\xBF\xF4\x8F\xBF\xBF"), "\xEF\xBF\xBF\xF4\x8F\xBF\xBF");  // U+FFFF, U+10FFFF
}

TEST(MetricsEscape, InvalidUtf8BecomesOneReplacementPerByte) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(escape_label_value("a\xFF" "b"), "a" + r + "b");
  EXPECT_EQ(escape_label_value("\xC0\xAF"), r + r);                  // overlong '/'
  EXPECT_EQ(escape_label_value("\xED\xA0\x80"), r + r + r);          // UTF-16 surrogate
  EXPECT_EQ(escape_label_value("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(escape_label_value("x\xE2\x82"), "x" + r + r);           // cut short at the end
  EXPECT_EQ(escape_label_value("\xE2\x82\"q"), r + r + "\\\"q");     // cut short before an ASCII byte
  EXPECT_EQ(escape_help("\x80"), r);
}

TEST(MetricsFormat, DoublesReadBackExactly) {
  EXPECT_EQ(format_double(0), "0");
  EXPECT_EQ(format_double(0.001), "0.001");
  EXPECT_EQ(format_double(2.5), "2.5");
  EXPECT_EQ(format_double(10), "10");
  EXPECT_EQ(format_double(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(format_double(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_double(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_double(0.0 / 0.0), "NaN");
}

TEST(MetricsHistogram, ValueOnABoundCountsInThatBucket) {
  metrics::Histogram h({0.1, 1});
  h.observe(0.1);
  h.observe(0.5);
  h.observe(1);
  h.observe(7);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 8.6);
}

TEST(MetricsHistogram, ApplyBucketsSpanOneMillisecondToTenSeconds) {
  auto b = metrics::apply_latency_buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 0.001);
  EXPECT_EQ(b.back(), 10.0);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
}

Event ev(EventType t, std::string kind, uint64_t ns = 0, std::string code = "") {
  Event e;
  e.type = t;
  e.kind = std::move(kind);
  e.duration_ns = ns;
  e.code = std::move(code);
  return e;
}

TEST(MetricsEvents, CountsEveryTypeByItsLabels) {
  metrics::EventCounts c;
  c.on(ev(EventType::applied, "loss", 3'000'000));
  c.on(ev(EventType::applied, "loss", 20'000'000));
  c.on(ev(EventType::applied, "delay", 1'500'000'000));
  c.on(ev(EventType::healed, "loss"));
  c.on(ev(EventType::expired, "loss"));
  c.on(ev(EventType::gone, "delay"));
  c.on(ev(EventType::refused, "apply", 0, "invalid_argument"));
  c.on(ev(EventType::refused, "apply", 0, "invalid_argument"));
  c.on(ev(EventType::refused, "heal", 0, "not_found"));
  c.on(ev(EventType::lease_late, "", 9'000'000'000));
  EXPECT_EQ(c.applied, (std::map<std::string, uint64_t>{{"delay", 1}, {"loss", 2}}));
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(c.ended, (std::map<P, uint64_t>{{{"delay", "gone"}, 1}, {{"loss", "expired"}, 1}, {{"loss", "healed"}, 1}}));
  EXPECT_EQ(c.refused, (std::map<P, uint64_t>{{{"apply", "invalid_argument"}, 2}, {{"heal", "not_found"}, 1}}));
  EXPECT_EQ(c.lease_late, 1u);
  EXPECT_EQ(c.apply_seconds.count(), 3u);  // only applies are timed
  EXPECT_DOUBLE_EQ(c.apply_seconds.sum(), 1.523);
}

TEST(MetricsRender, KnownValuesGiveExactlyThisText) {
  metrics::EventCounts counts;
  counts.on(ev(EventType::applied, "loss", 1'000'000));   // on the 1 ms bound
  counts.on(ev(EventType::applied, "loss", 30'000'000));  // 0.05 bucket
  counts.on(ev(EventType::applied, "delay", 12'000'000'000));  // above 10 s: +Inf only
  counts.on(ev(EventType::expired, "loss"));
  counts.on(ev(EventType::refused, "apply", 0, "kernel_unsupported"));
  counts.on(ev(EventType::lease_late, ""));

  metrics::Snapshot s;
  s.faults = nlohmann::json::parse(R"([
    {"id": 7, "name": "we\"ird\\name\nx", "kind": "loss",
     "per_target": [
       {"target": "netns:a", "counters": {"matched": 10, "dropped": 4, "shaped": 0, "exempted": 1}},
       {"target": "netns:b", "counters": {"matched": 18446744073709551615, "dropped": 0, "shaped": 2, "exempted": 0}}
     ]}
  ])");
  s.faults[0]["name"] = std::string("we\"ird\\name\nx\xFF");
  s.events = &counts;
  s.lease_seconds = 15;
  s.lease_remaining_seconds = 12.5;
  s.datapath = {{"seen", "Packets seen.", 123}, {"lease_expired", "While the lease was out.", 0}};
  s.features = {{"tcx", "yes"}, {"netem", "unknown"}};
  s.kernel_release = "6.18.0-test";
  s.attach_mode = "tcx";
  s.faults_active = 1;
  s.clients = 3;

  const std::string name = "we\\\"ird\\\\name\\nx\xEF\xBF\xBD";
  const std::string a = "{id=\"7\",name=\"" + name + "\",kind=\"loss\",target=\"netns:a\"}";
  const std::string b = "{id=\"7\",name=\"" + name + "\",kind=\"loss\",target=\"netns:b\"}";
  const std::string want =
      "# HELP faultline_fault_matched_packets_total Packets an active fault matched, per target (before its "
      "probability and exemptions).\n"
      "# TYPE faultline_fault_matched_packets_total counter\n"
      "faultline_fault_matched_packets_total" + a + " 10\n"
      "faultline_fault_matched_packets_total" + b + " 18446744073709551615\n"
      "# HELP faultline_fault_dropped_packets_total Packets an active fault dropped, per target.\n"
      "# TYPE faultline_fault_dropped_packets_total counter\n"
      "faultline_fault_dropped_packets_total" + a + " 4\n"
      "faultline_fault_dropped_packets_total" + b + " 0\n"
      "# HELP faultline_fault_shaped_packets_total Packets an active fault handed to its shaping class or ifb, "
      "per target.\n"
      "# TYPE faultline_fault_shaped_packets_total counter\n"
      "faultline_fault_shaped_packets_total" + a + " 0\n"
      "faultline_fault_shaped_packets_total" + b + " 2\n"
      "# HELP faultline_fault_exempted_packets_total Packets an active fault matched but let through because an "
      "exemption covers them, per target.\n"
      "# TYPE faultline_fault_exempted_packets_total counter\n"
      "faultline_fault_exempted_packets_total" + a + " 1\n"
      "faultline_fault_exempted_packets_total" + b + " 0\n"
      "# HELP faultline_faults_active Faults active now.\n"
      "# TYPE faultline_faults_active gauge\n"
      "faultline_faults_active 1\n"
      "# HELP faultline_faults_applied_total Faults switched on since the daemon started, by kind.\n"
      "# TYPE faultline_faults_applied_total counter\n"
      "faultline_faults_applied_total{kind=\"delay\"} 1\n"
      "faultline_faults_applied_total{kind=\"loss\"} 2\n"
      "# HELP faultline_faults_ended_total Faults ended since the daemon started, by kind and how: healed (on "
      "request or at shutdown), expired (their time was up) or gone (every target went away).\n"
      "# TYPE faultline_faults_ended_total counter\n"
      "faultline_faults_ended_total{kind=\"loss\",how=\"expired\"} 1\n"
      "# HELP faultline_requests_refused_total Mutating requests answered with an error since the daemon "
      "started, by op and error code.\n"
      "# TYPE faultline_requests_refused_total counter\n"
      "faultline_requests_refused_total{op=\"apply\",code=\"kernel_unsupported\"} 1\n"
      "# HELP faultline_apply_duration_seconds Time an apply took, from the request to every target switched "
      "on.\n"
      "# TYPE faultline_apply_duration_seconds histogram\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.001\"} 1\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.0025\"} 1\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.005\"} 1\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.01\"} 1\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.025\"} 1\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.05\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.1\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.25\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"0.5\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"1\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"2.5\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"5\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"10\"} 2\n"
      "faultline_apply_duration_seconds_bucket{le=\"+Inf\"} 3\n"
      "faultline_apply_duration_seconds_sum 12.031\n"
      "faultline_apply_duration_seconds_count 3\n"
      "# HELP faultline_lease_late_renewals_total Lease renewals that came later than planned (the daemon did not "
      "run); past the whole lease every fault was off meanwhile.\n"
      "# TYPE faultline_lease_late_renewals_total counter\n"
      "faultline_lease_late_renewals_total 1\n"
      "# HELP faultline_lease_seconds The configured kernel lease: every fault turns off if the daemon stops "
      "renewing it for this long.\n"
      "# TYPE faultline_lease_seconds gauge\n"
      "faultline_lease_seconds 15\n"
      "# HELP faultline_lease_remaining_seconds Time until the kernel lease runs out unless renewed (renewed "
      "every third of the lease).\n"
      "# TYPE faultline_lease_remaining_seconds gauge\n"
      "faultline_lease_remaining_seconds 12.5\n"
      "# HELP faultline_datapath_seen_packets_total Packets seen.\n"
      "# TYPE faultline_datapath_seen_packets_total counter\n"
      "faultline_datapath_seen_packets_total 123\n"
      "# HELP faultline_datapath_lease_expired_packets_total While the lease was out.\n"
      "# TYPE faultline_datapath_lease_expired_packets_total counter\n"
      "faultline_datapath_lease_expired_packets_total 0\n"
      "# HELP faultline_kernel_feature_info Kernel features probed at start: one series per feature, state yes, "
      "no or unknown (the probe failed).\n"
      "# TYPE faultline_kernel_feature_info gauge\n"
      "faultline_kernel_feature_info{feature=\"tcx\",state=\"yes\"} 1\n"
      "faultline_kernel_feature_info{feature=\"netem\",state=\"unknown\"} 1\n"
      "# HELP faultline_daemon_info The data path's attach mode (tcx or tc) and the kernel release.\n"
      "# TYPE faultline_daemon_info gauge\n"
      "faultline_daemon_info{attach_mode=\"tcx\",kernel_release=\"6.18.0-test\"} 1\n"
      "# HELP faultline_clients_connected Clients connected to the control socket.\n"
      "# TYPE faultline_clients_connected gauge\n"
      "faultline_clients_connected 3\n";
  EXPECT_EQ(metrics::render(s), want);
}

TEST(MetricsRender, NoFaultsStillDeclaresEveryFamily) {
  metrics::Snapshot s;
  const std::string text = metrics::render(s);
  EXPECT_NE(text.find("# TYPE faultline_fault_dropped_packets_total counter\n"
                      "# HELP faultline_fault_shaped_packets_total"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("faultline_fault_dropped_packets_total{"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

// ---- --metrics ADDR:PORT ----

TEST(MetricsAddress, AcceptsNumericIPv4AndBracketedIPv6) {
  struct Case {
    const char* in;
    const char* str;
    int family;
  } cases[] = {
      {"127.0.0.1:9464", "127.0.0.1:9464", AF_INET},
      {"0.0.0.0:1", "0.0.0.0:1", AF_INET},
      {"[::1]:9464", "[::1]:9464", AF_INET6},
      {"[::]:65535", "[::]:65535", AF_INET6},
      {"[fd00:200:0::0001]:80", "[fd00:200::1]:80", AF_INET6},
  };
  for (const auto& c : cases) {
    auto r = parse_listen_address(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().message;
    EXPECT_EQ(r->str(), c.str);
    EXPECT_EQ(r->ss.ss_family, c.family) << c.in;
    EXPECT_EQ(r->len, c.family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)) << c.in;
  }
}

TEST(MetricsAddress, RefusesWithTheReason) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"", "no port"},
      {"127.0.0.1", "no port"},
      {"9464", "no port"},
      {":9464", "\"\" is not an IPv4 address"},
      {"localhost:9464", "\"localhost\" is not an IPv4 address (names are not resolved)"},
      {"127.1:9464", "\"127.1\" is not an IPv4 address"},
      {"256.0.0.1:9464", "\"256.0.0.1\" is not an IPv4 address"},
      {"127.0.0.1:", "port \"\" is not 1-65535"},
      {"127.0.0.1:0", "port \"0\" is not 1-65535"},
      {"127.0.0.1:65536", "port \"65536\" is not 1-65535"},
      {"127.0.0.1:+80", "port \"+80\" is not 1-65535"},
      {"127.0.0.1:080a", "port \"080a\" is not 1-65535"},
      {"127.0.0.1:9464 ", "port \"9464 \" is not 1-65535"},
      {"127.0.0.1:000009464", "port \"000009464\" is not 1-65535"},
      {"::1:9464", "an IPv6 address needs brackets"},
      {"[::1]", "no :PORT after ']'"},
      {"[::1]9464", "no :PORT after ']'"},
      {"[::1:9464", "no ']'"},
      {"[127.0.0.1]:9464", "\"127.0.0.1\" is not an IPv6 address"},
      {"[fe80::1%eth0]:9464", "zone indices"},
  };
  for (const auto& c : cases) {
    auto r = parse_listen_address(c.in);
    ASSERT_FALSE(r.ok()) << "accepted \"" << c.in << "\"";
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find(c.why), std::string::npos) << c.in << " -> " << r.error().message;
    EXPECT_NE(r.error().message.find(std::string("\"") + c.in + "\""), std::string::npos)
        << "the message should quote the value: " << r.error().message;
  }
}

}  // namespace
}  // namespace fl::daemon
