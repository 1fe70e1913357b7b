// issue 10, the privilege items on the real kernel: netns-path: answers alike whatever the path
// is and never opens outside root's directories (item 7), a numeric --group lands on the socket
// (item 8), the operator's policy refuses before anything is attached, and a daemon whose
// interface lookups fail for want of descriptors keeps what it left in the kernel (item 2).
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

#define REQUIRE_ROOT() \
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, qdiscs)"

json loss_fault(const std::string& target, std::chrono::seconds d = 60s) {
  return {{"kind", "loss"},
          {"loss", {{"percent", 100.0}}},
          {"match", {{"dst", json::array({Lab::ip4(1)})}}},
          {"targets", json::array({target})},
          {"duration_ms", std::chrono::milliseconds(d).count()}};
}

// Item 7. Before: a missing path said "No such file or directory", a file "is not a namespace
// file", a directory something else again: a group member learnt what exists where they cannot
// look. Now one answer, and a path outside root's namespace directories is not opened at all.
TEST(NetnsPath, EveryFailureGetsTheSameErrorAndOnlyRootsDirectoriesAreOpened) {
  REQUIRE_ROOT();
  Lab lab(2);
  Daemon d;
  const std::string base = "/run/netns/" + lab.ns(0) + "-probe";
  struct Cleanup {
    std::string base;
    ~Cleanup() { sh("rm -rf " + base + "-file " + base + "-dir " + base + "-link"); }
  } cleanup{base};
  { std::ofstream(base + "-file") << "x"; }
  ASSERT_EQ(mkdir((base + "-dir").c_str(), 0700), 0);
  // A symlink to a real namespace file: not followed (only root writes here, but a link would
  // lead the open anywhere).
  ASSERT_EQ(symlink(("/run/netns/" + lab.ns(0)).c_str(), (base + "-link").c_str()), 0);

  std::set<std::string> messages;
  for (std::string suffix : {"-missing", "-file", "-dir", "-link"}) {
    json e = d.call_error("apply", {{"fault", loss_fault("netns-path:" + base + suffix)}});
    ASSERT_FALSE(e.is_null()) << suffix << " was accepted";
    EXPECT_EQ(e["code"], "target_unavailable") << suffix << ": " << e.dump();
    std::string m = e["message"].get<std::string>();
    ASSERT_NE(m.find(base + suffix), std::string::npos) << m;
    for (auto at = m.find(base + suffix); at != std::string::npos; at = m.find(base + suffix))
      m.replace(at, (base + suffix).size(), "PATH");
    messages.insert(m);
  }
  EXPECT_EQ(messages.size(), 1u) << "the errors tell the cases apart: " << json(messages).dump();

  // Outside /run/netns and /proc/PID/ns/net (a FUSE mount that never answers, a home
  // directory): refused as invalid before any lookup.
  for (std::string p : {"/tmp/ns", "/run/netns/../netns/x", "/run/netns/a/b", "/proc/self/ns/net"}) {
    json e = d.call_error("apply", {{"fault", loss_fault("netns-path:" + p)}});
    ASSERT_FALSE(e.is_null()) << p << " was accepted";
    EXPECT_EQ(e["code"], "invalid_argument") << p << ": " << e.dump();
    EXPECT_NE(e["message"].get<std::string>().find("path must be /run/netns/NAME"), std::string::npos) << e.dump();
  }

  // The real thing still works, by name and through /proc.
  json ok = d.call("apply", {{"fault", loss_fault("netns-path:/run/netns/" + lab.ns(0))}});
  ASSERT_FALSE(ok.is_null());
  EXPECT_FALSE(lab.ping(0, 1));
  d.call("heal", {{"all", true}});
  Cmd pid = sh("ip netns exec " + lab.ns(1) + " sh -c 'sleep 30 >/dev/null 2>&1 & echo $!'");
  std::string p = pid.out.substr(0, pid.out.find('\n'));
  json viaproc = d.call("apply", {{"fault", loss_fault("netns-path:/proc/" + p + "/ns/net")}});
  EXPECT_FALSE(viaproc.is_null());
  d.call("heal", {{"all", true}});
  sh("kill " + p);
}

// Item 8: a number is a gid, used with no /etc/group entry. Before, "59417" was looked up as a
// group name, not found, and the socket stayed root's group.
TEST(SocketGroup, NumericGidIsAppliedToTheDaemonsSocket) {
  REQUIRE_ROOT();
  Daemon d(Daemon::Options{.extra = {"--group", "59417"}});
  struct stat st{};
  ASSERT_EQ(lstat(d.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 59417u);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_NE(sh("grep -F 'gid 59417' " + d.log_path()).status, 1) << "the log does not say which gid";
}

// Policy for operators: refused with a precise error, and nothing attached.
TEST(Policy, RefusalsComeBeforeAnyKernelChangeAndStatusShowsThePolicy) {
  REQUIRE_ROOT();
  Lab lab(2);
  Daemon d(Daemon::Options{.extra = {"--require-default-exempt", "--max-duration", "1m"}});
  json st = d.call("status");
  EXPECT_EQ(st["policy"], (json{{"require_default_exempt", true}, {"max_duration_ms", 60000}})) << st.dump();
  Cmd s = faultctl(d, "status");
  EXPECT_NE(s.out.find("policy:         default exemptions required, longest fault 1m"), std::string::npos) << s.out;

  json no_exempt = loss_fault(lab.target(0), 30s);
  no_exempt["default_exempt"] = false;
  json e = d.call_error("apply", {{"fault", no_exempt}});
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["code"], "permission_denied");
  EXPECT_NE(e["message"].get<std::string>().find("--require-default-exempt"), std::string::npos) << e.dump();
  e = d.call_error("apply", {{"fault", loss_fault(lab.target(0), 2min)}});
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["message"], "duration: 2m is above this daemon's policy maximum 1m (faultlined --max-duration)");
  EXPECT_EQ(e["field"], "fault.duration") << e.dump();
  // faultctl names its own option, from the reply's field.
  Cmd l = faultctl(d, "loss 30 --for 2m --target " + lab.target(0));
  EXPECT_NE(l.status, 0) << l.out;
  EXPECT_NE(l.out.find("--for: 2m is above this daemon's policy maximum 1m"), std::string::npos) << l.out;
  Hooks h = hooks_on(lab.ns(0), "eth0");
  EXPECT_EQ(h.tcx + h.tc_filters, 0) << "a refused fault attached something";
  EXPECT_TRUE(lab.ping(0, 1));
  Cmd r = faultctl(d, "reset --no-default-exempt --dst " + Lab::ip4(1) + " --target " + lab.target(0));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("--require-default-exempt"), std::string::npos) << r.out;

  // Within the policy: applied.
  EXPECT_FALSE(d.call("apply", {{"fault", loss_fault(lab.target(0), 30s)}}).is_null());
  EXPECT_FALSE(lab.ping(0, 1));
}

// Item 2. A daemon out of descriptors cannot look interfaces up (if_indextoname opens a socket):
// the preloaded shim makes that lookup fail with EMFILE while a flag file exists. Before, EMFILE
// read as "device gone": at expiry the HTB root and the ifb stayed and their journal entries
// were dropped, so no later start removed them.
TEST(OutOfDescriptors, ShapingIsStillRemovedOrKeptInTheJournal) {
  REQUIRE_ROOT();
  Lab lab(2);
  char tmpl[] = "/tmp/fl-emfile.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string flag = std::string(tmpl) + "/emfile";
  struct Cleanup {
    std::string dir;
    ~Cleanup() { sh("rm -rf " + dir); }
  } cleanup{tmpl};
  auto d = std::make_unique<Daemon>(
      Daemon::Options{.env = {{"LD_PRELOAD", FL_EMFILE_SHIM_PATH}, {"FL_TEST_EMFILE_WHEN", flag}}});
  json st = d->call("status");
  if (st["features"].value("htb", "") != "yes") GTEST_SKIP() << "this kernel has no HTB qdisc";
  const bool ifb = st["features"].value("ifb", "") == "yes";
  const std::string ns = lab.ns(0);
  const std::string idx = sh("ip netns exec " + ns + " cat /sys/class/net/eth0/ifindex").out;
  const std::string ifb_name = "flifb" + idx.substr(0, idx.find('\n'));
  auto htb_root = [&] { return sh("tc -n " + ns + " qdisc show dev eth0 root").out.find("htb fa17:") != std::string::npos; };
  auto ifb_there = [&] { return sh("ip -n " + ns + " link show dev " + ifb_name + " >/dev/null 2>&1").status == 0; };

  Cmd a = faultctl(*d, "rate 10mbit --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --for 2s");
  ASSERT_EQ(a.status, 0) << a.out;
  if (ifb) {
    Cmd b = faultctl(*d, "rate 10mbit --direction ingress --src " + Lab::ip4(1) + " --target " + lab.target(0) +
                             " --for 2s");
    ASSERT_EQ(b.status, 0) << b.out;
    ASSERT_TRUE(ifb_there());
  }
  ASSERT_TRUE(htb_root());
  { std::ofstream(flag) << "1"; }
  ASSERT_TRUE(eventually([&] { return d->call("list")["faults"].empty(); }, 10s)) << "the faults did not expire";
  std::remove(flag.c_str());
  EXPECT_EQ(d->terminate(), 0);
  // What the daemon could not remove is in its journal: the cleanup a service manager runs
  // after it (ExecStopPost) removes it.
  Cmd c = sh(std::string(FL_FAULTLINED_PATH) + " --cleanup --state-dir " + d->state_dir());
  EXPECT_EQ(c.status, 0) << c.out;
  EXPECT_FALSE(htb_root()) << "our HTB root outlived its fault and the journal forgot it";
  if (ifb) {
    EXPECT_FALSE(ifb_there()) << ifb_name << " outlived its fault and the journal forgot it";
  }
  d.reset();
}

}  // namespace
}  // namespace fl::test
