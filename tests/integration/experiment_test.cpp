// `faultctl run EXPERIMENT.yaml` on a real lab (issue 11): a hypothesis that holds, one the
// probes refute, one an abort rule stops (faults healed at once), SIGTERM to a running
// experiment, a steady state that is not met, and --dry-run touching nothing. The runner runs
// inside a lab namespace (ip netns exec) so its probes reach the lab's addresses; its faults go
// to the daemon under test. Durations are short: the whole suite takes about 30 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

// An experiment with one tcp probe from the runner's node to `probe_addr`, one partition, and
// optionally an abort rule.
std::string experiment(const std::string& name, const std::string& probe_addr, const std::string& fault_cli,
                       const std::string& fault_duration, const std::string& abort_rule = "") {
  return "name: " + name +
         "\n"
         "hypothesis: connects to " +
         probe_addr +
         " keep succeeding\n"
         "steady_state: {duration: 1s}\n"
         "probes:\n"
         "  - name: connect-b\n"
         "    kind: tcp\n"
         "    address: " +
         probe_addr +
         "\n"
         "    interval: 100ms\n"
         "    timeout: 80ms\n"
         "    statistic: success_rate\n"
         "    window: 3\n"
         "    range: {min: 1}\n"
         "method:\n"
         "  faults:\n"
         "    - name: split-" +
         name +
         "\n"
         "      cli: \"" +
         fault_cli +
         "\"\n"
         "      start: 200ms\n"
         "      duration: " +
         fault_duration + "\n" + (abort_rule.empty() ? "" : "abort:\n  - " + abort_rule + "\n") +
         "recovery: {within: 3s}\n";
}

// faultctl run inside namespace `ns`, against the daemon's socket.
Cmd run_in(const std::string& ns, const Daemon& d, const std::string& args) {
  return sh("ip netns exec " + ns + " " + FL_FAULTCTL_PATH + " --socket " + d.socket() + " run " + args);
}

bool no_active_fault(Daemon& d) {
  json l = d.call("list");
  return l.is_object() && l["faults"].is_array() && l["faults"].empty();
}

const json& probe_of(const json& report) {
  return report["probes"][0];
}

// A program run inside a named netns (ip netns exec execs it, so the pid is the program's),
// output to a log file; SIGTERM, then SIGKILL, at the end.
class NetnsChild {
 public:
  NetnsChild(const std::string& ns, std::vector<std::string> args, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> all = {"ip", "netns", "exec", ns};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("ip", argv.data());
      _exit(127);
    }
  }
  ~NetnsChild() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(50ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  NetnsChild(const NetnsChild&) = delete;
  NetnsChild& operator=(const NetnsChild&) = delete;

 private:
  pid_t pid_ = -1;
};

// The fault touches two other nodes: the probe between nodes 0 and 1 stays in range.
TEST(Experiment, HeldWhenTheFaultDoesNotTouchTheProbedPath) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(4);
  Daemon d;
  TcpListener b(lab.ns(1), 7401);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  // And an http probe against a real HTTP server on the same node.
  NetnsChild web(lab.ns(1), {"python3", "-m", "http.server", "7411", "--bind", Lab::ip4(1), "--directory", dir.path()},
                 dir.path() + "/web.log");
  ASSERT_TRUE(eventually([&] { return tcp_connects(lab.ns(0), Lab::ip4(1), 7411, 200ms); }, 10s, 100ms));
  std::string text =
      experiment("held", Lab::ip4(1) + ":7401",
                 "partition --side " + Lab::ip4(2) + " --side " + Lab::ip4(3) + " --target " + lab.target(2), "2s");
  text.replace(text.find("method:\n"), 8,
               "  - name: web\n"
               "    kind: http\n"
               "    url: http://" + Lab::ip4(1) + ":7411/\n"
               "    interval: 200ms\n"
               "    statistic: p95\n"
               "    window: 3\n"
               "    range: {max: 200}\n"
               "method:\n");
  const std::string file = dir.write("held.yaml", text);
  // A report directory that does not exist yet, two levels deep.
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + "/out/held " + file);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("verdict: hypothesis held"), std::string::npos) << r.out;
  json rep = read_json(dir.path() + "/out/held/report.json");
  EXPECT_EQ(rep["verdict"], "held");
  ASSERT_EQ(rep["faults"].size(), 1u);
  const json& f = rep["faults"][0];
  // The method lasts as long as the fault: it expires, or the runner heals it, at the same moment.
  EXPECT_TRUE(f["ended_by"] == "expiry" || f["ended_by"] == "heal") << f.dump();
  EXPECT_TRUE(f["end_ms"].is_number()) << f.dump();
  EXPECT_EQ(f["targets"], json::array({lab.target(2)}));
  // The probe really sampled: about 10 samples a second for 1 s + 2.2 s + recovery, all ok.
  const json& samples = probe_of(rep)["samples"];
  EXPECT_GE(samples.size(), 25u);
  for (const auto& s : samples) EXPECT_TRUE(s["ok"].get<bool>()) << s.dump();
  EXPECT_GT(b.drain(), 20) << "the listener saw the probe's connections";
  const json& web_probe = rep["probes"][1];
  EXPECT_EQ(web_probe["unit"], "ms");
  EXPECT_GE(web_probe["samples"].size(), 12u);
  for (const auto& smp : web_probe["samples"]) {
    EXPECT_TRUE(smp["ok"].get<bool>()) << smp.dump();
    EXPECT_GT(smp["value"].get<double>(), 0.0) << smp.dump();
  }
  // The server logged the probe's GETs.
  EXPECT_NE(sh("cat " + dir.path() + "/web.log").out.find("\"GET / HTTP/1.0\" 200"), std::string::npos);
  EXPECT_TRUE(no_active_fault(d));
}

// The probe crosses the partition and there is no abort rule: the experiment runs to its end
// and the hypothesis is refuted, with the evidence in the report.
TEST(Experiment, RefutedWhenTheProbeCrossesThePartition) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(2);
  Daemon d;
  TcpListener b(lab.ns(1), 7402);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  const std::string file = dir.write("refuted.yaml", experiment("refuted", Lab::ip4(1) + ":7402",
                                                                "partition --side " + Lab::ip4(0) + " --side " +
                                                                    Lab::ip4(1) + " --target " + lab.target(1),
                                                                "1500ms"));
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + " " + file);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("verdict: hypothesis refuted"), std::string::npos) << r.out;
  json rep = read_json(dir.path() + "/report.json");
  EXPECT_EQ(rep["verdict"], "refuted") << rep["faults"].dump() << rep["phases"].dump()
                                       << probe_of(rep)["samples"].dump();
  EXPECT_NE(rep["reason"].get<std::string>().find("probe connect-b: success_rate"), std::string::npos) << rep["reason"];
  EXPECT_TRUE(rep["abort"].is_null());
  const json& f = rep["faults"][0];
  EXPECT_TRUE(f["ended_by"] == "expiry" || f["ended_by"] == "heal") << f.dump();
  EXPECT_GT(f["counters"]["dropped"].get<uint64_t>(), 0u) << "the fault's counters, fetched from the daemon";
  // Failed samples inside the fault's window, and none outside it. start_ms is when the apply
  // returned; a sample begun while the request was on its way may already see the fault.
  int failed_inside = 0;
  for (const auto& s : probe_of(rep)["samples"]) {
    const int64_t t = s["t_ms"];
    const bool inside = t >= f["start_ms"].get<int64_t>() - 100 && t < f["end_ms"].get<int64_t>();
    if (!s["ok"].get<bool>()) {
      EXPECT_TRUE(inside) << s.dump() << " outside " << f.dump();
      ++failed_inside;
    }
  }
  EXPECT_GE(failed_inside, 5);
  // The recovery phase saw the probe back in range.
  bool recovery_ok = false;
  for (const auto& p : rep["phases"]) {
    if (p["name"] == "recovery") recovery_ok = p["ok"].get<bool>();
  }
  EXPECT_TRUE(recovery_ok) << rep["phases"].dump();
  EXPECT_TRUE(no_active_fault(d));
}

// The same fault, with an abort rule: the runner heals at once, long before the fault's own
// end, and says which probe stopped it.
TEST(Experiment, AbortedByItsProbeHealsAtOnce) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(2);
  Daemon d;
  TcpListener b(lab.ns(1), 7403);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  const std::string file = dir.write("aborted.yaml", experiment("aborted", Lab::ip4(1) + ":7403",
                                                                "partition --side " + Lab::ip4(0) + " --side " +
                                                                    Lab::ip4(1) + " --target " + lab.target(1),
                                                                "1m", "{probe: connect-b, samples: 3}"));
  const auto start = std::chrono::steady_clock::now();
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + " " + file);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("verdict: aborted"), std::string::npos) << r.out;
  EXPECT_LT(took, 10s) << "the 1m fault was not waited for";
  EXPECT_TRUE(no_active_fault(d)) << "a fault is still active after the abort";
  json rep = read_json(dir.path() + "/report.json");
  EXPECT_EQ(rep["verdict"], "aborted");
  EXPECT_NE(rep["reason"].get<std::string>().find("connect-b"), std::string::npos) << rep["reason"];
  ASSERT_TRUE(rep["abort"].is_object()) << rep.dump();
  EXPECT_EQ(rep["abort"]["probe"], "connect-b");
  EXPECT_EQ(rep["abort"]["rule"], "3 samples out of range");
  const json& f = rep["faults"][0];
  EXPECT_EQ(f["ended_by"], "abort");
  EXPECT_EQ(rep["abort"]["healed"], json::array({f["id"]}));
  const int64_t lag = f["end_ms"].get<int64_t>() - rep["abort"]["t_ms"].get<int64_t>();
  EXPECT_GE(lag, 0);
  EXPECT_LE(lag, 1000) << "healed " << lag << " ms after the abort";
  // The daemon agrees: the fault was healed, not expired.
  json got = d.call("get", json{{"fault", std::to_string(f["id"].get<uint64_t>())}});
  EXPECT_EQ(got["fault"]["state"], "healed") << got.dump();
  EXPECT_TRUE(lab.ping(0, 1)) << "the partition is gone";
  // The page next to it is drawn from that report (its geometry is checked in a browser by
  // ReportInChromium.*): the verdict, the fault's window and the abort line.
  EXPECT_NE(r.out.find("report.html"), std::string::npos) << r.out;
  const std::string html = sh("cat " + dir.path() + "/report.html").out;
  EXPECT_NE(html.find("id=\"verdict\""), std::string::npos);
  EXPECT_NE(html.find("Experiment aborted"), std::string::npos);
  EXPECT_NE(html.find("class=\"fault-window\" data-fault=\"" + f["name"].get<std::string>() + "\""), std::string::npos);
  EXPECT_NE(html.find("class=\"abort-line\""), std::string::npos);
}

// SIGTERM while the fault is on: the runner heals, writes its report and says aborted.
TEST(Experiment, SigtermHealsAndReports) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(4);
  Daemon d;
  TcpListener b(lab.ns(1), 7404);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  const std::string file = dir.write(
      "sigterm.yaml",
      experiment("sigterm", Lab::ip4(1) + ":7404",
                 "partition --side " + Lab::ip4(2) + " --side " + Lab::ip4(3) + " --target " + lab.target(2), "1m"));
  const std::string log = dir.path() + "/log";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string rdir = dir.path() + "/out";
    // ip netns exec execs the command: the pid is faultctl's.
    execlp("ip", "ip", "netns", "exec", lab.ns(0).c_str(), FL_FAULTCTL_PATH, "--socket", d.socket().c_str(), "run",
           "--report-dir", rdir.c_str(), file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const bool applied = eventually(
      [&] {
        json l = d.call("list");
        return l.is_object() && l["faults"].size() == 1;
      },
      5s, 50ms);
  EXPECT_TRUE(applied) << "the experiment never applied its fault";
  EXPECT_FALSE(lab.ping(2, 3)) << "the fault is on";
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::ifstream lf(log);
  std::stringstream out;
  out << lf.rdbuf();
  ASSERT_TRUE(WIFEXITED(status)) << out.str();
  EXPECT_EQ(WEXITSTATUS(status), 1) << out.str();
  EXPECT_NE(out.str().find("verdict: aborted"), std::string::npos) << out.str();
  EXPECT_TRUE(no_active_fault(d)) << "the fault outlived the runner";
  json rep = read_json(dir.path() + "/out/report.json");
  EXPECT_EQ(rep["verdict"], "aborted");
  EXPECT_NE(rep["reason"].get<std::string>().find("signal 15"), std::string::npos) << rep["reason"];
  EXPECT_EQ(rep["faults"][0]["ended_by"], "signal");
  EXPECT_TRUE(lab.ping(2, 3)) << "the partition is gone";
}

// A probe out of range before anything is injected: the experiment does not start, and the
// daemon is never asked to apply anything.
TEST(Experiment, NotStartedWhenTheSteadyStateIsNotMet) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(2);
  Daemon d;
  TempDir dir("fl-experiment");
  const std::string file = dir.write(
      "nostart.yaml",
      experiment("nostart", Lab::ip4(1) + ":7405",  // nothing listens there: connects are refused
                 "partition --side " + Lab::ip4(0) + " --side " + Lab::ip4(1) + " --target " + lab.target(1), "1s"));
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + " " + file);
  EXPECT_EQ(r.status, 1) << r.out;
  json rep = read_json(dir.path() + "/report.json");
  EXPECT_EQ(rep["verdict"], "not_started");
  EXPECT_NE(rep["reason"].get<std::string>().find("steady state not met: probe connect-b"), std::string::npos)
      << rep["reason"];
  EXPECT_EQ(rep["faults"][0]["ended_by"], "not_started");
  EXPECT_NE(probe_of(rep)["samples"][0]["error"].get<std::string>().find("Connection refused"), std::string::npos);
  json events = d.call("events");
  for (const auto& e : events["events"]) EXPECT_NE(e["type"], "applied") << e.dump();
}

// --dry-run prints the plan and contacts nothing: neither the daemon's socket (a listener the
// test owns) nor the probe's address.
TEST(Experiment, DryRunTouchesNothing) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  Lab lab(2);
  TcpListener b(lab.ns(1), 7406);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  const std::string sock = dir.path() + "/fake.sock";
  const int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un ua{};
  ua.sun_family = AF_UNIX;
  std::snprintf(ua.sun_path, sizeof ua.sun_path, "%s", sock.c_str());
  ASSERT_EQ(bind(ufd, reinterpret_cast<sockaddr*>(&ua), sizeof ua), 0);
  ASSERT_EQ(listen(ufd, 8), 0);
  const std::string file = dir.write(
      "dry.yaml",
      experiment("dry", Lab::ip4(1) + ":7406",
                 "partition --side " + Lab::ip4(0) + " --side " + Lab::ip4(1) + " --target " + lab.target(1), "5s"));
  Cmd r = sh("ip netns exec " + lab.ns(0) + " env FAULTLINE_SOCKET=" + sock + " " + FL_FAULTCTL_PATH +
             " run --dry-run " + "--report-dir " + dir.path() + "/out " + file);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("steady_state  1s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"op\":\"apply\""), std::string::npos) << r.out;
  EXPECT_LT(accept(ufd, nullptr, nullptr), 0) << "the daemon socket got a connection";
  EXPECT_EQ(b.drain(), 0) << "the probe's address got a connection";
  EXPECT_NE(access((dir.path() + "/out").c_str(), F_OK), 0) << "a dry run wrote a report";
  close(ufd);
  // And with a socket path that does not exist.
  Cmd nosock = sh(std::string("env FAULTLINE_SOCKET=/nonexistent/faultline.sock ") + FL_FAULTCTL_PATH +
                  " run --dry-run " + file);
  EXPECT_EQ(nosock.status, 0) << nosock.out;
}

// The daemon drops the runner's connection (its idle timeout is shorter than the runner's 1 s
// between counter reads): the runner notices, reconnects once, heals the fault it applied and
// ends with verdict aborted.
TEST(Experiment, LostConnectionReconnectsOnceAndHeals) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(4);
  Daemon::Options o;
  o.extra = {"--idle-timeout", "600ms"};
  Daemon d(o);
  TcpListener b(lab.ns(1), 7407);
  ASSERT_TRUE(b.ok());
  TempDir dir("fl-experiment");
  std::string text =
      experiment("lost", Lab::ip4(1) + ":7407",
                 "partition --side " + Lab::ip4(2) + " --side " + Lab::ip4(3) + " --target " + lab.target(2), "1m");
  text.replace(text.find("steady_state: {duration: 1s}"), 28, "steady_state: {duration: 300ms}");
  text.replace(text.find("start: 200ms"), 12, "start: 0s");
  const std::string file = dir.write("lost.yaml", text);
  const auto start = std::chrono::steady_clock::now();
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + " " + file);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "the 1m fault was waited for";
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("reconnecting once to heal"), std::string::npos) << r.out;
  json rep = read_json(dir.path() + "/report.json");
  EXPECT_EQ(rep["verdict"], "aborted");
  EXPECT_EQ(rep["reason"], "connection to faultlined lost");
  const json& f = rep["faults"][0];
  EXPECT_EQ(f["ended_by"], "abort") << f.dump();
  EXPECT_EQ(rep["abort"]["healed"], json::array({f["id"]})) << rep["abort"].dump();
  EXPECT_TRUE(no_active_fault(d));
  json got = d.call("get", json{{"fault", std::to_string(f["id"].get<uint64_t>())}});
  EXPECT_EQ(got["fault"]["state"], "healed") << got.dump();
  EXPECT_TRUE(lab.ping(2, 3)) << "the partition is gone";
}

// The prometheus probe against Debian's Prometheus, which scrapes faultlined's own metrics on a
// lab address: the probe's samples show faultline_faults_active at 0 before the fault and at 1
// while it is on, as the daemon counts it.
TEST(Experiment, PrometheusProbeReadsARealServer) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  if (sh("command -v prometheus && command -v promtool").status != 0) {
    GTEST_SKIP() << "the prometheus package (prometheus, promtool) is not installed; tools/setup installs it";
  }
  Lab lab(4);
  // Daemon and Prometheus on node 3; the runner on node 0 queries Prometheus across the lab.
  const std::string maddr = Lab::ip4(3) + ":19464", paddr = Lab::ip4(3) + ":19090";
  Daemon::Options o;
  o.netns = lab.ns(3);
  o.extra = {"--metrics", maddr};
  Daemon d(o);
  TempDir dir("fl-experiment");
  dir.write("prometheus.yml",
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
            "scrape_configs:\n  - job_name: faultline\n    static_configs:\n"
            "      - targets: ['" +
                maddr + "']\n");
  NetnsChild prom(lab.ns(3),
                  {"prometheus", "--config.file=" + dir.path() + "/prometheus.yml",
                   "--storage.tsdb.path=" + dir.path() + "/data", "--web.listen-address=" + paddr, "--log.level=warn"},
                  dir.path() + "/prometheus.log");
  const bool up = eventually(
      [&] {
        return sh("ip netns exec " + lab.ns(0) + " promtool query instant http://" + paddr + " 'up{job=\"faultline\"}'")
                   .out.find("=> 1 @") != std::string::npos;
      },
      30s, 500ms);
  ASSERT_TRUE(up) << "Prometheus never scraped the daemon: " << sh("cat " + dir.path() + "/prometheus.log").out;

  const std::string file = dir.write("prom.yaml",
                                     "name: prom\n"
                                     "hypothesis: the daemon counts at most one active fault\n"
                                     "steady_state: {duration: 1s}\n"
                                     "probes:\n"
                                     "  - name: active\n"
                                     "    kind: prometheus\n"
                                     "    server: http://" +
                                         paddr +
                                         "\n"
                                         "    query: faultline_faults_active\n"
                                         "    interval: 200ms\n"
                                         "    statistic: value\n"
                                         "    range: {min: 0, max: 1}\n"
                                         "method:\n"
                                         "  faults:\n"
                                         "    - name: split-prom\n"
                                         "      cli: \"partition --side " +
                                         Lab::ip4(1) + " --side " + Lab::ip4(2) + " --target " + lab.target(1) +
                                         "\"\n"
                                         "      duration: 3s\n"
                                         "recovery: {within: 3s}\n");
  Cmd r = run_in(lab.ns(0), d, "--report-dir " + dir.path() + "/out " + file);
  EXPECT_EQ(r.status, 0) << r.out;
  json rep = read_json(dir.path() + "/out/report.json");
  EXPECT_EQ(rep["verdict"], "held") << rep["reason"];
  const json& f = rep["faults"][0];
  int zero_before = 0, one_during = 0;
  for (const auto& smp : probe_of(rep)["samples"]) {
    EXPECT_TRUE(smp["ok"].get<bool>()) << smp.dump();
    const int64_t t = smp["t_ms"];
    if (t < f["start_ms"].get<int64_t>() - 200 && smp["value"] == 0.0) ++zero_before;
    if (t >= f["start_ms"].get<int64_t>() && t < f["end_ms"].get<int64_t>() && smp["value"] == 1.0) ++one_during;
  }
  EXPECT_GE(zero_before, 3) << probe_of(rep)["samples"].dump();
  EXPECT_GE(one_during, 3) << probe_of(rep)["samples"].dump();
}

}  // namespace
}  // namespace fl::test
