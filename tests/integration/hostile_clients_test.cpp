// What clients cannot do to the daemon's event loop (docs/SAFETY.md, "The event loop under
// load"): stall it past the lease with a burst of pod: applies against a slow crictl, lose a
// reply that is over the unread-output limit but within the reply limit, or grow its memory
// without bound by holding partial lines and unread replies.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/server.h"
#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A non-blocking connection to the daemon's socket, read with deadlines.
class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ok_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (ok_) fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  bool ok() const { return ok_; }

  // Writes what the socket takes now, up to all of s; returns how much.
  size_t send_some(std::string_view s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }
  bool send_all(std::string_view s, std::chrono::milliseconds timeout = 10s) {
    const auto end = Clock::now() + timeout;
    while (!s.empty()) {
      s.remove_prefix(send_some(s));
      if (s.empty()) break;
      if (Clock::now() > end) return false;
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, 50) < 0) return false;
      if (p.revents & (POLLERR | POLLHUP)) return false;
    }
    return true;
  }
  std::optional<json> read_reply(std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return json::parse(line, nullptr, false);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char tmp[1 << 16];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string buf_;
};

std::string request(uint64_t id, const std::string& op, json body = json::object()) {
  body["id"] = id;
  body["op"] = op;
  return body.dump() + "\n";
}

// VmRSS of a process, in KiB (0 if it cannot be read).
uint64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

// A crictl stand-in that takes a while (a second by default) to answer that it knows no such pod.
class SlowCrictl {
 public:
  explicit SlowCrictl(const char* seconds = "1") {
    char tmpl[] = "/tmp/fltest-slowcrictl-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(path()) << "#!/bin/sh\n# Test stand-in for crictl: a runtime slow to answer.\nsleep " << seconds << "\n"
                             "echo '{\"items\":[]}'\n";
    chmod(path().c_str(), 0755);
  }
  ~SlowCrictl() {
    unlink(path().c_str());
    rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/crictl"; }

 private:
  std::string dir_;
};

// Issue 10, item 3: six pod: applies in one write against a crictl that takes a second each.
// When crictl ran on the loop (killed after a quarter of the 3 s lease), the loop stood still
// for 4.5 s: other clients waited that long and the lease ran out, so a partition leaked.
TEST(HostileClients, PodAppliesAgainstASlowCrictlNeitherStallTheLoopNorLapseTheLease) {
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, faultlined)";
  Lab lab(2);
  SlowCrictl crictl;
  Daemon d(Daemon::Options{.lease = "3s", .extra = {"--crictl", crictl.path()}});
  json fault = {{"kind", "partition"},
                {"sides", {{{"cidrs", {Lab::ip4(0)}}}, {{"cidrs", {Lab::ip4(1)}}}}},
                {"targets", {lab.target(1)}},
                {"duration_ms", 120000}};
  ASSERT_FALSE(d.call("apply", {{"fault", fault}}).is_null());
  const uint64_t seq0 = d.call("events", {{"limit", 1}})["next_seq"].get<uint64_t>();

  // Datagrams across the partition for the whole burst (~6 s), counted at the receiver.
  UdpResult leak;
  std::thread traffic([&] { leak = udp_stream(lab.ns(0), lab.ns(1), Lab::ip4(1), 7301, 1600, 5ms); });

  Client burst(d.socket());
  ASSERT_TRUE(burst.ok());
  std::string six;
  for (int i = 1; i <= 6; i++) {
    json f = {{"kind", "loss"}, {"loss", {{"percent", 10}}}, {"targets", {"pod:default/web-" + std::to_string(i)}}};
    six += request(static_cast<uint64_t>(i), "apply", {{"fault", f}});
  }
  ASSERT_TRUE(burst.send_all(six));

  Client other(d.socket());
  ASSERT_TRUE(other.ok());
  auto worst = Clock::duration::zero();
  int asked = 0;
  const auto until = Clock::now() + 6500ms;
  while (Clock::now() < until) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(other.send_all(request(1000 + static_cast<uint64_t>(asked), "status")));
    auto r = other.read_reply(10s);
    ASSERT_TRUE(r.has_value()) << "status not answered";
    EXPECT_EQ((*r)["id"], 1000 + asked);
    worst = std::max(worst, Clock::now() - t0);
    asked++;
    std::this_thread::sleep_for(50ms);
  }
  // Every apply is answered, in order, with what crictl said.
  for (int i = 1; i <= 6; i++) {
    auto r = burst.read_reply(10s);
    ASSERT_TRUE(r.has_value()) << "apply " << i << " not answered";
    EXPECT_EQ((*r)["id"], i);
    EXPECT_EQ((*r)["error"]["code"], "target_unavailable") << r->dump();
    EXPECT_NE((*r)["error"]["message"].get<std::string>().find("not found by crictl"), std::string::npos) << r->dump();
  }
  traffic.join();

  const auto worst_ms = std::chrono::duration_cast<std::chrono::milliseconds>(worst).count();
  std::printf("status answered within %lld ms at worst (%d asked); %zu of %zu datagrams leaked\n",
              static_cast<long long>(worst_ms), asked, leak.received, leak.sent);
  RecordProperty("worst_status_ms", std::to_string(worst_ms));
  EXPECT_LT(worst_ms, 500) << "the loop was held up (docs/SAFETY.md: never more than ~0.5 s)";
  EXPECT_GT(leak.sent, 1000u);
  EXPECT_EQ(leak.received, 0u) << "the partition leaked: the lease ran out";
  json ev = d.call("events", {{"since", seq0}})["events"];
  for (const auto& e : ev) EXPECT_NE(e["type"], "lease_late") << e.dump();
}

// Issue 10, item 3, and issue 12, section 1: our own kernel work stays off the event loop. A
// partition across sixteen namespaces loads fifteen data paths (the verifier, 0.1-0.2 s each),
// attaches and journals them; a heal waits for grace periods. Both run on the kernel worker,
// so another client's status is answered meanwhile; a list sent during the apply waits for it
// (it reads the faults the apply is changing) and then shows the new fault.
TEST(HostileClients, AnApplyAcrossSixteenNamespacesDoesNotHoldTheLoop) {
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, faultlined)";
  constexpr int kTargets = 16;
  Lab lab(kTargets);
  Daemon d;
  json targets = json::array();
  for (int i = 0; i < kTargets; i++) targets.push_back(lab.target(i));
  json fault = {{"kind", "partition"},
                {"sides", {{{"cidrs", {Lab::ip4(0)}}}, {{"cidrs", {Lab::ip4(1)}}}}},
                {"targets", targets},
                {"duration_ms", 120000}};

  Client applier(d.socket()), lister(d.socket()), other(d.socket());
  ASSERT_TRUE(applier.ok() && lister.ok() && other.ok());

  // status every ~15 ms from `other` while `op` is in progress on `c`; returns the worst wait
  // and how long op took, and stores op's reply.
  struct Timing {
    long long worst_ms = 0, op_ms = 0;
    int asked = 0;
    json reply;
  };
  auto during = [&](Client& c, const std::string& line, bool also_list) {
    Timing t;
    const auto start = Clock::now();
    EXPECT_TRUE(c.send_all(line));
    if (also_list) {
      std::this_thread::sleep_for(20ms);
      EXPECT_TRUE(lister.send_all(request(500, "list")));
      // An apply queued behind this one whose client leaves before its turn: nobody would learn
      // its id, so it must not be made.
      Client quitter(d.socket());
      json loss = {{"kind", "loss"}, {"loss", {{"percent", 50}}}, {"targets", {lab.target(2)}}};
      EXPECT_TRUE(quitter.send_all(request(600, "apply", {{"fault", loss}})));
      std::this_thread::sleep_for(20ms);
    }
    std::optional<json> r;
    while (!(r = c.read_reply(5ms))) {
      const auto t0 = Clock::now();
      EXPECT_TRUE(other.send_all(request(1000 + static_cast<uint64_t>(t.asked), "status")));
      auto s = other.read_reply(10s);
      if (!s) {
        ADD_FAILURE() << "status not answered";
        break;
      }
      EXPECT_EQ((*s)["id"], 1000 + t.asked);
      t.worst_ms = std::max<long long>(
          t.worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
      t.asked++;
      std::this_thread::sleep_for(10ms);
      if (Clock::now() - start > 60s) break;
    }
    t.op_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (r) t.reply = *r;
    return t;
  };

  const Timing apply = during(applier, request(1, "apply", {{"fault", fault}}), true);
  ASSERT_TRUE(apply.reply.contains("result")) << apply.reply.dump() << " after " << apply.op_ms << " ms, "
                                              << apply.asked << " status asked; log: " << sh("cat " + d.log_path()).out;
  const uint64_t id = apply.reply["result"]["fault"]["id"].get<uint64_t>();
  // The list sent during the apply was answered by the loop from what the worker published
  // before it (issue 12): the apply is not in it yet, and the reply says how old it is.
  auto listed = lister.read_reply(10s);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ((*listed)["result"]["faults"].size(), 0u) << listed->dump();
  EXPECT_TRUE((*listed)["result"].contains("counters_age_ms")) << listed->dump();
  // Asked after the apply, it shows it.
  auto after = d.call("list");
  ASSERT_EQ(after["faults"].size(), 1u) << after.dump();
  EXPECT_EQ(after["faults"][0]["id"], id);
  EXPECT_FALSE(lab.ping(0, 1)) << "the partition is not in force";

  const Timing heal = during(applier, request(2, "heal", {{"fault", id}}), false);
  ASSERT_TRUE(heal.reply.contains("result")) << heal.reply.dump();
  EXPECT_TRUE(lab.ping(0, 1));
  EXPECT_EQ(d.call("list")["faults"].size(), 0u) << "the apply of a client that had left was made";
  EXPECT_NE(sh("cat " + d.log_path()).out.find("the client left before its turn; not run"), std::string::npos);

  std::printf("apply on %d namespaces took %lld ms: status answered within %lld ms at worst (%d asked)\n",
              kTargets, apply.op_ms, apply.worst_ms, apply.asked);
  std::printf("heal took %lld ms: status answered within %lld ms at worst (%d asked)\n", heal.op_ms, heal.worst_ms,
              heal.asked);
  RecordProperty("apply_ms", std::to_string(apply.op_ms));
  RecordProperty("worst_status_during_apply_ms", std::to_string(apply.worst_ms));
  // What makes this a test: the apply holds the kernel worker long past the bound below (on
  // the loop, status waited for all of it).
  EXPECT_GT(apply.op_ms, 500) << "the apply was too quick to show whether the loop waits for it";
  EXPECT_GE(apply.asked, 3);
  EXPECT_LT(apply.worst_ms, 500) << "the loop waited for the apply (docs/SAFETY.md: never more than ~0.5 s)";
  EXPECT_LT(heal.worst_ms, 500) << "the loop waited for the heal";
}

// The queue of requests waiting for crictl is bounded: 20 clients each asking for a pod: fault
// against a crictl that takes 0.2 s get 16 places; the others are refused at once with
// resource_exhausted, not left waiting behind them, and every queued one is answered.
TEST(HostileClients, RequestsWaitingForCrictlAreBounded) {
  if (!require_root()) GTEST_SKIP() << "needs root (faultlined)";
  SlowCrictl crictl("0.2");
  Daemon d(Daemon::Options{.extra = {"--crictl", crictl.path()}});
  constexpr int kClients = 20;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(std::make_unique<Client>(d.socket()));
    ASSERT_TRUE(clients.back()->ok());
    json f = {{"kind", "loss"}, {"loss", {{"percent", 10}}}, {"targets", {"pod:default/web-" + std::to_string(i)}}};
    ASSERT_TRUE(clients.back()->send_all(request(1, "apply", {{"fault", f}})));
  }
  int refused = 0, resolved = 0;
  const auto t0 = Clock::now();
  for (auto& c : clients) {
    auto r = c->read_reply(60s);
    ASSERT_TRUE(r.has_value()) << "an apply was never answered";
    const std::string code = (*r)["error"]["code"].get<std::string>();
    if (code == "resource_exhausted") {
      refused++;
      EXPECT_NE((*r)["error"]["message"].get<std::string>().find("wait for crictl"), std::string::npos) << r->dump();
    } else {
      resolved++;
      EXPECT_EQ(code, "target_unavailable") << r->dump();
    }
  }
  std::printf("%d queued for crictl and answered, %d refused, in %lld ms\n", resolved, refused,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
  // The first may already be running when the rest arrive, so 16 or 17 got a place.
  EXPECT_GE(refused, kClients - 17);
  EXPECT_LE(refused, kClients - 16);
}

// Issue 10, item 4: five faults of 60,000 addresses each make a `list` reply of ~5.7 MB, over
// the 4 MiB unread-output limit but within the 16 MiB a client accepts. It used to cost the
// client its connection.
TEST(HostileClients, AListOverTheUnreadLimitButWithinTheReplyLimitArrivesWhole) {
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, faultlined)";
  Lab lab(1);
  Daemon d;
  json dst = json::array();
  for (int i = 0; i < 60000; i++) dst.push_back("10.201." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1));
  for (int f = 0; f < 5; f++) {
    json fault = {{"kind", "loss"},
                  {"loss", {{"percent", 1}}},
                  {"match", {{"dst", dst}}},
                  {"targets", {lab.target(0)}},
                  {"name", "wide-" + std::to_string(f)},
                  {"duration_ms", 120000}};
    ASSERT_FALSE(d.call("apply", {{"fault", fault}}).is_null()) << "fault " << f;
  }
  for (const char* op : {"list", "stats"}) {
    Client c(d.socket());
    ASSERT_TRUE(c.send_all(request(1, op)));
    std::this_thread::sleep_for(200ms);  // the reply is queued before we start reading
    auto r = c.read_reply(20s);
    ASSERT_TRUE(r.has_value()) << op << ": no reply (disconnected?)";
    ASSERT_TRUE((*r)["ok"].get<bool>()) << op;
    const size_t size = r->dump().size();
    EXPECT_GT(size, size_t{4} << 20) << op << ": the reply should exceed the unread limit";
    ASSERT_EQ((*r)["result"]["faults"].size(), 5u) << op;
    for (const auto& f : (*r)["result"]["faults"]) EXPECT_EQ(f["spec"]["match"]["dst"].size(), 60000u) << op;
    // The connection lives on.
    ASSERT_TRUE(c.send_all(request(2, "status")));
    auto s = c.read_reply(5s);
    ASSERT_TRUE(s.has_value()) << op;
    EXPECT_EQ((*s)["id"], 2);
  }
}

// Issue 10, item 12: clients that hold a partial line of 1 MiB and clients that pipeline
// requests without reading a reply. Without a bound across clients, each held up to 1 MiB of
// input here (the limit is 4 MiB) and 4 MiB of output: 1,024 of them ~5 GiB. The bound on buffered bytes (64 MiB) keeps
// the daemon's RSS under 160 MiB however many there are; the 250 here need ~0.5 GiB unbounded.
TEST(HostileClients, ManyHostileClientsCannotGrowTheDaemonsMemoryPastTheBound) {
  if (!require_root()) GTEST_SKIP() << "needs root (faultlined)";
  // As many clients as the daemon takes (max_clients_for its descriptor limit, which it inherits
  // from us): 1,024 wherever the hard limit allows 4,096 descriptors, as it does on any systemd
  // host. The test needs one descriptor per client.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const int total = static_cast<int>(std::min<uint64_t>(daemon::max_clients_for(rl.rlim_max), rl.rlim_cur / 2)) - 4;
  if (total < 1020)
    std::printf("the descriptor limit here is %llu: %d hostile clients, not 1,024\n",
                static_cast<unsigned long long>(rl.rlim_max), total);
  Daemon d;
  const uint64_t base = rss_kib(d.pid());
  ASSERT_GT(base, 0u);
  // Four in five hold a partial line, the others pipeline replies they never read.
  const int kLines = total * 4 / 5, kReaders = total - kLines;
  const std::string partial = R"({"id":1,"op":"status","pad":")" + std::string((1 << 20) - 64, 'x');
  // `get` of a fault that does not exist echoes its 62 KB name: 68 of them are ~4 MiB of replies.
  std::string pipelined;
  for (int i = 0; i < 68; i++) pipelined += request(static_cast<uint64_t>(i), "get", {{"fault", std::string(62000, 'n')}});
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::string_view> left;
  for (int i = 0; i < kLines + kReaders; i++) {
    clients.push_back(std::make_unique<Client>(d.socket()));
    ASSERT_TRUE(clients.back()->ok()) << i;
    left.push_back(i < kLines ? std::string_view(partial) : std::string_view(pipelined));
  }
  uint64_t peak = base;
  const auto until = Clock::now() + 8s;
  while (Clock::now() < until) {
    bool all_sent = true;
    for (size_t i = 0; i < clients.size(); i++) {
      left[i].remove_prefix(clients[i]->send_some(left[i]));
      all_sent = all_sent && left[i].empty();
    }
    peak = std::max(peak, rss_kib(d.pid()));
    if (all_sent) break;
    std::this_thread::sleep_for(20ms);
  }
  for (int i = 0; i < 25; i++) {  // the daemon catches up with what is queued
    peak = std::max(peak, rss_kib(d.pid()));
    std::this_thread::sleep_for(40ms);
  }
  std::printf("daemon RSS: %llu KiB at start, %llu KiB at peak with %d hostile clients\n",
              static_cast<unsigned long long>(base), static_cast<unsigned long long>(peak), kLines + kReaders);
  RecordProperty("peak_rss_kib", std::to_string(peak));
  EXPECT_LT(peak, 160u * 1024) << "docs/SAFETY.md states 160 MiB";
  // And it still serves.
  json st = d.call("status");
  EXPECT_FALSE(st.is_null());
}

// Issue 10, item 2: systemd's default soft limit is 1,024 descriptors while the hard limit is far
// higher; a daemon that keeps the soft one runs out at ~50 targeted namespaces. It must run with
// the hard limit, whatever soft limit it was started with.
TEST(HostileClients, TheDaemonRaisesItsDescriptorLimitToTheHardOne) {
  if (!require_root()) GTEST_SKIP() << "needs root (faultlined)";
  rlimit was{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &was), 0);
  if (was.rlim_max <= 1024) GTEST_SKIP() << "the hard descriptor limit here is " << was.rlim_max << ": nothing to raise";
  rlimit low = was;
  low.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::unique_ptr<Daemon> d = std::make_unique<Daemon>();  // inherits soft 1024, hard as before
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &was), 0);
  std::ifstream f("/proc/" + std::to_string(d->pid()) + "/limits");
  std::string line, soft, hard;
  while (std::getline(f, line))
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream in(line.substr(std::string("Max open files").size()));
      in >> soft >> hard;
    }
  ASSERT_FALSE(soft.empty()) << "no \"Max open files\" in /proc/PID/limits";
  EXPECT_EQ(soft, hard) << "the daemon kept a soft limit of " << soft << " below the hard " << hard;
  EXPECT_EQ(hard, std::to_string(was.rlim_max));
}

}  // namespace
}  // namespace fl::test
