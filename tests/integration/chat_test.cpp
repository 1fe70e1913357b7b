// The chat cluster of tools/chat on a namespace lab: relaying between nodes, the bounded
// per-client queue against a slow consumer, the client's backoff with jitter, and the metrics
// endpoint. The servers and clients are the real binaries, talking over the lab's veths.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/lab_util.h"

#ifndef FL_CHAT_SERVER_PATH
#error "FL_CHAT_SERVER_PATH must point at fl-chat-server"
#endif
#ifndef FL_CHAT_CLIENT_PATH
#error "FL_CHAT_CLIENT_PATH must point at fl-chat-client"
#endif

namespace fl::test {
namespace {

using namespace std::chrono_literals;

constexpr int kWsPort = 8000, kPeerPort = 7000, kMetricsPort = 9000;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A program run in a lab namespace, its stdout in a file, stopped (SIGTERM, then SIGKILL) at
// the end of its scope so that no test leaves one behind.
class Proc {
 public:
  Proc(const std::string& ns, std::vector<std::string> args, std::string out)
      : ns_(ns), args_(std::move(args)), out_(std::move(out)) {
    start();
  }
  ~Proc() { stop(); }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(out_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      int err = open((out_ + ".err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(err, 2);
      int nsfd = open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  // SIGTERM and wait up to 3 s; the exit status, or -1 (killed).
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 60; i++) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      usleep(50000);
    }
    kill9();
    return -1;
  }
  void kill9() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool running() { return pid_ > 0 && !reaped(); }
  // Waits for a normal exit (the client's --duration); the exit status or -1.
  int wait_exit(std::chrono::milliseconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
      if (pid_ <= 0 || reaped()) return status_;
      std::this_thread::sleep_for(20ms);
    }
    return stop();
  }
  std::string output() const { return slurp(out_); }
  std::string errors() const { return slurp(out_ + ".err"); }

 private:
  std::string ns_;
  std::vector<std::string> args_;
  std::string out_;
  pid_t pid_ = -1;
  int status_ = -1;  // of the exited process

  bool reaped() {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) != pid_) return false;
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return true;
  }
};

std::string addr(int node, int port) { return Lab::ip4(node) + ":" + std::to_string(port); }

// Server on lab node i, peered with every other node in `peers`.
std::unique_ptr<Proc> chat_server(const Lab& lab, int i, const std::vector<int>& peers, const std::string& dir,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {FL_CHAT_SERVER_PATH, "--node", "n" + std::to_string(i), "--listen",
                                addr(i, kWsPort), "--metrics", addr(i, kMetricsPort), "--peer-listen",
                                addr(i, kPeerPort), "--peer-heartbeat-ms", "200", "--peer-timeout-ms", "1000",
                                "--peer-backoff-base-ms", "50", "--peer-backoff-cap-ms", "500"};
  for (int p : peers) a.insert(a.end(), {"--peer", addr(p, kPeerPort)});
  a.insert(a.end(), extra.begin(), extra.end());
  return std::make_unique<Proc>(lab.ns(i), a, dir + "/server" + std::to_string(i) + ".out");
}

std::unique_ptr<Proc> chat_client(const Lab& lab, int node, int server, const std::string& name, const std::string& dir,
                                  std::vector<std::string> extra) {
  std::vector<std::string> a = {FL_CHAT_CLIENT_PATH, "--server", addr(server, kWsPort), "--room", "lab", "--name",
                                name, "--interval", "0.5"};
  a.insert(a.end(), extra.begin(), extra.end());
  return std::make_unique<Proc>(lab.ns(node), a, dir + "/" + name + ".out");
}

// One HTTP GET from inside ns; the body, or "" when it failed.
std::string http_get(const std::string& ns, const std::string& ip, int port, const std::string& path) {
  int fd = -1;
  in_netns(ns, [&] { fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  sockaddr_storage ss;
  socklen_t len = socket_address(ip, port, ss);
  std::string resp;
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ip + "\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      pollfd p{fd, POLLIN, 0};
      while (poll(&p, 1, 2000) > 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        resp.append(buf, static_cast<size_t>(n));
      }
    }
  }
  if (fd >= 0) close(fd);
  auto body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return "";
  return resp.substr(body + 4);
}

std::string scrape(const Lab& lab, int node) { return http_get(lab.ns(node), Lab::ip4(node), kMetricsPort, "/metrics"); }

// The value of the first sample of `name` (with or without labels); NaN when absent.
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return NAN;
}

// The client's JSON lines of one type ("interval", "summary", "connect", "disconnect").
std::vector<json> lines_of(const std::string& out, const std::string& type) {
  std::vector<json> r;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.value("type", "") == type) r.push_back(j);
  }
  return r;
}

json summary_of(const Proc& p) {
  auto s = lines_of(p.output(), "summary");
  return s.empty() ? json() : s.back();
}

bool mesh_up(const Lab& lab, int nodes) {
  return eventually(
      [&] {
        for (int i = 0; i < nodes; i++)
          if (metric(scrape(lab, i), "fl_chat_peer_links_up") != nodes - 1) return false;
        return true;
      },
      5s, 100ms);
}

// Three servers in a full mesh, two users on each node sending 20 messages/s: every user gets
// the messages of every node exactly once (no more than was sent: nothing is relayed twice), in
// milliseconds.
TEST(Chat, ThreeNodesRelayEveryMessageOnce) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  Lab lab(3);
  TempDir dir("fltest-chat");
  std::vector<std::unique_ptr<Proc>> servers;
  for (int i = 0; i < 3; i++) {
    std::vector<int> peers;
    for (int p = 0; p < 3; p++)
      if (p != i) peers.push_back(p);
    servers.push_back(chat_server(lab, i, peers, dir.path()));
  }
  ASSERT_TRUE(mesh_up(lab, 3)) << servers[0]->errors() << servers[1]->errors() << servers[2]->errors();

  // Listeners first (rate 0, the whole run), then the senders: every message sent has all its
  // receivers connected, so the expected count is exact.
  std::vector<std::unique_ptr<Proc>> listeners, senders;
  for (int i = 0; i < 3; i++)
    listeners.push_back(chat_client(lab, i, i, "listen" + std::to_string(i), dir.path(),
                                    {"--users", "2", "--rate", "0", "--duration", "4"}));
  ASSERT_TRUE(eventually(
      [&] {
        for (int i = 0; i < 3; i++)
          if (metric(scrape(lab, i), "fl_chat_clients") != 2) return false;
        return true;
      },
      3s));
  for (int i = 0; i < 3; i++)
    senders.push_back(chat_client(lab, i, i, "send" + std::to_string(i), dir.path(),
                                  {"--users", "2", "--rate", "20", "--duration", "2"}));
  for (auto& s : senders) EXPECT_EQ(s->wait_exit(5s), 0) << s->errors();
  std::this_thread::sleep_for(300ms);  // the last messages in flight
  for (auto& l : listeners) l->stop();

  std::vector<uint64_t> sent(3);
  for (int i = 0; i < 3; i++) {
    json s = summary_of(*senders[i]);
    ASSERT_TRUE(s.is_object()) << senders[i]->output() << senders[i]->errors();
    sent[i] = s["sent"].get<uint64_t>();
    EXPECT_GE(sent[i], 60u) << "2 users at 20/s for 2 s";
  }
  for (int i = 0; i < 3; i++) {
    json s = summary_of(*listeners[i]);
    ASSERT_TRUE(s.is_object()) << listeners[i]->output() << listeners[i]->errors();
    for (int o = 0; o < 3; o++) {
      std::string origin = "n" + std::to_string(o);
      uint64_t got = s["received_by_origin"].value(origin, uint64_t{0});
      EXPECT_EQ(got, 2 * sent[o]) << "listeners on node " << i << " from " << origin << ": " << s.dump();
    }
    double p99 = s["latency_ms"]["p99"].get<double>();
    std::printf("node %d listeners: %s received, latency p50 %.2f ms p99 %.2f ms max %.2f ms\n", i,
                s["received"].dump().c_str(), s["latency_ms"]["p50"].get<double>(), p99,
                s["latency_ms"]["max"].get<double>());
    EXPECT_LT(p99, 100.0) << "veths on one host deliver in well under a millisecond; 100 ms allows a busy CI";
    EXPECT_GE(s["latency_ms"]["p50"].get<double>(), 0.0);
  }
  for (int i = 0; i < 3; i++) {
    std::string m = scrape(lab, i);
    EXPECT_EQ(metric(m, "fl_chat_messages_from_clients_total"), sent[i]);
    EXPECT_EQ(metric(m, "fl_chat_messages_relayed_out_total"), 2 * sent[i]) << "one copy per peer";
    EXPECT_EQ(metric(m, "fl_chat_messages_relayed_in_total"), sent[0] + sent[1] + sent[2] - sent[i]);
  }
}

// One user that never reads, with a 4 KiB receive buffer, in a room where three users send
// 8 KB messages at 100/s each (2.4 MB/s). The server's queue bound (64 messages, 256 KiB)
// disconnects it, again after each reconnect, while the three others receive everything; the
// server's RSS stays within a few MB of where it started, where an unbounded queue would grow by
// the 2.4 MB/s the slow user does not take.
TEST(Chat, SlowConsumerIsDisconnectedAtTheQueueBound) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  Lab lab(2);
  TempDir dir("fltest-chat");
  constexpr size_t kMaxBytes = 256 << 10;
  auto server = chat_server(lab, 0, {}, dir.path(),
                            {"--max-queue-messages", "64", "--max-queue-bytes", std::to_string(kMaxBytes),
                             "--client-sndbuf", "16384"});
  ASSERT_TRUE(eventually([&] { return !scrape(lab, 0).empty(); }, 3s)) << server->errors();
  double rss0 = metric(scrape(lab, 0), "process_resident_memory_bytes");
  ASSERT_GT(rss0, 0);

  auto slow = chat_client(lab, 1, 0, "slow", dir.path(),
                          {"--users", "1", "--slow-users", "1", "--slow-mode", "stop", "--slow-rcvbuf", "4096",
                           "--rate", "1", "--duration", "4", "--log-connects", "--backoff-base-ms", "100"});
  auto others = chat_client(lab, 1, 0, "fast", dir.path(),
                            {"--users", "3", "--rate", "100", "--payload-bytes", "8000", "--duration", "3.5"});
  double rss_max = rss0, queue_max = 0;
  while (others->running()) {
    std::string m = scrape(lab, 0);
    rss_max = std::max(rss_max, metric(m, "process_resident_memory_bytes"));
    queue_max = std::max(queue_max, metric(m, "fl_chat_queue_bytes_max"));
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(others->wait_exit(2s), 0) << others->errors();
  EXPECT_EQ(slow->wait_exit(3s), 0) << slow->errors();

  std::string m = scrape(lab, 0);
  double overflows = metric(m, "fl_chat_overflow_disconnects_total");
  EXPECT_GE(overflows, 1) << m;
  json ss = summary_of(*slow);
  ASSERT_TRUE(ss.is_object()) << slow->output();
  EXPECT_GE(ss["slow_disconnects"].get<int>(), 1) << "the slow user saw its connection reset";
  // Each of its connections ended: reset by the server, not by the client's own timeout.
  for (const auto& d : lines_of(slow->output(), "disconnect")) {
    EXPECT_TRUE(d["slow"].get<bool>());
    EXPECT_LT(d["up_s"].get<double>(), 2.0) << "2.4 MB/s fills 256 KiB plus the socket buffers in ~0.1 s";
  }

  json fs = summary_of(*others);
  ASSERT_TRUE(fs.is_object()) << others->output();
  uint64_t sent = fs["sent"].get<uint64_t>(), received = fs["received"].get<uint64_t>();
  EXPECT_EQ(fs["disconnects"].get<int>(), 0) << "only the slow user is cut off";
  EXPECT_GE(received, 3 * sent * 95 / 100) << "every fast user receives (nearly) every message: " << fs.dump();
  std::printf("slow consumer: %.0f overflow disconnects, queue max %.0f B (bound %zu), RSS %.1f MB -> max %.1f MB; "
              "fast users p99 %.2f ms, %lu of %lu\n",
              overflows, queue_max, kMaxBytes, rss0 / 1e6, rss_max / 1e6, fs["latency_ms"]["p99"].get<double>(),
              received, 3 * sent);
  EXPECT_LE(queue_max, static_cast<double>(kMaxBytes));
  // Measured: +0.4 MB bounded; +8.4 MB with the bound lifted (--max-queue-* huge).
  EXPECT_LT(rss_max - rss0, 4e6) << "unbounded, the slow user's backlog alone would be ~8 MB";
}

// The server dies under a connected user: the user's attempts while it is down are spaced by
// growing, jittered delays (ceilings 50, 100, 200, 400, 400 ms... each delay drawn below its
// ceiling, not a fixed interval), and it is back within one cap of the server's return.
TEST(Chat, ClientBacksOffWithJitterAndReconnects) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  Lab lab(2);
  TempDir dir("fltest-chat");
  auto server = chat_server(lab, 0, {}, dir.path());
  ASSERT_TRUE(eventually([&] { return !scrape(lab, 0).empty(); }, 3s)) << server->errors();
  constexpr int kBase = 50, kCap = 400;
  auto client = chat_client(lab, 1, 0, "user", dir.path(),
                            {"--users", "1", "--rate", "5", "--log-connects", "--backoff-base-ms",
                             std::to_string(kBase), "--backoff-cap-ms", std::to_string(kCap), "--seed", "7"});
  ASSERT_TRUE(eventually([&] { return lines_of(client->output(), "connect").size() == 1; }, 3s));

  server->kill9();
  std::this_thread::sleep_for(2500ms);
  auto down = lines_of(client->output(), "connect");
  server->start();
  auto back_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return lines_of(client->output(), "connect").back()["ok"].get<bool>(); }, 3s))
      << client->output();
  double back_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - back_at).count();
  client->stop();

  auto ev = lines_of(client->output(), "connect");
  ASSERT_GE(down.size(), 6u) << "2.5 s down with a 400 ms cap: " << client->output();
  std::vector<double> delays, gaps;
  for (size_t k = 1; k < down.size(); k++) {
    EXPECT_FALSE(down[k]["ok"].get<bool>()) << down[k].dump();
    int attempt = down[k]["attempt"].get<int>();
    EXPECT_EQ(attempt, static_cast<int>(k)) << "attempts counted from the loss";
    double ceiling = std::min<double>(kCap, kBase * std::ldexp(1.0, attempt - 1));
    double d = down[k]["delay_ms"].get<double>();
    EXPECT_LE(d, ceiling) << "attempt " << attempt;
    delays.push_back(d);
    if (k >= 2) {
      // The time between two refused attempts is the delay drawn (plus a refused connect).
      double gap = (down[k]["t"].get<double>() - down[k - 1]["t"].get<double>()) * 1000;
      EXPECT_GE(gap, d - 2) << "attempt " << attempt << " came before its delay";
      EXPECT_LE(gap, d + 150) << "attempt " << attempt;
      gaps.push_back(gap);
    }
  }
  // Jitter: not a fixed interval, and draws well below the ceiling occur.
  double mn = *std::min_element(gaps.begin(), gaps.end()), mx = *std::max_element(gaps.begin(), gaps.end());
  EXPECT_GT(mx - mn, 50) << "gaps between attempts look fixed";
  // Growth: the later delays (ceiling 400) exceed the first one (ceiling 50) on average.
  double late = 0;
  for (size_t k = 3; k < delays.size(); k++) late += delays[k];
  late /= static_cast<double>(delays.size() - 3);
  EXPECT_GT(late, delays[0]) << "delays do not grow";
  EXPECT_GT(late, kBase) << "the mean of later delays (ceiling " << kCap << ") stays at the base";
  EXPECT_LT(back_s, kCap / 1000.0 + 1.0) << "back within one cap (plus slack) of the server's return";
  std::string gap_list;
  for (double g : gaps) gap_list += std::to_string(static_cast<int>(g)) + " ";
  std::printf("backoff: %zu refused attempts, gaps (ms): %s; back %.2f s after the server\n", down.size() - 1,
              gap_list.c_str(), back_s);
}

// A silent cut (node 1's link down: packets vanish, nothing is reset): the server on node 0
// closes its peer link for silence and redials it after the heal; a user of node 1's server
// finds its connection dead by its idle timeout and moves to the next server of its list.
TEST(Chat, SilentCutIsDetectedAndHealed) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  Lab lab(2);
  TempDir dir("fltest-chat");
  auto s0 = chat_server(lab, 0, {1}, dir.path());
  auto s1 = chat_server(lab, 1, {0}, dir.path());
  ASSERT_TRUE(mesh_up(lab, 2)) << s0->errors() << s1->errors();
  std::vector<std::string> a = {FL_CHAT_CLIENT_PATH, "--server", addr(1, kWsPort), "--server", addr(0, kWsPort),
                                "--users", "1", "--rate", "5", "--idle-timeout-ms", "1000", "--connect-timeout-ms",
                                "500", "--backoff-base-ms", "50", "--backoff-cap-ms", "200", "--log-connects"};
  Proc client(lab.ns(0), a, dir.path() + "/client.out");
  ASSERT_TRUE(eventually([&] { return metric(scrape(lab, 1), "fl_chat_clients") == 1; }, 3s));

  ASSERT_EQ(sh("ip -n " + lab.ns(1) + " link set eth0 down").status, 0);
  auto cut = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return metric(scrape(lab, 0), "fl_chat_peer_links_up") == 0; }, 3s))
      << "1 s peer timeout";
  double detect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  EXPECT_GE(metric(scrape(lab, 0), "fl_chat_peer_timeouts_total"), 1);
  EXPECT_TRUE(eventually([&] { return metric(scrape(lab, 0), "fl_chat_clients") == 1; }, 4s))
      << "the user moved to node 0's server: " << client.output();
  double failover_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();

  ASSERT_EQ(sh("ip -n " + lab.ns(1) + " link set eth0 up").status, 0);
  EXPECT_TRUE(eventually([&] { return metric(scrape(lab, 0), "fl_chat_peer_links_up") == 1; }, 4s))
      << "redialled after the heal (backoff cap 500 ms)";
  // Node 1's messages reach the user on node 0 again.
  double before = metric(scrape(lab, 0), "fl_chat_messages_relayed_in_total");
  Proc talker(lab.ns(1), {FL_CHAT_CLIENT_PATH, "--server", addr(1, kWsPort), "--name", "talker", "--rate", "20",
                          "--duration", "0.5"},
              dir.path() + "/talker.out");
  EXPECT_EQ(talker.wait_exit(3s), 0);
  EXPECT_TRUE(eventually([&] { return metric(scrape(lab, 0), "fl_chat_messages_relayed_in_total") > before; }, 2s));
  client.stop();
  auto lost = lines_of(client.output(), "disconnect");
  ASSERT_FALSE(lost.empty()) << client.output();
  EXPECT_EQ(lost[0]["server"], addr(1, kWsPort));
  std::printf("silent cut: peer link down after %.2f s, user on node 0's server after %.2f s\n", detect_s,
              failover_s);
}

// The metrics endpoint with a client and traffic: valid Prometheus text (promtool), with the
// counters the experiments read.
TEST(Chat, MetricsParseAsPrometheusText) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  if (sh("command -v promtool").status != 0)
    GTEST_SKIP() << "promtool (Debian's prometheus package) is not installed; tools/setup installs it";
  Lab lab(2);
  TempDir dir("fltest-chat");
  auto server = chat_server(lab, 0, {1}, dir.path());
  auto client = chat_client(lab, 1, 0, "user", dir.path(), {"--users", "2", "--rate", "10"});
  ASSERT_TRUE(eventually([&] { return metric(scrape(lab, 0), "fl_chat_messages_delivered_total") >= 10; }, 3s));
  std::string m = scrape(lab, 0);
  std::ofstream(dir.path() + "/metrics.txt") << m;
  Cmd check = sh("promtool check metrics < " + dir.path() + "/metrics.txt");
  EXPECT_EQ(check.status, 0) << check.out << "\n" << m;
  EXPECT_EQ(metric(m, "fl_chat_clients"), 2);
  EXPECT_EQ(metric(m, "fl_chat_room_clients"), 2);
  EXPECT_EQ(metric(m, "fl_chat_peer_links_up"), 0) << "node 1 runs no server";
  EXPECT_EQ(metric(m, "fl_chat_peer_links_configured"), 1);
  EXPECT_GE(metric(m, "fl_chat_peer_connect_failures_total"), 1);
  EXPECT_GT(metric(m, "process_resident_memory_bytes"), 1e6);
  EXPECT_EQ(metric(m, "fl_chat_overflow_disconnects_total"), 0);
  EXPECT_EQ(http_get(lab.ns(0), Lab::ip4(0), kMetricsPort, "/nope"), "") << "only /metrics is served";
  client->stop();
  EXPECT_EQ(server->stop(), 0) << "SIGTERM: clean exit";
}

}  // namespace
}  // namespace fl::test
