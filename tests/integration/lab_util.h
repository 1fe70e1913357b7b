// Namespace labs, a faultlined under test, and traffic helpers for the integration tier.
// Every lab lives in namespaces named fltest-<pid>-<n>-*, deleted by the destructor (and by
// tools/test before a run, for labs of killed runs). Traffic stays inside the lab.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fl::test {

using json = nlohmann::json;

struct Cmd {
  int status = -1;  // exit status, or -1 if it did not exit normally
  std::string out;  // stdout and stderr
};
Cmd sh(const std::string& cmd);

// Skips the current test (with the reason printed) unless we are root.
bool require_root();
// Whether this kernel has tcx (6.6+), probed once: the suites run once per attach path.
bool kernel_has_tcx();

// N nodes on one bridge. The bridge sits in the lab's own hub namespace, so the host's network
// is never touched. Node i (0-based) has eth0 with 10.200.0.(i+1)/24 and fd00:200::(i+1)/64.
class Lab {
 public:
  explicit Lab(int nodes);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  int size() const { return n_; }
  std::string ns(int i) const;
  std::string hub() const { return prefix_ + "hub"; }
  static std::string ip4(int i) { return "10.200.0." + std::to_string(i + 1); }
  static std::string ip6(int i) { return "fd00:200::" + std::to_string(i + 1); }
  std::string target(int i) const { return "netns:" + ns(i); }

  // One ICMP echo; true if answered within timeout_s.
  bool ping(int from, int to, bool v6 = false, double timeout_s = 0.6) const;
  // Reachability of every ordered pair (from != to), pinged in parallel: result[from][to].
  std::vector<std::vector<bool>> matrix(bool v6 = false) const;

 private:
  int n_;
  std::string prefix_;
};

// Runs fn on a fresh thread that has entered the named network namespace, and joins it.
void in_netns(const std::string& ns, const std::function<void()>& fn);

class Daemon {
 public:
  struct Options {
    std::string attach_mode = "auto";
    std::string lease = "15s";
    std::vector<std::string> extra;
    std::string state_dir;  // empty: a fresh temporary one
    std::string netns;      // run in this named network namespace (empty: ours); mounts stay ours
    std::vector<std::pair<std::string, std::string>> env;  // set in the daemon's environment only
  };
  explicit Daemon(Options o);
  Daemon() : Daemon(Options{}) {}
  ~Daemon();

  // Sends one request object (id added) and returns the reply object.
  json request(json req);
  // result of an ok reply; fails the test (ADD_FAILURE) and returns null otherwise.
  json call(const std::string& op, json body = json::object());
  // The error object of a refused request, or null if it succeeded.
  json call_error(const std::string& op, json body = json::object());

  void kill9();          // SIGKILL, reap
  int terminate();       // SIGTERM, wait; returns exit status
  void start();          // (re)start with the same options and state dir
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& log_path() const { return log_; }

 private:
  Options opts_;
  std::string dir_, socket_, state_dir_, log_;
  pid_t pid_ = -1;
  uint64_t next_id_ = 1;
};

// A suite run once per attach path (INSTANTIATE_TEST_SUITE_P(..., ::testing::Values("tcx", "tc"))):
// skipped without root, and the tcx run skipped on a kernel without tcx, saying why.
class AttachModeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
    if (GetParam() == "tcx" && !kernel_has_tcx()) GTEST_SKIP() << "this kernel has no tcx (needs 6.6+)";
  }
  // A daemon on this suite's attach path.
  Daemon::Options opts(const std::string& lease = "15s") const {
    Daemon::Options o;
    o.attach_mode = GetParam();
    o.lease = lease;
    return o;
  }
};

// A scratch directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "fltest-tmp");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes text to path()/name; returns that path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// A JSON file; a missing or unparsable one fails the test (naming the file) and gives {}.
json read_json(const std::string& path);

// A TCP listener in a namespace, as a service would have (backlog 512, non-blocking).
class TcpListener {
 public:
  TcpListener(const std::string& ns, int port);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  bool ok() const { return ok_; }
  // Accepts and closes the connections waiting; returns how many there were.
  int drain();

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// faultctl against a daemon's socket; returns exit status and combined output.
Cmd faultctl(const Daemon& d, const std::string& args);

// Our hooks on an interface of a namespace: tcx programs (by BPF_PROG_QUERY) and legacy
// filters with our handle, on both directions.
struct Hooks {
  int tcx = 0;         // tcx programs named fl_*
  int tc_filters = 0;  // cls_bpf filters with handle 0xfa17
  bool clsact = false; // a clsact qdisc exists
};
Hooks hooks_on(const std::string& ns, const std::string& dev);

// UDP: sends `count` datagrams carrying a sequence number from ns `from` to addr:port, paced,
// and counts the distinct ones received by a socket in ns `to`.
struct UdpResult {
  size_t sent = 0, received = 0;
};
UdpResult udp_stream(const std::string& from, const std::string& to, const std::string& addr, int port,
                     size_t count, std::chrono::microseconds gap = std::chrono::microseconds(0));

// Waits until pred() or timeout; returns the last pred() value.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50));

// A TCP handshake from ns to addr:port (IPv4); true if it completes within timeout.
bool tcp_connects(const std::string& ns, const std::string& addr, int port, std::chrono::milliseconds timeout);

// addr (IPv4 or IPv6, numeric) and port as a socket address; returns its length.
socklen_t socket_address(const std::string& addr, int port, sockaddr_storage& ss);

}  // namespace fl::test
