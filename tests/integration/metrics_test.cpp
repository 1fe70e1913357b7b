// faultlined --metrics against a real Prometheus: a fault drops real packets between lab
// namespaces, Debian's prometheus scrapes the daemon, and its query API must show what
// `faultctl stats` shows. Both the daemon and Prometheus run in the lab's hub namespace, so the
// scrape never leaves it. Also: malformed and hostile HTTP never stalls the daemon.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

// A free TCP port on 127.0.0.1 inside ns.
int free_port(const std::string& ns) {
  int port = 0;
  in_netns(ns, [&] {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(s);
  });
  return port;
}

// A TCP connection to 127.0.0.1:port made inside ns; the socket stays usable from any thread.
int connect_in(const std::string& ns, int port) {
  int s = -1;
  in_netns(ns, [&] {
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(s);
      s = -1;
    }
  });
  return s;
}

// Everything the peer sends until it closes (or timeout: then what came so far).
std::string read_all(int s, std::chrono::milliseconds timeout) {
  std::string out;
  auto end = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends raw bytes on a fresh connection and returns the whole answer.
std::string http_raw(const std::string& ns, int port, const std::string& request,
                     std::chrono::milliseconds timeout = 5s) {
  int s = connect_in(ns, port);
  if (s < 0) return "connect failed";
  if (!request.empty()) (void)send(s, request.data(), request.size(), MSG_NOSIGNAL);
  std::string r = read_all(s, timeout);
  close(s);
  return r;
}

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : response.substr(p + 4);
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

std::string url_encode(const std::string& s) {
  std::string out;
  char hex[4];
  for (unsigned char c : s) {
    if (isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// A program run inside a named netns, output to a log file; SIGTERM (then SIGKILL) at the end.
class Child {
 public:
  Child(const std::string& ns, std::vector<std::string> args, std::string log) : log_(std::move(log)) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      int n = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (n < 0 || setns(n, CLONE_NEWNET) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; i++) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(50000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string log() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// One instant query; the value of the only series, or nullopt.
std::optional<double> prom_query(const std::string& ns, int port, const std::string& q) {
  std::string r = http_raw(ns, port,
                           "GET /api/v1/query?query=" + url_encode(q) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Connection: close\r\n\r\n",
                           3s);
  auto j = json::parse(body_of(r), nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
  const auto& res = j["data"]["result"];
  if (!res.is_array() || res.size() != 1) return std::nullopt;
  return std::stod(res[0]["value"][1].get<std::string>());
}

// Wall-clock bounds on responsiveness stretch by FL_TEST_TIME_SCALE where the CPU is emulated
// (the VM tier); what is asserted stays the same.
int time_scale() {
  const char* s = std::getenv("FL_TEST_TIME_SCALE");
  int v = s ? std::atoi(s) : 1;
  return v >= 1 ? v : 1;
}

std::string temp_dir() {
  char tmpl[] = "/tmp/fltest-metrics-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(Metrics, PrometheusScrapesTheDropsFaultctlStatsReports) {
  if (!require_root()) return;
  if (sh("command -v prometheus && command -v promtool").status != 0)
    GTEST_SKIP() << "the prometheus package (prometheus, promtool) is not installed; tools/setup installs it";
  Lab lab(2);
  const std::string hub = lab.hub();
  const int mport = free_port(hub);
  ASSERT_GT(mport, 0);
  Daemon::Options o;
  o.netns = hub;
  o.extra = {"--metrics", "127.0.0.1:" + std::to_string(mport)};
  Daemon d(o);

  json fault = {{"kind", "loss"},
                {"name", "metrics-loss.1"},
                {"loss", {{"percent", 50.0}, {"seed", 7}}},
                {"match", {{"proto", "udp"}, {"dport", "7300"}, {"direction", "egress"}}},
                {"targets", json::array({lab.target(0)})},
                {"duration_ms", 120000}};
  json applied = d.call("apply", {{"fault", fault}});
  ASSERT_FALSE(applied.is_null());
  const uint64_t id = applied["fault"]["id"].get<uint64_t>();
  auto sent = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), 7300, 400, 200us);
  ASSERT_EQ(sent.sent, 400u);
  ASSERT_LT(sent.received, sent.sent) << "the fault dropped nothing";

  auto st = faultctl(d, "-o json stats " + std::to_string(id));
  ASSERT_EQ(st.status, 0) << st.out;
  const uint64_t dropped = json::parse(st.out).at(0).at("counters").at("dropped").get<uint64_t>();
  ASSERT_EQ(dropped, sent.sent - sent.received);

  // The raw scrape is well-formed for Prometheus' own linter.
  const std::string dir = temp_dir();
  std::string raw = http_raw(hub, mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(status_line(raw), "HTTP/1.1 200 OK") << raw;
  EXPECT_NE(raw.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << raw;
  {
    std::ofstream(dir + "/scrape.txt") << body_of(raw);
    auto check = sh("promtool check metrics < " + dir + "/scrape.txt");
    EXPECT_EQ(check.status, 0) << check.out << "\n" << body_of(raw);
  }
  EXPECT_NE(body_of(raw).find("faultline_fault_dropped_packets_total{id=\"" + std::to_string(id) +
                              "\",name=\"metrics-loss.1\",kind=\"loss\",target=\"" + lab.target(0) +
                              "\"} " + std::to_string(dropped) + "\n"),
            std::string::npos)
      << body_of(raw);

  const int pport = free_port(hub);
  ASSERT_GT(pport, 0);
  std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                            "scrape_configs:\n  - job_name: faultline\n    static_configs:\n"
                                            "      - targets: ['127.0.0.1:"
                                         << mport << "']\n";
  {
    Child prom(hub,
               {"prometheus", "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
                "--web.listen-address=127.0.0.1:" + std::to_string(pport), "--log.level=warn"},
               dir + "/prometheus.log");
    const std::string sel = "{id=\"" + std::to_string(id) + "\",target=\"" + lab.target(0) + "\"}";
    std::optional<double> seen, applied_loss, up;
    bool ok = eventually(
        [&] {
          up = prom_query(hub, pport, "up{job=\"faultline\"}");
          seen = prom_query(hub, pport, "faultline_fault_dropped_packets_total" + sel);
          applied_loss = prom_query(hub, pport, "faultline_faults_applied_total{kind=\"loss\"}");
          return up == 1.0 && seen == static_cast<double>(dropped) && applied_loss == 1.0;
        },
        30s * time_scale(), 500ms);
    EXPECT_TRUE(ok) << "up=" << up.value_or(-1) << " dropped=" << seen.value_or(-1) << " (faultctl stats: "
                    << dropped << ") applied{loss}=" << applied_loss.value_or(-1) << "\nprometheus running: "
                    << prom.running() << "\n" << prom.log();
    // What the data path counted as a whole agrees with the fault's own counter.
    auto prog = prom_query(hub, pport, "faultline_datapath_dropped_packets_total");
    EXPECT_EQ(prog, static_cast<double>(dropped));
    auto active = prom_query(hub, pport, "faultline_faults_active");
    EXPECT_EQ(active, 1.0);
    auto lease = prom_query(hub, pport, "faultline_lease_remaining_seconds");
    ASSERT_TRUE(lease.has_value());
    EXPECT_GT(*lease, 0.0);
    EXPECT_LE(*lease, 15.0);
  }
  sh("rm -rf " + dir);
}

TEST(Metrics, EndedFaultsAndRefusalsAreCounted) {
  if (!require_root()) return;
  Lab lab(2);
  const std::string hub = lab.hub();
  const int mport = free_port(hub);
  Daemon::Options o;
  o.netns = hub;
  o.extra = {"--metrics", "127.0.0.1:" + std::to_string(mport)};
  Daemon d(o);
  json fault = {{"kind", "partition"},
                {"sides", {{{"name", "a"}, {"cidrs", {Lab::ip4(0)}}}, {{"name", "b"}, {"cidrs", {Lab::ip4(1)}}}}},
                {"targets", json::array({lab.target(0)})},
                {"duration_ms", 60000}};
  json r = d.call("apply", {{"fault", fault}});
  ASSERT_FALSE(r.is_null());
  const std::string id = std::to_string(r["fault"]["id"].get<uint64_t>());
  EXPECT_FALSE(lab.ping(0, 1));
  EXPECT_FALSE(lab.ping(0, 1));
  json got = d.call("get", {{"fault", id}});
  ASSERT_FALSE(got.is_null());
  const uint64_t dropped = got["fault"]["counters"]["dropped"].get<uint64_t>();
  EXPECT_GE(dropped, 2u);
  d.call("heal", {{"fault", id}});
  EXPECT_FALSE(d.call_error("heal", {{"fault", "no-such-fault"}}).is_null());
  std::string text = body_of(http_raw(hub, mport, "GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_NE(text.find("\nfaultline_faults_applied_total{kind=\"partition\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nfaultline_faults_ended_total{kind=\"partition\",how=\"healed\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nfaultline_requests_refused_total{op=\"heal\",code=\"not_found\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nfaultline_apply_duration_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nfaultline_faults_active 0\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("faultline_fault_matched_packets_total{"), std::string::npos) << "an ended fault is still listed";
  // The target was let go with its last fault; what its data path counted stays in the total.
  EXPECT_NE(text.find("\nfaultline_datapath_dropped_packets_total " + std::to_string(dropped) + "\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, AnAddressThatCannotBeBoundStopsTheDaemonBeforeItStarts) {
  if (!require_root()) return;
  Lab lab(1);
  const std::string hub = lab.hub();
  const int port = free_port(hub);
  int holder = -1;
  in_netns(hub, [&] {
    holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(holder, 1), 0);
  });
  const std::string dir = temp_dir();
  struct Case {
    std::string addr, why;
  } cases[] = {
      {"127.0.0.1:" + std::to_string(port), "bind: Address already in use"},
      {"10.200.99.99:9464", "bind: Cannot assign requested address"},  // not an address of this namespace
  };
  for (const auto& c : cases) {
    Cmd r = sh("ip netns exec " + hub + " " + FL_FAULTLINED_PATH + " --socket " + dir + "/s.sock --state-dir " + dir +
               "/state --metrics " + c.addr + " 2>&1");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("--metrics: metrics listener on " + c.addr + ": " + c.why), std::string::npos) << r.out;
    // It stopped before opening its state directory, let alone loading anything.
    EXPECT_NE(access((dir + "/state").c_str(), F_OK), 0) << c.addr;
  }
  close(holder);
  sh("rm -rf " + dir);
}

TEST(Metrics, HostileHttpNeverStallsTheDaemon) {
  if (!require_root()) return;
  Lab lab(1);
  const std::string hub = lab.hub();
  const int mport = free_port(hub);
  Daemon::Options o;
  o.netns = hub;
  o.extra = {"--metrics", "127.0.0.1:" + std::to_string(mport)};
  Daemon d(o);

  auto status_time = [&] {
    auto t0 = std::chrono::steady_clock::now();
    auto c = faultctl(d, "status");
    EXPECT_EQ(c.status, 0) << c.out;
    EXPECT_TRUE(d.request({{"op", "status"}}).value("ok", false));
    return std::chrono::steady_clock::now() - t0;
  };

  // Silent connections fill every slot (16): the daemon must keep serving its socket.
  std::vector<int> silent;
  for (int i = 0; i < 16; i++) {
    int s = connect_in(hub, mport);
    ASSERT_GE(s, 0);
    silent.push_back(s);
  }
  // One that sent half a request line, then nothing (slowloris).
  int half = connect_in(hub, mport);
  ASSERT_GE(half, 0);
  (void)send(half, "GET /metr", 9, MSG_NOSIGNAL);
  const auto opened = std::chrono::steady_clock::now();
  EXPECT_LT(status_time(), 1s * time_scale()) << "faultctl status slowed down by silent metrics connections";
  // Over the cap: accepted and closed at once, not queued.
  {
    std::string r = http_raw(hub, mport, "GET /metrics HTTP/1.1\r\n\r\n", 2s);
    EXPECT_EQ(r, "") << "a connection over the cap was served";
  }
  // The silent ones are closed by the daemon after its 10 s limit, the slots freed.
  for (int s : silent) {
    std::string r = read_all(s, 15s * time_scale());
    EXPECT_EQ(r, "");
    close(s);
  }
  EXPECT_EQ(read_all(half, 2s), "");
  close(half);
  auto waited = std::chrono::steady_clock::now() - opened;
  EXPECT_GE(waited, 9s) << "closed before the per-connection limit";
  EXPECT_LT(waited, 11s + 3s * time_scale()) << "not closed at the per-connection limit";

  struct Case {
    std::string name, request, status;
  } cases[] = {
      {"no request line", "\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"garbage", "hello\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"two spaces", "GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"not HTTP", "GET /metrics FTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"HTTP/2", "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
      {"POST", "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 405 Method Not Allowed"},
      {"DELETE", "DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
      {"other path", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"prefix path", "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"},
      {"huge headers", "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"endless header", "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(20000, 'a'),
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"HTTP/1.0", "GET /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"},
      {"bare LF", "GET /metrics?x=1 HTTP/1.1\n\n", "HTTP/1.1 200 OK"},
  };
  for (const auto& c : cases) {
    std::string r = http_raw(hub, mport, c.request, 3s);
    EXPECT_EQ(status_line(r), c.status) << c.name << ":\n" << r.substr(0, 300);
    if (c.name == "POST") EXPECT_NE(r.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << r;
    if (c.status == "HTTP/1.1 200 OK") EXPECT_NE(body_of(r).find("# TYPE faultline_faults_active gauge\n"), std::string::npos);
  }
  std::string head = http_raw(hub, mport, "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_line(head), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(head), "");
  EXPECT_LT(status_time(), 1s * time_scale());
}

}  // namespace
}  // namespace fl::test
