// Real packets through real namespaces, against a real faultlined, on both attach paths.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "kernel/features.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

json side(const std::string& name, const std::vector<std::string>& cidrs) {
  return {{"name", name}, {"cidrs", cidrs}};
}

json targets_of(const Lab& lab, std::initializer_list<int> nodes) {
  json t = json::array();
  for (int i : nodes) t.push_back(lab.target(i));
  return t;
}

json all_targets(const Lab& lab) {
  json t = json::array();
  for (int i = 0; i < lab.size(); i++) t.push_back(lab.target(i));
  return t;
}

uint64_t apply_ok(Daemon& d, json fault) {
  json r = d.call("apply", {{"fault", fault}});
  if (r.is_null()) return 0;
  return r["fault"]["id"].get<uint64_t>();
}

json counters_of(Daemon& d, uint64_t id) {
  json r = d.call("get", {{"fault", std::to_string(id)}});
  return r.is_null() ? json() : r["fault"]["counters"];
}

// A listening TCP socket in a namespace that accepts and echoes until closed.
class TcpServer {
 public:
  TcpServer(const std::string& ns, int port) {
    in_netns(ns, [&] {
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 64) != 0)
        throw std::runtime_error("listen failed");
    });
    th_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) != 1) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        conns_.emplace_back([this, c] {
          char buf[512];
          while (!stop_) {
            pollfd q{c, POLLIN, 0};
            if (poll(&q, 1, 50) != 1) continue;
            ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0) break;
            if (write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          close(c);
        });
      }
    });
  }
  ~TcpServer() {
    stop_ = true;
    th_.join();
    for (auto& t : conns_) t.join();
    close(fd_);
  }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread th_;
  std::vector<std::thread> conns_;
};

class Faults : public AttachModeTest {
 protected:
  bool nothing_attached(const Lab& lab) {
    for (int i = 0; i < lab.size(); i++) {
      Hooks h = hooks_on(lab.ns(i), "eth0");
      if (h.tcx || h.tc_filters || h.clsact) return false;
    }
    return true;
  }
};

TEST_P(Faults, PartitionTwoSidesCutsOnlyAcrossSides) {
  Lab lab(4);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("ab", {Lab::ip4(0), Lab::ip4(1), Lab::ip6(0), Lab::ip6(1)}),
                           side("cd", {Lab::ip4(2), Lab::ip4(3), Lab::ip6(2), Lab::ip6(3)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  uint64_t id = apply_ok(d, fault);
  ASSERT_NE(id, 0u);
  for (bool v6 : {false, true}) {
    auto m = lab.matrix(v6);
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++) {
        if (a == b) continue;
        bool same_side = (a < 2) == (b < 2);
        EXPECT_EQ(m[a][b], same_side) << (v6 ? "IPv6 " : "IPv4 ") << a << "->" << b;
      }
  }
  json c = counters_of(d, id);
  EXPECT_GT(c["dropped"].get<uint64_t>(), 0u);
  d.call("heal", {{"fault", std::to_string(id)}});
  auto m = lab.matrix();
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      if (a != b) {
        EXPECT_TRUE(m[a][b]) << "after heal " << a << "->" << b;
      }
  EXPECT_TRUE(eventually([&] { return nothing_attached(lab); }, 2s)) << "hooks left after heal";
}

TEST_P(Faults, PartitionThreeSidesAndAnOutsider) {
  Lab lab(4);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)}), side("c", {Lab::ip4(2)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  auto m = lab.matrix();
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      if (a == b) continue;
      bool expect = a == 3 || b == 3;  // node 3 is in no side: untouched
      EXPECT_EQ(m[a][b], expect) << a << "->" << b;
    }
}

TEST_P(Faults, BridgeNodeReachesBothSides) {
  Lab lab(3);
  Daemon d(opts());
  // Node 1 is in both sides (Jepsen's bridge): 0 and 2 cannot talk, both talk to 1.
  json fault = {{"kind", "partition"},
                {"sides", {side("left", {Lab::ip4(0), Lab::ip4(1)}), side("right", {Lab::ip4(1), Lab::ip4(2)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  auto m = lab.matrix();
  EXPECT_TRUE(m[0][1]);
  EXPECT_TRUE(m[1][0]);
  EXPECT_TRUE(m[1][2]);
  EXPECT_TRUE(m[2][1]);
  EXPECT_FALSE(m[0][2]);
  EXPECT_FALSE(m[2][0]);
}

TEST_P(Faults, OneWayDropsOnlyFromFirstSide) {
  Lab lab(2);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0), Lab::ip6(0)}), side("b", {Lab::ip4(1), Lab::ip6(1)})}},
                {"one_way", true},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  for (bool v6 : {false, true}) {
    auto ab = udp_stream(lab.ns(0), lab.ns(1), v6 ? Lab::ip6(1) : Lab::ip4(1), 7001, 200, 200us);
    auto ba = udp_stream(lab.ns(1), lab.ns(0), v6 ? Lab::ip6(0) : Lab::ip4(0), 7002, 200, 200us);
    EXPECT_EQ(ab.received, 0u) << (v6 ? "IPv6" : "IPv4") << " a->b must be cut";
    EXPECT_EQ(ba.received, ba.sent) << (v6 ? "IPv6" : "IPv4") << " b->a must flow";
  }
}

TEST_P(Faults, LossThirtyPercentWithinBinomialInterval) {
  Lab lab(2);
  Daemon d(opts());
  json fault = {{"kind", "loss"},
                {"loss", {{"percent", 30.0}, {"seed", 42}}},
                {"match", {{"proto", "udp"}, {"dport", "7100"}, {"direction", "egress"}}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 120000}};
  uint64_t id = apply_ok(d, fault);
  ASSERT_NE(id, 0u);
  const size_t n = 20000;
  auto r = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), 7100, n);
  ASSERT_EQ(r.sent, n);
  double p = 0.3, sd = std::sqrt(n * p * (1 - p));
  double lost = static_cast<double>(n - r.received);
  // 99 % two-sided binomial interval (normal approximation, z = 2.576).
  EXPECT_NEAR(lost, n * p, 2.576 * sd) << "delivered " << r.received << " of " << n;
  json c = counters_of(d, id);
  EXPECT_EQ(c["matched"].get<uint64_t>(), n);
  // Every loss is ours: nothing else on the path dropped a packet.
  EXPECT_EQ(c["dropped"].get<uint64_t>(), n - r.received);
}

TEST_P(Faults, NewOnlyKeepsEstablishedConnectionAndRefusesNewOnes) {
  Lab lab(2);
  Daemon d(opts());
  TcpServer srv(lab.ns(1), 7200);
  int conn = -1;
  in_netns(lab.ns(0), [&] {
    conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(7200);
    inet_pton(AF_INET, Lab::ip4(1).c_str(), &a.sin_addr);
    ASSERT_EQ(connect(conn, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  });
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"match", {{"new_only", true}}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  for (int i = 0; i < 5; i++) {
    char msg[8] = "ping-0";
    msg[5] = static_cast<char>('0' + i);
    ASSERT_EQ(write(conn, msg, 6), 6);
    char buf[8] = {};
    pollfd p{conn, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 2000), 1) << "established connection stalled";
    ASSERT_EQ(read(conn, buf, 6), 6);
    EXPECT_EQ(std::string(buf, 6), std::string(msg, 6));
  }
  EXPECT_FALSE(tcp_connects(lab.ns(0), Lab::ip4(1), 7200, 1000ms)) << "a new connection got through";
  close(conn);
  d.call("heal", {{"all", true}});
  EXPECT_TRUE(tcp_connects(lab.ns(0), Lab::ip4(1), 7200, 2000ms));
}

TEST_P(Faults, DefaultSshExemptionHoldsUnderFullIsolate) {
  Lab lab(2);
  Daemon d(opts());
  TcpServer ssh(lab.ns(1), 22), web(lab.ns(1), 80);
  json fault = {{"kind", "isolate"},
                {"sides", {side("dead", {Lab::ip4(0)})}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 60000}};
  uint64_t id = apply_ok(d, fault);
  ASSERT_NE(id, 0u);
  EXPECT_TRUE(tcp_connects(lab.ns(0), Lab::ip4(1), 22, 2000ms)) << "SSH must stay reachable";
  EXPECT_FALSE(tcp_connects(lab.ns(0), Lab::ip4(1), 80, 800ms));
  EXPECT_FALSE(lab.ping(0, 1));
  json c = counters_of(d, id);
  EXPECT_GT(c["exempted"].get<uint64_t>(), 0u);
  d.call("heal", {{"all", true}});

  // Without the defaults, SSH is cut like everything else.
  fault["default_exempt"] = false;
  ASSERT_NE(apply_ok(d, fault), 0u);
  EXPECT_FALSE(tcp_connects(lab.ns(0), Lab::ip4(1), 22, 800ms));
}

TEST_P(Faults, SigkillEndsFaultByItsExpiry) {
  Lab lab(2);
  Daemon d(opts("15s"));
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 3000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  auto applied = std::chrono::steady_clock::now();
  ASSERT_FALSE(lab.ping(0, 1));
  d.kill9();
  if (GetParam() == "tc") {
    // Legacy filters outlive the process: the kernel keeps enforcing until the expiry.
    EXPECT_FALSE(lab.ping(0, 1, false, 0.3)) << "the fault ended with the daemon, not at its expiry";
  }
  bool healed = eventually([&] { return lab.ping(0, 1, false, 0.3); }, 6s, 100ms);
  auto at = std::chrono::steady_clock::now() - applied;
  EXPECT_TRUE(healed);
  EXPECT_LE(at, 3s + 1s + 500ms) << "traffic flowed again only "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(at).count() << " ms after apply";
}

TEST_P(Faults, SigkillEndsFaultWithinLeaseWhenLeaseIsShorter) {
  Lab lab(2);
  Daemon d(opts("2s"));
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  ASSERT_FALSE(lab.ping(0, 1));
  auto killed = std::chrono::steady_clock::now();
  d.kill9();
  if (GetParam() == "tc") {
    EXPECT_FALSE(lab.ping(0, 1, false, 0.3)) << "fault must hold until the lease runs out";
  }
  bool healed = eventually([&] { return lab.ping(0, 1, false, 0.3); }, 6s, 100ms);
  auto at = std::chrono::steady_clock::now() - killed;
  EXPECT_TRUE(healed);
  EXPECT_LE(at, 2s + 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(at).count() << " ms after SIGKILL";
}

TEST_P(Faults, RestartAfterSigkillRemovesEveryLeftover) {
  Lab lab(2);
  Daemon d(opts("15s"));
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  d.kill9();
  if (GetParam() == "tc") {
    Hooks h = hooks_on(lab.ns(0), "eth0");
    EXPECT_EQ(h.tc_filters, 2) << "expected our filters to outlive SIGKILL on the legacy path";
  }
  d.start();
  EXPECT_TRUE(eventually([&] { return nothing_attached(lab); }, 2s)) << "leftovers after restart";
  EXPECT_TRUE(lab.ping(0, 1));
  json l = d.call("list");
  EXPECT_TRUE(l["faults"].empty());
}

TEST_P(Faults, SigtermHealsEverythingAndExitsZero) {
  Lab lab(2);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", all_targets(lab)},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  ASSERT_FALSE(nothing_attached(lab));
  EXPECT_EQ(d.terminate(), 0);
  EXPECT_TRUE(nothing_attached(lab));
  EXPECT_TRUE(lab.ping(0, 1));
}

// Someone else's clsact and filter (a CNI's, say) are there before us and must be there after us,
// on either attach path.
TEST_P(Faults, ForeignClsactAndFilterSurvive) {
  Lab lab(2);
  ASSERT_EQ(sh("ip netns exec " + lab.ns(0) + " tc qdisc add dev eth0 clsact").status, 0);
  ASSERT_EQ(sh("ip netns exec " + lab.ns(0) +
               " tc filter add dev eth0 ingress prio 100 protocol all u32 match u32 0 0 classid 1:1")
                .status,
            0);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, fault), 0u);
  EXPECT_FALSE(lab.ping(0, 1));
  d.call("heal", {{"all", true}});
  Cmd f = sh("ip netns exec " + lab.ns(0) + " tc filter show dev eth0 ingress");
  EXPECT_NE(f.out.find("u32"), std::string::npos) << "someone else's filter was removed: " << f.out;
  EXPECT_EQ(f.out.find("0xfa17"), std::string::npos) << "ours was not removed: " << f.out;
  EXPECT_TRUE(hooks_on(lab.ns(0), "eth0").clsact) << "a clsact we did not create was removed";
  EXPECT_TRUE(lab.ping(0, 1));
}

TEST_P(Faults, FailedApplyLeavesNoPartialState) {
  Lab lab(2);
  Daemon d(opts());
  json fault = {{"kind", "partition"},
                {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
                {"targets", {lab.target(0), "netns:fltest-does-not-exist"}},
                {"duration_ms", 60000}};
  json err = d.call_error("apply", {{"fault", fault}});
  ASSERT_FALSE(err.is_null());
  EXPECT_EQ(err["code"], "target_unavailable") << err.dump();
  EXPECT_TRUE(nothing_attached(lab));
  EXPECT_TRUE(d.call("list")["faults"].empty());
  // An unknown interface is refused the same way.
  fault["targets"] = {lab.target(0)};
  fault["devs"] = {"eth9"};
  err = d.call_error("apply", {{"fault", fault}});
  ASSERT_FALSE(err.is_null());
  EXPECT_EQ(err["code"], "target_unavailable");
  EXPECT_NE(err["message"].get<std::string>().find("eth9"), std::string::npos);
  EXPECT_TRUE(nothing_attached(lab));
}

// Faults come and go (slots, set bits and exemption rules get reused) while two flows run:
// 0->1 is under a partition that stays on throughout, so every packet that arrives is a
// forbidden delivery; 0->2 is never under any fault, so every packet lost is a forbidden drop.
TEST_P(Faults, FlippingFaultsNeverExposesAHalfWrittenSlot) {
  Lab lab(4);
  Daemon d(opts());
  json keep = {{"kind", "partition"},
               {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}},
               {"targets", targets_of(lab, {0})},
               {"duration_ms", 120000}};
  ASSERT_NE(apply_ok(d, keep), 0u);

  std::atomic<bool> stop{false};
  std::atomic<int> flips{0};
  std::thread flipper([&] {
    int i = 0;
    while (!stop) {
      // Alternate shapes so the same slot and bits get different meanings over time.
      json f;
      if (i % 3 == 0)
        f = {{"kind", "partition"}, {"sides", {side("x", {Lab::ip4(0)}), side("y", {Lab::ip4(3)})}}};
      else if (i % 3 == 1)
        f = {{"kind", "loss"}, {"loss", {{"percent", 100.0}}}, {"match", {{"dst", {Lab::ip4(3)}}}}};
      else
        f = {{"kind", "isolate"}, {"sides", {side("z", {Lab::ip4(3), "10.200.0.128/25"})}},
             {"exempt", {"10.200.0.3/udp:" + std::to_string(8000 + i % 50)}}};
      f["targets"] = targets_of(lab, {0});
      f["duration_ms"] = 60000;
      json r = d.request({{"op", "apply"}, {"fault", f}});
      if (r.value("ok", false)) {
        d.request({{"op", "heal"}, {"fault", std::to_string(r["result"]["fault"]["id"].get<uint64_t>())}});
        flips++;
      }
      i++;
    }
  });
  UdpResult forbidden, allowed;
  std::thread t1([&] { forbidden = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), 7301, 20000, 100us); });
  std::thread t2([&] { allowed = udp_stream(lab.ns(0), lab.ns(2), Lab::ip4(2), 7302, 20000, 100us); });
  t1.join();
  t2.join();
  stop = true;
  flipper.join();
  EXPECT_GT(flips.load(), 20) << "too few fault changes during the traffic to mean anything";
  EXPECT_EQ(forbidden.received, 0u) << "deliveries through a partition that never ended";
  EXPECT_EQ(allowed.received, allowed.sent) << "drops on a flow no fault ever matched";
}

// Healing a fault whose prefixes sit inside another fault's prefixes must leave the other fault
// whole (the trie's "has entries" flag once went by an LPM lookup and was lost here).
TEST_P(Faults, HealingNestedPrefixesKeepsTheOuterFault) {
  Lab lab(5);
  Daemon d(opts());
  json outer = {{"kind", "partition"},
                {"sides", {side("low", {"10.200.0.0/30"}), side("high", {"10.200.0.4/30"})}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, outer), 0u);
  json inner = {{"kind", "loss"},
                {"loss", {{"percent", 1.0}}},
                {"match", {{"dst", {"10.200.0.0/31", "10.200.0.4/31"}}}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 60000}};
  uint64_t inner_id = apply_ok(d, inner);
  ASSERT_NE(inner_id, 0u);
  ASSERT_FALSE(lab.ping(0, 4));
  d.call("heal", {{"fault", std::to_string(inner_id)}});
  EXPECT_FALSE(lab.ping(0, 4)) << "the outer partition stopped matching after the inner fault was healed";
  EXPECT_TRUE(lab.ping(0, 1)) << "same side";
}

// A fault acts only on the interfaces it was applied to, even when another fault later attaches
// the program to more of them.
TEST_P(Faults, ALaterAttachmentDoesNotWidenAnEarlierFault) {
  Lab lab(2);
  Daemon d(opts());
  json icmp_cut = {{"kind", "loss"},
                   {"loss", {{"percent", 100.0}}},
                   {"match", {{"dst", {"10.200.0.0/24"}}, {"proto", "icmp"}}},
                   {"targets", targets_of(lab, {0})},
                   {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, icmp_cut), 0u);
  ASSERT_FALSE(lab.ping(0, 1));
  // Another fault, on lo only.
  json on_lo = {{"kind", "loss"},
                {"loss", {{"percent", 1.0}}},
                {"match", {{"dst", {"192.0.2.0/24"}}}},
                {"devs", {"lo"}},
                {"targets", targets_of(lab, {0})},
                {"duration_ms", 60000}};
  ASSERT_NE(apply_ok(d, on_lo), 0u);
  // Pinging our own address goes over lo, where the first fault was never applied.
  Cmd self = sh("ip netns exec " + lab.ns(0) + " ping -4 -c1 -q -W 0.6 " + Lab::ip4(0));
  EXPECT_EQ(self.status, 0) << "the eth0 fault now acts on lo too: " << self.out;
  EXPECT_FALSE(lab.ping(0, 1));
}

INSTANTIATE_TEST_SUITE_P(AttachModes, Faults, ::testing::Values("tcx", "tc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fl::test

namespace fl::test {
namespace {

// An L3 device (tun: no Ethernet header) is left out of the default interface list, and naming it
// is refused before anything is attached.
TEST(Interfaces, NonEthernetDevicesAreSkippedOrRefused) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  ASSERT_EQ(sh("ip -n " + lab.ns(0) + " tuntap add dev tun0 mode tun && ip -n " + lab.ns(0) + " link set tun0 up").status, 0);
  Daemon d;
  json fault = {{"kind", "partition"},
                {"sides", {{{"name", "a"}, {"cidrs", {Lab::ip4(0)}}}, {{"name", "b"}, {"cidrs", {Lab::ip4(1)}}}}},
                {"targets", {lab.target(0)}},
                {"duration_ms", 60000}};
  json r = d.call("apply", {{"fault", fault}});
  ASSERT_FALSE(r.is_null());
  ASSERT_EQ(r["fault"]["interfaces"].size(), 1u) << r.dump();
  EXPECT_EQ(r["fault"]["interfaces"][0]["dev"], "eth0");
  EXPECT_FALSE(lab.ping(0, 1));
  d.call("heal", {{"all", true}});

  fault["devs"] = {"tun0"};
  json err = d.call_error("apply", {{"fault", fault}});
  ASSERT_FALSE(err.is_null());
  EXPECT_EQ(err["code"], "kernel_unsupported");
  EXPECT_NE(err["message"].get<std::string>().find("not an Ethernet interface"), std::string::npos) << err.dump();
  Hooks h = hooks_on(lab.ns(0), "tun0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0);
}

}  // namespace
}  // namespace fl::test

namespace fl::test {
namespace {

// faultctl against a real daemon: the exit codes and the JSON list that scripts rely on.
TEST(Faultctl, ExitCodesAndJsonList) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon d;
  Cmd ok = faultctl(d, "partition --side a=" + Lab::ip4(0) + " --side b=" + Lab::ip4(1) + " --target " +
                           lab.target(0) + " --for 1m --name cli-split");
  ASSERT_EQ(ok.status, 0) << ok.out;
  EXPECT_EQ(ok.out.rfind("applied fault 1 \"cli-split\": partition on " + lab.target(0) + ", ends ", 0), 0u)
      << "apply says what it made: " << ok.out;
  EXPECT_NE(ok.out.find("UTC (in 1m)"), std::string::npos) << ok.out;
  EXPECT_FALSE(lab.ping(0, 1));

  Cmd list = faultctl(d, "-o json list");
  ASSERT_EQ(list.status, 0) << list.out;
  json arr = json::parse(list.out);
  ASSERT_TRUE(arr.is_array());
  ASSERT_EQ(arr.size(), 1u);
  for (const char* k : {"id", "name", "kind", "expires_in_ms", "targets", "counters"})
    EXPECT_TRUE(arr[0].contains(k)) << k << " missing in " << list.out;
  EXPECT_EQ(arr[0]["name"], "cli-split");
  EXPECT_GT(arr[0]["counters"]["dropped"].get<uint64_t>(), 0u);

  Cmd dup = faultctl(d, "partition --side " + Lab::ip4(0) + " --side " + Lab::ip4(1) + " --target " +
                            lab.target(0) + " --name cli-split");
  EXPECT_EQ(dup.status, 1) << "refused by the daemon: " << dup.out;
  EXPECT_NE(dup.out.find("already_exists"), std::string::npos) << dup.out;

  Cmd usage = faultctl(d, "partition --side 10.0.0.1/8 --side 10.0.0.2");
  EXPECT_EQ(usage.status, 2) << usage.out;
  EXPECT_NE(usage.out.find("host bits"), std::string::npos) << usage.out;

  Cmd heal = faultctl(d, "heal cli-split");
  EXPECT_EQ(heal.status, 0) << heal.out;
  EXPECT_TRUE(lab.ping(0, 1));

  Cmd gone = sh(std::string(FL_FAULTCTL_PATH) + " --socket /nonexistent/faultline.sock list");
  EXPECT_EQ(gone.status, 3) << gone.out;

  // Under -o json, stdout is JSON whatever happens: the fault object, or one error object.
  // sh() adds 2>&1; the braces keep stderr out of what is parsed.
  Cmd applied = sh("{ " + std::string(FL_FAULTCTL_PATH) + " --socket " + d.socket() + " -o json loss 10 --target " +
                   lab.target(0) + " --for 1m 2>/dev/null; }");
  ASSERT_EQ(applied.status, 0) << applied.out;
  EXPECT_EQ(json::parse(applied.out)["kind"], "loss") << applied.out;
  EXPECT_TRUE(json::parse(applied.out)["id"].is_number_unsigned()) << applied.out;
  for (const auto& [args, code, status] :
       {std::tuple<std::string, std::string, int>{"--socket " + d.socket() + " -o json heal no-such-fault", "not_found", 1},
        {"--socket " + d.socket() + " -o json partition --side 10.0.0.1/8 --side 10.0.0.2", "usage", 2},
        {"--socket /nonexistent/faultline.sock -o json list", "unreachable", 3}}) {
    Cmd c = sh("{ " + std::string(FL_FAULTCTL_PATH) + " " + args + " 2>/dev/null; }");
    EXPECT_EQ(c.status, status) << args << ": " << c.out;
    json e = json::parse(c.out, nullptr, false);
    ASSERT_TRUE(e.is_object() && e.contains("error")) << args << ": " << c.out;
    EXPECT_EQ(e["error"]["code"], code) << c.out;
    EXPECT_EQ(e["error"]["exit_status"], status) << c.out;
    EXPECT_TRUE(e["error"]["message"].is_string()) << c.out;
  }
}

}  // namespace
}  // namespace fl::test
