// Kubernetes targets found the way faultlined finds them on a node: processes in cgroups laid
// out exactly like the kubelet's (systemd and cgroupfs drivers; containerd, CRI-O and docker
// naming; cgroup v2 and v1), in network namespaces of the test's own. The cgroup hierarchies are
// mounted by the test under a temporary directory (the VM has none mounted), every cgroup sits
// below a unique fltest-<pid>-... directory, and everything is removed again, also on failure.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/cgroup_layout.h"
#include "core/parse.h"
#include "integration/lab_util.h"
#include "kernel/netns.h"
#include "kernel/pod_target.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;
using core::Target;
using K = core::Target::Kind;

std::atomic<int> g_counter{0};
std::string unique(const std::string& what) {
  return "fltest-" + std::to_string(getpid()) + "-" + what + std::to_string(g_counter++);
}

std::mt19937_64& rng() {
  static std::mt19937_64 r{std::random_device{}()};
  return r;
}

std::string random_hex(size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += digits[rng()() % 16];
  return s;
}

std::string random_uid() {
  std::string h = random_hex(32);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

// A cgroup hierarchy mounted on a temporary directory, with one fltest-<pid>-... directory
// below its root that holds everything the test creates.
class CgroupHierarchy {
 public:
  enum class Version { v2, v1_named };
  explicit CgroupHierarchy(Version v) {
    char tmpl[] = "/tmp/fltest-cgroup-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error_ = std::string("mkdtemp: ") + strerror(errno);
      return;
    }
    mnt_ = tmpl;
    int rc = 0;
    if (v == Version::v2) {
      rc = mount("none", mnt_.c_str(), "cgroup2", 0, nullptr);
    } else {
      const std::string opts = "none,name=fltest" + std::to_string(getpid());
      rc = mount("none", mnt_.c_str(), "cgroup", 0, opts.c_str());
    }
    if (rc != 0) {
      unsupported_ = errno == ENODEV;
      error_ = std::string("mount ") + (v == Version::v2 ? "cgroup2" : "cgroup v1 named hierarchy") + ": " +
               strerror(errno);
      rmdir(mnt_.c_str());
      mnt_.clear();
      return;
    }
    mounted_ = true;
    top_ = unique("cg");
    make(top_);
  }
  ~CgroupHierarchy() {
    // Bottom-up. A cgroup can be removed once its last process has been reaped.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      const std::string d = mnt_ + "/" + *it;
      for (int i = 0; i < 100 && rmdir(d.c_str()) != 0 && errno == EBUSY; ++i) std::this_thread::sleep_for(10ms);
    }
    if (mounted_ && umount(mnt_.c_str()) != 0) umount2(mnt_.c_str(), MNT_DETACH);
    if (!mnt_.empty()) rmdir(mnt_.c_str());
  }
  CgroupHierarchy(const CgroupHierarchy&) = delete;
  CgroupHierarchy& operator=(const CgroupHierarchy&) = delete;

  bool ok() const { return mounted_; }
  bool unsupported() const { return unsupported_; }
  const std::string& error() const { return error_; }

  // Creates top/rel (and every missing parent) and moves pid into it.
  void add(const std::string& rel, pid_t pid) {
    std::string path = top_;
    size_t i = 0;
    while (i <= rel.size()) {
      size_t j = rel.find('/', i);
      if (j == std::string::npos) j = rel.size();
      path += "/" + rel.substr(i, j - i);
      make(path);
      i = j + 1;
    }
    std::ofstream procs(mnt_ + "/" + path + "/cgroup.procs");
    procs << pid << std::flush;
    ASSERT_TRUE(procs.good()) << "move " << pid << " into " << path;
  }

 private:
  void make(const std::string& rel) {
    if (mkdir((mnt_ + "/" + rel).c_str(), 0755) == 0) dirs_.push_back(rel);
    else ASSERT_EQ(errno, EEXIST) << "mkdir " << rel << ": " << strerror(errno);
  }

  std::string mnt_, top_, error_;
  bool mounted_ = false, unsupported_ = false;
  std::vector<std::string> dirs_;
};

// A network namespace of the test's, with a veth pair inside so the daemon finds an Ethernet
// interface to attach to.
class TestNetns {
 public:
  TestNetns() : name_(unique("pod")) {
    Cmd r = sh("ip netns add " + name_);
    created_ = r.status == 0;
    EXPECT_TRUE(created_) << r.out;
    Cmd v = sh("ip -n " + name_ + " link add eth0 type veth peer name eth1 && ip -n " + name_ +
               " link set eth0 up && ip -n " + name_ + " link set eth1 up");
    EXPECT_EQ(v.status, 0) << v.out;
  }
  ~TestNetns() { remove(); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  const std::string& name() const { return name_; }
  void remove() {
    if (created_) sh("ip netns del " + name_);
    created_ = false;
  }
  // A new, empty namespace under the same name.
  bool recreate() {
    remove();
    created_ = sh("ip netns add " + name_).status == 0;
    return created_;
  }

 private:
  std::string name_;
  bool created_ = false;
};

kernel::NetnsId id_of(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) return {};
  return kernel::NetnsId{st.st_dev, st.st_ino};
}

// A real process standing for a container's: it sits in the given network namespace (or the
// test's own when ns is empty) until killed, and dies with the test.
class Proc {
 public:
  explicit Proc(const std::string& ns) {
    int fd = -1;
    if (!ns.empty()) {
      fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      EXPECT_GE(fd, 0) << ns;
    }
    // The child says when it is in the namespace; until then it would be found in ours.
    int ready[2];
    EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      if (fd >= 0 && setns(fd, CLONE_NEWNET) != 0) _exit(2);
      char c = 1;
      if (write(ready[1], &c, 1) != 1) _exit(3);
      for (;;) pause();
    }
    close(ready[1]);
    if (fd >= 0) close(fd);
    EXPECT_GT(pid_, 0);
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1) << "the child did not get into " << ns;
    close(ready[0]);
  }
  ~Proc() { stop(); }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  pid_t pid() const { return pid_; }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

enum class Driver { systemd, cgroupfs };
enum class Qos { guaranteed, burstable, besteffort };
enum class Runtime { containerd, crio, docker };

const char* qos_name(Qos q) { return q == Qos::burstable ? "burstable" : "besteffort"; }

// The pod's cgroup, relative to the kubelet's root, as the kubelet names it.
std::string pod_dir(Driver d, Qos q, const std::string& uid, const std::string& prefix = "") {
  if (d == Driver::cgroupfs) {
    return prefix + "kubepods" + (q == Qos::guaranteed ? "" : std::string("/") + qos_name(q)) + "/pod" + uid;
  }
  std::string u = uid;
  for (char& c : u) c = c == '-' ? '_' : c;
  // Every slice repeats its parents' names: kubepods-burstable-pod<uid>.slice.
  const std::string root = prefix.empty() ? "kubepods" : "kubelet-kubepods";
  std::string path = (prefix.empty() ? "" : "kubelet.slice/") + root + ".slice";
  std::string parent = root;
  if (q != Qos::guaranteed) {
    parent += std::string("-") + qos_name(q);
    path += "/" + parent + ".slice";
  }
  return path + "/" + parent + "-pod" + u + ".slice";
}

std::string container_dir(Driver d, Runtime r, const std::string& id, bool conmon = false) {
  if (d == Driver::systemd) {
    if (conmon) return "crio-conmon-" + id + ".scope";
    switch (r) {
      case Runtime::containerd: return "cri-containerd-" + id + ".scope";
      case Runtime::crio: return "crio-" + id + ".scope";
      case Runtime::docker: return "docker-" + id + ".scope";
    }
  }
  if (conmon) return "crio-conmon-" + id;
  return r == Runtime::crio ? "crio-" + id : id;
}

const kernel::Netns& host_ns() {
  static kernel::Netns host = [] {
    auto h = kernel::Netns::self();
    EXPECT_TRUE(h.ok()) << h.error().message;
    return h.ok() ? std::move(*h) : kernel::Netns();
  }();
  return host;
}

Result<kernel::Netns> open_target(const std::string& spec) {
  auto t = core::parse_target(spec);
  if (!t.ok()) return t.take_error();
  return kernel::Netns::open(*t, host_ns());
}

// A stand-in for crictl, the CLI of a CRI runtime: prints the JSON the test put next to it (as
// `crictl pods -o json` would) and records how it was called.
class FakeCrictl {
 public:
  FakeCrictl() {
    char tmpl[] = "/tmp/fltest-crictl-XXXXXX";
    if (mkdtemp(tmpl)) dir_ = tmpl;
    std::ofstream s(path());
    s << "#!/bin/sh\n"
         "# Test stand-in for crictl (a CRI runtime's CLI): no runtime runs here.\n"
         "echo \"$@\" > " << dir_ << "/args\n"
         "cat " << dir_ << "/pods.json\n";
    s.close();
    chmod(path().c_str(), 0755);
    set_json(R"({"items":[]})");
  }
  ~FakeCrictl() {
    for (const char* f : {"/crictl", "/args", "/pods.json", "/failing", "/hanging"}) unlink((dir_ + f).c_str());
    rmdir(dir_.c_str());
  }
  // Another stand-in next to it, with the given body; returns its path.
  std::string script(const std::string& name, const std::string& body) const {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << "#!/bin/sh\n# Test stand-in for crictl.\n" << body << "\n";
    chmod(p.c_str(), 0755);
    return p;
  }
  std::string path() const { return dir_ + "/crictl"; }
  std::string args() const {
    std::ifstream a(dir_ + "/args");
    std::string s;
    std::getline(a, s);
    return s;
  }
  void set_json(const std::string& j) { std::ofstream(dir_ + "/pods.json") << j; }
  static std::string pod_json(const std::string& ns, const std::string& name, const std::string& uid,
                              bool ready) {
    return R"({"id":")" + random_hex(64) + R"(","metadata":{"name":")" + name + R"(","uid":")" + uid +
           R"(","namespace":")" + ns + R"(","attempt":0},"state":")" + (ready ? "SANDBOX_READY" : "SANDBOX_NOTREADY") +
           R"(","createdAt":"1700000000000000000","labels":{},"annotations":{},"runtimeHandler":""})";
  }

 private:
  std::string dir_;
};

// One daemon for the suite: starting one is slow in the VM.
class PodTargets : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!require_root()) return;
    crictl_ = new FakeCrictl();
    Daemon::Options o;
    o.extra = {"--crictl", crictl_->path()};
    daemon_ = new Daemon(o);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
    delete crictl_;
    crictl_ = nullptr;
  }
  void SetUp() override {
    if (!require_root()) GTEST_SKIP() << "needs root (namespaces, cgroups)";
    kernel::PodTargetOptions o;
    o.crictl = crictl_->path();
    kernel::set_pod_target_options(o);
  }
  void TearDown() override { kernel::set_pod_target_options({}); }

  // Applies a partition through faultctl and the daemon, checks that it attached in ns (and
  // only there), and heals it.
  void apply_through_daemon(const std::string& target, const std::string& ns) {
    const std::string name = "pt" + std::to_string(g_counter++);
    Cmd r = faultctl(*daemon_, "partition --side a=10.200.9.1 --side b=10.200.9.2 --for 1m --name " + name +
                                   " --target " + target);
    ASSERT_EQ(r.status, 0) << target << ": " << r.out;
    Hooks h = hooks_on(ns, "eth0");
    EXPECT_TRUE(h.tcx > 0 || h.tc_filters > 0) << target << " did not attach in " << ns;
    Cmd heal = faultctl(*daemon_, "heal " + name);
    EXPECT_EQ(heal.status, 0) << heal.out;
  }

  static Daemon* daemon_;
  static FakeCrictl* crictl_;
};
Daemon* PodTargets::daemon_ = nullptr;
FakeCrictl* PodTargets::crictl_ = nullptr;

struct Layout {
  const char* name;
  CgroupHierarchy::Version version;
  Driver driver;
  Qos qos;
  Runtime runtime;
  bool conmon = false;       // CRI-O's conmon next to each container, in the host's netns
  std::string prefix = "";   // kind's kubelet.slice/ (systemd) or a nested node's docker/<id>/
};

void PrintTo(const Layout& l, std::ostream* os) { *os << l.name; }

class PodLayouts : public PodTargets, public ::testing::WithParamInterface<Layout> {};

// A pod with a sandbox and an app container in one namespace (and, for CRI-O, conmon for each
// in the host's): pod-uid:, container: (full and prefix) and, through the daemon, faultctl all
// land in that namespace.
TEST_P(PodLayouts, FindsThePodsNamespace) {
  const Layout& l = GetParam();
  CgroupHierarchy cg(l.version);
  if (cg.unsupported()) GTEST_SKIP() << "this kernel cannot mount it: " << cg.error();
  ASSERT_TRUE(cg.ok()) << cg.error();
  TestNetns ns;
  const std::string uid = random_uid(), sandbox = random_hex(64), app = random_hex(64);
  const std::string pod = pod_dir(l.driver, l.qos, uid, l.prefix);
  Proc pause(ns.name()), work(ns.name());
  cg.add(pod + "/" + container_dir(l.driver, l.runtime, sandbox), pause.pid());
  cg.add(pod + "/" + container_dir(l.driver, l.runtime, app), work.pid());
  std::vector<std::unique_ptr<Proc>> conmons;
  if (l.conmon) {
    for (const auto& id : {sandbox, app}) {
      conmons.push_back(std::make_unique<Proc>(""));
      cg.add(pod + "/" + container_dir(l.driver, l.runtime, id, true), conmons.back()->pid());
    }
  }
  const kernel::NetnsId want = id_of("/run/netns/" + ns.name());

  for (const std::string& spec : {"pod-uid:" + uid, "container:" + app, "container:" + app.substr(0, 12),
                                  "container:" + sandbox.substr(0, 20)}) {
    SCOPED_TRACE(spec);
    auto n = open_target(spec);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(n->id(), want) << "landed in " << n->id().str();
    EXPECT_EQ(n->pod_uid(), uid);
    EXPECT_TRUE(n->origin_pid() == pause.pid() || n->origin_pid() == work.pid()) << n->origin_pid();
    auto t = core::parse_target(spec);
    EXPECT_TRUE(kernel::target_still_there(*t, *n));
  }
  auto c = open_target("container:" + app.substr(0, 12));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->container_id(), app);
  EXPECT_EQ(c->origin_pid(), work.pid());

  // Through the daemon too; container: takes the same path there, so once is enough (the VM
  // runs this suite ~20x slower).
  apply_through_daemon("pod-uid:" + uid, ns.name());
  if (std::string(l.name) == "V2SystemdContainerdBurstable") {
    apply_through_daemon("container:" + app.substr(0, 12), ns.name());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kubelet, PodLayouts,
    ::testing::Values(
        Layout{"V2SystemdContainerdBurstable", CgroupHierarchy::Version::v2, Driver::systemd, Qos::burstable,
               Runtime::containerd},
        Layout{"V2SystemdCrioGuaranteedWithConmon", CgroupHierarchy::Version::v2, Driver::systemd,
               Qos::guaranteed, Runtime::crio, true},
        Layout{"V2CgroupfsContainerdBesteffort", CgroupHierarchy::Version::v2, Driver::cgroupfs, Qos::besteffort,
               Runtime::containerd},
        Layout{"V2CgroupfsCrioBurstableWithConmon", CgroupHierarchy::Version::v2, Driver::cgroupfs,
               Qos::burstable, Runtime::crio, true},
        Layout{"V2SystemdKindBesteffort", CgroupHierarchy::Version::v2, Driver::systemd, Qos::besteffort,
               Runtime::containerd, false, "kubelet.slice/"},
        Layout{"V2CgroupfsNestedNodeGuaranteed", CgroupHierarchy::Version::v2, Driver::cgroupfs, Qos::guaranteed,
               Runtime::containerd, false, "docker/" + random_hex(64) + "/"},
        Layout{"V1CgroupfsContainerdBurstable", CgroupHierarchy::Version::v1_named, Driver::cgroupfs,
               Qos::burstable, Runtime::containerd},
        Layout{"V1SystemdDockerGuaranteed", CgroupHierarchy::Version::v1_named, Driver::systemd, Qos::guaranteed,
               Runtime::docker},
        Layout{"V1SystemdCrioBesteffort", CgroupHierarchy::Version::v1_named, Driver::systemd, Qos::besteffort,
               Runtime::crio, true}),
    [](const ::testing::TestParamInfo<Layout>& i) { return std::string(i.param.name); });

// End to end: a partition applied with --target pod-uid: drops real traffic from the pod's
// namespace, and only while it is on.
TEST_F(PodTargets, PartitionThroughPodUidDropsTraffic) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  Lab lab(2);
  const std::string uid = random_uid(), id = random_hex(64);
  Proc p(lab.ns(0));
  cg.add(pod_dir(Driver::systemd, Qos::burstable, uid) + "/" + container_dir(Driver::systemd, Runtime::containerd, id),
         p.pid());
  ASSERT_TRUE(lab.ping(0, 1));
  Cmd r = faultctl(*daemon_, "partition --side a=" + Lab::ip4(0) + " --side b=" + Lab::ip4(1) +
                                 " --for 1m --name pod-split --target pod-uid:" + uid);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_FALSE(lab.ping(0, 1)) << "the pod's namespace still reaches the other side";
  Cmd list = faultctl(*daemon_, "-o json list");
  EXPECT_NE(list.out.find("pod-uid:" + uid), std::string::npos) << list.out;
  Cmd heal = faultctl(*daemon_, "heal pod-split");
  EXPECT_EQ(heal.status, 0) << heal.out;
  EXPECT_TRUE(lab.ping(0, 1));
}

TEST_F(PodTargets, HostNetworkPodIsRefused) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  const std::string uid = random_uid(), id = random_hex(64);
  Proc p("");  // the test's own namespace, which is the daemon's: hostNetwork: true
  cg.add(pod_dir(Driver::cgroupfs, Qos::burstable, uid) + "/" + id, p.pid());
  for (const std::string& spec : {"pod-uid:" + uid, "container:" + id}) {
    SCOPED_TRACE(spec);
    auto n = open_target(spec);
    ASSERT_FALSE(n.ok()) << "opened " << n->id().str();
    EXPECT_EQ(n.error().code, Errc::invalid_argument);
    EXPECT_NE(n.error().message.find("uses the host's network namespace (hostNetwork: true"), std::string::npos)
        << n.error().message;
    EXPECT_NE(n.error().message.find("use --target host"), std::string::npos) << n.error().message;
    Cmd r = faultctl(*daemon_, "partition --side a=10.200.9.1 --side b=10.200.9.2 --for 1m --target " + spec);
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("hostNetwork: true"), std::string::npos) << r.out;
  }
}

TEST_F(PodTargets, NotFoundSaysWhatAndWhere) {
  const std::string uid = random_uid(), id = random_hex(64);
  auto n = open_target("pod-uid:" + uid);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, Errc::target_unavailable);
  EXPECT_NE(n.error().message.find("no process of pod " + uid), std::string::npos) << n.error().message;
  EXPECT_NE(n.error().message.find("the pod must run on this node"), std::string::npos) << n.error().message;
  auto c = open_target("container:" + id.substr(0, 16));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::target_unavailable);
  EXPECT_NE(c.error().message.find("no process of a container with id " + id.substr(0, 16) + "..."),
            std::string::npos)
      << c.error().message;
  Cmd r = faultctl(*daemon_, "partition --side a=10.200.9.1 --side b=10.200.9.2 --target pod-uid:" + uid);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("target_unavailable"), std::string::npos) << r.out;
}

TEST_F(PodTargets, AmbiguousPrefixAndAmbiguousNamespaces) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  TestNetns ns1, ns2;
  const std::string uid = random_uid(), common = random_hex(12);
  const std::string a = common + random_hex(52), b = common + random_hex(52);
  Proc pa(ns1.name()), pb(ns2.name());
  const std::string pod = pod_dir(Driver::systemd, Qos::besteffort, uid);
  cg.add(pod + "/" + container_dir(Driver::systemd, Runtime::containerd, a), pa.pid());
  cg.add(pod + "/" + container_dir(Driver::systemd, Runtime::containerd, b), pb.pid());

  auto p = open_target("container:" + common);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::invalid_argument);
  EXPECT_NE(p.error().message.find("the container id prefix " + common + " matches 2 containers"), std::string::npos)
      << p.error().message;
  EXPECT_NE(p.error().message.find(a), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("give more of the id"), std::string::npos) << p.error().message;

  // One more digit, or the whole id, tells them apart.
  auto full = open_target("container:" + b);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->id(), id_of("/run/netns/" + ns2.name()));

  // The pod's two containers are in two namespaces: no single one is "the pod's".
  auto pod_t = open_target("pod-uid:" + uid);
  ASSERT_FALSE(pod_t.ok());
  EXPECT_EQ(pod_t.error().code, Errc::invalid_argument);
  EXPECT_NE(pod_t.error().message.find("is ambiguous: its processes are in 2 network namespaces"),
            std::string::npos)
      << pod_t.error().message;
  EXPECT_NE(pod_t.error().message.find("--target container:ID"), std::string::npos) << pod_t.error().message;
}

// CRI-O's conmon alone (its container gone) is no container: the pod is not found, rather than
// found in the host's namespace.
TEST_F(PodTargets, ConmonAloneIsNotTheContainer) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  const std::string uid = random_uid(), id = random_hex(64);
  Proc conmon("");
  cg.add(pod_dir(Driver::systemd, Qos::burstable, uid) + "/" + container_dir(Driver::systemd, Runtime::crio, id, true),
         conmon.pid());
  auto p = open_target("pod-uid:" + uid);
  ASSERT_FALSE(p.ok()) << "opened " << p->id().str();
  EXPECT_EQ(p.error().code, Errc::target_unavailable) << p.error().message;
  auto c = open_target("container:" + id);
  ASSERT_FALSE(c.ok()) << "opened " << c->id().str();
  EXPECT_EQ(c.error().code, Errc::target_unavailable);
  EXPECT_NE(c.error().message.find("only CRI-O's conmon for it"), std::string::npos) << c.error().message;
}

TEST_F(PodTargets, LivenessFollowsTheProcessesAndTheNamespace) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  TestNetns ns;
  const std::string uid = random_uid(), id = random_hex(64);
  const std::string dir = pod_dir(Driver::cgroupfs, Qos::burstable, uid) + "/" + id;
  auto first = std::make_unique<Proc>(ns.name());
  cg.add(dir, first->pid());
  const auto pod_t = *core::parse_target("pod-uid:" + uid);
  const auto ctr_t = *core::parse_target("container:" + id.substr(0, 12));
  const auto name_t = *core::parse_target("netns:" + ns.name());
  const auto pid_t_ = *core::parse_target("pid:" + std::to_string(first->pid()));
  auto pod_ns = kernel::Netns::open(pod_t, host_ns());
  auto ctr_ns = kernel::Netns::open(ctr_t, host_ns());
  auto name_ns = kernel::Netns::open(name_t, host_ns());
  auto pid_ns = kernel::Netns::open(pid_t_, host_ns());
  ASSERT_TRUE(pod_ns.ok() && ctr_ns.ok() && name_ns.ok() && pid_ns.ok());
  EXPECT_TRUE(kernel::target_still_there(Target{}, host_ns()));
  const std::vector<std::pair<const Target*, const kernel::Netns*>> all = {
      {&pod_t, &*pod_ns}, {&ctr_t, &*ctr_ns}, {&name_t, &*name_ns}, {&pid_t_, &*pid_ns}};
  for (const auto& [t, n] : all) EXPECT_TRUE(kernel::target_still_there(*t, *n)) << t->str();

  // The container restarts: a new process in the same cgroup and namespace keeps the pod there
  // although the process it was opened through is gone; the pid target is gone with it.
  auto second = std::make_unique<Proc>(ns.name());
  cg.add(dir, second->pid());
  first.reset();
  EXPECT_TRUE(kernel::target_still_there(pod_t, *pod_ns));
  EXPECT_TRUE(kernel::target_still_there(ctr_t, *ctr_ns));
  EXPECT_FALSE(kernel::target_still_there(pid_t_, *pid_ns));

  // A process of the pod in another namespace is not the held one.
  TestNetns other;
  auto elsewhere = std::make_unique<Proc>(other.name());
  second.reset();
  cg.add(dir, elsewhere->pid());
  EXPECT_FALSE(kernel::target_still_there(pod_t, *pod_ns));
  EXPECT_FALSE(kernel::target_still_there(ctr_t, *ctr_ns));
  elsewhere.reset();
  EXPECT_FALSE(kernel::target_still_there(pod_t, *pod_ns));

  // The namespace's name goes while our fd still holds the namespace itself.
  EXPECT_TRUE(kernel::target_still_there(name_t, *name_ns));
  ns.remove();
  EXPECT_FALSE(kernel::target_still_there(name_t, *name_ns));
  // A new namespace under the old name is not the one the fault was applied to.
  ASSERT_TRUE(ns.recreate());
  EXPECT_FALSE(kernel::target_still_there(name_t, *name_ns));
}

TEST_F(PodTargets, PodNameResolvedThroughCrictl) {
  CgroupHierarchy cg(CgroupHierarchy::Version::v2);
  ASSERT_TRUE(cg.ok()) << cg.error();
  TestNetns ns;
  const std::string uid = random_uid(), old_uid = random_uid(), id = random_hex(64);
  Proc p(ns.name());
  cg.add(pod_dir(Driver::systemd, Qos::guaranteed, uid) + "/" + container_dir(Driver::systemd, Runtime::containerd, id),
         p.pid());
  // crictl's --name is a regular expression: web-0 also lists web-01 and web-0x. An old,
  // stopped sandbox of a pod with the same name (recreated by a StatefulSet) is not picked.
  crictl_->set_json(R"({"items":[)" + FakeCrictl::pod_json("default", "web-01", random_uid(), true) + "," +
                    FakeCrictl::pod_json("other", "web-0", random_uid(), true) + "," +
                    FakeCrictl::pod_json("default", "web-0", old_uid, false) + "," +
                    FakeCrictl::pod_json("default", "web-0", uid, true) + "]}");
  auto n = open_target("pod:default/web-0");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->id(), id_of("/run/netns/" + ns.name()));
  EXPECT_EQ(n->pod_uid(), uid);
  EXPECT_EQ(crictl_->args(), "pods --namespace default --name web-0 -o json");
  EXPECT_TRUE(kernel::target_still_there(*core::parse_target("pod:default/web-0"), *n));

  apply_through_daemon("pod:default/web-0", ns.name());

  crictl_->set_json(R"({"items":[]})");
  auto gone = open_target("pod:default/web-0");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::target_unavailable);
  EXPECT_NE(gone.error().message.find("pod default/web-0: not found by crictl; the pod must run on this node"),
            std::string::npos)
      << gone.error().message;
}

TEST_F(PodTargets, PodNameWithoutCrictlIsRefused) {
  for (const std::string crictl : {"/nonexistent/crictl", "fltest-no-such-crictl"}) {
    SCOPED_TRACE(crictl);
    kernel::PodTargetOptions o;
    o.crictl = crictl;
    kernel::set_pod_target_options(o);
    auto n = open_target("pod:default/web-0");
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().code, Errc::target_unavailable);
    const std::string& m = n.error().message;
    EXPECT_NE(m.find("pod default/web-0: resolving a pod's name on the node needs crictl"), std::string::npos) << m;
    EXPECT_NE(m.find("kubectl faultline"), std::string::npos) << m;
    EXPECT_NE(m.find("--target pod-uid:UID"), std::string::npos) << m;
  }
  Daemon d(Daemon::Options{.extra = {"--crictl", "/nonexistent/crictl"}});
  Cmd r = faultctl(d, "partition --side a=10.200.9.1 --side b=10.200.9.2 --target pod:default/web-0");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("needs crictl"), std::string::npos) << r.out;
}

// crictl that fails says why; crictl that hangs is killed at the deadline.
TEST_F(PodTargets, CrictlFailingOrHanging) {
  kernel::PodTargetOptions o;
  o.crictl = crictl_->script("failing", "echo 'connect: connection refused' >&2\nexit 1");
  auto f = kernel::resolve_pod_uid("default", "web-0", o);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, Errc::target_unavailable);
  EXPECT_NE(f.error().message.find("pods failed (exit 1): connect: connection refused"), std::string::npos)
      << f.error().message;

  o.crictl = crictl_->script("hanging", "exec sleep 30");
  o.crictl_timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto h = kernel::resolve_pod_uid("default", "web-0", o);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("did not finish within 300ms; killed it"), std::string::npos)
      << h.error().message;
  EXPECT_LT(took, 5s);
}

TEST(PickPodUid, ExactNameReadyFirst) {
  const std::string a = random_uid(), b = random_uid();
  auto items = [](std::vector<std::string> pods) {
    std::string s = R"({"items":[)";
    for (size_t i = 0; i < pods.size(); ++i) s += (i ? "," : "") + pods[i];
    return s + "]}";
  };
  using F = FakeCrictl;
  auto one = kernel::pick_pod_uid(items({F::pod_json("ns", "web", a, true)}), "ns", "web");
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(*one, a);
  // Only stopped sandboxes, all of one pod: that pod (the scan then says whether it runs).
  auto stopped = kernel::pick_pod_uid(items({F::pod_json("ns", "web", a, false), F::pod_json("ns", "web", a, false)}),
                                      "ns", "web");
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(*stopped, a);
  auto two = kernel::pick_pod_uid(items({F::pod_json("ns", "web", a, true), F::pod_json("ns", "web", b, true)}), "ns",
                                  "web");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().code, Errc::invalid_argument);
  EXPECT_NE(two.error().message.find("crictl lists 2 ready pods with that name"), std::string::npos)
      << two.error().message;
  auto none = kernel::pick_pod_uid(items({F::pod_json("ns", "web-1", a, true)}), "ns", "web");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::target_unavailable);
  auto junk = kernel::pick_pod_uid("crictl: connection refused", "ns", "web");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("not a JSON object"), std::string::npos) << junk.error().message;
  EXPECT_FALSE(kernel::pick_pod_uid(R"({"items":null})", "ns", "web").ok());
  EXPECT_FALSE(kernel::pick_pod_uid(R"({"items":[{"metadata":{"name":"web","namespace":"ns","uid":"x"}}]})", "ns",
                                    "web")
                   .ok());
}

}  // namespace
}  // namespace fl::test
