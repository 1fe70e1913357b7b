// faultline-lab (what `faultctl lab` runs) on the real kernel: a lab comes up with working IPv4
// and IPv6 between its nodes, its status says so, bad input changes nothing, a fault aimed at a
// node's namespace by name takes effect, and `down` leaves no namespace, file or process behind.
// Labs here are named fltest-<pid>-lab*, so tools/test's sweep of stale fltest namespaces also
// catches the namespaces of a killed run.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "core/parse.h"
#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

// tests/CMakeLists.txt may pass the path; otherwise it sits next to faultctl's directory in the
// build tree (userspace/cli/faultctl, userspace/lab/faultline-lab).
std::string lab_bin() {
#ifdef FL_LAB_PATH
  return FL_LAB_PATH;
#else
  std::string p = FL_FAULTCTL_PATH;
  p = p.substr(0, p.rfind('/'));
  p = p.substr(0, p.rfind('/'));
  return p + "/lab/faultline-lab";
#endif
}

bool exists(const std::string& path) {
  struct stat st{};
  return lstat(path.c_str(), &st) == 0;
}

std::string state_file(const std::string& lab) { return std::string(core::kLabStateDir) + "/" + lab + ".json"; }

// Every namespace a lab of this name could have: what must be gone after down.
std::vector<std::string> all_namespaces(const std::string& lab) {
  std::vector<std::string> out = {lab + "-hub"};
  for (char c = 'a'; c <= 'z'; c++) out.push_back(lab + "-" + std::string(1, c));
  return out;
}

std::vector<std::string> present(const std::string& lab) {
  std::vector<std::string> out;
  for (const auto& ns : all_namespaces(lab))
    if (exists("/run/netns/" + ns)) out.push_back(ns);
  return out;
}

// The shell has run its `trap '' TERM` (it is in the namespace before that, from `exec`'s setns).
bool ignores_sigterm(pid_t pid) {
  Cmd r = sh("grep '^SigIgn:' /proc/" + std::to_string(pid) + "/status");
  auto tab = r.out.find_last_of(" \t");
  if (r.status != 0 || tab == std::string::npos) return false;
  return (std::stoull(r.out.substr(tab + 1), nullptr, 16) >> (SIGTERM - 1)) & 1;
}

// The identity of a network namespace file ("/run/netns/X", "/proc/thread-self/ns/net").
ino_t ns_ino(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

class LabCmd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!require_root()) GTEST_SKIP() << "needs root (namespaces, mounts)";
    if (access(lab_bin().c_str(), X_OK) != 0) FAIL() << lab_bin() << " was not built";
    if (sh("command -v ping >/dev/null").status != 0) GTEST_SKIP() << "ping is needed (tools/setup installs it)";
    name_ = "fltest-" + std::to_string(getpid()) + "-lab";
  }

  // Whatever a test did, nothing of its labs stays: down, then by hand what down could not do.
  void TearDown() override {
    if (name_.empty()) return;
    for (const auto& n : names_) {
      if (exists(state_file(n))) lab("down --name " + n);
      for (const auto& ns : present(n)) sh("ip netns delete " + ns);
      unlink(state_file(n).c_str());
    }
  }

  Cmd lab(const std::string& args) { return sh(lab_bin() + " " + args); }

  Cmd up(const std::string& args, const std::string& name = "") {
    names_.push_back(name.empty() ? name_ : name);
    return lab("up --name " + names_.back() + " " + args);
  }

  // One ping through `exec`, as a user would.
  bool ping(const std::string& node, const std::string& addr) {
    return lab("exec --name " + name_ + " " + node + " -- ping -n -q -c1 -W1 " + addr).status == 0;
  }

  std::string name_;
  std::vector<std::string> names_;
};

TEST_F(LabCmd, UpMakesThreeNodesThatReachEachOtherOverIPv4AndIPv6AndStatusSaysSo) {
  Cmd u = up("--nodes 3 --ipv6");
  ASSERT_EQ(u.status, 0) << u.out;
  std::printf("%s", u.out.c_str());
  for (const char* n : {"a", "b", "c", "hub"}) EXPECT_TRUE(exists("/run/netns/" + name_ + "-" + n)) << n;
  // ip(8) sees them too: the iproute2 convention is what faultctl's netns:NAME targets rely on.
  EXPECT_NE(sh("ip netns list").out.find(name_ + "-c"), std::string::npos);

  EXPECT_TRUE(ping("a", "10.200.0.12"));
  EXPECT_TRUE(ping("a", "10.200.0.13"));
  EXPECT_TRUE(ping("c", "10.200.0.11"));
  EXPECT_TRUE(ping("b", "fd00:200::13"));
  EXPECT_TRUE(ping("c", "fd00:200::11"));

  Cmd s = lab("status --name " + name_ + " -o json");
  EXPECT_EQ(s.status, 0) << s.out;
  json j = json::parse(s.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << s.out;
  EXPECT_EQ(j["name"], name_);
  EXPECT_EQ(j["hub"], name_ + "-hub");
  EXPECT_EQ(j["subnet"], "10.200.0.0/24");
  EXPECT_EQ(j["subnet6"], "fd00:200::/64");
  EXPECT_EQ(j["healthy"], true);
  EXPECT_EQ(j["hub_state"], "up");
  ASSERT_EQ(j["nodes"].size(), 3u) << s.out;
  for (int i = 0; i < 3; i++) {
    const json& n = j["nodes"][i];
    std::string node(1, static_cast<char>('a' + i));
    EXPECT_EQ(n["node"], node);
    EXPECT_EQ(n["netns"], name_ + "-" + node);
    EXPECT_EQ(n["target"], "netns:" + name_ + "-" + node);
    EXPECT_EQ(n["ipv4"], "10.200.0." + std::to_string(11 + i));
    EXPECT_EQ(n["ipv6"], "fd00:200::" + std::to_string(11 + i));
    EXPECT_EQ(n["state"], "up");
  }
  // The state file is the same record, without the live checks.
  Cmd f = sh("cat " + state_file(name_));
  json sf = json::parse(f.out, nullptr, false);
  ASSERT_FALSE(sf.is_discarded()) << f.out;
  EXPECT_EQ(sf["phase"], "ready");
  json live = j["nodes"];
  for (auto& n : live) n.erase("state");
  EXPECT_EQ(sf["nodes"], live);

  Cmd t = lab("status --name " + name_);
  EXPECT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("netns:" + name_ + "-b"), std::string::npos) << t.out;
}

TEST_F(LabCmd, ASecondUpOfTheSameNameIsRefusedAndTheFirstLabIsUntouched) {
  ASSERT_EQ(up("--nodes 2").status, 0);
  struct stat before{};
  ASSERT_EQ(stat(("/run/netns/" + name_ + "-a").c_str(), &before), 0);
  Cmd again = lab("up --name " + name_ + " --nodes 3 --ipv6");
  EXPECT_EQ(again.status, 1) << again.out;
  EXPECT_NE(again.out.find("already exists"), std::string::npos) << again.out;
  struct stat after{};
  ASSERT_EQ(stat(("/run/netns/" + name_ + "-a").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the namespace was replaced";
  EXPECT_FALSE(exists("/run/netns/" + name_ + "-c"));
  EXPECT_TRUE(ping("a", "10.200.0.12"));
}

TEST_F(LabCmd, ExecRunsInTheNodesNamespaceAndPassesTheExitStatusOn) {
  ASSERT_EQ(up("--nodes 2").status, 0);
  EXPECT_EQ(lab("exec --name " + name_ + " a -- true").status, 0);
  EXPECT_EQ(lab("exec --name " + name_ + " b -- sh -c 'exit 7'").status, 7);
  EXPECT_EQ(lab("exec " + name_ + "/b sh -c 'exit 3'").status, 3);
  Cmd addr = lab("exec --name " + name_ + " b -- ip -o addr show dev eth0");
  EXPECT_EQ(addr.status, 0) << addr.out;
  EXPECT_NE(addr.out.find("10.200.0.12/24"), std::string::npos) << addr.out;
  // /sys/class/net is the node's, as under `ip netns exec`.
  Cmd sys = lab("exec --name " + name_ + " a -- ls /sys/class/net");
  EXPECT_NE(sys.out.find("eth0"), std::string::npos) << sys.out;

  Cmd missing = lab("exec --name " + name_ + " a -- /nonexistent/command");
  EXPECT_EQ(missing.status, 127) << missing.out;
  Cmd node = lab("exec --name " + name_ + " c -- true");
  EXPECT_EQ(node.status, 125) << node.out;
  EXPECT_NE(node.out.find("nodes are a to b"), std::string::npos) << node.out;
  Cmd nolab = lab("exec --name " + name_ + "-none a -- true");
  EXPECT_EQ(nolab.status, 125) << nolab.out;
  EXPECT_NE(nolab.out.find("no lab named"), std::string::npos) << nolab.out;
  EXPECT_EQ(lab("exec --name " + name_ + " a").status, 125) << "no command";
}

TEST_F(LabCmd, BadInputIsRefusedPreciselyBeforeAnythingChanges) {
  struct Case {
    std::string args, says;
  };
  const std::string n = " --name " + name_;
  std::vector<Case> cases = {
      {n + " --nodes 1", "expected a number from 2 to 26"},
      {n + " --nodes 27", "expected a number from 2 to 26"},
      {n + " --nodes three", "expected a number from 2 to 26"},
      {n + " --nodes", "--nodes needs a value"},
      {" --name Upper", "is not allowed"},
      {" --name a_b", "is not allowed"},
      {" --name=-x", "must not start with '-'"},
      {" --name " + std::string(41, 'x'), "longer than 40"},
      {" --name ''", "empty"},
      {n + " --subnet 10.200.0.0/29", "too small for 3 nodes"},
      {n + " --subnet 10.200.0.1/24", "host bits set"},
      {n + " --subnet fd00:200::/64", "expected an IPv4 network"},
      {n + " --subnet 224.1.0.0/24", "not a unicast network"},
      {n + " --ipv6 --subnet6 10.200.0.0/24", "expected an IPv6 network"},
      {n + " --ipv6 --subnet6 ff05::/64", "not a unicast network"},
      {n + " --subnet6 fd00:200::/64", "--subnet6 needs --ipv6"},
      {n + " --frobnicate", "unexpected argument"},
  };
  for (const auto& c : cases) {
    names_.push_back(name_);  // TearDown cleans up if a case wrongly succeeded
    Cmd r = lab("up" + c.args);
    EXPECT_EQ(r.status, 2) << c.args << ": " << r.out;
    EXPECT_NE(r.out.find(c.says), std::string::npos) << c.args << ": " << r.out;
    EXPECT_EQ(join(present(name_)), "") << c.args;
    EXPECT_FALSE(exists(state_file(name_))) << c.args;
  }
  // A namespace of that name that is not a lab's is never adopted (down would delete it).
  ASSERT_EQ(sh("ip netns add " + name_ + "-b").status, 0);
  Cmd taken = lab("up --name " + name_);
  sh("ip netns delete " + name_ + "-b");
  EXPECT_EQ(taken.status, 1) << taken.out;
  EXPECT_NE(taken.out.find("namespace " + name_ + "-b already exists"), std::string::npos) << taken.out;
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_FALSE(exists(state_file(name_)));

  Cmd down = lab("down --name " + name_);
  EXPECT_EQ(down.status, 1) << down.out;
  EXPECT_NE(down.out.find("no lab named " + name_), std::string::npos) << down.out;
  EXPECT_EQ(lab("status --name " + name_).status, 1);
  EXPECT_EQ(lab("status --name " + name_ + " -o yaml").status, 2);
  EXPECT_EQ(lab("frobnicate").status, 2);
  EXPECT_EQ(lab("up --help").status, 0);
}

TEST_F(LabCmd, AFaultAimedAtANodeNamespaceByNameDropsItsTraffic) {
  ASSERT_EQ(up("--nodes 3 --ipv6").status, 0);
  Daemon d;
  ASSERT_TRUE(ping("a", "10.200.0.12"));
  Cmd f = faultctl(d, "isolate 10.200.0.12,fd00:200::12 --target netns:" + name_ + "-a --for 30s --name lab-cut");
  ASSERT_EQ(f.status, 0) << f.out;
  EXPECT_FALSE(ping("a", "10.200.0.12"));
  EXPECT_FALSE(ping("a", "fd00:200::12"));
  EXPECT_TRUE(ping("a", "10.200.0.13")) << "only b is cut off";
  EXPECT_TRUE(ping("c", "10.200.0.12")) << "the fault is in a's namespace only";
  ASSERT_EQ(faultctl(d, "heal lab-cut").status, 0);
  EXPECT_TRUE(eventually([&] { return ping("a", "10.200.0.12"); }, 5s));
}

TEST_F(LabCmd, DownStopsEveryProcessInsideAndLeavesNothingBehind) {
  ASSERT_EQ(up("--nodes 3 --ipv6").status, 0);
  // One that goes on SIGTERM, and one that ignores it and needs the SIGKILL.
  auto spawn = [&](std::vector<std::string> argv) {
    pid_t p = fork();
    if (p == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    return p;
  };
  pid_t polite = spawn({lab_bin(), "exec", "--name", name_, "a", "--", "sleep", "300"});
  pid_t stubborn = spawn({lab_bin(), "exec", "--name", name_, "c", "--", "sh", "-c", "trap '' TERM; sleep 300"});
  ASSERT_TRUE(eventually(
      [&] {
        Cmd r = sh("ip netns pids " + name_ + "-a; ip netns pids " + name_ + "-c");
        return r.out.find(std::to_string(polite)) != std::string::npos &&
               r.out.find(std::to_string(stubborn)) != std::string::npos && ignores_sigterm(stubborn);
      },
      5s))
      << "the sleeps did not start inside the lab";

  auto t0 = std::chrono::steady_clock::now();
  Cmd down = lab("down --name " + name_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s  (down took %.2f s)\n", down.out.c_str(), secs);
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_NE(down.out.find("processes stopped"), std::string::npos) << down.out;

  int st = 0;
  ASSERT_EQ(waitpid(polite, &st, 0), polite);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << "status " << st;
  ASSERT_EQ(waitpid(stubborn, &st, 0), stubborn);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "status " << st;
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_EQ(sh("ip netns list").out.find(name_), std::string::npos);
  EXPECT_FALSE(exists(state_file(name_)));
  EXPECT_EQ(lab("status --name " + name_).status, 1);
}

// faultlined enters a target namespace with setns on its main thread while its other threads
// stay in the host's; a process like that, or one with just a helper thread inside (this test
// process itself), is never signalled by down. Only a process wholly inside is.
TEST_F(LabCmd, DownStopsOnlyProcessesWhollyInsideNeverOneWithSomeThreadsOutside) {
  ASSERT_EQ(up("--nodes 2").status, 0);
  const std::string ns_a = "/run/netns/" + name_ + "-a", ns_b = "/run/netns/" + name_ + "-b";
  const ino_t ino_a = ns_ino(ns_a), ino_b = ns_ino(ns_b);
  ASSERT_NE(ino_a, 0u);
  ASSERT_NE(ino_b, 0u);

  // Like faultlined: main thread in node b, another thread in the host's namespace.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t visitor = fork();
  if (visitor == 0) {
    close(ready[0]);
    std::thread([] {
      for (;;) pause();
    }).detach();
    int fd = open(ns_b.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) _exit(1);
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the visitor did not enter " << ns_b;
  close(ready[0]);
  struct Reap {
    pid_t p;
    ~Reap() {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  } reap{visitor};

  // A thread of this very test process in node a, there all through down.
  std::atomic<int> helper_state{0};  // 1: inside, -1: could not enter
  std::atomic<bool> leave{false};
  std::atomic<ino_t> helper_ino{0};
  std::thread helper([&] {
    int fd = open(ns_a.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      helper_state = -1;
      return;
    }
    close(fd);
    helper_state = 1;
    while (!leave) std::this_thread::sleep_for(10ms);
    helper_ino = ns_ino("/proc/thread-self/ns/net");
  });
  struct Join {
    std::thread& t;
    std::atomic<bool>& leave;
    ~Join() {
      leave = true;
      if (t.joinable()) t.join();
    }
  } join_helper{helper, leave};
  ASSERT_TRUE(eventually([&] { return helper_state != 0; }, 5s));
  ASSERT_EQ(helper_state, 1) << "the helper thread could not enter " << ns_a;

  // And one wholly inside, which down does stop.
  pid_t inside = fork();
  if (inside == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    std::string bin = lab_bin();
    execl(bin.c_str(), bin.c_str(), "exec", "--name", name_.c_str(), "a", "--", "sleep", "300",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(eventually(
      [&] { return sh("ip netns pids " + name_ + "-a").out.find(std::to_string(inside)) != std::string::npos; },
      5s));

  Cmd down = lab("down --name " + name_);
  std::printf("%s", down.out.c_str());
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_NE(down.out.find("1 process stopped"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("process " + std::to_string(getpid()) + " has a thread in the lab"), std::string::npos)
      << down.out;
  EXPECT_NE(down.out.find("process " + std::to_string(visitor) + " has a thread in the lab"), std::string::npos)
      << down.out;
  int st = 0;
  ASSERT_EQ(waitpid(inside, &st, 0), inside);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << "status " << st;
  EXPECT_EQ(waitpid(visitor, &st, WNOHANG), 0) << "the visitor was stopped, status " << st;
  // This process is evidently still here; its helper thread is still in node a's namespace.
  leave = true;
  helper.join();
  EXPECT_EQ(helper_ino.load(), ino_a);
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_FALSE(exists(state_file(name_)));
}

// A lab name bound to init's or the caller's own namespace would make every process there look
// like the lab's. Checked without going near the real host: the "host" is a namespace X of our
// own, made init's by a private pid namespace, or the caller's by running down inside it.
TEST_F(LabCmd, DownRefusesALabNamespaceThatIsInitsOrTheCallersOwnAndChangesNothing) {
  ASSERT_EQ(up("--nodes 2").status, 0);
  const std::string x = name_ + "x", y = name_ + "y", b = "/run/netns/" + name_ + "-b";
  struct Cleanup {
    std::string x, y, b;
    ~Cleanup() {
      sh("umount -l " + b + " 2>/dev/null; ip netns delete " + x + " 2>/dev/null; ip netns delete " + y +
         " 2>/dev/null");
    }
  } cleanup{x, y, b};
  ASSERT_EQ(sh("ip netns add " + x + " && ip netns add " + y).status, 0);
  ASSERT_EQ(sh("umount -l " + b + " && mount --bind /run/netns/" + x + " " + b).status, 0);
  ASSERT_EQ(ns_ino(b), ns_ino("/run/netns/" + x));
  // A name bound to another namespace is no longer the lab's, and down leaves it alone (see
  // DownLeavesANamespaceMadeAgainUnderTheSameNameAlone). Here the state file claims X for b,
  // as a hand-edited one could: the host check must still hold.
  {
    json j = json::parse(sh("cat " + state_file(name_)).out);
    struct stat st{};
    ASSERT_EQ(stat(b.c_str(), &st), 0);
    j["nodes"][1]["netns_id"] = {{"dev", st.st_dev}, {"ino", st.st_ino}, {"cookie", 0}};
    std::ofstream(state_file(name_)) << j.dump(2) << "\n";
  }
  auto unchanged = [&](const std::string& what) {
    EXPECT_EQ(join(present(name_)), name_ + "-hub " + name_ + "-a " + name_ + "-b") << what;
    EXPECT_TRUE(exists(state_file(name_))) << what;
    EXPECT_EQ(ns_ino(b), ns_ino("/run/netns/" + x)) << what;
  };

  Cmd own = sh("ip netns exec " + x + " " + lab_bin() + " down --name " + name_);
  EXPECT_EQ(own.status, 1) << own.out;
  EXPECT_NE(own.out.find(b + " is this process's own network namespace"), std::string::npos) << own.out;
  unchanged("own");

  // pid 1 of a new pid namespace is a shell in X; down runs in Y.
  Cmd init = sh("ip netns exec " + x + " unshare --pid --fork --mount-proc sh -c 'ip netns exec " + y + " " +
                lab_bin() + " down --name " + name_ + "; exit $?'");
  EXPECT_EQ(init.status, 1) << init.out;
  EXPECT_NE(init.out.find(b + " is init's (pid 1) network namespace"), std::string::npos) << init.out;
  unchanged("init");

  // With the name unbound (an empty file, as a lost namespace leaves), down finishes the job.
  ASSERT_EQ(sh("umount -l " + b).status, 0);
  Cmd down = lab("down --name " + name_);
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_FALSE(exists(state_file(name_)));
}

// A state file with a gap in its nodes (edited by hand) gets a clear error from exec.
TEST_F(LabCmd, ExecSaysSoWhenTheStateFileLacksTheNode) {
  ASSERT_EQ(up("--nodes 3").status, 0);
  json j = json::parse(sh("cat " + state_file(name_)).out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  j["nodes"].erase(1);
  {
    std::ofstream f(state_file(name_));
    f << j.dump(2) << "\n";
  }
  Cmd e = lab("exec --name " + name_ + " b -- true");
  EXPECT_EQ(e.status, 125) << e.out;
  EXPECT_NE(e.out.find("no node b in " + state_file(name_)), std::string::npos) << e.out;
  EXPECT_EQ(lab("exec --name " + name_ + " c -- true").status, 125) << "c is beyond the 2 nodes it now lists";
  EXPECT_EQ(lab("exec --name " + name_ + " a -- true").status, 0);
}

// Issue 10 item 9: a lab namespace deleted and made again by someone else under the same name
// is theirs. status says so, and down stops none of its processes and leaves it in place,
// while the rest of the lab goes.
TEST_F(LabCmd, DownLeavesANamespaceMadeAgainUnderTheSameNameAlone) {
  ASSERT_EQ(up("--nodes 3").status, 0);
  const std::string b = name_ + "-b", path = "/run/netns/" + b;
  const ino_t made = ns_ino(path);
  ASSERT_EQ(sh("ip netns delete " + b + " && ip netns add " + b).status, 0);
  // The kernel hands a freed namespace inode number to the next namespace made: the impostor
  // may well have the same device and inode as the lab's b (the cookie tells them apart).
  std::cout << "[          ] lab's b had inode " << made << ", the new b has " << ns_ino(path) << "\n";
  const ino_t impostor = ns_ino(path);
  pid_t sleeper = fork();
  if (sleeper == 0) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
    execlp("sleep", "sleep", "60", static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Reap {
    pid_t p;
    ~Reap() {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  } reap{sleeper};
  ASSERT_TRUE(eventually([&] { return ns_ino("/proc/" + std::to_string(sleeper) + "/ns/net") == impostor; }, 5s));

  Cmd s = lab("status --name " + name_ + " -o json");
  EXPECT_EQ(s.status, 1) << s.out;
  json j = json::parse(s.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << s.out;
  EXPECT_EQ(j["nodes"][0]["state"], "up");
  EXPECT_EQ(j["nodes"][1]["state"], "namespace replaced");

  Cmd down = lab("down --name " + name_);
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_NE(down.out.find("namespace " + b + " is not the one lab " + name_ + " made"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("left alone (not the lab's): " + b), std::string::npos) << down.out;
  EXPECT_EQ(join(present(name_)), b) << "the rest of the lab goes, the impostor stays";
  EXPECT_EQ(ns_ino(path), impostor);
  EXPECT_EQ(waitpid(sleeper, nullptr, WNOHANG), 0) << "a process in the impostor was stopped";
  EXPECT_FALSE(exists(state_file(name_)));
  sh("ip netns delete " + b);
}

// Issue 10 item 9: systemd removes faultlined's RuntimeDirectory (/run/faultline) when the
// daemon stops. A lab made before that must still come down. Here /run/faultline is a tmpfs of
// a private mount namespace, unmounted between up and down as systemd would empty it.
TEST_F(LabCmd, DownWorksAfterFaultlinedsRuntimeDirectoryIsRemoved) {
  names_.push_back(name_);
  const bool made_dir = !exists("/run/faultline");
  if (made_dir) ASSERT_EQ(mkdir("/run/faultline", 0750), 0);
  Cmd r = sh("unshare --mount sh -c 'mount -t tmpfs none /run/faultline && " + lab_bin() + " up --name " + name_ +
             " --nodes 2 >/dev/null && umount /run/faultline && " + lab_bin() + " down --name " + name_ + "'");
  if (made_dir) rmdir("/run/faultline");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("lab " + name_ + " removed: 3 namespaces"), std::string::npos) << r.out;
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_FALSE(exists(state_file(name_)));
}

TEST_F(LabCmd, StatusNoticesAMissingNamespaceAndDownStillCleansUp) {
  ASSERT_EQ(up("--nodes 3").status, 0);
  ASSERT_EQ(sh("ip netns delete " + name_ + "-b").status, 0);
  Cmd s = lab("status --name " + name_ + " -o json");
  EXPECT_EQ(s.status, 1) << s.out;
  json j = json::parse(s.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << s.out;
  EXPECT_EQ(j["healthy"], false);
  EXPECT_EQ(j["nodes"][0]["state"], "up");
  EXPECT_EQ(j["nodes"][1]["state"], "namespace missing");
  Cmd down = lab("down --name " + name_);
  EXPECT_EQ(down.status, 0) << down.out;
  EXPECT_EQ(join(present(name_)), "");
  EXPECT_FALSE(exists(state_file(name_)));
}

// A failed or interrupted `up` removes what it made. SIGTERM arrives once the hub exists, with
// up to 25 nodes still to make.
TEST_F(LabCmd, AnUpInterruptedHalfwayRemovesWhatItMade) {
  names_.push_back(name_);
  for (int attempt = 0; attempt < 3; attempt++) {
    pid_t p = fork();
    if (p == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 1);
      dup2(null, 2);
      execl(lab_bin().c_str(), lab_bin().c_str(), "up", "--name", name_.c_str(), "--nodes", "26", "--ipv6",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    bool hub = eventually([&] { return exists("/run/netns/" + name_ + "-hub"); }, 10s, 1ms);
    kill(p, SIGTERM);
    int st = 0;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    ASSERT_TRUE(hub) << "up never made its hub";
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      // Finished before the signal came: try again.
      ASSERT_EQ(lab("down --name " + name_).status, 0);
      continue;
    }
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << "status " << st;
    EXPECT_EQ(join(present(name_)), "");
    EXPECT_FALSE(exists(state_file(name_)));
    return;
  }
  GTEST_SKIP() << "up finished three times before SIGTERM reached it";
}

}  // namespace
}  // namespace fl::test
