// faultctl --host/--hosts against real sshd and real faultlined, each pair in its own lab
// namespace: node 0 (10.200.0.1) and node 1 (10.200.0.2) are the remote hosts, node 2
// (10.200.0.3) runs faultctl. Keys, sshd and ssh configuration live in a temporary directory;
// the host's own sshd and ~/.ssh are never used.
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSshd = "/usr/sbin/sshd";
constexpr int kNodes = 2;  // nodes 0 and 1 are hosts; node kNodes runs faultctl

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_whole(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `ip netns exec NS argv...` in the background, output to log. ip execs the program after
// setns, so the pid is the program's.
pid_t spawn_in(const std::string& ns, const std::vector<std::string>& argv, const std::string& log) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> a;
    for (auto& s : full) a.push_back(s.data());
    a.push_back(nullptr);
    execvp("ip", a.data());
    _exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; i++) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool tcp_listening(const std::string& from_ns, const std::string& addr, int port) {
  bool ok = false;
  in_netns(from_ns, [&] {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
    ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
  });
  return ok;
}

// Why the suite cannot run here, or "" when it can.
std::string missing_tools() {
  if (!require_root()) return "needs root";
  if (access(kSshd, X_OK) != 0) return std::string(kSshd) + " not found (tools/setup installs openssh-server)";
  for (const char* tool : {"ssh", "ssh-keygen"}) {
    if (sh(std::string("command -v ") + tool).status != 0) {
      return std::string(tool) + " not found (tools/setup installs openssh-client)";
    }
  }
  return "";
}

// Two hosts, each with its own faultlined and sshd in its namespace.
class Env {
 public:
  Env() {
    char tmpl[] = "/tmp/fltest-multihost-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    try {
      start();
    } catch (...) {
      cleanup();
      throw;
    }
  }
  ~Env() { cleanup(); }

  const Lab& lab() const { return lab_; }
  std::string socket(int node) const { return dir_ + "/n" + std::to_string(node) + "/node.sock"; }
  const std::string& dir() const { return dir_; }
  // A hosts file naming every node with its daemon's socket.
  std::string hosts_file() const { return dir_ + "/hosts"; }

  // faultctl in the client namespace, through ssh. stderr is dropped when stdout_only.
  Cmd fan(const std::string& args, bool stdout_only = false) const {
    std::string cmd = "ip netns exec " + lab_.ns(kNodes) + " env HOME=" + dir_ + " " + FL_FAULTCTL_PATH +
                      " --ssh-config " + dir_ + "/ssh_config " + args;
    if (stdout_only) cmd = "(" + cmd + " 2>/dev/null)";
    return sh(cmd);
  }
  // faultctl straight to one node's daemon, as a check independent of the fan-out.
  Cmd local(int node, const std::string& args) const {
    return sh(std::string(FL_FAULTCTL_PATH) + " --socket " + socket(node) + " " + args);
  }
  json active_faults(int node) const {
    Cmd r = sh("(" + std::string(FL_FAULTCTL_PATH) + " --socket " + socket(node) + " -o json list 2>/dev/null)");
    if (r.status != 0) return nullptr;
    return json::parse(r.out, nullptr, false);
  }
  std::string logs() const {
    std::string out;
    for (int i = 0; i < kNodes; i++) {
      const std::string n = dir_ + "/n" + std::to_string(i);
      out += "--- sshd " + std::to_string(i) + "\n" + read_whole(n + "/sshd.log");
      out += "--- faultlined " + std::to_string(i) + "\n" + read_whole(n + "/faultlined.log");
    }
    return out;
  }

 private:
  void start() {
    // sshd insists on its privilege separation directory (a tmpfs /run in the VM has none).
    mkdir("/run/sshd", 0755);
    auto must = [](const std::string& cmd) {
      Cmd r = sh(cmd);
      if (r.status != 0) throw std::runtime_error("`" + cmd + "` failed: " + r.out);
    };
    must("ssh-keygen -q -t ed25519 -N '' -C fltest-host -f " + dir_ + "/host_key");
    must("ssh-keygen -q -t ed25519 -N '' -C fltest-client -f " + dir_ + "/id");
    must("cp " + dir_ + "/id.pub " + dir_ + "/authorized_keys");
    write_file(dir_ + "/ssh_config",
               "Host *\n"
               "  User root\n"
               "  IdentityFile " + dir_ + "/id\n"
               "  IdentitiesOnly yes\n"
               "  UserKnownHostsFile /dev/null\n"
               "  StrictHostKeyChecking no\n"
               "  LogLevel ERROR\n");
    std::string hosts = "# the lab's hosts\n";
    for (int i = 0; i < kNodes; i++) {
      const std::string n = dir_ + "/n" + std::to_string(i);
      if (mkdir(n.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + n);
      write_file(n + "/sshd_config",
                 "ListenAddress " + Lab::ip4(i) + "\n"
                 "HostKey " + dir_ + "/host_key\n"
                 "PidFile " + n + "/sshd.pid\n"
                 "AuthorizedKeysFile " + dir_ + "/authorized_keys\n"
                 "PermitRootLogin prohibit-password\n"
                 "PubkeyAuthentication yes\n"
                 "PasswordAuthentication no\n"
                 "KbdInteractiveAuthentication no\n"
                 "UsePAM no\n"
                 "StrictModes no\n"
                 "AllowStreamLocalForwarding yes\n"
                 "AllowTcpForwarding local\n"
                 "X11Forwarding no\n");
      pids_.push_back(spawn_in(lab_.ns(i), {kSshd, "-D", "-e", "-f", n + "/sshd_config"}, n + "/sshd.log"));
      pids_.push_back(spawn_in(lab_.ns(i),
                               {FL_FAULTLINED_PATH, "--socket", socket(i), "--state-dir", n + "/state",
                                "--log-level", "debug"},
                               n + "/faultlined.log"));
      hosts += Lab::ip4(i) + "   socket=" + socket(i) + "\n";
    }
    write_file(hosts_file(), hosts);
    for (int i = 0; i < kNodes; i++) {
      const bool up = eventually(
          [&] { return tcp_listening(lab_.ns(kNodes), Lab::ip4(i), 22) && local(i, "status").status == 0; }, 60s,
          100ms);
      if (!up) throw std::runtime_error("node " + std::to_string(i) + " did not come up:\n" + logs());
    }
  }

  void cleanup() {
    for (pid_t p : pids_) stop(p);
    pids_.clear();
    if (!dir_.empty()) sh("rm -rf " + dir_);
  }

  Lab lab_{kNodes + 1};  // destroyed after cleanup(): the processes in it are gone by then
  std::string dir_;
  std::vector<pid_t> pids_;
};

class MultiHost : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_ = missing_tools();
    if (!skip_.empty()) return;
    try {
      env_ = std::make_unique<Env>();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  static void TearDownTestSuite() { env_.reset(); }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(env_) << error_;
  }
  // Every test starts with no fault on either host.
  void TearDown() override {
    if (!env_) return;
    for (int i = 0; i < kNodes; i++) env_->local(i, "heal --all");
    if (HasFailure()) std::cerr << env_->logs();
  }

  static std::unique_ptr<Env> env_;
  static std::string skip_, error_;
};

std::unique_ptr<Env> MultiHost::env_;
std::string MultiHost::skip_;
std::string MultiHost::error_;

std::vector<std::string> cidrs_of(const json& side) {
  std::vector<std::string> out;
  for (const auto& c : side["cidrs"]) out.push_back(c.get<std::string>());
  return out;
}

TEST_F(MultiHost, PartitionReachesEveryHostWithItsOwnPart) {
  const Env& e = *env_;
  const Lab& lab = e.lab();
  ASSERT_TRUE(lab.ping(0, 1, false, 2.0));

  // .5 and .6 are nobody: each host keeps the other side whole and only itself in its own.
  Cmd r = e.fan("--hosts " + e.hosts_file() +
                " partition --side a=10.200.0.1,10.200.0.5 --side b=10.200.0.2,10.200.0.6 --for 2m --name split");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "10.200.0.1")) << r.out;
  EXPECT_TRUE(contains(r.out, "10.200.0.2")) << r.out;

  Cmd got = e.fan("--hosts " + e.hosts_file() + " -o json get split", true);
  ASSERT_EQ(got.status, 0) << got.out;
  const json j = json::parse(got.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << got.out;
  const json& s0 = j["10.200.0.1"]["spec"]["sides"];
  const json& s1 = j["10.200.0.2"]["spec"]["sides"];
  ASSERT_EQ(s0.size(), 2u) << got.out;
  ASSERT_EQ(s1.size(), 2u) << got.out;
  EXPECT_EQ(cidrs_of(s0[0]), (std::vector<std::string>{"10.200.0.1/32"}));
  EXPECT_EQ(cidrs_of(s0[1]), (std::vector<std::string>{"10.200.0.2/32", "10.200.0.6/32"}));
  EXPECT_EQ(cidrs_of(s1[0]), (std::vector<std::string>{"10.200.0.1/32", "10.200.0.5/32"}));
  EXPECT_EQ(cidrs_of(s1[1]), (std::vector<std::string>{"10.200.0.2/32"}));

  // Real traffic: a and b are cut in both directions; the client, in no side, still reaches both.
  EXPECT_TRUE(eventually([&] { return !lab.ping(0, 1) && !lab.ping(1, 0); }, 20s));
  EXPECT_TRUE(lab.ping(kNodes, 0, false, 2.0));
  EXPECT_TRUE(lab.ping(kNodes, 1, false, 2.0));

  Cmd list = e.fan("--hosts " + e.hosts_file() + " list");
  EXPECT_EQ(list.status, 0) << list.out;
  EXPECT_TRUE(contains(list.out, "== 10.200.0.1\n")) << list.out;
  EXPECT_TRUE(contains(list.out, "== 10.200.0.2\n")) << list.out;

  Cmd heal = e.fan("--hosts " + e.hosts_file() + " heal split");
  ASSERT_EQ(heal.status, 0) << heal.out;
  EXPECT_TRUE(eventually([&] { return lab.ping(0, 1) && lab.ping(1, 0); }, 20s));
  EXPECT_EQ(e.active_faults(0), json::array());
  EXPECT_EQ(e.active_faults(1), json::array());
}

TEST_F(MultiHost, OneRefusalHealsTheOthers) {
  const Env& e = *env_;
  // The name is taken on node 1 only, so node 0 applies and node 1 refuses.
  Cmd pre = e.local(1, "loss 10 --dst 10.200.9.9 --name taken --for 2m");
  ASSERT_EQ(pre.status, 0) << pre.out;

  Cmd r = e.fan("--hosts " + e.hosts_file() + " partition --side 10.200.0.1 --side 10.200.0.2 --name taken --for 2m");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "10.200.0.2: already_exists")) << r.out;
  EXPECT_TRUE(contains(r.out, "healed fault")) << r.out;
  EXPECT_TRUE(contains(r.out, "on 10.200.0.1")) << r.out;

  EXPECT_EQ(e.active_faults(0), json::array());
  const json left = e.active_faults(1);
  ASSERT_EQ(left.size(), 1u) << left.dump();
  EXPECT_EQ(left[0]["kind"], "loss");  // the one that was there before
  EXPECT_TRUE(e.lab().ping(0, 1, false, 2.0));
}

TEST_F(MultiHost, UnreachableHostAppliesNothing) {
  const Env& e = *env_;
  const std::string file = e.dir() + "/hosts-down";
  // Nothing listens on port 2222 of node 1.
  write_file(file, "10.200.0.1 socket=" + e.socket(0) + "\n10.200.0.2:2222 socket=" + e.socket(1) + "\n");
  Cmd r = e.fan("--hosts " + file + " loss 10 --dst 10.200.9.9 --for 2m");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_TRUE(contains(r.out, "10.200.0.2:2222: ssh: connect to host 10.200.0.2 port 2222")) << r.out;
  EXPECT_TRUE(contains(r.out, "nothing was applied")) << r.out;
  EXPECT_EQ(e.active_faults(0), json::array());
  EXPECT_EQ(e.active_faults(1), json::array());

  // -o json's error object agrees with the exit status.
  Cmd j = e.fan("--hosts " + file + " -o json loss 10 --dst 10.200.9.9 --for 2m", true);
  EXPECT_EQ(j.status, 3) << j.out;
  const json err = json::parse(j.out, nullptr, false);
  ASSERT_TRUE(err.is_object()) << j.out;
  EXPECT_EQ(err["error"]["exit_status"], 3) << j.out;
  EXPECT_EQ(err["error"]["code"], "unreachable") << j.out;
  EXPECT_EQ(e.active_faults(0), json::array());

  // A host whose daemon socket is missing: ssh connects, the forwarded connection is closed.
  Cmd s = e.fan("--host 10.200.0.1 --socket " + e.dir() + "/nothing-here.sock status");
  EXPECT_EQ(s.status, 3) << s.out;
  EXPECT_TRUE(contains(s.out, "faultctl: 10.200.0.1: ")) << s.out;
  EXPECT_TRUE(contains(s.out, e.dir() + "/nothing-here.sock")) << s.out;
}

TEST_F(MultiHost, HostOutsideThePartitionIsSkipped) {
  const Env& e = *env_;
  // Node 1 is in neither side: it gets nothing, and that is a success.
  Cmd r = e.fan("--hosts " + e.hosts_file() + " -o json partition --side 10.200.0.1 --side 10.200.0.3 --for 2m",
                true);
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["10.200.0.1"]["kind"], "partition") << r.out;
  EXPECT_EQ(j["10.200.0.2"], (json{{"skipped", "none of its addresses is in a side"}})) << r.out;
  EXPECT_EQ(e.active_faults(0).size(), 1u);
  EXPECT_EQ(e.active_faults(1), json::array());
  EXPECT_TRUE(eventually([&] { return !e.lab().ping(0, kNodes); }, 20s));
  EXPECT_TRUE(e.lab().ping(1, kNodes, false, 2.0));
}

TEST_F(MultiHost, NoNarrowSendsTheWholePartitionAndIdsStayPerHost) {
  const Env& e = *env_;
  // Node 1 is in neither side, but with --no-narrow it gets the whole partition all the same.
  Cmd r = e.fan("--hosts " + e.hosts_file() +
                    " --no-narrow -o json partition --side a=10.200.0.1 --side b=10.200.0.3 --for 2m --name whole",
                true);
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_TRUE(j.contains("10.200.0.1") && j["10.200.0.1"].contains("id")) << r.out;
  ASSERT_TRUE(j.contains("10.200.0.2") && j["10.200.0.2"].contains("kind")) << r.out;
  EXPECT_EQ(j["10.200.0.2"]["kind"], "partition") << r.out;  // not skipped

  Cmd got = e.fan("--hosts " + e.hosts_file() + " -o json get whole", true);
  ASSERT_EQ(got.status, 0) << got.out;
  json g = json::parse(got.out, nullptr, false);  // not const: a missing member is null, not an abort
  ASSERT_TRUE(g.is_object()) << got.out;
  for (const char* host : {"10.200.0.1", "10.200.0.2"}) {
    SCOPED_TRACE(host);
    json& sides = g[host]["spec"]["sides"];
    ASSERT_TRUE(sides.is_array()) << got.out;
    ASSERT_EQ(sides.size(), 2u) << got.out;
    EXPECT_EQ(cidrs_of(sides[0]), (std::vector<std::string>{"10.200.0.1/32"}));
    EXPECT_EQ(cidrs_of(sides[1]), (std::vector<std::string>{"10.200.0.3/32"}));
  }
  EXPECT_EQ(e.active_faults(0).size(), 1u);
  EXPECT_EQ(e.active_faults(1).size(), 1u);
  EXPECT_TRUE(eventually([&] { return !e.lab().ping(0, kNodes); }, 20s));
  EXPECT_TRUE(e.lab().ping(1, kNodes, false, 2.0));

  // Ids are per daemon: an id across hosts is a usage error, and nothing is healed.
  const std::string id = j["10.200.0.1"]["id"].dump();
  Cmd by_id = e.fan("--hosts " + e.hosts_file() + " heal " + id);
  EXPECT_EQ(by_id.status, 2) << by_id.out;
  EXPECT_TRUE(contains(by_id.out, "heal " + id + ": fault ids are per host")) << by_id.out;
  EXPECT_EQ(e.active_faults(0).size(), 1u);
  EXPECT_EQ(e.active_faults(1).size(), 1u);
  // With one host, its own id is fine; with many, the name is.
  Cmd one = e.fan("--host 10.200.0.1 --socket " + e.socket(0) + " heal " + id);
  EXPECT_EQ(one.status, 0) << one.out;
  EXPECT_EQ(e.active_faults(0), json::array());
  Cmd by_name = e.fan("--host 10.200.0.2 --socket " + e.socket(1) + " heal whole");
  EXPECT_EQ(by_name.status, 0) << by_name.out;
  EXPECT_EQ(e.active_faults(1), json::array());
}

TEST_F(MultiHost, StatusFromEveryHost) {
  const Env& e = *env_;
  // --host takes --socket; a hosts file line brings its own.
  const std::string file = e.dir() + "/hosts-one";
  write_file(file, "root@10.200.0.2:22 socket=" + e.socket(1) + "  # node 1\n");
  Cmd r = e.fan("--host ssh://10.200.0.1 --hosts " + file + " --socket " + e.socket(0) + " status");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "== 10.200.0.1\ndaemon:")) << r.out;
  EXPECT_TRUE(contains(r.out, "== root@10.200.0.2:22\ndaemon:")) << r.out;

  Cmd j = e.fan("--hosts " + e.hosts_file() + " -o json status", true);
  ASSERT_EQ(j.status, 0) << j.out;
  const json st = json::parse(j.out, nullptr, false);
  ASSERT_TRUE(st.is_object()) << j.out;
  EXPECT_EQ(st["10.200.0.1"]["addresses"], (json{"10.200.0.1", "fd00:200::1"})) << j.out;
  EXPECT_EQ(st["10.200.0.2"]["addresses"], (json{"10.200.0.2", "fd00:200::2"})) << j.out;

  // Bad input is refused before ssh runs.
  Cmd bad = e.fan("--host 10.200.0.1 --host=-oProxyCommand=x status");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_TRUE(contains(bad.out, "a host may not start with '-'")) << bad.out;
}

}  // namespace
}  // namespace fl::test
