// faultctl's command line on the real kernel (issue 9, "CLI and docs friction"): a port without
// --proto cuts TCP and UDP to that port and nothing else; lab:[LAB/]NODE addresses resolve from
// a real lab's state file into a partition that drops real pings; and the global options work
// before `lab`. Labs are named fltest-<pid>-cli*, so tools/test's sweep of stale fltest
// namespaces also catches those of a killed run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "core/parse.h"
#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

// `faultctl loss 100 --dport P` without --proto: TCP connects and UDP datagrams to P are
// dropped, those to another port and pings pass.
TEST(FaultctlCli, PortWithoutProtoDropsTcpAndUdpToThatPortOnly) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(2);
  Daemon d;
  constexpr int kCut = 7301, kOther = 7302;
  TcpListener cut(lab.ns(1), kCut), other(lab.ns(1), kOther);
  ASSERT_TRUE(cut.ok() && other.ok());
  ASSERT_TRUE(tcp_connects(lab.ns(0), Lab::ip4(1), kCut, 2000ms)) << "the lab must work before the fault";

  Cmd f = faultctl(d, "loss 100 --dport " + std::to_string(kCut) + " --dst " + Lab::ip4(1) + " --target " +
                          lab.target(0) + " --for 1m --name port-cut");
  ASSERT_EQ(f.status, 0) << f.out;
  Cmd get = faultctl(d, "-o json get port-cut");
  ASSERT_EQ(get.status, 0) << get.out;
  EXPECT_EQ(json::parse(get.out)["spec"]["match"]["proto"], "all") << get.out;

  EXPECT_FALSE(tcp_connects(lab.ns(0), Lab::ip4(1), kCut, 1000ms)) << "TCP to the port got through";
  UdpResult to_cut = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), kCut, 50, 1ms);
  EXPECT_EQ(to_cut.sent, 50u);
  EXPECT_EQ(to_cut.received, 0u) << "UDP to the port got through";

  EXPECT_TRUE(tcp_connects(lab.ns(0), Lab::ip4(1), kOther, 2000ms)) << "TCP to another port was cut";
  UdpResult to_other = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), kOther, 50, 1ms);
  EXPECT_EQ(to_other.received, 50u) << "UDP to another port was cut";
  EXPECT_TRUE(lab.ping(0, 1)) << "ICMP has no port and must pass";

  Cmd stats = faultctl(d, "-o json stats port-cut");
  ASSERT_EQ(stats.status, 0) << stats.out;
  // One SYN at least, and the 50 datagrams.
  EXPECT_GE(json::parse(stats.out)[0]["counters"]["dropped"].get<uint64_t>(), 51u) << stats.out;
  ASSERT_EQ(faultctl(d, "heal port-cut").status, 0);
  EXPECT_TRUE(eventually([&] { return tcp_connects(lab.ns(0), Lab::ip4(1), kCut, 1000ms); }, 5s));
}

// A lab made and inspected through faultctl with global options in front of `lab`, and a
// partition whose sides are lab:LAB/a and lab:LAB/b: a real ping from a to b is dropped, a to c
// still passes.
class FaultctlLab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!require_root()) GTEST_SKIP() << "needs root (namespaces, mounts, BPF)";
    if (sh("command -v ping >/dev/null").status != 0) GTEST_SKIP() << "ping is needed (tools/setup installs it)";
    name_ = "fltest-" + std::to_string(getpid()) + "-cli";
  }
  void TearDown() override {
    if (name_.empty()) return;
    ctl("lab down --name " + name_);
    for (const char* n : {"a", "b", "c", "hub"}) sh("ip netns delete " + name_ + "-" + n + " 2>/dev/null");
    unlink((std::string(core::kLabStateDir) + "/" + name_ + ".json").c_str());
  }
  static Cmd ctl(const std::string& args) { return sh(std::string(FL_FAULTCTL_PATH) + " " + args); }
  bool ping(const std::string& node, const std::string& addr) {
    return ctl("lab exec --name " + name_ + " " + node + " -- ping -n -q -c1 -W1 " + addr).status == 0;
  }
  std::string name_;
};

TEST_F(FaultctlLab, GlobalOptionsBeforeLabAndLabNodesAsSides) {
  Daemon d;
  // Before issue 9 both answered `unknown command "lab"`.
  Cmd up = ctl("--socket " + d.socket() + " lab up --name " + name_ + " --nodes 3 --ipv6");
  ASSERT_EQ(up.status, 0) << up.out;
  Cmd st = sh("{ " + std::string(FL_FAULTCTL_PATH) + " -o json lab status --name " + name_ + " 2>/dev/null; }");
  ASSERT_EQ(st.status, 0) << st.out;
  json j = json::parse(st.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << st.out;
  EXPECT_EQ(j["healthy"], true) << st.out;
  Cmd refused = ctl("-o json lab down --name " + name_);
  EXPECT_EQ(refused.status, 2) << refused.out;
  EXPECT_NE(refused.out.find("only 'lab status' has JSON output"), std::string::npos) << refused.out;

  ASSERT_TRUE(ping("a", "10.200.0.12"));
  ASSERT_TRUE(ping("a", "fd00:200::12"));
  Cmd f = faultctl(d, "partition --side lab:" + name_ + "/a --side lab:" + name_ + "/b --target lab:" + name_ +
                          "/a --for 30s --name lab-sides");
  ASSERT_EQ(f.status, 0) << f.out;
  Cmd get = faultctl(d, "-o json get lab-sides");
  ASSERT_EQ(get.status, 0) << get.out;
  const json sides = json::parse(get.out)["spec"]["sides"];
  EXPECT_EQ(sides[0]["cidrs"], json({"10.200.0.11/32", "fd00:200::11/128"})) << get.out;
  EXPECT_EQ(sides[1]["cidrs"], json({"10.200.0.12/32", "fd00:200::12/128"})) << get.out;

  EXPECT_FALSE(ping("a", "10.200.0.12")) << "the partition must drop a's ping to b";
  EXPECT_FALSE(ping("a", "fd00:200::12")) << "and over IPv6";
  EXPECT_TRUE(ping("a", "10.200.0.13")) << "c is in no side";

  Cmd unknown = faultctl(d, "partition --side lab:" + name_ + "/a --side lab:" + name_ + "/q");
  EXPECT_EQ(unknown.status, 2) << unknown.out;
  EXPECT_NE(unknown.out.find("has no node \"q\" (its nodes: a, b, c)"), std::string::npos) << unknown.out;
  Cmd nolab = faultctl(d, "partition --side lab:" + name_ + "x/a --side 10.200.0.12");
  EXPECT_EQ(nolab.status, 2) << nolab.out;
  EXPECT_NE(nolab.out.find("no lab named"), std::string::npos) << nolab.out;

  ASSERT_EQ(faultctl(d, "heal lab-sides").status, 0);
  EXPECT_TRUE(eventually([&] { return ping("a", "10.200.0.12"); }, 5s));
}

}  // namespace
}  // namespace fl::test
