// Targets that change under an active fault: an interface deleted and re-created with the same
// name and index, a namespace deleted, a target process that exits. Real namespaces, a real
// faultlined, on both attach paths.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "kernel/features.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

void must(const std::string& cmd) {
  Cmd r = sh(cmd);
  ASSERT_EQ(r.status, 0) << cmd << "\n" << r.out;
}

json partition_fault(const std::string& target, const std::string& a, const std::string& b,
               int duration_ms = 60000) {
  return {{"kind", "partition"},
          {"sides", json::array({{{"name", "a"}, {"cidrs", {a}}}, {{"name", "b"}, {"cidrs", {b}}}})},
          {"targets", json::array({target})},
          {"duration_ms", duration_ms}};
}

std::string state_of(Daemon& d, uint64_t id) {
  json r = d.call("get", {{"fault", std::to_string(id)}});
  return r.is_null() ? "" : r["fault"]["state"].get<std::string>();
}

// `ip netns exec` mounts a /sys of the namespace, so this reads the namespace's own device.
int ifindex_of(const std::string& ns, const std::string& dev) {
  Cmd r = sh("ip netns exec " + ns + " cat /sys/class/net/" + dev + "/ifindex");
  return r.status == 0 ? std::stoi(r.out) : -1;
}

class TargetLifecycle : public AttachModeTest {};

// The device a fault was on is deleted and a new one takes its name and its index. Packets
// through the new device are untouched, also after a second fault attaches to it, and the first
// fault ends as "gone" instead of failing to clean up.
TEST_P(TargetLifecycle, RecreatedInterfaceNeverInheritsTheFault) {
  Lab lab(2);
  Daemon d(opts());
  ASSERT_TRUE(lab.ping(0, 1));
  json r = d.call("apply", {{"fault", partition_fault(lab.target(0), Lab::ip4(0), Lab::ip4(1))}});
  ASSERT_FALSE(r.is_null());
  uint64_t id = r["fault"]["id"].get<uint64_t>();
  EXPECT_FALSE(lab.ping(0, 1));

  int index = ifindex_of(lab.ns(0), "eth0");
  ASSERT_GT(index, 0);
  must("ip -n " + lab.ns(0) + " link del eth0");
  must("ip -n " + lab.ns(0) + " link add eth0 index " + std::to_string(index) + " type veth peer name q0 netns " +
       lab.hub());
  must("ip -n " + lab.hub() + " link set q0 master br0 up");
  must("ip -n " + lab.ns(0) + " addr add " + Lab::ip4(0) + "/24 dev eth0");
  must("ip -n " + lab.ns(0) + " link set eth0 up");
  ASSERT_EQ(ifindex_of(lab.ns(0), "eth0"), index);

  // At once, before any periodic check could have run: nothing of ours is on the new device.
  EXPECT_TRUE(lab.ping(0, 1, false, 2.0)) << "the re-created eth0 inherited the partition";
  Hooks h = hooks_on(lab.ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0);

  // A second fault in the same namespace attaches to the new device; the first one's interface
  // bit must not come with it.
  json other = partition_fault(lab.target(0), Lab::ip4(0), "10.200.9.9");
  json r2 = d.call("apply", {{"fault", other}});
  ASSERT_FALSE(r2.is_null());
  uint64_t id2 = r2["fault"]["id"].get<uint64_t>();
  EXPECT_TRUE(lab.ping(0, 1, false, 2.0)) << "the first fault came back with the second one's attachment";
  h = hooks_on(lab.ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 2) << "the second fault is attached to the new eth0, in both directions";

  EXPECT_TRUE(eventually([&] { return state_of(d, id) == "gone"; }, 5s)) << state_of(d, id);
  json g = d.call("get", {{"fault", std::to_string(id)}});
  ASSERT_FALSE(g.is_null());
  EXPECT_EQ(g["fault"]["per_target"][0]["state"], "gone");
  EXPECT_EQ(state_of(d, id2), "active");
  json list = d.call("list");
  ASSERT_EQ(list["faults"].size(), 1u);
  EXPECT_EQ(list["faults"][0]["id"], id2);

  d.call("heal", {{"fault", std::to_string(id2)}});
  h = hooks_on(lab.ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0);
  EXPECT_EQ(d.terminate(), 0);
}

// A named namespace deleted under a fault: the fault is reported as gone, and our fd no longer
// keeps the namespace (and the veth pair in it) alive.
TEST_P(TargetLifecycle, DeletedNamespaceEndsItsFaultAndIsReleased) {
  Lab lab(3);
  Daemon d(opts());
  json f = partition_fault(lab.target(0), Lab::ip4(0), Lab::ip4(1));
  f["targets"].push_back(lab.target(2));
  json r = d.call("apply", {{"fault", f}});
  ASSERT_FALSE(r.is_null());
  uint64_t id = r["fault"]["id"].get<uint64_t>();

  must("ip netns del " + lab.ns(0));
  // The part on node 0 ends; node 2's part carries on.
  EXPECT_TRUE(eventually(
      [&] {
        json g = d.call("get", {{"fault", std::to_string(id)}});
        return !g.is_null() && g["fault"]["per_target"][0].value("state", "") == "gone";
      },
      5s));
  EXPECT_EQ(state_of(d, id), "active");
  // Released: the namespace is destroyed, and its veth's peer p0 in the hub with it.
  EXPECT_TRUE(eventually([&] { return sh("ip -n " + lab.hub() + " link show p0").status != 0; }, 5s))
      << "the deleted namespace is still held open";
  Hooks h = hooks_on(lab.ns(2), "eth0");
  EXPECT_GT(h.tcx + h.tc_filters, 0);

  must("ip netns del " + lab.ns(2));
  EXPECT_TRUE(eventually([&] { return state_of(d, id) == "gone"; }, 5s)) << state_of(d, id);
  EXPECT_EQ(d.call("list")["faults"].size(), 0u);
  EXPECT_EQ(d.terminate(), 0);
}

// pid:PID target whose process exits: the namespace dies with it once we let go.
TEST_P(TargetLifecycle, TargetProcessExitEndsTheFault) {
  Lab lab(1);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    pause();
    _exit(0);
  }
  struct Reap {
    pid_t p;
    ~Reap() {
      if (p <= 0) return;  // kill(-1) would signal every process we may signal
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  } reap{child};
  std::string pidns = "/proc/" + std::to_string(child) + "/ns/net";
  ASSERT_TRUE(eventually(
      [&] { return sh("[ \"$(readlink " + pidns + ")\" != \"$(readlink /proc/self/ns/net)\" ]").status == 0; }, 2s));
  must("ip -n " + lab.hub() + " link add x0 type veth peer name eth0 netns " + std::to_string(child));
  must("ip -n " + lab.hub() + " link set x0 up");
  must("nsenter --net=" + pidns + " ip link set eth0 up");

  Daemon d(opts());
  json r = d.call("apply",
                  {{"fault", partition_fault("pid:" + std::to_string(child), "10.200.0.50", "10.200.0.51")}});
  ASSERT_FALSE(r.is_null());
  uint64_t id = r["fault"]["id"].get<uint64_t>();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  reap.p = -1;  // reaped
  EXPECT_TRUE(eventually([&] { return state_of(d, id) == "gone"; }, 5s)) << state_of(d, id);
  EXPECT_TRUE(eventually([&] { return sh("ip -n " + lab.hub() + " link show x0").status != 0; }, 5s))
      << "the exited process's namespace is still held open";
  EXPECT_EQ(d.terminate(), 0);
}

// Someone removes our hooks from a live interface (tc filter del). The device is the same one,
// so it is put back as it was: our root qdisc goes and the saved one returns, and the fault,
// left with no interface, ends as gone.
TEST_P(TargetLifecycle, HooksRemovedFromALiveInterfaceLeaveItAsItWas) {
  Lab lab(2);
  Daemon d(opts());
  json rate = {{"kind", "rate"},
               {"shape", {{"rate_bps", 10000000}}},
               {"targets", json::array({lab.target(0)})},
               {"duration_ms", 60000}};
  json r = d.call("apply", {{"fault", rate}});
  ASSERT_FALSE(r.is_null());
  uint64_t id = r["fault"]["id"].get<uint64_t>();
  ASSERT_NE(sh("ip netns exec " + lab.ns(0) + " tc qdisc show dev eth0").out.find("htb fa17:"), std::string::npos);

  if (GetParam() == "tc") {
    must("ip netns exec " + lab.ns(0) + " tc filter del dev eth0 egress");
  } else {
    // Detach this daemon's tcx links on that eth0 from outside, as `bpftool link detach` would.
    // Its links are the fds its fdinfo lists with a link_id; other daemons may run meanwhile.
    const int index = ifindex_of(lab.ns(0), "eth0");
    Cmd ids = sh("grep -h '^link_id:' /proc/" + std::to_string(d.pid()) + "/fdinfo/* | awk '{print $2}'");
    int detached = 0;
    std::istringstream in(ids.out);
    for (uint32_t lid; in >> lid;) {
      int fd = bpf_link_get_fd_by_id(lid);
      if (fd < 0) continue;
      bpf_link_info info{};
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.xdp.ifindex == static_cast<uint32_t>(index) &&
          bpf_link_detach(fd) == 0)
        detached++;
      close(fd);
    }
    ASSERT_EQ(detached, 2) << "expected our two tcx links on eth0";
  }
  EXPECT_TRUE(eventually([&] { return state_of(d, id) == "gone"; }, 5s)) << state_of(d, id);
  std::string q = sh("ip netns exec " + lab.ns(0) + " tc qdisc show dev eth0").out;
  EXPECT_EQ(q.find("fa17:"), std::string::npos) << q;
  EXPECT_TRUE(lab.ping(0, 1));
  EXPECT_EQ(d.terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(AttachModes, TargetLifecycle, ::testing::Values("tcx", "tc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fl::test
