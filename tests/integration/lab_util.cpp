#include "integration/lab_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "kernel/features.h"

#ifndef FL_FAULTLINED_PATH
#error "FL_FAULTLINED_PATH must point at the faultlined binary"
#endif
#ifndef FL_FAULTCTL_PATH
#error "FL_FAULTCTL_PATH must point at the faultctl binary"
#endif

namespace fl::test {

Cmd sh(const std::string& cmd) {
  Cmd r;
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool require_root() { return geteuid() == 0; }

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
  path_ = tmpl;
}

TempDir::~TempDir() { sh("rm -rf '" + path_ + "'"); }

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::string p = path_ + "/" + name;
  std::ofstream(p) << text;
  return p;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": " << e.what() << "\n" << ss.str();
    return json::object();
  }
}

TcpListener::TcpListener(const std::string& ns, int port) {
  in_netns(ns, [&] {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd_, 512) == 0;
  });
}

TcpListener::~TcpListener() {
  if (fd_ >= 0) close(fd_);
}

int TcpListener::drain() {
  int n = 0;
  for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0; ++n) close(c);
  return n;
}

bool kernel_has_tcx() {
  static const kernel::Tri t = kernel::probe_features().tcx;
  return t == kernel::Tri::yes;
}

namespace {

std::atomic<int> lab_counter{0};

void must(const std::string& cmd) {
  Cmd r = sh(cmd);
  if (r.status != 0) throw std::runtime_error("`" + cmd + "` failed: " + r.out);
}

}  // namespace

Lab::Lab(int nodes) : n_(nodes) {
  prefix_ = "fltest-" + std::to_string(getpid()) + "-" + std::to_string(lab_counter++) + "-";
  try {
    must("ip netns add " + hub());
    must("ip -n " + hub() + " link add br0 type bridge");
    must("ip -n " + hub() + " link set br0 up");
    must("ip -n " + hub() + " link set lo up");
    for (int i = 0; i < n_; i++) {
      std::string node = ns(i), peer = "p" + std::to_string(i);
      must("ip netns add " + node);
      must("ip -n " + node + " link set lo up");
      must("ip -n " + node + " link add eth0 type veth peer name " + peer + " netns " + hub());
      must("ip -n " + hub() + " link set " + peer + " master br0 up");
      must("ip -n " + node + " addr add " + ip4(i) + "/24 dev eth0");
      must("ip -n " + node + " addr add " + ip6(i) + "/64 dev eth0 nodad");
      must("ip -n " + node + " link set eth0 up");
    }
  } catch (...) {
    this->~Lab();
    throw;
  }
}

Lab::~Lab() {
  for (int i = 0; i < n_; i++) sh("ip netns del " + ns(i));
  sh("ip netns del " + hub());
}

std::string Lab::ns(int i) const { return prefix_ + "n" + std::to_string(i); }

bool Lab::ping(int from, int to, bool v6, double timeout_s) const {
  char w[32];
  std::snprintf(w, sizeof w, "%.2f", timeout_s);
  Cmd r = sh("ip netns exec " + ns(from) + " ping " + (v6 ? "-6 " : "-4 ") + "-c1 -q -W " + w + " " +
             (v6 ? ip6(to) : ip4(to)));
  return r.status == 0;
}

std::vector<std::vector<bool>> Lab::matrix(bool v6) const {
  std::vector<std::vector<bool>> m(n_, std::vector<bool>(n_, true));
  std::vector<std::thread> th;
  for (int a = 0; a < n_; a++)
    for (int b = 0; b < n_; b++)
      if (a != b) th.emplace_back([&, a, b] { m[a][b] = ping(a, b, v6); });
  for (auto& t : th) t.join();
  return m;
}

void in_netns(const std::string& ns, const std::function<void()>& fn) {
  std::string err;
  std::thread t([&] {
    int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      err = "enter " + ns + ": " + strerror(errno);
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    fn();
  });
  t.join();
  if (!err.empty()) throw std::runtime_error(err);
}

// ---- daemon ----

Daemon::Daemon(Options o) : opts_(std::move(o)) {
  char tmpl[] = "/tmp/fltest-daemon-XXXXXX";
  dir_ = mkdtemp(tmpl);
  chmod(dir_.c_str(), 0755);
  socket_ = dir_ + "/faultline.sock";
  state_dir_ = opts_.state_dir.empty() ? dir_ + "/state" : opts_.state_dir;
  log_ = dir_ + "/faultlined.log";
  start();
}

void Daemon::start() {
  std::vector<std::string> args = {FL_FAULTLINED_PATH, "--socket", socket_, "--state-dir", state_dir_,
                                   "--lease", opts_.lease, "--attach-mode", opts_.attach_mode,
                                   "--log-level", "debug"};
  args.insert(args.end(), opts_.extra.begin(), opts_.extra.end());
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (!opts_.netns.empty()) {
      int ns = open(("/run/netns/" + opts_.netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
        dprintf(2, "enter netns %s: %s\n", opts_.netns.c_str(), strerror(errno));
        _exit(126);
      }
      close(ns);
    }
    for (const auto& [k, v] : opts_.env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  bool up = eventually(
      [&] {
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, socket_.c_str(), sizeof a.sun_path - 1);
        bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        close(s);
        return ok;
      },
      std::chrono::seconds(10));
  if (!up) {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    throw std::runtime_error("faultlined did not come up:\n" + ss.str());
  }
}

Daemon::~Daemon() {
  if (pid_ > 0) terminate();
  sh("rm -rf " + dir_);
}

void Daemon::kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int Daemon::terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int st = 0;
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    usleep(50000);
  }
  ADD_FAILURE() << "faultlined did not exit within 5 s of SIGTERM";
  kill9();
  return -1;
}

json Daemon::request(json req) {
  req["id"] = next_id_++;
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_.c_str(), sizeof a.sun_path - 1);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    throw std::runtime_error("connect " + socket_ + ": " + strerror(errno));
  }
  std::string line = req.dump() + "\n";
  if (write(s, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    close(s);
    throw std::runtime_error("short write to daemon");
  }
  std::string reply;
  char buf[65536];
  while (reply.find('\n') == std::string::npos) {
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    ssize_t n = read(s, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(s);
  if (reply.find('\n') == std::string::npos) throw std::runtime_error("no reply from daemon");
  return json::parse(reply.substr(0, reply.find('\n')));
}

json Daemon::call(const std::string& op, json body) {
  body["op"] = op;
  json r = request(body);
  if (!r.value("ok", false)) {
    ADD_FAILURE() << op << " refused: " << r.dump();
    return nullptr;
  }
  return r["result"];
}

json Daemon::call_error(const std::string& op, json body) {
  body["op"] = op;
  json r = request(body);
  if (r.value("ok", false)) return nullptr;
  return r["error"];
}

Cmd faultctl(const Daemon& d, const std::string& args) {
  return sh(std::string(FL_FAULTCTL_PATH) + " --socket " + d.socket() + " " + args);
}

// ---- hooks ----

namespace {

constexpr uint32_t kTcxIngress = 46, kTcxEgress = 47;

int count_tcx_ours(int ifindex, uint32_t type) {
  std::array<uint32_t, 64> ids{};
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.query.target_fd = static_cast<uint32_t>(ifindex);
  attr.query.attach_type = type;
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  attr.query.prog_cnt = ids.size();
  if (syscall(__NR_bpf, BPF_PROG_QUERY, &attr, sizeof attr) != 0) return 0;  // no tcx here
  int ours = 0;
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < ids.size(); i++) {
    union bpf_attr ga;
    std::memset(&ga, 0, sizeof ga);
    ga.prog_id = ids[i];
    int fd = static_cast<int>(syscall(__NR_bpf, BPF_PROG_GET_FD_BY_ID, &ga, sizeof ga));
    if (fd < 0) continue;
    bpf_prog_info info{};
    union bpf_attr ia;
    std::memset(&ia, 0, sizeof ia);
    ia.info.bpf_fd = static_cast<uint32_t>(fd);
    ia.info.info_len = sizeof info;
    ia.info.info = reinterpret_cast<uint64_t>(&info);
    if (syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &ia, sizeof ia) == 0 && std::strncmp(info.name, "fl_", 3) == 0)
      ours++;
    close(fd);
  }
  return ours;
}

}  // namespace

Hooks hooks_on(const std::string& ns, const std::string& dev) {
  Hooks h;
  in_netns(ns, [&] {
    int ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    if (ifindex > 0) h.tcx = count_tcx_ours(ifindex, kTcxIngress) + count_tcx_ours(ifindex, kTcxEgress);
  });
  // tc(8) as an independent observer of the legacy path.
  for (const char* dir : {"ingress", "egress"}) {
    Cmd r = sh("ip netns exec " + ns + " tc filter show dev " + dev + " " + dir);
    size_t pos = 0;
    while ((pos = r.out.find("handle 0xfa17", pos)) != std::string::npos) {
      h.tc_filters++;
      pos++;
    }
  }
  h.clsact = sh("ip netns exec " + ns + " tc qdisc show dev " + dev).out.find("clsact") != std::string::npos;
  return h;
}

UdpResult udp_stream(const std::string& from, const std::string& to, const std::string& addr, int port,
                     size_t count, std::chrono::microseconds gap) {
  UdpResult res;
  bool v6 = addr.find(':') != std::string::npos;
  int rx = -1;
  in_netns(to, [&] {
    rx = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      a.sin6_addr = in6addr_any;
      bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
  });
  std::set<uint32_t> seen;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    char buf[2048];
    for (;;) {
      pollfd p{rx, POLLIN, 0};
      int r = poll(&p, 1, 100);
      if (r <= 0) {
        if (done) break;
        continue;
      }
      ssize_t n = recv(rx, buf, sizeof buf, 0);
      if (n >= 4) {
        uint32_t seq;
        std::memcpy(&seq, buf, 4);
        seen.insert(seq);
      }
    }
  });
  in_netns(from, [&] {
    int tx = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    const socklen_t len = socket_address(addr, port, ss);
    char payload[64] = {};
    for (uint32_t seq = 0; seq < count; seq++) {
      std::memcpy(payload, &seq, 4);
      if (sendto(tx, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&ss), len) == sizeof payload)
        res.sent++;
      if (gap.count() > 0)
        std::this_thread::sleep_for(gap);
      else if (seq % 64 == 63)
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // stay under the bridge's queues
    }
    close(tx);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  done = true;
  reader.join();
  close(rx);
  res.received = seen.size();
  return res;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return pred();
    std::this_thread::sleep_for(step);
  }
}

// The listener needs no accept(): the kernel completes the handshake into the backlog.
bool tcp_connects(const std::string& ns, const std::string& addr, int port, std::chrono::milliseconds timeout) {
  bool ok = false;
  in_netns(ns, [&] {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{s, POLLOUT, 0};
      if (poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        ok = err == 0;
      }
    }
    close(s);
  });
  return ok;
}

socklen_t socket_address(const std::string& addr, int port, sockaddr_storage& ss) {
  ss = {};
  if (addr.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
  return sizeof *a;
}

}  // namespace fl::test
