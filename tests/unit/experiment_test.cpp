// Experiment files (`faultctl run FILE`): a good file read into the model, every bad input
// refused with its line and field before anything is contacted, and the --dry-run plan.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

#include "cli/experiment.h"
#include "cli/experiment_run.h"
#include "protocol/protocol.h"

namespace fl::cli {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Line numbers in the expectations below count from "name:" as line 1.
const char* kGood = R"(name: other-pair-split
hypothesis: "a partition of c and d leaves a -> b connections alone"
steady_state: {duration: 4s}
probes:
  - name: connect-b
    kind: tcp
    address: 10.200.0.2:7000
    interval: 200ms
    timeout: 150ms
    statistic: success_rate
    window: 5
    range: {min: 0.95}
  - name: web
    kind: http
    url: http://10.200.0.2:8080/health?x=1
    status: 204
    statistic: p99
    range: {max: 250}
  - name: depth
    kind: exec
    argv: [sh, -c, "echo 3"]
    interval: 1s
    statistic: value
    range: {min: 0, max: 10}
  - name: clients
    kind: prometheus
    server: "http://[fd00:200::9]:9090"
    query: sum(chat_clients)
    statistic: value
    range: {min: 5, max: null}
method:
  faults:
    - name: split
      cli: "partition --side 10.200.0.3 --side '10.200.0.4' --target netns:lab-c"
      start: 500ms
      duration: 3s
    - name: slow
      cli: [delay, 50ms, --dst, 10.200.0.1, --target, netns:lab-a]
      duration: 2s
  duration: 5s
abort:
  - {probe: connect-b, samples: 3}
  - {probe: web, for: 2s}
blast_radius: {max_targets: 1}
recovery: {within: 4s}
)";

TEST(Experiment, GoodFileIsReadIntoTheModel) {
  auto r = parse_experiment(kGood, "x.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Experiment& e = *r;
  EXPECT_EQ(e.name, "other-pair-split");
  EXPECT_EQ(e.file, "x.yaml");
  EXPECT_EQ(e.steady_state, 4s);
  ASSERT_EQ(e.probes.size(), 4u);
  EXPECT_EQ(e.probes[0].kind, ProbeKind::tcp);
  EXPECT_EQ(e.probes[0].host, "10.200.0.2");
  EXPECT_EQ(e.probes[0].port, 7000);
  EXPECT_EQ(e.probes[0].interval, 200ms);
  EXPECT_EQ(e.probes[0].timeout, 150ms);
  EXPECT_EQ(e.probes[0].unit(), "ratio");
  EXPECT_EQ(*e.probes[0].range.min, 0.95);
  EXPECT_FALSE(e.probes[0].range.max);
  EXPECT_EQ(e.probes[1].http.host, "10.200.0.2");
  EXPECT_EQ(e.probes[1].http.port, 8080);
  EXPECT_EQ(e.probes[1].http.path, "/health?x=1");
  EXPECT_EQ(e.probes[1].status, 204);
  EXPECT_EQ(e.probes[1].statistic, Statistic::p99);
  EXPECT_EQ(e.probes[1].unit(), "ms");
  EXPECT_EQ(e.probes[1].timeout, 1s);  // default: min(interval, 1s)
  EXPECT_EQ(e.probes[2].argv, (std::vector<std::string>{"sh", "-c", "echo 3"}));
  EXPECT_EQ(e.probes[2].window, 1u);  // value defaults to the latest sample
  EXPECT_TRUE(e.probes[3].server_url.v6);
  EXPECT_EQ(e.probes[3].server_url.host, "fd00:200::9");
  EXPECT_EQ(e.probes[3].server_url.port, 9090);
  EXPECT_EQ(e.probes[3].query, "sum(chat_clients)");

  ASSERT_EQ(e.faults.size(), 2u);
  const auto& split = e.faults[0];
  EXPECT_EQ(split.spec.kind, core::FaultKind::partition);
  EXPECT_EQ(split.spec.name, "split");
  EXPECT_EQ(split.spec.duration, 3s);
  EXPECT_EQ(split.start, 500ms);
  ASSERT_EQ(split.spec.sides.size(), 2u);
  ASSERT_EQ(split.spec.targets.size(), 1u);
  EXPECT_EQ(proto::fault_spec_to_json(split.spec)["targets"][0], "netns:lab-c");
  EXPECT_EQ(e.faults[1].spec.kind, core::FaultKind::delay);
  EXPECT_EQ(e.faults[1].cli, "delay 50ms --dst 10.200.0.1 --target netns:lab-a");
  // The CLI's own default applies: shaping acts on egress unless told otherwise.
  EXPECT_EQ(e.faults[1].spec.match.direction, core::Direction::egress);
  EXPECT_EQ(e.method_duration, 5s);
  ASSERT_EQ(e.aborts.size(), 2u);
  EXPECT_EQ(e.aborts[0].samples, 3u);
  EXPECT_EQ(e.aborts[0].describe(), "3 samples out of range");
  EXPECT_EQ(e.aborts[1].for_time, 2s);
  EXPECT_EQ(e.recovery_within, 4s);
}

TEST(Experiment, MethodDurationDefaultsToTheEndOfTheLastFault) {
  std::string text = kGood;
  text.replace(text.find("  duration: 5s\n"), 15, "");
  auto r = parse_experiment(text, "x.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->method_duration, 3500ms);
}

// Replaces the first occurrence of `from` in kGood with `to` (`from` must be there).
std::string with(const std::string& from, const std::string& to) {
  std::string text = kGood;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string with2(const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
  std::string text = with(a, b);
  const size_t at = text.find(c);
  EXPECT_NE(at, std::string::npos) << c;
  if (at != std::string::npos) text.replace(at, c.size(), d);
  return text;
}

// kGood with "method:" holding an empty list of faults.
std::string without_method_faults() {
  std::string text = kGood;
  const size_t from = text.find("method:\n"), to = text.find("abort:\n");
  text.replace(from, to - from, "method:\n  faults: []\n");
  return text;
}

struct Bad {
  std::string name, text, error;  // error: the whole message
};

TEST(Experiment, BadFilesAreRefusedWithLineAndField) {
  const std::vector<Bad> cases = {
      {"syntax", "name: [x\n", "x.yaml:2:1: not valid YAML: end of sequence flow not found"},
      {"empty", "", "x.yaml: empty; expected an experiment (see docs/EXPERIMENTS.md)"},
      {"unknown top key", with("recovery:", "recover:"),
       "x.yaml:45: top level: unknown key \"recover\"; expected one of name, hypothesis, steady_state, probes, "
       "method, abort, blast_radius, recovery"},
      {"missing recovery", with("recovery: {within: 4s}\n", ""), "x.yaml:1: top level: missing key \"recovery\""},
      {"bad name", with("name: other-pair-split", "name: other pair"),
       "x.yaml:1: name: invalid experiment name \"other pair\": character \" \" at position 6 is not allowed; use "
       "letters, digits, '_', '.' and '-'"},
      {"empty hypothesis",
       with("hypothesis: \"a partition of c and d leaves a -> b connections alone\"", "hypothesis: \"\""),
       "x.yaml:2: hypothesis: empty; state what you expect to hold"},
      {"unknown kind", with("kind: tcp", "kind: udp"),
       "x.yaml:6: probes[0].kind: unknown probe kind \"udp\"; expected tcp, http, exec or prometheus"},
      {"key of another kind",
       with("    address: 10.200.0.2:7000\n", "    address: 10.200.0.2:7000\n    url: http://10.200.0.2/\n"),
       "x.yaml:8: probes[0].url: only for http probes, not tcp"},
      {"tcp without port", with("address: 10.200.0.2:7000", "address: 10.200.0.2"),
       "x.yaml:7: probes[0].address: expected HOST:PORT, got \"10.200.0.2\" (no port)"},
      {"tcp name", with("address: 10.200.0.2:7000", "address: db.local:7000"),
       "x.yaml:7: probes[0].address: \"db.local\" is not a numeric IPv4 address (probes do not resolve names)"},
      {"tcp bad port", with("address: 10.200.0.2:7000", "address: 10.200.0.2:70000"),
       "x.yaml:7: probes[0].address: port \"70000\": expected 1 to 65535"},
      {"https", with("url: http://10.200.0.2:8080/health?x=1", "url: https://10.200.0.2/"),
       "x.yaml:15: probes[1].url: expected an http:// URL, got \"https://10.200.0.2/\" (https is not supported)"},
      {"http name", with("url: http://10.200.0.2:8080/health?x=1", "url: http://web/"),
       "x.yaml:15: probes[1].url: \"web\" is not a numeric IP address (probes do not resolve names)"},
      {"http status", with("status: 204", "status: 42"),
       "x.yaml:16: probes[1].status: expected a whole number from 100 to 599, got \"42\""},
      {"exec argv string", with("argv: [sh, -c, \"echo 3\"]", "argv: echo 3"),
       "x.yaml:21: probes[2].argv: expected a list of words (no shell: [sh, -c, \"...\"] for one), got a scalar"},
      {"prometheus path", with("server: \"http://[fd00:200::9]:9090\"", "server: http://10.200.0.9:9090/api"),
       "x.yaml:27: probes[3].server: give the server's base URL (http://HOST:PORT), without a path"},
      {"unknown statistic", with("statistic: p99", "statistic: p90"),
       "x.yaml:17: probes[1].statistic: unknown statistic \"p90\"; expected success_rate, p50, p95, p99 or value"},
      {"interval too short", with("interval: 200ms", "interval: 10ms"),
       "x.yaml:8: probes[0].interval: 10ms is out of bounds (50ms to 1h)"},
      {"bad duration", with("interval: 200ms", "interval: fast"),
       "x.yaml:8: probes[0].interval: invalid duration \"fast\": expected a number at \"fast\""},
      {"window zero", with("window: 5", "window: 0"),
       "x.yaml:11: probes[0].window: expected a whole number from 1 to 1000, got \"0\""},
      {"missing range", with("    range: {max: 250}\n", ""), "x.yaml:13: probes[1]: missing key \"range\""},
      {"empty range", with("range: {max: 250}", "range: {}"), "x.yaml:18: probes[1].range: give min, max or both"},
      {"range inverted", with("range: {min: 0, max: 10}", "range: {min: 10, max: 1}"),
       "x.yaml:24: probes[2].range: min 10.0 is above max 1.0"},
      {"range not a number", with("range: {max: 250}", "range: {max: 250ms}"),
       "x.yaml:18: probes[1].range.max: expected a number, got \"250ms\""},
      {"success rate in percent", with("range: {min: 0.95}", "range: {min: 95}"),
       "x.yaml:12: probes[0].range: a success_rate is a ratio from 0 to 1 (0.95 is 95%)"},
      {"duplicate probe", with("name: web", "name: connect-b"),
       "x.yaml:13: probes[1].name: probe \"connect-b\" given twice"},
      {"steady state too short", with("steady_state: {duration: 4s}", "steady_state: {duration: 500ms}"),
       "x.yaml:3: steady_state.duration: 500ms is too short for probe \"connect-b\" (5 samples every 200ms need "
       "800ms)"},
      {"fault not a command", with("cli: \"partition --side", "cli: \"list --side"),
       "x.yaml:34: method.faults[0].cli: list: unrecognised option '--side'"},
      {"fault global option", with("cli: \"partition --side", "cli: \"--socket /x partition --side"),
       "x.yaml:34: method.faults[0].cli: starts with \"--socket\"; expected a fault command (partition, loss, isolate, "
       "delay, rate, corrupt, duplicate, reorder, shape, matrix)"},
      {"fault read-only command",
       with("cli: \"partition --side 10.200.0.3 --side '10.200.0.4' --target netns:lab-c\"", "cli: status"),
       "x.yaml:34: method.faults[0].cli: \"status\" is not a fault command; expected partition, loss, isolate, delay, "
       "rate, corrupt, duplicate, reorder, shape or matrix"},
      {"fault bad cidr (the CLI's own validation)", with("--side 10.200.0.3 ", "--side 10.200.0.300 "),
       "x.yaml:34: method.faults[0].cli: --side: invalid side 1 \"10.200.0.300\": invalid CIDR \"10.200.0.300\": bad "
       "IPv4 address"},
      {"fault one side", with("--side '10.200.0.4' ", ""),
       "x.yaml:34: method.faults[0].cli: --side: partition needs at least 2 sides (got 1)"},
      {"fault --for", with("--target netns:lab-c\"", "--target netns:lab-c --for 1m\""),
       "x.yaml:34: method.faults[0].cli: --for is set by the experiment (the fault's duration field); leave it out"},
      {"fault --name", with("--target netns:lab-c\"", "--target netns:lab-c --name=x\""),
       "x.yaml:34: method.faults[0].cli: --name is set by the experiment (the fault's name field); leave it out"},
      {"fault quote", with("'10.200.0.4'", "'10.200.0.4"), "x.yaml:34: method.faults[0].cli: unterminated ' quote"},
      {"fault duration missing", with("      duration: 3s\n", ""),
       "x.yaml:33: method.faults[0]: missing key \"duration\""},
      {"fault duration too short", with("duration: 3s", "duration: 50ms"),
       "x.yaml:36: method.faults[0].duration: 50ms is out of bounds (100ms to 7d)"},
      {"blast radius", with("--target netns:lab-c\"", "--target netns:lab-c --target netns:lab-d\""),
       "x.yaml:34: method.faults[0].cli: 2 targets, more than blast_radius.max_targets (1)"},
      {"blast radius default is one target",
       with2("blast_radius: {max_targets: 1}\n", "", "--target netns:lab-c\"", "--target netns:lab-c --target host\""),
       "x.yaml:34: method.faults[0].cli: 2 targets, more than blast_radius.max_targets (1)"},
      {"duplicate fault", with("name: slow", "name: split"),
       "x.yaml:37: method.faults[1].name: fault \"split\" given twice"},
      {"method ends before the faults", with("  duration: 5s\n", "  duration: 3s\n"),
       "x.yaml:40: method.duration: 3s ends before the last fault does (3s500ms)"},
      {"unknown method key", with("  duration: 5s\n", "  duration: 5s\n  old: 1\n"),
       "x.yaml:41: method: unknown key \"old\"; expected one of faults, duration"},
      {"no faults", without_method_faults(),
       "x.yaml:32: method.faults: expected a list of at least one fault, got an empty list"},
      {"abort unknown probe", with("{probe: connect-b, samples: 3}", "{probe: connect-c, samples: 3}"),
       "x.yaml:42: abort[0].probe: no probe named \"connect-c\""},
      {"abort both kinds", with("{probe: connect-b, samples: 3}", "{probe: connect-b, samples: 3, for: 1s}"),
       "x.yaml:42: abort[0]: give one of samples (N consecutive samples out of range) or for (out of range this long)"},
      {"key twice", with("    interval: 200ms\n", "    interval: 200ms\n    interval: 300ms\n"),
       "x.yaml:9: probes[0].interval: given twice"},
  };
  for (const auto& c : cases) {
    auto r = parse_experiment(c.text, "x.yaml");
    if (r.ok()) {
      ADD_FAILURE() << c.name << ": accepted";
      continue;
    }
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << c.name;
    EXPECT_EQ(r.error().message, c.error) << c.name;
  }
}

TEST(Experiment, DuringRangeIsReadAndShownInThePlan) {
  auto e = parse_experiment(with("range: {min: 0.95}", "range: {min: 0.95}\n    during: {min: 0.5, after: 400ms}"),
                            "x.yaml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->probes[0].during.has_value());
  EXPECT_EQ(*e->probes[0].during->min, 0.5);
  EXPECT_FALSE(e->probes[0].during->max);
  EXPECT_EQ(e->probes[0].during_after, 400ms);
  EXPECT_EQ(*e->probes[0].range.min, 0.95) << "range is kept for the steady state and the recovery";
  EXPECT_FALSE(e->probes[1].during.has_value()) << "absent: the probe has one range";
  EXPECT_NE(format_plan(*e).find("in [0.95, +inf] ratio; while the method runs in [0.5, +inf] (from 400ms after the "
                                 "first fault)\n"),
            std::string::npos)
      << format_plan(*e);
  auto plain = parse_experiment(with("range: {max: 250}", "range: {max: 250}\n    during: {max: 1000}"), "x.yaml");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->probes[1].during_after, 0ms);
}

TEST(Experiment, BadDuringRangesAreRefusedWithLineAndField) {
  auto during = [](const std::string& d) { return with("range: {min: 0.95}", "range: {min: 0.95}\n    " + d); };
  const std::vector<Bad> cases = {
      {"not a map", during("during: 0"),
       "x.yaml:13: probes[0].during: expected a map {min: X, max: Y, after: DURATION}, got a scalar"},
      {"no bound", during("during: {after: 1s}"), "x.yaml:13: probes[0].during: give min, max or both"},
      {"inverted", during("during: {min: 0.9, max: 0.1}"), "x.yaml:13: probes[0].during: min 0.9 is above max 0.1"},
      {"not a number", during("during: {max: none}"),
       "x.yaml:13: probes[0].during.max: expected a number, got \"none\""},
      {"success rate in percent", during("during: {min: 50}"),
       "x.yaml:13: probes[0].during: a success_rate is a ratio from 0 to 1 (0.95 is 95%)"},
      {"bad after", during("during: {max: 0.5, after: soon}"),
       "x.yaml:13: probes[0].during.after: invalid duration \"soon\": expected a number at \"soon\""},
      {"after too long", during("during: {max: 0.5, after: 2h}"),
       "x.yaml:13: probes[0].during.after: 2h is out of bounds (0ms to 1h)"},
      {"unknown key", during("during: {max: 0.5, until: 1s}"),
       "x.yaml:13: probes[0].during: unknown key \"until\"; expected one of min, max, after"},
      {"after in range", with("range: {min: 0.95}", "range: {min: 0.95, after: 1s}"),
       "x.yaml:12: probes[0].range: unknown key \"after\"; expected one of min, max"},
      {"given twice", during("during: {max: 0.5}\n    during: {max: 0.6}"), "x.yaml:14: probes[0].during: given twice"},
  };
  for (const auto& c : cases) {
    auto r = parse_experiment(c.text, "x.yaml");
    if (r.ok()) {
      ADD_FAILURE() << c.name << ": accepted";
      continue;
    }
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << c.name;
    EXPECT_EQ(r.error().message, c.error) << c.name;
  }
}

TEST(Experiment, FaultAddressesFromFilesGoThroughTheCliReader) {
  std::vector<std::string> asked;
  ReadFile reader = [&](const std::string& path) -> Result<std::string> {
    asked.push_back(path);
    return std::string("10.200.0.3\n10.200.0.5\n");
  };
  auto r = parse_experiment(with("--side 10.200.0.3 ", "--side @c-nodes.txt "), "x.yaml", reader);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(asked, std::vector<std::string>{"c-nodes.txt"});
  EXPECT_EQ(r->faults[0].spec.sides[0].cidrs.size(), 2u);
  // Without a reader (as in a unit test of the plan), @FILE is refused like on the command line.
  EXPECT_FALSE(parse_experiment(with("--side 10.200.0.3 ", "--side @c-nodes.txt "), "x.yaml").ok());
}

TEST(Experiment, PlanShowsPhasesRequestsAndProbes) {
  auto r = parse_experiment(kGood, "x.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string plan = format_plan(*r);
  const json split_req = {{"op", "apply"}, {"fault", proto::fault_spec_to_json(r->faults[0].spec)}};
  const std::string expected =
      "experiment other-pair-split (x.yaml)\n"
      "hypothesis: a partition of c and d leaves a -> b connections alone\n"
      "\n"
      "probes (all run from the first to the last phase):\n"
      "  connect-b: tcp 10.200.0.2:7000 (TCP connect), every 200ms, timeout 150ms; success_rate over 5 samples in "
      "[0.95, +inf] ratio\n"
      "  web: http GET http://10.200.0.2:8080/health?x=1 (expect 204), every 1s, timeout 1s; p99 over 5 samples in "
      "[-inf, 250] ms\n"
      "  depth: exec sh -c 'echo 3', every 1s, timeout 1s; value over 1 sample in [0, 10]\n"
      "  clients: prometheus sum(chat_clients) at http://[fd00:200::9]:9090, every 1s, timeout 1s; value over 1 "
      "sample in [5, +inf]\n"
      "\n"
      "phases:\n"
      "  t+0ms     steady_state  4s: every probe in range at the end, else verdict not_started and nothing is "
      "applied\n"
      "  t+4s      inject        each fault at its offset, with its duration (the kernel ends it):\n"
      "    t+4s500ms apply split for 3s (1 target): partition --side 10.200.0.3 --side '10.200.0.4' --target "
      "netns:lab-c\n"
      "      request: " +
      split_req.dump() +
      "\n"
      "    t+4s      apply slow for 2s (1 target): delay 50ms --dst 10.200.0.1 --target netns:lab-a\n"
      "      request: " +
      json{{"op", "apply"}, {"fault", proto::fault_spec_to_json(r->faults[1].spec)}}.dump() +
      "\n"
      "  t+4s      observe       5s: the hypothesis holds if every probe stays in range\n"
      "  t+9s      heal          every fault still active\n"
      "  t+9s      recovery      every probe back in range within 4s, else refuted\n"
      "\n"
      "abort rules (heal every fault at once, verdict aborted):\n"
      "  connect-b: 3 samples out of range\n"
      "  web: out of range for 2s\n"
      "  and SIGINT, SIGTERM or a lost daemon connection\n"
      "\n"
      "blast radius: at most 1 target per fault\n"
      "longest run: 13s\n";
  EXPECT_EQ(plan, expected);
  EXPECT_NE(plan.find("\"name\":\"split\""), std::string::npos) << "the request carries the fault's name";
  EXPECT_NE(plan.find("\"duration_ms\":3000"), std::string::npos) << "the request carries the fault's duration";
}

std::string source_file(const std::string& rel) {
  std::ifstream f(std::string(FL_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// docs/EXPERIMENTS.md shows docs/examples/experiment.yaml whole, and the file is valid.
TEST(Experiment, DocumentedExampleIsValidAndShownWhole) {
  const std::string example = source_file("docs/examples/experiment.yaml");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(source_file("docs/EXPERIMENTS.md").find("```yaml\n" + example + "```"), std::string::npos);
  auto r = parse_experiment(example, "docs/examples/experiment.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->probes.size(), 3u);
  EXPECT_EQ(r->faults.size(), 2u);
  EXPECT_EQ(r->aborts.size(), 2u);
}

Probe probe(Statistic stat, size_t window, ProbeKind kind = ProbeKind::tcp) {
  Probe p;
  p.kind = kind;
  p.statistic = stat;
  p.window = window;
  p.timeout = 500ms;
  return p;
}

std::vector<ProbeSample> samples(std::vector<std::pair<bool, double>> v) {
  std::vector<ProbeSample> out;
  for (auto [ok, value] : v) out.push_back(ProbeSample{0, ok, value, ok ? "" : "failed"});
  return out;
}

TEST(ExperimentStatistic, OverTheLastWindowSamples) {
  const auto s = samples({{false, 3}, {true, 10}, {true, 20}, {false, 1}, {true, 40}});
  EXPECT_EQ(*probe_statistic(probe(Statistic::success_rate, 4), s), 0.75);
  EXPECT_EQ(*probe_statistic(probe(Statistic::success_rate, 100), s), 0.6);  // fewer samples than the window
  // A failed connect counts as the timeout in latency percentiles: at least that slow.
  EXPECT_EQ(*probe_statistic(probe(Statistic::p99, 4), s), 500);
  EXPECT_EQ(*probe_statistic(probe(Statistic::p50, 4), s), 20);  // nearest rank: 10 20 40 500
  EXPECT_EQ(*probe_statistic(probe(Statistic::p50, 3), s), 40);  // 20 40 500
  // value is the mean of the ok values; failed ones are left out.
  EXPECT_EQ(*probe_statistic(probe(Statistic::value, 2), s), 40);
  EXPECT_EQ(*probe_statistic(probe(Statistic::value, 3), s), 30);
  EXPECT_FALSE(probe_statistic(probe(Statistic::value, 1), samples({{false, 7}})).has_value());
  // exec and prometheus have no latency: a failed sample has no value to count.
  EXPECT_EQ(*probe_statistic(probe(Statistic::p99, 4, ProbeKind::exec), s), 40);
  EXPECT_FALSE(probe_statistic(probe(Statistic::p50, 4), {}).has_value());
}

TEST(ExperimentCommand, RunTakesOneFileDryRunAndReportDir) {
  auto r = parse_args({"--socket", "/nonexistent/s", "run", "--dry-run", "--report-dir", "/tmp/r", "x.yaml"}, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->command, "run");
  EXPECT_EQ(r->file, "x.yaml");
  EXPECT_TRUE(r->dry_run);
  EXPECT_EQ(r->report_dir, "/tmp/r");
  EXPECT_EQ(r->socket, "/nonexistent/s");
  auto missing = parse_args({"run"}, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "run: missing EXPERIMENT file\nTry 'faultctl run --help'.");
  auto two = parse_args({"run", "a.yaml", "b.yaml"}, nullptr);
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().message, "run: unexpected argument \"b.yaml\"\nTry 'faultctl run --help'.");
}

// A daemon on a Unix socket that answers the runner's requests, its apply only after a delay
// (a busy daemon attaching to many interfaces).
class SlowApplyDaemon {
 public:
  // drop_apply: the apply is carried out but the connection closes before the answer, as when
  // a daemon is restarted mid-request; a second connection is then served.
  // on_op: called with each request's op before it is answered (what the fault does to the world).
  explicit SlowApplyDaemon(std::chrono::milliseconds apply_delay, bool drop_apply = false,
                           std::function<void(const std::string&)> on_op = {}) {
    char tmpl[] = "/tmp/fl-exp-unit-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path_.copy(a.sun_path, path_.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    thread_ = std::thread([this, apply_delay, drop_apply, on_op] {
      std::string state = "active";
      for (int conn = 0; conn < 2; ++conn) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        for (std::string line; read_line(c, line);) {
          const json req = json::parse(line);
          const std::string op = req.at("op");
          {
            std::lock_guard<std::mutex> lock(mu_);
            ops_.push_back(req.contains("fault") && req["fault"].is_string() ? op + " " + req["fault"].get<std::string>()
                                                                             : op);
          }
          if (on_op) on_op(op);
          json result = json::object();
          const json fault = {{"id", 1},
                              {"state", state},
                              {"targets", {"host"}},
                              {"counters", {{"matched", 3}, {"dropped", 2}, {"exempted", 0}, {"shaped", 0}}}};
          if (op == "apply") {
            std::this_thread::sleep_for(apply_delay);
            if (drop_apply) break;
            result["fault"] = fault;
          } else if (op == "get") {
            result["fault"] = fault;
          } else if (op == "heal") {
            state = "healed";
            result["healed"] = {1};
          }
          const std::string reply = proto::reply_ok(req.at("id").get<uint64_t>(), result) + "\n";
          if (send(c, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) break;
        }
        close(c);
      }
    });
  }
  ~SlowApplyDaemon() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  std::vector<std::string> ops() {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_;
  }

 private:
  static bool read_line(int fd, std::string& line) {
    line.clear();
    char ch;
    while (read(fd, &ch, 1) == 1) {
      if (ch == '\n') return true;
      line += ch;
    }
    return false;
  }
  std::string dir_, path_;
  int fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> ops_;
};

// Regression: an apply that took 1.4 s on a loaded machine left 50 ms of observation, and a
// partition that cut every probe was judged "held". The observation now lasts the fault's whole
// duration from when it was applied.
TEST(ExperimentRunner, SlowApplyDoesNotShortenTheObservation) {
  SlowApplyDaemon d(800ms);
  const std::string text =
      "name: slow-apply\n"
      "hypothesis: h\n"
      "steady_state: {duration: 200ms}\n"
      "probes:\n"
      "  - {name: ok, kind: exec, argv: [true], interval: 100ms, statistic: success_rate, window: 1, range: {min: 1}}\n"
      "method:\n"
      "  faults:\n"
      "    - {name: f, cli: \"loss 10\", duration: 1s}\n"
      "recovery: {within: 1s}\n";
  auto e = parse_experiment(text, "x.yaml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  char tmpl[] = "/tmp/fl-exp-report-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  RunOptions o;
  o.socket = d.path();
  o.report_dir = dir;
  std::ostringstream log;
  const RunOutcome out = run_experiment(*e, o, log);
  EXPECT_EQ(out.verdict, "held") << out.reason << "\n" << log.str();
  const json& f = out.report["faults"][0];
  ASSERT_TRUE(f["start_ms"].is_number()) << f.dump();
  EXPECT_GE(f["start_ms"].get<int64_t>(), 950) << "the apply was answered after 800 ms";
  int64_t observe_end = -1;
  for (const auto& p : out.report["phases"]) {
    if (p["name"] == "observe") observe_end = p["end_ms"];
  }
  EXPECT_GE(observe_end - f["start_ms"].get<int64_t>(), 990) << out.report["phases"].dump();
  EXPECT_EQ(f["counters"]["dropped"], 2) << "counters from the daemon's get";
  EXPECT_EQ(f["ended_by"], "heal");
  EXPECT_EQ(out.report_path, dir + "/report.json");
  std::remove(out.report_path.c_str());
  rmdir(dir.c_str());
}

// An abort rule on time: the probe goes out of range (a file appears) and stays out; after
// `for` the runner heals the 10 s fault and ends with aborted, without waiting for it.
TEST(ExperimentRunner, AbortRuleForTimeHealsAtOnce) {
  SlowApplyDaemon d(0ms);
  char tmpl[] = "/tmp/fl-exp-report-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string flag = dir + "/broken";
  const std::string text =
      "name: abort-for\n"
      "hypothesis: h\n"
      "steady_state: {duration: 200ms}\n"
      "probes:\n"
      "  - {name: flag, kind: exec, argv: [sh, -c, \"test ! -e " + flag +
      "\"], interval: 50ms, statistic: success_rate, window: 1, range: {min: 1}}\n"
      "method:\n"
      "  faults:\n"
      "    - {name: f, cli: \"loss 10\", duration: 10s}\n"
      "abort:\n"
      "  - {probe: flag, for: 300ms}\n"
      "recovery: {within: 1s}\n";
  auto e = parse_experiment(text, "x.yaml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  std::thread breaker([&] {
    std::this_thread::sleep_for(700ms);
    std::ofstream(flag) << "x";
  });
  RunOptions o;
  o.socket = d.path();
  o.report_dir = dir;
  std::ostringstream log;
  const auto start = std::chrono::steady_clock::now();
  const RunOutcome out = run_experiment(*e, o, log);
  breaker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(out.verdict, "aborted") << out.reason << "\n" << log.str();
  EXPECT_EQ(out.reason, "probe flag: success_rate 0, accepted >= 1, out of range for 300ms");
  const json& abort = out.report["abort"];
  ASSERT_TRUE(abort.is_object()) << out.report.dump();
  EXPECT_EQ(abort["rule"], "out of range for 300ms");
  EXPECT_EQ(abort["healed"], json::array({1}));
  int64_t first_failed = -1;
  for (const auto& smp : out.report["probes"][0]["samples"]) {
    if (!smp["ok"].get<bool>() && first_failed < 0) first_failed = smp["t_ms"];
  }
  ASSERT_GE(first_failed, 0);
  EXPECT_GE(abort["t_ms"].get<int64_t>() - first_failed, 300);
  EXPECT_LE(abort["t_ms"].get<int64_t>() - first_failed, 700);
  EXPECT_EQ(out.report["faults"][0]["ended_by"], "abort");
  const auto ops = d.ops();
  EXPECT_NE(std::find(ops.begin(), ops.end(), "heal 1"), ops.end());
  std::remove(flag.c_str());
  std::remove((dir + "/report.json").c_str());
  rmdir(dir.c_str());
}

// The connection breaks while an apply is in flight: the daemon may have applied it, but the
// runner never learnt its id. It reconnects once and heals it by name.
TEST(ExperimentRunner, ApplyLostInFlightIsHealedByName) {
  SlowApplyDaemon d(0ms, /*drop_apply=*/true);
  const std::string text =
      "name: lost-apply\n"
      "hypothesis: h\n"
      "steady_state: {duration: 200ms}\n"
      "probes:\n"
      "  - {name: ok, kind: exec, argv: [true], interval: 100ms, statistic: success_rate, window: 1, range: {min: 1}}\n"
      "method:\n"
      "  faults:\n"
      "    - {name: in-flight, cli: \"loss 10\", duration: 1m}\n"
      "recovery: {within: 1s}\n";
  auto e = parse_experiment(text, "x.yaml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  char tmpl[] = "/tmp/fl-exp-report-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  RunOptions o;
  o.socket = d.path();
  o.report_dir = dir;
  std::ostringstream log;
  const RunOutcome out = run_experiment(*e, o, log);
  EXPECT_EQ(out.verdict, "aborted");
  EXPECT_NE(out.reason.find("fault in-flight: connection lost"), std::string::npos) << out.reason;
  const auto ops = d.ops();
  EXPECT_EQ(ops, (std::vector<std::string>{"hello", "apply", "hello", "heal in-flight", "get 1"})) << log.str();
  const json& f = out.report["faults"][0];
  EXPECT_EQ(f["id"], 1);
  EXPECT_EQ(f["ended_by"], "abort");
  std::remove(out.report_path.c_str());
  rmdir(dir.c_str());
}

// A probe whose value the fault changes: the "daemon" writes 0 to the probe's file when the fault
// is applied (no message crosses) and 5 when it is healed. The file's `during` range is the
// hypothesis for the method; `range` holds before and after.
struct DuringRun {
  std::string dir, value_file;
  DuringRun() {
    char tmpl[] = "/tmp/fl-exp-during-XXXXXX";
    dir = mkdtemp(tmpl);
    value_file = dir + "/value";
    set(5);
  }
  ~DuringRun() {
    std::remove(value_file.c_str());
    std::remove((dir + "/report.json").c_str());
    std::remove((dir + "/report.html").c_str());
    rmdir(dir.c_str());
  }
  void set(int v) const {
    // Written aside and renamed: the probe never reads half a file.
    std::ofstream(value_file + ".tmp") << v << "\n";
    std::rename((value_file + ".tmp").c_str(), value_file.c_str());
  }
  std::string text(const std::string& during, const std::string& abort = "") const {
    return "name: during\n"
           "hypothesis: nothing crosses while the fault is on, and it flows again after\n"
           "steady_state: {duration: 300ms}\n"
           "probes:\n"
           "  - {name: cross, kind: exec, argv: [cat, " +
           value_file + "], interval: 50ms, statistic: value, range: {min: 1}" + during +
           "}\n"
           "method:\n"
           "  faults:\n"
           "    - {name: f, cli: \"loss 10\", duration: 800ms}\n" +
           abort + "recovery: {within: 1s}\n";
  }
  RunOutcome run(const std::string& text, const std::function<void(const std::string&)>& on_op) const {
    SlowApplyDaemon d(0ms, false, on_op);
    auto e = parse_experiment(text, "x.yaml");
    EXPECT_TRUE(e.ok()) << e.error().message;
    if (!e) return {};
    RunOptions o;
    o.socket = d.path();
    o.report_dir = dir;
    std::ostringstream log;
    return run_experiment(*e, o, log);
  }
};

TEST(ExperimentRunner, DuringRangeJudgesTheMethodOnly) {
  DuringRun r;
  auto fault = [&](const std::string& op) {
    if (op == "apply") r.set(0);
    if (op == "heal") r.set(5);
  };
  // One range for the whole run: the 0 while the fault is on refutes it.
  const RunOutcome one = r.run(r.text(""), fault);
  EXPECT_EQ(one.verdict, "refuted") << one.reason;
  EXPECT_NE(one.reason.find("probe cross: value 0, accepted >= 1 at t+"), std::string::npos) << one.reason;
  EXPECT_TRUE(one.report["probes"][0]["during"].is_null());

  r.set(5);
  // 0 expected while the method runs, >= 1 before and after: held.
  const RunOutcome two = r.run(r.text(", during: {max: 0}"), fault);
  EXPECT_EQ(two.verdict, "held") << two.reason;
  const json& p = two.report["probes"][0];
  ASSERT_TRUE(p["during"].is_object()) << p.dump();
  EXPECT_TRUE(p["during"]["min"].is_null());
  EXPECT_EQ(p["during"]["max"], 0);
  EXPECT_EQ(p["during"]["after_ms"], 0);
  const json& f = two.report["faults"][0];
  EXPECT_EQ(p["during"]["from_ms"], f["start_ms"]) << "from the first fault's start";
  int64_t observe_end = -1;
  for (const auto& ph : two.report["phases"])
    if (ph["name"] == "observe") observe_end = ph["end_ms"];
  EXPECT_EQ(p["during"]["to_ms"], observe_end) << "to the end of the method";
  // Every point judged against the range of its time, and both ranges were needed.
  const int64_t from = p["during"]["from_ms"], to = p["during"]["to_ms"];
  int zeros_in_method = 0, ones_outside = 0;
  for (const auto& pt : p["series"]) {
    const int64_t t = pt["t_ms"];
    const double v = pt["value"];
    const bool during = t >= from && t <= to;
    if (during) {
      EXPECT_EQ(pt["in_range"], v <= 0) << pt.dump();
      zeros_in_method += v == 0;
    } else if (t < from || t > to) {
      EXPECT_EQ(pt["in_range"], v >= 1) << pt.dump();
      ones_outside += v >= 1;
    }
  }
  EXPECT_GE(zeros_in_method, 5);
  EXPECT_GE(ones_outside, 5) << "the steady state and the recovery";

  // The fault did not stop the flow: the `during` range refutes what `range` would accept.
  const RunOutcome three = r.run(r.text(", during: {max: 0, after: 100ms}"), [](const std::string&) {});
  EXPECT_EQ(three.verdict, "refuted") << three.reason;
  EXPECT_NE(three.reason.find("probe cross: value 5, accepted <= 0 while the method runs at t+"), std::string::npos)
      << three.reason;
}

TEST(ExperimentRunner, AbortRuleUsesTheDuringRange) {
  DuringRun r;
  std::thread leak;
  // The flow stops at the apply, then starts again 300 ms into the 800 ms fault: within `range`
  // but out of `during`, so the rule fires and the fault is healed at once.
  auto fault = [&](const std::string& op) {
    if (op == "apply") {
      r.set(0);
      leak = std::thread([&] {
        std::this_thread::sleep_for(300ms);
        r.set(7);
      });
    }
  };
  const RunOutcome out = r.run(r.text(", during: {max: 0}", "abort:\n  - {probe: cross, samples: 2}\n"), fault);
  if (leak.joinable()) leak.join();
  EXPECT_EQ(out.verdict, "aborted") << out.reason;
  EXPECT_EQ(out.reason, "probe cross: value 7, accepted <= 0 while the method runs, 2 samples out of range");
  const json& abort = out.report["abort"];
  ASSERT_TRUE(abort.is_object()) << out.report.dump();
  EXPECT_EQ(abort["healed"], json::array({1}));
  EXPECT_EQ(out.report["faults"][0]["ended_by"], "abort");
  const int64_t from = out.report["probes"][0]["during"]["from_ms"];
  EXPECT_GE(abort["t_ms"].get<int64_t>() - from, 300) << "not before the flow started again";
  EXPECT_LT(abort["t_ms"].get<int64_t>() - from, 700) << "before the fault's end";
}

}  // namespace
}  // namespace fl::cli
