// The .deb that CPack makes from this build tree, the systemd unit inside it, the capabilities the
// unit leaves the daemon, the Vagrant lab and (where a Docker daemon answers) the image.
// Nothing is installed on this machine: the package is unpacked into a temporary directory.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "unit/shell_util.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSrc = FL_SOURCE_DIR;
const fs::path kBuild = FL_BINARY_DIR;

using fl::test::Ran;
using fl::test::slurp;
std::string q(const std::string& s) { return fl::test::quote(s); }
Ran sh(const std::string& cmd) { return fl::test::run_shell(cmd); }

// A package name as a whole word of a Dockerfile.
std::regex word_re(const std::string& name) {
  return std::regex("\\s" + std::regex_replace(name, std::regex(R"([\\^$.|?*+()\[\]{}])"), R"(\$&)") + "\\s");
}

bool have(const std::string& tool) { return sh("command -v " + q(tool) + " >/dev/null").status == 0; }

fs::path make_temp_dir(const char* what) {
  std::string t = (fs::temp_directory_path() / (std::string("fltest-") + what + "-XXXXXX")).string();
  if (mkdtemp(t.data()) == nullptr) return {};
  return t;
}

std::string project_version() {
  std::smatch m;
  std::string top = slurp(kSrc / "CMakeLists.txt");
  if (!std::regex_search(top, m, std::regex(R"(project\(faultline\s+VERSION\s+([0-9.]+))"))) return "?";
  return m[1];
}

// A Depends line as groups of alternatives, names only:
// "libc6 (>= 2.34), libspdlog1.10 (>= 1:1.10) | libspdlog1.10-fmt9" -> {{libc6}, {libspdlog1.10, libspdlog1.10-fmt9}}.
std::vector<std::vector<std::string>> depends_groups(const std::string& line) {
  std::vector<std::vector<std::string>> out;
  std::istringstream groups(line);
  for (std::string g; std::getline(groups, g, ',');) {
    out.emplace_back();
    std::istringstream alts(g);
    for (std::string a; std::getline(alts, a, '|');) {
      std::istringstream w(a);
      std::string name;
      w >> name;
      name = name.substr(0, name.find(':'));  // an architecture qualifier
      if (!name.empty()) out.back().push_back(name);
    }
    if (out.back().empty()) out.pop_back();
  }
  return out;
}

std::set<std::string> depends_names(const std::string& line) {
  std::set<std::string> out;
  for (const auto& g : depends_groups(line)) out.insert(g.begin(), g.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// The .deb, built once for the suite

class DebPackage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir("deb");
    if (dir_.empty()) {
      error_ = "mkdtemp failed";
      return;
    }
    if (!have("dpkg-deb")) {
      error_ = "dpkg-deb is missing (Debian's dpkg)";
      return;
    }
    // cpack installs through the build tree (install_manifest.txt). The VM tier mounts it
    // read-only: the package, which does not depend on the kernel, was built on the host tier.
    if (::access(kBuild.c_str(), W_OK) != 0) {
      skip_ = "the build tree " + kBuild.string() + " is read-only here (the VM tier); the .deb is built and "
              "checked by the host's integration tier";
      return;
    }
    // dpkg-shlibdeps (dpkg-dev, pulled in by build-essential) computes Depends; without it
    // cpack fails, and that is a real failure of the build machine.
    Ran r = sh(q(FL_CPACK_COMMAND) + " -G DEB --config " + q((kBuild / "CPackConfig.cmake").string()) + " -B " +
               q(dir_.string()));
    log_ = r.out;
    deb_ = dir_ / ("faultline_" + project_version() + "_amd64.deb");
    if (r.status != 0 || !fs::exists(deb_)) {
      error_ = "cpack failed (status " + std::to_string(r.status) + "):\n" + r.out;
      return;
    }
    root_ = dir_ / "root";
    r = sh("dpkg-deb -x " + q(deb_.string()) + " " + q(root_.string()));
    if (r.status != 0) error_ = "dpkg-deb -x: " + r.out;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  static fs::path dir_, deb_, root_;
  static std::string error_, log_, skip_;
};
fs::path DebPackage::dir_, DebPackage::deb_, DebPackage::root_;
std::string DebPackage::error_, DebPackage::log_, DebPackage::skip_;

TEST_F(DebPackage, ContainsTheBinariesTheUnitAndItsSystemdFiles) {
  Ran r = sh("dpkg-deb -c " + q(deb_.string()));
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* f : {"./usr/sbin/faultlined", "./usr/bin/faultctl", "./usr/bin/kubectl-faultline",
                        "./usr/lib/systemd/system/faultlined.service", "./usr/lib/sysusers.d/faultline.conf",
                        "./usr/lib/tmpfiles.d/faultline.conf", "./usr/share/doc/faultline/SAFETY.md",
                        "./usr/share/doc/faultline/deploy.md", "./usr/share/faultline/kubernetes/daemonset.yaml"}) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(std::string(" ") + f + "(\n|$)"))) << f << " not in:\n" << r.out;
  }
  // Executables stay executable.
  for (const char* f : {"usr/sbin/faultlined", "usr/bin/faultctl", "usr/bin/kubectl-faultline"})
    EXPECT_NE(fs::status(root_ / f).permissions() & fs::perms::owner_exec, fs::perms::none) << f;
}

TEST_F(DebPackage, ControlFieldsAndDependsComputedFromTheLibraries) {
  Ran r = sh("dpkg-deb -f " + q(deb_.string()) + " Package Version Section Architecture Maintainer Depends");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Package: faultline\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Version: " + project_version() + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Section: net\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Architecture: amd64\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Maintainer: "), std::string::npos) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("Depends: ([^\n]*)"))) << r.out;
  auto deps = depends_names(m[1]);
  for (const char* lib : {"libc6", "libbpf1", "libnl-3-200", "libboost-program-options1.74.0"})
    EXPECT_TRUE(deps.count(lib)) << lib << " missing from Depends: " << m[1];
  // Versioned, as dpkg-shlibdeps writes it (a hand-written list would not be).
  EXPECT_TRUE(std::regex_search(std::string(m[1]), std::regex(R"(libc6 \(>= [0-9.]+\))"))) << m[1];
}

TEST_F(DebPackage, MaintainerScriptsCreateTheGroupAndParse) {
  fs::path ctl = dir_ / "control";
  Ran r = sh("dpkg-deb -e " + q(deb_.string()) + " " + q(ctl.string()));
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"postinst", "prerm", "postrm"}) {
    ASSERT_TRUE(fs::exists(ctl / s)) << s;
    EXPECT_NE(fs::status(ctl / s).permissions() & fs::perms::owner_exec, fs::perms::none) << s;
    r = sh("sh -n " + q((ctl / s).string()));
    EXPECT_EQ(r.status, 0) << s << ": " << r.out;
  }
  std::string postinst = slurp(ctl / "postinst");
  EXPECT_NE(postinst.find("systemd-sysusers"), std::string::npos);
  EXPECT_NE(postinst.find("groupadd --system faultline"), std::string::npos);
  EXPECT_NE(postinst.find("daemon-reload"), std::string::npos);
}

TEST_F(DebPackage, InstalledUnitPointsAtThePackagedDaemonAndVerifies) {
  fs::path unit = root_ / "usr/lib/systemd/system/faultlined.service";
  std::string text = slurp(unit);
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text.find("\nExecStart=/usr/sbin/faultlined\n"), std::string::npos);
  EXPECT_NE(text.find("\nExecStopPost=/usr/sbin/faultlined --cleanup\n"), std::string::npos);
  // The flag the unit relies on after a crash is one the packaged daemon has.
  Ran r = sh(q((root_ / "usr/sbin/faultlined").string()) + " --help");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("--cleanup"), std::string::npos) << r.out;

  if (!have("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed; the unit was not verified";
  // verify checks that ExecStart names an executable: point it at the unpacked one.
  fs::path copy = dir_ / "verify" / "faultlined.service";
  fs::create_directories(copy.parent_path());
  std::ofstream(copy) << std::regex_replace(text, std::regex("/usr/sbin/faultlined"),
                                            (root_ / "usr/sbin/faultlined").string());
  r = sh("systemd-analyze verify " + q(copy.string()));
  EXPECT_EQ(r.status, 0) << r.out;
  // Unknown keys and bad values are only warnings to systemd; here they fail.
  EXPECT_EQ(r.out, "") << "systemd-analyze verify complained:\n" << r.out;
}

TEST_F(DebPackage, TheImagesRuntimeStageInstallsEveryDependency) {
  Ran r = sh("dpkg-deb -f " + q(deb_.string()) + " Depends");
  ASSERT_EQ(r.status, 0) << r.out;
  std::string df = slurp(kSrc / "deploy/Dockerfile");
  auto slim = df.find("FROM debian:12-slim");
  ASSERT_NE(slim, std::string::npos);
  std::string runtime = df.substr(slim);
  // debian:12-slim has these already (essential or required by apt).
  const std::set<std::string> in_base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"};
  // With one field named, dpkg-deb prints its value alone.
  auto groups = depends_groups(r.out);
  ASSERT_GE(groups.size(), 5u) << r.out;
  for (const auto& g : groups) {
    bool met = false;
    std::string names;
    for (const auto& d : g) {
      names += (names.empty() ? "" : " | ") + d;
      met = met || in_base.count(d) > 0 || std::regex_search(runtime, word_re(d));
      // A virtual package (libspdlog1.10-fmt9) is met by an installed package providing it.
      if (!met && have("apt-cache")) {
        std::string rp = sh("apt-cache showpkg " + q(d)).out;
        auto at = rp.find("Reverse Provides:");
        std::istringstream prov(at == std::string::npos ? "" : rp.substr(at + 17));
        for (std::string l; !met && std::getline(prov, l);) {
          std::istringstream w(l);
          std::string provider;
          if (w >> provider)
            met = std::regex_search(runtime, word_re(provider));
        }
      }
    }
    EXPECT_TRUE(met) << names << " (from the .deb's Depends) is not installed in deploy/Dockerfile's runtime stage";
  }
}

// ---------------------------------------------------------------------------------------------
// The unit's capability set is enough for the daemon's real work

bool is_root() { return geteuid() == 0; }

TEST(SystemdCapabilities, BoundingSetOfTheUnitIsEnoughToApplyFaultsInANamespace) {
  if (!is_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  if (!have("setpriv")) GTEST_SKIP() << "setpriv (util-linux) is not installed";
  std::smatch m;
  std::string unit = slurp(kSrc / "deploy/systemd/faultlined.service");
  ASSERT_TRUE(std::regex_search(unit, m, std::regex("\nCapabilityBoundingSet=([^\n]*)")));
  std::string bounding = "-all";
  std::istringstream caps(m[1]);
  for (std::string c; caps >> c;) {
    std::string name = c.substr(4);  // CAP_BPF -> bpf
    for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
    bounding += ",+" + name;
  }

  fs::path tmp = make_temp_dir("caps");
  ASSERT_FALSE(tmp.empty());
  std::string ns = "fltest-caps" + std::to_string(getpid());
  Ran r = sh("ip netns add " + ns + " && ip -n " + ns + " link add v0 type veth peer name v1 && ip -n " + ns +
             " link set lo up && ip -n " + ns + " link set v0 up && ip -n " + ns + " link set v1 up");
  ASSERT_EQ(r.status, 0) << r.out;
  // A process of another user in the namespace: a pid: target through its /proc entry needs
  // CAP_SYS_PTRACE, as pod and container targets do.
  FILE* sleeper = popen(("exec ip netns exec " + ns + " setpriv --reuid=65534 --regid=65534 --clear-groups "
                         "sh -c 'echo $$; exec sleep 60'").c_str(), "r");
  ASSERT_NE(sleeper, nullptr);
  char pidbuf[32] = {};
  ASSERT_NE(fgets(pidbuf, sizeof pidbuf, sleeper), nullptr);
  std::string other_pid = std::to_string(std::atoi(pidbuf));
  std::string sock = (tmp / "fl.sock").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string log = (tmp / "daemon.log").string();
    freopen(log.c_str(), "w", stderr);
    freopen(log.c_str(), "a", stdout);
    // As systemd runs it: root, NoNewPrivileges, nothing outside the unit's bounding set.
    execlp("setpriv", "setpriv", "--no-new-privs", ("--bounding-set=" + bounding).c_str(), "--inh-caps=-all", "--",
           FL_FAULTLINED_PATH, "--socket", sock.c_str(), "--state-dir", (tmp / "state").c_str(), "--lease", "5s",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string ctl = std::string(FL_FAULTCTL_PATH) + " --socket " + q(sock);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    up = sh(ctl + " status >/dev/null").status == 0;
  }
  Ran loss, rate, bypid, list;
  if (up) {
    loss = sh(ctl + " loss 100 --dst 10.9.9.9 --for 30s --name caps-loss --target netns:" + ns);
    rate = sh(ctl + " rate 10mbit --dst 10.9.9.9 --for 30s --name caps-rate --target netns:" + ns);
    bypid = sh(ctl + " loss 50 --dst 10.9.9.8 --for 30s --name caps-pid --target pid:" + other_pid);
    list = sh(ctl + " list");
  }
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  std::string log = slurp(tmp / "daemon.log");
  kill(std::atoi(other_pid.c_str()), SIGTERM);
  pclose(sleeper);
  sh("ip netns del " + ns);
  std::error_code ec;
  fs::remove_all(tmp, ec);

  ASSERT_TRUE(up) << "faultlined did not answer with bounding set " << bounding << ":\n" << log;
  EXPECT_EQ(loss.status, 0) << loss.out << "\ndaemon log:\n" << log;
  EXPECT_EQ(rate.status, 0) << rate.out << "\ndaemon log:\n" << log;
  EXPECT_NE(list.out.find("caps-loss"), std::string::npos) << list.out;
  EXPECT_EQ(bypid.status, 0) << bypid.out << "\ndaemon log:\n" << log;
  EXPECT_NE(list.out.find("caps-rate"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("caps-pid"), std::string::npos) << list.out;
  // SIGTERM healed everything with the same capabilities.
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << log;
  EXPECT_NE(log.find("nothing of ours is left attached"), std::string::npos) << log;
}

// ---------------------------------------------------------------------------------------------
// vagrant/ and the image

TEST(VagrantLab, VagrantValidateAcceptsTheVagrantfile) {
  if (!have("vagrant")) GTEST_SKIP() << "vagrant is not installed (tools/setup lists it as optional)";
  fs::path tmp = make_temp_dir("vagrant");
  ASSERT_FALSE(tmp.empty());
  // A copy, because vagrant writes .vagrant/ next to the Vagrantfile; a private VAGRANT_HOME,
  // so no box, plugin or checkpoint state of this machine is used or changed. No provider is
  // installed here (nor needed): --ignore-provider validates everything else.
  fs::copy(kSrc / "vagrant", tmp / "vagrant", fs::copy_options::recursive);
  std::error_code ec;
  fs::remove_all(tmp / "vagrant" / ".vagrant", ec);
  Ran r = sh("cd " + q((tmp / "vagrant").string()) + " && VAGRANT_HOME=" + q((tmp / "home").string()) +
             " VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_PLUGINS=1 vagrant validate --ignore-provider --no-tty");
  bool downloaded = fs::exists(tmp / "home" / "boxes") && !fs::is_empty(tmp / "home" / "boxes");
  fs::remove_all(tmp, ec);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Vagrantfile validated successfully"), std::string::npos) << r.out;
  // Six machines, each named in the output.
  for (const char* vm : {"a", "b", "c", "d", "e", "f"})
    EXPECT_NE(r.out.find(std::string("==> ") + vm + ":"), std::string::npos) << vm << "\n" << r.out;
  EXPECT_FALSE(downloaded) << "vagrant validate fetched a box";
}

TEST(ContainerImage, BuildsWhereADockerDaemonAnswers) {
  if (!have("docker")) GTEST_SKIP() << "docker is not installed";
  Ran info = sh("docker info >/dev/null");
  if (info.status != 0) GTEST_SKIP() << "no Docker daemon answers (docker info failed); the image was not built";
  std::string tag = "faultline:test-" + std::to_string(getpid());
  Ran r = sh("DOCKER_BUILDKIT=1 docker build -q -f " + q((kSrc / "deploy/Dockerfile").string()) + " -t " + tag + " " +
             q(kSrc.string()));
  ASSERT_EQ(r.status, 0) << r.out;
  Ran help = sh("docker run --rm " + tag + " --help");
  Ran ctl = sh("docker run --rm --entrypoint faultctl " + tag + " --help");
  sh("docker rmi -f " + tag + " >/dev/null");
  EXPECT_EQ(help.status, 0) << help.out;
  EXPECT_NE(help.out.find("--cleanup"), std::string::npos) << help.out;
  EXPECT_EQ(ctl.status, 0) << ctl.out;
}

}  // namespace
