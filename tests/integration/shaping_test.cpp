// Shaping faults end to end: faultctl -> faultlined -> HTB/netem/ifb in lab namespaces, measured
// with real traffic (ping, iperf3, UDP with send timestamps). Runs on both kernels of the matrix:
// on 6.18 (no netem) the rate tests run and the netem tests check the refusal; in the 6.1 VM
// (tests/vm/run) every test runs, including the accuracy goals of delay, jitter and rate.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/lab_util.h"
#include "kernel/features.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

// Responsiveness bounds stretch where the CPU is emulated; accuracy bounds never do.
int time_scale() {
  const char* s = std::getenv("FL_TEST_TIME_SCALE");
  int v = s ? std::atoi(s) : 1;
  return v > 0 ? v : 1;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  double m = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

// Round-trip times in ms of `count` pings, 10 ms apart (root may go below 200 ms).
std::vector<double> ping_rtts(const std::string& ns, const std::string& ip, int count, int* dups = nullptr) {
  Cmd c = sh("ip netns exec " + ns + " ping -n -c " + std::to_string(count) + " -i 0.01 -W 2 " + ip + " 2>&1");
  std::vector<double> out;
  std::regex time_re("time=([0-9.]+) ms");
  std::istringstream in(c.out);
  std::string line;
  int d = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.find("DUP!") != std::string::npos) {
      d++;
      continue;
    }
    if (std::regex_search(line, m, time_re)) out.push_back(std::stod(m[1]));
  }
  if (dups) *dups = d;
  return out;
}

// TCP goodput in bit/s of an iperf3 run from client_ns to server_ip (a server in server_ns). The
// first 2 s (slow start filling the class's queue) are left out.
double iperf_bps(const std::string& client_ns, const std::string& server_ns, const std::string& server_ip,
                 int seconds = 5) {
  static int port = 15201;
  int p = port++;
  std::string log = "/tmp/fl-iperf-" + std::to_string(getpid()) + "-" + std::to_string(p) + ".log";
  sh("ip netns exec " + server_ns + " iperf3 -s -1 -p " + std::to_string(p) + " >" + log + " 2>&1 &");
  // The server needs a moment to listen; the client retries instead of sleeping blindly.
  Cmd c;
  for (int i = 0; i < 50; i++) {
    c = sh("ip netns exec " + client_ns + " iperf3 -c " + server_ip + " -p " + std::to_string(p) + " -t " +
           std::to_string(seconds) + " -O 2 -J 2>/dev/null");
    // iperf3 -J may exit 0 with an "error" member: a refused connection means the server is
    // not listening yet.
    if (c.status == 0 && c.out.find("Connection refused") == std::string::npos) break;
    usleep(100000);
  }
  unlink(log.c_str());
  if (c.status != 0) {
    ADD_FAILURE() << "iperf3 failed: " << c.out.substr(0, 500);
    return 0;
  }
  auto j = json::parse(c.out, nullptr, false);
  if (j.is_discarded() || !j["end"]["sum_received"]["bits_per_second"].is_number()) {
    ADD_FAILURE() << "iperf3 " << client_ns << " -> " << server_ip << " gave no result: " << c.out.substr(0, 800);
    return 0;
  }
  return j["end"]["sum_received"]["bits_per_second"].get<double>();
}

// Median one-way delay in ms from ns `from` to ns `to` (addr), by UDP datagrams carrying their
// CLOCK_MONOTONIC send time: namespaces share the clock, so no round trip is needed to see each
// direction on its own.
double one_way_ms(const std::string& from, const std::string& to, const std::string& addr, int count) {
  static std::atomic<int> next_port{17000};
  int port = next_port++;
  std::vector<double> delays;
  std::atomic<bool> ready{false};
  std::thread rx([&] {
    in_netns(to, [&] {
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
      ready = true;
      int idle_ms = 0;
      while (static_cast<int>(delays.size()) < count && idle_ms < 3000) {
        pollfd pfd{s, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) {
          idle_ms += 100;
          continue;
        }
        idle_ms = 0;
        int64_t sent = 0;
        if (recv(s, &sent, sizeof sent, 0) != sizeof sent) continue;
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = ts.tv_sec * 1000000000ll + ts.tv_nsec;
        delays.push_back(static_cast<double>(now - sent) / 1e6);
      }
      close(s);
    });
  });
  while (!ready) usleep(1000);
  in_netns(from, [&] {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
    for (int i = 0; i < count; i++) {
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      int64_t now = ts.tv_sec * 1000000000ll + ts.tv_nsec;
      sendto(s, &now, sizeof now, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      usleep(10000);
    }
    close(s);
  });
  rx.join();
  return median(delays);
}

std::string root_qdisc(const std::string& ns, const std::string& dev = "eth0") {
  Cmd c = sh("ip netns exec " + ns + " tc -d qdisc show dev " + dev + " root");
  return c.out;
}

bool link_exists(const std::string& ns, const std::string& dev) {
  return sh("ip netns exec " + ns + " ip link show dev " + dev + " >/dev/null 2>&1").status == 0;
}

std::string ifb_of(const std::string& ns, const std::string& dev = "eth0") {
  Cmd c = sh("ip netns exec " + ns + " cat /sys/class/net/" + dev + "/ifindex");
  std::string idx = c.out.substr(0, c.out.find_first_of("\r\n"));
  return "flifb" + idx;
}

// GTEST_SKIP returns from the function it is in, so this must expand in the test body.
#define NEED_NETEM()                                                                                  \
  do {                                                                                                \
    if (!netem_)                                                                                      \
      GTEST_SKIP() << "this kernel has no netem (CONFIG_NET_SCH_NETEM); the VM tier runs this on 6.1"; \
  } while (0)

class Shaping : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!require_root()) return;
    if (sh("command -v iperf3 >/dev/null && command -v tc >/dev/null && command -v ping >/dev/null").status != 0)
      GTEST_SKIP() << "iperf3, tc and ping are needed (tools/setup installs them)";
    lab_ = std::make_unique<Lab>(3);
    d_ = std::make_unique<Daemon>();
    json st = d_->call("status");
    netem_ = st["features"].value("netem", "unknown") == "yes";
    htb_ = st["features"].value("htb", "unknown") == "yes";
    ifb_ = st["features"].value("ifb", "unknown") == "yes";
    if (!htb_) GTEST_SKIP() << "this kernel has no HTB qdisc (CONFIG_NET_SCH_HTB): no shaping at all";
  }


  Cmd ctl(const std::string& args) { return faultctl(*d_, args); }

  uint64_t apply(const std::string& args) {
    Cmd c = ctl("-o json " + args);
    EXPECT_EQ(c.status, 0) << args << ":\n" << c.out;
    auto j = json::parse(c.out, nullptr, false);
    if (j.is_discarded() || !j.contains("id")) {
      if (!j.is_discarded() && j.contains("fault")) return j["fault"]["id"].get<uint64_t>();
      ADD_FAILURE() << "no id in: " << c.out;
      return 0;
    }
    return j["id"].get<uint64_t>();
  }

  json get(uint64_t id) {
    json r = d_->call("get", {{"fault", std::to_string(id)}});
    return r.is_null() ? json() : r["fault"];
  }

  void heal(uint64_t id) { EXPECT_EQ(ctl("heal " + std::to_string(id)).status, 0); }

  std::string ns(int i) const { return lab_->ns(i); }
  std::string target(int i) const { return " --target " + lab_->target(i); }

  std::unique_ptr<Lab> lab_;
  std::unique_ptr<Daemon> d_;
  bool netem_ = false, htb_ = false, ifb_ = false;
};

// ---- everywhere: refusals, rate through HTB, the root qdisc put back ----

TEST_F(Shaping, NetemFaultsAreRefusedNamingTheKernelOptionBeforeAnythingChanges) {
  if (netem_) GTEST_SKIP() << "this kernel has netem; the refusal is tested where it is missing";
  std::string before = root_qdisc(ns(0));
  for (const std::string cmd : {"delay 100ms", "corrupt 5", "duplicate 5", "reorder 25 --delay 10ms",
                                "shape --rate 10mbit --delay 5ms"}) {
    Cmd c = ctl(cmd + " --dst " + Lab::ip4(1) + target(0));
    EXPECT_EQ(c.status, 1) << cmd << ": " << c.out;
    EXPECT_NE(c.out.find("CONFIG_NET_SCH_NETEM"), std::string::npos) << cmd << ": " << c.out;
    EXPECT_EQ(root_qdisc(ns(0)), before) << cmd;
    Hooks h = hooks_on(ns(0), "eth0");
    EXPECT_EQ(h.tcx + h.tc_filters, 0) << cmd << ": a refused fault attached something";
  }
  EXPECT_EQ(d_->call("list")["faults"].size(), 0u);
}

TEST_F(Shaping, RateLimitsEgressToWithinFivePercentAndLeavesOtherTrafficAlone) {
  std::string before = root_qdisc(ns(0));
  uint64_t id = apply("rate 10mbit --dst " + Lab::ip4(1) + target(0) + " --for 5m");
  EXPECT_NE(root_qdisc(ns(0)).find("htb"), std::string::npos) << root_qdisc(ns(0));
  double shaped = iperf_bps(ns(0), ns(1), Lab::ip4(1));
  double other = iperf_bps(ns(0), ns(2), Lab::ip4(2), 2);
  RecordProperty("goodput_bps", std::to_string(shaped));
  std::printf("rate 10mbit: goodput %.3f Mbit/s (%.1f %% off); unshaped neighbour %.1f Mbit/s\n", shaped / 1e6,
              (shaped / 1e7 - 1) * 100, other / 1e6);
  EXPECT_NEAR(shaped, 10e6, 0.05 * 10e6);
  EXPECT_GT(other, 3 * shaped) << "traffic to another node went through the rate limit";
  json f = get(id);
  // Counted per skb the program saw: a GSO batch is one.
  EXPECT_GT(f["counters"]["shaped"].get<uint64_t>(), 100u) << f.dump();
  EXPECT_EQ(f["counters"]["shaped"], f["counters"]["matched"]) << f.dump();
  heal(id);
  EXPECT_EQ(root_qdisc(ns(0)), before);
}

// Both attach paths: tcx redirects with bpf_redirect(), the legacy clsact path through a
// mirred filter (kernels before 6.4 drop bpf_redirect()ed packets at the ifb).
TEST_F(Shaping, IngressRateGoesThroughAnIfbAsAccuratelyAsEgress) {
  if (!ifb_) GTEST_SKIP() << "this kernel has no ifb (CONFIG_IFB)";
  bool tcx = kernel::probe_features().tcx == kernel::Tri::yes;
  for (std::string mode : {"tcx", "tc"}) {
    if (mode == "tcx" && !tcx) {
      std::printf("ingress rate: no tcx on this kernel, legacy path only\n");
      continue;
    }
    d_.reset();
    d_ = std::make_unique<Daemon>(Daemon::Options{.attach_mode = mode});
    std::string before = root_qdisc(ns(0));
    std::string ifb = ifb_of(ns(0));
    uint64_t id = apply("rate 10mbit --direction ingress --src " + Lab::ip4(1) + target(0) + " --for 5m");
    EXPECT_TRUE(link_exists(ns(0), ifb)) << mode;
    EXPECT_EQ(root_qdisc(ns(0)), before) << "ingress shaping must not touch the interface's own root qdisc";
    double shaped = iperf_bps(ns(1), ns(0), Lab::ip4(0));
    std::printf("ingress rate 10mbit (%s): goodput %.3f Mbit/s (%.1f %% off)\n", mode.c_str(), shaped / 1e6,
                (shaped / 1e7 - 1) * 100);
    EXPECT_NEAR(shaped, 10e6, 0.05 * 10e6) << mode;
    heal(id);
    EXPECT_FALSE(link_exists(ns(0), ifb)) << mode << ": the ifb outlived its last fault";
    Hooks h = hooks_on(ns(0), "eth0");
    EXPECT_EQ(h.tcx + h.tc_filters, 0) << mode << ": hooks left after heal";
    EXPECT_EQ(sh("ip netns exec " + ns(0) + " tc filter show dev eth0 ingress").out, "") << mode;
  }
}

TEST_F(Shaping, TheMostRecentlyAppliedRateWinsAndHealingItGivesTheOlderOneBack) {
  uint64_t older = apply("rate 2mbit --dst " + Lab::ip4(1) + target(0));
  uint64_t newer = apply("rate 8mbit --dst " + Lab::ip4(1) + target(0));
  double both = iperf_bps(ns(0), ns(1), Lab::ip4(1), 3);
  EXPECT_NEAR(both, 8e6, 0.1 * 8e6);
  heal(newer);
  double old_only = iperf_bps(ns(0), ns(1), Lab::ip4(1), 3);
  EXPECT_NEAR(old_only, 2e6, 0.1 * 2e6);
  std::printf("2mbit then 8mbit: %.2f Mbit/s; after healing the 8mbit one: %.2f Mbit/s\n", both / 1e6,
              old_only / 1e6);
  heal(older);
}

TEST_F(Shaping, AForeignRootQdiscIsRefusedUnlessReplaceRootAndThenRestoredExactly) {
  ASSERT_EQ(sh("ip netns exec " + ns(0) + " tc qdisc replace dev eth0 root handle 7: tbf rate 50mbit burst 64kb latency 50ms").status, 0);
  std::string before = root_qdisc(ns(0));
  ASSERT_NE(before.find("tbf"), std::string::npos) << before;
  Cmd c = ctl("rate 10mbit --dst " + Lab::ip4(1) + target(0));
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("--replace-root"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("tbf"), std::string::npos) << c.out;
  EXPECT_EQ(root_qdisc(ns(0)), before) << "a refused apply changed the root qdisc";
  Hooks h = hooks_on(ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0) << "a refused apply left hooks behind";

  uint64_t id = apply("rate 10mbit --replace-root --dst " + Lab::ip4(1) + target(0));
  EXPECT_NE(root_qdisc(ns(0)).find("htb"), std::string::npos);
  heal(id);
  EXPECT_EQ(root_qdisc(ns(0)), before) << "kind, handle and parameters must come back";
}

// A size table cannot be read back whole (the kernel dumps its base, not its cells), so even a
// default kind that carries one is somebody's configuration.
TEST_F(Shaping, ARootQdiscWithASizeTableIsSomebodysConfiguration) {
  ASSERT_EQ(sh("ip netns exec " + ns(0) + " tc qdisc replace dev eth0 root stab overhead 20 pfifo_fast").status, 0);
  std::string before = root_qdisc(ns(0));
  Cmd c = ctl("rate 10mbit --dst " + Lab::ip4(1) + target(0));
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("size table"), std::string::npos) << c.out;
  EXPECT_EQ(root_qdisc(ns(0)), before);
  // Loss needs no class, so no tree: it applies whatever the root qdisc is.
  uint64_t id = apply("shape --loss 1 --dst " + Lab::ip4(1) + target(0));
  EXPECT_EQ(root_qdisc(ns(0)), before);
  heal(id);
}

// The interface goes (a pod's veth deleted) while it is shaped both ways: healing still removes
// the ifb, on both attach paths, and the daemon stays clean for the next fault.
TEST_F(Shaping, AnInterfaceDeletedDuringAFaultLeavesNoIfbBehind) {
  if (!ifb_) GTEST_SKIP() << "this kernel has no ifb (CONFIG_IFB)";
  bool tcx = kernel::probe_features().tcx == kernel::Tri::yes;
  for (std::string mode : {"tcx", "tc"}) {
    if (mode == "tcx" && !tcx) continue;
    Lab lab(2);
    d_.reset();
    d_ = std::make_unique<Daemon>(Daemon::Options{.attach_mode = mode});
    std::string ifb = ifb_of(lab.ns(0));
    uint64_t id = apply("rate 10mbit --direction both --dst " + Lab::ip4(1) + " --target " + lab.target(0));
    ASSERT_TRUE(link_exists(lab.ns(0), ifb)) << mode;
    ASSERT_EQ(sh("ip netns exec " + lab.ns(0) + " ip link del eth0").status, 0);
    // The daemon notices the deleted interface within a second and ends the fault as gone (a
    // slow machine gets there before us); otherwise the heal ends it.
    Cmd h = ctl("heal " + std::to_string(id));
    if (h.status != 0) EXPECT_EQ(get(id).value("state", ""), "gone") << mode << ": " << h.out;
    EXPECT_FALSE(link_exists(lab.ns(0), ifb)) << mode << ": the ifb outlived its interface's fault";
    EXPECT_EQ(d_->call("list")["faults"].size(), 0u);
    // And the slow path for certain: a second fault, left for the daemon to notice.
    id = apply("rate 10mbit --direction both --dst " + Lab::ip4(0) + " --target " + lab.target(1));
    std::string ifb1 = ifb_of(lab.ns(1));
    ASSERT_TRUE(link_exists(lab.ns(1), ifb1)) << mode;
    ASSERT_EQ(sh("ip netns exec " + lab.ns(1) + " ip link del eth0").status, 0);
    EXPECT_TRUE(eventually([&] { return get(id).value("state", "") == "gone"; }, 5s)) << mode;
    EXPECT_FALSE(link_exists(lab.ns(1), ifb1)) << mode << ": the ifb outlived its interface";
  }
}

TEST_F(Shaping, ADuplicatingNetemNeverSharesATreeWithAnotherNetem) {
  NEED_NETEM();
  uint64_t id = apply("delay 10ms --dst " + Lab::ip4(1) + target(0));
  std::string tree = sh("ip netns exec " + ns(0) + " tc qdisc show dev eth0").out;
  Cmd c = ctl("duplicate 10 --dst " + Lab::ip4(2) + target(0));
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("duplicating netem"), std::string::npos) << c.out;
  EXPECT_EQ(sh("ip netns exec " + ns(0) + " tc qdisc show dev eth0").out, tree) << "the refusal changed the tree";
  heal(id);
  // Alone it is fine, and then a delay is the one refused.
  id = apply("duplicate 10 --dst " + Lab::ip4(2) + target(0));
  c = ctl("delay 10ms --dst " + Lab::ip4(1) + target(0));
  EXPECT_EQ(c.status, 1) << c.out;
  heal(id);
}

// mq: what a multiqueue device gets from the kernel (here an ifb with four tx queues, the
// lab's veths being noqueue). Replaced without a flag, and back with its default children.
TEST_F(Shaping, AnMqRootIsReplacedAndComesBackWithItsDefaultChildren) {
  if (!ifb_) GTEST_SKIP() << "this kernel has no ifb (CONFIG_IFB) to make a multiqueue device with";
  ASSERT_EQ(sh("ip -n " + ns(0) + " link add mq0 numtxqueues 4 type ifb && ip -n " + ns(0) + " link set mq0 up").status, 0);
  std::string before = sh("ip netns exec " + ns(0) + " tc qdisc show dev mq0").out;
  ASSERT_NE(before.find("qdisc mq 0: root"), std::string::npos) << before;
  uint64_t id = apply("rate 10mbit --dev mq0 --dst " + Lab::ip4(1) + target(0));
  EXPECT_NE(root_qdisc(ns(0), "mq0").find("htb"), std::string::npos);
  heal(id);
  EXPECT_EQ(sh("ip netns exec " + ns(0) + " tc qdisc show dev mq0").out, before);
}

// fq_codel, Debian's default_qdisc: replaced without a flag only with its default parameters.
TEST_F(Shaping, FqCodelIsReplacedOnlyWithItsDefaultParameters) {
  if (sh("ip netns exec " + ns(0) + " tc qdisc replace dev eth0 root fq_codel 2>&1").status != 0)
    GTEST_SKIP() << "this kernel has no fq_codel (CONFIG_NET_SCH_FQ_CODEL); the VM tier runs this on 6.1";
  std::string before = root_qdisc(ns(0));
  uint64_t id = apply("rate 10mbit --dst " + Lab::ip4(1) + target(0));
  heal(id);
  EXPECT_EQ(root_qdisc(ns(0)), before) << "fq_codel with its defaults must come back the same";

  ASSERT_EQ(sh("ip netns exec " + ns(0) + " tc qdisc replace dev eth0 root fq_codel target 10ms").status, 0);
  std::string tuned = root_qdisc(ns(0));
  Cmd c = ctl("rate 10mbit --dst " + Lab::ip4(1) + target(0));
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("fq_codel"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("--replace-root"), std::string::npos) << c.out;
  EXPECT_EQ(root_qdisc(ns(0)), tuned);
  id = apply("rate 10mbit --replace-root --dst " + Lab::ip4(1) + target(0));
  heal(id);
  EXPECT_EQ(root_qdisc(ns(0)), tuned) << "a tuned fq_codel must come back with its tuning";
}

TEST_F(Shaping, ExpiryRestoresTheRootQdiscAndRemovesTheIfb) {
  std::string before = root_qdisc(ns(0));
  std::string ifb = ifb_of(ns(0));
  std::string dir = ifb_ ? " --direction both" : "";
  apply("rate 10mbit" + dir + " --dst " + Lab::ip4(1) + target(0) + " --for " + std::to_string(2 * time_scale()) + "s");
  EXPECT_NE(root_qdisc(ns(0)), before);
  EXPECT_TRUE(eventually([&] { return root_qdisc(ns(0)) == before && !link_exists(ns(0), ifb); },
                         std::chrono::milliseconds(6000 * time_scale())))
      << root_qdisc(ns(0));
}

TEST_F(Shaping, SigkilledDaemonLeavesAtMostAnIdleTreeThatTheNextStartRemoves) {
  std::string before = root_qdisc(ns(0));
  std::string ifb = ifb_of(ns(0));
  apply("rate 5mbit --dst " + Lab::ip4(1) + target(0) + " --for 2s");
  if (ifb_) apply("rate 5mbit --direction ingress --src " + Lab::ip4(1) + target(0) + " --for 2s");
  d_->kill9();
  // The fault's own expiry (2 s) passes: whatever is attached stops classifying in the kernel.
  usleep(static_cast<useconds_t>(2500000));
  double after = iperf_bps(ns(0), ns(1), Lab::ip4(1), 2);
  EXPECT_GT(after, 3 * 5e6) << "traffic still shaped after the fault expired with its daemon dead";
  d_->start();
  EXPECT_TRUE(eventually([&] { return root_qdisc(ns(0)) == before && !link_exists(ns(0), ifb); },
                         std::chrono::milliseconds(5000 * time_scale())))
      << "left behind: " << root_qdisc(ns(0));
}

TEST_F(Shaping, SigtermPutsEveryInterfaceBackAndExitsZero) {
  std::string before = root_qdisc(ns(0));
  std::string ifb = ifb_of(ns(0));
  apply("rate 10mbit --dst " + Lab::ip4(1) + target(0));
  if (ifb_) apply("rate 10mbit --direction ingress --src " + Lab::ip4(1) + target(0));
  ASSERT_NE(root_qdisc(ns(0)), before);
  EXPECT_EQ(d_->terminate(), 0);
  EXPECT_EQ(root_qdisc(ns(0)), before);
  EXPECT_FALSE(link_exists(ns(0), ifb));
  Hooks h = hooks_on(ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0);
  d_->start();  // for TearDown's symmetry; nothing is left for it to clean
}

TEST_F(Shaping, StatusReportsEveryShapingFeatureItProbed) {
  Cmd c = ctl("-o json status");
  ASSERT_EQ(c.status, 0) << c.out;
  auto j = json::parse(c.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << c.out;
  for (const char* k : {"netem", "htb", "tbf", "fq", "ifb", "tcx"}) {
    ASSERT_TRUE(j["features"].contains(k)) << k << " missing in " << c.out;
    std::string v = j["features"][k].get<std::string>();
    EXPECT_TRUE(v == "yes" || v == "no") << k << " = " << v << ": a probe that could not decide";
  }
  Cmd table = ctl("status");
  EXPECT_NE(table.out.find("netem"), std::string::npos) << table.out;
}

// ---- netem: refused above where missing; measured here where present ----

TEST_F(Shaping, DelayHundredMsMedianWithinTwoMsOverBaseline) {
  NEED_NETEM();
  auto base = ping_rtts(ns(0), Lab::ip4(1), 200);
  uint64_t id = apply("delay 100ms --dst " + Lab::ip4(1) + target(0));
  auto delayed = ping_rtts(ns(0), Lab::ip4(1), 200);
  ASSERT_GE(base.size(), 190u);
  ASSERT_GE(delayed.size(), 190u);
  double added = median(delayed) - median(base);
  std::printf("delay 100ms: median rtt %.3f ms over a baseline of %.3f ms: +%.3f ms\n", median(delayed),
              median(base), added);
  EXPECT_NEAR(added, 100.0, 2.0);
  heal(id);
}

TEST_F(Shaping, JitterStandardDeviationWithinAQuarterOfWhatTheDistributionImplies) {
  NEED_NETEM();
  struct Case {
    const char* dist;
    double expect_ms;  // standard deviation of the added delay
  } cases[] = {{"uniform", 20.0 / std::sqrt(3.0)}, {"normal", 20.0}};
  for (const auto& c : cases) {
    uint64_t id = apply(std::string("delay 100ms --jitter 20ms --distribution ") + c.dist + " --dst " + Lab::ip4(1) +
                        target(0));
    auto rtts = ping_rtts(ns(0), Lab::ip4(1), 300);
    ASSERT_GE(rtts.size(), 280u);
    double sd = stddev(rtts);
    std::printf("jitter 20ms %s: rtt sd %.2f ms, expected %.2f ms (median %.2f)\n", c.dist, sd, c.expect_ms,
                median(rtts));
    EXPECT_NEAR(sd, c.expect_ms, 0.25 * c.expect_ms) << c.dist;
    EXPECT_NEAR(median(rtts), 100.0, 5.0) << c.dist;
    heal(id);
  }
}

TEST_F(Shaping, IngressDelayIsAsAccurateAsEgress) {
  NEED_NETEM();
  if (!ifb_) GTEST_SKIP() << "this kernel has no ifb (CONFIG_IFB)";
  auto base = ping_rtts(ns(1), Lab::ip4(0), 200);
  // Node 0 delays what it receives from node 1: node 1's pings come back 100 ms later.
  uint64_t id = apply("delay 100ms --direction ingress --src " + Lab::ip4(1) + target(0));
  auto delayed = ping_rtts(ns(1), Lab::ip4(0), 200);
  ASSERT_GE(delayed.size(), 190u);
  double added = median(delayed) - median(base);
  std::printf("ingress delay 100ms: +%.3f ms\n", added);
  EXPECT_NEAR(added, 100.0, 2.0);
  heal(id);
}

TEST_F(Shaping, MatrixOfThreeSidesDelaysEachOrderedPairByItsOwnAmount) {
  NEED_NETEM();
  // Each node is a side, padded to 10,000 addresses (of the lab's range, never used for traffic).
  std::string path = "/tmp/fl-matrix-" + std::to_string(getpid()) + ".yaml";
  {
    std::ofstream f(path);
    f << "sides:\n";
    for (int s = 0; s < 3; s++) {
      f << "  n" << s << ": [" << Lab::ip4(s);
      for (int i = 1; i < 10000; i++) f << ", 10.200." << (16 + s * 40 + i / 250) << "." << (i % 250 + 1);
      f << "]\n";
    }
    f << "pairs:\n";
    int ms[3][3] = {{0, 10, 20}, {30, 0, 40}, {50, 60, 0}};
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++)
        if (a != b) f << "  - {from: n" << a << ", to: n" << b << ", delay: " << ms[a][b] << "ms}\n";
  }
  int ms[3][3] = {{0, 10, 20}, {30, 0, 40}, {50, 60, 0}};
  double base[3][3] = {};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++)
      if (a != b) base[a][b] = one_way_ms(ns(a), ns(b), Lab::ip4(b), 50);
  uint64_t id = apply("matrix " + path + target(0) + target(1) + target(2));
  unlink(path.c_str());
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      if (a == b) continue;
      double d = one_way_ms(ns(a), ns(b), Lab::ip4(b), 100) - base[a][b];
      std::printf("matrix n%d -> n%d: one-way +%.2f ms over a baseline of %.2f ms (set %d ms)\n", a, b, d,
                  base[a][b], ms[a][b]);
      EXPECT_NEAR(d, ms[a][b], 2.0) << "n" << a << " -> n" << b;
    }
  json f = get(id);
  EXPECT_EQ(f["pairs"].size(), 6u) << f.dump().substr(0, 2000);
  heal(id);
}

TEST_F(Shaping, DuplicateCorruptAndReorderDoWhatTheySay) {
  NEED_NETEM();
  {
    uint64_t id = apply("duplicate 50 --dst " + Lab::ip4(1) + target(0));
    int dups = 0;
    auto r = ping_rtts(ns(0), Lab::ip4(1), 200, &dups);
    // Each request is duplicated with p = 0.5 (the replies are not: node 1 is not shaped).
    EXPECT_GT(dups, 60);
    EXPECT_LT(dups, 140);
    heal(id);
  }
  {
    uint64_t id = apply("corrupt 100 --proto icmp --dst " + Lab::ip4(1) + target(0));
    auto r = ping_rtts(ns(0), Lab::ip4(1), 100);
    EXPECT_LT(r.size(), 20u) << "corrupted echo requests were answered";
    heal(id);
  }
  {
    uint64_t id = apply("reorder 50 --delay 50ms --dst " + Lab::ip4(1) + target(0));
    auto r = ping_rtts(ns(0), Lab::ip4(1), 200);
    size_t fast = static_cast<size_t>(std::count_if(r.begin(), r.end(), [](double x) { return x < 25; }));
    // netem sends "reorder" percent of packets at once and delays the rest.
    EXPECT_GT(fast, 60u);
    EXPECT_LT(fast, 140u);
    heal(id);
  }
}

TEST_F(Shaping, DelayEndsInTheKernelWhenTheDaemonIsKilled) {
  NEED_NETEM();
  std::string before = root_qdisc(ns(0));
  int life_s = 3 * time_scale();
  apply("delay 100ms --dst " + Lab::ip4(1) + target(0) + " --for " + std::to_string(life_s) + "s");
  d_->kill9();
  sleep(static_cast<unsigned>(life_s) + 1);
  auto r = ping_rtts(ns(0), Lab::ip4(1), 50);
  ASSERT_GE(r.size(), 45u);
  EXPECT_LT(median(r), 50.0) << "the delay outlived its expiry with the daemon dead";
  d_->start();
  EXPECT_TRUE(eventually([&] { return root_qdisc(ns(0)) == before; }, std::chrono::milliseconds(5000 * time_scale())))
      << root_qdisc(ns(0));
}

}  // namespace
}  // namespace fl::test
